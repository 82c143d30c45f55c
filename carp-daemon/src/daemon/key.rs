//! The name of an instance.

use crate::config::InstanceConfig;

/// Identifies an instance across reloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// Interface as configured (an alias keeps its label).
    pub interface: String,
    /// Virtual host id.
    pub vhid: u8,
}

impl InstanceKey {
    /// The key of the instance `cfg` configures.
    pub fn of(cfg: &InstanceConfig) -> Self {
        InstanceKey {
            interface: cfg.interface.clone(),
            vhid: cfg.vhid,
        }
    }
}

impl std::fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} vhid {}", self.interface, self.vhid)
    }
}
