//! From an instance's configuration to the core's parameters.

use std::net::IpAddr;

use crate::xdp::key::VhidKeys;

use super::key::InstanceKey;
use super::DaemonError;
use crate::config::InstanceConfig;
use crate::proto::instance::Instance;
use crate::proto::params::{InstanceParams, ParamsError};
use crate::proto::Nanos;

/// The core's parameters for `cfg`, with our source addresses on the
/// interface; `advert_interval_ms` turns the announcement gap into adverts.
/// The caller names the instance in the error.
pub fn instance_params(
    cfg: &InstanceConfig,
    sources: Vec<IpAddr>,
    advert_interval_ms: u64,
) -> Result<InstanceParams, ParamsError> {
    let vips = cfg.vips.iter().map(|v| v.addr).collect();
    let mut p = InstanceParams::new(cfg.vhid, cfg.password.core().clone(), vips, sources);
    p.advbase_secs = cfg.advbase_secs;
    p.advskew = cfg.advskew;
    p.deadratio = u8::try_from(cfg.deadratio).unwrap_or(u8::MAX);
    p.master_down_rule = cfg.master_down;
    p.preempt = cfg.preempt;
    p.neutral = cfg.neutral;
    p.down_script_at_exit = cfg.shutdown_on_exit;
    p.replay_mode = cfg.replay;
    p.replay_window = cfg
        .replay_window_ms
        .map(|ms| Nanos::from_millis(u64::from(ms)));
    p.hmac_link_local = cfg.hmac_link_local;
    p.allowed_peers = cfg.peers.clone();
    p.announce_rounds = u8::try_from(cfg.announce.count).unwrap_or(u8::MAX);
    // The core repeats announcements every N adverts; pick the N closest to
    // the configured gap.
    let every =
        (u64::from(cfg.announce.interval_ms) + advert_interval_ms / 2) / advert_interval_ms.max(1);
    p.announce_every_adverts = u8::try_from(every.clamp(1, 255)).unwrap_or(u8::MAX);
    p.validate()?;
    Ok(p)
}

/// The precomputed keys that let the receive path check this instance's
/// HMACs (both digests where it has IPv6 link-local VIPs); `None` only for
/// a password the configuration should have refused.
pub fn hmac_keys(cfg: &InstanceConfig) -> Option<VhidKeys> {
    let vips: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
    VhidKeys::new(cfg.password.key(), cfg.vhid, &vips).ok()
}

/// The core of `cfg` with advert sources `sources`, started at `now`.
pub(super) fn new_core(
    cfg: &InstanceConfig,
    key: &InstanceKey,
    sources: Vec<IpAddr>,
    now: Nanos,
    wall_clock_unix_ns: u64,
) -> Result<Instance, DaemonError> {
    let advert_ms = u64::from(cfg.advbase_secs) * 1000 + u64::from(cfg.advskew) * 1000 / 256;
    let core = |source| DaemonError::Core {
        key: key.clone(),
        source,
    };
    let params = instance_params(cfg, sources, advert_ms.max(1)).map_err(core)?;
    let mut instance = Instance::new(params, now, wall_clock_unix_ns).map_err(core)?;
    // At advbase 0 a late loop is a false takeover: keep adverts ready for
    // the stand-in senders.
    if cfg.advbase_secs == 0 && crate::standin::available() {
        instance.send_ahead(crate::standin::COVER);
    }
    Ok(instance)
}
