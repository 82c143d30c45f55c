//! Per-instance health checks and the demotion they contribute.
//!
//! Each [`HealthCheck`] is a command run every `interval`; it passes when it
//! exits 0 within `timeout` and fails otherwise (non-zero exit, signal,
//! timeout — the command's process group is then killed — or a command that
//! does not exist or may not be executed). Checks are started as scripts
//! are ([`crate::child`]): the daemon's environment without its secrets,
//! SCHED_OTHER, their own process group, killed with it when the monitor is
//! dropped mid-run. The demote contribution published by
//! [`HealthMonitor`] is the sum of the weights of the checks currently
//! considered failing, in the spirit of OpenBSD's carp demotion counter: a
//! host whose service is dead advertises worse and gives the VIP away.
//!
//! Hysteresis: a check starts as passing (so a restart does not demote), is
//! considered failing after `fall` consecutive failed runs and passing again
//! after `rise` consecutive successful runs. With the default `fall = rise =
//! 1` every run decides on its own.
//!
//! A run that cannot even be started for want of resources (`EMFILE`,
//! `ENFILE`, `ENOMEM`, `EAGAIN`: the daemon is out of file descriptors,
//! memory or processes) says nothing about the service: it is *unknown*.
//! An unknown run leaves the check's state and its rise/fall counts as they
//! were (the last known result stands), is logged as a warning and counted
//! ([`HealthMonitor::unknown_runs`], `health_unknown` in the status,
//! `carpd_health_unknown_total` in the metrics). Otherwise a local user who
//! exhausts the daemon's descriptors would make every check "fail" and the
//! node give its VIPs away.

use std::io;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chain::Chain;
use crate::child::GroupChild;

/// Errors of health-check configuration.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A check has no command.
    #[error("health check {index} has an empty command")]
    EmptyCommand {
        /// Position of the check in the list.
        index: usize,
    },
    /// A check's interval, rise or fall is zero.
    #[error("health check {index} ({command}): {field} must be positive")]
    Zero {
        /// Position of the check in the list.
        index: usize,
        /// The command, for the message.
        command: String,
        /// The offending field.
        field: &'static str,
    },
}

/// One health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Program and arguments, executed directly (no shell).
    pub argv: Vec<String>,
    /// Time between the starts of two runs.
    pub interval: Duration,
    /// Longest a run may take before it counts as failed and is killed.
    pub timeout: Duration,
    /// Demotion added while the check is failing.
    pub weight: u32,
    /// Consecutive failed runs before the check counts as failing.
    pub fall: u32,
    /// Consecutive passed runs before a failing check counts as passing.
    pub rise: u32,
}

impl HealthCheck {
    /// A check of `argv` every `interval` with `timeout` and `weight`, and
    /// no hysteresis (`fall = rise = 1`).
    pub fn new(
        argv: Vec<String>,
        interval: Duration,
        timeout: Duration,
        weight: u32,
    ) -> HealthCheck {
        HealthCheck {
            argv,
            interval,
            timeout,
            weight,
            fall: 1,
            rise: 1,
        }
    }
}

/// Runs health checks and publishes the demote contribution.
#[derive(Debug)]
pub struct HealthMonitor {
    /// Receiver kept to hand out subscriptions.
    rx: watch::Receiver<u32>,
    /// One task per check, aborted on drop.
    tasks: Vec<JoinHandle<()>>,
    /// Runs of any check that could not be started (unknown results).
    unknown: Arc<AtomicU64>,
}

/// How one run of a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// Exited 0 within the timeout.
    Passed,
    /// Non-zero exit, signal, timeout, or a command that cannot be executed.
    Failed,
    /// Could not be started for want of resources: says nothing about the
    /// service.
    Unknown,
}

/// Starts a check's command; the daemon's is [`spawn_command`], tests
/// replace it to simulate resource exhaustion.
type Spawner =
    Arc<dyn Fn(&mut tokio::process::Command) -> io::Result<tokio::process::Child> + Send + Sync>;

/// The rise/fall state of one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hysteresis {
    /// Consecutive passed runs.
    passes: u32,
    /// Consecutive failed runs.
    fails: u32,
    /// Whether the check currently counts as failing (adds its weight).
    failing: bool,
}

impl Hysteresis {
    /// Takes one run's result into account; returns the new failing state
    /// when it changed. An unknown run changes nothing.
    fn record(&mut self, result: RunResult, rise: u32, fall: u32) -> Option<bool> {
        match result {
            RunResult::Passed => (self.passes, self.fails) = (self.passes.saturating_add(1), 0),
            RunResult::Failed => (self.passes, self.fails) = (0, self.fails.saturating_add(1)),
            RunResult::Unknown => return None,
        }
        let now_failing = if self.failing {
            self.passes < rise
        } else {
            self.fails >= fall
        };
        if now_failing == self.failing {
            return None;
        }
        self.failing = now_failing;
        Some(now_failing)
    }
}

/// Whether a failure to start a command is a shortage of resources in the
/// daemon (unknown result) rather than a broken command (failed run).
fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::ENOBUFS)
    ) || e.kind() == io::ErrorKind::OutOfMemory
}

/// Starts `cmd` (the daemon's spawner).
fn spawn_command(cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    cmd.spawn()
}

impl HealthMonitor {
    /// Validates `checks` and starts them. `vhid` and `iface` label the
    /// logs. With no checks the contribution stays 0. Must be called inside
    /// a tokio runtime.
    pub fn start(
        vhid: u8,
        iface: &str,
        checks: Vec<HealthCheck>,
    ) -> Result<HealthMonitor, HealthError> {
        HealthMonitor::start_with(vhid, iface, checks, Arc::new(spawn_command))
    }

    /// [`HealthMonitor::start`] with the commands started by `spawn`.
    fn start_with(
        vhid: u8,
        iface: &str,
        checks: Vec<HealthCheck>,
        spawn: Spawner,
    ) -> Result<HealthMonitor, HealthError> {
        for (index, c) in checks.iter().enumerate() {
            let command = c.argv.join(" ");
            if c.argv.is_empty() {
                return Err(HealthError::EmptyCommand { index });
            }
            for (field, v) in [
                ("interval", c.interval.as_nanos()),
                ("rise", c.rise.into()),
                ("fall", c.fall.into()),
            ] {
                if v == 0 {
                    return Err(HealthError::Zero {
                        index,
                        command,
                        field,
                    });
                }
            }
        }
        let (tx, rx) = watch::channel(0u32);
        let tx = Arc::new(tx);
        let failing = Arc::new(Mutex::new(vec![false; checks.len()]));
        let weights: Arc<Vec<u32>> = Arc::new(checks.iter().map(|c| c.weight).collect());
        let unknown = Arc::new(AtomicU64::new(0));
        let tasks = checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| {
                let (tx, failing, weights) = (tx.clone(), failing.clone(), weights.clone());
                let (unknown, spawn) = (unknown.clone(), spawn.clone());
                let iface = iface.to_owned();
                tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(check.interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut state = Hysteresis::default();
                    let command = check.argv.join(" ");
                    loop {
                        ticker.tick().await;
                        let result = run_check(&check, &*spawn, vhid, &iface).await;
                        if result == RunResult::Unknown {
                            unknown.fetch_add(1, Ordering::Relaxed);
                        }
                        let Some(now_failing) = state.record(result, check.rise, check.fall) else {
                            continue;
                        };
                        if now_failing {
                            tracing::warn!(vhid, %iface, %command, weight = check.weight, "health check failing");
                        } else {
                            tracing::info!(vhid, %iface, %command, "health check passing again");
                        }
                        // A poisoned lock only means another check task panicked
                        // mid-update of a bool; the data is still usable.
                        let mut flags = failing.lock().unwrap_or_else(|p| p.into_inner());
                        flags[index] = now_failing;
                        let demote = flags
                            .iter()
                            .zip(weights.iter())
                            .filter(|(f, _)| **f)
                            .fold(0u32, |sum, (_, w)| sum.saturating_add(*w));
                        drop(flags);
                        tx.send_replace(demote);
                    }
                })
            })
            .collect();
        Ok(HealthMonitor { rx, tasks, unknown })
    }

    /// A receiver of the demote contribution (sum of failing weights).
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.rx.clone()
    }

    /// The current demote contribution.
    pub fn demote(&self) -> u32 {
        *self.rx.borrow()
    }

    /// Runs (of all checks) that could not be started for want of
    /// resources since the monitor started.
    pub fn unknown_runs(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs one check once, started by `spawn`; `vhid` and `iface` label the
/// log.
async fn run_check(
    check: &HealthCheck,
    spawn: &(dyn Fn(&mut tokio::process::Command) -> io::Result<tokio::process::Child>
          + Send
          + Sync),
    vhid: u8,
    iface: &str,
) -> RunResult {
    let Some((program, args)) = check.argv.split_first() else {
        return RunResult::Failed;
    };
    let mut cmd = crate::child::command(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = match spawn(&mut cmd) {
        Ok(c) => GroupChild::new(c),
        Err(e) if is_resource_shortage(&e) => {
            tracing::warn!(vhid, %iface, command = %program, error = %Chain(&e),
                "cannot start health check: result unknown, the last one stands");
            return RunResult::Unknown;
        }
        Err(e) => {
            tracing::debug!(vhid, %iface, command = %program, error = %Chain(&e), "cannot start health check");
            return RunResult::Failed;
        }
    };
    match tokio::time::timeout(check.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => RunResult::Passed,
        Ok(_) => RunResult::Failed,
        Err(_elapsed) => {
            child.kill_group();
            let _ = child.wait().await;
            RunResult::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(argv: &[&str], weight: u32) -> HealthCheck {
        HealthCheck::new(
            argv.iter().map(|s| (*s).to_owned()).collect(),
            Duration::from_millis(50),
            Duration::from_millis(300),
            weight,
        )
    }

    /// Waits until the published value satisfies `pred`; the generous bound
    /// only keeps a broken build from hanging.
    async fn wait_for(rx: &mut watch::Receiver<u32>, pred: impl FnMut(&u32) -> bool) -> u32 {
        let v = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(pred)).await;
        *v.expect("value never reached").expect("monitor stopped")
    }

    #[tokio::test]
    async fn failing_and_timed_out_checks_add_their_weights() {
        let checks = vec![
            check(&["true"], 1),
            check(&["false"], 10),
            check(&["sleep", "5"], 100),
        ];
        let mon = HealthMonitor::start(1, "eth0", checks).unwrap();
        let mut rx = mon.subscribe();
        assert_eq!(wait_for(&mut rx, |v| *v == 110).await, 110);
        // Steady state: the passing check never adds its weight.
        assert_eq!(mon.demote() & 1, 0);
    }

    #[tokio::test]
    async fn recovery_removes_the_weight() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("down");
        std::fs::write(&flag, "").unwrap();
        // Fails while the flag file exists.
        let c = check(&["sh", "-c", &format!("! test -e {}", flag.display())], 5);
        let mon = HealthMonitor::start(1, "eth0", vec![c]).unwrap();
        let mut rx = mon.subscribe();
        assert_eq!(wait_for(&mut rx, |v| *v == 5).await, 5);
        std::fs::remove_file(&flag).unwrap();
        assert_eq!(wait_for(&mut rx, |v| *v == 0).await, 0);
    }

    #[tokio::test]
    async fn fall_delays_demotion() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("runs");
        // Appends a line per run and always fails.
        let mut c = check(
            &[
                "sh",
                "-c",
                &format!("echo x >> {}; exit 1", count.display()),
            ],
            3,
        );
        c.fall = 3;
        // Runs far apart, so a demotion after the first failure would be
        // observed long before a third run.
        c.interval = Duration::from_millis(200);
        let mon = HealthMonitor::start(1, "eth0", vec![c]).unwrap();
        let mut rx = mon.subscribe();
        wait_for(&mut rx, |v| *v == 3).await;
        let runs = std::fs::read_to_string(&count).unwrap().lines().count();
        assert!(runs >= 3, "demoted after {runs} failed runs, fall is 3");
    }

    #[tokio::test]
    async fn invalid_checks_are_rejected() {
        assert!(matches!(
            HealthMonitor::start(1, "eth0", vec![check(&[], 1)]),
            Err(HealthError::EmptyCommand { index: 0 })
        ));
        let mut c = check(&["true"], 1);
        c.interval = Duration::ZERO;
        let err = HealthMonitor::start(1, "eth0", vec![check(&["true"], 1), c]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "health check 1 (true): interval must be positive"
        );
    }

    #[test]
    fn unknown_runs_keep_the_last_known_result() {
        use RunResult::{Failed, Passed, Unknown};
        let mut h = Hysteresis::default();
        // Passing, then resources run out: nothing changes, however long.
        for _ in 0..10 {
            assert_eq!(h.record(Unknown, 2, 2), None);
        }
        assert!(!h.failing);
        // One failure, unknowns, a second failure: fall 2 is reached on the
        // second *known* failure; the unknowns neither reset nor add.
        assert_eq!(h.record(Failed, 2, 2), None);
        assert_eq!(h.record(Unknown, 2, 2), None);
        assert_eq!(h.record(Failed, 2, 2), Some(true));
        // Failing: unknowns keep it failing; rise 2 needs two passes.
        assert_eq!(h.record(Unknown, 2, 2), None);
        assert_eq!(h.record(Passed, 2, 2), None);
        assert_eq!(h.record(Unknown, 2, 2), None);
        assert_eq!(h.record(Passed, 2, 2), Some(false));
    }

    #[test]
    fn only_resource_shortages_are_unknown() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EAGAIN] {
            assert!(is_resource_shortage(&io::Error::from_raw_os_error(errno)));
        }
        // A missing or non-executable command is a failed check.
        for errno in [libc::ENOENT, libc::EACCES, libc::ENOEXEC] {
            assert!(!is_resource_shortage(&io::Error::from_raw_os_error(errno)));
        }
    }

    #[tokio::test]
    async fn a_check_that_cannot_start_neither_demotes_nor_recovers() {
        use std::sync::atomic::AtomicBool;
        // While `starved` is set every start fails with EMFILE, as when a
        // local user holds all of the daemon's descriptors.
        let starved = Arc::new(AtomicBool::new(false));
        let flag = starved.clone();
        let spawn: Spawner = Arc::new(move |cmd| {
            if flag.load(Ordering::SeqCst) {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            } else {
                cmd.spawn()
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let down = dir.path().join("down");
        let c = check(&["sh", "-c", &format!("! test -e {}", down.display())], 7);
        let mon = HealthMonitor::start_with(1, "eth0", vec![c], spawn).unwrap();
        let mut rx = mon.subscribe();

        // Passing, then starved: many unknown runs, no demotion.
        starved.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while mon.unknown_runs() < 5 {
            assert!(tokio::time::Instant::now() < deadline, "no unknown runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(mon.demote(), 0, "unknown runs demoted a passing check");
        assert!(!rx.has_changed().unwrap(), "demote was published");

        // Failing for real: demoted; starved again: the demotion stays.
        starved.store(false, Ordering::SeqCst);
        std::fs::write(&down, "").unwrap();
        assert_eq!(wait_for(&mut rx, |v| *v == 7).await, 7);
        starved.store(true, Ordering::SeqCst);
        std::fs::remove_file(&down).unwrap();
        let seen = mon.unknown_runs();
        while mon.unknown_runs() < seen + 5 {
            assert!(tokio::time::Instant::now() < deadline, "no unknown runs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(mon.demote(), 7, "unknown runs lifted the demotion");
        // Resources back: the passing command lifts it.
        starved.store(false, Ordering::SeqCst);
        assert_eq!(wait_for(&mut rx, |v| *v == 0).await, 0);
    }

    #[tokio::test]
    async fn no_checks_no_demotion() {
        let mon = HealthMonitor::start(1, "eth0", vec![]).unwrap();
        assert_eq!(mon.demote(), 0);
    }
}
