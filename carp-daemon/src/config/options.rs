//! The daemon's own options, UCARP's and ours, as parsed from a command line
//! (the daemon's, or the `OPTIONS` words of an imported UCARP file): the input
//! of [`super::from_cli`] and of the UCARP import.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, FromArgMatches};

use super::model::{LogFormat, ReplayMode};
use crate::xdp::mode::XdpMode;

/// Names of the subcommands of `carpd-xdp`, which clap takes as the
/// positional interface when they follow daemon options.
pub const SUBCOMMANDS: [&str; 7] = [
    "check-config",
    "status",
    "monitor",
    "init",
    "import-ucarp",
    "generate-assets",
    "help",
];

/// Options of the daemon: UCARP's, then ours. Options left out are `None`
/// (or `false`) so a configuration file can supply them; the UCARP defaults
/// are applied by [`crate::config::from_cli`].
#[derive(Clone, Debug, Default, Args)]
pub struct RunArgs {
    /// Run only the configured instances on this interface (as
    /// `sudo carpd-xdp eth0`).
    #[arg(value_name = "INTERFACE")]
    pub interface_filter: Option<String>,
    /// Words after the interface argument that are not options. UCARP
    /// ignores every operand (an init script's line ending in `\ ` passes a
    /// stray `\`); so does the UCARP-style command line, with a warning.
    #[arg(value_name = "OPERAND", hide = true)]
    pub operands: Vec<String>,

    /// Bind this interface; `eth0:carp0` adds the VIP with that label.
    #[arg(short = 'i', long = "interface", value_name = "if")]
    pub interface: Option<String>,
    /// Source (real) IP address of this host [default: the interface's].
    #[arg(short = 's', long = "srcip", value_name = "ip")]
    pub srcip: Option<IpAddr>,
    /// Virtual host identifier (1-255).
    #[arg(short = 'v', long = "vhid", value_name = "id",
          value_parser = clap::value_parser!(u8).range(1..=255))]
    pub vhid: Option<u8>,
    /// Password (visible in ps: prefer --passfile).
    #[arg(short = 'p', long = "pass", value_name = "pass")]
    pub pass: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(short = 'o', long = "passfile", value_name = "file")]
    pub passfile: Option<PathBuf>,
    /// Become master as soon as possible (preempt a less preferred master).
    #[arg(short = 'P', long = "preempt")]
    pub preempt: bool,
    /// Do not run the down script at start-up as backup.
    #[arg(short = 'n', long = "neutral")]
    pub neutral: bool,
    /// Virtual shared IP address (repeat for several; ADDR or ADDR/PREFIX).
    #[arg(short = 'a', long = "addr", value_name = "ip")]
    pub addr: Vec<String>,
    /// Summary of command-line options.
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Advertisement base in seconds (0-255) [default: 1].
    #[arg(short = 'b', long = "advbase", value_name = "seconds")]
    pub advbase: Option<u8>,
    /// Advertisement skew (0-254) [default: 0].
    #[arg(short = 'k', long = "advskew", value_name = "skew",
          value_parser = clap::value_parser!(u8).range(0..=254))]
    pub advskew: Option<u8>,
    /// Extra parameter passed to the up/down scripts.
    #[arg(short = 'x', long = "xparam", value_name = "value")]
    pub xparam: Option<String>,
    /// Script run on becoming master, as `<file> <interface> <vip> [xparam]`.
    #[arg(short = 'u', long = "upscript", value_name = "file")]
    pub upscript: Option<PathBuf>,
    /// Script run on becoming backup, as `<file> <interface> <vip> [xparam]`.
    #[arg(short = 'd', long = "downscript", value_name = "file")]
    pub downscript: Option<PathBuf>,
    /// Enable debug output.
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Missed adverts before the master is taken as dead (>= 1) [default: 3].
    #[arg(short = 'r', long = "deadratio", value_name = "ratio",
          value_parser = clap::value_parser!(u32).range(1..=255))]
    pub deadratio: Option<u32>,
    /// Run the down script at exit (unless already backup).
    #[arg(short = 'z', long = "shutdown")]
    pub shutdown: bool,
    /// Run in the background.
    #[arg(short = 'B', long = "daemonize")]
    pub daemonize: bool,
    /// Syslog facility, or `none` for no syslog [default: daemon].
    #[arg(short = 'f', long = "facility", value_name = "facility")]
    pub facility: Option<String>,
    /// Ignore interface state (down, no carrier).
    #[arg(short = 'S', long = "ignoreifstate")]
    pub ignoreifstate: bool,
    /// Send adverts to the Ethernet broadcast address instead of the
    /// multicast MAC.
    #[arg(short = 'M', long = "nomcast")]
    pub nomcast: bool,
    /// Multicast group instead of 224.0.0.18 (ff02::12 for IPv6).
    #[arg(
        short = 'm',
        long = "mcast",
        visible_alias = "mcastip",
        value_name = "ip"
    )]
    pub mcast: Option<IpAddr>,

    /// Configuration file [default: /etc/carpd-xdp/carpd-xdp.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Receive path: auto (native XDP, then skb XDP, then the TC program,
    /// then a packet socket), native, skb, tc or off [default: auto].
    #[arg(long, value_enum, value_name = "MODE")]
    pub xdp_mode: Option<XdpMode>,
    /// Replay protection of the advert counter [default: auto].
    #[arg(long, value_name = "MODE", value_parser = replay_mode_parser())]
    pub replay: Option<ReplayMode>,
    /// Refuse tagged counters whose time is more than MS milliseconds from
    /// our clock (docs/replay.md) [default: no window].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(1..=86_400_000))]
    pub replay_window_ms: Option<u32>,
    /// Where advert counter reservations are kept [default: /var/lib/carpd-xdp].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Unix socket answering `carpd-xdp status` [default: /run/carpd-xdp.sock].
    #[arg(long, value_name = "PATH")]
    pub status_socket: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Format of log lines on stderr [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Run the daemon's thread SCHED_FIFO at this priority, 1-99 (0: off);
    /// for advbase 0 on a busy host (docs/tuning.md) [default: 0].
    #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(0..=99))]
    pub realtime_priority: Option<u8>,
    /// Lock the daemon's memory (mlockall), so that it is never swapped out.
    #[arg(long)]
    pub lock_memory: bool,
    /// Do not switch to SCHED_FIFO when the timers of advbase 0 run late
    /// (docs/tuning.md).
    #[arg(long)]
    pub no_auto_realtime: bool,
}

impl RunArgs {
    /// The UCARP options that describe an instance, by name, when given. Any
    /// of them selects the UCARP-style command line instead of the file.
    pub fn instance_options(&self) -> Vec<&'static str> {
        let given = [
            (self.srcip.is_some(), "-s/--srcip"),
            (self.vhid.is_some(), "-v/--vhid"),
            (self.pass.is_some(), "-p/--pass"),
            (self.passfile.is_some(), "-o/--passfile"),
            (self.preempt, "-P/--preempt"),
            (self.neutral, "-n/--neutral"),
            (!self.addr.is_empty(), "-a/--addr"),
            (self.advbase.is_some(), "-b/--advbase"),
            (self.advskew.is_some(), "-k/--advskew"),
            (self.xparam.is_some(), "-x/--xparam"),
            (self.upscript.is_some(), "-u/--upscript"),
            (self.downscript.is_some(), "-d/--downscript"),
            (self.deadratio.is_some(), "-r/--deadratio"),
            (self.shutdown, "-z/--shutdown"),
            (self.ignoreifstate, "-S/--ignoreifstate"),
            (self.nomcast, "-M/--nomcast"),
            (self.mcast.is_some(), "--mcast"),
        ];
        given
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name)
            .collect()
    }
}

/// `--replay`: the core's names, parsed by `ReplayMode::from_str`, each
/// listed with a line of help in `--help`, the man page and the completions.
fn replay_mode_parser() -> impl TypedValueParser<Value = ReplayMode> {
    let help = |mode| match mode {
        ReplayMode::Strict => "Counters must grow per source and vhid (carpd-xdp-only clusters)",
        ReplayMode::Compat => {
            "Counters must not repeat a recent one (clusters with UCARP or carp(4))"
        }
        ReplayMode::Auto => "Strict for carpd-xdp sources, compat for the others",
    };
    PossibleValuesParser::new(
        ReplayMode::ALL.map(|mode| PossibleValue::new(mode.name()).help(help(mode))),
    )
    .try_map(|name| name.parse::<ReplayMode>())
}

/// Parses `argv` (the program name first) as daemon options alone, the way
/// the daemon's command line ([`crate::cli::Cli`]) parses them: `-h` is
/// UCARP's, unique prefixes of long options are accepted. Subcommands are not
/// known here: a subcommand name is the positional interface.
pub fn parse<I, T>(argv: I) -> Result<RunArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = clap::Command::new("carpd-xdp")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .infer_long_args(true);
    let matches = RunArgs::augment_args(command).try_get_matches_from(argv)?;
    RunArgs::from_arg_matches(&matches)
}
