//! The CARP protocol core, sans-I/O.
//!
//! The contract, as in quinn-proto: everything here is deterministic. Nothing
//! in this crate reads a clock, opens a socket, spawns a thread, draws a
//! random number or touches tokio. Time goes in as [`Nanos`] (CLOCK_MONOTONIC,
//! the clock of the XDP event's `timestamp_ns`) with every `handle_*` call;
//! deadlines come out of [`instance::Instance::poll_timeout`]; what the daemon
//! must do comes out of [`instance::Instance::poll_action`]. The wall-clock
//! time needed to seed the advert counter is passed in once, at creation.
//!
//! Cargo holds it to that: the crate depends on `carp-common` (without aya),
//! `hmac`, `sha1`, `subtle` and `thiserror` only, so there is no tokio or
//! netlink to reach for; what `std` still offers (its clocks, sockets, files
//! and threads) is refused by `clippy.toml` next to the manifest. The daemon
//! (`carp-daemon`) carries out what comes out.
//!
//! The crate reads top to bottom like `ip_carp.c`:
//! - [`auth`]: the HMAC-SHA1 of an advert and its constant-time check;
//! - [`counter`]: the counter we send (wall-clock derived, tagged);
//! - [`replay`]: which received counters are accepted, per source and vhid;
//! - [`timers`]: the advert and master-down intervals and the timer table;
//! - [`params`]: the configuration of one virtual host and its validation;
//! - [`peer`]: which implementation sent an advert, and what follows;
//! - [`election`]: who is the better master, as each peer sees it;
//! - [`reject`]: why a received advert was dropped;
//! - [`action`]: states, reasons, admin requests, actions;
//! - [`ahead`]: a master's adverts prepared for the next slots, for a
//!   stand-in to send when the daemon is late;
//! - [`status`]: the read-only view of an instance;
//! - [`instance`]: the INIT/BACKUP/MASTER state machine of one (interface, vhid);
//! - [`group`]: a sync group, instances that change state together.
#![deny(missing_docs)]

pub mod action;
pub mod ahead;
pub mod auth;
pub mod counter;
pub mod election;
pub mod group;
pub mod instance;
pub mod params;
pub mod peer;
pub mod reject;
pub mod replay;
pub mod status;
pub mod timers;

pub use action::{Action, Admin, Reason, Script, State};
pub use auth::{AuthError, Password};
pub use auth::{LinkLocalHmac, UnknownLinkLocalHmac};
pub use group::{Group, GroupCommand, GroupState};
pub use instance::Instance;
pub use params::{InstanceParams, ParamsError};
pub use peer::{PeerKind, PeerParseError, Sender};
pub use reject::Reject;
pub use replay::{ReplayError, ReplayMode, UnknownReplayMode};
pub use status::Status;
pub use timers::{MasterDownRule, UnknownMasterDownRule};

use std::fmt;

/// A point in time or a duration in nanoseconds of CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub u64);

impl Nanos {
    /// Nanoseconds in one second.
    pub const PER_SEC: u64 = 1_000_000_000;
    /// Zero.
    pub const ZERO: Nanos = Nanos(0);

    /// `secs` whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Nanos(secs.saturating_mul(Self::PER_SEC))
    }

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Nanos(ms.saturating_mul(1_000_000))
    }

    /// `self + rhs`, saturating at the end of time instead of wrapping.
    pub const fn saturating_add(self, rhs: Nanos) -> Self {
        Nanos(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, or zero when `rhs` is later.
    pub const fn saturating_sub(self, rhs: Nanos) -> Self {
        Nanos(self.0.saturating_sub(rhs.0))
    }

    /// `self × factor`, saturating.
    pub const fn saturating_mul(self, factor: u64) -> Self {
        Nanos(self.0.saturating_mul(factor))
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / Self::PER_SEC,
            self.0 % Self::PER_SEC
        )
    }
}

/// Before `key` is inserted into `map`, bounded to `capacity` entries:
/// forgets the entry least recently `touched` if `key` is new and the map
/// is full, and returns it (for its allocations to be reused).
fn make_room<K: Ord + Copy, V>(
    map: &mut std::collections::BTreeMap<K, V>,
    key: &K,
    capacity: usize,
    touched: impl Fn(&V) -> u64,
) -> Option<V> {
    if map.contains_key(key) || map.len() < capacity {
        return None;
    }
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| touched(v))
        .map(|(k, _)| *k)?;
    map.remove(&oldest)
}
