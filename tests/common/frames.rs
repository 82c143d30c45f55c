//! Crafted IPv4/IPv6 advert frames and one frame per defect the receive
//! path counts, for the tests that push frames through it.

use carp_common::checksum;
use carp_common::constants::*;
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;

/// The CARP header of an advert for `vhid` with `counter`, its HMAC
/// `hmac`, its checksum sealed.
pub fn carp_signed(vhid: u8, counter: u64, hmac: [u8; CARP_HMAC_LEN]) -> [u8; CARP_HEADER_LEN] {
    let mut h = CarpHeader::advertisement(vhid, 1, 0, 0, counter);
    h.hmac = hmac;
    h.seal_checksum();
    h.to_bytes()
}

/// As [`carp_signed`], with an HMAC no password gives.
pub fn carp(vhid: u8, counter: u64) -> [u8; CARP_HEADER_LEN] {
    carp_signed(vhid, counter, [0x11; CARP_HMAC_LEN])
}

/// An advert frame from `src_mac`, TTL 255.
pub fn frame(src_mac: [u8; 6], ip: IpLayer, carp: &[u8; 36]) -> Vec<u8> {
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let spec = AdvertFrame {
        src_mac,
        dst_mac: None,
        vlan_id: None,
        ip,
        ttl: 255,
        ip_id: 1,
        carp,
    };
    let n = advert_frame(&spec, &mut buf);
    buf[..n].to_vec()
}

/// An IPv4 advert frame to 224.0.0.18.
pub fn v4(src_mac: [u8; 6], src: [u8; 4], carp: &[u8; 36]) -> Vec<u8> {
    frame(
        src_mac,
        IpLayer::V4 {
            src,
            dst: CARP_GROUP_V4,
        },
        carp,
    )
}

/// Seals the IPv4 header checksum of an untagged IPv4 frame again.
pub fn fix_ip_checksum(f: &mut [u8]) {
    reseal(f, 24, 14..34);
}

/// Seals the CARP checksum of an untagged IPv4 frame again.
pub fn fix_carp_checksum(f: &mut [u8]) {
    reseal(f, 40, 34..70);
}

/// Stores at `field` the checksum of `covered`, the field counted as zero.
fn reseal(f: &mut [u8], field: usize, covered: std::ops::Range<usize>) {
    f[field..field + 2].copy_from_slice(&[0, 0]);
    let c = checksum::internet_checksum(&f[covered]);
    f[field..field + 2].copy_from_slice(&c.to_be_bytes());
}

/// One frame per defect from `mac` and `src` for `vhid`, with the counter
/// each must bump (the unknown vhid is `vhid + 1`).
pub fn defects(mac: [u8; 6], src: [u8; 4], vhid: u8) -> Vec<(&'static str, Vec<u8>)> {
    let good = v4(mac, src, &carp(vhid, 1));
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut g = good.clone();
        f(&mut g);
        g
    };
    // Byte `at` set to `v` and the checksum sealed again by `seal`: a
    // defect of that field alone.
    let set = |at: usize, v: u8, seal: fn(&mut [u8])| {
        edit(&|g| {
            g[at] = v;
            seal(g)
        })
    };
    vec![
        ("truncated", good[..good.len() - 1].to_vec()),
        ("ip_header", edit(&|g| g[24] ^= 0xff)),
        ("fragment", set(20, 0x20, fix_ip_checksum)),
        ("ttl", set(22, 64, fix_ip_checksum)),
        ("version", set(34, 0x31, fix_carp_checksum)),
        ("type", set(34, 0x22, fix_carp_checksum)),
        ("authlen", set(37, 6, fix_carp_checksum)),
        ("checksum", edit(&|g| g[60] ^= 1)),
        ("unknown_vhid", v4(mac, src, &carp(vhid + 1, 1))),
    ]
}
