//! Outage prober: from the client namespace, an ICMP echo request to the VIP
//! every [`PERIOD`]; replies are captured on a packet socket so that each
//! records who answered (source MAC) and when. The outage around a fault is
//! the longest gap between consecutive replies from the last reply before
//! the fault on.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use carp_common::checksum::internet_checksum;
pub use carp_testnet::mac_str;
use carp_testnet::socket;

use super::Netns;

/// Gap between echo requests.
pub const PERIOD: Duration = Duration::from_millis(10);

/// One echo reply.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// When it was read.
    pub at: Instant,
    /// Its sequence number.
    pub seq: u16,
    /// Source MAC: the host that answered.
    pub mac: [u8; 6],
}

/// What a probe saw.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Requests sent: (seq, when).
    pub sent: Vec<(u16, Instant)>,
    /// Replies received, in order.
    pub replies: Vec<Reply>,
}

impl Record {
    /// Longest gap between consecutive replies, counted from the last reply
    /// at or before `fault` (or `fault` itself if none) to the last reply.
    /// Panics if nothing answered after `fault`.
    pub fn outage_after(&self, fault: Instant) -> Duration {
        let mut prev = self
            .replies
            .iter()
            .rev()
            .find(|r| r.at <= fault)
            .map_or(fault, |r| r.at);
        let after: Vec<&Reply> = self.replies.iter().filter(|r| r.at > fault).collect();
        assert!(!after.is_empty(), "no echo reply at all after the fault");
        let mut longest = Duration::ZERO;
        for r in after {
            longest = longest.max(r.at - prev);
            prev = r.at;
        }
        longest
    }

    /// The first reply after `t` from `mac`.
    pub fn first_from_after(&self, mac: [u8; 6], t: Instant) -> Option<Instant> {
        self.replies
            .iter()
            .find(|r| r.at > t && r.mac == mac)
            .map(|r| r.at)
    }

    /// Source MACs of the replies from `t` on, in order, deduplicated.
    pub fn responders_after(&self, t: Instant) -> Vec<[u8; 6]> {
        let mut out: Vec<[u8; 6]> = Vec::new();
        for r in self.replies.iter().filter(|r| r.at >= t) {
            if out.last() != Some(&r.mac) {
                out.push(r.mac);
            }
        }
        out
    }

    /// Sequence numbers of the requests sent in `[from, to]` that got no
    /// reply.
    pub fn unanswered(&self, from: Instant, to: Instant) -> Vec<u16> {
        self.sent
            .iter()
            .filter(|(_, at)| *at >= from && *at <= to)
            .filter(|(seq, _)| !self.replies.iter().any(|r| r.seq == *seq))
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// Replies received in `[from, to]`.
    pub fn replies_between(&self, from: Instant, to: Instant) -> usize {
        self.replies
            .iter()
            .filter(|r| r.at >= from && r.at <= to)
            .count()
    }
}

/// A running probe; stopped on drop.
pub struct Probe {
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
    thread: Option<JoinHandle<carp_testnet::Result<()>>>,
}

impl Probe {
    /// Starts pinging `target` from `ns` out of its `ifname`.
    pub fn start(ns: &Netns, ifname: &str, target: Ipv4Addr) -> Probe {
        let ifindex = ns.ifindex(ifname);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let record = Arc::new(Mutex::new(Record::default()));
        let shared = record.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = carp_testnet::spawn_in(ns.name(), move || {
            let sockets = Sockets::open(ifindex);
            ready_tx.send(()).unwrap();
            sockets.run(target, &flag, &shared)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("probe thread did not start");
        Probe {
            stop,
            record,
            thread: Some(thread),
        }
    }

    /// What was seen so far.
    pub fn snapshot(&self) -> Record {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `mac` has answered after `t`; returns when. Panics after
    /// [`super::cluster::EVENTUALLY`].
    pub fn wait_reply_from(&self, mac: [u8; 6], t: Instant) -> Instant {
        super::cluster::eventually(&format!("an echo reply from {}", mac_str(mac)), || {
            self.snapshot().first_from_after(mac, t)
        })
    }

    /// Stops and returns what was seen.
    pub fn stop(mut self) -> Record {
        self.halt();
        self.snapshot()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The sending ICMP socket and the capturing packet socket (non-blocking),
/// closed on drop.
struct Sockets {
    icmp: OwnedFd,
    packet: OwnedFd,
    id: u16,
}

impl Sockets {
    fn open(ifindex: u32) -> Sockets {
        let icmp = socket::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        let packet = socket::packet_socket(libc::ETH_P_IP as u16, ifindex, libc::SOCK_NONBLOCK);
        Sockets {
            icmp: icmp.unwrap_or_else(|e| panic!("raw ICMP socket: {e}")),
            packet: packet.unwrap_or_else(|e| panic!("packet socket: {e}")),
            id: (std::process::id() as u16) ^ (ifindex as u16).rotate_left(8) ^ 0x5a5a,
        }
    }

    fn send(&self, target: Ipv4Addr, seq: u16) {
        let mut msg = [0u8; 24];
        msg[0] = 8; // echo request
        msg[4..6].copy_from_slice(&self.id.to_be_bytes());
        msg[6..8].copy_from_slice(&seq.to_be_bytes());
        let sum = internet_checksum(&msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        // SAFETY: all-zero sockaddr_in is valid; fields set below.
        let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        to.sin_family = libc::AF_INET as u16;
        to.sin_addr.s_addr = u32::from(target).to_be();
        // SAFETY: msg and to are valid for the lengths given. A failure
        // (no route while the link is down, ...) is a lost probe, which is
        // what the probe measures.
        unsafe {
            libc::sendto(
                self.icmp.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_DONTWAIT,
                (&to as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        };
    }

    /// An echo reply of ours from `target` in `frame`: (seq, source MAC).
    fn parse(&self, frame: &[u8], target: Ipv4Addr) -> Option<(u16, [u8; 6])> {
        let ip = frame.get(14..)?;
        if frame.get(12..14)? != [0x08, 0x00] || ip.len() < 20 || ip[9] != 1 {
            return None;
        }
        if ip[12..16] != target.octets() {
            return None;
        }
        let icmp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
        if icmp.len() < 8 || icmp[0] != 0 || icmp[4..6] != self.id.to_be_bytes() {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&frame[6..12]);
        Some((u16::from_be_bytes([icmp[6], icmp[7]]), mac))
    }

    fn run(&self, target: Ipv4Addr, stop: &AtomicBool, shared: &Mutex<Record>) {
        let mut seq: u16 = 0;
        let mut next = Instant::now();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next {
                seq = seq.wrapping_add(1);
                self.send(target, seq);
                let at = Instant::now();
                shared.lock().unwrap().sent.push((seq, at));
                next += PERIOD;
                if next < now {
                    next = now + PERIOD;
                }
            }
            let wait = next.saturating_duration_since(Instant::now());
            socket::wait_readable(&self.packet, wait.max(Duration::from_millis(1)));
            loop {
                // SAFETY: buf is valid for its length; non-blocking socket.
                let n = unsafe {
                    libc::recv(
                        self.packet.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                    )
                };
                if n <= 0 {
                    break;
                }
                let at = Instant::now();
                if let Some((seq, mac)) = self.parse(&buf[..n as usize], target) {
                    shared.lock().unwrap().replies.push(Reply { at, seq, mac });
                }
            }
        }
    }
}
