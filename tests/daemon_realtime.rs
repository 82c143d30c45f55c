//! Real-time without suicide (issue 19, item 5).
//!
//! With `--realtime-priority`, the daemon's loop runs SCHED_FIFO under an
//! `RLIMIT_RTTIME` it sets itself (2 s soft: SIGXCPU, 3 s hard: SIGKILL).
//! A receive path that never runs dry never lets the loop sleep: here the
//! master's advert is re-sent from ever new source addresses (the receive
//! path's rate limit is per source, so every one reaches the daemon), as
//! fast as the attacker's sender goes, for longer than the hard limit. The
//! real-time backup must survive it and keep its role, then still take
//! over when the master goes.

#[path = "common/attack.rs"]
mod attack;
mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use attack::{flood, Capture};
use common::cluster::{Daemon, Inst, Lan, EVENTUALLY};
use common::require_root;

const VHID: u8 = 72;
/// How long the flood lasts: well past the hard limit of 3 s.
const FLOOD_SECS: u32 = 12;

/// Starts host `i`'s daemon with `extra` arguments.
fn start(lan: &Lan, i: usize, name: &str, inst: &Inst, extra: &[&str]) -> Daemon {
    let sock = lan.path(&format!("{name}.sock"));
    let config = lan.write(
        &format!("{name}.toml"),
        &lan.config(i, &sock, std::slice::from_ref(inst)),
        0o644,
    );
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    args.extend(extra.iter().map(ToString::to_string));
    Daemon::start(lan, i, name, &args, &[], sock)
}

#[test]
fn a_real_time_daemon_survives_a_receive_path_that_never_runs_dry() {
    if !require_root("a_real_time_daemon_survives_a_receive_path_that_never_runs_dry") {
        return;
    }
    let lan = Lan::new("rtfl", 219, 72, 2);
    let vip = lan.addr(VHID);
    let mut master = start(&lan, 0, "a", &Inst::new(VHID, vip, 50), &[]);
    master.wait_state(VHID, "MASTER");
    let capture = Capture::start(&lan.client, "eth0", lan.hosts[0].ip, VHID);
    // The real-time backup, without preempt: the re-sent adverts (advskew
    // 200, a slower master than itself) must not make it take over.
    let backup_inst = Inst::new(VHID, vip, 100).preempt(false);
    let mut backup = start(&lan, 1, "b", &backup_inst, &["--realtime-priority", "10"]);
    backup.wait_state(VHID, "BACKUP");
    let captured = capture.last(1, EVENTUALLY).remove(0);
    // Re-sent from 10.250.0.0 and up, each source new: the master outranks
    // them all and stays; the backup hears a master all along.
    let mut frame = captured
        .sent_by([0x02, 0xaa, 0, 0, 0, 1], Ipv4Addr::new(10, 250, 0, 0))
        .with_priority(1, 200, 0);
    // To the backup's MAC: the bridge delivers it there alone, so every
    // cycle of the sender goes to the backup's receive path.
    frame.0[..6].copy_from_slice(&lan.hosts[1].ns.mac("eth0"));
    let frames = [frame];
    let sent = flood(
        &lan.client,
        lan.dir.path(),
        &frames,
        FLOOD_SECS,
        Some(4_000_000),
    );
    eprintln!(
        "flood: {} frames in {:.1} s ({:.0}/s)",
        sent.sent, sent.seconds, sent.pps
    );
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = backup.proc.child.0.try_wait().expect("try_wait") {
        panic!("the real-time backup died during the flood: {status}");
    }
    assert_eq!(
        backup.state(VHID).as_deref(),
        Some("BACKUP"),
        "the real-time backup lost its role"
    );
    let log = backup.proc.stderr_text();
    eprintln!(
        "backup log, real-time lines:\n{}",
        log.lines()
            .filter(|l| ["real-time", "SCHED", "RLIMIT_RTTIME"]
                .iter()
                .any(|w| l.contains(w)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The premise: the flood kept the loop from sleeping for a budget (a
    // quarter of the soft limit, 250 ms at most) at least once.
    assert!(
        log.contains("without sleeping"),
        "the flood ({:.0} frames/s) never kept the backup's loop busy: this run proves nothing",
        sent.pps
    );
    // Still working: the master goes, the backup takes over.
    master.signal(libc::SIGKILL);
    backup.wait_state(VHID, "MASTER");
}
