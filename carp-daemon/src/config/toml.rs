//! The TOML configuration file: its schema (unknown keys rejected) and the
//! conversion into [`Config`] with every error located at `file:line: field`.
//! See `dist/carpd-xdp.toml` for a documented example.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::{At, ConfigError};
use super::facility::Facility;
use super::host;
use super::keys::{self, Section};
use super::locate::{line_of, syntax_error};
use super::model::*;
use super::password::{Password, PasswordSource};
use super::raw::{RawFile, RawGlobal, RawHealthCheck, RawInstance, S};
use super::validate::{check_config, check_sync_groups, split_alias, Field, Locate};

#[path = "toml_groups.rs"]
mod groups;
use groups::{convert_sync_group, GroupSpans};

/// Where each checked field of one instance was written (byte offsets).
struct InstanceSpans {
    table: usize,
    interface: usize,
    label: Option<usize>,
    vhid: usize,
    vips: usize,
    vip: Vec<usize>,
    peers: Vec<usize>,
    mcast: Option<usize>,
    sync_group: Option<usize>,
}

/// The file being converted: its path and text, for locating errors.
struct Ctx<'a> {
    path: &'a Path,
    src: &'a str,
    /// The directory relative paths in the file are relative to.
    base: &'a Path,
    /// Whether to warn about what is missing on this host (`check-config`).
    host_checks: bool,
}

impl super::schema::Place for Ctx<'_> {
    fn src(&self) -> &str {
        self.src
    }

    fn at(&self, offset: usize, field: String) -> At {
        Ctx::at(self, offset, field)
    }
}

impl Ctx<'_> {
    /// `path` as written, made relative to the file's directory.
    fn path(&self, path: PathBuf) -> PathBuf {
        if path.is_relative() {
            self.base.join(path)
        } else {
            path
        }
    }

    fn at(&self, offset: usize, field: String) -> At {
        At::File {
            path: self.path.to_owned(),
            line: line_of(self.src, offset),
            field,
        }
    }

    /// An integer in the range [`keys::KEYS`] gives key `name` of `section`.
    fn int<T: TryFrom<i64>>(
        &self,
        value: &S<i64>,
        field: String,
        section: Section,
        name: &str,
    ) -> Result<T, ConfigError> {
        let kind = keys::get(section, name).kind;
        let keys::Kind::Integer { min, max, .. } = kind else {
            unreachable!("{name} is an integer key");
        };
        let v = *value.get_ref();
        match T::try_from(v) {
            Ok(out) if (min..=max).contains(&v) => Ok(out),
            _ => Err(ConfigError::OutOfRange {
                at: self.at(value.span().start, field),
                value: v,
                range: kind.range().unwrap_or_default(),
            }),
        }
    }

    fn ip(&self, value: &S<String>, field: String) -> Result<IpAddr, ConfigError> {
        value.get_ref().parse().map_err(|_| ConfigError::Invalid {
            at: self.at(value.span().start, field),
            value: value.get_ref().clone(),
            expected: "an IP address",
        })
    }
}

impl Locate for (&Ctx<'_>, &[InstanceSpans]) {
    fn at(&self, index: usize, field: Field) -> At {
        let (ctx, spans) = *self;
        let s = &spans[index];
        let name = |key: &str| format!("instance[{index}].{key}");
        let (offset, field) = match field {
            Field::Interface => (s.interface, name("interface")),
            Field::Label => (
                s.label.unwrap_or(s.interface),
                name(if s.label.is_some() {
                    "label"
                } else {
                    "interface"
                }),
            ),
            Field::Vhid => (s.vhid, name("vhid")),
            Field::Vips => (s.vips, name("vips")),
            Field::Vip(i) => (
                s.vip.get(i).copied().unwrap_or(s.vips),
                name(&format!("vips[{i}]")),
            ),
            Field::Peer(i) => (
                s.peers.get(i).copied().unwrap_or(s.table),
                name(&format!("unicast_peers[{i}]")),
            ),
            Field::Mcast => (s.mcast.unwrap_or(s.table), name("mcast")),
        };
        ctx.at(offset, field)
    }
}

/// How a file is read.
pub struct Options<'a> {
    /// The directory relative paths in the file are relative to.
    pub base: &'a Path,
    /// Add warnings about what is missing on this host (an interface,
    /// scripts, health-check programs), as `check-config` does.
    pub host_checks: bool,
}

/// Parses and validates the text of a configuration file. `path` is only
/// used in messages and warnings; `env` looks up `password_env` variables.
pub fn parse_str(
    src: &str,
    path: &Path,
    options: &Options<'_>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        path,
        src,
        base: options.base,
        host_checks: options.host_checks,
    };
    let at = |offset: usize, field: String| ctx.at(offset, field);
    let doc = toml::de::DeTable::parse(src).map_err(|err| syntax_error(src, &at, &err))?;
    super::schema::check(&ctx, &doc)?;
    let raw: RawFile = toml::from_str(src).map_err(|err| syntax_error(src, &at, &err))?;
    if raw.instance.is_empty() {
        return Err(ConfigError::Missing {
            at: ctx.at(src.len(), "instance".into()),
            hint: "define at least one [[instance]]",
        });
    }
    let mut warnings = Vec::new();
    let global = convert_global(&ctx, raw.global)?;
    let mut instances = Vec::new();
    let mut spans = Vec::new();
    for (index, raw) in raw.instance.into_iter().enumerate() {
        let (inst, inst_spans) = convert_instance(&ctx, index, raw, env, &mut warnings)?;
        instances.push(inst);
        spans.push(inst_spans);
    }
    let mut sync_groups = Vec::new();
    let mut names = Vec::new();
    for (index, raw) in raw.sync_group.iter().enumerate() {
        sync_groups.push(convert_sync_group(&ctx, index, raw, &mut warnings));
        names.push(raw.get_ref().name.span().start);
    }
    let config = Config {
        global,
        instances,
        sync_groups,
        warnings,
    };
    check_config(&config, &(&ctx, spans.as_slice()))?;
    let groups = GroupSpans {
        ctx: &ctx,
        members: &spans,
        names,
    };
    check_sync_groups(&config, &groups)?;
    Ok(config)
}

fn convert_global(ctx: &Ctx<'_>, raw: Option<RawGlobal>) -> Result<Global, ConfigError> {
    let mut global = Global::default();
    let Some(raw) = raw else { return Ok(global) };
    global.xdp_mode = raw.xdp_mode.unwrap_or_default();
    if let Some(rate) = raw.rate_limit {
        if let Some(v) = &rate.rate {
            global.rate_limit.rate = ctx.int(
                v,
                "global.rate_limit.rate".into(),
                Section::RateLimit,
                "rate",
            )?;
        }
        if let Some(v) = &rate.burst {
            global.rate_limit.burst = ctx.int(
                v,
                "global.rate_limit.burst".into(),
                Section::RateLimit,
                "burst",
            )?;
        }
    }
    if let Some(socket) = raw.status_socket {
        global.status_socket = ctx.path(socket);
    }
    if let Some(metrics) = raw.metrics {
        let addr: SocketAddr = metrics
            .get_ref()
            .parse()
            .map_err(|_| ConfigError::Invalid {
                at: ctx.at(metrics.span().start, "global.metrics".into()),
                value: metrics.get_ref().clone(),
                expected: "an ADDRESS:PORT to listen on",
            })?;
        global.metrics = Some(addr);
    }
    if let Some(facility) = raw.log_facility {
        global.log.facility =
            Facility::parse_option(facility.get_ref()).map_err(|_| ConfigError::Invalid {
                at: ctx.at(facility.span().start, "global.log_facility".into()),
                value: facility.get_ref().clone(),
                expected: "a syslog facility (daemon, user, local0..local7, ...) or none",
            })?;
    }
    global.log.format = raw.log_format.unwrap_or_default();
    global.log.debug = raw.debug.unwrap_or(false);
    global.daemonize = raw.daemonize.unwrap_or(false);
    if let Some(dir) = raw.state_dir {
        global.state_dir = ctx.path(dir);
    }
    if let Some(v) = &raw.realtime_priority {
        global.realtime.priority = ctx.int(
            v,
            "global.realtime_priority".into(),
            Section::Global,
            "realtime_priority",
        )?;
    }
    global.realtime.lock_memory = raw.lock_memory.unwrap_or(false);
    global.realtime.auto = raw.auto_realtime.unwrap_or(true);
    Ok(global)
}

fn convert_instance(
    ctx: &Ctx<'_>,
    index: usize,
    raw: S<RawInstance>,
    env: &dyn Fn(&str) -> Option<OsString>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(InstanceConfig, InstanceSpans), ConfigError> {
    let table: Range<usize> = raw.span();
    const I: Section = Section::Instance;
    let raw = raw.into_inner();
    let f = |key: &str| format!("instance[{index}].{key}");
    let at = |offset: usize, key: &str| ctx.at(offset, f(key));

    // UCARP's alias form `eth0:carp0` is accepted here too.
    let (interface, alias) = split_alias(raw.interface.get_ref());
    let label = match (&raw.label, alias) {
        (Some(label), None) => Some(label.get_ref().clone()),
        (None, alias) => alias.map(str::to_owned),
        (Some(label), Some(_)) => {
            return Err(ConfigError::Conflict {
                at: at(label.span().start, "label"),
                other: format!("the alias in interface {:?}", raw.interface.get_ref()),
            });
        }
    };
    if ctx.host_checks {
        host::check_interface(
            interface,
            &at(raw.interface.span().start, "interface"),
            warnings,
        );
    }
    let mut vips = Vec::new();
    for (i, text) in raw.vips.get_ref().iter().enumerate() {
        if text.get_ref() == super::starter::PLACEHOLDER_VIP {
            return Err(ConfigError::Placeholder {
                at: at(text.span().start, &format!("vips[{i}]")),
                value: text.get_ref().clone(),
                hint: "put the shared address here, e.g. \"192.0.2.10/24\"",
            });
        }
        vips.push(
            Vip::parse(text.get_ref()).ok_or_else(|| ConfigError::Invalid {
                at: at(text.span().start, &format!("vips[{i}]")),
                value: text.get_ref().clone(),
                expected: "an IP address with an optional /prefix length",
            })?,
        );
    }
    let mut unicast_peers = Vec::new();
    for (i, peer) in raw.unicast_peers.iter().enumerate() {
        unicast_peers.push(ctx.ip(peer, f(&format!("unicast_peers[{i}]")))?);
    }
    let peers = match &raw.peers {
        None => unicast_peers
            .iter()
            .map(|&addr| AllowedPeer { addr, mac: None })
            .collect(),
        Some(list) => {
            let mut peers = Vec::new();
            for (i, p) in list.iter().enumerate() {
                peers.push(p.get_ref().parse::<AllowedPeer>().map_err(|_| {
                    ConfigError::Invalid {
                        at: ctx.at(p.span().start, f(&format!("peers[{i}]"))),
                        value: p.get_ref().clone(),
                        expected: "an IP address, optionally followed by @ and a MAC address (192.0.2.2@02:00:00:00:00:02)",
                    }
                })?);
            }
            peers
        }
    };
    let srcip = raw
        .srcip
        .as_ref()
        .map(|v| ctx.ip(v, f("srcip")))
        .transpose()?;
    let mcast = raw
        .mcast
        .as_ref()
        .map(|v| ctx.ip(v, f("mcast")))
        .transpose()?;
    let password = convert_password(ctx, index, table.start, &raw, env, warnings)?;

    let mut scripts = Scripts {
        upscript: raw.upscript.as_ref().map(|p| ctx.path(p.get_ref().clone())),
        downscript: raw
            .downscript
            .as_ref()
            .map(|p| ctx.path(p.get_ref().clone())),
        xparam: raw.xparam,
        ..Scripts::default()
    };
    if ctx.host_checks {
        for (name, raw, path) in [
            ("upscript", &raw.upscript, &scripts.upscript),
            ("downscript", &raw.downscript, &scripts.downscript),
        ] {
            if let (Some(raw), Some(path)) = (raw, path) {
                host::check_script(path, &at(raw.span().start, name), warnings);
            }
        }
    }
    if let Some(v) = &raw.script_timeout_secs {
        scripts.timeout_secs = ctx.int(v, f("script_timeout_secs"), I, "script_timeout_secs")?;
    }
    let mut announce = Announce::default();
    if let Some(raw_announce) = &raw.announce {
        if let Some(v) = &raw_announce.count {
            announce.count = ctx.int(v, f("announce.count"), Section::Announce, "count")?;
        }
        if let Some(v) = &raw_announce.interval_ms {
            announce.interval_ms = ctx.int(
                v,
                f("announce.interval_ms"),
                Section::Announce,
                "interval_ms",
            )?;
        }
    }
    let replay_window_ms = raw
        .replay_window_ms
        .as_ref()
        .map(|v| ctx.int(v, f("replay_window_ms"), I, "replay_window_ms"))
        .transpose()?;
    let hmac_link_local = match &raw.hmac_link_local {
        None => LinkLocalHmac::default(),
        Some(v) => v.get_ref().parse().map_err(|_| ConfigError::Invalid {
            at: ctx.at(v.span().start, f("hmac_link_local")),
            value: v.get_ref().clone(),
            expected: "\"include\" or \"exclude\"",
        })?,
    };
    let mut health_checks = Vec::new();
    for (i, check) in raw.health_check.iter().enumerate() {
        health_checks.push(convert_health_check(
            ctx,
            &f(&format!("health_check[{i}]")),
            check,
            warnings,
        )?);
    }

    let inst = InstanceConfig {
        interface: interface.to_owned(),
        label,
        vhid: ctx.int(&raw.vhid, f("vhid"), I, "vhid")?,
        srcip,
        vips,
        advbase_secs: match &raw.advbase_secs {
            Some(v) => ctx.int(v, f("advbase_secs"), I, "advbase_secs")?,
            None => DEFAULT_ADVBASE_SECS,
        },
        advskew: match &raw.advskew {
            Some(v) => ctx.int(v, f("advskew"), I, "advskew")?,
            None => 0,
        },
        deadratio: match &raw.deadratio {
            Some(v) => ctx.int(v, f("deadratio"), I, "deadratio")?,
            None => DEFAULT_DEADRATIO,
        },
        master_down: raw.master_down.unwrap_or_default(),
        preempt: raw.preempt.unwrap_or(false),
        neutral: raw.neutral.unwrap_or(false),
        shutdown_on_exit: raw.shutdown_on_exit.unwrap_or(false),
        ignore_ifstate: raw.ignore_ifstate.unwrap_or(false),
        virtual_mac: raw.virtual_mac.unwrap_or(false),
        password,
        scripts,
        replay: raw.replay.unwrap_or_default(),
        replay_window_ms,
        hmac_link_local,
        unicast_peers,
        peers,
        mcast,
        broadcast_mac: raw.broadcast_mac.unwrap_or(false),
        announce,
        health_checks,
        sync_group: raw.sync_group.as_ref().map(|g| g.get_ref().clone()),
    };
    let spans = InstanceSpans {
        table: table.start,
        interface: raw.interface.span().start,
        label: raw.label.as_ref().map(|l| l.span().start),
        vhid: raw.vhid.span().start,
        vips: raw.vips.span().start,
        vip: raw.vips.get_ref().iter().map(|v| v.span().start).collect(),
        peers: raw.unicast_peers.iter().map(|v| v.span().start).collect(),
        mcast: raw.mcast.as_ref().map(|v| v.span().start),
        sync_group: raw.sync_group.as_ref().map(|v| v.span().start),
    };
    Ok((inst, spans))
}

/// Exactly one of `password_file`, `password_env`, `password`.
fn convert_password(
    ctx: &Ctx<'_>,
    index: usize,
    table: usize,
    raw: &RawInstance,
    env: &dyn Fn(&str) -> Option<OsString>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Password, ConfigError> {
    let f = |key: &str| format!("instance[{index}].{key}");
    let mut given: Vec<(&str, usize)> = [
        raw.password_file
            .as_ref()
            .map(|v| ("password_file", v.span().start)),
        raw.password_env
            .as_ref()
            .map(|v| ("password_env", v.span().start)),
        raw.password.as_ref().map(|v| ("password", v.span().start)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Blame the one written last.
    given.sort_by_key(|(_, offset)| *offset);
    if let [(first, _), (second, offset), ..] = given.as_slice() {
        return Err(ConfigError::Conflict {
            at: ctx.at(*offset, f(second)),
            other: f(first),
        });
    }
    if let Some(file) = &raw.password_file {
        return Password::from_file(
            ctx.path(file.get_ref().clone()),
            &ctx.at(file.span().start, f("password_file")),
        );
    }
    if let Some(var) = &raw.password_env {
        return Password::from_env(
            var.get_ref(),
            env,
            &ctx.at(var.span().start, f("password_env")),
        );
    }
    if let Some(inline) = &raw.password {
        let at = ctx.at(inline.span().start, f("password"));
        warnings.push(ConfigWarning {
            at: at.to_string(),
            message: "password written in the config file; prefer password_file or password_env"
                .into(),
        });
        return Password::new(
            inline.get_ref().clone().into_bytes(),
            PasswordSource::Inline,
            &at,
        );
    }
    Err(ConfigError::Missing {
        at: ctx.at(table, f("password_file")),
        hint: "set password_file, password_env or password",
    })
}

fn convert_health_check(
    ctx: &Ctx<'_>,
    prefix: &str,
    raw: &S<RawHealthCheck>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<HealthCheck, ConfigError> {
    const H: Section = Section::HealthCheck;
    let check = raw.get_ref();
    let f = |key: &str| format!("{prefix}.{key}");
    let mut command = check.command.get_ref().clone();
    if command.first().is_none_or(|program| program.is_empty()) {
        return Err(ConfigError::Missing {
            at: ctx.at(check.command.span().start, f("command")),
            hint: "give the program and its arguments as a list of strings",
        });
    }
    // A program given by a relative path is relative to the file; a bare
    // name is looked up in PATH when it runs.
    if command[0].contains('/') {
        command[0] = ctx
            .path(PathBuf::from(&command[0]))
            .to_string_lossy()
            .into_owned();
    }
    if ctx.host_checks {
        host::check_program(
            &command[0],
            &ctx.at(check.command.span().start, f("command")),
            warnings,
        );
    }
    Ok(HealthCheck {
        command,
        interval_secs: ctx.int(&check.interval_secs, f("interval_secs"), H, "interval_secs")?,
        timeout_secs: ctx.int(&check.timeout_secs, f("timeout_secs"), H, "timeout_secs")?,
        weight: ctx.int(&check.weight, f("weight"), H, "weight")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp::mode::XdpMode;

    #[test]
    fn name_lists_are_the_cores() {
        use clap::ValueEnum;
        let replay: Vec<_> = ReplayMode::ALL.map(ReplayMode::name).into();
        assert_eq!(replay, keys::REPLAY_MODES);
        let master_down: Vec<_> = MasterDownRule::ALL.map(MasterDownRule::name).into();
        assert_eq!(master_down, keys::MASTER_DOWN_RULES);
        let xdp: Vec<_> = XdpMode::value_variants().iter().map(|m| m.name()).collect();
        assert_eq!(xdp, keys::XDP_MODES);
        let formats: Vec<_> = LogFormat::value_variants()
            .iter()
            .map(|f| f.name())
            .collect();
        assert_eq!(formats, keys::LOG_FORMATS);
        for name in keys::LINK_LOCAL_FORMS {
            assert_eq!(name.parse::<LinkLocalHmac>().unwrap().name(), *name);
        }
    }
}
