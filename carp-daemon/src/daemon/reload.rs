//! SIGHUP: reloading the configuration without disturbing what did not change.

use std::collections::BTreeMap;

use super::instance::{InstanceKey, Running};
use super::rate::settings;
use super::{now, Daemon, Reloader};
use crate::config::Config;

impl Daemon {
    /// SIGHUP: read the configuration again; instances whose configuration
    /// is unchanged are not touched (no address flaps), removed ones leave,
    /// changed ones restart, new ones start. A configuration that fails to
    /// load or validate changes nothing.
    pub(super) async fn on_reload(&mut self, reload: &Reloader) {
        let _ = self.notifier.reloading();
        let new = match reload() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused, configuration unchanged: {e}");
                let _ = self.notifier.ready();
                return;
            }
        };
        let old: BTreeMap<InstanceKey, usize> = self
            .instances
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key(), i))
            .collect();
        let mut keep = Vec::new();
        let mut remaining: Vec<Option<Running>> = std::mem::take(&mut self.instances)
            .into_iter()
            .map(Some)
            .collect();
        let mut to_start = Vec::new();
        for cfg in &new.instances {
            let key = InstanceKey {
                interface: cfg.interface.clone(),
                vhid: cfg.vhid,
            };
            match old
                .get(&key)
                .and_then(|i| remaining[*i].take_if(|r| r.cfg == *cfg))
            {
                Some(r) => keep.push(r),
                None => to_start.push(cfg.clone()),
            }
        }
        let t = now();
        for mut gone in remaining.into_iter().flatten() {
            tracing::info!(iface = %gone.cfg.interface, vhid = gone.cfg.vhid, "reload: instance removed or changed");
            gone.shut_down(t, &self.vips, &mut self.receive).await;
        }
        self.instances = keep;
        if let Err(e) = self.receive.set_settings(settings(&new)) {
            tracing::error!("reload: {e}");
        }
        if new.global.xdp_mode != self.config.global.xdp_mode {
            tracing::warn!("reload: xdp_mode changes take effect at the next restart");
        }
        for cfg in to_start {
            let key = InstanceKey {
                interface: cfg.interface.clone(),
                vhid: cfg.vhid,
            };
            if let Ok(link) = self.links.by_name(&cfg.interface).await {
                if let Err(e) =
                    self.receive
                        .attach(&link.name, link.ifindex, self.config.global.xdp_mode)
                {
                    tracing::error!("reload: {key}: {e}");
                    continue;
                }
            }
            if let Err(e) = self.start_instance(cfg).await {
                tracing::error!("reload: {key}: {e}");
            }
        }
        self.config = Config {
            instances: self.instances.iter().map(|r| r.cfg.clone()).collect(),
            ..new
        };
        if let Err(e) = self.watch_links().await {
            tracing::error!("reload: {e}");
        }
        tracing::info!("configuration reloaded: {} instances", self.instances.len());
        let _ = self.notifier.ready();
    }
}
