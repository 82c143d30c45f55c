//! Starting an instance in two steps: [`Running::prepare`] does everything
//! that can fail (interface lookup, advert sources, sockets, parameters,
//! health checks) without touching what running instances use;
//! [`Prepared::commit`] then serves the vhid and starts it. A reload
//! replaces a changed instance only once its replacement is prepared. An
//! interface missing at start is not a failure: the instance waits for it
//! in INIT ([`Prepared::waiting`]), as for one that disappears later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::sync::mpsc;

use super::binding::Binding;
use super::demote::{Demote, VipRetry};
use super::instance::Running;
use super::key::InstanceKey;
use super::params::{hmac_keys, new_core};
use super::rules::KernelRules;
use super::DaemonError;
use crate::config::InstanceConfig;
use crate::health::{HealthCheck, HealthMonitor};
use crate::net::link::{device_name, LinkError, LinkInfo, Links};
use crate::proto::instance::Instance;
use crate::proto::Nanos;
use crate::scripts::ScriptRunner;
use crate::xdp::key::VhidKeys;
use crate::xdp::mode::XdpMode;
use crate::xdp::receive::ReceivePath;

/// The interface `cfg` names, as it is now. Fails when there is none of
/// that name, or netlink fails.
pub(super) async fn link_of(cfg: &InstanceConfig, links: &Links) -> Result<LinkInfo, DaemonError> {
    links
        .by_name(&cfg.interface)
        .await
        .map_err(|source| DaemonError::Link {
            key: InstanceKey::of(cfg),
            source: Box::new(source),
        })
}

/// An instance whose every fallible step is done, not yet serving its vhid:
/// dropping it leaves no trace.
pub struct Prepared {
    cfg: InstanceConfig,
    /// The interface; while it is missing, a stand-in with its name and
    /// index 0 (see [`Prepared::waiting`]).
    link: LinkInfo,
    /// `None` while the interface is missing.
    binding: Option<Binding>,
    core: Instance,
    hmac: Option<VhidKeys>,
    health: Option<HealthMonitor>,
}

impl Prepared {
    /// The configuration it was prepared from.
    pub fn cfg(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Serves the vhid in the receive path (HMAC key included), forwards
    /// the health checks' demote to `health_tx`, and starts running.
    /// `scripts`: the script runner to use, so that a replacement's scripts
    /// run after its predecessor's; `None` starts a new one.
    pub fn commit(
        self,
        receive: &mut ReceivePath,
        health_tx: mpsc::Sender<(InstanceKey, u32)>,
        scripts: Option<ScriptRunner>,
    ) -> Result<Running, DaemonError> {
        let Prepared {
            cfg,
            link,
            binding,
            core,
            hmac,
            health,
        } = self;
        let waiting = binding.is_none();
        if !waiting {
            receive.serve_vhid(link.ifindex, cfg.vhid, &cfg.peers)?;
            receive.set_hmac_keys(link.ifindex, cfg.vhid, hmac.as_ref())?;
        }
        let key = InstanceKey::of(&cfg);
        if let Some(monitor) = &health {
            forward_health(monitor, key, health_tx);
        }
        let scripts = scripts.unwrap_or_else(|| {
            ScriptRunner::new(
                cfg.vhid,
                Duration::from_secs(cfg.scripts.timeout_secs.into()),
            )
        });
        if waiting {
            tracing::warn!(
                iface = %cfg.interface, vhid = cfg.vhid,
                "no interface named {:?} yet: the instance waits for it in INIT, \
                 and starts when it appears", link.name
            );
        } else {
            tracing::info!(
                iface = %cfg.interface, vhid = cfg.vhid,
                "instance started on ifindex {}: advbase {} advskew {} preempt {} vips {:?}{}",
                link.ifindex, cfg.advbase_secs, cfg.advskew, cfg.preempt,
                cfg.vips.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                if hmac.is_some() { "" } else { " (HMAC checked in userspace only)" }
            );
        }
        Ok(Running {
            link,
            core,
            provisional_core: waiting,
            io: binding,
            scripts,
            _health: health,
            kernel_rules: KernelRules::default(),
            demote: Demote::default(),
            vip_retry: VipRetry::default(),
            rebind_at: None,
            rebind_warned: None,
            leaving: Vec::new(),
            counter_file: None,
            counter_floor: None,
            state_changes: Vec::new(),
            group_demote: 0,
            announce_gate: None,
            standin: None,
            cfg,
        })
    }
}

impl Running {
    /// Does everything that can fail in starting the instance of `cfg`,
    /// attaching the receive path to its interface in `xdp_mode` if needed,
    /// but serves nothing yet: see [`Prepared::commit`].
    pub async fn prepare(
        cfg: InstanceConfig,
        links: &Links,
        receive: &mut ReceivePath,
        xdp_mode: XdpMode,
        now: Nanos,
        wall_clock_unix_ns: u64,
    ) -> Result<Prepared, DaemonError> {
        let key = InstanceKey::of(&cfg);
        let link = match link_of(&cfg, links).await {
            Err(DaemonError::Link { source, .. })
                if matches!(*source, LinkError::NoSuchName { .. }) =>
            {
                return Prepared::waiting(cfg, &key, now, wall_clock_unix_ns);
            }
            other => other?,
        };
        let (binding, sources) = Binding::open(&cfg, &key, &link, links).await?;
        let core = new_core(&cfg, &key, sources, now, wall_clock_unix_ns)?;
        let health = start_health_checks(&cfg, &key)?;
        // Last: an interface that receives without serving this vhid yet
        // passes its adverts on, so attaching early changes nothing.
        receive.attach(&link.name, link.ifindex, xdp_mode)?;
        Ok(Prepared {
            hmac: hmac_keys(&cfg),
            cfg,
            link,
            binding: Some(binding),
            core,
            health,
        })
    }
}

impl Prepared {
    /// An instance whose interface does not exist (yet): it waits in INIT
    /// as one whose interface went away does, and starts when an interface
    /// of that name appears ([`Running::follow_link`]). Its core is
    /// provisional: the advert sources are not known before the interface
    /// is (no `srcip`: the unspecified address stands in) and it runs no
    /// down script; the first binding replaces it with the real one, which
    /// starts as UCARP does (BACKUP, down script unless neutral). Fails only
    /// on parameters or health checks that are invalid anyway.
    fn waiting(
        cfg: InstanceConfig,
        key: &InstanceKey,
        now: Nanos,
        wall_clock_unix_ns: u64,
    ) -> Result<Prepared, DaemonError> {
        let stand_in = match cfg.vips.first().map(|v| v.addr) {
            Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let sources = vec![cfg.srcip.unwrap_or(stand_in)];
        let provisional = InstanceConfig {
            neutral: true,
            ..cfg.clone()
        };
        let mut core = new_core(&provisional, key, sources, now, wall_clock_unix_ns)?;
        core.handle_link(now, false);
        let health = start_health_checks(&cfg, key)?;
        Ok(Prepared {
            hmac: hmac_keys(&cfg),
            link: LinkInfo {
                ifindex: 0,
                name: device_name(&cfg.interface).to_owned(),
                mac: None,
                carrier: false,
                oper_state: None,
            },
            cfg,
            binding: None,
            core,
            health,
        })
    }
}

/// Starts the health checks of `cfg`, if it has any. Fails when they are
/// invalid.
fn start_health_checks(
    cfg: &InstanceConfig,
    key: &InstanceKey,
) -> Result<Option<HealthMonitor>, DaemonError> {
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
    if checks.is_empty() {
        return Ok(None);
    }
    HealthMonitor::start(cfg.vhid, &cfg.interface, checks)
        .map(Some)
        .map_err(|source| DaemonError::Health {
            key: key.clone(),
            source,
        })
}

/// Forwards every demote change of the health checks of `monitor` to
/// `health_tx`, tagged with `key`, until either side is gone. Cannot fail.
fn forward_health(
    monitor: &HealthMonitor,
    key: InstanceKey,
    health_tx: mpsc::Sender<(InstanceKey, u32)>,
) {
    let mut rx = monitor.subscribe();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let demote = *rx.borrow_and_update();
            if health_tx.send((key.clone(), demote)).await.is_err() {
                break;
            }
        }
    });
}
