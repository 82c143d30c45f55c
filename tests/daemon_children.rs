//! `carpd-xdp`'s children (up/down scripts) at exit, in a namespace: a
//! multi-VIP down script still running when the daemon exits is killed
//! with its whole process group, so nothing it started is left behind
//! (issue 19, item 8). What children inherit (environment, scheduling,
//! RLIMIT_RTTIME) is tested in `daemon_hardening.rs`.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Inst, Lan};
use common::require_root;

/// Whether `pid` is a live (not zombie) `sleep`.
fn sleep_alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    comm.trim() == "sleep" && !matches!(state, None | Some('Z') | Some('X'))
}

#[test]
fn a_multi_vip_down_script_cut_short_at_exit_leaves_nothing_behind() {
    if !require_root("a_multi_vip_down_script_cut_short_at_exit_leaves_nothing_behind") {
        return;
    }
    let lan = Lan::new("chexit", 210, 62, 1);
    let (pids, exiting) = (lan.path("pids"), lan.path("exiting"));
    // At exit only (the flag file), each call starts a background sleep in
    // its group and waits for it: the first VIP's call is killed at the
    // script timeout (2 s), the second one is still running at the exit
    // deadline (timeout + 1 s).
    let down = lan.write(
        "down.sh",
        &format!(
            "#!/bin/sh\n[ -e {exiting} ] || exit 0\nsleep 300 &\necho $! >> {pids}\nwait\n",
            exiting = exiting.display(),
            pids = pids.display()
        ),
        0o755,
    );
    let mut inst = Inst::new(10, lan.addr(10), 0).extra(&format!(
        "downscript = \"{}\"\nshutdown_on_exit = true\nscript_timeout_secs = 2\n",
        down.display()
    ));
    inst.vips.push(format!("{}/24", lan.addr(11)));
    let mut d = lan.daemon(0, "d0", &[inst]);
    d.wait_state(10, "MASTER");
    std::fs::write(&exiting, "").unwrap();
    d.proc.signal(libc::SIGTERM);
    assert!(
        d.proc.wait_exit(Duration::from_secs(20)).is_some(),
        "the daemon did not exit"
    );
    let text = std::fs::read_to_string(&pids).unwrap_or_default();
    assert_eq!(
        text.lines().count(),
        2,
        "expected one call per VIP at exit: {text:?}\n{}",
        d.proc.stderr_text()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while text.lines().any(sleep_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<&str> = text.lines().filter(|p| sleep_alive(p)).collect();
    for pid in &left {
        // SAFETY: kill(2) on a sleep this test's script started.
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "left behind by the down script: {left:?}\n{}",
        d.proc.stderr_text()
    );
}
