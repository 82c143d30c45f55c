//! Every transition of one instance (continued): link state, demotion,
//! administrative requests, the checks of received adverts, parameters, status.

mod instance_support;

use instance_support::*;

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
    // In the demote byte (OpenBSD, carpd-xdp) and in advskew (UCARP and
    // FreeBSD read only that: advskew 0 scaled into 241..=254), which also
    // sets our advert interval.
    assert_eq!((sent(&a)[0].demote, sent(&a)[0].advskew), (9, 241));
    assert_eq!(i.poll_timeout(), Some(Nanos(t2.0 + 1_941_406_250)));
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

#[test]
fn resume_does_not_preempt_within_one_master_down_interval() {
    // UCARP's SIGUSR2 with preempt on: step down, resume, and let the
    // backup that took over stay master for one master-down interval.
    let mut p = params();
    p.preempt = true;
    let (mut i, t) = master(p);
    i.handle_admin(t, Admin::GoBackup);
    i.handle_admin(t, Admin::Resume);
    drain(&mut i);
    let md = 3_000_000_000;
    // A less preferred master (advskew 100) within the interval: no preempt.
    i.handle_advert(Nanos(t.0 + md - 1), ip(20), &advert(1, 100, 0, 1))
        .unwrap();
    assert_eq!(i.state(), State::Backup);
    // Its next advert once the interval is over: preempt.
    i.handle_advert(Nanos(t.0 + md), ip(20), &advert(1, 100, 0, 2))
        .unwrap();
    assert_eq!(i.state(), State::Master);
    assert!(drain(&mut i).contains(&changed(State::Backup, State::Master, Reason::Preempt)));
}
