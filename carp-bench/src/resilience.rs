//! Faults that are not faults of the master: a backup that is paused (VM
//! pause, live migration, a stalled journald: SIGSTOP here) for three
//! master-down intervals while the master stays healthy, and a host whose
//! CPUs are busy with other work. Neither must move the VIP; both are
//! counted as transitions of the backup to MASTER.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::advert_clock::{send_lateness_us, Capture};
use super::failover::Pair;
use super::stall_probe::{self, Stall};
use super::sys;

/// Pause rounds of one pair.
#[derive(Clone, Debug)]
pub struct PauseOutcome {
    /// Rounds run.
    pub rounds: usize,
    /// Rounds after which the backup became MASTER (a false takeover).
    pub takeovers: usize,
}

/// `rounds` times: SIGSTOP the backup for 3 × master-down, SIGCONT, watch
/// for 3 × master-down more.
pub fn pause(pair: &Pair<'_>, rounds: usize) -> Result<PauseOutcome> {
    let md = pair.master_down();
    let mut takeovers = 0;
    for i in 0..rounds {
        let mark = pair.b.log_mark();
        pair.b.signal(libc::SIGSTOP);
        let stopped = sys::pause(md * 3);
        pair.b.signal(libc::SIGCONT);
        stopped?;
        sys::pause(md * 3 + Duration::from_millis(300))?;
        let took_over = pair.b.masters_since(mark) > 0;
        takeovers += usize::from(took_over);
        println!(
            "bench:   {} paused backup, round {}/{rounds}: {}",
            pair.which.name(),
            i + 1,
            if took_over {
                "took over (false)"
            } else {
                "stayed backup"
            }
        );
        if took_over {
            // Let the pair settle again (A preempts back) before the next round.
            sys::pause(md * 4 + Duration::from_millis(500))?;
        }
    }
    Ok(PauseOutcome { rounds, takeovers })
}

/// Competing CPU load: one spinning thread per CPU, stopped on drop.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts `n` spinning threads (ordinary priority, nice 0 as the
    /// bench's, no affinity).
    pub fn start(n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Spinning threads per CPU of a busy host (the issue's "two busy loops
/// per core", at nice 0).
pub const SPINNERS_PER_CPU: usize = 2;

/// What a busy-host window showed.
#[derive(Clone, Debug)]
pub struct BusyOutcome {
    /// Transitions of the backup to MASTER.
    pub flaps: usize,
    /// Lateness of each advert of the master against its schedule, µs.
    pub sent_late_us: Vec<f64>,
    /// Kernel → state machine delay of each advert the backup handled, µs
    /// (carpd-xdp only).
    pub received_late_us: Vec<f64>,
    /// Daemons of the pair running SCHED_FIFO at the end of the window
    /// (carpd-xdp by default: switched by itself when late).
    pub switched: usize,
    /// Every CPU stall of the window (see `stall_probe.rs`).
    pub stalls: Vec<Stall>,
    /// Adverts more than [`stall_probe::STALL_MS`] late.
    pub late_adverts: usize,
    /// Those of them late across a CPU stall.
    pub late_across_stalls: usize,
    /// Adverts the master's stand-in senders sent (carpd-xdp at advbase 0).
    pub standin_sends: usize,
}

/// True when process `pid`'s main thread runs SCHED_FIFO.
fn runs_fifo(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/sched")).is_ok_and(|text| {
        text.lines()
            .filter_map(|l| l.strip_prefix("policy"))
            .any(|v| v.trim_start_matches([' ', ':']).trim() == "1")
    })
}

/// The pair during `window` while every CPU is busy with
/// [`SPINNERS_PER_CPU`] spinning threads; the master's adverts are timed
/// on the wire from namespace `observer`.
pub fn busy(
    pair: &Pair<'_>,
    window: Duration,
    observer: &str,
    master: [u8; 4],
) -> Result<BusyOutcome> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mark_a = pair.a.log_mark();
    let mark_b = pair.b.log_mark();
    let capture = Capture::start(observer, master);
    let load = Load::start(cpus * SPINNERS_PER_CPU);
    let probe = stall_probe::Probe::start(cpus);
    let waited = sys::pause(window);
    let stalls = probe.stop();
    drop(load);
    let seen = capture.stop()?;
    let switched = [pair.a.pid(), pair.b.pid()]
        .into_iter()
        .filter(|pid| runs_fifo(*pid))
        .count();
    waited?;
    let interval = pair.which.master_interval(pair.timers);
    let (late_adverts, late_across_stalls) =
        stall_probe::late_across_stalls(&seen, interval, &stalls);
    Ok(BusyOutcome {
        flaps: pair.b.masters_since(mark_b),
        sent_late_us: send_lateness_us(&seen, interval),
        received_late_us: pair
            .b
            .latencies_since(mark_b)
            .into_iter()
            .map(|ns| ns / 1e3)
            .collect(),
        switched,
        stalls,
        late_adverts,
        late_across_stalls,
        standin_sends: pair.a.standin_sends_since(mark_a),
    })
}
