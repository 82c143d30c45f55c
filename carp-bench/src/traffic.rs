//! Legitimate traffic: a UDP sender that sends small datagrams as fast as
//! it can for a fixed time, and a sink that counts what arrives.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::sys;

/// UDP port of the sink.
pub const SINK_PORT: u16 = 5001;
/// UDP payload size, in bytes.
pub const PAYLOAD: usize = 64;

/// Datagrams counted by a running sink.
pub struct Sink {
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Sink {
    /// Starts a sink on [`SINK_PORT`] in namespace `ns`, and waits until it
    /// is bound.
    pub fn start(ns: &str) -> Result<Sink> {
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let (r, s, rd) = (received.clone(), stop.clone(), ready.clone());
        let thread = sys::spawn_in(ns, move || {
            let fd = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
            sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20, "SO_RCVBUF")?;
            sys::set_recv_timeout(&fd, Duration::from_millis(50))?;
            bind_any(&fd, SINK_PORT)?;
            rd.store(true, Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::SeqCst) {
                // SAFETY: valid fd and buffer.
                let n =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        });
        while !ready.load(Ordering::SeqCst) && !thread.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Sink {
            received,
            stop,
            thread: Some(thread),
        })
    }

    /// Datagrams received so far.
    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind_any(fd: &std::os::fd::OwnedFd, port: u16) -> Result<()> {
    // SAFETY: all-zero sockaddr_in is INADDR_ANY; port set below.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as u16;
    a.sin_port = port.to_be();
    sys::bind(fd, &a, &format!("bind UDP port {port}"))?;
    Ok(())
}

/// Sends datagrams from namespace `ns` to `dst`:[`SINK_PORT`] for `d`, as
/// fast as the socket takes them; returns how many were sent.
pub fn blast(ns: &str, dst: [u8; 4], d: Duration) -> Result<u64> {
    sys::run_in(ns, move || {
        let fd = sys::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
        // SAFETY: all-zero sockaddr_in is valid; fields set below.
        let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        to.sin_family = libc::AF_INET as u16;
        to.sin_port = SINK_PORT.to_be();
        to.sin_addr.s_addr = u32::from_ne_bytes(dst);
        let payload = [0x5au8; PAYLOAD];
        let end = Instant::now() + d;
        let mut sent = 0u64;
        let mut i = 0u32;
        loop {
            if sys::send_to(&fd, &payload, &to, 0).is_ok_and(|n| n > 0) {
                sent += 1;
            }
            i = i.wrapping_add(1);
            if i.is_multiple_of(256) && (Instant::now() >= end || sys::interrupted()) {
                break;
            }
        }
        Ok(sent)
    })
}

/// Throughput of a blast into a sink: datagrams/s received, and sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throughput {
    /// Datagrams per second the sender sent.
    pub sent_pps: f64,
    /// Datagrams per second the sink received.
    pub received_pps: f64,
}

impl Throughput {
    /// Received throughput in Mbit/s of UDP payload.
    pub fn mbit(&self) -> f64 {
        self.received_pps * PAYLOAD as f64 * 8.0 / 1e6
    }
}

/// Blasts from `from_ns` to `dst` (whose namespace runs `sink`) for `d`.
pub fn measure(sink: &Sink, from_ns: &str, dst: [u8; 4], d: Duration) -> Result<Throughput> {
    let before = sink.count();
    let t0 = Instant::now();
    let sent = blast(from_ns, dst, d)?;
    let secs = t0.elapsed().as_secs_f64();
    // Let the last datagrams in flight arrive.
    std::thread::sleep(Duration::from_millis(100));
    let received = sink.count() - before;
    Ok(Throughput {
        sent_pps: sent as f64 / secs,
        received_pps: received as f64 / secs,
    })
}
