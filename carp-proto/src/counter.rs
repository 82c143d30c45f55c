//! The counter carpd-xdp puts in its adverts.
//!
//! Layout (64 bits, big-endian on the wire):
//!
//! ```text
//! | 16-bit tag 0xCA4D | 48-bit milliseconds since the Unix epoch |
//! ```
//!
//! Each advert carries `max(previous + 1, tag | now_ms)`, where `now_ms` is the
//! wall-clock time given at start plus the monotonic time elapsed since. The
//! counter therefore grows by at least one per advert, keeps growing across
//! restarts (as long as the wall clock does not go back by more than the
//! restart takes), and says when it was sent, to the millisecond, which
//! [`crate::replay`] can check against a window. 48 bits of
//! milliseconds last until the year 10889; adverts are at most 256 per second,
//! so one per millisecond never runs ahead of time for long.
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
//! above what was written.
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

use super::Nanos;

/// The high 16 bits of every counter we send.
pub use carp_common::constants::COUNTER_TAG;

/// Bits of the counter holding the time.
const TIME_BITS: u32 = 48;

/// Mask of the time part.
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// True when `counter` carries our tag.
pub const fn is_tagged(counter: u64) -> bool {
    (counter >> TIME_BITS) as u16 == COUNTER_TAG
}

/// The milliseconds since the Unix epoch a tagged counter carries.
pub const fn embedded_millis(counter: u64) -> u64 {
    counter & TIME_MASK
}

/// The tagged counter for a wall-clock time in milliseconds.
pub const fn tagged(unix_ms: u64) -> u64 {
    ((COUNTER_TAG as u64) << TIME_BITS) | (unix_ms & TIME_MASK)
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
}

/// The counter of the adverts we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertCounter {
    /// Wall clock the counter follows.
    clock: WallClock,
    /// The last counter sent, if any.
    last: Option<u64>,
    /// Every counter is above this (the reservation a previous run wrote).
    floor: u64,
    /// Counters up to this one are covered by the last reservation asked for.
    reserved: Option<u64>,
    /// Counters up to this one are covered by a reservation on stable
    /// storage: the floor, or the highest reservation reported written.
    durable: u64,
}

impl AdvertCounter {
    /// A counter following `clock`.
    pub const fn new(clock: WallClock) -> Self {
        Self {
            clock,
            last: None,
            floor: 0,
            reserved: None,
            durable: 0,
        }
    }

    /// Every counter from now on is above `floor` (a reservation read back
    /// from stable storage, so durable too).
    pub fn raise_floor(&mut self, floor: u64) {
        self.floor = self.floor.max(floor);
        self.durable = self.durable.max(floor);
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

    /// The counter for an advert sent at `now`: greater than every one
    /// before and than the floor. The second value, when present, is a new
    /// reservation to persist, asked for while the last one still covers
    /// half a reservation more; the advert need not wait for it.
    pub fn next(&mut self, now: Nanos) -> (u64, Option<u64>) {
        let from_clock = tagged(self.clock.unix_millis(now));
        let above = match self.last {
            Some(last) => last.max(self.floor),
            None => self.floor,
        };
        let value = from_clock.max(above.saturating_add(1));
        self.last = Some(value);
        let reserve = match self.reserved {
            Some(r) if value.saturating_add(RESERVE / 2) <= r => None,
            _ => {
                let r = value.saturating_add(RESERVE);
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

    #[test]
    fn follows_wall_clock_in_milliseconds() {
        let mut c = AdvertCounter::new(WallClock::new(Nanos(5_000), START_UNIX_NS));
        let (first, _) = c.next(Nanos(5_000));
        assert!(is_tagged(first));
        assert_eq!(embedded_millis(first), 1_763_000_000_123);
        let (later, _) = c.next(Nanos(5_000 + 2_500_000_000));
        assert_eq!(embedded_millis(later), 1_763_000_002_623);
    }

    #[test]
    fn strictly_increasing_even_within_one_millisecond() {
        let mut c = AdvertCounter::new(WallClock::new(Nanos(0), START_UNIX_NS));
        let (a, _) = c.next(Nanos(0));
        let (b, _) = c.next(Nanos(10));
        let (d, _) = c.next(Nanos(20));
        assert_eq!((b, d), (a + 1, a + 2));
        assert_eq!(c.last(), Some(d));
    }

    #[test]
    fn reservations_cover_every_counter_and_are_rare() {
        let mut c = AdvertCounter::new(WallClock::new(Nanos(0), START_UNIX_NS));
        let (first, r) = c.next(Nanos(0));
        let mut reserved = r.expect("the first advert reserves");
        assert_eq!(reserved, first + RESERVE);
        let mut writes = 1;
        // Ten minutes of adverts at 256 per second.
        for i in 1..(600 * 256) {
            let (v, r) = c.next(Nanos(i * 3_906_250));
            if let Some(r) = r {
                assert!(r > reserved);
                // Asked for ahead of need: the previous one still covers
                // this advert, with less than half a reservation to spare.
                assert!(v <= reserved && v + RESERVE / 2 > reserved);
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
        let mut c = AdvertCounter::new(WallClock::new(Nanos(0), START_UNIX_NS));
        assert_eq!(c.durable(), 0);
        c.raise_floor(tagged(1_763_000_000_000));
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
        let mut before = AdvertCounter::new(WallClock::new(Nanos(0), START_UNIX_NS + hour_ns));
        let (sent, reserved) = before.next(Nanos(0));
        // Second run: the true clock, the reservation read back.
        let mut after = AdvertCounter::new(WallClock::new(Nanos(0), START_UNIX_NS));
        after.raise_floor(reserved.unwrap());
        let (next, _) = after.next(Nanos(0));
        assert!(next > sent && next > reserved.unwrap() && is_tagged(next));
    }

    #[test]
    fn untagged_values_are_recognised() {
        assert!(!is_tagged(17288724999877301849)); // UCARP frame 1
        assert!(is_tagged(tagged(0)));
        assert!(!is_tagged(0));
    }
}
