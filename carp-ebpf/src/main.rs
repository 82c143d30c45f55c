//! carpd-xdp's XDP program.
//!
//! Every frame goes through [`carp_common::inspect::inspect`]; this file only
//! supplies packet access, the map lookups and the ring-buffer output. Frames
//! that are not IP protocol 112 pass after two or three loads. Validated
//! adverts go to userspace through the `CARP_EVENTS` ring buffer; handled
//! protocol-112 frames are then dropped, or passed when the daemon sets
//! `SETTINGS_PASS_HANDLED`. Each outcome bumps its own per-CPU counter.
//! The TC program in [`tc`] runs the same, from the tcx ingress hook.
#![no_std]
#![no_main]

mod tc;

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::bindings::{__sk_buff, BPF_F_NO_PREALLOC, BPF_RB_AVAIL_DATA};
use aya_ebpf::helpers::bpf_ktime_get_ns;
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::XdpContext;
use carp_common::access::Packet;
use carp_common::constants::{
    CARP_HMAC_LEN, MAP_EVENTS_BYTES, MAP_EVENTS_UNRULED_BYTES, MAP_PEERS_CAPACITY,
    MAP_RATE_CAPACITY, MAP_REPLAY_CAPACITY, MAP_VHIDS_CAPACITY,
};
use carp_common::event::AdvertEvent;
use carp_common::hmac::{verify_advert_in, HmacKey};
use carp_common::inspect::{fill_event, inspect, Auth, Layout, Located, Tables, Verdict};
use carp_common::maps::{
    Admit, PeerKey, PeerValue, RateKey, RateState, ReplayKey, ReplayState, Settings, VhidKey,
    VhidValue,
};
use carp_common::rate;
use carp_common::reason::{Reason, REASON_COUNT};
use carp_common::sha1::Block;

#[map(name = "CARP_VHIDS")]
static CARP_VHIDS: HashMap<VhidKey, VhidValue> = HashMap::with_max_entries(MAP_VHIDS_CAPACITY, 0);

#[map(name = "CARP_PEERS")]
static CARP_PEERS: HashMap<PeerKey, PeerValue> = HashMap::with_max_entries(MAP_PEERS_CAPACITY, 0);

#[map(name = "CARP_RATE")]
static CARP_RATE: LruHashMap<RateKey, RateState> =
    LruHashMap::with_max_entries(MAP_RATE_CAPACITY, 0);

#[map(name = "CARP_SETTINGS")]
static CARP_SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

#[map(name = "CARP_COUNTERS")]
static CARP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(REASON_COUNT, 0);

#[map(name = "CARP_EVENTS")]
static CARP_EVENTS: RingBuf = RingBuf::with_byte_size(MAP_EVENTS_BYTES, 0);

#[map(name = "CARP_HMAC")]
static CARP_HMAC: HashMap<VhidKey, HmacKey> = HashMap::with_max_entries(MAP_VHIDS_CAPACITY, 0);

#[map(name = "CARP_HMAC_ALT")]
static CARP_HMAC_ALT: HashMap<VhidKey, HmacKey> = HashMap::with_max_entries(MAP_VHIDS_CAPACITY, 0);

/// Filled and emptied by the daemon alone; allocated per entry, since each
/// holds a few kilobytes of recent counters.
#[map(name = "CARP_REPLAY")]
static CARP_REPLAY: HashMap<ReplayKey, ReplayState> =
    HashMap::with_max_entries(MAP_REPLAY_CAPACITY, BPF_F_NO_PREALLOC);

#[map(name = "CARP_LAYOUT")]
static CARP_LAYOUT: PerCpuArray<Layout> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "CARP_SCRATCH")]
static CARP_SCRATCH: PerCpuArray<Block> = PerCpuArray::with_max_entries(1, 0);

/// The frame between `data` and `data_end`.
struct Frame {
    start: usize,
    end: usize,
}

impl Packet for Frame {
    #[inline(always)]
    fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        // Offsets come from a fixed Ethernet/VLAN length plus IHL × 4, so
        // they are small; the mask only tells the verifier so.
        let at = self.start + (offset & 0xff);
        if at + N > self.end {
            return None;
        }
        // SAFETY: [at, at + N) lies inside the packet (checked just above
        // against data_end); [u8; N] has alignment 1.
        Some(unsafe { core::ptr::read_unaligned(at as *const [u8; N]) })
    }
}

/// The settings the daemon wrote, or the defaults (no rate limit, drop).
#[inline(always)]
fn settings() -> Settings {
    match CARP_SETTINGS.get(0) {
        Some(s) => *s,
        None => Settings::default(),
    }
}

/// The kernel side of [`Tables`]: helpers and maps, and for the TC program
/// the socket buffer, which holds the VLAN tag the stack took off.
struct Maps {
    /// The TC program's socket buffer; null in the XDP program.
    skb: *const __sk_buff,
}

impl Maps {
    /// The tables of the XDP program (no socket buffer).
    const XDP: Maps = Maps {
        skb: core::ptr::null(),
    };
}

impl Tables for Maps {
    #[inline(always)]
    fn now_ns(&mut self) -> u64 {
        // SAFETY: helper call without arguments.
        unsafe { bpf_ktime_get_ns() }
    }

    #[inline(always)]
    fn stripped_vlan_id(&self) -> u16 {
        if self.skb.is_null() {
            // XDP: a tag the NIC stripped is out of reach (the driver's
            // metadata kfunc needs a device-bound program).
            return 0;
        }
        // SAFETY: the TC program's context, read while it runs.
        let (present, tci) = unsafe { ((*self.skb).vlan_present, (*self.skb).vlan_tci) };
        if present == 0 {
            0
        } else {
            (tci & 0x0fff) as u16
        }
    }

    #[inline(always)]
    fn vhid_flags(&self, key: &VhidKey) -> u32 {
        // SAFETY: the value is only read, while the map holds it (RCU).
        match unsafe { CARP_VHIDS.get(key) } {
            Some(v) => v.enabled,
            None => 0,
        }
    }

    #[inline(always)]
    fn peer(&self, key: &PeerKey) -> Option<PeerValue> {
        // SAFETY: the value is copied out while the map holds it (RCU).
        unsafe { CARP_PEERS.get(key) }.copied()
    }

    #[inline(always)]
    fn authenticate(
        &mut self,
        key: &VhidKey,
        counter: &[u8; 8],
        hmac: &[u8; CARP_HMAC_LEN],
    ) -> Auth {
        // SAFETY: the key is only read, while the map holds it (RCU).
        let Some(hmac_key) = (unsafe { CARP_HMAC.get(key) }) else {
            return Auth::Unchecked;
        };
        let Some(scratch) = CARP_SCRATCH.get_ptr_mut(0) else {
            return Auth::Unchecked;
        };
        // SAFETY: this CPU's slot of the per-CPU scratch array; XDP does not
        // nest on one CPU, so nothing else uses it meanwhile.
        if verify_advert_in(hmac_key, counter, hmac, unsafe { &mut *scratch }) {
            return Auth::Good;
        }
        // SAFETY: as above.
        match unsafe { CARP_HMAC_ALT.get(key) } {
            // SAFETY: as above.
            Some(alt) if verify_advert_in(alt, counter, hmac, unsafe { &mut *scratch }) => {
                Auth::Good
            }
            _ => Auth::Bad,
        }
    }

    #[inline(always)]
    fn replay_admits(&mut self, key: &ReplayKey, counter: u64, mac: &[u8; 6]) -> Option<Admit> {
        let state = CARP_REPLAY.get_ptr(key)?;
        // SAFETY: pointer from a successful lookup, read while the map holds
        // the entry (RCU); the 2 KiB value is never copied.
        Some(unsafe { (*state).admits(counter, mac, key.vhid as u8) })
    }

    #[inline(always)]
    fn replay_record(&mut self, key: &ReplayKey, counter: u64) -> bool {
        let Some(state) = CARP_REPLAY.get_ptr_mut(key) else {
            return false;
        };
        // SAFETY: pointer from a successful lookup. Two CPUs recording
        // adverts of one source at once could lose one record; adverts of
        // one source arrive one per interval, and userspace checks again.
        unsafe { (*state).record(counter) };
        true
    }

    #[inline(always)]
    fn forget_layout(&mut self, layout: Layout) -> Layout {
        let Some(slot) = CARP_LAYOUT.get_ptr_mut(0) else {
            return layout;
        };
        // SAFETY: this CPU's slot of a per-CPU array (XDP does not nest on
        // one CPU); volatile, so that the value is read back from memory,
        // where the verifier does not follow it.
        unsafe {
            core::ptr::write_volatile(slot, layout);
            core::ptr::read_volatile(slot)
        }
    }

    #[inline(always)]
    fn rate_conforms(&mut self, key: &RateKey, now_ns: u64) -> bool {
        let settings = settings();
        if let Some(state) = CARP_RATE.get_ptr_mut(key) {
            // SAFETY: the pointer comes from a successful lookup and points at
            // a RateState in the map. Concurrent updates from other CPUs can
            // race; the worst case is one advert more or less let through.
            return rate::conforms(unsafe { &mut *state }, &settings, now_ns);
        }
        let mut fresh = RateState::default();
        let ok = rate::conforms(&mut fresh, &settings, now_ns);
        // An LRU map evicts instead of failing when full; should the insert
        // fail anyway, this (source, vhid) just starts with a full bucket
        // next time.
        let _ = CARP_RATE.insert(key, &fresh, 0);
        ok
    }
}

#[inline(always)]
fn count(reason: Reason) {
    if let Some(c) = CARP_COUNTERS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot of this CPU, so no other writer.
        unsafe { *c += 1 };
    }
}

#[xdp]
pub fn carp_xdp(ctx: XdpContext) -> u32 {
    match try_carp_xdp(&ctx) {
        Ok(action) => action,
        Err(()) => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn try_carp_xdp(ctx: &XdpContext) -> Result<u32, ()> {
    let frame = Frame {
        start: ctx.data(),
        end: ctx.data_end(),
    };
    // SAFETY: reads a field of the context the kernel handed us.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let outcome = match inspect(&frame, ifindex, &mut Maps::XDP) {
        Verdict::NotCarp => return Ok(xdp_action::XDP_PASS),
        Verdict::Drop(reason) => reason,
        Verdict::Advert(at) => deliver(&frame, &at, ifindex),
    };
    count(outcome);
    // Frames we cannot claim (malformed, other versions such as VRRPv3,
    // vhids of other daemons) go on to the stack; ours are consumed unless
    // the daemon asks to let tcpdump see them.
    if !outcome.for_served_vhid() || settings().pass_handled() {
        Ok(xdp_action::XDP_PASS)
    } else {
        Ok(xdp_action::XDP_DROP)
    }
}

/// Writes the event straight into ring-buffer memory (no 96-byte stack copy).
/// Out of line: its loads get their own stack frame, so that the
/// classifier's frame and the HMAC's stay within the verifier's 512 bytes.
///
/// Adverts from sources without a replay rule may fill only
/// [`MAP_EVENTS_UNRULED_BYTES`] of the ring: a flood of replays from ever
/// new source addresses then leaves room for the master's adverts.
#[inline(never)]
fn deliver(frame: &Frame, at: &Located, ifindex: u32) -> Reason {
    if !at.ruled && CARP_EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= MAP_EVENTS_UNRULED_BYTES as u64 {
        return Reason::RingBufFull;
    }
    let Some(mut entry) = CARP_EVENTS.reserve::<AdvertEvent>(0) else {
        return Reason::RingBufFull;
    };
    // SAFETY: AdvertEvent is integers only, so any bytes are a valid value;
    // fill_event sets every field before the entry is submitted.
    let ev = unsafe { entry.assume_init_mut() };
    if fill_event(frame, at, ifindex, ev) {
        entry.submit(0);
        Reason::Delivered
    } else {
        entry.discard(0);
        Reason::Truncated
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
