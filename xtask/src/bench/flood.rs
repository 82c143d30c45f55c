//! Flood cases against the backup (host B) of a pair at UCARP's default
//! timers. For each: the attacker's achieved rate, the CPU of both daemons
//! (`/proc/<pid>/stat`), softirq time on all CPUs, state transitions to
//! MASTER while A is alive, the advert latency (carpd-xdp's trace lines),
//! and the UDP throughput from the client to B during the flood. Case (e)
//! cuts A's link while A's captured advert is replayed at 10/s and measures
//! whether and when B takes over.

use std::time::{Duration, Instant};

use anyhow::Result;
use carp_common::constants::CARP_HEADER_LEN;

use super::failover::{ms, Fault, Pair};
use super::generator::{self, carp_frame, header, udp_frame, Generator, Pace};
use super::probe::Prober;
use super::stage::{Stage, VHID};
use super::stats::{summarize, Summary};
use super::sys;
use super::traffic::{self, Sink, Throughput};

/// A flood case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// No flood: the baseline.
    None,
    /// (a) UDP to B, not CARP.
    Udp,
    /// (b) CARP adverts of a vhid nobody serves.
    UnknownVhid,
    /// (c) CARP adverts of the served vhid from A's address, wrong HMAC.
    BadHmac,
    /// (d) A captured valid advert of A, replayed.
    Replay,
}

impl Case {
    /// Every case, baseline first.
    pub const ALL: [Case; 5] = [
        Case::None,
        Case::Udp,
        Case::UnknownVhid,
        Case::BadHmac,
        Case::Replay,
    ];

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Case::None => "no flood",
            Case::Udp => "(a) non-CARP UDP",
            Case::UnknownVhid => "(b) CARP, unknown vhid",
            Case::BadHmac => "(c) CARP, wrong HMAC",
            Case::Replay => "(d) replayed valid advert",
        }
    }
}

/// Measurements of one flood case on one implementation.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// Frames per second the attacker achieved (0 for the baseline).
    pub attack_pps: f64,
    /// CPU of B's daemon, % of one core.
    pub backup_cpu: f64,
    /// CPU of A's daemon, % of one core.
    pub master_cpu: f64,
    /// Softirq time over all CPUs, % of one core.
    pub softirq_cpu: f64,
    /// Transitions to MASTER of either daemon while A was alive.
    pub false_transitions: usize,
    /// Advert latency kernel → state machine at B, in µs (carpd-xdp only).
    pub latency_us: Option<Summary>,
    /// Legitimate UDP from the client to B during the flood.
    pub legit: Throughput,
}

/// Outcome of case (e).
#[derive(Clone, Copy, Debug)]
pub struct ReplayCut {
    /// Link cut to B's first reply at the VIP, in ms; `None`: no takeover.
    pub takeover_ms: Option<f64>,
    /// How long the bench waited, in ms.
    pub waited_ms: f64,
}

/// Runs every flood case on a started pair, each for `d`.
pub fn cases(
    stage: &Stage,
    pair: &mut Pair<'_>,
    prober: &Prober,
    d: Duration,
) -> Result<Vec<Outcome>> {
    let advert =
        generator::capture_advert(&stage.attacker.ns, stage.a.ip, VHID, Duration::from_secs(5))?;
    let sink = Sink::start(&stage.b.ns)?;
    let mut out = Vec::new();
    for case in Case::ALL {
        let frame = frame_of(stage, case, &advert);
        let ticks = sys::clock_ticks();
        let (a0, b0) = (sys::cpu_ticks(pair.a.pid())?, sys::cpu_ticks(pair.b.pid())?);
        let s0 = sys::softirq_ticks();
        let (ma, mb) = (pair.a.log_mark(), pair.b.log_mark());
        let t0 = Instant::now();
        let generator = frame.map(|f| Generator::start(&stage.attacker.ns, f, Pace::Flood, d));
        let legit = traffic::measure(&sink, &stage.client.ns, stage.b.ip, d)?;
        let (sent, secs) = match generator {
            Some(g) => g.finish()?,
            None => (0, d.as_secs_f64()),
        };
        let wall = t0.elapsed().as_secs_f64();
        let (a1, b1) = (sys::cpu_ticks(pair.a.pid())?, sys::cpu_ticks(pair.b.pid())?);
        let s1 = sys::softirq_ticks();
        // Transitions a flood may cause show up within a master-down time.
        sys::pause(Duration::from_millis(500))?;
        let pct = |t0: u64, t1: u64| (t1 - t0) as f64 / ticks / wall * 100.0;
        let latencies: Vec<f64> = pair
            .b
            .latencies_since(mb)
            .into_iter()
            .map(|ns| ns / 1e3)
            .collect();
        let o = Outcome {
            case,
            attack_pps: sent as f64 / secs,
            backup_cpu: pct(b0, b1),
            master_cpu: pct(a0, a1),
            softirq_cpu: pct(s0, s1),
            false_transitions: pair.a.masters_since(ma) + pair.b.masters_since(mb),
            latency_us: summarize(&latencies),
            legit,
        };
        println!(
            "bench:   {} {}: attacker {:.0} kpps, backup CPU {:.1} %, false transitions {}, legit {:.0} kpps",
            pair.which.name(),
            case.name(),
            o.attack_pps / 1e3,
            o.backup_cpu,
            o.false_transitions,
            o.legit.received_pps / 1e3
        );
        let flapped = o.false_transitions > 0;
        out.push(o);
        if flapped {
            // A flood made a daemon master: let the pair settle again.
            pair.wait_stable(prober, Instant::now())?;
        }
    }
    Ok(out)
}

/// The frame the attacker sends in `case`, or `None` for the baseline.
fn frame_of(stage: &Stage, case: Case, advert: &[u8]) -> Option<Vec<u8>> {
    let (x, a, b) = (&stage.attacker, &stage.a, &stage.b);
    match case {
        Case::None => None,
        Case::Udp => Some(udp_frame(x, b)),
        Case::UnknownVhid => Some(carp_frame(
            x.mac,
            a.ip,
            b.mac,
            &header(VHID + 92, 1, [0x11; 20]),
        )),
        Case::BadHmac => Some(carp_frame(x.mac, a.ip, b.mac, &header(VHID, 1, [0x22; 20]))),
        Case::Replay => Some(replayed(advert, x.mac, b.mac)),
    }
}

/// The captured advert with the attacker's MAC as source (so that the
/// bridge does not learn A's MAC on the attacker's port) and B's as
/// destination; IP and CARP bytes untouched.
fn replayed(advert: &[u8], src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let mut f = advert[..(14 + 20 + CARP_HEADER_LEN).min(advert.len())].to_vec();
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f
}

/// Case (e): A's captured advert replayed to B at 10/s, then A's link cut;
/// waits up to `limit` for B to answer at the VIP.
pub fn replay_cut(
    stage: &Stage,
    pair: &mut Pair<'_>,
    prober: &Prober,
    limit: Duration,
) -> Result<ReplayCut> {
    let advert =
        generator::capture_advert(&stage.attacker.ns, stage.a.ip, VHID, Duration::from_secs(5))?;
    let frame = replayed(&advert, stage.attacker.mac, stage.b.mac);
    let generator = Generator::start(&stage.attacker.ns, frame, Pace::PerSecond(10), limit * 2);
    sys::pause(Duration::from_millis(1500))?;
    let cut = pair.inject(Fault::LinkDown)?;
    let deadline = cut + limit;
    let reply = loop {
        sys::pause(Duration::from_millis(10))?;
        if let Some(r) = prober.first_reply_from(stage.b.mac, cut) {
            break Some(r);
        }
        if Instant::now() > deadline {
            break None;
        }
    };
    let (sent, _) = generator.finish()?;
    let out = ReplayCut {
        takeover_ms: reply.map(|r| ms(r.at - cut)),
        waited_ms: ms(limit),
    };
    println!(
        "bench:   {} (e) link cut under replay ({sent} replays sent): {}",
        pair.which.name(),
        out.takeover_ms.map_or(
            format!("no takeover within {:.0} s", limit.as_secs_f64()),
            |v| { format!("takeover after {v:.0} ms") }
        )
    );
    pair.restore_a(prober)?;
    Ok(out)
}
