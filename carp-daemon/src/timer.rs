//! The protocol's deadlines to the nanosecond: a `timerfd` on
//! CLOCK_MONOTONIC (the clock of [`crate::clock::monotonic_ns`] and of the
//! core's `Nanos`), armed for the time left until the deadline. Relative,
//! not `TFD_TIMER_ABSTIME`: libfaketime (the clock test runs the daemon
//! under it) shifts absolute timer settings by its wall-clock offset even
//! for CLOCK_MONOTONIC, which put every deadline an hour away.
//!
//! tokio's timers round every deadline up to the next millisecond tick.
//! At advbase 0 / advskew 0 the advert interval is 3.9 ms: rounded up, the
//! master sent an advert every 5 ms or so (the busy-host bench measured
//! 1.2 ms late, p50, on an idle and a real-time daemon alike), which ate a
//! third of the backup's margin of three intervals before master-down.
//! Armed for the deadline itself, the timer fires when the kernel's
//! high-resolution timer does, and the loop's lateness
//! ([`crate::lateness`]) is its scheduling delay alone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::clock::monotonic_ns;
use crate::proto::Nanos;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// A timerfd call failed.
    #[error("timerfd: {op} failed")]
    Os {
        /// What was done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A one-shot timer at absolute CLOCK_MONOTONIC deadlines.
#[derive(Debug)]
pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
}

impl Deadline {
    /// A disarmed timer. Call inside the runtime.
    pub fn new() -> Result<Self, TimerError> {
        // SAFETY: plain system call with constant flags.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(os("create", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd moves into the AsyncFd and keeps its
        // descriptor open, unchanged, for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| os("register", e.into()))?;
        Ok(Self { fd })
    }

    /// Waits until `at` (at once when it has passed); never returns for
    /// `None`. Cancel-safe: the next call arms the timer again (which also
    /// forgets an expiry not read).
    pub async fn sleep_until(&self, at: Option<Nanos>) -> Result<(), TimerError> {
        let Some(at) = at else {
            return std::future::pending().await;
        };
        // An all-zero it_value would disarm the timer: 1 ns is as past.
        let left = at.0.saturating_sub(monotonic_ns()).max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (left / Nanos::PER_SEC) as libc::time_t,
                tv_nsec: (left % Nanos::PER_SEC) as libc::c_long,
            },
        };
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: valid descriptor and itimerspec; the old value is not
        // asked for.
        let set = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        if set != 0 {
            return Err(os("settime", io::Error::last_os_error()));
        }
        loop {
            let mut guard = self.fd.readable().await.map_err(|e| os("poll", e))?;
            let mut expiries = [0u8; 8];
            // SAFETY: valid descriptor; 8 bytes to fill, as timerfd needs.
            let n = unsafe { libc::read(fd, expiries.as_mut_ptr().cast(), expiries.len()) };
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(os("read", e));
            }
            guard.clear_ready();
        }
    }
}

fn os(op: &'static str, source: io::Error) -> TimerError {
    TimerError::Os { op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_the_deadline_never_before_and_at_once_when_past() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let timer = Deadline::new().unwrap();
            // Passed deadlines (and 0) fire at once.
            timer.sleep_until(Some(Nanos(0))).await.unwrap();
            timer
                .sleep_until(Some(Nanos(monotonic_ns() - 1_000_000)))
                .await
                .unwrap();
            // Never before the deadline (how soon after is the bench's
            // to measure: a busy test machine may delay any wake-up).
            for _ in 0..5 {
                let due = monotonic_ns() + 3_906_250;
                timer.sleep_until(Some(Nanos(due))).await.unwrap();
                assert!(monotonic_ns() >= due, "fired early");
            }
            // A wait given up (dropped) leaves nothing behind for the next.
            let soon = Nanos(monotonic_ns() + 20_000_000);
            let dropped = tokio::time::timeout(
                std::time::Duration::from_millis(1),
                timer.sleep_until(Some(soon)),
            )
            .await;
            assert!(dropped.is_err());
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            let due = monotonic_ns() + 5_000_000;
            timer.sleep_until(Some(Nanos(due))).await.unwrap();
            assert!(monotonic_ns() >= due, "fired early on a stale expiry");
        });
    }
}
