//! Cost of the XDP program for ordinary traffic: UDP from the client to B
//! across B's veth with no program, with the program attached natively and
//! in skb mode (by `carpd-xdp monitor`, which loads the same object and
//! serves the bench's vhid). Configurations alternate, and each one's
//! median over the rounds is reported.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use carp_testnet::ChildGuard;

use super::stage::{exec_in, Stage, VHID};
use super::stats::summarize;
use super::sys;
use super::traffic::{self, Sink};

/// A receive-path configuration of B's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// No XDP program.
    None,
    /// Native (driver) XDP.
    Native,
    /// Generic (skb) XDP.
    Skb,
}

impl Attach {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Attach::None => "no XDP program",
            Attach::Native => "XDP native",
            Attach::Skb => "XDP skb (generic)",
        }
    }
}

/// Median received and sent datagram rates of one configuration.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// The configuration.
    pub attach: Attach,
    /// Datagrams per second received by B (median of the rounds).
    pub received_pps: f64,
    /// Datagrams per second the client sent (median of the rounds).
    pub sent_pps: f64,
}

/// Starts `carpd-xdp monitor` holding the program on B's `eth0` (killed
/// when the guard is dropped).
fn attach(stage: &Stage, daemon: &Path, mode: &str) -> Result<ChildGuard> {
    let child = Command::new("ip")
        .args(["netns", "exec", &stage.b.ns])
        .arg(daemon)
        .args([
            "monitor",
            "--interface",
            "eth0",
            "--vhid",
            &VHID.to_string(),
        ])
        .args(["--xdp-mode", mode])
        // Its stdin stays open: monitor quits at end of input.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start carpd-xdp monitor")?;
    let monitor = ChildGuard(child);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        sys::pause(Duration::from_millis(50))?;
        let link = exec_in(&stage.b.ns, &["ip", "link", "show", "dev", "eth0"])?;
        if link.contains("xdp") {
            return Ok(monitor);
        }
    }
    bail!("carpd-xdp monitor did not attach XDP in {mode} mode")
}

/// Measures each configuration `rounds` times for `d` each.
pub fn measure(stage: &Stage, daemon: &Path, rounds: usize, d: Duration) -> Result<Vec<Rate>> {
    let sink = Sink::start(&stage.b.ns)?;
    let configs = [Attach::None, Attach::Native, Attach::Skb];
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); configs.len()];
    for _ in 0..rounds {
        for (i, c) in configs.iter().enumerate() {
            let _monitor = match c {
                Attach::None => None,
                Attach::Native => Some(attach(stage, daemon, "native")?),
                Attach::Skb => Some(attach(stage, daemon, "skb")?),
            };
            let t = traffic::measure(&sink, &stage.client.ns, stage.b.ip, d)?;
            samples[i].0.push(t.received_pps);
            samples[i].1.push(t.sent_pps);
        }
    }
    let median = |v: &[f64]| summarize(v).map_or(0.0, |s| s.median);
    let rates: Vec<Rate> = configs
        .iter()
        .zip(&samples)
        .map(|(c, (r, s))| Rate {
            attach: *c,
            received_pps: median(r),
            sent_pps: median(s),
        })
        .collect();
    for r in &rates {
        println!(
            "bench:   {}: {:.0} kpps received",
            r.attach.name(),
            r.received_pps / 1e3
        );
    }
    Ok(rates)
}
