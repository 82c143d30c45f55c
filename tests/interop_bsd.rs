//! carpd-xdp against an emulation of OpenBSD carp(4) (`tests/peers`, run in
//! a host namespace by `tests/common/peer_ns.rs`; shared steps in
//! `tests/common/bsd_interop.rs`) on a bridged LAN of namespaces. Each test
//! asks one question: does carpd-xdp elect exactly one master with it, and
//! does the right host take over when the master goes?
//!
//! - OpenBSD sends one constant counter (its cookie) in every advert: a
//!   carpd-xdp backup must accept it for as long as the master lives, in
//!   replay modes `auto` and `compat`, and take over when it dies or bows out;
//! - demotion travels in the demote byte both ways;
//! - ties (same advbase/advskew, preempt on both sides): exactly one master,
//!   the lower address when the peer was master first;
//! - OpenBSD leaves IPv6 link-local VIPs out of the HMAC it sends.
//!
//! Every test uses a 19-byte password (the longest the BSDs keep) and checks
//! that no advert failed authentication on either side. FreeBSD:
//! `interop_freebsd.rs`.

#[path = "common/bsd_interop.rs"]
mod bsd_interop;
mod common;
#[path = "common/peer_ns.rs"]
mod peer_ns;
mod peers;

use std::net::IpAddr;
use std::time::Duration;

use bsd_interop::*;
use common::cluster::{interval, Daemon, Lan};
use common::require_root;
use peers::{Kind, PeerConfig, PeerState};

#[test]
fn openbsd_master_constant_cookie_keeps_carpd_backup_in_auto_mode_until_killed() {
    if !require_root("openbsd_master_constant_cookie_keeps_carpd_backup_in_auto_mode_until_killed")
    {
        return;
    }
    peer_master_carpd_backup("ibo1", 1, Kind::OpenBsd, "auto", false);
}

#[test]
fn openbsd_master_constant_cookie_keeps_carpd_backup_in_compat_mode_until_killed() {
    if !require_root(
        "openbsd_master_constant_cookie_keeps_carpd_backup_in_compat_mode_until_killed",
    ) {
        return;
    }
    peer_master_carpd_backup("ibo2", 2, Kind::OpenBsd, "compat", false);
}

#[test]
fn openbsd_master_constant_cookie_keeps_carpd_backup_until_it_bows_out() {
    if !require_root("openbsd_master_constant_cookie_keeps_carpd_backup_until_it_bows_out") {
        return;
    }
    peer_master_carpd_backup("ibo3", 19, Kind::OpenBsd, "auto", true);
}

#[test]
fn carpd_master_keeps_openbsd_backup_backup_and_hands_over_on_leave() {
    if !require_root("carpd_master_keeps_openbsd_backup_backup_and_hands_over_on_leave") {
        return;
    }
    carpd_master_peer_backup("icb1", 5, Kind::OpenBsd);
}

#[test]
fn demoted_carpd_master_loses_to_openbsd_backup_without_preempt() {
    if !require_root("demoted_carpd_master_loses_to_openbsd_backup_without_preempt") {
        return;
    }
    demoted_carpd_master_loses_to("ido1", 8, Kind::OpenBsd, false);
}

#[test]
fn demoted_openbsd_master_is_taken_over_by_carpd_without_preempt() {
    if !require_root("demoted_openbsd_master_is_taken_over_by_carpd_without_preempt") {
        return;
    }
    demoted_peer_master_loses_to_carpd("ipo1", 10, Kind::OpenBsd, 1, false);
}

#[test]
fn tie_openbsd_master_on_the_lower_address_stays_master_when_carpd_joins() {
    if !require_root("tie_openbsd_master_on_the_lower_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("ito1", 11, Kind::OpenBsd, 0, true);
}

#[test]
fn tie_openbsd_master_on_the_higher_address_stays_master_when_carpd_joins() {
    if !require_root("tie_openbsd_master_on_the_higher_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("ito2", 12, Kind::OpenBsd, 1, true);
}

#[test]
fn tie_openbsd_started_together_elects_one_master() {
    if !require_root("tie_openbsd_started_together_elects_one_master") {
        return;
    }
    tie("ito3", 16, Kind::OpenBsd, 1, false);
}

/// OpenBSD leaves IPv6 link-local VIPs out of the HMAC it sends (and accepts
/// either form). With a vhid holding an IPv4 VIP and a link-local one,
/// carpd-xdp must accept the adverts of an OpenBSD master (no HMAC failure,
/// at least one accepted within the first two intervals), and an OpenBSD
/// backup must accept carpd-xdp's.
#[test]
fn openbsd_hmac_without_link_local_vip_is_accepted_both_ways() {
    if !require_root("openbsd_hmac_without_link_local_vip_is_accepted_both_ways") {
        return;
    }
    let lan = Lan::new("ill1", 213, 18, 3);
    let ll: IpAddr = "fe80::12:1".parse().unwrap();
    let with_ll = |mut c: PeerConfig| {
        c.vips.push(ll);
        c
    };
    let p = start_peer(&lan, 0, with_ll(peer(&lan, Kind::OpenBsd, 0, 0)));
    wait_peer(&p, PeerState::Master, Duration::from_secs(5));
    // No srcip: a vhid with VIPs of both families sends from the IPv4
    // address and from the link-local one (see daemon_ipv6).
    let sock = lan.path("carpd.sock");
    let text = format!(
        "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nvips = [\"{}/24\", \"{ll}/64\"]\n\
         advskew = 100\npreempt = true\npassword = \"{PASS}\"\nreplay = \"compat\"\n",
        sock.display(),
        lan.addr(VHID)
    );
    let config = lan.write("carpd.toml", &text, 0o644);
    let args = ["--config".to_string(), config.display().to_string()];
    let mut d = Daemon::start(&lan, 1, "carpd", &args, &[], sock);
    d.wait_state(VHID, "BACKUP");
    std::thread::sleep(interval(1, 0) * 2 + SLACK);
    let st = d.instance(VHID).expect("status");
    assert_eq!(
        auth_failures(&d),
        0,
        "carpd-xdp refused OpenBSD's HMAC without the link-local VIP: {st}; {}",
        p.summary()
    );
    assert!(
        st["adverts_accepted"].as_u64().unwrap_or(0) >= 1,
        "no OpenBSD advert accepted: {st}; {}",
        p.summary()
    );

    // The other way: carpd-xdp master on host 1 (the OpenBSD master is
    // killed), a second OpenBSD peer as backup on host 2.
    let mut p = p;
    p.kill();
    d.wait_state(VHID, "MASTER");
    let b = start_peer(&lan, 2, with_ll(peer(&lan, Kind::OpenBsd, 2, 200)));
    std::thread::sleep(interval(1, 100) * 3);
    let s = b.stats();
    assert!(s.accepted >= 2 && s.bad_auth == 0, "{}", b.summary());
    assert_eq!(b.state(), PeerState::Backup, "{}", b.summary());
}
