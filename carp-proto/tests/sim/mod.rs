//! A deterministic network of protocol cores with virtual time, in the
//! manner of quinn-proto's test pair: N nodes on one segment, a delay per
//! directed link, random loss (its own random stream per sender, seeded),
//! partitions (cut directed links), crashes, and an on-path attacker that can
//! inject any advert under any source address. Time jumps to the next
//! delivery or deadline; the number of steps is bounded to catch livelock.
//!
//! [`Sim::grouped`] builds hosts on several segments instead, one vhid per
//! segment, each host's instances in one sync group, with links that go
//! down and up.
//!
//! With [`Sim::send_ahead`], each node's core prepares adverts ahead and a
//! stand-in (the daemon's `standin` threads) sends a prepared advert a
//! quarter interval after its slot when the core has not; [`Sim::stall`]
//! stops a node's core (not its stand-in) for a while, as a CPU that does
//! not run the daemon's loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_proto::ahead::{standin_grace, Slot};
use carp_proto::election::Priority;
use carp_proto::peer::MacClass;
use carp_proto::{
    Action, Group, Instance, InstanceParams, Nanos, Password, Reason, Reject, ReplayMode, Sender,
    State,
};

#[path = "../../../tests/peers/split_mix.rs"]
mod split_mix;
pub use split_mix::SplitMix;

/// One fault of a schedule.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Set the loss of every link, in percent.
    Loss(u8),
    /// Cut the directed link from → to (node indices, modulo the count).
    Cut(usize, usize),
    /// Take the link of a node down (index modulo the count).
    LinkDown(usize),
    /// Bring the link of a node up.
    LinkUp(usize),
    /// Set a node's own demote count.
    Demote(usize, u8),
    /// Restore every cut link.
    Heal,
    /// A reload: a host's group made again (index modulo the groups).
    Regroup(usize),
    /// A node's core stops for this many ms (index modulo the count).
    Stall(usize, u16),
}

impl Sim {
    /// Applies `fault`.
    pub fn apply(&mut self, fault: Fault) {
        let n = self.nodes.len();
        match fault {
            Fault::Loss(pct) => self.set_loss_ppm(u64::from(pct) * 10_000),
            Fault::Cut(a, b) if a % n != b % n => self.set_cut(a % n, b % n, true),
            Fault::Cut(..) => {}
            Fault::LinkDown(a) => self.set_link(a % n, false),
            Fault::LinkUp(a) => self.set_link(a % n, true),
            Fault::Demote(a, d) => self.set_demote(a % n, d),
            Fault::Heal => self.heal(),
            Fault::Regroup(h) if !self.groups.is_empty() => self.regroup(h % self.groups.len()),
            Fault::Regroup(_) => {}
            Fault::Stall(a, ms) => {
                let until = self.now.saturating_add(Nanos::from_millis(ms.into()));
                self.stall(a % n, until);
            }
        }
    }
}

/// A delay of 0..50 ms for each directed link of `n` nodes, from `seed`.
pub fn delays(n: usize, seed: u64) -> Vec<Vec<Nanos>> {
    let mut rng = SplitMix::new(seed);
    (0..n)
        .map(|_| {
            (0..n)
                .map(|_| Nanos::from_millis(rng.next_u64() % 50))
                .collect()
        })
        .collect()
}

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
    /// Why.
    pub reason: Reason,
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
    /// Its segment (one vhid per segment).
    pub lan: usize,
    /// Its host.
    pub host: usize,
    /// False while its link is down.
    pub link_up: bool,
    /// Its own demote count (a group advertises the highest of its
    /// members').
    pub own_demote: u8,
    /// Its core runs no event before this time (deliveries wait).
    pub stalled_until: Nanos,
    /// Its stand-in sends nothing before this time.
    pub standin_until: Nanos,
    /// Prepared adverts its stand-in holds.
    pub prepared: VecDeque<Slot>,
    /// Every prepared slot below this is sent or void.
    pub prepared_done: u64,
    /// The number of the next slot its core prepares.
    pub prepared_next: u64,
    /// Adverts its stand-in sent.
    pub standin_sent: u64,
}

impl Node {
    /// When its core next has a deadline, no earlier than its stall ends.
    fn next_timeout(&self) -> Option<Nanos> {
        self.instance
            .poll_timeout()
            .map(|t| t.max(self.stalled_until))
    }

    /// When its stand-in next sends, if it holds a slot.
    fn next_standin(&self) -> Option<Nanos> {
        let grace = standin_grace(self.instance.params().advert_interval());
        self.prepared
            .front()
            .map(|s| s.at.saturating_add(grace).max(self.standin_until))
    }

    /// Claims slot `seq` if nothing at or after it was sent.
    fn claim(&mut self, seq: u64) -> bool {
        let free = seq >= self.prepared_done;
        if free {
            self.prepared_done = seq + 1;
        }
        free
    }
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
    /// Sync groups: the group and its members' node indices.
    pub groups: Vec<(Group, Vec<usize>)>,
    /// Every node sends from the BSDs' virtual-router MAC (`virtual_mac`);
    /// else adverts arrive without their link layer.
    pub virtual_mac: bool,
}

/// The daemon's cover of prepared adverts (`standin::COVER`).
pub const AHEAD_COVER: Nanos = Nanos::from_millis(100);

impl Sim {
    /// Nodes 10.0.0.1, 10.0.0.2, ... started at time zero.
    pub fn new(specs: &[NodeSpec], delay: Vec<Vec<Nanos>>, mode: ReplayMode, seed: u64) -> Self {
        let placed: Vec<(usize, usize, NodeSpec)> =
            specs.iter().enumerate().map(|(i, s)| (0, i, *s)).collect();
        Self::build(&placed, delay, mode, seed)
    }

    /// `hosts.len()` hosts on `lans` segments: node `lan × hosts + host` is
    /// host `host`'s instance of vhid `lan + 1`, address 10.0.`lan`.`host + 1`
    /// (so hosts rank the same on every segment), and each host's
    /// instances form one sync group.
    pub fn grouped(hosts: &[NodeSpec], lans: usize, delay: Vec<Vec<Nanos>>, seed: u64) -> Self {
        let placed: Vec<(usize, usize, NodeSpec)> = (0..lans)
            .flat_map(|lan| hosts.iter().enumerate().map(move |(h, s)| (lan, h, *s)))
            .collect();
        let mut sim = Self::build(&placed, delay, ReplayMode::Auto, seed);
        for h in 0..hosts.len() {
            let members: Vec<usize> = (0..lans).map(|lan| lan * hosts.len() + h).collect();
            sim.groups.push((Group::new([]), members));
            sim.regroup(h);
        }
        sim
    }

    /// Group `g` made again over its members as they are now, as a reload
    /// makes it ([`Group::start`]); the members' own demotes carried over.
    pub fn regroup(&mut self, g: usize) {
        let members = self.groups[g].1.clone();
        let mut group = Group::new(members.iter().map(|&i| self.nodes[i].instance.state()));
        for (k, &i) in members.iter().enumerate() {
            group.set_demote(k, self.nodes[i].own_demote);
        }
        let commands = group.start();
        self.groups[g].0 = group;
        self.command(g, commands);
    }

    /// Nodes placed as (segment, host, configuration).
    fn build(
        placed: &[(usize, usize, NodeSpec)],
        delay: Vec<Vec<Nanos>>,
        mode: ReplayMode,
        seed: u64,
    ) -> Self {
        let n = placed.len();
        let nodes = placed
            .iter()
            .enumerate()
            .map(|(i, &(lan, host, ref spec))| {
                let addr = IpAddr::V4(Ipv4Addr::new(10, 0, lan as u8, host as u8 + 1));
                let mut p = InstanceParams::new(
                    lan as u8 + 1,
                    Password::new(b"sim").unwrap(),
                    vec![IpAddr::V4(Ipv4Addr::new(10, 0, lan as u8, 100))],
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
                    lan,
                    host,
                    link_up: true,
                    own_demote: spec.demote,
                    stalled_until: Nanos::ZERO,
                    standin_until: Nanos::ZERO,
                    prepared: VecDeque::new(),
                    prepared_done: 0,
                    prepared_next: 0,
                    standin_sent: 0,
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
            groups: Vec::new(),
            virtual_mac: false,
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

    /// Every node's core prepares adverts ahead (at advbase 0, as the
    /// daemon's do) and its stand-in sends what the core does not.
    pub fn send_ahead(&mut self) {
        for n in &mut self.nodes {
            n.instance.send_ahead(AHEAD_COVER);
        }
    }

    /// Node `node`'s core runs nothing until `until`: adverts for it wait
    /// (their time then is `until`), its deadlines fire then; its stand-in
    /// goes on.
    pub fn stall(&mut self, node: usize, until: Nanos) {
        let n = &mut self.nodes[node];
        n.stalled_until = n.stalled_until.max(until);
    }

    /// Node `node` stops whole until `until`, its stand-in with its core,
    /// as a machine whose CPUs all stop.
    pub fn freeze(&mut self, node: usize, until: Nanos) {
        self.stall(node, until);
        let n = &mut self.nodes[node];
        n.standin_until = n.standin_until.max(until);
    }

    /// Node `i`'s stand-in sends the latest of its slots due by now, if
    /// its core has not.
    fn run_standin(&mut self, i: usize) {
        if self.nodes[i].standin_until > self.now {
            return;
        }
        let grace = standin_grace(self.nodes[i].instance.params().advert_interval());
        let mut due = None;
        while let Some(slot) = self.nodes[i].prepared.front().copied() {
            if slot.at.saturating_add(grace) > self.now {
                break;
            }
            self.nodes[i].prepared.pop_front();
            due = Some(slot);
        }
        if let Some(slot) = due {
            if self.nodes[i].claim(slot.seq) {
                self.nodes[i].standin_sent += 1;
                self.broadcast(i, slot.advert);
            }
        }
    }

    /// The link of node `node` goes down or up: it hears and sends nothing
    /// while down.
    pub fn set_link(&mut self, node: usize, up: bool) {
        self.nodes[node].link_up = up;
        if self.nodes[node].alive {
            self.nodes[node].instance.handle_link(self.now, up);
            self.drain(node);
        }
    }

    /// Node `node`'s own demote count is now `demote`; with a group, every
    /// member advertises the group's.
    pub fn set_demote(&mut self, node: usize, demote: u8) {
        let now = self.now;
        self.nodes[node].own_demote = demote;
        match self.group_of(node) {
            Some((g, k)) => {
                let demote = self.groups[g].0.set_demote(k, demote);
                for j in self.groups[g].1.clone() {
                    self.nodes[j].instance.set_demote(now, demote);
                    self.drain(j);
                }
            }
            None => {
                self.nodes[node].instance.set_demote(now, demote);
                self.drain(node);
            }
        }
    }

    /// The group of node `node` and its index in it.
    fn group_of(&self, node: usize) -> Option<(usize, usize)> {
        self.groups
            .iter()
            .enumerate()
            .find_map(|(g, (_, members))| members.iter().position(|&m| m == node).map(|k| (g, k)))
    }

    /// Hands group `g`'s commands to its members.
    fn command(&mut self, g: usize, commands: Vec<(usize, carp_proto::GroupCommand)>) {
        for (k, command) in commands {
            let j = self.groups[g].1[k];
            if self.nodes[j].alive {
                self.nodes[j].instance.handle_group(self.now, command);
                self.drain(j);
            }
        }
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
                .flat_map(|n| [n.next_timeout(), n.next_standin()])
                .flatten()
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
                if self.nodes[i].alive {
                    self.run_standin(i);
                }
                let due = self.nodes[i].next_timeout().is_some_and(|t| t <= self.now);
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
            if !self.nodes[to].alive || !self.nodes[to].link_up {
                continue;
            }
            if self.nodes[to].stalled_until > self.now {
                let until = self.nodes[to].stalled_until;
                self.queue.push(Reverse((until, self.seq, to, src, bytes)));
                self.seq += 1;
                continue;
            }
            let h = CarpHeader::from_bytes(&bytes);
            let sender = Sender {
                addr: src,
                mac: if self.virtual_mac {
                    MacClass::bsd_mac(h.vhid)
                } else {
                    [0; 6]
                },
            };
            if let Err(r) = self.nodes[to].instance.handle_advert(self.now, sender, &h) {
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
                Action::PrepareAdvert(slot) => {
                    self.nodes[i].prepared_next = slot.seq + 1;
                    self.nodes[i].prepared.push_back(slot);
                }
                Action::SendPrepared(slot) => {
                    self.nodes[i].prepared.retain(|s| s.seq > slot.seq);
                    if self.nodes[i].claim(slot.seq) {
                        self.broadcast(i, slot.advert);
                    }
                }
                Action::CancelPrepared => {
                    let n = &mut self.nodes[i];
                    n.prepared_done = n.prepared_done.max(n.prepared_next);
                    n.prepared.clear();
                }
                Action::StateChanged { from, to, reason } => {
                    self.transitions.push(Transition {
                        at: self.now,
                        node: i,
                        from,
                        to,
                        reason,
                    });
                    if let Some((g, k)) = self.group_of(i) {
                        let commands = self.groups[g].0.observe(k, to, reason);
                        self.command(g, commands);
                    }
                }
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
        if !self.nodes[from].link_up {
            return;
        }
        let src = self.nodes[from].addr;
        for to in 0..self.nodes.len() {
            if to == from || self.cut[from][to] || self.nodes[to].lan != self.nodes[from].lan {
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

    /// The host of the best alive node ([`Sim::grouped`]: hosts rank the
    /// same on every segment).
    pub fn best_host(&self) -> usize {
        self.nodes[self.best()].host
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
