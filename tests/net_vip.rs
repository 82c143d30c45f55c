//! `net::vip` against a real kernel, in a throw-away namespace: labels,
//! prefixes, IPv6 without DAD, idempotent add/remove, removing exactly what
//! we added, and the start-up clean-up of stale VIPs.

mod common;

use std::net::IpAddr;

use carp_daemon::net::vip::{Vip, VipError, VipManager, VipSet};
use common::{block_on, require_root, Netns};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// A namespace with a veth pair `d0`/`d1` (up; the kernel under test may
/// lack the dummy driver), `d0` carrying a host address that is not a VIP.
fn setup() -> (Netns, u32) {
    let ns = Netns::new("cvip");
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["link", "set", "d1", "up"]);
    ns.ip(&["link", "set", "d0", "up"]);
    ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "d0"]);
    let ifindex = ns.ifindex("d0");
    (ns, ifindex)
}

/// `ip -o addr show dev d0` lines mentioning `needle` (word-bounded by '/').
fn addr_lines(ns: &Netns, needle: &str) -> Vec<String> {
    ns.ip(&["-o", "addr", "show", "dev", "d0"])
        .lines()
        .filter(|l| l.contains(&format!(" {needle}/")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn add_with_label_nodad_idempotent_and_remove() {
    if !require_root("add_with_label_nodad_idempotent_and_remove") {
        return;
    }
    let (ns, ifindex) = setup();
    let v4 = Vip::host(ip("198.51.100.10")).with_label("d0:carp0");
    let v4_net = Vip::host(ip("198.51.100.11")).with_prefix(24);
    let v6 = Vip::host(ip("2001:db8::10"));
    let listed = ns.run(|| {
        block_on(async {
            let mgr = VipManager::new().expect("netlink");
            assert!(mgr.add(ifindex, &v4).await.expect("add v4"));
            assert!(!mgr
                .add(ifindex, &v4)
                .await
                .expect("add v4 again is not an error"));
            assert!(mgr.add(ifindex, &v4_net).await.expect("add v4/24"));
            assert!(mgr.add(ifindex, &v6).await.expect("add v6"));
            assert!(!mgr.add(ifindex, &v6).await.expect("add v6 again"));
            mgr.list(ifindex).await.expect("list")
        })
    });
    // What the kernel shows, read with iproute2 independently of our code.
    let l4 = addr_lines(&ns, "198.51.100.10");
    assert_eq!(l4.len(), 1, "{l4:?}");
    assert!(
        l4[0].contains("198.51.100.10/32") && l4[0].contains("d0:carp0"),
        "{l4:?}"
    );
    let l4n = addr_lines(&ns, "198.51.100.11");
    assert!(
        l4n.len() == 1 && l4n[0].contains("198.51.100.11/24"),
        "{l4n:?}"
    );
    let l6 = addr_lines(&ns, "2001:db8::10");
    assert_eq!(l6.len(), 1, "{l6:?}");
    assert!(
        l6[0].contains("2001:db8::10/128") && l6[0].contains("nodad"),
        "{l6:?}"
    );
    assert!(!l6[0].contains("tentative"), "usable at once: {l6:?}");
    // Our listing agrees.
    let find = |a: &str| listed.iter().find(|x| x.addr == ip(a)).cloned();
    let got4 = find("198.51.100.10").expect("listed v4");
    assert_eq!(
        (got4.prefix_len, got4.label.as_deref()),
        (32, Some("d0:carp0"))
    );
    let got6 = find("2001:db8::10").expect("listed v6");
    assert_eq!(got6.prefix_len, 128);
    assert_ne!(got6.flags & 0x02, 0, "IFA_F_NODAD in {:#x}", got6.flags);
    assert!(find("198.51.100.1").is_some(), "host address listed too");

    ns.run(|| {
        block_on(async {
            let mgr = VipManager::new().expect("netlink");
            assert!(mgr
                .remove(ifindex, ip("198.51.100.10"))
                .await
                .expect("remove v4"));
            assert!(!mgr
                .remove(ifindex, ip("198.51.100.10"))
                .await
                .expect("absent is not an error"));
            assert!(mgr
                .remove(ifindex, ip("198.51.100.11"))
                .await
                .expect("remove v4/24"));
            assert!(mgr
                .remove(ifindex, ip("2001:db8::10"))
                .await
                .expect("remove v6"));
        })
    });
    assert!(addr_lines(&ns, "198.51.100.10").is_empty());
    assert!(addr_lines(&ns, "198.51.100.11").is_empty());
    assert!(addr_lines(&ns, "2001:db8::10").is_empty());
    assert_eq!(
        addr_lines(&ns, "198.51.100.1").len(),
        1,
        "host address untouched"
    );
}

#[test]
fn vip_set_removes_only_what_it_added() {
    if !require_root("vip_set_removes_only_what_it_added") {
        return;
    }
    let (ns, ifindex) = setup();
    // Present before we start: an operator's address that happens to be
    // configured as a VIP too. It is not ours to remove.
    ns.ip(&["addr", "add", "198.51.100.30/32", "dev", "d0"]);
    ns.run(|| {
        block_on(async {
            let mgr = VipManager::new().expect("netlink");
            let mut set = VipSet::new(ifindex);
            assert!(set
                .add(&mgr, Vip::host(ip("198.51.100.20")))
                .await
                .expect("add"));
            assert!(set
                .add(&mgr, Vip::host(ip("2001:db8::20")))
                .await
                .expect("add v6"));
            assert!(!set
                .add(&mgr, Vip::host(ip("198.51.100.30")))
                .await
                .expect("add present"));
            let owned: Vec<IpAddr> = set.owned().iter().map(|v| v.addr).collect();
            assert_eq!(owned, [ip("198.51.100.20"), ip("2001:db8::20")]);
            // Removing an address that is not ours leaves it alone.
            assert!(!set
                .remove(&mgr, ip("198.51.100.30"))
                .await
                .expect("remove foreign"));
            set.remove_all(&mgr).await.expect("remove all");
            assert!(set.owned().is_empty());
        })
    });
    assert!(addr_lines(&ns, "198.51.100.20").is_empty());
    assert!(addr_lines(&ns, "2001:db8::20").is_empty());
    assert_eq!(
        addr_lines(&ns, "198.51.100.30").len(),
        1,
        "foreign address kept"
    );
    assert_eq!(
        addr_lines(&ns, "198.51.100.1").len(),
        1,
        "host address kept"
    );
}

#[test]
fn stale_vips_removed_at_start() {
    if !require_root("stale_vips_removed_at_start") {
        return;
    }
    let (ns, ifindex) = setup();
    // Left behind by a crashed run (with another prefix length, too).
    ns.ip(&[
        "addr",
        "add",
        "198.51.100.40/24",
        "dev",
        "d0",
        "label",
        "d0:carp1",
    ]);
    ns.ip(&["addr", "add", "2001:db8::40/128", "dev", "d0", "nodad"]);
    let configured = [
        Vip::host(ip("198.51.100.40")),
        Vip::host(ip("2001:db8::40")),
        Vip::host(ip("198.51.100.41")), // configured but absent
    ];
    let removed = ns.run(|| {
        block_on(async {
            let mgr = VipManager::new().expect("netlink");
            mgr.remove_stale(ifindex, &configured)
                .await
                .expect("remove stale")
        })
    });
    assert_eq!(removed, [ip("198.51.100.40"), ip("2001:db8::40")]);
    assert!(addr_lines(&ns, "198.51.100.40").is_empty());
    assert!(addr_lines(&ns, "2001:db8::40").is_empty());
    assert_eq!(
        addr_lines(&ns, "198.51.100.1").len(),
        1,
        "host address kept"
    );
}

#[test]
fn errors_name_the_address_and_interface() {
    if !require_root("errors_name_the_address_and_interface") {
        return;
    }
    let (ns, ifindex) = setup();
    let missing = ifindex + 1000;
    let err = ns.run(|| {
        block_on(async {
            let mgr = VipManager::new().expect("netlink");
            mgr.add(missing, &Vip::host(ip("198.51.100.50")))
                .await
                .expect_err("no such interface")
        })
    });
    assert!(
        matches!(err, VipError::Netlink { ifindex: i, .. } if i == missing),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("198.51.100.50") && msg.contains(&missing.to_string()),
        "{msg}"
    );
}
