//! One running instance: the core's state machine and the handles that carry
//! out its actions (advert sockets, addresses, announcements, scripts), plus
//! its health checks. Nothing here decides anything: the core does.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use carp_common::constants::AF_INET;
use carp_common::maps::{ReplayKey, ReplayState, REPLAY_REQUIRE_TAG, REPLAY_STRICT};
use tokio::sync::mpsc;

use super::counters::CounterFile;
use super::params::{hmac_key, instance_params};
use super::sender::AdvertSocket;
use super::DaemonError;
use crate::config::InstanceConfig;
use crate::health::{HealthCheck, HealthMonitor};
use crate::net::announce::Announcer;
use crate::net::link::{LinkInfo, Links};
use crate::net::vip::{Vip, VipManager, VipSet};
use crate::proto::action::{Action, Admin, Script, State};
use crate::proto::instance::Instance;
use crate::proto::peer::Sender;
use crate::proto::reject::Reject;
use crate::proto::Nanos;
use crate::scripts::{ScriptJob, ScriptKind, ScriptRunner};
use crate::xdp::receive::ReceivePath;

/// Identifies an instance across reloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// Interface as configured (an alias keeps its label).
    pub interface: String,
    /// Virtual host id.
    pub vhid: u8,
}

impl std::fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} vhid {}", self.interface, self.vhid)
    }
}

/// One instance and its I/O.
pub struct Running {
    /// Its configuration.
    pub cfg: InstanceConfig,
    /// The kernel interface it runs on.
    pub link: LinkInfo,
    /// The state machine.
    pub core: Instance,
    sockets: Vec<AdvertSocket>,
    vips: VipSet,
    announcer: Option<Announcer>,
    scripts: ScriptRunner,
    _health: Option<HealthMonitor>,
    /// Sources whose replay rule the receive path enforces already.
    kernel_rules: HashSet<IpAddr>,
    /// Whether the receive path checks this instance's HMACs.
    pub hmac_in_receive_path: bool,
    /// Where the counter reservation is kept, if anywhere.
    counter_file: Option<CounterFile>,
}

impl Running {
    /// Health-check runs that could not be started (unknown results).
    pub fn health_unknown_runs(&self) -> u64 {
        self._health.as_ref().map_or(0, HealthMonitor::unknown_runs)
    }

    /// Key of this instance.
    pub fn key(&self) -> InstanceKey {
        InstanceKey {
            interface: self.cfg.interface.clone(),
            vhid: self.cfg.vhid,
        }
    }

    /// Sets up an instance on its interface and starts its state machine.
    pub async fn start(
        cfg: InstanceConfig,
        links: &Links,
        receive: &mut ReceivePath,
        now: Nanos,
        wall_clock_unix_ns: u64,
        health_tx: mpsc::Sender<(InstanceKey, u32)>,
    ) -> Result<Running, DaemonError> {
        let key = InstanceKey {
            interface: cfg.interface.clone(),
            vhid: cfg.vhid,
        };
        let link = links
            .by_name(&cfg.interface)
            .await
            .map_err(|source| DaemonError::Link {
                key: key.clone(),
                source: Box::new(source),
            })?;
        let mut sources = Vec::new();
        let wants_v4 = cfg.vips.iter().any(|v| v.addr.is_ipv4());
        let wants_v6 = cfg.vips.iter().any(|v| v.addr.is_ipv6());
        let link_err = |source| DaemonError::Link {
            key: key.clone(),
            source: Box::new(source),
        };
        match cfg.srcip {
            Some(ip) => sources.push(ip),
            None => {
                if wants_v4 {
                    match links.first_ipv4(link.ifindex).await.map_err(link_err)? {
                        Some(a) => sources.push(IpAddr::V4(a)),
                        None => {
                            return Err(DaemonError::NoSource {
                                key,
                                family: "IPv4",
                            })
                        }
                    }
                }
            }
        }
        if wants_v6 && !sources.iter().any(IpAddr::is_ipv6) {
            match links
                .link_local_ipv6(link.ifindex)
                .await
                .map_err(link_err)?
            {
                Some(a) => sources.push(IpAddr::V6(a)),
                None => {
                    return Err(DaemonError::NoSource {
                        key,
                        family: "IPv6 link-local",
                    })
                }
            }
        }
        let mut sockets = Vec::new();
        for src in &sources {
            sockets.push(
                AdvertSocket::open(
                    &link.name,
                    link.ifindex,
                    *src,
                    &cfg.unicast_peers,
                    cfg.mcast,
                )
                .map_err(|source| DaemonError::Send { source })?,
            );
        }
        let advert_ms = u64::from(cfg.advbase_secs) * 1000 + u64::from(cfg.advskew) * 1000 / 256;
        let params = instance_params(&cfg, sources, advert_ms.max(1))?;
        let announcer = match link.mac {
            Some(mac) => Some(Announcer::open(link.ifindex, mac).map_err(|source| {
                DaemonError::Announce {
                    key: key.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let hmac = hmac_key(&cfg);
        receive.serve_vhid(link.ifindex, cfg.vhid)?;
        receive.set_hmac_key(link.ifindex, cfg.vhid, hmac.as_ref())?;
        let checks: Vec<HealthCheck> = cfg
            .health_checks
            .iter()
            .map(|h| {
                HealthCheck::new(
                    h.command.clone(),
                    Duration::from_secs(h.interval_secs.into()),
                    Duration::from_secs(h.timeout_secs.into()),
                    h.weight,
                )
            })
            .collect();
        let health = if checks.is_empty() {
            None
        } else {
            let monitor =
                HealthMonitor::start(cfg.vhid, &cfg.interface, checks).map_err(|source| {
                    DaemonError::Health {
                        key: key.clone(),
                        source,
                    }
                })?;
            let mut rx = monitor.subscribe();
            let k = key.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let demote = *rx.borrow_and_update();
                    if health_tx.send((k.clone(), demote)).await.is_err() {
                        break;
                    }
                }
            });
            Some(monitor)
        };
        let core =
            Instance::new(params, now, wall_clock_unix_ns).map_err(|source| DaemonError::Core {
                key: key.clone(),
                source,
            })?;
        let scripts = ScriptRunner::new(
            cfg.vhid,
            Duration::from_secs(cfg.scripts.timeout_secs.into()),
        );
        tracing::info!(
            iface = %cfg.interface, vhid = cfg.vhid,
            "instance started: advbase {} advskew {} preempt {} vips {:?}{}",
            cfg.advbase_secs, cfg.advskew, cfg.preempt,
            cfg.vips.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            if hmac.is_some() { "" } else { " (HMAC checked in userspace only)" }
        );
        Ok(Running {
            vips: VipSet::new(link.ifindex),
            link,
            core,
            sockets,
            announcer,
            scripts,
            _health: health,
            kernel_rules: HashSet::new(),
            hmac_in_receive_path: hmac.is_some(),
            counter_file: None,
            cfg,
        })
    }

    /// Keeps the counter reservation in `file` and starts above the one it
    /// holds. Call before the first advert. Without a readable file the
    /// counter follows the wall clock alone, as logged.
    pub fn use_counter_file(&mut self, file: CounterFile) {
        match file.load() {
            Ok(Some(floor)) => self.core.raise_counter_floor(floor),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{e}; counters follow the wall clock only")
            }
        }
        self.counter_file = Some(file);
    }

    /// Hands a received advert to the core; on acceptance, lets the receive
    /// path enforce the source's replay rule from now on.
    pub fn handle_advert(
        &mut self,
        now: Nanos,
        sender: Sender,
        header: &carp_common::header::CarpHeader,
        receive: &mut ReceivePath,
    ) -> Result<(), Reject> {
        self.core.handle_advert(now, sender, header)?;
        let src = sender.addr;
        if self.hmac_in_receive_path && !self.kernel_rules.contains(&src) {
            if let Some(rule) = self.core.replay_rule(src) {
                let (family, addr) = match src {
                    IpAddr::V4(a) => {
                        let mut b = [0u8; 16];
                        b[..4].copy_from_slice(&a.octets());
                        (AF_INET, b)
                    }
                    IpAddr::V6(a) => (carp_common::constants::AF_INET6, a.octets()),
                };
                let key = ReplayKey {
                    ifindex: self.link.ifindex,
                    vhid: u16::from(self.cfg.vhid),
                    family,
                    addr,
                };
                let flags = REPLAY_STRICT
                    | if rule.require_tag {
                        REPLAY_REQUIRE_TAG
                    } else {
                        0
                    };
                let state = ReplayState {
                    last_counter: rule.last,
                    flags,
                    _pad: 0,
                };
                match receive.set_replay_rule(key, state) {
                    Ok(()) => {
                        self.kernel_rules.insert(src);
                    }
                    Err(e) => {
                        tracing::warn!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{e}")
                    }
                }
            }
        }
        Ok(())
    }

    /// Carries out every action the core has queued, in order. `exiting`
    /// applies UCARP's `-z` rule to down scripts.
    pub async fn carry_out(&mut self, vips: &VipManager, exiting: bool) {
        while let Some(action) = self.core.poll_action() {
            self.carry_out_one(action, vips, exiting).await;
        }
    }

    async fn carry_out_one(&mut self, action: Action, mgr: &VipManager, exiting: bool) {
        let (iface, vhid) = (self.cfg.interface.clone(), self.cfg.vhid);
        match action {
            Action::SendAdvert(advert) => {
                for s in &self.sockets {
                    if let Err(e) = s.send(&advert) {
                        tracing::warn!(iface = %iface, vhid, "{e}");
                    }
                }
            }
            Action::AddVips => {
                for v in &self.cfg.vips {
                    let mut vip = Vip::host(v.addr).with_prefix(v.prefix_len);
                    if let Some(label) = &self.cfg.label {
                        vip = vip.with_label(label.clone());
                    }
                    if let Err(e) = self.vips.add(mgr, vip).await {
                        tracing::error!(iface = %iface, vhid, "{e}");
                    }
                }
            }
            Action::RemoveVips => {
                if let Err(e) = self.vips.remove_all(mgr).await {
                    tracing::error!(iface = %iface, vhid, "{e}");
                }
                // Addresses of ours left by a crashed run, or added by hand.
                let configured: Vec<Vip> = self
                    .cfg
                    .vips
                    .iter()
                    .map(|v| Vip::host(v.addr).with_prefix(v.prefix_len))
                    .collect();
                match mgr.remove_stale(self.link.ifindex, &configured).await {
                    Ok(removed) if !removed.is_empty() => {
                        tracing::info!(iface = %iface, vhid, "removed addresses {removed:?}")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(iface = %iface, vhid, "{e}"),
                }
            }
            Action::Announce => {
                if let Some(a) = &self.announcer {
                    let vips: Vec<IpAddr> = self.cfg.vips.iter().map(|v| v.addr).collect();
                    if let Err(e) = a.announce(&vips, 1, Duration::ZERO).await {
                        tracing::warn!(iface = %iface, vhid, "{e}");
                    }
                }
            }
            Action::RunScript(script) => {
                // UCARP runs no down script at exit unless -z.
                if exiting && script == Script::Down && !self.cfg.shutdown_on_exit {
                    return;
                }
                self.run_script(script);
            }
            Action::PersistCounter(value) => {
                // A failed write is logged, not fatal: counters still follow
                // the wall clock, as they did before reservations existed.
                if let Some(file) = &self.counter_file {
                    if let Err(e) = file.store(value) {
                        tracing::warn!(iface = %iface, vhid, "{e}");
                    }
                }
            }
            Action::StateChanged { from, to, reason } => {
                tracing::info!(iface = %iface, vhid, "{from:?} -> {to:?} ({reason:?})");
            }
        }
    }

    /// Submits the up or down script, if configured; does not wait.
    pub fn run_script(&self, script: Script) -> Option<crate::scripts::Done> {
        let (kind, path) = match script {
            Script::Up => (ScriptKind::Up, self.cfg.scripts.upscript.clone()?),
            Script::Down => (ScriptKind::Down, self.cfg.scripts.downscript.clone()?),
        };
        let job = ScriptJob {
            kind,
            script: path,
            vhid: self.cfg.vhid,
            interface: self.cfg.vip_label().to_string(),
            vips: self.cfg.vips.iter().map(|v| v.addr).collect(),
            xparam: self.cfg.scripts.xparam.clone(),
        };
        match self.scripts.submit(job) {
            Ok(done) => Some(done),
            Err(e) => {
                tracing::error!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{e}");
                None
            }
        }
    }

    /// Leaves for good: the leave advert if master, addresses removed, the
    /// down script per `-z`. Returns once the scripts have finished (or timed out).
    pub async fn shut_down(&mut self, now: Nanos, mgr: &VipManager, receive: &mut ReceivePath) {
        let was_master = self.core.state() == State::Master;
        self.core.handle_admin(now, Admin::Shutdown);
        let mut pending = Vec::new();
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::RunScript(Script::Down) if !self.cfg.shutdown_on_exit => {}
                Action::RunScript(s) => pending.extend(self.run_script(s)),
                other => self.carry_out_one(other, mgr, true).await,
            }
        }
        // UCARP's -z runs the down script at exit whatever the state.
        if self.cfg.shutdown_on_exit && !was_master {
            pending.extend(self.run_script(Script::Down));
        }
        if let Err(e) = self.vips.remove_all(mgr).await {
            tracing::error!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{e}");
        }
        let _ = receive.set_hmac_key(self.link.ifindex, self.cfg.vhid, None);
        let _ = receive.unserve_vhid(self.link.ifindex, self.cfg.vhid);
        for done in pending {
            let _ = done.await;
        }
    }
}
