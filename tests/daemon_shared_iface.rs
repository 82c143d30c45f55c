//! Several UCARP-style `carpd-xdp` processes on one interface, one per vhid
//! (issue 9), on a bridged LAN of namespaces: on each of two hosts three
//! processes started from UCARP command lines, each with its own vhid, VIP,
//! state directory and status socket. Host 1 is preferred (advskew 0),
//! host 0 backs it up (advskew 100).
//!
//! - the first process on an interface takes the XDP hook, the next two
//!   receive through the TC program on the tcx hook (mode `tc`, the reason
//!   shown), all in the kernel;
//! - each process's kernel counters count its own vhid's adverts only:
//!   `delivered` grows as its peer's adverts are sent, and what a program
//!   leaves to the next shows as `unknown_vhid` in the processes before the
//!   last one on the chain;
//! - a flood of forged adverts for the third process's vhid is dropped in its
//!   TC program (`hmac`), with no state change anywhere;
//! - each vhid fails over on its own when its master stops.

mod common;

use std::time::{Duration, Instant};

use carp_common::constants::CARP_GROUP_V4;
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;
use common::cluster::{eventually, xdp_attached, Daemon, Lan};
use common::{require_root, send_frames};
use serde_json::Value;

/// One vhid per process; VIP `.vhid` of the LAN.
const VHIDS: [u8; 3] = [31, 32, 33];
/// Forged adverts sent for the third vhid.
const FORGED: usize = 2000;

/// `carpd-xdp` on `host` as an init script runs UCARP for one VIP (plus a
/// status socket and state directory of its own).
fn ucarp_style(lan: &Lan, host: usize, vhid: u8, advskew: u8) -> Daemon {
    let name = format!("h{host}-v{vhid}");
    let sock = lan.path(&format!("{name}.sock"));
    let args = vec![
        "--interface=eth0".to_string(),
        format!("--srcip={}", lan.hosts[host].ip),
        format!("--vhid={vhid}"),
        format!("--pass=pw{vhid}"),
        format!("--addr={}", lan.addr(vhid)),
        "--advbase=1".to_string(),
        format!("--advskew={advskew}"),
        "--preempt".to_string(),
        format!("--status-socket={}", sock.display()),
        format!(
            "--state-dir={}",
            lan.path(&format!("state-{name}")).display()
        ),
    ];
    Daemon::start(lan, host, &name, &args, &[], sock)
}

/// The receive-path mode of `d`'s interface, once it answers.
fn mode(d: &Daemon) -> Value {
    eventually(&format!("{}: status", d.proc.name), || {
        let st = d.status()?;
        let iface = st["interfaces"].get(0)?.clone();
        Some(iface)
    })
}

/// Starts the three processes of `host`, one after the other (the first
/// must be the one holding the XDP hook); returns them with the receive
/// path each reports.
fn start_host(lan: &Lan, host: usize, advskew: u8) -> Vec<(Daemon, Value)> {
    VHIDS
        .iter()
        .map(|&vhid| {
            let d = ucarp_style(lan, host, vhid, advskew);
            let iface = mode(&d);
            (d, iface)
        })
        .collect()
}

/// Receive-path counter `reason` of `d`.
fn counter(d: &Daemon, reason: &str) -> u64 {
    let st = d
        .status()
        .unwrap_or_else(|| panic!("{}: no status", d.proc.name));
    st["counters"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no counter {reason}: {st}", d.proc.name))
}

/// A field of instance `vhid` of `d`, as a number.
fn inst_u64(d: &Daemon, vhid: u8, field: &str) -> u64 {
    let i = d
        .instance(vhid)
        .unwrap_or_else(|| panic!("{}: no status", d.proc.name));
    i[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no {field}: {i}", d.proc.name))
}

/// A forged advert for `vhid` (a slow master with preempt bait, wrong HMAC,
/// valid checksum) from the client.
fn forged(lan: &Lan, vhid: u8, counter: u64) -> Vec<u8> {
    let mut h = CarpHeader::advertisement(vhid, 200, 0, 0, counter);
    h.hmac = [0x5a; 20];
    h.hmac[..8].copy_from_slice(&counter.to_be_bytes());
    h.seal_checksum();
    let carp = h.to_bytes();
    let spec = AdvertFrame {
        src_mac: lan.client.mac("eth0"),
        dst_mac: None,
        vlan_id: None,
        ip: IpLayer::V4 {
            src: lan.addr(100).octets(),
            dst: CARP_GROUP_V4,
        },
        ttl: 255,
        ip_id: counter as u16,
        carp: &carp,
    };
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let n = advert_frame(&spec, &mut buf);
    buf[..n].to_vec()
}

#[test]
fn one_process_per_vhid_each_gets_the_kernel_receive_path() {
    if !require_root("one_process_per_vhid_each_gets_the_kernel_receive_path") {
        return;
    }
    let lan = Lan::new("shif", 220, 1, 2);
    let mut peers = start_host(&lan, 1, 0);
    let ours = start_host(&lan, 0, 100);

    // The first process holds the XDP hook, the others chain on tcx.
    for procs in [&peers, &ours] {
        let modes: Vec<&str> = procs
            .iter()
            .map(|(_, i)| i["mode"].as_str().unwrap())
            .collect();
        assert!(
            matches!(modes[0], "native" | "skb") && modes[1..] == ["tc", "tc"],
            "modes {modes:?}: {:?}",
            procs.iter().map(|(_, i)| i).collect::<Vec<_>>()
        );
        for (d, iface) in &procs[1..] {
            let why = iface["fallback_reason"].as_str().unwrap_or_default();
            assert!(
                why.contains("another program holds the interface's XDP hook"),
                "{}: {iface}",
                d.proc.name
            );
        }
    }
    assert!(xdp_attached(&lan.hosts[0].ns, "eth0"));

    // Host 1 masters every vhid, host 0 backs each up.
    for (k, &vhid) in VHIDS.iter().enumerate() {
        peers[k].0.wait_state(vhid, "MASTER");
    }
    let mut ours: Vec<Daemon> = ours.into_iter().map(|(d, _)| d).collect();
    for (k, &vhid) in VHIDS.iter().enumerate() {
        ours[k].wait_state(vhid, "BACKUP");
        eventually(&format!("VIP {vhid} on host 1 only"), || {
            (lan.holders(lan.addr(vhid)) == [1]).then_some(())
        });
    }

    // Each process's kernel delivers its own vhid's adverts, and only
    // those: over a few seconds `delivered` grows as its master's
    // `adverts_sent` does (all three masters send at the same rate, so
    // another vhid's adverts would double or triple it).
    let sent = |k: usize| inst_u64(&peers[k].0, VHIDS[k], "adverts_sent");
    let before: Vec<(u64, u64)> = (0..3)
        .map(|k| (counter(&ours[k], "delivered"), sent(k)))
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    for k in 0..3 {
        let delivered = counter(&ours[k], "delivered") - before[k].0;
        let sent = sent(k) - before[k].1;
        assert!(
            sent >= 4 && delivered + 2 >= sent && delivered <= sent + 2,
            "{}: {delivered} delivered while its master sent {sent}",
            ours[k].proc.name
        );
        let accepted = inst_u64(&ours[k], VHIDS[k], "adverts_accepted");
        assert!(accepted > 0, "{}: no advert accepted", ours[k].proc.name);
    }
    // What each program passed on: the XDP program sees vhids 32 and 33,
    // the first tcx program vhid 33, the last nothing but its own.
    assert!(counter(&ours[0], "unknown_vhid") > 0);
    assert!(counter(&ours[1], "unknown_vhid") > 0);
    assert_eq!(
        counter(&ours[2], "unknown_vhid"),
        0,
        "{:?}",
        ours[2].status()
    );

    // A flood of forged adverts for vhid 33 from the client: dropped by the
    // third process's TC program (HMAC), no state changes.
    let transitions: Vec<u64> = (0..3)
        .map(|k| inst_u64(&ours[k], VHIDS[k], "transitions"))
        .collect();
    let hmac_before: Vec<u64> = (0..3).map(|k| counter(&ours[k], "hmac")).collect();
    let delivered_before = counter(&ours[2], "delivered");
    let sent_before = sent(2);
    let frames: Vec<Vec<u8>> = (0..FORGED as u64)
        .map(|i| forged(&lan, VHIDS[2], 1 << 40 | i))
        .collect();
    for batch in frames.chunks(250) {
        send_frames(&lan.client, "eth0", batch);
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let mut dropped = 0;
    while start.elapsed() < Duration::from_secs(5) {
        dropped = counter(&ours[2], "hmac") - hmac_before[2];
        if dropped >= FORGED as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dropped >= FORGED as u64 * 9 / 10 && dropped <= FORGED as u64,
        "{dropped} of {FORGED} forged adverts counted as hmac"
    );
    let delivered = counter(&ours[2], "delivered") - delivered_before;
    assert!(
        delivered <= sent(2) - sent_before + 1,
        "forged adverts reached the daemon: {delivered} delivered"
    );
    for k in 0..3 {
        if k < 2 {
            assert_eq!(
                counter(&ours[k], "hmac"),
                hmac_before[k],
                "{}",
                ours[k].proc.name
            );
        }
        assert_eq!(
            inst_u64(&ours[k], VHIDS[k], "transitions"),
            transitions[k],
            "{}: state changed during the flood",
            ours[k].proc.name
        );
        assert_eq!(ours[k].state(VHIDS[k]).as_deref(), Some("BACKUP"));
    }

    // Each vhid fails over on its own: its master stopped (leave advert,
    // VIP removed), its backup process takes the VIP; the other VIPs stay
    // where they are.
    for (k, &vhid) in VHIDS.iter().enumerate() {
        peers[k].0.signal(libc::SIGTERM);
        peers[k]
            .0
            .proc
            .wait_exit(Duration::from_secs(10))
            .expect("a master stops on SIGTERM");
        ours[k].wait_state(vhid, "MASTER");
        eventually(&format!("VIP {vhid} moved to host 0"), || {
            (lan.holders(lan.addr(vhid)) == [0]).then_some(())
        });
        for &other in &VHIDS[k + 1..] {
            assert_eq!(lan.holders(lan.addr(other)), [1], "VIP {other} moved too");
        }
    }
}
