//! One running instance: the core's state machine and the handles that carry
//! out its actions (advert sockets, addresses, announcements, scripts), plus
//! its health checks. Nothing here decides anything: the core does.
//!
//! Life cycle:
//!
//! - [`Running::prepare`] does everything that can fail (interface lookup,
//!   source addresses, sockets, parameters, health checks) without touching
//!   what a running instance uses, and [`super::prepare::Prepared::commit`] then serves the
//!   vhid in the receive path: a reload can keep the old instance when its
//!   replacement cannot be prepared.
//! - What ties an instance to one kernel interface (index, advert sockets,
//!   announcer, the addresses it added) is its [`super::binding::Binding`]. The instance
//!   follows the interface *name* of its configuration: when that interface
//!   is deleted the binding is dropped and the core told the link is down;
//!   when an interface of that name appears (again, or for the first time
//!   when it was missing at start) the binding is made on its index
//!   ([`Running::follow_link`], in `follow.rs`).
//! - Leaving is two steps, so that a daemon with many instances hands every
//!   vhid over (its addresses removed, then its leave advert sent) before it
//!   runs any script: [`Running::send_leave`], then [`Running::finish_leave`].
//!   The core orders what it asks for (the addresses before the leave
//!   advert, the down script only with `-z`); the daemon only holds the
//!   scripts back until every instance has left.
//! - A VIP that cannot be added is retried with a bounded exponential
//!   backoff, and while it keeps failing the instance is demoted
//!   ([`super::demote::Demote`] sums every demote source the core is given).

use std::net::IpAddr;
use std::time::Duration;

use super::binding::Binding;
use super::demote::{Demote, VipRetry, VIP_FAILURE_DEMOTE};
use super::key::InstanceKey;
use super::reservations::Reserver;
use super::rules::KernelRules;
use crate::chain::Chain;
use crate::config::InstanceConfig;
use crate::health::HealthMonitor;
use crate::net::link::{LinkInfo, Links};
use crate::net::vip::{Vip, VipManager};
use crate::proto::action::{Action, Admin, Reason, Script, State};
use crate::proto::instance::Instance;
use crate::proto::peer::Sender;
use crate::proto::reject::Reject;
use crate::proto::replay::Admission;
use crate::proto::Nanos;
use crate::scripts::{ScriptJob, ScriptKind, ScriptRunner};
use crate::standin::LaneHandle;
use crate::xdp::mode::XdpMode;
use crate::xdp::receive::ReceivePath;

/// One instance and its I/O.
pub struct Running {
    /// Its configuration.
    pub cfg: InstanceConfig,
    /// The kernel interface it runs on (the last one, while its interface
    /// is missing: see [`Running::ifindex`]).
    pub link: LinkInfo,
    /// The state machine.
    pub core: Instance,
    /// The core was made without the interface (missing at start, see
    /// [`super::prepare::Prepared::waiting`]): the first binding replaces it.
    pub(super) provisional_core: bool,
    /// Sockets and addresses on the interface; `None` while the interface
    /// of the configured name is missing (or binding to it failed).
    pub(super) io: Option<Binding>,
    pub(super) scripts: ScriptRunner,
    pub(super) _health: Option<HealthMonitor>,
    /// The replay rules this instance keeps in the receive path.
    pub(super) kernel_rules: KernelRules,
    /// Every demote source; the core gets their sum.
    pub(super) demote: Demote,
    /// VIPs that could not be added.
    pub(super) vip_retry: VipRetry,
    /// When binding to the interface is tried again, after a failure.
    pub(super) rebind_at: Option<Nanos>,
    /// The interface index a failure to bind was last warned about.
    pub(super) rebind_warned: Option<u32>,
    /// Scripts the core asked for on leaving, held for
    /// [`Running::finish_leave`].
    pub(super) leaving: Vec<Script>,
    /// Where the counter reservation is kept, if anywhere.
    pub(super) counter_file: Option<Reserver>,
    /// The highest reservation read back from the file, or carried over
    /// from the instance this one replaced (never read again on the loop).
    pub(super) counter_floor: Option<u64>,
    /// State changes carried out and not yet told to the sync group.
    pub(super) state_changes: Vec<(State, Reason)>,
    /// The sync group's demote count: the core advertises at least this.
    pub(super) group_demote: u8,
    /// With a group that drives conntrackd: `true` once conntrackd is ready
    /// as master; gratuitous ARPs wait for it, at most
    /// [`crate::conntrackd::CONNTRACKD_WAIT`].
    pub(super) announce_gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// Where the core's prepared adverts wait for the stand-in senders
    /// (see [`crate::standin`]); made with the first one.
    pub(super) standin: Option<LaneHandle>,
}

impl Running {
    /// Health-check runs that could not be started (unknown results).
    pub fn health_unknown_runs(&self) -> u64 {
        self._health.as_ref().map_or(0, HealthMonitor::unknown_runs)
    }

    /// Key of this instance.
    pub fn key(&self) -> InstanceKey {
        InstanceKey::of(&self.cfg)
    }

    /// The interface index the instance is bound to, `None` while its
    /// interface is missing.
    pub fn ifindex(&self) -> Option<u32> {
        self.io.as_ref().map(|_| self.link.ifindex)
    }

    /// The macvlan carrying the virtual MAC, while it exists.
    pub fn vmac_link(&self) -> Option<&str> {
        let vmac = self.io.as_ref()?.vmac.as_ref()?;
        Some(&vmac.link.name)
    }

    /// The demote sources.
    pub fn demote(&self) -> Demote {
        self.demote
    }

    /// The script runner, for a replacement to inherit.
    pub fn scripts(&self) -> &ScriptRunner {
        &self.scripts
    }

    /// Sets one demote source and gives the core the new sum.
    fn set_demote(&mut self, now: Nanos, demote: Demote) {
        if demote != self.demote {
            tracing::info!(
                iface = %self.cfg.interface, vhid = self.cfg.vhid,
                "demote {} (health checks {}, VIPs {})",
                demote.total(), demote.health, demote.vips
            );
        }
        self.demote = demote;
        self.core
            .set_demote(now, demote.total().max(self.group_demote));
    }

    /// The sync group's demote count is now `demote`: the core advertises
    /// the higher of it and the instance's own.
    pub(super) fn set_group_demote(&mut self, now: Nanos, demote: u8) {
        self.group_demote = demote;
        self.set_demote(now, self.demote);
    }

    /// The health checks' demote contribution changed.
    pub async fn set_health_demote(&mut self, now: Nanos, health: u32, vips: &VipManager) {
        self.set_demote(
            now,
            Demote {
                health,
                ..self.demote
            },
        );
        self.carry_out(vips).await;
    }

    /// The next time [`Running::on_retry`] has something to do.
    pub fn retry_due(&self) -> Option<Nanos> {
        match (self.vip_retry.due, self.rebind_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Retries what is due at `now`: binding to the interface, adding VIPs
    /// (as master) or lifting the VIP demote (no longer master).
    pub async fn on_retry(
        &mut self,
        now: Nanos,
        links: &Links,
        receive: &mut ReceivePath,
        vips: &VipManager,
        xdp_mode: XdpMode,
    ) {
        if self.rebind_at.is_some_and(|at| at <= now) {
            self.rebind_at = None;
            match links.by_name(&self.cfg.interface).await {
                Ok(link) => {
                    self.follow_link(now, Some(link), links, receive, vips, xdp_mode)
                        .await
                }
                Err(e) => {
                    tracing::debug!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e))
                }
            }
        }
        if self.vip_retry.due.is_some_and(|at| at <= now) {
            self.vip_retry.due = None;
            if self.core.state() == State::Master {
                tracing::info!(
                    iface = %self.cfg.interface, vhid = self.cfg.vhid,
                    "adding the VIPs again (try {})", self.vip_retry.failures + 1
                );
                self.add_vips(vips).await;
            } else {
                // Not master any more: lift the demote so that this host may
                // take over and try again; the backoff goes on growing.
                self.set_demote(
                    now,
                    Demote {
                        vips: 0,
                        ..self.demote
                    },
                );
            }
            self.carry_out(vips).await;
        }
    }

    /// Keeps the counter reservation in `file`, and starts above `carried`
    /// (the counters of the instance this one replaces) and, once it is
    /// read, the reservation the file holds ([`Running::counter_floor_read`]).
    /// Call before the first advert; does not wait for the disk.
    pub fn use_counter_file(&mut self, file: Reserver, carried: Option<u64>) {
        if let Some(floor) = carried {
            self.counter_floor_read(floor);
        }
        file.load();
        self.counter_file = Some(file);
    }

    /// The counter file holds the reservation `floor`: every counter from
    /// now on is above it.
    pub fn counter_floor_read(&mut self, floor: u64) {
        self.counter_floor = Some(self.counter_floor.map_or(floor, |f| f.max(floor)));
        // A floor `CounterFile::load` checked, or a counter we sent.
        let _ = self.core.raise_counter_floor(floor);
    }

    /// What this instance's next instance must start above: the last
    /// counter sent and the floor.
    pub fn counter_carried(&self) -> Option<u64> {
        self.core.status().last_counter_sent.max(self.counter_floor)
    }

    /// Hands a received advert to the core, as seen at `seen` (when the
    /// kernel saw it; the core never lets its time go backwards); on
    /// acceptance, keeps the source's replay rule in the receive path, so
    /// that what the core would refuse from it is dropped before the rate
    /// limit from now on. `recorded`: the receive path's rule recorded this
    /// advert already.
    pub fn handle_advert(
        &mut self,
        seen: Nanos,
        sender: Sender,
        header: &carp_common::header::CarpHeader,
        recorded: bool,
        receive: &mut ReceivePath,
    ) -> Result<(), Reject> {
        if self.core.handle_advert(seen, sender, header)? != Admission::Fresh {
            // Nothing new to record.
            return Ok(());
        }
        let src = sender.addr;
        let Some(rule) = self.core.receive_rule(src) else {
            return Ok(());
        };
        let ifindex = self.link.ifindex;
        let vhid = self.cfg.vhid;
        if !recorded {
            // It passed before the rule was there (or was evicted): the
            // rule lacks this counter, so write it again whole.
            self.kernel_rules.forget(src);
        }
        let master = self.core.status().master;
        let peers = &self.cfg.peers;
        let keep = |a: IpAddr| Some(a) == master || peers.iter().any(|p| p.addr == a);
        if let Err(e) = self
            .kernel_rules
            .accepted(receive, (ifindex, vhid), src, &rule, keep)
        {
            tracing::warn!(iface = %self.cfg.interface, vhid, "{}", Chain(&e));
        }
        Ok(())
    }

    /// Carries out every action the core has queued, in order.
    pub async fn carry_out(&mut self, vips: &VipManager) {
        while let Some(action) = self.core.poll_action() {
            self.carry_out_one(action, vips).await;
        }
    }

    /// Carries out one action of the core. Failures are logged: the core
    /// goes on (a VIP that cannot be added is retried, see
    /// [`Running::add_vips`]).
    async fn carry_out_one(&mut self, action: Action, mgr: &VipManager) {
        match action {
            Action::SendAdvert(advert) => self.send_advert(&advert),
            Action::PrepareAdvert(slot) => self.prepare_advert(slot),
            Action::SendPrepared(slot) => match (&mut self.standin, &self.io) {
                (Some(lane), Some(io)) => {
                    lane.send_due(&slot, &io.sockets);
                }
                _ => self.send_advert(&slot.advert),
            },
            Action::CancelPrepared => {
                if let Some(lane) = &mut self.standin {
                    lane.cancel();
                }
            }
            Action::AddVips => self.add_vips(mgr).await,
            Action::RemoveVips => self.remove_vips(mgr).await,
            Action::Announce => self.announce().await,
            Action::RunScript(script) => {
                self.run_script(script);
            }
            Action::PersistCounter(value) => {
                // Written off the loop: the advert after it does not wait
                // (see `crate::proto::counter`). A late write is warned
                // about; a failed one is logged when reported.
                if let Some(file) = &self.counter_file {
                    if let Some(waited) = file.store(value) {
                        tracing::warn!(
                            iface = %self.cfg.interface, vhid = self.cfg.vhid,
                            "counter reservation {} not written after {} s (state_dir stalled?); \
                             adverts go on, but counters above {} would not survive a restart \
                             with the clock set back",
                            file.path().display(), waited.as_secs(), self.core.counter_durable()
                        );
                    }
                }
            }
            Action::StateChanged { from, to, reason } => {
                tracing::info!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{from:?} -> {to:?} ({reason:?})");
                if self.cfg.sync_group.is_some() {
                    self.state_changes.push((to, reason));
                }
            }
        }
    }

    /// Hands a prepared advert to the stand-in senders, with the sockets
    /// to send it on; nothing is handed over while the interface is
    /// missing (there is no socket to send on).
    fn prepare_advert(&mut self, slot: crate::proto::ahead::Slot) {
        let Some(io) = &self.io else {
            return;
        };
        if self.standin.is_none() {
            let grace = crate::proto::ahead::standin_grace(self.core.params().advert_interval());
            self.standin = crate::standin::lane(grace);
        }
        if let Some(lane) = &mut self.standin {
            lane.prepare(slot, std::sync::Arc::clone(&io.sockets));
        }
    }

    /// Adverts the stand-in senders sent for this instance.
    pub fn standin_sent(&self) -> u64 {
        self.standin.as_ref().map_or(0, LaneHandle::standin_sent)
    }

    /// Sends `advert` on every advert socket (none while the interface is
    /// missing). A failed send is logged.
    fn send_advert(&self, advert: &carp_common::header::CarpHeader) {
        for s in self.io.iter().flat_map(|io| io.sockets.iter()) {
            if let Err(e) = s.send(advert) {
                tracing::warn!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e));
            }
        }
    }

    /// Removes every VIP: those we added, and addresses of ours left by a
    /// crashed run or added by hand. Not master any more: a failed add is
    /// not retried, and a VIP demote is held a while before it is lifted.
    /// Failures are logged.
    async fn remove_vips(&mut self, mgr: &VipManager) {
        let (iface, vhid) = (self.cfg.interface.clone(), self.cfg.vhid);
        self.vip_retry
            .left_master(super::now(), self.demote.vips > 0);
        let Some(io) = self.io.as_mut() else {
            // No interface: its addresses went with it.
            return;
        };
        if let Err(e) = io.vips.remove_all(mgr).await {
            tracing::error!(iface = %iface, vhid, "{}", Chain(&e));
        }
        if let Err(e) = io.drop_vmac(mgr).await {
            tracing::error!(iface = %iface, vhid, "{}", Chain(&e));
        }
        let configured: Vec<Vip> = self
            .cfg
            .vips
            .iter()
            .map(|v| Vip::host(v.addr).with_prefix(v.prefix_len))
            .collect();
        match mgr.remove_stale(self.link.ifindex, &configured).await {
            Ok(removed) if !removed.is_empty() => {
                let list: Vec<String> = removed.iter().map(ToString::to_string).collect();
                tracing::info!(
                    iface = %iface, vhid,
                    "removed {} from {iface} while {}: put there outside carpd-xdp (configured \
                     before start, by a script or by a crashed run)",
                    list.join(", "), format!("{:?}", self.core.state()).to_uppercase()
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(iface = %iface, vhid, "{}", Chain(&e)),
        }
    }

    /// Sends one gratuitous ARP / unsolicited NA round for every VIP, if
    /// the interface has an announcer. A failure is logged. In a sync group
    /// that drives conntrackd, a round due before conntrackd is ready as
    /// master goes out once it is, or after [`crate::conntrackd::CONNTRACKD_WAIT`]
    /// (from a task of its own: adverts are never delayed).
    async fn announce(&self) {
        let announcer = self
            .io
            .as_ref()
            .and_then(|io| io.announcer_for(self.cfg.virtual_mac));
        if let Some(a) = announcer {
            let vips: Vec<IpAddr> = self.cfg.vips.iter().map(|v| v.addr).collect();
            if let Some(gate) = self.announce_gate.as_ref().filter(|g| !*g.borrow()) {
                let (a, gate) = (a.clone(), gate.clone());
                let (iface, vhid) = (self.cfg.interface.clone(), self.cfg.vhid);
                tokio::spawn(async move {
                    if !crate::conntrackd::conntrackd_ready(gate).await {
                        let wait = crate::conntrackd::CONNTRACKD_WAIT;
                        tracing::warn!(iface = %iface, vhid, "conntrackd not ready after {wait:?}: announcing anyway");
                    }
                    if let Err(e) = a.announce(&vips, 1, Duration::ZERO).await {
                        tracing::warn!(iface = %iface, vhid, "{}", Chain(&e));
                    }
                });
                return;
            }
            if let Err(e) = a.announce(&vips, 1, Duration::ZERO).await {
                tracing::warn!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e));
            }
        }
    }

    /// Adds every VIP. When one fails, the add is tried again after a
    /// backoff, and from the second failure in a row on the instance is
    /// demoted by [`VIP_FAILURE_DEMOTE`] until an add succeeds (a master
    /// that cannot hold its address should hand it to a host that can).
    async fn add_vips(&mut self, mgr: &VipManager) {
        let (iface, vhid) = (self.cfg.interface.clone(), self.cfg.vhid);
        let mut failed = false;
        match self.io.as_mut() {
            Some(io) => {
                // With a virtual MAC, on its macvlan (made first), or nowhere
                // while it cannot be made.
                match io.vip_target(&self.cfg, &self.link, mgr).await {
                    Ok(set) => {
                        for v in &self.cfg.vips {
                            let mut vip = Vip::host(v.addr).with_prefix(v.prefix_len);
                            // A label must start with the name of its device.
                            if let Some(label) =
                                self.cfg.label.as_ref().filter(|_| !self.cfg.virtual_mac)
                            {
                                vip = vip.with_label(label.clone());
                            }
                            if let Err(e) = set.add(mgr, vip).await {
                                tracing::error!(iface = %iface, vhid, "{}", Chain(&e));
                                failed = true;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(iface = %iface, vhid, "{}", Chain(&e));
                        failed = true;
                    }
                }
            }
            // No interface: the core is about to hear the link is down.
            None => return,
        }
        let now = super::now();
        if failed {
            self.vip_retry.failures = self.vip_retry.failures.saturating_add(1);
            let wait = VipRetry::backoff(self.vip_retry.failures);
            self.vip_retry.due = Some(now.saturating_add(wait));
            tracing::warn!(
                iface = %iface, vhid,
                "VIPs not all added ({} failures in a row), trying again in {} ms",
                self.vip_retry.failures, wait.0 / 1_000_000
            );
            if self.vip_retry.failures >= 2 {
                self.set_demote(
                    now,
                    Demote {
                        vips: VIP_FAILURE_DEMOTE,
                        ..self.demote
                    },
                );
            }
        } else {
            if self.vip_retry.failures > 0 {
                tracing::info!(iface = %iface, vhid, "VIPs added after {} failures", self.vip_retry.failures);
            }
            self.vip_retry = VipRetry::default();
            self.set_demote(
                now,
                Demote {
                    vips: 0,
                    ..self.demote
                },
            );
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
                tracing::error!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e));
                None
            }
        }
    }

    /// First step of leaving for good: the core shuts down and what it asks
    /// for is carried out now, in its order (as master: addresses removed,
    /// then the leave advert), except its scripts, which wait for
    /// [`Running::finish_leave`].
    pub async fn send_leave(&mut self, now: Nanos, mgr: &VipManager) {
        self.core.handle_admin(now, Admin::Shutdown);
        self.vip_retry = VipRetry::default();
        self.rebind_at = None;
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::RunScript(script) => self.leaving.push(script),
                other => self.carry_out_one(other, mgr).await,
            }
        }
    }

    /// Second step of leaving: the scripts the core asked for submitted
    /// (the down script, with `-z`), any address of ours still there
    /// removed, the vhid no longer served. Does not wait for scripts:
    /// returns the receivers of their outcomes.
    pub async fn finish_leave(
        &mut self,
        mgr: &VipManager,
        receive: &mut ReceivePath,
    ) -> Vec<crate::scripts::Done> {
        let pending = std::mem::take(&mut self.leaving)
            .into_iter()
            .filter_map(|script| self.run_script(script))
            .collect();
        if let Some(io) = self.io.as_mut() {
            if let Err(e) = io.vips.remove_all(mgr).await {
                tracing::error!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e));
            }
            if let Err(e) = io.drop_vmac(mgr).await {
                tracing::error!(iface = %self.cfg.interface, vhid = self.cfg.vhid, "{}", Chain(&e));
            }
        }
        self.unbind(receive);
        pending
    }
}
