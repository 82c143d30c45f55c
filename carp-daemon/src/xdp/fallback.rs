//! The receive path without XDP: one `AF_PACKET` socket with a classic BPF
//! filter for IP protocol 112, and the very classifier the XDP program runs
//! ([`carp_common::inspect::inspect`]) applied in userspace, with hash maps in
//! place of BPF maps. Used where XDP cannot attach (containers, old kernels,
//! `--xdp-mode off`).

use std::collections::HashMap;
use std::io;

use carp_common::constants::{CARP_HMAC_LEN, MAP_RATE_CAPACITY};
use carp_common::inspect::{Auth, Tables};
use carp_common::maps::{
    Admit, PeerKey, PeerValue, RateKey, RateState, ReplayKey, ReplayState, Settings, VhidKey,
};
use carp_common::rate;
use socket2::{Domain, SockFilter, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::key::VhidKeys;
use crate::net::socket;

/// Classic BPF ancillary load of the socket buffer's "VLAN tag present"
/// (`SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT`).
const VLAN_TAG_PRESENT: u32 = 0xffff_f000 + 48;

/// Classic BPF: accept IPv4 or IPv6 (no extension header) with protocol 112,
/// untagged. The socket sees every interface: a VLAN's frame is seen on the
/// parent with its tag taken off into the socket buffer, then on the VLAN
/// interface without it. Only the latter is the VLAN's (its instances judge
/// it); the parent's copy is rejected here. A frame still tagged in its
/// bytes fails the EtherType test.
/// Instructions are (code, jt, jf, k); offsets are Ethernet-relative.
const FILTER: [(u16, u8, u8, u32); 11] = [
    (0x20, 0, 0, VLAN_TAG_PRESENT), // 0: A = VLAN tag present
    (0x15, 0, 8, 0),                // 1: none? next : reject(10)
    (0x28, 0, 0, 12),               // 2: A = EtherType (half word at 12)
    (0x15, 0, 2, 0x0800),           // 3: IPv4? next : 6
    (0x30, 0, 0, 23),               // 4: A = IPv4 protocol byte
    (0x15, 3, 4, 112),              // 5: 112? accept(9) : reject(10)
    (0x15, 0, 3, 0x86dd),           // 6: IPv6? next : reject(10)
    (0x30, 0, 0, 20),               // 7: A = IPv6 next header
    (0x15, 0, 1, 112),              // 8: 112? accept(9) : reject(10)
    (0x06, 0, 0, 0xffff),           // 9: accept, up to 64 KiB
    (0x06, 0, 0, 0),                // 10: reject
];

/// A packet socket receiving protocol-112 frames from every interface.
pub struct FallbackSocket {
    fd: AsyncFd<Socket>,
}

fn os_err(op: &'static str) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{op}: {e}"))
}

impl FallbackSocket {
    /// Opens the socket (needs CAP_NET_RAW) and attaches the filter.
    pub fn open() -> io::Result<Self> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd =
            socket::raw(Domain::PACKET, i32::from(proto)).map_err(os_err("socket(AF_PACKET)"))?;
        let code: Vec<SockFilter> = FILTER
            .iter()
            .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
            .collect();
        fd.attach_filter(&code)
            .map_err(os_err("setsockopt(SO_ATTACH_FILTER)"))?;
        let fd = socket::register(fd, Interest::READABLE)
            .map_err(os_err("register the packet socket with tokio"))?;
        Ok(Self { fd })
    }

    /// Waits for the next incoming frame; returns (ifindex, length). Frames
    /// this host sent (PACKET_OUTGOING) are skipped.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(u32, usize)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_one(fd.get_ref(), buf)) {
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
            match recv_one(self.fd.get_ref(), buf) {
                Ok(Some(got)) => return Ok(Some(got)),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(os_err("recvfrom(AF_PACKET)")(e)),
            }
        }
    }
}

/// One recvfrom; `Ok(None)` for a frame to skip.
fn recv_one(fd: &Socket, buf: &mut [u8]) -> io::Result<Option<(u32, usize)>> {
    let (n, addr) = socket::recv_packet(fd, buf)?;
    if addr.sll_pkttype == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    Ok(Some((addr.sll_ifindex as u32, n)))
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

    fn replay_admits(&mut self, key: &ReplayKey, counter: u64, mac: &[u8; 6]) -> Option<Admit> {
        let state = self.replay.get(key)?;
        Some(state.admits(counter, mac, key.vhid as u8))
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
