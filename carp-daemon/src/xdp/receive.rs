//! The receive path as the daemon sees it: validated adverts from every
//! served interface, whichever way each interface receives them (native or
//! generic XDP, the TC program, or the fallback packet socket), and one set
//! of counters. The XDP and TC programs share the object's maps: one ring
//! buffer and one set of kernel counters whichever hook each interface uses.

use std::collections::HashSet;

use aya::maps::{MapData, RingBuf};
use carp_common::constants::MAP_REPLAY_CAPACITY;
use carp_common::event::AdvertEvent;
use carp_common::inspect::{fill_event, inspect, Verdict};
use carp_common::maps::{ReplayKey, ReplayState, Settings, VhidKey, VHID_PEERS_ONLY, VHID_SERVED};
use carp_common::reason::Reason;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::counters::Counters;
use super::fallback::{FallbackSocket, FallbackTables};
use super::key::{peer_entries, VhidKeys};
use super::mode::XdpMode;
use super::program::{AttachMode, ProgramError, XdpProgram};
use crate::chain::Chain;
use crate::clock::monotonic_ns;
use crate::proto::peer::AllowedPeer;

/// Failures of the receive path.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The XDP program could not be loaded or attached (explicit mode).
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// The fallback packet socket failed.
    #[error("fallback receive path")]
    Fallback {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the ring buffer failed.
    #[error("cannot read the XDP ring buffer")]
    Ring {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The replay rules of every instance fill the table.
    #[error("no room for another replay rule ({MAP_REPLAY_CAPACITY} are installed)")]
    ReplayRulesFull,
}

/// How one interface receives adverts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reception {
    /// The XDP program is attached in this mode.
    Xdp(AttachMode),
    /// The TC program is attached to the tcx ingress hook.
    Tc,
    /// The fallback packet socket.
    Fallback,
}

impl Reception {
    /// Lowercase name: native, skb, tc or off.
    pub fn name(self) -> &'static str {
        match self {
            Reception::Xdp(m) => m.name(),
            Reception::Tc => "tc",
            Reception::Fallback => "off",
        }
    }
}

/// One interface of the receive path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Index.
    pub ifindex: u32,
    /// How it receives.
    pub reception: Reception,
    /// Why XDP (and, for the fallback socket, TC) was not used, when `auto`
    /// fell back.
    pub fallback_reason: Option<String>,
}

/// Validated adverts from all served interfaces.
pub struct ReceivePath {
    program: Option<XdpProgram>,
    ring: Option<AsyncFd<RingBuf<MapData>>>,
    fallback: Option<FallbackSocket>,
    tables: FallbackTables,
    fallback_ifindexes: HashSet<u32>,
    fallback_counters: Counters,
    interfaces: Vec<Interface>,
    buf: Vec<u8>,
}

impl ReceivePath {
    /// Sets up reception on `interfaces` (name, ifindex) in `mode`. With
    /// `auto`, each interface gets native XDP, else generic XDP, else the TC
    /// program, else the fallback socket; explicit modes fail instead of
    /// falling back.
    pub fn open(
        interfaces: &[(String, u32)],
        mode: XdpMode,
        settings: Settings,
    ) -> Result<Self, ReceiveError> {
        let mut path = ReceivePath {
            program: None,
            ring: None,
            fallback: None,
            tables: FallbackTables {
                settings,
                ..Default::default()
            },
            fallback_ifindexes: HashSet::new(),
            fallback_counters: Counters::default(),
            interfaces: Vec::new(),
            buf: vec![0; 65536],
        };
        if mode != XdpMode::Off {
            match XdpProgram::load(settings) {
                Ok(p) => path.program = Some(p),
                Err(e) if mode == XdpMode::Auto => {
                    let e = Chain(&e).to_string();
                    tracing::warn!("eBPF unavailable, using the fallback receive path: {e}");
                    for (name, ifindex) in interfaces {
                        path.add_fallback(name, *ifindex, Some(e.clone()))?;
                    }
                    return Ok(path);
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (name, ifindex) in interfaces {
            path.add_interface(name, *ifindex, mode)?;
        }
        if let Some(program) = path.program.as_mut() {
            if let Some(ring) = program.take_events() {
                // SAFETY: the RingBuf moves into the AsyncFd and keeps its map
                // descriptor open, unchanged, for the AsyncFd's whole life.
                let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
                    .map_err(|e| ReceiveError::Ring { source: e.into() })?;
                path.ring = Some(ring);
            }
        }
        Ok(path)
    }

    /// Sets up reception on one more interface (no-op if already there).
    pub fn attach(&mut self, name: &str, ifindex: u32, mode: XdpMode) -> Result<(), ReceiveError> {
        if self.interfaces.iter().any(|i| i.ifindex == ifindex) {
            return Ok(());
        }
        self.add_interface(name, ifindex, mode)
    }

    /// Stops receiving on an interface (no-op if not there): detaches the
    /// XDP program, or stops reading its frames from the fallback socket.
    /// For an interface that was deleted, this forgets it.
    pub fn detach(&mut self, ifindex: u32) {
        if let Some(p) = self.program.as_mut() {
            p.detach(ifindex);
        }
        self.fallback_ifindexes.remove(&ifindex);
        self.interfaces.retain(|i| i.ifindex != ifindex);
    }

    fn add_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        mode: XdpMode,
    ) -> Result<(), ReceiveError> {
        let xdp_modes: &[AttachMode] = match mode {
            XdpMode::Off => return self.add_fallback(name, ifindex, None),
            XdpMode::Native => &[AttachMode::Native],
            XdpMode::Skb => &[AttachMode::Skb],
            XdpMode::Tc => &[],
            XdpMode::Auto => &[AttachMode::Native, AttachMode::Skb],
        };
        let Some(program) = self.program.as_mut() else {
            return self.add_fallback(name, ifindex, None);
        };
        let mut xdp_error = None;
        for attach in xdp_modes {
            match program.attach(name, ifindex, *attach) {
                Ok(()) => {
                    self.push_interface(name, ifindex, Reception::Xdp(*attach), None);
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(
                        iface = name,
                        "XDP {} attach failed: {}",
                        attach.name(),
                        Chain(&e)
                    );
                    xdp_error = Some(e);
                }
            }
        }
        if matches!(mode, XdpMode::Native | XdpMode::Skb) {
            if let Some(e) = xdp_error {
                return Err(e.into());
            }
        }
        // Auto after both XDP modes failed, or tc.
        let why_not_xdp = xdp_error.as_ref().map(why_not_xdp);
        match program.attach_tc(name, ifindex) {
            Ok(()) => {
                if let Some(why) = &why_not_xdp {
                    tracing::warn!(
                        iface = name,
                        "XDP cannot attach, using the TC (tcx) receive path: {why}"
                    );
                }
                self.push_interface(name, ifindex, Reception::Tc, why_not_xdp);
                Ok(())
            }
            Err(e) if mode == XdpMode::Auto => {
                let reason = format!(
                    "XDP: {}; TC: {}",
                    why_not_xdp.as_deref().unwrap_or("not tried"),
                    Chain(&e)
                );
                tracing::warn!(
                    iface = name,
                    "neither XDP nor TC can attach, using the fallback receive path: {reason}"
                );
                self.add_fallback(name, ifindex, Some(reason))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn push_interface(
        &mut self,
        name: &str,
        ifindex: u32,
        reception: Reception,
        fallback_reason: Option<String>,
    ) {
        self.interfaces.push(Interface {
            name: name.to_string(),
            ifindex,
            reception,
            fallback_reason,
        });
    }

    fn add_fallback(
        &mut self,
        name: &str,
        ifindex: u32,
        reason: Option<String>,
    ) -> Result<(), ReceiveError> {
        if self.fallback.is_none() {
            self.fallback =
                Some(FallbackSocket::open().map_err(|source| ReceiveError::Fallback { source })?);
        }
        self.fallback_ifindexes.insert(ifindex);
        self.push_interface(name, ifindex, Reception::Fallback, reason);
        Ok(())
    }

    /// The interfaces and how each receives.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Accepts adverts for `vhid` on `ifindex`; with `peers` not empty,
    /// only from them (the peer allow-list).
    pub fn serve_vhid(
        &mut self,
        ifindex: u32,
        vhid: u8,
        peers: &[AllowedPeer],
    ) -> Result<(), ReceiveError> {
        let entries = peer_entries(ifindex, vhid, peers);
        if let Some(p) = self.program.as_mut() {
            p.serve_vhid(ifindex, vhid, &entries)?;
        }
        self.tables
            .peers
            .retain(|k, _| !(k.ifindex == ifindex && k.vhid == u16::from(vhid)));
        self.tables.peers.extend(entries);
        let flags = VHID_SERVED | if peers.is_empty() { 0 } else { VHID_PEERS_ONLY };
        self.tables.vhids.insert(
            VhidKey {
                ifindex,
                vhid: u32::from(vhid),
            },
            flags,
        );
        Ok(())
    }

    /// Stops accepting adverts for `vhid` on `ifindex`.
    pub fn unserve_vhid(&mut self, ifindex: u32, vhid: u8) -> Result<(), ReceiveError> {
        if let Some(p) = self.program.as_mut() {
            p.unserve_vhid(ifindex, vhid)?;
        }
        self.tables.vhids.remove(&VhidKey {
            ifindex,
            vhid: u32::from(vhid),
        });
        self.tables
            .peers
            .retain(|k, _| !(k.ifindex == ifindex && k.vhid == u16::from(vhid)));
        Ok(())
    }

    /// Installs (or, with `None`, removes) the HMAC keys of a served vhid,
    /// so that adverts with a wrong HMAC are dropped before they reach us.
    pub fn set_hmac_keys(
        &mut self,
        ifindex: u32,
        vhid: u8,
        keys: Option<&VhidKeys>,
    ) -> Result<(), ReceiveError> {
        let vk = VhidKey {
            ifindex,
            vhid: u32::from(vhid),
        };
        if let Some(p) = self.program.as_mut() {
            p.set_hmac_keys(vk, keys)?;
        }
        match keys {
            Some(k) => self.tables.hmac.insert(vk, k.clone()),
            None => self.tables.hmac.remove(&vk),
        };
        Ok(())
    }

    /// Sets the replay rule of one source on both paths: replaces the one
    /// there with `replace`, else only installs it where none is (the
    /// receive path keeps an installed rule's state up to date).
    pub fn set_replay_rule(
        &mut self,
        key: ReplayKey,
        state: &ReplayState,
        replace: bool,
    ) -> Result<(), ReceiveError> {
        let new = !self.tables.replay.contains_key(&key);
        if new && self.tables.replay.len() >= MAP_REPLAY_CAPACITY as usize {
            return Err(ReceiveError::ReplayRulesFull);
        }
        if let Some(p) = self.program.as_mut() {
            p.set_replay_rule(key, state, replace)?;
        }
        if replace || new {
            self.tables.replay.insert(key, *state);
        }
        Ok(())
    }

    /// Removes the replay rule of one source from both paths.
    pub fn remove_replay_rule(&mut self, key: &ReplayKey) -> Result<(), ReceiveError> {
        self.tables.replay.remove(key);
        if let Some(p) = self.program.as_mut() {
            p.remove_replay_rule(key)?;
        }
        Ok(())
    }

    /// The replay rule the receive path holds for one source, if any (the
    /// fallback path's copy, the same as the kernel's when it was set).
    #[cfg(test)]
    pub(crate) fn replay_rule(&self, key: &ReplayKey) -> Option<&ReplayState> {
        self.tables.replay.get(key)
    }

    /// Replaces the rate limit and flags on both paths.
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), ReceiveError> {
        if let Some(p) = self.program.as_mut() {
            p.set_settings(settings)?;
        }
        self.tables.settings = settings;
        Ok(())
    }

    /// Counters of both paths, summed.
    pub fn counters(&self) -> Result<Counters, ReceiveError> {
        let mut total = self.fallback_counters;
        if let Some(p) = self.program.as_ref() {
            total.add(&p.counters()?);
        }
        Ok(total)
    }

    /// Waits for the next validated advert from any interface. Cancel-safe:
    /// an advert is taken from its source only when it is returned.
    pub async fn recv(&mut self) -> Result<AdvertEvent, ReceiveError> {
        loop {
            tokio::select! {
                ev = next_ring_event(self.ring.as_mut()) => return ev,
                got = next_fallback_frame(self.fallback.as_ref(), &mut self.buf) => {
                    let (ifindex, len) = got.map_err(|source| ReceiveError::Fallback { source })?;
                    if let Some(ev) = self.classify_fallback_frame(ifindex, len) {
                        return Ok(ev);
                    }
                }
            }
        }
    }

    /// The next validated advert that is already waiting, ring buffer first,
    /// then the fallback socket; `None` when nothing is, without waiting.
    /// The daemon empties the receive path with this before it acts on an
    /// expired timer, so that adverts which arrived while it could not run
    /// (stopped, starved of CPU) are judged first.
    pub fn try_recv(&mut self) -> Result<Option<AdvertEvent>, ReceiveError> {
        if let Some(ring) = self.ring.as_mut() {
            let rb = ring.get_mut();
            while let Some(item) = rb.next() {
                if let Some(ev) = AdvertEvent::from_bytes(&item) {
                    return Ok(Some(ev));
                }
                tracing::warn!(
                    len = item.len(),
                    "ring buffer record of unexpected size skipped"
                );
            }
        }
        while let Some(socket) = self.fallback.as_ref() {
            let got = socket
                .try_recv(&mut self.buf)
                .map_err(|source| ReceiveError::Fallback { source })?;
            let Some((ifindex, len)) = got else {
                break;
            };
            if let Some(ev) = self.classify_fallback_frame(ifindex, len) {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// Runs the classifier on the fallback frame in `buf[..len]`; the event
    /// if it is a valid advert. Its timestamp is when it was read here: the
    /// packet socket's own timestamps are on the wall clock, not
    /// CLOCK_MONOTONIC, so a frame that waited in the socket looks newer
    /// than it is (a paused daemon then takes over later, never sooner).
    fn classify_fallback_frame(&mut self, ifindex: u32, len: usize) -> Option<AdvertEvent> {
        if !self.fallback_ifindexes.contains(&ifindex) {
            return None;
        }
        self.tables.now_ns = monotonic_ns();
        match inspect(&self.buf[..len], ifindex, &mut self.tables) {
            Verdict::NotCarp => None,
            Verdict::Drop(reason) => {
                self.fallback_counters.bump(reason);
                None
            }
            Verdict::Advert(at) => {
                let mut ev = AdvertEvent::zeroed();
                if fill_event(&self.buf[..len], &at, ifindex, &mut ev) {
                    self.fallback_counters.bump(Reason::Delivered);
                    Some(ev)
                } else {
                    self.fallback_counters.bump(Reason::Truncated);
                    None
                }
            }
        }
    }
}

/// Why XDP could not attach, for logs and status: the error and its causes,
/// led by the likely cause when the kernel says the hook is taken (EBUSY: a
/// program or BPF link holds it in that mode; EEXIST: a program holds it in
/// the other mode).
fn why_not_xdp(e: &ProgramError) -> String {
    let text = Chain(e).to_string();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EBUSY | libc::EEXIST)) {
                return format!("another program holds the interface's XDP hook ({text})");
            }
        }
        cause = c.source();
    }
    text
}

async fn next_ring_event(
    ring: Option<&mut AsyncFd<RingBuf<MapData>>>,
) -> Result<AdvertEvent, ReceiveError> {
    let Some(ring) = ring else {
        return std::future::pending().await;
    };
    loop {
        let mut guard = ring
            .readable_mut()
            .await
            .map_err(|source| ReceiveError::Ring { source })?;
        let rb = guard.get_inner_mut();
        while let Some(item) = rb.next() {
            // Every record is an AdvertEvent written by our program; a record
            // of another size would be a build mismatch, skipped.
            if let Some(ev) = AdvertEvent::from_bytes(&item) {
                return Ok(ev);
            }
            tracing::warn!(
                len = item.len(),
                "ring buffer record of unexpected size skipped"
            );
        }
        guard.clear_ready();
    }
}

async fn next_fallback_frame(
    socket: Option<&FallbackSocket>,
    buf: &mut [u8],
) -> std::io::Result<(u32, usize)> {
    match socket {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach_error(errno: i32) -> ProgramError {
        ProgramError::Program {
            op: "attach XDP to eth0 in native mode".into(),
            source: Box::new(aya::programs::ProgramError::SyscallError(
                aya::sys::SyscallError {
                    call: "bpf_link_create",
                    io_error: std::io::Error::from_raw_os_error(errno),
                },
            )),
        }
    }

    #[test]
    fn a_taken_xdp_hook_is_named_as_the_reason() {
        for errno in [libc::EBUSY, libc::EEXIST] {
            let why = why_not_xdp(&attach_error(errno));
            assert!(
                why.starts_with("another program holds the interface's XDP hook (cannot attach XDP to eth0 in native mode"),
                "{why}"
            );
        }
        let why = why_not_xdp(&attach_error(libc::EOPNOTSUPP));
        assert!(why.starts_with("cannot attach XDP to eth0"), "{why}");
        assert!(!why.contains("another program"), "{why}");
    }

    #[test]
    fn reception_names_as_in_xdp_mode() {
        assert_eq!(Reception::Tc.name(), XdpMode::Tc.name());
        assert_eq!(Reception::Fallback.name(), XdpMode::Off.name());
        assert_eq!(Reception::Xdp(AttachMode::Skb).name(), XdpMode::Skb.name());
    }
}
