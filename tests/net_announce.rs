//! `net::announce` on the wire: the sender namespace announces an IPv4 and
//! an IPv6 VIP; the peer namespace captures the frames with its own packet
//! socket and its neighbour table moves the VIPs to the sender's MAC (the
//! kernel checks the ARP fields, the ICMPv6 checksum, the hop limit and the
//! override flag before it does).

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use carp_daemon::net::announce::Announcer;
use carp_daemon::net::frame;
use carp_testnet::socket;
use common::{block_on, must, require_root, veth_pair, Netns};

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const FAKE_MAC: &str = "02:11:11:11:11:11";

/// A capturing packet socket (all protocols) bound to `ifindex`, with a
/// receive timeout; opened by a thread inside the peer namespace.
fn capture_socket(ifindex: u32) -> OwnedFd {
    let fd = must(socket::packet_socket(libc::ETH_P_ALL as u16, ifindex, 0));
    must(socket::set_recv_timeout(&fd, Duration::from_secs(1)));
    fd
}

/// Frames received from `src_mac` within `limit`, until `done` says enough.
fn collect(
    fd: &OwnedFd,
    src_mac: [u8; 6],
    limit: Duration,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut frames = Vec::new();
    while start.elapsed() < limit && !done(&frames) {
        let mut buf = [0u8; 2048];
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n > 14 && buf[6..12] == src_mac {
            frames.push(buf[..n as usize].to_vec());
        }
    }
    frames
}

fn is_arp(f: &[u8]) -> bool {
    f[12..14] == [0x08, 0x06]
}

fn is_na(f: &[u8]) -> bool {
    f.len() >= 54 + 32 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 136
}

/// Polls `ip neigh` in `ns` until `addr` is at `mac` (bounded).
fn wait_neigh(ns: &Netns, addr: &str, mac: &str) -> String {
    let start = Instant::now();
    loop {
        let out = ns.ip(&["neigh", "show", "to", addr, "dev", "vb"]);
        if out.contains(mac) || start.elapsed() > Duration::from_secs(20) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn garp_and_unsolicited_na_reach_the_peer() {
    if !require_root("garp_and_unsolicited_na_reach_the_peer") {
        return;
    }
    let (a, b) = veth_pair("cann", "va", "cann", "vb");
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb"]);
    b.ip(&["addr", "add", "2001:db8::2/64", "dev", "vb", "nodad"]);
    // The peer believes the VIPs are elsewhere (the previous master); the
    // announcements must override that.
    for vip in ["192.0.2.10", "2001:db8::10"] {
        b.ip(&[
            "neigh", "replace", vip, "lladdr", FAKE_MAC, "dev", "vb", "nud", "stale",
        ]);
    }
    let (va, mac) = (a.ifindex("va"), a.mac("va"));
    let vb = b.ifindex("vb");
    let cap = b.run(|| capture_socket(vb));

    a.run(|| {
        block_on(async {
            let ann = Announcer::open(va, mac).expect("packet socket");
            assert_eq!(ann.mac(), mac);
            ann.announce(&[VIP4.into(), VIP6.into()], 2, Duration::from_millis(50))
                .await
                .expect("announce");
        })
    });

    let frames = collect(&cap, mac, Duration::from_secs(20), |f| {
        f.iter().filter(|x| is_arp(x)).count() >= 2 && f.iter().filter(|x| is_na(x)).count() >= 2
    });
    let arps: Vec<_> = frames.iter().filter(|f| is_arp(f)).collect();
    let nas: Vec<_> = frames.iter().filter(|f| is_na(f)).collect();
    assert_eq!(arps.len(), 2, "two gratuitous ARPs: {frames:02x?}");
    assert_eq!(nas.len(), 2, "two unsolicited NAs: {frames:02x?}");

    let arp = arps[0];
    assert_eq!(arp[0..6], [0xff; 6], "broadcast");
    assert_eq!(arp[20..22], [0, 1], "ARP request");
    assert_eq!(arp[22..28], mac, "sender MAC");
    assert_eq!(arp[28..32], VIP4.octets(), "sender IP is the VIP");
    assert_eq!(arp[38..42], VIP4.octets(), "target IP is the VIP");
    assert_eq!(arp[..frame::GARP_LEN], frame::gratuitous_arp(mac, VIP4));

    let na = nas[0];
    assert_eq!(na[0..6], [0x33, 0x33, 0, 0, 0, 1], "all-nodes MAC");
    assert_eq!(na[21], 255, "hop limit");
    assert_eq!(
        na[38..54],
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets(),
        "to ff02::1"
    );
    assert_ne!(na[58] & 0x20, 0, "override flag");
    assert_eq!(na[62..78], VIP6.octets(), "target");
    assert_eq!(na[78..80], [2, 1], "target link-layer address option");
    assert_eq!(na[80..86], mac);

    let mac_s = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let n4 = wait_neigh(&b, "192.0.2.10", &mac_s);
    assert!(n4.contains(&mac_s), "peer ARP table: {n4:?}, want {mac_s}");
    let n6 = wait_neigh(&b, "2001:db8::10", &mac_s);
    assert!(
        n6.contains(&mac_s),
        "peer neighbour table: {n6:?}, want {mac_s}"
    );
}
