//! Failover trials: a pair of one implementation (A master, B backup), the
//! client probing the VIP every 5 ms, a fault on A (link down, SIGKILL,
//! SIGTERM) at a random phase of A's advert cycle, and the time until the
//! first echo reply that comes from B's MAC address. After each trial A is
//! restarted and the bench waits until it holds the VIP again and B does not.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::daemons::{drop_vip, holds_vip, Daemon, Impl, Lineup, Timers};
use super::probe::Prober;
use super::stage::Stage;
use super::sys;

/// What is done to the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Its interface is set down (carrier lost on the segment).
    LinkDown,
    /// The daemon is killed with SIGKILL (the VIP stays configured).
    Kill,
    /// The daemon is stopped with SIGTERM (graceful handover).
    Term,
}

impl Fault {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::LinkDown => "link down",
            Fault::Kill => "SIGKILL",
            Fault::Term => "SIGTERM (graceful)",
        }
    }
}

/// One trial's outcome.
#[derive(Clone, Copy, Debug)]
pub struct Trial {
    /// Fault to the first reply from the backup, in ms; `None`: no takeover
    /// within the time limit.
    pub failover_ms: Option<f64>,
    /// Master's last advert seen by the client before the fault, to the
    /// first reply from the backup, in ms.
    pub since_last_advert_ms: Option<f64>,
    /// Probes sent after the fault that got no reply.
    pub lost: usize,
}

/// A pair of daemons: A (host a) and B (host b), of one implementation or
/// of two (a [`Lineup`]).
pub struct Pair<'a> {
    stage: &'a Stage,
    daemon: &'a Path,
    /// Implementation of A (and of B, unless the lineup mixes them).
    pub which: Impl,
    /// Which daemon runs where.
    pub lineup: Lineup,
    /// Timers.
    pub timers: Timers,
    /// Daemon on host A.
    pub a: Daemon,
    /// Daemon on host B.
    pub b: Daemon,
    /// Peak RSS seen of any daemon of the pair (KiB), updated on stop.
    pub peak_rss_kib: u64,
    /// More carpd-xdp options for both daemons.
    extra: Vec<String>,
}

impl<'a> Pair<'a> {
    /// Starts A, then B, and waits until A is master and B backup.
    pub fn start(
        stage: &'a Stage,
        daemon: &'a Path,
        which: Impl,
        timers: Timers,
        prober: &Prober,
    ) -> Result<Pair<'a>> {
        Pair::start_with(stage, daemon, which, timers, prober, &[])
    }

    /// The same, with more carpd-xdp options for both daemons.
    pub fn start_with(
        stage: &'a Stage,
        daemon: &'a Path,
        which: Impl,
        timers: Timers,
        prober: &Prober,
        extra: &[String],
    ) -> Result<Pair<'a>> {
        Pair::start_lineup(stage, daemon, Lineup::same(which), timers, prober, extra)
    }

    /// Starts the daemons of `lineup` (A, then B) with more carpd-xdp
    /// options `extra` (not with the allow-list, which uses a
    /// configuration file) and waits until A is master and B backup.
    pub fn start_lineup(
        stage: &'a Stage,
        daemon: &'a Path,
        lineup: Lineup,
        timers: Timers,
        prober: &Prober,
        extra: &[String],
    ) -> Result<Pair<'a>> {
        let a = start_one(stage, daemon, lineup, Side::A, timers, extra)?;
        sys::pause(Duration::from_millis(300))?;
        let b = start_one(stage, daemon, lineup, Side::B, timers, extra)?;
        let mut pair = Pair {
            stage,
            daemon,
            which: lineup.master,
            lineup,
            timers,
            a,
            b,
            peak_rss_kib: 0,
            extra: extra.to_vec(),
        };
        pair.wait_stable(prober, Instant::now())?;
        Ok(pair)
    }

    /// Waits until the client gets replies from A after `since` and B holds
    /// no VIP, then lets one more advert interval pass.
    pub fn wait_stable(&mut self, prober: &Prober, since: Instant) -> Result<()> {
        let limit = Instant::now() + self.master_down() * 2 + Duration::from_secs(5);
        loop {
            sys::pause(Duration::from_millis(50))?;
            if !self.a.alive() {
                bail!(
                    "{} on host A exited; see {}",
                    self.which.name(),
                    self.a.log.display()
                );
            }
            if prober.first_reply_from(self.stage.a.mac, since).is_some()
                && !holds_vip(&self.stage.b)?
            {
                break;
            }
            if Instant::now() > limit {
                bail!(
                    "{}: A did not become master with B backup; see {}",
                    self.lineup.name(),
                    self.stage.dir.display()
                );
            }
        }
        sys::pause(self.interval().max(Duration::from_millis(200)))
    }

    /// The master's advert interval.
    pub fn interval(&self) -> Duration {
        self.which.master_interval(self.timers)
    }

    /// The backup's master-down time.
    pub fn master_down(&self) -> Duration {
        self.which.master_down(self.timers)
    }

    /// Brings A back after a fault: kill what is left, remove a stale VIP,
    /// link up, start again, wait until A is master again.
    pub fn restore_a(&mut self, prober: &Prober) -> Result<()> {
        self.note_rss();
        self.a.signal(libc::SIGKILL);
        self.a.reap(Duration::from_millis(200));
        drop_vip(&self.stage.a);
        sys::run_in(&self.stage.a.ns, || sys::set_link("eth0", true))?;
        let since = Instant::now();
        self.a = start_one(
            self.stage,
            self.daemon,
            self.lineup,
            Side::A,
            self.timers,
            &self.extra,
        )?;
        self.wait_stable(prober, since)
    }

    /// Restarts B's daemon as an operator would (SIGTERM, then started
    /// again with the same options and state directory); does not wait
    /// for it to settle.
    pub fn restart_b(&mut self) -> Result<()> {
        self.note_rss();
        self.b.signal(libc::SIGTERM);
        self.b.reap(Duration::from_secs(5));
        self.b = start_one(
            self.stage,
            self.daemon,
            self.lineup,
            Side::B,
            self.timers,
            &self.extra,
        )?;
        Ok(())
    }

    /// Records the peak RSS of both daemons.
    pub fn note_rss(&mut self) {
        for d in [&self.a, &self.b] {
            if let Some(kib) = sys::vm_hwm_kib(d.pid()) {
                self.peak_rss_kib = self.peak_rss_kib.max(kib);
            }
        }
    }

    /// Injects `fault` into A and returns its moment.
    pub fn inject(&mut self, fault: Fault) -> Result<Instant> {
        Ok(match fault {
            Fault::LinkDown => sys::run_in(&self.stage.a.ns, || {
                let t = Instant::now();
                sys::set_link("eth0", false)?;
                Ok(t)
            })?,
            Fault::Kill | Fault::Term => {
                self.note_rss();
                let t = Instant::now();
                self.a.signal(if fault == Fault::Kill {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                });
                t
            }
        })
    }

    /// Stops both daemons (gracefully, so that VIPs are removed).
    pub fn stop(mut self) -> u64 {
        self.note_rss();
        for d in [&mut self.a, &mut self.b] {
            d.signal(libc::SIGTERM);
            d.reap(Duration::from_secs(2));
        }
        drop_vip(&self.stage.a);
        drop_vip(&self.stage.b);
        self.peak_rss_kib
    }
}

/// A host of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Host A, the master.
    A,
    /// Host B, the backup.
    B,
}

/// Starts the daemon of `side` in `lineup`.
fn start_one(
    stage: &Stage,
    daemon: &Path,
    lineup: Lineup,
    side: Side,
    timers: Timers,
    extra: &[String],
) -> Result<Daemon> {
    let (which, host, skew) = match side {
        Side::A => (lineup.master, &stage.a, timers.master_skew),
        Side::B => (lineup.backup, &stage.b, timers.backup_skew),
    };
    if lineup.allow_list && which == Impl::Carpd {
        if !extra.is_empty() {
            bail!("carpd-xdp with the allow-list runs from a file: no extra options ({extra:?})");
        }
        Daemon::start_allow_listed(stage, daemon, host, skew, timers, &[stage.a.ip, stage.b.ip])
    } else {
        Daemon::start(stage, daemon, which, host, skew, timers, extra)
    }
}

/// Runs `n` trials of `fault` on a started pair.
pub fn trials(pair: &mut Pair<'_>, prober: &Prober, fault: Fault, n: usize) -> Result<Vec<Trial>> {
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng::new();
    let limit = pair.master_down() + Duration::from_secs(3);
    for i in 0..n {
        // A random phase of A's advert cycle.
        let phase = pair.interval().mul_f64(rng.unit());
        sys::pause(phase)?;
        let fault_at = pair.inject(fault)?;
        let deadline = fault_at + limit;
        let reply = loop {
            sys::pause(Duration::from_millis(5))?;
            if let Some(r) = prober.first_reply_from(pair.stage.b.mac, fault_at) {
                break Some(r);
            }
            if Instant::now() > deadline {
                break None;
            }
        };
        let trial = prober.with(|log| {
            let last_advert = log
                .adverts
                .iter()
                .rev()
                .find(|(at, src)| *at < fault_at && *src == pair.stage.a.ip)
                .map(|(at, _)| *at);
            let end = reply.map_or(log.sent.len(), |r| r.probe);
            let first = log.sent.partition_point(|t| *t <= fault_at);
            let answered: std::collections::HashSet<usize> =
                log.replies.iter().map(|r| r.probe).collect();
            Trial {
                failover_ms: reply.map(|r| ms(r.at - fault_at)),
                since_last_advert_ms: reply.zip(last_advert).map(|(r, a)| ms(r.at - a)),
                lost: (first..end).filter(|p| !answered.contains(p)).count(),
            }
        });
        println!(
            "bench:   {} {} trial {}/{n}: {}",
            pair.which.name(),
            fault.name(),
            i + 1,
            trial
                .failover_ms
                .map_or("no takeover".to_string(), |v| format!("{v:.1} ms"))
        );
        out.push(trial);
        pair.restore_a(prober)?;
    }
    Ok(out)
}

/// Transitions of B to MASTER during `window` without any fault.
pub fn flaps(pair: &Pair<'_>, window: Duration) -> Result<usize> {
    let mark = pair.b.log_mark();
    sys::pause(window)?;
    Ok(pair.b.masters_since(mark))
}

/// Duration in ms.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A small xorshift generator seeded from the clock (trial phases only).
pub struct Rng(u64);

impl Rng {
    /// Seeded from the monotonic clock.
    pub fn new() -> Rng {
        Rng(sys::monotonic_ns() | 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
