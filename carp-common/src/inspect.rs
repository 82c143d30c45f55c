//! The receive-path classifier: what the XDP program runs on every frame and
//! the fallback path runs in userspace.
//!
//! Checks follow OpenBSD's `carp_input`: stateless and cheap first (EtherType,
//! protocol, IP header, TTL, CARP version, type, authlen, checksum), then the
//! stateful ones (vhid served, per-source rate). A frame that is not IP
//! protocol 112 is recognised after two or three loads and left alone.

use crate::access::Packet;
use crate::checksum;
use crate::constants::*;
use crate::event::AdvertEvent;
use crate::header::CarpHeader;
use crate::maps::{RateKey, VhidKey};
use crate::reason::Reason;

/// The clock and the stateful lookups the classifier needs (BPF helpers and
/// maps in the kernel, hash maps in the fallback path). None of them is
/// called before a frame is known to be IP protocol 112, so ordinary traffic
/// pays for none of them.
pub trait Tables {
    /// Monotonic time in ns (the event's timestamp and the rate limiter's clock).
    fn now_ns(&mut self) -> u64;
    /// True when the daemon serves this (interface, vhid).
    fn vhid_served(&self, key: &VhidKey) -> bool;
    /// Runs the source's rate limiter for an advert at `now_ns`; true if it conforms.
    fn rate_conforms(&mut self, key: &RateKey, now_ns: u64) -> bool;
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not IP protocol 112: none of our business.
    NotCarp,
    /// A protocol-112 frame rejected for this reason.
    Drop(Reason),
    /// A valid advert to hand to userspace.
    Advert(AdvertEvent),
}

/// Where the IP layer of a frame starts and which family it is.
struct L3 {
    offset: usize,
    ethertype: u16,
    vlan_id: u16,
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Classifies one frame received on `ifindex`.
#[inline(always)]
pub fn inspect<P: Packet + ?Sized, T: Tables>(pkt: &P, ifindex: u32, tables: &mut T) -> Verdict {
    let Some(l3) = link_layer(pkt) else {
        return Verdict::NotCarp;
    };
    let mut ev = AdvertEvent::zeroed();
    ev.ifindex = ifindex;
    ev.vlan_id = l3.vlan_id;
    let carp_offset = match l3.ethertype {
        ETH_P_IP => match ipv4(pkt, l3.offset, &mut ev) {
            Ok(Some(off)) => off,
            Ok(None) => return Verdict::NotCarp,
            Err(r) => return Verdict::Drop(r),
        },
        ETH_P_IPV6 => match ipv6(pkt, l3.offset, &mut ev) {
            Ok(Some(off)) => off,
            Ok(None) => return Verdict::NotCarp,
            Err(r) => return Verdict::Drop(r),
        },
        _ => return Verdict::NotCarp,
    };
    let Some(carp) = pkt.load::<CARP_HEADER_LEN>(carp_offset) else {
        return Verdict::Drop(Reason::Truncated);
    };
    if let Err(r) = carp_header(&carp) {
        return Verdict::Drop(r);
    }
    ev.carp = carp;
    let now_ns = tables.now_ns();
    ev.timestamp_ns = now_ns;

    let vhid_key = VhidKey {
        ifindex,
        vhid: u32::from(carp[1]),
    };
    if !tables.vhid_served(&vhid_key) {
        return Verdict::Drop(Reason::UnknownVhid);
    }
    let rate_key = RateKey {
        ifindex,
        family: u32::from(ev.family),
        addr: ev.src,
    };
    if !tables.rate_conforms(&rate_key, now_ns) {
        return Verdict::Drop(Reason::RateLimited);
    }
    Verdict::Advert(ev)
}

/// Finds the EtherType and the start of the IP header (one 802.1Q tag allowed).
#[inline(always)]
fn link_layer<P: Packet + ?Sized>(pkt: &P) -> Option<L3> {
    let ethertype = be16(pkt.load::<2>(12)?);
    if ethertype != ETH_P_8021Q {
        return Some(L3 {
            offset: ETH_HLEN,
            ethertype,
            vlan_id: 0,
        });
    }
    let tag = pkt.load::<4>(ETH_HLEN)?;
    Some(L3 {
        offset: ETH_HLEN + VLAN_HLEN,
        ethertype: be16([tag[2], tag[3]]),
        vlan_id: be16([tag[0], tag[1]]) & 0x0fff,
    })
}

/// Validates an IPv4 header at `off`. `Ok(None)`: not protocol 112;
/// `Ok(Some(o))`: the CARP header starts at `o`.
#[inline(always)]
fn ipv4<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    ev: &mut AdvertEvent,
) -> Result<Option<usize>, Reason> {
    // The protocol byte alone first: the common case leaves after this load.
    let proto = pkt.load::<1>(off + 9).ok_or(Reason::Truncated);
    match proto {
        Ok([IPPROTO_CARP]) => {}
        _ => return Ok(None),
    }
    let ip = pkt.load::<IPV4_MIN_HLEN>(off).ok_or(Reason::Truncated)?;
    let ihl = usize::from(ip[0] & 0x0f);
    if ip[0] >> 4 != 4 || ihl < 5 {
        return Err(Reason::IpHeader);
    }
    let hlen = ihl * 4;
    let total_len = usize::from(be16([ip[2], ip[3]]));
    if total_len < hlen + CARP_HEADER_LEN {
        return Err(Reason::IpHeader);
    }
    if off + total_len > pkt.len() {
        return Err(Reason::Truncated);
    }
    if be16([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(Reason::Fragment);
    }
    let mut sum = checksum::add_words(0, &ip);
    // Options: at most 40 bytes, 20 words; bounded loop for the verifier.
    let mut i = IPV4_MIN_HLEN;
    while i < 60 {
        if i >= hlen {
            break;
        }
        let w = pkt.load::<2>(off + i).ok_or(Reason::Truncated)?;
        sum += u32::from(be16(w));
        i += 2;
    }
    if checksum::fold(sum) != 0xffff {
        return Err(Reason::IpHeader);
    }
    if ip[8] != CARP_TTL {
        return Err(Reason::Ttl);
    }
    ev.family = AF_INET;
    ev.ttl = ip[8];
    ev.src[..4].copy_from_slice(&ip[12..16]);
    ev.dst[..4].copy_from_slice(&ip[16..20]);
    Ok(Some(off + hlen))
}

/// Validates an IPv6 header at `off` (no extension headers: a frame whose
/// first next-header is not 112 is not ours).
#[inline(always)]
fn ipv6<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    ev: &mut AdvertEvent,
) -> Result<Option<usize>, Reason> {
    match pkt.load::<1>(off + 6) {
        Some([IPPROTO_CARP]) => {}
        _ => return Ok(None),
    }
    let ip = pkt.load::<IPV6_HLEN>(off).ok_or(Reason::Truncated)?;
    if ip[0] >> 4 != 6 {
        return Err(Reason::IpHeader);
    }
    let payload_len = usize::from(be16([ip[4], ip[5]]));
    if payload_len < CARP_HEADER_LEN {
        return Err(Reason::IpHeader);
    }
    if off + IPV6_HLEN + payload_len > pkt.len() {
        return Err(Reason::Truncated);
    }
    if ip[7] != CARP_TTL {
        return Err(Reason::Ttl);
    }
    ev.family = AF_INET6;
    ev.ttl = ip[7];
    ev.src.copy_from_slice(&ip[8..24]);
    ev.dst.copy_from_slice(&ip[24..40]);
    Ok(Some(off + IPV6_HLEN))
}

/// The stateless checks of the CARP header itself.
#[inline(always)]
pub fn carp_header(carp: &[u8; CARP_HEADER_LEN]) -> Result<(), Reason> {
    let h = CarpHeader::from_bytes(carp);
    if h.version() != CARP_VERSION {
        return Err(Reason::Version);
    }
    if h.kind() != CARP_ADVERTISEMENT {
        return Err(Reason::Type);
    }
    if h.authlen != CARP_AUTHLEN {
        return Err(Reason::AuthLen);
    }
    if !checksum::verify(carp) {
        return Err(Reason::Checksum);
    }
    Ok(())
}
