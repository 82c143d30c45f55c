//! Tests of the script runner: real scripts in a temporary directory.

use super::*;
use crate::child::sleep_alive;
use std::os::unix::fs::PermissionsExt;

fn script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The outcomes of a job that ran.
async fn ran(done: Done) -> Vec<ScriptOutcome> {
    match done.await.expect("the runner dropped the job") {
        JobOutcome::Ran(outcomes) => outcomes,
        JobOutcome::Superseded => panic!("the job was superseded"),
    }
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
    let out = ran(runner
        .submit(job(ScriptKind::Up, up.clone(), Some("extra arg")))
        .unwrap())
    .await;
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
    let out = ran(runner.submit(job(ScriptKind::Down, up, None)).unwrap()).await;
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
    let out = ran(runner.submit(job(ScriptKind::Up, bad, None)).unwrap()).await;
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
    let out = ran(runner.submit(j).unwrap()).await;
    assert_eq!(out[0].status, ScriptStatus::TimedOut);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The backgrounded sleep was in the script's group: SIGKILL was sent
    // to the group, so it must die (be gone, or a zombie about to be
    // reaped).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sleep_alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !sleep_alive(pid),
        "the script's backgrounded sleep (pid {pid}) survived the timeout"
    );
}

#[test]
fn a_multi_vip_script_cut_short_at_exit_takes_its_group_along() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // Each call leaves a background sleep in its group and waits for it.
    let s = script(
        dir.path(),
        "s",
        &format!("sleep 300 &\necho $! >> {}\nwait", pids.display()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // As the daemon at exit: the down script is submitted, its first VIP
    // times out (its group is killed), the second VIP's call is running
    // when the runtime is dropped.
    rt.block_on(async {
        let runner = ScriptRunner::new(1, Duration::from_millis(300));
        let _done = runner.submit(job(ScriptKind::Down, s, None)).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&pids).map_or(0, |t| t.lines().count()) < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no second call");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    drop(rt);
    let text = std::fs::read_to_string(&pids).unwrap();
    let sleeps: Vec<i32> = text.lines().map(|p| p.parse().unwrap()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sleeps.iter().any(|p| sleep_alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = sleeps.into_iter().filter(|p| sleep_alive(*p)).collect();
    for pid in &left {
        // SAFETY: kill(2) on the test's own leftover sleep.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "sleeps left behind: {left:?} of {text}");
}

#[tokio::test]
async fn missing_script_is_a_spawn_failure() {
    let runner = ScriptRunner::new(1, Duration::from_secs(5));
    let out = ran(runner
        .submit(job(ScriptKind::Up, "/nonexistent/up".into(), None))
        .unwrap())
    .await;
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
    assert_eq!(ran(rx).await[0].status, ScriptStatus::Success);
}

#[tokio::test]
async fn flapping_runs_only_the_latest_waiting_job() {
    let dir = tempfile::tempdir().unwrap();
    let (log, gate) = (dir.path().join("log"), dir.path().join("gate"));
    // Logs its state, then blocks until the gate file exists.
    let s = script(
        dir.path(),
        "s",
        &format!(
            "echo \"$CARP_STATE\" >> {}\nwhile [ ! -e {} ]; do sleep 0.02; done",
            log.display(),
            gate.display()
        ),
    );
    let one_vip = |kind| {
        let mut j = job(kind, s.clone(), None);
        j.vips.truncate(1);
        j
    };
    let runner = ScriptRunner::new(1, Duration::from_secs(60));
    let first = runner.submit(one_vip(ScriptKind::Up)).unwrap();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while !std::fs::read_to_string(&log).is_ok_and(|t| t == "MASTER\n") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    started.await.expect("the first script never started");
    // Flapping while the up script runs: down, up, down, up, down.
    let kinds = [
        ScriptKind::Down,
        ScriptKind::Up,
        ScriptKind::Down,
        ScriptKind::Up,
        ScriptKind::Down,
    ];
    let mut queued: Vec<Done> = kinds
        .iter()
        .map(|k| runner.submit(one_vip(*k)).unwrap())
        .collect();
    let last = queued.pop().unwrap();
    // Superseded ones are told so at once, before the gate opens.
    for done in queued {
        assert!(matches!(done.await.unwrap(), JobOutcome::Superseded));
    }
    std::fs::write(&gate, "").unwrap();
    assert_eq!(ran(first).await[0].status, ScriptStatus::Success);
    assert_eq!(ran(last).await[0].status, ScriptStatus::Success);
    // The running up script finished; of the five later jobs only the
    // last (down) ran.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "MASTER\nBACKUP\n");
    // With nothing waiting, a job runs as before.
    let again = ran(runner.submit(one_vip(ScriptKind::Up)).unwrap()).await;
    assert_eq!(again[0].status, ScriptStatus::Success);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "MASTER\nBACKUP\nMASTER\n"
    );
}

#[tokio::test]
async fn a_background_child_holding_stderr_does_not_turn_the_exit_into_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    // Starts a long-lived child that inherits stderr, as a script
    // starting a service may, then exits 3 at once.
    let s = script(
        dir.path(),
        "s",
        &format!(
            "sleep 300 &\necho $! > {}\necho \"cannot reach $2\" >&2\nexit 3",
            pidfile.display()
        ),
    );
    let runner = ScriptRunner::new(1, Duration::from_secs(20));
    let mut j = job(ScriptKind::Up, s, None);
    j.vips.truncate(1);
    let out = ran(runner.submit(j).unwrap()).await;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // SAFETY: kill(2) on the test's own background sleep.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(out[0].status, ScriptStatus::Failed { code: Some(3) });
    assert_eq!(out[0].stderr_tail, "cannot reach 192.0.2.10");
    // The script's child was left running: it is not ours to kill.
    assert_eq!(comm.trim(), "sleep", "the background child was killed");
}
