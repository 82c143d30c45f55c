//! Sync groups in the daemon: the wiring between the members' cores (which
//! may be on several interfaces) and their group's core
//! ([`crate::proto::Group`]), and what a group does as a whole.
//!
//! ```text
//!  member core ─ StateChanged ─► Running::state_changes ─► Groups::settle
//!        ▲                                                    │ Group::observe
//!        └──────────── Instance::handle_group ◄── commands ◄──┘
//! ```
//!
//! After every event of the main loop, [`Groups::settle`] tells each group
//! the state changes its members made, hands the group's commands to the
//! members and carries out what they do, until nothing moves; then it
//! gives every member the group's demote count and acts on the group's
//! transitions:
//!
//! - the group is **MASTER** when every member is MASTER: its `upscript`
//!   runs (`SCRIPT <group> MASTER`) and conntrackd, if configured, is made
//!   master ([`Conntrackd::on_master`]); the members' gratuitous ARPs wait
//!   for that, at most [`crate::conntrackd::CONNTRACKD_WAIT`];
//! - **BACKUP** when every member is BACKUP: `downscript` (`SCRIPT <group>
//!   BACKUP`), conntrackd asked for a resync ([`Conntrackd::on_backup`]);
//! - **FAULT** while a member is down (INIT): `downscript` (`SCRIPT <group>
//!   FAULT`), conntrackd's timers shortened ([`Conntrackd::on_leave`]).
//!
//! Between two of these the members disagree for the few microseconds the
//! commands take (MIXED); nothing runs for that.

use std::time::Duration;

use tokio::sync::watch;

use super::instance::Running;
use super::key::InstanceKey;
use super::now;
use crate::chain::Chain;
use crate::config::SyncGroupConfig;
use crate::conntrackd::Conntrackd;
use crate::net::vip::VipManager;
use crate::proto::{Group, GroupState, Nanos};

/// One sync group of the running daemon.
pub struct SyncGroup {
    /// Its configuration.
    pub cfg: SyncGroupConfig,
    /// The group's decisions.
    core: Group,
    /// Its members, by index in `core`.
    members: Vec<InstanceKey>,
    /// The state last acted on (scripts, conntrackd); `None` before the
    /// first.
    acted: Option<GroupState>,
    /// conntrackd, if the group drives it.
    conntrackd: Option<Conntrackd>,
    /// `true` once conntrackd is ready as master (gates announcements).
    ready: watch::Sender<bool>,
    /// How long the group's scripts may run.
    script_timeout: Duration,
}

/// The sync groups of the running daemon.
#[derive(Default)]
pub struct Groups(Vec<SyncGroup>);

impl Groups {
    /// The groups of `configs` over `instances` (at start, and after a
    /// reload: a group of the same name keeps what it last acted on and
    /// its conntrackd), then made consistent ([`Group::start`]).
    pub async fn build(
        configs: &[SyncGroupConfig],
        instances: &mut [Running],
        previous: Groups,
        vips: &VipManager,
    ) -> Groups {
        let mut previous = previous.0;
        let mut groups = Vec::new();
        for cfg in configs {
            let members: Vec<usize> = (0..instances.len())
                .filter(|&i| instances[i].cfg.sync_group.as_deref() == Some(cfg.name.as_str()))
                .collect();
            let old = previous
                .iter()
                .position(|g| g.cfg.name == cfg.name)
                .map(|i| previous.swap_remove(i));
            let conntrackd = cfg.conntrackd_config.clone().map(Conntrackd::new);
            let (acted, ready) = match old {
                Some(old) if old.cfg.conntrackd_config == cfg.conntrackd_config => {
                    (old.acted, old.ready)
                }
                Some(old) => (old.acted, watch::channel(false).0),
                None => (None, watch::channel(false).0),
            };
            let script_timeout = members
                .iter()
                .map(|&i| instances[i].cfg.scripts.timeout_secs)
                .max()
                .unwrap_or(crate::config::DEFAULT_SCRIPT_TIMEOUT_SECS);
            for &i in &members {
                instances[i].announce_gate = conntrackd.as_ref().map(|_| ready.subscribe());
            }
            groups.push(SyncGroup {
                core: Group::new(members.iter().map(|&i| instances[i].core.state())),
                members: members.iter().map(|&i| instances[i].key()).collect(),
                cfg: cfg.clone(),
                acted,
                conntrackd,
                ready,
                script_timeout: Duration::from_secs(script_timeout.into()),
            });
        }
        let mut groups = Groups(groups);
        let t = now();
        for g in 0..groups.0.len() {
            let commands = groups.0[g].core.start();
            groups.command(g, commands, instances, vips, t).await;
        }
        for r in instances.iter_mut() {
            // Changes made before the group existed are in its start.
            r.state_changes.clear();
        }
        groups.settle(instances, vips).await;
        groups
    }

    /// Tells each group what its members did, carries out the commands
    /// until nothing moves, applies the groups' demote counts and acts on
    /// the groups' transitions. Cheap when nothing changed.
    pub async fn settle(&mut self, instances: &mut [Running], vips: &VipManager) {
        if self.0.is_empty() {
            return;
        }
        let t = now();
        // Each round hands on the changes of the previous one; the group's
        // own commands never propagate again, so this ends.
        loop {
            let mut moved = false;
            for i in 0..instances.len() {
                if instances[i].state_changes.is_empty() {
                    continue;
                }
                let changes = std::mem::take(&mut instances[i].state_changes);
                let key = instances[i].key();
                for (to, reason) in changes {
                    let Some((g, k)) = self.member(&key) else {
                        continue;
                    };
                    moved = true;
                    let commands = self.0[g].core.observe(k, to, reason);
                    self.command(g, commands, instances, vips, t).await;
                }
            }
            if !moved {
                break;
            }
        }
        for g in 0..self.0.len() {
            self.apply_demote(g, instances, vips, t).await;
            self.act(g);
        }
    }

    /// The group of instance `key`, and its index in it.
    fn member(&self, key: &InstanceKey) -> Option<(usize, usize)> {
        self.0
            .iter()
            .enumerate()
            .find_map(|(g, group)| group.members.iter().position(|m| m == key).map(|k| (g, k)))
    }

    /// Hands group `g`'s commands to its members and carries out what they
    /// do (their state changes wait in `state_changes` for the next round).
    async fn command(
        &self,
        g: usize,
        commands: Vec<(usize, crate::proto::GroupCommand)>,
        instances: &mut [Running],
        vips: &VipManager,
        t: Nanos,
    ) {
        for (k, command) in commands {
            let key = &self.0[g].members[k];
            if let Some(r) = instances.iter_mut().find(|r| is(r, key)) {
                tracing::debug!(iface = %key.interface, vhid = key.vhid, group = %self.0[g].cfg.name, "{command:?}");
                r.core.handle_group(t, command);
                r.carry_out(vips).await;
            }
        }
    }

    /// Every member of group `g` advertises the group's demote count: the
    /// highest of its members' own.
    async fn apply_demote(
        &mut self,
        g: usize,
        instances: &mut [Running],
        vips: &VipManager,
        t: Nanos,
    ) {
        let group = &mut self.0[g];
        for (k, key) in group.members.iter().enumerate() {
            if let Some(r) = instances.iter().find(|r| is(r, key)) {
                group.core.set_demote(k, r.demote().total());
            }
        }
        let demote = group.core.demote();
        for r in instances
            .iter_mut()
            .filter(|r| group.members.iter().any(|key| is(r, key)))
        {
            if r.group_demote != demote {
                r.set_group_demote(t, demote);
                r.carry_out(vips).await;
            }
        }
    }

    /// Acts on group `g`'s transition, if it made one: its script and
    /// conntrackd (see the module's documentation).
    fn act(&mut self, g: usize) {
        let group = &mut self.0[g];
        let state = group.core.state();
        if state == GroupState::Mixed || group.acted == Some(state) {
            return;
        }
        group.acted = Some(state);
        let why = group.why_text();
        tracing::info!(group = %group.cfg.name, "sync group {state}{why}");
        if state != GroupState::Master {
            group.ready.send_replace(false);
        }
        let script = match state {
            GroupState::Master => group.cfg.upscript.clone(),
            _ => group.cfg.downscript.clone(),
        };
        if let Some(script) = script {
            run_script(script, &group.cfg.name, state, group.script_timeout);
        }
        let Some(conntrackd) = &group.conntrackd else {
            return;
        };
        match state {
            GroupState::Master => {
                let done = conntrackd.on_master();
                let ready = group.ready.clone();
                tokio::spawn(async move {
                    let _ = done.await;
                    ready.send_replace(true);
                });
            }
            GroupState::Backup => conntrackd.on_backup(),
            GroupState::Fault | GroupState::Mixed => conntrackd.on_leave(),
        }
    }

    /// The daemon leaves: every group's conntrackd shortens its timers.
    pub fn leave(&self) {
        for conntrackd in self.0.iter().filter_map(|g| g.conntrackd.as_ref()) {
            conntrackd.on_leave();
        }
    }

    /// The group of instance `key` for `status`: its name, state and why.
    pub fn report(&self, key: &InstanceKey) -> Option<(String, GroupState, String)> {
        let (g, _) = self.member(key)?;
        let group = &self.0[g];
        let why = group.why_text();
        Some((
            group.cfg.name.clone(),
            group.core.state(),
            why.trim_start_matches(": ").to_owned(),
        ))
    }
}

impl SyncGroup {
    /// `: <member>: <reason>` of the change that last moved the group, or
    /// empty.
    fn why_text(&self) -> String {
        match self.core.why() {
            Some((k, reason)) => format!(": {}: {reason}", self.members[k]),
            None => String::new(),
        }
    }
}

/// Whether `r` is the instance `key` names (without building its key).
fn is(r: &Running, key: &InstanceKey) -> bool {
    r.cfg.vhid == key.vhid && r.cfg.interface == key.interface
}

/// Runs a group script, `SCRIPT <group> <state>`, in a task of its own;
/// killed after `timeout`; its outcome logged.
fn run_script(script: std::path::PathBuf, group: &str, state: GroupState, timeout: Duration) {
    let mut cmd = crate::child::command(&script);
    cmd.arg(group)
        .arg(state.to_string())
        .env("CARP_GROUP", group)
        .env("CARP_STATE", state.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let group = group.to_owned();
    tokio::spawn(async move {
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(group = %group, script = %script.display(), "cannot start the group script: {}", Chain(&e));
                return;
            }
        };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                tracing::info!(group = %group, state = %state, "group script done")
            }
            Ok(Ok(status)) => {
                tracing::warn!(group = %group, state = %state, exit_code = ?status.code(), "group script failed")
            }
            Ok(Err(e)) => tracing::error!(group = %group, "group script: {}", Chain(&e)),
            Err(_) => {
                let _ = child.kill().await;
                tracing::warn!(group = %group, state = %state, ?timeout, "group script timed out and was killed");
            }
        }
    });
}
