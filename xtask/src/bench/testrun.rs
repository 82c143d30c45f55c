//! Per-packet cost of the XDP program: `BPF_PROG_TEST_RUN` (bpf(2) through
//! libc) on the program loaded by aya from the object built in
//! `target/ebpf`, with the maps filled as the daemon fills them, over
//! crafted frames, `repeat` times each; the kernel reports the mean ns per
//! run.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use aya::maps::HashMap;
use aya::programs::Xdp;
use aya::Ebpf;
use carp_common::constants::{MAP_HMAC, MAP_VHIDS, PROGRAM_NAME};
use carp_common::hmac::{self, HmacKey};
use carp_common::maps::{VhidKey, VhidValue};

use super::generator::{carp_frame, header, udp_frame};
use super::stage::{Host, Stage, PASSWORD, VHID, VIP};
use super::stats::summarize;

/// Runs of each frame in one test run.
const REPEAT: u32 = 1_000_000;
/// Test runs per frame (the median is reported).
const ROUNDS: usize = 3;
/// `BPF_PROG_TEST_RUN`.
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// Ingress interface of a test run without context: the loopback device.
const LOOPBACK_IFINDEX: u32 = 1;

/// The `test` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Cost of one crafted frame.
#[derive(Clone, Debug)]
pub struct Cost {
    /// What the frame is.
    pub frame: &'static str,
    /// XDP action returned (1 drop, 2 pass).
    pub action: u32,
    /// Mean ns per packet (median of [`ROUNDS`] test runs).
    pub ns_per_packet: f64,
}

/// The crafted frames, with what each one is.
pub struct Frames(Vec<(&'static str, Vec<u8>)>);

impl Frames {
    /// Frames between the stage's hosts; the valid one is signed as the
    /// bench's daemons sign theirs.
    pub fn new(stage: &Stage) -> Frames {
        let (x, a, b): (&Host, &Host, &Host) = (&stage.attacker, &stage.a, &stage.b);
        let counter = 0x0102_0304_0506_0708u64;
        let valid = hmac::compute(&bench_key(), &counter.to_be_bytes());
        Frames(vec![
            ("non-CARP UDP (pass)", udp_frame(x, b)),
            (
                "CARP, unknown vhid (counted, passed on)",
                carp_frame(a.mac, a.ip, b.mac, &header(VHID + 92, counter, valid)),
            ),
            (
                "CARP, wrong HMAC (full verify, drop)",
                carp_frame(a.mac, a.ip, b.mac, &header(VHID, counter, [0x22; 20])),
            ),
            (
                "CARP, valid advert (full verify, ring buffer)",
                carp_frame(a.mac, a.ip, b.mac, &header(VHID, counter, valid)),
            ),
        ])
    }
}

/// The HMAC key of the bench's vhid, as the daemon precomputes it.
fn bench_key() -> HmacKey {
    HmacKey::precompute(PASSWORD.as_bytes(), VHID, &[VIP], &[])
        .expect("the bench's password and VIP fit")
}

/// Loads the object at `object` and measures each frame (run it inside a
/// namespace: without a context the kernel uses its loopback device).
pub fn measure(object: &Path, frames: &Frames) -> Result<Vec<Cost>> {
    let mut ebpf = Ebpf::load_file(object).with_context(|| format!("load {}", object.display()))?;
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| anyhow!("no program {PROGRAM_NAME}"))?
        .try_into()?;
    program.load().context("load the XDP program")?;
    let fd = program.fd()?.as_fd().as_raw_fd();

    let key = VhidKey {
        ifindex: LOOPBACK_IFINDEX,
        vhid: u32::from(VHID),
    };
    let mut vhids: HashMap<_, VhidKey, VhidValue> =
        HashMap::try_from(ebpf.map_mut(MAP_VHIDS).context("CARP_VHIDS")?)?;
    vhids.insert(key, VhidValue { enabled: 1 }, 0)?;
    let hmac_key = bench_key();
    let mut keys: HashMap<_, VhidKey, HmacKey> =
        HashMap::try_from(ebpf.map_mut(MAP_HMAC).context("CARP_HMAC")?)?;
    keys.insert(key, hmac_key, 0)?;

    let mut out = Vec::new();
    for (name, frame) in &frames.0 {
        let mut runs = Vec::new();
        let mut action = 0;
        for _ in 0..ROUNDS {
            let (ret, ns) = test_run(fd, frame)?;
            action = ret;
            runs.push(f64::from(ns));
        }
        let ns_per_packet = summarize(&runs).map_or(0.0, |s| s.median);
        println!("bench:   {name}: {ns_per_packet:.0} ns/packet (action {action})");
        out.push(Cost {
            frame: name,
            action,
            ns_per_packet,
        });
    }
    Ok(out)
}

/// One `BPF_PROG_TEST_RUN` of `frame`, [`REPEAT`] times: (action, ns per run).
fn test_run(prog_fd: i32, frame: &[u8]) -> Result<(u32, u32)> {
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: REPEAT,
        ..TestRunAttr::default()
    };
    // SAFETY: bpf(2) with a valid attribute of the size given; data_in
    // points at `frame`, which outlives the call; no output buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>() as u32,
        )
    };
    if rc != 0 {
        bail!("BPF_PROG_TEST_RUN: {}", std::io::Error::last_os_error());
    }
    Ok((attr.retval, attr.duration))
}
