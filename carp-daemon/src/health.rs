//! Per-instance health checks and the demotion they contribute.
//!
//! Each [`HealthCheck`] is a command run every `interval`; it passes when it
//! exits 0 within `timeout` and fails otherwise (non-zero exit, signal,
//! timeout — the command's process group is then killed — or a command that
//! cannot be started). The demote contribution published by
//! [`HealthMonitor`] is the sum of the weights of the checks currently
//! considered failing, in the spirit of OpenBSD's carp demotion counter: a
//! host whose service is dead advertises worse and gives the VIP away.
//!
//! Hysteresis: a check starts as passing (so a restart does not demote), is
//! considered failing after `fall` consecutive failed runs and passing again
//! after `rise` consecutive successful runs. With the default `fall = rise =
//! 1` every run decides on its own.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

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
        let tasks = checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| {
                let (tx, failing, weights) = (tx.clone(), failing.clone(), weights.clone());
                let iface = iface.to_owned();
                tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(check.interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let (mut passes, mut fails) = (0u32, 0u32);
                    let mut is_failing = false;
                    loop {
                        ticker.tick().await;
                        let ok = run_check(&check).await;
                        if ok {
                            (passes, fails) = (passes.saturating_add(1), 0);
                        } else {
                            (passes, fails) = (0, fails.saturating_add(1));
                        }
                        let now_failing = if is_failing { passes < check.rise } else { fails >= check.fall };
                        if now_failing == is_failing {
                            continue;
                        }
                        is_failing = now_failing;
                        let command = check.argv.join(" ");
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
        Ok(HealthMonitor { rx, tasks })
    }

    /// A receiver of the demote contribution (sum of failing weights).
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.rx.clone()
    }

    /// The current demote contribution.
    pub fn demote(&self) -> u32 {
        *self.rx.borrow()
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs one check once; true when it exited 0 within its timeout.
async fn run_check(check: &HealthCheck) -> bool {
    let Some((program, args)) = check.argv.split_first() else {
        return false;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(command = %program, error = %e, "cannot start health check");
            return false;
        }
    };
    match tokio::time::timeout(check.timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        Ok(Err(_)) => false,
        Err(_elapsed) => {
            if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
                // SAFETY: kill(2) on the group the child leads; no memory involved.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            false
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

    #[tokio::test]
    async fn no_checks_no_demotion() {
        let mon = HealthMonitor::start(1, "eth0", vec![]).unwrap();
        assert_eq!(mon.demote(), 0);
    }
}
