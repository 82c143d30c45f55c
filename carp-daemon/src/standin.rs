//! Stand-in senders: threads pinned to two CPUs that send a MASTER's
//! prepared adverts when the daemon's loop is late.
//!
//! The loop is one thread. When the CPU it is on stops running it (the
//! kernel's non-preemptible work, or a virtual CPU the hypervisor did not
//! run; measured in docs/tuning.md, "What is late"), no scheduling setting
//! gets the advert out, and at advbase 0 a backup takes over after
//! 11.7 ms. So, for instances at advbase 0, the core keeps the adverts of
//! the next slots prepared ([`crate::proto::ahead`]) and the daemon hands
//! each to a [`Lane`] of this module. Two stand-in threads, each pinned to
//! its own CPU, wake a quarter of an interval after each slot's time (the
//! lane's grace); a slot the loop has not sent by then is sent by the
//! first stand-in that gets to it. A stall of one CPU, whichever it is,
//! leaves one stand-in or the loop running.
//!
//! Who sends a slot is settled by one atomic per lane, `done`: every slot
//! below it is sent or void, and sending slot `n` means moving `done` from
//! at most `n` to `n + 1` by compare-and-swap. A later slot's claim voids
//! the earlier ones still unsent: an advert whose slot passed while nobody
//! could send is never sent after a later one. The loop never blocks on a
//! stand-in: it hands slots over with `try_lock` and keeps what it could
//! not hand over for the next time. Cancelling ([`LaneHandle::cancel`],
//! before a leave advert, a demote change, or when we stop being MASTER)
//! moves `done` past every slot and then waits for a stand-in's send
//! already under way (counted in `in_flight` before its claim), so that
//! nothing prepared leaves afterwards.
//!
//! The stand-ins run SCHED_FIFO ([`crate::realtime::escalate`]: with
//! `SCHED_RESET_ON_FORK` and the loop's `RLIMIT_RTTIME` guard) at the
//! daemon's real-time priority, or [`crate::lateness::AUTO_PRIORITY`] when
//! that is off and automatic escalation is on; where SCHED_FIFO is refused
//! they run SCHED_OTHER (the start warning of [`crate::lateness`] already
//! says what is missing). They start with the first lane and are not
//! used on a host with one CPU.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::thread::Thread;
use std::time::Duration;

use crate::clock::monotonic_ns;
use crate::net::sender::AdvertSocket;
use crate::proto::ahead::Slot;
use crate::proto::Nanos;
use crate::realtime::Realtime;

/// How long a stand-in can send without the loop: the core prepares this
/// much of the schedule.
pub const COVER: Nanos = Nanos::from_millis(100);

/// Longest wait of [`LaneHandle::cancel`] for a stand-in's send under way.
const CANCEL_WAIT: Duration = Duration::from_millis(50);

/// When a stand-in could not look at a lane (the loop was handing slots
/// over), it looks again this much later, in ns.
const BUSY_RETRY_NS: u64 = 100_000;

/// The stand-ins of this process, once [`init`] was called.
static STANDINS: OnceLock<Option<StandIns>> = OnceLock::new();

/// Starts the stand-ins' setup with the daemon's real-time `settings`;
/// without a second CPU to run on there are none. Later calls change
/// nothing.
pub fn init(settings: Realtime) {
    STANDINS.get_or_init(|| {
        let cpus = allowed_cpus();
        (cpus.len() >= 2).then(|| StandIns {
            cpus: [cpus[0], cpus[1]],
            priority: if settings.priority > 0 {
                settings.priority
            } else if settings.auto {
                crate::lateness::AUTO_PRIORITY
            } else {
                0
            },
            shared: Arc::new(Shared::default()),
            threads: OnceLock::new(),
        })
    });
}

/// Whether prepared adverts have stand-ins to send them.
pub fn available() -> bool {
    STANDINS.get().is_some_and(Option::is_some)
}

/// A lane for one instance's prepared adverts, whose stand-ins send a slot
/// `grace` after its time; `None` without stand-ins.
pub fn lane(grace: Nanos) -> Option<LaneHandle> {
    let standins = STANDINS.get()?.as_ref()?;
    let threads = standins.threads.get_or_init(|| standins.start());
    let lane = Arc::new(Lane {
        grace: grace.0,
        ..Lane::default()
    });
    standins
        .shared
        .lanes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::clone(&lane));
    standins.shared.generation.fetch_add(1, SeqCst);
    Some(LaneHandle {
        lane,
        shared: Arc::clone(&standins.shared),
        threads: threads.clone(),
        held: Vec::new(),
        highest: None,
    })
}

/// The stand-in threads and what they share with the loop.
struct StandIns {
    /// The CPUs they are pinned to.
    cpus: [usize; 2],
    /// Their SCHED_FIFO priority; 0: SCHED_OTHER.
    priority: u8,
    shared: Arc<Shared>,
    /// Started with the first lane.
    threads: OnceLock<Vec<Thread>>,
}

impl StandIns {
    fn start(&self) -> Vec<Thread> {
        self.cpus
            .iter()
            .enumerate()
            .filter_map(|(i, &cpu)| {
                let shared = Arc::clone(&self.shared);
                let priority = self.priority;
                std::thread::Builder::new()
                    .name(format!("carpd-standin{i}"))
                    .spawn(move || run(&shared, cpu, priority))
                    .map_err(|e| tracing::warn!("cannot start a stand-in sender: {e}"))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect()
    }
}

/// The lanes, shared by the loop and the stand-ins.
#[derive(Default)]
struct Shared {
    lanes: Mutex<Vec<Arc<Lane>>>,
    /// Bumped when a lane comes or goes.
    generation: AtomicU64,
}

/// One prepared advert and the sockets to send it on.
struct Held {
    slot: Slot,
    sockets: Arc<[AdvertSocket]>,
}

/// One instance's prepared adverts.
#[derive(Default)]
struct Lane {
    /// Every slot below this is sent or void.
    done: AtomicU64,
    /// Stand-ins between their claim and the end of their send.
    in_flight: AtomicU32,
    /// Slots handed over, in order; stale ones are dropped by the stand-ins.
    slots: Mutex<VecDeque<Held>>,
    /// How long after a slot's time a stand-in sends it, in ns.
    grace: u64,
    /// Adverts the stand-ins sent.
    sent: AtomicU64,
}

impl Lane {
    /// The slots, unless the other side holds them right now.
    fn try_slots(&self) -> Option<MutexGuard<'_, VecDeque<Held>>> {
        try_lock(&self.slots)
    }

    /// Moves `done` past `seq` if nothing at or after it was sent; true
    /// when this caller is the one to send it.
    fn claim(&self, seq: u64) -> bool {
        let mut done = self.done.load(SeqCst);
        loop {
            if done > seq {
                return false;
            }
            match self.done.compare_exchange(done, seq + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => done = now,
            }
        }
    }

    /// A stand-in's turn at `now`: sends the latest slot past its grace if
    /// the loop has not; returns when to look again.
    fn serve(&self, now: u64) -> Option<u64> {
        loop {
            let done = self.done.load(SeqCst);
            let (due, next) = {
                let Some(mut slots) = self.try_slots() else {
                    return Some(now + BUSY_RETRY_NS);
                };
                let mut due = None;
                while let Some(front) = slots.front() {
                    let stale = front.slot.seq < done;
                    if !stale && front.slot.at.0.saturating_add(self.grace) > now {
                        break;
                    }
                    let held = slots.pop_front();
                    if !stale {
                        due = held;
                    }
                }
                let next = slots
                    .front()
                    .map(|h| h.slot.at.0.saturating_add(self.grace));
                (due, next)
            };
            let Some(held) = due else {
                return next;
            };
            self.in_flight.fetch_add(1, SeqCst);
            if self.claim(held.slot.seq) {
                send(&held.sockets, &held.slot);
                self.sent.fetch_add(1, SeqCst);
                tracing::debug!(
                    vhid = held.slot.advert.vhid,
                    "a stand-in sent the advert due {} us ago: the loop was late",
                    monotonic_ns().saturating_sub(held.slot.at.0) / 1_000
                );
            }
            self.in_flight.fetch_sub(1, SeqCst);
        }
    }
}

/// `mutex` locked, unless another thread holds it right now (a panic
/// while it was held leaves nothing half done here).
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Sends `slot`'s advert on every socket; failures are logged.
fn send(sockets: &[AdvertSocket], slot: &Slot) {
    for s in sockets {
        if let Err(e) = s.send(&slot.advert) {
            tracing::warn!("{}", crate::chain::Chain(&e));
        }
    }
}

/// The loop's end of one instance's lane.
pub struct LaneHandle {
    lane: Arc<Lane>,
    shared: Arc<Shared>,
    threads: Vec<Thread>,
    /// Slots not handed over yet (the stand-ins held the lane).
    held: Vec<Held>,
    /// The highest slot given to [`LaneHandle::prepare`].
    highest: Option<u64>,
}

impl LaneHandle {
    /// Holds `slot` ready for the stand-ins, to send on `sockets`.
    pub fn prepare(&mut self, slot: Slot, sockets: Arc<[AdvertSocket]>) {
        self.highest = Some(slot.seq);
        self.held.push(Held { slot, sockets });
        self.hand_over();
    }

    /// Hands the held slots over if the lane is free, waking the stand-ins
    /// when it was empty (they sleep without a deadline then).
    fn hand_over(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let Some(mut slots) = self.lane.try_slots() else {
            return;
        };
        let was_empty = slots.is_empty();
        slots.extend(self.held.drain(..));
        drop(slots);
        if was_empty {
            for t in &self.threads {
                t.unpark();
            }
        }
    }

    /// `slot`'s time came: sends it on `sockets` unless a stand-in already
    /// did. True when a stand-in did.
    pub fn send_due(&mut self, slot: &Slot, sockets: &[AdvertSocket]) -> bool {
        self.hand_over();
        if self.lane.claim(slot.seq) {
            send(sockets, slot);
            false
        } else {
            true
        }
    }

    /// Voids every prepared advert; on return no stand-in is sending one
    /// (unless one was held up for longer than [`CANCEL_WAIT`], which is
    /// logged).
    pub fn cancel(&mut self) {
        self.held.clear();
        if let Some(highest) = self.highest {
            self.lane.done.fetch_max(highest + 1, SeqCst);
        }
        let start = std::time::Instant::now();
        while self.lane.in_flight.load(SeqCst) > 0 {
            if start.elapsed() > CANCEL_WAIT {
                tracing::warn!(
                    "a stand-in sender was held up for {} ms sending a prepared advert",
                    CANCEL_WAIT.as_millis()
                );
                break;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
        if let Some(mut slots) = self.lane.try_slots() {
            slots.clear();
        }
    }

    /// Adverts the stand-ins sent for this instance.
    pub fn standin_sent(&self) -> u64 {
        self.lane.sent.load(SeqCst)
    }
}

impl Drop for LaneHandle {
    fn drop(&mut self) {
        self.cancel();
        self.shared
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|l| !Arc::ptr_eq(l, &self.lane));
        self.shared.generation.fetch_add(1, SeqCst);
    }
}

/// A stand-in thread: pinned to `cpu`, SCHED_FIFO at `priority` if it can.
fn run(shared: &Shared, cpu: usize, priority: u8) {
    pin_to(cpu);
    // Refused without CAP_SYS_NICE or RLIMIT_RTPRIO: then SCHED_OTHER.
    if priority > 0 && crate::realtime::escalate(priority).is_err() {
        tracing::debug!("stand-in sender on CPU {cpu} runs SCHED_OTHER");
    }
    let mut lanes: Vec<Arc<Lane>> = Vec::new();
    let mut seen = u64::MAX;
    loop {
        let generation = shared.generation.load(SeqCst);
        if generation != seen {
            if let Some(current) = try_lock(&shared.lanes) {
                lanes.clone_from(&current);
                seen = generation;
            }
        }
        let now = monotonic_ns();
        let wake = lanes.iter().filter_map(|l| l.serve(now)).min();
        match wake {
            Some(at) => std::thread::park_timeout(Duration::from_nanos(at.saturating_sub(now))),
            None => std::thread::park(),
        }
    }
}

/// Pins the calling thread to `cpu`; a failure leaves it where it is.
fn pin_to(cpu: usize) {
    // SAFETY: `set` is a valid cpu_set_t, zeroed then filled by CPU_SET;
    // pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a valid cpu_set_t to fill; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carp_common::header::CarpHeader;

    /// A lane with no stand-in thread, served by hand; slots `at` ms.
    fn lane(grace_ms: u64) -> LaneHandle {
        LaneHandle {
            lane: Arc::new(Lane {
                grace: grace_ms * 1_000_000,
                ..Lane::default()
            }),
            shared: Arc::new(Shared::default()),
            threads: Vec::new(),
            held: Vec::new(),
            highest: None,
        }
    }

    fn slot(seq: u64, at_ms: u64) -> Slot {
        Slot {
            seq,
            at: Nanos::from_millis(at_ms),
            advert: CarpHeader::advertisement(1, 0, 0, 0, seq),
        }
    }

    fn ms(ms: u64) -> u64 {
        ms * 1_000_000
    }

    #[test]
    fn a_standin_sends_what_the_loop_did_not_and_only_that() {
        let none: Arc<[AdvertSocket]> = Arc::from(Vec::new());
        let mut h = lane(1);
        for (seq, at) in [(0, 10), (1, 14), (2, 18)] {
            h.prepare(slot(seq, at), Arc::clone(&none));
        }
        // Before the grace: nothing, look again at 11 ms.
        assert_eq!(h.lane.serve(ms(10)), Some(ms(11)));
        // The loop sends slot 0 on time: the stand-in does not.
        assert!(!h.send_due(&slot(0, 10), &none));
        assert_eq!(h.lane.serve(ms(11)), Some(ms(15)));
        assert_eq!(h.standin_sent(), 0);
        // The loop is late for slot 1: the stand-in sends it, the loop not.
        assert_eq!(h.lane.serve(ms(15)), Some(ms(19)));
        assert_eq!(h.standin_sent(), 1);
        assert!(h.send_due(&slot(1, 14), &none));
    }

    #[test]
    fn a_later_slot_voids_earlier_ones_and_cancel_voids_all() {
        let none: Arc<[AdvertSocket]> = Arc::from(Vec::new());
        let mut h = lane(1);
        for (seq, at) in [(0, 10), (1, 14), (2, 18), (3, 22)] {
            h.prepare(slot(seq, at), Arc::clone(&none));
        }
        // Both late past slots 0 and 1: the stand-in sends slot 1 only.
        assert_eq!(h.lane.serve(ms(16)), Some(ms(19)));
        assert_eq!(h.standin_sent(), 1);
        // The loop, waking later still, sends slot 2, not slot 0 or 1.
        assert!(h.send_due(&slot(0, 10), &none));
        assert!(!h.send_due(&slot(2, 18), &none));
        h.cancel();
        assert_eq!(h.lane.serve(ms(100)), None);
        assert_eq!(h.standin_sent(), 1);
        assert!(h.send_due(&slot(3, 22), &none));
    }
}
