//! Checks across fields and instances, shared by the TOML file and the UCARP
//! command line. Ranges of single numbers are checked while converting (the
//! model's types cannot hold out-of-range values); what is left here are the
//! rules that relate several values.

use std::collections::HashMap;
use std::net::IpAddr;

use super::error::{At, ConfigError};
use super::model::{Config, InstanceConfig};

/// Longest interface name or label (IFNAMSIZ - 1).
pub const MAX_IFNAME_BYTES: usize = 15;

/// A field of an instance that a cross-field rule can reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The interface name.
    Interface,
    /// The address label.
    Label,
    /// The vhid.
    Vhid,
    /// The list of VIPs as a whole.
    Vips,
    /// One VIP, by index.
    Vip(usize),
    /// One unicast peer, by index.
    Peer(usize),
    /// The multicast group override.
    Mcast,
}

/// Maps a field of the instance at an index to where it was written.
pub trait Locate {
    /// Where `field` of instance `index` came from.
    fn at(&self, index: usize, field: Field) -> At;
}

/// Checks one interface name (1..=15 bytes, no `/`, `:` or white space).
pub fn check_ifname(name: &str, at: impl FnOnce() -> At) -> Result<(), ConfigError> {
    let bad = |c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control();
    if name.is_empty() || name.len() > MAX_IFNAME_BYTES || name.contains(bad) {
        return Err(ConfigError::Invalid {
            at: at(),
            value: name.to_owned(),
            expected: "an interface name (1 to 15 bytes, no '/', ':' or spaces)",
        });
    }
    Ok(())
}

/// Splits UCARP's alias form `eth0:carp0` into (`eth0`, `Some("eth0:carp0")`).
pub fn split_alias(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((base, _)) => (base, Some(name)),
        None => (name, None),
    }
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Checks the rules within one instance.
pub fn check_instance(
    inst: &InstanceConfig,
    index: usize,
    loc: &dyn Locate,
) -> Result<(), ConfigError> {
    check_ifname(&inst.interface, || loc.at(index, Field::Interface))?;
    if let Some(label) = &inst.label {
        let prefixed = label
            .strip_prefix(inst.interface.as_str())
            .is_some_and(|rest| rest.starts_with(':'));
        if !prefixed || label.len() > MAX_IFNAME_BYTES || label.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                at: loc.at(index, Field::Label),
                value: label.clone(),
                expected: "a label of the form <interface>:<name> of at most 15 bytes",
            });
        }
    }
    // advbase 0 with advskew 0 is allowed (UCARP refuses it): the core
    // clamps the interval to 1/256 s, as carp(4) does.
    if inst.vips.is_empty() {
        return Err(ConfigError::Missing {
            at: loc.at(index, Field::Vips),
            hint: "give at least one virtual address",
        });
    }
    if let Some(srcip) = inst.srcip {
        for (i, vip) in inst.vips.iter().enumerate() {
            if !same_family(vip.addr, srcip) {
                return Err(ConfigError::FamilyMismatch {
                    at: loc.at(index, Field::Vip(i)),
                    addr: vip.addr,
                    family: family(vip.addr),
                    srcip,
                });
            }
        }
        for (i, peer) in inst.unicast_peers.iter().enumerate() {
            if !same_family(*peer, srcip) {
                return Err(ConfigError::FamilyMismatch {
                    at: loc.at(index, Field::Peer(i)),
                    addr: *peer,
                    family: family(*peer),
                    srcip,
                });
            }
        }
    }
    let families_used = |addr: IpAddr| inst.vips.iter().any(|vip| same_family(vip.addr, addr));
    for (i, peer) in inst.unicast_peers.iter().enumerate() {
        if !families_used(*peer) || peer.is_multicast() || peer.is_unspecified() {
            return Err(ConfigError::Invalid {
                at: loc.at(index, Field::Peer(i)),
                value: peer.to_string(),
                expected: "a unicast address of the same family as a virtual address",
            });
        }
    }
    if let Some(mcast) = inst.mcast {
        if !inst.unicast_peers.is_empty() {
            return Err(ConfigError::Conflict {
                at: loc.at(index, Field::Mcast),
                other: "unicast_peers".into(),
            });
        }
        if !mcast.is_multicast() || !families_used(mcast) {
            return Err(ConfigError::Invalid {
                at: loc.at(index, Field::Mcast),
                value: mcast.to_string(),
                expected: "a multicast group of the same family as a virtual address",
            });
        }
    }
    for (i, vip) in inst.vips.iter().enumerate() {
        if vip.addr.is_multicast() || vip.addr.is_unspecified() || vip.addr.is_loopback() {
            return Err(ConfigError::Invalid {
                at: loc.at(index, Field::Vip(i)),
                value: vip.to_string(),
                expected: "a unicast address",
            });
        }
    }
    Ok(())
}

/// Checks every instance, then the rules across instances: no (interface,
/// vhid) twice, no VIP in two places.
pub fn check_config(config: &Config, loc: &dyn Locate) -> Result<(), ConfigError> {
    let mut vhids: HashMap<(&str, u8), usize> = HashMap::new();
    let mut vips: HashMap<IpAddr, usize> = HashMap::new();
    for (index, inst) in config.instances.iter().enumerate() {
        check_instance(inst, index, loc)?;
        if let Some(first) = vhids.insert((inst.interface.as_str(), inst.vhid), index) {
            return Err(ConfigError::DuplicateInstance {
                at: loc.at(index, Field::Vhid),
                interface: inst.interface.clone(),
                vhid: inst.vhid,
                first: first_at(&loc.at(index, Field::Vhid), &loc.at(first, Field::Vhid)),
            });
        }
        for (i, vip) in inst.vips.iter().enumerate() {
            if let Some(first) = vips.insert(vip.addr, index) {
                return Err(ConfigError::DuplicateVip {
                    at: loc.at(index, Field::Vip(i)),
                    vip: vip.addr,
                    first: format!(" by instance[{first}]"),
                });
            }
        }
    }
    Ok(())
}

/// Where the first of two definitions is, seen from the second (`at`): its
/// line, with the file when it is another one (imports read several).
fn first_at(at: &At, first: &At) -> String {
    match (at, first) {
        (At::File { path, .. }, At::File { path: p, line, .. }) if path == p => {
            format!(" at line {line}")
        }
        (_, At::File { path, line, .. }) => format!(" at {}:{line}", path.display()),
        (_, At::Flag(_)) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        let at = || At::Flag("-i/--interface");
        assert!(check_ifname("eth0", at).is_ok());
        assert!(check_ifname("enp0s31f6.100", at).is_ok());
        for bad in ["", "eth0:1", "a/b", "eth 0", "abcdefghijklmnop"] {
            let err = check_ifname(bad, at).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("-i/--interface: {bad:?} is not")),
                "{err}"
            );
        }
    }

    #[test]
    fn alias_form_splits_into_base_and_label() {
        assert_eq!(split_alias("eth0:carp0"), ("eth0", Some("eth0:carp0")));
        assert_eq!(split_alias("eth0"), ("eth0", None));
    }
}
