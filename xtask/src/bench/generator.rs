//! The attacker's packet generator: one frame sent over and over from an
//! `AF_PACKET` socket with `sendmmsg` (batches of [`BATCH`], qdisc bypassed),
//! either as fast as possible or at a fixed low rate; and the frames of the
//! flood cases, crafted with `carp_common::craft`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use carp_common::constants::{CARP_GROUP_V4, CARP_HEADER_LEN, CARP_TTL, IPPROTO_CARP};
use carp_common::craft::{advert_frame, ipv4_header, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;

use super::stage::Host;
use super::sys;

/// Frames per `sendmmsg` call.
const BATCH: usize = 64;

/// A CARP advert frame from `src` (MAC and IP) to `dst_mac`, 224.0.0.18.
pub fn carp_frame(src_mac: [u8; 6], src_ip: [u8; 4], dst_mac: [u8; 6], h: &CarpHeader) -> Vec<u8> {
    let carp = h.to_bytes();
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let len = advert_frame(
        &AdvertFrame {
            src_mac,
            dst_mac: Some(dst_mac),
            vlan_id: None,
            ip: IpLayer::V4 {
                src: src_ip,
                dst: CARP_GROUP_V4,
            },
            ttl: CARP_TTL,
            ip_id: 1,
            carp: &carp,
        },
        &mut buf,
    );
    buf[..len].to_vec()
}

/// An advert header with a valid checksum and `hmac` as given.
pub fn header(vhid: u8, counter: u64, hmac: [u8; 20]) -> CarpHeader {
    let mut h = CarpHeader::advertisement(vhid, 1, 0, 0, counter);
    h.hmac = hmac;
    h.seal_checksum();
    h
}

/// A UDP datagram (18 payload bytes) from `src` to `dst`, port 9.
pub fn udp_frame(src: &Host, dst: &Host) -> Vec<u8> {
    let payload = [0u8; 18];
    let udp_len = (8 + payload.len()) as u16;
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.mac);
    f.extend_from_slice(&src.mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = ipv4_header(src.ip, dst.ip, 64, 1, udp_len);
    // ipv4_header writes protocol 112; make it UDP and redo the checksum.
    ip[9] = 17;
    ip[10] = 0;
    ip[11] = 0;
    let sum = carp_common::checksum::internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

/// Waits in namespace `ns` for an advert of `vhid` from `src` and returns
/// the whole frame as captured.
pub fn capture_advert(ns: &str, src: [u8; 4], vhid: u8, within: Duration) -> Result<Vec<u8>> {
    sys::run_in(ns, move || {
        let (fd, _) = sys::packet_socket("eth0")?;
        sys::set_recv_timeout(&fd, Duration::from_millis(100))?;
        let end = Instant::now() + within;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < (14 + 20 + CARP_HEADER_LEN) as isize {
                continue;
            }
            let f = &buf[..n as usize];
            if f[12..14] == [0x08, 0x00]
                && f[23] == IPPROTO_CARP
                && f[26..30] == src
                && f[35] == vhid
            {
                return Ok(f.to_vec());
            }
        }
        bail!("no advert of vhid {vhid} from {src:?} within {within:?}")
    })
}

/// How the generator paces itself.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// As fast as the socket takes frames.
    Flood,
    /// This many frames per second.
    PerSecond(u32),
}

/// A running generator; [`Generator::finish`] returns frames sent and seconds.
pub struct Generator {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(u64, f64)>>,
}

impl Generator {
    /// Sends `frame` out of `eth0` of namespace `ns` at `pace` for at most `d`.
    pub fn start(ns: &str, frame: Vec<u8>, pace: Pace, d: Duration) -> Generator {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = sys::spawn_in(ns, move || send(&frame, pace, d, &s));
        Generator { stop, thread }
    }

    /// Stops (if still running) and returns (frames sent, seconds).
    pub fn finish(self) -> Result<(u64, f64)> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => bail!("generator thread panicked"),
        }
    }
}

fn send(frame: &[u8], pace: Pace, d: Duration, stop: &AtomicBool) -> Result<(u64, f64)> {
    let (fd, ifindex) = sys::packet_socket("eth0").context("generator socket")?;
    sys::setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)?;
    sys::setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20)?;
    // SAFETY: all-zero sockaddr_ll is valid; fields set below.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&frame[..6]);
    let mut iov = libc::iovec {
        iov_base: frame.as_ptr() as *mut libc::c_void,
        iov_len: frame.len(),
    };
    // SAFETY: all-zero mmsghdr is valid; fields set below.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for m in &mut msgs {
        m.msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_ll).cast();
        m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        m.msg_hdr.msg_iov = &mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    let start = Instant::now();
    let end = start + d;
    let mut sent = 0u64;
    let (batch, gap) = match pace {
        Pace::Flood => (BATCH, Duration::ZERO),
        Pace::PerSecond(r) => (1, Duration::from_secs(1) / r.max(1)),
    };
    let mut next = start;
    while !stop.load(Ordering::SeqCst) && !sys::interrupted() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !gap.is_zero() {
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(20)));
                continue;
            }
            next += gap;
        }
        // SAFETY: msgs holds `batch` initialised headers pointing at live
        // buffers (frame, iov, to) that outlive the call.
        let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), batch as u32, 0) };
        if n > 0 {
            sent += n as u64;
        }
    }
    Ok((sent, start.elapsed().as_secs_f64()))
}
