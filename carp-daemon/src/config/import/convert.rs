//! From the settings of each input to the instances of the model, checked
//! with the daemon's own rules (errors name the input's file and variable),
//! and the TOML text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::super::error::{At, ConfigError};
use super::super::model::*;
use super::super::password::{Password, PasswordSource};
use super::super::starter::quote;
use super::super::validate::{check_config, split_alias, Field, Locate};
use super::settings::{settings_of, Origin, Settings, Val};
use super::{ImportError, Input};

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

/// One instance, with what the TOML needs beyond the model.
struct Imported {
    instance: InstanceConfig,
    /// Where the TOML's `password_file` points.
    password_file: PathBuf,
    /// The secret to write there (None: a PASSFILE, referenced as it is).
    secret: Option<Vec<u8>>,
    /// Where the checked fields came from.
    origins: Origins,
    /// The input it came from.
    source: PathBuf,
    /// Remarks written as comments above the instance.
    notes: Vec<String>,
}

/// Where the fields [`check_config`] may blame were set.
struct Origins {
    interface: Origin,
    vhid: Origin,
    addr: Origin,
    mcast: Option<Origin>,
}

struct Blame<'a>(&'a [Imported]);

impl Locate for Blame<'_> {
    fn at(&self, index: usize, field: Field) -> At {
        let o = &self.0[index].origins;
        match field {
            Field::Interface | Field::Label => o.interface.at(),
            Field::Vhid => o.vhid.at(),
            Field::Vips | Field::Vip(_) | Field::Peer(_) => o.addr.at(),
            Field::Mcast => o.mcast.as_ref().unwrap_or(&o.addr).at(),
        }
    }
}

fn instance(s: &Settings, source: &Path, password_dir: &Path) -> Result<Imported, ImportError> {
    let name = source.display().to_string();
    let missing = |what, hint| ImportError::Missing {
        source_name: name.clone(),
        what,
        hint,
    };
    let interface = s
        .interface
        .clone()
        .ok_or_else(|| missing("the interface", "INTERFACE=eth0 or -i eth0"))?;
    let vhid = s
        .vhid
        .clone()
        .ok_or_else(|| missing("the vhid", "INSTANCE_ID=N or -v N"))?;
    let addr = s.addr.clone().ok_or_else(|| {
        missing(
            "the virtual address",
            "VIRTUAL_ADDRESS=ADDRESS or -a ADDRESS",
        )
    })?;
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
        (None, None) => {
            return Err(missing(
                "the password",
                "PASSWORD=..., PASSFILE=FILE, -p or -o",
            ))
        }
    };
    let on = |v: &Option<Val<bool>>| v.as_ref().is_some_and(|v| v.value);
    let mut notes = Vec::new();
    if let Some(d) = &s.daemonize {
        notes.push(format!(
            "{}: not carried over: carpd-xdp.service runs the \
             daemon in the foreground (Type=notify); set [global] daemonize = true \
             only when an init script starts carpd-xdp",
            d.from
        ));
    }
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
        notes,
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
}

/// Converts the inputs (no I/O): `default` applies under every one of
/// `instances` (or is the one instance when there are none).
pub fn convert(
    default: Option<&Input>,
    instances: &[Input],
    password_dir: &Path,
) -> Result<Conversion, ImportError> {
    let base = default.map(settings_of).transpose()?.unwrap_or_default();
    let mut all = Vec::new();
    let mut sources = Vec::new();
    if instances.is_empty() {
        let default = default.ok_or(ImportError::NoInput)?;
        all.push(base.clone());
        sources.push(default.name.clone());
    }
    for input in instances {
        let mut s = base.clone();
        s.merge(settings_of(input)?);
        all.push(s);
        sources.push(input.name.clone());
    }
    let imported = all
        .iter()
        .zip(&sources)
        .map(|(s, source)| instance(s, source, password_dir))
        .collect::<Result<Vec<_>, _>>()?;
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
    Ok(render(default, &imported, &global))
}

fn render(default: Option<&Input>, imported: &[Imported], global: &str) -> Conversion {
    let mut out = String::new();
    out.push_str("# carpd-xdp configuration written by `carpd-xdp import-ucarp` from:\n");
    for name in default
        .map(|d| &d.name)
        .into_iter()
        .chain(imported.iter().map(|i| &i.source))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let _ = writeln!(out, "#   {}", name.display());
    }
    out.push_str(
        "# Check it with `carpd-xdp check-config FILE`. Unlike UCARP, carpd-xdp adds\n\
         # and removes the VIPs itself (scripts that add them too keep working).\n",
    );
    if !global.is_empty() {
        out.push_str("\n[global]\n");
        out.push_str(global);
    }
    let mut password_files = Vec::new();
    for imp in imported {
        let i = &imp.instance;
        let _ = writeln!(out, "\n# from {}", imp.source.display());
        for note in &imp.notes {
            let _ = writeln!(out, "# note: {note}");
        }
        out.push_str("[[instance]]\n");
        let _ = writeln!(out, "interface = {}", quote(&i.interface));
        if let Some(label) = &i.label {
            let _ = writeln!(out, "label = {}", quote(label));
        }
        let _ = writeln!(out, "vhid = {}", i.vhid);
        if let Some(ip) = i.srcip {
            let _ = writeln!(out, "srcip = {}", quote(&ip.to_string()));
        }
        let vips: Vec<String> = i.vips.iter().map(|v| quote(&v.to_string())).collect();
        let _ = writeln!(out, "vips = [{}]", vips.join(", "));
        let _ = writeln!(out, "advbase_secs = {}", i.advbase_secs);
        let _ = writeln!(out, "advskew = {}", i.advskew);
        let _ = writeln!(out, "deadratio = {}", i.deadratio);
        out.push_str("master_down = \"ucarp\"\n");
        let _ = writeln!(out, "preempt = {}", i.preempt);
        let _ = writeln!(out, "neutral = {}", i.neutral);
        let _ = writeln!(out, "shutdown_on_exit = {}", i.shutdown_on_exit);
        let _ = writeln!(out, "ignore_ifstate = {}", i.ignore_ifstate);
        let _ = writeln!(
            out,
            "password_file = {}",
            quote(&imp.password_file.to_string_lossy())
        );
        if let Some(secret) = &imp.secret {
            password_files.push((imp.password_file.clone(), secret.clone()));
        }
        for (key, path) in [
            ("upscript", &i.scripts.upscript),
            ("downscript", &i.scripts.downscript),
        ] {
            if let Some(path) = path {
                let _ = writeln!(out, "{key} = {}", quote(&path.to_string_lossy()));
            }
        }
        if let Some(x) = &i.scripts.xparam {
            let _ = writeln!(out, "xparam = {}", quote(x));
        }
        if i.replay != ReplayMode::default() {
            let _ = writeln!(out, "replay = {}", quote(i.replay.name()));
        }
        if let Some(ms) = i.replay_window_ms {
            let _ = writeln!(out, "replay_window_ms = {ms}");
        }
        if let Some(mcast) = i.mcast {
            let _ = writeln!(out, "mcast = {}", quote(&mcast.to_string()));
        }
        let _ = writeln!(out, "broadcast_mac = {}", i.broadcast_mac);
    }
    Conversion {
        toml: out,
        password_files,
    }
}
