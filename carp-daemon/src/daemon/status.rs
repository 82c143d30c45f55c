//! The status snapshot the control socket and the metrics endpoint serve.

use crate::chain::Chain;
use crate::control::report::{counter_map, InstanceReport, InterfaceReport, StatusReport};
use crate::net::vmac::{mac_text, virtual_router_mac};
use crate::proto::action::State;
use crate::proto::Nanos;

use super::instance::Running;
use super::Daemon;

fn state_name(state: State) -> &'static str {
    match state {
        State::Init => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
    }
}

/// A snapshot of every instance and of the receive path at `now`.
pub fn report(daemon: &Daemon, now: Nanos) -> StatusReport {
    let instances = daemon
        .instances()
        .iter()
        .map(|r| {
            let mut report = instance_report(r, now);
            if let Some((name, state, why)) = daemon.groups().report(&r.key()) {
                report.sync_group = Some(name);
                report.group_state = Some(state.to_string());
                report.group_reason = (!why.is_empty()).then_some(why);
            }
            report
        })
        .collect();
    let interfaces = daemon
        .receive()
        .interfaces()
        .iter()
        .map(|i| InterfaceReport {
            name: i.name.clone(),
            ifindex: i.ifindex,
            mode: i.reception.name().to_string(),
            fallback_reason: i.fallback_reason.clone(),
        })
        .collect();
    let counters = match daemon.receive().counters() {
        Ok(c) => counter_map(&c),
        Err(e) => {
            tracing::warn!("{}", Chain(&e));
            Default::default()
        }
    };
    StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_secs: daemon.started().elapsed().as_secs(),
        interfaces,
        counters,
        instances,
    }
}

/// The report of one instance at `now`.
fn instance_report(r: &Running, now: Nanos) -> InstanceReport {
    let s = r.core.status();
    InstanceReport {
        interface: r.cfg.interface.clone(),
        ifindex: r.ifindex(),
        label: r.cfg.label.clone(),
        vhid: r.cfg.vhid,
        state: state_name(s.state).to_string(),
        master: s.master.map(|m| m.to_string()),
        master_kind: s.master_kind.map(|k| k.name().to_string()),
        last_advert_age_ms: s
            .last_advert_at
            .map(|t| now.0.saturating_sub(t.0) / 1_000_000),
        advbase_secs: r.cfg.advbase_secs,
        advskew: r.cfg.advskew,
        demote: s.demote,
        preempt: r.cfg.preempt,
        held: s.held || r.core.group_held(),
        vips: r.cfg.vips.iter().map(|v| v.to_string()).collect(),
        adverts_sent: s.adverts_sent,
        adverts_sent_by_standin: r.standin_sent(),
        adverts_accepted: s.adverts_accepted,
        adverts_repeated: s.adverts_repeated,
        transitions: s.transitions,
        last_change_reason: r
            .waiting_reason()
            .or_else(|| s.last_change.map(|(_, why)| why.to_string())),
        last_change_age_ms: s
            .last_change
            .map(|(at, _)| now.0.saturating_sub(at.0) / 1_000_000),
        demote_health: r.demote().health,
        demote_vips: r.demote().vips,
        rejects: s.rejects.iter().map(|(k, v)| (k.to_string(), v)).collect(),
        health_unknown: r.health_unknown_runs(),
        sync_group: None,
        group_state: None,
        group_reason: None,
        virtual_mac: r
            .cfg
            .virtual_mac
            .then(|| mac_text(virtual_router_mac(r.cfg.vhid))),
        virtual_mac_link: r.vmac_link().map(str::to_owned),
    }
}
