//! Building complete advert frames (Ethernet, optional 802.1Q, IPv4 or IPv6,
//! CARP) into a caller's buffer: used by tests, by the traffic generators and
//! wherever the daemon writes whole frames itself.

use crate::checksum;
use crate::constants::*;

/// Largest frame [`advert_frame`] writes (Ethernet + 802.1Q + IPv6 + CARP).
pub const MAX_ADVERT_FRAME: usize = ETH_HLEN + VLAN_HLEN + IPV6_HLEN + CARP_HEADER_LEN;

/// The IP layer of a crafted advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpLayer {
    /// IPv4 from `src` to `dst`.
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address (224.0.0.18 or a unicast peer).
        dst: [u8; 4],
    },
    /// IPv6 from `src` to `dst`.
    V6 {
        /// Source address (link-local as a rule).
        src: [u8; 16],
        /// Destination address (ff02::12 or a unicast peer).
        dst: [u8; 16],
    },
}

/// Everything needed to write an advert frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertFrame<'a> {
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// Ethernet destination; `None` derives it from a multicast destination
    /// address (and uses broadcast for a unicast one).
    pub dst_mac: Option<[u8; 6]>,
    /// 802.1Q VLAN id, `None` for an untagged frame.
    pub vlan_id: Option<u16>,
    /// Addresses.
    pub ip: IpLayer,
    /// TTL or hop limit (255 for a valid advert).
    pub ttl: u8,
    /// IPv4 identification field.
    pub ip_id: u16,
    /// The 36 CARP bytes, checksum and HMAC already filled in.
    pub carp: &'a [u8; CARP_HEADER_LEN],
}

/// Ethernet multicast address of an IPv4 group (01:00:5e + low 23 bits).
pub const fn multicast_mac_v4(group: [u8; 4]) -> [u8; 6] {
    [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]]
}

/// Ethernet multicast address of an IPv6 group (33:33 + low 32 bits).
pub const fn multicast_mac_v6(group: [u8; 16]) -> [u8; 6] {
    [0x33, 0x33, group[12], group[13], group[14], group[15]]
}

/// The IPv4 header UCARP and carp(4) send: TOS 0x10 (low delay), DF, no options.
pub fn ipv4_header(
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    id: u16,
    payload_len: u16,
) -> [u8; IPV4_MIN_HLEN] {
    let total = (IPV4_MIN_HLEN as u16 + payload_len).to_be_bytes();
    let id = id.to_be_bytes();
    let mut h = [
        0x45,
        0x10,
        total[0],
        total[1],
        id[0],
        id[1],
        0x40,
        0x00,
        ttl,
        IPPROTO_CARP,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let c = checksum::internet_checksum(&h).to_be_bytes();
    h[10] = c[0];
    h[11] = c[1];
    h
}

/// Writes the frame into `buf` and returns its length.
pub fn advert_frame(spec: &AdvertFrame<'_>, buf: &mut [u8; MAX_ADVERT_FRAME]) -> usize {
    let dst_mac = spec.dst_mac.unwrap_or(match spec.ip {
        IpLayer::V4 { dst, .. } if dst[0] >= 224 && dst[0] < 240 => multicast_mac_v4(dst),
        IpLayer::V6 { dst, .. } if dst[0] == 0xff => multicast_mac_v6(dst),
        _ => [0xff; 6],
    });
    buf[0..6].copy_from_slice(&dst_mac);
    buf[6..12].copy_from_slice(&spec.src_mac);
    let mut off = 12;
    if let Some(vid) = spec.vlan_id {
        buf[off..off + 2].copy_from_slice(&ETH_P_8021Q.to_be_bytes());
        buf[off + 2..off + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
        off += VLAN_HLEN;
    }
    let ethertype = match spec.ip {
        IpLayer::V4 { .. } => ETH_P_IP,
        IpLayer::V6 { .. } => ETH_P_IPV6,
    };
    buf[off..off + 2].copy_from_slice(&ethertype.to_be_bytes());
    off += 2;
    match spec.ip {
        IpLayer::V4 { src, dst } => {
            let h = ipv4_header(src, dst, spec.ttl, spec.ip_id, CARP_HEADER_LEN as u16);
            buf[off..off + IPV4_MIN_HLEN].copy_from_slice(&h);
            off += IPV4_MIN_HLEN;
        }
        IpLayer::V6 { src, dst } => {
            let len = (CARP_HEADER_LEN as u16).to_be_bytes();
            let fixed = [0x60, 0, 0, 0, len[0], len[1], IPPROTO_CARP, spec.ttl];
            buf[off..off + 8].copy_from_slice(&fixed);
            buf[off + 8..off + 24].copy_from_slice(&src);
            buf[off + 24..off + 40].copy_from_slice(&dst);
            off += IPV6_HLEN;
        }
    }
    buf[off..off + CARP_HEADER_LEN].copy_from_slice(spec.carp);
    off + CARP_HEADER_LEN
}
