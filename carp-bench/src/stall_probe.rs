//! What an advert late on a busy host was waiting for: a probe thread per
//! CPU, pinned to it, SCHED_FIFO priority 99, waking every millisecond at
//! an absolute deadline. Nothing a process can do outranks it on its CPU;
//! a wake-up more than [`STALL_MS`] late means the CPU ran nothing of ours
//! for that long (the kernel's own non-preemptible work, or in a VM the
//! virtual CPU not running at all). An advert late across such a stall was
//! not late for want of priority: no scheduling setting of the daemon could
//! have sent it on time from that CPU.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A wake-up later than this is a stall, ms.
pub const STALL_MS: f64 = 5.0;

/// The probe's period.
const PERIOD_NS: i64 = 1_000_000;

/// One stall of a CPU.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    /// When it ended, ns since the Unix epoch (`CLOCK_REALTIME`, as the
    /// capture's kernel timestamps).
    pub end_unix_ns: u64,
    /// How long the probe waited past its deadline, ms.
    pub ms: f64,
}

/// The running probes; [`Probe::stop`] returns the stalls they saw.
pub struct Probe {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Stall>>>,
}

impl Probe {
    /// Starts one probe on each of the first `cpus` CPUs.
    pub fn start(cpus: usize) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..cpus)
            .map(|cpu| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || watch(cpu, &stop))
            })
            .collect();
        Probe { stop, threads }
    }

    /// Stops the probes; the stalls of every CPU, in no particular order.
    pub fn stop(self) -> Vec<Stall> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

fn clock(id: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts
}

fn ns(ts: &libc::timespec) -> i64 {
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The probe of `cpu` until `stop`. Runs unpinned or at ordinary priority
/// if the calls fail (it then only shows less).
fn watch(cpu: usize, stop: &AtomicBool) -> Vec<Stall> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls only read
    // the structures given, for the calling thread (0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        let param = libc::sched_param { sched_priority: 99 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
    let mut stalls = Vec::new();
    let mut next = ns(&clock(libc::CLOCK_MONOTONIC));
    while !stop.load(Ordering::Relaxed) {
        next += PERIOD_NS;
        let at = libc::timespec {
            tv_sec: next / 1_000_000_000,
            tv_nsec: next % 1_000_000_000,
        };
        // SAFETY: `at` is a valid timespec; no remainder is asked for.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &at,
                std::ptr::null_mut(),
            )
        };
        let now = ns(&clock(libc::CLOCK_MONOTONIC));
        let ms = (now - next) as f64 / 1e6;
        if ms > STALL_MS {
            stalls.push(Stall {
                end_unix_ns: ns(&clock(libc::CLOCK_REALTIME)) as u64,
                ms,
            });
            next = now;
        }
    }
    stalls
}

/// Of the adverts seen at kernel times `seen` (ns, in order, one every
/// `interval`), those more than [`STALL_MS`] late, and how many of them were
/// late across a stall (the stall overlaps the time from the advert's due
/// time to its arrival, give or take a millisecond).
pub fn late_across_stalls(seen: &[u64], interval: Duration, stalls: &[Stall]) -> (usize, usize) {
    let interval = interval.as_nanos() as u64;
    let slack = 1_000_000;
    let mut late = 0;
    let mut across = 0;
    for w in seen.windows(2) {
        let due = w[0] + interval;
        if w[1] <= due + (STALL_MS * 1e6) as u64 {
            continue;
        }
        late += 1;
        let overlaps = stalls.iter().any(|s| {
            let start = s.end_unix_ns.saturating_sub((s.ms * 1e6) as u64);
            start <= w[1] + slack && s.end_unix_ns + slack >= due
        });
        across += usize::from(overlaps);
    }
    (late, across)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn late_adverts_matched_to_stalls() {
        // Every 4 ms, then one 12 ms late (at 24 ms instead of 12), one
        // 8 ms late (at 40 instead of 32) and one 2 ms late.
        let seen = [0, 4, 8, 24, 28, 40, 44, 50].map(|t| t * MS);
        let stall = |end, ms| Stall {
            end_unix_ns: end * MS,
            ms,
        };
        let interval = Duration::from_millis(4);
        assert_eq!(late_across_stalls(&seen, interval, &[]), (2, 0));
        // A stall from 11 to 23 ms covers the first; one long before
        // covers nothing.
        let stalls = [stall(23, 12.0), stall(2, 1.5)];
        assert_eq!(late_across_stalls(&seen, interval, &stalls), (2, 1));
        let stalls = [stall(23, 12.0), stall(34, 6.0)];
        assert_eq!(late_across_stalls(&seen, interval, &stalls), (2, 2));
    }
}
