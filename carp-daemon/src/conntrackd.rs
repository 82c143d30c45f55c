//! Driving conntrackd on a sync group's transitions.
//!
//! Stand-in with the interface the daemon calls (see `daemon/group.rs`):
//! each call only logs what it stands for. The real driver (commit, flush,
//! resync and bulk update with timeouts, logged and counted) replaces this
//! file.

use std::path::PathBuf;

/// conntrackd, as run with one configuration file.
#[derive(Clone, Debug)]
pub struct Conntrackd {
    /// conntrackd's configuration file (`conntrackd -C`).
    config: PathBuf,
}

impl Conntrackd {
    /// conntrackd run with `config`.
    pub fn new(config: PathBuf) -> Conntrackd {
        Conntrackd { config }
    }

    /// The group became master: commit the external cache, flush, resync,
    /// bulk update. The handle completes when that is done; gratuitous ARPs
    /// wait for it (bounded).
    pub fn on_master(&self) -> tokio::task::JoinHandle<()> {
        let config = self.config.clone();
        tokio::spawn(async move {
            tracing::info!(config = %config.display(), "conntrackd: becoming master");
        })
    }

    /// The group became backup: request a resync (spawned, not awaited).
    pub fn on_backup(&self) {
        tracing::info!(config = %self.config.display(), "conntrackd: becoming backup");
    }

    /// The group is in FAULT or the daemon leaves: shorten the kernel's
    /// timers (spawned, not awaited).
    pub fn on_leave(&self) {
        tracing::info!(config = %self.config.display(), "conntrackd: leaving");
    }
}
