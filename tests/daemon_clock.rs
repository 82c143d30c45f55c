//! A host restarted after its wall clock went back (issue 11, case 6).
//!
//! Counters carry wall-clock milliseconds. The preferred host runs a few
//! seconds with its clock an hour ahead (libfaketime), stops, and restarts
//! with the true clock, preferred and preempting. Without a floor its
//! counters would be an hour below what the backup recorded, the backup's
//! kernel would drop them as replays and both hosts would hold the VIP. The
//! counter reservation kept in `state_dir` keeps them growing: exactly one
//! master, the restarted host.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Daemon, Inst, Lan};
use common::require_root;

/// libfaketime as Debian installs it.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const VHID: u8 = 61;

/// Starts host `i`'s daemon with `env`, from the config named `name`.
fn start(lan: &Lan, i: usize, name: &str, inst: &Inst, env: &[(&str, &str)]) -> Daemon {
    let sock = lan.path(&format!("{name}.sock"));
    let config = lan.write(
        &format!("{name}.toml"),
        &lan.config(i, &sock, std::slice::from_ref(inst)),
        0o644,
    );
    let args = vec!["--config".to_string(), config.display().to_string()];
    Daemon::start(lan, i, name, &args, env, sock)
}

#[test]
fn restart_after_the_clock_went_back_elects_one_master() {
    if !require_root("restart_after_the_clock_went_back_elects_one_master") {
        return;
    }
    assert!(
        std::path::Path::new(FAKETIME).exists(),
        "{FAKETIME} is missing: install Debian's faketime (cargo xtask setup does)"
    );
    let lan = Lan::new("clk", 77, 61, 2);
    let vip = lan.addr(VHID);
    let preferred = Inst::new(VHID, vip, 0);
    let backup = Inst::new(VHID, vip, 100);

    let mut b = start(&lan, 1, "b", &backup, &[]);
    b.wait_state(VHID, "MASTER");
    // The preferred host, its wall clock an hour ahead (monotonic time is
    // left alone: it is what the kernel stamps adverts with).
    let ahead = [
        ("LD_PRELOAD", FAKETIME),
        ("FAKETIME", "+1h"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut a = start(&lan, 0, "a-ahead", &preferred, &ahead);
    a.wait_state(VHID, "MASTER");
    b.wait_state(VHID, "BACKUP");
    std::thread::sleep(Duration::from_secs(3));
    let accepted = b.instance(VHID).expect("status")["adverts_accepted"]
        .as_u64()
        .unwrap();
    assert!(accepted >= 2, "the backup heard the fast clock's adverts");

    // Stopped, then restarted with the true clock and the same state_dir.
    a.signal(libc::SIGTERM);
    assert!(a.proc.wait_exit(Duration::from_secs(10)).is_some());
    b.wait_state(VHID, "MASTER");
    let mut a = start(&lan, 0, "a-true", &preferred, &[]);
    a.wait_state(VHID, "MASTER");
    b.wait_state(VHID, "BACKUP");

    // Exactly one holder, the restarted host, over several intervals.
    let until = Instant::now() + 3 * preferred.master_down();
    while Instant::now() < until {
        assert_eq!(lan.holders(vip), [0], "exactly one host holds the VIP");
        assert_eq!(b.state(VHID).as_deref(), Some("BACKUP"));
        std::thread::sleep(Duration::from_millis(100));
    }
}
