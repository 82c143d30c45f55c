//! SIGHUP: reloading the configuration without disturbing what did not change.

use std::collections::BTreeMap;

use super::instance::{InstanceKey, Running};
use super::rate::settings;
use super::{now, Daemon, Reloader};
use crate::chain::Chain;
use crate::config::{Config, InstanceConfig};

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
        let new = match reload() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused, configuration unchanged: {}", Chain(&e));
                let _ = self
                    .notifier
                    .status(&format!("reload refused: {}", Chain(&e)));
                let _ = self.notifier.ready();
                return;
            }
        };
        let mut old: BTreeMap<InstanceKey, Running> = std::mem::take(&mut self.instances)
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        // Unchanged instances stay as they are, in the new order.
        let mut changed: Vec<(InstanceConfig, Option<Running>)> = Vec::new();
        for cfg in &new.instances {
            let key = InstanceKey {
                interface: cfg.interface.clone(),
                vhid: cfg.vhid,
            };
            match old.remove(&key) {
                Some(r) if r.cfg == *cfg => self.instances.push(r),
                previous => changed.push((cfg.clone(), previous)),
            }
        }
        // Removed instances leave first.
        let t = now();
        for (key, mut gone) in old {
            tracing::info!(iface = %key.interface, vhid = key.vhid, "reload: instance removed");
            gone.send_leave(t, &self.vips).await;
            // Not waited for: its scripts run on, on its runner's task.
            drop(gone.finish_leave(&self.vips, &mut self.receive).await);
        }
        if let Err(e) = self.receive.set_settings(settings(&new)) {
            tracing::error!("reload: {}", Chain(&e));
        }
        if new.global.xdp_mode != self.config.global.xdp_mode {
            tracing::warn!("reload: xdp_mode changes take effect at the next restart");
        }
        let mut failed = Vec::new();
        for (cfg, previous) in changed {
            let key = InstanceKey {
                interface: cfg.interface.clone(),
                vhid: cfg.vhid,
            };
            let prepared = match self.prepare_instance(cfg).await {
                Ok(p) => p,
                Err(e) => {
                    match previous {
                        Some(r) => {
                            tracing::error!(
                                "reload: {key}: {}; the instance keeps its previous configuration",
                                Chain(&e)
                            );
                            self.instances.push(r);
                        }
                        None => tracing::error!(
                            "reload: {key}: {}; the instance is not started",
                            Chain(&e)
                        ),
                    }
                    failed.push(format!("{key}: {}", Chain(&e)));
                    continue;
                }
            };
            let mut scripts = None;
            if let Some(mut r) = previous {
                tracing::info!(iface = %key.interface, vhid = key.vhid, "reload: instance changed, replacing it");
                r.send_leave(now(), &self.vips).await;
                drop(r.finish_leave(&self.vips, &mut self.receive).await);
                // The replacement's scripts run after its predecessor's.
                if r.cfg.scripts.timeout_secs == prepared.cfg().scripts.timeout_secs {
                    scripts = Some(r.scripts().clone());
                }
            }
            if let Err(e) = self.commit_instance(prepared, scripts).await {
                tracing::error!("reload: {key}: {}", Chain(&e));
                failed.push(format!("{key}: {}", Chain(&e)));
            }
        }
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
            format!("reload: not applied to {}", failed.join("; "))
        };
        let _ = self.notifier.status(&status);
        let _ = self.notifier.ready();
    }
}
