//! The receive path's verdicts without a network: the object loaded by the
//! daemon's loader, its maps filled as the daemon fills them, and one
//! crafted frame per [`Reason`] pushed through the XDP program, then the TC
//! program, with the kernel's `BPF_PROG_TEST_RUN`. Each frame must get its
//! action and bump exactly its own counter; frames of other protocols pass
//! and bump none; the delivered advert's event is read back from the ring
//! buffer. Needs root (to load BPF), no namespaces: the kernel presents
//! test frames as received on the loopback device.

mod common;

use aya::maps::{MapData, RingBuf};
use carp_common::constants::{AF_INET, COUNTER_TAG, MAP_EVENTS_BYTES};
use carp_common::event::{AdvertEvent, ADVERT_EVENT_LEN, EVENT_REPLAY_RECORDED};
use carp_common::header::CarpHeader;
use carp_common::hmac::{self, HmacKey};
use carp_common::maps::{PeerValue, Recent, ReplayState, Settings, SourceKey, REPLAY_STRICT};
use carp_common::reason::Reason;
use carp_daemon::xdp::counters::Counters;
use carp_daemon::xdp::program::{Hook, XdpProgram};
use common::frames::{carp, carp_signed, defects, fix_ip_checksum, v4};
use common::require_root;
use common::xdp::serve_keyed;

/// The served vhid, with an HMAC key.
const VHID: u8 = 7;
/// A served vhid with a peer allow-list.
const PEERS_VHID: u8 = 9;
/// The one peer allowed to speak for [`PEERS_VHID`].
const PEER: [u8; 4] = [10, 201, 99, 1];
const PASSWORD: &[u8] = b"test-run";
const VIP: [u8; 4] = [10, 201, 0, 100];
/// The ingress interface of a test run: the loopback device.
const LOOPBACK: u32 = 1;
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Strict rule of [`Sources::ruled`]: counters above this one pass.
const RULE_LAST: u64 = (COUNTER_TAG as u64) << 48 | 100;
/// Ring-buffer records that fill the ring (8-byte header per record).
const RING_RECORDS: u32 = MAP_EVENTS_BYTES / (ADVERT_EVENT_LEN as u32 + 8);

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const TCX_DROP: u32 = 2;
/// `TCX_NEXT` (-1) as the kernel reports it.
const TCX_NEXT: u32 = u32::MAX;

/// The sources of one pass over the table: each hook has its own, so that
/// the rate and replay state one pass leaves behind never meets the other.
struct Sources {
    /// No replay rule, no rate state worth noting.
    plain: [u8; 4],
    /// A strict replay rule (last counter [`RULE_LAST`]).
    ruled: [u8; 4],
    /// Rate-limited to 1/s, burst 1, during its case.
    limited: [u8; 4],
    /// Fills the ring buffer.
    filler: [u8; 4],
}

impl Sources {
    fn of(hook: Hook) -> Sources {
        let net = match hook {
            Hook::Xdp => 1,
            Hook::Tc => 2,
        };
        Sources {
            plain: [10, 201, net, 1],
            ruled: [10, 201, net, 2],
            limited: [10, 201, net, 3],
            filler: [10, 201, net, 4],
        }
    }
}

fn hmac_key() -> HmacKey {
    HmacKey::precompute(PASSWORD, VHID, &[VIP], &[]).expect("the password fits")
}

/// A valid advert of [`VHID`] from `src` with `counter`, its HMAC sealed.
fn signed(src: [u8; 4], counter: u64) -> Vec<u8> {
    let hmac = hmac::compute(&hmac_key(), &counter.to_be_bytes());
    v4(MAC, src, &carp_signed(VHID, counter, hmac))
}

fn source_key(vhid: u8, addr: [u8; 4]) -> SourceKey {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&addr);
    SourceKey {
        ifindex: LOOPBACK,
        vhid: u16::from(vhid),
        family: AF_INET,
        addr: a,
    }
}

/// The loaded object and its ring buffer, never read but by the test.
struct Rig {
    p: XdpProgram,
    ring: RingBuf<MapData>,
}

/// The program as the daemon sets it up: [`VHID`] served with its HMAC key,
/// [`PEERS_VHID`] with an allow-list, no rate limit.
fn load() -> Rig {
    let mut p = XdpProgram::load(Settings::with_rate(0, 0, 0)).expect("load the object");
    serve_keyed(&mut p, LOOPBACK, VHID, PASSWORD, &[VIP.into()]);
    let peer = (source_key(PEERS_VHID, PEER), PeerValue::default());
    p.serve_vhid(LOOPBACK, PEERS_VHID, &[peer]).unwrap();
    let ring = p.take_events().expect("the ring buffer");
    Rig { p, ring }
}

/// One test run: the program's return value and the counters' change.
fn run(r: &mut Rig, hook: Hook, frame: &[u8], repeat: u32) -> (u32, Counters) {
    let before = r.p.counters().unwrap();
    let ret = r.p.test_run(hook, frame, repeat).unwrap().return_value;
    let after = r.p.counters().unwrap();
    let mut delta = Counters::default();
    for (d, (a, b)) in delta.0.iter_mut().zip(after.0.iter().zip(before.0)) {
        *d = a - b;
    }
    (ret, delta)
}

/// The frame that must end with `reason`, after running whatever the case
/// needs first (a match without a wildcard: a new reason needs a frame).
fn case(r: &mut Rig, hook: Hook, s: &Sources, reason: Reason) -> Vec<u8> {
    let defect = |name: &str| {
        let (_, f) = defects(MAC, s.plain, VHID)
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no {name} frame"));
        f
    };
    match reason {
        Reason::Delivered => signed(s.ruled, RULE_LAST + 1),
        Reason::Truncated
        | Reason::IpHeader
        | Reason::Fragment
        | Reason::Ttl
        | Reason::Version
        | Reason::Type
        | Reason::AuthLen
        | Reason::Checksum
        | Reason::UnknownVhid => defect(reason.name()),
        Reason::NotAllowed => v4(MAC, s.plain, &carp(PEERS_VHID, 1)),
        Reason::Hmac => v4(MAC, s.plain, &carp(VHID, 1)),
        Reason::Replay => signed(s.ruled, RULE_LAST),
        Reason::RateLimited => {
            r.p.set_settings(Settings::with_rate(1, 1, 0)).unwrap();
            let (_, d) = run(r, hook, &signed(s.limited, 1), 1);
            assert_eq!(
                d.get(Reason::Delivered),
                1,
                "{hook:?}: the first is let through"
            );
            signed(s.limited, 2)
        }
        Reason::RingBufFull => {
            // More than the ring holds, none read.
            run(r, hook, &signed(s.filler, 1), RING_RECORDS + 10);
            signed(s.filler, 2)
        }
    }
}

/// Undoes what [`case`] set up for `reason`.
fn after_case(r: &mut Rig, reason: Reason) {
    match reason {
        Reason::RateLimited => r.p.set_settings(Settings::with_rate(0, 0, 0)).unwrap(),
        Reason::RingBufFull => while r.ring.next().is_some() {},
        _ => {}
    }
}

fn run_table(r: &mut Rig, hook: Hook) {
    let s = Sources::of(hook);
    let (pass, drop) = match hook {
        Hook::Xdp => (XDP_PASS, XDP_DROP),
        Hook::Tc => (TCX_NEXT, TCX_DROP),
    };
    let rule = ReplayState::new(REPLAY_STRICT, RULE_LAST, &Recent::EMPTY);
    r.p.set_replay_rule(source_key(VHID, s.ruled), &rule, true)
        .unwrap();

    // Other protocols: UDP over IPv4, and ARP.
    let mut udp = signed(s.plain, 1);
    udp[23] = 17;
    fix_ip_checksum(&mut udp);
    let mut arp = signed(s.plain, 1);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    for (what, f) in [("udp", udp), ("arp", arp)] {
        let (ret, d) = run(r, hook, &f, 1);
        assert_eq!(ret, pass, "{hook:?}: {what} frame");
        assert_eq!(d, Counters::default(), "{hook:?}: {what} frame counted");
    }

    for reason in Reason::ALL {
        let frame = case(r, hook, &s, reason);
        let (ret, d) = run(r, hook, &frame, 1);
        let name = reason.name();
        let expected = if reason.for_served_vhid() { drop } else { pass };
        assert_eq!(ret, expected, "{hook:?} {name}: action");
        let mut one = Counters::default();
        one.bump(reason);
        assert_eq!(d, one, "{hook:?} {name}: counters moved {:?}", d.0);
        if reason == Reason::Delivered {
            check_event(r, &s);
        }
        after_case(r, reason);
    }
}

/// The delivered advert's event, alone in the ring.
fn check_event(r: &mut Rig, s: &Sources) {
    let ev = {
        let item = r.ring.next().expect("an event for the delivered advert");
        AdvertEvent::from_bytes(&item).expect("an event's length")
    };
    assert!(r.ring.next().is_none(), "more than one event");
    let header = CarpHeader::from_bytes(&ev.carp);
    assert_eq!(header.vhid, VHID);
    assert_eq!(header.counter(), RULE_LAST + 1);
    assert_eq!(ev.ifindex, LOOPBACK);
    assert_eq!(ev.family, AF_INET);
    assert_eq!(ev.ttl, 255);
    assert_eq!(&ev.src[..4], &s.ruled);
    assert_eq!(ev.src_mac, MAC);
    assert_eq!(
        ev.flags & EVENT_REPLAY_RECORDED,
        EVENT_REPLAY_RECORDED,
        "the rule recorded it"
    );
}

#[test]
fn every_reason_gets_its_action_and_its_counter() {
    if !require_root("every_reason_gets_its_action_and_its_counter") {
        return;
    }
    let mut rig = load();
    run_table(&mut rig, Hook::Xdp);
    run_table(&mut rig, Hook::Tc);
}
