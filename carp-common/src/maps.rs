//! Keys and values of the BPF maps shared by the XDP program and the daemon.

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

/// Key of [`crate::constants::MAP_PEERS`]: a source allowed to speak for a
/// vhid on an interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// Interface index.
    pub ifindex: u32,
    /// Virtual host id, widened.
    pub vhid: u16,
    /// [`crate::constants::AF_INET`] or [`crate::constants::AF_INET6`].
    pub family: u16,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<PeerKey>() == 24);

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
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// Interface index.
    pub ifindex: u32,
    /// Virtual host id, widened.
    pub vhid: u16,
    /// [`crate::constants::AF_INET`] or [`crate::constants::AF_INET6`].
    pub family: u16,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<RateKey>() == 24);

/// Value of [`crate::constants::MAP_RATE`]: GCRA state of one (source, vhid).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateState {
    /// Theoretical arrival time of the next conforming advert (ns, monotonic).
    pub tat_ns: u64,
}
const _: () = assert!(size_of::<RateState>() == 8);

/// Key of [`crate::constants::MAP_REPLAY`]: one advert source of one vhid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// Interface index.
    pub ifindex: u32,
    /// Virtual host id, widened.
    pub vhid: u16,
    /// [`crate::constants::AF_INET`] or [`crate::constants::AF_INET6`].
    pub family: u16,
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<ReplayKey>() == 24);

/// [`ReplayState::flags`] bit: the counter must exceed the last accepted one.
pub const REPLAY_STRICT: u32 = 1;
/// [`ReplayState::flags`] bit: the counter must carry [`crate::constants::COUNTER_TAG`]
/// (a source known to be carpd-xdp, which cannot be downgraded).
pub const REPLAY_REQUIRE_TAG: u32 = 2;

/// Value of [`crate::constants::MAP_REPLAY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReplayState {
    /// Last counter accepted from the source.
    pub last_counter: u64,
    /// `REPLAY_*` bits.
    pub flags: u32,
    /// Explicit padding, zero.
    pub _pad: u32,
}
const _: () = assert!(size_of::<ReplayState>() == 16);

impl ReplayState {
    /// Applies the rule to `counter`; on success records it and returns true.
    #[inline(always)]
    pub fn admit(&mut self, counter: u64) -> bool {
        if self.flags & REPLAY_REQUIRE_TAG != 0
            && (counter >> 48) as u16 != crate::constants::COUNTER_TAG
        {
            return false;
        }
        if self.flags & REPLAY_STRICT != 0 && counter <= self.last_counter {
            return false;
        }
        self.last_counter = counter;
        true
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
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerValue {}
    unsafe impl aya::Pod for RateKey {}
    unsafe impl aya::Pod for RateState {}
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for ReplayKey {}
    unsafe impl aya::Pod for ReplayState {}
}
