//! An advert as a whole Ethernet frame, built without I/O, for
//! `virtual_mac`: the raw IP socket cannot choose the source MAC, so a
//! master with a virtual MAC sends its adverts through a packet socket,
//! from `00:00:5e:00:01:<vhid>` as OpenBSD and FreeBSD do.
//!
//! The frame is the one the raw socket would have sent from the interface's
//! own MAC ([`super::sender`]): IPv4 with TOS 0x10 (low delay), DF, ID 0
//! (Linux's choice for a DF datagram of an unconnected socket) and TTL 255;
//! IPv6 with traffic class 0 and hop limit 255; no options; then the 36
//! bytes of the CARP header.

use std::net::IpAddr;

use carp_common::checksum::internet_checksum;
use carp_common::constants::{
    CARP_HEADER_LEN, CARP_TTL, ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_CARP, IPV4_MIN_HLEN,
    IPV6_HLEN,
};

/// TOS of our IPv4 adverts: low delay, as UCARP and carp(4) send.
pub const ADVERT_TOS: u8 = 0x10;
/// IPv4 "don't fragment" flag in the fragment offset word.
const IP_DF: u16 = 0x4000;

/// Length of an IPv4 advert frame.
pub const V4_LEN: usize = ETH_HLEN + IPV4_MIN_HLEN + CARP_HEADER_LEN;
/// Length of an IPv6 advert frame.
pub const V6_LEN: usize = ETH_HLEN + IPV6_HLEN + CARP_HEADER_LEN;

/// The Ethernet address an IP multicast group is sent to (RFC 1112 §6.4:
/// `01:00:5e` and the group's low 23 bits; RFC 2464 §7: `33:33` and its low
/// 32 bits); `None` for any other address.
pub fn multicast_mac(group: IpAddr) -> Option<[u8; 6]> {
    match group {
        IpAddr::V4(g) if g.is_multicast() => {
            let [_, b, c, d] = g.octets();
            Some([0x01, 0x00, 0x5e, b & 0x7f, c, d])
        }
        IpAddr::V6(g) if g.is_multicast() => {
            let o = g.octets();
            Some([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
        _ => None,
    }
}

/// The frame of `carp` (a sealed CARP header) from `src` to `dst`, sent
/// from `mac` to `dst_mac`; `None` when the two addresses are of different
/// families.
pub fn advert(
    mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    carp: &[u8; CARP_HEADER_LEN],
) -> Option<Vec<u8>> {
    let (ethertype, ip) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = [0u8; IPV4_MIN_HLEN];
            h[0] = 0x45; // version 4, 5 words
            h[1] = ADVERT_TOS;
            h[2..4].copy_from_slice(&((IPV4_MIN_HLEN + CARP_HEADER_LEN) as u16).to_be_bytes());
            // Bytes 4..6, the ID, stay 0.
            h[6..8].copy_from_slice(&IP_DF.to_be_bytes());
            h[8] = CARP_TTL;
            h[9] = IPPROTO_CARP;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let sum = internet_checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            (ETH_P_IP, h.to_vec())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = [0u8; IPV6_HLEN];
            h[0] = 0x60; // version 6, traffic class and flow label 0
            h[4..6].copy_from_slice(&(CARP_HEADER_LEN as u16).to_be_bytes());
            h[6] = IPPROTO_CARP;
            h[7] = CARP_TTL;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            (ETH_P_IPV6, h.to_vec())
        }
        _ => return None,
    };
    let mut f = Vec::with_capacity(ETH_HLEN + ip.len() + CARP_HEADER_LEN);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(carp);
    Some(f)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use carp_common::checksum::verify;
    use carp_common::constants::{CARP_GROUP_V4, CARP_GROUP_V6};

    use super::*;

    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 7];

    #[test]
    fn group_macs() {
        let v4 = IpAddr::V4(Ipv4Addr::from(CARP_GROUP_V4));
        let v6 = IpAddr::V6(Ipv6Addr::from(CARP_GROUP_V6));
        assert_eq!(multicast_mac(v4), Some([1, 0, 0x5e, 0, 0, 0x12]));
        assert_eq!(multicast_mac(v6), Some([0x33, 0x33, 0, 0, 0, 0x12]));
        // The 24th bit is not mapped.
        let high = IpAddr::V4(Ipv4Addr::new(239, 129, 2, 3));
        assert_eq!(multicast_mac(high), Some([1, 0, 0x5e, 1, 2, 3]));
        assert_eq!(multicast_mac("10.0.0.1".parse().unwrap()), None);
        assert_eq!(multicast_mac("fe80::1".parse().unwrap()), None);
    }

    #[test]
    fn ipv4_frame() {
        let carp = [0xabu8; CARP_HEADER_LEN];
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let dst = IpAddr::V4(Ipv4Addr::from(CARP_GROUP_V4));
        let f = advert(VMAC, [1, 0, 0x5e, 0, 0, 0x12], src, dst, &carp).unwrap();
        assert_eq!(f.len(), V4_LEN);
        assert_eq!(&f[0..6], &[1, 0, 0x5e, 0, 0, 0x12]);
        assert_eq!(&f[6..12], &VMAC);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let ip = &f[14..34];
        #[rustfmt::skip]
        let want_but_sum = [
            0x45, 0x10, 0, 56,  // version, IHL, TOS, total length 20 + 36
            0, 0, 0x40, 0,      // ID 0, DF
            255, 112,           // TTL, protocol
        ];
        assert_eq!(&ip[..10], &want_but_sum);
        assert_eq!(&ip[12..16], &[10, 0, 0, 2]);
        assert_eq!(&ip[16..20], &[224, 0, 0, 18]);
        assert!(verify(ip), "the IPv4 header checksum holds");
        assert_eq!(&f[34..], &carp);
    }

    #[test]
    fn ipv6_frame() {
        let carp = [0x5au8; CARP_HEADER_LEN];
        let src: IpAddr = "fe80::2".parse().unwrap();
        let dst = IpAddr::V6(Ipv6Addr::from(CARP_GROUP_V6));
        let f = advert(VMAC, [0x33, 0x33, 0, 0, 0, 0x12], src, dst, &carp).unwrap();
        assert_eq!(f.len(), V6_LEN);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(&f[14..22], &[0x60, 0, 0, 0, 0, 36, 112, 255]);
        assert_eq!(&f[22..38], &"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&f[38..54], &CARP_GROUP_V6);
        assert_eq!(&f[54..], &carp);
    }

    #[test]
    fn mixed_families_build_nothing() {
        let carp = [0u8; CARP_HEADER_LEN];
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "ff02::12".parse().unwrap();
        assert_eq!(advert(VMAC, [0; 6], v4, v6, &carp), None);
    }
}
