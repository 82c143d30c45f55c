//! UCARP's signals and `-S`: SIGUSR1 logs every instance's state, SIGUSR2
//! steps down (the backup takes over at once) and then takes part again (a
//! preferred host with preempt takes the VIP back), and an instance that
//! ignores link state keeps its VIP when the carrier goes.

mod common;

use common::cluster::{eventually, Daemon, Inst, Lan};
use common::require_root;

const VHID: u8 = 50;

fn pair(tag: &str, net: u8, extra0: &str) -> (Lan, Daemon, Daemon) {
    let lan = Lan::new(tag, 217, net, 2);
    let vip = lan.addr(VHID);
    let mut d0 = lan.daemon(0, "d0", &[Inst::new(VHID, vip, 0).extra(extra0)]);
    let mut d1 = lan.daemon(1, "d1", &[Inst::new(VHID, vip, 100)]);
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    eventually("the VIP on host 0 only", || {
        (lan.holders(vip) == [0]).then_some(())
    });
    (lan, d0, d1)
}

#[test]
fn sigusr1_logs_state_and_sigusr2_steps_down_then_resumes() {
    if !require_root("sigusr1_logs_state_and_sigusr2_steps_down_then_resumes") {
        return;
    }
    let (lan, mut d0, mut d1) = pair("csig", 1, "");
    d0.signal(libc::SIGUSR1);
    eventually("SIGUSR1 logs the state", || {
        let log = d0.proc.stderr_text();
        (log.contains("state Master") && log.contains("receive path:")).then_some(())
    });
    let vip = lan.addr(VHID);
    d0.signal(libc::SIGUSR2);
    // The leave advert hands over at once, then host 0 (preferred, preempt)
    // takes the VIP back once it takes part again.
    d1.wait_state(VHID, "MASTER");
    eventually("the VIP on host 1", || {
        (lan.holders(vip) == [1]).then_some(())
    });
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    eventually("the VIP back on host 0 only", || {
        (lan.holders(vip) == [0]).then_some(())
    });
}

#[test]
fn ignoring_link_state_keeps_the_master_on_carrier_loss() {
    if !require_root("ignoring_link_state_keeps_the_master_on_carrier_loss") {
        return;
    }
    let (lan, d0, mut d1) = pair("cifs", 2, "ignore_ifstate = true\n");
    let vip = lan.addr(VHID);
    lan.cut(0);
    // The backup no longer hears host 0 and takes over; host 0, ignoring
    // the carrier, stays master and keeps its VIP (UCARP's -S).
    d1.wait_state(VHID, "MASTER");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        d0.state(VHID).as_deref(),
        Some("MASTER"),
        "host 0 must ignore carrier loss"
    );
    assert!(lan.holders(vip).contains(&0), "host 0 keeps its VIP");
}
