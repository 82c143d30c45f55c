//! Why a received advert was dropped, one variant per check, in the order of
//! `ip_carp.c`: cheap stateless checks first, then authentication, then
//! replay.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::action::State;
use super::replay::ReplayError;

/// Errors of [`super::instance::Instance::handle_advert`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The instance is in INIT (link down or shut down).
    #[error("advert from {src} ignored in state {state}")]
    NotRunning {
        /// Sender.
        src: IpAddr,
        /// Our state.
        state: State,
    },
    /// Not CARP version 2.
    #[error("advert from {src} has version {version}, expected 2")]
    Version {
        /// Sender.
        src: IpAddr,
        /// Version received.
        version: u8,
    },
    /// Not an advertisement (type 1).
    #[error("advert from {src} has type {kind}, expected 1")]
    Type {
        /// Sender.
        src: IpAddr,
        /// Type received.
        kind: u8,
    },
    /// Authentication length is not 7 words.
    #[error("advert from {src} has authlen {authlen}, expected 7")]
    AuthLen {
        /// Sender.
        src: IpAddr,
        /// Authentication length received.
        authlen: u8,
    },
    /// Addressed to another virtual host.
    #[error("advert from {src} is for vhid {vhid}, expected {expected}")]
    Vhid {
        /// Sender.
        src: IpAddr,
        /// vhid received.
        vhid: u8,
        /// Our vhid.
        expected: u8,
    },
    /// The CARP checksum does not match.
    #[error("advert from {src} has a bad checksum {checksum:#06x}")]
    Checksum {
        /// Sender.
        src: IpAddr,
        /// Checksum received.
        checksum: u16,
    },
    /// One of our own adverts, looped back.
    #[error("advert from our own address {src}")]
    Own {
        /// Sender (one of our addresses).
        src: IpAddr,
    },
    /// The vhid has a peer allow-list and the sender is not on it.
    #[error("advert from {src} (MAC {mac}) is not from an allowed peer")]
    NotAllowed {
        /// Sender.
        src: IpAddr,
        /// Its Ethernet source, `00:00:00:00:00:00` when unknown.
        mac: super::peer::Mac,
    },
    /// The HMAC does not match: wrong password, vhid or address list.
    #[error("advert from {src} with counter {counter} fails authentication")]
    Auth {
        /// Sender.
        src: IpAddr,
        /// Counter received.
        counter: u64,
    },
    /// The counter was refused by the replay rule.
    #[error("advert from {src} refused as a replay")]
    Replay {
        /// Sender.
        src: IpAddr,
        /// Which replay rule refused it.
        #[source]
        source: ReplayError,
    },
}

impl Reject {
    /// A short stable name per kind of rejection, for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Reject::NotRunning { .. } => "not-running",
            Reject::Version { .. } => "version",
            Reject::Type { .. } => "type",
            Reject::AuthLen { .. } => "authlen",
            Reject::Vhid { .. } => "vhid",
            Reject::Checksum { .. } => "checksum",
            Reject::Own { .. } => "own",
            Reject::NotAllowed { .. } => "not-allowed",
            Reject::Auth { .. } => "auth",
            Reject::Replay { source, .. } => source.name(),
        }
    }
}

/// Rejections counted by [`Reject::name`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectCounts {
    /// Count per name.
    counts: BTreeMap<&'static str, u64>,
}

impl RejectCounts {
    /// Counts one rejection.
    pub fn bump(&mut self, reject: &Reject) {
        *self.counts.entry(reject.name()).or_default() += 1;
    }

    /// The count of rejections named `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Every non-zero count, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }

    /// Total of all rejections.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}
