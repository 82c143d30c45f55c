//! What `carpd-xdp`'s children (up/down scripts, health checks) get from
//! it, in a namespace:
//!
//! - the daemon's environment, as UCARP's scripts get UCARP's: a site
//!   variable exported to the daemon reaches the up script and the health
//!   check, the variable the password is read from does not (issue 18,
//!   item 3);
//! - with `--realtime-priority`, they run SCHED_OTHER with the
//!   `RLIMIT_RTTIME` the daemon was started with, not the daemon's guard
//!   (issue 19, item 5);
//! - a multi-VIP down script still running when the daemon exits is killed
//!   with its whole process group: nothing it started is left behind
//!   (issue 19, item 8).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{eventually, Daemon, Inst, Lan};
use common::require_root;

/// The soft and hard `RLIMIT_RTTIME` of a `/proc/.../limits` text
/// (`unlimited` or microseconds).
fn rttime(limits: &str) -> Option<(String, String)> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max realtime timeout"))?;
    let mut fields = line.split_whitespace().skip(3);
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Whether process `pid` has CAP_SYS_RESOURCE (needed to raise a hard
/// limit).
fn has_sys_resource(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapEff");
    // CAP_SYS_RESOURCE is capability 24 (linux/capability.h).
    eff & (1 << 24) != 0
}

#[test]
fn scripts_and_checks_inherit_the_site_environment_but_no_secret_nor_the_realtime_limit() {
    let name =
        "scripts_and_checks_inherit_the_site_environment_but_no_secret_nor_the_realtime_limit";
    if !require_root(name) {
        return;
    }
    let lan = Lan::new("chenv", 210, 61, 1);
    let vip = lan.addr(10);
    let (up_out, hc_out) = (lan.path("up.out"), lan.path("hc.out"));
    // Both log through the site variable, then dump their environment,
    // their scheduling policy and their limits.
    let dump = |out: &Path| {
        format!(
            "{{ echo \\\"logged via $SITE_LOG_TAG\\\"; env; chrt -p $$; cat /proc/$$/limits; }} \
             > {0}.tmp && mv {0}.tmp {0}",
            out.display()
        )
    };
    let up = lan.write(
        "up.sh",
        &format!("#!/bin/sh\n{}\n", dump(&up_out).replace("\\\"", "\"")),
        0o755,
    );
    let extra = format!(
        "upscript = \"{}\"\n\n[[instance.health_check]]\ncommand = [\"/bin/sh\", \"-c\", \"{}\"]\n\
         interval_secs = 1\ntimeout_secs = 5\nweight = 10\n",
        up.display(),
        dump(&hc_out)
    );
    let sock = lan.path("d0.sock");
    let text = lan
        .config(0, &sock, &[Inst::new(10, vip, 0).extra(&extra)])
        .replacen(
            "password = \"pw10\"",
            "password_env = \"CARPD_CHILD_SECRET\"",
            1,
        );
    let config = lan.write("d0.toml", &text, 0o644);
    let args: Vec<String> = ["--config", &config.display().to_string()]
        .iter()
        .map(|s| s.to_string())
        .chain(["--realtime-priority".to_string(), "10".to_string()])
        .collect();
    let secret = "child-secret-4711";
    let mut d = Daemon::start(
        &lan,
        0,
        "d0",
        &args,
        &[
            ("CARPD_CHILD_SECRET", secret),
            ("SITE_LOG_TAG", "site-0815"),
        ],
        sock,
    );
    d.wait_state(10, "MASTER");
    let pid = d.proc.child.pid();
    let daemon_sched = std::fs::read_to_string(format!("/proc/{pid}/sched")).unwrap();
    assert!(
        daemon_sched
            .lines()
            .any(|l| l.starts_with("policy") && l.trim_end().ends_with(" 1")),
        "the daemon does not run SCHED_FIFO: {daemon_sched}"
    );
    // What the daemon was started with (the test's own limit, passed on
    // unchanged by `ip netns exec`), and what it has now.
    let inherited =
        rttime(&std::fs::read_to_string("/proc/self/limits").unwrap()).expect("RLIMIT_RTTIME line");
    let own = rttime(&std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap())
        .expect("RLIMIT_RTTIME line");
    // Children get the inherited limit back; a hard limit the daemon
    // lowered can only be raised again with CAP_SYS_RESOURCE, without it
    // the soft limit is raised to the daemon's hard one.
    let expected = if own.1 == inherited.1 || has_sys_resource(pid) {
        inherited.clone()
    } else {
        (own.1.clone(), own.1.clone())
    };
    eprintln!("RLIMIT_RTTIME inherited {inherited:?}, daemon {own:?}, children {expected:?}");

    for (what, out) in [("up script", &up_out), ("health check", &hc_out)] {
        let text = eventually(&format!("the {what}'s output"), || {
            std::fs::read_to_string(out).ok()
        });
        assert!(
            text.starts_with("logged via site-0815\n"),
            "{what} did not get the site variable: {text}"
        );
        assert!(
            text.contains("\nSITE_LOG_TAG=site-0815\n"),
            "{what}: {text}"
        );
        assert!(
            !text.contains(secret) && !text.contains("CARPD_CHILD_SECRET"),
            "{what} saw the password variable: {text}"
        );
        assert!(
            text.contains("current scheduling policy: SCHED_OTHER"),
            "{what} not SCHED_OTHER: {text}"
        );
        assert_eq!(
            rttime(&text).as_ref(),
            Some(&expected),
            "{what}'s RLIMIT_RTTIME (inherited {inherited:?}, daemon {own:?}): {text}"
        );
    }
    let up_text = std::fs::read_to_string(&up_out).unwrap();
    assert!(up_text.contains("\nCARP_STATE=MASTER\n"), "{up_text}");
    assert_eq!(d.instance(10).expect("status")["demote"], 0);
}

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
