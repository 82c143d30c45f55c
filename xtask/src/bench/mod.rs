//! `cargo xtask bench`: carpd-xdp against UCARP in throw-away namespaces.

mod daemons;
mod failover;
mod probe;
mod stage;
mod stats;
mod sys;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use daemons::{Impl, Timers};
use failover::{Fault, Pair};
use probe::Prober;
use stage::{Stage, VIP};

/// Command-line options of the bench.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Fewer trials and shorter floods.
    pub quick: bool,
}

/// Runs the bench with the release daemon at `daemon`.
pub fn run(daemon: &Path, opts: Options) -> Result<()> {
    if !crate::is_root() {
        anyhow::bail!("the bench creates network namespaces and attaches XDP: run it as root");
    }
    daemons::check_ucarp()?;
    sys::catch_interrupts();
    let started = Instant::now();
    let out = crate::workspace().join("target/bench");
    let stage = Stage::new(out.join("run"))?;
    let prober = Prober::start(&stage.client.ns, VIP)?;
    let n = if opts.quick { 3 } else { 10 };
    for which in [Impl::Carpd, Impl::Ucarp] {
        let mut pair = Pair::start(&stage, daemon, which, Timers::DEFAULTS, &prober)?;
        let t = failover::trials(&mut pair, &prober, Fault::LinkDown, n)?;
        println!("{t:?}");
        pair.stop();
    }
    prober.stop()?;
    println!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
