//! `carpd-xdp` through interface churn, reloads that fail, shutdowns with
//! hanging scripts and addresses that cannot be added, on a bridged LAN of
//! namespaces (issue "one master under scale, pauses, interface churn,
//! reloads and failing scripts"):
//!
//! - an interface deleted and created again comes back by itself: XDP
//!   attached again, the instance BACKUP or MASTER as its priority says,
//!   the VIP answering, status naming the new index; a renamed one is left
//!   (INIT, no ifindex, XDP detached) and followed back under its name;
//! - a reload whose changed instance cannot start keeps the old one running
//!   (still MASTER, VIP in place, no transition);
//! - with `-z` and a hanging down script on one instance, SIGTERM still
//!   sends every leave advert and removes every VIP at once: the backups of
//!   both instances take over within one interval + 50 ms;
//! - a VIP that cannot be added is retried and, while it fails, the
//!   instance is demoted (alone, it stays master; with a backup, the backup
//!   takes the VIPs); once the obstacle is gone the VIP is added and the
//!   demote lifted.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{eventually, has_addr, xdp_attached, Daemon, Inst, Lan};
use common::probe::Probe;
use common::require_root;
use serde_json::Value;

/// Slack the issue allows on top of the protocol bound.
const SLACK: Duration = Duration::from_millis(50);

/// Waits until `d` masters (or backs up) `vhid` and the VIP `.vhid` is on
/// host `holder` only.
fn wait_holder(lan: &Lan, vhid: u8, holder: usize) {
    let vip = lan.addr(vhid);
    eventually(&format!("{vip} on host {holder} only"), || {
        (lan.holders(vip) == [holder]).then_some(())
    });
}

/// The receive-path interfaces of a status report: (name, ifindex).
fn interfaces(status: &Value) -> Vec<(String, u64)> {
    status["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().expect("name").to_string(),
                i["ifindex"].as_u64().expect("ifindex"),
            )
        })
        .collect()
}

/// Checks that daemon `d` is bound to `eth0` at `ifindex` again: the
/// instance and the receive path name it, and XDP is attached.
fn wait_bound(lan: &Lan, d: &Daemon, vhid: u8, ifindex: u32) {
    let host = d.host;
    eventually(
        &format!("host {host} bound to eth0 ifindex {ifindex}"),
        || {
            let st = d.status()?;
            let inst = st["instances"]
                .as_array()?
                .iter()
                .find(|i| i["vhid"].as_u64() == Some(vhid.into()))?
                .clone();
            (inst["ifindex"].as_u64() == Some(ifindex.into())
                && interfaces(&st) == [("eth0".to_string(), u64::from(ifindex))])
            .then_some(())
        },
    );
    assert!(
        xdp_attached(&lan.hosts[host].ns, "eth0"),
        "XDP not attached to the re-created eth0 of host {host}"
    );
}

#[test]
fn deleted_and_recreated_interface_comes_back() {
    if !require_root("deleted_and_recreated_interface_comes_back") {
        return;
    }
    let lan = Lan::new("lcre", 211, 1, 2);
    let vip = lan.addr(10);
    let mut d0 = lan.daemon(0, "d0", &[Inst::new(10, vip, 0)]);
    // Host 1 looks its advert source up on the interface.
    let mut d1 = lan.daemon(1, "d1", &[Inst::new(10, vip, 100).auto_srcip()]);
    d0.wait_state(10, "MASTER");
    d1.wait_state(10, "BACKUP");
    wait_holder(&lan, 10, 0);
    assert!(xdp_attached(&lan.hosts[1].ns, "eth0"));

    // The backup's interface is re-created, its address added after it is
    // up (binding waits for the address): it comes back as backup.
    let new1 = lan.recreate_with(1, true);
    wait_bound(&lan, &d1, 10, new1);
    d1.wait_state(10, "BACKUP");
    let inst = d1.instance(10).expect("status");
    assert_eq!(
        inst["master"].as_str(),
        Some(lan.hosts[0].ip.to_string().as_str()),
        "host 1 must hear host 0's adverts on its new interface: {inst}"
    );

    // The master's: host 1 takes over meanwhile, host 0 comes back, and as
    // the preferred host (preempt) takes the VIP back.
    let new0 = lan.recreate(0);
    wait_bound(&lan, &d0, 10, new0);
    d0.wait_state(10, "MASTER");
    d1.wait_state(10, "BACKUP");
    wait_holder(&lan, 10, 0);
    assert_eq!(lan.hosts[0].ns.mac("eth0"), lan.hosts[0].mac);
    let probe = Probe::start(&lan.client, "eth0", vip);
    probe.wait_reply_from(lan.hosts[0].mac, Instant::now());
    let inst = d0.instance(10).expect("status");
    assert_eq!(inst["demote"], 0, "{inst}");
}

#[test]
fn renamed_interface_is_left_and_followed_back() {
    if !require_root("renamed_interface_is_left_and_followed_back") {
        return;
    }
    let lan = Lan::new("lren", 211, 5, 1);
    let vip = lan.addr(10);
    let mut d0 = lan.daemon(0, "d0", &[Inst::new(10, vip, 0)]);
    d0.wait_state(10, "MASTER");
    wait_holder(&lan, 10, 0);
    let ns = &lan.hosts[0].ns;
    let ifindex = ns.ifindex("eth0");

    // Renamed (it must be down for that): the instance has no interface.
    ns.ip(&["link", "set", "eth0", "down"]);
    ns.ip(&["link", "set", "eth0", "name", "lan0"]);
    d0.wait_state(10, "INIT");
    let st = eventually("the instance without an interface", || {
        d0.status()
            .filter(|st| st["instances"][0]["ifindex"].is_null() && interfaces(st).is_empty())
    });
    assert!(
        !xdp_attached(ns, "lan0"),
        "XDP left on the renamed interface: {st}"
    );

    // Named eth0 again and up: followed back.
    ns.ip(&["link", "set", "lan0", "name", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    wait_bound(&lan, &d0, 10, ifindex);
    d0.wait_state(10, "MASTER");
    wait_holder(&lan, 10, 0);
}

#[test]
fn reload_whose_instance_cannot_start_keeps_the_old_one() {
    if !require_root("reload_whose_instance_cannot_start_keeps_the_old_one") {
        return;
    }
    let lan = Lan::new("lrel", 211, 2, 2);
    let vip = lan.addr(10);
    let inst0 = Inst::new(10, vip, 0);
    let mut d0 = lan.daemon(0, "d0", std::slice::from_ref(&inst0));
    let mut d1 = lan.daemon(1, "d1", &[Inst::new(10, vip, 100)]);
    d0.wait_state(10, "MASTER");
    d1.wait_state(10, "BACKUP");
    wait_holder(&lan, 10, 0);
    let before = d0.instance(10).expect("status");

    // The operator adds an IPv6 VIP (sources now looked up on the
    // interface), but IPv6 is off on host 0's eth0: the file is valid, the
    // instance cannot start (no link-local address to send IPv6 adverts
    // from).
    common::run_ok(
        lan.hosts[0]
            .ns
            .command("sysctl")
            .args(["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]),
    );
    let mut changed = inst0.clone().auto_srcip();
    changed.vips.push("fd00:211:2::10/64".to_string());
    let sock = d0.sock.clone();
    lan.write("d0.toml", &lan.config(0, &sock, &[changed]), 0o644);
    d0.signal(libc::SIGHUP);
    eventually("the reload error in the log", || {
        d0.proc
            .stderr_text()
            .contains("keeps its previous configuration")
            .then_some(())
    });
    assert!(
        d0.proc.stderr_text().contains("IPv6 link-local"),
        "the error must say why: {}",
        d0.proc.stderr_text()
    );
    // The old instance runs on: MASTER, its VIP, no transition, one VIP.
    let after = d0.instance(10).expect("vhid 10 must still be served");
    assert_eq!(after["state"], "MASTER", "{after}");
    assert_eq!(after["transitions"], before["transitions"], "{after}");
    assert_eq!(after["vips"], before["vips"], "{after}");
    assert!(has_addr(&lan.hosts[0].ns, vip), "the VIP left host 0");
    // Still advertising: the backup stays backup past its master-down.
    let watch = Instant::now();
    while watch.elapsed() < Inst::new(10, vip, 100).master_down() + SLACK {
        assert_eq!(d1.state(10).as_deref(), Some("BACKUP"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lan.holders(vip), [0]);
    assert_eq!(d0.proc.child.0.try_wait().expect("try_wait"), None);
}

#[test]
fn hanging_down_script_does_not_delay_other_instances_leave() {
    if !require_root("hanging_down_script_does_not_delay_other_instances_leave") {
        return;
    }
    let lan = Lan::new("lhang", 211, 3, 2);
    let (v10, v20) = (lan.addr(10), lan.addr(20));
    let hang = lan.path("hang");
    let script = lan.write(
        "down.sh",
        &format!(
            "#!/bin/sh\n[ -e {} ] && exec sleep 60\nexit 0\n",
            hang.display()
        ),
        0o755,
    );
    // vhid 10 first: its down script (-z) hangs until its 5 s timeout.
    let z = format!(
        "shutdown_on_exit = true\ndownscript = \"{}\"\nscript_timeout_secs = 5\n",
        script.display()
    );
    let mut d0 = lan.daemon(
        0,
        "d0",
        &[Inst::new(10, v10, 0).extra(&z), Inst::new(20, v20, 0)],
    );
    let backups = [Inst::new(10, v10, 100), Inst::new(20, v20, 100)];
    let mut d1 = lan.daemon(1, "d1", &backups);
    for vhid in [10, 20] {
        d0.wait_state(vhid, "MASTER");
        d1.wait_state(vhid, "BACKUP");
        wait_holder(&lan, vhid, 0);
    }
    let probes = [v10, v20].map(|v| {
        let p = Probe::start(&lan.client, "eth0", v);
        p.wait_reply_from(lan.hosts[0].mac, Instant::now());
        p
    });
    lan.write("hang", "", 0o644);
    d0.signal(libc::SIGTERM);
    let fault = Instant::now();
    for (probe, vip) in probes.iter().zip([v10, v20]) {
        probe.wait_reply_from(lan.hosts[1].mac, fault);
        assert!(
            !has_addr(&lan.hosts[0].ns, vip),
            "{vip} still on host 0 once host 1 answers"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    for (probe, (vip, inst)) in probes.into_iter().zip([v10, v20].iter().zip(&backups)) {
        let record = probe.stop();
        let outage = record.outage_after(fault);
        let bound = inst.interval() + SLACK;
        eprintln!("{vip}: outage {outage:?}");
        assert!(
            outage <= bound,
            "{vip}: outage {outage:?} after SIGTERM, bound {bound:?}: the leave advert \
             must not wait for another instance's down script"
        );
    }
    for vhid in [10, 20] {
        assert_eq!(d1.state(vhid).as_deref(), Some("MASTER"));
    }
    // The daemon exits once the hanging script has timed out, not later
    // than its deadline (bounded wait: only a hang guard).
    let status = d0
        .proc
        .wait_exit(Duration::from_secs(20))
        .expect("daemon still running 20 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status: {status}");
    assert!(
        d0.proc.stderr_text().contains("timed out"),
        "the down script must have run and timed out: {}",
        d0.proc.stderr_text()
    );
    assert!(!xdp_attached(&lan.hosts[0].ns, "eth0"));
}

/// Turns IPv6 on `eth0` of host `i` off (`true`) or on.
fn ipv6_disabled(lan: &Lan, i: usize, off: bool) {
    let setting = format!("net.ipv6.conf.eth0.disable_ipv6={}", u8::from(off));
    common::run_ok(
        lan.hosts[i]
            .ns
            .command("sysctl")
            .args(["-qw", setting.as_str()]),
    );
}

/// True when `eth0` of `ns` carries the IPv6 address `addr`.
fn has_addr6(ns: &common::Netns, addr: &str) -> bool {
    ns.ip(&["-o", "-6", "addr", "show", "dev", "eth0"])
        .contains(&format!("inet6 {addr}/"))
}

/// Waits for the IPv6 link-local address of every host's `eth0` (adverts
/// for IPv6 VIPs are sent from it).
fn wait_link_local(lan: &Lan) {
    for h in &lan.hosts {
        eventually(&format!("a link-local address on {}", h.ns.name()), || {
            h.ns.ip(&["-o", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
                .contains("fe80")
                .then_some(())
        });
    }
}

#[test]
fn failed_vip_add_is_retried_and_demotes_while_failing() {
    if !require_root("failed_vip_add_is_retried_and_demotes_while_failing") {
        return;
    }
    let lan = Lan::new("lvip", 211, 4, 1);
    wait_link_local(&lan);
    let vip = lan.addr(10);
    let vip6 = "fd00:211:4::10";
    let mut inst = Inst::new(10, vip, 0).auto_srcip();
    inst.vips.push(format!("{vip6}/64"));
    let mut d0 = lan.daemon(0, "d0", &[inst]);
    d0.wait_state(10, "BACKUP");
    // Before the host takes over (master-down, 3 s): IPv6 off on its eth0,
    // so adding the IPv6 VIP fails (EACCES) until it is on again.
    ipv6_disabled(&lan, 0, true);
    d0.wait_state(10, "MASTER");
    // The add fails and is retried; while it fails the instance is demoted
    // (it stays master: no other host is there to take over).
    let demoted = eventually("the instance demoted", || {
        d0.instance(10).filter(|i| i["demote"] == 255)
    });
    assert_eq!(demoted["state"], "MASTER", "{demoted}");
    assert!(has_addr(&lan.hosts[0].ns, vip), "the IPv4 VIP is added");
    assert!(!has_addr6(&lan.hosts[0].ns, vip6));
    eventually("a second retry", || {
        (d0.proc.stderr_text().matches("trying again").count() >= 2).then_some(())
    });

    // The obstacle goes: the next retry adds the VIP and lifts the demote.
    ipv6_disabled(&lan, 0, false);
    eventually("the IPv6 VIP", || {
        has_addr6(&lan.hosts[0].ns, vip6).then_some(())
    });
    let inst = eventually("the demote lifted", || {
        d0.instance(10).filter(|i| i["demote"] == 0)
    });
    assert_eq!(inst["state"], "MASTER", "{inst}");
    assert!(has_addr(&lan.hosts[0].ns, vip));
    assert!(d0.proc.stderr_text().contains("VIPs added after"));
}

#[test]
fn failed_vip_add_hands_the_vips_to_a_host_that_can_hold_them() {
    if !require_root("failed_vip_add_hands_the_vips_to_a_host_that_can_hold_them") {
        return;
    }
    let lan = Lan::new("lvip2", 211, 6, 2);
    wait_link_local(&lan);
    let vip = lan.addr(10);
    let vip6 = "fd00:211:6::10";
    let inst = |advskew| {
        let mut i = Inst::new(10, vip, advskew).auto_srcip();
        i.vips.push(format!("{vip6}/64"));
        i
    };
    let mut d0 = lan.daemon(0, "d0", &[inst(0)]);
    d0.wait_state(10, "BACKUP");
    ipv6_disabled(&lan, 0, true);
    let mut d1 = lan.daemon(1, "d1", &[inst(100)]);
    // Host 0 is preferred, takes over, cannot add the IPv6 VIP, is demoted
    // and host 1 takes both VIPs although it is less preferred.
    d1.wait_state(10, "MASTER");
    d0.wait_state(10, "BACKUP");
    wait_holder(&lan, 10, 1);
    eventually("the IPv6 VIP on host 1", || {
        has_addr6(&lan.hosts[1].ns, vip6).then_some(())
    });
    let demoted = d0.instance(10).expect("status");
    assert_eq!(demoted["demote"], 255, "{demoted}");
    assert!(!has_addr6(&lan.hosts[0].ns, vip6));

    // IPv6 back on host 0: once its demote is lifted it takes over again
    // (preempt) and this time holds both VIPs.
    ipv6_disabled(&lan, 0, false);
    d0.wait_state(10, "MASTER");
    d1.wait_state(10, "BACKUP");
    wait_holder(&lan, 10, 0);
    eventually("the IPv6 VIP on host 0 only", || {
        (has_addr6(&lan.hosts[0].ns, vip6) && !has_addr6(&lan.hosts[1].ns, vip6)).then_some(())
    });
    let inst = d0.instance(10).expect("status");
    assert_eq!(inst["demote"], 0, "{inst}");
}
