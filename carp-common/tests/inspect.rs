//! Every branch of the shared classifier, on hand-built frames: a good advert
//! (IPv4, IPv6, VLAN, IP options, the captured UCARP adverts) and one frame per
//! single defect.

use std::cell::Cell;
use std::collections::HashMap;

use carp_common::checksum;
use carp_common::constants::*;
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::event::AdvertEvent;
use carp_common::header::CarpHeader;
use carp_common::hmac::{verify_advert, HmacKey};
use carp_common::inspect::{fill_event, inspect, Auth, Tables, Verdict};
use carp_common::maps::{
    Admit, PeerKey, PeerValue, RateKey, RateState, Recent, ReplayKey, ReplayState, Settings,
    VhidKey, REPLAY_RECENT, REPLAY_REPEATS, REPLAY_REQUIRE_TAG, REPLAY_STRICT, REPLAY_TAGGED_GROW,
    VHID_PEERS_ONLY, VHID_SERVED,
};
use carp_common::rate;
use carp_common::reason::Reason;

const IFINDEX: u32 = 4;
const SRC4: [u8; 4] = [10, 99, 0, 1];
const SRC6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

struct TestTables {
    vhids: HashMap<VhidKey, u32>,
    peers: HashMap<PeerKey, PeerValue>,
    rate: HashMap<RateKey, RateState>,
    hmac: HashMap<VhidKey, HmacKey>,
    replay: HashMap<ReplayKey, ReplayState>,
    settings: Settings,
    now: u64,
    /// What [`Tables::stripped_vlan_id`] says, and how often it was asked.
    stripped_vlan: u16,
    stripped_asked: Cell<u32>,
}

impl TestTables {
    fn serving(vhid: u8) -> Self {
        let mut vhids = HashMap::new();
        vhids.insert(
            VhidKey {
                ifindex: IFINDEX,
                vhid: u32::from(vhid),
            },
            VHID_SERVED,
        );
        TestTables {
            vhids,
            peers: HashMap::new(),
            rate: HashMap::new(),
            hmac: HashMap::new(),
            replay: HashMap::new(),
            settings: Settings::with_rate(0, 0, 0),
            now: 1_000,
            stripped_vlan: 0,
            stripped_asked: Cell::new(0),
        }
    }
}

impl Tables for TestTables {
    fn now_ns(&mut self) -> u64 {
        self.now
    }
    fn stripped_vlan_id(&self) -> u16 {
        self.stripped_asked.set(self.stripped_asked.get() + 1);
        self.stripped_vlan
    }
    fn vhid_flags(&self, key: &VhidKey) -> u32 {
        self.vhids.get(key).copied().unwrap_or(0)
    }
    fn peer(&self, key: &PeerKey) -> Option<PeerValue> {
        self.peers.get(key).copied()
    }
    fn authenticate(&mut self, key: &VhidKey, counter: &[u8; 8], hmac: &[u8; 20]) -> Auth {
        match self.hmac.get(key) {
            None => Auth::Unchecked,
            Some(k) if verify_advert(k, counter, hmac) => Auth::Good,
            Some(_) => Auth::Bad,
        }
    }
    fn replay_admits(&mut self, key: &ReplayKey, counter: u64, mac: &[u8; 6]) -> Option<Admit> {
        let state = self.replay.get(key)?;
        Some(state.admits(counter, mac, key.vhid as u8))
    }
    fn replay_record(&mut self, key: &ReplayKey, counter: u64) -> bool {
        self.replay
            .get_mut(key)
            .map(|s| s.record(counter))
            .is_some()
    }
    fn rate_conforms(&mut self, key: &RateKey, now_ns: u64) -> bool {
        rate::conforms(self.rate.entry(*key).or_default(), &self.settings, now_ns)
    }
}

fn carp(vhid: u8) -> [u8; 36] {
    let mut h = CarpHeader::advertisement(vhid, 1, 0, 0, 42);
    h.hmac = [0x5a; 20];
    h.seal_checksum();
    h.to_bytes()
}

fn frame(ip: IpLayer, vlan_id: Option<u16>, carp: &[u8; 36]) -> Vec<u8> {
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let spec = AdvertFrame {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: None,
        vlan_id,
        ip,
        ttl: 255,
        ip_id: 7,
        carp,
    };
    let n = advert_frame(&spec, &mut buf);
    buf[..n].to_vec()
}

fn v4() -> Vec<u8> {
    frame(
        IpLayer::V4 {
            src: SRC4,
            dst: CARP_GROUP_V4,
        },
        None,
        &carp(7),
    )
}

fn v6() -> Vec<u8> {
    frame(
        IpLayer::V6 {
            src: SRC6,
            dst: CARP_GROUP_V6,
        },
        None,
        &carp(7),
    )
}

/// Recomputes the IPv4 header checksum of an untagged frame after an edit.
fn fix_ip_checksum(f: &mut [u8]) {
    let hlen = usize::from(f[14] & 0x0f) * 4;
    f[24] = 0;
    f[25] = 0;
    let c = checksum::internet_checksum(&f[14..14 + hlen]).to_be_bytes();
    f[24] = c[0];
    f[25] = c[1];
}

/// Recomputes the CARP checksum of an untagged IPv4 frame (IHL 5) after an edit.
fn fix_carp_checksum(f: &mut [u8], carp_at: usize) {
    f[carp_at + 6] = 0;
    f[carp_at + 7] = 0;
    let c = checksum::internet_checksum(&f[carp_at..carp_at + 36]).to_be_bytes();
    f[carp_at + 6] = c[0];
    f[carp_at + 7] = c[1];
}

fn verdict(f: &[u8]) -> Verdict {
    inspect(f, IFINDEX, &mut TestTables::serving(7))
}

/// The event of a delivered frame, or a panic.
fn delivered(f: &[u8], tables: &mut TestTables) -> AdvertEvent {
    let Verdict::Advert(at) = inspect(f, IFINDEX, tables) else {
        panic!("not delivered")
    };
    let mut ev = AdvertEvent::zeroed();
    assert!(fill_event(f, &at, IFINDEX, &mut ev));
    ev
}

fn dropped(f: &[u8]) -> Reason {
    match verdict(f) {
        Verdict::Drop(r) => r,
        other => panic!("expected a drop, got {other:?}"),
    }
}

#[test]
fn good_ipv4_advert_is_delivered_with_every_field() {
    let ev = delivered(&v4(), &mut TestTables::serving(7));
    assert_eq!(ev.ifindex, IFINDEX);
    assert_eq!(ev.family, AF_INET);
    assert_eq!(ev.ttl, 255);
    assert_eq!(&ev.src[..4], &SRC4);
    assert_eq!(&ev.src[4..], &[0; 12]);
    assert_eq!(&ev.dst[..4], &CARP_GROUP_V4);
    assert_eq!(ev.carp, carp(7));
    assert_eq!(ev.timestamp_ns, 1_000);
    assert_eq!(ev.vlan_id, 0);
    assert_eq!(ev.src_mac, [2, 0, 0, 0, 0, 1]);
}

#[test]
fn good_ipv6_advert_is_delivered() {
    let ev = delivered(&v6(), &mut TestTables::serving(7));
    assert_eq!(ev.family, AF_INET6);
    assert_eq!(ev.src, SRC6);
    assert_eq!(ev.dst, CARP_GROUP_V6);
    assert_eq!(ev.carp, carp(7));
}

fn both_families() -> [IpLayer; 2] {
    [
        IpLayer::V4 {
            src: SRC4,
            dst: CARP_GROUP_V4,
        },
        IpLayer::V6 {
            src: SRC6,
            dst: CARP_GROUP_V6,
        },
    ]
}

/// The interface serves vhid 7 with a key: untagged, the frame below would
/// be judged by it (and dropped, its HMAC being another VLAN's).
fn serving_with_key() -> TestTables {
    with_key(b"parent", [10, 0, 0, 100])
}

#[test]
fn vlan_frames_are_left_to_their_vlan_interface() {
    for ip in both_families() {
        let untagged = frame(ip, None, &carp(7));
        assert_eq!(
            inspect(&untagged[..], IFINDEX, &mut serving_with_key()),
            Verdict::Drop(Reason::Hmac),
            "judged by the interface's own vhid 7"
        );
        let tagged = frame(ip, Some(42), &carp(7));
        let mut t = serving_with_key();
        assert_eq!(inspect(&tagged[..], IFINDEX, &mut t), Verdict::NotCarp);
        assert_eq!(
            t.stripped_asked.get(),
            0,
            "the tag in the frame says it all"
        );
        // Even an advert the interface would deliver.
        assert_eq!(
            inspect(&tagged[..], IFINDEX, &mut TestTables::serving(7)),
            Verdict::NotCarp
        );
        // VLAN id 4095 and the priority bits do not hide a VLAN id.
        let mut pcp = frame(ip, Some(4095), &carp(7));
        pcp[14] |= 0xe0;
        assert_eq!(verdict(&pcp), Verdict::NotCarp);
    }
}

#[test]
fn priority_tagged_frames_are_the_interfaces_own() {
    for ip in both_families() {
        let f = frame(ip, Some(0), &carp(7));
        let ev = delivered(&f, &mut TestTables::serving(7));
        assert_eq!(ev.vlan_id, 0);
        assert_eq!(ev.carp, carp(7));
    }
}

#[test]
fn a_stripped_vlan_tag_leaves_the_frame_to_its_vlan_interface() {
    for ip in both_families() {
        let f = frame(ip, None, &carp(7));
        let mut t = serving_with_key();
        t.stripped_vlan = 100;
        assert_eq!(inspect(&f[..], IFINDEX, &mut t), Verdict::NotCarp);
        let mut t = TestTables::serving(7);
        t.stripped_vlan = 100;
        assert_eq!(inspect(&f[..], IFINDEX, &mut t), Verdict::NotCarp);
    }
}

#[test]
fn other_traffic_never_asks_for_a_stripped_tag() {
    let mut udp = v4();
    udp[23] = 17;
    fix_ip_checksum(&mut udp);
    let mut arp = v4();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    for f in [udp, arp] {
        let mut t = TestTables::serving(7);
        t.stripped_vlan = 100;
        assert_eq!(inspect(&f[..], IFINDEX, &mut t), Verdict::NotCarp);
        assert_eq!(t.stripped_asked.get(), 0);
    }
}

#[test]
fn located_adverts_say_whether_their_source_has_a_rule() {
    let Verdict::Advert(at) = verdict(&v4()) else {
        panic!("not delivered")
    };
    assert!(!at.ruled);
    let mut t = TestTables::serving(7);
    let mut addr = [0; 16];
    addr[..4].copy_from_slice(&SRC4);
    let key = ReplayKey {
        ifindex: IFINDEX,
        vhid: 7,
        family: AF_INET,
        addr,
    };
    t.replay
        .insert(key, ReplayState::new(REPLAY_STRICT, 0, &Recent::EMPTY));
    let Verdict::Advert(at) = inspect(&v4()[..], IFINDEX, &mut t) else {
        panic!("not delivered")
    };
    assert!(at.ruled);
}

#[test]
fn ipv4_options_are_honoured() {
    // Insert 4 bytes of options (NOP NOP NOP EOL): IHL 6.
    let base = v4();
    let mut f = base[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&base[34..]);
    f[14] = 0x46;
    let total = (24u16 + 36).to_be_bytes();
    f[16..18].copy_from_slice(&total);
    fix_ip_checksum(&mut f);
    let ev = delivered(&f, &mut TestTables::serving(7));
    assert_eq!(ev.carp, carp(7));
}

#[test]
fn captured_ucarp_adverts_are_delivered() {
    let frames = [
        "01005e00001200005e0000070800451000382eff4000ff7061d00a630001e0000012210700070001351cefede3c9ad1a1659039fcad73800a97623f077211f6f7d1936ebf435",
        "01005e00001200005e000007080045100038191f4000ff7077af0a630002e0000012210764070001359af9a5aa1d5fddab07be7c5d7c6b8c5de5c4e6afe2f832e89f12c248e4",
    ];
    for hex in frames {
        let f: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let ev = delivered(&f, &mut TestTables::serving(7));
        assert_eq!(CarpHeader::from_bytes(&ev.carp).vhid, 7);
    }
}

#[test]
fn other_traffic_is_not_ours() {
    // ARP
    let mut arp = v4();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(verdict(&arp), Verdict::NotCarp);
    // IPv4 UDP, IPv6 UDP
    let mut udp4 = v4();
    udp4[23] = 17;
    assert_eq!(verdict(&udp4), Verdict::NotCarp);
    let mut udp6 = v6();
    udp6[20] = 17;
    assert_eq!(verdict(&udp6), Verdict::NotCarp);
    // IPv6 with a hop-by-hop extension header first: recognised, left alone.
    let mut ext = v6();
    ext[20] = 0;
    assert_eq!(verdict(&ext), Verdict::NotCarp);
    // Runt frames.
    assert_eq!(verdict(&[0u8; 5]), Verdict::NotCarp);
    assert_eq!(verdict(&v4()[..20]), Verdict::NotCarp);
}

#[test]
fn truncated_frames() {
    let f = v4();
    assert_eq!(
        dropped(&f[..30]),
        Reason::Truncated,
        "cut inside the IP header"
    );
    assert_eq!(
        dropped(&f[..f.len() - 1]),
        Reason::Truncated,
        "cut inside the CARP header"
    );
    let g = v6();
    assert_eq!(
        dropped(&g[..40]),
        Reason::Truncated,
        "cut inside the IPv6 header"
    );
    assert_eq!(
        dropped(&g[..g.len() - 1]),
        Reason::Truncated,
        "cut inside the CARP header (v6)"
    );
}

#[test]
fn bad_ip_headers() {
    let mut ihl = v4();
    ihl[14] = 0x44;
    fix_ip_checksum(&mut ihl);
    assert_eq!(dropped(&ihl), Reason::IpHeader, "IHL 4");

    let mut version = v4();
    version[14] = 0x55;
    assert_eq!(
        dropped(&version),
        Reason::IpHeader,
        "IPv4 EtherType with version 5"
    );

    let mut short = v4();
    short[16..18].copy_from_slice(&(20u16 + 35).to_be_bytes());
    fix_ip_checksum(&mut short);
    assert_eq!(
        dropped(&short),
        Reason::IpHeader,
        "total length below IP + 36"
    );

    let mut long = v4();
    long[16..18].copy_from_slice(&(20u16 + 37).to_be_bytes());
    fix_ip_checksum(&mut long);
    assert_eq!(
        dropped(&long),
        Reason::Truncated,
        "total length beyond the frame"
    );

    let mut sum = v4();
    sum[24] ^= 0xff;
    assert_eq!(dropped(&sum), Reason::IpHeader, "IPv4 header checksum");

    let mut plen = v6();
    plen[18..20].copy_from_slice(&35u16.to_be_bytes());
    assert_eq!(
        dropped(&plen),
        Reason::IpHeader,
        "IPv6 payload length below 36"
    );

    let mut v6version = v6();
    v6version[14] = 0x40;
    assert_eq!(
        dropped(&v6version),
        Reason::IpHeader,
        "IPv6 EtherType with version 4"
    );
}

#[test]
fn fragments() {
    for flags in [0x2000u16, 0x0001, 0x4001] {
        let mut f = v4();
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        fix_ip_checksum(&mut f);
        assert_eq!(dropped(&f), Reason::Fragment, "flags/offset {flags:#06x}");
    }
}

#[test]
fn ttl_and_hop_limit() {
    let mut f = v4();
    f[22] = 254;
    fix_ip_checksum(&mut f);
    assert_eq!(dropped(&f), Reason::Ttl);
    let mut g = v6();
    g[21] = 64;
    assert_eq!(dropped(&g), Reason::Ttl);
}

#[test]
fn carp_header_defects() {
    let at = 34;
    let cases: [(usize, u8, Reason); 3] = [
        (0, 0x31, Reason::Version),
        (0, 0x22, Reason::Type),
        (3, 6, Reason::AuthLen),
    ];
    for (offset, value, reason) in cases {
        let mut f = v4();
        f[at + offset] = value;
        fix_carp_checksum(&mut f, at);
        assert_eq!(dropped(&f), reason, "byte {offset} = {value:#x}");
    }
    let mut sum = v4();
    sum[at + 20] ^= 1;
    assert_eq!(dropped(&sum), Reason::Checksum);
}

#[test]
fn unknown_vhid() {
    let f = frame(
        IpLayer::V4 {
            src: SRC4,
            dst: CARP_GROUP_V4,
        },
        None,
        &carp(8),
    );
    assert_eq!(dropped(&f), Reason::UnknownVhid);
    // Served vhid on another interface is unknown here too.
    assert_eq!(
        inspect(&v4()[..], IFINDEX + 1, &mut TestTables::serving(7)),
        Verdict::Drop(Reason::UnknownVhid)
    );
}

#[test]
fn rate_limit_per_source_and_vhid() {
    let mut t = TestTables::serving(7);
    t.vhids.insert(
        VhidKey {
            ifindex: IFINDEX,
            vhid: 8,
        },
        VHID_SERVED,
    );
    t.settings = Settings::with_rate(1, 3, 0);
    let f = v4();
    let delivered = (0..10)
        .filter(|_| matches!(inspect(&f[..], IFINDEX, &mut t), Verdict::Advert(_)))
        .count();
    assert_eq!(delivered, 3);
    assert_eq!(
        inspect(&f[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::RateLimited)
    );
    // Another source has its own bucket.
    let other = frame(
        IpLayer::V4 {
            src: [10, 99, 0, 2],
            dst: CARP_GROUP_V4,
        },
        None,
        &carp(7),
    );
    assert!(matches!(
        inspect(&other[..], IFINDEX, &mut t),
        Verdict::Advert(_)
    ));
    // So has another vhid of the same source.
    let vhid_8 = frame(
        IpLayer::V4 {
            src: SRC4,
            dst: CARP_GROUP_V4,
        },
        None,
        &carp(8),
    );
    assert!(matches!(
        inspect(&vhid_8[..], IFINDEX, &mut t),
        Verdict::Advert(_)
    ));
    // One second later the first source has one token again.
    t.now += 1_000_000_000;
    assert!(matches!(
        inspect(&f[..], IFINDEX, &mut t),
        Verdict::Advert(_)
    ));
    assert_eq!(
        inspect(&f[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::RateLimited)
    );
}

#[test]
fn a_master_of_255_vhids_is_never_rate_limited() {
    // A host that is master of every vhid sends its 255 adverts in one burst
    // each second; a burst per source far below 255 must not drop any.
    let mut t = TestTables::serving(1);
    for vhid in 2..=255u32 {
        t.vhids.insert(
            VhidKey {
                ifindex: IFINDEX,
                vhid,
            },
            VHID_SERVED,
        );
    }
    t.settings = Settings::with_rate(2, 8, 0);
    let frames: Vec<Vec<u8>> = (1..=255u8)
        .map(|vhid| {
            frame(
                IpLayer::V4 {
                    src: SRC4,
                    dst: CARP_GROUP_V4,
                },
                None,
                &carp(vhid),
            )
        })
        .collect();
    for second in 0..10u64 {
        t.now = 1_000_000_000 * (second + 1);
        for f in &frames {
            assert!(
                matches!(inspect(&f[..], IFINDEX, &mut t), Verdict::Advert(_)),
                "second {second}: vhid {} rate-limited",
                f[14 + 20 + 1]
            );
        }
    }
    assert_eq!(t.rate.len(), 255, "one bucket per (source, vhid)");
}

#[test]
fn checks_run_in_ip_carp_order() {
    // A frame with a bad TTL and a bad CARP checksum and an unknown vhid is
    // counted for the TTL: the first check that fails wins.
    let mut f = frame(
        IpLayer::V4 {
            src: SRC4,
            dst: CARP_GROUP_V4,
        },
        None,
        &carp(9),
    );
    f[22] = 1;
    fix_ip_checksum(&mut f);
    f[34 + 20] ^= 1;
    assert_eq!(dropped(&f), Reason::Ttl);
}

/// The captured UCARP adverts (shared/vectors): password carp-harness,
/// vhid 7, VIP 10.99.0.100; frames 1 (A, random counter) and 4, 5 (B
/// continuing A's last counter + 1).
const UCARP1: &str = "01005e00001200005e0000070800451000382eff4000ff7061d00a630001e0000012210700070001351cefede3c9ad1a1659039fcad73800a97623f077211f6f7d1936ebf435";
const UCARP5: &str = "01005e00001200005e000007080045100038191f4000ff7077af0a630002e0000012210764070001359af9a5aa1d5fddab07be7c5d7c6b8c5de5c4e6afe2f832e89f12c248e4";
const UCARP6: &str = "01005e00001200005e0000070800451000381e6a4000ff7072640a630002e00000122107640700012a80f9a5aa1d5fddab08f14c71f40ab18f7f740d6d3aac9c7d2d8bba0d88";

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn with_ucarp_key(password: &[u8]) -> TestTables {
    with_key(password, [10, 99, 0, 100])
}

/// Serving vhid 7 with the key of `password` over `vip`.
fn with_key(password: &[u8], vip: [u8; 4]) -> TestTables {
    let mut t = TestTables::serving(7);
    let key = HmacKey::precompute(password, 7, &[vip], &[]).unwrap();
    t.hmac.insert(
        VhidKey {
            ifindex: IFINDEX,
            vhid: 7,
        },
        key,
    );
    t
}

#[test]
fn hmac_is_checked_when_a_key_is_installed() {
    let f = unhex(UCARP1);
    delivered(&f, &mut with_ucarp_key(b"carp-harness"));
    assert_eq!(
        inspect(&f[..], IFINDEX, &mut with_ucarp_key(b"carp-harnesS")),
        Verdict::Drop(Reason::Hmac)
    );
    // A changed counter with a recomputed checksum fails the HMAC, not the checksum.
    let mut g = f.clone();
    g[50] ^= 1;
    fix_carp_checksum(&mut g, 34);
    assert_eq!(
        inspect(&g[..], IFINDEX, &mut with_ucarp_key(b"carp-harness")),
        Verdict::Drop(Reason::Hmac)
    );
}

#[test]
fn strict_replay_rule_drops_old_counters_of_authentic_adverts() {
    let mut t = with_ucarp_key(b"carp-harness");
    let key = ReplayKey {
        ifindex: IFINDEX,
        vhid: 7,
        family: AF_INET,
        addr: [10, 99, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    t.replay
        .insert(key, ReplayState::new(REPLAY_STRICT, 0, &Recent::EMPTY));
    let (f5, f6) = (unhex(UCARP5), unhex(UCARP6));
    delivered(&f5, &mut t);
    delivered(&f6, &mut t);
    assert_eq!(
        inspect(&f5[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::Replay),
        "older counter replayed"
    );
    assert_eq!(
        inspect(&f6[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::Replay),
        "same counter replayed"
    );
    // Another source of the same vhid has no rule here: userspace decides.
    delivered(&unhex(UCARP1), &mut t);
    // A source known to send tagged counters refuses untagged ones.
    t.replay.insert(
        key,
        ReplayState::new(REPLAY_STRICT | REPLAY_REQUIRE_TAG, 0, &Recent::EMPTY),
    );
    assert_eq!(
        inspect(&f6[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::Replay),
        "downgrade"
    );
}

/// The replay key of the UCARP vectors' source, 10.99.0.2, vhid 7.
fn ucarp_source() -> ReplayKey {
    ReplayKey {
        ifindex: IFINDEX,
        vhid: 7,
        family: AF_INET,
        addr: [10, 99, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    }
}

#[test]
fn compat_replay_rule_drops_recent_counters_before_the_rate_limit() {
    // UCARP's random counters: the rule refuses the ones recorded, so a
    // replay flood of them leaves the source's budget (one advert, no
    // burst) to its next genuine advert.
    let mut t = with_ucarp_key(b"carp-harness");
    t.settings = Settings::with_rate(1, 1, 0);
    t.replay.insert(
        ucarp_source(),
        ReplayState::new(REPLAY_RECENT, 0, &Recent::EMPTY),
    );
    let (f5, f6) = (unhex(UCARP5), unhex(UCARP6));
    delivered(&f5, &mut t);
    for _ in 0..100 {
        assert_eq!(
            inspect(&f5[..], IFINDEX, &mut t),
            Verdict::Drop(Reason::Replay)
        );
    }
    t.now += 1_000_000_000;
    delivered(&f6, &mut t);
    // A forgery carrying a recorded counter is refused before its SHA-1,
    // as a replay; one with a new counter fails the HMAC. Neither is
    // recorded nor charged.
    let mut forged = f6.clone();
    forged[60] ^= 0xff;
    fix_carp_checksum(&mut forged, 34);
    assert_eq!(
        inspect(&forged[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::Replay)
    );
    let mut forged = f6.clone();
    forged[49] ^= 1; // the counter's last byte
    fix_carp_checksum(&mut forged, 34);
    for _ in 0..3 {
        assert_eq!(
            inspect(&forged[..], IFINDEX, &mut t),
            Verdict::Drop(Reason::Hmac)
        );
    }
    t.now += 1_000_000_000;
    delivered(&unhex(UCARP1), &mut t);
}

/// Whether `rule` lets `counter` from `mac` through as new (vhid 7).
fn fresh(rule: &ReplayState, counter: u64, mac: &[u8; 6]) -> bool {
    rule.admits(counter, mac, 7) == Admit::Fresh
}

/// A table remembering `counters`, oldest first.
fn recent(counters: impl IntoIterator<Item = u64>) -> Recent {
    let mut r = Recent::EMPTY;
    for c in counters {
        r.push(c);
    }
    r
}

#[test]
fn compat_rule_forgets_the_oldest_beyond_its_memory() {
    // Counters growing by one: exactly the last REPLAY_MEMORY.
    let n = REPLAY_MEMORY as u64;
    let s = ReplayState::new(REPLAY_RECENT, 0, &recent(1..=n + 10));
    let mac = [0; 6];
    assert!(fresh(&s, 10, &mac), "older than the memory");
    assert!((11..=n + 10).all(|c| !fresh(&s, c, &mac)));
    assert!(fresh(&s, n + 11, &mac));
    let mut s = ReplayState::new(REPLAY_RECENT, 0, &recent([5]));
    s.record(6);
    assert!(!fresh(&s, 5, &mac) && !fresh(&s, 6, &mac) && fresh(&s, 7, &mac));
}

#[test]
fn random_counters_are_remembered_at_least_a_group_deep() {
    // Random counters: the last RECENT_WAYS always, and most of the last
    // REPLAY_MEMORY.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let counters: Vec<u64> = (0..4 * REPLAY_MEMORY)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect();
    let r = recent(counters.iter().copied());
    let last = &counters[counters.len() - REPLAY_MEMORY..];
    assert!(last[REPLAY_MEMORY - RECENT_WAYS..]
        .iter()
        .all(|c| r.contains(*c)));
    let kept = last.iter().filter(|c| r.contains(**c)).count();
    assert!(
        kept > REPLAY_MEMORY / 2,
        "{kept} of the last {REPLAY_MEMORY}"
    );
    assert!(!r.contains(counters[0]));
}

#[test]
fn auto_rule_orders_tagged_counters_and_remembers_the_others() {
    let tag = u64::from(COUNTER_TAG) << 48;
    let mac = [0; 6];
    let mut s = ReplayState::new(REPLAY_TAGGED_GROW | REPLAY_RECENT, 0, &recent([77]));
    assert!(fresh(&s, tag | 10, &mac));
    s.record(tag | 10);
    assert!(!fresh(&s, tag | 10, &mac), "tagged, not greater");
    assert!(!fresh(&s, tag | 9, &mac));
    assert!(fresh(&s, tag | 11, &mac));
    assert!(!fresh(&s, 77, &mac), "untagged, recent");
    assert!(fresh(&s, 78, &mac), "untagged, new");
    // Known to be carpd-xdp: untagged counters are refused.
    let s = ReplayState::new(REPLAY_STRICT | REPLAY_REQUIRE_TAG, tag | 10, &Recent::EMPTY);
    assert!(!fresh(&s, 78, &mac) && !fresh(&s, tag | 10, &mac) && fresh(&s, tag | 11, &mac));
}

#[test]
fn ucarp_and_bsd_repeats_are_repeats_not_refusals_where_the_rule_says() {
    // UCARP and FreeBSD take on counters they hear: made to, they repeat
    // their own. From their virtual-router MAC such a counter is a repeat
    // (proof of life); from another MAC, or without the bit, refused.
    let ucarp = [0, 0, 0x5e, 0, 0, 7];
    let bsd = [0, 0, 0x5e, 0, 1, 7];
    let rule = ReplayState::new(REPLAY_RECENT | REPLAY_REPEATS, 0, &recent([40, 41]));
    assert_eq!(rule.admits(42, &ucarp, 7), Admit::Fresh);
    assert_eq!(rule.admits(41, &ucarp, 7), Admit::Repeat);
    assert_eq!(rule.admits(41, &bsd, 7), Admit::Repeat);
    assert_eq!(
        rule.admits(41, &[0, 0, 0x5e, 0, 0, 8], 7),
        Admit::Refused,
        "another vhid's MAC"
    );
    assert_eq!(rule.admits(41, &[2, 0, 0, 0, 0, 1], 7), Admit::Refused);
    let plain = ReplayState::new(REPLAY_RECENT, 0, &recent([41]));
    assert_eq!(plain.admits(41, &ucarp, 7), Admit::Refused);
}

#[test]
fn a_repeat_flood_leaves_the_sources_new_adverts_their_budget() {
    // The UCARP vectors' source under a rule letting repeats through: a
    // flood of one advert over and over uses up the repeats' budget, not
    // the one of the source's new adverts.
    let mut t = with_ucarp_key(b"carp-harness");
    t.settings = Settings::with_rate(1, 1, 0);
    let (f5, f6) = (unhex(UCARP5), unhex(UCARP6));
    t.replay.insert(
        ucarp_source(),
        ReplayState::new(REPLAY_RECENT | REPLAY_REPEATS, 0, &Recent::EMPTY),
    );
    delivered(&f5, &mut t);
    delivered(&f5, &mut t); // the first repeat: its own bucket
    for _ in 0..100 {
        assert_eq!(
            inspect(&f5[..], IFINDEX, &mut t),
            Verdict::Drop(Reason::RateLimited)
        );
    }
    t.now += 1_000_000_000;
    delivered(&f6, &mut t);
}

#[test]
fn openbsd_cookie_may_repeat_from_its_mac_only() {
    let bsd = [0, 0, 0x5e, 0, 1, 7];
    let s = ReplayState::new(REPLAY_RECENT, 0, &recent([0xc00c1e])).with_cookie(0xc00c1e, bsd);
    assert!(fresh(&s, 0xc00c1e, &bsd));
    assert!(!fresh(&s, 0xc00c1e, &[2, 0, 0, 0, 0, 1]), "another MAC");
    let strict = ReplayState::new(REPLAY_STRICT, 0xc00c1e, &Recent::EMPTY);
    assert!(!fresh(&strict, 0xc00c1e, &bsd), "strict: no cookie");
}

#[test]
fn forged_adverts_do_not_use_up_the_sources_rate() {
    // Forged adverts with the real source address fail the HMAC before the
    // rate limit, so the genuine advert that follows is still delivered.
    let mut t = with_ucarp_key(b"carp-harness");
    t.settings = Settings::with_rate(1, 1, 0);
    let genuine = unhex(UCARP1);
    let mut forged = genuine.clone();
    forged[60] ^= 0xff;
    fix_carp_checksum(&mut forged, 34);
    for _ in 0..100 {
        assert_eq!(
            inspect(&forged[..], IFINDEX, &mut t),
            Verdict::Drop(Reason::Hmac)
        );
    }
    delivered(&genuine, &mut t);
}

/// Serving vhid 7 with an allow-list holding `peers` (address, pinned MAC).
fn with_allow_list(peers: &[([u8; 4], Option<[u8; 6]>)]) -> TestTables {
    let mut t = TestTables::serving(7);
    for flags in t.vhids.values_mut() {
        *flags |= VHID_PEERS_ONLY;
    }
    for (addr, mac) in peers {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(addr);
        t.peers.insert(
            PeerKey {
                ifindex: IFINDEX,
                vhid: 7,
                family: AF_INET,
                addr: a,
            },
            PeerValue {
                mac: mac.unwrap_or_default(),
                mac_pinned: u16::from(mac.is_some()),
            },
        );
    }
    t
}

#[test]
fn allow_list_admits_listed_sources_only_and_before_the_hmac() {
    let frame = v4();
    let src_mac: [u8; 6] = frame[6..12].try_into().unwrap();
    // Listed: delivered.
    assert!(matches!(
        inspect(&frame[..], IFINDEX, &mut with_allow_list(&[(SRC4, None)])),
        Verdict::Advert(_)
    ));
    // Not listed: refused as not allowed, even with a key whose HMAC check
    // would refuse it (the list comes first: no SHA-1 for such frames).
    let mut t = with_allow_list(&[([10, 99, 0, 2], None)]);
    t.hmac.insert(
        VhidKey {
            ifindex: IFINDEX,
            vhid: 7,
        },
        HmacKey::precompute(b"other", 7, &[[10, 99, 0, 100]], &[]).unwrap(),
    );
    assert_eq!(
        inspect(&frame[..], IFINDEX, &mut t),
        Verdict::Drop(Reason::NotAllowed)
    );
    // A pinned MAC must match the frame's Ethernet source.
    assert!(matches!(
        inspect(
            &frame[..],
            IFINDEX,
            &mut with_allow_list(&[(SRC4, Some(src_mac))])
        ),
        Verdict::Advert(_)
    ));
    assert_eq!(
        inspect(
            &frame[..],
            IFINDEX,
            &mut with_allow_list(&[(SRC4, Some([2, 0, 0, 0, 0, 99]))])
        ),
        Verdict::Drop(Reason::NotAllowed)
    );
    // Without the flag the list is not consulted.
    assert!(matches!(
        inspect(&frame[..], IFINDEX, &mut TestTables::serving(7)),
        Verdict::Advert(_)
    ));
}
