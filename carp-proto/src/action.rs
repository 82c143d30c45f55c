//! What goes into and comes out of an [`super::instance::Instance`] besides
//! adverts and time: states, reasons, administrative requests and actions
//! (the status snapshot is in [`super::status`]).

use std::fmt;

use carp_common::header::CarpHeader;

/// The CARP states (carp(4)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not taking part: link down or shut down.
    Init,
    /// Listening; takes over when the master goes quiet.
    Backup,
    /// Holding the virtual addresses and advertising.
    Master,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
        })
    }
}

/// Why the state changed, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The instance started.
    Startup,
    /// No advert for the master-down interval.
    MasterDown,
    /// A less preferred master was heard and preempt is on.
    Preempt,
    /// The master advertises a higher demote counter than ours.
    PeerDemoted,
    /// The master sent a leave advert.
    PeerLeft,
    /// The master advertises so rarely that it would time out anyway.
    SlowMaster,
    /// A more preferred master was heard.
    BetterMaster,
    /// The link went down.
    LinkDown,
    /// The link came up.
    LinkUp,
    /// An administrator asked us to step down.
    AdminBackup,
    /// The daemon is shutting down.
    Shutdown,
    /// Another member of the sync group became master: the group takes
    /// over as one.
    GroupTakeOver,
    /// Another member of the sync group stepped down: the group steps down
    /// as one (with a leave advert, so that the peer takes over at once).
    GroupStepDown,
    /// A member of the sync group is down (INIT): the group bows out and is
    /// held in BACKUP until every member is up again.
    GroupFault,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Startup => "startup",
            Reason::MasterDown => "master down",
            Reason::Preempt => "preempting a less preferred master",
            Reason::PeerDemoted => "master has a higher demote counter",
            Reason::PeerLeft => "master left",
            Reason::SlowMaster => "master advertises slower than master-down",
            Reason::BetterMaster => "preferred master heard",
            Reason::LinkDown => "link down",
            Reason::LinkUp => "link up",
            Reason::AdminBackup => "administrative step down",
            Reason::Shutdown => "shutdown",
            Reason::GroupTakeOver => "sync group member became master",
            Reason::GroupStepDown => "sync group member stepped down",
            Reason::GroupFault => "sync group member down",
        })
    }
}

/// Which user script to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Script {
    /// Became master (UCARP `--upscript`).
    Up,
    /// Gave up mastership, or started as backup (UCARP `--downscript`).
    Down,
}

/// Administrative requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Admin {
    /// Step down now (a leave advert lets a backup take over at once) and
    /// stay backup until [`Admin::Resume`]. UCARP's SIGUSR2 is `GoBackup`
    /// followed by `Resume`: the others get one master-down interval to take
    /// over before we may again.
    GoBackup,
    /// Take part in elections again, starting a fresh master-down interval;
    /// preemption waits for that interval too, so that the others really
    /// get to take over.
    Resume,
    /// Leave for good: INIT; as master, addresses removed and then a leave
    /// advert; the down script only with
    /// [`super::InstanceParams::down_script_at_exit`] (UCARP `-z`).
    Shutdown,
}

/// What the daemon must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this advert, complete (counter, HMAC, checksum), to the group.
    SendAdvert(CarpHeader),
    /// Hold this advert ready for its slot's time, when a stand-in may
    /// send it if the daemon is late (see [`super::ahead`]).
    PrepareAdvert(super::ahead::Slot),
    /// The slot of this prepared advert came: send it unless a stand-in
    /// already did; no prepared advert before it is sent any more.
    SendPrepared(super::ahead::Slot),
    /// No prepared advert may be sent from now on: once this is carried
    /// out, none is on its way either.
    CancelPrepared,
    /// Add every virtual address to the interface.
    AddVips,
    /// Remove every virtual address from the interface.
    RemoveVips,
    /// Send a gratuitous ARP / unsolicited NA for every virtual address.
    Announce,
    /// Run a user script.
    RunScript(Script),
    /// Write this counter reservation to stable storage, without waiting
    /// for it (it is asked for ahead of need, see [`super::counter`]), and
    /// report it written with
    /// [`super::instance::Instance::counter_persisted`]. A restarted
    /// instance starts above it
    /// ([`super::instance::Instance::raise_counter_floor`]).
    PersistCounter(u64),
    /// The state changed (for logging).
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
}
