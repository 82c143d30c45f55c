//! The rules of sync groups (`[[sync_group]]` and the members'
//! `sync_group`): names unique, every member's group defined, every group
//! with a member, and members that rank alike, so that their vhids elect
//! the same host.

use std::collections::HashMap;

use super::error::{At, ConfigError};
use super::model::{Config, InstanceConfig};

/// Where the sync-group fields of a file were written.
pub trait LocateGroups {
    /// Where instance `index`'s `sync_group` was written.
    fn member(&self, index: usize) -> At;
    /// Where the `name` of group `group` (by index) was written.
    fn group(&self, group: usize) -> At;
}

/// What members of one group must share: (key, value as text).
fn ranking(inst: &InstanceConfig) -> [(&'static str, String); 3] {
    [
        ("advbase_secs", inst.advbase_secs.to_string()),
        ("advskew", inst.advskew.to_string()),
        ("preempt", inst.preempt.to_string()),
    ]
}

/// Checks the sync groups of `config`.
pub fn check_sync_groups(config: &Config, loc: &dyn LocateGroups) -> Result<(), ConfigError> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (g, group) in config.sync_groups.iter().enumerate() {
        if let Some(first) = names.insert(group.name.as_str(), g) {
            return Err(ConfigError::DuplicateGroup {
                at: loc.group(g),
                name: group.name.clone(),
                first: match loc.group(first) {
                    At::File { line, .. } => format!(" at line {line}"),
                    At::Flag(_) => String::new(),
                },
            });
        }
    }
    // The first member of each group, by group name.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (index, inst) in config.instances.iter().enumerate() {
        let Some(name) = inst.sync_group.as_deref() else {
            continue;
        };
        if !names.contains_key(name) {
            let mut defined: Vec<String> = names.keys().map(|n| format!("{n:?}")).collect();
            defined.sort();
            return Err(ConfigError::UnknownGroup {
                at: loc.member(index),
                name: name.to_owned(),
                defined: if defined.is_empty() {
                    "no [[sync_group]] is defined".into()
                } else {
                    format!("defined: {}", defined.join(", "))
                },
            });
        }
        let head = *first.entry(name).or_insert(index);
        let theirs = ranking(&config.instances[head]);
        for ((key, value), (_, other)) in ranking(inst).into_iter().zip(theirs) {
            if value != other {
                return Err(ConfigError::GroupMismatch {
                    at: loc.member(index),
                    name: name.to_owned(),
                    detail: format!("{key} {value} differs from {key} {other} of instance[{head}]"),
                });
            }
        }
    }
    for (g, group) in config.sync_groups.iter().enumerate() {
        if !first.contains_key(group.name.as_str()) {
            return Err(ConfigError::EmptyGroup {
                at: loc.group(g),
                name: group.name.clone(),
            });
        }
    }
    Ok(())
}
