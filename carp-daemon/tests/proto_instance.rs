//! Every transition of `proto::Instance` and every timer formula, in exact
//! nanoseconds.

use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_daemon::proto::auth::Authenticator;
use carp_daemon::proto::counter::{embedded_millis, is_tagged};
use carp_daemon::proto::timers::{advert_interval, master_down_interval};
use carp_daemon::proto::{
    Action, Admin, Instance, InstanceParams, MasterDownRule, Nanos, ParamsError, Password, Reason,
    Reject, ReplayError, ReplayMode, Script, State,
};

const START: Nanos = Nanos(1_000_000_000_000);
const START_UNIX_NS: u64 = 1_763_000_000_000_000_000;
const VHID: u8 = 5;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn vips() -> Vec<IpAddr> {
    vec![ip(100), "2001:db8::100".parse().unwrap()]
}

fn params() -> InstanceParams {
    InstanceParams::new(
        VHID,
        Password::new(b"s3cret").unwrap(),
        vips(),
        vec![ip(10)],
    )
}

fn auth() -> Authenticator {
    Authenticator::new(Password::new(b"s3cret").unwrap(), &vips())
}

/// A valid advert from a peer.
fn advert(advbase: u8, advskew: u8, demote: u8, counter: u64) -> CarpHeader {
    let mut h = CarpHeader::advertisement(VHID, advbase, advskew, demote, counter);
    auth().seal(&mut h);
    h
}

fn drain(i: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| i.poll_action()).collect()
}

fn started(p: InstanceParams) -> Instance {
    let mut i = Instance::new(p, START, START_UNIX_NS).unwrap();
    drain(&mut i);
    i
}

/// An instance that has just become master by master-down expiry.
fn master(p: InstanceParams) -> (Instance, Nanos) {
    let md = p.master_down_interval();
    let mut i = started(p);
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    assert_eq!(i.state(), State::Master);
    drain(&mut i);
    (i, t)
}

fn changed(from: State, to: State, reason: Reason) -> Action {
    Action::StateChanged { from, to, reason }
}

fn sent(actions: &[Action]) -> Vec<CarpHeader> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(h) => Some(*h),
            _ => None,
        })
        .collect()
}

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
fn neutral_startup_runs_no_script() {
    let mut p = params();
    p.neutral = true;
    let mut i = Instance::new(p, START, START_UNIX_NS).unwrap();
    assert_eq!(
        drain(&mut i),
        vec![changed(State::Init, State::Backup, Reason::Startup)]
    );
}

#[test]
fn master_down_expiry_takes_over_with_complete_advert() {
    let mut p = params();
    p.advskew = 100;
    p.demote = 4;
    let mut i = started(p);
    let md = Nanos(3_390_625_000);
    i.handle_timeout(Nanos(START.0 + md.0 - 1));
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.poll_action(), None);
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    let actions = drain(&mut i);
    let h = sent(&actions)[0];
    assert_eq!(
        actions,
        vec![
            changed(State::Backup, State::Master, Reason::MasterDown),
            Action::AddVips,
            Action::SendAdvert(h),
            Action::Announce,
            Action::RunScript(Script::Up),
        ]
    );
    assert_eq!((h.vhid, h.advbase, h.advskew, h.demote), (VHID, 1, 100, 4));
    assert!(h.checksum_ok() && auth().verify(&h));
    assert!(is_tagged(h.counter()));
    assert_eq!(
        embedded_millis(h.counter()),
        (START_UNIX_NS + md.0) / 1_000_000
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(t.0 + 1_390_625_000)));
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
fn backup_preempts_on_address_tie_break() {
    let mut p = params();
    p.preempt = true;
    let mut i = started(p);
    i.handle_advert(START, ip(9), &advert(1, 0, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    i.handle_advert(START, ip(11), &advert(1, 0, 0, 2)).unwrap();
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

#[test]
fn link_down_and_up() {
    let (mut i, t) = master(params());
    i.handle_link(t, false);
    assert_eq!(
        drain(&mut i),
        vec![
            changed(State::Master, State::Init, Reason::LinkDown),
            Action::RemoveVips,
            Action::RunScript(Script::Down)
        ]
    );
    assert_eq!(i.poll_timeout(), None);
    assert_eq!(
        i.handle_advert(t, ip(20), &advert(1, 0, 0, 1)),
        Err(Reject::NotRunning {
            src: ip(20),
            state: State::Init
        })
    );
    let t2 = Nanos(t.0 + 100);
    i.handle_link(t2, true);
    assert_eq!(
        drain(&mut i),
        vec![changed(State::Init, State::Backup, Reason::LinkUp)]
    );
    assert_eq!(i.poll_timeout(), Some(Nanos(t2.0 + 3_000_000_000)));
    // Backup, link down: INIT without scripts.
    i.handle_link(t2, false);
    assert_eq!(
        drain(&mut i),
        vec![changed(State::Backup, State::Init, Reason::LinkDown)]
    );
}

#[test]
fn demote_change_is_advertised_at_once_by_a_master() {
    let (mut i, t) = master(params());
    let t2 = Nanos(t.0 + 300);
    i.set_demote(t2, 9);
    let a = drain(&mut i);
    assert_eq!(sent(&a)[0].demote, 9);
    assert_eq!(i.poll_timeout(), Some(Nanos(t2.0 + 1_000_000_000)));
    i.set_demote(t2, 9);
    assert_eq!(i.poll_action(), None);
    assert_eq!(i.status().demote, 9);
}

#[test]
fn go_backup_holds_until_resume() {
    let (mut i, t) = master(params());
    i.handle_admin(t, Admin::GoBackup);
    let a = drain(&mut i);
    let h = sent(&a)[0];
    assert!(h.is_leave() && auth().verify(&h) && h.checksum_ok());
    assert_eq!(
        a[1..],
        [
            changed(State::Master, State::Backup, Reason::AdminBackup),
            Action::RemoveVips,
            Action::RunScript(Script::Down)
        ]
    );
    assert_eq!(i.poll_timeout(), None);
    assert!(i.status().held);
    // Held: even a leave advert does not make us take over.
    i.handle_advert(t, ip(20), &advert(255, 255, 0, 1)).unwrap();
    assert_eq!(i.state(), State::Backup);
    let t2 = Nanos(t.0 + 50);
    i.handle_admin(t2, Admin::Resume);
    assert_eq!(i.poll_timeout(), Some(Nanos(t2.0 + 3_000_000_000)));
    i.handle_timeout(Nanos(t2.0 + 3_000_000_000));
    assert_eq!(i.state(), State::Master);
}

#[test]
fn shutdown_as_master_sends_leave_and_stops_for_good() {
    let (mut i, t) = master(params());
    i.handle_admin(t, Admin::Shutdown);
    let a = drain(&mut i);
    assert!(sent(&a)[0].is_leave());
    assert_eq!(
        a[1..],
        [
            changed(State::Master, State::Init, Reason::Shutdown),
            Action::RemoveVips,
            Action::RunScript(Script::Down)
        ]
    );
    assert_eq!(i.poll_timeout(), None);
    i.handle_link(t, true);
    i.handle_admin(t, Admin::Resume);
    assert_eq!(i.state(), State::Init);
    assert_eq!(i.poll_action(), None);
}

#[test]
fn shutdown_as_backup_sends_nothing() {
    let mut i = started(params());
    i.handle_admin(START, Admin::Shutdown);
    assert_eq!(
        drain(&mut i),
        vec![changed(State::Backup, State::Init, Reason::Shutdown)]
    );
}

#[test]
fn every_cheap_check_rejects_and_counts() {
    let mut i = started(params());
    let good = advert(1, 0, 0, 1);
    let mut bad_version = good;
    bad_version.version_type = 0x31;
    bad_version.seal_checksum();
    let mut bad_type = good;
    bad_type.version_type = 0x22;
    bad_type.seal_checksum();
    let mut bad_authlen = good;
    bad_authlen.authlen = 6;
    bad_authlen.seal_checksum();
    let mut other_vhid = good;
    other_vhid.vhid = 6;
    other_vhid.seal_checksum();
    let mut bad_sum = good;
    bad_sum.checksum[0] ^= 1;
    let mut bad_hmac = good;
    bad_hmac.hmac[19] ^= 1;
    bad_hmac.seal_checksum();
    let cases: Vec<(CarpHeader, IpAddr, &str)> = vec![
        (bad_version, ip(20), "version"),
        (bad_type, ip(20), "type"),
        (bad_authlen, ip(20), "authlen"),
        (other_vhid, ip(20), "vhid"),
        (bad_sum, ip(20), "checksum"),
        (good, ip(10), "own"),
        (bad_hmac, ip(20), "auth"),
    ];
    for (h, src, name) in &cases {
        let r = i.handle_advert(START, *src, h).unwrap_err();
        assert_eq!(r.name(), *name, "{r}");
        assert_eq!(i.status().rejects.get(name), 1);
    }
    assert_eq!(i.status().rejects.total(), cases.len() as u64);
    assert_eq!(i.status().adverts_accepted, 0);
    assert_eq!(i.poll_action(), None);
    assert_eq!(
        Reject::Vhid {
            src: ip(20),
            vhid: 6,
            expected: 5
        }
        .to_string(),
        "advert from 192.0.2.20 is for vhid 6, expected 5"
    );
}

#[test]
fn replayed_advert_changes_nothing_in_strict_mode() {
    let mut p = params();
    p.replay_mode = ReplayMode::Strict;
    let mut i = started(p);
    let h = advert(1, 0, 0, 77);
    i.handle_advert(START, ip(20), &h).unwrap();
    let deadline = i.poll_timeout();
    let later = Nanos(START.0 + 2_000_000_000);
    assert_eq!(
        i.handle_advert(later, ip(20), &h),
        Err(Reject::Replay {
            src: ip(20),
            source: ReplayError::Stale {
                counter: 77,
                last: 77
            }
        })
    );
    assert_eq!(i.poll_timeout(), deadline);
    assert_eq!(i.status().rejects.get("replay-stale"), 1);
}

#[test]
fn parameters_are_validated() {
    let check = |f: &dyn Fn(&mut InstanceParams)| {
        let mut p = params();
        f(&mut p);
        Instance::new(p, START, START_UNIX_NS).err()
    };
    assert_eq!(check(&|p| p.vhid = 0), Some(ParamsError::Vhid { vhid: 0 }));
    assert_eq!(
        check(&|p| p.advskew = 255),
        Some(ParamsError::Advskew { advskew: 255 })
    );
    assert_eq!(
        check(&|p| p.deadratio = 0),
        Some(ParamsError::Deadratio { deadratio: 0 })
    );
    assert_eq!(
        check(&|p| p.deadratio = 1),
        Some(ParamsError::MasterDownTooShort {
            master_down: Nanos(1_000_000_000),
            interval: Nanos(1_000_000_000)
        })
    );
    assert_eq!(
        check(&|p| p.vips.clear()),
        Some(ParamsError::NoVips { vhid: VHID })
    );
    assert_eq!(
        check(&|p| p.source_addrs.clear()),
        Some(ParamsError::NoSourceAddress { vhid: VHID })
    );
    assert_eq!(
        check(&|p| p.announce_every_adverts = 0),
        Some(ParamsError::AnnouncePeriod { adverts: 0 })
    );
    assert_eq!(
        check(&|p| p.replay_window = Some(Nanos(10))),
        Some(ParamsError::ReplayWindow { window: Nanos(10) })
    );
    assert_eq!(check(&|p| p.advbase_secs = 0), None);
    assert_eq!(check(&|p| p.advbase_secs = 255), None);
    assert_eq!(
        ParamsError::Advskew { advskew: 255 }.to_string(),
        "advskew 255 is out of range 0..=254"
    );
}

#[test]
fn status_names_the_master() {
    let (i, _) = master(params());
    let s = i.status();
    assert_eq!(
        (s.state, s.master, s.transitions),
        (State::Master, Some(ip(10)), 2)
    );
    assert_eq!(s.adverts_sent, 1);
    assert!(s.last_counter_sent.is_some());
}
