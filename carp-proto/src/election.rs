//! Who is the better master, as each kind of peer sees it.
//!
//! A master's rank is, in order (lower wins each step):
//!
//! 1. its demote counter (OpenBSD carp(4) `carp_proto_input_c`: "higher
//!    demote loses", compared before the interval), for peers that read the
//!    demote byte ([`PeerKind::honours_demote`]); UCARP and FreeBSD ignore it
//!    and see our demotion only in advskew
//!    ([`super::params::InstanceParams::wire_advskew`]);
//! 2. its advert interval `advbase + advskew/256` (every implementation
//!    compares the two `struct timeval`s).
//!
//! A demoted host advertises its configured advskew scaled into 241..=254
//! ([`demoted_advskew`]), so that every peer sees the demotion and equally
//! demoted hosts keep the order of their configured preference:
//!
//! - UCARP and FreeBSD, which compare only the interval, rank it below every
//!   healthy host of the same advbase with an advskew up to 240 (FreeBSD's
//!   own demoted hosts advertise 240, `DEMOTE_ADVSKEW`), and never above
//!   itself undemoted (the scaled advskew is never below the configured one);
//! - carpd-xdp and OpenBSD compare the demote byte first, so the host with
//!   the lower demote count wins; between equal demote counts the scaled
//!   advskews keep the configured order: advskews 20 or more apart never
//!   tie, closer ones may (the address then decides, as for equal advskews).
//!   Fourteen wire values cannot carry 255 configured ones; they are all
//!   the advert has outside the HMAC-covered counter.
//!
//! Two masters of equal rank that hear each other must still end with one:
//! each side settles the tie as the peer on the other side does
//! ([`super::peer::TieBreak`]). UCARP keeps the master with the lower
//! address, comparing `ip_src.s_addr` as a host-order word (UCARP
//! `packethandler`, MASTER): on the little-endian hosts it runs on, the last
//! octet weighs most, so 10.0.2.1 beats 10.0.1.2. carpd-xdp uses the same
//! order ([`tie_order`]) against UCARP and against itself. OpenBSD and
//! FreeBSD have no address tie-break: the master that hears an equal advert
//! yields, so against them we keep the VIP. A backup never preempts on a tie.

use std::cmp::Ordering;
use std::net::IpAddr;

use super::peer::{PeerKind, TieBreak};
use super::timers::rank_interval;
use super::Nanos;

/// The rank of a master and its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// Demote counter; higher loses.
    pub demote: u8,
    /// Advert interval as ranked ([`rank_interval`]); longer loses.
    pub interval: Nanos,
    /// Source address; settles ties (see [`tie_order`]).
    pub addr: Option<IpAddr>,
}

impl Priority {
    /// The priority carried by an advert with these fields from `addr`.
    pub fn of_advert(demote: u8, advbase_secs: u8, advskew: u8, addr: IpAddr) -> Self {
        Self {
            demote,
            interval: rank_interval(advbase_secs, advskew),
            addr: Some(addr),
        }
    }

    /// The rank of `self` against `other` as a `kind` peer compares them,
    /// addresses aside: `Less` when `self` is the better master.
    pub fn cmp_rank(&self, other: &Priority, kind: PeerKind) -> Ordering {
        let demote = if kind.honours_demote() {
            self.demote.cmp(&other.demote)
        } else {
            Ordering::Equal
        };
        demote.then(self.interval.cmp(&other.interval))
    }

    /// carpd-xdp's total order among carpd-xdp hosts: rank, then
    /// [`tie_order`]; `Equal` only for addresses of different families.
    pub fn cmp_preference(&self, other: &Priority) -> Ordering {
        self.cmp_rank(other, PeerKind::Carpd)
            .then_with(|| addr_cmp(self.addr, other.addr).unwrap_or(Ordering::Equal))
    }
}

/// Lowest advskew a demoted host advertises.
pub const DEMOTED_ADVSKEW_MIN: u8 = 241;

/// The advskew a demoted host with configured `advskew` advertises:
/// `241 + advskew × 13 / 254`, rounded down. Never decreasing in `advskew`,
/// never below it, 241 for advskew 0 and 254 for 254; two advskews 20 or
/// more apart give different values.
pub const fn demoted_advskew(advskew: u8) -> u8 {
    let above = (advskew as u16 * 13) / 254;
    // advskew 255 (reserved for the leave advert) would give 13 too.
    DEMOTED_ADVSKEW_MIN + above as u8
}

/// The key two masters of equal rank compare, lower staying master: an IPv4
/// address as UCARP compares it on a little-endian host (the network-order
/// word read as a little-endian integer), an IPv6 address as a big-endian
/// number (UCARP has no IPv6).
pub fn tie_order(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from_le_bytes(a.octets())),
        IpAddr::V6(a) => u128::from_be_bytes(a.octets()),
    }
}

/// [`tie_order`] of two addresses of the same family.
fn addr_cmp(a: Option<IpAddr>, b: Option<IpAddr>) -> Option<Ordering> {
    match (a?, b?) {
        (a @ IpAddr::V4(_), b @ IpAddr::V4(_)) | (a @ IpAddr::V6(_), b @ IpAddr::V6(_)) => {
            Some(tie_order(a).cmp(&tie_order(b)))
        }
        _ => None,
    }
}

/// MASTER hearing the master `theirs`, a `kind` peer: true when we must go
/// BACKUP. Exactly one of two masters yields when each applies the rule of
/// the other: a better rank wins; on a tie we yield only where the peer
/// would not (the lower address stays, or the BSD peer yields). Without an
/// address of the peer's family to compare, a tie counts against us.
pub fn master_yields(ours: &Priority, theirs: &Priority, kind: PeerKind) -> bool {
    match theirs.cmp_rank(ours, kind) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => match kind.tie_break() {
            TieBreak::PeerYields => false,
            TieBreak::LowerAddress => addr_cmp(theirs.addr, ours.addr).is_none_or(Ordering::is_lt),
        },
    }
}

/// BACKUP with preempt hearing the master `theirs`: true when it ranks
/// strictly below us, as the peer itself would agree (it then yields to our
/// adverts). Never on an address tie: UCARP, OpenBSD and FreeBSD preempt only
/// a slower master.
pub fn preempts(ours: &Priority, theirs: &Priority, kind: PeerKind) -> bool {
    theirs.cmp_rank(ours, kind).is_gt()
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

    const ALL: [PeerKind; 6] = [
        PeerKind::Carpd,
        PeerKind::Ucarp,
        PeerKind::OpenBsd,
        PeerKind::FreeBsd,
        PeerKind::Bsd,
        PeerKind::Unknown,
    ];

    #[test]
    fn demoted_advskew_keeps_the_configured_order_and_stays_demoted() {
        assert_eq!(demoted_advskew(0), 241);
        assert_eq!(demoted_advskew(254), 254);
        assert_eq!(demoted_advskew(255), 254);
        for a in 0..=254u8 {
            let d = demoted_advskew(a);
            // Worse than any healthy host up to FreeBSD's 240, and never
            // better than the same host undemoted.
            assert!(d > 240 && d >= a && d < 255, "{a} -> {d}");
            for b in a..=254u8 {
                assert!(demoted_advskew(b) >= d, "{a} -> {d}, {b}");
                if b - a >= 20 {
                    assert!(demoted_advskew(b) > d, "{a} and {b} tie");
                }
            }
        }
    }

    #[test]
    fn equally_demoted_hosts_rank_by_configured_advskew() {
        // The minimal input: advskew 169 and 0, both demoted by 2.
        let (fast, slow) = (
            p(2, 1, demoted_advskew(0), "10.0.0.2"),
            p(2, 1, demoted_advskew(169), "10.0.0.1"),
        );
        for kind in ALL {
            assert!(preempts(&fast, &slow, kind), "{kind:?}");
            assert!(master_yields(&slow, &fast, kind), "{kind:?}");
        }
        // A healthy host at 240 beats any demoted one, even for peers that
        // ignore the demote byte.
        let healthy = p(0, 1, 240, "10.0.0.9");
        for kind in ALL {
            assert_eq!(healthy.cmp_rank(&fast, kind), Ordering::Less, "{kind:?}");
        }
    }

    #[test]
    fn demote_beats_interval_for_peers_that_read_it() {
        let (a, b) = (p(0, 10, 0, "10.0.0.9"), p(1, 1, 0, "10.0.0.1"));
        assert_eq!(a.cmp_rank(&b, PeerKind::OpenBsd), Ordering::Less);
        assert_eq!(a.cmp_rank(&b, PeerKind::Ucarp), Ordering::Greater);
        assert_eq!(a.cmp_rank(&b, PeerKind::FreeBsd), Ordering::Greater);
    }

    #[test]
    fn tie_order_is_ucarps_little_endian_word() {
        // UCARP on x86 ranks 10.99.2.1 before 10.99.1.2; big-endian would not.
        assert!(tie_order("10.99.2.1".parse().unwrap()) < tie_order("10.99.1.2".parse().unwrap()));
        assert!(tie_order("10.0.0.1".parse().unwrap()) < tie_order("10.0.0.2".parse().unwrap()));
        assert!(tie_order("fe80::1".parse().unwrap()) < tie_order("fe80::2".parse().unwrap()));
        assert_eq!(
            p(0, 1, 0, "10.99.2.1").cmp_preference(&p(0, 1, 0, "10.99.1.2")),
            Ordering::Less
        );
        assert_eq!(
            p(0, 1, 0, "10.0.0.1").cmp_preference(&p(0, 1, 0, "fe80::1")),
            Ordering::Equal
        );
    }

    #[test]
    fn two_masters_of_equal_rank_keep_exactly_one() {
        let (lo, hi) = (p(0, 1, 0, "10.99.2.1"), p(0, 1, 0, "10.99.1.2"));
        for kind in [PeerKind::Carpd, PeerKind::Ucarp, PeerKind::Unknown] {
            // We are `hi`, they are `lo`: we yield; and the other way round.
            assert!(master_yields(&hi, &lo, kind), "{kind:?}");
            assert!(!master_yields(&lo, &hi, kind), "{kind:?}");
        }
        for kind in [PeerKind::OpenBsd, PeerKind::FreeBsd, PeerKind::Bsd] {
            // The BSD master yields on a tie, so we must not.
            assert!(!master_yields(&hi, &lo, kind), "{kind:?}");
            assert!(!master_yields(&lo, &hi, kind), "{kind:?}");
        }
    }

    #[test]
    fn better_rank_wins_whatever_the_peer() {
        let (fast, slow) = (p(0, 1, 0, "10.0.0.9"), p(0, 1, 10, "10.0.0.1"));
        for kind in ALL {
            assert!(master_yields(&slow, &fast, kind), "{kind:?}");
            assert!(!master_yields(&fast, &slow, kind), "{kind:?}");
            assert!(preempts(&fast, &slow, kind), "{kind:?}");
            assert!(!preempts(&slow, &fast, kind), "{kind:?}");
        }
    }

    #[test]
    fn advbase_0_advskew_0_ranks_before_advskew_1_as_carp4_compares() {
        let (a, b) = (p(0, 0, 0, "10.0.0.9"), p(0, 0, 1, "10.0.0.1"));
        for kind in ALL {
            assert_eq!(a.cmp_rank(&b, kind), Ordering::Less, "{kind:?}");
            assert!(preempts(&a, &b, kind));
        }
    }

    #[test]
    fn never_preempt_on_a_tie() {
        let (a, b) = (p(0, 1, 0, "10.0.0.1"), p(0, 1, 0, "10.0.0.2"));
        for kind in ALL {
            assert!(!preempts(&a, &b, kind), "{kind:?}");
            assert!(!preempts(&b, &a, kind), "{kind:?}");
        }
    }

    #[test]
    fn own_address_of_same_family() {
        let own: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(own_addr_for(&own, "fe80::9".parse().unwrap()), Some(own[1]));
        assert_eq!(own_addr_for(&own[..1], "fe80::9".parse().unwrap()), None);
    }
}
