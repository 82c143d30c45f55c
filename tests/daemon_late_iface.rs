//! An interface missing at start (issue 18, item 5): the daemon does not
//! stop; the instance waits in INIT and `carpd-xdp status` says why, and
//! when the interface appears the instance starts (receive path attached,
//! election run, VIP held), as an interface that disappears later and comes
//! back is followed. On SIGTERM nothing is left. The same holds for the
//! UCARP-style command line (where UCARP itself would exit).

mod common;

use std::process::Command;
use std::time::Duration;

use carp_testnet::Port;
use common::cluster::{xdp_attached, Daemon, Inst, Lan, CARPD};
use common::{must, require_root};

const VHID: u8 = 61;

/// `ip -o -4 addr show dev late0` in host 0, empty while there is none.
fn late0_addresses(lan: &Lan) -> String {
    lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show"])
        .lines()
        .filter(|l| l.contains(" late0 ") || l.contains(" late0:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn missing_interface_is_waited_for_then_started() {
    if !require_root("missing_interface_is_waited_for_then_started") {
        return;
    }
    let lan = Lan::new("late", 211, 61, 1);
    let vip = lan.addr(61);
    let log = lan.path("scripts.log");
    let script = |kind: &str| {
        let text = format!("#!/bin/sh\necho \"{kind} $*\" >> {}\n", log.display());
        lan.write(&format!("{kind}.sh"), &text, 0o755)
    };
    let (up, down) = (script("up"), script("down"));
    let scripts_run = || std::fs::read_to_string(&log).unwrap_or_default();
    // No srcip: the advert source is looked up on late0 once it exists.
    let inst = Inst::new(VHID, vip, 0).auto_srcip().extra(&format!(
        "upscript = \"{}\"\ndownscript = \"{}\"\n",
        up.display(),
        down.display()
    ));
    let sock = lan.path("late.sock");
    let text = lan
        .config(0, &sock, &[inst])
        .replace("interface = \"eth0\"", "interface = \"late0\"");
    assert!(text.contains("\"late0\""), "{text}");
    let config = lan.write("late.toml", &text, 0o644);
    let args = vec!["--config".to_string(), config.display().to_string()];
    let mut d = Daemon::start(&lan, 0, "late", &args, &[], sock.clone());

    // Waiting: INIT, no interface, and the reason, in JSON and in the table.
    d.wait_state(VHID, "INIT");
    let st = d.instance(VHID).expect("status");
    assert!(st["ifindex"].is_null(), "{st}");
    assert_eq!(
        st["last_change_reason"].as_str(),
        Some("waiting for interface late0 to appear"),
        "{st}"
    );
    let table = Command::new(CARPD)
        .args(["status", "--socket"])
        .arg(&sock)
        .output()
        .expect("carpd-xdp status");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("INIT (no interface)")
            && table.contains("waiting for interface late0 to appear"),
        "{table}"
    );
    assert_eq!(d.proc.child.0.try_wait().expect("try_wait"), None);
    assert!(
        d.proc
            .stderr_text()
            .contains("no interface named \"late0\" yet"),
        "{}",
        d.proc.stderr_text()
    );
    // No script runs against a missing interface (the start's down script
    // runs when the instance really starts).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.state(VHID).as_deref(), Some("INIT"));
    assert_eq!(scripts_run(), "", "scripts ran while waiting");

    // The interface appears (address first, then up, as ifup does).
    let cidr = format!("{}/24", lan.addr(1));
    let how = Port {
        cidr: Some(&cidr),
        down: true,
        ..Port::default()
    };
    must(lan.switch.attach(&lan.hosts[0].ns, "late0", "lp0", how));
    lan.hosts[0].ns.ip(&["link", "set", "late0", "up"]);
    d.wait_state(VHID, "MASTER");
    let st = d.instance(VHID).expect("status");
    assert_eq!(
        st["ifindex"].as_u64(),
        Some(u64::from(lan.hosts[0].ns.ifindex("late0"))),
        "{st}"
    );
    assert_ne!(
        st["last_change_reason"].as_str(),
        Some("waiting for interface late0 to appear"),
        "{st}"
    );
    assert!(
        late0_addresses(&lan).contains(&format!("inet {vip}/")),
        "VIP not on late0:\n{}",
        late0_addresses(&lan)
    );
    assert!(
        xdp_attached(&lan.hosts[0].ns, "late0"),
        "no receive program on late0"
    );
    // Scripts as at any start: the down script once (BACKUP), then up.
    common::cluster::eventually("the up script", || {
        scripts_run().contains("up ").then_some(())
    });
    assert_eq!(
        scripts_run(),
        format!("down late0 {vip}\nup late0 {vip}\n"),
        "scripts"
    );
    // The receive path reports late0.
    let st = d.status().expect("status");
    let iface = st["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "late0"))
        .cloned();
    assert!(iface.is_some(), "late0 not in the receive path: {st}");

    // SIGTERM: exit 0, no VIP, no program, no socket.
    d.signal(libc::SIGTERM);
    let status = d
        .proc
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        !late0_addresses(&lan).contains(&format!("inet {vip}/")),
        "VIP left:\n{}",
        late0_addresses(&lan)
    );
    assert!(
        !xdp_attached(&lan.hosts[0].ns, "late0"),
        "XDP left on late0"
    );
    assert!(!sock.exists(), "status socket left");
}

#[test]
fn ucarp_style_command_line_waits_for_its_interface_too() {
    if !require_root("ucarp_style_command_line_waits_for_its_interface_too") {
        return;
    }
    let lan = Lan::new("latu", 211, 62, 1);
    let vip = lan.addr(62);
    let sock = lan.path("ucarp.sock");
    let passfile = lan.write("carp.pass", "pw\n", 0o600);
    let args: Vec<String> = [
        "--interface=late1:carp0".to_string(),
        "--vhid=62".to_string(),
        format!("--passfile={}", passfile.display()),
        format!("--addr={vip}"),
        format!("--status-socket={}", sock.display()),
    ]
    .into();
    let mut d = Daemon::start(&lan, 0, "latu", &args, &[], sock.clone());
    d.wait_state(62, "INIT");
    let st = d.instance(62).expect("status");
    assert_eq!(
        st["last_change_reason"].as_str(),
        Some("waiting for interface late1 to appear"),
        "{st}"
    );
    let cidr = format!("{}/24", lan.addr(1));
    let how = Port {
        cidr: Some(&cidr),
        ..Port::default()
    };
    must(lan.switch.attach(&lan.hosts[0].ns, "late1", "lp1", how));
    d.wait_state(62, "MASTER");
    let addrs = lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "late1"]);
    assert!(
        addrs
            .lines()
            .any(|l| l.contains(&format!("inet {vip}/")) && l.contains("late1:carp0")),
        "VIP with its label not on late1:\n{addrs}"
    );
    d.signal(libc::SIGTERM);
    let status = d
        .proc
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    let addrs = lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "late1"]);
    assert!(
        !addrs.contains(&format!("inet {vip}/")),
        "VIP left:\n{addrs}"
    );
    assert!(
        !xdp_attached(&lan.hosts[0].ns, "late1"),
        "XDP left on late1"
    );
    assert!(!sock.exists(), "status socket left");
}
