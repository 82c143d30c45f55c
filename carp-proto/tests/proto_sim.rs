//! Properties of a simulated CARP segment (see `sim/mod.rs`), over random
//! topologies and fault schedules:
//!
//! - after the network is stable for 2 × master-down, exactly one master,
//!   also with every node on the BSDs' virtual-router MAC (`virtual_mac`);
//! - with preempt on everywhere, that master is the node with the best
//!   (demote, interval, address);
//! - failover completes within master-down + one interval of the master's
//!   loss (plus the link delay of its last advert);
//! - no flapping under 20% random loss: transitions stay bounded;
//! - a replayed advert never changes state in strict (or auto) mode;
//! - at advbase 0, with adverts prepared ahead, a master whose core stalls
//!   for less than the cover keeps its backups BACKUP (its stand-in sends),
//!   and stalls of any length, with or without, end with one master;
//! - when master and backup stop together (one machine, or one
//!   hypervisor), the backup, late for its master-down deadline, hears the
//!   master once more before it takes over.

#[expect(dead_code, reason = "the sync-group helpers serve proto_group_sim")]
mod sim;

use carp_proto::{Nanos, Reject, ReplayMode, State};
use proptest::prelude::*;
use sim::{delays, Fault, NodeSpec, Sim};

fn node_spec(preempt: impl Strategy<Value = bool>) -> impl Strategy<Value = NodeSpec> {
    (
        1u8..=2,
        0u8..=254,
        prop_oneof![3 => Just(0u8), 1 => 1u8..=2],
        preempt,
    )
        .prop_map(|(advbase_secs, advskew, demote, preempt)| NodeSpec {
            advbase_secs,
            advskew,
            demote,
            preempt,
        })
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0u8..=60).prop_map(Fault::Loss),
        (0usize..8, 0usize..8).prop_map(|(a, b)| Fault::Cut(a, b)),
        Just(Fault::Heal),
    ]
}

/// Nodes at advbase 0 and advskew 0..=40 (intervals of 3.9 to 156 ms).
fn fast_node_spec() -> impl Strategy<Value = NodeSpec> {
    (0u8..=40, any::<bool>()).prop_map(|(advskew, preempt)| NodeSpec {
        advbase_secs: 0,
        advskew,
        demote: 0,
        preempt,
    })
}

/// Faults of a LAN at the fastest timers, stalls of a node's core among
/// them (shorter than the step, so that each ends before the next).
fn fast_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        1 => (0u8..=30).prop_map(Fault::Loss),
        1 => (0usize..8, 0usize..8).prop_map(|(a, b)| Fault::Cut(a, b)),
        1 => Just(Fault::Heal),
        3 => (0usize..8, 1u16..=200).prop_map(|(a, ms)| Fault::Stall(a, ms)),
    ]
}

/// A LAN of `n` nodes 100 µs apart, as on one switch.
fn lan_delays(n: usize) -> Vec<Vec<Nanos>> {
    vec![vec![Nanos(100_000); n]; n]
}

/// Runs a fault schedule (one fault per `step`), then a stable network for
/// 2 × the longest master-down.
fn run_faults_then_stabilise(sim: &mut Sim, faults: &[Fault], step: Nanos) {
    for (k, f) in faults.iter().enumerate() {
        sim.run_until(step.saturating_mul(k as u64 + 1));
        sim.apply(*f);
    }
    let stable_from = step.saturating_mul(faults.len() as u64 + 1);
    sim.run_until(stable_from);
    sim.heal();
    sim.set_loss_ppm(0);
    sim.run_until(stable_from.saturating_add(sim.max_master_down().saturating_mul(2)));
}

/// The minimal input that once failed `one_master_after_stable_period_and_best_with_preempt`
/// (issue 19): two nodes at advbase 1 with advskew 169 and 0, both demoted
/// by 2, preempt on. Both used to advertise advskew 240 and the address
/// decided; the configured preference must.
#[test]
fn equally_demoted_nodes_keep_their_configured_order() {
    for (first, second) in [(169, 0), (0, 169), (20, 0), (254, 234)] {
        let spec = |advskew| NodeSpec {
            advbase_secs: 1,
            advskew,
            demote: 2,
            preempt: true,
        };
        let specs = [spec(first), spec(second)];
        let mut sim = Sim::new(&specs, delays(2, 7), ReplayMode::Auto, 7);
        run_faults_then_stabilise(&mut sim, &[], Nanos::from_millis(1_000));
        let preferred = usize::from(second < first);
        assert_eq!(
            sim.masters(),
            vec![preferred],
            "advskews {first} and {second}, both demoted"
        );
        assert_eq!(sim.best(), preferred);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn one_master_after_stable_period_and_best_with_preempt(
        specs in prop::collection::vec(node_spec(any::<bool>()), 2..=5),
        preempt_all in any::<bool>(),
        faults in prop::collection::vec(fault(), 0..12),
        step_ms in 200u64..3_000,
        seed in any::<u64>(),
        virtual_mac in any::<bool>(),
    ) {
        let specs: Vec<NodeSpec> = specs
            .into_iter()
            .map(|s| NodeSpec { preempt: s.preempt || preempt_all, ..s })
            .collect();
        let mut sim = Sim::new(&specs, delays(specs.len(), seed), ReplayMode::Auto, seed);
        sim.virtual_mac = virtual_mac;
        run_faults_then_stabilise(&mut sim, &faults, Nanos::from_millis(step_ms));
        let masters = sim.masters();
        prop_assert_eq!(masters.len(), 1, "masters {:?} at {}", masters, sim.now);
        if preempt_all {
            prop_assert_eq!(masters[0], sim.best());
        }
    }

    #[test]
    fn one_master_after_stalls_at_the_fastest_timers(
        specs in prop::collection::vec(fast_node_spec(), 2..=4),
        faults in prop::collection::vec(fast_fault(), 0..12),
        step_ms in 200u64..1_000,
        seed in any::<u64>(),
        ahead in any::<bool>(),
    ) {
        let mut sim = Sim::new(&specs, lan_delays(specs.len()), ReplayMode::Auto, seed);
        if ahead {
            sim.send_ahead();
        }
        run_faults_then_stabilise(&mut sim, &faults, Nanos::from_millis(step_ms));
        let masters = sim.masters();
        prop_assert_eq!(masters.len(), 1, "masters {:?} at {}", masters, sim.now);
    }

    #[test]
    fn failover_within_master_down_plus_one_interval(
        specs in prop::collection::vec(node_spec(any::<bool>()), 2..=5),
        kill_offset_ms in 0u64..2_000,
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(&specs, delays(specs.len(), seed), ReplayMode::Auto, seed);
        let settle = sim.max_master_down().saturating_mul(3);
        sim.run_until(settle);
        let masters = sim.masters();
        prop_assert_eq!(masters.len(), 1);
        let dead = masters[0];
        let dead_interval = sim.nodes[dead].instance.params().advert_interval();
        let t_kill = settle.saturating_add(Nanos::from_millis(kill_offset_ms));
        sim.run_until(t_kill);
        sim.kill(dead);
        let bound = t_kill
            .saturating_add(sim.min_master_down())
            .saturating_add(dead_interval)
            .saturating_add(sim.max_delay());
        sim.run_until(bound);
        let took_over = sim
            .transitions
            .iter()
            .find(|t| t.at >= t_kill && t.node != dead && t.to == State::Master);
        prop_assert!(took_over.is_some(), "no takeover by {}", bound);
    }

    /// The cluster shares one advbase and no node is demoted, as deployed:
    /// then every backup's master-down (3 × advbase + its skew) outlasts two
    /// intervals of any master it does not outrank, so only two adverts lost
    /// in a row can make it take over. With mixed advbases or demotes, a
    /// backup's master-down can be shorter than two of the master's
    /// intervals and every single loss makes it take over: a configuration
    /// that flaps by design, not a flaw of the protocol core.
    #[test]
    fn no_flapping_under_twenty_percent_loss(
        advbase_secs in 1u8..=2,
        specs in prop::collection::vec(node_spec(any::<bool>()), 2..=5),
        seed in any::<u64>(),
    ) {
        let specs: Vec<NodeSpec> = specs
            .into_iter()
            .map(|s| NodeSpec { advbase_secs, demote: 0, ..s })
            .collect();
        let mut sim = Sim::new(&specs, delays(specs.len(), seed), ReplayMode::Auto, seed);
        sim.set_loss_ppm(200_000);
        let intervals = 120;
        let shortest = specs
            .iter()
            .map(|s| carp_proto::timers::advert_interval(s.advbase_secs, s.advskew))
            .min()
            .unwrap();
        sim.run_until(sim.max_interval().saturating_mul(intervals));
        // Startup (one per node) and the first election (one per node) plus,
        // for the rest of the run, at most one transition per shortest
        // interval; a flapping pair changes state twice per interval.
        let n = specs.len() as u64;
        let bound = 2 * n + sim.now.0 / shortest.0;
        prop_assert!(
            (sim.transitions.len() as u64) <= bound,
            "{} transitions, bound {}",
            sim.transitions.len(),
            bound
        );
    }

    #[test]
    fn replayed_adverts_never_change_state(
        specs in prop::collection::vec(node_spec(any::<bool>()), 2..=4),
        strict in any::<bool>(),
        attack_start_ms in 0u64..20_000,
        kill_ms in 5_000u64..20_000,
        rate_ms in 50u64..500,
        seed in any::<u64>(),
    ) {
        let mode = if strict { ReplayMode::Strict } else { ReplayMode::Auto };
        let delay = delays(specs.len(), seed);
        let end = Nanos::from_secs(60);
        // Run A: no attacker. Who is master at kill time, and the trace.
        let mut a = Sim::new(&specs, delay.clone(), mode, seed);
        a.run_until(Nanos::from_millis(kill_ms));
        let Some(&victim) = a.masters().first() else {
            return Ok(());
        };
        a.kill(victim);
        a.run_until(end);

        // Run B: same network; an on-path attacker records the victim's
        // adverts and replays them to everyone, under the victim's address.
        let mut b = Sim::new(&specs, delay, mode, seed);
        let attack_start = Nanos::from_millis(attack_start_ms);
        b.run_until(attack_start.min(Nanos::from_millis(kill_ms)));
        let mut t = attack_start;
        let mut replayed = 0usize;
        while t < end {
            if t >= Nanos::from_millis(kill_ms) && b.nodes[victim].alive {
                b.run_until(Nanos::from_millis(kill_ms));
                b.kill(victim);
            }
            b.run_until(t);
            // Only adverts every receiver already has: forwarding a fresh
            // advert ahead of the original is not a replay (an on-path
            // attacker can always speed up or delay delivery).
            let delivered_by = t.saturating_sub(b.max_delay());
            let captured: Vec<_> = b
                .sent
                .iter()
                .filter(|(at, n, _)| *n == victim && *at < delivered_by)
                .map(|(_, _, h)| *h)
                .collect();
            if !captured.is_empty() {
                let h = captured[replayed % captured.len()];
                let src = b.nodes[victim].addr;
                for to in (0..b.nodes.len()).filter(|&i| i != victim) {
                    b.inject(t, to, src, &h);
                }
                replayed += 1;
            }
            t = t.saturating_add(Nanos::from_millis(rate_ms));
        }
        if b.nodes[victim].alive {
            b.run_until(Nanos::from_millis(kill_ms));
            b.kill(victim);
        }
        b.run_until(end);

        prop_assert_eq!(&a.transitions, &b.transitions);
        let victim_addr = b.nodes[victim].addr;
        let from_victim: Vec<_> = b.rejected.iter().filter(|r| r.2 == victim_addr).collect();
        prop_assert!(
            from_victim.iter().all(|r| matches!(r.3, Reject::Replay { .. })),
            "{:?}",
            from_victim.iter().find(|r| !matches!(r.3, Reject::Replay { .. }))
        );
        // Every replay that reached an alive receiver was refused.
        prop_assert!(replayed == 0 || !from_victim.is_empty());
    }
}

/// Two nodes at advbase 0, advskew 0 and 1 (master-down 11.7 ms); node 0's
/// core stalls for `stall` every 300 ms for 3 s once it is master. Returns
/// the transitions after the first election and its stand-in's sends.
fn stalled_master(ahead: bool, stall: Nanos) -> (Vec<sim::Transition>, u64) {
    let spec = |advskew| NodeSpec {
        advbase_secs: 0,
        advskew,
        demote: 0,
        preempt: false,
    };
    let mut sim = Sim::new(&[spec(0), spec(1)], lan_delays(2), ReplayMode::Auto, 1);
    if ahead {
        sim.send_ahead();
    }
    let settled = Nanos::from_millis(500);
    sim.run_until(settled);
    assert_eq!(sim.masters(), vec![0]);
    let elected = sim.transitions.len();
    for k in 1..=10u64 {
        let at = settled.saturating_add(Nanos::from_millis(300).saturating_mul(k));
        sim.run_until(at);
        sim.stall(0, at.saturating_add(stall));
    }
    sim.run_until(Nanos::from_secs(4));
    assert_eq!(sim.masters().len(), 1);
    (
        sim.transitions[elected..].to_vec(),
        sim.nodes[0].standin_sent,
    )
}

#[test]
fn a_stalled_master_keeps_its_backup_while_its_standin_sends() {
    let stall = Nanos::from_millis(50);
    let (transitions, standin_sent) = stalled_master(true, stall);
    assert_eq!(transitions, [], "with adverts prepared ahead");
    // 50 ms at one advert every 3.9 ms, ten times.
    assert!(standin_sent >= 100, "stand-in sent {standin_sent}");
    // Without them, the same stalls are takeovers.
    let (transitions, standin_sent) = stalled_master(false, stall);
    assert!(!transitions.is_empty());
    assert_eq!(standin_sent, 0);
    // A stall beyond the cover is one too, and ends with one master
    // (checked in `stalled_master`).
    let (transitions, _) = stalled_master(true, Nanos::from_millis(250));
    assert!(!transitions.is_empty());
}

#[test]
fn master_and_backup_stopped_together_do_not_fail_over() {
    let spec = |advskew| NodeSpec {
        advbase_secs: 0,
        advskew,
        demote: 0,
        preempt: false,
    };
    // Both orders of the nodes: the sim handles a moment's events node by
    // node, so either may run first when they resume.
    for advskews in [[0, 1], [1, 0]] {
        let mut sim = Sim::new(
            &[spec(advskews[0]), spec(advskews[1])],
            lan_delays(2),
            ReplayMode::Auto,
            3,
        );
        sim.send_ahead();
        let settled = Nanos::from_millis(500);
        sim.run_until(settled);
        let master = sim.masters()[0];
        let elected = sim.transitions.len();
        for k in 1..=10u64 {
            // Stops of 20 to 200 ms, longer than master-down, and a
            // little after any slot.
            let at = settled.saturating_add(Nanos::from_millis(300 * k + 1));
            sim.run_until(at);
            let until = at.saturating_add(Nanos::from_millis(20 * k));
            sim.freeze(0, until);
            sim.freeze(1, until);
        }
        sim.run_until(Nanos::from_secs(4));
        assert_eq!(sim.masters(), vec![master], "advskews {advskews:?}");
        assert_eq!(&sim.transitions[elected..], [], "advskews {advskews:?}");
    }
}
