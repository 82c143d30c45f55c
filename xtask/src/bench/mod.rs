//! `cargo xtask bench`: carpd-xdp against UCARP in throw-away namespaces.
//!
//! ```text
//!            switch namespace: br0
//!     ┌──────────┬─────┴──────┬──────────┐
//!   host A     host B      client     attacker
//!   (master)   (backup)    prober,    flood
//!                          UDP        generator
//! ```
//!
//! Phases, each implementation in turn with the same vhid, password, VIP
//! and timers: at UCARP's defaults a fault-free window, failover trials
//! (link down, SIGKILL, SIGTERM), a paused backup, the flood cases and case
//! (e); at sub-second timers a fault-free window and, if the pair holds
//! still, failover trials and a paused backup (keepalived, VRRPv3 at 10 ms
//! adverts, the fastest peer, at the fastest timers); a busy host at every
//! timer setting (carpd-xdp with and without real-time scheduling); many
//! vhids per host; then the cost of XDP for ordinary traffic and the
//! per-packet cost of the program. Output: `target/bench/report.md`,
//! `report.json`, `failover.svg`; daemon logs in `target/bench/run/`.

mod daemons;
mod failover;
mod flood;
mod generator;
mod plot;
mod probe;
mod report;
mod resilience;
mod results;
mod scale;
mod stage;
mod stats;
mod sys;
mod testrun;
mod traffic;
mod xdpcost;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use daemons::{Impl, Timers};
use failover::{Fault, Pair};
use probe::Prober;
use results::{Busy, Floods, Pause, Results, Series, Stability};
use stage::{Stage, VIP};

/// Command-line options of the bench.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Fewer trials and shorter floods.
    pub quick: bool,
}

/// Sizes of a run.
struct Plan {
    trials: usize,
    window: Duration,
    flood: Duration,
    xdp_rounds: usize,
    xdp_secs: Duration,
    pause_rounds: usize,
    busy: Duration,
    scale_window: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                trials: 3,
                window: Duration::from_secs(3),
                flood: Duration::from_secs(2),
                xdp_rounds: 1,
                xdp_secs: Duration::from_secs(2),
                pause_rounds: 2,
                busy: Duration::from_secs(10),
                scale_window: Duration::from_secs(3),
            }
        } else {
            Plan {
                trials: 10,
                window: Duration::from_secs(10),
                flood: Duration::from_secs(5),
                xdp_rounds: 3,
                xdp_secs: Duration::from_secs(3),
                pause_rounds: 4,
                busy: Duration::from_secs(30),
                scale_window: Duration::from_secs(10),
            }
        }
    }
}

/// Runs the bench with the release daemon at `daemon` and the XDP object
/// at `object`.
pub fn run(daemon: &Path, object: &Path, opts: Options) -> Result<()> {
    if !crate::is_root() {
        anyhow::bail!("the bench creates network namespaces and attaches XDP: run it as root");
    }
    daemons::check_peers()?;
    sys::catch_interrupts();
    let started = Instant::now();
    let plan = Plan::new(opts.quick);
    let out = crate::workspace().join("target/bench");
    let run_dir = out.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    let stage = Stage::new(run_dir)?;
    let mut r = Results {
        quick: opts.quick,
        flood_secs: plan.flood.as_secs_f64(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        ..Results::default()
    };

    let prober = Prober::start(&stage.client.ns, VIP)?;
    for which in [Impl::Carpd, Impl::Ucarp] {
        defaults_phase(&stage, daemon, which, &plan, &prober, &mut r)?;
    }
    for timers in [Timers::SUBSECOND, Timers::FASTEST] {
        for which in [Impl::Carpd, Impl::Ucarp] {
            subsecond_phase(&stage, daemon, which, timers, &plan, &prober, &mut r)?;
        }
    }
    subsecond_phase(
        &stage,
        daemon,
        Impl::Keepalived,
        Timers::FASTEST,
        &plan,
        &prober,
        &mut r,
    )?;
    busy_phase(&stage, daemon, &plan, &prober, &mut r)?;
    prober.stop()?;
    for (which, n) in [
        (Impl::Carpd, 1),
        (Impl::Carpd, 16),
        (Impl::Carpd, 255),
        (Impl::Ucarp, 1),
        (Impl::Ucarp, 16),
    ] {
        r.scale
            .push(scale::measure(&stage, daemon, which, n, plan.scale_window)?);
    }

    println!("bench: UDP throughput with and without XDP");
    r.xdp_cost = xdpcost::measure(&stage, daemon, plan.xdp_rounds, plan.xdp_secs)?;
    println!("bench: per-packet cost of the XDP program (BPF_PROG_TEST_RUN)");
    let attacker = stage.attacker.ns.clone();
    let object = object.to_path_buf();
    let frames = testrun::Frames::new(&stage);
    r.prog_cost = sys::run_in(&attacker, move || testrun::measure(&object, &frames))?;
    r.run_secs = started.elapsed().as_secs_f64();
    drop(stage);

    std::fs::create_dir_all(&out)?;
    let md = report::markdown(&r);
    std::fs::write(out.join("report.md"), &md).context("write report.md")?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report::json(&r))?,
    )
    .context("write report.json")?;
    plot::failover_svg(&r, &out.join("failover.svg"))?;
    println!("\n{md}");
    println!(
        "bench: wrote {0}/report.md, {0}/report.json, {0}/failover.svg ({1:.0} s)",
        out.display(),
        r.run_secs
    );
    Ok(())
}

/// Failover trials for every fault, one series each.
fn failover_series(
    pair: &mut Pair,
    prober: &Prober,
    which: Impl,
    timers: Timers,
    plan: &Plan,
    r: &mut Results,
) -> Result<()> {
    for fault in [Fault::LinkDown, Fault::Kill, Fault::Term] {
        let trials = failover::trials(pair, prober, fault, plan.trials)?;
        r.failover.push(Series {
            which,
            timers,
            fault,
            trials,
            skipped: None,
        });
    }
    Ok(())
}

/// UCARP's default timers: stability, failover trials, floods.
fn defaults_phase(
    stage: &Stage,
    daemon: &Path,
    which: Impl,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    let timers = Timers::DEFAULTS;
    println!("bench: {} at {}", which.name(), timers.label());
    let mut pair = Pair::start(stage, daemon, which, timers, prober)?;
    r.stability.push(stability(&pair, plan.window)?);
    failover_series(&mut pair, prober, which, timers, plan, r)?;
    r.pause.push(Pause {
        which,
        timers,
        outcome: resilience::pause(&pair, plan.pause_rounds)?,
    });
    println!("bench: {} under flood", which.name());
    let outcomes = flood::cases(stage, &mut pair, prober, plan.flood)?;
    let limit = timers.master_down() * if plan.trials < 10 { 2 } else { 3 };
    let replay_cut = flood::replay_cut(stage, &mut pair, prober, limit)?;
    r.floods.push(Floods {
        which,
        outcomes,
        replay_cut,
    });
    let rss = pair.stop();
    r.rss_kib.push((which, rss));
    Ok(())
}

/// Sub-second timers: stability, then failover trials if the pair holds
/// still (UCARP's does not: it is reported as measured).
fn subsecond_phase(
    stage: &Stage,
    daemon: &Path,
    which: Impl,
    timers: Timers,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    println!("bench: {} at {}", which.name(), timers.label());
    let skip = |r: &mut Results, why: String| {
        for fault in [Fault::LinkDown, Fault::Kill, Fault::Term] {
            r.failover.push(Series {
                which,
                timers,
                fault,
                trials: Vec::new(),
                skipped: Some(why.clone()),
            });
        }
    };
    let mut pair = match Pair::start(stage, daemon, which, timers, prober) {
        Ok(p) => p,
        Err(e) if !sys::interrupted() => {
            println!("bench:   {}: {e:#}", which.name());
            r.stability.push(Stability {
                which,
                timers,
                window_secs: 0.0,
                flaps: None,
                latency_us: None,
            });
            skip(r, "the pair never settled (A master, B backup)".into());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let s = stability(&pair, plan.window)?;
    let flaps = s.flaps.unwrap_or(0);
    r.stability.push(s);
    if flaps > 0 {
        skip(
            r,
            format!(
                "not measurable: the backup became MASTER {flaps} times in {:.0} s without a fault",
                plan.window.as_secs_f64()
            ),
        );
    } else {
        failover_series(&mut pair, prober, which, timers, plan, r)?;
        r.pause.push(Pause {
            which,
            timers,
            outcome: resilience::pause(&pair, plan.pause_rounds)?,
        });
    }
    let rss = pair.stop();
    if let Some(entry) = r.rss_kib.iter_mut().find(|(w, _)| *w == which) {
        entry.1 = entry.1.max(rss);
    }
    Ok(())
}

/// carpd-xdp options giving it real-time scheduling (`docs/tuning.md`).
const REALTIME_ARGS: &[&str] = &["--realtime-priority", "50", "--lock-memory"];

/// A busy host: every timer setting with carpd-xdp (default and real-time
/// scheduling), UCARP at its defaults, keepalived at 10 ms adverts.
fn busy_phase(
    stage: &Stage,
    daemon: &Path,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    let realtime: Vec<String> = REALTIME_ARGS.iter().map(|s| s.to_string()).collect();
    let mut runs: Vec<(Impl, Timers, bool)> = Vec::new();
    for timers in Timers::ALL {
        runs.push((Impl::Carpd, timers, false));
        runs.push((Impl::Carpd, timers, true));
    }
    runs.push((Impl::Ucarp, Timers::DEFAULTS, false));
    runs.push((Impl::Keepalived, Timers::FASTEST, false));
    for (which, timers, rt) in runs {
        println!(
            "bench: busy host, {} at {}{}",
            which.name(),
            timers.label(),
            if rt { ", real-time" } else { "" }
        );
        let extra: &[String] = if rt { &realtime } else { &[] };
        let flaps = match Pair::start_with(stage, daemon, which, timers, prober, extra) {
            Ok(pair) => {
                let flaps = resilience::busy(&pair, plan.busy)?;
                println!("bench:   {flaps} backup transitions to MASTER");
                pair.stop();
                Some(flaps)
            }
            Err(e) if !sys::interrupted() => {
                println!("bench:   {}: {e:#}", which.name());
                None
            }
            Err(e) => return Err(e),
        };
        r.busy.push(Busy {
            which,
            timers,
            realtime: rt,
            window_secs: plan.busy.as_secs_f64(),
            flaps,
        });
    }
    Ok(())
}

/// B's transitions to MASTER and advert latency in a fault-free window.
fn stability(pair: &Pair<'_>, window: Duration) -> Result<Stability> {
    let mark = pair.b.log_mark();
    let flaps = failover::flaps(pair, window)?;
    let latencies: Vec<f64> = pair
        .b
        .latencies_since(mark)
        .into_iter()
        .map(|ns| ns / 1e3)
        .collect();
    println!(
        "bench:   {}: {flaps} backup transitions to MASTER in {:.0} s without a fault",
        pair.which.name(),
        window.as_secs_f64()
    );
    Ok(Stability {
        which: pair.which,
        timers: pair.timers,
        window_secs: window.as_secs_f64(),
        flaps: Some(flaps),
        latency_us: stats::summarize(&latencies),
    })
}
