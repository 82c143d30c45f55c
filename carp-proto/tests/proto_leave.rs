//! Leaving for good ([`Admin::Shutdown`]): a master's addresses go before
//! its leave advert, and the down script runs at exit only with UCARP's
//! `-z` ([`InstanceParams::down_script_at_exit`]), in any state.

mod instance_support;

use instance_support::*;

/// Parameters with (`true`) or without UCARP's `-z`.
fn with_z(z: bool) -> InstanceParams {
    let mut p = params();
    p.down_script_at_exit = z;
    p
}

/// Shuts `i` down at `t` and returns what it asks for.
fn leave(i: &mut Instance, t: Nanos) -> Vec<Action> {
    i.handle_admin(t, Admin::Shutdown);
    drain(i)
}

/// After leaving: no deadline, and nothing brings the instance back.
fn assert_stopped_for_good(mut i: Instance, t: Nanos) {
    assert_eq!(i.poll_timeout(), None);
    i.handle_link(t, true);
    i.handle_admin(t, Admin::Resume);
    i.handle_admin(t, Admin::Shutdown);
    assert_eq!(i.state(), State::Init);
    assert_eq!(i.poll_action(), None);
}

#[test]
fn master_gives_up_its_addresses_before_its_leave_advert() {
    for z in [false, true] {
        let (mut i, t) = master(with_z(z));
        let a = leave(&mut i, t);
        assert_eq!(
            a[..2],
            [
                changed(State::Master, State::Init, Reason::Shutdown),
                Action::RemoveVips,
            ],
            "-z {z}"
        );
        let leave_advert = sent(&a[2..3])[0];
        assert!(
            leave_advert.is_leave() && auth().verify(&leave_advert) && leave_advert.checksum_ok()
        );
        assert_eq!(sent(&a).len(), 1, "-z {z}: {a:?}");
        assert_stopped_for_good(i, t);
    }
}

#[test]
fn master_runs_the_down_script_at_exit_only_with_z() {
    let (mut i, t) = master(with_z(false));
    let a = leave(&mut i, t);
    assert!(
        !a.iter().any(|a| matches!(a, Action::RunScript(_))),
        "{a:?}"
    );
    let (mut i, t) = master(with_z(true));
    let a = leave(&mut i, t);
    // Last: after the leave advert, once the addresses are gone.
    assert_eq!(a.last(), Some(&Action::RunScript(Script::Down)), "{a:?}");
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::RunScript(_)))
            .count(),
        1
    );
}

#[test]
fn backup_sends_nothing_and_runs_no_script_even_with_z() {
    // UCARP: `if (sc.sc_state != BACKUP)` around the down script at exit.
    for z in [false, true] {
        let mut i = started(with_z(z));
        assert_eq!(
            leave(&mut i, START),
            [changed(State::Backup, State::Init, Reason::Shutdown)],
            "-z {z}"
        );
        assert_stopped_for_good(i, START);
    }
}

#[test]
fn init_runs_the_down_script_only_with_z() {
    for z in [false, true] {
        let mut i = started(with_z(z));
        i.handle_link(START, false);
        drain(&mut i);
        let expected = if z {
            vec![Action::RunScript(Script::Down)]
        } else {
            Vec::new()
        };
        assert_eq!(leave(&mut i, START), expected, "-z {z}");
        assert_stopped_for_good(i, START);
    }
}

#[test]
fn z_changes_nothing_before_the_exit() {
    // Giving up mastership on a link down runs the down script either way.
    for z in [false, true] {
        let (mut i, t) = master(with_z(z));
        i.handle_link(t, false);
        assert_eq!(
            drain(&mut i),
            [
                changed(State::Master, State::Init, Reason::LinkDown),
                Action::RemoveVips,
                Action::RunScript(Script::Down)
            ],
            "-z {z}"
        );
    }
}
