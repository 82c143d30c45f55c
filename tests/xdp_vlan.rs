//! Issue 19, item 3: a VLAN's adverts are judged by the VLAN's instances,
//! never by the parent interface's. A vhid served on the parent (`eth0`)
//! must neither drop (as a bad HMAC) nor take for its own the adverts of the
//! same vhid on a VLAN above it (`eth0.100`): its receive path leaves them to
//! the stack, which hands them to the VLAN interface and its own path.
//!
//! - Through both programs with `BPF_PROG_TEST_RUN`: frames tagged in their
//!   bytes pass untouched, counted nowhere; a priority tag (VLAN id 0) is
//!   no VLAN.
//! - In a namespace pair, with the receive path attached in every mode
//!   (native, skb, tc, off): tagged adverts sent over a veth reach XDP with
//!   the tag in the frame, and the TC program and the fallback socket with
//!   the tag taken off into the socket buffer by the stack; none is judged
//!   by the parent.
//! - Where the kernel has VLAN interfaces (the 8021q module), the same vhid
//!   on the parent and on a VLAN above it, with different passwords: each
//!   hears its own adverts. Skipped, with the reason, where it has none.
//!
//! Needs root.

mod common;

use std::time::{Duration, Instant};

use carp_common::constants::COUNTER_TAG;
use carp_common::event::AdvertEvent;
use carp_common::hmac::{self, HmacKey};
use carp_common::maps::Settings;
use carp_common::reason::Reason;
use carp_daemon::xdp::counters::Counters;
use carp_daemon::xdp::key::VhidKeys;
use carp_daemon::xdp::mode::XdpMode;
use carp_daemon::xdp::program::{Hook, XdpProgram};
use carp_daemon::xdp::receive::ReceivePath;
use common::frames::{carp, carp_signed, v4};
use common::xdp::serve_keyed;
use common::{block_on, require_root, send_frames, veth_pair, Netns};

const VHID: u8 = 7;
/// The parent interface's password, and the VLAN's.
const PARENT_PASSWORD: &[u8] = b"parent-pw";
const VLAN_PASSWORD: &[u8] = b"vlan-100-pw";
const VLAN_ID: u16 = 100;
const PARENT_VIP: [u8; 4] = [10, 203, 0, 100];
const VLAN_VIP: [u8; 4] = [10, 203, 100, 100];
const PARENT_SRC: [u8; 4] = [10, 203, 0, 1];
const VLAN_SRC: [u8; 4] = [10, 203, 100, 1];
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const COUNTER: u64 = (COUNTER_TAG as u64) << 48 | 500;
const LOOPBACK: u32 = 1;
const DEADLINE: Duration = Duration::from_secs(10);

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const TCX_DROP: u32 = 2;
const TCX_NEXT: u32 = u32::MAX;

/// A valid advert of [`VHID`] from `src`, signed with `password` over `vip`.
fn signed(password: &[u8], vip: [u8; 4], src: [u8; 4], counter: u64) -> Vec<u8> {
    let key = HmacKey::precompute(password, VHID, &[vip], &[]).expect("the password fits");
    v4(
        MAC,
        src,
        &carp_signed(VHID, counter, hmac::compute(&key, &counter.to_be_bytes())),
    )
}

/// `frame` with an 802.1Q tag of `vlan_id` (priority 5) after the MACs.
fn tagged(frame: &[u8], vlan_id: u16) -> Vec<u8> {
    let tci = (5 << 13) | vlan_id;
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

fn parent_keys() -> VhidKeys {
    VhidKeys::new(PARENT_PASSWORD, VHID, &[PARENT_VIP.into()]).unwrap()
}

fn vlan_keys() -> VhidKeys {
    VhidKeys::new(VLAN_PASSWORD, VHID, &[VLAN_VIP.into()]).unwrap()
}

#[test]
fn tagged_frames_pass_both_programs_untouched() {
    if !require_root("tagged_frames_pass_both_programs_untouched") {
        return;
    }
    let mut p = XdpProgram::load(Settings::with_rate(0, 0, 0)).expect("load the object");
    serve_keyed(
        &mut p,
        LOOPBACK,
        VHID,
        PARENT_PASSWORD,
        &[PARENT_VIP.into()],
    );
    let mut ring = p.take_events().expect("the ring buffer");
    for hook in [Hook::Xdp, Hook::Tc] {
        let (pass, drop) = match hook {
            Hook::Xdp => (XDP_PASS, XDP_DROP),
            Hook::Tc => (TCX_NEXT, TCX_DROP),
        };
        let mut run = |frame: &[u8]| {
            let before = p.counters().unwrap();
            let ret = p.test_run(hook, frame, 1).unwrap().return_value;
            (ret, p.counters().unwrap().since(&before))
        };
        let vlan_advert = signed(VLAN_PASSWORD, VLAN_VIP, VLAN_SRC, COUNTER);
        // Untagged, the VLAN's advert fails the parent's HMAC: the bug when
        // the tag is not looked at.
        let (ret, d) = run(&vlan_advert);
        assert_eq!((ret, d.get(Reason::Hmac)), (drop, 1), "{hook:?}");
        let parent_advert = signed(PARENT_PASSWORD, PARENT_VIP, PARENT_SRC, COUNTER);
        for (what, f) in [
            ("the VLAN's advert", tagged(&vlan_advert, VLAN_ID)),
            (
                "an advert the parent would take",
                tagged(&parent_advert, VLAN_ID),
            ),
            (
                "a forged advert",
                tagged(&v4(MAC, VLAN_SRC, &carp(VHID, 1)), 4095),
            ),
        ] {
            let (ret, d) = run(&f);
            assert_eq!(ret, pass, "{hook:?}: {what} goes on to the stack");
            assert_eq!(d, Counters::default(), "{hook:?}: {what} counted");
        }
        assert!(ring.next().is_none(), "{hook:?}: a tagged frame delivered");
        // A priority tag is no VLAN: the parent's own advert.
        let (ret, d) = run(&tagged(&parent_advert, 0));
        assert_eq!(ret, drop, "{hook:?}: priority-tagged advert consumed");
        assert_eq!(d.get(Reason::Delivered), 1, "{hook:?}: {:?}", d.0);
        let item = ring.next().expect("the priority-tagged advert's event");
        let ev = AdvertEvent::from_bytes(&item).unwrap();
        assert_eq!((ev.vlan_id, &ev.src[..4]), (0, &PARENT_SRC[..]));
    }
}

/// Adverts taken from `path` until `want` arrived or the deadline passed.
fn events(path: &mut ReceivePath, want: usize) -> Vec<AdvertEvent> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want && start.elapsed() < DEADLINE {
        match path.try_recv().unwrap() {
            Some(ev) => got.push(ev),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    got
}

/// The parent serves [`VHID`] in `mode`; the VLAN's adverts (the same
/// vhid, another password) arrive tagged, then one advert of the parent's.
fn parent_ignores_vlan_adverts(mode: XdpMode) {
    let (sender, receiver) = veth_pair("carpv-tx", "veth0", "carpv-rx", "veth1");
    let ifindex = receiver.ifindex("veth1");
    let vlan_adverts: Vec<Vec<u8>> = (1..=5)
        .map(|n| {
            tagged(
                &signed(VLAN_PASSWORD, VLAN_VIP, VLAN_SRC, COUNTER + n),
                VLAN_ID,
            )
        })
        .collect();
    let parent_advert = signed(PARENT_PASSWORD, PARENT_VIP, PARENT_SRC, COUNTER);
    receiver.run(|| {
        block_on(async {
            let ifaces = [("veth1".to_string(), ifindex)];
            let mut path = ReceivePath::open(&ifaces, mode, Settings::with_rate(0, 0, 0))
                .unwrap_or_else(|e| panic!("{}: {e}", mode.name()));
            assert_eq!(path.interfaces()[0].reception.name(), mode.name());
            path.serve_vhid(ifindex, VHID, &[]).unwrap();
            path.set_hmac_keys(ifindex, VHID, Some(&parent_keys()))
                .unwrap();
            send_frames(&sender, "veth0", &vlan_adverts);
            send_frames(&sender, "veth0", std::slice::from_ref(&parent_advert));
            let mut got = events(&mut path, 1);
            // Whatever else was on its way has arrived by now.
            std::thread::sleep(Duration::from_millis(200));
            got.extend(events(&mut path, 1));
            let c = path.counters().unwrap();
            let name = mode.name();
            let sources: Vec<&[u8]> = got.iter().map(|ev| &ev.src[..4]).collect();
            assert_eq!(
                sources,
                [&PARENT_SRC[..]],
                "{name}: the parent's advert alone"
            );
            assert_eq!(
                c.get(Reason::Hmac),
                0,
                "{name}: the VLAN's judged: {:?}",
                c.0
            );
            assert_eq!(c.get(Reason::Delivered), 1, "{name}: {:?}", c.0);
        })
    });
}

#[test]
fn native_parent_ignores_vlan_adverts() {
    if require_root("native_parent_ignores_vlan_adverts") {
        parent_ignores_vlan_adverts(XdpMode::Native);
    }
}

#[test]
fn skb_parent_ignores_vlan_adverts() {
    if require_root("skb_parent_ignores_vlan_adverts") {
        parent_ignores_vlan_adverts(XdpMode::Skb);
    }
}

#[test]
fn tc_parent_ignores_vlan_adverts() {
    if require_root("tc_parent_ignores_vlan_adverts") {
        parent_ignores_vlan_adverts(XdpMode::Tc);
    }
}

#[test]
fn off_parent_ignores_vlan_adverts() {
    if require_root("off_parent_ignores_vlan_adverts") {
        parent_ignores_vlan_adverts(XdpMode::Off);
    }
}

/// Creates `veth1.100` on `veth1`; why not, when the kernel cannot.
fn vlan_interface(ns: &Netns) -> Result<(), String> {
    let name = format!("veth1.{VLAN_ID}");
    carp_testnet::Netns::ip(
        ns,
        &[
            "link",
            "add",
            "link",
            "veth1",
            "name",
            &name,
            "type",
            "vlan",
            "id",
            &VLAN_ID.to_string(),
        ],
    )
    .map_err(|e| e.to_string())?;
    ns.ip(&["link", "set", &name, "up"]);
    Ok(())
}

/// The same vhid on `veth1` and on `veth1.100`, each with its password, in
/// `mode`: each interface's path delivers its own adverts. False when the
/// kernel has no VLAN interfaces (the reason printed).
fn each_hears_its_own(mode: XdpMode) -> bool {
    let (sender, receiver) = veth_pair("carpv-tx", "veth0", "carpv-rx", "veth1");
    if let Err(why) = vlan_interface(&receiver) {
        eprintln!(
            "skipped parent_and_vlan_each_hear_their_own: the kernel has no VLAN interfaces here (8021q module missing?): {why}"
        );
        return false;
    }
    let parent = receiver.ifindex("veth1");
    let vlan = receiver.ifindex(&format!("veth1.{VLAN_ID}"));
    let frames = [
        tagged(&signed(VLAN_PASSWORD, VLAN_VIP, VLAN_SRC, COUNTER), VLAN_ID),
        signed(PARENT_PASSWORD, PARENT_VIP, PARENT_SRC, COUNTER),
    ];
    receiver.run(|| {
        block_on(async {
            let ifaces = [
                ("veth1".to_string(), parent),
                (format!("veth1.{VLAN_ID}"), vlan),
            ];
            let mut path = ReceivePath::open(&ifaces, mode, Settings::with_rate(0, 0, 0))
                .unwrap_or_else(|e| panic!("{}: {e}", mode.name()));
            path.serve_vhid(parent, VHID, &[]).unwrap();
            path.set_hmac_keys(parent, VHID, Some(&parent_keys()))
                .unwrap();
            path.serve_vhid(vlan, VHID, &[]).unwrap();
            path.set_hmac_keys(vlan, VHID, Some(&vlan_keys())).unwrap();
            send_frames(&sender, "veth0", &frames);
            let mut got: Vec<(u32, [u8; 4])> = events(&mut path, 2)
                .iter()
                .map(|ev| (ev.ifindex, [ev.src[0], ev.src[1], ev.src[2], ev.src[3]]))
                .collect();
            got.sort();
            let mut want = vec![(parent, PARENT_SRC), (vlan, VLAN_SRC)];
            want.sort();
            let c = path.counters().unwrap();
            assert_eq!(got, want, "{}: {:?}", mode.name(), c.0);
            assert_eq!(c.get(Reason::Hmac), 0, "{}: {:?}", mode.name(), c.0);
        })
    });
    true
}

#[test]
fn parent_and_vlan_each_hear_their_own() {
    if !require_root("parent_and_vlan_each_hear_their_own") {
        return;
    }
    for mode in [XdpMode::Auto, XdpMode::Tc, XdpMode::Off] {
        if !each_hears_its_own(mode) {
            return;
        }
    }
}
