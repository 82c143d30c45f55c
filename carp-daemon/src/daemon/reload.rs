//! SIGHUP: reloading the configuration without disturbing what did not change.

use std::collections::BTreeMap;

use super::instance::Running;
use super::key::InstanceKey;
use super::rate::settings;
use super::{now, Daemon, DaemonError, Reloader};
use crate::chain::Chain;
use crate::config::{Config, InstanceConfig};

/// A changed instance of a reload: its new configuration and the instance
/// it replaces (`None`: a new one).
type Change = (InstanceConfig, Option<Running>);

/// An instance a reload could not apply to, and why.
#[derive(Debug, thiserror::Error)]
#[error("{key}")]
struct NotApplied {
    /// The instance.
    key: InstanceKey,
    /// Why its new configuration could not be applied.
    #[source]
    source: DaemonError,
}

impl Daemon {
    /// SIGHUP: read the configuration again; instances whose configuration
    /// is unchanged are not touched (no address flaps), removed ones leave,
    /// new ones start, and changed ones are replaced: the replacement is
    /// prepared first (interface, sources, sockets, parameters, health
    /// checks) and only when that succeeded does the old instance leave and
    /// the new one start. An instance whose replacement cannot be prepared
    /// keeps running with its old configuration, and the error is logged
    /// and reported to systemd (`STATUS=`). A configuration that fails to
    /// load or validate changes nothing.
    pub(super) async fn on_reload(&mut self, reload: &Reloader) {
        let _ = self.notifier.reloading();
        let Some(new) = self.reread(reload) else {
            return;
        };
        let (changed, removed) = self.keep_unchanged(&new);
        self.leave_removed(removed).await;
        if let Err(e) = self.receive.set_settings(settings(&new)) {
            tracing::error!("reload: {}", Chain(&e));
        }
        if new.global.xdp_mode != self.config.global.xdp_mode {
            tracing::warn!("reload: xdp_mode changes take effect at the next restart");
        }
        let mut failed = Vec::new();
        for change in changed {
            if let Err(e) = self.replace(change).await {
                failed.push(e);
            }
        }
        self.settle(new, &failed).await;
    }

    /// Reads the configuration again. A failure is logged and reported to
    /// systemd, and gives `None`: nothing changes.
    fn reread(&mut self, reload: &Reloader) -> Option<Config> {
        match reload() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("reload refused, configuration unchanged: {}", Chain(&e));
                let _ = self
                    .notifier
                    .status(&format!("reload refused: {}", Chain(&e)));
                let _ = self.notifier.ready();
                None
            }
        }
    }

    /// Keeps the instances whose configuration `new` leaves unchanged, in
    /// its order; returns the changed ones (with the instance each
    /// replaces, if any) and the removed ones. Cannot fail.
    fn keep_unchanged(&mut self, new: &Config) -> (Vec<Change>, BTreeMap<InstanceKey, Running>) {
        let mut old: BTreeMap<InstanceKey, Running> = std::mem::take(&mut self.instances)
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let mut changed = Vec::new();
        for cfg in &new.instances {
            match old.remove(&InstanceKey::of(cfg)) {
                Some(r) if r.cfg == *cfg => self.instances.push(r),
                previous => changed.push((cfg.clone(), previous)),
            }
        }
        (changed, old)
    }

    /// Removed instances leave, first. Their scripts are not waited for:
    /// they run on, on their runners' tasks. Cannot fail.
    async fn leave_removed(&mut self, removed: BTreeMap<InstanceKey, Running>) {
        let t = now();
        for (key, mut gone) in removed {
            tracing::info!(iface = %key.interface, vhid = key.vhid, "reload: instance removed");
            gone.send_leave(t, &self.vips).await;
            drop(gone.finish_leave(&self.vips, &mut self.receive).await);
        }
    }

    /// Starts a changed or new instance: prepared first, and only once that
    /// succeeded does the instance it replaces leave. On failure (logged),
    /// the previous instance keeps running as it was, and the error comes
    /// back for systemd's status.
    async fn replace(&mut self, (cfg, previous): Change) -> Result<(), NotApplied> {
        let key = InstanceKey::of(&cfg);
        let prepared = match self.prepare_instance(cfg).await {
            Ok(p) => p,
            Err(source) => {
                let e = NotApplied { key, source };
                match previous {
                    Some(r) => {
                        tracing::error!(
                            "reload: {}; the instance keeps its previous configuration",
                            Chain(&e)
                        );
                        self.instances.push(r);
                    }
                    None => tracing::error!("reload: {}; the instance is not started", Chain(&e)),
                }
                return Err(e);
            }
        };
        let mut scripts = None;
        let mut carried = None;
        if let Some(mut r) = previous {
            tracing::info!(iface = %key.interface, vhid = key.vhid, "reload: instance changed, replacing it");
            r.send_leave(now(), &self.vips).await;
            drop(r.finish_leave(&self.vips, &mut self.receive).await);
            // Its counters go on above the predecessor's, whether or not its
            // last reservation is written yet.
            carried = r.counter_carried();
            // The replacement's scripts run after its predecessor's.
            if r.cfg.scripts.timeout_secs == prepared.cfg().scripts.timeout_secs {
                scripts = Some(r.scripts().clone());
            }
        }
        match self.commit_instance(prepared, scripts, carried).await {
            Ok(_) => Ok(()),
            Err(source) => {
                let e = NotApplied { key, source };
                tracing::error!("reload: {}", Chain(&e));
                Err(e)
            }
        }
    }

    /// After the instances changed: puts them in the order of `new`, keeps
    /// it as the configuration, watches the interface names again, detaches
    /// unused interfaces and reports to systemd (`failed`: the instances
    /// the reload could not apply to). A failure to watch is logged.
    async fn settle(&mut self, new: Config, failed: &[NotApplied]) {
        // Configuration order, as status reports them.
        let position = |r: &Running| {
            new.instances
                .iter()
                .position(|c| c.interface == r.cfg.interface && c.vhid == r.cfg.vhid)
        };
        self.instances.sort_by_key(|r| position(r));
        self.config = Config {
            instances: self.instances.iter().map(|r| r.cfg.clone()).collect(),
            ..new
        };
        if let Err(e) = self.watch_links().await {
            tracing::error!("reload: {}", Chain(&e));
        }
        self.detach_unused();
        tracing::info!("configuration reloaded: {} instances", self.instances.len());
        let status = if failed.is_empty() {
            format!("configuration reloaded: {} instances", self.instances.len())
        } else {
            let failed: Vec<String> = failed.iter().map(|e| Chain(e).to_string()).collect();
            format!("reload: not applied to {}", failed.join("; "))
        };
        let _ = self.notifier.status(&status);
        let _ = self.notifier.ready();
    }
}
