//! The shipped `dist/carpd-xdp.toml` starts after the one edit its head
//! describes (the address in `vips`, the password in `vhid10.pass` next to
//! it), as installed: its own `/run/carpd-xdp.sock` and
//! `/var/lib/carpd-xdp`, here on tmpfs in a private mount namespace inside
//! the host's network namespace, so the host's /run and /var/lib are never
//! touched. It becomes master alone on its LAN, adds the VIP, and removes it
//! on SIGTERM.

mod common;

use std::time::Duration;

use common::cluster::{eventually, has_addr, Lan, Proc};
use common::require_root;

#[test]
fn the_shipped_file_starts_after_its_one_edit() {
    if !require_root("the_shipped_file_starts_after_its_one_edit") {
        return;
    }
    let lan = Lan::new("dist", 221, 1, 1);
    let vip = lan.addr(10);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/carpd-xdp.toml"
    ))
    .unwrap();
    // The edit, as the file's head says.
    let edited = shipped.replace(
        "vips = [\"ADDRESS/PREFIX\"]",
        &format!("vips = [\"{vip}/24\"]"),
    );
    assert_ne!(edited, shipped, "the placeholder line moved");
    std::fs::create_dir_all(lan.path("etc")).unwrap();
    let config = lan.write("etc/carpd-xdp.toml", &edited, 0o644);
    lan.write("etc/vhid10.pass", "same-on-both\n", 0o600);
    // /dev/log may point into /run: the tmpfs hides the host's syslog
    // socket, which the daemon must survive (it then logs to stderr).
    let script = format!(
        "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && \
         exec {} --config {}",
        common::cluster::CARPD,
        config.display()
    );
    let args: Vec<String> = ["-m", "--propagation", "private", "sh", "-c", &script]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut daemon = Proc::spawn(&lan, &lan.hosts[0].ns, "dist", "unshare", &args, &[]);
    eventually("the VIP on the only host", || {
        if let Some(status) = daemon.child.0.try_wait().unwrap() {
            panic!("carpd-xdp exited ({status}): {}", daemon.stderr_text());
        }
        has_addr(&lan.hosts[0].ns, vip).then_some(())
    });
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        daemon.stderr_text()
    );
    assert!(!has_addr(&lan.hosts[0].ns, vip), "the VIP was left behind");
}

/// Kills a daemon that detached itself (`-B`), by the pid its status gives.
struct Detached(Option<u32>);

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill has no memory preconditions; pid is our daemon's.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn a_daemon_started_from_a_config_directory_reloads_after_detaching() {
    if !require_root("a_daemon_started_from_a_config_directory_reloads_after_detaching") {
        return;
    }
    let lan = Lan::new("distrel", 221, 2, 1);
    let (vip, second) = (lan.addr(10), lan.addr(11));
    let sock = lan.path("d.sock");
    let text = |vips: &str| {
        format!(
            "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\nstate_dir = \"state\"\n\
             [[instance]]\ninterface = \"eth0\"\nvhid = 10\nvips = [{vips}]\n\
             password_file = \"vhid10.pass\"\n",
            sock.display()
        )
    };
    lan.write("d.toml", &text(&format!("\"{vip}/24\"")), 0o644);
    lan.write("vhid10.pass", "pw\n", 0o600);
    // Started as `cd DIR; carpd-xdp -B --config d.toml`: everything relative.
    let mut start = lan.hosts[0].ns.command(common::cluster::CARPD);
    start
        .args(["-B", "--config", "d.toml"])
        .current_dir(lan.dir.path());
    let out = start.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = eventually("the detached daemon's status", || {
        common::cluster::status(&sock).and_then(|st| st["pid"].as_u64())
    });
    let _guard = Detached(Some(pid as u32));
    eventually("the VIP", || has_addr(&lan.hosts[0].ns, vip).then_some(()));
    assert!(lan.path("state").is_dir(), "state_dir relative to the file");
    // SIGHUP after the daemon changed directory to /: the same file is read.
    lan.write(
        "d.toml",
        &text(&format!("\"{vip}/24\", \"{second}/24\"")),
        0o644,
    );
    // SAFETY: kill has no memory preconditions; pid is our daemon's.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
    eventually("the VIP added by the reload", || {
        has_addr(&lan.hosts[0].ns, second).then_some(())
    });
}
