//! Interop with the real UCARP (`ucarp`, Debian package) on a bridged LAN of
//! namespaces, same vhid / password / VIP, UCARP managing its VIP through
//! up/down scripts (issue 4's acceptance):
//!
//! - carpd-xdp master, UCARP backup: UCARP accepts our adverts (stays backup
//!   past its master-down interval), takes over when our link goes down, and
//!   gives the VIP back when we return with preempt;
//! - UCARP master, carpd-xdp backup: we accept UCARP's adverts, take over
//!   when UCARP stops (SIGTERM with `--shutdown`), and step down when UCARP
//!   comes back with `--preempt`;
//! - the UCARP command line of an init script (`ucarp $UCARP_OPTS` with the
//!   executable changed): alone it becomes master, adds the VIP with the
//!   alias label, runs the scripts with UCARP's argv, and on SIGTERM runs the
//!   down script (`--shutdown`), removes the VIP and exits 0.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    self, eventually, has_addr, interval, master_down, ucarp, xdp_attached, Daemon, Inst, Lan, Proc,
};
use common::probe::Probe;
use common::require_root;

/// Slack the issue allows on top of the protocol bound.
const SLACK: Duration = Duration::from_millis(50);
const VHID: u8 = 42;
const PASS: &str = "interop-pw";

fn ucarp_args(lan: &Lan, advskew: u8, extra: &[&str]) -> Vec<String> {
    cluster::ucarp_args(lan, VHID, PASS, advskew, extra)
}

fn inst(lan: &Lan, advskew: u8) -> Inst {
    let mut inst = Inst::new(VHID, lan.addr(VHID), advskew);
    inst.password = PASS.to_string();
    inst
}

fn script_log(lan: &Lan, name: &str) -> String {
    std::fs::read_to_string(lan.path(&format!("{name}.scripts"))).unwrap_or_default()
}

/// For `window`, `vip` must stay on `host` only (and `also` must hold).
fn stays(lan: &Lan, host: usize, window: Duration, mut also: impl FnMut()) {
    let start = Instant::now();
    while start.elapsed() < window {
        assert_eq!(lan.holders(lan.addr(VHID)), [host], "the VIP moved");
        also();
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn no_bad_digest(u: &Proc) {
    let err = u.stderr_text();
    assert!(
        !err.contains("Bad digest"),
        "UCARP rejected our adverts:\n{err}"
    );
}

#[test]
fn carpd_master_ucarp_backup_fail_over_both_ways() {
    if !require_root("carpd_master_ucarp_backup_fail_over_both_ways") {
        return;
    }
    let lan = Lan::new("cuc1", 211, 1, 2);
    let ours = inst(&lan, 0);
    let mut a = lan.daemon(0, "carpd", std::slice::from_ref(&ours));
    a.wait_state(VHID, "MASTER");
    let u = ucarp(&lan, 1, "ucarp", &ucarp_args(&lan, 100, &[]));
    // UCARP would take over after 3 × 1 + 100/256 s if it rejected our
    // adverts: watch longer than that plus an interval.
    stays(&lan, 0, master_down(1, 100, 3) + interval(1, 100), || {
        assert_eq!(a.state(VHID).as_deref(), Some("MASTER"));
    });
    no_bad_digest(&u);
    assert!(
        !script_log(&lan, "ucarp").contains("up "),
        "UCARP ran its up script"
    );

    // Our link goes down: UCARP takes over.
    let probe = Probe::start(&lan.client, "eth0", lan.addr(VHID));
    probe.wait_reply_from(lan.hosts[0].mac, Instant::now());
    lan.cut(0);
    let fault = Instant::now();
    eventually("the VIP on the UCARP host only", || {
        (lan.holders(lan.addr(VHID)) == [1]).then_some(())
    });
    a.wait_not_master(VHID);
    probe.wait_reply_from(lan.hosts[1].mac, fault);
    let bound = master_down(1, 100, 3) + interval(1, 100) + SLACK;
    let outage = probe.snapshot().outage_after(fault);
    eprintln!("measured outage {outage:?}");
    assert!(
        outage <= bound,
        "outage {outage:?} into UCARP, bound {bound:?}"
    );

    // We come back with preempt: UCARP's adverts are accepted, we take over,
    // UCARP steps down and runs its down script.
    lan.restore(0);
    let back = Instant::now();
    a.wait_state(VHID, "MASTER");
    eventually("the VIP back on our host only", || {
        (lan.holders(lan.addr(VHID)) == [0]).then_some(())
    });
    probe.wait_reply_from(lan.hosts[0].mac, back);
    let st = a.instance(VHID).expect("status");
    assert!(
        st["adverts_accepted"].as_u64().unwrap_or(0) > 0,
        "no UCARP advert accepted: {st}"
    );
    let log = script_log(&lan, "ucarp");
    let vip = lan.addr(VHID);
    let up = log
        .find(&format!("up eth0 {vip}"))
        .expect("UCARP up script ran");
    assert!(
        log[up..].contains(&format!("down eth0 {vip}")),
        "UCARP did not step down after we returned:\n{log}"
    );
    no_bad_digest(&u);
}

#[test]
fn ucarp_master_carpd_backup_fail_over_both_ways() {
    if !require_root("ucarp_master_carpd_backup_fail_over_both_ways") {
        return;
    }
    let lan = Lan::new("cuc2", 211, 2, 2);
    let their_args = ucarp_args(&lan, 0, &["--preempt", "--shutdown"]);
    let mut u = ucarp(&lan, 0, "ucarp", &their_args);
    eventually("UCARP holding the VIP", || {
        (lan.holders(lan.addr(VHID)) == [0]).then_some(())
    });
    let ours = inst(&lan, 100);
    let mut b = lan.daemon(1, "carpd", std::slice::from_ref(&ours));
    b.wait_state(VHID, "BACKUP");
    // We must accept UCARP's adverts: stay backup past our master-down.
    let ucarp_ip = lan.hosts[0].ip.to_string();
    stays(&lan, 0, ours.master_down() + ours.interval(), || {
        assert_eq!(b.state(VHID).as_deref(), Some("BACKUP"));
    });
    let st = b.instance(VHID).expect("status");
    assert!(st["adverts_accepted"].as_u64().unwrap_or(0) >= 2, "{st}");
    assert_eq!(st["master"].as_str(), Some(ucarp_ip.as_str()), "{st}");

    // UCARP stops (SIGTERM, --shutdown: down script, no leave advert).
    let probe = Probe::start(&lan.client, "eth0", lan.addr(VHID));
    probe.wait_reply_from(lan.hosts[0].mac, Instant::now());
    u.signal(libc::SIGTERM);
    let fault = Instant::now();
    u.wait_exit(Duration::from_secs(10))
        .expect("UCARP exits on SIGTERM");
    b.wait_state(VHID, "MASTER");
    probe.wait_reply_from(lan.hosts[1].mac, fault);
    let bound = ours.master_down() + ours.interval() + SLACK;
    let outage = probe.snapshot().outage_after(fault);
    eprintln!("measured outage {outage:?}");
    assert!(
        outage <= bound,
        "outage {outage:?} out of UCARP, bound {bound:?}"
    );
    eventually("the VIP on our host only", || {
        (lan.holders(lan.addr(VHID)) == [1]).then_some(())
    });

    // UCARP comes back with --preempt: we step down and remove the VIP.
    let _u2 = ucarp(&lan, 0, "ucarp2", &their_args);
    let back = Instant::now();
    b.wait_state(VHID, "BACKUP");
    eventually("the VIP back on the UCARP host only", || {
        (lan.holders(lan.addr(VHID)) == [0]).then_some(())
    });
    probe.wait_reply_from(lan.hosts[0].mac, back);
    let st = b.instance(VHID).expect("status");
    assert_eq!(st["master"].as_str(), Some(ucarp_ip.as_str()), "{st}");
}

#[test]
fn init_script_ucarp_command_line_runs_a_master() {
    if !require_root("init_script_ucarp_command_line_runs_a_master") {
        return;
    }
    let lan = Lan::new("cuc3", 211, 3, 1);
    let vip = lan.addr(7);
    let log = lan.path("scripts.log");
    let script = |kind: &str| {
        lan.write(
            &format!("vip-{kind}.sh"),
            &format!(
                "#!/bin/sh\necho \"{kind} $* state=$CARP_STATE vhid=$CARP_VHID\" >> {}\n",
                log.display()
            ),
            0o755,
        )
    };
    let (up, down) = (script("up"), script("down"));
    let passfile = lan.write("carp.pass", "cli-secret\n", 0o600);
    // As /etc/default/ucarp would have it; only the executable changes.
    let ucarp_opts = format!(
        "--interface=eth0:carp0 --srcip={} --vhid=7 --passfile={} --addr={vip} \
         --upscript={} --downscript={} --xparam=extra --shutdown --preempt \
         --advbase=1 --advskew=10",
        lan.hosts[0].ip,
        passfile.display(),
        up.display(),
        down.display()
    );
    let sock = lan.path("cli.sock");
    let mut args: Vec<String> = ucarp_opts.split_whitespace().map(String::from).collect();
    args.push(format!("--status-socket={}", sock.display()));
    let mut d = Daemon::start(&lan, 0, "carpd-cli", &args, &[], sock);

    d.wait_state(7, "MASTER");
    let st = d.instance(7).expect("status");
    assert_eq!(
        (st["advskew"].clone(), st["preempt"].clone()),
        (10.into(), true.into()),
        "{st}"
    );
    let addrs = lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    let line = addrs
        .lines()
        .find(|l| l.contains(&format!("inet {vip}/")))
        .unwrap_or_else(|| panic!("VIP not added:\n{addrs}"));
    assert!(
        line.contains("eth0:carp0"),
        "VIP without the alias label: {line}"
    );
    let ping = lan
        .client
        .command("ping")
        .args(["-c", "1", "-W", "2", &vip.to_string()])
        .output()
        .unwrap();
    assert!(ping.status.success(), "the VIP does not answer");
    let script_log = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually("the up script", || {
        script_log().contains("up ").then_some(())
    });

    d.signal(libc::SIGTERM);
    let status = d
        .proc
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    eventually("the down script at exit (--shutdown)", || {
        let text = script_log();
        let up = text.find("up ")?;
        text[up..].contains("down ").then_some(())
    });
    assert!(!has_addr(&lan.hosts[0].ns, vip), "VIP left after SIGTERM");
    assert!(
        !xdp_attached(&lan.hosts[0].ns, "eth0"),
        "XDP left after SIGTERM"
    );
    // UCARP's argv, the interface as given (alias included), plus our
    // environment: the down script when it enters BACKUP at start-up (no
    // -n), the up script on becoming master, the down script at exit
    // (--shutdown).
    let up_line = format!("up eth0:carp0 {vip} extra state=MASTER vhid=7");
    let down_line = format!("down eth0:carp0 {vip} extra state=BACKUP vhid=7");
    let text = script_log();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [down_line.as_str(), up_line.as_str(), down_line.as_str()],
        "scripts not called as UCARP calls them"
    );
}
