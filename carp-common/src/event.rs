//! The record the XDP program pushes into the ring buffer for every advert
//! that passed validation.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::constants::{AF_INET, CARP_HEADER_LEN};

/// A validated advert, as handed from the kernel to the daemon.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// `bpf_ktime_get_ns()` when the frame was inspected (CLOCK_MONOTONIC, ns).
    pub timestamp_ns: u64,
    /// Interface the frame arrived on.
    pub ifindex: u32,
    /// [`crate::constants::AF_INET`] or [`crate::constants::AF_INET6`].
    pub family: u16,
    /// TTL or hop limit of the frame (always 255 once validated).
    pub ttl: u8,
    /// `EVENT_*` bits.
    pub flags: u8,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub src: [u8; 16],
    /// Destination address; IPv4 in the first 4 bytes, the rest zero.
    pub dst: [u8; 16],
    /// The 36-byte CARP header as received.
    pub carp: [u8; CARP_HEADER_LEN],
    /// Always 0: a frame tagged with a VLAN id is left to its VLAN
    /// interface, whose path delivers it untagged (kept so that the
    /// record's layout and `monitor`'s output stay as they were).
    pub vlan_id: u16,
    /// Explicit padding, zero.
    pub _pad1: [u8; 2],
    /// Ethernet source address of the frame: it tells UCARP
    /// (`00:00:5e:00:00:<vhid>`) and the BSD kernels (`00:00:5e:00:01:<vhid>`)
    /// from carpd-xdp, which sends from the interface's own address.
    pub src_mac: [u8; 6],
    /// Explicit padding, zero.
    pub _pad2: [u8; 2],
}

/// [`AdvertEvent::flags`] bit: the source's replay rule in the receive path
/// recorded this advert's counter. Without it, an advert the core accepts
/// from a source with a rule passed before the rule was there, and the
/// daemon writes the rule again from the core's state.
pub const EVENT_REPLAY_RECORDED: u8 = 1;

/// Size of [`AdvertEvent`] in bytes.
pub const ADVERT_EVENT_LEN: usize = 96;
const _: () = assert!(size_of::<AdvertEvent>() == ADVERT_EVENT_LEN);
const _: () = assert!(align_of::<AdvertEvent>() == 8);

impl AdvertEvent {
    /// An all-zero event.
    pub const fn zeroed() -> Self {
        Self {
            timestamp_ns: 0,
            ifindex: 0,
            family: 0,
            ttl: 0,
            flags: 0,
            src: [0; 16],
            dst: [0; 16],
            carp: [0; CARP_HEADER_LEN],
            vlan_id: 0,
            _pad1: [0; 2],
            src_mac: [0; 6],
            _pad2: [0; 2],
        }
    }

    /// Reads an event from ring-buffer bytes; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ADVERT_EVENT_LEN {
            return None;
        }
        // SAFETY: AdvertEvent is repr(C), made of integers only (every bit
        // pattern is valid), and the length was checked; read_unaligned
        // copes with any alignment of the source.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<AdvertEvent>()) })
    }

    /// The source address of the advert (userspace: the XDP program keeps
    /// the raw bytes).
    pub fn source(&self) -> IpAddr {
        address(self.family, &self.src)
    }

    /// The destination address of the advert (userspace).
    pub fn destination(&self) -> IpAddr {
        address(self.family, &self.dst)
    }
}

/// `bytes` as an address of `family`: IPv4 in the first 4 bytes for
/// [`AF_INET`], IPv6 otherwise.
fn address(family: u16, bytes: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding: any bit pattern is valid.
unsafe impl aya::Pod for AdvertEvent {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::AF_INET6;

    #[test]
    fn addresses_follow_the_family() {
        let mut ev = AdvertEvent::zeroed();
        ev.family = AF_INET;
        ev.src[..4].copy_from_slice(&[192, 0, 2, 1]);
        ev.dst[..4].copy_from_slice(&[224, 0, 0, 18]);
        assert_eq!(ev.source(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(ev.destination(), IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)));
        ev.family = AF_INET6;
        ev.src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(ev.source(), "2001:db8::1".parse::<IpAddr>().unwrap());
    }
}
