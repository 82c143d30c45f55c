//! The command line: a drop-in for UCARP 1.5 (every option, short and long,
//! same meaning and defaults, `--interface=eth0:carp0` alias form, unique
//! prefixes of long options as getopt_long accepts), plus the configuration
//! file, our own options and the subcommands.
//!
//! ```text
//! carpd-xdp [OPTIONS]                    run from /etc/carpd-xdp/carpd-xdp.toml
//! carpd-xdp eth0                         run the instances on eth0 only
//! carpd-xdp -i eth0 -v 1 -p pw -a VIP    one instance, UCARP style, no file
//! carpd-xdp check-config FILE            validate and print the effective config
//! carpd-xdp status [--json]              ask the running daemon
//! carpd-xdp monitor -i eth0 -v 1         print the adverts seen
//! carpd-xdp init eth0 --vip 10.0.0.10/24 write a commented starter config
//! carpd-xdp import-ucarp DIR...          UCARP's files to one config
//! ```
//!
//! The top level has no automatic help flag: UCARP's `-h` is [`RunArgs::help`].
//! Clap propagates that setting to every subcommand, so each subcommand gets
//! its own `-h/--help` back through [`help_arg`].
//!
//! Only parsing lives here; [`crate::config::from_cli`] turns the result
//! into the same [`Config`](crate::config::Config) a file gives.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{LogFormat, ReplayMode, DEFAULT_STATUS_SOCKET};
use crate::monitor::MonitorArgs;
use crate::xdp::mode::XdpMode;

/// carpd-xdp: CARP with an XDP receive path, a drop-in for UCARP.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "carpd-xdp",
    version,
    disable_help_flag = true,
    infer_long_args = true,
    args_conflicts_with_subcommands = true,
    after_help = "Without UCARP instance options the configuration file is read \
                  (default /etc/carpd-xdp/carpd-xdp.toml, see --config).\n\
                  Example (UCARP style): carpd-xdp --interface=eth0 --srcip=10.1.1.1 \
                  --vhid=1 --passfile=/etc/carp.pass --addr=10.1.1.252 \
                  --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh"
)]
pub struct Cli {
    /// What to do; running the daemon when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the daemon itself.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Validate a configuration file and print the effective configuration
    /// (passwords redacted).
    #[command(arg = help_arg())]
    CheckConfig(CheckConfigArgs),
    /// Show the state of every instance of the running daemon.
    #[command(arg = help_arg())]
    Status(StatusArgs),
    /// Print the adverts that pass validation on interfaces (diagnostics).
    #[command(arg = help_arg())]
    Monitor(MonitorArgs),
    /// Write a commented starter configuration for one interface (never
    /// overwrites a file).
    #[command(arg = help_arg())]
    Init(crate::config::starter::InitArgs),
    /// Convert UCARP's configuration (/etc/default/ucarp, per-VIP files or a
    /// command line) into one carpd-xdp configuration file.
    #[command(arg = help_arg())]
    ImportUcarp(crate::config::import::ImportUcarpArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true, arg = help_arg())]
    GenerateAssets(crate::assets::GenerateAssetsArgs),
}

/// `-h/--help` for a subcommand (the top level turns clap's own off for
/// UCARP's `-h`, and clap propagates that to subcommands).
pub fn help_arg() -> clap::Arg {
    clap::Arg::new("help")
        .short('h')
        .long("help")
        .action(ArgAction::Help)
        .help("Print help")
}

/// Arguments of `carpd-xdp check-config`.
#[derive(Clone, Debug, Args)]
pub struct CheckConfigArgs {
    /// The file to check.
    #[arg(value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub file: PathBuf,
}

/// Arguments of `carpd-xdp status`.
#[derive(Clone, Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Unix socket of the running daemon.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_STATUS_SOCKET)]
    pub socket: PathBuf,
    /// Print the status again every SECS seconds (0.1 to 3600, default 1)
    /// until interrupted.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1",
          value_parser = crate::control::watch::parse_interval)]
    pub watch: Option<std::time::Duration>,
}

/// Options of the daemon: UCARP's, then ours. Options left out are `None`
/// (or `false`) so a configuration file can supply them; the UCARP defaults
/// are applied by [`crate::config::from_cli`].
#[derive(Clone, Debug, Default, Args)]
pub struct RunArgs {
    /// Run only the configured instances on this interface (as
    /// `sudo carpd-xdp eth0`).
    #[arg(value_name = "INTERFACE")]
    pub interface_filter: Option<String>,

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
