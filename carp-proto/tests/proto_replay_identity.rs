//! The identity rule of `proto::replay` (issue 19): a counter carrying a
//! sender's identity is judged against that identity's last counter,
//! whatever address and MAC it comes from, and never admitted as a repeat.

mod instance_support;

use carp_proto::counter::{identity, tagged_by};
use carp_proto::peer::MacClass;
use carp_proto::replay::{Admission, ReplayGuard};
use instance_support::*;

const NOW_MS: u64 = 1_763_000_000_000;

fn src(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

#[test]
fn a_replayed_counter_is_refused_from_any_source_and_mac() {
    for mode in [ReplayMode::Auto, ReplayMode::Strict] {
        let mut g = ReplayGuard::new(mode, None);
        let old = tagged_by(77, NOW_MS - 1_000);
        let c = tagged_by(77, NOW_MS);
        for counter in [old, c] {
            assert_eq!(
                g.admit(src(1), 1, counter, NOW_MS, MacClass::Other),
                Ok(Admission::Fresh)
            );
        }
        for (n, mac) in [
            (2, MacClass::Ucarp),
            (3, MacClass::Bsd),
            (4, MacClass::Other),
            (5, MacClass::Unknown),
            (1, MacClass::Ucarp),
        ] {
            // An older counter of the identity: a replay, from anywhere.
            assert_eq!(
                g.admit(src(n), 1, old, NOW_MS, mac),
                Err(if n == 1 {
                    ReplayError::Stale {
                        counter: old,
                        last: c,
                    }
                } else {
                    ReplayError::Replayed {
                        counter: old,
                        identity: 77,
                        last: c,
                    }
                }),
                "{mode} from {n} with {mac:?}"
            );
            // Its last counter again: from the address that sent it, stale;
            // from another, a copy (a dual-stack sender's other family, or
            // a replay of the last advert) that changes nothing.
            assert_eq!(
                g.admit(src(n), 1, c, NOW_MS, mac),
                if n == 1 {
                    Err(ReplayError::Stale {
                        counter: c,
                        last: c,
                    })
                } else {
                    Ok(Admission::Copy)
                },
                "{mode} from {n} with {mac:?}"
            );
        }
        // A copy records nothing: the next counter is still new, and the
        // copy's source has no state that would refuse the identity's next.
        // Another identity, another vhid: their own state.
        g.admit(src(2), 1, tagged_by(78, NOW_MS), NOW_MS, MacClass::Other)
            .unwrap();
        g.admit(src(2), 2, c, NOW_MS, MacClass::Other).unwrap();
        // A later counter of the same identity from a new address is new.
        g.admit(
            src(9),
            1,
            tagged_by(77, NOW_MS + 1),
            NOW_MS,
            MacClass::Other,
        )
        .unwrap();
    }
}

#[test]
fn a_copy_of_the_last_advert_neither_resets_master_down_nor_is_refused() {
    // A dual-stack master's second copy of each advert (the other family's
    // source address), or an attacker re-sending the master's last advert
    // from ever new addresses after it died: the backup takes over as if
    // nothing came.
    let mut b = started(params());
    let md = params().master_down_interval();
    let counter_at = |t: Nanos| tagged_by(77, (START_UNIX_NS + (t.0 - START.0)) / 1_000_000);
    let mut now = START;
    for _ in 0..3 {
        now = now.saturating_add(Nanos::from_secs(1));
        let h = advert(1, 0, 0, counter_at(now));
        assert_eq!(b.handle_advert(now, ip(20), &h), Ok(Admission::Fresh));
        assert_eq!(b.handle_advert(now, ip(120), &h), Ok(Admission::Copy));
    }
    assert_eq!(b.status().adverts_accepted, 3);
    assert_eq!(b.status().rejects.total(), 0, "{:?}", b.status().rejects);
    let last = advert(1, 0, 0, counter_at(now));
    let died = now;
    let mut n = 0u8;
    while b.state() != State::Master {
        now = now.saturating_add(Nanos::from_millis(100));
        n = n.wrapping_add(1);
        let copy = b.handle_advert(now, ip(130 + n % 100), &last);
        assert_eq!(copy, Ok(Admission::Copy));
        b.handle_timeout(now);
        assert!(
            now.saturating_sub(died) <= md.saturating_add(Nanos::from_millis(100)),
            "a copy of the last advert held the backup past master-down"
        );
    }
}

#[test]
fn tagged_counters_are_never_repeats_and_the_window_comes_first() {
    let c = tagged_by(77, NOW_MS);
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut g = ReplayGuard::new(mode, None);
        g.admit(src(1), 1, c, NOW_MS, MacClass::Ucarp).unwrap();
        assert!(
            g.admit(src(1), 1, c, NOW_MS, MacClass::Ucarp).is_err(),
            "{mode}"
        );
        assert!(
            g.admit(src(1), 1, c, NOW_MS, MacClass::Bsd).is_err(),
            "{mode}"
        );
        // Untagged counters from a virtual-router MAC still are.
        g.admit(src(1), 1, 5, NOW_MS, MacClass::Ucarp).unwrap();
        assert_eq!(
            g.admit(src(1), 1, 5, NOW_MS, MacClass::Ucarp),
            Ok(Admission::Repeat)
        );
    }
    // With a window, an old counter is refused as old, never a repeat or a
    // cookie, whatever its MAC.
    let mut g = ReplayGuard::new(ReplayMode::Auto, Some(2_000));
    g.admit(src(1), 1, c, NOW_MS, MacClass::Bsd).unwrap();
    for mac in [MacClass::Bsd, MacClass::Ucarp] {
        assert!(matches!(
            g.admit(src(1), 1, c, NOW_MS + 2_001, mac),
            Err(ReplayError::OutsideWindow { .. })
        ));
    }
}

#[test]
fn an_openbsd_cookie_that_carries_our_tag_by_chance_still_repeats() {
    // A random cookie with the tag and an identity, but a time years away
    // from ours: not one of our counters.
    let cookie = tagged_by(77, NOW_MS - 5 * 365 * 86_400_000);
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    g.admit(src(1), 1, cookie, NOW_MS, MacClass::Bsd).unwrap();
    assert_eq!(
        g.admit(src(1), 1, cookie, NOW_MS, MacClass::Bsd),
        Ok(Admission::Fresh)
    );
    // One of ours (a time near our clock) never does.
    let ours = tagged_by(78, NOW_MS);
    g.admit(src(2), 1, ours, NOW_MS, MacClass::Bsd).unwrap();
    assert!(g.admit(src(2), 1, ours, NOW_MS, MacClass::Bsd).is_err());
}

#[test]
fn remembered_counters_refuse_replays_from_the_start() {
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    let c = tagged_by(77, NOW_MS);
    g.admit(src(1), 1, c, NOW_MS, MacClass::Other).unwrap();
    g.admit(src(2), 2, tagged_by(9, NOW_MS), NOW_MS, MacClass::Other)
        .unwrap();
    assert_eq!(g.identities(1), vec![c]);
    let mut restarted = ReplayGuard::new(ReplayMode::Auto, None);
    for last in g.identities(1) {
        restarted.remember(1, last);
    }
    // Untagged values carry no identity: nothing to remember.
    restarted.remember(1, 12345);
    assert_eq!(restarted.identities(1), vec![c]);
    // The last counter again: a copy that changes nothing; an older one of
    // that identity: a replay, refused.
    assert_eq!(
        restarted.admit(src(1), 1, c, NOW_MS, MacClass::Ucarp),
        Ok(Admission::Copy)
    );
    assert!(matches!(
        restarted.admit(
            src(3),
            1,
            tagged_by(77, NOW_MS - 1),
            NOW_MS,
            MacClass::Ucarp
        ),
        Err(ReplayError::Replayed { identity: 77, .. })
    ));
}

#[test]
fn hearing_our_identity_from_another_sender_makes_us_take_another() {
    let mut b = started(params());
    let ours = b.identity();
    let h = advert(1, 0, 0, tagged_by(ours, START_UNIX_NS / 1_000_000));
    b.handle_advert(START, ip(20), &h).unwrap();
    assert_ne!(b.identity(), ours);
    // Our next counter carries the new one (master down, on time).
    let md = params().master_down_interval();
    b.handle_timeout(START.saturating_add(md));
    let sent_now = sent(&drain(&mut b));
    assert_eq!(identity(sent_now[0].counter()), Some(b.identity()));
}

#[test]
fn a_random_counter_that_carries_our_tag_by_chance_leaves_the_identity_alone() {
    // A UCARP host's random counter with the tag, identity 77 and a time
    // ten years ahead of ours.
    let random = tagged_by(77, NOW_MS + 10 * 365 * 86_400_000);
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    g.admit(src(1), 1, random, NOW_MS, MacClass::Ucarp).unwrap();
    assert_eq!(g.identities(1), Vec::<u64>::new());
    // The genuine host of identity 77 is still heard, from its own address.
    g.admit(src(2), 1, tagged_by(77, NOW_MS), NOW_MS, MacClass::Other)
        .unwrap();
    assert_eq!(g.identities(1), vec![tagged_by(77, NOW_MS)]);
}
