//! The steps of the conntrackd driver, their outcomes and their counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::ConntrackdError;

/// One conntrackd call, named as in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Step {
    /// `-c`: commit the external cache into the kernel table.
    Commit,
    /// `-f`: flush the internal and external caches.
    Flush,
    /// `-R`: resynchronise the internal cache with the kernel table.
    Resync,
    /// `-B`: send a bulk update to the other replicas.
    BulkSend,
    /// `-s`: statistics, asked to learn whether conntrackd answers.
    Check,
    /// `-d`: start conntrackd as a daemon (it did not answer).
    Start,
    /// `-t`: shorten the kernel's conntrack timers.
    ShortenTimers,
    /// `-n`: ask the other replica for a resync.
    RequestResync,
}

impl Step {
    /// Every step, in [`Step`] order (the index of the counters).
    pub const ALL: [Step; 8] = [
        Step::Commit,
        Step::Flush,
        Step::Resync,
        Step::BulkSend,
        Step::Check,
        Step::Start,
        Step::ShortenTimers,
        Step::RequestResync,
    ];

    /// The step's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Step::Commit => "commit",
            Step::Flush => "flush",
            Step::Resync => "resync",
            Step::BulkSend => "bulk_send",
            Step::Check => "check",
            Step::Start => "start",
            Step::ShortenTimers => "shorten_timers",
            Step::RequestResync => "request_resync",
        }
    }

    /// conntrackd's command-line flag for the step.
    pub fn flag(self) -> &'static str {
        match self {
            Step::Commit => "-c",
            Step::Flush => "-f",
            Step::Resync => "-R",
            Step::BulkSend => "-B",
            Step::Check => "-s",
            Step::Start => "-d",
            Step::ShortenTimers => "-t",
            Step::RequestResync => "-n",
        }
    }
}

/// How a step ended, named as in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Outcome {
    /// Exited with status 0.
    Ok,
    /// Exited with another status.
    Failed,
    /// Killed after [`super::STEP_TIMEOUT`].
    TimedOut,
    /// Could not be started.
    SpawnFailed,
    /// Killed because a newer transition superseded its sequence.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in [`Outcome`] order (the index of the counters).
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::TimedOut,
        Outcome::SpawnFailed,
        Outcome::Cancelled,
    ];

    /// The outcome's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::SpawnFailed => "spawn_failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub(super) fn of(result: &Result<(), ConntrackdError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Ok,
            Err(ConntrackdError::Failed { .. } | ConntrackdError::Lock { .. }) => Outcome::Failed,
            Err(ConntrackdError::TimedOut { .. }) => Outcome::TimedOut,
            Err(ConntrackdError::Spawn { .. }) => Outcome::SpawnFailed,
        }
    }
}

/// The step counters, indexed by step then outcome. Process-wide, like the
/// receive path's counters: a host runs one conntrackd, and the metrics
/// endpoint reads them without a round trip through the main loop.
pub(super) static STEP_COUNTS: [[AtomicU64; Outcome::ALL.len()]; Step::ALL.len()] =
    [const { [const { AtomicU64::new(0) }; Outcome::ALL.len()] }; Step::ALL.len()];
/// Whether a driver was made: the metrics show the steps only then.
pub(super) static DRIVEN: AtomicBool = AtomicBool::new(false);

/// Every (step, outcome, count), zeros included, once a [`super::Conntrackd`]
/// was made in this process; `None` before.
pub fn step_totals() -> Option<Vec<(&'static str, &'static str, u64)>> {
    if !DRIVEN.load(Ordering::Relaxed) {
        return None;
    }
    let mut totals = Vec::with_capacity(Step::ALL.len() * Outcome::ALL.len());
    for step in Step::ALL {
        for outcome in Outcome::ALL {
            let count = STEP_COUNTS[step as usize][outcome as usize].load(Ordering::Relaxed);
            totals.push((step.name(), outcome.name(), count));
        }
    }
    Some(totals)
}
