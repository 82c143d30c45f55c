//! The conntrackd driver against a fake conntrackd: a shell script that
//! appends its arguments to a file and exits 0, fails or hangs per flag.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// A fake conntrackd in its own directory.
struct Fake {
    /// Holds the script, its call log and its per-flag modes.
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "#!/bin/sh\n\
             d={}\n\
             echo \"$*\" >> \"$d/calls\"\n\
             case \"$(cat \"$d/mode$3\" 2>/dev/null)\" in\n\
             fail) exit 1 ;;\n\
             hang) echo $$ > \"$d/pid$3\"; sleep 60 ;;\n\
             esac\n\
             exit 0\n",
            dir.path().display()
        );
        let path = dir.path().join("conntrackd");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("conntrackd.conf"),
            format!(
                "General {{\n\tLockFile {}/lock # comment\n}}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        Fake { dir }
    }

    /// Makes the fake answer `flag` with `mode` (`fail` or `hang`).
    fn set(&self, flag: &str, mode: &str) {
        std::fs::write(self.dir.path().join(format!("mode{flag}")), mode).unwrap();
    }

    fn driver(&self) -> Conntrackd {
        Conntrackd::with_program(self.dir.path().join("conntrackd"), self.config())
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("conntrackd.conf")
    }

    /// The flags of the calls so far, checking each named the config.
    fn flags(&self) -> Vec<String> {
        let calls = std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default();
        let prefix = format!("-C {} ", self.config().display());
        calls
            .lines()
            .map(|line| {
                let flag = line.strip_prefix(&prefix);
                flag.unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"))
                    .to_owned()
            })
            .collect()
    }

    /// Waits (at most 10 s) until the calls are `want`.
    async fn wait_for(&self, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.flags() != want {
            assert!(
                Instant::now() < deadline,
                "calls {:?}, expected {want:?}",
                self.flags()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The pid the fake wrote while hanging on `flag`.
    fn hung_pid(&self, flag: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join(format!("pid{flag}"))).ok()?;
        text.trim().parse().ok()
    }
}

fn count(step: Step, outcome: Outcome) -> u64 {
    STEP_COUNTS[step as usize][outcome as usize].load(Ordering::Relaxed)
}

#[tokio::test]
async fn master_commits_flushes_resyncs_and_bulk_sends_in_order() {
    let fake = Fake::new();
    let before = count(Step::BulkSend, Outcome::Ok);
    fake.driver().on_master().await.unwrap();
    assert_eq!(fake.flags(), ["-c", "-f", "-R", "-B"]);
    assert!(count(Step::BulkSend, Outcome::Ok) > before);
    let totals = step_totals().expect("a driver was made");
    assert_eq!(totals.len(), Step::ALL.len() * Outcome::ALL.len());
    assert!(totals.contains(&(
        "commit",
        "timed_out",
        count(Step::Commit, Outcome::TimedOut)
    )));
}

#[tokio::test]
async fn a_failed_step_is_counted_and_the_next_ones_still_run() {
    let fake = Fake::new();
    fake.set("-c", "fail");
    let before = count(Step::Commit, Outcome::Failed);
    fake.driver().on_master().await.unwrap();
    assert_eq!(fake.flags(), ["-c", "-f", "-R", "-B"]);
    assert!(count(Step::Commit, Outcome::Failed) > before);
}

#[tokio::test]
async fn a_hanging_step_is_killed_after_its_timeout() {
    let fake = Fake::new();
    fake.set("-R", "hang");
    let before = count(Step::Resync, Outcome::TimedOut);
    let driver = fake.driver().with_step_timeout(Duration::from_millis(300));
    let started = Instant::now();
    driver.on_master().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.flags(), ["-c", "-f", "-R", "-B"]);
    assert!(count(Step::Resync, Outcome::TimedOut) > before);
    let pid = fake.hung_pid("-R").expect("the fake hung");
    assert_gone(pid).await;
}

/// Waits (at most 5 s) until process `pid` and its group are gone.
async fn assert_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    // SAFETY: kill(2) with signal 0 only checks that the group exists.
    while unsafe { libc::kill(-pid, 0) } == 0 {
        assert!(Instant::now() < deadline, "process group {pid} survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn backup_checks_shortens_the_timers_and_requests_a_resync() {
    let fake = Fake::new();
    fake.driver().on_backup();
    fake.wait_for(&["-s", "-t", "-n"]).await;
}

#[tokio::test]
async fn backup_restarts_a_conntrackd_that_does_not_answer_and_removes_its_stale_lock() {
    let fake = Fake::new();
    fake.set("-s", "fail");
    let lock = fake.dir.path().join("lock");
    std::fs::write(&lock, "").unwrap();
    fake.driver().on_backup();
    fake.wait_for(&["-s", "-d", "-t", "-n"]).await;
    assert!(!lock.exists(), "the stale lock file was left");
}

#[tokio::test]
async fn leaving_shortens_the_timers_and_idle_waits_for_it() {
    let fake = Fake::new();
    let driver = fake.driver();
    driver.idle().await;
    driver.on_leave();
    driver.idle().await;
    assert_eq!(fake.flags(), ["-t"]);
}

#[tokio::test]
async fn a_new_transition_cancels_the_sequence_still_running() {
    let fake = Fake::new();
    fake.set("-c", "hang");
    let driver = fake.driver().with_step_timeout(Duration::from_secs(30));
    let before = count(Step::Commit, Outcome::Cancelled);
    let master = driver.on_master();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.hung_pid("-c").is_none() {
        assert!(Instant::now() < deadline, "the fake never hung");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    driver.on_leave();
    fake.wait_for(&["-c", "-t"]).await;
    assert!(master.await.unwrap_err().is_cancelled());
    assert!(count(Step::Commit, Outcome::Cancelled) > before);
    assert_gone(fake.hung_pid("-c").unwrap()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.flags(), ["-c", "-t"], "the cancelled sequence went on");
}

#[tokio::test]
async fn a_missing_program_is_counted_and_does_not_stop_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let driver = Conntrackd::with_program(dir.path().join("none"), dir.path().join("c.conf"));
    let before = count(Step::BulkSend, Outcome::SpawnFailed);
    driver.on_master().await.unwrap();
    assert!(count(Step::BulkSend, Outcome::SpawnFailed) > before);
}

#[test]
fn the_lock_file_comes_from_the_configuration() {
    let text = "General {\n\t# LockFile /not/this\n\tLockFile /run/ct/lock\n}\n";
    assert_eq!(lock_file_in(text), Some(PathBuf::from("/run/ct/lock")));
    assert_eq!(lock_file_in("General {\n}\n"), None);
    assert_eq!(
        lock_file(Path::new("/nonexistent/conntrackd.conf")),
        PathBuf::from(DEFAULT_LOCK_FILE)
    );
}

#[tokio::test(start_paused = true)]
async fn announcements_wait_for_conntrackd_at_most_the_bound() {
    // Ready after 200 ms: the wait ends then.
    let (ready, gate) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ready.send_replace(true);
        // Kept open: a dropped sender must not end the wait early.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let start = tokio::time::Instant::now();
    assert!(conntrackd_ready(gate).await);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    // Never ready: the wait ends at the bound.
    let (_ready, gate) = watch::channel(false);
    let start = tokio::time::Instant::now();
    assert!(!conntrackd_ready(gate).await);
    assert_eq!(start.elapsed(), CONNTRACKD_WAIT);
}
