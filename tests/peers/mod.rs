//! Emulations of the other CARP implementations, for interoperability tests:
//! UCARP 1.5.2, OpenBSD carp(4) and FreeBSD carp(4), each as a small
//! deterministic state machine in the manner of the protocol core (sans-I/O:
//! no clock, no socket, no random source of its own).
//!
//! Time goes in with every call ([`Peer::handle_advert`],
//! [`Peer::handle_timeout`]); the next deadline comes out of
//! [`Peer::poll_timeout`]; what the peer does comes out of
//! [`Peer::poll_output`]: adverts to send, VIPs to add or remove, state
//! changes. Random counters come from a seeded SplitMix64, so a run is
//! reproducible.
//!
//! The rules are written from the behaviour of each implementation, not
//! copied; each rule names the function of the source it follows:
//! - UCARP: `src/carp.c` (`carp_prepare_ad`, `carp_setrun`,
//!   `carp_master_down`, `packethandler`);
//! - OpenBSD: `sys/netinet/ip_carp.c` (`carp_prepare_ad`, `carp_proto_input_c`,
//!   `carp_setrun`, `carp_hmac_verify`, the bow-out of `carp_ifdown`);
//! - FreeBSD: `sys/netinet/ip_carp.c` (`carp_prepare_ad`, `carp_input_c`,
//!   `carp_setrun`, `DEMOTE_ADVSKEW`). Its counter, as its `carp_prepare_ad`
//!   reads, is a fresh random number in every advert until it adopts a
//!   peer's (`sc_init_counter` is cleared only in `carp_input_c`), then +1 per
//!   advert: the same as UCARP, not one random start.
//!
//! Deliberate simplifications: no gratuitous ARP (the tests look at who
//! holds the VIP, not at the client's ARP cache); UCARP's master-down fires
//! exactly on time (the real one only notices it when its `poll` wakes, up to
//! one interval later); only IPv4 sources.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::IpAddr;

use carp_common::constants::{
    CARP_ADVERTISEMENT, CARP_AUTHLEN, CARP_LEAVE_ADVBASE, CARP_LEAVE_ADVSKEW, CARP_VERSION,
};
use carp_common::header::CarpHeader;
use carp_proto::auth::Authenticator;
use carp_proto::{Nanos, Password};

mod split_mix;
pub use split_mix::SplitMix;

/// One advskew step, 1/256 s, in nanoseconds.
const SKEW_NS: u64 = Nanos::PER_SEC / 256;

/// Longest key the BSD `ifconfig` copies and the longest UCARP accepts: a
/// 20-byte buffer that must end with a NUL.
pub const MAX_KEY_LEN: usize = 19;

/// Which implementation is emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UCARP 1.5.2 (userspace, pcap).
    Ucarp,
    /// OpenBSD carp(4).
    OpenBsd,
    /// FreeBSD carp(4).
    FreeBsd,
}

impl Kind {
    /// The source MAC of its adverts: `00:00:5e:00:00:<vhid>` for UCARP
    /// (`carp_send_ad`), `00:00:5e:00:01:<vhid>` for both BSDs (the VRRP
    /// virtual MAC of the carp interface).
    pub fn source_mac(self, vhid: u8) -> [u8; 6] {
        match self {
            Kind::Ucarp => [0, 0, 0x5e, 0, 0, vhid],
            Kind::OpenBsd | Kind::FreeBsd => [0, 0, 0x5e, 0, 1, vhid],
        }
    }
}

/// How one emulated peer is configured.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Which implementation.
    pub kind: Kind,
    /// Virtual host id.
    pub vhid: u8,
    /// Advertisement base, seconds.
    pub advbase: u8,
    /// Advertisement skew, 1/256 s.
    pub advskew: u8,
    /// OpenBSD: the demote count sent in the demote byte. FreeBSD: the
    /// demotion added to advskew on the wire. UCARP: ignored (it has none).
    pub demote: u8,
    /// Take over from a slower master (UCARP `-P`, the BSD sysctl
    /// `net.inet.carp.preempt`).
    pub preempt: bool,
    /// The password as given to `ifconfig` / `ucarp -p`.
    pub password: Vec<u8>,
    /// The virtual addresses.
    pub vips: Vec<IpAddr>,
    /// Our source address (UCARP `--srcip`, the BSD interface address).
    pub src: IpAddr,
    /// UCARP's dead ratio (`-r`, default 3); the BSDs always use 3.
    pub deadratio: u8,
    /// OpenBSD: put IPv6 link-local VIPs into the HMAC we send (false is what
    /// OpenBSD does). FreeBSD always includes them, UCARP has no IPv6.
    pub hmac_link_local: bool,
    /// Seed of the random counters.
    pub seed: u64,
}

impl PeerConfig {
    /// A peer of `kind` with advbase 1, demote 0, preempt off, deadratio 3.
    pub fn new(
        kind: Kind,
        vhid: u8,
        advskew: u8,
        password: &str,
        vip: IpAddr,
        src: IpAddr,
    ) -> Self {
        Self {
            kind,
            vhid,
            advbase: 1,
            advskew,
            demote: 0,
            preempt: false,
            password: password.as_bytes().to_vec(),
            vips: vec![vip],
            src,
            deadratio: 3,
            hmac_link_local: false,
            seed: u64::from(vhid) << 32 | u64::from(advskew),
        }
    }

    /// The same with preempt set to `on`.
    pub fn preempt(mut self, on: bool) -> Self {
        self.preempt = on;
        self
    }

    /// The same with demote (OpenBSD) / demotion (FreeBSD) set.
    pub fn demote(mut self, demote: u8) -> Self {
        self.demote = demote;
        self
    }
}

/// The states of a peer (INIT is left at creation, as all three do at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Waiting for master-down.
    Backup,
    /// Holding the VIPs and advertising.
    Master,
    /// Stopped for good (shut down).
    Down,
}

/// What the peer asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this advert (checksum and HMAC filled in) from our source address.
    Send(CarpHeader),
    /// Add the VIPs to the interface.
    AddVips,
    /// Remove the VIPs from the interface.
    RemoveVips,
    /// The state changed.
    State {
        /// Before.
        from: PeerState,
        /// After.
        to: PeerState,
    },
}

/// Why an advert was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Not version 2, not an advertisement, or authlen not 7.
    Malformed,
    /// Another vhid.
    Vhid,
    /// The CARP checksum does not verify.
    Checksum,
    /// The HMAC does not verify.
    Auth,
    /// OpenBSD: the counter is our own cookie (our own advert looped back).
    OwnCookie,
    /// Received while down.
    Down,
}

/// Counts of what the peer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Adverts sent.
    pub sent: u64,
    /// Adverts accepted (passed every check).
    pub accepted: u64,
    /// Adverts ignored because the HMAC did not verify.
    pub bad_auth: u64,
    /// Adverts ignored for any other reason.
    pub ignored: u64,
}

/// `advbase + advskew/256` s, exact in nanoseconds.
pub fn interval(advbase: u8, advskew: u8) -> Nanos {
    Nanos(u64::from(advbase) * Nanos::PER_SEC + u64::from(advskew) * SKEW_NS)
}

/// UCARP's tie-break on equal intervals (`packethandler`, MASTER): it
/// compares `ip_src.s_addr < srcip.s_addr`, the network-order words read as
/// host integers. On a little-endian host that is the octets read as a
/// little-endian number: the last octet weighs most. True when `theirs`
/// beats `ours`.
pub fn ucarp_lower_addr(theirs: [u8; 4], ours: [u8; 4]) -> bool {
    u32::from_le_bytes(theirs) < u32::from_le_bytes(ours)
}

/// An emulated CARP peer.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Configuration (the key already cut to what the implementation keeps).
    cfg: PeerConfig,
    /// Current state.
    state: PeerState,
    /// MASTER: when the next advert is due.
    advert_at: Option<Nanos>,
    /// BACKUP: when the master is presumed down.
    master_down_at: Option<Nanos>,
    /// The counter of the last advert sent or adopted.
    counter: u64,
    /// UCARP and FreeBSD: no counter adopted or drawn yet.
    init_counter: bool,
    /// Random counters.
    rng: SplitMix,
    /// Signs our adverts (the HMAC form we send).
    auth: Authenticator,
    /// OpenBSD: the other HMAC form (with / without link-local addresses),
    /// also accepted on receive.
    auth_alt: Option<Authenticator>,
    /// Outputs not yet polled.
    out: VecDeque<Output>,
    /// Counts.
    stats: PeerStats,
}

impl Peer {
    /// A peer started at `now`: it enters BACKUP and arms master-down (all
    /// three: `carp_setrun`, INIT then BACKUP).
    ///
    /// Panics where the implementation refuses the configuration: UCARP a
    /// password over 19 bytes ("Password too long") or advbase and advskew
    /// both 0; FreeBSD advbase 0. The BSDs silently cut the password to 19
    /// bytes, as `ifconfig` does.
    pub fn new(mut cfg: PeerConfig, now: Nanos) -> Self {
        match cfg.kind {
            Kind::Ucarp => {
                assert!(
                    cfg.password.len() <= MAX_KEY_LEN,
                    "UCARP refuses a {}-byte password",
                    cfg.password.len()
                );
                assert!(
                    cfg.advbase > 0 || cfg.advskew > 0,
                    "UCARP refuses advbase 0/advskew 0"
                );
            }
            Kind::FreeBsd => assert!(cfg.advbase > 0, "FreeBSD refuses advbase 0"),
            Kind::OpenBsd => {}
        }
        cfg.password.truncate(MAX_KEY_LEN);
        let key = Password::new(&cfg.password).expect("19 bytes fit");
        let all = cfg.vips.clone();
        let without_ll: Vec<IpAddr> = cfg
            .vips
            .iter()
            .copied()
            .filter(|a| !is_link_local_v6(*a))
            .collect();
        let (auth, auth_alt) = match cfg.kind {
            Kind::OpenBsd => {
                let (send, alt) = if cfg.hmac_link_local {
                    (all, without_ll)
                } else {
                    (without_ll, all)
                };
                (
                    Authenticator::new(key.clone(), &send),
                    Some(Authenticator::new(key, &alt)),
                )
            }
            Kind::Ucarp | Kind::FreeBsd => (Authenticator::new(key, &all), None),
        };
        let mut rng = SplitMix::new(cfg.seed);
        // OpenBSD draws its cookie once per vhost; the others draw in
        // `next_counter`.
        let counter = match cfg.kind {
            Kind::OpenBsd => rng.next_u64(),
            Kind::Ucarp | Kind::FreeBsd => 0,
        };
        let mut me = Self {
            state: PeerState::Backup,
            advert_at: None,
            master_down_at: None,
            counter,
            init_counter: true,
            rng,
            auth,
            auth_alt,
            out: VecDeque::new(),
            stats: PeerStats::default(),
            cfg,
        };
        me.master_down_at = Some(now.saturating_add(me.master_down()));
        me
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    /// The current state.
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Counts so far.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// The counter of the last advert sent or adopted (OpenBSD: the cookie).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Peer::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Nanos> {
        match (self.advert_at, self.master_down_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The advskew on the wire and in our own comparisons: FreeBSD adds its
    /// demotion, capped at 240 (`DEMOTE_ADVSKEW`); the others send their own.
    pub fn wire_advskew(&self) -> u8 {
        match self.cfg.kind {
            Kind::FreeBsd => {
                (u16::from(self.cfg.advskew) + u16::from(self.cfg.demote)).min(240) as u8
            }
            Kind::Ucarp | Kind::OpenBsd => self.cfg.advskew,
        }
    }

    /// The demote byte on the wire: OpenBSD's demote count, 0 for the others.
    pub fn wire_demote(&self) -> u8 {
        match self.cfg.kind {
            Kind::OpenBsd => self.cfg.demote,
            Kind::Ucarp | Kind::FreeBsd => 0,
        }
    }

    /// Our advert interval as we compare it with a master's.
    pub fn interval(&self) -> Nanos {
        let iv = interval(self.cfg.advbase, self.wire_advskew());
        // OpenBSD `carp_setrun`, MASTER: with advbase and advskew both 0 it
        // advertises every 1/256 s.
        if iv == Nanos::ZERO {
            Nanos(SKEW_NS)
        } else {
            iv
        }
    }

    /// How long we wait in BACKUP without adverts (`carp_setrun`, BACKUP):
    /// UCARP `deadratio × advbase + advskew/256`; OpenBSD
    /// `3 × (advbase + advskew/256)`; FreeBSD `3 × advbase + advskew/256`.
    pub fn master_down(&self) -> Nanos {
        let skew = Nanos(u64::from(self.cfg.advskew) * SKEW_NS);
        match self.cfg.kind {
            Kind::Ucarp => {
                Nanos::from_secs(u64::from(self.cfg.advbase) * u64::from(self.cfg.deadratio))
                    .saturating_add(skew)
            }
            Kind::OpenBsd => self.interval().saturating_mul(3),
            Kind::FreeBsd => Nanos::from_secs(3 * u64::from(self.cfg.advbase)).saturating_add(skew),
        }
    }

    /// Changes the demote count (OpenBSD) or demotion (FreeBSD). Like the
    /// kernels, it shows in the next periodic advert.
    pub fn set_demote(&mut self, demote: u8) {
        self.cfg.demote = demote;
    }

    /// The interface goes down for good: OpenBSD, as MASTER, bows out with
    /// one advert carrying advbase and advskew 255 (`carp_ifdown` via
    /// `carp_send_ad` with `sc_bow_out`); UCARP and FreeBSD send nothing.
    /// Every flavour gives up its VIPs.
    pub fn shutdown(&mut self) {
        let was_master = self.state == PeerState::Master;
        if was_master && self.cfg.kind == Kind::OpenBsd {
            self.send(true);
        }
        self.advert_at = None;
        self.master_down_at = None;
        self.set_state(PeerState::Down);
        if was_master {
            self.out.push_back(Output::RemoveVips);
        }
    }

    /// Deadlines that passed by `now`.
    pub fn handle_timeout(&mut self, now: Nanos) {
        if self.state == PeerState::Master && self.advert_at.is_some_and(|t| t <= now) {
            self.send(false);
            self.advert_at = Some(now.saturating_add(self.interval()));
        }
        if self.state == PeerState::Backup && self.master_down_at.is_some_and(|t| t <= now) {
            self.become_master(now);
        }
    }

    /// An advert received from `src` (the driver has checked TTL 255 and
    /// protocol 112; UCARP's pcap filter and the BSD input path also never
    /// hand us our own source address). Returns why it was ignored, if it was.
    pub fn handle_advert(
        &mut self,
        now: Nanos,
        src: IpAddr,
        h: &CarpHeader,
    ) -> Result<(), Ignored> {
        let verdict = self.check(h);
        match verdict {
            Err(Ignored::Auth) => self.stats.bad_auth += 1,
            Err(_) => self.stats.ignored += 1,
            Ok(()) => {
                self.stats.accepted += 1;
                self.elect(now, src, h);
            }
        }
        verdict
    }

    /// The checks of `carp_proto_input` / `packethandler` before the election.
    fn check(&mut self, h: &CarpHeader) -> Result<(), Ignored> {
        if self.state == PeerState::Down {
            return Err(Ignored::Down);
        }
        if h.version() != CARP_VERSION || h.kind() != CARP_ADVERTISEMENT {
            return Err(Ignored::Malformed);
        }
        // UCARP does not look at authlen; the BSDs do not either beyond the
        // length of the packet. Keep the check: every sender sets 7.
        if h.authlen != CARP_AUTHLEN {
            return Err(Ignored::Malformed);
        }
        if h.vhid != self.cfg.vhid {
            return Err(Ignored::Vhid);
        }
        if !h.checksum_ok() {
            return Err(Ignored::Checksum);
        }
        // OpenBSD `carp_hmac_verify`: the digest with link-local addresses or
        // without them.
        let authentic = self.auth.verify(h) || self.auth_alt.as_ref().is_some_and(|a| a.verify(h));
        if !authentic {
            return Err(Ignored::Auth);
        }
        match self.cfg.kind {
            // OpenBSD `carp_proto_input_c`: an advert carrying our own cookie
            // is our own, looped back; nothing else is checked.
            Kind::OpenBsd if h.counter() == self.counter => return Err(Ignored::OwnCookie),
            Kind::OpenBsd => {}
            // UCARP `packethandler`, FreeBSD `carp_input_c`: no replay check;
            // the received counter becomes ours and we continue from it.
            Kind::Ucarp | Kind::FreeBsd => {
                self.counter = h.counter();
                self.init_counter = false;
            }
        }
        Ok(())
    }

    /// The election rules for an accepted advert.
    fn elect(&mut self, now: Nanos, src: IpAddr, h: &CarpHeader) {
        let theirs = interval(h.advbase, h.advskew);
        let ours = self.interval();
        match (self.cfg.kind, self.state) {
            (_, PeerState::Down) => {}
            // UCARP `packethandler`, MASTER: a more frequent master, or an
            // equally frequent one with a lower address as UCARP compares it
            // (host-order integers), makes us send one last advert and go
            // BACKUP.
            (Kind::Ucarp, PeerState::Master) => {
                let lower = match (src, self.cfg.src) {
                    (IpAddr::V4(t), IpAddr::V4(o)) => ucarp_lower_addr(t.octets(), o.octets()),
                    _ => false,
                };
                if ours > theirs || (ours == theirs && lower) {
                    self.send(false);
                    self.become_backup(now);
                }
            }
            // OpenBSD `carp_proto_input_c`, MASTER: yield to a master at
            // least as frequent whose demote is not higher than ours, or to
            // any master whose demote is lower. No last advert.
            (Kind::OpenBsd, PeerState::Master) => {
                let (d_theirs, d_ours) = (h.demote, self.cfg.demote);
                if (theirs <= ours && d_theirs <= d_ours) || d_theirs < d_ours {
                    self.become_backup(now);
                }
            }
            // FreeBSD `carp_input_c`, MASTER: yield to a master at least as
            // frequent (ties yield). The demote byte is not read.
            (Kind::FreeBsd, PeerState::Master) => {
                if theirs <= ours {
                    self.become_backup(now);
                }
            }
            // UCARP `packethandler`, BACKUP: with preempt, take over from a
            // strictly slower master; take over from one slower than
            // `deadratio × advbase` s plus our own skew (the seconds of our
            // interval are replaced, the microseconds kept); otherwise re-arm
            // master-down.
            (Kind::Ucarp, PeerState::Backup) => {
                let doomed =
                    Nanos::from_secs(u64::from(self.cfg.advbase) * u64::from(self.cfg.deadratio))
                        .saturating_add(Nanos(u64::from(self.cfg.advskew) * SKEW_NS));
                if (self.cfg.preempt && ours < theirs) || doomed < theirs {
                    self.become_master(now);
                } else {
                    self.rearm(now);
                }
            }
            // OpenBSD `carp_proto_input_c`, BACKUP: with preempt, take over
            // from a slower master whose demote is not lower than ours;
            // regardless of preempt, from a master with a higher demote; from
            // a master slower than 3 × advbase s (plus our skew, as above:
            // this is what makes a bow-out advert, 255/255, end its reign at
            // once); otherwise re-arm master-down.
            (Kind::OpenBsd, PeerState::Backup) => {
                let (d_theirs, d_ours) = (h.demote, self.cfg.demote);
                let doomed = Nanos::from_secs(3 * u64::from(self.cfg.advbase))
                    .saturating_add(Nanos(u64::from(self.cfg.advskew) * SKEW_NS));
                if (self.cfg.preempt && ours < theirs && d_theirs >= d_ours)
                    || d_theirs > d_ours
                    || (self.cfg.advbase > 0 && doomed < theirs)
                {
                    self.become_master(now);
                } else {
                    self.rearm(now);
                }
            }
            // FreeBSD `carp_input_c`, BACKUP: with preempt, take over from a
            // slower master; from one slower than 3 × advbase s (plus our
            // skew); otherwise re-arm master-down.
            (Kind::FreeBsd, PeerState::Backup) => {
                let doomed = Nanos::from_secs(3 * u64::from(self.cfg.advbase))
                    .saturating_add(Nanos(u64::from(self.wire_advskew()) * SKEW_NS));
                if (self.cfg.preempt && ours < theirs) || doomed < theirs {
                    self.become_master(now);
                } else {
                    self.rearm(now);
                }
            }
        }
    }

    /// Re-arms master-down from `now` (`carp_setrun`, BACKUP).
    fn rearm(&mut self, now: Nanos) {
        self.master_down_at = Some(now.saturating_add(self.master_down()));
    }

    /// `carp_master_down`: MASTER, one advert at once, the VIPs.
    fn become_master(&mut self, now: Nanos) {
        self.master_down_at = None;
        self.set_state(PeerState::Master);
        self.out.push_back(Output::AddVips);
        self.send(false);
        self.advert_at = Some(now.saturating_add(self.interval()));
    }

    /// MASTER to BACKUP: stop advertising, give up the VIPs, arm master-down.
    fn become_backup(&mut self, now: Nanos) {
        self.advert_at = None;
        self.set_state(PeerState::Backup);
        self.out.push_back(Output::RemoveVips);
        self.rearm(now);
    }

    fn set_state(&mut self, to: PeerState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.out.push_back(Output::State { from, to });
        }
    }

    /// The counter of the next advert (`carp_prepare_ad`).
    fn next_counter(&mut self) -> u64 {
        match self.cfg.kind {
            // OpenBSD: the same cookie in every advert.
            Kind::OpenBsd => {}
            // UCARP and FreeBSD: a fresh random counter in every advert until
            // one was adopted from a peer (`sc_init_counter` is cleared only
            // on receive), then +1 per advert (UCARP wraps to 0 after all
            // ones, FreeBSD by overflow: the same).
            Kind::Ucarp | Kind::FreeBsd if self.init_counter => self.counter = self.rng.next_u64(),
            Kind::Ucarp | Kind::FreeBsd => self.counter = self.counter.wrapping_add(1),
        }
        self.counter
    }

    /// Queues one advert; a bow-out carries advbase and advskew 255.
    fn send(&mut self, bow_out: bool) {
        let (advbase, advskew) = if bow_out {
            (CARP_LEAVE_ADVBASE, CARP_LEAVE_ADVSKEW)
        } else {
            (self.cfg.advbase, self.wire_advskew())
        };
        let counter = self.next_counter();
        let mut h =
            CarpHeader::advertisement(self.cfg.vhid, advbase, advskew, self.wire_demote(), counter);
        self.auth.seal(&mut h);
        self.stats.sent += 1;
        self.out.push_back(Output::Send(h));
    }
}

/// True for an IPv6 link-local address (fe80::/10).
fn is_link_local_v6(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}
