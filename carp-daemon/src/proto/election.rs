//! Who is the better master.
//!
//! A master's priority is, in order (lower wins each step):
//!
//! 1. its demote counter (OpenBSD carp(4): "higher demote loses", compared
//!    before the interval in `carp_proto_input_c`);
//! 2. its advert interval `advbase + advskew/256` (carp(4) and UCARP compare
//!    `struct timeval`s in the same place);
//! 3. on equal intervals, its source address as an unsigned big-endian number.
//!    UCARP breaks the tie in the same direction (lower wins) but compares
//!    `ip_src.s_addr` as a host-order integer, so on little-endian hosts it
//!    orders by the last octet first: 10.0.1.2 beats 10.0.2.1 here and loses
//!    there. Only addresses of the same family are compared; otherwise the
//!    tie stands, and a tie counts against the master that hears it (as in
//!    carp(4), which has no address tie-break).

use std::cmp::Ordering;
use std::net::IpAddr;

use super::timers::advert_interval;
use super::Nanos;

/// The priority of a master, as compared by [`Priority::cmp_preference`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// Demote counter; higher loses.
    pub demote: u8,
    /// Advert interval; longer loses.
    pub interval: Nanos,
    /// Source address; the higher loses a tie.
    pub addr: Option<IpAddr>,
}

impl Priority {
    /// The priority carried by an advert with these fields from `addr`.
    pub fn of_advert(demote: u8, advbase_secs: u8, advskew: u8, addr: IpAddr) -> Self {
        Self {
            demote,
            interval: advert_interval(advbase_secs, advskew),
            addr: Some(addr),
        }
    }

    /// `Less` when `self` is the better master, `Greater` when `other` is,
    /// `Equal` when nothing tells them apart.
    pub fn cmp_preference(&self, other: &Priority) -> Ordering {
        self.demote
            .cmp(&other.demote)
            .then(self.interval.cmp(&other.interval))
            .then_with(|| match (self.addr, other.addr) {
                (Some(IpAddr::V4(a)), Some(IpAddr::V4(b))) => a.octets().cmp(&b.octets()),
                (Some(IpAddr::V6(a)), Some(IpAddr::V6(b))) => a.octets().cmp(&b.octets()),
                _ => Ordering::Equal,
            })
    }
}

/// Our own address of the same family as `peer`, for tie-breaks.
pub fn own_addr_for(own: &[IpAddr], peer: IpAddr) -> Option<IpAddr> {
    own.iter().copied().find(|a| a.is_ipv4() == peer.is_ipv4())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(demote: u8, advbase: u8, advskew: u8, addr: &str) -> Priority {
        Priority::of_advert(demote, advbase, advskew, addr.parse().unwrap())
    }

    #[test]
    fn demote_beats_interval() {
        assert_eq!(
            p(0, 10, 0, "10.0.0.9").cmp_preference(&p(1, 1, 0, "10.0.0.1")),
            Ordering::Less
        );
    }

    #[test]
    fn interval_beats_address() {
        assert_eq!(
            p(0, 1, 1, "10.0.0.1").cmp_preference(&p(0, 1, 0, "10.0.0.9")),
            Ordering::Greater
        );
    }

    #[test]
    fn tie_broken_by_big_endian_address() {
        // Little-endian host order would rank these the other way round.
        assert_eq!(
            p(0, 1, 0, "10.0.1.2").cmp_preference(&p(0, 1, 0, "10.0.2.1")),
            Ordering::Less
        );
        assert_eq!(
            p(0, 1, 0, "fe80::2").cmp_preference(&p(0, 1, 0, "fe80::1")),
            Ordering::Greater
        );
        assert_eq!(
            p(0, 1, 0, "10.0.0.1").cmp_preference(&p(0, 1, 0, "fe80::1")),
            Ordering::Equal
        );
    }

    #[test]
    fn own_address_of_same_family() {
        let own: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(own_addr_for(&own, "fe80::9".parse().unwrap()), Some(own[1]));
        assert_eq!(own_addr_for(&own[..1], "fe80::9".parse().unwrap()), None);
    }
}
