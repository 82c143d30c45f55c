//! The client's prober: an ICMP echo to the VIP every [`PROBE_INTERVAL`],
//! sent through the client's IP stack (so ARP and gratuitous ARP matter as
//! in real life), and an `AF_PACKET` listener that records each echo reply
//! with the MAC address that sent it (which host answered) and each CARP
//! advert seen on the segment. Every record carries a monotonic timestamp.
//! The listener ignores the attacker's frames (a socket filter on their
//! source MAC): the flood cases send CARP frames to the group, which the
//! client's NIC hears, and the instrument must not be their victim.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::sys;

/// Gap between two echo requests.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// ICMP identifier of the bench's echo requests.
const ICMP_ID: u16 = 0xCA4D;

/// An echo reply from the VIP.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// When the listener received it.
    pub at: Instant,
    /// Index of the request it answers (see [`Log::sent`]).
    pub probe: usize,
    /// Ethernet source: the host that answered.
    pub mac: [u8; 6],
}

/// Everything the prober recorded.
#[derive(Default)]
pub struct Log {
    /// Send time of request `i` (its ICMP sequence is `i as u16`).
    pub sent: Vec<Instant>,
    /// Echo replies in arrival order.
    pub replies: Vec<Reply>,
    /// CARP adverts seen: (arrival, IPv4 source).
    pub adverts: Vec<(Instant, [u8; 4])>,
}

/// A running prober; stops on drop.
pub struct Prober {
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl Prober {
    /// Starts probing `vip` from namespace `ns` (interface `eth0`); frames
    /// from MAC address `attacker` are not looked at.
    pub fn start(ns: &str, vip: [u8; 4], attacker: [u8; 6]) -> Result<Prober> {
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let listener = sys::spawn_in(ns, move || listen(vip, attacker, &l, &s));
        let (l, s) = (log.clone(), stop.clone());
        let sender = sys::spawn_in(ns, move || send(vip, &l, &s));
        Ok(Prober {
            log,
            stop,
            threads: vec![listener, sender],
        })
    }

    /// Runs `f` on the log so far.
    pub fn with<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        f(&self.log.lock().expect("prober log"))
    }

    /// The first reply from `mac` that arrived after `after`.
    pub fn first_reply_from(&self, mac: [u8; 6], after: Instant) -> Option<Reply> {
        self.with(|log| {
            log.replies
                .iter()
                .find(|r| r.at > after && r.mac == mac)
                .copied()
        })
    }

    /// Stops the threads, reporting the first error either had.
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(anyhow::anyhow!("prober thread panicked")),
            }
        }
        result
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn send(vip: [u8; 4], log: &Mutex<Log>, stop: &AtomicBool) -> Result<()> {
    let fd = sys::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)?;
    // SAFETY: all-zero sockaddr_in is valid; fields set below.
    let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    to.sin_family = libc::AF_INET as u16;
    to.sin_addr.s_addr = u32::from_ne_bytes(vip);
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let seq = {
            let mut l = log.lock().expect("prober log");
            l.sent.push(Instant::now());
            (l.sent.len() - 1) as u16
        };
        let mut pkt = [0u8; 16];
        pkt[0] = 8; // echo request
        pkt[4..6].copy_from_slice(&ICMP_ID.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        let sum = !fold(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        // SAFETY: valid fd, buffer and sockaddr_in. Failures (no route
        // while the ARP entry is incomplete) are just lost probes.
        unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                libc::MSG_DONTWAIT,
                (&to as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        };
        next += PROBE_INTERVAL;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    Ok(())
}

fn listen(vip: [u8; 4], attacker: [u8; 6], log: &Mutex<Log>, stop: &AtomicBool) -> Result<()> {
    let (fd, _) = sys::packet_socket("eth0").context("prober listener")?;
    ignore_source_mac(&fd, attacker).context("prober listener filter")?;
    sys::set_recv_timeout(&fd, Duration::from_millis(50))?;
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: valid fd and buffer.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let at = Instant::now();
        if n < 34 {
            continue;
        }
        let f = &buf[..n as usize];
        if f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let (proto, src) = (f[23], [f[26], f[27], f[28], f[29]]);
        let l4 = 14 + ihl;
        match proto {
            112 => log.lock().expect("prober log").adverts.push((at, src)),
            1 if src == vip && f.len() >= l4 + 8 => {
                let icmp = &f[l4..];
                if icmp[0] != 0 || icmp[4..6] != ICMP_ID.to_be_bytes() {
                    continue;
                }
                let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&f[6..12]);
                let mut l = log.lock().expect("prober log");
                // The latest request carrying this sequence number.
                let sent = l.sent.len();
                let probe = (0..sent)
                    .rev()
                    .find(|i| *i as u16 == seq)
                    .unwrap_or(sent.saturating_sub(1));
                l.replies.push(Reply { at, probe, mac });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Attaches a classic BPF filter to packet socket `fd` that drops frames
/// whose Ethernet source is `mac` and passes the rest whole.
fn ignore_source_mac(fd: &std::os::fd::OwnedFd, mac: [u8; 6]) -> Result<()> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut program = [
        // 0: A = source MAC bytes 0..4; 1: equal? to 2, else accept (4).
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 6),
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            2,
            u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]),
        ),
        // 2: A = bytes 4..6; 3: equal? drop (5), else accept (4).
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 10),
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            1,
            0,
            u32::from(u16::from_be_bytes([mac[4], mac[5]])),
        ),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // `prog` points at `program`, which outlives the call (the kernel copies
    // the filter).
    sys::set_option(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &prog,
        "SO_ATTACH_FILTER",
    )?;
    Ok(())
}

/// RFC 1071 one's-complement sum, folded.
fn fold(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}
