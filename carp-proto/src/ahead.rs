//! Adverts prepared ahead of their time, so that a stand-in can send them
//! when the daemon is late.
//!
//! At advbase 0 a backup declares the master dead after as little as
//! 11.7 ms. A master whose thread cannot run for that long (its CPU held by
//! the kernel's non-preemptible work, or its virtual CPU not running)
//! loses its VIPs to a backup although it is healthy. A thread on another
//! CPU can still send for it, but only adverts it holds ready: counter and
//! HMAC are the core's.
//!
//! So while MASTER, with a cover set ([`super::Instance::send_ahead`]), the
//! core keeps the adverts of the next slots of its schedule prepared, each
//! complete (counter of its slot's time, HMAC) and numbered: enough slots
//! to span the cover ([`slots_for`]). It hands each one out once with
//! [`super::Action::PrepareAdvert`] when it is made and asks for it again when its
//! slot comes ([`super::Action::SendPrepared`]): the daemon then sends it unless
//! a stand-in already did. An advert of a slot that passed while nobody
//! could send is not sent late when a later one is due: the later one is.
//! [`super::Action::CancelPrepared`] voids every prepared advert; it comes before
//! anything that changes what we advertise (a demote change, a leave
//! advert) and when we stop being MASTER.
//!
//! The schedule keeps its rate: slot `n + 1` is one advert interval after
//! slot `n`, whenever slot `n` was sent. A slot's counter carries the
//! slot's time, so no advert leaves with a counter ahead of the clock.

use std::collections::VecDeque;

use carp_common::header::CarpHeader;

use super::Nanos;

/// At most this many adverts are held prepared.
pub const MAX_SLOTS: usize = 64;

/// One prepared advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Its number: slots are numbered in order over the instance's life.
    pub seq: u64,
    /// When it is due.
    pub at: Nanos,
    /// The advert, complete.
    pub advert: CarpHeader,
}

/// How long after its slot's time a stand-in sends a prepared advert the
/// daemon has not: a quarter of the advert interval.
pub fn standin_grace(interval: Nanos) -> Nanos {
    Nanos(interval.0 / 4)
}

/// How many slots span `cover` at one advert every `interval`: at least
/// one, at most [`MAX_SLOTS`].
pub fn slots_for(cover: Nanos, interval: Nanos) -> usize {
    if interval.0 == 0 {
        return MAX_SLOTS;
    }
    let n = cover.0.div_ceil(interval.0);
    usize::try_from(n).unwrap_or(MAX_SLOTS).clamp(1, MAX_SLOTS)
}

/// The prepared adverts of one instance.
#[derive(Clone, Debug, Default)]
pub struct Ahead {
    /// How long a stand-in must be able to send without the core; zero:
    /// nothing is prepared (adverts are made when they are sent).
    cover: Nanos,
    /// Slots not yet due, in order.
    slots: VecDeque<Slot>,
    /// The number of the next slot made.
    next_seq: u64,
}

impl Ahead {
    /// Prepares adverts to span `cover` (zero: none).
    pub fn set_cover(&mut self, cover: Nanos) {
        self.cover = cover;
    }

    /// Whether adverts are prepared ahead.
    pub fn is_on(&self) -> bool {
        self.cover.0 > 0
    }

    /// Voids every prepared advert; true if there were any (the daemon is
    /// then told, [`super::Action::CancelPrepared`]).
    pub fn cancel(&mut self) -> bool {
        let any = !self.slots.is_empty();
        self.slots.clear();
        any
    }

    /// When the next slot is due.
    pub fn next_due(&self) -> Option<Nanos> {
        self.slots.front().map(|s| s.at)
    }

    /// Takes every slot due by `now` and returns how many and the latest,
    /// the one to send.
    pub fn take_due(&mut self, now: Nanos) -> Option<(u64, Slot)> {
        let mut latest = None;
        let mut count = 0;
        while let Some(slot) = self.slots.front().copied() {
            if slot.at > now {
                break;
            }
            self.slots.pop_front();
            latest = Some(slot);
            count += 1;
        }
        latest.map(|s| (count, s))
    }

    /// The time of the next slot to prepare, while fewer than span the
    /// cover are: one interval after the last prepared, or after `last`
    /// (the time of the last advert sent or due) when none is. A schedule
    /// that fell behind `now` starts again one interval from `now`.
    pub fn wanted(&self, now: Nanos, last: Nanos, interval: Nanos) -> Option<Nanos> {
        if self.slots.len() >= slots_for(self.cover, interval) {
            return None;
        }
        let after = self.slots.back().map_or(last, |s| s.at);
        let at = after.saturating_add(interval);
        Some(if at <= now {
            now.saturating_add(interval)
        } else {
            at
        })
    }

    /// Holds `advert`, made for the time `at` that [`Ahead::wanted`] gave,
    /// and returns its slot.
    pub fn push(&mut self, at: Nanos, advert: CarpHeader) -> Slot {
        let slot = Slot {
            seq: self.next_seq,
            at,
            advert,
        };
        self.next_seq += 1;
        self.slots.push_back(slot);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(at: Nanos) -> CarpHeader {
        CarpHeader::advertisement(1, 0, 1, 0, at.0)
    }

    /// Prepares every slot wanted; returns their numbers and times.
    fn top_up(ahead: &mut Ahead, now: Nanos, last: Nanos, interval: Nanos) -> Vec<(u64, Nanos)> {
        let mut made = Vec::new();
        while let Some(at) = ahead.wanted(now, last, interval) {
            let slot = ahead.push(at, advert(at));
            made.push((slot.seq, slot.at));
        }
        made
    }

    #[test]
    fn slots_span_the_cover_within_bounds() {
        let ms = Nanos::from_millis;
        assert_eq!(slots_for(ms(100), Nanos(3_906_250)), 26);
        assert_eq!(slots_for(ms(100), ms(1_000)), 1);
        assert_eq!(slots_for(ms(100), ms(50)), 2);
        assert_eq!(slots_for(Nanos::from_secs(10), ms(1)), MAX_SLOTS);
    }

    #[test]
    fn slots_keep_the_rate_and_the_latest_due_is_sent() {
        let ms = Nanos::from_millis;
        let mut ahead = Ahead::default();
        ahead.set_cover(ms(12));
        let made = top_up(&mut ahead, ms(100), ms(100), ms(4));
        assert_eq!(made, [(0, ms(104)), (1, ms(108)), (2, ms(112))]);
        assert_eq!(ahead.next_due(), Some(ms(104)));
        assert_eq!(ahead.take_due(ms(103)), None);
        // Late by two slots: the third goes, all three counted.
        let (count, slot) = ahead.take_due(ms(112)).unwrap();
        assert_eq!((count, slot.seq, slot.advert.counter()), (3, 2, ms(112).0));
        let made = top_up(&mut ahead, ms(112), slot.at, ms(4));
        assert_eq!(made, [(3, ms(116)), (4, ms(120)), (5, ms(124))]);
    }

    #[test]
    fn a_schedule_left_behind_restarts_from_now_and_cancel_voids_all() {
        let ms = Nanos::from_millis;
        let mut ahead = Ahead::default();
        ahead.set_cover(ms(4));
        assert_eq!(top_up(&mut ahead, ms(50), ms(10), ms(4)), [(0, ms(54))]);
        assert!(ahead.cancel());
        assert!(!ahead.cancel());
        assert_eq!(ahead.next_due(), None);
        // Numbers are never reused.
        assert_eq!(top_up(&mut ahead, ms(60), ms(60), ms(4)), [(1, ms(64))]);
    }
}
