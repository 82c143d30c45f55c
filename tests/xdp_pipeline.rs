//! The receive path end to end, in a throw-away namespace pair: the program
//! attached in native, skb, tc (tcx ingress) and off (fallback) modes in
//! turn; valid adverts
//! (IPv4, IPv6), one frame per defect, a burst above the rate limit and
//! ordinary traffic are sent from the peer, and the test checks the exact
//! events and per-reason counters the daemon reports, that ping and UDP still
//! cross the link, and that after SIGKILL no program is left on the
//! interface.

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::process::Stdio;
use std::time::{Duration, Instant};

use carp_common::constants::*;
use carp_common::craft::IpLayer;
use common::frames::{carp, defects, fix_carp_checksum, frame, v4};
use common::{require_root, send_frames, veth_pair, ChildGuard, Lines, Netns};
use serde_json::Value;

const VHID: u8 = 7;
const SENDER4: [u8; 4] = [10, 201, 0, 1];
const FLOODER4: [u8; 4] = [10, 201, 0, 9];
const SENDER6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const RATE_BURST: usize = 5;
const BURST_SENT: usize = 12;
const DEADLINE: Duration = Duration::from_secs(15);

struct Monitor {
    child: ChildGuard,
    stdin: std::process::ChildStdin,
    lines: Lines,
    events: Vec<Value>,
}

impl Monitor {
    fn start(ns: &Netns, ifname: &str, mode: &str) -> Monitor {
        Monitor::start_with(
            ns,
            ifname,
            mode,
            &["--rate", "1", "--burst", &RATE_BURST.to_string()],
        )
    }

    fn start_with(ns: &Netns, ifname: &str, mode: &str, extra: &[&str]) -> Monitor {
        Monitor::spawn(ns, ifname, VHID, mode, mode, extra)
    }

    /// A monitor of `vhid` started in `mode` that must end up receiving in
    /// `expect_mode`.
    fn spawn(
        ns: &Netns,
        ifname: &str,
        vhid: u8,
        mode: &str,
        expect_mode: &str,
        extra: &[&str],
    ) -> Monitor {
        let mut child = ns
            .command(env!("CARGO_BIN_EXE_carpd-xdp"))
            .args([
                "monitor",
                "--interface",
                ifname,
                "--vhid",
                &vhid.to_string(),
                "--xdp-mode",
                mode,
                "--json",
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn carpd-xdp monitor");
        let stdin = child.stdin.take().unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        let mut m = Monitor {
            child: ChildGuard(child),
            stdin,
            lines,
            events: Vec::new(),
        };
        let ready = m.next_line().expect("no ready line from the monitor");
        assert_eq!(ready["event"], "ready", "{ready}");
        assert_eq!(
            ready["interfaces"][0]["mode"], expect_mode,
            "attached in another mode: {ready}"
        );
        m
    }

    fn next_line(&mut self) -> Option<Value> {
        let line = self.lines.next_within(DEADLINE)?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}")))
    }

    /// Asks for the counters, keeping the adverts printed meanwhile.
    fn counters(&mut self) -> Value {
        writeln!(self.stdin, "counters").unwrap();
        loop {
            let v = self.next_line().expect("no counters line");
            match v["event"].as_str() {
                Some("counters") => return v["counters"].clone(),
                Some("advert") => self.events.push(v),
                _ => panic!("unexpected line {v}"),
            }
        }
    }

    /// Polls the counters until `delivered` reaches `expected` (or the deadline).
    fn counters_when_delivered(&mut self, expected: u64) -> Value {
        let start = Instant::now();
        loop {
            let c = self.counters();
            if c["delivered"].as_u64() >= Some(expected) || start.elapsed() > DEADLINE {
                return c;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A raw protocol-112 socket that joined 224.0.0.18 in its namespace, as a
/// VRRP daemon or a second CARP process would listen.
struct RawListener(std::os::fd::OwnedFd);

impl RawListener {
    fn open(ns: &Netns, ifindex: u32) -> RawListener {
        use std::os::fd::FromRawFd;
        ns.run(|| {
            // SAFETY: plain socket(2); checked below.
            let fd =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_NONBLOCK, 112) };
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_be_bytes(CARP_GROUP_V4).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            // SAFETY: mreq is a valid ip_mreqn of the size given.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    (&mreq as *const libc::ip_mreqn).cast(),
                    size_of::<libc::ip_mreqn>() as u32,
                )
            };
            assert_eq!(
                rc,
                0,
                "join 224.0.0.18: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: fd is a fresh descriptor owned by nothing else.
            RawListener(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
        })
    }

    /// Number of datagrams queued.
    fn drain(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 2048];
        let mut n = 0;
        // SAFETY: buf is valid for writes of its length.
        while unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) } >= 0
        {
            n += 1;
        }
        n
    }
}

fn xdp_on(ns: &Netns, ifname: &str) -> bool {
    ns.ip(&["-d", "link", "show", "dev", ifname])
        .contains("xdp")
}

/// True when our TC program is on `ifname`'s tcx ingress hook (`ip` does
/// not show tcx links; the kernel is asked directly).
fn tc_on(ns: &Netns, ifname: &str) -> bool {
    use aya::programs::{SchedClassifier, TcAttachType};
    ns.run(|| {
        let (_, programs) = SchedClassifier::query_tcx(ifname, TcAttachType::Ingress)
            .unwrap_or_else(|e| panic!("query the tcx programs of {ifname}: {e}"));
        programs
            .iter()
            .any(|p| p.name_as_str() == Some(TC_PROGRAM_NAME))
    })
}

/// True when the receive path of `mode` has its program on `ifname`.
fn program_on(ns: &Netns, ifname: &str, mode: &str) -> bool {
    match mode {
        "tc" => tc_on(ns, ifname),
        _ => xdp_on(ns, ifname),
    }
}

fn run_mode(mode: &str) {
    let (sender, receiver) = veth_pair("carpx-tx", "veth0", "carpx-rx", "veth1");
    sender.ip(&["addr", "add", "10.201.0.1/24", "dev", "veth0"]);
    receiver.ip(&["addr", "add", "10.201.0.2/24", "dev", "veth1"]);
    sender.ip(&["-6", "addr", "add", "fd00::1/64", "dev", "veth0", "nodad"]);
    receiver.ip(&["-6", "addr", "add", "fd00::2/64", "dev", "veth1", "nodad"]);
    let mac = sender.mac("veth0");

    let mut monitor = Monitor::start(&receiver, "veth1", mode);
    let listener = RawListener::open(&receiver, receiver.ifindex("veth1"));
    if mode != "off" {
        assert!(
            program_on(&receiver, "veth1", mode),
            "{mode}: no program on veth1 while attached"
        );
    }
    if mode == "tc" {
        assert!(!xdp_on(&receiver, "veth1"), "tc: XDP attached too");
    }

    // Valid adverts: two over IPv4, two over IPv6.
    let mut frames = vec![
        v4(mac, SENDER4, &carp(VHID, 100)),
        v4(mac, SENDER4, &carp(VHID, 101)),
    ];
    for counter in [200, 201] {
        frames.push(frame(
            mac,
            IpLayer::V6 {
                src: SENDER6,
                dst: CARP_GROUP_V6,
            },
            &carp(VHID, counter),
        ));
    }
    let defects = defects(mac, SENDER4, VHID);
    frames.extend(defects.iter().map(|(_, f)| f.clone()));
    // A burst from one source for one vhid above its rate limit (1/s, burst
    // RATE_BURST).
    frames.extend((0..BURST_SENT).map(|i| v4(mac, FLOODER4, &carp(VHID, 300 + i as u64))));
    send_frames(&sender, "veth0", &frames);

    let delivered = 4 + RATE_BURST as u64;
    let c = monitor.counters_when_delivered(delivered);
    assert_eq!(c["delivered"], delivered, "{mode}: {c}");
    for (reason, _) in &defects {
        assert_eq!(c[*reason], 1, "{mode}: counter {reason}: {c}");
    }
    assert_eq!(
        c["rate_limited"],
        (BURST_SENT - RATE_BURST) as u64,
        "{mode}: {c}"
    );
    assert_eq!(c["ringbuf_full"], 0, "{mode}: {c}");
    let total: u64 = c
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        delivered + defects.len() as u64 + (BURST_SENT - RATE_BURST) as u64,
        "{mode}: stray counts {c}"
    );

    // Frames the receive path cannot claim reach the stack (a VRRP daemon or
    // another CARP process may want them): TTL 64, version 3, type 2,
    // authlen 6, bad CARP checksum, unknown vhid. Frames of the served vhid
    // are consumed. Without XDP the stack sees every well-formed IPv4 frame
    // (the truncated, bad-header and fragment ones it drops itself).
    let passed = listener.drain();
    let expected = if mode == "off" { 2 + 6 + BURST_SENT } else { 6 };
    assert_eq!(
        passed, expected,
        "{mode}: protocol-112 frames reaching a raw socket"
    );

    // Exactly the delivered adverts arrived as events, with their fields.
    while monitor.events.len() < delivered as usize {
        let v = monitor
            .next_line()
            .unwrap_or_else(|| panic!("{mode}: only {} events", monitor.events.len()));
        assert_eq!(v["event"], "advert");
        monitor.events.push(v);
    }
    let c = monitor.counters();
    assert_eq!(
        monitor.events.len(),
        delivered as usize,
        "{mode}: extra events {:?}",
        monitor.events
    );
    assert_eq!(c["delivered"], delivered);
    let from = |src: &str| monitor.events.iter().filter(|e| e["src"] == src).count();
    assert_eq!(from("10.201.0.1"), 2, "{mode}");
    assert_eq!(from("fd00::1"), 2, "{mode}");
    assert_eq!(from("10.201.0.9"), RATE_BURST, "{mode}");
    assert!(monitor
        .events
        .iter()
        .all(|e| e["vhid"] == VHID && e["ifindex"] == receiver.ifindex("veth1")));
    let counters: Vec<u64> = monitor
        .events
        .iter()
        .map(|e| e["counter"].as_u64().unwrap())
        .collect();
    assert!(
        counters.contains(&100) && counters.contains(&201),
        "{mode}: {counters:?}"
    );

    // Ordinary traffic passes while the program is attached.
    let ping = sender
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", "10.201.0.2"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{mode}: ping failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let ping6 = sender
        .command("ping")
        .args(["-6", "-c", "2", "-i", "0.2", "-W", "2", "fd00::2"])
        .output()
        .unwrap();
    assert!(
        ping6.status.success(),
        "{mode}: ping -6 failed: {}",
        String::from_utf8_lossy(&ping6.stdout)
    );
    let rx = receiver.run(|| UdpSocket::bind("10.201.0.2:9999").unwrap());
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sender.run(|| {
        let tx = UdpSocket::bind("10.201.0.1:0").unwrap();
        for i in 0..20u8 {
            tx.send_to(&[i; 64], "10.201.0.2:9999").unwrap();
        }
    });
    let mut got = [0u8; 128];
    for i in 0..20u8 {
        let (n, _) = rx
            .recv_from(&mut got)
            .unwrap_or_else(|e| panic!("{mode}: UDP datagram {i} lost: {e}"));
        assert_eq!(&got[..n], &[i; 64]);
    }
    // Ordinary traffic is not counted by the receive path.
    assert_eq!(
        monitor.counters(),
        c,
        "{mode}: ordinary traffic touched the counters"
    );

    // SIGKILL: the BPF link dies with the process; nothing stays attached.
    let Monitor { mut child, .. } = monitor;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let start = Instant::now();
    while program_on(&receiver, "veth1", mode) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !program_on(&receiver, "veth1", mode),
        "{mode}: program left on veth1 after SIGKILL"
    );
    let ping = sender
        .command("ping")
        .args(["-c", "1", "-W", "2", "10.201.0.2"])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{mode}: ping after the daemon died");
}

/// UCARP's adverts from shared/vectors (password carp-harness, vhid 7, VIP
/// 10.99.0.100): frame 1 from 10.99.0.1, frames 5-7 from 10.99.0.2 with
/// growing counters.
const UCARP: [&str; 4] = [
    "01005e00001200005e0000070800451000382eff4000ff7061d00a630001e0000012210700070001351cefede3c9ad1a1659039fcad73800a97623f077211f6f7d1936ebf435",
    "01005e00001200005e000007080045100038191f4000ff7077af0a630002e0000012210764070001359af9a5aa1d5fddab07be7c5d7c6b8c5de5c4e6afe2f832e89f12c248e4",
    "01005e00001200005e0000070800451000381e6a4000ff7072640a630002e00000122107640700012a80f9a5aa1d5fddab08f14c71f40ab18f7f740d6d3aac9c7d2d8bba0d88",
    "01005e00001200005e00000708004510003894354000ff70fc980a630002e00000122107640700016a83f9a5aa1d5fddab09e8f6c73e45d60f30a20fb74a7cb354d0df9b520c",
];

/// Sends `frames` and waits until `delivered` adverts have been printed.
fn send_and_wait(sender: &Netns, monitor: &mut Monitor, frames: &[Vec<u8>], delivered: usize) {
    send_frames(sender, "veth0", frames);
    while monitor.events.len() < delivered {
        let v = monitor
            .next_line()
            .unwrap_or_else(|| panic!("only {} events", monitor.events.len()));
        assert_eq!(v["event"], "advert", "{v}");
        monitor.events.push(v);
    }
}

/// HMAC and replay checked in the receive path itself: forged and replayed
/// adverts are dropped there (own counters) and never reach userspace.
fn run_auth(mode: &str) {
    let (sender, receiver) = veth_pair("carpx-atx", "veth0", "carpx-arx", "veth1");
    let mut monitor = Monitor::start_with(
        &receiver,
        "veth1",
        mode,
        &[
            "--pass",
            "carp-harness",
            "--addr",
            "10.99.0.100",
            "--strict",
            "--rate",
            "0",
        ],
    );
    let [f1, f5, f6, f7] = UCARP.map(common::unhex);
    // A source's strict rule is installed once its first advert is seen.
    send_and_wait(&sender, &mut monitor, std::slice::from_ref(&f5), 1);
    send_and_wait(
        &sender,
        &mut monitor,
        &[f6.clone(), f5.clone(), f6.clone(), f1.clone()],
        3,
    );
    let mut forged = f7.clone();
    forged[60] ^= 0x01; // one HMAC bit
    fix_carp_checksum(&mut forged);
    send_and_wait(&sender, &mut monitor, &[f1.clone(), forged, f7.clone()], 4);
    let c = monitor.counters_when_delivered(4);
    assert_eq!(c["delivered"], 4, "{mode}: {c}");
    assert_eq!(c["replay"], 3, "{mode}: f5 and f6 again, and f1 again: {c}");
    assert_eq!(c["hmac"], 1, "{mode}: {c}");
    let counters: Vec<u64> = monitor
        .events
        .iter()
        .map(|e| e["counter"].as_u64().unwrap())
        .collect();
    assert_eq!(
        counters,
        [
            17988971329740450567,
            17988971329740450568,
            17288724999877301849,
            17988971329740450569
        ],
        "{mode}: exactly f5, f6, f1, f7 reached userspace, in order"
    );
}

#[test]
fn native_mode_authenticates_in_the_kernel() {
    if require_root("native_mode_authenticates_in_the_kernel") {
        run_auth("native");
    }
}

#[test]
fn skb_mode_authenticates_in_the_kernel() {
    if require_root("skb_mode_authenticates_in_the_kernel") {
        run_auth("skb");
    }
}

#[test]
fn tc_mode_authenticates_in_the_kernel() {
    if require_root("tc_mode_authenticates_in_the_kernel") {
        run_auth("tc");
    }
}

#[test]
fn off_mode_authenticates_in_the_fallback_path() {
    if require_root("off_mode_authenticates_in_the_fallback_path") {
        run_auth("off");
    }
}

#[test]
fn native_mode() {
    if require_root("native_mode") {
        run_mode("native");
    }
}

#[test]
fn skb_mode() {
    if require_root("skb_mode") {
        run_mode("skb");
    }
}

#[test]
fn tc_mode() {
    if require_root("tc_mode") {
        run_mode("tc");
    }
}

#[test]
fn off_mode_fallback_path() {
    if require_root("off_mode_fallback_path") {
        run_mode("off");
    }
}

#[test]
fn explicit_mode_on_a_missing_interface_fails_cleanly() {
    if !require_root("explicit_mode_on_a_missing_interface_fails_cleanly") {
        return;
    }
    let ns = Netns::new("carpx-bad");
    let out = ns
        .command(env!("CARGO_BIN_EXE_carpd-xdp"))
        .args(["monitor", "--interface", "nosuch0", "--vhid", "7"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such interface: nosuch0"), "{err}");
}

/// UCARP style, one process per vhid on one interface: the first takes the
/// XDP hook, the next two (`auto`) chain on the tcx hook. Each counts and
/// delivers exactly its own vhid's adverts and passes on the others; frames
/// of no process's vhid reach the stack; ordinary traffic still passes.
#[test]
fn one_process_per_vhid_chains_xdp_and_tc() {
    if !require_root("one_process_per_vhid_chains_xdp_and_tc") {
        return;
    }
    let (sender, receiver) = veth_pair("carpx-ctx", "veth0", "carpx-crx", "veth1");
    sender.ip(&["addr", "add", "10.201.0.1/24", "dev", "veth0"]);
    receiver.ip(&["addr", "add", "10.201.0.2/24", "dev", "veth1"]);
    let mac = sender.mac("veth0");
    let rate = ["--rate", "0"];
    let mut first = Monitor::spawn(&receiver, "veth1", 7, "auto", "native", &rate);
    let mut second = Monitor::spawn(&receiver, "veth1", 8, "auto", "tc", &rate);
    let mut third = Monitor::spawn(&receiver, "veth1", 9, "tc", "tc", &rate);
    assert!(xdp_on(&receiver, "veth1") && tc_on(&receiver, "veth1"));
    let listener = RawListener::open(&receiver, receiver.ifindex("veth1"));

    // vhid 7 ×3, 8 ×4, 9 ×5, and 2 adverts of vhid 10, nobody's.
    let mut frames = Vec::new();
    for (vhid, n) in [(7u8, 3u64), (8, 4), (9, 5), (10, 2)] {
        frames.extend((0..n).map(|i| v4(mac, SENDER4, &carp(vhid, 1000 + i))));
    }
    send_frames(&sender, "veth0", &frames);
    let c1 = first.counters_when_delivered(3);
    let c2 = second.counters_when_delivered(4);
    let c3 = third.counters_when_delivered(5);
    assert_eq!(c1["delivered"], 3, "first: {c1}");
    assert_eq!(c2["delivered"], 4, "second: {c2}");
    assert_eq!(c3["delivered"], 5, "third: {c3}");
    // What each program saw of the others: the XDP program every frame, the
    // second every frame but vhid 7's, the third only vhids 9 and 10 (tcx
    // programs run in the order they were attached).
    assert_eq!(c1["unknown_vhid"], 4 + 5 + 2, "first: {c1}");
    assert_eq!(c2["unknown_vhid"], 5 + 2, "second: {c2}");
    assert_eq!(c3["unknown_vhid"], 2, "third: {c3}");
    for (name, m, vhid) in [
        ("first", &mut first, 7),
        ("second", &mut second, 8),
        ("third", &mut third, 9),
    ] {
        assert!(
            m.events.iter().all(|e| e["vhid"] == vhid),
            "{name}: {:?}",
            m.events
        );
    }
    // Only vhid 10's adverts reached the stack.
    assert_eq!(
        listener.drain(),
        2,
        "protocol-112 frames reaching the stack"
    );
    let ping = sender
        .command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "2", "10.201.0.2"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping through XDP and two tcx programs"
    );

    // The first process gone, its XDP link goes with it: the tcx programs
    // now see vhid 7's adverts, and neither claims them.
    let Monitor { mut child, .. } = first;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let start = Instant::now();
    while xdp_on(&receiver, "veth1") && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    send_frames(&sender, "veth0", &[v4(mac, SENDER4, &carp(7, 2000))]);
    let start = Instant::now();
    while listener.drain() == 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "vhid 7's advert did not pass both tcx programs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(second.counters()["unknown_vhid"], 5 + 2 + 1);
    assert_eq!(third.counters()["unknown_vhid"], 2 + 1);
}
