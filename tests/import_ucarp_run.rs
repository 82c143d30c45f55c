//! A UCARP active/active pair migrated with `carpd-xdp import-ucarp`, run on
//! two namespace hosts: each host's `/etc/default/ucarp` and per-VIP files
//! (as Debian's init script reads them) are imported, and the two daemons
//! started from the result give what UCARP gave with those files: VIP web
//! on host A (advskew 0 there, 100 on B), VIP mail on host B (the other way
//! round), the VIPs under their alias labels, and the scripts called with
//! UCARP's argv (`<interface> <vip> [xparam]`). A second pair mixes the
//! packages' layouts: Debian's `/etc/network/interfaces` on one host, Red
//! Hat's `/etc/ucarp` on the other, each imported from its own root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{Daemon, Lan, CARPD};
use common::{require_root, run_ok};

const WEB: u8 = 10;
const MAIL: u8 = 20;

/// Host `i`'s UCARP files in `dir`: the defaults and one file per VIP, web
/// preferred on host 0 and mail on host 1.
fn ucarp_files(lan: &Lan, i: usize, dir: &Path, scripts: &Path) -> (String, String) {
    let ip = lan.hosts[i].ip;
    let (web_skew, mail_skew) = if i == 0 { (0, 100) } else { (100, 0) };
    std::fs::create_dir_all(dir.join("interface")).unwrap();
    let defaults = dir.join("default-ucarp");
    std::fs::write(&defaults, "OPTIONS=\"-z -n\"\n").unwrap();
    let up = scripts.join("vip-up.sh");
    let down = scripts.join("vip-down.sh");
    std::fs::write(
        dir.join("interface/ucarp0"),
        format!(
            "UCARP_BASE=1\nINTERFACE=eth0:carp0\nINSTANCE_ID={WEB}\nPASSWORD=\"web pw\"\n\
             VIRTUAL_ADDRESS={}\nVIRTUAL_NETMASK=255.255.255.0\nSOURCE_ADDRESS={ip}\n\
             UPSCRIPT={}\nDOWNSCRIPT={}\nOPTIONS=\"-k {web_skew} -P\"\n",
            lan.addr(WEB),
            up.display(),
            down.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("interface/ucarp1"),
        format!(
            "INTERFACE=eth0:carp1\nINSTANCE_ID={MAIL}\nPASSWORD='mail-pw'\n\
             VIRTUAL_ADDRESS={}\nVIRTUAL_NETMASK=24\nSOURCE_ADDRESS={ip}\n\
             UPSCRIPT={}\nDOWNSCRIPT={}\nOPTIONS=\"--advskew={mail_skew} --preempt --xparam=mail\"\n",
            lan.addr(MAIL),
            up.display(),
            down.display()
        ),
    )
    .unwrap();
    (
        defaults.display().to_string(),
        dir.join("interface").display().to_string(),
    )
}

/// Starts host `i`'s daemon on the configuration `import-ucarp` wrote to
/// `output`, with the test's own status socket and state directory (in
/// `dir`) added to it.
fn start_imported(lan: &Lan, i: usize, output: &Path, dir: &Path) -> Daemon {
    let sock = lan.path(&format!("d{i}.sock"));
    let text = std::fs::read_to_string(output).unwrap();
    let global = format!(
        "status_socket = \"{}\"\nstate_dir = \"{}\"\n",
        sock.display(),
        dir.join("state").display()
    );
    let text = if text.contains("[global]\n") {
        text.replacen("[global]\n", &format!("[global]\n{global}"), 1)
    } else {
        format!("[global]\n{global}\n{text}")
    };
    std::fs::write(output, text).unwrap();
    let args = vec!["--config".to_string(), output.display().to_string()];
    Daemon::start(lan, i, &format!("d{i}"), &args, &[], sock)
}

#[test]
fn an_imported_active_active_pair_runs_as_the_ucarp_pair_did() {
    if !require_root("an_imported_active_active_pair_runs_as_the_ucarp_pair_did") {
        return;
    }
    let lan = Lan::new("imp", 86, 10, 2);
    let log = lan.path("scripts.log");
    let scripts = lan.dir.path().to_path_buf();
    lan.write(
        "vip-up.sh",
        &format!("#!/bin/sh\necho \"up $*\" >> {}\n", log.display()),
        0o755,
    );
    lan.write(
        "vip-down.sh",
        &format!("#!/bin/sh\necho \"down $*\" >> {}\n", log.display()),
        0o755,
    );
    let mut daemons: Vec<Daemon> = Vec::new();
    for i in 0..2 {
        let dir = lan.path(&format!("host{i}"));
        let (defaults, vips) = ucarp_files(&lan, i, &dir, &scripts);
        let output = dir.join("carpd-xdp.toml");
        run_ok(std::process::Command::new(CARPD).args([
            "import-ucarp",
            "--default",
            &defaults,
            &vips,
            "--output",
            output.to_str().unwrap(),
        ]));
        daemons.push(start_imported(&lan, i, &output, &dir));
    }
    daemons[0].wait_state(WEB, "MASTER");
    daemons[1].wait_state(MAIL, "MASTER");
    daemons[0].wait_state(MAIL, "BACKUP");
    daemons[1].wait_state(WEB, "BACKUP");
    // Each VIP on its preferred host only, over a few intervals.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(lan.holders(lan.addr(WEB)), [0]);
        assert_eq!(lan.holders(lan.addr(MAIL)), [1]);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Under their alias labels, as UCARP's scripts put them.
    for (i, label) in [(0, "eth0:carp0"), (1, "eth0:carp1")] {
        let addrs = lan.hosts[i]
            .ns
            .ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
        assert!(addrs.contains(label), "host {i}: {addrs}");
    }
    // UCARP's argv: interface (the alias), VIP, then xparam if any.
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    for call in [
        format!("up eth0:carp0 {}", lan.addr(WEB)),
        format!("up eth0:carp1 {} mail", lan.addr(MAIL)),
    ] {
        assert!(
            calls.lines().any(|l| l == call),
            "{call:?} not run:\n{calls}"
        );
    }
}

#[test]
fn a_debian_host_and_a_red_hat_host_imported_run_as_one_cluster() {
    if !require_root("a_debian_host_and_a_red_hat_host_imported_run_as_one_cluster") {
        return;
    }
    const VHID: u8 = 30;
    let lan = Lan::new("imd", 86, 11, 2);
    let vip = lan.addr(VHID);
    let (ip0, ip1) = (lan.hosts[0].ip, lan.hosts[1].ip);
    // Host 0, Debian: preferred; the VIP's netmask on the alias stanza that
    // the package's vip-up brought up.
    let root0 = lan.path("host0");
    let interfaces = root0.join("etc/network/interfaces");
    std::fs::create_dir_all(interfaces.parent().unwrap()).unwrap();
    std::fs::write(
        &interfaces,
        format!(
            "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet static\n\
             \taddress {ip0}/24\n\tucarp-vid {VHID}\n\tucarp-vip {vip}\n\tucarp-password shared-pw\n\
             \tucarp-advskew 0\n\tucarp-advbase 1\n\tucarp-master yes\n\
             iface eth0:ucarp inet static\n\taddress {vip}\n\tnetmask 255.255.255.0\n"
        ),
    )
    .unwrap();
    // Host 1, Red Hat: vip-common.conf and vip-030.conf, backup.
    let root1 = lan.path("host1");
    let etc_ucarp = root1.join("etc/ucarp");
    std::fs::create_dir_all(&etc_ucarp).unwrap();
    std::fs::write(
        etc_ucarp.join("vip-common.conf"),
        format!(
            "PASSWORD=\"shared-pw\"\nBIND_INTERFACE=\"eth0\"\nSOURCE_ADDRESS=\"{ip1}\"\n\
             OPTIONS=\"--shutdown --preempt\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        etc_ucarp.join(format!("vip-0{VHID}.conf")),
        format!("VIP_ADDRESS=\"{vip}\"\nOPTIONS=\"--shutdown --advskew=100\"\n"),
    )
    .unwrap();
    let mut daemons = Vec::new();
    for (i, (root, input)) in [(&root0, "/etc/network/interfaces"), (&root1, "/etc/ucarp")]
        .into_iter()
        .enumerate()
    {
        let output = root.join("carpd-xdp.toml");
        run_ok(std::process::Command::new(CARPD).args([
            "import-ucarp",
            "--root",
            root.to_str().unwrap(),
            input,
            "--output",
            output.to_str().unwrap(),
        ]));
        daemons.push(start_imported(&lan, i, &output, root));
    }
    daemons[0].wait_state(VHID, "MASTER");
    daemons[1].wait_state(VHID, "BACKUP");
    assert_eq!(lan.holders(vip), [0]);
    // As `ifup eth0:ucarp` had it: the stanza's netmask and label.
    let addrs = lan.hosts[0]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(
        addrs
            .lines()
            .any(|l| l.contains(&format!("{vip}/24")) && l.contains("eth0:ucarp")),
        "{addrs}"
    );
    // The preferred host goes: the Red Hat host takes the VIP, as the /32
    // its package's vip-up added.
    daemons[0].signal(libc::SIGTERM);
    daemons[1].wait_state(VHID, "MASTER");
    let until = Instant::now() + Duration::from_secs(10);
    while lan.holders(vip) != [1] {
        assert!(Instant::now() < until, "holders {:?}", lan.holders(vip));
        std::thread::sleep(Duration::from_millis(100));
    }
    let addrs = lan.hosts[1]
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{vip}/32")), "{addrs}");
}
