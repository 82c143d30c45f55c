//! Bad input and unclean exits (issue 4's acceptance):
//!
//! - malformed configuration files and command-line flags: one clear error
//!   naming the file/line/field or the flag, a non-zero exit, and nothing
//!   changed on the interface (no address, no XDP program), even when the
//!   file's first instance is valid;
//! - a SIGKILLed daemon leaves no XDP program on the interface;
//! - a daemon started next to a master removes a stale VIP of ours left on
//!   the interface (by a crashed run) and stays backup.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cluster::{eventually, has_addr, xdp_attached, Inst, Lan, CARPD};
use common::require_root;

/// What a refused run must look like: exit code non-zero, exactly one line
/// mentioning an error that contains every `needle`, the interface as it
/// was.
fn refused(lan: &Lan, what: &str, args: &[String], needles: &[&str]) {
    let ns = &lan.hosts[0].ns;
    let snapshot = || {
        (
            ns.ip(&["-o", "addr", "show", "dev", "eth0"]),
            xdp_attached(ns, "eth0"),
        )
    };
    let before = snapshot();
    let mut child = ns
        .command(CARPD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn carpd-xdp");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running 10 s after start with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(status.code(), Some(c) if c != 0),
        "{what}: exit status {status}, stderr:\n{stderr}"
    );
    // The error line: the one line saying "error", or the only line.
    let mut errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    if errors.is_empty() {
        errors = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    }
    assert_eq!(
        errors.len(),
        1,
        "{what}: expected one error line, stderr:\n{stderr}"
    );
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{what}: the error does not name {needle:?}: {}",
            errors[0]
        );
    }
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(snapshot(), before, "{what}: the interface changed");
}

fn config(lan: &Lan, name: &str, broken: &str) -> (String, String) {
    let sock = lan.path(&format!("{name}.sock"));
    let good = Inst::new(10, lan.addr(10), 0);
    let text = lan.config(0, &sock, &[good]) + broken;
    let path = lan.write(&format!("{name}.toml"), &text, 0o644);
    (path.display().to_string(), text)
}

/// 1-based line of the first line of `text` starting with `prefix`, after
/// `after` (the broken part's own marker).
fn line_of(text: &str, after: &str, prefix: &str) -> usize {
    let start = text.find(after).expect("marker");
    let skipped = text[..start].lines().count();
    skipped
        + 1
        + text[start..]
            .lines()
            .position(|l| l.starts_with(prefix))
            .expect("line")
}

#[test]
fn malformed_configs_are_refused_with_nothing_applied() {
    if !require_root("malformed_configs_are_refused_with_nothing_applied") {
        return;
    }
    let lan = Lan::new("cbcfg", 212, 1, 1);
    // Each case: a valid first instance, then a broken second one; the
    // error must name the file, the broken line and the field.
    let base = |vhid: &str, more: &str| {
        format!(
            "\n# broken\n[[instance]]\ninterface = \"eth0\"\n{vhid}\nvips = [\"{}/24\"]\n\
             password = \"pw\"\n{more}",
            lan.addr(20)
        )
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "vhid out of range",
            base("vhid = 0", ""),
            "vhid = 0",
            "vhid",
        ),
        (
            "unknown key",
            base("vhid = 20", "advskw = 5\n"),
            "advskw",
            "advskw",
        ),
        (
            "advskew out of range",
            base("vhid = 20", "advskew = 255\n"),
            "advskew",
            "advskew",
        ),
        ("duplicate vhid", base("vhid = 10", ""), "vhid = 10", "vhid"),
        ("TOML syntax", base("vhid = ", ""), "vhid =", ""),
    ];
    for (what, broken, line_prefix, field) in cases {
        let (path, text) = config(&lan, "bad", &broken);
        let line = line_of(&text, "# broken", line_prefix);
        let at = format!("{path}:{line}");
        let mut needles = vec![at.as_str()];
        if !field.is_empty() {
            needles.push(field);
        }
        refused(&lan, what, &["--config".into(), path.clone()], &needles);
    }
    let bad_vip = format!(
        "\n[[instance]]\ninterface = \"eth0\"\nvhid = 20\nvips = [\"{}.300/24\"]\npassword = \"pw\"\n",
        lan.addr(0).to_string().trim_end_matches(".0")
    );
    let (path, _) = config(&lan, "badvip", &bad_vip);
    refused(
        &lan,
        "bad VIP",
        &["--config".into(), path.clone()],
        &[&path, "vips"],
    );
    let no_password = format!(
        "\n[[instance]]\ninterface = \"eth0\"\nvhid = 20\nvips = [\"{}\"]\n",
        lan.addr(20)
    );
    let (path, _) = config(&lan, "nopw", &no_password);
    refused(
        &lan,
        "no password",
        &["--config".into(), path.clone()],
        &[&path, "password"],
    );
    let missing = lan.path("missing.toml").display().to_string();
    refused(
        &lan,
        "missing file",
        &["--config".into(), missing.clone()],
        &[&missing],
    );
}

#[test]
fn malformed_flags_are_refused_with_nothing_applied() {
    if !require_root("malformed_flags_are_refused_with_nothing_applied") {
        return;
    }
    let lan = Lan::new("cbflag", 212, 2, 1);
    let sock = lan.path("flags.sock");
    // -o, not -p: -p is accepted with a warning, which is not the error.
    let passfile = lan.write("carp.pass", "pw\n", 0o600);
    let ucarp = |extra: &[&str]| {
        let mut v = vec![
            "--interface=eth0".to_string(),
            format!("--srcip={}", lan.hosts[0].ip),
            format!("--passfile={}", passfile.display()),
            format!("--status-socket={}", sock.display()),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let vip = format!("--addr={}", lan.addr(10));
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        ("vhid 0", ucarp(&["--vhid=0", &vip]), vec!["--vhid", "0"]),
        (
            "advskew 255",
            ucarp(&["--vhid=1", &vip, "--advskew=255"]),
            vec!["--advskew", "255"],
        ),
        (
            "bad address",
            ucarp(&["--vhid=1", "--addr=10.212.2.300"]),
            vec!["--addr", "10.212.2.300"],
        ),
        (
            "unknown flag",
            ucarp(&["--vhid=1", &vip, "--frobnicate"]),
            vec!["--frobnicate"],
        ),
        ("no vhid", ucarp(&[&vip]), vec!["--vhid"]),
        (
            "password too long",
            {
                let mut v = ucarp(&["--vhid=1", &vip]);
                v[2] = "--pass=123456789012345678901".to_string();
                v
            },
            vec!["--pass"],
        ),
        // A missing interface is not refused: it is waited for
        // (tests/daemon_late_iface.rs).
    ];
    for (what, args, needles) in cases {
        refused(&lan, what, &args, &needles);
    }
    assert!(
        !Path::new(&sock).exists(),
        "a refused run left its status socket"
    );
}

#[test]
fn sigkilled_daemon_leaves_no_xdp_program() {
    if !require_root("sigkilled_daemon_leaves_no_xdp_program") {
        return;
    }
    let lan = Lan::new("cbkill", 212, 3, 1);
    let mut d = lan.daemon(0, "d0", &[Inst::new(10, lan.addr(10), 0)]);
    d.wait_state(10, "MASTER");
    let st = d.status().expect("status");
    assert!(
        xdp_attached(&lan.hosts[0].ns, "eth0"),
        "no XDP program while running (nothing to test): {}",
        st["interfaces"]
    );
    d.proc.kill9();
    let start = Instant::now();
    while xdp_attached(&lan.hosts[0].ns, "eth0") && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !xdp_attached(&lan.hosts[0].ns, "eth0"),
        "XDP program left on eth0 after SIGKILL:\n{}",
        lan.hosts[0].ns.ip(&["-d", "link", "show", "dev", "eth0"])
    );
}

#[test]
fn restarted_daemon_removes_its_stale_vip() {
    if !require_root("restarted_daemon_removes_its_stale_vip") {
        return;
    }
    let lan = Lan::new("cbstale", 212, 4, 2);
    let vip = lan.addr(10);
    let mut a = lan.daemon(0, "d0", &[Inst::new(10, vip, 0)]);
    a.wait_state(10, "MASTER");
    // What a crashed run of host 1 would have left behind.
    lan.hosts[1]
        .ns
        .ip(&["addr", "add", &format!("{vip}/24"), "dev", "eth0"]);
    assert_eq!(lan.holders(vip), [0, 1]);
    let mut b = lan.daemon(1, "d1", &[Inst::new(10, vip, 100)]);
    b.wait_state(10, "BACKUP");
    eventually("the stale VIP removed from host 1", || {
        (!has_addr(&lan.hosts[1].ns, vip)).then_some(())
    });
    assert_eq!(lan.holders(vip), [0]);
    assert_eq!(b.state(10).as_deref(), Some("BACKUP"));
    assert_eq!(a.state(10).as_deref(), Some("MASTER"));
}
