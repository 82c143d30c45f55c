//! Many vhids per host: 1, 16 and 255 instances (one IPv4 VIP each, advbase
//! 1, advskew 0 on A and 100 on B). carpd-xdp runs them all in one process
//! from a configuration file; UCARP needs one process per vhid (1 and 16
//! here). Measured: whether the pair settles with every VIP on A and none on
//! B (the burst of adverts of a master of many vhids once filled a shared
//! rate-limit bucket), steady CPU and RSS of each host's daemons, and after
//! A's link goes down, the time until B holds each VIP (p50 and max).

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use carp_testnet::ChildGuard;

use super::daemons::{drop_addr, scripts, Daemon, Impl, SpawnLogged};
use super::failover::ms;
use super::stage::{dotted, exec_in, Host, Stage, PASSWORD};
use super::stats::{summarize, Summary};
use super::sys;

/// One (implementation, number of vhids) measured.
#[derive(Clone, Debug)]
pub struct ScaleOutcome {
    /// Implementation.
    pub which: Impl,
    /// vhids per host.
    pub vhids: usize,
    /// Whether A held every VIP and B none before the fault.
    pub settled: bool,
    /// VIPs B held while A was healthy (at the end of the settle wait).
    pub backup_held: usize,
    /// Steady CPU of A's and B's daemons, % of one core.
    pub cpu_pct: (f64, f64),
    /// Steady RSS of B's daemons, KiB (summed over processes).
    pub rss_kib: u64,
    /// Peak RSS of one daemon process, KiB.
    pub peak_rss_kib: u64,
    /// Link down on A → B holds the VIP, per VIP, ms.
    pub takeover_ms: Option<Summary>,
    /// VIPs B did not take within the limit.
    pub missing: usize,
}

/// The VIP of the `i`-th vhid (0-based): 10.77.1.1 upwards, outside the
/// hosts' own addresses.
fn vip(i: usize) -> [u8; 4] {
    [10, 77, 1 + (i / 250) as u8, 1 + (i % 250) as u8]
}

/// The daemons of one host: one carpd-xdp, or one UCARP per vhid; killed
/// on drop.
struct HostDaemons(Vec<Daemon>, Vec<ChildGuard>);

impl HostDaemons {
    fn pids(&self) -> Vec<u32> {
        self.0
            .iter()
            .map(Daemon::pid)
            .chain(self.1.iter().map(ChildGuard::pid))
            .collect()
    }

    fn stop(mut self) {
        for d in &self.0 {
            d.signal(libc::SIGTERM);
        }
        for c in &self.1 {
            let _ = c.signal(libc::SIGTERM);
        }
        for d in &mut self.0 {
            d.reap(Duration::from_secs(3));
        }
        for c in &mut self.1 {
            c.kill();
        }
    }
}

fn start(
    stage: &Stage,
    daemon: &Path,
    which: Impl,
    host: &Host,
    role: &str,
    skew: u8,
    n: usize,
) -> Result<HostDaemons> {
    match which {
        Impl::Carpd => {
            let mut t = format!(
                "[global]\nstatus_socket = \"{}\"\nstate_dir = \"{}\"\nlog_facility = \"none\"\n",
                stage.dir.join(format!("scale-{role}.sock")).display(),
                stage.dir.join(format!("state-scale-{role}")).display()
            );
            for i in 0..n {
                t += &format!(
                    "\n[[instance]]\ninterface = \"eth0\"\nvhid = {}\nsrcip = \"{}\"\nvips = [\"{}/32\"]\n\
                     advskew = {skew}\npreempt = true\npassword = \"{PASSWORD}\"\n",
                    i + 1,
                    host.addr(),
                    dotted(vip(i))
                );
            }
            let config = stage.dir.join(format!("scale-{role}.toml"));
            std::fs::write(&config, t)?;
            let d =
                Daemon::with_config(stage, daemon, host, &config, &format!("scale-carpd-{role}"))?;
            Ok(HostDaemons(vec![d], Vec::new()))
        }
        Impl::Ucarp => {
            let (up, down) = scripts(&stage.dir)?;
            let log = stage.dir.join(format!("scale-ucarp-{role}.log"));
            let mut children = Vec::new();
            for i in 0..n {
                let file = OpenOptions::new().create(true).append(true).open(&log)?;
                let child = Command::new("ip")
                    .args(["netns", "exec", &host.ns, "ucarp", "--interface=eth0"])
                    .arg(format!("--srcip={}", host.addr()))
                    .arg(format!("--vhid={}", i + 1))
                    .arg(format!("--pass={PASSWORD}"))
                    .arg(format!("--addr={}", dotted(vip(i))))
                    .arg(format!("--advskew={skew}"))
                    .arg("--preempt")
                    .arg(format!("--upscript={}", up.display()))
                    .arg(format!("--downscript={}", down.display()))
                    .spawn_logged(file)
                    .context("start ucarp")?;
                children.push(ChildGuard(child));
            }
            Ok(HostDaemons(Vec::new(), children))
        }
        Impl::Keepalived => anyhow::bail!("the scale section runs carpd-xdp and UCARP"),
    }
}

/// The scale VIPs `host` holds.
fn held(host: &Host) -> Result<HashSet<[u8; 4]>> {
    let out = exec_in(&host.ns, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
    Ok(out
        .split_whitespace()
        .filter_map(|w| w.strip_suffix("/32"))
        .filter_map(|a| {
            let o: Vec<u8> = a.split('.').filter_map(|x| x.parse().ok()).collect();
            <[u8; 4]>::try_from(o).ok()
        })
        .filter(|a| a[0] == 10 && a[1] == 77 && a[2] >= 1)
        .collect())
}

fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| sys::cpu_ticks(*p).ok()).sum()
}

/// Measures `which` with `n` vhids per host; `window` is the steady window.
pub fn measure(
    stage: &Stage,
    daemon: &Path,
    which: Impl,
    n: usize,
    window: Duration,
) -> Result<ScaleOutcome> {
    println!("bench: scale, {} with {n} vhids per host", which.name());
    let all: HashSet<[u8; 4]> = (0..n).map(vip).collect();
    let a = start(stage, daemon, which, &stage.a, "a", 0, n)?;
    sys::pause(Duration::from_millis(300))?;
    let b = start(stage, daemon, which, &stage.b, "b", 100, n)?;
    // advbase 1, advskew 100: master-down 3.4 s; give it twice that and more.
    let limit = Instant::now() + Duration::from_secs(15);
    let mut settled = false;
    while Instant::now() < limit {
        sys::pause(Duration::from_millis(200))?;
        if held(&stage.a)? == all && held(&stage.b)?.is_empty() {
            settled = true;
            break;
        }
    }
    // A few more intervals: what B holds while A is alive is a false master.
    sys::pause(Duration::from_secs(4))?;
    let backup_held = held(&stage.b)?.len();
    settled &= backup_held == 0;
    let (pa, pb) = (a.pids(), b.pids());
    let (ta, tb) = (cpu_ticks(&pa), cpu_ticks(&pb));
    sys::pause(window)?;
    let ticks = sys::clock_ticks() * window.as_secs_f64();
    let cpu_pct = (
        100.0 * (cpu_ticks(&pa) - ta) as f64 / ticks,
        100.0 * (cpu_ticks(&pb) - tb) as f64 / ticks,
    );
    let rss_kib = pb.iter().filter_map(|p| vm_rss_kib(*p)).sum();
    let peak_rss_kib = pa
        .iter()
        .chain(&pb)
        .filter_map(|p| sys::vm_hwm_kib(*p))
        .max()
        .unwrap_or(0);

    let fault = sys::run_in(&stage.a.ns, || {
        let t = Instant::now();
        sys::set_link("eth0", false)?;
        Ok(t)
    })?;
    let mut seen: Vec<f64> = Vec::with_capacity(n);
    let mut got: HashSet<[u8; 4]> = HashSet::new();
    let deadline = fault + Duration::from_secs(13);
    while got.len() < n && Instant::now() < deadline {
        for v in held(&stage.b)? {
            if got.insert(v) {
                seen.push(ms(fault.elapsed()));
            }
        }
        sys::pause(Duration::from_millis(10))?;
    }
    let missing = n - got.len();
    a.stop();
    b.stop();
    sys::run_in(&stage.a.ns, || sys::set_link("eth0", true))?;
    for host in [&stage.a, &stage.b] {
        for v in held(host)? {
            drop_addr(host, v);
        }
    }
    let out = ScaleOutcome {
        which,
        vhids: n,
        settled,
        backup_held,
        cpu_pct,
        rss_kib,
        peak_rss_kib,
        takeover_ms: summarize(&seen),
        missing,
    };
    println!(
        "bench:   settled {settled} (backup held {backup_held}), CPU {:.2} / {:.2} %, takeover max {} ms, missing {missing}",
        cpu_pct.0,
        cpu_pct.1,
        out.takeover_ms.map_or("–".into(), |s| format!("{:.0}", s.max))
    );
    Ok(out)
}

/// Current resident set size (VmRSS) of `pid`, in KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
