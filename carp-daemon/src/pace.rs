//! Keeps a real-time loop from dying of `RLIMIT_RTTIME`.
//!
//! `RLIMIT_RTTIME` counts the CPU time a real-time thread uses without
//! sleeping; the kernel starts the count again only when the thread sleeps
//! and is woken (`enqueue_task_rt` with `ENQUEUE_WAKEUP`), not when it
//! yields. A receive path that never runs dry (a flood of adverts that all
//! pass the in-kernel checks, from ever new sources) never lets the loop
//! sleep, and the soft limit's SIGXCPU would end the daemon with its VIPs
//! configured and no leave advert. Two guards:
//!
//! - [`Pacer`]: the loop calls [`Pacer::tick`] once per turn. When the thread
//!   has not slept (its voluntary context switches, `ru_nvcsw`, did not
//!   move) for a quarter of the soft limit (at most [`BUSY_BUDGET`]), it
//!   sleeps [`PAUSE`]: a real sleep, which starts the count again. The
//!   adverts and timers wait that long at most, once per budget.
//! - [`Fallback`]: should SIGXCPU come anyway (the loop held up elsewhere),
//!   the loop drops to SCHED_OTHER with a warning instead of dying
//!   ([`Fallback::drop_to_other`]) and goes back to its real-time policy
//!   [`BACK_AFTER`] later ([`Fallback::restore`]), with the soft limit the
//!   kernel raised at the signal set back.
//!
//! Both act only on a thread that runs SCHED_FIFO or SCHED_RR, whether
//! [`crate::realtime::apply`], systemd or the loop itself when its timers
//! ran late ([`crate::lateness`], then [`LoopGuard::became_real_time`])
//! made it so.

use std::io;
use std::time::Duration;

use crate::clock::monotonic_ns;

/// Longest time the loop runs without sleeping before it pauses.
pub const BUSY_BUDGET: Duration = Duration::from_millis(250);
/// How long the loop sleeps when its budget is used up.
pub const PAUSE: Duration = Duration::from_micros(200);
/// After SIGXCPU, how long the loop runs SCHED_OTHER.
pub const BACK_AFTER: Duration = Duration::from_secs(10);
/// How often [`Pacer::tick`] reads the context switches.
const CHECK_EVERY_NS: u64 = 10_000_000;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PaceError {
    /// The scheduling policy could not be changed.
    #[error("cannot set the scheduling policy {policy} at priority {priority}")]
    Policy {
        /// The policy asked for (`SCHED_*`).
        policy: i32,
        /// The priority asked for.
        priority: i32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The calling thread's policy (without `SCHED_RESET_ON_FORK`) and priority.
fn current_policy() -> (i32, i32) {
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param
    // to fill.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut param);
        (policy, param.sched_priority)
    }
}

fn is_real_time(policy: i32) -> bool {
    let policy = policy & !libc::SCHED_RESET_ON_FORK;
    policy == libc::SCHED_FIFO || policy == libc::SCHED_RR
}

/// The calling thread's voluntary context switches so far.
fn voluntary_switches() -> i64 {
    // SAFETY: `usage` is a valid rusage to fill; RUSAGE_THREAD reads the
    // calling thread.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage.ru_nvcsw
    }
}

/// The soft `RLIMIT_RTTIME`, if any.
fn rttime_soft() -> Option<Duration> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(Duration::from_micros(lim.rlim_cur))
}

/// Sets the soft `RLIMIT_RTTIME` to `soft`, keeping the hard one.
fn set_rttime_soft(soft: Duration) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill, then to set; lowering the
    // soft limit needs no privilege.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_RTTIME, &mut lim) == 0 {
            let soft = u64::try_from(soft.as_micros()).unwrap_or(u64::MAX);
            lim.rlim_cur = soft.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_RTTIME, &lim);
        }
    }
}

/// Makes the loop sleep briefly when it has run too long without sleeping.
#[derive(Debug)]
pub struct Pacer {
    /// Longest run without sleeping; `None`: the thread is not real-time.
    budget_ns: Option<u64>,
    /// Voluntary context switches at the last check.
    switches: i64,
    /// When the thread was last seen to have slept.
    slept_at: u64,
    /// When the switches were last read.
    checked_at: u64,
    /// Pauses taken.
    pauses: u64,
}

impl Pacer {
    /// A pacer for the calling thread (the loop's).
    pub fn new() -> Self {
        let budget = is_real_time(current_policy().0).then(|| {
            let quarter = rttime_soft().map_or(BUSY_BUDGET, |soft| soft / 4);
            quarter.min(BUSY_BUDGET)
        });
        let now = monotonic_ns();
        Self {
            budget_ns: budget.map(|b| u64::try_from(b.as_nanos()).unwrap_or(u64::MAX)),
            switches: voluntary_switches(),
            slept_at: now,
            checked_at: now,
            pauses: 0,
        }
    }

    /// One turn of the loop: pauses [`PAUSE`] when the thread has not slept
    /// for its budget.
    pub fn tick(&mut self) {
        let Some(budget) = self.budget_ns else {
            return;
        };
        let now = monotonic_ns();
        if now.saturating_sub(self.checked_at) < CHECK_EVERY_NS {
            return;
        }
        self.checked_at = now;
        let switches = voluntary_switches();
        if switches != self.switches {
            self.switches = switches;
            self.slept_at = now;
            return;
        }
        if now.saturating_sub(self.slept_at) < budget {
            return;
        }
        if self.pauses == 0 {
            tracing::warn!(
                "the loop ran {} ms without sleeping (a receive path that never runs dry?): \
                 it now pauses {} us whenever that happens, to stay under RLIMIT_RTTIME",
                budget / 1_000_000,
                PAUSE.as_micros()
            );
        }
        self.pauses += 1;
        // Blocks the loop thread on purpose: only a real sleep starts the
        // kernel's RLIMIT_RTTIME count again.
        std::thread::sleep(PAUSE);
        self.switches = voluntary_switches();
        self.slept_at = monotonic_ns();
        self.checked_at = self.slept_at;
    }

    /// Pauses taken so far.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

/// The loop's real-time policy, to drop and to restore.
#[derive(Debug)]
pub struct Fallback {
    /// The policy and priority to go back to; `None`: not real-time.
    policy: Option<(i32, i32)>,
    /// The soft limit to set back.
    soft: Option<Duration>,
    /// Running SCHED_OTHER since SIGXCPU.
    dropped: bool,
}

impl Fallback {
    /// The calling thread's (the loop's) policy as it is now.
    pub fn new() -> Self {
        let (policy, priority) = current_policy();
        Self {
            policy: is_real_time(policy).then_some((policy, priority)),
            soft: rttime_soft(),
            dropped: false,
        }
    }

    /// True when the thread runs a real-time policy (so SIGXCPU may come
    /// from `RLIMIT_RTTIME`).
    pub fn is_real_time(&self) -> bool {
        self.policy.is_some()
    }

    /// SIGXCPU: runs the calling thread SCHED_OTHER, which stops the
    /// `RLIMIT_RTTIME` count (and with it the SIGKILL at the hard limit).
    /// Returns true when it did (false: not real-time, or dropped already).
    pub fn drop_to_other(&mut self) -> Result<bool, PaceError> {
        if self.policy.is_none() || self.dropped {
            return Ok(false);
        }
        set_policy(libc::SCHED_OTHER | libc::SCHED_RESET_ON_FORK, 0)?;
        self.dropped = true;
        Ok(true)
    }

    /// Back to the real-time policy, with the soft limit set back to what
    /// it was (the kernel raises it by a second at each SIGXCPU). Returns
    /// true when it did.
    pub fn restore(&mut self) -> Result<bool, PaceError> {
        let Some((policy, priority)) = self.policy.filter(|_| self.dropped) else {
            return Ok(false);
        };
        if let Some(soft) = self.soft {
            set_rttime_soft(soft);
        }
        set_policy(policy, priority)?;
        self.dropped = false;
        Ok(true)
    }
}

impl Default for Fallback {
    fn default() -> Self {
        Self::new()
    }
}

/// Both guards, as the loop uses them: [`LoopGuard::tick`] each turn, and
/// [`LoopGuard::watch`] as one branch of its `select!`.
pub struct LoopGuard {
    pacer: Pacer,
    fallback: Fallback,
    /// SIGXCPU, caught only on a real-time thread (elsewhere it keeps its
    /// default action, for `RLIMIT_CPU`).
    xcpu: Option<tokio::signal::unix::Signal>,
    /// When to go back to the real-time policy.
    back_at: Option<tokio::time::Instant>,
}

impl LoopGuard {
    /// Guards the calling thread (the loop's). Call inside the runtime.
    pub fn new() -> io::Result<Self> {
        let fallback = Fallback::new();
        let xcpu = if fallback.is_real_time() {
            let kind = tokio::signal::unix::SignalKind::from_raw(libc::SIGXCPU);
            Some(tokio::signal::unix::signal(kind)?)
        } else {
            None
        };
        Ok(Self {
            pacer: Pacer::new(),
            fallback,
            xcpu,
            back_at: None,
        })
    }

    /// The calling thread was just made real-time (see
    /// [`crate::lateness`]): both guards start watching it.
    pub fn became_real_time(&mut self) -> io::Result<()> {
        *self = Self::new()?;
        Ok(())
    }

    /// True when the guarded thread runs a real-time policy.
    pub fn is_real_time(&self) -> bool {
        self.fallback.is_real_time()
    }

    /// One turn of the loop ([`Pacer::tick`]).
    pub fn tick(&mut self) {
        self.pacer.tick();
    }

    /// Waits for SIGXCPU (then drops to SCHED_OTHER) or for the time to go
    /// back to the real-time policy (then goes back); never returns on a
    /// thread that is not real-time. Cancel-safe.
    pub async fn watch(&mut self) {
        let back = async {
            match self.back_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let xcpu = async {
            match self.xcpu.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = back => {
                self.back_at = None;
                match self.fallback.restore() {
                    Ok(_) => tracing::info!("real-time scheduling again"),
                    Err(e) => tracing::error!("{}", crate::chain::Chain(&e)),
                }
            }
            Some(()) = xcpu => match self.fallback.drop_to_other() {
                Ok(true) => {
                    tracing::warn!(
                        "SIGXCPU: real-time CPU limit (RLIMIT_RTTIME) reached; running \
                         SCHED_OTHER for {} s",
                        BACK_AFTER.as_secs()
                    );
                    self.back_at = Some(tokio::time::Instant::now() + BACK_AFTER);
                }
                Ok(false) => {}
                Err(e) => tracing::error!("SIGXCPU: {}", crate::chain::Chain(&e)),
            },
        }
    }
}

fn set_policy(policy: i32, priority: i32) -> Result<(), PaceError> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(PaceError::Policy {
            policy,
            priority,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_for_a_thread_that_is_not_real_time() {
        let mut p = Pacer::new();
        assert_eq!(p.budget_ns, None);
        p.tick();
        assert_eq!(p.pauses(), 0);
        let mut f = Fallback::new();
        assert!(!f.is_real_time());
        assert!(!f.drop_to_other().unwrap());
        assert!(!f.restore().unwrap());
    }

    /// Runs `f` on a thread of its own made SCHED_FIFO, with a 100 ms soft
    /// RLIMIT_RTTIME (counted per thread, set per process: set back
    /// afterwards; the hard one is left alone, raising it needs
    /// CAP_SYS_RESOURCE), and puts everything back before returning what
    /// `f` returned. `None` without root (told on stderr).
    fn on_a_tightly_limited_real_time_thread<R: Send + 'static>(
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: SCHED_FIFO needs root (CAP_SYS_NICE)");
            return None;
        }
        let _rttime = crate::realtime::RTTIME_TEST_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = std::thread::spawn(|| {
            let old = rttime_soft();
            set_rttime_soft(Duration::from_millis(100));
            set_policy(libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, 1).unwrap();
            let r = f();
            set_policy(libc::SCHED_OTHER, 0).unwrap();
            set_rttime_soft(old.unwrap_or(Duration::MAX));
            r
        })
        .join()
        .unwrap();
        Some(r)
    }

    #[test]
    fn a_busy_real_time_thread_pauses_and_survives_a_tight_limit() {
        // Spinning for a second: without the pauses SIGXCPU would end the
        // test process.
        let Some((budget, pauses)) = on_a_tightly_limited_real_time_thread(|| {
            let mut p = Pacer::new();
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                p.tick();
                std::hint::spin_loop();
            }
            (p.budget_ns, p.pauses())
        }) else {
            return;
        };
        assert_eq!(budget, Some(25_000_000));
        assert!(pauses >= 10, "{pauses} pauses in 1 s of spinning");
    }

    #[test]
    fn sigxcpu_drops_to_sched_other_instead_of_dying_and_goes_back() {
        let Some((dropped, restored, back, soft)) = on_a_tightly_limited_real_time_thread(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (dropped, restored) = rt.block_on(async {
                let mut guard = LoopGuard::new().unwrap();
                // A loop that never sleeps and never pauses: SIGXCPU comes
                // after 100 ms; the guard must catch it.
                let spin = async {
                    loop {
                        let t = std::time::Instant::now();
                        while t.elapsed() < Duration::from_millis(1) {
                            std::hint::spin_loop();
                        }
                        tokio::task::yield_now().await;
                    }
                };
                tokio::select! {
                    () = guard.watch() => {}
                    () = spin => {}
                }
                let dropped = current_policy().0 & !libc::SCHED_RESET_ON_FORK;
                (dropped, guard.fallback.restore().unwrap())
            });
            let back = current_policy().0 & !libc::SCHED_RESET_ON_FORK;
            (dropped, restored, back, rttime_soft())
        }) else {
            return;
        };
        assert_eq!(dropped, libc::SCHED_OTHER, "not dropped to SCHED_OTHER");
        assert!(restored);
        assert_eq!(back, libc::SCHED_FIFO, "not back to SCHED_FIFO");
        assert_eq!(
            soft,
            Some(Duration::from_millis(100)),
            "soft limit not set back"
        );
    }
}
