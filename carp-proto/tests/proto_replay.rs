//! The replay rules of `proto::replay`, one test per rule and per hole the
//! documentation admits.

use std::net::{IpAddr, Ipv4Addr};

use carp_common::maps::{Admit, ReplayState, REPLAY_STRICT};
use carp_proto::counter::tagged;
use carp_proto::peer::MacClass;
use carp_proto::replay::{Admission, ReplayGuard, COMPAT_MEMORY, MAX_SOURCES};
use carp_proto::{ReplayError, ReplayMode};
use proptest::prelude::*;

const NOW_MS: u64 = 1_763_000_000_000;

fn src(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

#[test]
fn strict_requires_growth_per_source_and_vhid() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, None);
    g.admit(src(1), 7, 100, NOW_MS, MacClass::Unknown).unwrap();
    g.admit(src(1), 7, 101, NOW_MS, MacClass::Unknown).unwrap();
    assert_eq!(
        g.admit(src(1), 7, 101, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Stale {
            counter: 101,
            last: 101
        })
    );
    assert_eq!(
        g.admit(src(1), 7, 5, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Stale {
            counter: 5,
            last: 101
        })
    );
    // Another source, another vhid: their own state.
    g.admit(src(2), 7, 5, NOW_MS, MacClass::Unknown).unwrap();
    g.admit(src(1), 8, 5, NOW_MS, MacClass::Unknown).unwrap();
    // A refused counter leaves the state as it was.
    g.admit(src(1), 7, 102, NOW_MS, MacClass::Unknown).unwrap();
}

#[test]
fn strict_window_checks_embedded_time() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, Some(2_000));
    g.admit(src(1), 1, tagged(NOW_MS - 2_000), NOW_MS, MacClass::Unknown)
        .unwrap();
    g.admit(src(2), 1, tagged(NOW_MS + 2_000), NOW_MS, MacClass::Unknown)
        .unwrap();
    assert_eq!(
        g.admit(src(3), 1, tagged(NOW_MS - 2_001), NOW_MS, MacClass::Unknown),
        Err(ReplayError::OutsideWindow {
            counter: tagged(NOW_MS - 2_001),
            skew_ms: -2_001,
            window_ms: 2_000
        })
    );
    assert!(matches!(
        g.admit(
            src(3),
            1,
            tagged(NOW_MS + 60_000),
            NOW_MS,
            MacClass::Unknown
        ),
        Err(ReplayError::OutsideWindow {
            skew_ms: 60_000,
            ..
        })
    ));
    assert_eq!(
        g.admit(src(4), 1, 12345, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Untimed { counter: 12345 })
    );
}

#[test]
fn compat_refuses_recent_duplicates_only() {
    let mut g = ReplayGuard::new(ReplayMode::Compat, None);
    g.admit(src(1), 1, 900, NOW_MS, MacClass::Unknown).unwrap();
    g.admit(src(1), 1, 3, NOW_MS, MacClass::Unknown).unwrap(); // lower: fine, UCARP counters are random
    assert_eq!(
        g.admit(src(1), 1, 900, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Duplicate { counter: 900 })
    );
    // The documented hole: after COMPAT_MEMORY newer counters, 900 is forgotten.
    for c in 0..COMPAT_MEMORY as u64 {
        g.admit(src(1), 1, 10_000 + c, NOW_MS, MacClass::Unknown)
            .unwrap();
    }
    g.admit(src(1), 1, 900, NOW_MS, MacClass::Unknown).unwrap();
}

#[test]
fn auto_treats_untagged_sources_as_compat() {
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    for c in [
        17288724999877301849u64,
        7253010890525428751,
        8800548394121392109,
    ] {
        g.admit(src(1), 7, c, NOW_MS, MacClass::Unknown).unwrap();
    }
    assert!(!g.is_known_tagged(src(1), 7));
    assert!(matches!(
        g.admit(src(1), 7, 7253010890525428751, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Duplicate { .. })
    ));
}

#[test]
fn auto_locks_a_tagged_source_to_strict() {
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    g.admit(src(1), 1, tagged(NOW_MS), NOW_MS, MacClass::Unknown)
        .unwrap();
    assert!(!g.is_known_tagged(src(1), 1));
    g.admit(src(1), 1, tagged(NOW_MS + 1000), NOW_MS, MacClass::Unknown)
        .unwrap();
    assert!(g.is_known_tagged(src(1), 1));
    // Downgrade refused, stale refused.
    assert_eq!(
        g.admit(src(1), 1, 42, NOW_MS, MacClass::Unknown),
        Err(ReplayError::Downgrade { counter: 42 })
    );
    assert_eq!(
        g.admit(src(1), 1, tagged(NOW_MS), NOW_MS, MacClass::Unknown),
        Err(ReplayError::Stale {
            counter: tagged(NOW_MS),
            last: tagged(NOW_MS + 1000)
        })
    );
}

#[test]
fn auto_single_tagged_hit_from_a_random_source_does_not_lock_it() {
    // A UCARP random counter carries the tag once in 65,536 adverts.
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    g.admit(src(1), 1, 555, NOW_MS, MacClass::Unknown).unwrap();
    g.admit(src(1), 1, tagged(12), NOW_MS, MacClass::Unknown)
        .unwrap();
    g.admit(src(1), 1, 777, NOW_MS, MacClass::Unknown).unwrap();
    g.admit(src(1), 1, tagged(10), NOW_MS, MacClass::Unknown)
        .unwrap_err(); // strict among tagged ones
    g.admit(src(1), 1, 778, NOW_MS, MacClass::Unknown).unwrap();
    assert!(!g.is_known_tagged(src(1), 1));
}

#[test]
fn auto_accepts_ucarp_continuing_from_our_counter() {
    // UCARP that takes over continues from the last counter it heard (ours) + 1.
    let mut g = ReplayGuard::new(ReplayMode::Auto, None);
    let ours = tagged(NOW_MS);
    for k in 1..=5 {
        g.admit(src(2), 1, ours + k, NOW_MS, MacClass::Unknown)
            .unwrap();
    }
    assert!(g.is_known_tagged(src(2), 1));
}

#[test]
fn ucarp_or_freebsd_restarting_after_continuing_our_counter_is_not_a_downgrade() {
    // Issue 11 case 7: they continued our tagged counter, then restart and
    // send random counters again. By their MAC they are not carpd-xdp.
    let ours = tagged(NOW_MS);
    for mac in [MacClass::Ucarp, MacClass::Bsd] {
        let mut g = ReplayGuard::new(ReplayMode::Auto, None);
        for k in 1..=5 {
            g.admit(src(2), 1, ours + k, NOW_MS, mac).unwrap();
        }
        assert!(!g.is_known_tagged(src(2), 1), "{mac:?}");
        let rule = g.receive_rule(src(2), 1).unwrap();
        assert_eq!(rule.flags & REPLAY_STRICT, 0, "{mac:?}");
        g.admit(src(2), 1, 0x1234_5678_9abc_def0, NOW_MS, mac)
            .unwrap();
    }
}

#[test]
fn openbsd_constant_cookie_is_liveness_in_auto_and_compat_only() {
    // Issue 11 case 2: OpenBSD repeats one cookie in every advert.
    let cookie = 0x0123_4567_89ab_cdef;
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut g = ReplayGuard::new(mode, None);
        for _ in 0..300 {
            g.admit(src(3), 1, cookie, NOW_MS, MacClass::Bsd).unwrap();
        }
        // The same repeat from a host that is not a BSD kernel is a replay;
        // from UCARP's MAC, a repeat: proof of life only.
        g.admit(src(4), 1, cookie, NOW_MS, MacClass::Other).unwrap();
        assert!(g.admit(src(4), 1, cookie, NOW_MS, MacClass::Other).is_err());
        g.admit(src(6), 1, cookie, NOW_MS, MacClass::Ucarp).unwrap();
        assert_eq!(
            g.admit(src(6), 1, cookie, NOW_MS, MacClass::Ucarp),
            Ok(Admission::Repeat)
        );
        // Once a source changed its counter, its repeats are no cookie any
        // more: proof of life only (FreeBSD takes on counters it hears).
        g.admit(src(5), 1, 7, NOW_MS, MacClass::Bsd).unwrap();
        g.admit(src(5), 1, 8, NOW_MS, MacClass::Bsd).unwrap();
        assert_eq!(
            g.admit(src(5), 1, 8, NOW_MS, MacClass::Bsd),
            Ok(Admission::Repeat)
        );
        assert_eq!(
            g.admit(src(5), 1, 7, NOW_MS, MacClass::Bsd),
            Ok(Admission::Repeat)
        );
    }
    let mut g = ReplayGuard::new(ReplayMode::Strict, None);
    g.admit(src(3), 1, cookie, NOW_MS, MacClass::Bsd).unwrap();
    assert!(g.admit(src(3), 1, cookie, NOW_MS, MacClass::Bsd).is_err());
}

#[test]
fn least_recent_source_is_forgotten_at_capacity() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, None);
    g.admit(src(0), 1, 10, NOW_MS, MacClass::Unknown).unwrap();
    for n in 0..MAX_SOURCES as u32 {
        let a = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
        g.admit(a, 1, 1, NOW_MS, MacClass::Unknown).unwrap();
    }
    assert_eq!(g.tracked(), MAX_SOURCES);
    // src(0) was the least recent and is gone: its old counter passes again.
    g.admit(src(0), 1, 10, NOW_MS, MacClass::Unknown).unwrap();
}

#[test]
fn mode_names_in_config_cli_and_display() {
    for (name, mode) in [
        ("strict", ReplayMode::Strict),
        ("compat", ReplayMode::Compat),
        ("auto", ReplayMode::Auto),
    ] {
        assert_eq!(mode.to_string(), name);
        assert_eq!(name.parse::<ReplayMode>().unwrap(), mode);
    }
    assert_eq!(
        "Strict".parse::<ReplayMode>().unwrap_err().to_string(),
        r#"unknown replay mode "Strict": expected "strict", "compat" or "auto""#
    );
    assert_eq!(ReplayMode::default(), ReplayMode::Auto);
}

/// The MAC bytes of a class, for `vhid` 1.
fn mac_of(class: MacClass) -> [u8; 6] {
    match class {
        MacClass::Ucarp => [0, 0, 0x5e, 0, 0, 1],
        MacClass::Bsd => MacClass::bsd_mac(1),
        MacClass::Unknown => [0; 6],
        MacClass::Other => [2, 0, 0, 0, 0, 9],
    }
}

/// The parts of a receive rule that only the core changes; the receive path
/// keeps the rest (last counter, recent counters) up to date itself.
fn shape(r: &ReplayState) -> (u32, u64, [u8; 6]) {
    (r.flags, r.cookie, r.cookie_mac)
}

/// An advert as the property below draws it: a counter from a small pool
/// (so that repeats happen), tagged or not, from one of the MAC classes.
fn advert() -> impl Strategy<Value = (u64, MacClass)> {
    (
        0u64..40,
        any::<bool>(),
        prop_oneof![
            Just(MacClass::Ucarp),
            Just(MacClass::Bsd),
            Just(MacClass::Other),
            Just(MacClass::Unknown)
        ],
    )
        .prop_map(|(n, tag, mac)| (if tag { tagged(NOW_MS) + n } else { n }, mac))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The receive path's rule, kept up to date as the daemon keeps it
    /// (recording what it lets through, replaced when its shape changes),
    /// says of every counter what the core says (new, repeat, refused), in
    /// every mode without a window: so refused adverts never reach the rate
    /// limit, repeats have their own budget, and accepted ones are never
    /// dropped before it.
    #[test]
    fn receive_rule_agrees_with_the_core(
        mode in prop_oneof![Just(ReplayMode::Strict), Just(ReplayMode::Compat), Just(ReplayMode::Auto)],
        adverts in proptest::collection::vec(advert(), 1..300),
    ) {
        let mut g = ReplayGuard::new(mode, None);
        let mut kernel: Option<ReplayState> = None;
        for (i, (counter, class)) in adverts.into_iter().enumerate() {
            let mac = mac_of(class);
            let kernel_says = kernel.as_ref().map_or(Admit::Fresh, |k| k.admits(counter, &mac, 1));
            let core_says = match g.admit(src(1), 1, counter, NOW_MS, class) {
                Ok(Admission::Fresh) => Admit::Fresh,
                Ok(Admission::Repeat) => Admit::Repeat,
                // A copy needs a second source address.
                Ok(Admission::Copy) => panic!("a copy from the only source"),
                Err(_) => Admit::Refused,
            };
            prop_assert_eq!(kernel_says, core_says, "advert {} counter {:#x} from {:?}", i, counter, class);
            if core_says == Admit::Fresh {
                if let Some(k) = kernel.as_mut() {
                    k.record(counter);
                }
                let rule = g.receive_rule(src(1), 1).unwrap();
                if kernel.as_ref().is_none_or(|k| shape(k) != shape(&rule)) {
                    kernel = Some(rule);
                }
            }
        }
    }
}
