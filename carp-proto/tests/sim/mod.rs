//! A deterministic network of protocol cores with virtual time, in the
//! manner of quinn-proto's test pair: N nodes on one segment, a delay per
//! directed link, random loss (its own random stream per sender, seeded),
//! partitions (cut directed links), crashes, and an on-path attacker that can
//! inject any advert under any source address. Time jumps to the next
//! delivery or deadline; the number of steps is bounded to catch livelock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_proto::election::Priority;
use carp_proto::{Action, Instance, InstanceParams, Nanos, Password, Reject, ReplayMode, State};

#[path = "../../../tests/peers/split_mix.rs"]
mod split_mix;
pub use split_mix::SplitMix;

/// Wall-clock time of node 0 at virtual time zero.
const BASE_UNIX_NS: u64 = 1_763_000_000_000_000_000;

/// Steps after which a run is declared a livelock.
const MAX_STEPS: u64 = 2_000_000;

/// How one node is configured.
#[derive(Clone, Copy, Debug)]
pub struct NodeSpec {
    /// advbase in seconds.
    pub advbase_secs: u8,
    /// advskew.
    pub advskew: u8,
    /// Demote counter.
    pub demote: u8,
    /// Preempt on.
    pub preempt: bool,
}

/// A state change seen in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: Nanos,
    /// Which node.
    pub node: usize,
    /// Previous state.
    pub from: State,
    /// New state.
    pub to: State,
}

/// A packet in flight: (delivery time, sequence) orders the queue.
type InFlight = Reverse<(Nanos, u64, usize, IpAddr, [u8; 36])>;

/// One node.
pub struct Node {
    /// Its protocol core.
    pub instance: Instance,
    /// Its source address.
    pub addr: IpAddr,
    /// Its configuration.
    pub spec: NodeSpec,
    /// False once crashed.
    pub alive: bool,
}

/// The simulated segment.
pub struct Sim {
    /// Virtual time.
    pub now: Nanos,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Packets in flight.
    queue: BinaryHeap<InFlight>,
    /// Next sequence number of the queue.
    seq: u64,
    /// Delay of each directed link, `delay[from][to]`.
    delay: Vec<Vec<Nanos>>,
    /// Cut directed links, `cut[from][to]`.
    cut: Vec<Vec<bool>>,
    /// Loss probability in parts per million.
    loss_ppm: u64,
    /// Loss generator per sender.
    rng: Vec<SplitMix>,
    /// Every state change.
    pub transitions: Vec<Transition>,
    /// Every advert sent: (time, node, header).
    pub sent: Vec<(Nanos, usize, CarpHeader)>,
    /// Every rejected delivery: (time, receiver, sender address, rejection).
    pub rejected: Vec<(Nanos, usize, IpAddr, Reject)>,
    /// Steps taken.
    steps: u64,
}

impl Sim {
    /// Nodes 10.0.0.1, 10.0.0.2, ... started at time zero.
    pub fn new(specs: &[NodeSpec], delay: Vec<Vec<Nanos>>, mode: ReplayMode, seed: u64) -> Self {
        let n = specs.len();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
                let mut p = InstanceParams::new(
                    1,
                    Password::new(b"sim").unwrap(),
                    vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
                    vec![addr],
                );
                p.advbase_secs = spec.advbase_secs;
                p.advskew = spec.advskew;
                p.demote = spec.demote;
                p.preempt = spec.preempt;
                p.replay_mode = mode;
                let wall = BASE_UNIX_NS + i as u64 * 1_000_000;
                let instance = Instance::new(p, Nanos::ZERO, wall).unwrap();
                Node {
                    instance,
                    addr,
                    spec: *spec,
                    alive: true,
                }
            })
            .collect();
        let mut sim = Self {
            now: Nanos::ZERO,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            delay,
            cut: vec![vec![false; n]; n],
            loss_ppm: 0,
            rng: (0..n)
                .map(|i| SplitMix::new(seed ^ ((i as u64) << 32)))
                .collect(),
            transitions: Vec::new(),
            sent: Vec::new(),
            rejected: Vec::new(),
            steps: 0,
        };
        for i in 0..n {
            sim.drain(i);
        }
        sim
    }

    /// Sets the loss probability of every link, in parts per million.
    pub fn set_loss_ppm(&mut self, ppm: u64) {
        self.loss_ppm = ppm;
    }

    /// Cuts or restores the directed link `from → to`.
    pub fn set_cut(&mut self, from: usize, to: usize, cut: bool) {
        self.cut[from][to] = cut;
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut
            .iter_mut()
            .for_each(|r| r.iter_mut().for_each(|c| *c = false));
    }

    /// Crashes a node: it sends and hears nothing more.
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].alive = false;
    }

    /// The attacker delivers `header` to `to` at `at`, claiming `src`.
    pub fn inject(&mut self, at: Nanos, to: usize, src: IpAddr, header: &CarpHeader) {
        self.seq += 1;
        self.queue
            .push(Reverse((at, self.seq, to, src, header.to_bytes())));
    }

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Nanos) {
        loop {
            let next_packet = self.queue.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.instance.poll_timeout())
                .min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => until.saturating_add(Nanos(1)),
                },
            };
            if next > until {
                self.now = until;
                return;
            }
            self.steps += 1;
            assert!(self.steps < MAX_STEPS, "livelock at {}", self.now);
            self.now = self.now.max(next);
            self.deliver_due();
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .instance
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now);
                if self.nodes[i].alive && due {
                    self.nodes[i].instance.handle_timeout(self.now);
                    self.drain(i);
                }
            }
        }
    }

    /// Delivers every packet due now.
    fn deliver_due(&mut self) {
        while let Some(Reverse((t, _, to, src, bytes))) = self.queue.peek().cloned() {
            if t > self.now {
                break;
            }
            self.queue.pop();
            if !self.nodes[to].alive {
                continue;
            }
            let h = CarpHeader::from_bytes(&bytes);
            if let Err(r) = self.nodes[to].instance.handle_advert(self.now, src, &h) {
                self.rejected.push((self.now, to, src, r));
            }
            self.drain(to);
        }
    }

    /// Carries out the actions of node `i`.
    fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i].instance.poll_action() {
            match action {
                Action::SendAdvert(h) => self.broadcast(i, h),
                Action::StateChanged { from, to, .. } => self.transitions.push(Transition {
                    at: self.now,
                    node: i,
                    from,
                    to,
                }),
                Action::AddVips
                | Action::RemoveVips
                | Action::Announce
                | Action::RunScript(_)
                | Action::PersistCounter(_) => {}
            }
        }
    }

    /// Sends `h` from node `from` to every other node, subject to cuts and loss.
    fn broadcast(&mut self, from: usize, h: CarpHeader) {
        self.sent.push((self.now, from, h));
        let src = self.nodes[from].addr;
        for to in 0..self.nodes.len() {
            if to == from || self.cut[from][to] {
                continue;
            }
            let lost = self.rng[from].next_u64() % 1_000_000 < self.loss_ppm;
            if lost {
                continue;
            }
            let at = self.now.saturating_add(self.delay[from][to]);
            self.inject(at, to, src, &h);
        }
    }

    /// Alive nodes in MASTER.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].instance.state() == State::Master)
            .collect()
    }

    /// The alive node with the best (demote, interval, address), the
    /// interval from the advskew it advertises: its own, or while demoted
    /// its own scaled into 241..=254 (`241 + advskew × 13 / 254`), so that
    /// equally demoted nodes keep the order of their configured advskews
    /// (to within 20) and the address decides only between those.
    pub fn best(&self) -> usize {
        let prio = |i: usize| {
            let s = self.nodes[i].spec;
            let advskew = if s.demote > 0 {
                241 + (u16::from(s.advskew) * 13 / 254) as u8
            } else {
                s.advskew
            };
            Priority::of_advert(s.demote, s.advbase_secs, advskew, self.nodes[i].addr)
        };
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive)
            .min_by(|&a, &b| prio(a).cmp_preference(&prio(b)))
            .expect("at least one node alive")
    }

    /// The longest master-down interval of the alive nodes.
    pub fn max_master_down(&self) -> Nanos {
        self.alive_params()
            .map(|p| p.master_down_interval())
            .max()
            .unwrap_or_default()
    }

    /// The shortest master-down interval of the alive nodes.
    pub fn min_master_down(&self) -> Nanos {
        self.alive_params()
            .map(|p| p.master_down_interval())
            .min()
            .unwrap_or_default()
    }

    /// The longest advert interval of the alive nodes.
    pub fn max_interval(&self) -> Nanos {
        self.alive_params()
            .map(|p| p.advert_interval())
            .max()
            .unwrap_or_default()
    }

    /// The longest link delay.
    pub fn max_delay(&self) -> Nanos {
        self.delay
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or_default()
    }

    /// Parameters of the alive nodes.
    fn alive_params(&self) -> impl Iterator<Item = &InstanceParams> {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| n.instance.params())
    }
}
