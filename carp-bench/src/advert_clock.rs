//! How late adverts are sent, seen on the wire: a packet socket in the
//! client's namespace records the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`, taken in the softirq, so the capture thread's own
//! delays on a busy host do not count) of every advert (IP protocol 112:
//! CARP and VRRP alike) from the master's address.
//!
//! Both carpd-xdp and keepalived schedule the next advert one interval
//! after the previous one, so an advert's lateness against its schedule
//! is the gap since the previous one minus the interval (never below
//! zero: an early advert is not late).

use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use super::sys;

/// A running capture; [`Capture::stop`] returns what it saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<u64>>>,
}

impl Capture {
    /// Starts recording adverts from `src` seen on `eth0` of namespace
    /// `ns`.
    pub fn start(ns: &str, src: [u8; 4]) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = sys::spawn_in(ns, move || record(src, &s));
        Capture { stop, thread }
    }

    /// Stops and returns the kernel timestamps (ns, CLOCK_REALTIME) of the
    /// adverts seen, in arrival order.
    pub fn stop(self) -> Result<Vec<u64>> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("advert capture thread panicked"),
        }
    }
}

fn record(src: [u8; 4], stop: &AtomicBool) -> Result<Vec<u64>> {
    let (fd, _) = sys::packet_socket("eth0").context("advert capture")?;
    sys::set_int(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        1,
        "SO_TIMESTAMPNS",
    )?;
    sys::set_recv_timeout(&fd, Duration::from_millis(50))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    // Room for one struct timespec control message.
    let mut control = [0u64; 8];
    while !stop.load(Ordering::SeqCst) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid; its pointers are set below
        // to buffers that outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: valid fd and msghdr.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 34 {
            continue;
        }
        let f = &buf[..n as usize];
        if f[12..14] != [0x08, 0x00] || f[23] != 112 || f[26..30] != src {
            continue;
        }
        if let Some(ts) = timestamp(&msg) {
            seen.push(ts);
        }
    }
    Ok(seen)
}

/// The `SCM_TIMESTAMPNS` of a received message, in ns.
fn timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its
    // control buffer within `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Lateness (µs) of each advert but the first against its schedule, one
/// `interval` after the previous one; early ones count as 0.
pub fn send_lateness_us(seen_ns: &[u64], interval: Duration) -> Vec<f64> {
    let interval = interval.as_nanos() as f64;
    seen_ns
        .windows(2)
        .map(|w| ((w[1].saturating_sub(w[0])) as f64 - interval).max(0.0) / 1e3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_the_gap_past_the_interval() {
        let ms = 1_000_000;
        let seen = [0, 10 * ms, 25 * ms, 34 * ms];
        assert_eq!(
            send_lateness_us(&seen, Duration::from_millis(10)),
            vec![0.0, 5_000.0, 0.0]
        );
        assert!(send_lateness_us(&[7], Duration::from_millis(10)).is_empty());
    }
}
