//! The receive path without XDP: one `AF_PACKET` socket with a classic BPF
//! filter for IP protocol 112, and the very classifier the XDP program runs
//! ([`carp_common::inspect::inspect`]) applied in userspace, with hash maps in
//! place of BPF maps. Used where XDP cannot attach (containers, old kernels,
//! `--xdp-mode off`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use carp_common::constants::{CARP_HMAC_LEN, MAP_RATE_CAPACITY};
use carp_common::inspect::{Auth, Tables};
use carp_common::maps::{
    Admit, PeerKey, PeerValue, RateKey, RateState, ReplayKey, ReplayState, Settings, VhidKey,
};
use carp_common::rate;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::key::VhidKeys;

/// Classic BPF: accept IPv4 or IPv6 (no extension header) with protocol 112.
/// Instructions are (code, jt, jf, k); offsets are Ethernet-relative.
const FILTER: [(u16, u8, u8, u32); 9] = [
    (0x28, 0, 0, 12),     // 0: A = EtherType (half word at 12)
    (0x15, 0, 2, 0x0800), // 1: IPv4? next : 4
    (0x30, 0, 0, 23),     // 2: A = IPv4 protocol byte
    (0x15, 3, 4, 112),    // 3: 112? accept(7) : reject(8)
    (0x15, 0, 3, 0x86dd), // 4: IPv6? next : reject(8)
    (0x30, 0, 0, 20),     // 5: A = IPv6 next header
    (0x15, 0, 1, 112),    // 6: 112? accept(7) : reject(8)
    (0x06, 0, 0, 0xffff), // 7: accept, up to 64 KiB
    (0x06, 0, 0, 0),      // 8: reject
];

/// A packet socket receiving protocol-112 frames from every interface.
pub struct FallbackSocket {
    fd: AsyncFd<OwnedFd>,
}

fn os_err(op: &'static str) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{op}: {e}"))
}

impl FallbackSocket {
    /// Opens the socket (needs CAP_NET_RAW) and attaches the filter.
    pub fn open() -> io::Result<Self> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)")(io::Error::last_os_error()));
        }
        // SAFETY: raw is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut code: Vec<libc::sock_filter> = FILTER
            .iter()
            .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
            .collect();
        let prog = libc::sock_fprog {
            len: code.len() as u16,
            filter: code.as_mut_ptr(),
        };
        // SAFETY: prog points at `code`, which outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err("setsockopt(SO_ATTACH_FILTER)")(
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: the OwnedFd moves into the AsyncFd and keeps its descriptor
        // open, unchanged, for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| os_err("register the packet socket with tokio")(e.into()))?;
        Ok(Self { fd })
    }

    /// Waits for the next incoming frame; returns (ifindex, length). Frames
    /// this host sent (PACKET_OUTGOING) are skipped.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(u32, usize)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_one(fd.get_ref().as_raw_fd(), buf)) {
                Ok(Ok(Some(got))) => return Ok(got),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(os_err("recvfrom(AF_PACKET)")(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// The next incoming frame already waiting, without waiting: `None` when
    /// there is none. Frames this host sent are skipped.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<(u32, usize)>> {
        loop {
            match recv_one(self.fd.get_ref().as_raw_fd(), buf) {
                Ok(Some(got)) => return Ok(Some(got)),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(os_err("recvfrom(AF_PACKET)")(e)),
            }
        }
    }
}

/// One recvfrom; `Ok(None)` for a frame to skip.
fn recv_one(fd: i32, buf: &mut [u8]) -> io::Result<Option<(u32, usize)>> {
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut addr_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buf and addr are valid for writes of the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut addr as *mut libc::sockaddr_ll).cast(),
            &mut addr_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if addr.sll_pkttype == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    Ok(Some((addr.sll_ifindex as u32, n as usize)))
}

/// The fallback's stand-in for the BPF maps.
#[derive(Debug, Default)]
pub struct FallbackTables {
    /// Served (interface, vhid) pairs and their flags.
    pub vhids: HashMap<VhidKey, u32>,
    /// The peer allow-lists.
    pub peers: HashMap<PeerKey, PeerValue>,
    /// Rate-limit state per (source, vhid), bounded like the LRU map it replaces.
    pub rate: HashMap<RateKey, RateState>,
    /// Precomputed HMAC keys per served (interface, vhid).
    pub hmac: HashMap<VhidKey, VhidKeys>,
    /// Replay rules the daemon set per source (it bounds their number).
    pub replay: HashMap<ReplayKey, ReplayState>,
    /// Rate limit and flags.
    pub settings: Settings,
    /// Time of the frame being inspected (CLOCK_MONOTONIC ns).
    pub now_ns: u64,
}

impl Tables for FallbackTables {
    fn now_ns(&mut self) -> u64 {
        self.now_ns
    }

    fn vhid_flags(&self, key: &VhidKey) -> u32 {
        self.vhids.get(key).copied().unwrap_or(0)
    }

    fn peer(&self, key: &PeerKey) -> Option<PeerValue> {
        self.peers.get(key).copied()
    }

    fn authenticate(
        &mut self,
        key: &VhidKey,
        counter: &[u8; 8],
        hmac: &[u8; CARP_HMAC_LEN],
    ) -> Auth {
        match self.hmac.get(key) {
            None => Auth::Unchecked,
            Some(k) if k.verify(counter, hmac) => Auth::Good,
            Some(_) => Auth::Bad,
        }
    }

    fn replay_admits(&mut self, key: &ReplayKey, counter: u64, mac: &[u8; 6]) -> Admit {
        self.replay.get(key).map_or(Admit::Fresh, |state| {
            state.admits(counter, mac, key.vhid as u8)
        })
    }

    fn replay_record(&mut self, key: &ReplayKey, counter: u64) -> bool {
        self.replay
            .get_mut(key)
            .map(|state| state.record(counter))
            .is_some()
    }

    fn rate_conforms(&mut self, key: &RateKey, now_ns: u64) -> bool {
        if !self.rate.contains_key(key) && self.rate.len() >= MAP_RATE_CAPACITY as usize {
            // Bounded memory under a spoofed-source flood: start over, as an
            // LRU map would have evicted the old entries anyway.
            self.rate.clear();
        }
        rate::conforms(self.rate.entry(*key).or_default(), &self.settings, now_ns)
    }
}
