//! Mixed clusters in virtual time: two or three hosts on one segment, each
//! running carpd-xdp's core or an emulation of UCARP, OpenBSD or FreeBSD
//! (`tests/peers`), with random priorities, preempt settings, addresses,
//! start times and replay modes. The property of issue 11: once the network
//! is whole there is exactly one master, for good.
//!
//! The foreign hosts of one cluster run one implementation, and BSD hosts
//! have advskews of their own: two OpenBSD (or FreeBSD) masters of equal rank
//! both yield to each other, a flap of theirs that no third host can settle.

mod peer_sim;
#[path = "../../tests/peers/mod.rs"]
mod peers;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_proto::{Action, Instance, InstanceParams, Nanos, Password, ReplayMode, Sender, State};
use peers::{Kind, Output, Peer, PeerConfig, PeerState};
use proptest::prelude::*;

const VHID: u8 = 33;
const PASS: &str = "mixed-sim";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
/// One-way delay between any two hosts.
const DELAY: Nanos = Nanos(1_000_000);
/// Wall-clock time of every carpd-xdp core at virtual time zero.
const BASE_UNIX_NS: u64 = 1_763_000_000_000_000_000;
/// Steps after which a run is declared a livelock.
const MAX_STEPS: u64 = 2_000_000;
/// How long a run lasts, and from when nothing may change any more.
const RUN: Nanos = Nanos::from_secs(60);
const SETTLED: Nanos = Nanos::from_secs(30);

/// One host's configuration.
#[derive(Clone, Debug)]
struct HostSpec {
    /// `None`: carpd-xdp; otherwise the emulated implementation.
    kind: Option<Kind>,
    addr: Ipv4Addr,
    advskew: u8,
    preempt: bool,
    /// When it starts.
    start: Nanos,
    /// Replay mode (carpd-xdp) or the seed of its random counters (peers).
    mode: ReplayMode,
    seed: u64,
}

/// A running host.
enum Node {
    Ours(Box<Instance>),
    Peer(Box<Peer>),
}

impl Node {
    fn is_master(&self) -> bool {
        match self {
            Node::Ours(i) => i.state() == State::Master,
            Node::Peer(p) => p.state() == PeerState::Master,
        }
    }

    fn poll_timeout(&self) -> Option<Nanos> {
        match self {
            Node::Ours(i) => i.poll_timeout(),
            Node::Peer(p) => p.poll_timeout(),
        }
    }
}

/// A frame in flight: (delivery time, sequence, receiver, sender, bytes).
type InFlight = (Nanos, u64, usize, usize, [u8; 36]);

/// The segment.
struct Cluster {
    now: Nanos,
    specs: Vec<HostSpec>,
    nodes: Vec<Option<Node>>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    steps: u64,
    /// Every change of mastership: (time, host, now master).
    changes: Vec<(Nanos, usize, bool)>,
}

impl Cluster {
    fn new(specs: Vec<HostSpec>) -> Cluster {
        let n = specs.len();
        Cluster {
            now: Nanos::ZERO,
            specs,
            nodes: (0..n).map(|_| None).collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            changes: Vec::new(),
        }
    }

    fn start(&mut self, i: usize) {
        let s = &self.specs[i];
        let node = match s.kind {
            None => {
                let mut p = InstanceParams::new(
                    VHID,
                    Password::new(PASS.as_bytes()).unwrap(),
                    vec![IpAddr::V4(VIP)],
                    vec![IpAddr::V4(s.addr)],
                );
                p.advskew = s.advskew;
                p.preempt = s.preempt;
                p.replay_mode = s.mode;
                Node::Ours(Box::new(
                    Instance::new(p, self.now, BASE_UNIX_NS + self.now.0).unwrap(),
                ))
            }
            Some(kind) => {
                let mut cfg = PeerConfig::new(
                    kind,
                    VHID,
                    s.advskew,
                    PASS,
                    IpAddr::V4(VIP),
                    IpAddr::V4(s.addr),
                )
                .preempt(s.preempt);
                cfg.seed = s.seed;
                Node::Peer(Box::new(Peer::new(cfg, self.now)))
            }
        };
        self.nodes[i] = Some(node);
        self.drain(i);
    }

    /// The Ethernet source of host `i`'s adverts.
    fn mac(&self, i: usize) -> [u8; 6] {
        match self.specs[i].kind {
            Some(kind) => kind.source_mac(VHID),
            None => [0x02, 0, 0, 0, 0, i as u8 + 1],
        }
    }

    fn broadcast(&mut self, from: usize, h: CarpHeader) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.seq += 1;
                let at = self.now.saturating_add(DELAY);
                self.queue
                    .push(Reverse((at, self.seq, to, from, h.to_bytes())));
            }
        }
    }

    fn drain(&mut self, i: usize) {
        let mut sends = Vec::new();
        let mut master = None;
        match self.nodes[i].as_mut() {
            Some(Node::Ours(inst)) => {
                while let Some(a) = inst.poll_action() {
                    match a {
                        Action::SendAdvert(h) => sends.push(h),
                        Action::StateChanged { to, .. } => master = Some(to == State::Master),
                        _ => {}
                    }
                }
            }
            Some(Node::Peer(p)) => {
                while let Some(o) = p.poll_output() {
                    match o {
                        Output::Send(h) => sends.push(h),
                        Output::State { to, .. } => master = Some(to == PeerState::Master),
                        Output::AddVips | Output::RemoveVips => {}
                    }
                }
            }
            None => {}
        }
        if let Some(m) = master {
            self.changes.push((self.now, i, m));
        }
        for h in sends {
            self.broadcast(i, h);
        }
    }

    fn run(&mut self) {
        loop {
            let next = self
                .queue
                .peek()
                .map(|Reverse((t, ..))| *t)
                .into_iter()
                .chain(self.nodes.iter().flatten().filter_map(Node::poll_timeout))
                .chain(
                    self.specs
                        .iter()
                        .zip(&self.nodes)
                        .filter(|(_, n)| n.is_none())
                        .map(|(s, _)| s.start),
                )
                .min()
                .unwrap_or(RUN)
                .max(self.now);
            if next >= RUN {
                self.now = RUN;
                return;
            }
            self.steps += 1;
            assert!(self.steps < MAX_STEPS, "livelock at {}", self.now);
            self.now = next;
            for i in 0..self.nodes.len() {
                if self.nodes[i].is_none() && self.specs[i].start <= self.now {
                    self.start(i);
                }
            }
            while let Some(Reverse((t, _, to, from, bytes))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let h = CarpHeader::from_bytes(&bytes);
                let src = IpAddr::V4(self.specs[from].addr);
                let mac = self.mac(from);
                match self.nodes[to].as_mut() {
                    Some(Node::Ours(i)) => {
                        let _ = i.handle_advert(self.now, Sender { addr: src, mac }, &h);
                    }
                    Some(Node::Peer(p)) => {
                        let _ = p.handle_advert(self.now, src, &h);
                    }
                    None => {}
                }
                self.drain(to);
            }
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .as_ref()
                    .and_then(Node::poll_timeout)
                    .is_some_and(|t| t <= self.now);
                if due {
                    match self.nodes[i].as_mut() {
                        Some(Node::Ours(inst)) => inst.handle_timeout(self.now),
                        Some(Node::Peer(p)) => p.handle_timeout(self.now),
                        None => {}
                    }
                    self.drain(i);
                }
            }
        }
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].as_ref().is_some_and(Node::is_master))
            .collect()
    }

    fn describe(&self) -> String {
        let late: Vec<_> = self
            .changes
            .iter()
            .filter(|(t, ..)| *t >= SETTLED)
            .take(6)
            .collect();
        format!(
            "masters at the end {:?}; changes after {SETTLED}: {late:?}; hosts {:#?}",
            self.masters(),
            self.specs
        )
    }
}

/// Addresses whose host-order and big-endian orders often disagree.
fn any_addr() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..4, 1u8..4).prop_map(|(c, d)| Ipv4Addr::new(10, 99, c, d))
}

fn any_host(kind: Option<Kind>) -> impl Strategy<Value = HostSpec> {
    (
        any_addr(),
        prop_oneof![Just(0u8), Just(0), Just(50), Just(100)],
        any::<bool>(),
        // Hosts that start together reach master-down together: two
        // masters of equal rank hear each other, the case to settle.
        prop_oneof![Just(0u64), Just(0), 0u64..6_000],
        prop_oneof![Just(ReplayMode::Auto), Just(ReplayMode::Compat)],
        any::<u64>(),
    )
        .prop_map(
            move |(addr, advskew, preempt, start, mode, seed)| HostSpec {
                kind,
                addr,
                advskew,
                preempt,
                start: Nanos::from_millis(start),
                mode,
                seed,
            },
        )
}

/// Two or three hosts: carpd-xdp first, then carpd-xdp or the cluster's one
/// foreign implementation.
fn any_cluster() -> impl Strategy<Value = Vec<HostSpec>> {
    let foreign = prop_oneof![Just(Kind::Ucarp), Just(Kind::OpenBsd), Just(Kind::FreeBsd)];
    (foreign, 2usize..=3, prop::collection::vec(any::<bool>(), 2))
        .prop_flat_map(|(kind, n, ours)| {
            let kinds: Vec<Option<Kind>> = std::iter::once(None)
                .chain((1..n).map(|i| if ours[i - 1] { None } else { Some(kind) }))
                .collect();
            kinds.into_iter().map(any_host).collect::<Vec<_>>()
        })
        .prop_filter("distinct addresses", |hosts| {
            let mut a: Vec<_> = hosts.iter().map(|h| h.addr).collect();
            a.sort();
            a.dedup();
            a.len() == hosts.len()
        })
        .prop_filter("BSD hosts of distinct rank among themselves", |hosts| {
            let bsd: Vec<u8> = hosts
                .iter()
                .filter(|h| matches!(h.kind, Some(Kind::OpenBsd | Kind::FreeBsd)))
                .map(|h| h.advskew)
                .collect();
            let mut d = bsd.clone();
            d.sort();
            d.dedup();
            d.len() == bsd.len()
        })
}

proptest! {
    #![proptest_config(peer_sim::proptest_config())]

    #[test]
    fn one_stable_master_in_mixed_pairs_and_triples(hosts in any_cluster()) {
        let mut c = Cluster::new(hosts);
        c.run();
        let late = c.changes.iter().filter(|(t, ..)| *t >= SETTLED).count();
        prop_assert!(
            c.masters().len() == 1 && late == 0,
            "not exactly one stable master: {}",
            c.describe()
        );
    }
}

#[test]
fn three_hosts_with_ucarp_at_equal_rank_keep_one_master() {
    // Every host at advskew 0, UCARP on the middle address of its order.
    let host = |kind, addr: [u8; 4], start| HostSpec {
        kind,
        addr: Ipv4Addr::from(addr),
        advskew: 0,
        preempt: true,
        start: Nanos::from_millis(start),
        mode: ReplayMode::Auto,
        seed: 7,
    };
    let mut c = Cluster::new(vec![
        host(None, [10, 99, 1, 2], 0),
        host(Some(Kind::Ucarp), [10, 99, 2, 3], 100),
        host(None, [10, 99, 3, 1], 4_000),
    ]);
    c.run();
    // No preempt on a tie: the first master stays, whoever joins later.
    assert_eq!(c.masters().len(), 1, "{}", c.describe());
    assert!(
        c.changes.iter().all(|(t, ..)| *t < SETTLED),
        "{}",
        c.describe()
    );
}
