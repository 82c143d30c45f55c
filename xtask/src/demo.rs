//! `cargo xtask demo`: a live two-node failover in throw-away namespaces.
//!
//! ```text
//!   host a (carpd-xdp, advskew 0)   ──┐
//!   host b (carpd-xdp, advskew 100) ──┼── br0 (switch namespace)
//!   client (ping VIP every 10 ms)   ──┘
//! ```
//!
//! Host a is elected master of the VIP; its cable is pulled (its bridge port
//! goes down); host b takes over after the master-down interval: 3.4 s with
//! UCARP's default timers, 187.5 ms with `--subsecond` (advbase 0, advskew 4
//! and 16, timers UCARP cannot run). The demo
//! prints the timeline (elections, the fault, the takeover, the first reply
//! after it) and the measured outage, then removes everything: processes,
//! namespaces and files, on every exit path including Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// The LAN: 10.250.0.0/24, hosts .1 and .2, client .100, VIP .10.
const NET: &str = "10.250.0";
const VHID: u8 = 10;

/// The timers of the two hosts.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    /// advbase of both hosts, seconds.
    pub advbase: u8,
    /// advskew of host a (the master).
    pub skew_a: u8,
    /// advskew of host b (the backup).
    pub skew_b: u8,
}

impl Timers {
    /// UCARP's defaults: advbase 1, advskew 0 and 100; host b's master-down
    /// interval is 3 × 1 + 100/256 s.
    pub const DEFAULT: Timers = Timers {
        advbase: 1,
        skew_a: 0,
        skew_b: 100,
    };
    /// Sub-second failover (UCARP cannot run it): advbase 0, advskew 4 and
    /// 16; adverts every 15.6 ms, host b's master-down 3 × 16/256 s = 187.5 ms.
    pub const SUBSECOND: Timers = Timers {
        advbase: 0,
        skew_a: 4,
        skew_b: 16,
    };

    /// Host b's master-down interval (UCARP's rule, deadratio 3: 3 × advbase
    /// + advskew/256 s, or 3 × the interval with advbase 0).
    pub fn master_down_secs(&self) -> f64 {
        let skew = f64::from(self.skew_b) / 256.0;
        if self.advbase > 0 {
            3.0 * f64::from(self.advbase) + skew
        } else {
            3.0 * skew.max(1.0 / 256.0)
        }
    }
}
/// Longest wait for anything to happen before the demo gives up.
const PATIENCE: Duration = Duration::from_secs(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Namespaces, processes and files of the demo, removed on drop.
struct Stage {
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Stage {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Stage {
    fn netns(&mut self, name: String) -> Result<String> {
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
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

fn holds_vip(ns: &str) -> bool {
    Command::new("ip")
        .args(["-n", ns, "-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {NET}.10/")))
        .unwrap_or(false)
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

fn config(dir: &Path, host: &str, last: u8, advbase: u8, advskew: u8) -> Result<PathBuf> {
    let path = dir.join(format!("{host}.toml"));
    let text = format!(
        "[global]\nstatus_socket = \"{sock}\"\nlog_facility = \"none\"\n\n\
         [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nsrcip = \"{NET}.{last}\"\n\
         vips = [\"{NET}.10/24\"]\nadvbase_secs = {advbase}\nadvskew = {advskew}\npreempt = true\n\
         password = \"demo\"\n",
        sock = dir.join(format!("{host}.sock")).display()
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub fn run(daemon: &Path, timers: Timers) -> Result<()> {
    if !crate::is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run it as root");
    }
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("carpdemo-{pid}"));
    std::fs::create_dir_all(&dir)?;
    let mut stage = Stage {
        namespaces: Vec::new(),
        children: Vec::new(),
        dir: dir.clone(),
    };
    let sw = stage.netns(format!("carpdemo-{pid}-sw"))?;
    ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &sw, "link", "set", "br0", "up"])?;
    let mut nodes = Vec::new();
    for (name, last) in [("a", 1u8), ("b", 2), ("client", 100)] {
        let ns = stage.netns(format!("carpdemo-{pid}-{name}"))?;
        let port = format!("p-{name}");
        ip(&[
            "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
            &sw,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{NET}.{last}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        nodes.push((ns, port));
    }
    let (a, b, client) = (&nodes[0].0, &nodes[1].0, &nodes[2].0);

    let t0 = Instant::now();
    let stamp = |what: &str| println!("  {:>7.3} s  {what}", t0.elapsed().as_secs_f64());
    println!("demo: switch {sw}, hosts a ({NET}.1) and b ({NET}.2), client {NET}.100, VIP {NET}.10 (vhid {VHID})");
    println!("timeline:");
    for (host, ns, last, skew) in [("a", a, 1u8, timers.skew_a), ("b", b, 2, timers.skew_b)] {
        let cfg = config(&dir, host, last, timers.advbase, skew)?;
        let log = std::fs::File::create(dir.join(format!("{host}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(daemon)
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start carpd-xdp")?;
        stage.children.push(child);
        stamp(&format!(
            "carpd-xdp started on host {host} (advbase {}, advskew {skew})",
            timers.advbase
        ));
    }
    wait_for("an election", || holds_vip(a) || holds_vip(b))?;
    if holds_vip(b) {
        bail!("host b was elected although host a advertises faster");
    }
    stamp("host a elected MASTER: the VIP is on host a");

    let ping_out = dir.join("ping.out");
    let ping = Command::new("ip")
        .args(["netns", "exec", client, "ping", "-D", "-i", "0.01"])
        .arg(format!("{NET}.10"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&ping_out)?)
        .stderr(Stdio::null())
        .spawn()
        .context("start ping")?;
    let ping_pid = ping.id();
    stage.children.push(ping);
    stamp("client pings the VIP every 10 ms");
    pause(Duration::from_secs(2))?;

    ip(&["-n", &sw, "link", "set", &nodes[0].1, "down"])?;
    let fault = epoch_secs();
    let fault_t = t0.elapsed().as_secs_f64();
    stamp("FAULT: host a's cable pulled (its bridge port is down)");
    wait_for("host a to give up the VIP", || !holds_vip(a))?;
    stamp("host a lost carrier and removed the VIP");
    wait_for("host b to take over", || holds_vip(b))?;
    stamp("host b took over: the VIP is on host b");
    pause(Duration::from_secs(2))?;

    // SAFETY: kill(2) on our own, not yet reaped, child: ping prints its
    // summary and exits on SIGINT.
    unsafe { libc::kill(ping_pid as i32, libc::SIGINT) };
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
    let master_down = timers.master_down_secs();
    println!(
        "outage seen by the client: {:.0} ms (host b's master-down interval is {:.0} ms)",
        outage * 1000.0,
        master_down * 1000.0
    );
    println!("state changes logged by the daemons:");
    for host in ["a", "b"] {
        let log = std::fs::read_to_string(dir.join(format!("{host}.log"))).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains(" -> ")) {
            println!("  host {host}: {}", line.trim());
        }
    }
    println!("demo: done; namespaces and files removed");
    Ok(())
}
