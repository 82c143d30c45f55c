//! carpd-xdp against the real UCARP 1.5 (`ucarp`, Debian package) on a
//! bridged LAN of namespaces: exactly one of them must hold the VIP once
//! they have settled, judged over a window of samples, and the other must
//! take over when that one is killed.
//!
//! - ties (advbase 1, advskew 0 on both, both with preempt): UCARP breaks a
//!   tie by comparing `ip_src.s_addr` as a host-order integer (on x86 the last
//!   octet weighs most), carpd-xdp by the big-endian address. Layouts where
//!   the two orders disagree, in a /16, both start orders; plus a layout
//!   where they agree as a control;
//! - unequal advskew, both start orders: the lower advskew is master;
//! - a carpd-xdp master demoted by a failing health check must give the VIP
//!   to a UCARP backup with `--preempt` (UCARP never reads the demote byte).
//!
//! - the UCARP emulation of `tests/peers` against the real UCARP: when both
//!   are masters at once with equal intervals, the one the real UCARP's
//!   host-order compare prefers must win, in both layouts (a check that the
//!   emulation used by `proto_peers_sim` is faithful).
//!
//! Every test uses a 19-byte password, the longest UCARP accepts.

mod common;
#[path = "common/peer_ns.rs"]
mod peer_ns;
mod peers;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::cluster::{self, interval, master_down, ucarp, Daemon, Inst, Lan, Proc};
use common::require_root;
use common::settle::{sole_holder_over, wait_sole_holder};
use peer_ns::PeerHost;
use peers::{ucarp_lower_addr, Kind, PeerConfig, PeerState};

const VHID: u8 = 33;
/// 19 bytes: the longest password UCARP accepts.
const PASS: &str = "ucarp-nineteen-pw19";
/// Slack for scheduling, scripts and status polling on a loaded machine.
const SLACK: Duration = Duration::from_millis(500);

const _: () = assert!(PASS.len() == 19);

/// Which side starts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// carpd-xdp becomes master alone, then UCARP starts.
    CarpdFirst,
    /// UCARP becomes master alone, then carpd-xdp starts.
    UcarpFirst,
}

fn ucarp_args(lan: &Lan, advskew: u8, extra: &[&str]) -> Vec<String> {
    // SIGTERM runs the down script (the VIP goes) and exits without a
    // further advert: a kill as far as the protocol can tell.
    let always = ["--shutdown", "--preempt"];
    let extra: Vec<&str> = always.iter().chain(extra).copied().collect();
    cluster::ucarp_args(lan, VHID, PASS, advskew, &extra)
}

fn inst(lan: &Lan, advskew: u8) -> Inst {
    let mut i = Inst::new(VHID, lan.addr(VHID), advskew);
    i.password = PASS.to_string();
    i
}

fn status(d: &Daemon) -> String {
    d.instance(VHID)
        .map_or("no status".to_string(), |v| v.to_string())
}

fn ucarp_log(u: &Proc) -> String {
    let err = u.stderr_text();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("state") || l.contains("digest") || l.contains("master"))
        .collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// Starts both in `order` on `carpd_host` / `ucarp_host`, lets them settle,
/// checks that exactly one holds the VIP over a window (`expect`: which one,
/// when the protocol decides it), then kills that one and checks the other
/// takes over in time.
fn pair(
    lan: &Lan,
    carpd_host: usize,
    ucarp_host: usize,
    carpd_skew: u8,
    ucarp_skew: u8,
    order: Order,
    expect: Option<usize>,
) {
    let vip = lan.addr(VHID);
    let ours = inst(lan, carpd_skew);
    let start_carpd = || lan.daemon(carpd_host, "carpd", std::slice::from_ref(&ours));
    let start_ucarp = || ucarp(lan, ucarp_host, "ucarp", &ucarp_args(lan, ucarp_skew, &[]));
    let (mut d, mut u) = match order {
        Order::CarpdFirst => {
            let mut d = start_carpd();
            d.wait_state(VHID, "MASTER");
            (d, start_ucarp())
        }
        Order::UcarpFirst => {
            let u = start_ucarp();
            wait_sole_holder(lan, vip, ucarp_host, Duration::from_secs(10));
            (start_carpd(), u)
        }
    };
    // Two master-down intervals of the slower side.
    let settle = master_down(1, carpd_skew.max(ucarp_skew), 3) * 2;
    std::thread::sleep(settle);
    let holder = sole_holder_over(lan, vip, Duration::from_secs(5)).unwrap_or_else(|e| {
        panic!(
            "{e} (carpd-xdp on host {carpd_host} {}, UCARP on host {ucarp_host} {}); \
             carpd-xdp {}; UCARP: {}",
            lan.hosts[carpd_host].ip,
            lan.hosts[ucarp_host].ip,
            status(&d),
            ucarp_log(&u)
        )
    });
    eprintln!(
        "carpd-xdp {} (advskew {carpd_skew}) vs UCARP {} (advskew {ucarp_skew}), {order:?}: \
         host {holder} is master",
        lan.hosts[carpd_host].ip, lan.hosts[ucarp_host].ip
    );
    if let Some(want) = expect {
        assert_eq!(
            holder,
            want,
            "the wrong host is master; carpd-xdp {}",
            status(&d)
        );
    }
    let carpd_state = d.state(VHID);
    assert_eq!(
        carpd_state.as_deref() == Some("MASTER"),
        holder == carpd_host,
        "carpd-xdp's state {carpd_state:?} disagrees with the VIP on host {holder}"
    );
    assert!(
        !u.stderr_text().contains("Bad digest"),
        "UCARP rejected our adverts: {}",
        ucarp_log(&u)
    );

    if holder == carpd_host {
        // Killed, and the dead host's VIP gone with it.
        d.proc.kill9();
        let _ = lan.hosts[carpd_host]
            .ns
            .command("ip")
            .args(["addr", "del", &format!("{vip}/24"), "dev", "eth0"])
            .output();
        // UCARP notices master-down only when its poll wakes: up to one
        // interval late.
        let bound = master_down(1, ucarp_skew, 3) + interval(1, ucarp_skew) + SLACK;
        let took = wait_sole_holder(lan, vip, ucarp_host, bound);
        eprintln!("UCARP took over {took:?} after carpd-xdp was killed");
    } else {
        u.signal(libc::SIGTERM);
        u.wait_exit(Duration::from_secs(10))
            .expect("UCARP exits on SIGTERM");
        let bound = ours.master_down() + ours.interval() + SLACK;
        let took = wait_sole_holder(lan, vip, carpd_host, bound);
        eprintln!("carpd-xdp took over {took:?} after UCARP stopped");
        d.wait_state(VHID, "MASTER");
    }
}

/// A /16 LAN with carpd-xdp on host 0 at `carpd` and UCARP on host 1 at
/// `ucarp`; the client sits in carpd-xdp's /24.
fn lan16(tag: &str, carpd: [u8; 4], ucarp: [u8; 4]) -> Lan {
    Lan::with_addrs(tag, &[Ipv4Addr::from(carpd), Ipv4Addr::from(ucarp)], 16)
}

/// True when UCARP (little-endian host order) and carpd-xdp (big-endian)
/// disagree about which of `a` and `b` is lower.
fn orders_disagree(a: [u8; 4], b: [u8; 4]) -> bool {
    (u32::from_le_bytes(a) < u32::from_le_bytes(b))
        != (u32::from_be_bytes(a) < u32::from_be_bytes(b))
}

/// Equal priorities in an address layout: exactly one master.
fn tie(tag: &str, carpd: [u8; 4], ucarp: [u8; 4], disagree: bool, order: Order) {
    assert_eq!(
        orders_disagree(carpd, ucarp),
        disagree,
        "layout {carpd:?} / {ucarp:?}"
    );
    let lan = lan16(tag, carpd, ucarp);
    pair(&lan, 0, 1, 0, 0, order, None);
}

// The measured layout: carpd-xdp thinks it wins (10.99.1.2 < 10.99.2.1 as
// big-endian numbers), UCARP thinks it wins (10.99.2.1 < 10.99.1.2 with the
// last octet weighing most).

#[test]
fn tie_carpd_10_99_1_2_ucarp_10_99_2_1_carpd_first() {
    if !require_root("tie_carpd_10_99_1_2_ucarp_10_99_2_1_carpd_first") {
        return;
    }
    tie(
        "iut1",
        [10, 99, 1, 2],
        [10, 99, 2, 1],
        true,
        Order::CarpdFirst,
    );
}

#[test]
fn tie_carpd_10_99_1_2_ucarp_10_99_2_1_ucarp_first() {
    if !require_root("tie_carpd_10_99_1_2_ucarp_10_99_2_1_ucarp_first") {
        return;
    }
    tie(
        "iut2",
        [10, 99, 1, 2],
        [10, 99, 2, 1],
        true,
        Order::UcarpFirst,
    );
}

// The mirror layout: each thinks the other wins.

#[test]
fn tie_carpd_10_99_2_1_ucarp_10_99_1_2_carpd_first() {
    if !require_root("tie_carpd_10_99_2_1_ucarp_10_99_1_2_carpd_first") {
        return;
    }
    tie(
        "iut3",
        [10, 99, 2, 1],
        [10, 99, 1, 2],
        true,
        Order::CarpdFirst,
    );
}

#[test]
fn tie_carpd_10_99_2_1_ucarp_10_99_1_2_ucarp_first() {
    if !require_root("tie_carpd_10_99_2_1_ucarp_10_99_1_2_ucarp_first") {
        return;
    }
    tie(
        "iut4",
        [10, 99, 2, 1],
        [10, 99, 1, 2],
        true,
        Order::UcarpFirst,
    );
}

// A third disagreeing layout, further apart: 10.99.1.7 vs 10.99.3.5.

#[test]
fn tie_carpd_10_99_1_7_ucarp_10_99_3_5_ucarp_first() {
    if !require_root("tie_carpd_10_99_1_7_ucarp_10_99_3_5_ucarp_first") {
        return;
    }
    tie(
        "iut5",
        [10, 99, 1, 7],
        [10, 99, 3, 5],
        true,
        Order::UcarpFirst,
    );
}

// Control: one /24, both orders agree (10.99.1.1 is lower either way).

#[test]
fn tie_carpd_10_99_1_1_ucarp_10_99_1_2_agreeing_layout_ucarp_first() {
    if !require_root("tie_carpd_10_99_1_1_ucarp_10_99_1_2_agreeing_layout_ucarp_first") {
        return;
    }
    tie(
        "iut6",
        [10, 99, 1, 1],
        [10, 99, 1, 2],
        false,
        Order::UcarpFirst,
    );
}

/// Unequal advskew in one /24: the lower advskew must be master.
fn unequal(tag: &str, b: u8, carpd_skew: u8, ucarp_skew: u8, order: Order) {
    let lan = Lan::new(tag, 214, b, 2);
    let want = if carpd_skew < ucarp_skew { 0 } else { 1 };
    pair(&lan, 0, 1, carpd_skew, ucarp_skew, order, Some(want));
}

#[test]
fn carpd_advskew_0_ucarp_100_carpd_first() {
    if !require_root("carpd_advskew_0_ucarp_100_carpd_first") {
        return;
    }
    unequal("iuu1", 1, 0, 100, Order::CarpdFirst);
}

#[test]
fn carpd_advskew_0_ucarp_100_ucarp_first() {
    if !require_root("carpd_advskew_0_ucarp_100_ucarp_first") {
        return;
    }
    unequal("iuu2", 2, 0, 100, Order::UcarpFirst);
}

#[test]
fn carpd_advskew_100_ucarp_0_carpd_first() {
    if !require_root("carpd_advskew_100_ucarp_0_carpd_first") {
        return;
    }
    unequal("iuu3", 3, 100, 0, Order::CarpdFirst);
}

#[test]
fn carpd_advskew_100_ucarp_0_ucarp_first() {
    if !require_root("carpd_advskew_100_ucarp_0_ucarp_first") {
        return;
    }
    unequal("iuu4", 4, 100, 0, Order::UcarpFirst);
}

/// A carpd-xdp master (advskew 0) demoted by a failing health check
/// (weight 100) must lose to a UCARP backup (advskew 50, `--preempt`), which
/// only compares intervals.
#[test]
fn demoted_carpd_master_loses_to_ucarp_backup_with_preempt() {
    if !require_root("demoted_carpd_master_loses_to_ucarp_backup_with_preempt") {
        return;
    }
    let lan = Lan::new("iud1", 214, 5, 2);
    let vip = lan.addr(VHID);
    let flag = lan.write("service-is-up", "", 0o644);
    let check = format!(
        "\n[[instance.health_check]]\ncommand = [\"/usr/bin/test\", \"-f\", \"{}\"]\n\
         interval_secs = 1\ntimeout_secs = 1\nweight = 100\n",
        flag.display()
    );
    let mut d = lan.daemon(0, "carpd", &[inst(&lan, 0).extra(&check)]);
    d.wait_state(VHID, "MASTER");
    let u = ucarp(&lan, 1, "ucarp", &ucarp_args(&lan, 50, &[]));
    std::thread::sleep(master_down(1, 50, 3) + interval(1, 50));
    assert_eq!(sole_holder_over(&lan, vip, Duration::from_secs(2)), Ok(0));

    std::fs::remove_file(&flag).unwrap();
    // Two check periods to notice, then one advert for UCARP to preempt on.
    let bound = Duration::from_secs(2) + interval(1, 0) + SLACK + SLACK;
    let start = Instant::now();
    while lan.holders(vip) != [1] {
        assert!(
            start.elapsed() < bound,
            "UCARP (advskew 50, --preempt) did not take over from the demoted carpd-xdp \
             master within {bound:?}: holders {:?}; carpd-xdp {}; UCARP: {}",
            lan.holders(vip),
            status(&d),
            ucarp_log(&u)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = sole_holder_over(&lan, vip, Duration::from_secs(5));
    assert_eq!(
        held,
        Ok(1),
        "carpd-xdp {}; UCARP: {}",
        status(&d),
        ucarp_log(&u)
    );
    assert_eq!(d.state(VHID).as_deref(), Some("BACKUP"), "{}", status(&d));
}

/// The UCARP emulation (host 0 at `emu`) is master, the real UCARP (host 1
/// at `real`, same advbase/advskew, `--preempt`) backup. The emulation is
/// frozen past master-down, so the real one takes over; unfrozen, both are
/// masters with equal intervals and the host-order tie-break decides. The
/// winner must be the lower address as UCARP compares it, and it must hold
/// the VIP alone.
fn emulation_tie_break_matches_real_ucarp(tag: &str, emu: [u8; 4], real: [u8; 4]) {
    let lan = lan16(tag, emu, real);
    let vip = lan.addr(VHID);
    let cfg = PeerConfig::new(
        Kind::Ucarp,
        VHID,
        0,
        PASS,
        IpAddr::V4(vip),
        IpAddr::V4(lan.hosts[0].ip),
    )
    .preempt(true);
    let p = PeerHost::start(&lan, 0, cfg, 24);
    wait_sole_holder(&lan, vip, 0, Duration::from_secs(5));
    let u = ucarp(&lan, 1, "ucarp", &ucarp_args(&lan, 0, &[]));
    std::thread::sleep(master_down(1, 0, 3) + interval(1, 0));
    assert_eq!(
        sole_holder_over(&lan, vip, Duration::from_secs(2)),
        Ok(0),
        "UCARP must not preempt an equal master; {}; UCARP: {}",
        p.summary(),
        ucarp_log(&u)
    );
    assert!(
        p.stats().accepted == 0 && p.stats().bad_auth == 0,
        "{}",
        p.summary()
    );

    p.pause();
    // The frozen master keeps its VIP; the real UCARP takes over too.
    let start = Instant::now();
    while !lan.holders(vip).contains(&1) {
        assert!(
            start.elapsed() < master_down(1, 0, 3) + interval(1, 0) * 2 + SLACK,
            "UCARP did not take over from the frozen emulation: {}",
            ucarp_log(&u)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p.resume();
    let want = if ucarp_lower_addr(emu, real) { 0 } else { 1 };
    std::thread::sleep(interval(1, 0) * 3);
    let held = sole_holder_over(&lan, vip, Duration::from_secs(4));
    assert_eq!(
        held,
        Ok(want),
        "emulation at {:?}, real UCARP at {:?}: {}; UCARP: {}",
        emu,
        real,
        p.summary(),
        ucarp_log(&u)
    );
    assert_eq!(p.state() == PeerState::Master, want == 0, "{}", p.summary());
    assert_eq!(p.stats().bad_auth, 0, "{}", p.summary());
    assert!(
        !u.stderr_text().contains("Bad digest"),
        "UCARP rejected the emulation's adverts: {}",
        ucarp_log(&u)
    );
}

#[test]
fn emulated_ucarp_on_10_99_1_2_loses_a_tie_to_real_ucarp_on_10_99_2_1() {
    if !require_root("emulated_ucarp_on_10_99_1_2_loses_a_tie_to_real_ucarp_on_10_99_2_1") {
        return;
    }
    emulation_tie_break_matches_real_ucarp("iue1", [10, 99, 1, 2], [10, 99, 2, 1]);
}

#[test]
fn emulated_ucarp_on_10_99_2_1_wins_a_tie_against_real_ucarp_on_10_99_1_2() {
    if !require_root("emulated_ucarp_on_10_99_2_1_wins_a_tie_against_real_ucarp_on_10_99_1_2") {
        return;
    }
    emulation_tie_break_matches_real_ucarp("iue2", [10, 99, 2, 1], [10, 99, 1, 2]);
}
