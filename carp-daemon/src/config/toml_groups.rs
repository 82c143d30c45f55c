//! `[[sync_group]]` tables of the file: their conversion, and where the
//! sync-group fields were written for the errors of
//! [`super::check_sync_groups`].

use std::path::PathBuf;

use super::super::error::At;
use super::super::host;
use super::super::model::{ConfigWarning, SyncGroupConfig};
use super::super::raw::{RawSyncGroup, S};
use super::super::validate::LocateGroups;
use super::{Ctx, InstanceSpans};

/// Where the sync-group fields were written: the members' `sync_group`
/// and each group's `name` (byte offsets).
pub(super) struct GroupSpans<'a> {
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) members: &'a [InstanceSpans],
    pub(super) names: Vec<usize>,
}

impl LocateGroups for GroupSpans<'_> {
    fn member(&self, index: usize) -> At {
        let s = &self.members[index];
        self.ctx.at(
            s.sync_group.unwrap_or(s.table),
            format!("instance[{index}].sync_group"),
        )
    }

    fn group(&self, group: usize) -> At {
        self.ctx
            .at(self.names[group], format!("sync_group[{group}].name"))
    }
}

/// One `[[sync_group]]`: its paths made relative to the file.
pub(super) fn convert_sync_group(
    ctx: &Ctx<'_>,
    index: usize,
    raw: &S<RawSyncGroup>,
    warnings: &mut Vec<ConfigWarning>,
) -> SyncGroupConfig {
    let raw = raw.get_ref();
    let path = |p: &Option<S<PathBuf>>| p.as_ref().map(|p| ctx.path(p.get_ref().clone()));
    let group = SyncGroupConfig {
        name: raw.name.get_ref().clone(),
        upscript: path(&raw.upscript),
        downscript: path(&raw.downscript),
        conntrackd_config: path(&raw.conntrackd_config),
    };
    if ctx.host_checks {
        for (name, raw, path) in [
            ("upscript", &raw.upscript, &group.upscript),
            ("downscript", &raw.downscript, &group.downscript),
        ] {
            if let (Some(raw), Some(path)) = (raw, path) {
                let at = ctx.at(raw.span().start, format!("sync_group[{index}].{name}"));
                host::check_script(path, &at, warnings);
            }
        }
    }
    group
}
