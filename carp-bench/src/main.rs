//! The bench, `cargo xtask bench`: carpd-xdp against UCARP in throw-away
//! namespaces. xtask builds the release daemon, `carp-flood` and the XDP
//! object, then runs this binary with their paths and the options given.
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
//! (link down, SIGKILL, SIGTERM), a paused backup; at sub-second timers a fault-free window and, if the pair holds
//! still, failover trials and a paused backup (keepalived, VRRPv3 at 10 ms
//! adverts, the fastest peer, at the fastest timers); a busy host (two
//! spinning threads per CPU): carpd-xdp by default and keepalived at their
//! fastest side by side, 10 minutes each, then every timer setting
//! (carpd-xdp by default and with real-time scheduling), with how late
//! adverts were sent and received; many
//! vhids per host; the flood cases at UCARP's defaults, carpd-xdp (with the
//! peer allow-list), UCARP and the mixed pair of a migration side by side,
//! the attacker being `carp-flood` (its own crate, built in release); then
//! the cost of XDP for ordinary traffic and the per-packet cost of the
//! program. Output: `target/bench/report.md`, `report.json`,
//! `failover.svg`; daemon logs in `target/bench/run/`. `--only flood` runs
//! the flood section alone and writes `report-flood.md` and
//! `report-flood.json` instead; `--only program`, the per-packet cost
//! alone (`report-program.*`); `--only gateway`, the NAT gateway pair
//! keeping a TCP flow across a failover, carpd-xdp against keepalived
//! (`report-gateway.*`, gateway.rs); `--only attack`, one captured advert
//! re-sent after the master died (`report-attack.*`, issue 19).

mod advert_clock;
mod attack;
mod daemons;
mod failover;
mod flood;
mod gateway;
mod generator;
mod plot;
mod probe;
mod report;
mod resilience;
mod results;
mod scale;
mod stage;
mod stall_probe;
mod stats;
mod sys;
mod testrun;
mod traffic;
mod xdpcost;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use daemons::{Impl, Timers};
use failover::{Fault, Pair};
use flood::LINEUPS;
use probe::Prober;
use results::{Busy, Floods, Pause, Results, Series, Stability};
use stage::{Stage, VIP};

/// Command-line options of the bench (`cargo xtask bench` passes its own
/// through and adds the paths).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "carp-bench",
    about = "Benchmark carpd-xdp against UCARP in throw-away namespaces (needs root); \
             writes target/bench/{report.md,report.json,failover.svg}"
)]
pub struct Options {
    /// A short run: fewer trials, shorter floods.
    #[arg(long)]
    pub quick: bool,
    /// Run only this section (writes target/bench/report-<section>.{md,json}).
    #[arg(long, value_enum)]
    pub only: Option<Section>,
    /// The release carpd-xdp binary under test.
    #[arg(long)]
    pub daemon: PathBuf,
    /// The attack generator, `carp-flood` built in release.
    #[arg(long)]
    pub flood: PathBuf,
    /// The XDP object (`cargo xtask build-ebpf` prints its path).
    #[arg(long)]
    pub object: PathBuf,
    /// Where the reports go; the daemons' logs go to its `run/`.
    #[arg(long, default_value_os_t = workspace().join("target/bench"))]
    pub out: PathBuf,
}

/// A section of the bench that can be run alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// The flood cases and case (e), every lineup.
    Flood,
    /// The XDP program's per-packet cost (`BPF_PROG_TEST_RUN`).
    Program,
    /// The NAT gateway pair: a TCP flow's gap across a failover, carpd-xdp
    /// and keepalived with conntrackd.
    Gateway,
    /// One captured advert re-sent after the master died (issue 19).
    Attack,
    /// The busy host (issue 20): every case of the busy-host phase.
    Busy,
}

impl Section {
    /// Its `--only` value.
    pub fn name(self) -> &'static str {
        match self {
            Section::Flood => "flood",
            Section::Program => "program",
            Section::Gateway => "gateway",
            Section::Attack => "attack",
            Section::Busy => "busy",
        }
    }
}

/// Sizes of a run.
struct Plan {
    trials: usize,
    window: Duration,
    flood: Duration,
    xdp_rounds: usize,
    xdp_secs: Duration,
    pause_rounds: usize,
    /// Window of the issue's busy-host cases: carpd-xdp by default and
    /// keepalived, both at their fastest.
    busy: Duration,
    /// Window of the other busy-host cases.
    busy_other: Duration,
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
                busy_other: Duration::from_secs(5),
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
                busy: Duration::from_secs(600),
                busy_other: Duration::from_secs(30),
                scale_window: Duration::from_secs(10),
            }
        }
    }
}

/// The repository root (carp-bench lives one level below it).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("carp-bench is inside the workspace")
        .to_path_buf()
}

/// True when running as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn main() -> Result<()> {
    run(&Options::parse())
}

/// Runs the bench with the release daemon, the attack generator and the
/// XDP object of `opts`.
fn run(opts: &Options) -> Result<()> {
    let (daemon, flood, object) = (&opts.daemon, &opts.flood, &opts.object);
    if !is_root() {
        anyhow::bail!("the bench creates network namespaces and attaches XDP: run it as root");
    }
    daemons::check_peers()?;
    sys::catch_interrupts();
    let started = Instant::now();
    let plan = Plan::new(opts.quick);
    let out = opts.out.clone();
    let run_dir = out.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    let stage = Stage::new(run_dir)?;
    let mut r = Results {
        quick: opts.quick,
        only: opts.only,
        flood_secs: plan.flood.as_secs_f64(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        ..Results::default()
    };

    let all = opts.only.is_none();
    if r.runs(Section::Flood) {
        let prober = Prober::start(&stage.client.ns, VIP, stage.attacker.mac)?;
        if all {
            failover_phases(&stage, daemon, &plan, &prober, &mut r)?;
        }
        flood_phase(&stage, daemon, flood, &plan, &prober, &mut r)?;
        prober.stop()?;
    }
    if r.only == Some(Section::Busy) {
        let prober = Prober::start(&stage.client.ns, VIP, stage.attacker.mac)?;
        busy_phase(&stage, daemon, &plan, &prober, &mut r)?;
        prober.stop()?;
    }
    if r.runs(Section::Attack) {
        let prober = Prober::start(&stage.client.ns, VIP, stage.attacker.mac)?;
        for which in [Impl::Carpd, Impl::Ucarp] {
            println!("bench: {} under replay after the master died", which.name());
            r.attack
                .extend(attack::measure(&stage, daemon, flood, which, &prober)?);
        }
        prober.stop()?;
    }
    if all {
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
    }
    if r.runs(Section::Program) {
        println!("bench: per-packet cost of the XDP program (BPF_PROG_TEST_RUN)");
        let attacker = stage.attacker.ns.clone();
        let object = object.to_path_buf();
        let frames = testrun::Frames::new(&stage);
        r.prog_cost = sys::run_in(&attacker, move || testrun::measure(&object, &frames))?;
    }
    if r.runs(Section::Gateway) {
        let trials = if opts.quick { 2 } else { plan.trials.min(5) };
        r.gateway = gateway::measure(daemon, &stage.dir, trials)?;
    }
    r.run_secs = started.elapsed().as_secs_f64();
    drop(stage);

    std::fs::create_dir_all(&out)?;
    let stem = match opts.only {
        None => "report".to_string(),
        Some(section) => format!("report-{}", section.name()),
    };
    let md = report::markdown(&r);
    let (md_path, json_path) = (
        out.join(format!("{stem}.md")),
        out.join(format!("{stem}.json")),
    );
    std::fs::write(&md_path, &md).with_context(|| format!("write {}", md_path.display()))?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&report::json(&r))?)
        .with_context(|| format!("write {}", json_path.display()))?;
    let mut wrote = vec![md_path, json_path];
    if all {
        let svg = out.join("failover.svg");
        plot::failover_svg(&r, &svg)?;
        wrote.push(svg);
    }
    println!("\n{md}");
    let wrote: Vec<String> = wrote.iter().map(|p| p.display().to_string()).collect();
    println!("bench: wrote {} ({:.0} s)", wrote.join(", "), r.run_secs);
    Ok(())
}

/// Failover, stability, paused-backup and busy-host phases: every
/// implementation at every timer setting it can run.
fn failover_phases(
    stage: &Stage,
    daemon: &Path,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    for which in [Impl::Carpd, Impl::Ucarp] {
        defaults_phase(stage, daemon, which, plan, prober, r)?;
    }
    for timers in [Timers::SUBSECOND, Timers::FASTEST] {
        for which in [Impl::Carpd, Impl::Ucarp] {
            subsecond_phase(stage, daemon, which, timers, plan, prober, r)?;
        }
    }
    subsecond_phase(
        stage,
        daemon,
        Impl::Keepalived,
        Timers::FASTEST,
        plan,
        prober,
        r,
    )?;
    busy_phase(stage, daemon, plan, prober, r)
}

/// Failover trials of `pair` for every fault, one series each, then its
/// paused-backup rounds.
fn faults_phase(
    pair: &mut Pair<'_>,
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
    r.pause.push(Pause {
        which,
        timers,
        outcome: resilience::pause(pair, plan.pause_rounds)?,
    });
    Ok(())
}

/// UCARP's default timers: stability, failover trials, a paused backup.
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
    faults_phase(&mut pair, prober, which, timers, plan, r)?;
    let rss = pair.stop();
    r.rss_kib.push((which, rss));
    Ok(())
}

/// The flood cases and case (e) at UCARP's default timers, for every
/// lineup (carpd-xdp with the allow-list, UCARP, the mixed pair).
fn flood_phase(
    stage: &Stage,
    daemon: &Path,
    generator: &Path,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    let timers = Timers::DEFAULTS;
    for lineup in LINEUPS {
        println!("bench: {} under flood", lineup.name());
        let mut pair = Pair::start_lineup(stage, daemon, lineup, timers, prober, &[])?;
        let outcomes = flood::cases(stage, generator, &mut pair, prober, plan.flood)?;
        let limit = timers.master_down() * if plan.trials < 10 { 2 } else { 3 };
        let replay_cut = flood::replay_cut(stage, generator, &mut pair, prober, limit)?;
        r.floods.push(Floods {
            lineup,
            outcomes,
            replay_cut,
        });
        let rss = pair.stop();
        if lineup.master == lineup.backup {
            match r.rss_kib.iter_mut().find(|(w, _)| *w == lineup.master) {
                Some(entry) => entry.1 = entry.1.max(rss),
                None => r.rss_kib.push((lineup.master, rss)),
            }
        }
    }
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
        faults_phase(&mut pair, prober, which, timers, plan, r)?;
    }
    let rss = pair.stop();
    if let Some(entry) = r.rss_kib.iter_mut().find(|(w, _)| *w == which) {
        entry.1 = entry.1.max(rss);
    }
    Ok(())
}

/// carpd-xdp options giving it real-time scheduling (`docs/tuning.md`).
const REALTIME_ARGS: &[&str] = &["--realtime-priority", "50", "--lock-memory"];

/// A busy host (two spinning threads per CPU): first the issue's cases
/// side by side for `plan.busy` each, carpd-xdp by default (no flag: its
/// `auto_realtime`) and keepalived, both at their fastest; then for
/// `plan.busy_other` each, carpd-xdp by default at the other timers and
/// with `--realtime-priority` at every one, UCARP at its defaults.
fn busy_phase(
    stage: &Stage,
    daemon: &Path,
    plan: &Plan,
    prober: &Prober,
    r: &mut Results,
) -> Result<()> {
    let realtime: Vec<String> = REALTIME_ARGS.iter().map(|s| s.to_string()).collect();
    let mut runs: Vec<(Impl, Timers, bool, Duration)> = vec![
        (Impl::Carpd, Timers::FASTEST, false, plan.busy),
        (Impl::Keepalived, Timers::FASTEST, false, plan.busy),
    ];
    for timers in Timers::ALL {
        if timers != Timers::FASTEST {
            runs.push((Impl::Carpd, timers, false, plan.busy_other));
        }
        runs.push((Impl::Carpd, timers, true, plan.busy_other));
    }
    runs.push((Impl::Ucarp, Timers::DEFAULTS, false, plan.busy_other));
    for (which, timers, rt, window) in runs {
        println!(
            "bench: busy host, {} at {}{}, {:.0} s",
            which.name(),
            timers.label(),
            if rt { ", real-time" } else { "" },
            window.as_secs_f64()
        );
        let extra: &[String] = if rt { &realtime } else { &[] };
        let outcome = match Pair::start_with(stage, daemon, which, timers, prober, extra) {
            Ok(pair) => {
                let o = resilience::busy(&pair, window, &stage.client.ns, stage.a.ip)?;
                println!(
                    "bench:   {} backup transitions to MASTER, {} adverts timed, {} SCHED_FIFO at the end, \
                     {} CPU stalls over {} ms, {} adverts over {} ms late ({} across a stall), \
                     {} sent by a stand-in",
                    o.flaps,
                    o.sent_late_us.len(),
                    o.switched,
                    o.stalls.len(),
                    stall_probe::STALL_MS,
                    o.late_adverts,
                    stall_probe::STALL_MS,
                    o.late_across_stalls,
                    o.standin_sends
                );
                pair.stop();
                Some(o)
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
            window_secs: window.as_secs_f64(),
            flaps: outcome.as_ref().map(|o| o.flaps),
            sent_late_us: outcome
                .as_ref()
                .and_then(|o| stats::summarize(&o.sent_late_us)),
            received_late_us: outcome
                .as_ref()
                .and_then(|o| stats::summarize(&o.received_late_us)),
            switched: outcome.as_ref().map_or(0, |o| o.switched),
            stalls: outcome.as_ref().map(|o| {
                let max = o.stalls.iter().map(|s| s.ms).fold(0.0, f64::max);
                (o.stalls.len(), max)
            }),
            late_adverts: outcome
                .as_ref()
                .map(|o| (o.late_adverts, o.late_across_stalls)),
            standin_sends: outcome.as_ref().map(|o| o.standin_sends),
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
