//! Keys and values of the BPF maps shared by the XDP program and the daemon.

use crate::constants::{RECENT_SETS, RECENT_WAYS, REPLAY_MEMORY};

/// Key of [`crate::constants::MAP_VHIDS`]: a vhid served on an interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VhidKey {
    /// Interface index.
    pub ifindex: u32,
    /// Virtual host id (1..=255), widened to avoid padding.
    pub vhid: u32,
}
const _: () = assert!(size_of::<VhidKey>() == 8);

/// Value of [`crate::constants::MAP_VHIDS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VhidValue {
    /// [`VHID_SERVED`], plus [`VHID_PEERS_ONLY`] when only the sources in
    /// [`crate::constants::MAP_PEERS`] may speak for the vhid.
    pub enabled: u32,
}
const _: () = assert!(size_of::<VhidValue>() == 4);

/// [`VhidValue::enabled`]: the vhid is served.
pub const VHID_SERVED: u32 = 1;
/// [`VhidValue::enabled`]: only the sources listed for the vhid in
/// [`crate::constants::MAP_PEERS`] are accepted (the peer allow-list).
pub const VHID_PEERS_ONLY: u32 = 2;

/// One advert source of one vhid on one interface: the key of the peer
/// allow-list, the rate limit and the replay rules.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// Interface index.
    pub ifindex: u32,
    /// Virtual host id, widened (the rate limit's [`RATE_REPEATS`] bit
    /// apart).
    pub vhid: u16,
    /// [`crate::constants::AF_INET`] or [`crate::constants::AF_INET6`].
    pub family: u16,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<SourceKey>() == 24);

/// Key of [`crate::constants::MAP_PEERS`]: a source allowed to speak for a
/// vhid on an interface.
pub type PeerKey = SourceKey;

/// Value of [`crate::constants::MAP_PEERS`]: the Ethernet source the peer
/// must send from, if pinned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PeerValue {
    /// The peer's MAC address (when `mac_pinned` is non-zero).
    pub mac: [u8; 6],
    /// Non-zero: frames from another Ethernet source are refused.
    pub mac_pinned: u16,
}
const _: () = assert!(size_of::<PeerValue>() == 8);

/// Key of [`crate::constants::MAP_RATE`]: one advert source of one vhid on
/// one interface. The master of a vhid sends at most one advert per advert
/// interval, so a bucket per (source, vhid) needs only what one vhid may
/// send, and the bursts of a host serving many vhids never share a bucket.
pub type RateKey = SourceKey;

/// [`SourceKey::vhid`] bit of a [`RateKey`]: the budget of a source's [`Admit::Repeat`]
/// adverts, apart from its new ones.
pub const RATE_REPEATS: u16 = 0x100;

/// Value of [`crate::constants::MAP_RATE`]: GCRA state of one (source, vhid).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateState {
    /// Theoretical arrival time of the next conforming advert (ns, monotonic).
    pub tat_ns: u64,
}
const _: () = assert!(size_of::<RateState>() == 8);

/// Key of [`crate::constants::MAP_REPLAY`]: one advert source of one vhid.
pub type ReplayKey = SourceKey;

/// [`ReplayState::flags`] bit: every counter must exceed
/// [`ReplayState::last_counter`] (the strict rule).
pub const REPLAY_STRICT: u32 = 1;
/// [`ReplayState::flags`] bit: the counter must carry [`crate::constants::COUNTER_TAG`]
/// (a source known to be carpd-xdp, which cannot be downgraded).
pub const REPLAY_REQUIRE_TAG: u32 = 2;
/// [`ReplayState::flags`] bit: tagged counters must exceed
/// [`ReplayState::last_counter`], the last tagged one (the auto rule for a
/// source not yet known to be carpd-xdp); the others follow
/// [`REPLAY_RECENT`].
pub const REPLAY_TAGGED_GROW: u32 = 4;
/// [`ReplayState::flags`] bit: a counter must not be one of the recent
/// counters recorded ([`Recent`]; the compat rule).
pub const REPLAY_RECENT: u32 = 8;
/// [`ReplayState::flags`] bit: [`ReplayState::cookie`] from
/// [`ReplayState::cookie_mac`] passes whatever the other bits say (OpenBSD's
/// constant counter, accepted as liveness).
pub const REPLAY_COOKIE: u32 = 16;
/// [`ReplayState::flags`] bit: an untagged counter the other bits refuse,
/// sent from the vhid's UCARP or BSD virtual-router MAC, is a
/// [`Admit::Repeat`], not refused (carpd-xdp's tagged counters never
/// repeat). UCARP and FreeBSD take on the counter of every advert they
/// accept, so anyone who re-sends one of their old adverts to them makes
/// them send counters again that they sent before: such adverts are
/// genuine, and prove that the host lives, nothing more.
pub const REPLAY_REPEATS: u32 = 32;

/// What a source's replay rule says of a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// A counter the rule lets through as new.
    Fresh,
    /// A counter seen before, from a peer that repeats counters when made
    /// to ([`REPLAY_REPEATS`]): proof of life only.
    Repeat,
    /// Refused.
    Refused,
}

/// Whether `mac` is the UCARP (`00:00:5e:00:00:vhid`) or BSD
/// (`00:00:5e:00:01:vhid`) virtual-router address of `vhid`: a peer that
/// takes on the counters it hears.
#[inline(always)]
pub fn adopts_counters(mac: &[u8; 6], vhid: u8) -> bool {
    mac[0] == 0 && mac[1] == 0 && mac[2] == 0x5e && mac[3] == 0 && mac[4] <= 1 && mac[5] == vhid
}

/// The recent counters of one source: [`RECENT_SETS`] groups chosen by the
/// counter's bits, each remembering its last [`RECENT_WAYS`] counters.
///
/// A lookup reads one group, so the XDP program's loop has
/// [`RECENT_WAYS`] rounds, not [`REPLAY_MEMORY`] (the verifier follows
/// every round on every path). Counters that grow by one (UCARP once it
/// heard a peer, FreeBSD) fill the groups in turn: the last
/// [`REPLAY_MEMORY`] are remembered. Random ones (UCARP alone) spread
/// unevenly: at least the last [`RECENT_WAYS`], usually near
/// [`REPLAY_MEMORY`]. The protocol core uses this very type, so both
/// remember the same counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recent {
    /// The counters of each group; slots `len[g]..` of group `g` are unused.
    pub slots: [[u64; RECENT_WAYS]; RECENT_SETS],
    /// Slot of each group the next counter goes to.
    pub next: [u8; RECENT_SETS],
    /// Slots of each group in use.
    pub len: [u8; RECENT_SETS],
}
const _: () = assert!(size_of::<Recent>() == 8 * REPLAY_MEMORY + 2 * RECENT_SETS);
const _: () = assert!(RECENT_SETS.is_power_of_two() && RECENT_WAYS.is_power_of_two());
const _: () = assert!(RECENT_WAYS <= u8::MAX as usize);

impl Default for Recent {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Recent {
    /// Nothing remembered.
    pub const EMPTY: Self = Self {
        slots: [[0; RECENT_WAYS]; RECENT_SETS],
        next: [0; RECENT_SETS],
        len: [0; RECENT_SETS],
    };

    /// The group of `counter`.
    #[inline(always)]
    fn set(counter: u64) -> usize {
        ((counter ^ (counter >> 32)) as usize) & (RECENT_SETS - 1)
    }

    /// Whether `counter` is remembered.
    #[inline(always)]
    pub fn contains(&self, counter: u64) -> bool {
        let g = Self::set(counter);
        let len = self.len[g] as usize;
        let slots = &self.slots[g];
        let mut i = 0;
        // A bounded loop the verifier can follow.
        while i < RECENT_WAYS {
            if i >= len {
                break;
            }
            if slots[i] == counter {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Remembers `counter`, forgetting the oldest of its group when full.
    #[inline(always)]
    pub fn push(&mut self, counter: u64) {
        let g = Self::set(counter);
        let at = self.next[g] as usize & (RECENT_WAYS - 1);
        self.slots[g][at] = counter;
        self.next[g] = ((at + 1) & (RECENT_WAYS - 1)) as u8;
        if (self.len[g] as usize) < RECENT_WAYS {
            self.len[g] += 1;
        }
    }
}

/// Value of [`crate::constants::MAP_REPLAY`]: the replay rule of one source
/// of one vhid, as the protocol core applies it (see the daemon's
/// `proto::replay`), with the state it needs.
///
/// [`ReplayState::admits`] runs before the HMAC (a frame that fails it is
/// refused whether it is a replay or a forgery, and costs no SHA-1);
/// [`ReplayState::record`] after it, so that only authentic adverts move the
/// state. The rate limit comes after both, so refused frames never use up
/// a source's budget.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayState {
    /// Last counter accepted ([`REPLAY_STRICT`]) or last tagged counter
    /// accepted ([`REPLAY_TAGGED_GROW`]; 0: none yet).
    pub last_counter: u64,
    /// The counter that may repeat ([`REPLAY_COOKIE`]).
    pub cookie: u64,
    /// `REPLAY_*` bits.
    pub flags: u32,
    /// The Ethernet source [`ReplayState::cookie`] must come from.
    pub cookie_mac: [u8; 6],
    /// Explicit padding, zero.
    pub _pad: [u8; 6],
    /// The counters recorded lately ([`REPLAY_RECENT`]).
    pub recent: Recent,
}
const _: () = assert!(size_of::<ReplayState>() == 32 + size_of::<Recent>());

impl ReplayState {
    /// A rule with `flags`, `last_counter` and the `recent` counters.
    pub fn new(flags: u32, last_counter: u64, recent: &Recent) -> Self {
        Self {
            last_counter,
            cookie: 0,
            flags,
            cookie_mac: [0; 6],
            _pad: [0; 6],
            recent: *recent,
        }
    }

    /// The same rule, letting `cookie` from `mac` repeat.
    pub fn with_cookie(mut self, cookie: u64, mac: [u8; 6]) -> Self {
        self.flags |= REPLAY_COOKIE;
        self.cookie = cookie;
        self.cookie_mac = mac;
        self
    }

    /// What the rule says of `counter`, sent for `vhid` from Ethernet
    /// source `mac`. Changes nothing.
    #[inline(always)]
    pub fn admits(&self, counter: u64, mac: &[u8; 6], vhid: u8) -> Admit {
        let tagged = (counter >> 48) as u16 == crate::constants::COUNTER_TAG;
        if self.passes(counter, mac) {
            Admit::Fresh
        } else if self.flags & REPLAY_REPEATS != 0 && !tagged && adopts_counters(mac, vhid) {
            Admit::Repeat
        } else {
            Admit::Refused
        }
    }

    /// Whether `counter` from `mac` passes the rule as new.
    #[inline(always)]
    fn passes(&self, counter: u64, mac: &[u8; 6]) -> bool {
        if self.flags & REPLAY_COOKIE != 0 && counter == self.cookie && *mac == self.cookie_mac {
            return true;
        }
        let tagged = (counter >> 48) as u16 == crate::constants::COUNTER_TAG;
        if self.flags & REPLAY_REQUIRE_TAG != 0 && !tagged {
            return false;
        }
        if self.flags & REPLAY_STRICT != 0 {
            return counter > self.last_counter;
        }
        if self.flags & REPLAY_TAGGED_GROW != 0 && tagged {
            return counter > self.last_counter;
        }
        if self.flags & REPLAY_RECENT != 0 {
            return !self.recent.contains(counter);
        }
        true
    }

    /// Records `counter` of an authentic advert that [`Self::admits`] let
    /// through as [`Admit::Fresh`].
    #[inline(always)]
    pub fn record(&mut self, counter: u64) {
        let tagged = (counter >> 48) as u16 == crate::constants::COUNTER_TAG;
        if self.flags & REPLAY_STRICT != 0 || (self.flags & REPLAY_TAGGED_GROW != 0 && tagged) {
            self.last_counter = counter;
        }
        self.recent.push(counter);
    }
}

/// [`Settings::flags`] bit: pass handled adverts on to the kernel stack
/// (`XDP_PASS`) instead of dropping them, so that tcpdump can see them.
pub const SETTINGS_PASS_HANDLED: u32 = 1;

/// The single value of [`crate::constants::MAP_SETTINGS`], written by the daemon.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// GCRA emission interval per (source, vhid): 1e9 / rate, in ns per
    /// advert; 0 disables the limit.
    pub rate_interval_ns: u64,
    /// GCRA tolerance: (burst - 1) × `rate_interval_ns`, in ns.
    pub rate_tolerance_ns: u64,
    /// Bit set of `SETTINGS_*` flags.
    pub flags: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}
const _: () = assert!(size_of::<Settings>() == 24);

impl Settings {
    /// Settings allowing `rate_per_sec` adverts per second per (source, vhid)
    /// with bursts of `burst` adverts (`rate_per_sec` 0: no limit).
    pub const fn with_rate(rate_per_sec: u32, burst: u32, flags: u32) -> Self {
        if rate_per_sec == 0 {
            return Self {
                rate_interval_ns: 0,
                rate_tolerance_ns: 0,
                flags,
                _pad: 0,
            };
        }
        let interval = 1_000_000_000 / rate_per_sec as u64;
        let burst = if burst == 0 { 1 } else { burst };
        Self {
            rate_interval_ns: interval,
            rate_tolerance_ns: interval * (burst as u64 - 1),
            flags,
            _pad: 0,
        }
    }

    /// True when handled adverts should be passed on to the stack.
    pub const fn pass_handled(&self) -> bool {
        self.flags & SETTINGS_PASS_HANDLED != 0
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY (all of them): repr(C), integers only, no implicit padding (sizes
    // asserted above), so every bit pattern is a valid value.
    unsafe impl aya::Pod for VhidKey {}
    unsafe impl aya::Pod for VhidValue {}
    unsafe impl aya::Pod for SourceKey {}
    unsafe impl aya::Pod for PeerValue {}
    unsafe impl aya::Pod for RateState {}
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for ReplayState {}
    unsafe impl aya::Pod for Recent {}
}
