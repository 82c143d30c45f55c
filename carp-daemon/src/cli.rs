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
//! carpd-xdp status [--json]              ask every running daemon
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

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{RunArgs, DEFAULT_RUN_DIR};
use crate::monitor::MonitorArgs;

/// CARP daemon with an XDP receive path, a drop-in for UCARP.
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
    /// Show the state of every instance of every daemon on the host.
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
    /// Ask only the daemon on this unix socket [default: every daemon in
    /// --run-dir: carpd-xdp.sock and carpd-xdp-<interface>-<vhid>.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Directory searched for the daemons' sockets.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_DIR, conflicts_with = "socket")]
    pub run_dir: PathBuf,
    /// Print the status again every SECS seconds (0.1 to 3600, default 1)
    /// until interrupted.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1",
          value_parser = crate::control::watch::parse_interval)]
    pub watch: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_config_knows_every_subcommand() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        names.sort_unstable();
        let mut known = crate::config::SUBCOMMANDS.to_vec();
        known.sort_unstable();
        assert_eq!(names, known);
    }
}
