//! The replay rules one instance keeps in the receive path, one per source
//! the core accepted adverts from: bounded, with the sources that matter
//! never evicted.
//!
//! The receive path keeps an installed rule's state (last and recent
//! counters) up to date by itself; the daemon writes a rule when it is new,
//! when its shape (the kind of rule, OpenBSD's cookie) changed in the core,
//! and removes it when the source is evicted here or the instance leaves
//! the interface. An evicted source that is heard again gets its rule back.

use std::collections::HashMap;
use std::net::IpAddr;

use carp_common::constants::{AF_INET, AF_INET6, REPLAY_SPARE_RULES};
use carp_common::maps::{ReplayKey, ReplayState};

use crate::chain::Chain;
use crate::xdp::receive::{ReceiveError, ReceivePath};

/// Rules one instance keeps for sources that are neither allowed peers nor
/// the current master ([`REPLAY_SPARE_RULES`]): with its master and its
/// allowed peers, what the receive path's map is sized for, so that
/// installing a rule never fails for want of room.
pub const SPARE_RULES: usize = REPLAY_SPARE_RULES as usize;

/// What the core may change of an installed rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    flags: u32,
    cookie: u64,
    cookie_mac: [u8; 6],
}

impl Shape {
    fn of(rule: &ReplayState) -> Self {
        Self {
            flags: rule.flags,
            cookie: rule.cookie,
            cookie_mac: rule.cookie_mac,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Installed {
    shape: Shape,
    /// Order of the last advert accepted from the source.
    touched: u64,
    /// The receive path's rule may lack counters the core has.
    stale: bool,
}

/// The receive path's replay rules of one (interface, vhid).
#[derive(Debug, Default)]
pub struct KernelRules {
    rules: HashMap<IpAddr, Installed>,
    clock: u64,
}

/// The map key of `src`'s rule for `vhid` on `ifindex`.
fn key(ifindex: u32, vhid: u8, src: IpAddr) -> ReplayKey {
    let (family, addr) = match src {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (AF_INET, b)
        }
        IpAddr::V6(a) => (AF_INET6, a.octets()),
    };
    ReplayKey {
        ifindex,
        vhid: u16::from(vhid),
        family,
        addr,
    }
}

impl KernelRules {
    /// Makes the next [`KernelRules::accepted`] for `src` write its rule
    /// again whole.
    pub fn forget(&mut self, src: IpAddr) {
        if let Some(r) = self.rules.get_mut(&src) {
            r.stale = true;
        }
    }

    /// After an advert from `src` was accepted: installs `rule` (the core's
    /// rule for `src` now) unless the receive path holds one of the same
    /// shape, first evicting the least recently heard sources that `keep`
    /// does not protect, so that at most [`SPARE_RULES`] others remain.
    pub fn accepted(
        &mut self,
        receive: &mut ReceivePath,
        (ifindex, vhid): (u32, u8),
        src: IpAddr,
        rule: &ReplayState,
        keep: impl Fn(IpAddr) -> bool,
    ) -> Result<(), ReceiveError> {
        self.clock += 1;
        let shape = Shape::of(rule);
        if let Some(installed) = self.rules.get_mut(&src) {
            installed.touched = self.clock;
            if installed.shape == shape && !installed.stale {
                return Ok(());
            }
        }
        // Who is protected changes (the master does), so the bound is kept
        // before every insertion, not only for unprotected newcomers.
        loop {
            let mut spare = self.rules.iter().filter(|(a, _)| **a != src && !keep(**a));
            let Some((oldest, _)) = spare.clone().min_by_key(|(_, r)| r.touched) else {
                break;
            };
            if spare.nth(SPARE_RULES - 1).is_none() {
                break;
            }
            let oldest = *oldest;
            self.rules.remove(&oldest);
            receive.remove_replay_rule(&key(ifindex, vhid, oldest))?;
        }
        receive.set_replay_rule(key(ifindex, vhid, src), rule, true)?;
        self.rules.insert(
            src,
            Installed {
                shape,
                touched: self.clock,
                stale: false,
            },
        );
        Ok(())
    }

    /// Removes every rule, when the instance leaves `ifindex`.
    pub fn clear(&mut self, receive: &mut ReceivePath, (ifindex, vhid): (u32, u8)) {
        for (src, _) in self.rules.drain() {
            if let Err(e) = receive.remove_replay_rule(&key(ifindex, vhid, src)) {
                tracing::warn!(ifindex, vhid, "{}", Chain(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use carp_common::constants::MAP_VHIDS_CAPACITY;
    use carp_common::maps::{Recent, Settings, REPLAY_STRICT};

    use super::*;
    use crate::xdp::mode::XdpMode;

    /// Every (interface, vhid) the receive path can serve, each with a
    /// master and more spoofed sources than it keeps rules for: no rule
    /// fails to install for want of room, and every master keeps its rule
    /// whatever was heard after it.
    #[test]
    fn every_vhid_keeps_its_master_rule_when_all_are_full() {
        let mut receive = ReceivePath::open(&[], XdpMode::Off, Settings::default()).unwrap();
        let rule = ReplayState::new(REPLAY_STRICT, 0, &Recent::EMPTY);
        let master = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let spoofed = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i));
        let instances: Vec<(u32, u8)> = (0..MAP_VHIDS_CAPACITY)
            .map(|i| (1 + i / 255, (1 + i % 255) as u8))
            .collect();
        let mut all = Vec::new();
        for &at in &instances {
            let mut rules = KernelRules::default();
            let keep = |a: IpAddr| a == master;
            for i in 0..SPARE_RULES as u32 {
                rules
                    .accepted(&mut receive, at, spoofed(i), &rule, keep)
                    .unwrap();
            }
            rules
                .accepted(&mut receive, at, master, &rule, keep)
                .unwrap();
            all.push(rules);
        }
        // More spoofed sources on every instance: they evict each other,
        // never the master, and never run out of room.
        for (rules, &at) in all.iter_mut().zip(&instances) {
            for i in 0..2 * SPARE_RULES as u32 {
                let keep = |a: IpAddr| a == master;
                rules
                    .accepted(&mut receive, at, spoofed(100 + i), &rule, keep)
                    .unwrap_or_else(|e| panic!("instance {at:?}: {e}"));
            }
        }
        for &(ifindex, vhid) in &instances {
            assert!(
                receive.replay_rule(&key(ifindex, vhid, master)).is_some(),
                "the master of vhid {vhid} on {ifindex} lost its rule"
            );
        }
    }
}
