//! The schema of the configuration file as serde reads it, every value with
//! its place (`Spanned`) so that errors can name the line. Unknown keys and
//! types were checked before (`schema.rs`, against `keys.rs`); the
//! `deny_unknown_fields` here keep the two in step (a key of the table that
//! these structs lack fails the test that every documented key parses).

use std::path::PathBuf;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::keys;
use super::model::{LogFormat, MasterDownRule, ReplayMode};
use crate::xdp::mode::XdpMode;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) global: Option<RawGlobal>,
    #[serde(default)]
    pub(super) instance: Vec<S<RawInstance>>,
    #[serde(default)]
    pub(super) sync_group: Vec<S<RawSyncGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyncGroup {
    pub(super) name: S<String>,
    pub(super) upscript: Option<S<PathBuf>>,
    pub(super) downscript: Option<S<PathBuf>>,
    pub(super) conntrackd_config: Option<S<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    pub(super) xdp_mode: Option<XdpMode>,
    pub(super) rate_limit: Option<RawRateLimit>,
    pub(super) status_socket: Option<PathBuf>,
    pub(super) metrics: Option<S<String>>,
    pub(super) log_facility: Option<S<String>>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) debug: Option<bool>,
    pub(super) daemonize: Option<bool>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) realtime_priority: Option<S<i64>>,
    pub(super) lock_memory: Option<bool>,
    pub(super) auto_realtime: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) rate: Option<S<i64>>,
    pub(super) burst: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub(super) interface: S<String>,
    pub(super) label: Option<S<String>>,
    pub(super) vhid: S<i64>,
    pub(super) srcip: Option<S<String>>,
    pub(super) vips: S<Vec<S<String>>>,
    pub(super) advbase_secs: Option<S<i64>>,
    pub(super) advskew: Option<S<i64>>,
    pub(super) deadratio: Option<S<i64>>,
    #[serde(default, deserialize_with = "master_down_rule")]
    pub(super) master_down: Option<MasterDownRule>,
    pub(super) preempt: Option<bool>,
    pub(super) neutral: Option<bool>,
    pub(super) shutdown_on_exit: Option<bool>,
    pub(super) ignore_ifstate: Option<bool>,
    pub(super) virtual_mac: Option<bool>,
    pub(super) password: Option<S<String>>,
    pub(super) password_file: Option<S<PathBuf>>,
    pub(super) password_env: Option<S<String>>,
    pub(super) upscript: Option<S<PathBuf>>,
    pub(super) downscript: Option<S<PathBuf>>,
    pub(super) xparam: Option<String>,
    pub(super) script_timeout_secs: Option<S<i64>>,
    #[serde(default, deserialize_with = "replay_mode")]
    pub(super) replay: Option<ReplayMode>,
    pub(super) replay_window_ms: Option<S<i64>>,
    pub(super) hmac_link_local: Option<S<String>>,
    #[serde(default)]
    pub(super) unicast_peers: Vec<S<String>>,
    pub(super) peers: Option<Vec<S<String>>>,
    pub(super) mcast: Option<S<String>>,
    pub(super) broadcast_mac: Option<bool>,
    pub(super) announce: Option<RawAnnounce>,
    #[serde(default)]
    pub(super) health_check: Vec<S<RawHealthCheck>>,
    pub(super) sync_group: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    pub(super) count: Option<S<i64>>,
    pub(super) interval_ms: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    pub(super) command: S<Vec<String>>,
    pub(super) interval_secs: S<i64>,
    pub(super) timeout_secs: S<i64>,
    pub(super) weight: S<i64>,
}

fn replay_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ReplayMode>, D::Error> {
    by_name(d, keys::REPLAY_MODES)
}

fn master_down_rule<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MasterDownRule>, D::Error> {
    by_name(d, keys::MASTER_DOWN_RULES)
}

/// A setting of the core, named by a string and parsed by its `FromStr` (the
/// core has no serde); a name not in `names` gets serde's message for an
/// unknown variant, as the settings with derived parsers do.
fn by_name<'de, D, T>(d: D, names: &'static [&'static str]) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    let name = String::deserialize(d)?;
    name.parse()
        .map(Some)
        .map_err(|_| D::Error::unknown_variant(&name, names))
}
