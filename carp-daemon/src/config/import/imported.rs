//! One imported instance: its configuration, where its password goes, and
//! where its checked fields were set (for errors that name the UCARP file).

use std::path::PathBuf;

use super::super::error::At;
use super::super::model::InstanceConfig;
use super::super::validate::{Field, Locate};
use super::settings::Origin;

/// One instance, with what the TOML needs beyond the model.
pub(super) struct Imported {
    pub(super) instance: InstanceConfig,
    /// Where the TOML's `password_file` points.
    pub(super) password_file: PathBuf,
    /// The secret to write there (None: a PASSFILE, referenced as it is).
    pub(super) secret: Option<Vec<u8>>,
    /// Where the checked fields came from.
    pub(super) origins: Origins,
    /// The input it came from.
    pub(super) source: String,
}

/// Where the fields `check_config` may blame were set.
pub(super) struct Origins {
    pub(super) interface: Origin,
    pub(super) vhid: Origin,
    pub(super) addr: Origin,
    pub(super) mcast: Option<Origin>,
}

pub(super) struct Blame<'a>(pub(super) &'a [Imported]);

impl Locate for Blame<'_> {
    fn at(&self, index: usize, field: Field) -> At {
        let o = &self.0[index].origins;
        match field {
            Field::Interface | Field::Label => o.interface.at(),
            Field::Vhid => o.vhid.at(),
            Field::Vips | Field::Vip(_) | Field::Peer(_) => o.addr.at(),
            Field::Mcast => o.mcast.as_ref().unwrap_or(&o.addr).at(),
        }
    }
}
