//! A dual-stack instance: one vhid with an IPv4 and an IPv6 VIP, adverts on
//! both families (224.0.0.18 from the host address, ff02::12 from the
//! link-local one), the HMAC over both addresses as carp(4) computes it, and
//! both VIPs moving together on failover, answered over IPv6 by the new
//! master after its unsolicited neighbour advertisement.

mod common;

use std::path::PathBuf;

use common::cluster::{eventually, Daemon, Lan};
use common::require_root;

const VHID: u8 = 41;
const VIP4: &str = "10.216.1.10";
const VIP6: &str = "fd00:41::10";

fn has(ns: &common::Netns, addr: &str) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", "eth0"])
        .contains(&format!(" {addr}/"))
}

fn start(lan: &Lan, i: usize, advskew: u8) -> Daemon {
    let name = format!("d{i}");
    let sock: PathBuf = lan.path(&format!("{name}.sock"));
    let text = format!(
        "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nvips = [\"{VIP4}/24\", \"{VIP6}/64\"]\n\
         advskew = {advskew}\npreempt = true\npassword = \"pw41\"\n",
        sock.display()
    );
    let config = lan.write(&format!("{name}.toml"), &text, 0o644);
    Daemon::start(
        lan,
        i,
        &name,
        &["--config".into(), config.display().to_string()],
        &[],
        sock,
    )
}

fn ping6(lan: &Lan) -> bool {
    lan.client
        .command("ping")
        .args(["-6", "-c", "1", "-W", "1", VIP6])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dual_stack_instance_fails_over_with_both_vips() {
    if !require_root("dual_stack_instance_fails_over_with_both_vips") {
        return;
    }
    let lan = Lan::new("c6", 216, 1, 2);
    for (ns, addr) in [
        (&lan.hosts[0].ns, "fd00:41::1/64"),
        (&lan.hosts[1].ns, "fd00:41::2/64"),
        (&lan.client, "fd00:41::64/64"),
    ] {
        ns.ip(&["-6", "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    let mut d0 = start(&lan, 0, 0);
    let mut d1 = start(&lan, 1, 100);
    d0.wait_state(VHID, "MASTER");
    d1.wait_state(VHID, "BACKUP");
    eventually("both VIPs on host 0", || {
        (has(&lan.hosts[0].ns, VIP4) && has(&lan.hosts[0].ns, VIP6)).then_some(())
    });
    assert!(!has(&lan.hosts[1].ns, VIP4) && !has(&lan.hosts[1].ns, VIP6));
    // The backup accepts the master's adverts of both families: the HMAC
    // over both addresses matches, in the kernel and in the core.
    let backup = eventually("the backup accepts adverts", || {
        let st = d1.status()?;
        (st["instances"][0]["adverts_accepted"].as_u64()? >= 4).then_some(st)
    });
    assert_eq!(backup["counters"]["hmac"], 0, "{backup}");
    assert_eq!(
        backup["instances"][0]["rejects"]
            .as_object()
            .map(|r| r.len()),
        Some(0),
        "{backup}"
    );
    let master = backup["instances"][0]["master"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!master.is_empty(), "{backup}");
    eventually("the VIP answers over IPv6", || ping6(&lan).then_some(()));

    lan.cut(0);
    d1.wait_state(VHID, "MASTER");
    eventually("both VIPs on host 1", || {
        (has(&lan.hosts[1].ns, VIP4) && has(&lan.hosts[1].ns, VIP6)).then_some(())
    });
    eventually("the new master answers over IPv6", || {
        ping6(&lan).then_some(())
    });
    let neigh = lan.client.ip(&["-6", "neigh", "show", VIP6]);
    let mac = lan.hosts[1]
        .mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        neigh.contains(&mac),
        "the client's neighbour entry points at host 1 ({mac}): {neigh}"
    );
    d0.wait_not_master(VHID);
}
