//! The settings of one input as the UCARP options they are: shell variables
//! and `OPTIONS` words read by the daemon's own command-line parser, each
//! value remembering the file, line and variable it came from.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::super::error::At;
use super::super::model::{LogFormat, ReplayMode};
use super::super::options::{self, RunArgs, SUBCOMMANDS};
use super::super::shell;
use super::ImportError;
use crate::xdp::mode::XdpMode;

/// What a variable of a sourced shell file is to the init script that
/// reads it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Var {
    /// Passed to UCARP as this option.
    Option(&'static str),
    /// The VIP's netmask (`255.255.255.0` or a prefix length).
    Netmask,
    /// UCARP options, split into words.
    Options,
    /// Used by the init script for something carpd-xdp does its own way:
    /// noted, not imported.
    Ignored(&'static str),
}

/// Where a setting came from: a file line and variable, or a flag.
/// Where a setting came from: a file line and variable, or a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    File {
        path: PathBuf,
        line: usize,
        setting: String,
    },
    Flag(&'static str),
    /// What a package's script passes whatever the configuration says
    /// (e.g. `-z` by Debian's `/etc/network/if-up.d/ucarp`).
    Script(&'static str),
}

impl Origin {
    /// Set by an `OPTIONS` (or `UCARP_OPTS`) variable of a file.
    fn is_options(&self) -> bool {
        matches!(self, Origin::File { setting, .. }
        if ["OPTIONS", "UCARP_OPTS"].iter().any(|name| {
            setting == name || setting.starts_with(&format!("{name} "))
        }))
    }

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
            Origin::Flag(flag) | Origin::Script(flag) => At::Flag(flag),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag("") => f.write_str("command line"),
            Origin::Flag(flag) => write!(f, "command line: {flag}"),
            Origin::Script(what) => f.write_str(what),
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
    /// What was read but not imported, for the output's comments.
    pub(super) notes: Vec<Note>,
    /// The file assigns `OPTIONS` (or `UCARP_OPTS`): sourced after a shared
    /// file, it replaces the shared file's options as a whole.
    pub(super) sets_options: bool,
}

/// A remark about a setting that is not imported as it is, written once
/// into the output whatever the number of files it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Note {
    /// What it is about (a variable or option name): notes with the same
    /// subject and text are written once, with every place.
    pub(super) subject: String,
    /// Where (file and line, or `command line`).
    pub(super) at: String,
    /// What happens to it instead.
    pub(super) text: String,
}

/// Calls `$m!(args..., field, field...)` with every setting of
/// [`Settings`].
macro_rules! every_setting {
    ($m:ident, $($arg:expr),*) => {
        $m!($($arg),*; interface, srcip, vhid, pass, passfile, preempt, neutral, addr, netmask,
            advbase, advskew, xparam, upscript, downscript, debug, deadratio, shutdown,
            daemonize, facility, ignoreifstate, nomcast, mcast, xdp_mode, replay,
            replay_window_ms, state_dir, status_socket, metrics, log_format)
    };
}

macro_rules! merge_fields {
    ($into:expr, $from:expr; $($field:ident),*) => {
        $( if $from.$field.is_some() { $into.$field = $from.$field; } )*
    };
}

/// Unsets what an `OPTIONS` variable set.
macro_rules! clear_options {
    ($s:expr; $($field:ident),*) => {
        $( if $s.$field.as_ref().is_some_and(|v| v.from.is_options()) { $s.$field = None; } )*
    };
}

impl Settings {
    /// A more specific file over a shared one (a per-VIP file over
    /// `/etc/default/ucarp` or `vip-common.conf`): `later` wins where it sets
    /// something, and a password of either kind replaces both kinds.
    pub(super) fn merge_over(&mut self, later: Settings) {
        if later.sets_options {
            every_setting!(clear_options, self);
        }
        if later.pass.is_some() || later.passfile.is_some() {
            self.pass = None;
            self.passfile = None;
        }
        self.merge(later);
    }

    /// `later` wins where it sets something.
    pub(super) fn merge(&mut self, later: Settings) {
        self.notes.extend(later.notes.iter().cloned());
        self.sets_options |= later.sets_options;
        every_setting!(merge_fields, self, later);
    }

    /// The options of a parsed command line; `origin(flag)` says where each
    /// came from.
    pub(super) fn from_run(
        run: RunArgs,
        origin: &dyn Fn(&'static str) -> Origin,
    ) -> Result<Settings, ImportError> {
        fn val<T>(v: Option<T>, from: Origin) -> Option<Val<T>> {
            v.map(|value| Val { value, from })
        }
        let flag = |set: bool| set.then_some(true);
        let mut notes = Vec::new();
        if let Some(operand) = run.interface_filter {
            // UCARP reads options only: an operand is left unread.
            notes.push(Note {
                subject: operand.clone(),
                at: origin("").to_string(),
                text: format!(
                    "{operand:?} is not an option; UCARP ignores it, and so does the import"
                ),
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
            notes,
            sets_options: false,
        })
    }
}

/// Parses UCARP options with the daemon's own parser.
pub(super) fn parse_options(
    words: &[String],
    at: &dyn Fn() -> String,
) -> Result<RunArgs, ImportError> {
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

/// The settings of one shell file whose variables mean what `vars` says.
pub(super) fn settings_of_file(
    path: &Path,
    text: &str,
    vars: &[(&str, Var)],
) -> Result<Settings, ImportError> {
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
    let mut sets_options = false;
    for a in shell::assignments(text).map_err(shell_err)? {
        let at = || file_origin(a.line, a.name.clone()).to_string();
        let Some((_, var)) = vars.iter().find(|(name, _)| *name == a.name) else {
            from_vars.notes.push(unknown_variable(&a.name, at(), vars));
            continue;
        };
        match *var {
            Var::Options => {
                let words = shell::words(&a.value, a.line, &a.name).map_err(shell_err)?;
                let run = parse_options(&words, &at)?;
                let origin = |flag: &'static str| match flag {
                    "" => file_origin(a.line, a.name.clone()),
                    flag => file_origin(a.line, format!("{} {flag}", a.name)),
                };
                // A later OPTIONS line replaces an earlier one, as in the shell.
                from_options = Settings::from_run(run, &origin)?;
                sets_options = true;
            }
            Var::Netmask => {
                from_vars.netmask = (!a.value.is_empty()).then(|| Val {
                    value: a.value.clone(),
                    from: file_origin(a.line, a.name.clone()),
                });
            }
            Var::Ignored(why) => from_vars.notes.push(Note {
                subject: a.name.clone(),
                at: at(),
                text: format!("{} is not imported: {why}", a.name),
            }),
            Var::Option(option) => {
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
    from_options.sets_options = sets_options;
    Ok(from_options)
}

/// The note for a variable the init script does not read: noted, never
/// refused (init scripts source these files, any variable is legal there),
/// with the nearest known name when it looks like a misspelling.
fn unknown_variable(name: &str, at: String, vars: &[(&str, Var)]) -> Note {
    let near = vars
        .iter()
        .map(|(known, _)| (edit_distance(name, known), *known))
        .filter(|(d, _)| *d <= 2)
        .min();
    let hint = near.map_or_else(String::new, |(_, known)| {
        format!(" (did you mean {known}?)")
    });
    Note {
        subject: name.to_owned(),
        at,
        text: format!("{name} is not a setting UCARP's scripts read; not imported{hint}"),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A pasted command line as the words UCARP gets: one argument holding
/// the whole line is split as the shell would (quotes, `\` line
/// continuations), and a leading `ucarp` (`/usr/sbin/ucarp`) is dropped.
pub(super) fn command_words(words: &[String]) -> Result<Vec<String>, ImportError> {
    let mut words = match words {
        [line] if line.contains(char::is_whitespace) => {
            let joined = line.replace("\\\r\n", " ").replace("\\\n", " ");
            shell::words(&joined, 1, "command line").map_err(|error| ImportError::Shell {
                path: PathBuf::from("command line"),
                error,
            })?
        }
        _ => words.to_vec(),
    };
    if words
        .first()
        .is_some_and(|w| Path::new(w).file_name() == Some("ucarp".as_ref()))
    {
        words.remove(0);
    }
    Ok(words)
}
