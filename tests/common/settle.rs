//! Who holds a VIP, judged over time rather than from one sample: what the
//! interoperability tests assert ("exactly one master") needs a window,
//! because two masters that flap take turns and a single sample can land on
//! a moment where only one of them holds the address.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::cluster::Lan;

/// Gap between samples.
pub const SAMPLE: Duration = Duration::from_millis(50);

/// Samples the holders of `vip` for `window`. `Ok(host)` when every sample
/// found exactly `host` holding it; otherwise `Err` describing the first
/// sample that did not, and how many samples were bad.
pub fn sole_holder_over(lan: &Lan, vip: Ipv4Addr, window: Duration) -> Result<usize, String> {
    let start = Instant::now();
    let mut first: Option<Vec<usize>> = None;
    let mut bad: Vec<(Duration, Vec<usize>)> = Vec::new();
    let mut samples = 0;
    while start.elapsed() < window {
        let h = lan.holders(vip);
        samples += 1;
        let f = first.get_or_insert_with(|| h.clone());
        if h.len() != 1 || h != *f {
            bad.push((start.elapsed(), h));
        }
        std::thread::sleep(SAMPLE);
    }
    match (first, bad.first()) {
        (Some(f), None) if f.len() == 1 => Ok(f[0]),
        (f, b) => Err(format!(
            "{vip} not held by exactly one constant host over {window:?}: first sample {f:?}, \
             {} of {samples} samples differ, the first at {:?}",
            bad.len(),
            b
        )),
    }
}

/// Waits until `vip` is on host `host` only; returns how long that took.
/// Panics with the holders after `within`.
pub fn wait_sole_holder(lan: &Lan, vip: Ipv4Addr, host: usize, within: Duration) -> Duration {
    try_wait_sole_holder(lan, vip, host, within).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `vip` is on host `host` only; how long that took, or why not
/// after `within`.
pub fn try_wait_sole_holder(
    lan: &Lan,
    vip: Ipv4Addr,
    host: usize,
    within: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let holders = lan.holders(vip);
        if holders == [host] {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(format!(
                "{vip} not on host {host} only within {within:?}: holders {holders:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
