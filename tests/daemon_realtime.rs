//! Real-time without suicide (issue 19, item 5), the switch to
//! real-time scheduling when the fastest timers run late (issue 20, item 2:
//! `auto_realtime`, see `carp-daemon/src/lateness.rs`), and the stand-in
//! senders that send a master's prepared adverts while the CPU of its loop
//! does not run it (`carp-daemon/src/standin.rs`).
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
use common::cluster::{eventually, Daemon, Inst, Lan, Proc, CARPD, EVENTUALLY};
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

/// What the daemon logs when it switches to SCHED_FIFO by itself.
const SWITCHED: &str = "the daemon now runs SCHED_FIFO priority 10";
/// What it logs at start when it could not.
const NOT_SAFE: &str = "the fastest timers are not safe on a busy host";

/// The scheduling policy of the daemon's loop (its main thread: the
/// runtime is a current-thread one), from `/proc/<pid>/sched`.
fn loop_policy(pid: u32) -> i32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/sched")).expect("sched");
    text.lines()
        .find_map(|l| l.strip_prefix("policy"))
        .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
        .expect("policy line")
}

/// An advbase-0 instance (advskew 1: adverts every 1/256 s, master-down
/// 11.7 ms).
fn fastest(vip: Ipv4Addr) -> Inst {
    Inst {
        advbase_secs: 0,
        ..Inst::new(VHID, vip, 1)
    }
}

/// Makes the daemon's timers late: stops the whole process 200 ms (far
/// more than a quarter of any sub-second interval plus a millisecond), as
/// a host whose CPUs are taken by others would, and lets it go on.
fn make_late(d: &Daemon) {
    d.proc.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(200));
    d.proc.signal(libc::SIGCONT);
}

#[test]
fn a_daemon_late_at_advbase_0_switches_to_sched_fifo_and_says_so_once() {
    if !require_root("a_daemon_late_at_advbase_0_switches_to_sched_fifo_and_says_so_once") {
        return;
    }
    let lan = Lan::new("rtlt", 219, 73, 1);
    let vip = lan.addr(VHID);
    let mut d = start(&lan, 0, "a", &fastest(vip), &[]);
    d.wait_state(VHID, "MASTER");
    let pid = d.proc.child.0.id();
    // This shared machine may be busy enough already: the policy follows
    // the log line, whichever came first.
    if !d.proc.stderr_text().contains(SWITCHED) {
        assert_eq!(
            loop_policy(pid),
            libc::SCHED_OTHER,
            "switched without saying so"
        );
    }
    make_late(&d);
    eventually("the switch logged", || {
        d.proc.stderr_text().contains(SWITCHED).then_some(())
    });
    assert_eq!(loop_policy(pid), libc::SCHED_FIFO);
    make_late(&d);
    std::thread::sleep(Duration::from_millis(300));
    let log = d.proc.stderr_text();
    assert_eq!(log.matches(SWITCHED).count(), 1, "{log}");
    assert!(!log.contains(NOT_SAFE), "{log}");
    assert_eq!(d.state(VHID).as_deref(), Some("MASTER"));

    // Switched off: late all the same, it stays SCHED_OTHER.
    d.signal(libc::SIGTERM);
    assert!(d.proc.wait_exit(Duration::from_secs(10)).is_some());
    let mut off = start(&lan, 0, "off", &fastest(vip), &["--no-auto-realtime"]);
    off.wait_state(VHID, "MASTER");
    make_late(&off);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(loop_policy(off.proc.child.0.id()), libc::SCHED_OTHER);
    let log = off.proc.stderr_text();
    assert!(!log.contains(SWITCHED), "{log}");
    // ... and says at start that this is not safe on a busy host.
    assert!(log.contains("auto_realtime = false"), "{log}");
}

#[test]
fn without_cap_sys_nice_the_fastest_timers_are_said_unsafe_at_start() {
    if !require_root("without_cap_sys_nice_the_fastest_timers_are_said_unsafe_at_start") {
        return;
    }
    let lan = Lan::new("rtnc", 219, 74, 1);
    let vip = lan.addr(VHID);
    // Root without CAP_SYS_NICE (dropped from the bounding set before the
    // exec) and with RLIMIT_RTPRIO 0: SCHED_FIFO is refused.
    let start_unable = |name: &str, inst: &Inst| {
        let sock = lan.path(&format!("{name}.sock"));
        let text = lan.config(0, &sock, std::slice::from_ref(inst));
        let config = lan.write(&format!("{name}.toml"), &text, 0o644);
        let args: Vec<String> = [
            "--rtprio=0",
            "setpriv",
            "--bounding-set=-sys_nice",
            "--",
            CARPD,
            "--config",
        ]
        .iter()
        .map(ToString::to_string)
        .chain([config.display().to_string()])
        .collect();
        let env = [("RUST_LOG", "info"), ("NO_COLOR", "1")];
        let proc = Proc::spawn(&lan, &lan.hosts[0].ns, name, "prlimit", &args, &env);
        Daemon {
            proc,
            sock,
            host: 0,
        }
    };
    // advbase 1: nothing to say.
    let mut slow = start_unable("slow", &Inst::new(VHID, vip, 1));
    slow.wait_state(VHID, "MASTER");
    let log = slow.proc.stderr_text();
    assert!(!log.contains(NOT_SAFE), "{log}");
    slow.signal(libc::SIGTERM);
    assert!(slow.proc.wait_exit(Duration::from_secs(10)).is_some());
    // advbase 0: one line at start saying why.
    let mut d = start_unable("fast", &fastest(vip));
    d.wait_state(VHID, "MASTER");
    let log = d.proc.stderr_text();
    let warned: Vec<&str> = log.lines().filter(|l| l.contains(NOT_SAFE)).collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("without CAP_SYS_NICE and with RLIMIT_RTPRIO 0 < 10"),
        "{log}"
    );
    // Late, it tries, fails, and says so, and keeps running.
    make_late(&d);
    eventually("the refused switch logged", || {
        d.proc
            .stderr_text()
            .contains("cannot run SCHED_FIFO at priority 10")
            .then_some(())
    });
    assert_eq!(loop_policy(d.proc.child.0.id()), libc::SCHED_OTHER);
    assert_eq!(d.state(VHID).as_deref(), Some("MASTER"));
}

/// Runs `f` on a thread pinned to CPU `cpu` at SCHED_FIFO priority 99:
/// nothing else of this machine's tasks runs on that CPU meanwhile.
fn on_cpu_at_fifo_99(cpu: usize, f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        pin_thread(0, cpu);
        let param = libc::sched_param { sched_priority: 99 };
        // SAFETY: `param` is a valid sched_param; pid 0 is this thread.
        assert_eq!(
            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) },
            0
        );
        f();
    })
    .join()
    .expect("the CPU hog");
}

/// Pins thread `tid` (0: the calling thread) to CPU `cpu`.
fn pin_thread(tid: u32, cpu: usize) {
    // SAFETY: `set` is a valid cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let tid = libc::pid_t::try_from(tid).expect("tid");
        assert_eq!(
            libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

#[test]
fn a_master_whose_loop_cannot_run_keeps_its_backup_through_its_stand_ins() {
    if !require_root("a_master_whose_loop_cannot_run_keeps_its_backup_through_its_stand_ins") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        if std::env::var_os("CI").is_some() {
            panic!("stand-in senders need a second CPU; CI has one");
        }
        eprintln!("skipped: stand-in senders need a second CPU");
        return;
    }
    let lan = Lan::new("rtsi", 219, 75, 2);
    let vip = lan.addr(VHID);
    // advskew 0 and 1 at advbase 0: the backup's master-down is 11.7 ms.
    let mut master = start(
        &lan,
        0,
        "a",
        &Inst {
            advbase_secs: 0,
            ..Inst::new(VHID, vip, 0)
        },
        &[],
    );
    master.wait_state(VHID, "MASTER");
    let mut backup = start(&lan, 1, "b", &fastest(vip), &[]);
    backup.wait_state(VHID, "BACKUP");
    let before = backup.instance(VHID).expect("backup status")["transitions"].clone();
    // The master's loop (its main thread: the runtime is a current-thread
    // one) on CPU 0, and CPU 0 taken 60 ms at a time, five times: the loop
    // cannot send for five master-downs each time. Its stand-in on CPU 1
    // can. The backup's loop on CPU 1: on time, it would take over.
    pin_thread(master.proc.child.0.id(), 0);
    pin_thread(backup.proc.child.0.id(), 1);
    for _ in 0..5 {
        on_cpu_at_fifo_99(0, || {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(60) {
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    let a = master.instance(VHID).expect("master status");
    let b = backup.instance(VHID).expect("backup status");
    assert_eq!(a["state"], "MASTER");
    assert_eq!(b["state"], "BACKUP");
    assert_eq!(
        b["transitions"], before,
        "the backup took over while the master's loop could not run: {b}"
    );
    let standin = a["adverts_sent_by_standin"]
        .as_u64()
        .expect("stand-in count");
    // 60 ms of adverts every 3.9 ms, five times, less what the loop sent
    // before the hog started.
    assert!(standin >= 5 * 10, "the stand-ins sent {standin} adverts");
}
