//! The gateway section (issue 21.4, `--only gateway`): a NAT gateway pair
//! keeping an established TCP flow across a failover, carpd-xdp against
//! keepalived in the same topology (carp-testnet's `gateway`: client, A and
//! B with SNAT to the WAN VIP and a strict stateful forward filter, server,
//! conntrackd FTFW over a sync link) at each one's slow and fastest timers.
//!
//! - carpd-xdp: the LAN and WAN instances in one sync group whose
//!   `conntrackd_config` makes the daemon drive conntrackd.
//! - keepalived: a `vrrp_sync_group` of the two `vrrp_instance`s whose
//!   notify script drives conntrackd as conntrackd's `primary-backup.sh`
//!   does (primary: `-c -f -R -B`; backup: `-t -n`; fault: `-t`), the setup
//!   keepalived's users run. The bench keeps conntrackd running, so the
//!   script leaves out the restart.
//!
//! Faults, each on a fresh topology: A's WAN link alone going down, and A's
//! silent death (its daemon frozen with SIGSTOP, then its links down). The
//! figure is the flow's gap: the longest time without an echo from the
//! fault until it resumed (a line every 10 ms), or "lost" when it did not
//! resume within 15 s.

use std::fs::File;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use carp_testnet::flow::{echo_server, Flow};
use carp_testnet::gateway::{GatewayNet, LAN_IF, SERVER, WAN_IF};
use carp_testnet::ChildGuard;
use serde_json::{json, Value};

use super::stats::summarize;

/// The echo server's port.
const ECHO_PORT: u16 = 7000;
/// How long the flow has to resume after a fault.
const RESUME_WITHIN: Duration = Duration::from_secs(15);
/// Echoes after the fault that count as resumed.
const RESUMED: usize = 50;

/// A fault of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A's WAN link alone goes down.
    WanDown,
    /// A's daemon frozen, then its links down.
    SilentDeath,
}

impl Fault {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::WanDown => "WAN link down",
            Fault::SilentDeath => "silent death",
        }
    }
}

/// A daemon and its timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// carpd-xdp, advbase (s) and the advskews of A and B.
    Carpd(u8, [u8; 2]),
    /// keepalived, VRRPv3, `advert_int` in ms.
    Keepalived(u32),
}

impl Setting {
    /// Every setting measured: each daemon at advert intervals of a second
    /// and at its fastest (carpd-xdp: advbase 0, advskew 0 and 1, adverts
    /// every 3.9 ms; keepalived: 10 ms).
    pub const ALL: [Setting; 4] = [
        Setting::Carpd(1, [0, 4]),
        Setting::Carpd(0, [0, 1]),
        Setting::Keepalived(1000),
        Setting::Keepalived(10),
    ];

    /// Implementation name in the report.
    pub fn implementation(self) -> &'static str {
        match self {
            Setting::Carpd(..) => "carpd-xdp",
            Setting::Keepalived(_) => "keepalived",
        }
    }

    /// Timers in the report.
    pub fn timers(self) -> String {
        match self {
            Setting::Carpd(advbase, [a, b]) => format!("advbase {advbase} / advskew {a}+{b}"),
            Setting::Keepalived(ms) => format!("advert_int {}", f64::from(ms) / 1000.0),
        }
    }
}

/// The trials of one setting and fault.
#[derive(Clone, Debug)]
pub struct Row {
    /// Daemon and timers.
    pub setting: Setting,
    /// The fault.
    pub fault: Fault,
    /// Gap of each trial whose flow resumed, ms.
    pub gaps_ms: Vec<f64>,
    /// Trials whose flow did not resume (reset or silence).
    pub lost: usize,
    /// Why trials could not run, if some could not (the first reason).
    pub error: Option<String>,
}

/// Runs `trials` trials of every setting and fault with the release
/// daemon `daemon`, the topology's files under `dir`.
pub fn measure(daemon: &Path, dir: &Path, trials: usize) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for setting in Setting::ALL {
        for fault in [Fault::WanDown, Fault::SilentDeath] {
            println!(
                "bench: gateway, {} at {}, {}",
                setting.implementation(),
                setting.timers(),
                fault.name()
            );
            let mut row = Row {
                setting,
                fault,
                gaps_ms: Vec::new(),
                lost: 0,
                error: None,
            };
            for n in 0..trials {
                let trial_dir = dir.join(format!("gateway-{}-{n}", rows.len()));
                std::fs::create_dir_all(&trial_dir)?;
                match trial(daemon, &trial_dir, setting, fault) {
                    Ok(Some(gap)) => row.gaps_ms.push(gap.as_secs_f64() * 1000.0),
                    Ok(None) => row.lost += 1,
                    Err(e) => {
                        println!("bench: gateway trial not run: {e:#}");
                        row.error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// One trial on a fresh topology: the flow's gap after `fault`, `None`
/// when it did not resume.
fn trial(daemon: &Path, dir: &Path, setting: Setting, fault: Fault) -> Result<Option<Duration>> {
    let net = GatewayNet::new("bgw", dir)?;
    let confs = [
        net.write_conntrackd_config(0)?,
        net.write_conntrackd_config(1)?,
    ];
    let mut children = Vec::new();
    for (i, conf) in confs.iter().enumerate() {
        let cmd = net.conntrackd(i, conf, &[]);
        children.push(spawn_logged(cmd, dir, &format!("conntrackd-{i}"))?);
    }
    for (i, conf) in confs.iter().enumerate() {
        until("conntrackd answering", Duration::from_secs(10), || {
            net.conntrackd_client(i, conf, &["-s"]).is_ok()
        })?;
    }
    let a = start(&net, daemon, dir, setting, 0, &confs[0])?;
    until("A holding both VIPs", Duration::from_secs(20), || {
        holders(&net) == Some((vec![0], vec![0]))
    })?;
    let b = start(&net, daemon, dir, setting, 1, &confs[1])?;
    // B learns it is backup within an advert or two; a second covers both
    // daemons' slow timers.
    std::thread::sleep(Duration::from_secs(1));
    if holders(&net) != Some((vec![0], vec![0])) {
        bail!("B took a VIP from A at start: {:?}", holders(&net));
    }
    let addr = SocketAddrV4::new(SERVER, ECHO_PORT);
    let _server = echo_server(&net.server, addr)?;
    let flow = Flow::start(&net.client, addr, Duration::from_millis(10))?;
    if !flow.wait_echoes_after(Instant::now(), 50, Duration::from_secs(10)) {
        bail!("no flow through A: {:?}", flow.failure());
    }
    until("the flow synced to B", Duration::from_secs(10), || {
        net.conntrackd_client(1, &confs[1], &["-e"])
            .is_ok_and(|cache| cache.contains(&format!("dport={ECHO_PORT}")))
    })?;
    let at = match fault {
        Fault::WanDown => {
            net.set_wan(0, false)?;
            Instant::now()
        }
        Fault::SilentDeath => {
            a.freeze()?;
            let at = Instant::now();
            net.set_lan(0, false)?;
            net.set_wan(0, false)?;
            net.cut_sync(0)?;
            at
        }
    };
    let resumed = flow.wait_echoes_after(at, RESUMED, RESUME_WITHIN);
    let gap = (resumed && flow.failure().is_none())
        .then(|| flow.longest_gap_after(at))
        .flatten();
    drop(flow);
    drop((a, b, children));
    Ok(gap)
}

/// Which gateways hold the LAN VIP and the WAN VIP.
fn holders(net: &GatewayNet) -> Option<(Vec<usize>, Vec<usize>)> {
    use carp_testnet::gateway::{LAN_VIP, WAN_VIP};
    Some((
        net.holders(LAN_IF, LAN_VIP).ok()?,
        net.holders(WAN_IF, WAN_VIP).ok()?,
    ))
}

/// A daemon of the pair: its process (group) is killed on drop.
struct Daemon {
    /// The process, leading its own group (keepalived forks a VRRP child).
    child: ChildGuard,
}

impl Daemon {
    /// Freezes the daemon's whole process group.
    fn freeze(&self) -> Result<()> {
        let pgid = i32::try_from(self.child.pid()).context("pid")?;
        // SAFETY: kill(2) on the group our child leads.
        if unsafe { libc::kill(-pgid, libc::SIGSTOP) } != 0 {
            bail!("SIGSTOP {pgid}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.child.pid()) {
            // SAFETY: kill(2) on the group our child leads (the guard then
            // reaps the leader).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Starts gateway `i`'s daemon of `setting`, conntrackd configured by
/// `conntrackd`.
fn start(
    net: &GatewayNet,
    daemon: &Path,
    dir: &Path,
    setting: Setting,
    i: usize,
    conntrackd: &Path,
) -> Result<Daemon> {
    use std::os::unix::process::CommandExt;
    let ns = &net.gateways[i].ns;
    let mut cmd = match setting {
        Setting::Carpd(advbase, skews) => {
            let config = dir.join(format!("carpd-{i}.toml"));
            let text = net.carpd_config(i, advbase, skews[i], Some(conntrackd), "");
            std::fs::write(&config, text)?;
            let mut cmd = ns.command(&daemon.display().to_string());
            cmd.arg("--config").arg(config).env("RUST_LOG", "info");
            cmd
        }
        Setting::Keepalived(advert_ms) => {
            let config = keepalived_config(dir, i, advert_ms, conntrackd)?;
            let pid = |what: &str| dir.join(format!("keepalived-{i}-{what}.pid"));
            let mut cmd = ns.command("keepalived");
            cmd.args(["--vrrp", "--dont-fork", "--log-console", "--log-detail"])
                .arg(format!("--use-file={}", config.display()))
                .arg(format!("--pid={}", pid("main").display()))
                .arg(format!("--vrrp_pid={}", pid("vrrp").display()))
                .arg(format!("--checkers_pid={}", pid("checkers").display()));
            cmd
        }
    };
    cmd.process_group(0);
    let name = format!("{}-{i}", setting.implementation());
    let mut child = spawn_logged(cmd, dir, &name)?;
    // A configuration refused ends the daemon at once.
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = child.0.try_wait()? {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        let last = log.lines().last().unwrap_or("").to_string();
        bail!("{name} exited ({status}): {last}");
    }
    Ok(Daemon { child })
}

/// keepalived's configuration for gateway `i` and its notify script; the
/// configuration's path.
fn keepalived_config(dir: &Path, i: usize, advert_ms: u32, conntrackd: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("notify-{i}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             # conntrackd at keepalived's transitions, in primary-backup.sh's order.\n\
             ct() {{ conntrackd -C {} \"$@\"; }}\n\
             case \"$1\" in\n\
             primary) ct -c; ct -f; ct -R; ct -B ;;\n\
             backup) ct -t; ct -n ;;\n\
             fault) ct -t ;;\n\
             esac\n",
            conntrackd.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let priority = if i == 0 { 200 } else { 100 };
    let advert = f64::from(advert_ms) / 1000.0;
    let instance = |name: &str, ifname: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface {ifname}\n  \
             virtual_router_id {vrid}\n  priority {priority}\n  advert_int {advert}\n  \
             virtual_ipaddress {{\n    {vip}/24 dev {ifname}\n  }}\n}}\n"
        )
    };
    let s = script.display();
    let text = format!(
        "global_defs {{\n  router_id gw_{i}\n  vrrp_version 3\n  script_user root\n  \
         vrrp_garp_master_repeat 1\n}}\n\
         vrrp_sync_group gateway {{\n  group {{\n    lan\n    wan\n  }}\n  \
         notify_master \"{s} primary\"\n  notify_backup \"{s} backup\"\n  \
         notify_fault \"{s} fault\"\n}}\n{}{}",
        instance("lan", LAN_IF, 1, "10.70.1.1"),
        instance("wan", WAN_IF, 2, "10.70.2.1"),
    );
    let config = dir.join(format!("keepalived-{i}.conf"));
    std::fs::write(&config, text)?;
    Ok(config)
}

/// Spawns `cmd` with its output in `<dir>/<name>.log`.
fn spawn_logged(mut cmd: Command, dir: &Path, name: &str) -> Result<ChildGuard> {
    let log = File::create(dir.join(format!("{name}.log")))?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(ChildGuard(
        cmd.spawn().with_context(|| format!("start {name}"))?,
    ))
}

/// Polls `f` every 20 ms until it holds, failing with `what` after
/// `within`.
fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + within;
    while !f() {
        if Instant::now() > deadline {
            bail!("no {what} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The section in Markdown.
pub fn markdown(m: &mut String, rows: &[Row]) {
    use std::fmt::Write as _;
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "## NAT gateway pair: a TCP flow across a failover\n\n\
         Client → LAN VIP → A (SNAT to the WAN VIP, `ct state invalid drop`, \
         `nf_conntrack_tcp_loose = 0`) → server, conntrackd (FTFW) syncing A and B; a line \
         echoed every 10 ms. Gap: the longest time without an echo from the fault until \
         the flow resumed; lost: no resumption within {} s (reset or silence).\n\n\
         | implementation | timers | fault | trials | lost | gap median | gap max |\n\
         |---|---|---|---|---|---|---|",
        RESUME_WITHIN.as_secs()
    );
    for r in rows {
        let s = summarize(&r.gaps_ms);
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0} ms"));
        let trials = r.gaps_ms.len() + r.lost;
        let note = r
            .error
            .as_deref()
            .map_or(String::new(), |e| format!(" (not run: {e})"));
        let _ = writeln!(
            m,
            "| {} | {} | {} | {trials}{note} | {} | {} | {} |",
            r.setting.implementation(),
            r.setting.timers(),
            r.fault.name(),
            r.lost,
            cell(s.map(|s| s.median)),
            cell(s.map(|s| s.max)),
        );
    }
    m.push('\n');
}

/// The section as JSON.
pub fn json(rows: &[Row]) -> Value {
    rows.iter()
        .map(|r| {
            json!({
                "implementation": r.setting.implementation(),
                "timers": r.setting.timers(),
                "fault": r.fault.name(),
                "gaps_ms": r.gaps_ms,
                "lost": r.lost,
                "error": r.error,
            })
        })
        .collect()
}
