//! carpd-xdp against emulations of OpenBSD and FreeBSD carp(4)
//! (`tests/peers`, run in a host namespace by `tests/common/peer_ns.rs`) on a
//! bridged LAN of namespaces. Each test asks one question: does carpd-xdp
//! elect exactly one master with that peer, and does the right host take over
//! when the master goes?
//!
//! - OpenBSD sends one constant counter (its cookie) in every advert: a
//!   carpd-xdp backup must accept it for as long as the master lives, in
//!   replay modes `auto` and `compat`, and take over when it dies or bows out;
//! - FreeBSD continues from the last counter it accepted, so after taking
//!   over from carpd-xdp it sends carpd-xdp's (tagged) counters + 1;
//! - demotion: OpenBSD sends it in the demote byte, FreeBSD adds it to
//!   advskew and never reads the byte: a demoted carpd-xdp master must still
//!   lose to either backup;
//! - ties (same advbase/advskew, preempt on both sides), in both address
//!   orders: exactly one master.
//!
//! Every test uses a 19-byte password (the longest the BSDs keep) and checks
//! that no advert failed authentication on either side.

mod common;
#[path = "common/peer_ns.rs"]
mod peer_ns;
mod peers;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::cluster::{interval, Daemon, Inst, Lan};
use common::require_root;
use common::settle::{sole_holder_over, try_wait_sole_holder, wait_sole_holder};
use peer_ns::PeerHost;
use peers::{Kind, PeerConfig, PeerState};

const VHID: u8 = 12;
/// 19 bytes: the longest key `ifconfig` keeps.
const PASS: &str = "nineteen-byte-key19";
/// Slack for scheduling, `ip addr` and status polling on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);
/// How long a stable master must keep the VIP alone.
const HOLD: Duration = Duration::from_secs(12);

const _: () = assert!(PASS.len() == 19);

/// carpd-xdp instance: our VIP, the 19-byte password, replay mode `replay`.
fn inst(lan: &Lan, advskew: u8, preempt: bool, replay: &str) -> Inst {
    let mut i = Inst::new(VHID, lan.addr(VHID), advskew)
        .preempt(preempt)
        .extra(&format!("replay = \"{replay}\"\n"));
    i.password = PASS.to_string();
    i
}

/// An emulated peer on host `i`.
fn peer(lan: &Lan, kind: Kind, i: usize, advskew: u8) -> PeerConfig {
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

fn start_peer(lan: &Lan, i: usize, cfg: PeerConfig) -> PeerHost {
    PeerHost::start(lan, i, cfg, 24)
}

/// Waits until the peer is in `state`.
fn wait_peer(p: &PeerHost, state: PeerState, within: Duration) {
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
fn status(d: &Daemon) -> String {
    d.instance(VHID)
        .map_or("no status".to_string(), |v| v.to_string())
}

/// Adverts the daemon refused for a bad HMAC, in the receive path or in the
/// core.
fn auth_failures(d: &Daemon) -> u64 {
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
fn stays(
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
fn kill_daemon(lan: &Lan, d: &mut Daemon) {
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
fn peer_master_carpd_backup(tag: &str, b: u8, kind: Kind, replay: &str, bow_out: bool) {
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

#[test]
fn openbsd_master_constant_cookie_keeps_carpd_backup_in_auto_mode_until_killed() {
    if !require_root("openbsd_master_constant_cookie_keeps_carpd_backup_in_auto_mode_until_killed")
    {
        return;
    }
    peer_master_carpd_backup("ibo1", 1, Kind::OpenBsd, "auto", false);
}

#[test]
fn openbsd_master_constant_cookie_keeps_carpd_backup_in_compat_mode_until_bow_out() {
    if !require_root(
        "openbsd_master_constant_cookie_keeps_carpd_backup_in_compat_mode_until_bow_out",
    ) {
        return;
    }
    peer_master_carpd_backup("ibo2", 2, Kind::OpenBsd, "compat", true);
}

#[test]
fn freebsd_master_keeps_carpd_backup_in_auto_mode_until_killed() {
    if !require_root("freebsd_master_keeps_carpd_backup_in_auto_mode_until_killed") {
        return;
    }
    peer_master_carpd_backup("ibf1", 3, Kind::FreeBsd, "auto", false);
}

#[test]
fn freebsd_master_keeps_carpd_backup_in_compat_mode_until_killed() {
    if !require_root("freebsd_master_keeps_carpd_backup_in_compat_mode_until_killed") {
        return;
    }
    peer_master_carpd_backup("ibf2", 4, Kind::FreeBsd, "compat", false);
}

/// carpd-xdp master (advskew 0) on host 0, a `kind` backup (advskew 100,
/// preempt) on host 1: the backup accepts our adverts and stays backup; when
/// we leave (SIGTERM: leave advert) it takes over within one interval.
/// Returns the LAN, the daemon (exited) and the peer for more steps.
fn carpd_master_peer_backup(tag: &str, b: u8, kind: Kind) -> (Lan, Daemon, PeerHost) {
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

#[test]
fn carpd_master_keeps_openbsd_backup_backup_and_hands_over_on_leave() {
    if !require_root("carpd_master_keeps_openbsd_backup_backup_and_hands_over_on_leave") {
        return;
    }
    carpd_master_peer_backup("icb1", 5, Kind::OpenBsd);
}

/// FreeBSD takes over from us continuing our own counter (+1 per advert):
/// a carpd-xdp restarted with the better advskew must take the VIP back
/// (preempt) and keep it, with FreeBSD backup again.
#[test]
fn freebsd_continuing_our_counter_after_takeover_then_carpd_returns_and_preempts() {
    if !require_root(
        "freebsd_continuing_our_counter_after_takeover_then_carpd_returns_and_preempts",
    ) {
        return;
    }
    let (lan, _old, p) = carpd_master_peer_backup("icb2", 6, Kind::FreeBsd);
    // FreeBSD now sends our last counter + 1, + 2, ...
    let last_ours = p
        .heard()
        .iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[0].ip))
        .map(|h| h.header.counter())
        .max()
        .expect("FreeBSD heard us");
    assert!(
        p.stats().sent >= 1 && last_ours >> 48 == 0xCA4D,
        "our counters carry the tag: {last_ours:#x}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let theirs = p.counter();
    assert!(
        theirs > last_ours && theirs - last_ours <= 10,
        "FreeBSD must continue from our last counter {last_ours:#x}, sends {theirs:#x}"
    );
    let mut d = lan.daemon(0, "carpd2", &[inst(&lan, 0, true, "auto")]);
    d.wait_state(VHID, "MASTER");
    wait_sole_holder(&lan, lan.addr(VHID), 0, Duration::from_secs(5));
    let held = sole_holder_over(&lan, lan.addr(VHID), Duration::from_secs(8));
    assert_eq!(
        held,
        Ok(0),
        "carpd-xdp status {}; {}",
        status(&d),
        p.summary()
    );
    assert_eq!(p.state(), PeerState::Backup, "{}", p.summary());
    assert_eq!(auth_failures(&d), 0, "{}", status(&d));
}

/// A failing health check (weight 100) demotes a carpd-xdp master
/// (advskew 0) on host 0; a `kind` backup (advskew 50, preempt as given) on
/// host 1 must take the VIP and keep it, carpd-xdp staying backup.
fn demoted_carpd_master_loses_to(tag: &str, b: u8, kind: Kind, preempt: bool) {
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

#[test]
fn demoted_carpd_master_loses_to_freebsd_backup_with_preempt() {
    if !require_root("demoted_carpd_master_loses_to_freebsd_backup_with_preempt") {
        return;
    }
    demoted_carpd_master_loses_to("idf1", 7, Kind::FreeBsd, true);
}

#[test]
fn demoted_carpd_master_loses_to_openbsd_backup_without_preempt() {
    if !require_root("demoted_carpd_master_loses_to_openbsd_backup_without_preempt") {
        return;
    }
    demoted_carpd_master_loses_to("ido1", 8, Kind::OpenBsd, false);
}

/// A `kind` master (advskew 0) on host 0 is demoted by `demote`; a carpd-xdp
/// backup (advskew 50, preempt as given) on host 1 must take over and keep
/// the VIP alone.
fn demoted_peer_master_loses_to_carpd(tag: &str, b: u8, kind: Kind, demote: u8, preempt: bool) {
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

#[test]
fn demoted_freebsd_master_advskew_grows_and_carpd_preempts() {
    if !require_root("demoted_freebsd_master_advskew_grows_and_carpd_preempts") {
        return;
    }
    demoted_peer_master_loses_to_carpd("ipf1", 9, Kind::FreeBsd, 100, true);
}

#[test]
fn demoted_openbsd_master_is_taken_over_by_carpd_without_preempt() {
    if !require_root("demoted_openbsd_master_is_taken_over_by_carpd_without_preempt") {
        return;
    }
    demoted_peer_master_loses_to_carpd("ipo1", 10, Kind::OpenBsd, 1, false);
}

/// carpd-xdp and a `kind` peer with the same advbase 1 / advskew 0, preempt
/// on both, the peer on host `peer_host` (host 0 has the lower address).
///
/// With `peer_first`, the peer is master alone before carpd-xdp starts; the
/// BSDs have no address tie-break and yield on any tie, carpd-xdp prefers
/// the lower address, so the master must end up on host 0 whoever it is (a
/// peer master on host 0 is never displaced: it stays MASTER throughout).
/// Otherwise both start together and either may win. Either way: after
/// settling exactly one holds the VIP over a window, the states agree, and
/// when the master is killed the other takes over within master-down + one
/// interval.
fn tie(tag: &str, b: u8, kind: Kind, peer_host: usize, peer_first: bool) {
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
            0,
            "the lower address must be master; carpd-xdp {}; {}",
            status(&d),
            p.summary()
        );
        if peer_host == 0 {
            let states = p.states();
            assert_eq!(
                states.len(),
                1,
                "the {kind:?} master on the lower address was displaced: {states:?}; carpd-xdp {}",
                status(&d)
            );
        }
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

#[test]
fn tie_openbsd_master_on_the_lower_address_stays_master_when_carpd_joins() {
    if !require_root("tie_openbsd_master_on_the_lower_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("ito1", 11, Kind::OpenBsd, 0, true);
}

#[test]
fn tie_openbsd_master_on_the_higher_address_yields_to_carpd_joining() {
    if !require_root("tie_openbsd_master_on_the_higher_address_yields_to_carpd_joining") {
        return;
    }
    tie("ito2", 12, Kind::OpenBsd, 1, true);
}

#[test]
fn tie_openbsd_started_together_elects_one_master() {
    if !require_root("tie_openbsd_started_together_elects_one_master") {
        return;
    }
    tie("ito3", 16, Kind::OpenBsd, 1, false);
}

#[test]
fn tie_freebsd_master_on_the_lower_address_stays_master_when_carpd_joins() {
    if !require_root("tie_freebsd_master_on_the_lower_address_stays_master_when_carpd_joins") {
        return;
    }
    tie("itf1", 13, Kind::FreeBsd, 0, true);
}

#[test]
fn tie_freebsd_master_on_the_higher_address_yields_to_carpd_joining() {
    if !require_root("tie_freebsd_master_on_the_higher_address_yields_to_carpd_joining") {
        return;
    }
    tie("itf2", 14, Kind::FreeBsd, 1, true);
}

#[test]
fn tie_freebsd_started_together_elects_one_master() {
    if !require_root("tie_freebsd_started_together_elects_one_master") {
        return;
    }
    tie("itf3", 17, Kind::FreeBsd, 1, false);
}

/// The peer sees our adverts with their source MAC and address: a sanity
/// check of the harness itself, so that a silent peer cannot pass the tests
/// above for the wrong reason.
#[test]
fn emulated_peer_sends_from_its_virtual_mac_and_hears_carpd() {
    if !require_root("emulated_peer_sends_from_its_virtual_mac_and_hears_carpd") {
        return;
    }
    let lan = Lan::new("ihs1", 213, 15, 3);
    let mut d = lan.daemon(0, "carpd", &[inst(&lan, 0, true, "compat")]);
    d.wait_state(VHID, "MASTER");
    // Two peers: the FreeBSD one backup of us, the OpenBSD one hears both.
    let free = start_peer(&lan, 1, peer(&lan, Kind::FreeBsd, 1, 100));
    let open = start_peer(&lan, 2, peer(&lan, Kind::OpenBsd, 2, 200));
    std::thread::sleep(Duration::from_secs(3));
    let heard = open.heard();
    let from_carpd: Vec<_> = heard
        .iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[0].ip))
        .collect();
    assert!(from_carpd.len() >= 2, "{}", open.summary());
    assert!(
        from_carpd.iter().all(|h| h.ignored.is_none()),
        "{from_carpd:?}"
    );
    assert_eq!(
        from_carpd[0].mac, lan.hosts[0].mac,
        "carpd-xdp's frames from its own MAC"
    );
    assert_eq!(free.state(), PeerState::Backup, "{}", free.summary());
    // Kill carpd-xdp: FreeBSD (the shorter master-down) takes over, and its
    // frames come from 00:00:5e:00:01:<vhid>.
    kill_daemon(&lan, &mut d);
    wait_sole_holder(&lan, lan.addr(VHID), 1, Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(2));
    let from_free: Vec<_> = open
        .heard()
        .into_iter()
        .filter(|h| h.src == IpAddr::V4(lan.hosts[1].ip))
        .collect();
    assert!(!from_free.is_empty(), "{}", open.summary());
    assert!(
        from_free.iter().all(|h| h.mac == [0, 0, 0x5e, 0, 1, VHID]),
        "{from_free:?}"
    );
    assert_eq!(open.state(), PeerState::Backup, "{}", open.summary());
}

/// OpenBSD leaves IPv6 link-local VIPs out of the HMAC it sends (and accepts
/// either form). With a vhid holding an IPv4 VIP and a link-local one,
/// carpd-xdp must accept the adverts of an OpenBSD master (no HMAC failure,
/// at least one accepted within the first two intervals), and an OpenBSD
/// backup must accept carpd-xdp's.
#[test]
fn openbsd_hmac_without_link_local_vip_is_accepted_both_ways() {
    if !require_root("openbsd_hmac_without_link_local_vip_is_accepted_both_ways") {
        return;
    }
    let lan = Lan::new("ill1", 213, 18, 3);
    let ll: IpAddr = "fe80::12:1".parse().unwrap();
    let with_ll = |mut c: PeerConfig| {
        c.vips.push(ll);
        c
    };
    let p = start_peer(&lan, 0, with_ll(peer(&lan, Kind::OpenBsd, 0, 0)));
    wait_peer(&p, PeerState::Master, Duration::from_secs(5));
    // No srcip: a vhid with VIPs of both families sends from the IPv4
    // address and from the link-local one (see daemon_ipv6).
    let sock = lan.path("carpd.sock");
    let text = format!(
        "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nvips = [\"{}/24\", \"{ll}/64\"]\n\
         advskew = 100\npreempt = true\npassword = \"{PASS}\"\nreplay = \"compat\"\n",
        sock.display(),
        lan.addr(VHID)
    );
    let config = lan.write("carpd.toml", &text, 0o644);
    let args = ["--config".to_string(), config.display().to_string()];
    let mut d = Daemon::start(&lan, 1, "carpd", &args, &[], sock);
    d.wait_state(VHID, "BACKUP");
    std::thread::sleep(interval(1, 0) * 2 + SLACK);
    let st = d.instance(VHID).expect("status");
    assert_eq!(
        auth_failures(&d),
        0,
        "carpd-xdp refused OpenBSD's HMAC without the link-local VIP: {st}; {}",
        p.summary()
    );
    assert!(
        st["adverts_accepted"].as_u64().unwrap_or(0) >= 1,
        "no OpenBSD advert accepted: {st}; {}",
        p.summary()
    );

    // The other way: carpd-xdp master on host 1 (the OpenBSD master is
    // killed), a second OpenBSD peer as backup on host 2.
    let mut p = p;
    p.kill();
    d.wait_state(VHID, "MASTER");
    let b = start_peer(&lan, 2, with_ll(peer(&lan, Kind::OpenBsd, 2, 200)));
    std::thread::sleep(interval(1, 100) * 3);
    let s = b.stats();
    assert!(s.accepted >= 2 && s.bad_auth == 0, "{}", b.summary());
    assert_eq!(b.state(), PeerState::Backup, "{}", b.summary());
}
