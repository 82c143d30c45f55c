//! The embedded eBPF object: loading it, filling its maps, attaching its
//! programs to interfaces through BPF links, reading its counters.
//!
//! The object holds two programs over the same maps: the XDP program and the
//! TC program (the same receive path, from the tcx ingress hook), used where
//! the interface's XDP hook is taken, e.g. by another carpd-xdp process. Each
//! is loaded into the kernel (verified) the first time it is attached.
//!
//! Attachments are BPF links (`bpf_link_create`), owned by this process: when
//! the process exits, crashes or is killed, the kernel closes the link and the
//! program leaves the interface. A legacy netlink attachment (XDP through
//! rtnetlink, TC through a `clsact` qdisc filter), which would outlive the
//! process, is refused.

use std::ffi::CStr;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::links::FdLink;
use aya::programs::tc::TcAttachOptions;
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode as AyaXdpMode};
use aya::{Ebpf, EbpfLoader, TestRun, TestRunOptions, TestRunResult};
use carp_common::constants::{
    MAP_COUNTERS, MAP_EVENTS, MAP_HMAC, MAP_HMAC_ALT, MAP_PEERS, MAP_REPLAY, MAP_SETTINGS,
    MAP_VHIDS, PROGRAM_NAME, TC_PROGRAM_NAME,
};
use carp_common::hmac::HmacKey;
use carp_common::maps::{
    PeerKey, PeerValue, ReplayKey, ReplayState, Settings, VhidKey, VhidValue, VHID_PEERS_ONLY,
    VHID_SERVED,
};
use carp_common::reason::REASON_COUNT;

use super::counters::Counters;
use super::key::VhidKeys;

/// The XDP object built by `carp-daemon/build.rs`.
pub static XDP_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/carp-ebpf.o"));

/// Failures of loading, attaching or using the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The object could not be loaded (verifier, BTF, permissions).
    #[error("cannot load the XDP object")]
    Load {
        /// What aya reported.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// A map or the program is missing from the object.
    #[error("the XDP object has no {what} named {name}")]
    Missing {
        /// "map" or "program".
        what: &'static str,
        /// Its name.
        name: &'static str,
    },
    /// A program operation (load into the kernel, attach) failed.
    #[error("cannot {op}")]
    Program {
        /// What was being done.
        op: String,
        /// What aya reported.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// The kernel made a legacy (netlink) attachment instead of a BPF link.
    #[error("interface {ifname}: the kernel attached {hook} without a BPF link, which would outlive the daemon; refused")]
    NoBpfLink {
        /// The interface.
        ifname: String,
        /// "XDP" or "TC".
        hook: &'static str,
    },
    /// A map operation failed.
    #[error("cannot {op}")]
    Map {
        /// What was being done.
        op: String,
        /// What aya reported.
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// How a program is attached to one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (skb) XDP.
    Skb,
}

impl AttachMode {
    /// Lowercase name, as in `--xdp-mode`.
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
        }
    }

    fn aya(self) -> AyaXdpMode {
        match self {
            AttachMode::Native => AyaXdpMode::Driver,
            AttachMode::Skb => AyaXdpMode::Skb,
        }
    }
}

/// Which of the object's two programs a test run goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// The XDP program (returns an `xdp_action`).
    Xdp,
    /// The TC program (returns a `tcx_action_base` value).
    Tc,
}

/// The loaded object: its programs and the maps the daemon uses.
pub struct XdpProgram {
    ebpf: Ebpf,
    /// The XDP program has been loaded into the kernel.
    xdp_loaded: bool,
    /// The TC program has been loaded into the kernel.
    tc_loaded: bool,
    vhids: HashMap<MapData, VhidKey, VhidValue>,
    peers: HashMap<MapData, PeerKey, PeerValue>,
    hmac: HashMap<MapData, VhidKey, HmacKey>,
    hmac_alt: HashMap<MapData, VhidKey, HmacKey>,
    replay: HashMap<MapData, ReplayKey, ReplayState>,
    settings: Array<MapData, Settings>,
    counters: PerCpuArray<MapData, u64>,
    events: Option<RingBuf<MapData>>,
    /// One BPF link per attached interface (XDP or tcx): (ifindex, link).
    /// Dropping a link detaches the program from that interface.
    links: Vec<(u32, FdLink)>,
}

/// The XDP program in the loaded object.
fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, ProgramError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or(ProgramError::Missing {
            what: "program",
            name: PROGRAM_NAME,
        })?
        .try_into()
        .map_err(program_err(|| "find the XDP program".into()))
}

/// The TC program in the loaded object.
fn tc_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, ProgramError> {
    ebpf.program_mut(TC_PROGRAM_NAME)
        .ok_or(ProgramError::Missing {
            what: "program",
            name: TC_PROGRAM_NAME,
        })?
        .try_into()
        .map_err(program_err(|| "find the TC program".into()))
}

/// The XDP program, loaded into the kernel if it is not yet.
fn loaded_xdp<'a>(ebpf: &'a mut Ebpf, loaded: &mut bool) -> Result<&'a mut Xdp, ProgramError> {
    let program = xdp_program(ebpf)?;
    if !*loaded {
        program
            .load()
            .map_err(program_err(|| "load the XDP program".into()))?;
        *loaded = true;
    }
    Ok(program)
}

/// The TC program, loaded into the kernel if it is not yet.
fn loaded_tc<'a>(
    ebpf: &'a mut Ebpf,
    loaded: &mut bool,
) -> Result<&'a mut SchedClassifier, ProgramError> {
    let program = tc_program(ebpf)?;
    if !*loaded {
        program
            .load()
            .map_err(program_err(|| "load the TC program".into()))?;
        *loaded = true;
    }
    Ok(program)
}

/// A [`ProgramError::Program`] of the operation `op` names.
fn program_err(
    op: impl FnOnce() -> String,
) -> impl FnOnce(aya::programs::ProgramError) -> ProgramError {
    move |source| ProgramError::Program {
        op: op(),
        source: Box::new(source),
    }
}

/// Where the kernel publishes its BTF; aya reads `vmlinux` in it.
const KERNEL_BTF_DIR: &CStr = c"/sys/kernel/btf";

/// aya's loader, made without the kernel's BTF. `EbpfLoader::new` reads and
/// parses `/sys/kernel/btf/vmlinux` (5-6 MiB read, some 12 MiB more parsed)
/// even for a loader then told to use none: that was most of the daemon's
/// peak memory, for an object that needs none. So the loader is made on a
/// short-lived thread whose own root directory hides the file; where that is
/// not allowed (no `CAP_SYS_CHROOT`), it is made as usual.
fn loader() -> EbpfLoader<'static> {
    let made = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Err(e) = hide_kernel_btf() {
                    tracing::debug!("kernel BTF not hidden from the loader: {e}");
                }
                EbpfLoader::new()
            })
            .join()
    });
    made.unwrap_or_else(|_| EbpfLoader::new())
}

/// Gives the calling thread a root directory of its own, the kernel's BTF
/// directory, where the absolute path `/sys/kernel/btf/vmlinux` names
/// nothing. No mount and no namespace: the thread's filesystem context
/// (root, working directory, umask) is unshared from the process's, and the
/// process and its other threads keep theirs.
fn hide_kernel_btf() -> std::io::Result<()> {
    let check = |rc: libc::c_int| match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    };
    // SAFETY: unshare takes no pointers; CLONE_FS is allowed in a thread.
    check(unsafe { libc::unshare(libc::CLONE_FS) })?;
    // SAFETY: a NUL-terminated literal.
    check(unsafe { libc::chroot(KERNEL_BTF_DIR.as_ptr()) })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProgramError> {
    ebpf.take_map(name)
        .ok_or(ProgramError::Missing { what: "map", name })
}

/// A removal of a key that is not there (aya's `KeyNotFound`, or the
/// kernel's ENOENT) is no error: the entry is gone either way.
fn absent_is_removed(r: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn map_err(op: impl Into<String>) -> impl FnOnce(aya::maps::MapError) -> ProgramError {
    let op = op.into();
    move |source| ProgramError::Map {
        op,
        source: Box::new(source),
    }
}

impl XdpProgram {
    /// Loads the embedded object: creates its maps. Its programs are loaded
    /// into the kernel when first attached.
    pub fn load(settings: Settings) -> Result<Self, ProgramError> {
        raise_memlock_limit();
        // No kernel BTF: the program uses no CO-RE relocations.
        let mut ebpf = loader()
            .btf(None)
            .load(XDP_OBJECT)
            .map_err(|e| ProgramError::Load {
                source: Box::new(e),
            })?;
        let vhids = HashMap::try_from(take_map(&mut ebpf, MAP_VHIDS)?)
            .map_err(map_err("open CARP_VHIDS"))?;
        let peers = HashMap::try_from(take_map(&mut ebpf, MAP_PEERS)?)
            .map_err(map_err("open CARP_PEERS"))?;
        let hmac =
            HashMap::try_from(take_map(&mut ebpf, MAP_HMAC)?).map_err(map_err("open CARP_HMAC"))?;
        let hmac_alt = HashMap::try_from(take_map(&mut ebpf, MAP_HMAC_ALT)?)
            .map_err(map_err("open CARP_HMAC_ALT"))?;
        let replay = HashMap::try_from(take_map(&mut ebpf, MAP_REPLAY)?)
            .map_err(map_err("open CARP_REPLAY"))?;
        let mut settings_map = Array::try_from(take_map(&mut ebpf, MAP_SETTINGS)?)
            .map_err(map_err("open CARP_SETTINGS"))?;
        settings_map
            .set(0, settings, 0)
            .map_err(map_err("write CARP_SETTINGS"))?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, MAP_COUNTERS)?)
            .map_err(map_err("open CARP_COUNTERS"))?;
        let events = RingBuf::try_from(take_map(&mut ebpf, MAP_EVENTS)?)
            .map_err(map_err("open CARP_EVENTS"))?;
        Ok(Self {
            ebpf,
            xdp_loaded: false,
            tc_loaded: false,
            vhids,
            peers,
            hmac,
            hmac_alt,
            replay,
            settings: settings_map,
            counters,
            events: Some(events),
            links: Vec::new(),
        })
    }

    /// Attaches the program to an interface in `mode` through a BPF link.
    pub fn attach(
        &mut self,
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
    ) -> Result<(), ProgramError> {
        let program = loaded_xdp(&mut self.ebpf, &mut self.xdp_loaded)?;
        let op = || format!("attach XDP to {ifname} in {} mode", mode.name());
        let link = program
            .attach_to_if_index(ifindex, mode.aya())
            .and_then(|id| program.take_link(id))
            .map_err(program_err(op))?;
        self.keep_link(ifname, ifindex, "XDP", link)
    }

    /// Attaches the TC program to an interface's tcx ingress hook through a
    /// BPF link (kernel 6.6 or later), after the programs already there.
    /// Several processes' programs chain there: each passes on (`TCX_NEXT`)
    /// what it does not claim.
    pub fn attach_tc(&mut self, ifname: &str, ifindex: u32) -> Result<(), ProgramError> {
        let program = loaded_tc(&mut self.ebpf, &mut self.tc_loaded)?;
        let op = || format!("attach TC (tcx ingress) to {ifname}");
        // Never `TcAttachOptions::Netlink`: a clsact filter outlives us.
        let link = program
            .attach_with_options(
                ifname,
                TcAttachType::Ingress,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .and_then(|id| program.take_link(id))
            .map_err(program_err(op))?;
        self.keep_link(ifname, ifindex, "TC", link)
    }

    /// Keeps `link`, just made on `ifindex`, as a BPF link owned by this
    /// process. A netlink attachment cannot become one: it is refused, and
    /// dropping it here detaches it.
    fn keep_link<L>(
        &mut self,
        ifname: &str,
        ifindex: u32,
        hook: &'static str,
        link: L,
    ) -> Result<(), ProgramError>
    where
        FdLink: TryFrom<L>,
    {
        let fd_link = FdLink::try_from(link).map_err(|_| ProgramError::NoBpfLink {
            ifname: ifname.to_string(),
            hook,
        })?;
        self.links.push((ifindex, fd_link));
        Ok(())
    }

    /// Runs `frame` through one program `repeat` times with the kernel's
    /// `BPF_PROG_TEST_RUN` (aya's [`TestRun`]), over the maps as they are:
    /// the program's return value and the mean time per run. No interface
    /// is involved: the kernel presents the frame as received on the
    /// caller's network namespace's loopback device.
    pub fn test_run(
        &mut self,
        hook: Hook,
        frame: &[u8],
        repeat: u32,
    ) -> Result<TestRunResult, ProgramError> {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        match hook {
            Hook::Xdp => loaded_xdp(&mut self.ebpf, &mut self.xdp_loaded)?.test_run(opts),
            Hook::Tc => loaded_tc(&mut self.ebpf, &mut self.tc_loaded)?.test_run(opts),
        }
        .map_err(program_err(|| format!("test-run the {hook:?} program")))
    }

    /// Detaches the program from an interface (no-op if not attached).
    pub fn detach(&mut self, ifindex: u32) {
        self.links.retain(|(i, _)| *i != ifindex);
    }

    /// Interfaces the program is attached to.
    pub fn attached(&self) -> impl Iterator<Item = u32> + '_ {
        self.links.iter().map(|(i, _)| *i)
    }

    /// Lets adverts for `vhid` on `ifindex` through; with `peers` not
    /// empty, only from them (the allow-list is written first, then the
    /// vhid's flags).
    pub fn serve_vhid(
        &mut self,
        ifindex: u32,
        vhid: u8,
        peers: &[(PeerKey, PeerValue)],
    ) -> Result<(), ProgramError> {
        self.remove_peers(ifindex, vhid)?;
        for (k, v) in peers {
            self.peers.insert(k, v, 0).map_err(map_err(format!(
                "add a peer of vhid {vhid} on ifindex {ifindex} to CARP_PEERS"
            )))?;
        }
        let key = VhidKey {
            ifindex,
            vhid: u32::from(vhid),
        };
        let enabled = VHID_SERVED | if peers.is_empty() { 0 } else { VHID_PEERS_ONLY };
        self.vhids
            .insert(key, VhidValue { enabled }, 0)
            .map_err(map_err(format!(
                "add vhid {vhid} on ifindex {ifindex} to CARP_VHIDS"
            )))
    }

    /// Removes the allow-list of `vhid` on `ifindex`.
    fn remove_peers(&mut self, ifindex: u32, vhid: u8) -> Result<(), ProgramError> {
        let keys: Vec<PeerKey> = self
            .peers
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.ifindex == ifindex && k.vhid == u16::from(vhid))
            .collect();
        for k in keys {
            absent_is_removed(self.peers.remove(&k)).map_err(map_err(format!(
                "remove a peer of vhid {vhid} on ifindex {ifindex} from CARP_PEERS"
            )))?;
        }
        Ok(())
    }

    /// Stops letting adverts for `vhid` on `ifindex` through.
    pub fn unserve_vhid(&mut self, ifindex: u32, vhid: u8) -> Result<(), ProgramError> {
        let key = VhidKey {
            ifindex,
            vhid: u32::from(vhid),
        };
        absent_is_removed(self.vhids.remove(&key)).map_err(map_err(format!(
            "remove vhid {vhid} on ifindex {ifindex} from CARP_VHIDS"
        )))?;
        self.remove_peers(ifindex, vhid)
    }

    /// Installs (or, with `None`, removes) the HMAC keys of a served vhid.
    pub fn set_hmac_keys(
        &mut self,
        vk: VhidKey,
        keys: Option<&VhidKeys>,
    ) -> Result<(), ProgramError> {
        let op = |map: &str| {
            format!(
                "update the HMAC key of vhid {} on ifindex {} in {map}",
                vk.vhid, vk.ifindex
            )
        };
        // The second key first and gone first: the kernel never holds a
        // second key next to another vhid's first.
        match keys.and_then(|k| k.alt.as_ref()) {
            Some(alt) => self.hmac_alt.insert(vk, *alt, 0),
            None => absent_is_removed(self.hmac_alt.remove(&vk)),
        }
        .map_err(map_err(op("CARP_HMAC_ALT")))?;
        match keys {
            Some(k) => self.hmac.insert(vk, k.key, 0),
            None => absent_is_removed(self.hmac.remove(&vk)),
        }
        .map_err(map_err(op("CARP_HMAC")))
    }

    /// Sets a source's replay rule: replaces the one there with `replace`,
    /// else only installs it where none is (the kernel keeps an installed
    /// rule's state up to date).
    pub fn set_replay_rule(
        &mut self,
        key: ReplayKey,
        state: &ReplayState,
        replace: bool,
    ) -> Result<(), ProgramError> {
        const BPF_NOEXIST: u64 = 1;
        let flags = if replace { 0 } else { BPF_NOEXIST };
        match self.replay.insert(key, state, flags) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if !replace && e.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            Err(e) => Err(map_err(format!(
                "set the replay rule of vhid {} in CARP_REPLAY",
                key.vhid
            ))(e)),
        }
    }

    /// Removes a source's replay rule, if there is one.
    pub fn remove_replay_rule(&mut self, key: &ReplayKey) -> Result<(), ProgramError> {
        absent_is_removed(self.replay.remove(key)).map_err(map_err(format!(
            "remove the replay rule of vhid {} from CARP_REPLAY",
            key.vhid
        )))
    }

    /// Replaces the settings (rate limit, pass-handled flag).
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), ProgramError> {
        self.settings
            .set(0, settings, 0)
            .map_err(map_err("write CARP_SETTINGS"))
    }

    /// The per-reason counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, ProgramError> {
        let mut out = Counters::default();
        for index in 0..REASON_COUNT {
            let per_cpu = self
                .counters
                .get(&index, 0)
                .map_err(map_err("read CARP_COUNTERS"))?;
            out.0[index as usize] = per_cpu.iter().sum();
        }
        Ok(out)
    }

    /// Takes the ring buffer of validated adverts (once).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it (best effort).
fn raise_memlock_limit() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid pointer to an initialised rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
    if rc != 0 {
        tracing::debug!(
            "cannot raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use carp_common::constants::{MAP_NAMES, PROGRAM_NAME, TC_PROGRAM_NAME};

    #[test]
    fn the_kernel_btf_is_hidden_on_the_loader_thread_alone() {
        if !carp_testnet::require_root("the_kernel_btf_is_hidden_on_the_loader_thread_alone") {
            return;
        }
        let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
        if !vmlinux.exists() {
            eprintln!("skipped: this kernel has no BTF to hide");
            return;
        }
        let root = || std::fs::read_link("/proc/self/root").unwrap();
        let before = root();
        let seen_there = std::thread::spawn(move || {
            super::hide_kernel_btf().expect("root may chroot");
            vmlinux.exists()
        })
        .join()
        .unwrap();
        assert!(!seen_there, "the loader thread still sees {vmlinux:?}");
        assert!(vmlinux.exists(), "the other threads no longer see it");
        assert_eq!(root(), before, "the process's root directory changed");
    }

    #[test]
    fn embedded_object_has_every_map_and_both_programs() {
        let obj =
            aya_obj::Object::parse(super::XDP_OBJECT).expect("the embedded XDP object parses");
        for name in MAP_NAMES {
            assert!(
                obj.maps.contains_key(name),
                "map {name} missing; object has {:?}",
                obj.maps.keys()
            );
        }
        for name in [PROGRAM_NAME, TC_PROGRAM_NAME] {
            assert!(obj.programs.contains_key(name), "program {name} missing");
        }
    }
}
