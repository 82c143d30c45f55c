//! Per-packet cost of the XDP program: `BPF_PROG_TEST_RUN` (aya's
//! [`TestRun`]) on the program loaded by aya from the object built in
//! `target/ebpf`, with the maps filled as the daemon fills them, over
//! crafted frames, `repeat` times each; the kernel reports the mean ns per
//! run.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use aya::maps::HashMap;
use aya::programs::Xdp;
use aya::{Ebpf, TestRun, TestRunOptions};
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
/// Ingress interface of a test run without context: the loopback device.
const LOOPBACK_IFINDEX: u32 = 1;

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

    let program: &Xdp = ebpf
        .program(PROGRAM_NAME)
        .ok_or_else(|| anyhow!("no program {PROGRAM_NAME}"))?
        .try_into()?;
    let mut out = Vec::new();
    for (name, frame) in &frames.0 {
        let mut runs = Vec::new();
        let mut action = 0;
        for _ in 0..ROUNDS {
            let run = program
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    repeat: REPEAT,
                    ..TestRunOptions::default()
                })
                .context("BPF_PROG_TEST_RUN")?;
            action = run.return_value;
            runs.push(run.duration.as_nanos() as f64);
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
