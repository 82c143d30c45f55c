//! The implementations under test, started with identical vhid, password,
//! VIP and timers: carpd-xdp (which adds the VIP itself) and UCARP (whose up
//! and down scripts add and remove it); and keepalived, the fastest peer
//! there is, with VRRPv3 at its shortest advert interval (10 ms, `advert_int
//! 0.01`), which ignores the CARP timers. Each daemon's stderr goes to a log
//! file that the bench reads for state changes and, for carpd-xdp, the trace
//! lines giving the advert processing latency.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::stage::{dotted, exec_in, Host, Stage, PASSWORD, VHID, VIP};
use super::sys;

/// An implementation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// This project.
    Carpd,
    /// UCARP 1.5 (Debian package).
    Ucarp,
    /// keepalived (Debian package), VRRPv3 with 10 ms adverts.
    Keepalived,
}

impl Impl {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Carpd => "carpd-xdp",
            Impl::Ucarp => "ucarp",
            Impl::Keepalived => "keepalived",
        }
    }

    /// The master's advert interval under `timers` (keepalived: 10 ms).
    pub fn master_interval(self, timers: Timers) -> Duration {
        match self {
            Impl::Keepalived => KEEPALIVED_ADVERT,
            _ => timers.master_interval(),
        }
    }

    /// The backup's master-down time under `timers`. keepalived (VRRPv3,
    /// RFC 5798): `3 × advert + (256 − priority) × advert / 256`.
    pub fn master_down(self, timers: Timers) -> Duration {
        match self {
            Impl::Keepalived => {
                KEEPALIVED_ADVERT * 3 + KEEPALIVED_ADVERT * (256 - KEEPALIVED_BACKUP_PRIORITY) / 256
            }
            _ => timers.master_down(),
        }
    }

    /// The log line marking a transition to MASTER.
    fn master_marker(self) -> &'static str {
        match self {
            Impl::Carpd => "-> Master",
            Impl::Ucarp => "Switching to state: MASTER",
            Impl::Keepalived => "Entering MASTER STATE",
        }
    }

    /// The log line marking a transition to BACKUP.
    fn backup_marker(self) -> &'static str {
        match self {
            Impl::Carpd => "-> Backup",
            Impl::Ucarp => "Switching to state: BACKUP",
            Impl::Keepalived => "Entering BACKUP STATE",
        }
    }
}

/// Which daemon runs on each host of a pair, and whether carpd-xdp gets
/// the peer allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lineup {
    /// Implementation on host A (master at the start).
    pub master: Impl,
    /// Implementation on host B (backup at the start).
    pub backup: Impl,
    /// Every carpd-xdp daemon of the pair runs from a configuration file
    /// with `peers = [A, B]`: adverts from any other source are dropped
    /// before the HMAC (`docs/replay.md`). UCARP has no such list.
    pub allow_list: bool,
}

impl Lineup {
    /// Both hosts running `which`, without an allow-list.
    pub const fn same(which: Impl) -> Lineup {
        Lineup {
            master: which,
            backup: which,
            allow_list: false,
        }
    }

    /// Name in the report.
    pub fn name(self) -> String {
        let list = |which: Impl| {
            if self.allow_list && which == Impl::Carpd {
                " (allow-list)"
            } else {
                ""
            }
        };
        if self.master == self.backup {
            format!("{}{}", self.master.name(), list(self.master))
        } else {
            format!(
                "{} master + {}{} backup",
                self.master.name(),
                self.backup.name(),
                list(self.backup)
            )
        }
    }
}

/// keepalived's shortest advert interval (`advert_int 0.01`, VRRPv3).
pub const KEEPALIVED_ADVERT: Duration = Duration::from_millis(10);
/// keepalived's priorities: A preferred, B backup.
const KEEPALIVED_MASTER_PRIORITY: u32 = 200;
const KEEPALIVED_BACKUP_PRIORITY: u32 = 100;

/// Advert timers of a scenario: advbase (s) and the advskews (1/256 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// advbase of both hosts, in seconds.
    pub advbase: u8,
    /// advskew of host A (master).
    pub master_skew: u8,
    /// advskew of host B (backup).
    pub backup_skew: u8,
}

impl Timers {
    /// UCARP's defaults: advbase 1, master advskew 0, backup advskew 100.
    pub const DEFAULTS: Timers = Timers {
        advbase: 1,
        master_skew: 0,
        backup_skew: 100,
    };
    /// Sub-second timers: advbase 0, advskews 4 and 16.
    pub const SUBSECOND: Timers = Timers {
        advbase: 0,
        master_skew: 4,
        backup_skew: 16,
    };

    /// The fastest timers: advbase 0 with advskew 0 (clamped to 1/256 s)
    /// on the master and 1 on the backup: adverts every 3.9 ms, master-down
    /// 11.7 ms (the "fastest both support"; UCARP supports none of
    /// the sub-second ones).
    pub const FASTEST: Timers = Timers {
        advbase: 0,
        master_skew: 0,
        backup_skew: 1,
    };

    /// Every timer set measured, in report order.
    pub const ALL: [Timers; 3] = [Timers::DEFAULTS, Timers::SUBSECOND, Timers::FASTEST];

    /// Advert interval of the master.
    pub fn master_interval(&self) -> Duration {
        interval(self.advbase, self.master_skew)
    }

    /// Master-down time of the backup with deadratio 3 (UCARP's rule:
    /// 3 × advbase + advskew/256 s; with advbase 0, 3 × the interval).
    pub fn master_down(&self) -> Duration {
        if self.advbase > 0 {
            Duration::from_secs(3 * u64::from(self.advbase))
                + Duration::from_nanos(u64::from(self.backup_skew) * 1_000_000_000 / 256)
        } else {
            3 * interval(0, self.backup_skew)
        }
    }

    /// Label in the report.
    pub fn label(&self) -> String {
        format!(
            "advbase {} / advskew {}+{}",
            self.advbase, self.master_skew, self.backup_skew
        )
    }
}

/// `advbase + advskew/256` s, the all-zero interval clamped to 1/256 s as
/// the daemon does.
fn interval(advbase: u8, skew: u8) -> Duration {
    let skew = if advbase == 0 && skew == 0 { 1 } else { skew };
    Duration::from_secs(u64::from(advbase))
        + Duration::from_nanos(u64::from(skew) * 1_000_000_000 / 256)
}

/// One running daemon; killed on drop.
pub struct Daemon {
    child: Child,
    /// Which implementation.
    pub which: Impl,
    /// Its log file (appended to across restarts).
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `which` on `host` with `skew` and `timers`; `extra` are more
    /// carpd-xdp options.
    pub fn start(
        stage: &Stage,
        daemon: &Path,
        which: Impl,
        host: &Host,
        skew: u8,
        timers: Timers,
        extra: &[String],
    ) -> Result<Daemon> {
        let role = host.ns.rsplit('-').next().unwrap_or("h");
        let log = stage.dir.join(format!("{}-{role}.log", which.name()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        if which == Impl::Keepalived {
            return Daemon::keepalived(stage, host, role, log, file);
        }
        let common = [
            "--interface=eth0".to_string(),
            format!("--srcip={}", host.addr()),
            format!("--vhid={VHID}"),
            format!("--pass={PASSWORD}"),
            format!("--addr={}", dotted(VIP)),
            format!("--advbase={}", timers.advbase),
            format!("--advskew={skew}"),
            "--preempt".to_string(),
        ];
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns]);
        match which {
            Impl::Carpd => {
                cmd.arg(daemon).args(common).args([
                    "--upscript=/bin/true",
                    "--downscript=/bin/true",
                    "--facility=none",
                    "--xdp-mode=auto",
                ]);
                let sock = stage.dir.join(format!("carpd-{role}.sock"));
                cmd.arg("--status-socket").arg(sock);
                cmd.arg("--state-dir")
                    .arg(stage.dir.join(format!("state-{role}")));
                cmd.args(extra);
                // Trace level adds one line per accepted advert: the latency
                // from the kernel timestamp to the state machine.
                cmd.env("RUST_LOG", "carp_daemon=trace");
            }
            Impl::Ucarp => {
                let (up, down) = scripts(&stage.dir)?;
                cmd.arg("ucarp").args(common);
                cmd.arg(format!("--upscript={}", up.display()));
                cmd.arg(format!("--downscript={}", down.display()));
            }
            Impl::Keepalived => unreachable!("started above"),
        }
        let child = cmd
            .spawn_logged(file)
            .with_context(|| format!("start {}", which.name()))?;
        Ok(Daemon { child, which, log })
    }

    /// carpd-xdp on `host` as [`Daemon::start`] starts it, but from a
    /// configuration file (`<role>-peers.toml`) that also sets the peer
    /// allow-list `peers`, which has no command-line option.
    pub fn start_allow_listed(
        stage: &Stage,
        daemon: &Path,
        host: &Host,
        skew: u8,
        timers: Timers,
        peers: &[[u8; 4]],
    ) -> Result<Daemon> {
        let role = host.ns.rsplit('-').next().unwrap_or("h");
        let peers: Vec<String> = peers
            .iter()
            .map(|p| format!("\"{}\"", dotted(*p)))
            .collect();
        let config = stage.dir.join(format!("carpd-{role}-peers.toml"));
        std::fs::write(
            &config,
            format!(
                "[global]\nxdp_mode = \"auto\"\nlog_facility = \"none\"\n\
                 status_socket = \"{}\"\nstate_dir = \"{}\"\n\n\
                 [[instance]]\ninterface = \"eth0\"\nvhid = {VHID}\nsrcip = \"{}\"\n\
                 vips = [\"{}/32\"]\nadvbase_secs = {}\nadvskew = {skew}\npreempt = true\n\
                 password = \"{PASSWORD}\"\nupscript = \"/bin/true\"\ndownscript = \"/bin/true\"\n\
                 peers = [{}]\n",
                stage.dir.join(format!("carpd-{role}.sock")).display(),
                stage.dir.join(format!("state-{role}")).display(),
                host.addr(),
                dotted(VIP),
                timers.advbase,
                peers.join(", ")
            ),
        )
        .with_context(|| format!("write {}", config.display()))?;
        // Trace level, as `Daemon::start`: the advert latency lines.
        Daemon::spawn_with_config(
            stage,
            daemon,
            host,
            &config,
            &format!("carpd-xdp-peers-{role}"),
            Some("carp_daemon=trace"),
        )
    }

    /// carpd-xdp on `host` with the configuration file `config`, logging to
    /// `<name>.log`.
    pub fn with_config(
        stage: &Stage,
        daemon: &Path,
        host: &Host,
        config: &Path,
        name: &str,
    ) -> Result<Daemon> {
        Daemon::spawn_with_config(stage, daemon, host, config, name, None)
    }

    /// [`Daemon::with_config`] with `RUST_LOG` set to `log_filter`, if given.
    fn spawn_with_config(
        stage: &Stage,
        daemon: &Path,
        host: &Host,
        config: &Path,
        name: &str,
        log_filter: Option<&str>,
    ) -> Result<Daemon> {
        let log = stage.dir.join(format!("{name}.log"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.ns])
            .arg(daemon)
            .arg("--config")
            .arg(config);
        if let Some(filter) = log_filter {
            cmd.env("RUST_LOG", filter);
        }
        let child = cmd.spawn_logged(file).context("start carpd-xdp")?;
        Ok(Daemon {
            child,
            which: Impl::Carpd,
            log,
        })
    }

    /// keepalived, VRRP only, in the foreground, logging to the console, in
    /// a process group of its own (it forks a VRRP child, and a fault must
    /// reach both).
    fn keepalived(
        stage: &Stage,
        host: &Host,
        role: &str,
        log: PathBuf,
        file: std::fs::File,
    ) -> Result<Daemon> {
        use std::os::unix::process::CommandExt;
        // Host A is the preferred one, as the lower advskew makes it for CARP.
        let priority = if role == "a" {
            KEEPALIVED_MASTER_PRIORITY
        } else {
            KEEPALIVED_BACKUP_PRIORITY
        };
        let conf = stage.dir.join(format!("keepalived-{role}.conf"));
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id bench_{role}\n  vrrp_version 3\n  \
                 vrrp_garp_master_repeat 1\n}}\n\
                 vrrp_instance bench {{\n  state BACKUP\n  interface eth0\n  \
                 virtual_router_id {VHID}\n  priority {priority}\n  advert_int 0.01\n  \
                 virtual_ipaddress {{\n    {}/32 dev eth0\n  }}\n}}\n",
                dotted(VIP)
            ),
        )?;
        let pid = |what: &str| stage.dir.join(format!("keepalived-{role}-{what}.pid"));
        // A killed run's pid files would make it refuse to start ("daemon is
        // already running") while its orphaned child lingers as a zombie.
        for what in ["main", "vrrp", "checkers"] {
            let _ = std::fs::remove_file(pid(what));
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns, "keepalived"])
            .args(["--vrrp", "--dont-fork", "--log-console", "--log-detail"])
            .arg(format!("--use-file={}", conf.display()))
            .arg(format!("--pid={}", pid("main").display()))
            .arg(format!("--vrrp_pid={}", pid("vrrp").display()))
            .arg(format!("--checkers_pid={}", pid("checkers").display()))
            .process_group(0)
            .spawn_logged(file)
            .context("start keepalived")?;
        Ok(Daemon {
            child,
            which: Impl::Keepalived,
            log,
        })
    }

    /// Process id (`ip netns exec` execs the daemon in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` (to keepalived's whole process group).
    pub fn signal(&self, sig: i32) {
        if self.which == Impl::Keepalived {
            // SAFETY: kill(2) has no memory preconditions.
            unsafe { libc::kill(-(self.pid() as i32), sig) };
        } else {
            sys::kill(self.pid(), sig);
        }
    }

    /// Waits up to `d` for the process to exit, then kills it.
    pub fn reap(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && self.alive() {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }

    /// Kills the daemon (and keepalived's children) and reaps it.
    fn kill(&mut self) {
        if self.which == Impl::Keepalived {
            self.signal(libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Current size of the log, to read what comes after it.
    pub fn log_mark(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The log written since `mark`.
    pub fn log_since(&self, mark: u64) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = (mark as usize).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Transitions to MASTER logged since `mark`.
    pub fn masters_since(&self, mark: u64) -> usize {
        self.count_since(mark, self.which.master_marker())
    }

    /// Transitions to BACKUP logged since `mark`.
    pub fn backups_since(&self, mark: u64) -> usize {
        self.count_since(mark, self.which.backup_marker())
    }

    /// Log lines since `mark` that contain `marker`.
    fn count_since(&self, mark: u64, marker: &str) -> usize {
        self.log_since(mark)
            .lines()
            .filter(|l| l.contains(marker))
            .count()
    }

    /// Adverts carpd-xdp's stand-in senders sent since `mark` (its loop
    /// was late; debug log).
    pub fn standin_sends_since(&self, mark: u64) -> usize {
        self.count_since(mark, "a stand-in sent the advert")
    }

    /// Advert processing latencies (ns) logged since `mark` (carpd-xdp).
    pub fn latencies_since(&self, mark: u64) -> Vec<f64> {
        self.log_since(mark)
            .lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once(" handled ")?;
                let (n, _) = rest.split_once(" ns after the kernel")?;
                n.trim().parse::<f64>().ok()
            })
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starting a daemon with its output going to its log.
pub trait SpawnLogged {
    /// Spawns with standard input closed and standard output and error
    /// appended to `log`.
    fn spawn_logged(&mut self, log: std::fs::File) -> std::io::Result<Child>;
}

impl SpawnLogged for Command {
    fn spawn_logged(&mut self, log: std::fs::File) -> std::io::Result<Child> {
        self.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    }
}

/// UCARP's up and down scripts: add / remove the VIP (/32), as the
/// carpd-xdp daemon does itself.
pub(super) fn scripts(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let up = dir.join("vip-up.sh");
    let down = dir.join("vip-down.sh");
    for (path, verb) in [(&up, "add"), (&down, "del")] {
        std::fs::write(
            path,
            format!("#!/bin/sh\nexec ip addr {verb} \"$2\"/32 dev \"$1\" 2>/dev/null\n"),
        )?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok((up, down))
}

/// True when `host` holds the VIP on `eth0`.
pub fn holds_vip(host: &Host) -> Result<bool> {
    let out = exec_in(&host.ns, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
    Ok(out.contains(&format!("inet {}/", dotted(VIP))))
}

/// Removes a VIP a killed daemon left behind (no error if absent).
pub fn drop_vip(host: &Host) {
    drop_addr(host, VIP);
}

/// Removes `addr`/32 from `host`'s `eth0` (no error if absent).
pub fn drop_addr(host: &Host, addr: [u8; 4]) {
    let cidr = format!("{}/32", dotted(addr));
    let _ = exec_in(&host.ns, &["ip", "addr", "del", &cidr, "dev", "eth0"]);
}

/// Fails unless `ucarp` and `keepalived` are installed.
pub fn check_peers() -> Result<()> {
    for (cmd, arg) in [("ucarp", "--help"), ("keepalived", "--version")] {
        if Command::new(cmd).arg(arg).output().is_err() {
            bail!("{cmd} is not installed: run `cargo xtask setup`");
        }
    }
    Ok(())
}
