//! What an [`super::instance::Instance`] shows of itself: its state, its
//! master and its counters, for `carpd-xdp status` and the metrics.

use std::net::IpAddr;

use super::action::{Reason, State};
use super::peer::PeerKind;
use super::reject::RejectCounts;
use super::Nanos;

/// A read-only view of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Current state.
    pub state: State,
    /// The current master: ours when MASTER, the last accepted sender when
    /// BACKUP.
    pub master: Option<IpAddr>,
    /// What the master's adverts show of its implementation (BACKUP).
    pub master_kind: Option<PeerKind>,
    /// When the last advert was accepted.
    pub last_advert_at: Option<Nanos>,
    /// Our demote counter.
    pub demote: u8,
    /// Held in BACKUP by [`super::action::Admin::GoBackup`].
    pub held: bool,
    /// Adverts we sent; with adverts prepared ahead, the slots that came
    /// due while MASTER, whether the daemon or a stand-in sent each.
    pub adverts_sent: u64,
    /// Adverts accepted.
    pub adverts_accepted: u64,
    /// Of those, repeated counters of peers that take on the counters they
    /// hear: proof of life only (see [`super::replay::Admission::Repeat`]).
    pub adverts_repeated: u64,
    /// State changes so far.
    pub transitions: u64,
    /// When the state last changed, and why.
    pub last_change: Option<(Nanos, Reason)>,
    /// Counter of our last advert.
    pub last_counter_sent: Option<u64>,
    /// Rejected adverts by kind.
    pub rejects: RejectCounts,
}
