//! From the settings of each input to the instances of the model, checked
//! with the daemon's own rules (errors name the input's file and variable),
//! and the TOML text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::super::error::{At, ConfigError};
use super::super::model::*;
use super::super::password::{Password, PasswordSource};
use super::super::starter::quote;
use super::super::validate::{check_config, split_alias};
use super::imported::{Blame, Imported, Origins};
use super::layout::settings_of;
use super::redhat;
use super::render::render;
use super::settings::{Note, Settings, Val};
use super::{Body, ImportError, Input};

/// A netmask as a prefix length: `24`, `/24` or `255.255.255.0` (IPv4).
fn prefix_len(mask: &str, ipv4: bool) -> Option<u8> {
    let max = if ipv4 { 32 } else { 128 };
    let digits = mask.strip_prefix('/').unwrap_or(mask);
    if let Ok(n) = digits.parse::<u8>() {
        return (n <= max).then_some(n);
    }
    let bits = u32::from(mask.parse::<std::net::Ipv4Addr>().ok().filter(|_| ipv4)?);
    // Contiguous ones from the top: the inverted mask plus one is a power of two.
    (bits.leading_ones() + bits.trailing_zeros() == 32 || bits == 0)
        .then(|| u8::try_from(bits.leading_ones()).unwrap_or(32))
}

/// Which layout an input is in: what to suggest when a setting is missing,
/// and which scripts are the package's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Wiki,
    RedHat,
    Debian,
    CommandLine,
}

impl Kind {
    fn of(body: &Body) -> Kind {
        match body {
            Body::Shell(_) => Kind::Wiki,
            Body::RedHat(_) => Kind::RedHat,
            Body::Interfaces(_) => Kind::Debian,
            Body::Args(_) => Kind::CommandLine,
        }
    }

    /// How to set the interface, vhid, VIP and password in this layout.
    fn hints(self) -> [&'static str; 4] {
        match self {
            Kind::Wiki => [
                "INTERFACE=eth0 or -i eth0",
                "INSTANCE_ID=N or -v N",
                "VIRTUAL_ADDRESS=ADDRESS or -a ADDRESS",
                "PASSWORD=..., PASSFILE=FILE, -p or -o",
            ],
            Kind::RedHat => [
                "BIND_INTERFACE=eth0",
                "ID=N, or a vip-N.conf file name",
                "VIP_ADDRESS=ADDRESS",
                "PASSWORD=... or PASSFILE=FILE",
            ],
            Kind::Debian | Kind::CommandLine => {
                ["-i eth0", "-v N", "-a ADDRESS", "-p PASSWORD or -o FILE"]
            }
        }
    }
}

fn instance(
    s: &Settings,
    source: &str,
    kind: Kind,
    password_dir: &Path,
) -> Result<Imported, ImportError> {
    let [if_hint, vhid_hint, addr_hint, pass_hint] = kind.hints();
    let missing = |what, hint| ImportError::Missing {
        source_name: source.to_owned(),
        what,
        hint,
    };
    let interface = s
        .interface
        .clone()
        .ok_or_else(|| missing("the interface", if_hint))?;
    let vhid = s
        .vhid
        .clone()
        .ok_or_else(|| missing("the vhid", vhid_hint))?;
    let addr = s
        .addr
        .clone()
        .ok_or_else(|| missing("the virtual address", addr_hint))?;
    let (base, label) = split_alias(&interface.value);
    let mut vips = Vec::new();
    for text in &addr.value {
        let invalid = || -> ImportError {
            ConfigError::Invalid {
                at: addr.from.at(),
                value: text.clone(),
                expected: "an IP address with an optional /prefix length",
            }
            .into()
        };
        let mut vip = Vip::parse(text).ok_or_else(invalid)?;
        if let Some(mask) = &s.netmask {
            if text.contains('/') {
                return Err(ConfigError::Conflict {
                    at: mask.from.at(),
                    other: format!("the prefix length in {} ({text})", addr.from),
                }
                .into());
            }
            vip.prefix_len = prefix_len(&mask.value, vip.addr.is_ipv4()).ok_or_else(|| {
                ImportError::Netmask {
                    at: mask.from.to_string(),
                    value: mask.value.clone(),
                }
            })?;
        }
        vips.push(vip);
    }
    let (password, password_file, secret) = match (&s.pass, &s.passfile) {
        (Some(pass), None) => {
            let password = Password::new(
                pass.value.clone().into_bytes(),
                PasswordSource::Inline,
                &pass.from.at(),
            )?;
            let file = password_dir.join(format!("{base}-vhid{}.pass", vhid.value));
            (password, file, Some(pass.value.clone().into_bytes()))
        }
        (None, Some(file)) => {
            // Read by the final load, on the host the file is for; a stand-in
            // secret lets the other rules be checked here.
            let stand_in = Password::new(
                b"x".to_vec(),
                PasswordSource::File(file.value.clone()),
                &file.from.at(),
            )?;
            (stand_in, file.value.clone(), None)
        }
        (Some(pass), Some(file)) => {
            return Err(ConfigError::Conflict {
                at: file.from.at(),
                other: pass.from.to_string(),
            }
            .into())
        }
        (None, None) => return Err(missing("the password", pass_hint)),
    };
    let on = |v: &Option<Val<bool>>| v.as_ref().is_some_and(|v| v.value);
    let instance = InstanceConfig {
        interface: base.to_owned(),
        label: label.map(str::to_owned),
        vhid: vhid.value,
        srcip: s.srcip.as_ref().map(|v| v.value),
        vips,
        advbase_secs: s.advbase.as_ref().map_or(DEFAULT_ADVBASE_SECS, |v| v.value),
        advskew: s.advskew.as_ref().map_or(0, |v| v.value),
        deadratio: s.deadratio.as_ref().map_or(DEFAULT_DEADRATIO, |v| v.value),
        master_down: MasterDownRule::Ucarp,
        preempt: on(&s.preempt),
        neutral: on(&s.neutral),
        shutdown_on_exit: on(&s.shutdown),
        ignore_ifstate: on(&s.ignoreifstate),
        virtual_mac: false,
        password,
        scripts: Scripts {
            upscript: s.upscript.as_ref().map(|v| v.value.clone()),
            downscript: s.downscript.as_ref().map(|v| v.value.clone()),
            xparam: s.xparam.as_ref().map(|v| v.value.clone()),
            ..Scripts::default()
        },
        replay: s
            .replay
            .as_ref()
            .map_or_else(ReplayMode::default, |v| v.value),
        replay_window_ms: s.replay_window_ms.as_ref().map(|v| v.value),
        hmac_link_local: LinkLocalHmac::default(),
        unicast_peers: Vec::new(),
        peers: Vec::new(),
        mcast: s.mcast.as_ref().map(|v| v.value),
        broadcast_mac: on(&s.nomcast),
        announce: Announce::default(),
        health_checks: Vec::new(),
        sync_group: None,
    };
    Ok(Imported {
        instance,
        password_file,
        secret,
        origins: Origins {
            interface: interface.from,
            vhid: vhid.from,
            addr: addr.from,
            mcast: s.mcast.as_ref().map(|v| v.from.clone()),
        },
        source: source.to_owned(),
    })
}

/// A process-wide setting, the same in every input that sets it.
fn agree<T: Clone + PartialEq>(
    settings: &[Settings],
    get: impl Fn(&Settings) -> &Option<Val<T>>,
    name: &'static str,
) -> Result<Option<T>, ImportError> {
    let mut first: Option<&Val<T>> = None;
    for s in settings {
        if let Some(v) = get(s) {
            match first {
                Some(f) if f.value != v.value => {
                    return Err(ImportError::GlobalConflict {
                        at: v.from.to_string(),
                        setting: name,
                        first: f.from.to_string(),
                    })
                }
                Some(_) => {}
                None => first = Some(v),
            }
        }
    }
    Ok(first.map(|v| v.value.clone()))
}

/// The result of [`convert`]: the TOML text and the password files to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// The configuration file.
    pub toml: String,
    /// (path, first line) of each password file, in instance order.
    pub password_files: Vec<(PathBuf, Vec<u8>)>,
    /// The same configuration with the passwords of `password_files`
    /// inline, for the loader's check before anything is written.
    pub check_toml: String,
    /// The password files the configuration references as they are
    /// (PASSFILE), read by the loader's check.
    pub passfiles: Vec<PathBuf>,
}

/// Drops the package's own up and down scripts, which only add and remove
/// the VIP (as a /32, Red Hat's), as carpd-xdp does itself; noted once.
fn drop_package_scripts(s: &mut Settings, notes: &mut Vec<Note>) {
    let [up, down] = redhat::DEFAULT_SCRIPTS;
    let is_default = |v: &Option<Val<PathBuf>>, default: &str| {
        v.as_ref().is_none_or(|v| v.value == Path::new(default))
    };
    if is_default(&s.upscript, up) && is_default(&s.downscript, down) {
        let at = s.upscript.as_ref().map_or_else(
            || "/usr/libexec/ucarp/ucarp".to_owned(),
            |v| v.from.to_string(),
        );
        s.upscript = None;
        s.downscript = None;
        notes.push(Note {
            subject: up.to_owned(),
            at,
            text: format!(
                "the package's {up} and {down} added and removed the VIP; carpd-xdp does that \
                 itself (if you changed them to do more, copy them elsewhere and set upscript \
                 and downscript)"
            ),
        });
    }
}

/// `<password>` and the like, as in documentation.
fn is_placeholder(password: &str) -> bool {
    password.len() > 2 && password.starts_with('<') && password.ends_with('>')
}

/// Converts the inputs (no I/O): `default` applies under every one of
/// `instances` (or is the one instance when there are none).
pub fn convert(
    default: Option<&Input>,
    instances: &[Input],
    password_dir: &Path,
) -> Result<Conversion, ImportError> {
    let mut notes = Vec::new();
    let mut base = match default {
        Some(d) => {
            let mut described = settings_of(d)?;
            if described.len() != 1 {
                return Err(ImportError::Unsupported {
                    at: d.name.display().to_string(),
                    setting: "--default".into(),
                    why: "not a defaults file (give an interfaces file as an input)",
                });
            }
            described.remove(0).0
        }
        None => Settings::default(),
    };
    notes.append(&mut base.notes);
    let mut all = Vec::new();
    if instances.is_empty() {
        let default = default.ok_or(ImportError::NoInput)?;
        all.push((
            base.clone(),
            default.name.display().to_string(),
            Kind::of(&default.body),
        ));
    }
    for input in instances {
        for (mut own, source) in settings_of(input)? {
            notes.append(&mut own.notes);
            let mut s = base.clone();
            s.merge_over(own);
            all.push((s, source, Kind::of(&input.body)));
        }
    }
    if all.is_empty() {
        let names: Vec<String> = instances
            .iter()
            .map(|i| i.name.display().to_string())
            .collect();
        return Err(ImportError::NoInstance {
            names: names.join(", "),
        });
    }
    for (s, _, kind) in &mut all {
        if *kind == Kind::RedHat {
            drop_package_scripts(s, &mut notes);
        }
        if let Some(p) = s.pass.as_ref().filter(|p| is_placeholder(&p.value)) {
            // The wiki's `PASSWORD=<password>`: which the shell would not
            // even source (`<` and `>` are redirections there).
            notes.push(Note {
                subject: "placeholder".into(),
                at: p.from.to_string(),
                text: "the password looks like a placeholder (<...>): put the real one into \
                       the password_file before starting carpd-xdp"
                    .into(),
            });
        }
        if let Some(d) = &s.daemonize {
            notes.push(Note {
                subject: "-B".into(),
                at: d.from.to_string(),
                text: "-B is not carried over: carpd-xdp.service runs the daemon in the \
                       foreground (Type=notify); set [global] daemonize = true only when an init \
                       script starts carpd-xdp"
                    .into(),
            });
        }
    }
    let imported = all
        .iter()
        .map(|(s, source, kind)| instance(s, source, *kind, password_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let all: Vec<Settings> = all.into_iter().map(|(s, _, _)| s).collect();
    let config = Config {
        global: Global::default(),
        instances: imported.iter().map(|i| i.instance.clone()).collect(),
        sync_groups: Vec::new(),
        warnings: Vec::new(),
    };
    check_config(&config, &Blame(&imported))?;
    let mut global = String::new();
    if let Some(facility) = agree(&all, |s| &s.facility, "-f/--facility")? {
        let parsed = super::super::Facility::parse_option(&facility).map_err(|_| {
            let from = all
                .iter()
                .find_map(|s| s.facility.as_ref())
                .map(|v| v.from.at())
                .unwrap_or(At::Flag("-f/--facility"));
            ConfigError::Invalid {
                at: from,
                value: facility.clone(),
                expected: "a syslog facility (daemon, user, local0..local7, ...) or none",
            }
        })?;
        let name = parsed.map_or_else(|| "none".to_owned(), |f| f.to_string());
        let _ = writeln!(global, "log_facility = {}", quote(&name));
    }
    if all.iter().any(|s| s.debug.is_some()) {
        global.push_str("debug = true\n");
    }
    if let Some(mode) = agree(&all, |s| &s.xdp_mode, "--xdp-mode")? {
        let _ = writeln!(global, "xdp_mode = {}", quote(mode.name()));
    }
    if let Some(path) = agree(&all, |s| &s.state_dir, "--state-dir")? {
        let _ = writeln!(global, "state_dir = {}", quote(&path.to_string_lossy()));
    }
    if let Some(path) = agree(&all, |s| &s.status_socket, "--status-socket")? {
        let _ = writeln!(global, "status_socket = {}", quote(&path.to_string_lossy()));
    }
    if let Some(addr) = agree(&all, |s| &s.metrics, "--metrics")? {
        let _ = writeln!(global, "metrics = {}", quote(&addr.to_string()));
    }
    if let Some(format) = agree(&all, |s| &s.log_format, "--log-format")? {
        let _ = writeln!(global, "log_format = {}", quote(format.name()));
    }
    let toml = render(default, &imported, &global, &notes, false);
    let check_toml = render(default, &imported, &global, &notes, true);
    Ok(Conversion {
        toml,
        check_toml,
        password_files: imported
            .iter()
            .filter_map(|i| Some((i.password_file.clone(), i.secret.clone()?)))
            .collect(),
        passfiles: imported
            .iter()
            .filter(|i| i.secret.is_none())
            .map(|i| i.password_file.clone())
            .collect(),
    })
}
