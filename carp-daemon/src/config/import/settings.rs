//! The settings of one input as the UCARP options they are: shell variables
//! and `OPTIONS` words read by the daemon's own command-line parser, each
//! value remembering the file, line and variable it came from.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::super::error::At;
use super::super::model::{LogFormat, ReplayMode};
use super::super::options::{self, RunArgs, SUBCOMMANDS};
use super::super::shell;
use super::{Body, ImportError, Input};
use crate::xdp::mode::XdpMode;

/// Variables of per-VIP and default files, and the UCARP option each is.
const VARIABLES: &[(&str, &str)] = &[
    ("INTERFACE", "--interface"),
    ("INSTANCE_ID", "--vhid"),
    ("PASSWORD", "--pass"),
    ("PASSFILE", "--passfile"),
    ("VIRTUAL_ADDRESS", "--addr"),
    ("SOURCE_ADDRESS", "--srcip"),
    ("UPSCRIPT", "--upscript"),
    ("DOWNSCRIPT", "--downscript"),
    ("XPARAM", "--xparam"),
    ("UCARP_BASE", "--advbase"),
];
const KNOWN: &str = "INTERFACE, INSTANCE_ID, PASSWORD, PASSFILE, VIRTUAL_ADDRESS, \
                     VIRTUAL_NETMASK, SOURCE_ADDRESS, UPSCRIPT, DOWNSCRIPT, XPARAM, UCARP_BASE, \
                     OPTIONS, UCARP_OPTS";

/// Where a setting came from: a file line and variable, or a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    File {
        path: PathBuf,
        line: usize,
        setting: String,
    },
    Flag(&'static str),
}

impl Origin {
    pub(super) fn at(&self) -> At {
        match self {
            Origin::File {
                path,
                line,
                setting,
            } => At::File {
                path: path.clone(),
                line: *line,
                field: setting.clone(),
            },
            Origin::Flag(flag) => At::Flag(flag),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag("") => f.write_str("command line"),
            Origin::Flag(flag) => write!(f, "command line: {flag}"),
            file => file.at().fmt(f),
        }
    }
}

/// A value and where it was set.
#[derive(Clone, Debug)]
pub(super) struct Val<T> {
    pub(super) value: T,
    pub(super) from: Origin,
}

/// The settings of one instance as they accumulate, later inputs winning.
#[derive(Clone, Debug, Default)]
pub(super) struct Settings {
    pub(super) interface: Option<Val<String>>,
    pub(super) srcip: Option<Val<IpAddr>>,
    pub(super) vhid: Option<Val<u8>>,
    pub(super) pass: Option<Val<String>>,
    pub(super) passfile: Option<Val<PathBuf>>,
    pub(super) preempt: Option<Val<bool>>,
    pub(super) neutral: Option<Val<bool>>,
    pub(super) addr: Option<Val<Vec<String>>>,
    pub(super) netmask: Option<Val<String>>,
    pub(super) advbase: Option<Val<u8>>,
    pub(super) advskew: Option<Val<u8>>,
    pub(super) xparam: Option<Val<String>>,
    pub(super) upscript: Option<Val<PathBuf>>,
    pub(super) downscript: Option<Val<PathBuf>>,
    pub(super) debug: Option<Val<bool>>,
    pub(super) deadratio: Option<Val<u32>>,
    pub(super) shutdown: Option<Val<bool>>,
    pub(super) daemonize: Option<Val<bool>>,
    pub(super) facility: Option<Val<String>>,
    pub(super) ignoreifstate: Option<Val<bool>>,
    pub(super) nomcast: Option<Val<bool>>,
    pub(super) mcast: Option<Val<IpAddr>>,
    pub(super) xdp_mode: Option<Val<XdpMode>>,
    pub(super) replay: Option<Val<ReplayMode>>,
    pub(super) replay_window_ms: Option<Val<u32>>,
    pub(super) state_dir: Option<Val<PathBuf>>,
    pub(super) status_socket: Option<Val<PathBuf>>,
    pub(super) metrics: Option<Val<SocketAddr>>,
    pub(super) log_format: Option<Val<LogFormat>>,
}

macro_rules! merge_fields {
    ($into:expr, $from:expr, $($field:ident),*) => {
        $( if $from.$field.is_some() { $into.$field = $from.$field; } )*
    };
}

impl Settings {
    /// `later` wins where it sets something.
    pub(super) fn merge(&mut self, later: Settings) {
        merge_fields!(
            self,
            later,
            interface,
            srcip,
            vhid,
            pass,
            passfile,
            preempt,
            neutral,
            addr,
            netmask,
            advbase,
            advskew,
            xparam,
            upscript,
            downscript,
            debug,
            deadratio,
            shutdown,
            daemonize,
            facility,
            ignoreifstate,
            nomcast,
            mcast,
            xdp_mode,
            replay,
            replay_window_ms,
            state_dir,
            status_socket,
            metrics,
            log_format
        );
    }

    /// The options of a parsed command line; `origin(flag)` says where each
    /// came from.
    fn from_run(
        run: RunArgs,
        origin: &dyn Fn(&'static str) -> Origin,
    ) -> Result<Settings, ImportError> {
        fn val<T>(v: Option<T>, from: Origin) -> Option<Val<T>> {
            v.map(|value| Val { value, from })
        }
        let flag = |set: bool| set.then_some(true);
        if let Some(positional) = run.interface_filter {
            return Err(ImportError::Unsupported {
                // The words themselves: no option to name.
                at: origin("").to_string(),
                setting: positional,
                why: "a word that is not an option (give the interface with -i)",
            });
        }
        if run.config.is_some() {
            return Err(ImportError::Unsupported {
                at: origin("--config").to_string(),
                setting: "--config".into(),
                why: "the imported file is the configuration",
            });
        }
        Ok(Settings {
            interface: val(run.interface, origin("-i/--interface")),
            srcip: val(run.srcip, origin("-s/--srcip")),
            vhid: val(run.vhid, origin("-v/--vhid")),
            pass: val(run.pass, origin("-p/--pass")),
            passfile: val(run.passfile, origin("-o/--passfile")),
            preempt: val(flag(run.preempt), origin("-P/--preempt")),
            neutral: val(flag(run.neutral), origin("-n/--neutral")),
            addr: val(
                (!run.addr.is_empty()).then_some(run.addr),
                origin("-a/--addr"),
            ),
            netmask: None,
            advbase: val(run.advbase, origin("-b/--advbase")),
            advskew: val(run.advskew, origin("-k/--advskew")),
            xparam: val(run.xparam, origin("-x/--xparam")),
            upscript: val(run.upscript, origin("-u/--upscript")),
            downscript: val(run.downscript, origin("-d/--downscript")),
            debug: val(flag(run.debug), origin("-D/--debug")),
            deadratio: val(run.deadratio, origin("-r/--deadratio")),
            shutdown: val(flag(run.shutdown), origin("-z/--shutdown")),
            daemonize: val(flag(run.daemonize), origin("-B/--daemonize")),
            facility: val(run.facility, origin("-f/--facility")),
            ignoreifstate: val(flag(run.ignoreifstate), origin("-S/--ignoreifstate")),
            nomcast: val(flag(run.nomcast), origin("-M/--nomcast")),
            mcast: val(run.mcast, origin("-m/--mcast")),
            xdp_mode: val(run.xdp_mode, origin("--xdp-mode")),
            replay: val(run.replay, origin("--replay")),
            replay_window_ms: val(run.replay_window_ms, origin("--replay-window-ms")),
            state_dir: val(run.state_dir, origin("--state-dir")),
            status_socket: val(run.status_socket, origin("--status-socket")),
            metrics: val(run.metrics, origin("--metrics")),
            log_format: val(run.log_format, origin("--log-format")),
        })
    }
}

/// Parses UCARP options with the daemon's own parser.
fn parse_options(words: &[String], at: &dyn Fn() -> String) -> Result<RunArgs, ImportError> {
    let subcommand = ImportError::Unsupported {
        at: at(),
        setting: words.join(" "),
        why: "a carpd-xdp subcommand, not UCARP options",
    };
    if words
        .first()
        .is_some_and(|w| SUBCOMMANDS.contains(&w.as_str()))
    {
        return Err(subcommand);
    }
    let argv = std::iter::once("carpd-xdp").chain(words.iter().map(String::as_str));
    let run = options::parse(argv).map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ImportError::Unsupported {
                at: at(),
                setting: "-h/--help or --version".into(),
                why: "not a setting",
            },
            _ => ImportError::Option {
                at: at(),
                message: first_line(&e.to_string()),
            },
        }
    })?;
    Ok(run)
}

/// The first line of a clap error, without its `error: ` prefix.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// The settings of one shell file.
fn settings_of_file(path: &Path, text: &str) -> Result<Settings, ImportError> {
    let shell_err = |error| ImportError::Shell {
        path: path.to_owned(),
        error,
    };
    let file_origin = |line: usize, setting: String| Origin::File {
        path: path.to_owned(),
        line,
        setting,
    };
    let mut from_vars = Settings::default();
    let mut from_options = Settings::default();
    for a in shell::assignments(text).map_err(shell_err)? {
        let at = || file_origin(a.line, a.name.clone()).to_string();
        match a.name.as_str() {
            "OPTIONS" | "UCARP_OPTS" => {
                let words = shell::words(&a.value, a.line, &a.name).map_err(shell_err)?;
                let run = parse_options(&words, &at)?;
                let origin = |flag: &'static str| match flag {
                    "" => file_origin(a.line, a.name.clone()),
                    flag => file_origin(a.line, format!("{} {flag}", a.name)),
                };
                // A later OPTIONS line replaces an earlier one, as in the shell.
                from_options = Settings::from_run(run, &origin)?;
            }
            "VIRTUAL_NETMASK" => {
                from_vars.netmask = (!a.value.is_empty()).then(|| Val {
                    value: a.value.clone(),
                    from: file_origin(a.line, a.name.clone()),
                });
            }
            name => {
                let Some((_, option)) = VARIABLES.iter().find(|(var, _)| *var == name) else {
                    return Err(ImportError::UnknownVariable {
                        at: at(),
                        name: a.name.clone(),
                        known: KNOWN,
                    });
                };
                // An empty value is unset, as init scripts test `[ -n "$X" ]`.
                if a.value.is_empty() {
                    continue;
                }
                let run = parse_options(&[format!("{option}={}", a.value)], &at)?;
                let origin = |_: &'static str| file_origin(a.line, a.name.clone());
                from_vars.merge(Settings::from_run(run, &origin)?);
            }
        }
    }
    from_options.merge(from_vars);
    Ok(from_options)
}

/// The settings of one input.
pub(super) fn settings_of(input: &Input) -> Result<Settings, ImportError> {
    match &input.body {
        Body::Shell(text) => settings_of_file(&input.name, text),
        Body::Args(words) => {
            let at = || "command line".to_owned();
            let run = parse_options(words, &at)?;
            Settings::from_run(run, &Origin::Flag)
        }
    }
}
