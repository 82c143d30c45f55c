//! `virtual_mac = true` (issue 20.1): two carpd-xdp hosts, a dual-stack
//! vhid and a second IPv4 vhid on the same interface. The master answers ARP and neighbour solicitations for the VIPs
//! from `00:00:5e:00:01:<vhid>` (a client learns that MAC), and a client
//! whose neighbour entries are pinned (permanent) to that MAC reaches both
//! VIPs before failover, after failover (the master's cable pulled) and
//! after failback (preempt) and after a reload that replaces the instances.
//! The backup has no macvlan at all; SIGTERM leaves no macvlan, no VIP and
//! the parent's `arp_ignore` and `arp_announce` as they were; a macvlan
//! left by a SIGKILLed daemon is removed at its next start.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::cluster::{eventually, Daemon, Lan};
use common::{require_root, Netns};

const VHID: u8 = 42;
const VMAC: &str = "00:00:5e:00:01:2a";
const VIP4: &str = "10.217.1.10";
const VIP6: &str = "fd00:42::10";
/// The second vhid on the same interface, its MAC and VIP.
const VHID2: u8 = 43;
const VMAC2: &str = "00:00:5e:00:01:2b";
const VIP4B: &str = "10.217.1.11";

/// Writes the configuration `<name>.toml`; returns its path and the status
/// socket's.
fn write_config(lan: &Lan, name: &str, advskew: u8, preempt: bool) -> (PathBuf, PathBuf) {
    let sock: PathBuf = lan.path(&format!("{name}.sock"));
    let text = format!(
        "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nvips = [\"{VIP4}/24\", \"{VIP6}/64\"]\n\
         advskew = {advskew}\npreempt = {preempt}\npassword = \"pw42\"\nvirtual_mac = true\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID2}\nvips = [\"{VIP4B}/24\"]\n\
         advskew = {advskew}\npreempt = {preempt}\npassword = \"pw43\"\nvirtual_mac = true\n",
        sock.display()
    );
    (lan.write(&format!("{name}.toml"), &text, 0o644), sock)
}

fn start(lan: &Lan, i: usize, name: &str, advskew: u8, preempt: bool) -> Daemon {
    let (config, sock) = write_config(lan, name, advskew, preempt);
    Daemon::start(
        lan,
        i,
        name,
        &["--config".into(), config.display().to_string()],
        &[],
        sock,
    )
}

/// The macvlan carrying virtual MAC `mac` on host `ns`, if any: the line
/// of `ip -o link` with that MAC.
fn link_with(ns: &Netns, mac: &str) -> Option<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .find(|l| l.contains(mac))
        .map(str::to_owned)
}

/// Either vhid's macvlan on host `ns`, if any.
fn vmac_link(ns: &Netns) -> Option<String> {
    link_with(ns, VMAC).or_else(|| link_with(ns, VMAC2))
}

/// Whether `addr` is on any interface of `ns`.
fn holds(ns: &Netns, addr: &str) -> bool {
    ns.ip(&["-o", "addr", "show"])
        .contains(&format!(" {addr}/"))
}

fn ping(lan: &Lan, family: &str, addr: &str) -> bool {
    lan.client
        .command("ping")
        .args([family, "-c", "1", "-W", "1", addr])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn reaches_both(lan: &Lan, when: &str) {
    eventually(&format!("{when}: the client reaches {VIP4}"), || {
        ping(lan, "-4", VIP4).then_some(())
    });
    eventually(&format!("{when}: the client reaches {VIP6}"), || {
        ping(lan, "-6", VIP6).then_some(())
    });
    eventually(&format!("{when}: the client reaches {VIP4B}"), || {
        ping(lan, "-4", VIP4B).then_some(())
    });
}

/// Host `i` is master with the virtual MAC: its macvlan is up, holds both
/// VIPs, and the status shows it.
fn master_has_vmac(lan: &Lan, d: &Daemon) {
    let ns = &lan.hosts[d.host].ns;
    let link = eventually("the master's macvlan", || link_with(ns, VMAC));
    assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
    let ifindex = ns.ifindex("eth0");
    let name = format!("vmac{VHID}.{ifindex}");
    assert!(link.contains(&format!("{name}@eth0")), "{link}");
    eventually("both VIPs on the macvlan", || {
        let out = ns.ip(&["-o", "addr", "show", "dev", &name]);
        (out.contains(&format!(" {VIP4}/")) && out.contains(&format!(" {VIP6}/"))).then_some(())
    });
    assert!(!ns.ip(&["-o", "addr", "show", "dev", "eth0"]).contains(VIP4));
    let st = d.instance(VHID).expect("status");
    assert_eq!(st["virtual_mac"], VMAC, "{st}");
    assert_eq!(st["virtual_mac_link"], name.as_str(), "{st}");
    // The second vhid's own macvlan on the same interface.
    let name2 = format!("vmac{VHID2}.{ifindex}");
    let link2 = eventually("the second vhid's macvlan", || link_with(ns, VMAC2));
    assert!(link2.contains(&format!("{name2}@eth0")), "{link2}");
    eventually("the second VIP on its macvlan", || {
        let out = ns.ip(&["-o", "addr", "show", "dev", &name2]);
        out.contains(&format!(" {VIP4B}/")).then_some(())
    });
}

/// Host `i` is backup: no macvlan with the virtual MAC, no VIP.
fn backup_has_none(lan: &Lan, i: usize) {
    let ns = &lan.hosts[i].ns;
    eventually("no macvlan on the backup", || {
        vmac_link(ns).is_none().then_some(())
    });
    assert!(!holds(ns, VIP4) && !holds(ns, VIP6) && !holds(ns, VIP4B));
}

/// `arp_ignore` and `arp_announce` of the host's `eth0`.
fn arp_sysctls(ns: &Netns) -> String {
    ns.run(|| {
        ["arp_ignore", "arp_announce"]
            .map(|k| std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/eth0/{k}")))
    })
    .map(|r| r.expect("read sysctl").trim().to_owned())
    .join(",")
}

#[test]
fn virtual_mac_follows_the_master() {
    if !require_root("virtual_mac_follows_the_master") {
        return;
    }
    let lan = Lan::new("vm", 217, 1, 2);
    for (ns, addr) in [
        (&lan.hosts[0].ns, "fd00:42::1/64"),
        (&lan.hosts[1].ns, "fd00:42::2/64"),
        (&lan.client, "fd00:42::64/64"),
    ] {
        ns.ip(&["-6", "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    let before = arp_sysctls(&lan.hosts[0].ns);
    let mut d0 = start(&lan, 0, "d0", 0, true);
    let mut d1 = start(&lan, 1, "d1", 100, true);
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    master_has_vmac(&lan, &d0);
    backup_has_none(&lan, 1);
    assert_eq!(
        d1.instance(VHID).expect("status")["virtual_mac_link"],
        serde_json::Value::Null
    );

    // Adverts still come from the interface's MAC: the backup knows its
    // peer for a carpd-xdp host, not a BSD one (docs/interop.md).
    eventually("the backup recognises a carpd-xdp master", || {
        (d1.instance(VHID)?["master_kind"] == "carpd-xdp").then_some(())
    });

    // Resolved, not pinned: ARP and NDP answers come from the virtual MAC.
    reaches_both(&lan, "before failover");
    for (family, vip, mac) in [("-4", VIP4, VMAC), ("-6", VIP6, VMAC), ("-4", VIP4B, VMAC2)] {
        let neigh = lan.client.ip(&[family, "neigh", "show", vip]);
        assert!(
            neigh.contains(mac),
            "{vip} resolved to the virtual MAC {mac}: {neigh}"
        );
    }
    // Pinned from now on: the client never resolves the VIPs again.
    for (family, vip, mac) in [("-4", VIP4, VMAC), ("-6", VIP6, VMAC), ("-4", VIP4B, VMAC2)] {
        lan.client.ip(&[
            family,
            "neigh",
            "replace",
            vip,
            "lladdr",
            mac,
            "nud",
            "permanent",
            "dev",
            "eth0",
        ]);
    }
    reaches_both(&lan, "pinned, before failover");

    lan.cut(0);
    d1.wait_state(VHID, "MASTER");
    master_has_vmac(&lan, &d1);
    reaches_both(&lan, "after failover");

    lan.restore(0);
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    master_has_vmac(&lan, &d0);
    backup_has_none(&lan, 1);
    reaches_both(&lan, "after failback");
    for (family, vip) in [("-4", VIP4), ("-6", VIP6)] {
        let neigh = lan.client.ip(&[family, "neigh", "show", vip]);
        assert!(neigh.contains("PERMANENT"), "still pinned: {neigh}");
    }

    // A reload that changes both instances: each is replaced (prepared
    // while the old one still holds its macvlan, which is not taken for a
    // stale one), and the replacement makes the macvlan again.
    write_config(&lan, "d0", 1, true);
    d0.signal(libc::SIGHUP);
    eventually("the replaced instance advertises advskew 1", || {
        let st = d0.instance(VHID)?;
        (st["advskew"] == 1 && st["state"] == "MASTER").then_some(())
    });
    master_has_vmac(&lan, &d0);
    backup_has_none(&lan, 1);
    reaches_both(&lan, "after a reload");

    // SIGTERM: nothing left behind, arp_ignore back to what it was.
    d0.signal(libc::SIGTERM);
    d0.proc
        .wait_exit(Duration::from_secs(20))
        .expect("d0 still running 20 s after SIGTERM");
    d1.wait_state(VHID, "MASTER");
    let h0 = &lan.hosts[0].ns;
    assert_eq!(vmac_link(h0), None, "macvlan left after SIGTERM");
    assert!(
        !holds(h0, VIP4) && !holds(h0, VIP6),
        "VIP left after SIGTERM"
    );
    assert_eq!(
        arp_sysctls(h0),
        before,
        "arp_ignore/arp_announce of eth0 restored"
    );
    reaches_both(&lan, "after host 0 left");

    // SIGKILL as master leaves the macvlan; the next start removes it.
    let mut d0 = start(&lan, 0, "d0-again", 0, true);
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    master_has_vmac(&lan, &d0);
    d0.signal(libc::SIGKILL);
    d0.proc
        .wait_exit(Duration::from_secs(20))
        .expect("d0 still running 20 s after SIGKILL");
    assert!(vmac_link(h0).is_some(), "SIGKILL leaves the macvlan");
    d1.wait_state(VHID, "MASTER");
    // Without preempt, host 0 stays backup: the stale macvlan must go.
    let mut d0 = start(&lan, 0, "d0-restart", 0, false);
    d0.wait_state(VHID, "BACKUP");
    backup_has_none(&lan, 0);
    assert_eq!(
        arp_sysctls(h0),
        before,
        "arp_ignore/arp_announce of eth0 restored from the stale macvlan"
    );
    master_has_vmac(&lan, &d1);
    reaches_both(&lan, "after the stale macvlan was removed");
}
