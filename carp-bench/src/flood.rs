//! Flood cases against a pair at UCARP's default timers, for each
//! [`LINEUPS`] entry: carpd-xdp with the peer allow-list, UCARP, and the
//! mixed pair of a migration (UCARP master, carpd-xdp backup with the
//! allow-list). The attacker is `carp-flood`, sending as fast as the kernel
//! takes frames from one thread per CPU.
//!
//! Each case has two windows. In the first the attacker floods alone: its
//! achieved rate, the CPU of both daemons (`/proc/<pid>/stat`), softirq time
//! on all CPUs (`/proc/stat`; XDP and the rest of the receive path run
//! there, charged to no daemon), and from these the total receive CPU per
//! attack frame. In the second, half as long, the client also sends UDP to
//! the backup as fast as it can, and the bench counts what arrives. False
//! transitions (the backup becoming MASTER, the master stepping down to
//! BACKUP) are counted over both windows and half a second after. Case (e)
//! cuts A's link while A's captured advert is replayed at 10/s and measures
//! whether and when B takes over.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use carp_common::constants::CARP_HEADER_LEN;
use carp_common::header::CarpHeader;

use super::daemons::{Impl, Lineup};
use super::failover::{ms, Fault, Pair};
use super::generator::{self, carp_frame, header, udp_frame, Attack, Generator, Sent};
use super::probe::Prober;
use super::stage::{Stage, VHID};
use super::stats::{summarize, Summary};
use super::sys;
use super::traffic::{self, Sink, Throughput};

/// The pairs the flood section runs, in report order.
pub const LINEUPS: [Lineup; 3] = [
    Lineup {
        master: Impl::Carpd,
        backup: Impl::Carpd,
        allow_list: true,
    },
    Lineup::same(Impl::Ucarp),
    Lineup {
        master: Impl::Ucarp,
        backup: Impl::Carpd,
        allow_list: true,
    },
];

/// Spoofed sources of case (d).
pub const SPOOFED_SOURCES: u32 = 1_000_000;
/// First of the spoofed sources of case (d) (10.100.0.0: the million
/// addresses after it are off the segment and hold no peer).
const SPOOF_BASE: [u8; 4] = [10, 100, 0, 0];
/// First of the new addresses of case (c): 10.77.0.200 and the next
/// [`NEW_SOURCES`] - 1 on the segment, none of them a host of the stage.
const NEW_BASE: [u8; 4] = [10, 77, 0, 200];
/// How many new addresses case (c) sends from.
const NEW_SOURCES: u32 = 16;
/// Distinct forged frames of case (b), sent in a cycle.
const FORGED_FRAMES: u32 = 64;
/// MAC address of the CARP group 224.0.0.18.
const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

/// A flood case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// No flood: the baseline.
    None,
    /// UDP to B, not CARP.
    Udp,
    /// CARP adverts of a vhid nobody serves, to B.
    UnknownVhid,
    /// (a) A's captured advert replayed from A's address, to B.
    Replay,
    /// (b) Adverts of the served vhid from A's address with forged HMACs
    /// (64 different digests and counters), to B.
    Forged,
    /// (c) A's captured advert re-sent from 16 new addresses with advskew 0
    /// and demote 0 (fields the HMAC does not cover), to the CARP group:
    /// without an allow-list the master hears a better master.
    ResentBest,
    /// (c) The same with advbase 255 and advskew 255: without an allow-list
    /// a preempting backup hears a worse master and takes over.
    ResentWorst,
    /// (d) A's captured advert replayed from 10^6 spoofed sources, to the
    /// CARP group.
    Spoofed,
}

impl Case {
    /// Every case, baseline first.
    pub const ALL: [Case; 8] = [
        Case::None,
        Case::Udp,
        Case::UnknownVhid,
        Case::Replay,
        Case::Forged,
        Case::ResentBest,
        Case::ResentWorst,
        Case::Spoofed,
    ];

    /// The cases that are attacks (all but the baseline).
    pub fn attacks() -> impl Iterator<Item = Case> {
        Case::ALL.into_iter().filter(|c| *c != Case::None)
    }

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Case::None => "no flood",
            Case::Udp => "non-CARP UDP",
            Case::UnknownVhid => "CARP, unknown vhid",
            Case::Replay => "(a) master's advert replayed from its address",
            Case::Forged => "(b) forged digests from the master's address",
            Case::ResentBest => "(c) captured advert from new addresses, advskew 0 / demote 0",
            Case::ResentWorst => {
                "(c) captured advert from new addresses, advbase 255 / advskew 255"
            }
            Case::Spoofed => "(d) replays from 10^6 spoofed sources",
        }
    }

    /// Where the frames go: the backup's MAC, or the CARP group (both
    /// daemons and the client hear them).
    pub fn to(self) -> &'static str {
        match self {
            Case::None => "–",
            Case::Udp | Case::UnknownVhid | Case::Replay | Case::Forged => "backup",
            Case::ResentBest | Case::ResentWorst | Case::Spoofed => "group",
        }
    }

    /// Short name for file names.
    fn tag(self) -> &'static str {
        match self {
            Case::None => "none",
            Case::Udp => "udp",
            Case::UnknownVhid => "vhid",
            Case::Replay => "a-replay",
            Case::Forged => "b-forged",
            Case::ResentBest => "c-best",
            Case::ResentWorst => "c-worst",
            Case::Spoofed => "d-spoofed",
        }
    }
}

/// Measurements of one flood case on one lineup.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// Frames the attacker sent in the CPU window (0 for the baseline).
    pub sent: u64,
    /// Frames per second the attacker achieved in the CPU window.
    pub attack_pps: f64,
    /// CPU of B's daemon, % of one core.
    pub backup_cpu: f64,
    /// CPU of A's daemon, % of one core.
    pub master_cpu: f64,
    /// Softirq time over all CPUs, % of one core.
    pub softirq_cpu: f64,
    /// Both daemons' CPU time plus softirq time on all CPUs during the CPU
    /// window, per attack frame, in ns (`None` for the baseline).
    pub total_ns_per_frame: Option<f64>,
    /// The backup's transitions to MASTER.
    pub backup_to_master: usize,
    /// The master's transitions to BACKUP (stepping down for a forged
    /// better master).
    pub master_to_backup: usize,
    /// Advert latency kernel → state machine at B, in µs (carpd-xdp only).
    pub latency_us: Option<Summary>,
    /// Legitimate UDP from the client to B during the second window.
    pub legit: Throughput,
}

impl Outcome {
    /// Both kinds of false transition.
    pub fn false_transitions(&self) -> usize {
        self.backup_to_master + self.master_to_backup
    }
}

/// Outcome of case (e).
#[derive(Clone, Copy, Debug)]
pub struct ReplayCut {
    /// Link cut to B's first reply at the VIP, in ms; `None`: no takeover.
    pub takeover_ms: Option<f64>,
    /// How long the bench waited, in ms.
    pub waited_ms: f64,
}

/// CPU counters at one moment.
struct Cpu {
    master: u64,
    backup: u64,
    softirq: u64,
    at: Instant,
}

impl Cpu {
    fn now(pair: &Pair<'_>) -> Result<Cpu> {
        Ok(Cpu {
            master: sys::cpu_ticks(pair.a.pid())?,
            backup: sys::cpu_ticks(pair.b.pid())?,
            softirq: sys::softirq_ticks(),
            at: Instant::now(),
        })
    }
}

/// Runs every flood case on a started pair, each flooding alone for `d`
/// and then for `d / 2` with legitimate traffic; `flood` is carp-flood.
pub fn cases(
    stage: &Stage,
    flood: &Path,
    pair: &mut Pair<'_>,
    prober: &Prober,
    d: Duration,
) -> Result<Vec<Outcome>> {
    let advert =
        generator::capture_advert(&stage.attacker.ns, stage.a.ip, VHID, Duration::from_secs(5))?;
    let sink = Sink::start(&stage.b.ns)?;
    let ticks = sys::clock_ticks();
    let mut out = Vec::new();
    for case in Case::ALL {
        let attack = attack_of(stage, case, &advert);
        let file = stage.dir.join(format!("flood-{}.bin", case.tag()));
        let (ma, mb) = (pair.a.log_mark(), pair.b.log_mark());
        let c0 = Cpu::now(pair)?;
        let sent = match &attack {
            Some((frames, spoof)) => {
                Generator::start(flood, &stage.attacker.ns, &file, frames, with(d, *spoof))?
                    .wait()?
            }
            None => {
                sys::pause(d)?;
                Sent::default()
            }
        };
        let c1 = Cpu::now(pair)?;
        let half = d / 2;
        let generator = match &attack {
            Some((frames, spoof)) => Some(Generator::start(
                flood,
                &stage.attacker.ns,
                &file,
                frames,
                with(half, *spoof),
            )?),
            None => None,
        };
        let legit = traffic::measure(&sink, &stage.client.ns, stage.b.ip, half)?;
        if let Some(g) = generator {
            g.wait()?;
        }
        // Transitions a flood may cause show up within a master-down time.
        sys::pause(Duration::from_millis(500))?;
        let wall = (c1.at - c0.at).as_secs_f64();
        let pct = |t0: u64, t1: u64| (t1 - t0) as f64 / ticks / wall * 100.0;
        let receive_ticks =
            (c1.master - c0.master) + (c1.backup - c0.backup) + (c1.softirq - c0.softirq);
        let latencies: Vec<f64> = pair
            .b
            .latencies_since(mb)
            .into_iter()
            .map(|ns| ns / 1e3)
            .collect();
        let o = Outcome {
            case,
            sent: sent.frames,
            attack_pps: sent.pps(),
            backup_cpu: pct(c0.backup, c1.backup),
            master_cpu: pct(c0.master, c1.master),
            softirq_cpu: pct(c0.softirq, c1.softirq),
            total_ns_per_frame: (sent.frames > 0)
                .then(|| receive_ticks as f64 / ticks * 1e9 / sent.frames as f64),
            backup_to_master: pair.b.masters_since(mb),
            master_to_backup: pair.a.backups_since(ma),
            latency_us: summarize(&latencies),
            legit,
        };
        println!(
            "bench:   {} {}: attacker {:.0} kpps, backup CPU {:.1} %, softirq {:.1} %, {} ns/frame, false transitions {}, legit {:.0} kpps",
            pair.lineup.name(),
            case.name(),
            o.attack_pps / 1e3,
            o.backup_cpu,
            o.softirq_cpu,
            o.total_ns_per_frame.map_or("–".into(), |v| format!("{v:.0}")),
            o.false_transitions(),
            o.legit.received_pps / 1e3
        );
        let flapped = o.false_transitions() > 0;
        out.push(o);
        if flapped {
            // A flood moved the VIP: let the pair settle again.
            pair.wait_stable(prober, Instant::now())?;
        }
    }
    Ok(out)
}

/// A flood of `d` from `spoof` sources.
fn with(d: Duration, spoof: u32) -> Attack {
    Attack {
        spoof_sources: spoof,
        ..Attack::flood(d)
    }
}

/// The frames the attacker sends in `case` and the number of spoofed
/// sources, or `None` for the baseline.
fn attack_of(stage: &Stage, case: Case, advert: &[u8]) -> Option<(Vec<Vec<u8>>, u32)> {
    let (x, a, b) = (&stage.attacker, &stage.a, &stage.b);
    let one = |f: Vec<u8>| Some((vec![f], 0));
    match case {
        Case::None => None,
        Case::Udp => one(udp_frame(x, b)),
        Case::UnknownVhid => one(carp_frame(
            x.mac,
            a.ip,
            b.mac,
            &header(VHID + 92, 1, [0x11; 20]),
        )),
        Case::Replay => one(replayed(advert, x.mac, b.mac)),
        Case::Forged => Some((
            (0..FORGED_FRAMES)
                .map(|i| {
                    // Digests and counters that differ from frame to frame.
                    let hmac: [u8; 20] = std::array::from_fn(|j| {
                        (i as u8).wrapping_mul(31) ^ (j as u8).wrapping_mul(97)
                    });
                    carp_frame(
                        x.mac,
                        a.ip,
                        b.mac,
                        &header(VHID, 0x5eed_0000 + u64::from(i), hmac),
                    )
                })
                .collect(),
            0,
        )),
        Case::ResentBest => Some((
            vec![resent(advert, x.mac, NEW_BASE, 0, 0, None)],
            NEW_SOURCES,
        )),
        Case::ResentWorst => Some((
            vec![resent(advert, x.mac, NEW_BASE, 255, 0, Some(255))],
            NEW_SOURCES,
        )),
        Case::Spoofed => Some((
            vec![resent(advert, x.mac, SPOOF_BASE, 0, 0, None)],
            SPOOFED_SOURCES,
        )),
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

/// The captured advert re-sent to the CARP group from `src_ip` (the
/// attacker's MAC) with `advskew`, `demote` and, if given, `advbase`
/// rewritten: the HMAC covers none of them nor the source, so the advert
/// stays authentic; the IPv4 and CARP checksums are redone.
fn resent(
    advert: &[u8],
    src_mac: [u8; 6],
    src_ip: [u8; 4],
    advskew: u8,
    demote: u8,
    advbase: Option<u8>,
) -> Vec<u8> {
    let mut f = replayed(advert, src_mac, GROUP_MAC);
    f[26..30].copy_from_slice(&src_ip);
    f[24..26].fill(0);
    let sum = carp_common::checksum::internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    let carp: &mut [u8; CARP_HEADER_LEN] = (&mut f[34..34 + CARP_HEADER_LEN])
        .try_into()
        .expect("a captured advert holds a whole CARP header");
    let mut h = CarpHeader::from_bytes(carp);
    h.advskew = advskew;
    h.demote = demote;
    if let Some(advbase) = advbase {
        h.advbase = advbase;
    }
    h.seal_checksum();
    *carp = h.to_bytes();
    f
}

/// Case (e): A's captured advert replayed to B at 10/s, then A's link cut;
/// waits up to `limit` for B to answer at the VIP.
pub fn replay_cut(
    stage: &Stage,
    flood: &Path,
    pair: &mut Pair<'_>,
    prober: &Prober,
    limit: Duration,
) -> Result<ReplayCut> {
    let advert =
        generator::capture_advert(&stage.attacker.ns, stage.a.ip, VHID, Duration::from_secs(5))?;
    let frame = replayed(&advert, stage.attacker.mac, stage.b.mac);
    let generator = Generator::start(
        flood,
        &stage.attacker.ns,
        &stage.dir.join("flood-e-replay.bin"),
        &[frame],
        Attack {
            duration: limit * 2,
            rate: 10,
            spoof_sources: 0,
            threads: Some(1),
        },
    )?;
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
    let sent = generator.finish()?;
    let out = ReplayCut {
        takeover_ms: reply.map(|r| ms(r.at - cut)),
        waited_ms: ms(limit),
    };
    println!(
        "bench:   {} (e) link cut under replay ({} replays sent): {}",
        pair.lineup.name(),
        sent.frames,
        out.takeover_ms.map_or(
            format!("no takeover within {:.0} s", limit.as_secs_f64()),
            |v| { format!("takeover after {v:.0} ms") }
        )
    );
    pair.restore_a(prober)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use carp_common::checksum::verify;

    use super::*;

    #[test]
    fn a_resent_advert_keeps_its_digest_and_has_valid_checksums() {
        let mut h = header(VHID, 77, [0x42; 20]);
        h.seal_checksum();
        let advert = carp_frame([2, 0, 0, 0, 0, 1], [10, 77, 0, 1], GROUP_MAC, &h);
        let f = resent(&advert, [2, 0, 0, 0, 0, 4], NEW_BASE, 255, 0, Some(255));
        assert_eq!(f[..6], GROUP_MAC);
        assert_eq!(f[6..12], [2, 0, 0, 0, 0, 4]);
        assert_eq!(f[26..30], NEW_BASE);
        assert!(verify(&f[14..34]), "IPv4 checksum");
        let carp: &[u8; CARP_HEADER_LEN] = f[34..].try_into().unwrap();
        let r = CarpHeader::from_bytes(carp);
        assert!(r.checksum_ok());
        assert_eq!((r.advskew, r.advbase, r.demote), (255, 255, 0));
        assert_eq!((r.counter, r.hmac), (h.counter, h.hmac));
    }
}
