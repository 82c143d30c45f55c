//! The state machine of one virtual host: one (interface, vhid).
//!
//! ```text
//!            start (down script unless neutral)      master down / preempt /
//!   INIT ───────────────────────────────────▶ BACKUP ─── leave heard / peer ──▶ MASTER
//!    ▲  ◀──────────── link down ───────────── │  ▲        demoted / too slow     │
//!    │                                        │  └── better master heard ────────┤
//!    └──────────── link down, shutdown ───────┴──────────────────────────────────┘
//! ```
//!
//! Inputs are [`Instance::handle_advert`], [`Instance::handle_timeout`],
//! [`Instance::handle_link`], [`Instance::set_demote`],
//! [`Instance::handle_admin`] and, for members of a sync group,
//! [`Instance::handle_group`] (in `instance_group.rs`); outputs are [`Instance::poll_action`] and
//! [`Instance::poll_timeout`]. The adverts a MASTER sends are made in
//! `instance_adverts.rs`. Nothing here does I/O (see [`super`]).

use std::collections::VecDeque;
use std::net::IpAddr;

use carp_common::constants::{CARP_ADVERTISEMENT, CARP_AUTHLEN, CARP_VERSION};
use carp_common::header::CarpHeader;

use super::action::{Action, Admin, Reason, Script, State};
use super::ahead::Ahead;
use super::auth::Authenticator;
use super::counter::{identity, identity_for, AdvertCounter, FloorError, WallClock};
use super::election::{master_yields, own_addr_for, preempts, Priority};
use super::params::{InstanceParams, ParamsError};
use super::peer::{MacClass, PeerKind, PeerTable, Sender};
use super::reject::{Reject, RejectCounts};
use super::replay::{Admission, ReplayGuard};
use super::status::Status;
use super::timers::{rank_interval, Timer, TimerTable};
use super::Nanos;

#[path = "instance_adverts.rs"]
mod adverts;
#[path = "instance_group.rs"]
mod group;

/// The CARP state machine of one (interface, vhid).
#[derive(Clone, Debug)]
pub struct Instance {
    /// Configuration.
    params: InstanceParams,
    /// Signs and checks adverts.
    auth: Authenticator,
    /// Replay state of received counters.
    replay: ReplayGuard,
    /// Our wall clock, for the replay window.
    clock: WallClock,
    /// Our advert counter.
    counter: AdvertCounter,
    /// Adverts prepared for the next slots, while MASTER.
    ahead: Ahead,
    /// Current state.
    state: State,
    /// Deadlines.
    timers: TimerTable,
    /// Actions not yet polled.
    actions: VecDeque<Action>,
    /// Held in BACKUP by an administrator.
    held: bool,
    /// Held in BACKUP by its sync group, one of whose members is down
    /// ([`GroupCommand::Hold`]).
    group_held: bool,
    /// No preemption before this time: after [`Admin::Resume`] the others
    /// get one master-down interval to take over (UCARP's SIGUSR2).
    preempt_after: Nanos,
    /// Shut down for good.
    shut_down: bool,
    /// The latest time handed in: an earlier one (an advert the kernel saw
    /// before a timeout the daemon handled first) is taken as this one, so
    /// the core's time never goes backwards.
    latest: Nanos,
    /// The master-down deadline was already extended once because we
    /// woke late for it (see [`Instance::handle_timeout`]).
    woke_late: bool,
    /// Announcement rounds still to send since the takeover.
    announce_rounds_left: u8,
    /// Adverts sent since the takeover.
    adverts_since_takeover: u64,
    /// Sender of the last accepted advert (in BACKUP).
    master: Option<IpAddr>,
    /// The last master we stayed BACKUP for, and when it was heard.
    live_master: Option<(IpAddr, Nanos)>,
    /// What each source's adverts showed of its implementation.
    peers: PeerTable,
    /// Counters.
    status: Status,
}

impl Instance {
    /// A new instance, started at `now`: it enters BACKUP at once (running
    /// the down script and removing stale addresses unless neutral) and
    /// waits one master-down interval. `wall_clock_unix_ns` is the wall-clock
    /// time at `now`, which seeds our counter.
    pub fn new(
        params: InstanceParams,
        now: Nanos,
        wall_clock_unix_ns: u64,
    ) -> Result<Self, ParamsError> {
        params.validate()?;
        let clock = WallClock::new(now, wall_clock_unix_ns);
        let window_ms = params.replay_window.map(|w| w.0 / 1_000_000);
        let mut me = Self {
            auth: Authenticator::new(params.password.clone(), &params.vips)
                .sending(params.hmac_link_local),
            replay: ReplayGuard::new(params.replay_mode, window_ms),
            clock,
            counter: AdvertCounter::new(
                clock,
                identity_for(
                    params.source_addrs.first().copied(),
                    params.vhid,
                    wall_clock_unix_ns,
                ),
            ),
            ahead: Ahead::default(),
            state: State::Init,
            timers: TimerTable::default(),
            actions: VecDeque::new(),
            held: false,
            group_held: false,
            preempt_after: Nanos(0),
            shut_down: false,
            latest: now,
            woke_late: false,
            announce_rounds_left: 0,
            adverts_since_takeover: 0,
            master: None,
            live_master: None,
            peers: PeerTable::default(),
            status: Status {
                state: State::Init,
                master: None,
                master_kind: None,
                last_advert_at: None,
                demote: params.demote,
                held: false,
                adverts_sent: 0,
                adverts_accepted: 0,
                adverts_repeated: 0,
                transitions: 0,
                last_change: None,
                last_counter_sent: None,
                rejects: RejectCounts::default(),
            },
            params,
        };
        me.set_state(now, State::Backup, Reason::Startup);
        // Addresses a crashed run left behind go whatever `neutral` says: it
        // is about the down script (UCARP `--neutral`), and a stale VIP would
        // answer ARP beside the real master.
        me.actions.push_back(Action::RemoveVips);
        if !me.params.neutral {
            me.actions.push_back(Action::RunScript(Script::Down));
        }
        me.arm_master_down(now);
        Ok(me)
    }

    /// Every counter we send from now on is above `floor`: the last
    /// reservation a previous run persisted (see [`super::counter`]).
    /// A value that is none of our counters changes nothing and is
    /// returned as an error.
    pub fn raise_counter_floor(&mut self, floor: u64) -> Result<(), FloorError> {
        self.counter.raise_floor(floor)
    }

    /// The identity our counters carry (see [`super::counter`]).
    pub fn identity(&self) -> u8 {
        self.counter.identity()
    }

    /// The last counter accepted from each sender identity, to keep across
    /// restarts (see [`Self::remember_counters`]).
    pub fn known_counters(&self) -> Vec<u64> {
        self.replay.identities(self.params.vhid)
    }

    /// Counters accepted by a previous run ([`Self::known_counters`]): a
    /// replay of anything up to them is refused from the start.
    pub fn remember_counters(&mut self, counters: impl IntoIterator<Item = u64>) {
        for last in counters {
            self.replay.remember(self.params.vhid, last);
        }
    }

    /// The counter reservation `value` asked for with
    /// [`Action::PersistCounter`] is on stable storage.
    pub fn counter_persisted(&mut self, value: u64) {
        self.counter.persisted(value);
    }

    /// Counters up to this one are covered by a reservation on stable
    /// storage (the floor, or the last one reported written).
    pub fn counter_durable(&self) -> u64 {
        self.counter.durable()
    }

    /// From now on, while MASTER, keeps adverts prepared for as many slots
    /// as span `cover` (zero: none), for a stand-in to send if the daemon
    /// is late (see [`super::ahead`]). Takes effect at the next takeover.
    pub fn send_ahead(&mut self, cover: Nanos) {
        self.ahead.set_cover(cover);
    }

    /// The configuration.
    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// A snapshot of state and counters.
    pub fn status(&self) -> Status {
        let mut s = self.status.clone();
        s.state = self.state;
        s.held = self.held;
        s.demote = self.params.demote;
        s.last_counter_sent = self.counter.last();
        s.master = match self.state {
            State::Master => self.params.source_addrs.first().copied(),
            State::Backup => self.master,
            State::Init => None,
        };
        s.master_kind = match self.state {
            State::Master => None,
            _ => s.master.and_then(|m| self.peers.kind(m)),
        };
        s
    }

    /// The replay rule for `src` that the receive path enforces before the
    /// HMAC and the rate limit, once anything was accepted from `src`.
    pub fn receive_rule(&self, src: IpAddr) -> Option<carp_common::maps::ReplayState> {
        self.replay.receive_rule(src, self.params.vhid)
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Instance::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Nanos> {
        self.timers.next()
    }

    /// A received advert from `sender` (an address, or an address and the
    /// frame's Ethernet source). Checks it (cheap checks, HMAC, replay) and,
    /// if it passes, applies the election rules of the peer it comes from;
    /// a [`Admission::Repeat`] only proves that its sender lives, and a
    /// [`Admission::Copy`] changes nothing.
    pub fn handle_advert(
        &mut self,
        now: Nanos,
        sender: impl Into<Sender>,
        header: &CarpHeader,
    ) -> Result<Admission, Reject> {
        let now = self.tick(now);
        let sender = sender.into();
        let admission = match self.check_advert(now, sender, header) {
            Ok(a) => a,
            Err(reject) => {
                self.status.rejects.bump(&reject);
                return Err(reject);
            }
        };
        if admission == Admission::Copy {
            return Ok(Admission::Copy);
        }
        self.status.adverts_accepted += 1;
        self.status.last_advert_at = Some(now);
        if admission == Admission::Repeat {
            self.status.adverts_repeated += 1;
            self.repeat_heard(now, sender.addr, header);
            return Ok(Admission::Repeat);
        }
        let kind = self
            .peers
            .record(sender, header.vhid, header.counter(), header.demote);
        self.elect(now, sender.addr, kind, header);
        Ok(Admission::Fresh)
    }

    /// The checks of `carp_proto_input`, stateless first, replay last (its
    /// state changes only for authentic adverts).
    fn check_advert(
        &mut self,
        now: Nanos,
        sender: Sender,
        h: &CarpHeader,
    ) -> Result<Admission, Reject> {
        let src = sender.addr;
        if self.state == State::Init {
            return Err(Reject::NotRunning {
                src,
                state: self.state,
            });
        }
        if h.version() != CARP_VERSION {
            return Err(Reject::Version {
                src,
                version: h.version(),
            });
        }
        if h.kind() != CARP_ADVERTISEMENT {
            return Err(Reject::Type {
                src,
                kind: h.kind(),
            });
        }
        if h.authlen != CARP_AUTHLEN {
            return Err(Reject::AuthLen {
                src,
                authlen: h.authlen,
            });
        }
        if h.vhid != self.params.vhid {
            return Err(Reject::Vhid {
                src,
                vhid: h.vhid,
                expected: self.params.vhid,
            });
        }
        if !h.checksum_ok() {
            return Err(Reject::Checksum {
                src,
                checksum: h.checksum(),
            });
        }
        if self.params.source_addrs.contains(&src) {
            return Err(Reject::Own { src });
        }
        if !self.params.allowed_peers.is_empty()
            && !self.params.allowed_peers.iter().any(|p| p.admits(sender))
        {
            return Err(Reject::NotAllowed {
                src,
                mac: super::peer::Mac(sender.mac),
            });
        }
        if !self.auth.verify(h) {
            return Err(Reject::Auth {
                src,
                counter: h.counter(),
            });
        }
        let mac = MacClass::of(sender.mac, h.vhid);
        let admission = self
            .replay
            .admit(src, h.vhid, h.counter(), self.clock.unix_millis(now), mac)
            .map_err(|source| Reject::Replay { src, source })?;
        // Another sender (or a UCARP host continuing our counter) carries
        // our identity: take another, so that receivers keep us apart.
        if identity(h.counter()) == Some(self.counter.identity()) {
            self.counter.set_identity(now);
            self.reprepare(now);
        }
        Ok(admission)
    }

    /// A repeated counter from `src` (see [`Admission::Repeat`]): proof that
    /// it lives, nothing more. As BACKUP, it keeps `src` our master if it
    /// is; it never makes us take over, whatever its advbase, advskew and
    /// demote say (an attacker may have edited them). As MASTER, we yield
    /// to it as to any preferred master: a UCARP or FreeBSD host made to
    /// repeat its counters may really be master, and two masters is the
    /// one outcome not to allow.
    fn repeat_heard(&mut self, now: Nanos, src: IpAddr, h: &CarpHeader) {
        match self.state {
            State::Backup if self.master == Some(src) && !self.is_held() => {
                self.live_master = Some((src, now));
                self.arm_master_down(now);
            }
            State::Master => {
                let kind = self.peers.kind(src).unwrap_or(PeerKind::Unknown);
                self.elect(now, src, kind, h);
            }
            _ => {}
        }
    }

    /// The election rules for an accepted advert from a `kind` peer.
    fn elect(&mut self, now: Nanos, src: IpAddr, kind: PeerKind, h: &CarpHeader) {
        let theirs = Priority::of_advert(h.demote, h.advbase, h.advskew, src);
        let ours = Priority {
            demote: self.params.demote,
            interval: rank_interval(self.params.advbase_secs, self.params.wire_advskew()),
            addr: own_addr_for(&self.params.source_addrs, src),
        };
        match self.state {
            State::Init => {}
            State::Master => {
                // carp(4) `carp_proto_input_c`, MASTER; UCARP `packethandler`:
                // a master that hears a preferred master goes BACKUP, after
                // one final advert so that the new master knows to reassert
                // itself. Preferred as the peer itself ranks us, ties settled
                // as it settles them, so that exactly one of us stays
                // ([`master_yields`]). A leave advert is no rival.
                if h.is_leave() {
                    return;
                }
                if master_yields(&ours, &theirs, kind) {
                    self.emit_advert(now, false);
                    self.master = Some(src);
                    self.become_backup(now, Reason::BetterMaster);
                } else {
                    // UCARP: a less preferred master is advertising; reassert
                    // our addresses with another announcement.
                    self.actions.push_back(Action::Announce);
                }
            }
            State::Backup => {
                let takeover = self.backup_takeover(now, &ours, &theirs, kind, h);
                // While a master we stay BACKUP for is alive, an advert that
                // would make us take over from another source is ignored:
                // the final advert of a master stepping down to it (UCARP's
                // and ours), a leave advert, or a lesser master that has not
                // heard it yet. Taking over then would make a second master
                // until the next advert of the first.
                let other_master_alive = self.live_master.is_some_and(|(addr, at)| {
                    addr != src && now < at.saturating_add(self.params.master_down_interval())
                });
                if takeover.is_some() && other_master_alive {
                    return;
                }
                self.master = Some(src);
                if self.is_held() {
                    return;
                }
                match takeover {
                    Some(reason) => self.become_master(now, reason),
                    None => {
                        self.live_master = Some((src, now));
                        self.arm_master_down(now);
                    }
                }
            }
        }
    }

    /// BACKUP: whether an accepted advert from the master `theirs` (a `kind`
    /// peer) makes us take over, and why.
    fn backup_takeover(
        &self,
        now: Nanos,
        ours: &Priority,
        theirs: &Priority,
        kind: PeerKind,
        h: &CarpHeader,
    ) -> Option<Reason> {
        // A master bowing out (advbase and advskew 255, as sent by carp(4)
        // `carp_send_ad` on shutdown): take over at once.
        if h.is_leave() {
            return Some(Reason::PeerLeft);
        }
        // OpenBSD carp(4): take over masters advertising a higher demote
        // count, regardless of preempt (where the peer reads the byte, it
        // then yields to us).
        if kind.honours_demote() && h.demote > self.params.demote {
            return Some(Reason::PeerDemoted);
        }
        // carp(4), UCARP: with preempt, treat a master that ranks strictly
        // below us as down; never on an address tie.
        if self.params.preempt && now >= self.preempt_after && preempts(ours, theirs, kind) {
            return Some(Reason::Preempt);
        }
        // UCARP, carp(4): a master that advertises less often than our
        // master-down interval is guaranteed to time out; treat it as timed
        // out now.
        if theirs.interval > self.params.master_down_interval() {
            return Some(Reason::SlowMaster);
        }
        None
    }

    /// `now`, or the latest time handed in if that is later.
    fn tick(&mut self, now: Nanos) -> Nanos {
        self.latest = self.latest.max(now);
        self.latest
    }

    /// Deadlines that passed by `now`.
    ///
    /// A backup that handles master down more than a quarter of its advert
    /// interval after the deadline was not running meanwhile (its CPU, or
    /// its whole machine, stopped), and a master on the same machine or
    /// hypervisor may have stopped with it: its advert, due during the
    /// stop, leaves only now. So the first time, the deadline moves on by
    /// the lateness, and by at least one advert interval (at most one
    /// master-down): an advert heard meanwhile keeps us BACKUP, silence
    /// still makes us master. A takeover is never earlier for it, only
    /// later, and only when we were late ourselves.
    pub fn handle_timeout(&mut self, now: Nanos) {
        let now = self.tick(now);
        if self.timers.take_expired(Timer::Advert, now) && self.state == State::Master {
            self.scheduled_advert(now);
        }
        let due = self.timers.get(Timer::MasterDown);
        if self.timers.take_expired(Timer::MasterDown, now)
            && self.state == State::Backup
            && !self.is_held()
        {
            let (interval, master_down) = (
                self.params.advert_interval(),
                self.params.master_down_interval(),
            );
            let late = now.saturating_sub(due.unwrap_or(now));
            if !self.woke_late && late.0 > interval.0 / 4 {
                self.woke_late = true;
                let grace = late.max(interval).min(master_down);
                self.timers
                    .set(Timer::MasterDown, now.saturating_add(grace));
            } else {
                self.become_master(now, Reason::MasterDown);
            }
        }
    }

    /// The link (carrier) of the interface went up or down.
    pub fn handle_link(&mut self, now: Nanos, up: bool) {
        let now = self.tick(now);
        if self.shut_down {
            return;
        }
        match (up, self.state) {
            (false, State::Master | State::Backup) => self.become_init(now, Reason::LinkDown),
            (true, State::Init) => {
                self.set_state(now, State::Backup, Reason::LinkUp);
                self.arm_master_down(now);
            }
            _ => {}
        }
    }

    /// Our demote counter changed. A master advertises it at once, so that
    /// backups with a lower one take over without waiting for the next
    /// advert.
    pub fn set_demote(&mut self, now: Nanos, demote: u8) {
        let now = self.tick(now);
        if demote == self.params.demote {
            return;
        }
        self.params.demote = demote;
        if self.state == State::Master {
            self.master_advert(now);
        }
    }

    /// An administrative request.
    pub fn handle_admin(&mut self, now: Nanos, admin: Admin) {
        let now = self.tick(now);
        if self.shut_down {
            return;
        }
        match admin {
            Admin::GoBackup => {
                self.held = true;
                self.bow_out(now, Reason::AdminBackup);
            }
            Admin::Resume => {
                self.held = false;
                self.preempt_after = now.saturating_add(self.params.master_down_interval());
                if self.state == State::Backup {
                    self.arm_master_down(now);
                }
            }
            Admin::Shutdown => self.leave(now),
        }
    }

    /// Now held: a master sends a leave advert (a backup takes over at
    /// once) and goes BACKUP for `reason`; a backup stops waiting for
    /// master down.
    fn bow_out(&mut self, now: Nanos, reason: Reason) {
        match self.state {
            State::Master => {
                self.emit_advert(now, true);
                self.become_backup(now, reason);
            }
            State::Backup => self.timers.stop(Timer::MasterDown),
            State::Init => {}
        }
    }

    /// Leaves for good ([`Admin::Shutdown`]), in this order: INIT; as master,
    /// the addresses given up and only then the leave advert, so that the
    /// backup that takes over on it never finds them still here (two
    /// masters, for a moment); last the down script, as MASTER or INIT and
    /// only with [`InstanceParams::down_script_at_exit`] (UCARP `-z`: without
    /// it UCARP runs no script at exit, with it none as BACKUP).
    fn leave(&mut self, now: Nanos) {
        let was = self.state;
        let was_master = was == State::Master;
        self.timers.stop_all();
        self.set_state(now, State::Init, Reason::Shutdown);
        if was_master {
            self.actions.push_back(Action::RemoveVips);
            self.emit_advert(now, true);
        }
        if self.params.down_script_at_exit && was != State::Backup {
            self.actions.push_back(Action::RunScript(Script::Down));
        }
        self.shut_down = true;
    }

    /// Takeover (carp(4) `carp_master_down`): add addresses, advertise,
    /// announce, run the up script.
    fn become_master(&mut self, now: Nanos, reason: Reason) {
        self.timers.stop(Timer::MasterDown);
        self.set_state(now, State::Master, reason);
        self.master = None;
        self.actions.push_back(Action::AddVips);
        self.announce_rounds_left = self.params.announce_rounds;
        self.adverts_since_takeover = 0;
        self.master_advert(now);
        self.actions.push_back(Action::RunScript(Script::Up));
    }

    /// Enters BACKUP, giving up addresses if we were master.
    fn become_backup(&mut self, now: Nanos, reason: Reason) {
        let was_master = self.state == State::Master;
        self.timers.stop(Timer::Advert);
        self.set_state(now, State::Backup, reason);
        if was_master {
            self.give_up();
        }
        self.arm_master_down(now);
    }

    /// Enters INIT, giving up addresses if we were master.
    fn become_init(&mut self, now: Nanos, reason: Reason) {
        let was_master = self.state == State::Master;
        self.timers.stop_all();
        self.set_state(now, State::Init, reason);
        if was_master {
            self.give_up();
        }
    }

    /// The give-up actions, mirroring the takeover.
    fn give_up(&mut self) {
        self.actions.push_back(Action::RemoveVips);
        self.actions.push_back(Action::RunScript(Script::Down));
    }

    /// Records a state change.
    fn set_state(&mut self, now: Nanos, to: State, reason: Reason) {
        let from = self.state;
        if from == to {
            return;
        }
        if from == State::Master {
            self.cancel_prepared();
        }
        self.state = to;
        self.status.transitions += 1;
        self.status.last_change = Some((now, reason));
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    /// Held in BACKUP, by an administrator or by the sync group.
    fn is_held(&self) -> bool {
        self.held || self.group_held
    }

    /// Arms the master-down timer from `now`, unless held.
    fn arm_master_down(&mut self, now: Nanos) {
        self.woke_late = false;
        if self.is_held() {
            self.timers.stop(Timer::MasterDown);
        } else {
            let at = now.saturating_add(self.params.master_down_interval());
            self.timers.set(Timer::MasterDown, at);
        }
    }
}
