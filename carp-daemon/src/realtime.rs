//! Real-time scheduling and locked memory for the daemon's own thread
//! (`realtime_priority`, `lock_memory` in `[global]`; `--realtime-priority`,
//! `--lock-memory`), as keepalived's `vrrp_rt_priority` and
//! `vrrp_no_swap`.
//!
//! With advbase 0 a backup declares the master dead after as little as
//! 11.7 ms (`3 × advskew/256` s): on a busy host, a daemon that waits a few
//! scheduler periods behind CPU hogs misses adverts and takes over from a
//! live master. Under SCHED_FIFO it runs as soon as its timer fires or an
//! advert arrives.
//!
//! [`apply`] is called once, from the main thread, before the tokio runtime
//! is built. The runtime is a current-thread one: that thread sends the
//! adverts, reads the ring buffer and runs the timers, so it is the one made
//! real-time. The policy is set with `SCHED_RESET_ON_FORK`: threads the
//! runtime starts later (its blocking pool, for file I/O) and every child
//! process start as SCHED_OTHER. Scripts and health checks are also put
//! back to SCHED_OTHER between fork and exec ([`crate::child`]), which
//! covers a daemon made real-time by systemd's `CPUSchedulingPolicy=`.
//!
//! A guard against a runaway loop: before switching, `RLIMIT_RTTIME` (CPU
//! time a real-time thread may use without blocking) is set to
//! [`RTTIME_SOFT`] (SIGXCPU) and [`RTTIME_HARD`] (SIGKILL), or lower if the
//! hard limit already is. The daemon normally blocks every few
//! milliseconds at most; a start-up or reload that loads XDP programs takes
//! well under the soft limit. A loop kept busy by its receive path never
//! reaches it: [`crate::pace`] makes it sleep briefly when it has not for a
//! quarter of the soft limit, and catches SIGXCPU (then runs SCHED_OTHER a
//! while) rather than let it end the daemon.
//!
//! `lock_memory` calls `mlockall(MCL_CURRENT | MCL_FUTURE)`, so that no page
//! the daemon touches is swapped out (a major fault can take longer than
//! master-down). Children do not inherit the lock.
//!
//! Both need privileges: SCHED_FIFO needs CAP_SYS_NICE or an
//! `RLIMIT_RTPRIO` of at least the priority (systemd's `LimitRTPRIO=`);
//! locking needs CAP_IPC_LOCK or a large enough `RLIMIT_MEMLOCK`
//! (`LimitMEMLOCK=infinity`). A setting that cannot be applied stops the
//! daemon with an error naming what is missing. They are read at start-up
//! only: a reload does not change them.

use std::io;
use std::time::Duration;

/// Held by the tests that change the process's `RLIMIT_RTTIME`, so that
/// they never run at once.
#[cfg(test)]
pub(crate) static RTTIME_TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Highest priority of SCHED_FIFO on Linux.
pub const MAX_PRIORITY: u8 = 99;
/// CPU time a real-time thread may use without blocking before SIGXCPU.
pub const RTTIME_SOFT: Duration = Duration::from_secs(2);
/// ... and before SIGKILL.
pub const RTTIME_HARD: Duration = Duration::from_secs(3);

/// The daemon's real-time settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Realtime {
    /// SCHED_FIFO priority of the daemon's thread, 1..=99; 0: off
    /// (SCHED_OTHER).
    pub priority: u8,
    /// Lock all current and future memory (`mlockall`).
    pub lock_memory: bool,
    /// Switch to SCHED_FIFO when the timers of advbase-0 instances run
    /// late (`auto_realtime`, see [`crate::lateness`]); on by default.
    pub auto: bool,
}

impl Default for Realtime {
    fn default() -> Self {
        Self {
            priority: 0,
            lock_memory: false,
            auto: true,
        }
    }
}

/// Errors of [`apply`].
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The priority is outside 0..=99.
    #[error("realtime priority {priority} is out of range (0 for off, 1..=99)")]
    Range {
        /// The offending priority.
        priority: u8,
    },
    /// `RLIMIT_RTTIME` could not be read or set.
    #[error("cannot set the real-time CPU limit (RLIMIT_RTTIME) to {soft_us} us")]
    Rttime {
        /// The soft limit asked for, microseconds.
        soft_us: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// SCHED_FIFO was refused.
    #[error(
        "cannot run SCHED_FIFO at priority {priority} (needs CAP_SYS_NICE or \
         RLIMIT_RTPRIO >= {priority}, e.g. LimitRTPRIO={priority} in the systemd unit; \
         or set realtime_priority = 0)"
    )]
    Priority {
        /// The priority asked for.
        priority: u8,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// mlockall was refused.
    #[error(
        "cannot lock memory (mlockall) (needs CAP_IPC_LOCK or RLIMIT_MEMLOCK \
         large enough, e.g. LimitMEMLOCK=infinity in the systemd unit; or set lock_memory = false)"
    )]
    LockMemory {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Applies `settings` to the calling thread (the runtime's) and the
/// process. Call before the runtime starts. Nothing is done when both are
/// off.
pub fn apply(settings: Realtime) -> Result<(), RealtimeError> {
    if settings.priority > MAX_PRIORITY {
        return Err(RealtimeError::Range {
            priority: settings.priority,
        });
    }
    if settings.lock_memory {
        // SAFETY: mlockall takes flags only and touches no memory of ours.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            return Err(RealtimeError::LockMemory {
                source: io::Error::last_os_error(),
            });
        }
    }
    if settings.priority > 0 {
        escalate(settings.priority)?;
    }
    Ok(())
}

/// Runs the calling thread SCHED_FIFO at `priority` (with
/// `SCHED_RESET_ON_FORK`), after setting the `RLIMIT_RTTIME` guard. Used at
/// start ([`apply`]) and by the loop when its timers run late
/// ([`crate::lateness`]).
pub fn escalate(priority: u8) -> Result<(), RealtimeError> {
    limit_rttime(RTTIME_SOFT, RTTIME_HARD)?;
    let param = libc::sched_param {
        sched_priority: priority.into(),
    };
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    // SAFETY: `param` is a valid sched_param for the duration of the
    // call; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(RealtimeError::Priority {
            priority,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether CAP_SYS_NICE is effective (true when unknown), and the soft
/// `RLIMIT_RTPRIO`: what SCHED_FIFO needs.
pub fn fifo_allowed() -> (bool, u64) {
    /// CAP_SYS_NICE (linux/capability.h).
    const CAP_SYS_NICE: u32 = 23;
    let cap = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| crate::privilege::effective_caps(&s))
        .is_none_or(|caps| caps & (1 << CAP_SYS_NICE) != 0);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    let rtprio = if unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        0
    };
    (cap, rtprio)
}

/// Sets `RLIMIT_RTTIME` to `soft`/`hard`, never above the current hard
/// limit (which only a privileged process could raise).
fn limit_rttime(soft: Duration, hard: Duration) -> Result<(), RealtimeError> {
    let soft_us = u64::try_from(soft.as_micros()).unwrap_or(u64::MAX);
    let hard_us = u64::try_from(hard.as_micros()).unwrap_or(u64::MAX);
    let err = |source| RealtimeError::Rttime { soft_us, source };
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut current) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    let max = current.rlim_max.min(hard_us);
    let wanted = libc::rlimit {
        rlim_cur: soft_us.min(max),
        rlim_max: max,
    };
    // SAFETY: `wanted` is a valid rlimit; lowering needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &wanted) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_does_nothing_and_out_of_range_is_refused() {
        // Off: must succeed without privileges and leave the policy alone.
        apply(Realtime::default()).unwrap();
        // SAFETY: reads the calling thread's policy.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        let err = apply(Realtime {
            priority: 100,
            ..Realtime::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "realtime priority 100 is out of range (0 for off, 1..=99)"
        );
    }

    #[test]
    fn a_thread_made_real_time_starts_threads_and_children_as_sched_other() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: SCHED_FIFO needs root (CAP_SYS_NICE)");
            return;
        }
        let _rttime = RTTIME_TEST_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // On a thread of its own: the policy must not leak into other tests.
        std::thread::spawn(|| {
            apply(Realtime {
                priority: 5,
                ..Realtime::default()
            })
            .unwrap();
            // SAFETY: reads the calling thread's policy.
            let own = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(own & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: lim is a valid rlimit to fill.
            unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) };
            assert_eq!(lim.rlim_cur, RTTIME_SOFT.as_micros() as u64);
            // SAFETY: reads the calling thread's policy.
            let inner = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
                .join()
                .unwrap();
            assert_eq!(
                inner,
                libc::SCHED_OTHER,
                "a new thread inherited SCHED_FIFO"
            );
            let out = std::process::Command::new("sh")
                .args(["-c", "grep ^policy /proc/self/sched"])
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.trim().ends_with(" 0"), "child policy: {text}");
        })
        .join()
        .unwrap();
    }
}
