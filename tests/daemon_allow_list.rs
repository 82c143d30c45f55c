//! The peer allow-list against an on-link attacker who holds one authentic
//! advert (captured from the wire; built here with the password, which gives
//! the same bytes) and re-sends it from an address of its own with advskew 0
//! and demote 0: fields the HMAC does not cover. Without an allow-list the
//! master hears a better master and steps down, and the VIP goes to a host
//! that will not answer for it: the attack works, as `docs/replay.md` says.
//! With `peers` listing the two real hosts, the receive path drops the frames
//! before the HMAC (counter `not_allowed`) and nothing moves.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carp_common::constants::CARP_GROUP_V4;
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;
use carp_daemon::proto::auth::Authenticator;
use carp_daemon::proto::counter::tagged;
use carp_daemon::proto::Password;
use common::cluster::{Daemon, Inst, Lan};
use common::{require_root, send_frames};

const VHID: u8 = 81;
const ATTACKER: u8 = 77;

/// The attacker's frames: an authentic advert for the VIP, advskew 0 and
/// demote 0, from `.77` of the LAN.
fn attack_frames(lan: &Lan, inst: &Inst) -> Vec<Vec<u8>> {
    let vip = IpAddr::V4(lan.addr(VHID));
    let auth = Authenticator::new(Password::new(inst.password.as_bytes()).unwrap(), &[vip]);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut h = CarpHeader::advertisement(VHID, 1, 0, 0, tagged(now_ms));
    auth.seal(&mut h);
    let carp = h.to_bytes();
    let src = lan.addr(ATTACKER).octets();
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let n = advert_frame(
        &AdvertFrame {
            src_mac: [0x02, 0xaa, 0, 0, 0, ATTACKER],
            dst_mac: None,
            vlan_id: None,
            ip: IpLayer::V4 {
                src,
                dst: CARP_GROUP_V4,
            },
            ttl: 255,
            ip_id: 7,
            carp: &carp,
        },
        &mut buf,
    );
    vec![buf[..n].to_vec()]
}

/// Two hosts (A advskew 50, B advskew 100, preempt); `extra` added to both
/// instances. Returns once A is MASTER and B BACKUP.
fn pair(tag: &str, b: u8, extra: &str) -> (Lan, Inst, Daemon, Daemon) {
    let lan = Lan::new(tag, 81, b, 2);
    let base = Inst::new(VHID, lan.addr(VHID), 50).extra(extra);
    let mut a = lan.daemon(0, "a", std::slice::from_ref(&base));
    a.wait_state(VHID, "MASTER");
    let mut inst_b = base.clone();
    inst_b.advskew = 100;
    let mut bd = lan.daemon(1, "b", std::slice::from_ref(&inst_b));
    bd.wait_state(VHID, "BACKUP");
    (lan, base, a, bd)
}

/// Sends the attack for `d`, a few frames every 100 ms.
fn attack(lan: &Lan, inst: &Inst, d: Duration) {
    let frames = attack_frames(lan, inst);
    let end = Instant::now() + d;
    while Instant::now() < end {
        send_frames(&lan.client, "eth0", &frames);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn transitions(d: &Daemon) -> u64 {
    d.instance(VHID).expect("status")["transitions"]
        .as_u64()
        .unwrap()
}

#[test]
fn without_an_allow_list_a_re_sent_advert_moves_the_vip() {
    if !require_root("without_an_allow_list_a_re_sent_advert_moves_the_vip") {
        return;
    }
    let (lan, inst, mut a, _b) = pair("alw0", 10, "");
    attack(&lan, &inst, Duration::from_secs(2));
    // A hears a better master and steps down: the attack works without the
    // list (what remains possible without it, docs/replay.md).
    a.wait_state(VHID, "BACKUP");
    let a_status = a.instance(VHID).unwrap();
    assert_eq!(
        a_status["master"].as_str(),
        Some(lan.addr(ATTACKER).to_string().as_str()),
        "{a_status}"
    );
}

#[test]
fn with_an_allow_list_the_re_sent_advert_is_dropped_and_nothing_moves() {
    if !require_root("with_an_allow_list_the_re_sent_advert_is_dropped_and_nothing_moves") {
        return;
    }
    // The hosts of `Lan::new(_, 81, 19, 2)` are 10.81.19.1 and .2.
    let peers = "peers = [\"10.81.19.1\", \"10.81.19.2\"]\n";
    let (lan, inst, a, b) = pair("alw1", 19, peers);
    assert_eq!(
        [lan.hosts[0].ip, lan.hosts[1].ip],
        [Ipv4Addr::new(10, 81, 19, 1), Ipv4Addr::new(10, 81, 19, 2)]
    );
    let (ta, tb) = (transitions(&a), transitions(&b));
    attack(&lan, &inst, Duration::from_secs(3));
    std::thread::sleep(inst.master_down());
    assert_eq!(a.state(VHID).as_deref(), Some("MASTER"));
    assert_eq!(b.state(VHID).as_deref(), Some("BACKUP"));
    assert_eq!((transitions(&a), transitions(&b)), (ta, tb));
    assert_eq!(lan.holders(lan.addr(VHID)), [0]);
    let dropped = a.status().expect("status")["counters"]["not_allowed"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        dropped >= 20,
        "the receive path dropped {dropped} frames as not allowed"
    );
}
