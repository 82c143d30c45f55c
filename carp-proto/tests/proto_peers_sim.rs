//! The protocol core against the peer emulations of `tests/peers` (UCARP,
//! OpenBSD, FreeBSD) on a simulated two-node segment with virtual time: the
//! same questions as the namespace tests `interop_ucarp` / `interop_bsd`,
//! answered in milliseconds and over many configurations.
//!
//! - property: whatever the peer, its advskew and ours, preempt, addresses,
//!   who starts first and the replay mode, once both have run for a while
//!   exactly one is MASTER, and nothing changes state any more;
//! - the cases the namespace tests reproduce, as fixed scenarios.

mod peer_sim;
#[path = "../../tests/peers/mod.rs"]
mod peers;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_proto::{
    Action, Admin, Instance, InstanceParams, Nanos, Password, ReplayMode, Sender, State,
};
use peers::{Kind, Output, Peer, PeerConfig, PeerState};
use proptest::prelude::*;

const VHID: u8 = 21;
const PASS: &[u8] = b"peers-sim";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
/// One-way delay of the segment.
const DELAY: Nanos = Nanos(1_000_000);
/// Wall-clock time of our instance at virtual time zero.
const BASE_UNIX_NS: u64 = 1_763_000_000_000_000_000;
/// Steps after which a run is declared a livelock.
const MAX_STEPS: u64 = 1_000_000;

/// How the pair is set up.
#[derive(Clone, Debug)]
struct Setup {
    kind: Kind,
    our_addr: Ipv4Addr,
    peer_addr: Ipv4Addr,
    our_advskew: u8,
    peer_advskew: u8,
    our_preempt: bool,
    peer_preempt: bool,
    our_demote: u8,
    mode: ReplayMode,
    /// When our instance starts (the peer starts at 0).
    our_start: Nanos,
    seed: u64,
}

/// Who receives a frame in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum To {
    Ours,
    Peer,
}

/// A frame in flight: (delivery time, sequence, receiver, CARP bytes).
type InFlight = (Nanos, u64, To, [u8; 36]);

/// carpd-xdp's core and one emulated peer on one segment.
struct Pair {
    now: Nanos,
    setup: Setup,
    ours: Option<Instance>,
    peer: Peer,
    peer_alive: bool,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    steps: u64,
    /// Every state change: (time, who, MASTER or not).
    changes: Vec<(Nanos, To, bool)>,
}

impl Pair {
    fn new(setup: Setup) -> Pair {
        let mut cfg = PeerConfig::new(
            setup.kind,
            VHID,
            setup.peer_advskew,
            "peers-sim",
            IpAddr::V4(VIP),
            IpAddr::V4(setup.peer_addr),
        )
        .preempt(setup.peer_preempt);
        cfg.seed = setup.seed;
        let mut pair = Pair {
            now: Nanos::ZERO,
            ours: None,
            peer: Peer::new(cfg, Nanos::ZERO),
            peer_alive: true,
            queue: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            changes: Vec::new(),
            setup,
        };
        pair.drain();
        pair
    }

    fn start_ours(&mut self) {
        let s = &self.setup;
        let mut p = InstanceParams::new(
            VHID,
            Password::new(PASS).unwrap(),
            vec![IpAddr::V4(VIP)],
            vec![IpAddr::V4(s.our_addr)],
        );
        p.advskew = s.our_advskew;
        p.preempt = s.our_preempt;
        p.demote = s.our_demote;
        p.replay_mode = s.mode;
        self.ours = Some(Instance::new(p, self.now, BASE_UNIX_NS + self.now.0).unwrap());
        self.drain();
    }

    fn send(&mut self, to: To, h: CarpHeader) {
        self.seq += 1;
        let at = self.now.saturating_add(DELAY);
        self.queue.push(Reverse((at, self.seq, to, h.to_bytes())));
    }

    /// Carries out what both sides queued.
    fn drain(&mut self) {
        while let Some(out) = self.peer.poll_output() {
            match out {
                Output::Send(h) => self.send(To::Ours, h),
                Output::State { to, .. } => {
                    self.changes
                        .push((self.now, To::Peer, to == PeerState::Master))
                }
                Output::AddVips | Output::RemoveVips => {}
            }
        }
        let mut sends = Vec::new();
        if let Some(ours) = self.ours.as_mut() {
            while let Some(a) = ours.poll_action() {
                match a {
                    Action::SendAdvert(h) => sends.push(h),
                    Action::StateChanged { to, .. } => {
                        self.changes.push((self.now, To::Ours, to == State::Master))
                    }
                    _ => {}
                }
            }
        }
        for h in sends {
            self.send(To::Peer, h);
        }
    }

    fn run_until(&mut self, until: Nanos) {
        loop {
            if self.ours.is_none() && self.now >= self.setup.our_start {
                self.start_ours();
            }
            let mut next = [
                self.queue.peek().map(|Reverse((t, ..))| *t),
                self.peer_alive.then(|| self.peer.poll_timeout()).flatten(),
                self.ours.as_ref().and_then(Instance::poll_timeout),
                self.ours.is_none().then_some(self.setup.our_start),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(until.saturating_add(Nanos(1)));
            next = next.max(self.now);
            if next > until {
                self.now = until;
                return;
            }
            self.steps += 1;
            assert!(self.steps < MAX_STEPS, "livelock at {}", self.now);
            self.now = next;
            while let Some(Reverse((t, _, to, bytes))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let h = CarpHeader::from_bytes(&bytes);
                match to {
                    To::Peer if self.peer_alive => {
                        let src = IpAddr::V4(self.setup.our_addr);
                        let _ = self.peer.handle_advert(self.now, src, &h);
                    }
                    To::Ours => {
                        if let Some(ours) = self.ours.as_mut() {
                            let src = Sender {
                                addr: IpAddr::V4(self.setup.peer_addr),
                                mac: self.setup.kind.source_mac(VHID),
                            };
                            let _ = ours.handle_advert(self.now, src, &h);
                        }
                    }
                    To::Peer => {}
                }
                self.drain();
            }
            if self.peer_alive && self.peer.poll_timeout().is_some_and(|t| t <= self.now) {
                self.peer.handle_timeout(self.now);
            }
            if let Some(ours) = self.ours.as_mut() {
                if ours.poll_timeout().is_some_and(|t| t <= self.now) {
                    ours.handle_timeout(self.now);
                }
            }
            self.drain();
        }
    }

    fn ours_master(&self) -> bool {
        self.ours
            .as_ref()
            .is_some_and(|o| o.state() == State::Master)
    }

    fn peer_master(&self) -> bool {
        self.peer_alive && self.peer.state() == PeerState::Master
    }

    fn describe(&self) -> String {
        format!(
            "at {}: ours {:?} {:?}, peer {:?} {:?}; changes {:?}",
            self.now,
            self.ours.as_ref().map(Instance::state),
            self.ours.as_ref().map(|o| o.status().rejects),
            self.peer.state(),
            self.peer.stats(),
            self.changes
        )
    }
}

fn setup(kind: Kind, our_advskew: u8, peer_advskew: u8) -> Setup {
    Setup {
        kind,
        our_addr: Ipv4Addr::new(10, 99, 0, 1),
        peer_addr: Ipv4Addr::new(10, 99, 0, 2),
        our_advskew,
        peer_advskew,
        our_preempt: true,
        peer_preempt: true,
        our_demote: 0,
        mode: ReplayMode::Auto,
        our_start: Nanos::ZERO,
        seed: 1,
    }
}

/// Runs 60 s, then checks that exactly one is MASTER and nobody changed
/// state in the last 30 s.
fn assert_settles(s: Setup) -> Pair {
    let mut pair = Pair::new(s);
    pair.run_until(Nanos::from_secs(60));
    let late: Vec<_> = pair
        .changes
        .iter()
        .filter(|(t, ..)| *t >= Nanos::from_secs(30))
        .collect();
    assert!(
        pair.ours_master() != pair.peer_master() && late.is_empty(),
        "not exactly one stable master: {}",
        pair.describe()
    );
    pair
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..=3, 1u8..=3).prop_map(|(c, d)| Ipv4Addr::new(10, 99, c, d))
}

/// A random setup with a peer of `kind` (advskews include the tie 0/0).
fn any_setup(kind: Kind) -> impl Strategy<Value = Setup> {
    (
        (addr(), addr()),
        prop_oneof![Just(0u8), Just(100u8), any::<u8>().prop_map(|s| s.min(254))],
        prop_oneof![Just(0u8), Just(100u8), any::<u8>().prop_map(|s| s.min(240))],
        (any::<bool>(), any::<bool>()),
        prop_oneof![Just(ReplayMode::Auto), Just(ReplayMode::Compat)],
        0u64..8_000,
        any::<u64>(),
    )
        .prop_filter("distinct addresses", |((a, b), ..)| a != b)
        .prop_map(
            move |(
                (our_addr, peer_addr),
                our_advskew,
                peer_advskew,
                (op, pp),
                mode,
                start,
                seed,
            )| {
                Setup {
                    kind,
                    our_addr,
                    peer_addr,
                    our_advskew,
                    peer_advskew,
                    our_preempt: op,
                    peer_preempt: pp,
                    our_demote: 0,
                    mode,
                    our_start: Nanos::from_millis(start),
                    seed,
                }
            },
        )
}

/// Runs 60 s; exactly one MASTER at the end and no state change in the
/// last 30 s.
fn one_stable_master(s: Setup) -> Result<(), TestCaseError> {
    let mut pair = Pair::new(s);
    pair.run_until(Nanos::from_secs(60));
    let late = pair
        .changes
        .iter()
        .filter(|(t, ..)| *t >= Nanos::from_secs(30))
        .count();
    prop_assert!(
        pair.ours_master() != pair.peer_master() && late == 0,
        "not exactly one stable master: {}",
        pair.describe()
    );
    Ok(())
}

proptest! {
    #![proptest_config(peer_sim::proptest_config())]

    #[test]
    fn one_stable_master_with_ucarp(s in any_setup(Kind::Ucarp)) {
        one_stable_master(s)?;
    }

    #[test]
    fn one_stable_master_with_openbsd(s in any_setup(Kind::OpenBsd)) {
        one_stable_master(s)?;
    }

    #[test]
    fn one_stable_master_with_freebsd(s in any_setup(Kind::FreeBsd)) {
        one_stable_master(s)?;
    }
}

#[test]
fn openbsd_master_with_constant_cookie_keeps_us_backup() {
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut s = setup(Kind::OpenBsd, 100, 0);
        s.mode = mode;
        s.our_start = Nanos::from_secs(5);
        let mut pair = Pair::new(s);
        pair.run_until(Nanos::from_secs(30));
        assert!(
            pair.peer_master() && !pair.ours_master(),
            "{mode:?}: {}",
            pair.describe()
        );
    }
}

#[test]
fn ucarp_tie_in_layouts_where_byte_orders_disagree() {
    for (ours, theirs) in [
        ([10, 99, 1, 2], [10, 99, 2, 1]),
        ([10, 99, 2, 1], [10, 99, 1, 2]),
    ] {
        for our_start in [Nanos::ZERO, Nanos::from_secs(5)] {
            let mut s = setup(Kind::Ucarp, 0, 0);
            s.our_addr = Ipv4Addr::from(ours);
            s.peer_addr = Ipv4Addr::from(theirs);
            s.our_start = our_start;
            assert_settles(s);
        }
    }
}

#[test]
fn demoted_master_loses_to_a_freebsd_or_ucarp_backup_with_preempt() {
    for kind in [Kind::FreeBsd, Kind::Ucarp, Kind::OpenBsd] {
        let mut pair = Pair::new(setup(kind, 0, 50));
        pair.run_until(Nanos::from_secs(10));
        assert!(pair.ours_master(), "{kind:?}: {}", pair.describe());
        let now = pair.now;
        pair.ours.as_mut().unwrap().set_demote(now, 100);
        pair.drain();
        pair.run_until(Nanos::from_secs(20));
        assert!(
            pair.peer_master() && !pair.ours_master(),
            "{kind:?} backup (advskew 50, preempt) did not take over from our demoted master: {}",
            pair.describe()
        );
    }
}

#[test]
fn each_peer_takes_over_at_once_when_we_leave() {
    for kind in [Kind::Ucarp, Kind::OpenBsd, Kind::FreeBsd] {
        let mut s = setup(kind, 0, 100);
        s.peer_preempt = false;
        let mut pair = Pair::new(s);
        pair.run_until(Nanos::from_secs(10));
        assert!(pair.ours_master(), "{kind:?}: {}", pair.describe());
        let now = pair.now;
        pair.ours
            .as_mut()
            .unwrap()
            .handle_admin(now, Admin::Shutdown);
        pair.drain();
        pair.run_until(now.saturating_add(Nanos::from_millis(10)));
        assert!(
            pair.peer_master() && !pair.ours_master(),
            "{kind:?} did not take over on our leave advert: {}",
            pair.describe()
        );
    }
}

#[test]
fn we_take_over_within_master_down_and_one_interval_when_the_peer_dies() {
    for kind in [Kind::Ucarp, Kind::OpenBsd, Kind::FreeBsd] {
        let mut s = setup(kind, 100, 0);
        s.our_start = Nanos::from_secs(4);
        let mut pair = Pair::new(s);
        pair.run_until(Nanos::from_secs(20));
        assert!(
            pair.peer_master() && !pair.ours_master(),
            "{kind:?} master before its death: {}",
            pair.describe()
        );
        let dead_at = pair.now;
        pair.peer_alive = false;
        let params = pair.ours.as_ref().unwrap().params().clone();
        let bound = dead_at
            .saturating_add(params.master_down_interval())
            .saturating_add(params.advert_interval())
            .saturating_add(DELAY);
        pair.run_until(bound);
        assert!(pair.ours_master(), "{kind:?}: {}", pair.describe());
    }
}
