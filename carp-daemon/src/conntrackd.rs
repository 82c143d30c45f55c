//! Driving conntrackd (conntrack-tools) at state changes, so that a NAT
//! gateway's connections follow its VIPs: the daemon side (I/O) of a sync
//! group's `conntrackd_config`.
//!
//! The order of the calls is the one of conntrackd's own
//! `doc/sync/primary-backup.sh`, which keepalived's users run from their
//! notify scripts:
//!
//! - **MASTER** ([`Conntrackd::on_master`]): commit the external cache (the
//!   peer's connections) into the kernel table (`-c`), flush both caches
//!   (`-f`), resynchronise the internal cache with the kernel table (`-R`),
//!   send a bulk update to the backups (`-B`). The caller waits for the
//!   returned handle (bounded) before the gratuitous ARPs go out, so the
//!   first packet that reaches this host finds its connection committed and
//!   is not dropped as `ct state invalid`.
//! - **BACKUP** ([`Conntrackd::on_backup`]): check that conntrackd answers
//!   (`-s`); if not, remove a stale lock file (conntrackd was not cleanly
//!   stopped) and start it (`-d`); shorten the kernel's timers of the
//!   connections this host no longer forwards (`-t`); ask the master for a
//!   resync (`-n`).
//! - **Leaving** ([`Conntrackd::on_leave`], the script's `fault`: link down,
//!   INIT, shutdown): shorten the kernel's timers (`-t`).
//!
//! Every step is a `conntrackd -C CONF FLAG` client process
//! (tokio::process, killed with its process group after [`STEP_TIMEOUT`] or
//! when the sequence is cancelled), logged on one line with its outcome and
//! duration and counted per step and outcome ([`step_totals`], exposed as
//! `carpd_conntrackd_steps_total{step,outcome}`). A failed step is logged and
//! the next one runs all the same, as the script does. A sequence never
//! blocks the caller: it runs on its own task. Sequences run one at a time:
//! a new transition cancels the sequence still running (its state is
//! superseded) and starts once it is gone, so the calls never interleave and
//! the last transition always runs to its end.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

use crate::chain::Chain;

mod step;

pub use step::{step_totals, Outcome, Step};
use step::{DRIVEN, STEP_COUNTS};

/// Longest wait of gratuitous ARPs for conntrackd to be ready as master.
pub const CONNTRACKD_WAIT: Duration = Duration::from_secs(1);

/// Waits until conntrackd is ready as master (`gate` true), at most
/// [`CONNTRACKD_WAIT`]; returns whether it was.
pub async fn conntrackd_ready(mut gate: watch::Receiver<bool>) -> bool {
    tokio::time::timeout(CONNTRACKD_WAIT, gate.wait_for(|ready| *ready))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// How long one conntrackd call may take before it is killed.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Where conntrackd is looked for when it is not on `PATH`.
pub const DEFAULT_PROGRAM: &str = "/usr/sbin/conntrackd";
/// conntrackd's lock file when its configuration names none (`LockFile`).
pub const DEFAULT_LOCK_FILE: &str = "/var/lock/conntrack.lock";

/// Why a conntrackd call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackdError {
    /// conntrackd could not be started.
    #[error("cannot run {program} for {step}")]
    Spawn {
        /// The step (`commit`, `flush`, ...).
        step: &'static str,
        /// The conntrackd program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// conntrackd ran and exited with a failure.
    #[error("conntrackd {flag} failed ({status})")]
    Failed {
        /// The command-line flag of the step.
        flag: &'static str,
        /// How it exited.
        status: ExitStatus,
    },
    /// conntrackd did not exit within the step's time and was killed.
    #[error("conntrackd {flag} timed out after {timeout:?}")]
    TimedOut {
        /// The command-line flag of the step.
        flag: &'static str,
        /// The time it had.
        timeout: Duration,
    },
    /// A stale lock file could not be removed before a restart.
    #[error("cannot remove the stale lock file {path}")]
    Lock {
        /// The lock file named by the configuration.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The driver of one conntrackd, named by its configuration file. Cheap to
/// share by reference; the sequences it starts own what they need.
#[derive(Debug)]
pub struct Conntrackd {
    /// What every sequence needs.
    shared: Arc<Shared>,
    /// The sequence started last: cancelled by the next one, which waits
    /// for it to be gone (`done` closes when its task ends).
    last: Mutex<Option<Sequence>>,
}

/// What the sequences share.
#[derive(Debug)]
struct Shared {
    /// The conntrackd program.
    program: PathBuf,
    /// Its configuration file (`-C`).
    config: PathBuf,
    /// The time each call has.
    step_timeout: Duration,
}

/// A sequence started on its own task.
#[derive(Debug)]
struct Sequence {
    /// Cancels it.
    abort: AbortHandle,
    /// Closes when its task ends, however it ends (nothing is ever sent).
    done: watch::Receiver<()>,
}

impl Conntrackd {
    /// A driver for the conntrackd configured by `config`, the program
    /// found on `PATH`, else [`DEFAULT_PROGRAM`].
    pub fn new(config: PathBuf) -> Conntrackd {
        Conntrackd::with_program(find_program(), config)
    }

    /// A driver running `program` as conntrackd (tests use a fake one).
    pub fn with_program(program: PathBuf, config: PathBuf) -> Conntrackd {
        DRIVEN.store(true, Ordering::Relaxed);
        Conntrackd {
            shared: Arc::new(Shared {
                program,
                config,
                step_timeout: STEP_TIMEOUT,
            }),
            last: Mutex::new(None),
        }
    }

    /// The same driver with `timeout` per call instead of [`STEP_TIMEOUT`].
    #[must_use]
    pub fn with_step_timeout(self, timeout: Duration) -> Conntrackd {
        let shared = Shared {
            program: self.shared.program.clone(),
            config: self.shared.config.clone(),
            step_timeout: timeout,
        };
        Conntrackd {
            shared: Arc::new(shared),
            last: self.last,
        }
    }

    /// The configuration file.
    pub fn config(&self) -> &Path {
        &self.shared.config
    }

    /// Becoming MASTER: commit, flush, resync, bulk send. The handle ends
    /// when the last step has; the caller may wait for it (bounded) before
    /// announcing the VIPs. Must be called inside a tokio runtime.
    pub fn on_master(&self) -> JoinHandle<()> {
        self.start("master", |shared| async move {
            for step in [Step::Commit, Step::Flush, Step::Resync, Step::BulkSend] {
                let _ = shared.run(step).await;
            }
        })
    }

    /// Becoming BACKUP: make sure conntrackd runs, shorten the kernel's
    /// timers, ask the master for a resync. Runs on its own task.
    pub fn on_backup(&self) {
        drop(self.start("backup", |shared| async move {
            if shared.run(Step::Check).await.is_err() {
                shared.restart().await;
            }
            let _ = shared.run(Step::ShortenTimers).await;
            let _ = shared.run(Step::RequestResync).await;
        }));
    }

    /// Leaving (INIT, link down, shutdown): shorten the kernel's timers.
    /// Runs on its own task.
    pub fn on_leave(&self) {
        drop(self.start("leave", |shared| async move {
            let _ = shared.run(Step::ShortenTimers).await;
        }));
    }

    /// Resolves once the sequence started last has ended (at once when
    /// none runs): what a daemon shutting down waits for, bounded, so that
    /// `on_leave`'s call is not killed with the runtime.
    pub fn idle(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let done = last.as_ref().map(|sequence| sequence.done.clone());
        async move {
            if let Some(done) = done {
                gone(done).await;
            }
        }
    }

    /// Starts `sequence` once the one before it, cancelled, is gone.
    fn start<F, Fut>(&self, transition: &'static str, sequence: F) -> JoinHandle<()>
    where
        F: FnOnce(Arc<Shared>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let before = last.take().map(|before| {
            before.abort.abort();
            before.done
        });
        let (done_tx, done) = watch::channel(());
        let shared = Arc::clone(&self.shared);
        let task = tokio::spawn(async move {
            let _done = done_tx;
            if let Some(before) = before {
                gone(before).await;
            }
            tracing::debug!(transition, config = %shared.config.display(), "conntrackd sequence");
            sequence(shared).await;
        });
        *last = Some(Sequence {
            abort: task.abort_handle(),
            done,
        });
        task
    }
}

impl Shared {
    /// Runs one step: logged, counted, killed after the step timeout or
    /// when its sequence is cancelled.
    async fn run(&self, step: Step) -> Result<(), ConntrackdError> {
        let mut record = Record {
            step,
            started: Instant::now(),
            done: false,
        };
        let result = self.call(step).await;
        record.finish(&result);
        result
    }

    /// `conntrackd -C CONFIG FLAG`, within the step timeout.
    async fn call(&self, step: Step) -> Result<(), ConntrackdError> {
        let child = crate::child::command(&self.program)
            .arg("-C")
            .arg(&self.config)
            .arg(step.flag())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ConntrackdError::Spawn {
                step: step.name(),
                program: self.program.clone(),
                source,
            })?;
        // Dropped (the sequence cancelled) while conntrackd runs: its
        // process group is killed.
        let mut running = crate::child::GroupChild::new(child);
        let waited = tokio::time::timeout(self.step_timeout, running.wait()).await;
        let flag = step.flag();
        match waited {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(ConntrackdError::Failed { flag, status }),
            Ok(Err(source)) => Err(ConntrackdError::Spawn {
                step: step.name(),
                program: self.program.clone(),
                source,
            }),
            Err(_elapsed) => {
                running.kill_group();
                let _ = running.wait().await;
                Err(ConntrackdError::TimedOut {
                    flag,
                    timeout: self.step_timeout,
                })
            }
        }
    }

    /// conntrackd did not answer: remove its lock file if one is left (it
    /// was not cleanly stopped) and start it again, as `primary-backup.sh`
    /// does.
    async fn restart(&self) {
        let lock = lock_file(&self.config);
        match std::fs::remove_file(&lock) {
            Ok(()) => tracing::warn!(
                lock = %lock.display(),
                "conntrackd was not cleanly stopped: its lock file is removed before it is started again"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                let e = ConntrackdError::Lock { path: lock, source };
                tracing::error!(error = %Chain(&e), "conntrackd not restarted");
                return;
            }
        }
        let _ = self.run(Step::Start).await;
    }
}

/// The log line and the count of one step; a step dropped before its end
/// (its sequence cancelled) is counted and logged as cancelled.
struct Record {
    /// The step.
    step: Step,
    /// When it started.
    started: Instant,
    /// Whether its outcome was recorded.
    done: bool,
}

impl Record {
    fn finish(&mut self, result: &Result<(), ConntrackdError>) {
        self.done = true;
        self.note(Outcome::of(result), result.as_ref().err());
    }

    fn note(&self, outcome: Outcome, error: Option<&ConntrackdError>) {
        STEP_COUNTS[self.step as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
        let step = self.step.name();
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let elapsed_ms = format!("{elapsed_ms:.1}");
        match error {
            None => tracing::info!(
                step,
                outcome = outcome.name(),
                elapsed_ms,
                "conntrackd step"
            ),
            Some(e) => tracing::warn!(
                step,
                outcome = outcome.name(),
                elapsed_ms,
                error = %Chain(e),
                "conntrackd step"
            ),
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.done {
            self.note(Outcome::Cancelled, None);
        }
    }
}

/// Resolves when the sequence behind `done` has ended (its sender, held by
/// its task, dropped).
async fn gone(mut done: watch::Receiver<()>) {
    while done.changed().await.is_ok() {}
}

/// conntrackd on `PATH`, else [`DEFAULT_PROGRAM`].
fn find_program() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("conntrackd"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROGRAM))
}

/// The `LockFile` of conntrackd's configuration `config`, else
/// [`DEFAULT_LOCK_FILE`] (also when the file cannot be read: the restart
/// then fails on its own and says why).
fn lock_file(config: &Path) -> PathBuf {
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| lock_file_in(&text))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK_FILE))
}

/// The `LockFile` clause of a conntrackd configuration's text.
fn lock_file_in(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        (words.next()? == "LockFile").then_some(())?;
        words.next().map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests;
