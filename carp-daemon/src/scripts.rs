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
//! A [`ScriptRunner`] runs its jobs one after the other on a tokio task, so
//! a down script never overtakes the up script it follows, while
//! [`ScriptRunner::submit`] returns at once. Each script gets `timeout`;
//! past it the script's whole process group is killed (SIGKILL). Failures
//! are logged with the exit code and the tail of stderr, and every outcome
//! is returned through a oneshot channel the caller may ignore.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Bytes of stderr kept for the log and the outcome.
const STDERR_TAIL: usize = 2048;

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

/// A job and where its outcomes go.
type Queued = (ScriptJob, oneshot::Sender<Vec<ScriptOutcome>>);

/// Runs one instance's scripts in order on a background task.
#[derive(Clone, Debug)]
pub struct ScriptRunner {
    /// The instance, for logs and errors.
    vhid: u8,
    /// Queue of the worker task.
    tx: mpsc::UnboundedSender<Queued>,
}

impl ScriptRunner {
    /// Starts the worker for instance `vhid`, each script call limited to
    /// `timeout`. Must be called inside a tokio runtime; the worker ends
    /// when every clone of the runner is dropped and the queue is drained.
    pub fn new(vhid: u8, timeout: Duration) -> ScriptRunner {
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            while let Some((job, done)) = rx.recv().await {
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
                let _ = done.send(outcomes);
            }
        });
        ScriptRunner { vhid, tx }
    }

    /// Queues `job` and returns at once; the receiver yields the outcomes
    /// (one per VIP) when the job is done and may be dropped.
    pub fn submit(
        &self,
        job: ScriptJob,
    ) -> Result<oneshot::Receiver<Vec<ScriptOutcome>>, ScriptError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send((job, done))
            .map_err(|_| ScriptError::Stopped { vhid: self.vhid })?;
        Ok(rx)
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
    let mut cmd = tokio::process::Command::new(&job.script);
    cmd.args(script_args(&job.interface, vip, job.xparam.as_deref()))
        .env("CARP_STATE", job.kind.state())
        .env("CARP_VHID", job.vhid.to_string())
        .env("CARP_INTERFACE", &job.interface)
        .env("CARP_VIPS", vips)
        .env("CARP_VIP", vip.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Own process group, so a timeout also kills what the script started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(error = %e, "cannot start script");
            return ScriptOutcome {
                vip,
                status: ScriptStatus::SpawnFailed {
                    error: e.to_string(),
                },
                stderr_tail: String::new(),
            };
        }
    };
    let mut stderr = child.stderr.take();
    let read_stderr = async move {
        let mut tail = Vec::new();
        let mut buf = [0u8; 1024];
        if let Some(err) = stderr.as_mut() {
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
        tail
    };
    tokio::pin!(read_stderr);
    let waited = tokio::time::timeout(timeout, async {
        let (status, tail) = tokio::join!(child.wait(), &mut read_stderr);
        (status, tail)
    })
    .await;
    let (status, tail) = match waited {
        Ok((Ok(status), tail)) => {
            let st = if status.success() {
                ScriptStatus::Success
            } else {
                ScriptStatus::Failed {
                    code: status.code(),
                }
            };
            (st, tail)
        }
        Ok((Err(e), tail)) => (
            ScriptStatus::SpawnFailed {
                error: e.to_string(),
            },
            tail,
        ),
        Err(_elapsed) => {
            kill_group(&child);
            let _ = child.wait().await;
            (ScriptStatus::TimedOut, Vec::new())
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

/// Kills the child's process group (it leads its own group).
fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) on the group the child leads; no memory involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn job(kind: ScriptKind, script: PathBuf, xparam: Option<&str>) -> ScriptJob {
        ScriptJob {
            kind,
            script,
            vhid: 7,
            interface: "eth0:carp0".into(),
            vips: vec![
                "192.0.2.10".parse().unwrap(),
                "2001:db8::10".parse().unwrap(),
            ],
            xparam: xparam.map(str::to_owned),
        }
    }

    #[test]
    fn args_like_ucarp() {
        let vip = "192.0.2.1".parse().unwrap();
        assert_eq!(script_args("eth0", vip, None), ["eth0", "192.0.2.1"]);
        assert_eq!(
            script_args("eth0:carp0", vip, Some("x y")),
            ["eth0:carp0", "192.0.2.1", "x y"]
        );
    }

    #[tokio::test]
    async fn argv_and_environment_once_per_vip() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let body = format!(
            "printf '%s|' \"$0\" \"$#\" \"$@\" \"$CARP_STATE\" \"$CARP_VHID\" \"$CARP_INTERFACE\" \"$CARP_VIPS\" \"$CARP_VIP\" >> {}\necho >> {}",
            log.display(),
            log.display()
        );
        let up = script(dir.path(), "up", &body);
        let runner = ScriptRunner::new(7, Duration::from_secs(30));
        let out = runner
            .submit(job(ScriptKind::Up, up.clone(), Some("extra arg")))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(
            out.iter().all(|o| o.status == ScriptStatus::Success),
            "{out:?}"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        let s = up.display().to_string();
        let vips = "192.0.2.10 2001:db8::10";
        assert_eq!(
            text,
            format!(
                "{s}|3|eth0:carp0|192.0.2.10|extra arg|MASTER|7|eth0:carp0|{vips}|192.0.2.10|\n\
                 {s}|3|eth0:carp0|2001:db8::10|extra arg|MASTER|7|eth0:carp0|{vips}|2001:db8::10|\n"
            )
        );
        std::fs::remove_file(&log).unwrap();
        let out = runner
            .submit(job(ScriptKind::Down, up, None))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with(&format!("{s}|2|eth0:carp0|192.0.2.10|BACKUP|7|")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn nonzero_exit_reports_code_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let bad = script(dir.path(), "bad", "echo \"no route for $2\" >&2\nexit 3");
        let runner = ScriptRunner::new(1, Duration::from_secs(30));
        let out = runner
            .submit(job(ScriptKind::Up, bad, None))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out[0].status, ScriptStatus::Failed { code: Some(3) });
        assert_eq!(out[0].stderr_tail, "no route for 192.0.2.10");
        assert_eq!(out[1].stderr_tail, "no route for 2001:db8::10");
    }

    #[tokio::test]
    async fn timeout_kills_the_script_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let slow = script(
            dir.path(),
            "slow",
            &format!("sleep 300 &\necho $! > {}\nwait", pidfile.display()),
        );
        let runner = ScriptRunner::new(1, Duration::from_millis(500));
        let mut j = job(ScriptKind::Up, slow, None);
        j.vips.truncate(1);
        let out = runner.submit(j).unwrap().await.unwrap();
        assert_eq!(out[0].status, ScriptStatus::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The backgrounded sleep was in the script's group: SIGKILL was sent
        // to the group, so it must die (be gone, or a zombie about to be
        // reaped). A killed process can be runnable for a moment before it
        // exits, hence the wait; its pid must still be the sleep's.
        let alive = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            cmd.trim() == "sleep" && !matches!(state, None | Some('Z') | Some('X'))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(),
            "the script's backgrounded sleep (pid {pid}) survived the timeout"
        );
    }

    #[tokio::test]
    async fn missing_script_is_a_spawn_failure() {
        let runner = ScriptRunner::new(1, Duration::from_secs(5));
        let out = runner
            .submit(job(ScriptKind::Up, "/nonexistent/up".into(), None))
            .unwrap()
            .await
            .unwrap();
        assert!(
            matches!(out[0].status, ScriptStatus::SpawnFailed { .. }),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn submit_does_not_wait_for_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        // The script blocks until the test creates the gate file, so submit
        // can only return if it does not wait for the script.
        let blocked = script(
            dir.path(),
            "blocked",
            &format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display()),
        );
        let runner = ScriptRunner::new(1, Duration::from_secs(60));
        let mut j = job(ScriptKind::Up, blocked, None);
        j.vips.truncate(1);
        let mut rx = runner.submit(j).unwrap();
        assert!(rx.try_recv().is_err());
        std::fs::write(&gate, "").unwrap();
        assert_eq!(rx.await.unwrap()[0].status, ScriptStatus::Success);
    }
}
