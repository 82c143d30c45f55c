//! The receive-path classifier: what the XDP program runs on every frame and
//! the fallback path runs in userspace.
//!
//! Checks follow OpenBSD's `carp_input`: stateless and cheap first (EtherType,
//! protocol, IP header, TTL, CARP version, type, authlen, checksum), then the
//! stateful ones: vhid served, peer allow-list, HMAC, replay, rate per (source, vhid). A frame that is
//! not IP protocol 112 is recognised after two or three loads and left alone.
//!
//! The rate limit comes last on purpose (house style puts it first): were it
//! before the other checks, forged or replayed adverts carrying the real
//! master's source address would use up the master's bucket, and its genuine
//! adverts would be dropped as over the rate: a flood could cause a false
//! takeover. Forged adverts fail the HMAC instead, replays of a source with
//! a rule fail the rule (the same rule the protocol core applies, for every
//! kind of peer), and neither touches the bucket.
//!
//! The bucket is per (source, vhid), not per source: a host that is master of
//! many vhids sends all their adverts in one burst each interval, and a
//! shared bucket would drop the tail of that burst however it was sized. Per
//! vhid, a genuine master sends one advert per advert interval, whatever the
//! number of vhids and their phases.
//!
//! A frame that carries a VLAN id belongs to that VLAN's interface, not to
//! the one the classifier runs on (the parent, `eth0` under `eth0.100`):
//! it is none of the classifier's business ([`Verdict::NotCarp`]), so the
//! stack hands it to the VLAN interface, whose own program (or the fallback
//! path) judges it against the VLAN's instances. The tag is read from the
//! frame, where it costs nothing (the EtherType load every frame pays), or,
//! for protocol-112 frames only, from [`Tables::stripped_vlan_id`] when the
//! NIC or the stack took it off before this hook. An 802.1p priority tag
//! (VLAN id 0) is no VLAN: such frames are the interface's own.
//!
//! The classifier does not build the event: [`Verdict::Advert`] says where the
//! advert lies, and [`fill_event`] copies it straight into ring-buffer memory,
//! keeping the 96-byte event off the XDP program's 512-byte stack.

use crate::access::Packet;
use crate::checksum;
use crate::constants::*;
use crate::event::{AdvertEvent, EVENT_REPLAY_RECORDED};
use crate::maps::{
    Admit, PeerKey, PeerValue, RateKey, ReplayKey, SourceKey, VhidKey, RATE_REPEATS,
    VHID_PEERS_ONLY, VHID_SERVED,
};
use crate::reason::Reason;

/// What authentication in the receive path found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No key for this vhid here (userspace verifies it).
    Unchecked,
    /// The HMAC matches.
    Good,
    /// The HMAC does not match.
    Bad,
}

/// The clock and the stateful lookups the classifier needs (BPF helpers and
/// maps in the kernel, hash maps in the fallback path). None of them is
/// called before a frame is known to be IP protocol 112, so ordinary traffic
/// pays for none of them.
pub trait Tables {
    /// Monotonic time in ns (the event's timestamp and the rate limiter's clock).
    fn now_ns(&mut self) -> u64;
    /// The VLAN id the NIC or the stack took off the frame before this
    /// hook (the socket buffer's `vlan_tci` in the TC program), 0 when
    /// none or when the hook cannot know (XDP). Asked of protocol-112
    /// frames only.
    fn stripped_vlan_id(&self) -> u16 {
        0
    }
    /// The flags of this (interface, vhid) ([`VHID_SERVED`],
    /// [`VHID_PEERS_ONLY`]); 0 when the daemon does not serve it.
    fn vhid_flags(&self, key: &VhidKey) -> u32;
    /// The allow-list entry of this source for the vhid, if any.
    fn peer(&self, key: &PeerKey) -> Option<PeerValue>;
    /// Checks the advert's HMAC with the vhid's precomputed key, if any.
    fn authenticate(
        &mut self,
        key: &VhidKey,
        counter: &[u8; 8],
        hmac: &[u8; CARP_HMAC_LEN],
    ) -> Auth;
    /// What the replay rule the daemon set for this source says of
    /// `counter` from Ethernet source `mac`; `None` when the source has no
    /// rule (one the daemon never accepted an advert from). Changes
    /// nothing: it runs before the HMAC.
    fn replay_admits(&mut self, key: &ReplayKey, counter: u64, mac: &[u8; 6]) -> Option<Admit>;
    /// Records `counter` in the source's replay rule, if any; true if there
    /// is one. Called only for adverts whose HMAC was verified here, so
    /// forged adverts cannot move the state.
    fn replay_record(&mut self, key: &ReplayKey, counter: u64) -> bool;
    /// Runs the rate limiter of this (source, vhid) for an advert at
    /// `now_ns`; true if it conforms.
    fn rate_conforms(&mut self, key: &RateKey, now_ns: u64) -> bool;
    /// Returns `layout` unchanged, but such that the BPF verifier no longer
    /// knows its values (it goes through memory). Called before the HMAC
    /// and after it: every kind of frame then reaches the HMAC, and what
    /// follows it, in the same verifier state, so they are verified a few
    /// times instead of once per kind of frame (each SHA-1 costs about
    /// 16,000 verified instructions). Userspace returns it as it is.
    fn forget_layout(&mut self, layout: Layout) -> Layout {
        layout
    }
}

/// Where the layers of a frame lie (what differs between IPv4 and IPv6,
/// priority-tagged and untagged frames, with or without IP options), and
/// what the replay rule said of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Layout {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// 1: the source has a replay rule (the daemon accepted its adverts).
    pub ruled: u16,
    /// Offset of the IP header.
    pub ip_offset: u16,
    /// Offset of the CARP header.
    pub carp_offset: u16,
    /// 1: the source's replay rule says [`Admit::Repeat`].
    pub repeat: u16,
    /// 1: the source's replay rule recorded the counter.
    pub recorded: u16,
}

/// Where a validated advert lies in its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// The source has a replay rule: the daemon accepted adverts from it
    /// before. Sources without one may use only part of the ring buffer
    /// (see the XDP program's `deliver`).
    pub ruled: bool,
    /// Offset of the IP header.
    pub ip_offset: u16,
    /// Offset of the CARP header.
    pub carp_offset: u16,
    /// When it was inspected (monotonic ns).
    pub now_ns: u64,
    /// The source's replay rule recorded its counter.
    pub recorded: bool,
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not IP protocol 112, or a VLAN's frame: none of our business.
    NotCarp,
    /// A protocol-112 frame rejected for this reason.
    Drop(Reason),
    /// A valid advert to hand to userspace.
    Advert(Located),
}

/// Where the IP layer of a frame starts and which family it is.
struct L3 {
    offset: usize,
    ethertype: u16,
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
    let (family, carp_offset) = match l3.ethertype {
        ETH_P_IP => match ipv4(pkt, l3.offset) {
            Ok(Some(off)) => (AF_INET, off),
            Ok(None) => return Verdict::NotCarp,
            Err(r) => return Verdict::Drop(r),
        },
        ETH_P_IPV6 => match ipv6(pkt, l3.offset) {
            Ok(Some(off)) => (AF_INET6, off),
            Ok(None) => return Verdict::NotCarp,
            Err(r) => return Verdict::Drop(r),
        },
        _ => return Verdict::NotCarp,
    };
    // The VLAN's own path judges it (see the module's documentation).
    if tables.stripped_vlan_id() != 0 {
        return Verdict::NotCarp;
    }
    let Some(fixed) = pkt.load::<8>(carp_offset) else {
        return Verdict::Drop(Reason::Truncated);
    };
    if let Err(r) = carp_fixed(&fixed) {
        return Verdict::Drop(r);
    }
    // The checksum over all 36 bytes, read in small pieces: no 36-byte copy.
    let mut sum = checksum::add_words(0, &fixed);
    let Some(counter) = pkt.load::<8>(carp_offset + 8) else {
        return Verdict::Drop(Reason::Truncated);
    };
    sum = checksum::add_words(sum, &counter);
    // The digest is read here for the checksum and again for the HMAC:
    // kept in between, its 20 bytes would take 160 bytes of BPF stack.
    match pkt.load::<CARP_HMAC_LEN>(carp_offset + 16) {
        Some(hmac) => sum = checksum::add_words(sum, &hmac),
        None => return Verdict::Drop(Reason::Truncated),
    }
    if checksum::fold(sum) != 0xffff {
        return Verdict::Drop(Reason::Checksum);
    }

    let vhid_key = VhidKey {
        ifindex,
        vhid: u32::from(fixed[1]),
    };
    let flags = tables.vhid_flags(&vhid_key);
    if flags & VHID_SERVED == 0 {
        return Verdict::Drop(Reason::UnknownVhid);
    }
    let Some(mac) = pkt.load::<6>(6) else {
        return Verdict::Drop(Reason::Truncated);
    };
    let mut key = SourceKey {
        ifindex,
        vhid: u16::from(fixed[1]),
        family,
        addr: source(pkt, l3.offset, family),
    };
    // The peer allow-list, before the HMAC: a source that may not speak for
    // the vhid costs one lookup, not a SHA-1.
    if flags & VHID_PEERS_ONLY != 0 {
        let Some(peer) = tables.peer(&key) else {
            return Verdict::Drop(Reason::NotAllowed);
        };
        if peer.mac_pinned != 0 && mac != peer.mac {
            return Verdict::Drop(Reason::NotAllowed);
        }
    }
    // The replay rule, before the HMAC too: a counter the source's rule
    // refuses is dropped whether the advert is a replay or a forgery, and a
    // replay flood costs no SHA-1 per frame.
    let counter_value = u64::from_be_bytes(counter);
    let admit = tables.replay_admits(&key, counter_value, &mac);
    if admit == Some(Admit::Refused) {
        return Verdict::Drop(Reason::Replay);
    }
    let mut layout = tables.forget_layout(Layout {
        family,
        ruled: u16::from(admit.is_some()),
        ip_offset: l3.offset as u16,
        carp_offset: carp_offset as u16,
        repeat: u16::from(admit == Some(Admit::Repeat)),
        recorded: 0,
    });
    key.family = layout.family;
    let Some(hmac) = pkt.load::<CARP_HMAC_LEN>(usize::from(layout.carp_offset) + 16) else {
        return Verdict::Drop(Reason::Truncated);
    };
    match tables.authenticate(&vhid_key, &counter, &hmac) {
        Auth::Bad => return Verdict::Drop(Reason::Hmac),
        Auth::Good if layout.repeat == 0 => {
            layout.recorded = u16::from(tables.replay_record(&key, counter_value));
        }
        Auth::Good | Auth::Unchecked => {}
    }
    let layout = tables.forget_layout(layout);
    let now_ns = tables.now_ns();
    // Repeats have their own budget: a flood of them cannot get the
    // source's new adverts dropped.
    key.family = layout.family;
    if layout.repeat != 0 {
        key.vhid |= RATE_REPEATS;
    }
    if !tables.rate_conforms(&key, now_ns) {
        return Verdict::Drop(Reason::RateLimited);
    }
    Verdict::Advert(Located {
        family: layout.family,
        ruled: layout.ruled != 0,
        ip_offset: layout.ip_offset,
        carp_offset: layout.carp_offset,
        now_ns,
        recorded: layout.recorded != 0,
    })
}

/// The source address of the IP header at `off` (IPv4 in the first 4 bytes).
#[inline(always)]
fn source<P: Packet + ?Sized>(pkt: &P, off: usize, family: u16) -> [u8; 16] {
    let mut src = [0u8; 16];
    if family == AF_INET {
        if let Some(a) = pkt.load::<4>(off + 12) {
            src[..4].copy_from_slice(&a);
        }
    } else if let Some(a) = pkt.load::<16>(off + 8) {
        src = a;
    }
    src
}

/// Writes the event of a located advert into `ev` (ring-buffer memory in the
/// kernel); false if the frame no longer holds it (cannot happen for a frame
/// [`inspect`] located).
#[inline(always)]
pub fn fill_event<P: Packet + ?Sized>(
    pkt: &P,
    at: &Located,
    ifindex: u32,
    ev: &mut AdvertEvent,
) -> bool {
    let ip = usize::from(at.ip_offset);
    ev.timestamp_ns = at.now_ns;
    ev.ifindex = ifindex;
    ev.family = at.family;
    // Tagged frames are left to their VLAN interface: never one here.
    ev.vlan_id = 0;
    ev.flags = if at.recorded {
        EVENT_REPLAY_RECORDED
    } else {
        0
    };
    ev._pad1 = [0; 2];
    ev._pad2 = [0; 2];
    let Some(mac) = pkt.load::<6>(6) else {
        return false;
    };
    ev.src_mac = mac;
    ev.src = source(pkt, ip, at.family);
    ev.dst = [0; 16];
    // One bounds check per load, each with its own early return: merged
    // checks (a tuple of loads) compile to code the verifier cannot follow.
    if at.family == AF_INET {
        let Some(h) = pkt.load::<IPV4_MIN_HLEN>(ip) else {
            return false;
        };
        ev.ttl = h[8];
        ev.dst[..4].copy_from_slice(&h[16..20]);
    } else {
        let Some(h) = pkt.load::<8>(ip) else {
            return false;
        };
        ev.ttl = h[7];
        let Some(dst) = pkt.load::<16>(ip + 24) else {
            return false;
        };
        ev.dst = dst;
    }
    match pkt.load::<CARP_HEADER_LEN>(usize::from(at.carp_offset)) {
        Some(carp) => {
            ev.carp = carp;
            true
        }
        None => false,
    }
}

/// Finds the EtherType and the start of the IP header; `None` for a frame
/// of a VLAN (an 802.1Q tag with a VLAN id), which its VLAN interface
/// judges. An 802.1p priority tag (VLAN id 0) is skipped.
#[inline(always)]
fn link_layer<P: Packet + ?Sized>(pkt: &P) -> Option<L3> {
    let ethertype = be16(pkt.load::<2>(12)?);
    if ethertype != ETH_P_8021Q {
        return Some(L3 {
            offset: ETH_HLEN,
            ethertype,
        });
    }
    let tag = pkt.load::<4>(ETH_HLEN)?;
    if be16([tag[0], tag[1]]) & 0x0fff != 0 {
        return None;
    }
    Some(L3 {
        offset: ETH_HLEN + VLAN_HLEN,
        ethertype: be16([tag[2], tag[3]]),
    })
}

/// Validates an IPv4 header at `off`. `Ok(None)`: not protocol 112;
/// `Ok(Some(o))`: the CARP header starts at `o`.
#[inline(always)]
fn ipv4<P: Packet + ?Sized>(pkt: &P, off: usize) -> Result<Option<usize>, Reason> {
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
    Ok(Some(off + hlen))
}

/// Validates an IPv6 header at `off` (no extension headers: a frame whose
/// first next-header is not 112 is not ours).
#[inline(always)]
fn ipv6<P: Packet + ?Sized>(pkt: &P, off: usize) -> Result<Option<usize>, Reason> {
    // Bound check and value test apart: merged, they compile to a shift of
    // whatever the register held when the load was skipped, a pointer the
    // verifier refuses to shift.
    let Some([next_header]) = pkt.load::<1>(off + 6) else {
        return Ok(None);
    };
    if next_header != IPPROTO_CARP {
        return Ok(None);
    }
    // The fixed part up to the hop limit; the addresses are read when needed.
    let ip = pkt.load::<8>(off).ok_or(Reason::Truncated)?;
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
    Ok(Some(off + IPV6_HLEN))
}

/// The stateless checks of the first 8 CARP bytes: version, type, authlen.
#[inline(always)]
pub fn carp_fixed(fixed: &[u8; 8]) -> Result<(), Reason> {
    if fixed[0] >> 4 != CARP_VERSION {
        return Err(Reason::Version);
    }
    if fixed[0] & 0x0f != CARP_ADVERTISEMENT {
        return Err(Reason::Type);
    }
    if fixed[3] != CARP_AUTHLEN {
        return Err(Reason::AuthLen);
    }
    Ok(())
}
