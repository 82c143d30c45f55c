//! One captured advert re-sent after its master died (issue 19), the three
//! rows of the measurement: a LAN of namespaces, carpd-xdp on host
//! 0 (master, advskew 50) and host 1 (backup, advskew 100), both with
//! default settings (replay mode `auto`, no allow-list, no
//! `replay_window_ms`), and an attacker in the client namespace that
//! captured one of the master's adverts. The master's cable is pulled, and
//! the attacker re-sends that one advert once a second:
//!
//! - (a) from the master's address and MAC;
//! - (b) from a fresh address and UCARP's virtual MAC `00:00:5e:00:00:<vhid>`;
//! - (c) from the master's address and UCARP's virtual MAC, right after the
//!   backup's daemon restarted (stopped and started again, same `state_dir`).
//!
//! In each, the backup takes over within one master-down interval (plus
//! [`SLACK`] for the namespace) of the master's death, or in (c) of its own
//! start; in (c) it refuses the very first replay, from what its previous
//! run knew (`state_dir/peers`). Before issue 19, (b) and (c) never took
//! over while the attacker sent.

#[path = "common/attack.rs"]
mod attack;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use attack::{Advert, Capture, Resender};
use common::cluster::{Daemon, Inst, Lan, EVENTUALLY};
use common::require_root;

const VHID: u8 = 45;
const MASTER_SKEW: u8 = 50;
const BACKUP_SKEW: u8 = 100;
/// How often the attacker re-sends.
const EVERY: Duration = Duration::from_secs(1);
/// Scheduling and start-up slack on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(1500);
/// UCARP's virtual-router MAC of [`VHID`].
const UCARP_MAC: [u8; 6] = [0, 0, 0x5e, 0, 0, VHID];

/// Where the attacker sends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    /// (a) the master's address and MAC.
    MasterAddressAndMac,
    /// (b) a fresh address, UCARP's virtual MAC.
    FreshAddressUcarpMac,
    /// (c) the master's address, UCARP's virtual MAC, after the backup's
    /// restart.
    MasterAddressUcarpMacAfterRestart,
}

/// The adverts the protocol core of a daemon refused, by reason.
fn rejects(d: &Daemon) -> BTreeMap<String, u64> {
    d.instance(VHID)
        .and_then(|i| {
            i["rejects"].as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Adverts the backup's core accepted so far.
fn accepted(d: &Daemon) -> u64 {
    d.instance(VHID)
        .and_then(|i| i["adverts_accepted"].as_u64())
        .unwrap_or(0)
}

/// Polls until the backup is MASTER; how long that took from `from`.
fn until_master(b: &Daemon, from: Instant) -> Duration {
    loop {
        if b.state(VHID).as_deref() == Some("MASTER") {
            return from.elapsed();
        }
        assert!(
            from.elapsed() < EVENTUALLY,
            "the backup did not take over within {EVENTUALLY:?}: {}; refused {:?}",
            b.instance(VHID)
                .map_or("no status".into(), |v| v.to_string()),
            rejects(b)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one row on a LAN `10.219.<net>.0/24` named after `tag`.
fn run(tag: &str, net: u8, row: Row) {
    let lan = Lan::new(tag, 219, net, 2);
    let inst = |skew| {
        let mut i = Inst::new(VHID, lan.addr(VHID), skew);
        i.password = format!("replay-pw-{VHID}");
        i
    };
    let mut a = lan.daemon(0, "a", &[inst(MASTER_SKEW)]);
    a.wait_state(VHID, "MASTER");
    let capture = Capture::start(&lan.client, "eth0", lan.hosts[0].ip, VHID);
    let backup = inst(BACKUP_SKEW);
    let mut b = lan.daemon(1, "b", std::slice::from_ref(&backup));
    b.wait_state(VHID, "BACKUP");
    // Let the backup hear a few adverts after the one captured.
    let captured = capture.last(1, EVENTUALLY).remove(0);
    std::thread::sleep(backup.interval() * 2);
    let frame: Advert = match row {
        Row::MasterAddressAndMac => captured.clone(),
        Row::FreshAddressUcarpMac => captured.clone().sent_by(UCARP_MAC, lan.addr(99)),
        Row::MasterAddressUcarpMacAfterRestart => {
            captured.clone().sent_by(UCARP_MAC, lan.hosts[0].ip)
        }
    };
    // The master dies.
    lan.cut(0);
    let death = Instant::now();
    let (took, since) = if row == Row::MasterAddressUcarpMacAfterRestart {
        b.signal(libc::SIGTERM);
        assert!(b.proc.wait_exit(Duration::from_secs(10)).is_some());
        let resender = Resender::start(&lan.client, frame, EVERY);
        let b2 = lan.daemon(1, "b2", std::slice::from_ref(&backup));
        let up = loop {
            if b2.state(VHID).is_some() {
                break Instant::now();
            }
            assert!(
                death.elapsed() < EVENTUALLY,
                "the restarted backup does not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = until_master(&b2, up);
        let (refused, heard) = (rejects(&b2), accepted(&b2));
        eprintln!(
            "{row:?}: {} frames re-sent; took over {took:?} after its restart; its core \
             refused {refused:?} and accepted {heard} adverts",
            resender.sent()
        );
        // What the previous run knew refuses the very first replay.
        assert_eq!(heard, 0, "{row:?}: the restarted backup accepted a replay");
        assert!(
            refused.get("replay-identity").is_some_and(|&n| n > 0),
            "{refused:?}"
        );
        (took, "its restart")
    } else {
        let resender = Resender::start(&lan.client, frame, EVERY);
        let took = until_master(&b, death);
        eprintln!(
            "{row:?}: {} frames re-sent; took over {took:?} after the master died; its core \
             refused {:?}; its receive path {}",
            resender.sent(),
            rejects(&b),
            b.status()
                .map_or("no status".into(), |s| s["counters"].to_string())
        );
        (took, "the master's death")
    };
    assert!(
        took <= backup.master_down() + SLACK,
        "{row:?}: the backup took over {took:?} after {since}, more than one master-down \
         interval ({:?}) and {SLACK:?}",
        backup.master_down()
    );
    drop(a);
}

#[test]
fn a_replay_from_the_masters_address_and_mac_delays_no_failover() {
    if !require_root("a_replay_from_the_masters_address_and_mac_delays_no_failover") {
        return;
    }
    run("arm", 3, Row::MasterAddressAndMac);
}

#[test]
fn a_replay_from_a_fresh_address_and_the_ucarp_mac_delays_no_failover() {
    if !require_root("a_replay_from_a_fresh_address_and_the_ucarp_mac_delays_no_failover") {
        return;
    }
    run("arf", 4, Row::FreshAddressUcarpMac);
}

#[test]
fn a_replay_right_after_the_backup_restarted_delays_no_failover() {
    if !require_root("a_replay_right_after_the_backup_restarted_delays_no_failover") {
        return;
    }
    run("arr", 5, Row::MasterAddressUcarpMacAfterRestart);
}
