//! The adverts a MASTER sends, apart from the rest of the state machine:
//! made when they are sent or, with a cover set
//! ([`Instance::send_ahead`]), prepared for the next slots of the schedule
//! for a stand-in to send (see [`crate::ahead`]).

use carp_common::constants::{CARP_LEAVE_ADVBASE, CARP_LEAVE_ADVSKEW};
use carp_common::header::CarpHeader;

use super::{Action, Instance, State};
use crate::timers::Timer;
use crate::Nanos;

impl Instance {
    /// A MASTER's advert sent at once (the takeover advert, a demote
    /// change): what was prepared is void, the schedule starts again from
    /// `now`.
    pub(super) fn master_advert(&mut self, now: Nanos) {
        self.cancel_prepared();
        self.emit_advert(now, false);
        self.advert_sent();
        self.schedule_from(now, now);
    }

    /// The advert timer fired: the periodic advert, made now or, with
    /// adverts prepared ahead, the latest slot due.
    pub(super) fn scheduled_advert(&mut self, now: Nanos) {
        if !self.ahead.is_on() {
            self.master_advert(now);
            return;
        }
        match self.ahead.take_due(now) {
            Some((due, slot)) => {
                self.status.adverts_sent += due;
                self.actions.push_back(Action::SendPrepared(slot));
                self.advert_sent();
                self.schedule_from(now, slot.at);
            }
            // Nothing prepared (cannot happen while MASTER): start again.
            None => self.master_advert(now),
        }
    }

    /// Prepared adverts no longer say what we advertise (our identity
    /// changed): prepares them again on the same schedule.
    pub(super) fn reprepare(&mut self, now: Nanos) {
        if self.state != State::Master || !self.ahead.is_on() {
            return;
        }
        let next = self.ahead.next_due();
        self.cancel_prepared();
        let last = next.map_or(now, |at| at.saturating_sub(self.params.advert_interval()));
        self.schedule_from(now, last);
    }

    /// Voids every prepared advert, telling the daemon if there were any.
    pub(super) fn cancel_prepared(&mut self) {
        if self.ahead.cancel() {
            self.actions.push_back(Action::CancelPrepared);
        }
    }

    /// Counts an advert for the announcement rounds: the first with the
    /// takeover advert, then every `announce_every_adverts` adverts.
    fn advert_sent(&mut self) {
        self.adverts_since_takeover += 1;
        let every = u64::from(self.params.announce_every_adverts.max(1));
        if self.announce_rounds_left > 0 && (self.adverts_since_takeover - 1).is_multiple_of(every)
        {
            self.announce_rounds_left -= 1;
            self.actions.push_back(Action::Announce);
        }
    }

    /// Arms the advert timer for the slot after the advert of time `last`,
    /// preparing the adverts of the next slots first when that is on.
    fn schedule_from(&mut self, now: Nanos, last: Nanos) {
        let interval = self.params.advert_interval();
        if !self.ahead.is_on() {
            self.timers.set(Timer::Advert, now.saturating_add(interval));
            return;
        }
        while let Some(at) = self.ahead.wanted(now, last, interval) {
            let advert = self.make_advert(at, false);
            let slot = self.ahead.push(at, advert);
            self.actions.push_back(Action::PrepareAdvert(slot));
        }
        if let Some(at) = self.ahead.next_due() {
            self.timers.set(Timer::Advert, at);
        }
    }

    /// Queues one complete advert; a leave advert carries advbase and
    /// advskew 255.
    pub(super) fn emit_advert(&mut self, now: Nanos, leave: bool) {
        if leave {
            // No prepared advert may follow the leave advert.
            self.cancel_prepared();
        }
        let header = self.make_advert(now, leave);
        self.status.adverts_sent += 1;
        self.actions.push_back(Action::SendAdvert(header));
    }

    /// One complete advert with the counter of time `at` (asking for a
    /// counter reservation when one is due).
    fn make_advert(&mut self, at: Nanos, leave: bool) -> CarpHeader {
        let (advbase, advskew) = if leave {
            (CARP_LEAVE_ADVBASE, CARP_LEAVE_ADVSKEW)
        } else {
            (self.params.advbase_secs, self.params.wire_advskew())
        };
        let (counter, reserve) = self.counter.next(at);
        if let Some(reserve) = reserve {
            self.actions.push_back(Action::PersistCounter(reserve));
        }
        let mut header = CarpHeader::advertisement(
            self.params.vhid,
            advbase,
            advskew,
            self.params.demote,
            counter,
        );
        self.auth.seal(&mut header);
        header
    }
}
