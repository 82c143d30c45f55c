//! `virtual_mac = true` (issue 20.1): two carpd-xdp hosts, a dual-stack
//! vhid and a second IPv4 vhid on the same interface. The master answers
//! ARP and neighbour solicitations for the VIPs and sends its adverts from
//! `00:00:5e:00:01:<vhid>` (a client learns that MAC, and sees no advert
//! from a host's own MAC); the backup still knows its master for carpd-xdp
//! (by its counters: the MAC is the BSDs'), and two such masters that meet
//! settle their tie as carpd-xdp hosts do (the lower address stays). A client
//! whose neighbour entries are pinned (permanent) to that MAC reaches both
//! VIPs before failover, after failover (the master's cable pulled) and
//! after failback (preempt) and after a reload that replaces the instances.
//! The backup has no macvlan at all; SIGTERM leaves no macvlan, no VIP and
//! the parent's `arp_ignore` and `arp_announce` as they were; a macvlan
//! left by a SIGKILLed daemon is removed at its next start.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use carp_testnet::socket;

use common::cluster::{eventually, Daemon, Lan};
use common::{must, require_root, Netns};

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

/// The adverts the client hears in `window`: (vhid, source MAC, source
/// address) of each, once.
fn adverts_heard(lan: &Lan, window: Duration) -> BTreeSet<(u8, String, IpAddr)> {
    let ifindex = lan.client.ifindex("eth0");
    let fd = lan.client.run(|| {
        let fd = must(socket::packet_socket(libc::ETH_P_ALL as u16, ifindex, 0));
        must(socket::set_recv_timeout(&fd, Duration::from_millis(200)));
        fd
    });
    let mut heard = BTreeSet::new();
    let start = Instant::now();
    while start.elapsed() < window {
        let mut buf = [0u8; 2048];
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else { continue };
        let f = &buf[..n];
        let mac = f[6..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        match f.get(12..14) {
            Some([0x08, 0x00]) if n >= 34 + 36 && f[23] == 112 => {
                let src: [u8; 4] = f[26..30].try_into().unwrap();
                let ihl = usize::from(f[14] & 0x0f) * 4;
                heard.insert((f[14 + ihl + 1], mac, IpAddr::from(src)));
            }
            Some([0x86, 0xdd]) if n >= 54 + 36 && f[20] == 112 => {
                let src: [u8; 16] = f[22..38].try_into().unwrap();
                heard.insert((f[55], mac, IpAddr::from(src)));
            }
            _ => {}
        }
    }
    heard
}

/// Every advert the client hears comes from the virtual MAC of its vhid and
/// from host `master`: both vhids over IPv4, the first over IPv6 too.
fn adverts_from_vmac(lan: &Lan, master: usize, when: &str) {
    let heard = adverts_heard(lan, Duration::from_millis(2500));
    let families: BTreeSet<(u8, bool)> = heard.iter().map(|(v, _, a)| (*v, a.is_ipv4())).collect();
    assert_eq!(
        families,
        BTreeSet::from([(VHID, true), (VHID, false), (VHID2, true)]),
        "{when}: adverts heard: {heard:?}"
    );
    let v4 = IpAddr::V4(lan.hosts[master].ip);
    for (vhid, mac, src) in &heard {
        let want = if *vhid == VHID { VMAC } else { VMAC2 };
        assert_eq!(
            mac, want,
            "{when}: advert of vhid {vhid} from {src}: {heard:?}"
        );
        assert!(
            src.is_ipv6() || *src == v4,
            "{when}: an advert from {src}, not from host {master}: {heard:?}"
        );
    }
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

/// Two hosts on 10.217.1.0/24 and fd00:42::/64 (the client too when
/// `client`), their namespaces named after `tag`.
fn dual_stack_lan(tag: &str, client: bool) -> Lan {
    let lan = Lan::new(tag, 217, 1, 2);
    let mut v6 = vec![
        (&lan.hosts[0].ns, "fd00:42::1/64"),
        (&lan.hosts[1].ns, "fd00:42::2/64"),
    ];
    if client {
        v6.push((&lan.client, "fd00:42::64/64"));
    }
    for (ns, addr) in v6 {
        ns.ip(&["-6", "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    lan
}

#[test]
fn virtual_mac_follows_the_master() {
    if !require_root("virtual_mac_follows_the_master") {
        return;
    }
    let lan = dual_stack_lan("vm", true);
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

    // Adverts come from the virtual MAC, the BSDs' one: the backup still
    // knows its peer for a carpd-xdp host by its counters (docs/interop.md).
    adverts_from_vmac(&lan, 0, "host 0 master");
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
    adverts_from_vmac(&lan, 1, "host 1 master");

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

/// Two masters on the same virtual MAC meet (the hosts could not hear each
/// other, carrier kept, then can): they know each other for carpd-xdp by
/// their counters and settle the tie by address, as without the virtual
/// MAC. Taken for BSD hosts, each would keep the VIP (a BSD master yields
/// at a tie, so its peer must not) and both would stay master.
#[test]
fn virtual_mac_tie_is_settled_by_address() {
    if !require_root("virtual_mac_tie_is_settled_by_address") {
        return;
    }
    let lan = dual_stack_lan("vt", false);
    lan.split_hosts(true);
    let mut d0 = start(&lan, 0, "t0", 0, false);
    let mut d1 = start(&lan, 1, "t1", 0, false);
    for vhid in [VHID, VHID2] {
        d0.wait_state(vhid, "MASTER");
        d1.wait_state(vhid, "MASTER");
    }
    lan.split_hosts(false);
    // Host 0 has the lower address: it stays, host 1 yields both vhids.
    for vhid in [VHID, VHID2] {
        d1.wait_state(vhid, "BACKUP");
    }
    backup_has_none(&lan, 1);
    master_has_vmac(&lan, &d0);
    adverts_from_vmac(&lan, 0, "after the tie");
    for vhid in [VHID, VHID2] {
        assert_eq!(d0.state(vhid).as_deref(), Some("MASTER"));
        let st = d1.instance(vhid).expect("status");
        assert_eq!(st["master_kind"], "carpd-xdp", "{st}");
    }
}
