//! `carpd-xdp` against a hostile or busy host, in a namespace:
//!
//! - a local user holding 2,000 connections to the metrics endpoint cannot
//!   exhaust the daemon's file descriptors: status is still served, the
//!   health check still runs and passes (no demotion, no unknown run), and
//!   the endpoint answers a scrape once the flood is gone;
//! - with `realtime_priority` and `lock_memory` the daemon's thread runs
//!   SCHED_FIFO with its memory locked, while its up script and health
//!   check run SCHED_OTHER with the RLIMIT_RTTIME the daemon inherited, and
//!   see the daemon's environment without the password variable (issue 18
//!   item 3, issue 19 item 5);
//! - bounded to the capabilities of the shipped systemd unit, the daemon
//!   attaches XDP natively, serves the VIP and removes it on SIGTERM, and
//!   its loader hides the kernel's BTF; without CAP_SYS_CHROOT it says it
//!   could not and still serves.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{eventually, Daemon, Inst, Lan, Proc, CARPD};
use common::require_root;

/// Descriptors the daemon may open in the flood test: enough for its normal
/// work, far below the flood.
const DAEMON_NOFILE: u32 = 256;
/// Connections the flood opens.
const FLOOD: usize = 2000;

/// Starts `carpd-xdp --config CONFIG` on host `i` under `program
/// ARGS --`, a wrapper that execs the daemon (`prlimit`, `setpriv`): the
/// pid is the daemon's.
fn start_wrapped(
    lan: &Lan,
    i: usize,
    name: &str,
    (program, args): (&str, &[String]),
    config: &Path,
) -> Daemon {
    let args: Vec<String> = args
        .iter()
        .cloned()
        .chain(["--".to_string(), CARPD.to_string()])
        .chain(["--config".to_string(), config.display().to_string()])
        .collect();
    let env = [("RUST_LOG", "info,carp_daemon=debug"), ("NO_COLOR", "1")];
    let proc = Proc::spawn(lan, &lan.hosts[i].ns, name, program, &args, &env);
    Daemon {
        proc,
        sock: lan.path(&format!("{name}.sock")),
        host: i,
    }
}

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Opens `n` non-blocking TCP connections to `addr` (from the calling
/// thread's namespace) without waiting for them to be accepted.
fn flood(addr: SocketAddr, n: usize) -> Vec<OwnedFd> {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    // SAFETY: all-zero sockaddr_in is valid; fields set below.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
    (0..n)
        .map(|_| {
            // SAFETY: plain socket(2); checked below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_INET,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    0,
                )
            };
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            // SAFETY: fd was just opened and is owned by nothing else.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sa is a valid sockaddr_in for the length given.
            let rc = unsafe {
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as u32,
                )
            };
            let err = std::io::Error::last_os_error();
            assert!(
                rc == 0 || err.raw_os_error() == Some(libc::EINPROGRESS),
                "connect: {err}"
            );
            owned
        })
        .collect()
}

/// Raises this process's descriptor limit to hold the flood's sockets.
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= n {
        return;
    }
    lim.rlim_cur = n;
    lim.rlim_max = lim.rlim_max.max(n);
    // SAFETY: lim is a valid rlimit; root may raise the hard limit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// One scrape of `/metrics`: the whole response.
fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn a_metrics_connection_flood_neither_exhausts_descriptors_nor_demotes() {
    if !require_root("a_metrics_connection_flood_neither_exhausts_descriptors_nor_demotes") {
        return;
    }
    let lan = Lan::new("hdflood", 210, 9, 1);
    let vip = lan.addr(10);
    let metrics: SocketAddr = "127.0.0.1:9464".parse().unwrap();
    let check = "\n[[instance.health_check]]\ncommand = [\"/bin/sh\", \"-c\", \"exit 0\"]\n\
                 interval_secs = 1\ntimeout_secs = 1\nweight = 200\n";
    let sock = lan.path("d0.sock");
    let text = lan
        .config(0, &sock, &[Inst::new(10, vip, 0).extra(check)])
        .replacen(
            "[global]\n",
            &format!("[global]\nmetrics = \"{metrics}\"\n"),
            1,
        );
    let config = lan.write("d0.toml", &text, 0o644);
    let nofile = [format!("--nofile={DAEMON_NOFILE}:{DAEMON_NOFILE}")];
    let mut d = start_wrapped(&lan, 0, "d0", ("prlimit", &nofile), &config);
    d.wait_state(10, "MASTER");
    let ns = &lan.hosts[0].ns;
    let first = ns.run(|| eventually("a first scrape", || scrape(metrics).ok()));
    assert!(first.contains("\ncarpd_up 1\n"), "{first}");
    let pid = d.proc.child.pid();
    let before = open_fds(pid);

    raise_nofile(FLOOD as u64 + 256);
    let held = ns.run(|| flood(metrics, FLOOD));
    // Long enough for several health-check runs and for the daemon to take
    // whatever it would take from the backlog.
    let start = Instant::now();
    let mut most = 0;
    while start.elapsed() < Duration::from_secs(4) {
        most = most.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let inst = d.instance(10).expect("status answered during the flood");
    let during = open_fds(pid);
    assert_eq!(inst["state"], "MASTER", "{inst}");
    assert_eq!(inst["demote"], 0, "demoted during the flood: {inst}");
    assert_eq!(inst["health_unknown"], 0, "checks could not start: {inst}");
    // At most the metrics and control connection caps above the baseline
    // (plus a health check's pipes).
    let cap = before + 16 + 8 + 8;
    assert!(
        most <= cap && during <= cap,
        "daemon held up to {most} descriptors ({during} now, {before} before the flood)"
    );
    assert_eq!(d.proc.child.0.try_wait().expect("try_wait"), None);

    drop(held);
    let after = ns.run(|| eventually("a scrape after the flood", || scrape(metrics).ok()));
    assert!(after.starts_with("HTTP/1.1 200 OK"), "{after}");
    assert!(
        after.contains("carpd_health_unknown_total{interface=\"eth0\",vhid=\"10\"} 0\n"),
        "{after}"
    );
    let inst = d.instance(10).expect("status after the flood");
    assert_eq!(inst["demote"], 0, "{inst}");
}

/// `policy` of a task from its `/proc/.../sched` text (0 SCHED_OTHER,
/// 1 SCHED_FIFO).
fn policy(sched: &str) -> Option<u32> {
    sched
        .lines()
        .find(|l| l.starts_with("policy"))?
        .rsplit(' ')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The soft and hard `RLIMIT_RTTIME` of a `/proc/.../limits` text
/// (`unlimited` or microseconds).
fn rttime(limits: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max realtime timeout"))
        .unwrap_or_else(|| panic!("no RLIMIT_RTTIME in {limits}"));
    let fields: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    (fields[0].to_owned(), fields[1].to_owned())
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
fn a_realtime_daemon_runs_its_scripts_and_checks_sched_other_without_the_password() {
    if !require_root(
        "a_realtime_daemon_runs_its_scripts_and_checks_sched_other_without_the_password",
    ) {
        return;
    }
    let lan = Lan::new("hdrt", 210, 11, 1);
    let vip = lan.addr(10);
    let (up_out, hc_out) = (lan.path("up.out"), lan.path("hc.out"));
    // Both log through a variable of the daemon's environment, then write
    // their scheduling policy, their whole environment and their limits.
    let dump = |out: &Path| {
        format!(
            "{{ echo via=$CARPD_UNRELATED; grep ^policy /proc/$$/sched; env; cat /proc/$$/limits; }} \
             > {0}.tmp && mv {0}.tmp {0}",
            out.display()
        )
    };
    let up = lan.write("up.sh", &format!("#!/bin/sh\n{}\n", dump(&up_out)), 0o755);
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
            "[global]\n",
            "[global]\nrealtime_priority = 10\nlock_memory = true\n",
            1,
        )
        .replacen(
            "password = \"pw10\"",
            "password_env = \"CARPD_RT_SECRET\"",
            1,
        );
    let config = lan.write("d0.toml", &text, 0o644);
    let args = vec!["--config".to_string(), config.display().to_string()];
    let secret = "rt-secret-4711";
    let mut d = Daemon::start(
        &lan,
        0,
        "d0",
        &args,
        &[("CARPD_RT_SECRET", secret), ("CARPD_UNRELATED", "x")],
        sock,
    );
    d.wait_state(10, "MASTER");
    let pid = d.proc.child.pid();

    // The runtime's thread (the main one) runs SCHED_FIFO at 10.
    let main = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/sched")).unwrap();
    assert_eq!(policy(&main), Some(1), "daemon thread: {main}");
    let chrt = common::run_ok(std::process::Command::new("chrt").args(["-p", &pid.to_string()]));
    let chrt = String::from_utf8_lossy(&chrt.stdout);
    assert!(
        chrt.contains("SCHED_FIFO") && chrt.contains("priority: 10"),
        "{chrt}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmLck");
    assert!(locked > 0, "no memory locked: {status}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max realtime timeout") && l.contains("2000000")),
        "RLIMIT_RTTIME not set: {limits}"
    );

    // Children get back the RLIMIT_RTTIME the daemon was started with (the
    // test's own, passed on unchanged by `ip netns exec`); a hard limit the
    // daemon lowered can only be raised again with CAP_SYS_RESOURCE,
    // without it the soft limit is raised to the daemon's hard one.
    let inherited = rttime(&std::fs::read_to_string("/proc/self/limits").unwrap());
    let own = rttime(&limits);
    let expected = if own.1 == inherited.1 || has_sys_resource(pid) {
        inherited.clone()
    } else {
        (own.1.clone(), own.1.clone())
    };
    for (what, out) in [("up script", &up_out), ("health check", &hc_out)] {
        let text = eventually(&format!("the {what}'s output"), || {
            std::fs::read_to_string(out).ok()
        });
        assert_eq!(policy(&text), Some(0), "{what} not SCHED_OTHER: {text}");
        assert!(
            !text.contains(secret) && !text.contains("CARPD_RT_SECRET"),
            "{what} saw the password variable: {text}"
        );
        // The rest of the daemon's environment is inherited, as UCARP's
        // scripts inherit UCARP's.
        assert!(text.starts_with("via=x\n"), "{what}: {text}");
        assert!(text.contains("\nCARPD_UNRELATED=x\n"), "{what}: {text}");
        assert_eq!(
            rttime(&text),
            expected,
            "{what}'s RLIMIT_RTTIME (inherited {inherited:?}, daemon {own:?}): {text}"
        );
    }
    let up_text = std::fs::read_to_string(&up_out).unwrap();
    assert!(up_text.contains("\nCARP_STATE=MASTER\n"), "{up_text}");
    assert_eq!(d.instance(10).expect("status")["demote"], 0);
}

/// The capabilities the shipped systemd unit (`dist/carpd-xdp.service`)
/// bounds the daemon to, in `setpriv` form (`net_admin`, ...).
fn unit_capabilities() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/carpd-xdp.service");
    let unit = std::fs::read_to_string(path).unwrap();
    let caps: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit bounds the capabilities")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_lowercase())
        .collect();
    assert!(caps.contains(&"net_admin".to_string()), "{caps:?}");
    caps
}

/// What the daemon logs when its loader thread cannot hide the kernel's
/// BTF (`xdp/program.rs`).
const BTF_NOT_HIDDEN: &str = "kernel BTF not hidden from the loader";

#[test]
fn the_units_capabilities_are_enough_to_serve_and_to_load_without_the_kernel_btf() {
    if !require_root(
        "the_units_capabilities_are_enough_to_serve_and_to_load_without_the_kernel_btf",
    ) {
        return;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("skipped: this kernel has no BTF to hide");
        return;
    }
    let caps = unit_capabilities();
    let without_chroot: Vec<String> = caps
        .iter()
        .filter(|c| *c != "sys_chroot")
        .cloned()
        .collect();
    let lan = Lan::new("hdcap", 210, 12, 1);
    let vip = lan.addr(10);
    for (name, caps, hidden) in [("unit", &caps, true), ("nochroot", &without_chroot, false)] {
        let sock = lan.path(&format!("{name}.sock"));
        let text = lan.config(0, &sock, &[Inst::new(10, vip, 0)]);
        let config = lan.write(&format!("{name}.toml"), &text, 0o644);
        // Root bounded to `caps` has those and no others.
        let bounding: String = caps.iter().map(|c| format!(",+{c}")).collect();
        let setpriv = [format!("--bounding-set=-all{bounding}")];
        let mut d = start_wrapped(&lan, 0, name, ("setpriv", &setpriv), &config);
        d.wait_state(10, "MASTER");
        eventually("the VIP on host 0", || {
            (lan.holders(vip) == [0]).then_some(())
        });
        let st = d.status().expect("status");
        assert_eq!(st["interfaces"][0]["mode"], "native", "{name}: {st}");
        let log = d.proc.stderr_text();
        assert_eq!(
            !log.contains(BTF_NOT_HIDDEN),
            hidden,
            "{name} ({caps:?}): {log}"
        );
        d.proc.signal(libc::SIGTERM);
        assert!(
            d.proc.wait_exit(Duration::from_secs(10)).is_some(),
            "{name} did not exit"
        );
        eventually("the VIP gone", || lan.holders(vip).is_empty().then_some(()));
    }
}

#[test]
fn without_the_privileges_it_needs_the_first_line_says_which() {
    if !require_root("without_the_privileges_it_needs_the_first_line_says_which") {
        return;
    }
    let lan = Lan::new("hdpriv", 210, 13, 1);
    let vip = lan.addr(10);
    let no_bpf = " (and CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN, for the XDP receive path)";
    let how = "; run carpd-xdp as root, or with these (systemd: AmbientCapabilities=, \
               see dist/carpd-xdp.service)";
    let unit = unit_capabilities();
    let without_raw: String = unit
        .iter()
        .filter(|c| *c != "net_raw")
        .map(|c| format!(",+{c}"))
        .collect();
    let cases: [(&str, Vec<String>, String); 3] = [
        (
            "nocaps",
            vec!["--bounding-set=-all".into(), "--inh-caps=-all".into()],
            format!(
                "missing privileges (uid 0): CAP_NET_ADMIN (to add the VIPs), \
                 CAP_NET_RAW (to send adverts){no_bpf}{how}"
            ),
        ),
        (
            "noraw",
            vec![format!("--bounding-set=-all{without_raw}")],
            format!("missing privileges (uid 0): CAP_NET_RAW (to send adverts){how}"),
        ),
        (
            "nobody",
            [
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ]
            .map(String::from)
            .to_vec(),
            // The scratch directory (mode 0700) holds the socket and the
            // state directory the daemon would create.
            format!(
                "missing privileges (uid 65534): CAP_NET_ADMIN (to add the VIPs), \
                 CAP_NET_RAW (to send adverts), write access to {dir} (status socket), \
                 write access to {dir} (state_dir){no_bpf}{how}",
                dir = lan.path("x").parent().unwrap().display()
            ),
        ),
    ];
    for (name, setpriv, expected) in cases {
        let sock = lan.path(&format!("{name}.sock"));
        let text = lan.config(0, &sock, &[Inst::new(10, vip, 0)]);
        // Readable by the unprivileged user too; its directory is not.
        let config =
            std::env::temp_dir().join(format!("carpd-hdpriv-{}-{name}.toml", std::process::id()));
        std::fs::write(&config, text).unwrap();
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let mut d = start_wrapped(&lan, 0, name, ("setpriv", &setpriv), &config);
        let status = d.proc.wait_exit(Duration::from_secs(20));
        let _ = std::fs::remove_file(&config);
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{name}: {status:?}");
        let err = d.proc.stderr_text();
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("carpd-xdp: {expected}")),
            "{name}: first line {first:?}, expected {expected:?}\n{err}"
        );
        assert!(!sock.exists(), "{name}: status socket created");
    }
}
