//! Runs one emulated CARP peer ([`crate::peers::Peer`]) inside a host
//! namespace of a [`Lan`], as the real implementation would run there:
//!
//! - a thread enters the namespace and opens an `AF_PACKET` socket on `eth0`
//!   (so that it sees whole frames: source MAC and IP source), keeps the
//!   IPv4 protocol-112 frames with TTL 255 that it did not send itself, and
//!   hands their CARP header to the peer;
//! - the peer's adverts leave as whole Ethernet frames from the peer's own
//!   virtual MAC (`00:00:5e:00:0X:<vhid>`), TTL 255, to 224.0.0.18 /
//!   01:00:5e:00:00:12, IP and CARP checksums computed;
//! - the VIPs are added and removed with `ip addr` as the peer asks.
//!
//! [`PeerHost::kill`] stops the peer dead (no further advert, VIPs removed:
//! nothing is left behind, as when a host is gone), [`PeerHost::shutdown`]
//! stops it the way its interface going down would (OpenBSD bows out),
//! [`PeerHost::pause`] freezes it (nothing sent, received frames dropped, VIPs
//! kept, like SIGSTOP) until [`PeerHost::resume`]. Drop kills it.
//!
//! Only the test binaries that also declare `mod peers;` can use this file,
//! so it is not part of `common`: include it with
//! `#[path = "common/peer_ns.rs"] mod peer_ns;`.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use carp_common::constants::{CARP_GROUP_V4, CARP_HEADER_LEN, CARP_TTL, IPPROTO_CARP};
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;
use carp_daemon::proto::Nanos;
use carp_testnet::socket;

use crate::common::cluster::Lan;
use crate::common::{must, Netns};
use crate::peers::{Ignored, Output, Peer, PeerConfig, PeerState, PeerStats};

/// What the test asks of the peer thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    /// Run normally.
    Run,
    /// Frozen: nothing sent, frames dropped, timers not run.
    Pause,
    /// Stop at once, remove the VIPs.
    Kill,
    /// Stop as the implementation does when its interface goes down.
    Shutdown,
}

/// One advert the peer received.
#[derive(Clone, Debug)]
pub struct Heard {
    /// When.
    pub at: Instant,
    /// IP source.
    pub src: IpAddr,
    /// Ethernet source.
    pub mac: [u8; 6],
    /// The CARP header.
    pub header: CarpHeader,
    /// Why the peer ignored it, if it did.
    pub ignored: Option<Ignored>,
}

/// State shared between the test and the peer thread.
struct Inner {
    /// The peer itself.
    peer: Peer,
    /// What the thread should do.
    control: Control,
    /// Every state change: (when, new state).
    states: Vec<(Instant, PeerState)>,
    /// Every advert received (not our own).
    heard: Vec<Heard>,
    /// Whether the VIPs are on the interface now.
    vips_added: bool,
    /// The last error of an `ip` command or of sendto, if any.
    error: Option<String>,
}

/// A running emulated peer in a host namespace.
pub struct PeerHost {
    /// Shared with the thread.
    inner: Arc<Mutex<Inner>>,
    /// The thread; joined on stop.
    thread: Option<JoinHandle<()>>,
    /// Namespace name, for `ip -n`.
    ns: String,
    /// `ADDRESS/PREFIX` of each VIP.
    vips: Vec<String>,
    /// Name for messages.
    name: String,
}

impl PeerHost {
    /// Starts `cfg` on host `i` of `lan`; `vip_prefix` is the prefix length
    /// the IPv4 VIPs get on `eth0` (IPv6 ones get /64). The peer's source address must be host `i`'s.
    pub fn start(lan: &Lan, i: usize, cfg: PeerConfig, vip_prefix: u8) -> PeerHost {
        let host = &lan.hosts[i];
        assert_eq!(
            cfg.src,
            IpAddr::V4(host.ip),
            "the peer must send from host {i}'s address"
        );
        let ns = host.ns.name().to_string();
        let ifindex = host.ns.ifindex("eth0");
        // IPv6 VIPs always get a /64.
        let vips: Vec<String> = cfg
            .vips
            .iter()
            .map(|v| match v {
                IpAddr::V4(_) => format!("{v}/{vip_prefix}"),
                IpAddr::V6(_) => format!("{v}/64"),
            })
            .collect();
        let name = format!("{:?} peer on host {i} ({})", cfg.kind, host.ip);
        let t0 = Instant::now();
        let inner = Arc::new(Mutex::new(Inner {
            peer: Peer::new(cfg, Nanos::ZERO),
            control: Control::Run,
            states: Vec::new(),
            heard: Vec::new(),
            vips_added: false,
            error: None,
        }));
        let sock = PacketSocket::open_in(&host.ns, ifindex);
        let thread = {
            let inner = Arc::clone(&inner);
            let (ns, vips) = (ns.clone(), vips.clone());
            std::thread::spawn(move || run(sock, inner, t0, &ns, &vips))
        };
        PeerHost {
            inner,
            thread: Some(thread),
            ns,
            vips,
            name,
        }
    }

    /// Current state.
    pub fn state(&self) -> PeerState {
        self.lock().peer.state()
    }

    /// Counts of the peer.
    pub fn stats(&self) -> PeerStats {
        self.lock().peer.stats()
    }

    /// The counter of the peer's last advert sent or adopted (OpenBSD: its
    /// cookie).
    pub fn counter(&self) -> u64 {
        self.lock().peer.counter()
    }

    /// Every state change so far: (when, new state).
    pub fn states(&self) -> Vec<(Instant, PeerState)> {
        self.lock().states.clone()
    }

    /// Every advert received so far.
    pub fn heard(&self) -> Vec<Heard> {
        self.lock().heard.clone()
    }

    /// The last error of an `ip` command or of sending, if any.
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// Changes the demote count (OpenBSD) / demotion (FreeBSD).
    pub fn set_demote(&self, demote: u8) {
        self.lock().peer.set_demote(demote);
    }

    /// Freezes the peer (like SIGSTOP).
    pub fn pause(&self) {
        self.lock().control = Control::Pause;
    }

    /// Unfreezes the peer; its overdue timers fire at once.
    pub fn resume(&self) {
        let mut g = self.lock();
        if g.control == Control::Pause {
            g.control = Control::Run;
        }
    }

    /// Stops the peer dead: no further advert, VIPs removed. Waits for it.
    pub fn kill(&mut self) {
        self.stop(Control::Kill);
    }

    /// Stops the peer as its interface going down would (OpenBSD sends its
    /// bow-out advert first), VIPs removed. Waits for it.
    pub fn shutdown(&mut self) {
        self.stop(Control::Shutdown);
    }

    /// A one-line summary for failure messages.
    pub fn summary(&self) -> String {
        let g = self.lock();
        format!(
            "{}: state {:?}, {:?}, {} adverts heard, error {:?}",
            self.name,
            g.peer.state(),
            g.peer.stats(),
            g.heard.len(),
            g.error
        )
    }

    fn stop(&mut self, how: Control) {
        {
            let mut g = self.lock();
            if !matches!(g.control, Control::Kill | Control::Shutdown) {
                g.control = how;
            }
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                eprintln!("{}: the peer thread panicked", self.name);
            }
        }
        // Whatever happened to the thread, leave no VIP behind.
        for v in &self.vips {
            let _ = Command::new("ip")
                .args(["-n", &self.ns, "addr", "del", v, "dev", "eth0"])
                .output();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PeerHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} ----", self.summary());
        }
        self.stop(Control::Kill);
    }
}

/// The peer thread: receive, run timers, carry out outputs, until stopped.
fn run(sock: PacketSocket, inner: Arc<Mutex<Inner>>, t0: Instant, ns: &str, vips: &[String]) {
    let now = || Nanos(t0.elapsed().as_nanos() as u64);
    let mut ip_id: u16 = 1;
    let mut buf = [0u8; 2048];
    loop {
        let (control, next) = {
            let g = inner.lock().unwrap_or_else(|e| e.into_inner());
            (g.control, g.peer.poll_timeout())
        };
        match control {
            Control::Kill => break,
            Control::Shutdown => {
                let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
                g.peer.shutdown();
                carry_out(&sock, &mut g, ns, vips, &mut ip_id);
                break;
            }
            Control::Pause => {
                // A frozen process reads nothing; its socket buffer overflows
                // and the frames are lost. Drop them here.
                while sock.recv(&mut buf).is_some() {}
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Control::Run => {}
        }
        // Sleep until the next deadline or a frame, at most 20 ms so that
        // control requests are seen quickly.
        let wait = next.map_or(Duration::from_millis(20), |at| {
            Duration::from_nanos(at.0.saturating_sub(now().0)).min(Duration::from_millis(20))
        });
        sock.wait_readable(wait);
        while let Some((len, outgoing)) = sock.recv(&mut buf) {
            if outgoing {
                continue;
            }
            let Some((src, mac, header)) = parse(&buf[..len]) else {
                continue;
            };
            let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.control != Control::Run {
                break;
            }
            let ignored = g.peer.handle_advert(now(), src, &header).err();
            g.heard.push(Heard {
                at: Instant::now(),
                src,
                mac,
                header,
                ignored,
            });
            carry_out(&sock, &mut g, ns, vips, &mut ip_id);
        }
        let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.control == Control::Run {
            g.peer.handle_timeout(now());
            carry_out(&sock, &mut g, ns, vips, &mut ip_id);
        }
    }
    // Leave nothing behind.
    let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
    if g.vips_added {
        set_vips(&mut g, ns, vips, false);
    }
}

/// Carries out every output the peer queued.
fn carry_out(sock: &PacketSocket, g: &mut Inner, ns: &str, vips: &[String], ip_id: &mut u16) {
    while let Some(out) = g.peer.poll_output() {
        match out {
            Output::Send(header) => {
                let cfg = g.peer.config();
                let IpAddr::V4(src) = cfg.src else {
                    panic!("only IPv4 sources are emulated")
                };
                let frame = frame(cfg.kind.source_mac(cfg.vhid), src, *ip_id, &header);
                *ip_id = ip_id.wrapping_add(1);
                if let Err(e) = sock.send(&frame) {
                    g.error = Some(format!("sendto: {e}"));
                }
            }
            Output::AddVips => set_vips(g, ns, vips, true),
            Output::RemoveVips => set_vips(g, ns, vips, false),
            Output::State { to, .. } => g.states.push((Instant::now(), to)),
        }
    }
}

/// Adds or removes the VIPs with `ip addr`.
fn set_vips(g: &mut Inner, ns: &str, vips: &[String], add: bool) {
    for v in vips {
        let verb = if add { "add" } else { "del" };
        let mut cmd = Command::new("ip");
        cmd.args(["-n", ns, "addr", verb, v, "dev", "eth0"]);
        if v.contains(':') {
            cmd.arg("nodad");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                g.error = Some(format!(
                    "ip addr {verb} {v}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) => g.error = Some(format!("ip addr {verb} {v}: {e}")),
        }
    }
    g.vips_added = add;
}

/// The whole Ethernet frame of an advert from `src_mac` / `src`.
pub fn frame(src_mac: [u8; 6], src: Ipv4Addr, ip_id: u16, h: &CarpHeader) -> Vec<u8> {
    let carp = h.to_bytes();
    let spec = AdvertFrame {
        src_mac,
        dst_mac: None,
        vlan_id: None,
        ip: IpLayer::V4 {
            src: src.octets(),
            dst: CARP_GROUP_V4,
        },
        ttl: CARP_TTL,
        ip_id,
        carp: &carp,
    };
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let len = advert_frame(&spec, &mut buf);
    buf[..len].to_vec()
}

/// Source address, source MAC and CARP header of an IPv4 CARP frame with
/// TTL 255; `None` for anything else.
pub fn parse(f: &[u8]) -> Option<(IpAddr, [u8; 6], CarpHeader)> {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_CARP || ip[8] != CARP_TTL {
        return None;
    }
    let carp = ip.get(ihl..ihl + CARP_HEADER_LEN)?;
    let header = CarpHeader::from_bytes(carp.try_into().ok()?);
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&f[6..12]);
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    Some((src, mac, header))
}

/// An `AF_PACKET` socket bound to one interface of a namespace, closed on
/// drop.
struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens the socket from a thread inside `ns` (the socket stays in that
    /// namespace), seeing every frame.
    fn open_in(ns: &Netns, ifindex: u32) -> PacketSocket {
        let fd = ns.run(|| must(socket::packet_socket(libc::ETH_P_ALL as u16, ifindex, 0)));
        PacketSocket { fd, ifindex }
    }

    /// Waits at most `timeout` for a frame.
    fn wait_readable(&self, timeout: Duration) {
        socket::wait_readable(&self.fd, timeout)
    }

    /// One frame without blocking: its length and whether we sent it.
    fn recv(&self, buf: &mut [u8]) -> Option<(usize, bool)> {
        socket::recv_frame(&self.fd, buf)
    }

    /// Sends one whole frame.
    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        socket::send_frame(&self.fd, self.ifindex, frame)
    }
}
