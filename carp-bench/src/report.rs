//! The Markdown report (ours next to UCARP, ratios, targets) and its JSON
//! twin, written from [`Results`].

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::daemons::{Impl, Lineup, Timers};
use super::failover::{ms, Fault};
use super::flood::{Case, LINEUPS};
use super::results::{Results, Series};
use super::stats::Summary;
use super::Section;

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn opt(s: Option<Summary>, f: impl Fn(Summary) -> String) -> String {
    s.map_or("–".into(), f)
}

fn ratio(ucarp: Option<f64>, ours: Option<f64>) -> String {
    match (ucarp, ours) {
        (Some(u), Some(o)) if o > 0.0 => format!("{:.1}×", u / o),
        _ => "–".into(),
    }
}

/// The report in Markdown.
pub fn markdown(r: &Results) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# carpd-xdp vs UCARP\n\n`cargo xtask bench{}{}` — kernel {}, {} CPUs, run time {:.0} s. \
         Every figure below was measured in this run.\n",
        if r.quick { " --quick" } else { "" },
        r.only
            .map_or(String::new(), |s| format!(" --only {}", s.name())),
        r.kernel,
        r.cpus,
        r.run_secs
    );
    if r.only.is_none() {
        failover_table(&mut m, r);
        stability_table(&mut m, r);
        resilience_tables(&mut m, r);
    }
    if r.runs(Section::Flood) {
        flood_tables(&mut m, r);
    }
    if r.runs(Section::Attack) {
        m += &super::attack::markdown(&r.attack);
    }
    if r.only.is_none() {
        xdp_cost_table(&mut m, r);
    }
    if r.runs(Section::Program) {
        program_table(&mut m, r);
    }
    if r.runs(Section::Gateway) {
        super::gateway::markdown(&mut m, &r.gateway);
    }
    if r.only == Some(Section::Busy) {
        busy_table(&mut m, r);
    }
    if r.only.is_none() {
        memory_table(&mut m, r);
    }
    // A section run alone: only the targets it measured, if any.
    let targets: Vec<_> = r
        .targets()
        .into_iter()
        .filter(|t| r.only.is_none() || t.met.is_some())
        .collect();
    if targets.is_empty() {
        return m;
    }
    let _ = writeln!(m, "## Targets of issue 5 (carpd-xdp)\n");
    let _ = writeln!(m, "| target | measured | met |\n|---|---|---|");
    for t in targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(m, "| {} | {} | {met} |", t.what, t.measured);
    }
    m
}

fn failover_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Failover\n\nFault on the master → first echo reply from the backup's MAC at the VIP \
         (client probes every 5 ms). \"after last advert\": from the master's last advert seen \
         on the segment before the fault. Times in ms.\n"
    );
    let _ = writeln!(
        m,
        "| timers | fault | implementation | master-down | n | min | median | p95 | max | after last advert (median) | probes lost (median) | no takeover | median ratio peer ÷ ours |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for timers in Timers::ALL {
        for fault in [Fault::LinkDown, Fault::Kill, Fault::Term] {
            let ours = r.series(Impl::Carpd, timers, fault);
            for which in [Impl::Carpd, Impl::Ucarp, Impl::Keepalived] {
                let Some(s) = r.series(which, timers, fault) else {
                    continue;
                };
                let ratio_cell = if which != Impl::Carpd {
                    ratio(
                        s.failover().map(|x| x.median),
                        ours.and_then(Series::failover).map(|x| x.median),
                    )
                } else {
                    String::new()
                };
                if let Some(why) = &s.skipped {
                    let _ = writeln!(
                        m,
                        "| {} | {} | {} | {} | 0 | {why} |||||||| ",
                        label(which, timers),
                        fault.name(),
                        which.name(),
                        f1(ms(which.master_down(timers)))
                    );
                    continue;
                }
                let f = s.failover();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {ratio_cell} |",
                    label(which, timers),
                    fault.name(),
                    which.name(),
                    f1(ms(which.master_down(timers))),
                    s.trials.len(),
                    opt(f, |x| f1(x.min)),
                    opt(f, |x| f1(x.median)),
                    opt(f, |x| f1(x.p95)),
                    opt(f, |x| f1(x.max)),
                    opt(s.since_last_advert(), |x| f1(x.median)),
                    opt(s.lost(), |x| format!("{:.0}", x.median)),
                    s.no_takeover()
                );
            }
        }
    }
    m.push('\n');
}

/// The timers column: CARP timers, or keepalived's own advert interval.
fn label(which: Impl, timers: Timers) -> String {
    match which {
        Impl::Keepalived => format!("{} (keepalived: VRRPv3 advert_int 0.01)", timers.label()),
        _ => timers.label(),
    }
}

fn stability_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Stability without faults\n\n| timers | implementation | window (s) | backup → MASTER transitions | advert latency kernel → state machine p50 / p99 (µs, n) |\n|---|---|---|---|---|"
    );
    for s in &r.stability {
        let _ = writeln!(
            m,
            "| {} | {} | {:.0} | {} | {} |",
            label(s.which, s.timers),
            s.which.name(),
            s.window_secs,
            s.flaps.map_or("never settled".into(), |f| f.to_string()),
            latency(s.latency_us, s.which)
        );
    }
    m.push('\n');
}

fn latency(s: Option<Summary>, which: Impl) -> String {
    match (s, which) {
        (Some(s), _) => format!("{:.0} / {:.0} ({})", s.median, s.p99, s.n),
        (None, Impl::Ucarp | Impl::Keepalived) => "not available".into(),
        (None, Impl::Carpd) => "no samples".into(),
    }
}

/// The busy-host windows.
fn busy_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "
## Busy host

No fault; two spinning threads per CPU (nice 0) compete with the daemons for the \
         whole window. Transitions: backup → MASTER (each one is a false takeover). Sent late: \
         each advert of the master against its schedule (one interval after the previous one, \
         kernel timestamps on the wire). Received late: from the backup's kernel seeing the \
         advert to its state machine handling it (carpd-xdp's log; the others log nothing per \
         advert). Late values in µs, p50 / p99 / max. \"SCHED_FIFO\": daemons of the pair \
         running SCHED_FIFO at the end of the window (carpd-xdp by default: switched by itself \
         when late, `auto_realtime`). CPU stalls: wake-ups of a probe thread per CPU \
         (SCHED_FIFO 99, every 1 ms) more than {stall} ms late, and the longest, in ms: nothing \
         of ours ran on that CPU meanwhile. Late adverts: sent more than {stall} ms late, and \
         how many of them across a CPU stall. Stand-in: adverts of the master that its \
         stand-in senders sent because its loop was late (carpd-xdp at advbase 0).

\
         | timers | implementation | scheduling | window (s) | transitions | per minute | sent late | received late | SCHED_FIFO | CPU stalls (longest) | late adverts (across a stall) | stand-in |\n|---|---|---|---|---|---|---|---|---|---|---|---|",
        stall = super::stall_probe::STALL_MS
    );
    for b in &r.busy {
        let (n, per_min) = match b.flaps {
            Some(f) => (
                f.to_string(),
                format!("{:.1}", f as f64 * 60.0 / b.window_secs.max(1e-3)),
            ),
            None => ("never settled".into(), "–".into()),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {:.0} | {n} | {per_min} | {} | {} | {} | {} | {} | {} |",
            label(b.which, b.timers),
            b.which.name(),
            if b.realtime { "real-time" } else { "default" },
            b.window_secs,
            late(b.sent_late_us),
            late(b.received_late_us),
            b.switched,
            b.stalls
                .map_or("–".into(), |(n, max)| format!("{n} ({max:.1})")),
            b.late_adverts
                .map_or("–".into(), |(n, across)| format!("{n} ({across})")),
            match (b.which, b.standin_sends) {
                (Impl::Carpd, Some(n)) => n.to_string(),
                _ => "–".into(),
            },
        );
    }
}

/// p50 / p99 / max of a lateness sample, µs.
fn late(s: Option<Summary>) -> String {
    s.map_or("–".into(), |s| {
        format!("{:.0} / {:.0} / {:.0} ({})", s.median, s.p99, s.max, s.n)
    })
}

fn flood_tables(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Under flood\n\nThe attacker (`carp-flood`: PACKET_MMAP TX rings, one thread per CPU, \
         frames handed to the kernel as fast as it takes them) floods for {:.0} s per case; \
         \"to\": the backup's MAC, or the CARP group's (both daemons and the client hear it). \
         carpd-xdp runs with the peer allow-list `peers = [A, B]`; UCARP has none. Attack rate: \
         frames the attacker's kernel transmitted per second. CPU in % of one core over the \
         flood: the daemons' from /proc/<pid>/stat (resolution: one clock tick over the window, \
         {:.2} %), softirq summed over all CPUs from /proc/stat (XDP and the whole receive path, \
         bridge included, run there, charged to no daemon; other processes on the machine add \
         to it). Total receive CPU per attack frame: (master + backup daemon CPU time + \
         softirq time) / frames sent; the \"no flood\" rows give the softirq load without \
         attack. False transitions, while both daemons were alive: the backup becoming \
         MASTER, the master stepping down to BACKUP. Then the client sends UDP to \
         the backup as fast as it can for another {:.0} s under the same flood (legit UDP \
         received). Timers: UCARP defaults. Advert latency: from the XDP program's timestamp \
         to the daemon's state machine, carpd-xdp's trace lines (about one sample per second).\n",
        r.flood_secs,
        r.cpu_resolution(),
        r.flood_secs / 2.0
    );
    let _ = writeln!(
        m,
        "| case | to | pair | attack kpps | false transitions: backup → MASTER / master → BACKUP | backup daemon CPU % | master daemon CPU % | softirq % | total receive CPU per frame (ns) | advert latency p50 / p99 (µs, n) | legit UDP received kpps | per-frame ratio UCARP ÷ carpd-xdp |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let ours = LINEUPS[0];
    for case in Case::ALL {
        let base = r.flood(ours, case).and_then(|o| o.total_ns_per_frame);
        for lineup in LINEUPS {
            let Some(o) = r.flood(lineup, case) else {
                continue;
            };
            let ratio_cell = if lineup == Lineup::same(Impl::Ucarp) {
                ratio(o.total_ns_per_frame, base)
            } else {
                String::new()
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.0} | {} / {} | {:.2} | {:.2} | {:.1} | {} | {} | {:.0} | {ratio_cell} |",
                case.name(),
                case.to(),
                lineup.name(),
                o.attack_pps / 1e3,
                o.backup_to_master,
                o.master_to_backup,
                o.backup_cpu,
                o.master_cpu,
                o.softirq_cpu,
                o.total_ns_per_frame
                    .map_or("–".into(), |v| format!("{v:.0}")),
                latency(o.latency_us, lineup.backup),
                o.legit.received_pps / 1e3
            );
        }
    }
    let _ = writeln!(
        m,
        "\n(e) The master's link is cut while its captured advert is replayed to the backup at 10/s:\n\n| pair | backup takes over |\n|---|---|"
    );
    for f in &r.floods {
        let _ = writeln!(
            m,
            "| {} | {} |",
            f.lineup.name(),
            f.replay_cut.takeover_ms.map_or(
                format!("**never** (waited {:.0} s)", f.replay_cut.waited_ms / 1e3),
                |v| format!("after {v:.0} ms")
            )
        );
    }
    m.push('\n');
}

fn resilience_tables(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Paused backup

The backup's daemon is stopped (SIGSTOP) for 3 × master-down while the \
         master is healthy, then continued; a round counts when the backup then became MASTER \
         (a false takeover).

| timers | implementation | master-down (ms) | rounds | false takeovers |\n|---|---|---|---|---|"
    );
    for p in &r.pause {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            label(p.which, p.timers),
            p.which.name(),
            f1(ms(p.which.master_down(p.timers))),
            p.outcome.rounds,
            p.outcome.takeovers
        );
    }
    busy_table(m, r);
    let _ = writeln!(
        m,
        "
## Scale

N vhids per host (one VIP each, advbase 1, advskew 0 / 100). carpd-xdp runs \
         them in one process, UCARP in one process per vhid. \"settled\": A held every VIP and B \
         none, 4 s after both were up. CPU over the steady window, in % of one core; takeover: \
         A's link down → B holds the VIP (`ip addr`, polled every 10 ms).

\
         | implementation | vhids | settled | VIPs on B while A lived | CPU A / B (%) | RSS of B (KiB) | peak RSS (KiB) | takeover p50 / max (ms) | not taken |\n|---|---|---|---|---|---|---|---|---|"
    );
    for s in &r.scale {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {:.2} / {:.2} | {} | {} | {} | {} |",
            s.which.name(),
            s.vhids,
            if s.settled { "yes" } else { "**no**" },
            s.backup_held,
            s.cpu_pct.0,
            s.cpu_pct.1,
            s.rss_kib,
            s.peak_rss_kib,
            opt(s.takeover_ms, |x| format!("{:.0} / {:.0}", x.median, x.max)),
            s.missing
        );
    }
    m.push('\n');
}

fn xdp_cost_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Cost of XDP for ordinary traffic\n\nUDP ({}-byte payload) from the client to the backup host, sent as fast as one socket can; median of the rounds.\n\n| configuration | received kpps | sent kpps | received vs no program |\n|---|---|---|---|",
        super::traffic::PAYLOAD
    );
    let base = r.xdp_cost.first().map(|x| x.received_pps);
    for x in &r.xdp_cost {
        let _ = writeln!(
            m,
            "| {} | {:.0} | {:.0} | {} |",
            x.attach.name(),
            x.received_pps / 1e3,
            x.sent_pps / 1e3,
            base.filter(|b| *b > 0.0).map_or("–".into(), |b| format!(
                "{:+.1} %",
                (x.received_pps / b - 1.0) * 100.0
            ))
        );
    }
    m.push('\n');
}

fn program_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Per-packet cost of the XDP program\n\nBPF_PROG_TEST_RUN, 1,000,000 repeats, median of 3 runs.\n\n| frame | action | ns/packet |\n|---|---|---|"
    );
    for c in &r.prog_cost {
        let action = match c.action {
            1 => "XDP_DROP",
            2 => "XDP_PASS",
            _ => "other",
        };
        let _ = writeln!(m, "| {} | {action} | {:.0} |", c.frame, c.ns_per_packet);
    }
    m.push('\n');
}

fn memory_table(m: &mut String, r: &Results) {
    let _ = writeln!(
        m,
        "## Memory\n\n| implementation | peak RSS (VmHWM) of any daemon |\n|---|---|"
    );
    for (which, kib) in &r.rss_kib {
        let _ = writeln!(m, "| {} | {:.1} MiB |", which.name(), *kib as f64 / 1024.0);
    }
    m.push('\n');
}

fn summary_json(s: Option<Summary>) -> Value {
    s.map_or(Value::Null, |s| {
        json!({"n": s.n, "min": s.min, "median": s.median, "p95": s.p95, "p99": s.p99, "max": s.max})
    })
}

/// The report as JSON.
pub fn json(r: &Results) -> Value {
    json!({
        "quick": r.quick,
        "only": r.only.map(|s| s.name()),
        "kernel": r.kernel,
        "cpus": r.cpus,
        "run_secs": r.run_secs,
        "gateway": super::gateway::json(&r.gateway),
        "failover": r.failover.iter().map(|s| json!({
            "implementation": s.which.name(),
            "advbase": s.timers.advbase,
            "master_advskew": s.timers.master_skew,
            "backup_advskew": s.timers.backup_skew,
            "master_down_ms": ms(s.which.master_down(s.timers)),
            "fault": s.fault.name(),
            "skipped": s.skipped,
            "failover_ms": summary_json(s.failover()),
            "since_last_advert_ms": summary_json(s.since_last_advert()),
            "probes_lost": summary_json(s.lost()),
            "trials": s.trials.iter().map(|t| json!({
                "failover_ms": t.failover_ms,
                "since_last_advert_ms": t.since_last_advert_ms,
                "lost": t.lost,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "stability": r.stability.iter().map(|s| json!({
            "implementation": s.which.name(),
            "advbase": s.timers.advbase,
            "window_secs": s.window_secs,
            "backup_transitions_to_master": s.flaps,
            "latency_us": summary_json(s.latency_us),
        })).collect::<Vec<_>>(),
        "pause": r.pause.iter().map(|p| json!({
            "implementation": p.which.name(),
            "timers": label(p.which, p.timers),
            "master_down_ms": ms(p.which.master_down(p.timers)),
            "rounds": p.outcome.rounds,
            "false_takeovers": p.outcome.takeovers,
        })).collect::<Vec<_>>(),
        "busy": r.busy.iter().map(|b| json!({
            "implementation": b.which.name(),
            "timers": label(b.which, b.timers),
            "realtime": b.realtime,
            "window_secs": b.window_secs,
            "backup_transitions_to_master": b.flaps,
            "sent_late_us": b.sent_late_us.map(late_json),
            "received_late_us": b.received_late_us.map(late_json),
            "switched_to_sched_fifo": b.switched,
            "cpu_stalls": b.stalls.map(|(n, max)| json!({"count": n, "longest_ms": max})),
            "late_adverts": b.late_adverts.map(|(n, across)| json!({"count": n, "across_a_stall": across})),
            "standin_sends": b.standin_sends,
        })).collect::<Vec<_>>(),
        "scale": r.scale.iter().map(|s| json!({
            "implementation": s.which.name(),
            "vhids": s.vhids,
            "settled": s.settled,
            "backup_held_while_master_alive": s.backup_held,
            "cpu_pct_master": s.cpu_pct.0,
            "cpu_pct_backup": s.cpu_pct.1,
            "rss_kib_backup": s.rss_kib,
            "peak_rss_kib": s.peak_rss_kib,
            "takeover_ms": summary_json(s.takeover_ms),
            "missing": s.missing,
        })).collect::<Vec<_>>(),
        "flood_secs": r.flood_secs,
        "floods": r.floods.iter().map(|f| json!({
            "pair": f.lineup.name(),
            "master": f.lineup.master.name(),
            "backup": f.lineup.backup.name(),
            "allow_list": f.lineup.allow_list,
            "cases": f.outcomes.iter().map(|o| json!({
                "case": o.case.name(),
                "to": o.case.to(),
                "attack_frames": o.sent,
                "attack_pps": o.attack_pps,
                "total_receive_cpu_ns_per_frame": o.total_ns_per_frame,
                "backup_cpu_pct": o.backup_cpu,
                "master_cpu_pct": o.master_cpu,
                "softirq_cpu_pct": o.softirq_cpu,
                "backup_to_master": o.backup_to_master,
                "master_to_backup": o.master_to_backup,
                "latency_us": summary_json(o.latency_us),
                "legit_sent_pps": o.legit.sent_pps,
                "legit_received_pps": o.legit.received_pps,
                "legit_received_mbit": o.legit.mbit(),
            })).collect::<Vec<_>>(),
            "replay_cut": {
                "takeover_ms": f.replay_cut.takeover_ms,
                "waited_ms": f.replay_cut.waited_ms,
            },
        })).collect::<Vec<_>>(),
        "attack": super::attack::json(&r.attack),
        "xdp_cost": r.xdp_cost.iter().map(|x| json!({
            "configuration": x.attach.name(),
            "received_pps": x.received_pps,
            "sent_pps": x.sent_pps,
        })).collect::<Vec<_>>(),
        "prog_cost": r.prog_cost.iter().map(|c| json!({
            "frame": c.frame,
            "action": c.action,
            "ns_per_packet": c.ns_per_packet,
        })).collect::<Vec<_>>(),
        "peak_rss_kib": r.rss_kib.iter().map(|(w, k)| json!({"implementation": w.name(), "kib": k})).collect::<Vec<_>>(),
        "targets": r.targets().iter().map(|t| json!({
            "target": t.what,
            "measured": t.measured,
            "met": t.met,
        })).collect::<Vec<_>>(),
    })
}

/// p50 / p99 / max of a lateness sample, µs, for the JSON report.
fn late_json(s: Summary) -> Value {
    json!({ "n": s.n, "p50": s.median, "p99": s.p99, "max": s.max })
}
