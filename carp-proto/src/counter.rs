//! The counter carpd-xdp puts in its adverts.
//!
//! Layout (64 bits, big-endian on the wire):
//!
//! ```text
//! | 16-bit tag 0xCA4D | 40-bit milliseconds since EPOCH | 8-bit identity |
//! ```
//!
//! [`EPOCH_UNIX_MS`] is 2^33 ms before 2025-01-01 (2024-09-23), so that the
//! 48 bits after the tag of every counter sent after 2025 are at least
//! 2^41, above those of the format before (the 48-bit milliseconds since the
//! Unix epoch, below 2^41 until 2039): [`is_legacy`] tells the two apart, and
//! a peer still running the old format sees our counters as tagged and
//! growing. The 40 bits last until 2059.
//!
//! The identity ([`FIRST_IDENTITY`]..=255) names the sender: it is picked at
//! start ([`identity_for`]) and changed when an authentic advert from another
//! sender carries it ([`AdvertCounter::set_identity`]). Receivers keep the
//! last counter of each identity ([`crate::replay`]), so a replayed advert is
//! recognised as old whatever address and MAC it is sent from. The identity
//! is below the time so that a host's counters keep growing when it changes
//! identity (restarted without its `state_dir`, or after a collision).
//!
//! Each advert carries the time `max(previous + 1 ms, reservation floor +
//! 1 ms, now)`, where `now` is the wall-clock time given at start plus the
//! monotonic time elapsed since. The counter therefore grows with every
//! advert, keeps growing across restarts, and says when it was sent, to the
//! millisecond, which [`crate::replay`] checks against a window. Adverts are
//! at most 256 per second, so one millisecond per advert never runs ahead of
//! time for long.
//!
//! The tag lets `auto` replay mode tell our counters from the random ones
//! UCARP sends. It is inside the HMAC, so it cannot be added or removed by
//! anyone without the password.
//!
//! Across restarts the wall clock alone is not enough: a host restarted
//! after its clock went back (booted before NTP, a VM restored from a
//! snapshot) would send counters below those its peers recorded, and strict
//! peers would drop them. So the counter also stays above a floor, the last
//! reservation persisted by the daemon, and a restarted instance starts
//! above what was written ([`check_floor`] says which values are one).
//!
//! Reservations are asked for ahead of need and never waited for: when an
//! advert's counter comes within [`RESERVE`]` / 2` of the last reservation
//! asked for, the core asks (with [`super::Action::PersistCounter`]) for a
//! new one [`RESERVE`] ahead of it. The daemon writes it off its event loop
//! and reports it written ([`AdvertCounter::persisted`]); the advert goes
//! out at once either way. So a write has half a reservation (30 s) to
//! complete before counters pass the last durable one, and a stalled disk
//! delays no advert. The price, accepted: while a write is late (and for
//! the first adverts after a takeover, whose counter follows the clock past
//! the last reservation), a counter above the durable reservation is on the
//! wire; if the daemon then dies before the write completes *and* restarts
//! with its wall clock set back, its first counters may be below that one
//! until the clock catches up.

use std::net::IpAddr;

use super::Nanos;

/// The high 16 bits of every counter we send.
pub use carp_common::constants::COUNTER_TAG;

/// Milliseconds since the Unix epoch of the counter's time 0: 2025-01-01
/// minus 2^33 ms.
pub const EPOCH_UNIX_MS: u64 = 1_735_689_600_000 - (1 << 33);

/// Bits of the counter holding the time.
const TIME_BITS: u32 = 40;

/// The largest time part.
const TIME_MAX: u64 = (1 << TIME_BITS) - 1;

/// Bits below the tag.
const PAYLOAD_MASK: u64 = (1 << 48) - 1;

/// Payloads below this are of the format before identities (milliseconds
/// since the Unix epoch, below 2^41 until 2039).
const LEGACY_BELOW: u64 = 1 << 41;

/// The lowest identity: 0 and 1 are what the old format's counters read as.
pub const FIRST_IDENTITY: u8 = 2;

/// A floor whose time is this close to the end of the 40 bits (about four
/// years before 2059) is refused: it would stop the counter.
const FLOOR_TIME_MAX: u64 = TIME_MAX - (1 << 37);

/// True when `counter` carries our tag (either format).
pub const fn is_tagged(counter: u64) -> bool {
    (counter >> 48) as u16 == COUNTER_TAG
}

/// True when `counter` is tagged in the format before identities: the
/// milliseconds since the Unix epoch under the tag, no identity.
pub const fn is_legacy(counter: u64) -> bool {
    is_tagged(counter) && counter & PAYLOAD_MASK < LEGACY_BELOW
}

/// The sender's identity of a counter in today's format.
pub const fn identity(counter: u64) -> Option<u8> {
    if is_tagged(counter) && !is_legacy(counter) {
        Some(counter as u8)
    } else {
        None
    }
}

/// The milliseconds since the Unix epoch a tagged counter carries (either
/// format).
pub const fn embedded_millis(counter: u64) -> u64 {
    let payload = counter & PAYLOAD_MASK;
    if payload < LEGACY_BELOW {
        payload
    } else {
        EPOCH_UNIX_MS + (payload >> 8)
    }
}

/// The time part of a tagged counter, in milliseconds since [`EPOCH_UNIX_MS`]
/// (0 for the old format's counters before it).
const fn time_part(counter: u64) -> u64 {
    embedded_millis(counter).saturating_sub(EPOCH_UNIX_MS)
}

/// The counter of `identity` for a time in milliseconds since the Unix
/// epoch (clamped to the 40 bits).
pub const fn tagged_by(identity: u8, unix_ms: u64) -> u64 {
    from_parts(identity, unix_ms.saturating_sub(EPOCH_UNIX_MS))
}

/// The counter of identity [`FIRST_IDENTITY`] for a time in milliseconds
/// since the Unix epoch.
pub const fn tagged(unix_ms: u64) -> u64 {
    tagged_by(FIRST_IDENTITY, unix_ms)
}

/// The counter of `identity` at `time` ms since [`EPOCH_UNIX_MS`].
const fn from_parts(identity: u8, time: u64) -> u64 {
    let time = if time > TIME_MAX { TIME_MAX } else { time };
    ((COUNTER_TAG as u64) << 48) | (time << 8) | identity as u64
}

/// An identity for a sender, from what tells senders apart at start: its
/// address, its vhid and the wall-clock time (ns). Always at least
/// [`FIRST_IDENTITY`].
pub fn identity_for(addr: Option<IpAddr>, vhid: u8, unix_ns: u64) -> u8 {
    let octets: [u8; 16] = match addr {
        Some(IpAddr::V4(a)) => a.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(a)) => a.octets(),
        None => [0; 16],
    };
    // FNV-1a over the address, the vhid and the time: cheap, deterministic
    // (simulations replay), and different for hosts that differ in any.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in octets
        .into_iter()
        .chain([vhid])
        .chain(unix_ns.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    spread(h)
}

/// An identity from any 64 bits.
const fn spread(h: u64) -> u8 {
    let span = (u8::MAX - FIRST_IDENTITY) as u64 + 1;
    FIRST_IDENTITY + ((h ^ (h >> 29) ^ (h >> 47)) % span) as u8
}

/// Errors of this module: a value that is no counter floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FloorError {
    /// The value does not carry our tag: it was never one of our counters.
    #[error("{value} is not one of our counters (no tag {COUNTER_TAG:#06x})")]
    Untagged {
        /// The value given.
        value: u64,
    },
    /// The value's time is so close to the end of the counter's range that
    /// counters would stop.
    #[error("{value} is too close to the end of the counter's range")]
    Exhausted {
        /// The value given.
        value: u64,
    },
}

/// Whether `value` may serve as a floor ([`AdvertCounter::raise_floor`]):
/// one of our counters, in either format, whose time leaves room to grow.
pub const fn check_floor(value: u64) -> Result<u64, FloorError> {
    if !is_tagged(value) {
        return Err(FloorError::Untagged { value });
    }
    if time_part(value) > FLOOR_TIME_MAX {
        return Err(FloorError::Exhausted { value });
    }
    Ok(value)
}

/// How far ahead of the counter a reservation goes: a minute of
/// milliseconds, so the daemon writes about once a minute per instance.
pub const RESERVE: u64 = 60_000;

/// Our wall clock, derived from one reading at start and the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// Monotonic time of the reading.
    mono_at_start: Nanos,
    /// Wall-clock time of the reading, nanoseconds since the Unix epoch.
    unix_ns_at_start: u64,
}

impl WallClock {
    /// A clock that read `unix_ns` when the monotonic clock read `now`.
    pub const fn new(now: Nanos, unix_ns: u64) -> Self {
        Self {
            mono_at_start: now,
            unix_ns_at_start: unix_ns,
        }
    }

    /// Milliseconds since the Unix epoch at monotonic time `now`.
    pub const fn unix_millis(&self, now: Nanos) -> u64 {
        self.unix_ns_at_start
            .saturating_add(now.saturating_sub(self.mono_at_start).0)
            / 1_000_000
    }

    /// Nanoseconds since the Unix epoch of the reading.
    pub const fn unix_ns_at_start(&self) -> u64 {
        self.unix_ns_at_start
    }
}

/// The counter of the adverts we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertCounter {
    /// Wall clock the counter follows.
    clock: WallClock,
    /// Our identity, the counter's low byte.
    identity: u8,
    /// The last counter sent, if any.
    last: Option<u64>,
    /// Every counter's time is above this (ms since [`EPOCH_UNIX_MS`]; the
    /// reservation a previous run wrote).
    floor_time: Option<u64>,
    /// Counters up to this one's time are covered by the last reservation
    /// asked for.
    reserved: Option<u64>,
    /// Counters up to this one are covered by a reservation on stable
    /// storage: the floor, or the highest reservation reported written.
    durable: u64,
}

impl AdvertCounter {
    /// A counter following `clock`, sent as `identity` (at least
    /// [`FIRST_IDENTITY`]; lower ones are raised to it).
    pub const fn new(clock: WallClock, identity: u8) -> Self {
        Self {
            clock,
            identity: if identity < FIRST_IDENTITY {
                FIRST_IDENTITY
            } else {
                identity
            },
            last: None,
            floor_time: None,
            reserved: None,
            durable: 0,
        }
    }

    /// Every counter from now on is above `floor` (a reservation read back
    /// from stable storage, so durable too), if it is a floor
    /// ([`check_floor`]); otherwise nothing changes.
    pub fn raise_floor(&mut self, floor: u64) -> Result<(), FloorError> {
        let t = time_part(check_floor(floor)?);
        self.floor_time = Some(self.floor_time.map_or(t, |f| f.max(t)));
        self.durable = self.durable.max(floor);
        Ok(())
    }

    /// The reservation `value` is on stable storage.
    pub fn persisted(&mut self, value: u64) {
        self.durable = self.durable.max(value);
    }

    /// Counters up to this one are covered by a reservation on stable
    /// storage.
    pub const fn durable(&self) -> u64 {
        self.durable
    }

    /// Our identity.
    pub const fn identity(&self) -> u8 {
        self.identity
    }

    /// Changes our identity to another one, derived from the old one and
    /// `now` (another sender was heard with ours). Counters keep growing:
    /// the time part decides.
    pub fn set_identity(&mut self, now: Nanos) {
        let old = self.identity;
        let mut h = u64::from(old) ^ now.0.rotate_left(17) ^ self.clock.unix_millis(now);
        let mut next = spread(h);
        while next == old {
            h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
            next = spread(h);
        }
        self.identity = next;
    }

    /// The counter for an advert sent at `now`: greater than every one
    /// before and than the floor. The second value, when present, is a new
    /// reservation to persist, asked for while the last one still covers
    /// half a reservation more; the advert need not wait for it.
    pub fn next(&mut self, now: Nanos) -> (u64, Option<u64>) {
        let from_clock = self.clock.unix_millis(now).saturating_sub(EPOCH_UNIX_MS);
        let above = match (self.last.map(time_part), self.floor_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let time = match above {
            Some(t) => from_clock.max(t.saturating_add(1)),
            None => from_clock,
        };
        let value = from_parts(self.identity, time);
        self.last = Some(value);
        let reserve = match self.reserved {
            Some(r) if time.saturating_add(RESERVE / 2) <= time_part(r) => None,
            _ => {
                let r = from_parts(self.identity, time.saturating_add(RESERVE));
                self.reserved = Some(r);
                Some(r)
            }
        };
        (value, reserve)
    }

    /// The last counter sent, if any.
    pub const fn last(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_UNIX_NS: u64 = 1_763_000_000_123_456_789;
    /// 2025-01-01 in ms since the Unix epoch.
    const Y2025_MS: u64 = 1_735_689_600_000;

    fn counter_at(unix_ns: u64, identity: u8) -> AdvertCounter {
        AdvertCounter::new(WallClock::new(Nanos(0), unix_ns), identity)
    }

    #[test]
    fn follows_wall_clock_in_milliseconds() {
        let mut c = AdvertCounter::new(WallClock::new(Nanos(5_000), START_UNIX_NS), 9);
        let (first, _) = c.next(Nanos(5_000));
        assert!(is_tagged(first) && !is_legacy(first));
        assert_eq!(identity(first), Some(9));
        assert_eq!(embedded_millis(first), 1_763_000_000_123);
        let (later, _) = c.next(Nanos(5_000 + 2_500_000_000));
        assert_eq!(embedded_millis(later), 1_763_000_002_623);
    }

    #[test]
    fn strictly_increasing_even_within_one_millisecond() {
        let mut c = counter_at(START_UNIX_NS, 9);
        let (a, _) = c.next(Nanos(0));
        let (b, _) = c.next(Nanos(10));
        let (d, _) = c.next(Nanos(20));
        assert!(a < b && b < d);
        assert_eq!(
            (embedded_millis(b), embedded_millis(d)),
            (embedded_millis(a) + 1, embedded_millis(a) + 2)
        );
        assert_eq!(c.last(), Some(d));
    }

    #[test]
    fn reservations_cover_every_counter_and_are_rare() {
        let mut c = counter_at(START_UNIX_NS, 9);
        let (first, r) = c.next(Nanos(0));
        let mut reserved = r.expect("the first advert reserves");
        assert_eq!(embedded_millis(reserved), embedded_millis(first) + RESERVE);
        let mut writes = 1;
        // Ten minutes of adverts at 256 per second.
        for i in 1..(600 * 256) {
            let (v, r) = c.next(Nanos(i * 3_906_250));
            if let Some(r) = r {
                assert!(r > reserved);
                // Asked for ahead of need: the previous one still covers
                // this advert, with less than half a reservation to spare.
                assert!(
                    v <= reserved && embedded_millis(v) + RESERVE / 2 > embedded_millis(reserved)
                );
                reserved = r;
                writes += 1;
            }
            assert!(
                v <= reserved,
                "advert {i}: {v} above the reservation {reserved}"
            );
        }
        assert!(writes <= 21, "{writes} writes in ten minutes");
    }

    #[test]
    fn durable_follows_the_floor_and_written_reservations() {
        let mut c = counter_at(START_UNIX_NS, 9);
        assert_eq!(c.durable(), 0);
        c.raise_floor(tagged(1_763_000_000_000)).unwrap();
        assert_eq!(c.durable(), tagged(1_763_000_000_000));
        let (_, r) = c.next(Nanos(0));
        let r = r.unwrap();
        // Not written yet: the advert went out anyway.
        assert!(c.durable() < r);
        c.persisted(r);
        c.persisted(r - 5);
        assert_eq!(c.durable(), r);
    }

    #[test]
    fn a_restart_with_the_clock_set_back_stays_above_the_reservation() {
        // First run: the clock an hour ahead.
        let hour_ns = 3_600_000_000_000;
        let mut before = counter_at(START_UNIX_NS + hour_ns, 9);
        let (sent, reserved) = before.next(Nanos(0));
        // Second run: the true clock, the reservation read back, another
        // identity (a lower one: the time decides).
        let mut after = counter_at(START_UNIX_NS, 3);
        after.raise_floor(reserved.unwrap()).unwrap();
        let (next, _) = after.next(Nanos(0));
        assert!(next > sent && next > reserved.unwrap() && is_tagged(next));
        assert_eq!(identity(next), Some(3));
    }

    #[test]
    fn a_new_identity_keeps_the_counter_growing() {
        let mut c = counter_at(START_UNIX_NS, u8::MAX);
        let (a, _) = c.next(Nanos(0));
        c.set_identity(Nanos(0));
        assert_ne!(c.identity(), u8::MAX);
        assert!(c.identity() >= FIRST_IDENTITY);
        let (b, _) = c.next(Nanos(0));
        assert!(b > a, "{b:#x} after {a:#x}");
        assert_eq!(identity(b), Some(c.identity()));
    }

    #[test]
    fn old_format_counters_are_told_apart_and_ours_grow_above_them() {
        // The format before identities: tag, then ms since the Unix epoch.
        let old = ((COUNTER_TAG as u64) << 48) | 1_763_000_000_123;
        assert!(is_tagged(old) && is_legacy(old));
        assert_eq!(identity(old), None);
        assert_eq!(embedded_millis(old), 1_763_000_000_123);
        // Every counter sent from 2025 on is of today's format and, as a
        // number, above every old one until 2039: an old peer sees it as a
        // tagged counter that grew.
        for id in [FIRST_IDENTITY, 200, u8::MAX] {
            let new = tagged_by(id, Y2025_MS);
            assert!(!is_legacy(new) && identity(new) == Some(id));
            assert!(new > ((COUNTER_TAG as u64) << 48) | (LEGACY_BELOW - 1));
        }
        // An old floor still raises the counter.
        let mut c = counter_at(START_UNIX_NS - 3_600_000_000_000, 9);
        c.raise_floor(old).unwrap();
        assert!(embedded_millis(c.next(Nanos(0)).0) > embedded_millis(old));
    }

    #[test]
    fn identities_are_never_the_old_formats() {
        for t in [0, 1, 1_763_000_000_123_456_789, u64::MAX] {
            let a = "10.0.0.1".parse().ok();
            assert!(identity_for(a, 7, t) >= FIRST_IDENTITY);
            assert!(identity_for(None, 7, t) >= FIRST_IDENTITY);
        }
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        let same_time: Vec<u8> = (0..20)
            .map(|i| identity_for(a, i, START_UNIX_NS))
            .chain((0..20).map(|i| identity_for(b, i, START_UNIX_NS)))
            .collect();
        let distinct: std::collections::BTreeSet<u8> = same_time.iter().copied().collect();
        assert!(distinct.len() > 30, "{same_time:?}");
    }

    #[test]
    fn floors_that_would_break_the_counter_are_refused() {
        assert_eq!(
            check_floor(u64::MAX),
            Err(FloorError::Untagged { value: u64::MAX })
        );
        assert!(matches!(check_floor(42), Err(FloorError::Untagged { .. })));
        let end = ((COUNTER_TAG as u64) << 48) | PAYLOAD_MASK;
        assert_eq!(check_floor(end), Err(FloorError::Exhausted { value: end }));
        let mut c = counter_at(START_UNIX_NS, 9);
        assert!(c.raise_floor(end).is_err());
        assert!(c.raise_floor(u64::MAX).is_err());
        let (v, _) = c.next(Nanos(0));
        assert_eq!(embedded_millis(v), START_UNIX_NS / 1_000_000);
        assert_eq!(
            FloorError::Untagged { value: 42 }.to_string(),
            "42 is not one of our counters (no tag 0xca4d)"
        );
    }

    #[test]
    fn untagged_values_are_recognised() {
        assert!(!is_tagged(17288724999877301849)); // UCARP frame 1
        assert!(is_tagged(tagged(0)));
        assert!(!is_tagged(0));
    }
}
