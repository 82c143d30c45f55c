//! A sync group end to end (issue 21.1): two hosts on two LANs (`eth0` on
//! LAN 1 with vhid 1, `eth1` on LAN 2 with vhid 2, both instances in group
//! `gw`), host 0 preferred, preempt on:
//!
//! - (a) host 0's LAN 2 link alone goes down: host 1 holds both VIPs and
//!   host 0 neither; host 1 took vhid 1 on host 0's leave advert ("master
//!   left", no master-down wait) and vhid 2 with it (the group), and host
//!   0's group is FAULT in `status`;
//! - (c) the link back: host 0 preempts back, as one;
//! - a failing health check on host 0's vhid 2 alone moves both vhids to
//!   host 1 (the group's demote), and both come back once it passes;
//! - (d) a reload (unchanged instances, the group's script changed) keeps
//!   the group as it is;
//! - (b) host 0 killed (SIGKILL): host 1 holds both VIPs;
//! - SIGTERM: exit 0, nothing left (no VIP on either LAN).
//!
//! The group's upscript logs each group transition once.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use carp_testnet::{Bridge, Port};
use common::cluster::{eventually, Daemon, Lan};
use common::{must, require_root};

/// Instance `vhid` of host `i` on `iface`, LAN `10.213.<vhid>.0/24`.
fn instance(iface: &str, vhid: u8, i: usize, advskew: u8) -> String {
    format!(
        "\n[[instance]]\ninterface = \"{iface}\"\nvhid = {vhid}\nsrcip = \"10.213.{vhid}.{}\"\n\
         vips = [\"{}/24\"]\nadvskew = {advskew}\npreempt = true\npassword = \"gw\"\n\
         sync_group = \"gw\"\n",
        i + 1,
        vip(vhid)
    )
}

/// The VIP of vhid `vhid`: `.10` of its LAN.
fn vip(vhid: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, vhid, 10)
}

/// Host `i`'s configuration, its group's upscript `script`. Host 0's
/// vhid 2 has a health check that fails while the file `unhealthy` exists.
fn config(lan: &Lan, i: usize, script: &str) -> String {
    let sock = lan.path(&format!("d{i}.sock"));
    let advskew = if i == 0 { 0 } else { 100 };
    let check = if i == 0 {
        format!(
            "\n[[instance.health_check]]\ncommand = [\"/bin/sh\", \"-c\", \"test ! -e {}\"]\n\
             interval_secs = 1\ntimeout_secs = 1\nweight = 50\n",
            lan.path("unhealthy").display()
        )
    } else {
        String::new()
    };
    format!(
        "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\n\
         state_dir = \"{}\"\n{}{}{check}\n[[sync_group]]\nname = \"gw\"\nupscript = \"{}\"\n\
         downscript = \"{}\"\n",
        sock.display(),
        lan.path(&format!("state-{i}")).display(),
        instance("eth0", 1, i, advskew),
        instance("eth1", 2, i, advskew),
        lan.path(script).display(),
        lan.path(script).display(),
    )
}

/// Starts the daemon of host `i`.
fn start(lan: &Lan, i: usize) -> Daemon {
    let name = format!("d{i}");
    let text = config(lan, i, &format!("group-{i}.sh"));
    let file = lan.write(&format!("{name}.toml"), &text, 0o644);
    let args = vec!["--config".to_string(), file.display().to_string()];
    Daemon::start(lan, i, &name, &args, &[], lan.path(&format!("{name}.sock")))
}

/// Whether host `i` carries `addr` on any interface.
fn holds(lan: &Lan, i: usize, addr: Ipv4Addr) -> bool {
    let out = lan.hosts[i].ns.ip(&["-o", "-4", "addr", "show"]);
    out.contains(&format!("inet {addr}/"))
}

/// Waits until host `master` holds both VIPs and the other neither, and
/// their daemons agree (both vhids MASTER on one, neither on the other:
/// BACKUP, or INIT where its link is down).
fn wait_group_on(lan: &Lan, daemons: &mut [Option<Daemon>], master: usize) {
    for (i, d) in daemons.iter_mut().enumerate() {
        for vhid in [1, 2] {
            match d {
                Some(d) if i == master => d.wait_state(vhid, "MASTER"),
                Some(d) => d.wait_not_master(vhid),
                None => {}
            }
        }
    }
    eventually(&format!("both VIPs on host {master} only"), || {
        let on = |i: usize| [1, 2].map(|v| holds(lan, i, vip(v)));
        let other = 1 - master;
        let other_clear = daemons[other].is_none() || on(other) == [false, false];
        (on(master) == [true, true] && other_clear).then_some(())
    });
}

/// `field` of instance `vhid` in daemon `d`'s status.
fn field(d: &Daemon, vhid: u8, field: &str) -> Option<String> {
    d.instance(vhid)?[field].as_str().map(str::to_owned)
}

/// The group transitions host `i`'s group script logged.
fn script_log(lan: &Lan, i: usize) -> Vec<String> {
    std::fs::read_to_string(lan.path(&format!("group-{i}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_sync_group_moves_as_one_across_two_lans() {
    if !require_root("a_sync_group_moves_as_one_across_two_lans") {
        return;
    }
    let lan = Lan::with_addrs(
        "sgrp",
        &[Ipv4Addr::new(10, 213, 1, 1), Ipv4Addr::new(10, 213, 1, 2)],
        24,
    );
    let lan2 = must(carp_testnet::Netns::new("sgrp-sw2").and_then(Bridge::new));
    for (i, h) in lan.hosts.iter().enumerate() {
        let cidr = format!("10.213.2.{}/24", i + 1);
        let how = Port {
            cidr: Some(&cidr),
            ..Port::default()
        };
        must(lan2.attach(&h.ns, "eth1", &format!("h{i}"), how));
    }
    for i in 0..2 {
        let log = lan.path(&format!("group-{i}.log"));
        let script = format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", log.display());
        lan.write(&format!("group-{i}.sh"), &script, 0o755);
    }
    // The worse host first: the group still elects host 0.
    let mut daemons = vec![None, Some(start(&lan, 1))];
    daemons[0] = Some(start(&lan, 0));
    wait_group_on(&lan, &mut daemons, 0);
    let d0 = daemons[0].as_ref().unwrap();
    assert_eq!(field(d0, 1, "sync_group").as_deref(), Some("gw"));
    eventually("host 0's group MASTER in status", || {
        (field(d0, 2, "group_state").as_deref() == Some("MASTER")).then_some(())
    });
    eventually("host 0's group script ran for MASTER", || {
        script_log(&lan, 0)
            .last()
            .is_some_and(|l| l == "gw MASTER")
            .then_some(())
    });

    // (a) Host 0's LAN 2 link alone goes down.
    must(lan2.set_port("h0", false));
    wait_group_on(&lan, &mut daemons, 1);
    let d0 = daemons[0].as_ref().unwrap();
    let d1 = daemons[1].as_ref().unwrap();
    // vhid 1 was taken on host 0's leave advert, vhid 2 with it.
    assert_eq!(
        field(d1, 1, "last_change_reason").as_deref(),
        Some("master left")
    );
    assert_eq!(
        field(d1, 2, "last_change_reason").as_deref(),
        Some("sync group member became master")
    );
    assert_eq!(field(d0, 1, "group_state").as_deref(), Some("FAULT"));
    assert_eq!(d0.instance(1).unwrap()["held"], true);
    let why = field(d0, 1, "group_reason").unwrap_or_default();
    assert!(
        why.contains("eth1 vhid 2") && why.contains("link down"),
        "{why}"
    );
    // Held: host 0 stays without either VIP while the link is down.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!holds(&lan, 0, vip(1)) && !holds(&lan, 0, vip(2)));
    assert!(script_log(&lan, 0).iter().any(|l| l == "gw FAULT"));

    // (c) The link back: host 0 preempts back, as one.
    must(lan2.set_port("h0", true));
    wait_group_on(&lan, &mut daemons, 0);

    // A failing health check on host 0's vhid 2 demotes its whole group:
    // host 1 takes both, and both back once the check passes again.
    lan.write("unhealthy", "", 0o644);
    wait_group_on(&lan, &mut daemons, 1);
    let d0 = daemons[0].as_ref().unwrap();
    for vhid in [1, 2] {
        assert_eq!(d0.instance(vhid).unwrap()["demote"], 50, "vhid {vhid}");
    }
    std::fs::remove_file(lan.path("unhealthy")).unwrap();
    wait_group_on(&lan, &mut daemons, 0);

    // (d) A reload that changes the group's script only: nothing moves.
    let d0 = daemons[0].as_ref().unwrap();
    let transitions = |d: &Daemon| [1, 2].map(|v| d.instance(v).unwrap()["transitions"].clone());
    let before = transitions(d0);
    let file = lan.path("d0.toml");
    lan.write("d0.toml", &config(&lan, 0, "group-0b.sh"), 0o644);
    let log_b = lan.path("group-0b.log");
    lan.write(
        "group-0b.sh",
        &format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", log_b.display()),
        0o755,
    );
    assert!(file.exists());
    d0.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_secs(2));
    wait_group_on(&lan, &mut daemons, 0);
    let d0 = daemons[0].as_ref().unwrap();
    assert_eq!(transitions(d0), before, "a reload moved the group");
    assert_eq!(field(d0, 1, "group_state").as_deref(), Some("MASTER"));

    // (b) Host 0 killed: host 1 takes both.
    let mut d0 = daemons[0].take().unwrap();
    d0.proc.kill9();
    let d1 = daemons[1].as_mut().unwrap();
    d1.wait_state(1, "MASTER");
    d1.wait_state(2, "MASTER");
    eventually("both VIPs on host 1", || {
        (holds(&lan, 1, vip(1)) && holds(&lan, 1, vip(2))).then_some(())
    });
    drop(d0);

    // SIGTERM: exit 0, nothing left.
    let mut d1 = daemons[1].take().unwrap();
    d1.signal(libc::SIGTERM);
    let status = d1
        .proc
        .wait_exit(Duration::from_secs(10))
        .expect("daemon still running 10 s after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(!holds(&lan, 1, vip(1)) && !holds(&lan, 1, vip(2)));
}
