//! `daemonize` for real: this binary (no test harness, so one thread) runs
//! itself again with `CARPD_DAEMONIZE_OUT` set; that copy daemonizes and the
//! daemon writes what it sees (pid, session, cwd, std fds) to the file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const OUT: &str = "CARPD_DAEMONIZE_OUT";

fn main() {
    // `cargo test -- --list` and test runners probing the binary.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    match std::env::var_os(OUT) {
        Some(out) => child(Path::new(&out)),
        None => parent(),
    }
}

/// In the re-run copy: daemonize, then report.
fn child(out: &Path) {
    if let Err(e) = carp_daemon::daemonize::daemonize() {
        let _ = std::fs::write(out, format!("error {e}\n"));
        std::process::exit(1);
    }
    // SAFETY: plain getters without arguments that touch no memory.
    let (pid, ppid, sid) = unsafe { (libc::getpid(), libc::getppid(), libc::getsid(0)) };
    let cwd = std::env::current_dir().map(|p| p.display().to_string());
    let fds: Vec<String> = (0..=2)
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| e.to_string())
        })
        .collect();
    let text = format!(
        "pid {pid}\nppid {ppid}\nsid {sid}\ncwd {}\nfds {}\n",
        cwd.unwrap_or_else(|e| e.to_string()),
        fds.join(",")
    );
    let tmp = out.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, out);
    }
}

/// The test proper.
fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("daemon.txt");
    let exe = std::env::current_exe().expect("own path");
    let started = Command::new(exe)
        .env(OUT, &out)
        .status()
        .expect("run the daemonizing copy");
    assert!(started.success(), "the original process exits 0: {started}");

    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.exists() {
        assert!(Instant::now() < deadline, "the daemon reported nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out).expect("report");
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    let pid: i32 = field("pid").parse().unwrap();
    let sid: i32 = field("sid").parse().unwrap();
    // SAFETY: getsid(0) has no memory effects.
    let our_sid = unsafe { libc::getsid(0) };
    assert_ne!(sid, our_sid, "a new session: {text}");
    assert_ne!(sid, pid, "not the session leader (second fork): {text}");
    assert_ne!(pid as u32, std::process::id());
    assert_eq!(field("cwd"), "/");
    assert_eq!(field("fds"), "/dev/null,/dev/null,/dev/null");
    println!("daemonize: detached as pid {pid} in session {sid}: ok");
}
