//! How late the daemon's timers fire, and the switch to real-time
//! scheduling it triggers (`auto_realtime` in `[global]`, on by default;
//! `--no-auto-realtime`), as keepalived's `max_auto_priority`.
//!
//! At the fastest timers (advbase 0) a master sends every 1/256 s to
//! 1 s and a backup declares it dead after as little as 11.7 ms. On a busy
//! host a daemon at default scheduling waits behind CPU hogs for whole
//! scheduler slices: its adverts go out late and the backup takes over
//! from a live master. The loop measures, for every deadline it wakes up
//! for (a timerfd armed for the deadline itself, [`crate::timer`]), how
//! long after the deadline it runs ([`Lateness::observe`]). The
//! first time it is later than a quarter of the shortest advert interval
//! of its advbase-0 instances, it switches its own thread to SCHED_FIFO at
//! [`AUTO_PRIORITY`] ([`crate::realtime::escalate`], with the
//! `RLIMIT_RTTIME` guard of [`crate::pace`]) and logs it once.
//!
//! The decisions here are pure (no clock reads, no system calls): time goes
//! in, a [`Verdict`] comes out. [`start_warning`] says at start, once,
//! when the fastest timers are configured and the switch cannot happen
//! (no CAP_SYS_NICE and too low an `RLIMIT_RTPRIO`, or switched off).

use crate::pace::LoopGuard;
use crate::proto::Nanos;

/// SCHED_FIFO priority of the automatic switch: above every SCHED_OTHER
/// task, below the usual real-time services (keepalived's default
/// `vrrp_rt_priority` is 1 to 99; irq threads run at 50).
pub const AUTO_PRIORITY: u8 = 10;

/// Only sub-second advert intervals (advbase 0) are watched: at advbase
/// 1 and more a scheduler slice is far below the master-down interval.
const WATCHED_BELOW: Nanos = Nanos(Nanos::PER_SEC);

/// What one observed wake-up means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the threshold, or nothing is watched.
    OnTime,
    /// Later than the threshold, but switching is off, impossible, or
    /// done already.
    Late {
        /// How late, nanoseconds.
        by_ns: u64,
    },
    /// Later than the threshold for the first time: switch to SCHED_FIFO.
    Escalate {
        /// How late, nanoseconds.
        by_ns: u64,
        /// The threshold it passed, nanoseconds.
        threshold_ns: u64,
    },
}

/// The loop's lateness record and the escalation decision.
#[derive(Debug)]
pub struct Lateness {
    /// Whether the automatic switch is on (`auto_realtime`).
    auto: bool,
    /// The thread runs (or was switched to) a real-time policy.
    real_time: bool,
    /// A quarter of the shortest watched advert interval; `None`: no
    /// advbase-0 instance.
    threshold_ns: Option<u64>,
    /// Wake-ups observed.
    observed: u64,
    /// Wake-ups later than the threshold.
    late: u64,
    /// The latest wake-up seen, nanoseconds after its deadline.
    worst_ns: u64,
}

impl Lateness {
    /// A record for a loop whose thread is `real_time` already (then it
    /// never asks to switch), with the switch `auto` on or off.
    pub fn new(auto: bool, real_time: bool) -> Self {
        Self {
            auto,
            real_time,
            threshold_ns: None,
            observed: 0,
            late: 0,
            worst_ns: 0,
        }
    }

    /// The advert intervals of the instances now configured (after start
    /// and each reload): the threshold is a quarter of the shortest
    /// sub-second one.
    pub fn set_intervals(&mut self, intervals: impl IntoIterator<Item = Nanos>) {
        self.threshold_ns = intervals
            .into_iter()
            .filter(|i| *i < WATCHED_BELOW)
            .min()
            .map(|i| i.0 / 4);
    }

    /// The loop woke up at `at` for a deadline `due`.
    pub fn observe(&mut self, due: Nanos, at: Nanos) -> Verdict {
        let by_ns = at.0.saturating_sub(due.0);
        self.observed += 1;
        self.worst_ns = self.worst_ns.max(by_ns);
        let Some(threshold_ns) = self.threshold_ns.filter(|t| by_ns > *t) else {
            return Verdict::OnTime;
        };
        self.late += 1;
        if !self.auto || self.real_time {
            return Verdict::Late { by_ns };
        }
        // Asked once, whatever comes of it: a refused switch is not
        // retried at every late wake-up.
        self.real_time = true;
        Verdict::Escalate {
            by_ns,
            threshold_ns,
        }
    }

    /// Wake-ups observed, wake-ups later than the threshold, and the worst
    /// lateness in nanoseconds.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.observed, self.late, self.worst_ns)
    }
}

/// The loop woke up at `at` for its deadline `due`: records it and, on
/// [`Verdict::Escalate`], switches the calling thread (the loop's) to
/// SCHED_FIFO and has `guard` watch it. Logs the switch, or why it failed,
/// once.
pub fn on_wakeup(lateness: &mut Lateness, due: Nanos, at: Nanos, guard: &mut LoopGuard) {
    let Verdict::Escalate {
        by_ns,
        threshold_ns,
    } = lateness.observe(due, at)
    else {
        return;
    };
    let late = format!(
        "a timer fired {:.1} ms late (more than {:.1} ms, a quarter of the shortest advert \
         interval)",
        by_ns as f64 / 1e6,
        threshold_ns as f64 / 1e6
    );
    match crate::realtime::escalate(AUTO_PRIORITY) {
        Ok(()) => {
            tracing::warn!("{late}: the daemon now runs SCHED_FIFO priority {AUTO_PRIORITY}");
            if let Err(e) = guard.became_real_time() {
                tracing::error!("cannot catch SIGXCPU: {e}");
            }
        }
        Err(e) => tracing::warn!(
            "{late}, and {}: the fastest timers are not safe on this busy host",
            crate::chain::Chain(&e)
        ),
    }
}

/// What the start-up check knows of the daemon's scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduling {
    /// `realtime_priority` (0: off).
    pub priority: u8,
    /// `auto_realtime`.
    pub auto: bool,
    /// CAP_SYS_NICE is effective.
    pub cap_sys_nice: bool,
    /// The soft `RLIMIT_RTPRIO`.
    pub rtprio_limit: u64,
}

/// The warning to give at start, if any: the fastest timers are
/// configured (`fastest`: some instance has advbase 0), the daemon does
/// not run real-time from the start, and it could not switch when late.
pub fn start_warning(fastest: bool, s: Scheduling) -> Option<String> {
    if !fastest || s.priority > 0 {
        return None;
    }
    if !s.auto {
        return Some(
            "advbase 0 (sub-second adverts) with auto_realtime = false and \
             realtime_priority = 0: the fastest timers are not safe on a busy host, \
             a late daemon sends late adverts and the backup takes over"
                .into(),
        );
    }
    if s.cap_sys_nice || s.rtprio_limit >= u64::from(AUTO_PRIORITY) {
        return None;
    }
    Some(format!(
        "advbase 0 (sub-second adverts) without CAP_SYS_NICE and with RLIMIT_RTPRIO {} < {}: \
         the fastest timers are not safe on a busy host, the daemon cannot switch to \
         SCHED_FIFO when its timers run late (give it CAP_SYS_NICE or LimitRTPRIO={} in \
         the systemd unit)",
        s.rtprio_limit, AUTO_PRIORITY, AUTO_PRIORITY
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn fastest() -> Lateness {
        let mut l = Lateness::new(true, false);
        // advbase 0: advskew 0 (clamped to 1/256 s) and advskew 1; advbase 1.
        l.set_intervals([
            carp_proto::timers::advert_interval(0, 1),
            carp_proto::timers::advert_interval(0, 0),
            carp_proto::timers::advert_interval(1, 0),
        ]);
        l
    }

    #[test]
    fn late_beyond_a_quarter_of_the_shortest_interval_escalates_once() {
        let mut l = fastest();
        // 1/256 s / 4 = 976,562 ns.
        assert_eq!(
            l.observe(Nanos(10 * MS), Nanos(10 * MS + 976_562)),
            Verdict::OnTime
        );
        assert_eq!(
            l.observe(Nanos(20 * MS), Nanos(22 * MS)),
            Verdict::Escalate {
                by_ns: 2 * MS,
                threshold_ns: 976_562
            }
        );
        assert_eq!(
            l.observe(Nanos(30 * MS), Nanos(35 * MS)),
            Verdict::Late { by_ns: 5 * MS }
        );
        // Early wake-ups count as on time.
        assert_eq!(l.observe(Nanos(40 * MS), Nanos(39 * MS)), Verdict::OnTime);
        assert_eq!(l.counts(), (4, 2, 5 * MS));
    }

    #[test]
    fn nothing_escalates_off_already_real_time_or_without_advbase_0() {
        let mut off = Lateness::new(false, false);
        off.set_intervals([carp_proto::timers::advert_interval(0, 1)]);
        assert_eq!(
            off.observe(Nanos(0), Nanos(50 * MS)),
            Verdict::Late { by_ns: 50 * MS }
        );
        let mut rt = Lateness::new(true, true);
        rt.set_intervals([carp_proto::timers::advert_interval(0, 1)]);
        assert_eq!(
            rt.observe(Nanos(0), Nanos(50 * MS)),
            Verdict::Late { by_ns: 50 * MS }
        );
        let mut slow = Lateness::new(true, false);
        slow.set_intervals([carp_proto::timers::advert_interval(1, 0)]);
        assert_eq!(slow.observe(Nanos(0), Nanos(500 * MS)), Verdict::OnTime);
        // A reload to advbase 0 starts the watch.
        slow.set_intervals([carp_proto::timers::advert_interval(0, 100)]);
        assert!(matches!(
            slow.observe(Nanos(0), Nanos(500 * MS)),
            Verdict::Escalate { .. }
        ));
    }

    #[test]
    fn the_start_warning_names_what_is_missing_only_when_it_matters() {
        let able = Scheduling {
            priority: 0,
            auto: true,
            cap_sys_nice: true,
            rtprio_limit: 0,
        };
        assert_eq!(start_warning(true, able), None);
        assert_eq!(
            start_warning(
                false,
                Scheduling {
                    cap_sys_nice: false,
                    ..able
                }
            ),
            None
        );
        let by_limit = Scheduling {
            cap_sys_nice: false,
            rtprio_limit: 10,
            ..able
        };
        assert_eq!(start_warning(true, by_limit), None);
        let set = Scheduling {
            priority: 40,
            cap_sys_nice: false,
            ..able
        };
        assert_eq!(start_warning(true, set), None);
        let missing = start_warning(
            true,
            Scheduling {
                cap_sys_nice: false,
                rtprio_limit: 5,
                ..able
            },
        )
        .unwrap();
        assert!(
            missing.contains("without CAP_SYS_NICE and with RLIMIT_RTPRIO 5 < 10"),
            "{missing}"
        );
        assert!(missing.contains("not safe on a busy host"), "{missing}");
        let off = start_warning(
            true,
            Scheduling {
                auto: false,
                ..able
            },
        )
        .unwrap();
        assert!(off.contains("auto_realtime = false"), "{off}");
    }
}
