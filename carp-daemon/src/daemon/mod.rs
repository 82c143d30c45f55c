//! The daemon: a thin loop around the protocol core.
//!
//! ```text
//!  XDP ring buffer / fallback socket ─┐
//!  next core deadline (timer) ────────┤
//!  netlink link events (by name) ─────┼─► select! ─► Instance::handle_* ─► actions ─► sockets,
//!  retries due (rebind, VIP add) ─────┤                                             netlink,
//!  health-check demote changes ───────┤
//!  signals (TERM INT HUP USR1 USR2) ──┤                                             scripts
//!  control socket requests ───────────┤
//!  counter reservations read/written ─┘  (by a thread of their own: reservations)
//! ```
//!
//! Every decision is the core's ([`crate::proto::instance::Instance`]); this
//! module reads the clock, waits, and carries out what the core returns.
//! The life cycle around the core (an instance following its interface
//! name, reloads that prepare before they replace, leaving, VIP retries and
//! the demote sources) is described in [`instance`].
//!
//! Liveness is judged by when the kernel saw an advert, not by when the
//! daemon got round to it: adverts go to the core with their kernel
//! timestamp (CLOCK_MONOTONIC, the core's clock), and before acting on an
//! expired timer the daemon first hands the core every advert already
//! waiting in the receive path, oldest first. A daemon that was stopped
//! (SIGSTOP, a debugger, a VM pause) or starved of CPU past a master-down
//! deadline therefore stays BACKUP when the master's adverts kept arriving
//! meanwhile, instead of racing its timer against the queued adverts.

mod binding;
pub mod counters;
pub mod demote;
mod follow;
pub mod group;
pub mod instance;
mod key;
pub mod params;
mod peers_state;
mod prepare;
pub mod rate;
mod reload;
pub mod reservations;
mod rules;
pub mod status;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carp_common::event::EVENT_REPLAY_RECORDED;
use carp_common::header::CarpHeader;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::chain::Chain;
use crate::clock::monotonic_ns;
use crate::config::Config;
use crate::control::{ControlRequest, ControlServer};
use crate::metrics::MetricsServer;
use crate::net::link::{device_name, LinkEvent, Links};
use crate::net::sender::SendError;
use crate::net::vip::VipManager;
use crate::notify::Notifier;
use crate::proto::action::Admin;
use crate::proto::Nanos;
use crate::xdp::receive::{ReceiveError, ReceivePath};
use instance::Running;
pub use key::InstanceKey;
use rate::settings;

/// Failures that stop the daemon (or a reload).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The receive path could not be set up.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// An interface could not be resolved or watched.
    #[error("{key}")]
    Link {
        /// The instance.
        key: InstanceKey,
        /// The netlink error (boxed: it is large).
        #[source]
        source: Box<crate::net::link::LinkError>,
    },
    /// Netlink could not be opened or watched.
    #[error(transparent)]
    Netlink(Box<crate::net::link::LinkError>),
    /// The address manager could not be opened.
    #[error(transparent)]
    Vip(#[from] crate::net::vip::VipError),
    /// No source address for adverts.
    #[error("{key}: the interface has no {family} address to send adverts from; set srcip")]
    NoSource {
        /// The instance.
        key: InstanceKey,
        /// Which family is missing.
        family: &'static str,
    },
    /// An advert socket could not be opened.
    #[error(transparent)]
    Send {
        /// The socket error.
        #[from]
        source: SendError,
    },
    /// The announcement socket could not be opened.
    #[error("{key}")]
    Announce {
        /// The instance.
        key: InstanceKey,
        /// The socket error.
        #[source]
        source: crate::net::announce::AnnounceError,
    },
    /// The virtual MAC's macvlan could not be made or removed.
    #[error("{key}")]
    Vmac {
        /// The instance.
        key: InstanceKey,
        /// The macvlan error (boxed: rtnetlink's error is large).
        #[source]
        source: Box<crate::net::vmac::VmacError>,
    },
    /// Health checks are invalid.
    #[error("{key}")]
    Health {
        /// The instance.
        key: InstanceKey,
        /// The error.
        #[source]
        source: crate::health::HealthError,
    },
    /// The core refused the parameters.
    #[error("{key}")]
    Core {
        /// The instance.
        key: InstanceKey,
        /// The core's error.
        #[source]
        source: crate::proto::params::ParamsError,
    },
    /// The control socket could not be set up.
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The counter reservation writer could not be started.
    #[error(transparent)]
    Reservations(#[from] reservations::ReservationsError),
    /// The deadline timer could not be set up or armed.
    #[error(transparent)]
    Timer(#[from] crate::timer::TimerError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::net::link::LinkError> for DaemonError {
    fn from(e: crate::net::link::LinkError) -> Self {
        DaemonError::Netlink(Box::new(e))
    }
}

/// Monotonic time as the core sees it.
fn now() -> Nanos {
    Nanos(monotonic_ns())
}

/// Most adverts taken from the receive path before one timeout is handled:
/// more than the ring buffer can hold, so a drain empties it, while a flood
/// that refills it as fast as it is read cannot hold the timers back.
const DRAIN_LIMIT: usize = 4096;

fn wall_clock_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// At start, how long the daemon waits for the counter files to be read
/// before its loop runs (a file read later still raises the floor).
const COUNTER_LOAD_WAIT: Duration = Duration::from_secs(2);

/// At exit, after the leave, how long the daemon waits for reservations
/// still being written.
const COUNTER_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// At exit, how long past the longest script timeout the daemon waits, so
/// that a script killed at its timeout is reaped and logged before the exit.
pub const SCRIPT_KILL_GRACE: Duration = Duration::from_secs(1);

/// Where a reload reads the configuration again.
pub type Reloader = Box<dyn Fn() -> Result<Config, crate::config::ConfigError> + Send>;

/// The running daemon's state, owned by the loop.
pub struct Daemon {
    config: Config,
    instances: Vec<Running>,
    /// The sync groups over `instances`.
    groups: group::Groups,
    receive: ReceivePath,
    links: Links,
    vips: VipManager,
    health_tx: mpsc::Sender<(InstanceKey, u32)>,
    health_rx: mpsc::Receiver<(InstanceKey, u32)>,
    link_rx: Option<mpsc::Receiver<LinkEvent>>,
    notifier: Notifier,
    started: std::time::Instant,
    control_rx: mpsc::Receiver<ControlRequest>,
    /// The counter reservation files, read and written off the loop.
    reservations: reservations::Reservations,
    _control: ControlServer,
    _metrics: Option<MetricsServer>,
    /// What the instances know of their peers' counters, across restarts.
    peers: peers_state::PeerMemory,
}

impl Daemon {
    /// Sets up the receive path and every instance.
    pub async fn start(config: Config) -> Result<Daemon, DaemonError> {
        crate::standin::init(config.global.realtime);
        let links = Links::new()?;
        let vips = VipManager::new()?;
        let ifaces = interfaces_of(&config, &links).await?;
        // Sockets first: a second daemon on the same socket or metrics
        // address fails here, before it has touched any interface.
        let (control_tx, control_rx) = mpsc::channel(16);
        let (control, metrics) = bind_endpoints(&config, control_tx)?;
        let receive = ReceivePath::open(&ifaces, config.global.xdp_mode, settings(&config))?;
        for i in receive.interfaces() {
            tracing::info!(iface = %i.name, "receiving adverts in {} mode", i.reception.name());
        }
        let notifier = Notifier::from_env().unwrap_or_else(|e| {
            tracing::warn!("systemd notification disabled: {}", Chain(&e));
            Notifier::disabled()
        });
        let (health_tx, health_rx) = mpsc::channel(64);
        let reservations = reservations::Reservations::start()?;
        let mut daemon = Daemon {
            config: Config {
                instances: Vec::new(),
                ..config.clone()
            },
            instances: Vec::new(),
            groups: group::Groups::default(),
            receive,
            links,
            vips,
            health_tx,
            health_rx,
            link_rx: None,
            notifier,
            started: std::time::Instant::now(),
            control_rx,
            reservations,
            _control: control,
            _metrics: metrics,
            peers: peers_state::PeerMemory::open(&config.global.state_dir),
        };
        for inst in config.instances.clone() {
            daemon.start_instance(inst).await?;
        }
        daemon.await_counter_floors().await;
        daemon.groups = group::Groups::build(
            &config.sync_groups,
            &mut daemon.instances,
            group::Groups::default(),
            &daemon.vips,
        )
        .await;
        daemon.config = config;
        daemon.watch_links().await?;
        Ok(daemon)
    }

    async fn start_instance(
        &mut self,
        cfg: crate::config::InstanceConfig,
    ) -> Result<(), DaemonError> {
        let prepared = self.prepare_instance(cfg).await?;
        self.commit_instance(prepared, None, None).await.map(|_| ())
    }

    /// Everything that can fail in starting an instance, with no effect on
    /// the running ones (see [`Running::prepare`]).
    async fn prepare_instance(
        &mut self,
        cfg: crate::config::InstanceConfig,
    ) -> Result<prepare::Prepared, DaemonError> {
        Running::prepare(
            cfg,
            &self.links,
            &mut self.receive,
            self.config.global.xdp_mode,
            now(),
            wall_clock_unix_ns(),
        )
        .await
    }

    /// Starts a prepared instance, its counters above `carried` (those of
    /// the instance it replaces); returns its key.
    async fn commit_instance(
        &mut self,
        prepared: prepare::Prepared,
        scripts: Option<crate::scripts::ScriptRunner>,
        carried: Option<u64>,
    ) -> Result<InstanceKey, DaemonError> {
        let mut running = prepared.commit(&mut self.receive, self.health_tx.clone(), scripts)?;
        let file = counters::CounterFile::new(
            &self.config.global.state_dir,
            &running.cfg.interface,
            running.cfg.vhid,
        );
        running.use_counter_file(self.reservations.reserver(file), carried);
        let known = self.peers.recall(&running.cfg.interface, running.cfg.vhid);
        running.core.remember_counters(known);
        running.carry_out(&self.vips).await;
        let key = running.key();
        self.instances.push(running);
        Ok(key)
    }

    /// Watches the interface names of the instances (not their indexes: an
    /// instance follows its interface across deletion and re-creation).
    async fn watch_links(&mut self) -> Result<(), DaemonError> {
        let mut watched: Vec<String> = self
            .instances
            .iter()
            .map(|r| device_name(&r.cfg.interface).to_string())
            .collect();
        watched.sort_unstable();
        watched.dedup();
        self.link_rx = Some(crate::net::link::watch(&watched).await?);
        Ok(())
    }

    /// The next time an instance has a retry due.
    fn next_retry(&self) -> Option<Nanos> {
        self.instances.iter().filter_map(Running::retry_due).min()
    }

    /// Retries that are due: binding to a re-created interface, VIP adds.
    async fn on_retry(&mut self) {
        let t = now();
        let mode = self.config.global.xdp_mode;
        for r in &mut self.instances {
            if r.retry_due().is_some_and(|at| at <= t) {
                r.on_retry(t, &self.links, &mut self.receive, &self.vips, mode)
                    .await;
            }
        }
        self.detach_unused();
    }

    /// Stops receiving on interfaces no instance is bound to any more
    /// (deleted ones, or the previous index of a re-created one).
    fn detach_unused(&mut self) {
        let unused: Vec<u32> = self
            .receive
            .interfaces()
            .iter()
            .map(|i| i.ifindex)
            .filter(|i| !self.instances.iter().any(|r| r.ifindex() == Some(*i)))
            .collect();
        for ifindex in unused {
            tracing::info!(
                ifindex,
                "no instance on this interface any more: receive path detached"
            );
            self.receive.detach(ifindex);
        }
    }

    /// Runs until SIGTERM or SIGINT, then leaves gracefully.
    pub async fn run(mut self, reload: Reloader) -> Result<(), DaemonError> {
        let sig = |kind| signal(kind).map_err(|source| DaemonError::Signals { source });
        let (mut term, mut int, mut hup) = (
            sig(SignalKind::terminate())?,
            sig(SignalKind::interrupt())?,
            sig(SignalKind::hangup())?,
        );
        let (mut usr1, mut usr2) = (
            sig(SignalKind::user_defined1())?,
            sig(SignalKind::user_defined2())?,
        );
        let mut guard =
            crate::pace::LoopGuard::new().map_err(|source| DaemonError::Signals { source })?;
        // The core's deadlines to the nanosecond (see `crate::timer`).
        let timer = crate::timer::Deadline::new()?;
        let mut lateness =
            crate::lateness::Lateness::new(self.config.global.realtime.auto, guard.is_real_time());
        let _ = self.notifier.ready();
        let mut save_peers = tokio::time::interval(peers_state::SAVE_EVERY);
        save_peers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A loop that never sleeps would die of RLIMIT_RTTIME when
            // real-time (see `crate::pace`).
            guard.tick();
            let deadline = self.next_deadline();
            let retry = self.next_retry();
            // Cheap (a few instances), and follows reloads.
            lateness.set_intervals(
                self.instances
                    .iter()
                    .map(|r| r.core.params().advert_interval()),
            );
            // Not `biased;`: the timer branch empties the receive path itself
            // (see `on_timeout`), so either order is right, and a receive
            // path that is always ready cannot starve the other branches.
            tokio::select! {
                ev = self.receive.recv() => match ev {
                    Ok(ev) => self.on_advert(&ev).await,
                    Err(e) => tracing::error!("receive path: {}", Chain(&e)),
                },
                fired = timer.sleep_until(deadline) => {
                    if let Err(e) = fired {
                        // Not expected once armed; the deadline is handled
                        // all the same, a little early at worst.
                        tracing::error!("{}", Chain(&e));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if let Some(due) = deadline {
                        // How late the loop runs (see `crate::lateness`).
                        crate::lateness::on_wakeup(&mut lateness, due, now(), &mut guard);
                    }
                    self.on_timeout().await;
                }
                Some(ev) = recv_opt(self.link_rx.as_mut()) => self.on_link(ev).await,
                () = sleep_until(retry) => self.on_retry().await,
                Some((key, demote)) = self.health_rx.recv() => self.on_health(key, demote).await,
                Some(request) = self.control_rx.recv() => self.on_control(request),
                Some(done) = self.reservations.done() => self.on_reservation(done),
                _ = save_peers.tick() => self.peers.save(self.known_counters()),
                _ = usr1.recv() => self.log_states(),
                _ = usr2.recv() => self.on_usr2().await,
                _ = hup.recv() => self.on_reload(&reload).await,
                _ = term.recv() => break,
                _ = int.recv() => break,
                () = guard.watch() => {}
            }
            // The members of a sync group move together (see `group.rs`).
            self.groups.settle(&mut self.instances, &self.vips).await;
        }
        self.shut_down().await;
        Ok(())
    }

    fn next_deadline(&self) -> Option<Nanos> {
        self.instances
            .iter()
            .filter_map(|r| r.core.poll_timeout())
            .min()
    }

    /// One received advert, handed to its instance as seen when the kernel
    /// saw it (never later than now).
    async fn on_advert(&mut self, ev: &carp_common::event::AdvertEvent) {
        let header = CarpHeader::from_bytes(&ev.carp);
        let src = ev.source();
        let sender = crate::proto::Sender {
            addr: src,
            mac: ev.src_mac,
        };
        let t = now();
        let seen = Nanos(ev.timestamp_ns.min(t.0));
        let Some(running) = self
            .instances
            .iter_mut()
            .find(|r| r.link.ifindex == ev.ifindex && r.cfg.vhid == header.vhid)
        else {
            return;
        };
        let recorded = ev.flags & EVENT_REPLAY_RECORDED != 0;
        if let Err(reject) =
            running.handle_advert(seen, sender, &header, recorded, &mut self.receive)
        {
            tracing::debug!(iface = %running.cfg.interface, vhid = header.vhid, "advert from {src} rejected: {reject}");
        }
        if let Some(latency) = t.0.checked_sub(ev.timestamp_ns) {
            tracing::trace!(
                vhid = header.vhid,
                "advert from {src} handled {latency} ns after the kernel saw it"
            );
        }
        running.carry_out(&self.vips).await;
    }

    /// A deadline passed. The adverts already waiting go first: one the
    /// kernel saw before a master-down deadline keeps the instance BACKUP,
    /// however late the daemon runs. The time is read before the drain, so
    /// that being preempted between the drain and the clock read cannot
    /// leave out an advert the kernel saw before that time.
    async fn on_timeout(&mut self) {
        let t = now();
        self.drain_adverts().await;
        for r in &mut self.instances {
            if r.core.poll_timeout().is_some_and(|at| at <= t) {
                r.core.handle_timeout(t);
                r.carry_out(&self.vips).await;
            }
        }
    }

    /// Hands the core every advert already waiting in the receive path (at
    /// most [`DRAIN_LIMIT`]), in the order the kernel saw them.
    async fn drain_adverts(&mut self) {
        let mut waiting = Vec::new();
        while waiting.len() < DRAIN_LIMIT {
            match self.receive.try_recv() {
                Ok(Some(ev)) => waiting.push(ev),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("receive path: {}", Chain(&e));
                    break;
                }
            }
        }
        waiting.sort_by_key(|ev| ev.timestamp_ns);
        for ev in &waiting {
            self.on_advert(ev).await;
        }
    }

    /// An interface name of ours changed: it appeared (again), went away,
    /// or its carrier changed. Every instance on it follows (see
    /// [`Running::follow_link`]).
    async fn on_link(&mut self, ev: LinkEvent) {
        let t = now();
        let mode = self.config.global.xdp_mode;
        for r in self
            .instances
            .iter_mut()
            .filter(|r| device_name(&r.cfg.interface) == ev.name)
        {
            r.follow_link(
                t,
                ev.link.clone(),
                &self.links,
                &mut self.receive,
                &self.vips,
                mode,
            )
            .await;
        }
        self.detach_unused();
    }

    async fn on_health(&mut self, key: InstanceKey, demote: u32) {
        let t = now();
        if let Some(r) = self.instances.iter_mut().find(|r| r.key() == key) {
            tracing::info!(iface = %key.interface, vhid = key.vhid, "health checks: demote {demote}");
            r.set_health_demote(t, demote, &self.vips).await;
        }
    }

    /// UCARP's SIGUSR2: step down, then take part again.
    async fn on_usr2(&mut self) {
        let t = now();
        for r in &mut self.instances {
            tracing::info!(iface = %r.cfg.interface, vhid = r.cfg.vhid, "SIGUSR2: going backup");
            r.core.handle_admin(t, Admin::GoBackup);
            r.core.handle_admin(t, Admin::Resume);
            r.carry_out(&self.vips).await;
        }
    }

    fn on_control(&self, request: ControlRequest) {
        match request {
            ControlRequest::Status { reply } => {
                let _ = reply.send(status::report(self, now()));
            }
        }
    }

    fn log_states(&self) {
        for r in &self.instances {
            let s = r.core.status();
            tracing::info!(
                iface = %r.cfg.interface, vhid = r.cfg.vhid,
                "state {:?}, master {:?}, adverts sent {}, accepted {}, transitions {}",
                s.state, s.master, s.adverts_sent, s.adverts_accepted, s.transitions
            );
        }
        match self.receive.counters() {
            Ok(c) => tracing::info!(
                "receive path: {}",
                c.iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Err(e) => tracing::warn!("{}", Chain(&e)),
        }
    }

    /// Leaves: every instance hands its vhid over first (as its core asks:
    /// a master's addresses removed, then its leave advert), then every
    /// address left is removed and every vhid unserved, and only then are
    /// the scripts (the down script, with `-z`) submitted and waited for,
    /// all of them under one deadline (the longest script timeout of any instance, plus
    /// [`SCRIPT_KILL_GRACE`]), so that a slow or hanging down script delays
    /// neither another instance's leave nor the exit past it.
    async fn shut_down(&mut self) {
        let _ = self.notifier.stopping();
        let t = now();
        for r in &mut self.instances {
            tracing::info!(iface = %r.cfg.interface, vhid = r.cfg.vhid, "shutting down");
            r.send_leave(t, &self.vips).await;
        }
        self.groups.leave();
        let mut pending = Vec::new();
        for r in &mut self.instances {
            for done in r.finish_leave(&self.vips, &mut self.receive).await {
                pending.push((r.key(), done));
            }
        }
        let deadline = self
            .instances
            .iter()
            .map(|r| Duration::from_secs(r.cfg.scripts.timeout_secs.into()))
            .max()
            .unwrap_or_default()
            + SCRIPT_KILL_GRACE;
        wait_for_scripts(pending, deadline).await;
        self.flush_reservations().await;
        let known = self.known_counters();
        self.peers.close(known).await;
    }

    /// What every instance knows of its peers' counters.
    fn known_counters(&self) -> peers_state::Snapshot {
        self.instances
            .iter()
            .map(|r| {
                let key = (r.cfg.interface.clone(), r.cfg.vhid);
                (key, r.core.known_counters())
            })
            .filter(|(_, known)| !known.is_empty())
            .collect()
    }

    /// The instances, for status reports.
    pub fn instances(&self) -> &[Running] {
        &self.instances
    }

    /// The sync groups, for status reports.
    pub fn groups(&self) -> &group::Groups {
        &self.groups
    }

    /// The receive path, for status reports.
    pub fn receive(&self) -> &ReceivePath {
        &self.receive
    }

    /// When the daemon started.
    pub fn started(&self) -> std::time::Instant {
        self.started
    }
}

/// The interfaces of `config`'s instances that exist, each once, as (name,
/// index) for the receive path (a missing one is attached when it appears).
/// Fails when netlink does.
async fn interfaces_of(config: &Config, links: &Links) -> Result<Vec<(String, u32)>, DaemonError> {
    let mut ifaces: Vec<(String, u32)> = Vec::new();
    for inst in &config.instances {
        let link = match prepare::link_of(inst, links).await {
            Err(DaemonError::Link { source, .. })
                if matches!(*source, crate::net::link::LinkError::NoSuchName { .. }) =>
            {
                continue;
            }
            other => other?,
        };
        if !ifaces.iter().any(|(_, i)| *i == link.ifindex) {
            ifaces.push((link.name, link.ifindex));
        }
    }
    Ok(ifaces)
}

/// Binds the control socket and, if configured, the metrics endpoint, both
/// sending their requests to `control_tx`. Fails when either address is
/// taken (a second daemon) or cannot be bound.
fn bind_endpoints(
    config: &Config,
    control_tx: mpsc::Sender<ControlRequest>,
) -> Result<(ControlServer, Option<MetricsServer>), DaemonError> {
    let control = ControlServer::bind(&config.global.status_socket, control_tx.clone())?;
    let metrics = match config.global.metrics {
        Some(addr) => Some(MetricsServer::bind(addr, control_tx)?),
        None => None,
    };
    Ok((control, metrics))
}

/// Waits for the scripts of `pending` (instance, outcome), at most
/// `deadline` in all; logs the instances whose scripts were still running.
async fn wait_for_scripts(pending: Vec<(InstanceKey, crate::scripts::Done)>, deadline: Duration) {
    if pending.is_empty() {
        return;
    }
    let mut waiting: Vec<InstanceKey> = pending.iter().map(|(k, _)| k.clone()).collect();
    let mut all = futures::stream::FuturesUnordered::new();
    for (key, done) in pending {
        all.push(async move {
            let _ = done.await;
            key
        });
    }
    let waited = tokio::time::timeout(deadline, async {
        while let Some(key) = futures::StreamExt::next(&mut all).await {
            waiting.retain(|k| *k != key);
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(
            "exiting with scripts still running after {deadline:?}: {}",
            waiting
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Sleeps until monotonic time `at`; never returns for `None`.
async fn sleep_until(at: Option<Nanos>) {
    match at {
        Some(at) => tokio::time::sleep(Duration::from_nanos(at.0.saturating_sub(now().0))).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(vhid: u8) -> InstanceKey {
        InstanceKey {
            interface: "eth0".into(),
            vhid,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scripts_are_waited_for_under_one_deadline() {
        let deadline = Duration::from_secs(11);
        // Every script done: no wait.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        done_tx
            .send(crate::scripts::JobOutcome::Ran(Vec::new()))
            .unwrap();
        let start = tokio::time::Instant::now();
        wait_for_scripts(vec![(key(1), done_rx)], deadline).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // One ends after 2 s, two hang: the wait ends at the one deadline,
        // not one deadline after the other.
        let (late_tx, late_rx) = tokio::sync::oneshot::channel();
        let (_hang_tx, hang_rx) = tokio::sync::oneshot::channel();
        let (_hang2_tx, hang2_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = late_tx.send(crate::scripts::JobOutcome::Ran(Vec::new()));
        });
        let start = tokio::time::Instant::now();
        let pending = vec![(key(1), late_rx), (key(2), hang_rx), (key(3), hang2_rx)];
        wait_for_scripts(pending, deadline).await;
        assert_eq!(start.elapsed(), deadline);
    }
}
