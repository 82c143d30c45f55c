//! The status snapshot the main loop hands to `carpd-xdp status` and the
//! metrics endpoint; serialized as one JSON object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::xdp::counters::Counters;

/// The names an instance's `state` takes, in protocol order.
pub const STATES: [&str; 3] = ["INIT", "BACKUP", "MASTER"];

/// Everything `carpd-xdp status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Version of the running daemon.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// The receive path on each interface.
    pub interfaces: Vec<InterfaceReport>,
    /// Receive-path totals by reason (`delivered`, `truncated`, `ip_header`,
    /// ..., `hmac`, `replay`, `rate_limited`, `ringbuf_full`).
    pub counters: BTreeMap<String, u64>,
    /// Every CARP instance, in configuration order.
    pub instances: Vec<InstanceReport>,
}

/// How adverts are received on one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceReport {
    /// Interface name (`eth0`).
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Receive path in use: `native`, `skb` (XDP), `tc` (the TC program on
    /// the tcx hook) or `off` (packet socket).
    pub mode: String,
    /// Why a better mode was not used, when the daemon fell back (for `tc`,
    /// why not XDP: typically another process holds the XDP hook).
    pub fallback_reason: Option<String>,
}

/// One CARP instance (interface, vhid).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// Base interface.
    pub interface: String,
    /// Index of the interface the instance runs on; `None` while no
    /// interface of that name exists (deleted, renamed), the instance INIT
    /// until one appears.
    #[serde(default)]
    pub ifindex: Option<u32>,
    /// VIP label (`eth0:carp0`), if any.
    pub label: Option<String>,
    /// Virtual host id.
    pub vhid: u8,
    /// `INIT`, `BACKUP` or `MASTER` (see [`STATES`]).
    pub state: String,
    /// Address of the current master, when known.
    pub master: Option<String>,
    /// What the master's adverts show it runs (`carpd-xdp`, `ucarp`,
    /// `openbsd`, `freebsd`, `bsd` when not yet told apart, `unknown`),
    /// when we are BACKUP: the election rules followed against it.
    pub master_kind: Option<String>,
    /// Milliseconds since the last accepted advert, if any was.
    pub last_advert_age_ms: Option<u64>,
    /// Advertisement base, seconds.
    pub advbase_secs: u8,
    /// Advertisement skew, 1/256 s.
    pub advskew: u8,
    /// Current demotion (health checks, link state).
    pub demote: u8,
    /// Whether a less preferred master is preempted.
    pub preempt: bool,
    /// Held in BACKUP (SIGUSR2, or a sync group in FAULT).
    pub held: bool,
    /// Virtual addresses (`addr/prefix`).
    pub vips: Vec<String>,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Of those, sent by a stand-in sender because the daemon's loop was
    /// late (advbase 0, see docs/tuning.md).
    #[serde(default)]
    pub adverts_sent_by_standin: u64,
    /// Adverts received and accepted.
    pub adverts_accepted: u64,
    /// Of those, repeated counters taken as proof of life only.
    #[serde(default)]
    pub adverts_repeated: u64,
    /// State changes.
    pub transitions: u64,
    /// Why the state last changed (`master down`, `preferred master heard`,
    /// ...), if it did.
    pub last_change_reason: Option<String>,
    /// Milliseconds since the state last changed.
    pub last_change_age_ms: Option<u64>,
    /// Demotion from failing health checks (part of `demote`).
    pub demote_health: u32,
    /// Demotion while VIPs cannot be added (part of `demote`).
    pub demote_vips: u32,
    /// Adverts rejected by the protocol core, by reason.
    pub rejects: BTreeMap<String, u64>,
    /// Health-check runs that could not be started for want of resources
    /// (unknown results, which neither demote nor lift a demotion).
    #[serde(default)]
    pub health_unknown: u64,
    /// The sync group the instance belongs to, if any.
    #[serde(default)]
    pub sync_group: Option<String>,
    /// That group's state: `MASTER` (every member master), `BACKUP`,
    /// `FAULT` (a member down: every member held backup) or `MIXED` (only
    /// while it moves).
    #[serde(default)]
    pub group_state: Option<String>,
    /// Why the group is in its state: the member whose change moved it
    /// last, and that change's reason.
    #[serde(default)]
    pub group_reason: Option<String>,
    /// With `virtual_mac`: the virtual-router MAC (`00:00:5e:00:01:0a`).
    #[serde(default)]
    pub virtual_mac: Option<String>,
    /// The macvlan carrying it, while it exists (MASTER only).
    #[serde(default)]
    pub virtual_mac_link: Option<String>,
}

/// The receive-path counters as the report carries them: every reason by
/// name.
pub fn counter_map(counters: &Counters) -> BTreeMap<String, u64> {
    counters
        .iter()
        .map(|(name, total)| (name.to_owned(), total))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use carp_common::reason::{Reason, REASON_COUNT};

    #[test]
    fn counters_keep_every_reason_and_reports_round_trip_through_json() {
        let mut counters = Counters::default();
        counters.bump(Reason::Hmac);
        let map = counter_map(&counters);
        assert_eq!(map.len(), REASON_COUNT as usize);
        assert_eq!(map["hmac"], 1);
        assert_eq!(map["delivered"], 0);

        let report = StatusReport {
            version: "0.1.0".into(),
            pid: 7,
            uptime_secs: 3,
            interfaces: vec![InterfaceReport {
                name: "eth0".into(),
                ifindex: 2,
                mode: "skb".into(),
                fallback_reason: Some("driver lacks native XDP".into()),
            }],
            counters: map,
            instances: vec![InstanceReport {
                interface: "eth0".into(),
                vhid: 9,
                state: "MASTER".into(),
                master: Some("192.0.2.1".into()),
                last_advert_age_ms: None,
                ..InstanceReport::default()
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["instances"][0]["vhid"], 9);
        assert_eq!(
            json["instances"][0]["last_advert_age_ms"],
            serde_json::Value::Null
        );
        assert_eq!(json["interfaces"][0]["mode"], "skb");
        let back: StatusReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
