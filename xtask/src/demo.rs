//! `cargo xtask demo`: a live two-node failover in throw-away namespaces.
//!
//! ```text
//!   host a (carpd-xdp, advskew 0)   ──┐
//!   host b (carpd-xdp, advskew 100) ──┼── br0 (switch namespace)
//!   client (ping VIP every 10 ms)   ──┘
//! ```
//!
//! Host a is elected master of the VIP; its cable is pulled (its bridge port
//! goes down); host b takes over after the master-down interval. The demo
//! runs this twice: at UCARP's default timers (advbase 1, advskew 0 and 100:
//! seconds) and at the fastest ones (advbase 0, advskew 0 and 1: about ten
//! milliseconds), the reason to switch. For each it prints the timeline
//! (elections, the fault, the takeover, the first reply after it), the
//! master-down arithmetic and the measured outage, then removes everything:
//! processes, namespaces and files, on every exit path including Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use carp_testnet::{Bridge, ChildGuard, Netns, Port};

/// The LAN: 10.250.0.0/24, hosts .1 and .2, client .100, VIP .10.
const NET: &str = "10.250.0";
const VHID: u8 = 10;
/// One run of the demo: the timers of hosts a and b, and the client's ping
/// interval.
#[derive(Clone, Copy)]
struct Timers {
    name: &'static str,
    advbase: u32,
    skew_a: u32,
    skew_b: u32,
    ping_interval: &'static str,
}

const RUNS: [Timers; 2] = [
    Timers {
        name: "UCARP's default timers",
        advbase: 1,
        skew_a: 0,
        skew_b: 100,
        ping_interval: "0.01",
    },
    Timers {
        name: "the fastest timers (sub-second failover)",
        advbase: 0,
        skew_a: 0,
        skew_b: 1,
        ping_interval: "0.001",
    },
];

impl Timers {
    /// How host b's master-down interval is computed (deadratio 3, UCARP's
    /// rule; with advbase 0, 3 × the interval), and its value.
    fn master_down(&self) -> String {
        if self.advbase > 0 {
            let md = 3.0 * f64::from(self.advbase) + f64::from(self.skew_b) / 256.0;
            format!(
                "3 × advbase + advskew/256 s = 3 × {} + {}/256 s = {:.1} ms",
                self.advbase,
                self.skew_b,
                md * 1000.0
            )
        } else {
            let skew = self.skew_b.max(1);
            format!(
                "advbase 0: 3 × advskew/256 s = 3 × {skew}/256 s = {:.1} ms",
                3000.0 * f64::from(skew) / 256.0
            )
        }
    }
}
/// Longest wait for anything to happen before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Processes, namespaces and files of the demo, removed on drop in that
/// order.
struct Stage {
    /// Daemons and ping, killed first.
    children: Vec<ChildGuard>,
    /// Hosts a and b and the client, with the namespace names of the demo.
    nodes: Vec<Netns>,
    /// The switch.
    switch: Bridge,
    /// Configs and logs.
    dir: PathBuf,
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.children.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sleeps, or fails if Ctrl-C was pressed.
fn pause(d: Duration) -> Result<()> {
    std::thread::sleep(d);
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Polls `f` every 10 ms until true; fails after [`PATIENCE`].
fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > PATIENCE {
            bail!("gave up after {PATIENCE:?} waiting for {what}");
        }
        pause(Duration::from_millis(10))?;
    }
    Ok(())
}

fn holds_vip(ns: &Netns) -> bool {
    ns.ip(&["-o", "-4", "addr", "show", "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!("inet {NET}.10/")))
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The reply times (epoch seconds) in `ping -D` output.
fn reply_times(ping_output: &str) -> Vec<f64> {
    ping_output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

fn config(dir: &Path, host: &str, last: u8, advbase: u32, advskew: u32) -> Result<PathBuf> {
    let path = dir.join(format!("{host}.toml"));
    let text = format!(
        "[global]\nstatus_socket = \"{sock}\"\nlog_facility = \"none\"\nstate_dir = \"{state}\"\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nsrcip = \"{NET}.{last}\"\n\
         vips = [\"{NET}.10/24\"]\nadvbase_secs = {advbase}\nadvskew = {advskew}\npreempt = true\n\
         password = \"demo\"\n",
        sock = dir.join(format!("{host}.sock")).display(),
        state = dir.join(format!("state-{host}")).display()
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub fn run(daemon: &Path) -> Result<()> {
    if !crate::is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run it as root");
    }
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let mut outages = Vec::new();
    for (i, timers) in RUNS.iter().enumerate() {
        println!("\n=== {} ===", timers.name);
        outages.push((timers.name, one_run(daemon, i, timers)?));
    }
    println!("\nsummary:");
    for (name, ms) in outages {
        println!("  {name}: the client saw an outage of {ms:.1} ms");
    }
    Ok(())
}

/// One failover at `timers`, in namespaces of its own; returns the outage
/// seen by the client, in ms.
fn one_run(daemon: &Path, run: usize, timers: &Timers) -> Result<f64> {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("carpdemo-{pid}-{run}"));
    std::fs::create_dir_all(&dir)?;
    let name = |role: &str| format!("carpdemo-{pid}-{run}-{role}");
    let mut stage = Stage {
        children: Vec::new(),
        nodes: Vec::new(),
        switch: Bridge::new(Netns::named(&name("sw"))?)?,
        dir: dir.clone(),
    };
    for (role, last) in [("a", 1u8), ("b", 2), ("client", 100)] {
        let ns = Netns::named(&name(role))?;
        let cidr = format!("{NET}.{last}/24");
        let how = Port {
            cidr: Some(&cidr),
            ..Port::default()
        };
        stage
            .switch
            .attach(&ns, "eth0", &format!("p-{role}"), how)?;
        stage.nodes.push(ns);
    }
    let sw = stage.switch.ns().name();
    let (a, b, client) = (&stage.nodes[0], &stage.nodes[1], &stage.nodes[2]);

    let t0 = Instant::now();
    let stamp = |what: &str| println!("  {:>7.3} s  {what}", t0.elapsed().as_secs_f64());
    println!("demo: switch {sw}, hosts a ({NET}.1) and b ({NET}.2), client {NET}.100, VIP {NET}.10 (vhid {VHID})");
    println!("timeline:");
    for (host, ns, last, skew) in [("a", a, 1u8, timers.skew_a), ("b", b, 2, timers.skew_b)] {
        let cfg = config(&dir, host, last, timers.advbase, skew)?;
        let log = std::fs::File::create(dir.join(format!("{host}.log")))?;
        let child = ns
            .command(&daemon.to_string_lossy())
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start carpd-xdp")?;
        stage.children.push(ChildGuard(child));
        stamp(&format!(
            "carpd-xdp started on host {host} (advbase {}, advskew {skew})",
            timers.advbase
        ));
    }
    // Both start as backup; at the fastest timers their master-down
    // intervals are equal (advskew 0 is clamped to 1/256 s for sending), so
    // host b may get there first, and host a, which ranks before it,
    // preempts it at once. Wait for that outcome.
    wait_for("host a to be elected (it advertises faster)", || {
        holds_vip(a) && !holds_vip(b)
    })?;
    stamp("host a elected MASTER: the VIP is on host a");

    let ping_out = dir.join("ping.out");
    let ping = client
        .command("ping")
        .args(["-D", "-i", timers.ping_interval])
        .arg(format!("{NET}.10"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&ping_out)?)
        .stderr(Stdio::null())
        .spawn()
        .context("start ping")?;
    let ping = ChildGuard(ping);
    stamp(&format!(
        "client pings the VIP every {} ms",
        timers.ping_interval.parse::<f64>().unwrap_or(0.0) * 1000.0
    ));
    pause(Duration::from_secs(2))?;

    stage.switch.set_port("p-a", false)?;
    let fault = epoch_secs();
    let fault_t = t0.elapsed().as_secs_f64();
    stamp("FAULT: host a's cable pulled (its bridge port is down)");
    wait_for("host a to give up the VIP", || !holds_vip(a))?;
    stamp("host a lost carrier and removed the VIP");
    wait_for("host b to take over", || holds_vip(b))?;
    stamp("host b took over: the VIP is on host b");
    pause(Duration::from_secs(2))?;

    // ping prints its summary and exits on SIGINT.
    ping.signal(libc::SIGINT)?;
    pause(Duration::from_millis(300))?;
    let replies = reply_times(&std::fs::read_to_string(&ping_out)?);
    let before = replies.iter().rev().find(|t| **t <= fault).copied();
    let first_after = replies.iter().find(|t| **t > fault).copied();
    let (Some(before), Some(first_after)) = (before, first_after) else {
        bail!(
            "no echo replies around the fault ({} replies in all)",
            replies.len()
        );
    };
    println!(
        "  {:>7.3} s  first echo reply after the fault",
        fault_t + (first_after - fault)
    );
    let outage = first_after - before;
    println!("host b's master-down interval: {}", timers.master_down());
    println!(
        "outage seen by the client: {:.1} ms (from its last reply before the fault to its first after)",
        outage * 1000.0
    );
    println!("state changes logged by the daemons:");
    for host in ["a", "b"] {
        let log = std::fs::read_to_string(dir.join(format!("{host}.log"))).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains(" -> ")) {
            println!("  host {host}: {}", line.trim());
        }
    }
    println!("demo: done; namespaces and files removed");
    Ok(outage * 1000.0)
}
