//! carpd-xdp against an emulation of FreeBSD carp(4) (`tests/peers`, run in
//! a host namespace by `tests/common/peer_ns.rs`; shared steps in
//! `tests/common/bsd_interop.rs`) on a bridged LAN of namespaces. Each test
//! asks one question: does carpd-xdp elect exactly one master with it, and
//! does the right host take over when the master goes?
//!
//! - FreeBSD continues from the last counter it accepted, so after taking
//!   over from carpd-xdp it sends carpd-xdp's (tagged) counters + 1;
//! - demotion: FreeBSD adds it to advskew and never reads the demote byte: a
//!   demoted carpd-xdp master must still lose to a FreeBSD backup;
//! - ties (same advbase/advskew, preempt on both sides): exactly one master,
//!   the lower address when the peer was master first.
//!
//! Every test uses a 19-byte password (the longest the BSDs keep) and checks
//! that no advert failed authentication on either side. OpenBSD:
//! `interop_bsd.rs`.

#[path = "common/bsd_interop.rs"]
mod bsd_interop;
mod common;
#[path = "common/peer_ns.rs"]
mod peer_ns;
mod peers;

use std::net::IpAddr;
use std::time::Duration;

use bsd_interop::*;
use common::cluster::Lan;
use common::require_root;
use common::settle::{sole_holder_over, wait_sole_holder};
use peers::{Kind, PeerState};

#[test]
fn freebsd_master_keeps_carpd_backup_in_auto_mode_until_killed() {
    if !require_root("freebsd_master_keeps_carpd_backup_in_auto_mode_until_killed") {
        return;
    }
    peer_master_carpd_backup("ibf1", 3, Kind::FreeBsd, "auto", false);
}

#[test]
fn freebsd_master_keeps_carpd_backup_in_compat_mode_until_killed() {
    if !require_root("freebsd_master_keeps_carpd_backup_in_compat_mode_until_killed") {
        return;
    }
    peer_master_carpd_backup("ibf2", 4, Kind::FreeBsd, "compat", false);
}

/// FreeBSD takes over from us continuing our own counter (+1 per advert):
/// a carpd-xdp restarted with the better advskew must take the VIP back
/// (preempt) and keep it, with FreeBSD backup again.
#[test]
fn freebsd_continuing_our_counter_after_takeover_then_carpd_returns_and_preempts() {
    if !require_root(
        "freebsd_continuing_our_counter_after_takeover_then_carpd_returns_and_preempts",
    ) {
        return;
    }
    let (lan, _old, p) = carpd_master_peer_backup("icb2", 6, Kind::FreeBsd);
    // FreeBSD now sends our last counter + 1, + 2, ...
    let last_ours = p
        .heard()
        .iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[0].ip))
        .map(|h| h.header.counter())
        .max()
        .expect("FreeBSD heard us");
    assert!(
        p.stats().sent >= 1 && last_ours >> 48 == 0xCA4D,
        "our counters carry the tag: {last_ours:#x}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let theirs = p.counter();
    assert!(
        theirs > last_ours && theirs - last_ours <= 10,
        "FreeBSD must continue from our last counter {last_ours:#x}, sends {theirs:#x}"
    );
    let mut d = lan.daemon(0, "carpd2", &[inst(&lan, 0, true, "auto")]);
    d.wait_state(VHID, "MASTER");
    wait_sole_holder(&lan, lan.addr(VHID), 0, Duration::from_secs(5));
    let held = sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(8));
    assert_eq!(
        held,
        Ok(0),
        "carpd-xdp status {}; {}",
        status(&d),
        p.summary()
    );
    assert_eq!(p.state(), PeerState::Backup, "{}", p.summary());
    assert_eq!(auth_failures(&d), 0, "{}", status(&d));
}

#[test]
fn demoted_carpd_master_loses_to_freebsd_backup_with_preempt() {
    if !require_root("demoted_carpd_master_loses_to_freebsd_backup_with_preempt") {
        return;
    }
    demoted_carpd_master_loses_to("idf1", 7, Kind::FreeBsd, true);
}

#[test]
fn demoted_freebsd_master_advskew_grows_and_carpd_preempts() {
    if !require_root("demoted_freebsd_master_advskew_grows_and_carpd_preempts") {
        return;
    }
    demoted_peer_master_loses_to_carpd("ipf1", 9, Kind::FreeBsd, 100, true);
}

#[test]
fn tie_freebsd_master_on_the_lower_address_stays_master_when_carpd_joins() {
    if !require_root("tie_freebsd_master_on_the_lower_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("itf1", 13, Kind::FreeBsd, 0, true);
}

#[test]
fn tie_freebsd_master_on_the_higher_address_stays_master_when_carpd_joins() {
    if !require_root("tie_freebsd_master_on_the_higher_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("itf2", 14, Kind::FreeBsd, 1, true);
}

#[test]
fn tie_freebsd_started_together_elects_one_master() {
    if !require_root("tie_freebsd_started_together_elects_one_master") {
        return;
    }
    tie("itf3", 17, Kind::FreeBsd, 1, false);
}

/// The peer sees our adverts with their source MAC and address: a sanity
/// check of the harness itself, so that a silent peer cannot pass the tests
/// above for the wrong reason.
#[test]
fn emulated_peer_sends_from_its_virtual_mac_and_hears_carpd() {
    if !require_root("emulated_peer_sends_from_its_virtual_mac_and_hears_carpd") {
        return;
    }
    let lan = Lan::new("ihs1", 213, 15, 3);
    let mut d = lan.daemon(0, "carpd", &[inst(&lan, 0, true, "compat")]);
    d.wait_state(VHID, "MASTER");
    // Two peers: the FreeBSD one backup of us, the OpenBSD one hears both.
    let free = start_peer(&lan, 1, peer(&lan, Kind::FreeBsd, 1, 100));
    let open = start_peer(&lan, 2, peer(&lan, Kind::OpenBsd, 2, 200));
    std::thread::sleep(Duration::from_secs(3));
    let heard = open.heard();
    let from_carpd: Vec<_> = heard
        .iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[0].ip))
        .collect();
    assert!(from_carpd.len() >= 2, "{}", open.summary());
    assert!(
        from_carpd.iter().all(|h| h.ignored.is_none()),
        "{from_carpd:?}"
    );
    assert_eq!(
        from_carpd[0].mac, lan.hosts[0].mac,
        "carpd-xdp's frames from its own MAC"
    );
    assert_eq!(free.state(), PeerState::Backup, "{}", free.summary());
    // Kill carpd-xdp: FreeBSD (the shorter master-down) takes over, and its
    // frames come from 00:00:5e:00:01:<vhid>.
    kill_daemon(&lan, &mut d);
    wait_sole_holder(&lan, lan.addr(VHID), 1, Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(2));
    let from_free: Vec<_> = open
        .heard()
        .into_iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[1].ip))
        .collect();
    assert!(!from_free.is_empty(), "{}", open.summary());
    assert!(
        from_free.iter().all(|h| h.mac == [0, 0, 0x5e, 0, 1, VHID]),
        "{from_free:?}"
    );
    assert_eq!(open.state(), PeerState::Backup, "{}", open.summary());
}
