//! The on-link attacker of `tests/daemon_attack.rs`, run from a namespace of
//! a [`Lan`](crate::common::cluster::Lan):
//!
//! - [`Capture`]: a packet socket that keeps the adverts one host sends, as
//!   whole Ethernet frames (the attacker's raw material);
//! - [`Advert`]: one captured frame and the edits an attacker without the
//!   password can make (source address, the unauthenticated advbase /
//!   advskew / demote, a forged counter and digest), checksums fixed;
//! - [`flood`]: sends frames in a cycle at the highest rate the sender
//!   reaches, optionally from N distinct spoofed IPv4 sources.
//!
//! The sender is the release-built `carp-flood` of this workspace when the
//! workspace has that package (built once per test process), or the binary
//! named by `CARP_FLOOD`; otherwise a small in-process `sendmmsg` sender
//! with the same semantics.
//!
//! Only `tests/daemon_attack.rs` uses this file: include it with
//! `#[path = "common/attack.rs"] mod attack;`.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use carp_common::checksum::internet_checksum;
use carp_common::constants::{CARP_HEADER_LEN, CARP_HMAC_LEN, CARP_TTL, IPPROTO_CARP};

use carp_testnet::socket;

use crate::common::{must, run_ok, Netns};

/// Offset of the IPv4 header: the LAN is untagged Ethernet.
const IP: usize = 14;

/// One advert as it was on the wire: Ethernet, IPv4, CARP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert(pub Vec<u8>);

impl Advert {
    /// The frame if it is an untagged IPv4 CARP advert with TTL 255.
    pub fn parse(frame: &[u8]) -> Option<Advert> {
        if frame.len() < IP + 20 || frame[12..14] != [0x08, 0x00] {
            return None;
        }
        let ip = &frame[IP..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_CARP || ip[8] != CARP_TTL {
            return None;
        }
        if frame.len() < IP + ihl + CARP_HEADER_LEN {
            return None;
        }
        Some(Advert(frame.to_vec()))
    }

    /// Offset of the CARP header.
    fn carp(&self) -> usize {
        IP + usize::from(self.0[IP] & 0x0f) * 4
    }

    /// IPv4 source.
    pub fn source(&self) -> Ipv4Addr {
        let s = &self.0[IP + 12..IP + 16];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    /// Ethernet source.
    pub fn mac(&self) -> [u8; 6] {
        self.0[6..12].try_into().unwrap()
    }

    /// The vhid.
    pub fn vhid(&self) -> u8 {
        self.0[self.carp() + 1]
    }

    /// advbase (s), advskew (1/256 s) and demote, as sent.
    pub fn priority(&self) -> (u8, u8, u8) {
        let c = self.carp();
        (self.0[c + 5], self.0[c + 2], self.0[c + 4])
    }

    /// The 64-bit counter.
    pub fn counter(&self) -> u64 {
        let c = self.carp();
        u64::from_be_bytes(self.0[c + 8..c + 16].try_into().unwrap())
    }

    /// The same advert sent by another host: Ethernet and IPv4 source
    /// replaced, IPv4 header checksum fixed. The HMAC does not cover the
    /// source, so it still verifies.
    pub fn sent_by(mut self, mac: [u8; 6], src: Ipv4Addr) -> Advert {
        self.0[6..12].copy_from_slice(&mac);
        self.0[IP + 12..IP + 16].copy_from_slice(&src.octets());
        self.seal_ip();
        self
    }

    /// The same advert with advbase, advskew and demote edited (fields the
    /// HMAC does not cover), CARP checksum fixed.
    pub fn with_priority(mut self, advbase: u8, advskew: u8, demote: u8) -> Advert {
        let c = self.carp();
        self.0[c + 2] = advskew;
        self.0[c + 4] = demote;
        self.0[c + 5] = advbase;
        self.seal_carp();
        self
    }

    /// The same advert with another counter and digest (a forgery: the
    /// digest does not verify), CARP checksum fixed.
    pub fn with_digest(mut self, counter: u64, hmac: [u8; CARP_HMAC_LEN]) -> Advert {
        let c = self.carp();
        self.0[c + 8..c + 16].copy_from_slice(&counter.to_be_bytes());
        self.0[c + 16..c + 16 + CARP_HMAC_LEN].copy_from_slice(&hmac);
        self.seal_carp();
        self
    }

    fn seal_ip(&mut self) {
        let end = self.carp();
        self.0[IP + 10..IP + 12].fill(0);
        let sum = internet_checksum(&self.0[IP..end]);
        self.0[IP + 10..IP + 12].copy_from_slice(&sum.to_be_bytes());
    }

    fn seal_carp(&mut self) {
        let c = self.carp();
        self.0[c + 6..c + 8].fill(0);
        let sum = internet_checksum(&self.0[c..c + CARP_HEADER_LEN]);
        self.0[c + 6..c + 8].copy_from_slice(&sum.to_be_bytes());
    }
}

/// A packet socket in a namespace keeping every advert one host sends for
/// one vhid, from when it starts until it is dropped.
pub struct Capture {
    adverts: Arc<Mutex<Vec<Advert>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `ifname` of `ns` the adverts for `vhid` from
    /// `src`. The socket is bound to IPv4 frames only, so it never sees the
    /// frames sent from this namespace (outgoing frames reach only
    /// `ETH_P_ALL` sockets): floods from here cost it nothing.
    pub fn start(ns: &Netns, ifname: &str, src: Ipv4Addr, vhid: u8) -> Capture {
        let ifindex = ns.ifindex(ifname);
        let fd = ns.run(|| must(socket::packet_socket(libc::ETH_P_IP as u16, ifindex, 0)));
        must(socket::set_recv_timeout(&fd, Duration::from_millis(100)));
        let adverts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (adverts, stop) = (Arc::clone(&adverts), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: buf is valid for its length; fd is open.
                    let n = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(n) = usize::try_from(n) else { continue };
                    let Some(a) = Advert::parse(&buf[..n]) else {
                        continue;
                    };
                    if a.source() == src && a.vhid() == vhid {
                        adverts.lock().unwrap().push(a);
                    }
                }
            })
        };
        Capture {
            adverts,
            stop,
            thread: Some(thread),
        }
    }

    /// Every advert captured so far, oldest first.
    pub fn adverts(&self) -> Vec<Advert> {
        self.adverts.lock().unwrap().clone()
    }

    /// The last `n` adverts captured, waiting up to `within` for that many.
    pub fn last(&self, n: usize, within: Duration) -> Vec<Advert> {
        let start = Instant::now();
        loop {
            let all = self.adverts();
            if all.len() >= n {
                return all[all.len() - n..].to_vec();
            }
            assert!(
                start.elapsed() < within,
                "captured {} adverts within {within:?}, wanted {n}",
                all.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one flood did (the JSON line `carp-flood` prints).
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Frames sent.
    pub sent: u64,
    /// How long it sent.
    pub seconds: f64,
    /// `sent / seconds`.
    pub pps: f64,
    /// Sending threads.
    pub threads: u32,
}

/// Sending threads: one per CPU, the highest rate the machine reaches (on a
/// veth LAN the flood is delivered in the sender's context, bridge and XDP
/// included, so more threads than CPUs add nothing).
pub fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// How floods are sent.
#[derive(Debug)]
enum Sender {
    /// `carp-flood` at this path.
    Binary(PathBuf),
    /// [`flood_in_process`].
    InProcess,
}

/// The sender, chosen (and `carp-flood` built) once per test process.
fn sender() -> &'static Sender {
    static SENDER: OnceLock<Sender> = OnceLock::new();
    SENDER.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARP_FLOOD") {
            return Sender::Binary(path.into());
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("carp-daemon lives in the workspace");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let meta = run_ok(
            Command::new(&cargo)
                .args(["metadata", "--no-deps", "--format-version", "1"])
                .current_dir(workspace),
        );
        let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).expect("metadata");
        let has_flood = meta["packages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "carp-flood"));
        if !has_flood {
            eprintln!("carp-flood is not in the workspace: flooding with the in-process sender");
            return Sender::InProcess;
        }
        // A no-op when it is up to date.
        run_ok(
            Command::new(&cargo)
                .args(["build", "--release", "-p", "carp-flood"])
                .current_dir(workspace),
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        Sender::Binary(target.join("release").join("carp-flood"))
    })
}

/// Sends `frames` in a cycle out of `eth0` of `ns` for `secs` seconds, as
/// fast as the sender goes. With `spoof` = N, the k-th frame sent leaves
/// with IPv4 source (its own source + k mod N), header checksum fixed.
/// `scratch` holds the frames file for `carp-flood`.
pub fn flood(ns: &Netns, scratch: &Path, frames: &[Advert], secs: u32, spoof: Option<u32>) -> Sent {
    assert!(!frames.is_empty(), "nothing to flood with");
    match sender() {
        Sender::Binary(path) => flood_binary(path, ns, scratch, frames, secs, spoof),
        Sender::InProcess => flood_in_process(ns, frames, secs, spoof),
    }
}

/// Runs `carp-flood --iface eth0 --frames FILE ...` inside `ns`.
fn flood_binary(
    bin: &Path,
    ns: &Netns,
    scratch: &Path,
    frames: &[Advert],
    secs: u32,
    spoof: Option<u32>,
) -> Sent {
    static FILES: AtomicU32 = AtomicU32::new(0);
    let file = scratch.join(format!(
        "flood-{}.frames",
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut bytes = Vec::new();
    for f in frames {
        bytes.extend_from_slice(&(f.0.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&f.0);
    }
    std::fs::write(&file, bytes).unwrap_or_else(|e| panic!("write {file:?}: {e}"));
    let mut cmd = ns.command(bin.to_str().expect("utf-8 path"));
    cmd.arg("--iface")
        .arg("eth0")
        .arg("--frames")
        .arg(&file)
        .arg("--threads")
        .arg(threads().to_string())
        .arg("--seconds")
        .arg(secs.to_string());
    if let Some(n) = spoof {
        cmd.arg("--spoof-sources").arg(n.to_string());
    }
    let out = run_ok(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from carp-flood: {text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let num = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("no {k} in carp-flood's {line}"))
    };
    Sent {
        sent: num("sent") as u64,
        seconds: num("seconds"),
        pps: num("pps"),
        threads: num("threads") as u32,
    }
}

/// Frames per `sendmmsg` call.
const BATCH: usize = 64;
/// Largest frame the in-process sender copies.
const FRAME_MAX: usize = 256;

/// The in-process sender: [`threads`] threads, each with its own packet
/// socket opened in `ns`, sending batches with `sendmmsg`.
fn flood_in_process(ns: &Netns, frames: &[Advert], secs: u32, spoof: Option<u32>) -> Sent {
    let ifindex = ns.ifindex("eth0");
    let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.0.clone()).collect();
    assert!(frames.iter().all(|f| f.len() <= FRAME_MAX));
    let threads = threads();
    let sockets: Vec<OwnedFd> = ns.run(|| {
        (0..threads)
            .map(|_| must(socket::packet_socket(0, ifindex, 0)))
            .collect()
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(secs.into());
    let sent: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = sockets
            .iter()
            .enumerate()
            .map(|(t, fd)| {
                let frames = &frames;
                s.spawn(move || send_loop(fd, ifindex, frames, spoof, t as u64, threads, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    Sent {
        sent,
        seconds,
        pps: sent as f64 / seconds,
        threads,
    }
}

/// One of `threads` sending threads: frames `first`, `first + threads`, ...
/// of the cycle until `end`; returns how many left.
fn send_loop(
    fd: &OwnedFd,
    ifindex: u32,
    frames: &[Vec<u8>],
    spoof: Option<u32>,
    first: u64,
    threads: u32,
    end: Instant,
) -> u64 {
    let mut addr = socket::sockaddr_ll(ifindex);
    addr.sll_addr[..6].copy_from_slice(&frames[0][..6]);
    let mut bufs = vec![[0u8; FRAME_MAX]; BATCH];
    // SAFETY: all-zero mmsghdr is valid; the pointers are set below.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let step = u64::from(threads);
    let (mut k, mut sent) = (first, 0u64);
    while Instant::now() < end {
        let mut lens = [0usize; BATCH];
        for (i, (buf, len)) in bufs.iter_mut().zip(lens.iter_mut()).enumerate() {
            let n = k + i as u64 * step;
            let f = &frames[(n % frames.len() as u64) as usize];
            let buf = &mut buf[..f.len()];
            buf.copy_from_slice(f);
            if let Some(count) = spoof {
                let ihl = usize::from(buf[IP] & 0x0f) * 4;
                let base = u32::from_be_bytes(buf[IP + 12..IP + 16].try_into().unwrap());
                let src = base.wrapping_add((n % u64::from(count)) as u32);
                buf[IP + 12..IP + 16].copy_from_slice(&src.to_be_bytes());
                buf[IP + 10..IP + 12].fill(0);
                let sum = internet_checksum(&buf[IP..IP + ihl]);
                buf[IP + 10..IP + 12].copy_from_slice(&sum.to_be_bytes());
            }
            *len = f.len();
        }
        let mut iovs: Vec<libc::iovec> = bufs
            .iter_mut()
            .zip(lens)
            .map(|(b, len)| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: len,
            })
            .collect();
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every mmsghdr points at a live iovec, buffer and address.
        let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0) };
        if let Ok(n) = u64::try_from(rc) {
            sent += n;
            k += n * step;
        }
    }
    sent
}

/// Resident set size of process `pid`, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// Sends `advert` from `count` distinct IPv4 sources, `base` and the
/// addresses after it, each at least once: floods of `--spoof-sources` over
/// the sources not yet used, until every one was (each flood sized from the
/// rate of the one before, starting at `pps`). Returns the total.
pub fn flood_sources(
    ns: &Netns,
    scratch: &Path,
    advert: &Advert,
    base: Ipv4Addr,
    count: u32,
    mut pps: f64,
) -> Sent {
    let mut total = Sent {
        sent: 0,
        seconds: 0.0,
        pps: 0.0,
        threads: 0,
    };
    let mut covered: u32 = 0;
    while covered < count {
        let left = count - covered;
        let first = Ipv4Addr::from(u32::from(base).wrapping_add(covered));
        let frames = [advert.clone().sent_by(advert.mac(), first)];
        let secs = (f64::from(left) * 1.25 / pps.max(1.0))
            .ceil()
            .clamp(1.0, 60.0) as u32;
        let s = flood(ns, scratch, &frames, secs, Some(left));
        assert!(s.sent >= 1000, "a flood sent only {} frames", s.sent);
        covered += u32::try_from(s.sent).unwrap_or(u32::MAX).min(left);
        total.sent += s.sent;
        total.seconds += s.seconds;
        total.threads = s.threads;
        pps = s.pps;
    }
    total.pps = total.sent as f64 / total.seconds;
    total
}

/// Sends one frame out of `eth0` of a namespace every period, from a thread
/// of its own, until dropped: the attacker of issue 19 re-sending one
/// captured advert after its master died.
pub struct Resender {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Resender {
    /// Starts sending `frame` from `ns` every `every`, the first at once.
    pub fn start(ns: &Netns, frame: Advert, every: Duration) -> Resender {
        let ifindex = ns.ifindex("eth0");
        let fd = ns.run(|| must(socket::packet_socket(0, ifindex, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        let thread = {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if socket::send_frame(&fd, ifindex, &frame.0).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Resender {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Frames sent so far.
    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Resender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
