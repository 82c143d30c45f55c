//! Why the XDP program (or the fallback path) delivered or dropped a frame.
//!
//! Each reason has its own per-CPU counter in [`crate::constants::MAP_COUNTERS`],
//! indexed by the reason's `u32` value. The order follows the order of the
//! checks: cheap stateless checks first, then the stateful ones (as in
//! OpenBSD's `carp_input`).

/// Outcome counters of the receive path, one per reason. Crosses the
/// kernel/user boundary as a `u32` index.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A valid advert handed to userspace.
    Delivered = 0,
    /// The frame ends before the IP or CARP header does.
    Truncated = 1,
    /// IPv4 IHL below 5, bad IPv4 header checksum, or a total / payload
    /// length that does not cover the 36-byte CARP header or exceeds the frame.
    IpHeader = 2,
    /// An IPv4 fragment (MF set or non-zero offset).
    Fragment = 3,
    /// TTL or hop limit not 255: the advert was routed or forged off-link.
    Ttl = 4,
    /// CARP version not 2.
    Version = 5,
    /// CARP type not advertisement.
    Type = 6,
    /// authlen not 7.
    AuthLen = 7,
    /// CARP checksum does not verify.
    Checksum = 8,
    /// The (interface, vhid) is not one the daemon serves.
    UnknownVhid = 9,
    /// The vhid has a peer allow-list and the source (address, or pinned
    /// MAC) is not on it.
    NotAllowed = 10,
    /// The HMAC does not match the vhid's password and addresses.
    Hmac = 11,
    /// The counter breaks the source's replay rule (replayed or downgraded).
    Replay = 12,
    /// The source exceeded its token bucket.
    RateLimited = 13,
    /// The ring buffer to userspace was full; the advert was lost.
    RingBufFull = 14,
}

/// Number of reasons, i.e. entries of the counter array.
pub const REASON_COUNT: u32 = 15;

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; REASON_COUNT as usize] = [
        Reason::Delivered,
        Reason::Truncated,
        Reason::IpHeader,
        Reason::Fragment,
        Reason::Ttl,
        Reason::Version,
        Reason::Type,
        Reason::AuthLen,
        Reason::Checksum,
        Reason::UnknownVhid,
        Reason::NotAllowed,
        Reason::Hmac,
        Reason::Replay,
        Reason::RateLimited,
        Reason::RingBufFull,
    ];

    /// True when the frame was for a vhid the daemon serves (delivered, or
    /// rejected after the vhid lookup). Such frames are consumed; the others
    /// (malformed, another protocol version such as VRRPv3, another
    /// daemon's vhid) are counted and passed on to the stack, so VRRP
    /// daemons and other CARP processes on the host keep receiving theirs.
    pub const fn for_served_vhid(self) -> bool {
        matches!(
            self,
            Reason::Delivered
                | Reason::NotAllowed
                | Reason::Hmac
                | Reason::Replay
                | Reason::RateLimited
                | Reason::RingBufFull
        )
    }

    /// Short snake_case name, as used in status output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Delivered => "delivered",
            Reason::Truncated => "truncated",
            Reason::IpHeader => "ip_header",
            Reason::Fragment => "fragment",
            Reason::Ttl => "ttl",
            Reason::Version => "version",
            Reason::Type => "type",
            Reason::AuthLen => "authlen",
            Reason::Checksum => "checksum",
            Reason::UnknownVhid => "unknown_vhid",
            Reason::NotAllowed => "not_allowed",
            Reason::Hmac => "hmac",
            Reason::Replay => "replay",
            Reason::RateLimited => "rate_limited",
            Reason::RingBufFull => "ringbuf_full",
        }
    }
}

/// A counter index that names no [`Reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownReason(pub u32);

impl TryFrom<u32> for Reason {
    type Error = UnknownReason;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Reason::ALL
            .get(value as usize)
            .copied()
            .ok_or(UnknownReason(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_frames_of_served_vhids_are_consumed() {
        let consumed = Reason::ALL.map(|r| r.for_served_vhid());
        // delivered, then truncated .. unknown_vhid, then not_allowed,
        // hmac, replay, rate_limited, ringbuf_full.
        let expected = [
            true, false, false, false, false, false, false, false, false, false, true, true, true,
            true, true,
        ];
        assert_eq!(consumed, expected);
    }

    #[test]
    fn all_is_in_index_order_and_round_trips() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as u32, i as u32);
            assert_eq!(Reason::try_from(i as u32), Ok(*r));
        }
        assert_eq!(
            Reason::try_from(REASON_COUNT),
            Err(UnknownReason(REASON_COUNT))
        );
    }
}
