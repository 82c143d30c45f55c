//! Issue 21.3: a NAT gateway pair keeps its TCP flows. Client 10.70.1.10
//! routes through the LAN VIP 10.70.1.1 (vhid 1); gateways A (preferred,
//! advskew 0) and B (advskew 4) SNAT to the WAN VIP 10.70.2.1 (vhid 2)
//! towards a server, with a strict stateful forward filter (`ct state
//! invalid drop`, `nf_conntrack_tcp_loose = 0`) and conntrackd (FTFW)
//! syncing connection state over a dedicated link (tests/common/gateway.rs).
//! A TCP flow echoes a line every 10 ms through A.
//!
//! The harness first, without sync groups (carpd-xdp moves each VIP on its
//! own): after A's silent death, B drops the flow as invalid unless its
//! conntrackd's external cache is committed, here by hand from B's
//! upscript; both prove that the filter is strict and that conntrackd
//! synced the flow. And A's WAN link going down splits the VIPs (the WAN
//! VIP on B, the LAN VIP on A) and the flow dies, even with the commit:
//! what the group is for.
//!
//! Then the pair as the issue asks, the two instances in one sync group
//! with `conntrackd_config` (carpd-xdp drives conntrackd): the flow
//! survives (no reset, echoes resume, B holds both VIPs)
//! (a) A's WAN link alone going down (A then holds neither VIP), the gap
//!     within 400 ms at advbase 1;
//! (b) A's silent death (carpd-xdp frozen, then its links down), the gap
//!     within master-down + 1.5 s at advbase 1 and within 500 ms at advbase
//!     0.

mod common;

use std::time::{Duration, Instant};

use carp_testnet::flow::Flow;
use common::gateway::{eventually_ok, Carpd, Pair, Timers};
use common::require_root;

/// advskew of A (preferred) and B.
const ADVSKEW: [u8; 2] = [0, 4];
/// Echoes that must arrive after the fault for the flow to count as
/// resumed (a second of the flow).
const RESUMED: usize = 100;
/// How long the flow has to resume, whatever the timers.
const RESUME_WITHIN: Duration = Duration::from_secs(15);

/// The pair with carpd-xdp on both gateways (A master of both VIPs, B
/// backup), an established flow through A, synced to B's conntrackd.
struct Established {
    /// The flow (dropped first).
    flow: Flow,
    /// The echo server's thread (ends when the flow is dropped).
    _server: std::thread::JoinHandle<()>,
    /// carpd-xdp on A and B.
    carpd: [Carpd; 2],
    /// The topology (dropped last).
    pair: Pair,
}

/// Builds the pair with `timers`, the instances in a sync group driving
/// conntrackd when `group` is set, what `b_wan_extra` makes appended to
/// B's WAN instance.
fn establish(
    tag: &str,
    timers: Timers,
    group: bool,
    b_wan_extra: fn(&Pair) -> String,
) -> Established {
    let pair = Pair::new(tag);
    let b_wan_extra = b_wan_extra(&pair);
    let mut a = pair.carpd(0, &pair.carpd_config(0, timers, group, ""));
    a.wait_both("MASTER");
    let mut b = pair.carpd(1, &pair.carpd_config(1, timers, group, &b_wan_extra));
    b.wait_both("BACKUP");
    pair.wait_both_vips_on(0);
    let (server, flow) = pair.flow();
    assert!(
        flow.wait_echoes_after(Instant::now(), 50, Duration::from_secs(10)),
        "no flow through A: {:?}",
        flow.failure()
    );
    pair.wait_flow_synced(1);
    Established {
        flow,
        _server: server,
        carpd: [a, b],
        pair,
    }
}

/// A's silent death: its carpd-xdp frozen (SIGSTOP), then its LAN, WAN and
/// sync links down. The instant it froze.
fn silent_death(e: &Established) -> Instant {
    e.carpd[0].proc.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    let net = &e.pair.net;
    common::must(net.set_lan(0, false));
    common::must(net.set_wan(0, false));
    common::must(net.cut_sync(0));
    frozen
}

/// Waits for the flow to resume after `fault`; the longest gap between
/// echoes from then on. Panics on a reset or a flow that does not resume.
fn resumed_gap(flow: &Flow, fault: Instant) -> Duration {
    let resumed = flow.wait_echoes_after(fault, RESUMED, RESUME_WITHIN);
    assert_eq!(flow.failure(), None, "the flow broke");
    assert!(resumed, "the flow did not resume within {RESUME_WITHIN:?}");
    let gap = flow
        .longest_gap_after(fault)
        .expect("echoes after the fault");
    eprintln!("flow gap after the fault: {gap:?}");
    gap
}

/// Waits until B holds both VIPs (A, frozen, may still hold its own).
fn wait_b_holds_both(pair: &Pair) {
    eventually_ok("B holding both VIPs", || {
        let (lan, wan) = pair.holders();
        lan.contains(&1) && wan.contains(&1)
    });
}

/// master-down of B: 3 × advbase + advskew/256 (advbase 0: 3 intervals).
fn master_down(timers: Timers) -> Duration {
    common::cluster::master_down(timers.advbase_secs, timers.advskew[1], 3)
}

const FAST: Timers = Timers {
    advbase_secs: 0,
    advskew: ADVSKEW,
};
const SLOW: Timers = Timers {
    advbase_secs: 1,
    advskew: ADVSKEW,
};

#[test]
fn harness_without_a_commit_the_new_master_drops_the_flow() {
    if !require_root("harness_without_a_commit_the_new_master_drops_the_flow") {
        return;
    }
    let e = establish("gwnc", FAST, false, nothing);
    silent_death(&e);
    wait_b_holds_both(&e.pair);
    let took_over = Instant::now();
    assert!(
        !e.flow
            .wait_echoes_after(took_over, 1, Duration::from_secs(3)),
        "the flow went on through B without a commit: the forward filter is not strict"
    );
}

#[test]
fn harness_a_commit_by_hand_keeps_the_flow() {
    if !require_root("harness_a_commit_by_hand_keeps_the_flow") {
        return;
    }
    let e = establish("gwhc", FAST, false, commit_script);
    let fault = silent_death(&e);
    wait_b_holds_both(&e.pair);
    resumed_gap(&e.flow, fault);
}

#[test]
fn harness_without_a_group_a_wan_link_down_splits_the_vips_and_the_flow_dies() {
    if !require_root("harness_without_a_group_a_wan_link_down_splits_the_vips_and_the_flow_dies") {
        return;
    }
    let e = establish("gwsplit", FAST, false, commit_script);
    common::must(e.pair.net.set_wan(0, false));
    eventually_ok("the WAN VIP on B, the LAN VIP still on A", || {
        e.pair.holders() == (vec![0], vec![1])
    });
    let split = Instant::now();
    assert!(
        !e.flow.wait_echoes_after(split, 1, Duration::from_secs(3)),
        "the flow went on with its VIPs on two gateways"
    );
}

/// B's WAN instance's extra keys for the harness: an upscript that
/// commits conntrackd's external cache (`-c`, `-f`, `-R`, `-B`), as
/// primary-backup.sh does for keepalived.
fn commit_script(pair: &Pair) -> String {
    let conf = pair.conntrackd_conf[1].display().to_string();
    let log = pair.dir.path().join("commit.log");
    let script = pair.write(
        "commit.sh",
        &format!(
            "#!/bin/sh\nfor flag in -c -f -R -B; do\n\
             \tconntrackd -C {conf} $flag >> {log} 2>&1 || echo \"$flag failed\" >> {log}\n\
             done\n",
            log = log.display()
        ),
        0o755,
    );
    format!("upscript = \"{}\"\n", script.display())
}

/// No extra keys.
fn nothing(_: &Pair) -> String {
    String::new()
}

#[test]
fn group_wan_link_down_moves_both_vips_and_the_flow_survives() {
    if !require_root("group_wan_link_down_moves_both_vips_and_the_flow_survives") {
        return;
    }
    let e = establish("gwwan", SLOW, true, nothing);
    common::must(e.pair.net.set_wan(0, false));
    let fault = Instant::now();
    e.pair.wait_both_vips_on(1);
    let gap = resumed_gap(&e.flow, fault);
    assert_eq!(e.pair.holders(), (vec![1], vec![1]), "A took a VIP back");
    assert!(
        gap <= Duration::from_millis(400),
        "gap {gap:?} after A's WAN link went down"
    );
}

#[test]
fn group_silent_death_at_advbase_1_the_flow_survives() {
    if !require_root("group_silent_death_at_advbase_1_the_flow_survives") {
        return;
    }
    let e = establish("gwsd1", SLOW, true, nothing);
    let fault = silent_death(&e);
    wait_b_holds_both(&e.pair);
    let gap = resumed_gap(&e.flow, fault);
    let bound = master_down(SLOW) + Duration::from_millis(1500);
    assert!(
        gap <= bound,
        "gap {gap:?} after A's silent death, bound {bound:?}"
    );
}

#[test]
fn group_silent_death_at_advbase_0_the_flow_survives() {
    if !require_root("group_silent_death_at_advbase_0_the_flow_survives") {
        return;
    }
    let e = establish("gwsd0", FAST, true, nothing);
    let fault = silent_death(&e);
    wait_b_holds_both(&e.pair);
    let gap = resumed_gap(&e.flow, fault);
    assert!(
        gap <= Duration::from_millis(500),
        "gap {gap:?} after A's silent death at advbase 0"
    );
}

/// A file of the shipped example, `dist/examples/gateway/NAME`.
fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist/examples/gateway")
        .join(name)
}

#[test]
fn the_example_carpd_configs_pass_check_config() {
    for host in ["a", "b"] {
        let path = example(&format!("carpd-xdp-host-{host}.toml"));
        let out = std::process::Command::new(common::cluster::CARPD)
            .arg("check-config")
            .arg(&path)
            .env("CARPD_LAN_PASS", "lan secret")
            .env("CARPD_WAN_PASS", "wan secret")
            .output()
            .expect("run carpd-xdp check-config");
        let text = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{path:?}: {errors}{text}");
        assert!(
            text.contains("gateway"),
            "{path:?}: no sync group in\n{text}"
        );
    }
}

#[test]
fn the_example_ruleset_sysctls_and_conntrackd_configs_load() {
    if !require_root("the_example_ruleset_sysctls_and_conntrackd_configs_load") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = [common::Netns::new("gwexa"), common::Netns::new("gwexb")];
    common::veth(&hosts[0], "eth2", &hosts[1], "eth2");
    for (i, ns) in hosts.iter().enumerate() {
        for (ifname, peer) in [("eth0", "p0"), ("eth1", "p1")] {
            ns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", peer]);
            ns.ip(&["link", "set", ifname, "up"]);
        }
        ns.ip(&[
            "addr",
            "add",
            &format!("10.255.255.{}/30", i + 1),
            "dev",
            "eth2",
        ]);
        let ruleset = example("nftables.conf").display().to_string();
        common::must(ns.exec("nft", &["-f", &ruleset]));
        let sysctls = example("sysctl.conf").display().to_string();
        common::must(ns.exec("sysctl", &["-q", "-p", &sysctls]));
        let loose =
            common::must(ns.exec("sysctl", &["-n", "net.netfilter.nf_conntrack_tcp_loose"]));
        assert_eq!(loose.trim(), "0");
    }
    // The example's own paths are the host's: moved into the temp dir.
    let mut daemons = Vec::new();
    for (i, host) in ["a", "b"].iter().enumerate() {
        let text =
            std::fs::read_to_string(example(&format!("conntrackd-host-{host}.conf"))).unwrap();
        let file = |what: &str| {
            dir.path()
                .join(format!("{host}.{what}"))
                .display()
                .to_string()
        };
        let text = text
            .replace("/var/lock/conntrack.lock", &file("lock"))
            .replace("/var/run/conntrackd.ctl", &file("ctl"))
            .replace("LogFile on", &format!("LogFile {}", file("log")))
            .replace("Syslog on", "Syslog off");
        assert!(
            !text.contains("/var/") && !text.contains(" on\n\tSyslog"),
            "{text}"
        );
        let conf = dir.path().join(format!("{host}.conf"));
        std::fs::write(&conf, text).unwrap();
        let mut cmd = hosts[i].command("conntrackd");
        cmd.arg("-C").arg(&conf);
        daemons.push(common::must(carp_testnet::Captured::spawn(
            cmd,
            dir.path(),
            &format!("conntrackd-{host}"),
        )));
        eventually_ok(
            &format!("conntrackd with the host-{host} config answering"),
            || {
                let mut client = hosts[i].command("conntrackd");
                client.arg("-C").arg(&conf).arg("-s");
                carp_testnet::output(&mut client).is_ok()
            },
        );
    }
}
