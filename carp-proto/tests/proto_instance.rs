//! Every transition of `proto::Instance` and every timer formula, in exact
//! nanoseconds.

mod instance_support;

use instance_support::*;

#[test]
fn startup_enters_backup_and_runs_down_script() {
    let mut i = Instance::new(params(), START, START_UNIX_NS).unwrap();
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        drain(&mut i),
        vec![
            changed(State::Init, State::Backup, Reason::Startup),
            Action::RemoveVips,
            Action::RunScript(Script::Down)
        ]
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(START.0 + 3_000_000_000)));
}

#[test]
fn neutral_startup_runs_no_script_but_still_removes_stale_addresses() {
    // UCARP's -n is about the down script; a VIP a crashed run left behind
    // would answer ARP beside the real master (issue 12, case 9).
    let mut p = params();
    p.neutral = true;
    let mut i = Instance::new(p, START, START_UNIX_NS).unwrap();
    assert_eq!(
        drain(&mut i),
        vec![
            changed(State::Init, State::Backup, Reason::Startup),
            Action::RemoveVips
        ]
    );
}

#[test]
fn master_down_expiry_takes_over_with_complete_advert() {
    let mut p = params();
    p.advskew = 100;
    p.demote = 4;
    let mut i = started(p);
    // Demoted: advskew 100 scaled into 241..=254 (246) on the wire and in
    // our timers, as FreeBSD's demotion.
    let md = Nanos(3_960_937_500);
    i.handle_timeout(Nanos(START.0 + md.0 - 1));
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.poll_action(), None);
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    let actions = drain(&mut i);
    let h = sent(&actions)[0];
    // A minute ahead, same identity.
    let reserved = h.counter() + (60_000 << 8);
    assert_eq!(
        actions,
        vec![
            changed(State::Backup, State::Master, Reason::MasterDown),
            Action::AddVips,
            Action::PersistCounter(reserved),
            Action::SendAdvert(h),
            Action::Announce,
            Action::RunScript(Script::Up),
        ]
    );
    assert_eq!((h.vhid, h.advbase, h.advskew, h.demote), (VHID, 1, 246, 4));
    assert!(h.checksum_ok() && auth().verify(&h));
    assert!(is_tagged(h.counter()));
    assert_eq!(
        embedded_millis(h.counter()),
        (START_UNIX_NS + md.0) / 1_000_000
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + 1_960_937_500)));
}

#[test]
fn adverts_every_interval_with_announce_rounds() {
    for (rounds, every, expected) in [
        (2u8, 2u8, vec![true, false, true, false, false]),
        (3, 1, vec![true, true, true, false, false]),
        (0, 1, vec![false, false, false, false, false]),
    ] {
        let mut p = params();
        p.announce_rounds = rounds;
        p.announce_every_adverts = every;
        let md = p.master_down_interval();
        let mut i = started(p);
        let mut t = START.saturating_add(md);
        let mut announced = Vec::new();
        let mut counters = Vec::new();
        for _ in 0..5 {
            i.handle_timeout(t);
            let a = drain(&mut i);
            announced.push(a.contains(&Action::Announce));
            counters.push(sent(&a)[0].counter());
            t = Nanos(t.0 + 1_000_000_000);
            assert_eq!(i.poll_timeout(), Some(t));
        }
        assert_eq!(announced, expected, "rounds {rounds} every {every}");
        assert!(counters.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn timer_formulas_at_the_extremes() {
    for rule in [MasterDownRule::Ucarp, MasterDownRule::OpenBsd] {
        for (advbase, advskew) in [(0u8, 0u8), (0, 254), (255, 0), (255, 254), (1, 100)] {
            let mut p = params();
            p.advbase_secs = advbase;
            p.advskew = advskew;
            p.master_down_rule = rule;
            let interval = advert_interval(advbase, advskew);
            let md = master_down_interval(rule, 3, advbase, advskew);
            let base_ns = advbase as u64 * 1_000_000_000;
            let skew_ns = advskew as u64 * 3_906_250;
            assert_eq!(interval.0, (base_ns + skew_ns).max(3_906_250));
            let expected_md = match rule {
                MasterDownRule::Ucarp if advbase > 0 => 3 * base_ns + skew_ns,
                _ => 3 * interval.0,
            };
            assert_eq!(md.0, expected_md);
            let mut i = started(p);
            assert_eq!(i.poll_timeout(), Some(Nanos(START.0 + expected_md)));
            i.handle_timeout(Nanos(START.0 + expected_md));
            assert_eq!(i.state(), State::Master);
            assert_eq!(
                i.poll_timeout(),
                Some(Nanos(START.0 + expected_md + interval.0))
            );
        }
    }
}

#[test]
fn backup_rearms_master_down_on_each_advert() {
    let mut i = started(params());
    let t = Nanos(START.0 + 2_000_000_000);
    i.handle_advert(t, ip(1), &advert(1, 0, 0, 1)).unwrap();
    assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + 3_000_000_000)));
    assert_eq!(i.poll_action(), None);
    assert_eq!(i.status().master, Some(ip(1)));
    assert_eq!(i.status().last_advert_at, Some(t));
}

#[test]
fn master_hearing_a_better_master_sends_final_advert_and_backs_off() {
    let mut p = params();
    p.advskew = 10;
    let (mut i, t) = master(p);
    let t2 = Nanos(t.0 + 5);
    i.handle_advert(t2, ip(20), &advert(1, 9, 0, 1)).unwrap();
    let a = drain(&mut i);
    let h = sent(&a)[0];
    assert!(!h.is_leave() && h.advskew == 10);
    assert_eq!(
        a,
        vec![
            Action::SendAdvert(h),
            changed(State::Master, State::Backup, Reason::BetterMaster),
            Action::RemoveVips,
            Action::RunScript(Script::Down),
        ]
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(t2.0 + 3_039_062_500)));
    assert_eq!(i.status().master, Some(ip(20)));
}

#[test]
fn master_with_higher_demote_loses_to_a_slower_master() {
    let mut p = params();
    p.demote = 2;
    let (mut i, t) = master(p);
    i.handle_advert(t, ip(20), &advert(5, 0, 1, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn master_hearing_a_worse_master_reasserts() {
    let (mut i, t) = master(params());
    i.handle_advert(t, ip(20), &advert(1, 1, 0, 1)).unwrap();
    assert_eq!(drain(&mut i), vec![Action::Announce]);
    assert_eq!(i.state(), State::Master);
    // A peer's leave advert is no rival either, and needs no reassertion.
    i.handle_advert(t, ip(20), &advert(255, 255, 0, 2)).unwrap();
    assert_eq!(drain(&mut i), vec![]);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn equal_interval_tie_broken_by_lower_address() {
    // We are 192.0.2.10.
    let (mut i, t) = master(params());
    i.handle_advert(t, ip(11), &advert(1, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Master);
    i.handle_advert(t, ip(9), &advert(1, 0, 0, 2)).unwrap();
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_preempts_a_worse_master_only_with_preempt() {
    for preempt in [false, true] {
        let mut p = params();
        p.preempt = preempt;
        let mut i = started(p);
        let t = Nanos(START.0 + 10);
        i.handle_advert(t, ip(20), &advert(1, 50, 0, 1)).unwrap();
        let a = drain(&mut i);
        if preempt {
            assert_eq!(i.state(), State::Master);
            assert_eq!(a[0], changed(State::Backup, State::Master, Reason::Preempt));
        } else {
            assert_eq!(i.state(), State::Backup);
            assert!(a.is_empty());
            assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + 3_000_000_000)));
        }
    }
}

#[test]
fn backup_never_preempts_on_an_address_tie() {
    // UCARP, OpenBSD and FreeBSD preempt only a slower master; a preempt on
    // a tie made two masters with UCARP (issue 11, case 1).
    let mut p = params();
    p.preempt = true;
    let mut i = started(p);
    i.handle_advert(START, ip(9), &advert(1, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    i.handle_advert(START, ip(11), &advert(1, 0, 0, 2)).unwrap();
    assert_eq!(i.state(), State::Backup);
    i.handle_advert(START, ip(11), &advert(1, 1, 0, 3)).unwrap();
    assert_eq!(i.state(), State::Master);
}

#[test]
fn backup_takes_over_a_demoted_master_without_preempt() {
    let mut i = started(params());
    i.handle_advert(START, ip(20), &advert(1, 0, 1, 1)).unwrap();
    assert_eq!(
        drain(&mut i)[0],
        changed(State::Backup, State::Master, Reason::PeerDemoted)
    );
}

#[test]
fn demoted_backup_does_not_preempt_a_slower_master() {
    let mut p = params();
    p.preempt = true;
    p.demote = 3;
    let mut i = started(p);
    i.handle_advert(START, ip(20), &advert(2, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_takes_over_at_once_on_leave_advert() {
    let mut i = started(params());
    let t = Nanos(START.0 + 7);
    i.handle_advert(t, ip(20), &advert(255, 255, 0, 1)).unwrap();
    let a = drain(&mut i);
    assert_eq!(
        a[0],
        changed(State::Backup, State::Master, Reason::PeerLeft)
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + 1_000_000_000)));
}

#[test]
fn backup_takes_over_a_master_too_slow_to_stay() {
    let mut i = started(params());
    // Our master-down is 3 s; an advert interval of 3 s + 1/256 s would time out.
    i.handle_advert(START, ip(20), &advert(3, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    i.handle_advert(START, ip(20), &advert(3, 1, 0, 2)).unwrap();
    assert_eq!(
        drain(&mut i)[0],
        changed(State::Backup, State::Master, Reason::SlowMaster)
    );
}

/// A sender with the given source MAC.
fn from(addr: &str, mac: [u8; 6]) -> Sender {
    Sender {
        addr: addr.parse().unwrap(),
        mac,
    }
}

const UCARP_MAC: [u8; 6] = [0, 0, 0x5e, 0, 0, VHID];
const BSD_MAC: [u8; 6] = [0, 0, 0x5e, 0, 1, VHID];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

#[test]
fn two_masters_of_equal_rank_settle_as_the_peer_does() {
    // We are 192.0.2.10. 192.0.3.9 is lower in UCARP's host-order compare
    // (last octet first) though higher as a big-endian number.
    for (peer, mac, we_yield) in [
        ("192.0.3.9", UCARP_MAC, true),
        ("192.0.3.9", HOST_MAC, true),
        ("192.0.1.11", UCARP_MAC, false),
        ("192.0.1.11", HOST_MAC, false),
        // The BSD kernels yield on a tie themselves: we keep the VIP.
        ("192.0.3.9", BSD_MAC, false),
        ("192.0.1.11", BSD_MAC, false),
    ] {
        let (mut i, t) = master(params());
        i.handle_advert(t, from(peer, mac), &advert(1, 0, 0, 77))
            .unwrap();
        let expected = if we_yield {
            State::Backup
        } else {
            State::Master
        };
        assert_eq!(i.state(), expected, "peer {peer} mac {mac:02x?}");
    }
}

#[test]
fn demotion_against_peers_that_ignore_the_demote_byte() {
    // A demoted master advertises advskew 241 (its 0 scaled): a UCARP or FreeBSD backup
    // (which read only advskew) with preempt takes over; as a master, we
    // compare with them on intervals alone.
    let mut p = params();
    p.demote = 1;
    let (mut i, t) = master(p);
    // UCARP master, advskew 100: slower than our configured 0 but faster
    // than our demoted 241. It keeps the VIP in its own eyes, so we yield.
    i.handle_advert(t, from("192.0.2.20", UCARP_MAC), &advert(1, 100, 0, 5))
        .unwrap();
    assert_eq!(i.state(), State::Backup);
    // OpenBSD reads the byte: demote 0 beats our 1 whatever the interval.
    let mut p = params();
    p.demote = 1;
    let (mut i, t) = master(p);
    i.handle_advert(t, from("192.0.2.20", BSD_MAC), &advert(2, 0, 0, 5))
        .unwrap();
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_takes_over_a_demoted_master_only_where_the_byte_is_read() {
    // UCARP and FreeBSD send demote 0 and never read ours; a demote byte from
    // a UCARP MAC is no reason to take over.
    let mut i = started(params());
    i.handle_advert(START, from("192.0.2.20", UCARP_MAC), &advert(1, 0, 3, 1))
        .unwrap();
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.status().master_kind, Some(PeerKind::Ucarp));
    let mut i = started(params());
    i.handle_advert(START, from("192.0.2.21", BSD_MAC), &advert(1, 0, 3, 1))
        .unwrap();
    assert_eq!(i.state(), State::Master);
}

#[test]
fn openbsd_master_with_a_constant_cookie_keeps_us_backup() {
    // Issue 11 case 2: every advert carries the same counter.
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut p = params();
        p.replay_mode = mode;
        let mut i = started(p);
        let cookie = advert(1, 100, 0, 0x0123_4567_89ab_cdef);
        let mut t = START;
        for _ in 0..20 {
            i.handle_advert(t, from("192.0.2.20", BSD_MAC), &cookie)
                .unwrap();
            t = t.saturating_add(Nanos::from_secs(1));
            i.handle_timeout(t);
            assert_eq!(i.state(), State::Backup, "{mode:?}");
        }
        assert_eq!(i.status().master_kind, Some(PeerKind::OpenBsd));
    }
}

#[test]
fn counters_start_above_the_persisted_reservation() {
    let mut i = started(params());
    let far = carp_proto::counter::tagged((START_UNIX_NS / 1_000_000) + 3_600_000);
    i.raise_counter_floor(far).unwrap();
    let md = params().master_down_interval();
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    let a = drain(&mut i);
    let h = sent(&a)[0];
    // One millisecond above the floor, in our identity.
    let next = carp_proto::counter::tagged_by(i.identity(), embedded_millis(far) + 1);
    assert_eq!(h.counter(), next);
    // The reservation is persisted before the advert that needs it.
    let persist = a
        .iter()
        .position(|x| *x == Action::PersistCounter(next + (60_000 << 8)));
    let send = a.iter().position(|x| matches!(x, Action::SendAdvert(_)));
    assert!(persist.is_some() && persist < send, "{a:?}");
}

#[test]
fn a_stepping_down_master_is_no_reason_to_take_over_while_a_better_one_lives() {
    // Three hosts: A (advskew 0) just took over from B (advskew 200), which
    // sends a final advert as it steps down; we (advskew 100, preempt) must
    // not preempt B, nor take B's leave advert as a reason: A is master.
    let mut p = params();
    p.advskew = 100;
    p.preempt = true;
    let mut i = started(p);
    let t = Nanos(START.0 + 10);
    i.handle_advert(t, ip(1), &advert(1, 0, 0, 1)).unwrap();
    i.handle_advert(t, ip(2), &advert(1, 200, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    i.handle_advert(t, ip(2), &advert(255, 255, 0, 2)).unwrap();
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.status().master, Some(ip(1)));
    // A goes quiet: master-down from A's last advert, not B's.
    let md = i.params().master_down_interval();
    i.handle_timeout(Nanos(t.0 + md.0 - 1));
    assert_eq!(i.state(), State::Backup);
    i.handle_timeout(Nanos(t.0 + md.0));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn a_lesser_master_alone_is_still_preempted_and_a_leaving_master_replaced() {
    let mut p = params();
    p.advskew = 100;
    p.preempt = true;
    let mut i = started(p.clone());
    i.handle_advert(START, ip(2), &advert(1, 200, 0, 1))
        .unwrap();
    assert_eq!(i.state(), State::Master);
    let mut i = started(p);
    i.handle_advert(START, ip(1), &advert(1, 0, 0, 1)).unwrap();
    i.handle_advert(START, ip(1), &advert(255, 255, 0, 2))
        .unwrap();
    assert_eq!(i.state(), State::Master);
}

#[test]
fn the_allow_list_refuses_other_sources_and_other_macs() {
    let mut p = params();
    p.allowed_peers = vec![
        "192.0.2.20".parse().unwrap(),
        "192.0.2.21@02:00:00:00:00:21".parse().unwrap(),
    ];
    let mut i = started(p);
    // Not listed: refused before the HMAC is even looked at.
    let mut forged = advert(1, 0, 0, 1);
    forged.hmac = [0; 20];
    forged.seal_checksum();
    assert!(matches!(
        i.handle_advert(START, from("192.0.2.77", HOST_MAC), &forged),
        Err(Reject::NotAllowed { .. })
    ));
    // Listed without a MAC: any Ethernet source.
    i.handle_advert(START, from("192.0.2.20", UCARP_MAC), &advert(1, 0, 0, 2))
        .unwrap();
    // Listed with a MAC: only that one.
    assert!(matches!(
        i.handle_advert(START, from("192.0.2.21", HOST_MAC), &advert(1, 0, 0, 3)),
        Err(Reject::NotAllowed { .. })
    ));
    i.handle_advert(
        START,
        from("192.0.2.21", [2, 0, 0, 0, 0, 0x21]),
        &advert(1, 0, 0, 4),
    )
    .unwrap();
    assert_eq!(i.status().rejects.get("not-allowed"), 2);
}

#[test]
fn the_core_time_never_goes_backwards() {
    // An advert the kernel saw at t - 5 ms, handed in after something at t:
    // it counts as heard at t, and the master-down it arms runs from t.
    let mut i = started(params());
    let t = Nanos(START.0 + 1_000_000_000);
    i.handle_link(t, true);
    i.handle_advert(Nanos(t.0 - 5_000_000), ip(20), &advert(1, 100, 0, 1))
        .unwrap();
    let md = i.params().master_down_interval();
    assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + md.0)));
    assert_eq!(i.status().last_advert_at, Some(t));
}

#[test]
fn a_backup_late_for_master_down_listens_once_more_before_taking_over() {
    let mut p = params();
    p.advskew = 100;
    let md = p.master_down_interval();
    let interval = p.advert_interval();
    let deadline = START.saturating_add(md);
    // On time, or late by no more than a quarter interval: at once.
    for late in [Nanos::ZERO, Nanos(interval.0 / 4)] {
        let mut i = started(p.clone());
        i.handle_timeout(deadline.saturating_add(late));
        assert_eq!(i.state(), State::Master, "late by {late}");
    }
    // Later: the deadline moves by the lateness, at least one interval, at
    // most one master-down; once.
    let ms = Nanos::from_millis;
    for (late, grace) in [
        (ms(400), interval),
        (ms(2_000), ms(2_000)),
        (ms(30_000), md),
    ] {
        let mut i = started(p.clone());
        let woke = deadline.saturating_add(late);
        i.handle_timeout(woke);
        assert_eq!(i.state(), State::Backup);
        assert_eq!(drain(&mut i), []);
        assert_eq!(i.poll_timeout(), Some(woke.saturating_add(grace)));
        // Late again for the moved deadline: no second grace.
        i.handle_timeout(woke.saturating_add(grace).saturating_add(late));
        assert_eq!(i.state(), State::Master);
    }
    // A master heard meanwhile keeps us BACKUP, and a later deadline met
    // on time is a takeover again without grace.
    let mut i = started(p.clone());
    let woke = deadline.saturating_add(Nanos::from_secs(1));
    i.handle_timeout(woke);
    let heard = woke.saturating_add(Nanos::from_millis(5));
    i.handle_advert(heard, ip(20), &advert(1, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.poll_timeout(), Some(heard.saturating_add(md)));
    i.handle_timeout(heard.saturating_add(md));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn adverts_prepared_ahead_go_out_at_their_slots_and_never_after_a_leave() {
    let mut p = params();
    p.advbase_secs = 0;
    p.advskew = 10;
    let interval = p.advert_interval();
    let md = p.master_down_interval();
    let mut i = started(p);
    i.send_ahead(Nanos::from_millis(100));
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    let actions = drain(&mut i);
    let prepared: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::PrepareAdvert(s) => Some(*s),
            _ => None,
        })
        .collect();
    // The takeover advert at once, then 100 ms of slots, 39 ms apart, each
    // with its slot's time in the counter.
    assert_eq!(sent(&actions).len(), 1);
    let at: Vec<Nanos> = prepared.iter().map(|s| s.at).collect();
    let slot = |k: u64| t.saturating_add(interval.saturating_mul(k));
    assert_eq!(at, [slot(1), slot(2), slot(3)]);
    for s in &prepared {
        assert!(auth().verify(&s.advert) && s.advert.checksum_ok());
        assert_eq!(
            embedded_millis(s.advert.counter()),
            (START_UNIX_NS + s.at.0 - START.0) / 1_000_000
        );
    }
    assert_eq!(i.poll_timeout(), Some(slot(1)));
    // Woken late, past two slots: the later goes, the schedule keeps its
    // rate and two more are prepared.
    i.handle_timeout(slot(2).saturating_add(Nanos(1_000)));
    let actions = drain(&mut i);
    assert_eq!(actions[0], Action::SendPrepared(prepared[1]));
    let more: Vec<Nanos> = actions
        .iter()
        .filter_map(|a| match a {
            Action::PrepareAdvert(s) => Some(s.at),
            _ => None,
        })
        .collect();
    assert_eq!(more, [slot(4), slot(5)]);
    assert_eq!(i.poll_timeout(), Some(slot(3)));
    // Held: every prepared advert is void before the leave advert.
    i.handle_admin(slot(3), Admin::GoBackup);
    let actions = drain(&mut i);
    let cancel = actions.iter().position(|a| *a == Action::CancelPrepared);
    let leave = actions
        .iter()
        .position(|a| matches!(a, Action::SendAdvert(h) if h.is_leave()));
    assert!(cancel.is_some() && cancel < leave, "{actions:?}");
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == Action::CancelPrepared)
            .count(),
        1
    );
}
