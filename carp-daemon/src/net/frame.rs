//! Ethernet frames announcing a takeover, built without I/O.
//!
//! * Gratuitous ARP (RFC 5227 §3 "ARP Announcement", RFC 826 layout): an ARP
//!   request broadcast from the interface MAC whose sender and target
//!   protocol addresses are both the VIP, target hardware address zero.
//! * Unsolicited neighbour advertisement (RFC 4861 §7.2.6): ICMPv6 type 136
//!   to all-nodes `ff02::1` with hop limit 255, the override flag set, and a
//!   target link-layer address option (§4.6.1) carrying the interface MAC.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of a gratuitous ARP frame (Ethernet header + ARP for IPv4).
pub const GARP_LEN: usize = 14 + 28;
/// Length of an unsolicited NA frame (Ethernet + IPv6 + NA + TLLA option).
pub const NA_LEN: usize = 14 + 40 + NA_ICMP_LEN;
/// Length of the ICMPv6 part of the NA: header 4, flags 4, target 16, option 8.
const NA_ICMP_LEN: usize = 4 + 4 + 16 + 8;

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ARPHRD_ETHER: u16 = 1;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ARPOP_REQUEST: u16 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// NA flags (RFC 4861 §4.4): Router, Solicited, Override.
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// Option type 2: target link-layer address; length in units of 8 bytes.
const ND_OPT_TARGET_LLADDR: u8 = 2;
/// Hop limit required on neighbour discovery messages (RFC 4861 §7.1.2).
const ND_HOP_LIMIT: u8 = 255;

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// The Ethernet multicast address of ff02::1 (RFC 2464 §7: 33:33 + low 32 bits).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// The all-nodes link-local multicast address.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A gratuitous ARP request announcing that `vip` is at `mac`.
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let arp = &mut f[14..];
    arp[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    arp[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    arp[4] = 6; // hardware address length
    arp[5] = 4; // protocol address length
    arp[6..8].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    arp[8..14].copy_from_slice(&mac); // sender hardware address
    arp[14..18].copy_from_slice(&vip.octets()); // sender protocol address
                                                // target hardware address stays zero (bytes 18..24)
    arp[24..28].copy_from_slice(&vip.octets()); // target protocol address
    f
}

/// An unsolicited neighbour advertisement that `target` is at `mac`, sent
/// from `src` (normally the VIP itself) to ff02::1 with the override flag;
/// `router` sets the router flag (for a VIP used as a gateway).
pub fn unsolicited_na(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr, router: bool) -> [u8; NA_LEN] {
    let mut f = [0u8; NA_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());

    let ip = &mut f[14..54];
    ip[0] = 0x60; // version 6, traffic class 0, flow label 0
    ip[4..6].copy_from_slice(&(NA_ICMP_LEN as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = ND_HOP_LIMIT;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&ALL_NODES.octets());

    let icmp = &mut f[54..];
    icmp[0] = ND_NEIGHBOR_ADVERT;
    icmp[1] = 0; // code
    icmp[4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = ND_OPT_TARGET_LLADDR;
    icmp[25] = 1; // option length: 1 × 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(src, ALL_NODES, icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `icmp` (with its checksum field
/// zero) over the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = match chunk {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                [hi] => u16::from_be_bytes([*hi, 0]),
                _ => 0,
            };
            sum += u64::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    // Upper-layer length is 32 bits; ICMP messages built here are far shorter.
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn garp_golden_bytes() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 10));
        #[rustfmt::skip]
        let want: [u8; GARP_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // source MAC
            0x08, 0x06,                         // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4,       // Ethernet / IPv4
            0x00, 0x01,                         // request
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // sender MAC
            192, 0, 2, 10,                      // sender IP = VIP
            0, 0, 0, 0, 0, 0,                   // target MAC unknown
            192, 0, 2, 10,                      // target IP = VIP
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn na_golden_bytes() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let f = unsolicited_na(MAC, vip, vip, false);
        #[rustfmt::skip]
        let want: [u8; NA_LEN] = [
            0x33, 0x33, 0, 0, 0, 1,             // all-nodes multicast MAC
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // source MAC
            0x86, 0xdd,                         // IPv6
            0x60, 0, 0, 0, 0, 32, 58, 255,      // version, payload 32, ICMPv6, hop limit 255
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // src
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,       // ff02::1
            136, 0, 0x7a, 0xcd,                 // NA, code 0, checksum
            0x20, 0, 0, 0,                      // override
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
            2, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, // target link-layer address
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn na_router_flag() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        assert_eq!(unsolicited_na(MAC, vip, vip, true)[14 + 40 + 4], 0xa0);
    }

    #[test]
    fn checksum_verifies_to_zero() {
        // Summing a message including its correct checksum gives 0 (RFC 1071).
        let vip: Ipv6Addr = "fe80::1234".parse().unwrap();
        let f = unsolicited_na(MAC, vip, "2001:db8::99".parse().unwrap(), true);
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, &f[54..]), 0);
    }
}
