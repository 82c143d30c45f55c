//! A UCARP active/active pair migrated with `carpd-xdp import-ucarp`, run on
//! two namespace hosts: each host's `/etc/default/ucarp` and per-VIP files
//! (as Debian's init script reads them) are imported, and the two daemons
//! started from the result give what UCARP gave with those files: VIP web
//! on host A (advskew 0 there, 100 on B), VIP mail on host B (the other way
//! round), the VIPs under their alias labels, and the scripts called with
//! UCARP's argv (`<interface> <vip> [xparam]`).

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
        // The test's own status socket and state directory, next to what the
        // import wrote.
        let sock = lan.path(&format!("d{i}.sock"));
        let text = std::fs::read_to_string(&output).unwrap();
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
        std::fs::write(&output, text).unwrap();
        let args = vec!["--config".to_string(), output.display().to_string()];
        daemons.push(Daemon::start(&lan, i, &format!("d{i}"), &args, &[], sock));
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
