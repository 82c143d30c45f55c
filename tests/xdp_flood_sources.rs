//! Issue 19, item 8: two suspected ways a flood without an allow-list could
//! cost a backup its master's adverts, each shown not to happen.
//!
//! - A captured advert re-sent from ever new source addresses passes the
//!   HMAC and, each source being new, has no replay rule and a full token
//!   bucket: every copy reaches the ring buffer. Sources without a rule may
//!   fill only half the ring, so the master's adverts (its source has a
//!   rule once the daemon accepted one) still find room, whatever the flood
//!   ([`a_flood_from_new_sources_leaves_the_master_room_in_the_ring`],
//!   through both programs with `BPF_PROG_TEST_RUN`).
//! - The replay map holds every rule the daemon ever keeps: every servable
//!   (interface, vhid) with its spare rules and master, and every allowed
//!   peer. [`the_replay_map_holds_its_capacity`] checks that the loaded
//!   map takes that many rules (the daemon's side, that it never keeps
//!   more and the master's rule is never the one left out, is
//!   `daemon::rules`' unit test).
//!
//! Needs root (to load BPF), no namespaces.

mod common;

use aya::maps::{MapData, RingBuf};
use carp_common::constants::{
    AF_INET, COUNTER_TAG, MAP_EVENTS_BYTES, MAP_EVENTS_UNRULED_BYTES, MAP_REPLAY_CAPACITY,
};
use carp_common::event::{AdvertEvent, ADVERT_EVENT_LEN};
use carp_common::hmac::{self, HmacKey};
use carp_common::maps::{Recent, ReplayState, Settings, SourceKey, REPLAY_STRICT};
use carp_common::reason::Reason;
use carp_daemon::xdp::counters::Counters;
use carp_daemon::xdp::program::{Hook, XdpProgram};
use common::frames::{carp_signed, v4};
use common::require_root;
use common::xdp::serve_keyed;

const VHID: u8 = 7;
const PASSWORD: &[u8] = b"flood-sources";
const VIP: [u8; 4] = [10, 202, 0, 100];
/// The ingress interface of a test run: the loopback device.
const LOOPBACK: u32 = 1;
const MASTER: [u8; 4] = [10, 202, 0, 1];
const MASTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ATTACKER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x66];
/// The master's counters: the captured one, then its next.
const CAPTURED: u64 = (COUNTER_TAG as u64) << 48 | 1_000;
/// Ring-buffer records (8-byte header each) the whole ring holds.
const RING_RECORDS: u32 = MAP_EVENTS_BYTES / (ADVERT_EVENT_LEN as u32 + 8);

const XDP_DROP: u32 = 1;
const TCX_DROP: u32 = 2;

fn signed(mac: [u8; 6], src: [u8; 4], counter: u64) -> Vec<u8> {
    let key = HmacKey::precompute(PASSWORD, VHID, &[VIP], &[]).expect("the password fits");
    let digest = hmac::compute(&key, &counter.to_be_bytes());
    v4(mac, src, &carp_signed(VHID, counter, digest))
}

fn source_key(addr: [u8; 4]) -> SourceKey {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&addr);
    SourceKey {
        ifindex: LOOPBACK,
        vhid: u16::from(VHID),
        family: AF_INET,
        addr: a,
    }
}

/// The object as the daemon sets it up for a backup that heard its master:
/// [`VHID`] served with its key, the daemon's rate limit (2/s, burst 8),
/// the master's strict rule at the captured counter.
fn load() -> (XdpProgram, RingBuf<MapData>) {
    let mut p = XdpProgram::load(Settings::with_rate(2, 8, 0)).expect("load the object");
    serve_keyed(&mut p, LOOPBACK, VHID, PASSWORD, &[VIP.into()]);
    let rule = ReplayState::new(REPLAY_STRICT, CAPTURED, &Recent::EMPTY);
    p.set_replay_rule(source_key(MASTER), &rule, true).unwrap();
    let ring = p.take_events().expect("the ring buffer");
    (p, ring)
}

/// Runs `frame` once: the return value and the counters' change.
fn run(p: &mut XdpProgram, hook: Hook, frame: &[u8]) -> (u32, Counters) {
    let before = p.counters().unwrap();
    let ret = p.test_run(hook, frame, 1).unwrap().return_value;
    (ret, p.counters().unwrap().since(&before))
}

fn flood_then_master(p: &mut XdpProgram, ring: &mut RingBuf<MapData>, hook: Hook) {
    let drop = match hook {
        Hook::Xdp => XDP_DROP,
        Hook::Tc => TCX_DROP,
    };
    // More copies than the whole ring holds, each from a new address and
    // none read: the daemon has fallen behind.
    let flood = RING_RECORDS + 100;
    let mut total = Counters::default();
    for i in 0..flood {
        let [_, _, a, b] = (0x0a63_0000 + i).to_be_bytes();
        let (_, d) = run(p, hook, &signed(ATTACKER_MAC, [10, 99, a, b], CAPTURED));
        total.add(&d);
    }
    // The master's next advert, then two more: all delivered (within its
    // burst over both passes).
    for n in 1..=3 {
        let (ret, d) = run(p, hook, &signed(MASTER_MAC, MASTER, CAPTURED + n));
        assert_eq!(ret, drop, "{hook:?}: the master's advert {n} is consumed");
        assert_eq!(
            d.get(Reason::Delivered),
            1,
            "{hook:?}: the master's advert {n} reaches the daemon: {:?}",
            d.0
        );
    }
    // The last one admitted starts below the limit.
    let unruled_records = MAP_EVENTS_UNRULED_BYTES.div_ceil(ADVERT_EVENT_LEN as u32 + 8);
    let delivered = total.get(Reason::Delivered);
    assert!(
        delivered > 0 && delivered <= u64::from(unruled_records),
        "{hook:?}: {delivered} copies delivered, at most {unruled_records} may be"
    );
    assert_eq!(
        delivered + total.get(Reason::RingBufFull),
        u64::from(flood),
        "{hook:?}: every copy delivered or refused for room: {:?}",
        total.0
    );
    let mut masters = 0;
    while let Some(item) = ring.next() {
        let ev = AdvertEvent::from_bytes(&item).expect("an event's length");
        if ev.src[..4] == MASTER {
            masters += 1;
        }
    }
    assert_eq!(masters, 3, "{hook:?}: the master's adverts are in the ring");
}

#[test]
fn a_flood_from_new_sources_leaves_the_master_room_in_the_ring() {
    if !require_root("a_flood_from_new_sources_leaves_the_master_room_in_the_ring") {
        return;
    }
    let (mut p, mut ring) = load();
    flood_then_master(&mut p, &mut ring, Hook::Xdp);
    // The ring is empty again; the master's rule, which recorded its
    // adverts, is set back to the captured counter.
    let rule = ReplayState::new(REPLAY_STRICT, CAPTURED, &Recent::EMPTY);
    p.set_replay_rule(source_key(MASTER), &rule, true).unwrap();
    flood_then_master(&mut p, &mut ring, Hook::Tc);
}

#[test]
fn the_replay_map_holds_its_capacity() {
    if !require_root("the_replay_map_holds_its_capacity") {
        return;
    }
    let mut p = XdpProgram::load(Settings::with_rate(0, 0, 0)).expect("load the object");
    let rule = ReplayState::new(REPLAY_STRICT, 0, &Recent::EMPTY);
    let key = |i: u32| {
        let mut k = source_key(i.to_be_bytes());
        k.ifindex = 1 + i % 4;
        k
    };
    for i in 0..MAP_REPLAY_CAPACITY {
        p.set_replay_rule(key(i), &rule, true)
            .unwrap_or_else(|e| panic!("rule {i} of {MAP_REPLAY_CAPACITY}: {e}"));
    }
    assert!(
        p.set_replay_rule(key(MAP_REPLAY_CAPACITY), &rule, true)
            .is_err(),
        "the map holds more than its capacity: the constant is not the map's"
    );
}
