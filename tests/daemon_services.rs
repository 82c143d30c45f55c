//! `carpd-xdp` doing an operator's job on a bridged LAN of namespaces
//! (issue 4's acceptance):
//!
//! - a failing health check demotes the master, which gives the VIP away
//!   although it is up, and takes it back (preempt) when the check passes;
//! - the shipped active/active example (`dist/examples/active-active-host-
//!   {a,b}.toml`, addresses and health checks adapted): each host masters its
//!   own VIP, one host's link down gives both VIPs to the other, its return
//!   gives its VIP back;
//! - SIGHUP reload: changing another instance and adding one leaves the
//!   untouched VIP where it is (no lost echo, no state transition), a broken
//!   file keeps the old configuration.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{eventually, has_addr, interval, master_down, Daemon, Inst, Lan};
use common::probe::{Probe, PERIOD};
use common::require_root;

/// Slack the issue allows on top of the protocol bound.
const SLACK: Duration = Duration::from_millis(50);

fn wait_holders(lan: &Lan, last: u8, expected: &[usize]) {
    let vip = lan.addr(last);
    eventually(&format!("{vip} on hosts {expected:?} only"), || {
        (lan.holders(vip) == expected).then_some(())
    });
}

#[test]
fn failing_health_check_moves_the_vip_and_recovery_takes_it_back() {
    if !require_root("failing_health_check_moves_the_vip_and_recovery_takes_it_back") {
        return;
    }
    let lan = Lan::new("cshealth", 210, 6, 2);
    let vip = lan.addr(10);
    let flag = lan.write("service-is-up", "", 0o644);
    let check = format!(
        "\n[[instance.health_check]]\ncommand = [\"/usr/bin/test\", \"-f\", \"{}\"]\n\
         interval_secs = 1\ntimeout_secs = 1\nweight = 200\n",
        flag.display()
    );
    let mut a = lan.daemon(0, "d0", &[Inst::new(10, vip, 0).extra(&check)]);
    let mut b = lan.daemon(1, "d1", &[Inst::new(10, vip, 50)]);
    a.wait_state(10, "MASTER");
    b.wait_state(10, "BACKUP");
    wait_holders(&lan, 10, &[0]);
    assert_eq!(a.instance(10).expect("status")["demote"], 0);

    // The service dies: host 0 is demoted and host 1 (preempt) takes over.
    std::fs::remove_file(&flag).unwrap();
    b.wait_state(10, "MASTER");
    a.wait_state(10, "BACKUP");
    wait_holders(&lan, 10, &[1]);
    let inst = a.instance(10).expect("status");
    assert_eq!(inst["demote"], 200, "demote while the check fails: {inst}");
    assert_eq!(
        a.proc.child.0.try_wait().expect("try_wait"),
        None,
        "the daemon of the demoted host must keep running"
    );

    // The service is back: demote returns to 0 and host 0 preempts.
    std::fs::write(&flag, "").unwrap();
    a.wait_state(10, "MASTER");
    b.wait_state(10, "BACKUP");
    wait_holders(&lan, 10, &[0]);
    assert_eq!(a.instance(10).expect("status")["demote"], 0);
}

/// The shipped example for one host, adapted: 192.0.2.0/24 becomes the
/// LAN's, the status socket goes to the scratch dir, logs to stderr, the
/// health checks always pass. Each substitution must apply, so that the
/// test notices when the example changes shape.
fn adapt_example(lan: &Lan, host: char, sock: &std::path::Path) -> String {
    let path = format!(
        "{}/../dist/examples/active-active-host-{host}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let net = lan.addr(0).to_string();
    let net = net.trim_end_matches('0');
    assert!(text.contains("192.0.2."), "{path}: no 192.0.2. addresses");
    let mut out = String::new();
    let (mut sockets, mut checks) = (0, 0);
    for line in text.replace("192.0.2.", net).lines() {
        if line.trim_start().starts_with("status_socket") {
            out += &format!(
                "status_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\n",
                sock.display()
            );
            sockets += 1;
        } else if line.trim_start().starts_with("command") {
            out += "command = [\"/usr/bin/true\"]\n";
            checks += 1;
        } else {
            out += line;
            out.push('\n');
        }
    }
    assert_eq!(sockets, 1, "{path}: expected one status_socket line");
    assert!(checks >= 1, "{path}: expected health checks");
    out
}

/// advskew of `vhid` in an adapted example.
fn advskew(text: &str, vhid: i64) -> u8 {
    let doc: toml::Table = text.parse().expect("example parses as TOML");
    let inst = doc["instance"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["vhid"].as_integer() == Some(vhid))
        .expect("vhid in example");
    inst.get("advskew")
        .and_then(|v| v.as_integer())
        .unwrap_or(0) as u8
}

fn start_example(lan: &Lan, i: usize, host: char) -> (Daemon, String) {
    let name = format!("host-{host}");
    let sock = lan.path(&format!("{name}.sock"));
    let text = adapt_example(lan, host, &sock);
    let config = lan.write(&format!("{name}.toml"), &text, 0o644);
    let args = vec!["--config".to_string(), config.display().to_string()];
    let env = [
        ("CARPD_WEB_PASS", "web-secret"),
        ("CARPD_MAIL_PASS", "mail-secret"),
    ];
    (Daemon::start(lan, i, &name, &args, &env, sock), text)
}

#[test]
fn active_active_example_each_host_masters_its_vip_and_backs_up_the_other() {
    if !require_root("active_active_example_each_host_masters_its_vip_and_backs_up_the_other") {
        return;
    }
    let lan = Lan::new("csaa", 210, 7, 2);
    let (mut a, _) = start_example(&lan, 0, 'a');
    let (mut b, b_text) = start_example(&lan, 1, 'b');
    a.wait_state(10, "MASTER");
    a.wait_state(20, "BACKUP");
    b.wait_state(10, "BACKUP");
    b.wait_state(20, "MASTER");
    wait_holders(&lan, 10, &[0]);
    wait_holders(&lan, 20, &[1]);
    let labels = lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    let web = labels
        .lines()
        .find(|l| l.contains(&format!("inet {}/", lan.addr(10))))
        .expect("VIP-web line");
    assert!(web.contains("eth0:web"), "VIP-web without its label: {web}");

    // Host A's cable is pulled: B serves both.
    let probe = Probe::start(&lan.client, "eth0", lan.addr(10));
    probe.wait_reply_from(lan.hosts[0].mac, Instant::now());
    lan.cut(0);
    let fault = Instant::now();
    b.wait_state(10, "MASTER");
    wait_holders(&lan, 10, &[1]);
    wait_holders(&lan, 20, &[1]);
    probe.wait_reply_from(lan.hosts[1].mac, fault);
    let skew = advskew(&b_text, 10);
    let bound = master_down(1, skew, 3) + interval(1, skew) + SLACK;
    let outage = probe.snapshot().outage_after(fault);
    eprintln!("measured outage {outage:?}");
    assert!(
        outage <= bound,
        "VIP-web outage {outage:?}, bound {bound:?}"
    );

    // A returns and takes VIP-web back; VIP-mail stays on B.
    lan.restore(0);
    let back = Instant::now();
    a.wait_state(10, "MASTER");
    wait_holders(&lan, 10, &[0]);
    wait_holders(&lan, 20, &[1]);
    probe.wait_reply_from(lan.hosts[0].mac, back);
    a.wait_state(20, "BACKUP");
    b.wait_state(20, "MASTER");
}

#[test]
fn sighup_reload_leaves_the_untouched_vip_in_place() {
    if !require_root("sighup_reload_leaves_the_untouched_vip_in_place") {
        return;
    }
    let lan = Lan::new("cshup", 210, 8, 2);
    let (v10, v20, v30) = (lan.addr(10), lan.addr(20), lan.addr(30));
    let mut a = lan.daemon(0, "d0", &[Inst::new(10, v10, 0), Inst::new(20, v20, 0)]);
    let mut b = lan.daemon(1, "d1", &[Inst::new(10, v10, 100)]);
    a.wait_state(10, "MASTER");
    a.wait_state(20, "MASTER");
    b.wait_state(10, "BACKUP");
    wait_holders(&lan, 10, &[0]);
    let before = a.status().expect("status");
    let before_10 = a.instance(10).expect("status");
    let before_b = b.instance(10).expect("status");

    let probe = Probe::start(&lan.client, "eth0", v10);
    probe.wait_reply_from(lan.hosts[0].mac, Instant::now());
    // Same file, another skew for vhid 20 and a new vhid 30.
    let sock = a.sock.clone();
    let text = lan.config(
        0,
        &sock,
        &[
            Inst::new(10, v10, 0),
            Inst::new(20, v20, 20),
            Inst::new(30, v30, 0),
        ],
    );
    lan.write("d0.toml", &text, 0o644);
    let hup = Instant::now();
    a.signal(libc::SIGHUP);
    // Until the reload shows, and a master-down interval after it, the VIP
    // of vhid 10 must never leave host 0.
    let check = |lan: &Lan| {
        assert_eq!(lan.holders(v10), [0], "VIP of vhid 10 flapped on reload");
    };
    eventually(
        "the reload applied (vhid 20 advskew 20, vhid 30 MASTER)",
        || {
            check(&lan);
            let st = a.status()?;
            let find = |v: u64| {
                st["instances"]
                    .as_array()?
                    .iter()
                    .find(|i| i["vhid"] == v)
                    .cloned()
            };
            let (i20, i30) = (find(20)?, find(30)?);
            (i20["advskew"] == 20 && i30["state"] == "MASTER").then_some(())
        },
    );
    let watch = Instant::now();
    while watch.elapsed() < Inst::new(10, v10, 100).master_down() {
        check(&lan);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(has_addr(&lan.hosts[0].ns, v30), "vhid 30's VIP not added");
    let end = Instant::now();
    let record = probe.stop();
    let lost = record.unanswered(hup, end - 5 * PERIOD);
    assert!(
        lost.is_empty(),
        "echo requests lost across the reload: {lost:?}"
    );

    let after = a.status().expect("status");
    assert_eq!(after["pid"], before["pid"], "the daemon restarted");
    let after_10 = a.instance(10).expect("status");
    assert_eq!(after_10["state"], "MASTER");
    assert_eq!(
        after_10["transitions"], before_10["transitions"],
        "vhid 10 changed state on reload: before {before_10}, after {after_10}"
    );
    let after_b = b.instance(10).expect("status");
    assert_eq!(
        after_b["transitions"], before_b["transitions"],
        "host 1 changed state during host 0's reload: {after_b}"
    );

    // A broken file on SIGHUP: the old configuration stays, nothing moves.
    lan.write("d0.toml", "[[instance]]\nvhid = \n", 0o644);
    a.signal(libc::SIGHUP);
    let broken = Instant::now();
    while broken.elapsed() < Duration::from_secs(2) {
        check(&lan);
        assert!(
            has_addr(&lan.hosts[0].ns, v30),
            "vhid 30 dropped by a broken reload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        a.proc.child.0.try_wait().expect("try_wait"),
        None,
        "a broken file on SIGHUP stopped the daemon"
    );
    let st = a.instance(10).expect("status after a broken reload");
    assert_eq!(st["transitions"], before_10["transitions"], "{st}");

    // An unquoted password on SIGHUP: refused, and its value is in no log line.
    lan.write(
        "d0.toml",
        "[[instance]]\ninterface = \"eth0\"\nvhid = 10\nvips = [\"192.0.2.1\"]\npassword = 87654321\n",
        0o644,
    );
    a.signal(libc::SIGHUP);
    eventually("the reload error in the log", || {
        a.proc
            .stderr_text()
            .contains("instance[0].password: an integer (the value is a secret, not shown)")
            .then_some(())
    });
    assert!(
        !a.proc.stderr_text().contains("87654321"),
        "the password is in the log: {}",
        a.proc.stderr_text()
    );
}
