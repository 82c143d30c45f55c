//! Host tests of the peer emulations in `tests/peers`: each rule the
//! interoperability tests rely on, checked on the state machines alone
//! (virtual time, no namespace).

mod peers;

use std::net::{IpAddr, Ipv6Addr};

use carp_common::header::CarpHeader;
use carp_daemon::proto::auth::Authenticator;
use carp_daemon::proto::{Nanos, Password};
use peers::{ucarp_lower_addr, Ignored, Kind, Output, Peer, PeerConfig, PeerState};

const PW: &str = "peer-model";
const VHID: u8 = 9;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> IpAddr {
    v4("10.9.0.100")
}

fn cfg(kind: Kind, advskew: u8, src: &str) -> PeerConfig {
    PeerConfig::new(kind, VHID, advskew, PW, vip(), v4(src))
}

/// An authentic advert from someone else with these fields.
fn advert(advbase: u8, advskew: u8, demote: u8, counter: u64) -> CarpHeader {
    advert_with(PW, &[vip()], advbase, advskew, demote, counter)
}

fn advert_with(
    pw: &str,
    addrs: &[IpAddr],
    advbase: u8,
    advskew: u8,
    demote: u8,
    counter: u64,
) -> CarpHeader {
    let auth = Authenticator::new(Password::new(pw.as_bytes()).unwrap(), addrs);
    let mut h = CarpHeader::advertisement(VHID, advbase, advskew, demote, counter);
    auth.seal(&mut h);
    h
}

/// An advert for [`vip`] sealed with `key` whatever its length (our own
/// [`Password`] refuses keys over 19 bytes, as the peers do).
fn sealed_with_any_key(key: &[u8], counter: u64) -> CarpHeader {
    use hmac::{Hmac, KeyInit, Mac};
    let mut h = CarpHeader::advertisement(VHID, 1, 0, 0, counter);
    let IpAddr::V4(vip) = vip() else {
        unreachable!("the VIP is IPv4")
    };
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(&[2, 1, VHID]);
    mac.update(&vip.octets());
    mac.update(&h.counter);
    h.hmac.copy_from_slice(&mac.finalize().into_bytes());
    h.seal_checksum();
    h
}

/// Every output queued so far.
fn drain(p: &mut Peer) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

/// The adverts among `outs`.
fn sent(outs: &[Output]) -> Vec<CarpHeader> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send(h) => Some(*h),
            _ => None,
        })
        .collect()
}

/// A peer that has become MASTER by timing out, outputs drained.
fn master(c: PeerConfig) -> (Peer, Nanos) {
    let mut p = Peer::new(c, Nanos::ZERO);
    let at = p.poll_timeout().expect("master-down armed");
    p.handle_timeout(at);
    assert_eq!(p.state(), PeerState::Master);
    drain(&mut p);
    (p, at)
}

#[test]
fn ucarp_compares_addresses_as_little_endian_host_integers() {
    // 10.99.2.1 vs 10.99.1.2: big-endian says .1.2 is lower, UCARP on x86
    // says .2.1 is (the last octet weighs most).
    assert!(ucarp_lower_addr([10, 99, 2, 1], [10, 99, 1, 2]));
    assert!(!ucarp_lower_addr([10, 99, 1, 2], [10, 99, 2, 1]));
    assert!(u32::from_be_bytes([10, 99, 1, 2]) < u32::from_be_bytes([10, 99, 2, 1]));
    // Within one /24 both orders agree.
    assert!(ucarp_lower_addr([10, 99, 1, 1], [10, 99, 1, 2]));
}

#[test]
fn ucarp_master_yields_on_a_tie_only_to_a_lower_host_order_address() {
    // We are 10.99.1.2; a tie from 10.99.2.1 (lower for UCARP) wins.
    let (mut p, t) = master(cfg(Kind::Ucarp, 0, "10.99.1.2"));
    p.handle_advert(t, v4("10.99.2.1"), &advert(1, 0, 0, 5))
        .unwrap();
    let outs = drain(&mut p);
    assert_eq!(p.state(), PeerState::Backup);
    // One last advert before going BACKUP, then the VIPs go.
    assert!(matches!(outs[0], Output::Send(_)), "{outs:?}");
    assert!(outs.contains(&Output::RemoveVips), "{outs:?}");

    // We are 10.99.2.1; a tie from 10.99.1.2 loses: we stay MASTER.
    let (mut p, t) = master(cfg(Kind::Ucarp, 0, "10.99.2.1"));
    p.handle_advert(t, v4("10.99.1.2"), &advert(1, 0, 0, 5))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);
    assert!(sent(&drain(&mut p)).is_empty());
}

#[test]
fn ucarp_backup_preempts_only_a_strictly_slower_master_and_ignores_demote() {
    let c = cfg(Kind::Ucarp, 50, "10.9.0.2").preempt(true);
    let mut p = Peer::new(c.clone(), Nanos::ZERO);
    p.handle_advert(Nanos(1), v4("10.9.0.1"), &advert(1, 50, 0, 1))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup, "a tie is never preempted");
    // A demote byte means nothing to UCARP.
    p.handle_advert(Nanos(2), v4("10.9.0.1"), &advert(1, 0, 200, 2))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    p.handle_advert(Nanos(3), v4("10.9.0.1"), &advert(1, 51, 0, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);
    // Without preempt it waits for master-down.
    let mut p = Peer::new(c.preempt(false), Nanos::ZERO);
    p.handle_advert(Nanos(3), v4("10.9.0.1"), &advert(1, 51, 0, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
}

#[test]
fn ucarp_counter_is_random_until_it_hears_a_peer_then_continues_from_it() {
    let (mut p, mut t) = master(cfg(Kind::Ucarp, 0, "10.9.0.2"));
    let mut counters = Vec::new();
    for _ in 0..3 {
        t = p.poll_timeout().unwrap();
        p.handle_timeout(t);
        counters.extend(sent(&drain(&mut p)).iter().map(|h| h.counter()));
    }
    assert_eq!(counters.len(), 3);
    assert!(
        counters.windows(2).all(|w| w[1] != w[0].wrapping_add(1)),
        "{counters:x?}"
    );
    // It hears a slower master (no state change) and adopts its counter.
    p.handle_advert(t, v4("10.9.0.1"), &advert(1, 200, 0, 0x1234))
        .unwrap();
    t = p.poll_timeout().unwrap();
    p.handle_timeout(t);
    t = p.poll_timeout().unwrap();
    p.handle_timeout(t);
    let next: Vec<u64> = sent(&drain(&mut p)).iter().map(|h| h.counter()).collect();
    assert_eq!(next, [0x1235, 0x1236]);
}

#[test]
fn ucarp_timers_and_source_mac() {
    let p = Peer::new(cfg(Kind::Ucarp, 100, "10.9.0.2"), Nanos::ZERO);
    assert_eq!(p.master_down(), Nanos(3_390_625_000));
    assert_eq!(p.interval(), Nanos(1_390_625_000));
    assert_eq!(Kind::Ucarp.source_mac(7), [0, 0, 0x5e, 0, 0, 7]);
}

#[test]
#[should_panic(expected = "UCARP refuses a 20-byte password")]
fn ucarp_refuses_a_twenty_byte_password() {
    let mut c = cfg(Kind::Ucarp, 0, "10.9.0.2");
    c.password = vec![b'x'; 20];
    let _ = Peer::new(c, Nanos::ZERO);
}

#[test]
fn openbsd_sends_one_cookie_for_ever_and_drops_adverts_carrying_it() {
    let (mut p, mut t) = master(cfg(Kind::OpenBsd, 0, "10.9.0.2"));
    let mut counters = Vec::new();
    for _ in 0..4 {
        t = p.poll_timeout().unwrap();
        p.handle_timeout(t);
        counters.extend(sent(&drain(&mut p)).iter().map(|h| h.counter()));
    }
    assert_eq!(counters.len(), 4);
    assert!(counters.iter().all(|&c| c == counters[0]), "{counters:x?}");
    // Hearing others' counters does not change it.
    p.handle_advert(t, v4("10.9.0.1"), &advert(1, 200, 0, 77))
        .unwrap();
    assert_eq!(p.counter(), counters[0]);
    // Its own cookie, even from another address, is taken as its own advert.
    let own = advert(1, 0, 0, counters[0]);
    assert_eq!(
        p.handle_advert(t, v4("10.9.0.1"), &own),
        Err(Ignored::OwnCookie)
    );
    assert_eq!(Kind::OpenBsd.source_mac(7), [0, 0, 0x5e, 0, 1, 7]);
}

#[test]
fn openbsd_master_yield_rules_with_demote() {
    let c = cfg(Kind::OpenBsd, 100, "10.9.0.2").demote(5);
    let cases = [
        // (their advskew, their demote, yields)
        (100, 5, true),  // tie: yields (no address tie-break)
        (50, 5, true),   // more frequent
        (50, 6, false),  // more frequent but more demoted
        (200, 4, true),  // slower but less demoted
        (200, 5, false), // slower
    ];
    for (skew, demote, yields) in cases {
        let (mut p, t) = master(c.clone());
        p.handle_advert(t, v4("10.9.0.1"), &advert(1, skew, demote, 3))
            .unwrap();
        let want = if yields {
            PeerState::Backup
        } else {
            PeerState::Master
        };
        assert_eq!(p.state(), want, "advskew {skew} demote {demote}");
        if yields {
            assert!(
                sent(&drain(&mut p)).is_empty(),
                "OpenBSD sends no last advert"
            );
        }
    }
}

#[test]
fn openbsd_backup_takes_over_a_more_demoted_master_without_preempt_and_on_bow_out() {
    let c = cfg(Kind::OpenBsd, 100, "10.9.0.2");
    let mut p = Peer::new(c.clone(), Nanos::ZERO);
    p.handle_advert(Nanos(1), v4("10.9.0.1"), &advert(1, 0, 0, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    p.handle_advert(Nanos(2), v4("10.9.0.1"), &advert(1, 0, 1, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);
    let outs = drain(&mut p);
    assert_eq!(sent(&outs)[0].demote, 0);
    assert!(outs.contains(&Output::AddVips));

    // A master bowing out (255/255) is taken over at once.
    let mut p = Peer::new(c.clone(), Nanos::ZERO);
    p.handle_advert(Nanos(1), v4("10.9.0.1"), &advert(255, 255, 0, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);

    // Preempt does not take over a slower master that is less demoted.
    let mut p = Peer::new(c.preempt(true).demote(3), Nanos::ZERO);
    p.handle_advert(Nanos(1), v4("10.9.0.1"), &advert(1, 200, 2, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    p.handle_advert(Nanos(2), v4("10.9.0.1"), &advert(1, 200, 3, 3))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);
}

#[test]
fn openbsd_shutdown_bows_out_and_master_down_is_three_intervals() {
    let c = cfg(Kind::OpenBsd, 100, "10.9.0.2");
    assert_eq!(
        Peer::new(c.clone(), Nanos::ZERO).master_down(),
        Nanos(4_171_875_000)
    );
    let (mut p, _) = master(c);
    p.shutdown();
    let outs = drain(&mut p);
    let bow = sent(&outs);
    assert_eq!(bow.len(), 1);
    assert!(bow[0].is_leave(), "{:?}", bow[0]);
    assert!(outs.contains(&Output::RemoveVips));
    assert_eq!(p.state(), PeerState::Down);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn openbsd_leaves_link_local_out_of_the_hmac_and_accepts_both_forms() {
    let ll: IpAddr = "fe80::99".parse::<Ipv6Addr>().unwrap().into();
    let g: IpAddr = "2001:db8::99".parse::<Ipv6Addr>().unwrap().into();
    let mut c = cfg(Kind::OpenBsd, 0, "10.9.0.2");
    c.vips = vec![g, ll];
    let (mut p, t) = master(c);
    let t2 = p.poll_timeout().unwrap();
    p.handle_timeout(t2);
    let h = sent(&drain(&mut p))[0];
    let without = Authenticator::new(Password::new(PW.as_bytes()).unwrap(), &[g]);
    let with = Authenticator::new(Password::new(PW.as_bytes()).unwrap(), &[g, ll]);
    // Our Authenticator accepts both forms; compare the digests themselves.
    let digest = |a: &Authenticator| a.digest(h.version_type, h.vhid, &h.counter);
    assert!(h.hmac == digest(&without) && h.hmac != digest(&with));
    // Both forms from a peer are accepted.
    let a = advert_with(PW, &[g, ll], 1, 0, 0, 1);
    let b = advert_with(PW, &[g], 1, 0, 0, 2);
    assert_eq!(p.handle_advert(t, v4("10.9.0.1"), &a), Ok(()));
    let (mut p, t) = master({
        let mut c = cfg(Kind::OpenBsd, 0, "10.9.0.2");
        c.vips = vec![g, ll];
        c
    });
    assert_eq!(p.handle_advert(t, v4("10.9.0.1"), &b), Ok(()));
    let bad = advert_with("wrong", &[g], 1, 0, 0, 2);
    assert_eq!(p.handle_advert(t, v4("10.9.0.1"), &bad), Err(Ignored::Auth));
}

#[test]
fn bsd_keys_are_cut_to_nineteen_bytes() {
    for kind in [Kind::OpenBsd, Kind::FreeBsd] {
        let mut c = cfg(kind, 100, "10.9.0.2");
        c.password = b"0123456789abcdefghiXYZ".to_vec();
        let mut p = Peer::new(c, Nanos::ZERO);
        let nineteen = advert_with("0123456789abcdefghi", &[vip()], 1, 0, 0, 1);
        assert_eq!(
            p.handle_advert(Nanos(1), v4("10.9.0.1"), &nineteen),
            Ok(()),
            "{kind:?}"
        );
        let twenty = sealed_with_any_key(b"0123456789abcdefghiX", 2);
        assert_eq!(
            p.handle_advert(Nanos(2), v4("10.9.0.1"), &twenty),
            Err(Ignored::Auth)
        );
    }
}

#[test]
fn freebsd_adds_demotion_to_advskew_and_never_fills_the_demote_byte() {
    let c = cfg(Kind::FreeBsd, 100, "10.9.0.2").demote(50);
    let (mut p, _) = master(c.clone());
    let t = p.poll_timeout().unwrap();
    p.handle_timeout(t);
    let h = sent(&drain(&mut p))[0];
    assert_eq!((h.advskew, h.demote), (150, 0));
    p.set_demote(200);
    let t = p.poll_timeout().unwrap();
    p.handle_timeout(t);
    let h = sent(&drain(&mut p))[0];
    assert_eq!((h.advskew, h.demote), (240, 0), "capped at 240");
    // Master-down uses the configured advskew, not the demoted one.
    assert_eq!(
        Peer::new(c, Nanos::ZERO).master_down(),
        Nanos(3_390_625_000)
    );
}

#[test]
fn freebsd_master_yields_on_ties_and_backup_preempts_slower_only() {
    let (mut p, t) = master(cfg(Kind::FreeBsd, 100, "10.9.0.1"));
    // A tie from a higher address still makes it yield.
    p.handle_advert(t, v4("10.9.0.2"), &advert(1, 100, 0, 1))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    assert!(
        sent(&drain(&mut p)).is_empty(),
        "FreeBSD sends no last advert"
    );
    // The demote byte is not read.
    let (mut p, t) = master(cfg(Kind::FreeBsd, 100, "10.9.0.1"));
    p.handle_advert(t, v4("10.9.0.2"), &advert(1, 50, 200, 1))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    let mut p = Peer::new(
        cfg(Kind::FreeBsd, 100, "10.9.0.2").preempt(true),
        Nanos::ZERO,
    );
    p.handle_advert(Nanos(1), v4("10.9.0.1"), &advert(1, 100, 0, 1))
        .unwrap();
    assert_eq!(p.state(), PeerState::Backup);
    p.handle_advert(Nanos(2), v4("10.9.0.1"), &advert(1, 101, 0, 2))
        .unwrap();
    assert_eq!(p.state(), PeerState::Master);
}

#[test]
fn freebsd_continues_from_the_last_counter_it_accepted() {
    let mut p = Peer::new(cfg(Kind::FreeBsd, 100, "10.9.0.2"), Nanos::ZERO);
    p.handle_advert(
        Nanos(1),
        v4("10.9.0.1"),
        &advert(1, 0, 0, 0xCA4D_0000_0000_1000),
    )
    .unwrap();
    // The master bows out in UCARP / carpd-xdp style (255/255 is slower than
    // 3 × advbase): it takes over and continues the counter.
    p.handle_advert(
        Nanos(2),
        v4("10.9.0.1"),
        &advert(255, 255, 0, 0xCA4D_0000_0000_1001),
    )
    .unwrap();
    assert_eq!(p.state(), PeerState::Master);
    let mut counters: Vec<u64> = sent(&drain(&mut p)).iter().map(|h| h.counter()).collect();
    let t = p.poll_timeout().unwrap();
    p.handle_timeout(t);
    counters.extend(sent(&drain(&mut p)).iter().map(|h| h.counter()));
    assert_eq!(counters, [0xCA4D_0000_0000_1002, 0xCA4D_0000_0000_1003]);
}

#[test]
fn every_flavour_ignores_bad_checksum_other_vhid_and_wrong_password() {
    for kind in [Kind::Ucarp, Kind::OpenBsd, Kind::FreeBsd] {
        let mut p = Peer::new(cfg(kind, 100, "10.9.0.2"), Nanos::ZERO);
        let mut bad = advert(1, 0, 0, 1);
        bad.advskew ^= 1;
        assert_eq!(
            p.handle_advert(Nanos(1), v4("10.9.0.1"), &bad),
            Err(Ignored::Checksum)
        );
        let mut other = CarpHeader::advertisement(VHID + 1, 1, 0, 0, 1);
        Authenticator::new(Password::new(PW.as_bytes()).unwrap(), &[vip()]).seal(&mut other);
        assert_eq!(
            p.handle_advert(Nanos(1), v4("10.9.0.1"), &other),
            Err(Ignored::Vhid)
        );
        let wrong = advert_with("nope", &[vip()], 1, 0, 0, 1);
        assert_eq!(
            p.handle_advert(Nanos(1), v4("10.9.0.1"), &wrong),
            Err(Ignored::Auth)
        );
        assert_eq!(p.stats().bad_auth, 1);
        // None of them reset master-down: it still fires on time.
        assert_eq!(p.poll_timeout(), Some(p.master_down()), "{kind:?}");
        assert_eq!(p.state(), PeerState::Backup);
    }
}
