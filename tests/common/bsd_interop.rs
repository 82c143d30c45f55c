//! Shared steps of the namespace tests against the BSD emulations
//! (`interop_bsd`: OpenBSD, `interop_freebsd`: FreeBSD): a carpd-xdp instance
//! and an emulated peer on a bridged LAN, and the scenarios both files run
//! with their own peer. Included with
//! `#[path = "common/bsd_interop.rs"] mod bsd_interop;` by binaries that also
//! declare `mod peers;` and `peer_ns`.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::common::cluster::{interval, Daemon, Inst, Lan};
use crate::common::settle::{sole_holder_over, try_wait_sole_holder, wait_sole_holder};
use crate::peer_ns::PeerHost;
use crate::peers::{Kind, PeerConfig, PeerState};

pub const VHID: u8 = 12;
/// 19 bytes: the longest key `ifconfig` keeps.
pub const PASS: &str = "nineteen-byte-key19";
/// Slack for scheduling, `ip addr` and status polling on a loaded machine.
pub const SLACK: Duration = Duration::from_millis(500);
/// How long a stable master must keep the VIP alone.
pub const HOLD: Duration = Duration::from_secs(12);

const _: () = assert!(PASS.len() == 19);

/// carpd-xdp instance: our VIP, the 19-byte password, replay mode `replay`.
pub fn inst(lan: &Lan, advskew: u8, preempt: bool, replay: &str) -> Inst {
    let mut i = Inst::new(VHID, lan.addr(VHID), advskew)
        .preempt(preempt)
        .extra(&format!("replay = \"{replay}\"\n"));
    i.password = PASS.to_string();
    i
}

/// An emulated peer on host `i`.
pub fn peer(lan: &Lan, kind: Kind, i: usize, advskew: u8) -> PeerConfig {
    let mut c = PeerConfig::new(
        kind,
        VHID,
        advskew,
        PASS,
        IpAddr::V4(lan.addr(VHID)),
        IpAddr::V4(lan.hosts[i].ip),
    );
    c.seed = 0x5eed_0000 + u64::from(lan.hosts[i].ip.octets()[2]);
    c
}

pub fn start_peer(lan: &Lan, i: usize, cfg: PeerConfig) -> PeerHost {
    PeerHost::start(lan, i, cfg, 24)
}

/// Waits until the peer is in `state`.
pub fn wait_peer(p: &PeerHost, state: PeerState, within: Duration) {
    let start = Instant::now();
    while p.state() != state {
        assert!(
            start.elapsed() < within,
            "peer not {state:?} within {within:?}: {}",
            p.summary()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon's status of our instance, for messages.
pub fn status(d: &Daemon) -> String {
    d.instance(VHID)
        .map_or("no status".to_string(), |v| v.to_string())
}

/// Adverts the daemon refused for a bad HMAC, in the receive path or in the
/// core.
pub fn auth_failures(d: &Daemon) -> u64 {
    let Some(st) = d.status() else { return 0 };
    let xdp = st["counters"]["hmac"].as_u64().unwrap_or(0);
    let core = d
        .instance(VHID)
        .and_then(|i| i["rejects"]["auth"].as_u64())
        .unwrap_or(0);
    xdp + core
}

/// For `window`, the VIP stays on `host` alone and `also` holds; a failure
/// message ends with `context()`.
pub fn stays(
    lan: &Lan,
    host: usize,
    window: Duration,
    mut also: impl FnMut() -> Result<(), String>,
    context: impl Fn() -> String,
) {
    let start = Instant::now();
    while start.elapsed() < window {
        let h = lan.holders(lan.addr(VHID));
        assert_eq!(
            h,
            [host],
            "after {:?} of {window:?} the VIP is on hosts {h:?}, not on host {host} alone; {}",
            start.elapsed(),
            context()
        );
        if let Err(e) = also() {
            panic!("after {:?} of {window:?}: {e}", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL of the daemon; the dead host's VIP is removed by hand, as it would
/// vanish with a host that is gone.
pub fn kill_daemon(lan: &Lan, d: &mut Daemon) {
    d.proc.kill9();
    let vip = format!("{}/24", lan.addr(VHID));
    let _ = lan.hosts[d.host]
        .ns
        .command("ip")
        .args(["addr", "del", &vip, "dev", "eth0"])
        .output();
}

/// A master emulation of `kind` on host 0, a carpd-xdp backup (advskew 100,
/// replay mode `replay`) on host 1: the backup stays backup for [`HOLD`]
/// while the master lives, then takes over when it is killed (`bow_out`
/// false: within master-down + one interval) or bows out (`bow_out` true,
/// OpenBSD only: within one interval).
pub fn peer_master_carpd_backup(tag: &str, b: u8, kind: Kind, replay: &str, bow_out: bool) {
    let lan = Lan::new(tag, 213, b, 2);
    let mut p = start_peer(&lan, 0, peer(&lan, kind, 0, 0));
    wait_peer(&p, PeerState::Master, Duration::from_secs(5));
    let ours = inst(&lan, 100, true, replay);
    let mut d = lan.daemon(1, "carpd", std::slice::from_ref(&ours));
    d.wait_state(VHID, "BACKUP");
    stays(
        &lan,
        0,
        HOLD,
        || match d.state(VHID).as_deref() {
            Some("BACKUP") | None => Ok(()),
            other => Err(format!(
                "carpd-xdp is {other:?} under a live {kind:?} master: {}",
                status(&d)
            )),
        },
        || format!("carpd-xdp {}; {}", status(&d), p.summary()),
    );
    let st = d.instance(VHID).expect("status");
    assert!(st["adverts_accepted"].as_u64().unwrap_or(0) >= 2, "{st}");
    assert_eq!(
        auth_failures(&d),
        0,
        "{kind:?} adverts failed authentication: {st}"
    );
    assert_eq!(p.state(), PeerState::Master, "{}", p.summary());

    let fault = Instant::now();
    let bound = if bow_out {
        p.shutdown();
        interval(1, 100) + SLACK
    } else {
        p.kill();
        ours.master_down() + ours.interval() + SLACK
    };
    let took = wait_sole_holder(&lan, lan.addr(VHID), 1, bound);
    eprintln!("carpd-xdp took over {took:?} after the {kind:?} master went");
    d.wait_state(VHID, "MASTER");
    assert!(
        fault.elapsed() < bound + SLACK,
        "took {:?}",
        fault.elapsed()
    );
}

/// carpd-xdp master (advskew 0) on host 0, a `kind` backup (advskew 100,
/// preempt) on host 1: the backup accepts our adverts and stays backup; when
/// we leave (SIGTERM: leave advert) it takes over within one interval.
/// Returns the LAN, the daemon (exited) and the peer for more steps.
pub fn carpd_master_peer_backup(tag: &str, b: u8, kind: Kind) -> (Lan, Daemon, PeerHost) {
    let lan = Lan::new(tag, 213, b, 2);
    let ours = inst(&lan, 0, true, "auto");
    let mut d = lan.daemon(0, "carpd", std::slice::from_ref(&ours));
    d.wait_state(VHID, "MASTER");
    let p = start_peer(&lan, 1, peer(&lan, kind, 1, 100).preempt(true));
    stays(
        &lan,
        0,
        HOLD,
        || {
            if p.state() != PeerState::Backup {
                return Err(format!("the {kind:?} peer left BACKUP: {}", p.summary()));
            }
            match d.state(VHID).as_deref() {
                Some("MASTER") => Ok(()),
                other => Err(format!("carpd-xdp is {other:?}: {}", status(&d))),
            }
        },
        || format!("carpd-xdp {}; {}", status(&d), p.summary()),
    );
    let stats = p.stats();
    assert!(stats.accepted >= 10, "{}", p.summary());
    assert_eq!(stats.bad_auth, 0, "{}", p.summary());

    d.signal(libc::SIGTERM);
    let left = Instant::now();
    let took = wait_sole_holder(&lan, lan.addr(VHID), 1, interval(1, 100) + SLACK);
    eprintln!("the {kind:?} peer took over {took:?} after our leave advert");
    assert_eq!(p.state(), PeerState::Master, "{}", p.summary());
    d.proc
        .wait_exit(Duration::from_secs(10))
        .expect("carpd-xdp exits after SIGTERM");
    assert!(left.elapsed() < Duration::from_secs(11));
    (lan, d, p)
}

/// A failing health check (weight 100) demotes a carpd-xdp master
/// (advskew 0) on host 0; a `kind` backup (advskew 50, preempt as given) on
/// host 1 must take the VIP and keep it, carpd-xdp staying backup.
pub fn demoted_carpd_master_loses_to(tag: &str, b: u8, kind: Kind, preempt: bool) {
    let lan = Lan::new(tag, 213, b, 2);
    let flag = lan.write("service-is-up", "", 0o644);
    let check = format!(
        "\n[[instance.health_check]]\ncommand = [\"/usr/bin/test\", \"-f\", \"{}\"]\n\
         interval_secs = 1\ntimeout_secs = 1\nweight = 100\n",
        flag.display()
    );
    let mut d = lan.daemon(0, "carpd", &[inst(&lan, 0, true, "auto").extra(&check)]);
    d.wait_state(VHID, "MASTER");
    let p = start_peer(&lan, 1, peer(&lan, kind, 1, 50).preempt(preempt));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(2)),
        Ok(0)
    );
    assert_eq!(p.state(), PeerState::Backup, "{}", p.summary());

    std::fs::remove_file(&flag).unwrap();
    let fault = Instant::now();
    // Two check periods to notice, then one advert and the peer's decision.
    let bound = Duration::from_secs(2) + interval(1, 0) + SLACK + SLACK;
    let took = try_wait_sole_holder(&lan, lan.addr(VHID), 1, bound);
    let heard: Vec<(u8, u8, u8)> = p
        .heard()
        .iter()
        .rev()
        .take(3)
        .map(|h| (h.header.advbase, h.header.advskew, h.header.demote))
        .collect();
    if let Err(e) = took {
        panic!(
            "the {kind:?} backup (advskew 50, preempt {preempt}) did not take over from the \
             demoted carpd-xdp master: {e}; last adverts it heard (advbase, advskew, demote): \
             {heard:?}; carpd-xdp {}; {}",
            status(&d),
            p.summary()
        );
    }
    eprintln!(
        "took over {:?} after the check started failing",
        fault.elapsed()
    );
    let held = sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(6));
    assert_eq!(held, Ok(1), "carpd-xdp {}; {}", status(&d), p.summary());
    assert_eq!(d.state(VHID).as_deref(), Some("BACKUP"), "{}", status(&d));
    assert_eq!(p.state(), PeerState::Master, "{}", p.summary());
}

/// A `kind` master (advskew 0) on host 0 is demoted by `demote`; a carpd-xdp
/// backup (advskew 50, preempt as given) on host 1 must take over and keep
/// the VIP alone.
pub fn demoted_peer_master_loses_to_carpd(tag: &str, b: u8, kind: Kind, demote: u8, preempt: bool) {
    let lan = Lan::new(tag, 213, b, 2);
    let p = start_peer(&lan, 0, peer(&lan, kind, 0, 0));
    wait_peer(&p, PeerState::Master, Duration::from_secs(5));
    let mut d = lan.daemon(1, "carpd", &[inst(&lan, 50, preempt, "auto")]);
    d.wait_state(VHID, "BACKUP");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        d.state(VHID).as_deref(),
        Some("BACKUP"),
        "carpd-xdp before the demotion: {}",
        status(&d)
    );
    p.set_demote(demote);
    let took = try_wait_sole_holder(&lan, lan.addr(VHID), 1, interval(1, 0) + SLACK)
        .unwrap_or_else(|e| {
            panic!(
                "carpd-xdp (advskew 50, preempt {preempt}) did not take over from the {kind:?} \
                 master demoted by {demote}: {e}; carpd-xdp {}; {}",
                status(&d),
                p.summary()
            )
        });
    eprintln!("carpd-xdp took over {took:?} after the demotion");
    let held = sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(6));
    assert_eq!(held, Ok(1), "carpd-xdp {}; {}", status(&d), p.summary());
    assert_eq!(p.state(), PeerState::Backup, "{}", p.summary());
    assert_eq!(p.stats().bad_auth, 0, "{}", p.summary());
}

/// carpd-xdp and a `kind` peer with the same advbase 1 / advskew 0, preempt
/// on both, the peer on host `peer_host` (host 0 has the lower address).
///
/// With `peer_first`, the peer is master alone before carpd-xdp starts. No
/// implementation preempts a master of equal rank (UCARP, OpenBSD and FreeBSD
/// preempt only a slower one, and so does carpd-xdp), so the peer must stay
/// MASTER throughout, whatever the addresses, and carpd-xdp BACKUP.
/// Otherwise both start together and either may win. Either way: after
/// settling exactly one holds the VIP over a window, the states agree, and
/// when the master is killed the other takes over within master-down + one
/// interval.
pub fn tie(tag: &str, b: u8, kind: Kind, peer_host: usize, peer_first: bool) {
    let lan = Lan::new(tag, 213, b, 2);
    let carpd_host = 1 - peer_host;
    let ours = inst(&lan, 0, true, "auto");
    let peer_cfg = peer(&lan, kind, peer_host, 0).preempt(true);
    let (mut d, mut p) = if peer_first {
        let p = start_peer(&lan, peer_host, peer_cfg);
        wait_peer(&p, PeerState::Master, Duration::from_secs(5));
        (
            lan.daemon(carpd_host, "carpd", std::slice::from_ref(&ours)),
            p,
        )
    } else {
        let d = lan.daemon(carpd_host, "carpd", std::slice::from_ref(&ours));
        (d, start_peer(&lan, peer_host, peer_cfg))
    };
    // Two master-down intervals and one more interval to settle.
    std::thread::sleep(ours.master_down() * 2 + ours.interval());
    let holder = sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(6))
        .unwrap_or_else(|e| panic!("{e}; carpd-xdp {}; {}", status(&d), p.summary()));
    eprintln!(
        "tie with {kind:?} (peer {}, carpd-xdp {}, peer first {peer_first}): host {holder} is master",
        lan.hosts[peer_host].ip, lan.hosts[carpd_host].ip
    );
    if peer_first {
        assert_eq!(
            holder,
            peer_host,
            "a joining backup of equal rank must not preempt; carpd-xdp {}; {}",
            status(&d),
            p.summary()
        );
        let states = p.states();
        assert_eq!(
            states.len(),
            1,
            "the {kind:?} master was displaced: {states:?}; carpd-xdp {}",
            status(&d)
        );
    }
    let carpd_master = d.state(VHID).as_deref() == Some("MASTER");
    assert_eq!(
        carpd_master,
        holder == carpd_host,
        "carpd-xdp's state disagrees with the VIP: {}",
        status(&d)
    );
    assert_eq!(
        p.state() == PeerState::Master,
        holder == peer_host,
        "{}",
        p.summary()
    );
    let bound = ours.master_down() + ours.interval() + SLACK;
    if holder == carpd_host {
        kill_daemon(&lan, &mut d);
        wait_sole_holder(&lan, lan.addr(VHID), peer_host, bound);
    } else {
        p.kill();
        wait_sole_holder(&lan, lan.addr(VHID), carpd_host, bound);
        d.wait_state(VHID, "MASTER");
    }
}
