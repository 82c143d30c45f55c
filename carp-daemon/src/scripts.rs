//! Up and down scripts, called as UCARP calls them and never blocking the
//! caller.
//!
//! For each VIP the script is executed directly (no shell) with
//! `argv = [script, interface, vip]`, plus `xparam` as a fourth argument
//! when one is configured — the interface as given on the command line, so
//! an alias such as `eth0:carp0` is passed unchanged. On top of UCARP's
//! arguments the environment carries:
//!
//! | variable         | value                                   |
//! |------------------|-----------------------------------------|
//! | `CARP_STATE`     | `MASTER` (up script) or `BACKUP` (down) |
//! | `CARP_VHID`      | the virtual host id                     |
//! | `CARP_INTERFACE` | the interface, as passed in argv       |
//! | `CARP_VIPS`      | every VIP of the instance, space-separated |
//! | `CARP_VIP`       | the VIP of this call                    |
//!
//! Otherwise the script inherits the daemon's environment, as UCARP's
//! scripts inherit UCARP's, minus the variables the daemon reads a password
//! from and the service manager's `NOTIFY_SOCKET`, `WATCHDOG_*` and
//! `LISTEN_*` ([`crate::child`]). It runs SCHED_OTHER, with the
//! `RLIMIT_RTTIME` the daemon inherited, even when the daemon runs
//! real-time.
//!
//! A [`ScriptRunner`] runs one instance's jobs one after the other on a
//! tokio task, so a down script never overtakes the up script it follows,
//! while [`ScriptRunner::submit`] returns at once. Jobs are coalesced: at
//! most one job waits while another runs, and a newer job replaces a
//! waiting one, whose receiver then gets [`JobOutcome::Superseded`]. After
//! flapping, only the script of the latest state runs once the running one
//! is done, instead of every up/down pair in turn; the latest job is never
//! dropped, so the last script run always matches the last state.
//!
//! Each script gets `timeout` to exit; past it the script's whole process
//! group is killed (SIGKILL), as it is when the daemon exits (or the
//! runner's task is dropped) while the script runs. When the script exits, its own exit status is
//! reported: its stderr is read for at most [`STDERR_GRACE`] more, so a
//! background child it left holding stderr (a daemon it started) neither
//! delays the outcome nor turns it into a timeout, and is left running.
//! Failures are logged with the exit code and the tail of stderr, and every
//! outcome is returned through a oneshot channel the caller may ignore.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, Notify};
use tracing::Instrument;

use crate::chain::Chain;
use crate::child::GroupChild;

/// Bytes of stderr kept for the log and the outcome.
const STDERR_TAIL: usize = 2048;
/// How long stderr is still read after the script exited, for what it
/// wrote last; a background child holding it open is not waited for.
pub const STDERR_GRACE: Duration = Duration::from_millis(200);

/// Errors of submitting script jobs.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The runner's worker task is gone (runtime shut down).
    #[error("script runner for vhid {vhid} has stopped")]
    Stopped {
        /// The instance whose job was refused.
        vhid: u8,
    },
}

/// Which script to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptKind {
    /// The up script: we became MASTER.
    Up,
    /// The down script: we left MASTER.
    Down,
}

impl ScriptKind {
    /// `up` or `down`, for logs.
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Up => "up",
            ScriptKind::Down => "down",
        }
    }

    /// The `CARP_STATE` value.
    pub fn state(self) -> &'static str {
        match self {
            ScriptKind::Up => "MASTER",
            ScriptKind::Down => "BACKUP",
        }
    }
}

/// One state change to report to a script.
#[derive(Clone, Debug)]
pub struct ScriptJob {
    /// Up or down.
    pub kind: ScriptKind,
    /// Path of the script.
    pub script: PathBuf,
    /// Virtual host id.
    pub vhid: u8,
    /// Interface as configured (alias included).
    pub interface: String,
    /// Every VIP of the instance; the script runs once per VIP, in order.
    pub vips: Vec<IpAddr>,
    /// UCARP's `--xparam`, passed as the third argument when set.
    pub xparam: Option<String>,
}

/// How one script call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptStatus {
    /// Exit status 0.
    Success,
    /// Non-zero exit, or killed by a signal (`code` is `None`).
    Failed {
        /// The exit code, if it exited.
        code: Option<i32>,
    },
    /// Killed after the timeout.
    TimedOut,
    /// The script could not be started.
    SpawnFailed {
        /// The OS error's text.
        error: String,
    },
}

/// The outcome of one script call (one VIP).
#[derive(Clone, Debug)]
pub struct ScriptOutcome {
    /// The VIP passed in argv.
    pub vip: IpAddr,
    /// How it ended.
    pub status: ScriptStatus,
    /// The last bytes the script wrote to stderr.
    pub stderr_tail: String,
}

/// What became of a submitted job.
#[derive(Clone, Debug)]
pub enum JobOutcome {
    /// The script ran once per VIP, with these outcomes.
    Ran(Vec<ScriptOutcome>),
    /// A newer job of the instance replaced it before it started.
    Superseded,
}

/// Where a job's outcome is sent.
pub type Done = oneshot::Receiver<JobOutcome>;

/// A job and where its outcome goes.
type Queued = (ScriptJob, oneshot::Sender<JobOutcome>);

/// What the runner handles and its worker share.
#[derive(Debug, Default)]
struct Slot {
    /// The job waiting for the running one to finish (at most one).
    pending: Option<Queued>,
    /// Live [`ScriptRunner`] handles; the worker ends at 0 with nothing
    /// pending.
    handles: usize,
    /// The worker has ended (every handle dropped, or the runtime shut
    /// down).
    stopped: bool,
}

/// The slot and the worker's wake-up.
#[derive(Debug, Default)]
struct Shared {
    /// The waiting job and the bookkeeping.
    slot: Mutex<Slot>,
    /// Signalled when a job is queued or a handle dropped.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A poisoned lock only means a panic while holding plain data.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks the worker stopped when its task ends, aborted or not.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut slot = self.0.lock();
        slot.stopped = true;
        // Receivers of a job that will never run learn it at once.
        slot.pending = None;
    }
}

/// Runs one instance's scripts in order on a background task, coalescing
/// jobs that have not started.
#[derive(Debug)]
pub struct ScriptRunner {
    /// The instance, for logs and errors.
    vhid: u8,
    /// Shared with the worker task.
    shared: Arc<Shared>,
}

impl ScriptRunner {
    /// Starts the worker for instance `vhid`, each script call limited to
    /// `timeout`. Must be called inside a tokio runtime; the worker ends
    /// when every clone of the runner is dropped and the waiting job (if
    /// any) has run.
    pub fn new(vhid: u8, timeout: Duration) -> ScriptRunner {
        let shared = Arc::new(Shared::default());
        shared.lock().handles = 1;
        let guard = StopGuard(shared.clone());
        tokio::spawn(async move {
            let shared = guard.0.clone();
            loop {
                let next = {
                    let mut slot = shared.lock();
                    match slot.pending.take() {
                        Some(queued) => Some(queued),
                        None if slot.handles == 0 => break,
                        None => None,
                    }
                };
                // Notify keeps a permit for a wake-up sent in between.
                let Some((job, done)) = next else {
                    shared.wake.notified().await;
                    continue;
                };
                let mut outcomes = Vec::with_capacity(job.vips.len());
                for vip in &job.vips {
                    let span = tracing::info_span!(
                        "script",
                        vhid = job.vhid,
                        iface = %job.interface,
                        %vip,
                        script = %job.script.display()
                    );
                    outcomes.push(run_one(&job, *vip, timeout).instrument(span).await);
                }
                // The caller may have dropped the receiver; that is fine.
                let _ = done.send(JobOutcome::Ran(outcomes));
            }
            drop(guard);
        });
        ScriptRunner { vhid, shared }
    }

    /// Queues `job` and returns at once; the receiver yields the outcome
    /// when the job has run or was superseded, and may be dropped. A job
    /// still waiting is replaced by this one.
    pub fn submit(&self, job: ScriptJob) -> Result<Done, ScriptError> {
        let (done, rx) = oneshot::channel();
        let (kind, iface) = (job.kind, job.interface.clone());
        let replaced = {
            let mut slot = self.shared.lock();
            if slot.stopped {
                return Err(ScriptError::Stopped { vhid: self.vhid });
            }
            slot.pending.replace((job, done))
        };
        self.shared.wake.notify_one();
        if let Some((old, old_done)) = replaced {
            tracing::info!(
                vhid = self.vhid, %iface,
                "{} script superseded by the {} script before it started",
                old.kind.name(), kind.name()
            );
            let _ = old_done.send(JobOutcome::Superseded);
        }
        Ok(rx)
    }
}

impl Clone for ScriptRunner {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        ScriptRunner {
            vhid: self.vhid,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ScriptRunner {
    fn drop(&mut self) {
        self.shared.lock().handles -= 1;
        self.shared.wake.notify_one();
    }
}

/// The argv after argv\[0\], as UCARP passes it.
pub fn script_args(interface: &str, vip: IpAddr, xparam: Option<&str>) -> Vec<String> {
    let mut args = vec![interface.to_owned(), vip.to_string()];
    args.extend(xparam.map(str::to_owned));
    args
}

async fn run_one(job: &ScriptJob, vip: IpAddr, timeout: Duration) -> ScriptOutcome {
    let vips = job.vips.iter().fold(String::new(), |mut s, v| {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{v}");
        s
    });
    let mut cmd = crate::child::command(&job.script);
    cmd.args(script_args(&job.interface, vip, job.xparam.as_deref()))
        .env("CARP_STATE", job.kind.state())
        .env("CARP_VHID", job.vhid.to_string())
        .env("CARP_INTERFACE", &job.interface)
        .env("CARP_VIPS", vips)
        .env("CARP_VIP", vip.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => GroupChild::new(child),
        Err(e) => {
            tracing::error!(error = %Chain(&e), "cannot start script");
            return ScriptOutcome {
                vip,
                status: ScriptStatus::SpawnFailed {
                    error: e.to_string(),
                },
                stderr_tail: String::new(),
            };
        }
    };
    let mut tail = Vec::new();
    let waited = {
        let read = read_tail(child.stderr.take(), &mut tail);
        tokio::pin!(read);
        let wait = async {
            let mut read_done = false;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    () = &mut read, if !read_done => read_done = true,
                }
            };
            // What the script wrote last, unless a child of its holds
            // stderr open: that one is not waited for.
            if !read_done {
                let _ = tokio::time::timeout(STDERR_GRACE, &mut read).await;
            }
            status
        };
        tokio::time::timeout(timeout, wait).await
    };
    let status = match waited {
        Ok(Ok(status)) if status.success() => ScriptStatus::Success,
        Ok(Ok(status)) => ScriptStatus::Failed {
            code: status.code(),
        },
        Ok(Err(e)) => ScriptStatus::SpawnFailed {
            error: e.to_string(),
        },
        Err(_elapsed) => {
            child.kill_group();
            let _ = child.wait().await;
            tail.clear();
            ScriptStatus::TimedOut
        }
    };
    let stderr_tail = String::from_utf8_lossy(&tail).trim_end().to_owned();
    match &status {
        ScriptStatus::Success => tracing::info!(state = job.kind.state(), "script done"),
        ScriptStatus::Failed { code } => {
            tracing::warn!(state = job.kind.state(), exit_code = ?code, stderr = %stderr_tail, "script failed")
        }
        ScriptStatus::TimedOut => tracing::warn!(
            state = job.kind.state(),
            ?timeout,
            "script timed out and was killed"
        ),
        ScriptStatus::SpawnFailed { error } => tracing::error!(%error, "script wait failed"),
    }
    ScriptOutcome {
        vip,
        status,
        stderr_tail,
    }
}

/// Reads `stderr` to its end into `tail`, keeping the last
/// [`STDERR_TAIL`] bytes.
async fn read_tail(stderr: Option<tokio::process::ChildStderr>, tail: &mut Vec<u8>) {
    let Some(mut stderr) = stderr else { return };
    let mut buf = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
}

#[cfg(test)]
mod tests;
