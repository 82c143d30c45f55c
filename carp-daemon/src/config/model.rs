//! The validated configuration: plain data the daemon runs from, whether it
//! came from a TOML file or a UCARP command line.
//!
//! Every value here has passed validation (ranges, families, duplicates), so
//! the daemon never re-checks. Types derive `PartialEq` so a reload can keep
//! unchanged instances untouched.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::facility::Facility;
use super::password::Password;
use super::paths::{DEFAULT_STATE_DIR, DEFAULT_STATUS_SOCKET};
use crate::xdp::mode::XdpMode;

/// Default advertisement base in seconds (UCARP, carp(4)).
pub const DEFAULT_ADVBASE_SECS: u8 = 1;
/// Default dead ratio: adverts missed before the master is taken as dead
/// (UCARP's `-r`).
pub const DEFAULT_DEADRATIO: u32 = 3;
/// Default time an up/down script may run before it is killed, in seconds.
pub const DEFAULT_SCRIPT_TIMEOUT_SECS: u32 = 10;
/// Default number of gratuitous ARPs / unsolicited NAs sent on takeover.
pub const DEFAULT_ANNOUNCE_COUNT: u32 = 3;
/// Default gap between takeover announcements, in milliseconds.
pub const DEFAULT_ANNOUNCE_INTERVAL_MS: u32 = 1000;
/// Default adverts per second accepted from one source for one vhid by the
/// receive path.
pub const DEFAULT_RATE: u32 = 50;
/// Default burst above the rate accepted from one source for one vhid.
pub const DEFAULT_BURST: u32 = 20;
/// The whole configuration of one daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Process-wide settings.
    pub global: Global,
    /// One entry per (interface, vhid), in file order.
    pub instances: Vec<InstanceConfig>,
    /// Sync groups (`[[sync_group]]`), in file order; every one has at
    /// least one member and every member's group is here.
    pub sync_groups: Vec<SyncGroupConfig>,
    /// Things worth a warning in the log (e.g. a password written inline),
    /// for the daemon to log once at start-up.
    pub warnings: Vec<ConfigWarning>,
}

/// A non-fatal remark about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where: `file:line: field` or the option.
    pub at: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Process-wide settings (`[global]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    /// Receive path: XDP native, skb, the TC program (tc), auto or off
    /// (packet socket).
    pub xdp_mode: XdpMode,
    /// Advert rate limit per (source, vhid) applied by the receive path.
    pub rate_limit: RateLimit,
    /// Unix socket answering `carpd-xdp status`.
    pub status_socket: PathBuf,
    /// Prometheus metrics listen address; `None`: no endpoint.
    pub metrics: Option<SocketAddr>,
    /// Logging destination and format.
    pub log: Logging,
    /// Detach into the background (UCARP's `-B`).
    pub daemonize: bool,
    /// Where the last advert counter reservation of each instance is kept,
    /// so that counters never go back across restarts.
    pub state_dir: PathBuf,
    /// SCHED_FIFO priority and memory locking of the daemon
    /// (`realtime_priority`, `lock_memory`); off by default.
    pub realtime: crate::realtime::Realtime,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            xdp_mode: XdpMode::Auto,
            rate_limit: RateLimit::default(),
            status_socket: PathBuf::from(DEFAULT_STATUS_SOCKET),
            metrics: None,
            log: Logging::default(),
            daemonize: false,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            realtime: crate::realtime::Realtime::default(),
        }
    }
}

/// Adverts accepted per (source, vhid) before the receive path drops them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Adverts per second from one source for one vhid (0: no limit).
    pub rate: u32,
    /// Adverts accepted above the rate in a burst.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
        }
    }
}

/// Where and how logs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logging {
    /// Syslog facility (UCARP's `-f`, default `daemon`); `None`: no syslog
    /// (`-f none`), logs on stderr only.
    pub facility: Option<Facility>,
    /// Format of the lines on stderr.
    pub format: LogFormat,
    /// Log at debug level (UCARP's `-D`).
    pub debug: bool,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            facility: Some(Facility::Daemon),
            format: LogFormat::Text,
            debug: false,
        }
    }
}

/// Format of log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The lowercase name, as in the file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// How the advert counter is checked against replays: the core's rule.
pub use crate::proto::ReplayMode;

/// A source allowed to speak for a vhid.
pub use crate::proto::peer::AllowedPeer;

/// How IPv6 link-local VIPs enter the HMAC we send: the core's choice.
pub use crate::proto::LinkLocalHmac;

/// How long a backup waits for adverts before taking over: the core's rule.
pub use crate::proto::MasterDownRule;

/// A virtual address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The shared address.
    pub addr: IpAddr,
    /// Prefix length used when adding it (32 / 128 when not given).
    pub prefix_len: u8,
}

impl Vip {
    /// Parses `addr` or `addr/prefix_len`; `None` if malformed or the prefix
    /// is too long for the family.
    pub fn parse(text: &str) -> Option<Vip> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Vip { addr, prefix_len })
    }
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One CARP virtual host: an (interface, vhid) and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Base interface the adverts are sent and received on (`eth0`).
    pub interface: String,
    /// Address label for the VIPs (`eth0:carp0`, UCARP's alias form).
    pub label: Option<String>,
    /// Virtual host id, 1..=255.
    pub vhid: u8,
    /// Source address of adverts; `None`: the interface's primary address
    /// of the VIPs' family, looked up at run time.
    pub srcip: Option<IpAddr>,
    /// Shared addresses (at least one).
    pub vips: Vec<Vip>,
    /// Advertisement base, seconds (0..=255).
    pub advbase_secs: u8,
    /// Advertisement skew, 1/256 s (0..=254); lower is preferred.
    pub advskew: u8,
    /// Adverts missed before the master is taken as dead (≥ 1).
    pub deadratio: u32,
    /// Which master-down formula is used.
    pub master_down: MasterDownRule,
    /// Take over from a less preferred master (UCARP's `-P`).
    pub preempt: bool,
    /// Do not run the down script at start-up as backup (UCARP's `-n`).
    pub neutral: bool,
    /// Run the down script at exit unless BACKUP (UCARP's `-z`; see
    /// the core's `InstanceParams::down_script_at_exit`).
    pub shutdown_on_exit: bool,
    /// Ignore link state (UCARP's `-S`).
    pub ignore_ifstate: bool,
    /// While MASTER, the VIPs live on a macvlan carrying the virtual-router
    /// MAC `00:00:5e:00:01:<vhid>` (see `crate::net::vmac`).
    pub virtual_mac: bool,
    /// The shared secret and where it came from.
    pub password: Password,
    /// Up/down scripts.
    pub scripts: Scripts,
    /// Replay protection of the advert counter.
    pub replay: ReplayMode,
    /// With tagged counters, how far (ms, either side) their time may be
    /// from our clock (`docs/replay.md`); `None`: no window.
    pub replay_window_ms: Option<u32>,
    /// How IPv6 link-local VIPs enter the HMAC of the adverts we send.
    pub hmac_link_local: LinkLocalHmac,
    /// Send adverts to these addresses instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// The peer allow-list: only these sources (addresses, optionally with
    /// the MAC they must send from) may speak for the vhid; empty: anyone
    /// with the password. Defaults to `unicast_peers`.
    pub peers: Vec<AllowedPeer>,
    /// Multicast group instead of 224.0.0.18 / ff02::12 (UCARP's `--mcast`).
    pub mcast: Option<IpAddr>,
    /// Send adverts to the Ethernet broadcast address instead of the
    /// multicast MAC (UCARP's `-M/--nomcast`).
    pub broadcast_mac: bool,
    /// Gratuitous ARP / unsolicited NA on takeover.
    pub announce: Announce,
    /// Checks whose failure demotes this host.
    pub health_checks: Vec<HealthCheck>,
    /// The sync group this instance belongs to, by name.
    pub sync_group: Option<String>,
}

/// A sync group (`[[sync_group]]`): instances that change state together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupConfig {
    /// Its name, unique; members name it with their `sync_group`.
    pub name: String,
    /// Run once when the whole group has become master.
    pub upscript: Option<PathBuf>,
    /// Run once when the group becomes backup (at start too) or enters
    /// FAULT.
    pub downscript: Option<PathBuf>,
    /// conntrackd's configuration, if carpd-xdp drives conntrackd.
    pub conntrackd_config: Option<PathBuf>,
}

impl InstanceConfig {
    /// The name VIPs are added under: the label if any, else the interface.
    pub fn vip_label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.interface)
    }
}

/// Up/down scripts, called as UCARP calls them:
/// `script <interface> <vip> [xparam]`, once per VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scripts {
    /// Run on becoming master (UCARP's `-u`).
    pub upscript: Option<PathBuf>,
    /// Run on becoming backup (UCARP's `-d`).
    pub downscript: Option<PathBuf>,
    /// Extra last argument (UCARP's `-x`).
    pub xparam: Option<String>,
    /// Seconds a script may run before it is killed (≥ 1).
    pub timeout_secs: u32,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            upscript: None,
            downscript: None,
            xparam: None,
            timeout_secs: DEFAULT_SCRIPT_TIMEOUT_SECS,
        }
    }
}

/// Announcements sent on takeover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce {
    /// Gratuitous ARPs / unsolicited NAs per VIP (0..=100).
    pub count: u32,
    /// Gap between them, milliseconds (1..=60000).
    pub interval_ms: u32,
}

impl Default for Announce {
    fn default() -> Self {
        Announce {
            count: DEFAULT_ANNOUNCE_COUNT,
            interval_ms: DEFAULT_ANNOUNCE_INTERVAL_MS,
        }
    }
}

/// A command run periodically; while it fails, `weight` is added to the
/// instance's demote value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// Seconds between runs (≥ 1).
    pub interval_secs: u32,
    /// Seconds before a run is killed and counted as failed (≥ 1).
    pub timeout_secs: u32,
    /// Demote added while failing (1..=255).
    pub weight: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_prefix_defaults_to_the_host_route_and_is_bounded() {
        let v4 = Vip::parse("192.0.2.10").unwrap();
        assert_eq!(
            (v4.addr, v4.prefix_len),
            ("192.0.2.10".parse().unwrap(), 32)
        );
        assert_eq!(Vip::parse("2001:db8::1").unwrap().prefix_len, 128);
        assert_eq!(
            Vip::parse("192.0.2.10/24").unwrap().to_string(),
            "192.0.2.10/24"
        );
        assert_eq!(Vip::parse("2001:db8::1/64").unwrap().prefix_len, 64);
        for bad in [
            "192.0.2.10/33",
            "2001:db8::1/129",
            "192.0.2.10/",
            "/24",
            "eth0",
            "192.0.2.10/-1",
        ] {
            assert_eq!(Vip::parse(bad), None, "{bad}");
        }
    }
}
