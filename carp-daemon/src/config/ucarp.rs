//! From the command line to a [`Config`]: either the UCARP-style options
//! describing one instance, or the configuration file with the command line's
//! process-wide options on top.
//!
//! UCARP defaults (ucarp 1.5.2 `ucarp.h`, README): advbase 1 s, advskew 0,
//! deadratio 3, multicast group 224.0.0.18, syslog facility `daemon`; vhid,
//! password and address are required. Unlike UCARP, `--srcip` may be left
//! out (the interface's address is used), `-a` may be repeated and take IPv6
//! addresses, and out-of-range numbers are errors instead of being truncated.

use std::ffi::OsString;
use std::path::PathBuf;

use super::error::{At, ConfigError};
use super::facility::Facility;
use super::model::*;
use super::options::{RunArgs, SUBCOMMANDS};
use super::password::{Password, PasswordSource};
use super::paths::DEFAULT_CONFIG_PATH;
use super::validate::{check_config, split_alias, Field, Locate};

/// Flags of the UCARP-style command line, for error locations.
struct Flags;

impl Locate for Flags {
    fn at(&self, _index: usize, field: Field) -> At {
        At::Flag(match field {
            Field::Interface | Field::Label => "-i/--interface",
            Field::Vhid => "-v/--vhid",
            Field::Vips | Field::Vip(_) | Field::Peer(_) => "-a/--addr",
            Field::Mcast => "--mcast",
        })
    }
}

/// The configuration the daemon runs from, given its command line: the
/// UCARP-style instance if any UCARP instance option is present, else the
/// configuration file (`--config` or [`DEFAULT_CONFIG_PATH`]) restricted to
/// the interface given (positional or `-i`). `env` looks up password
/// variables (std::env::var_os in the daemon).
pub fn from_cli(
    run: &RunArgs,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let ucarp_options = run.instance_options();
    let (interface, ignored) = interface_and_operands(run, !ucarp_options.is_empty())?;
    if let Some(name) = interface.filter(|name| SUBCOMMANDS.contains(&name.as_str())) {
        return Err(ConfigError::Invalid {
            at: At::Flag("-i/--interface"),
            value: name.clone(),
            expected: "an interface name (it is a subcommand; give subcommands first)",
        });
    }
    let mut config = if let Some(first) = ucarp_options.first() {
        if run.config.is_some() {
            return Err(ConfigError::Conflict {
                at: At::Flag("--config"),
                other: (*first).to_owned(),
            });
        }
        let mut config = ucarp_config(run, interface.map(String::as_str))?;
        if !ignored.is_empty() {
            config.warnings.push(ConfigWarning {
                at: "command line".into(),
                message: format!(
                    "ignoring what is not an option, as UCARP does: {}",
                    ignored
                        .iter()
                        .map(|w| format!("{w:?}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            });
        }
        config
    } else {
        let path = run
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let config = match super::load_with_env(&path, env) {
            Err(ConfigError::Read { io, .. }) if io.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NoConfigFile {
                    path,
                    interface: interface.cloned(),
                });
            }
            result => result?,
        };
        match interface {
            Some(name) => super::select_interface(config, name, &path)?,
            None => config,
        }
    };
    apply_global_options(&mut config, run)?;
    Ok(config)
}

/// The interface the command line names (`-i`, or the interface argument)
/// and the operands ignored. UCARP ignores every word that is not an
/// option, and so does the UCARP-style command line (`ucarp_style`): with
/// `-i`, every operand is ignored; without, the first is the interface.
/// Running from the file, one interface argument is the only operand, and
/// not together with `-i`.
fn interface_and_operands(
    run: &RunArgs,
    ucarp_style: bool,
) -> Result<(Option<&String>, Vec<&String>), ConfigError> {
    let operands = run.interface_filter.iter().chain(&run.operands);
    match (&run.interface, ucarp_style) {
        (Some(flag), true) => Ok((Some(flag), operands.collect())),
        (None, true) => {
            let mut operands = operands;
            Ok((operands.next(), operands.collect()))
        }
        (flag, false) => {
            if let (Some(positional), Some(_)) = (&run.interface_filter, flag) {
                return Err(ConfigError::Conflict {
                    at: At::Flag("-i/--interface"),
                    other: format!("the interface argument {positional:?}"),
                });
            }
            if let (Some(first), Some(extra)) = (&run.interface_filter, run.operands.first()) {
                return Err(ConfigError::Conflict {
                    at: At::Flag("INTERFACE"),
                    other: format!("a second interface argument {extra:?} (after {first:?})"),
                });
            }
            Ok((run.interface_filter.as_ref().or(flag.as_ref()), Vec::new()))
        }
    }
}

/// The one instance described by UCARP options.
fn ucarp_config(run: &RunArgs, interface: Option<&str>) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let interface = interface.ok_or(ConfigError::Missing {
        at: At::Flag("-i/--interface"),
        hint: "give the interface, e.g. --interface=eth0",
    })?;
    let (base, label) = split_alias(interface);
    let vhid = run.vhid.ok_or(ConfigError::Missing {
        at: At::Flag("-v/--vhid"),
        hint: "give the vhid (1-255)",
    })?;
    let password = match (&run.pass, &run.passfile) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                at: At::Flag("-o/--passfile"),
                other: "-p/--pass".into(),
            });
        }
        (Some(pass), None) => {
            warnings.push(ConfigWarning {
                at: "-p/--pass".into(),
                message:
                    "password given on the command line is visible in ps; prefer -o/--passfile"
                        .into(),
            });
            Password::new(
                pass.clone().into_bytes(),
                PasswordSource::CommandLine,
                &At::Flag("-p/--pass"),
            )?
        }
        (None, Some(file)) => Password::from_file(file.clone(), &At::Flag("-o/--passfile"))?,
        (None, None) => {
            return Err(ConfigError::Missing {
                at: At::Flag("-o/--passfile"),
                hint: "give the password with -o/--passfile (or -p/--pass)",
            });
        }
    };
    let vips = run
        .addr
        .iter()
        .map(|text| {
            Vip::parse(text).ok_or_else(|| ConfigError::Invalid {
                at: At::Flag("-a/--addr"),
                value: text.clone(),
                expected: "an IP address with an optional /prefix length",
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let instance = InstanceConfig {
        interface: base.to_owned(),
        label: label.map(str::to_owned),
        vhid,
        srcip: run.srcip,
        vips,
        advbase_secs: run.advbase.unwrap_or(DEFAULT_ADVBASE_SECS),
        advskew: run.advskew.unwrap_or(0),
        deadratio: run.deadratio.unwrap_or(DEFAULT_DEADRATIO),
        master_down: MasterDownRule::Ucarp,
        preempt: run.preempt,
        neutral: run.neutral,
        shutdown_on_exit: run.shutdown,
        ignore_ifstate: run.ignoreifstate,
        virtual_mac: false,
        password,
        scripts: Scripts {
            upscript: run.upscript.clone(),
            downscript: run.downscript.clone(),
            xparam: run.xparam.clone(),
            ..Scripts::default()
        },
        replay: ReplayMode::default(),
        replay_window_ms: None,
        peers: Vec::new(),
        hmac_link_local: LinkLocalHmac::default(),
        unicast_peers: Vec::new(),
        mcast: run.mcast,
        broadcast_mac: run.nomcast,
        announce: Announce::default(),
        health_checks: Vec::new(),
        sync_group: None,
    };
    // UCARP runs one process per vhid, and init scripts often start several:
    // each gets its own status socket unless --status-socket says otherwise.
    let global = Global {
        status_socket: PathBuf::from(format!("/run/carpd-xdp-{base}-{vhid}.sock")),
        ..Global::default()
    };
    let config = Config {
        global,
        instances: vec![instance],
        sync_groups: Vec::new(),
        warnings,
    };
    check_config(&config, &Flags)?;
    Ok(config)
}

/// Process-wide options given on the command line win over the file.
fn apply_global_options(config: &mut Config, run: &RunArgs) -> Result<(), ConfigError> {
    let global = &mut config.global;
    if let Some(mode) = run.xdp_mode {
        global.xdp_mode = mode;
    }
    if let Some(socket) = &run.status_socket {
        global.status_socket = socket.clone();
    }
    if let Some(metrics) = run.metrics {
        global.metrics = Some(metrics);
    }
    if let Some(format) = run.log_format {
        global.log.format = format;
    }
    if let Some(name) = &run.facility {
        global.log.facility = Facility::parse_option(name).map_err(|_| ConfigError::Invalid {
            at: At::Flag("-f/--facility"),
            value: name.clone(),
            expected: "a syslog facility (daemon, user, local0..local7, ...) or none",
        })?;
    }
    global.log.debug |= run.debug;
    global.daemonize |= run.daemonize;
    if let Some(replay) = run.replay {
        for instance in &mut config.instances {
            instance.replay = replay;
        }
    }
    if let Some(ms) = run.replay_window_ms {
        for instance in &mut config.instances {
            instance.replay_window_ms = Some(ms);
        }
    }
    if let Some(dir) = &run.state_dir {
        config.global.state_dir = dir.clone();
    }
    if let Some(priority) = run.realtime_priority {
        config.global.realtime.priority = priority;
    }
    config.global.realtime.lock_memory |= run.lock_memory;
    config.global.realtime.auto &= !run.no_auto_realtime;
    Ok(())
}
