//! The configuration of one virtual host (one interface and vhid).

use std::net::IpAddr;

use super::auth::{LinkLocalHmac, Password};
use super::election::demoted_advskew;
use super::replay::ReplayMode;
use super::timers::{advert_interval, master_down_interval, MasterDownRule};
use super::Nanos;

/// Errors of this module: a configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// vhid 0 is not a virtual host id.
    #[error("vhid {vhid} is out of range 1..=255")]
    Vhid {
        /// The vhid given.
        vhid: u8,
    },
    /// advskew 255 is reserved for the leave advert.
    #[error("advskew {advskew} is out of range 0..=254")]
    Advskew {
        /// The advskew given.
        advskew: u8,
    },
    /// deadratio 0 would take over at once.
    #[error("deadratio {deadratio} must be at least 1")]
    Deadratio {
        /// The deadratio given.
        deadratio: u8,
    },
    /// Backups would take over before the next advert could arrive.
    #[error(
        "master-down interval {master_down} is not longer than the advert interval {interval}"
    )]
    MasterDownTooShort {
        /// The master-down interval these settings give.
        master_down: Nanos,
        /// The advert interval these settings give.
        interval: Nanos,
    },
    /// A virtual host needs at least one address.
    #[error("no virtual address given for vhid {vhid}")]
    NoVips {
        /// The vhid.
        vhid: u8,
    },
    /// Without a source address, adverts cannot be sent or compared.
    #[error("no source address given for vhid {vhid}")]
    NoSourceAddress {
        /// The vhid.
        vhid: u8,
    },
    /// Announcements repeat every so many adverts; zero is not a period.
    #[error("announce period of {adverts} adverts must be at least 1")]
    AnnouncePeriod {
        /// The period given.
        adverts: u8,
    },
    /// A replay window under a millisecond would refuse every advert.
    #[error("replay window {window} is shorter than the 1 ms resolution of counters")]
    ReplayWindow {
        /// The window given.
        window: Nanos,
    },
}

/// Everything one state machine needs to know.
#[derive(Clone, Debug)]
pub struct InstanceParams {
    /// Virtual host id, 1..=255.
    pub vhid: u8,
    /// Base advert interval in seconds, 0..=255.
    pub advbase_secs: u8,
    /// Skew added to advbase, in 1/256 s, 0..=254; the higher, the less
    /// preferred.
    pub advskew: u8,
    /// Multiplier of the master-down interval (UCARP `--deadratio`, default 3).
    pub deadratio: u8,
    /// Master-down formula.
    pub master_down_rule: MasterDownRule,
    /// Take over from a less preferred master (UCARP `--preempt`, OpenBSD
    /// `net.inet.carp.preempt`).
    pub preempt: bool,
    /// Do not run the down script (nor remove addresses) when starting as
    /// backup (UCARP `--neutral`).
    pub neutral: bool,
    /// Run the down script when leaving for good ([`super::Admin::Shutdown`])
    /// as MASTER or INIT (UCARP `--shutdown`, `-z`); a BACKUP ran it when it
    /// became one, and UCARP skips it there too (`sc_state != BACKUP` at
    /// exit). Without it, leaving runs no script, not even as master, as
    /// UCARP without `-z`.
    pub down_script_at_exit: bool,
    /// Demotion counter sent in adverts; higher loses (OpenBSD carpdemote).
    pub demote: u8,
    /// Shared secret.
    pub password: Password,
    /// The virtual addresses of this vhid (all of them enter the HMAC).
    pub vips: Vec<IpAddr>,
    /// Our own source address(es) on the interface, one per family used;
    /// adverts from them are ours, and they break ties.
    pub source_addrs: Vec<IpAddr>,
    /// Replay rule for received adverts.
    pub replay_mode: ReplayMode,
    /// Optional window around our wall clock for counters' embedded time.
    pub replay_window: Option<Nanos>,
    /// Gratuitous ARP / unsolicited NA rounds on takeover (0 = none).
    pub announce_rounds: u8,
    /// Adverts between two announcement rounds.
    pub announce_every_adverts: u8,
    /// How IPv6 link-local VIPs enter the HMAC we send.
    pub hmac_link_local: LinkLocalHmac,
    /// The peer allow-list: when not empty, adverts from other sources are
    /// refused.
    pub allowed_peers: Vec<super::peer::AllowedPeer>,
}

impl InstanceParams {
    /// Parameters with the defaults of UCARP: advbase 1 s, advskew 0,
    /// deadratio 3 with UCARP's rule, no preempt, not neutral, no down script
    /// at exit, demote 0, auto replay mode without a window, two announcement
    /// rounds two adverts apart.
    pub fn new(vhid: u8, password: Password, vips: Vec<IpAddr>, source_addrs: Vec<IpAddr>) -> Self {
        Self {
            vhid,
            advbase_secs: 1,
            advskew: 0,
            deadratio: 3,
            master_down_rule: MasterDownRule::Ucarp,
            preempt: false,
            neutral: false,
            down_script_at_exit: false,
            demote: 0,
            password,
            vips,
            source_addrs,
            replay_mode: ReplayMode::Auto,
            replay_window: None,
            announce_rounds: 2,
            announce_every_adverts: 2,
            hmac_link_local: LinkLocalHmac::Include,
            allowed_peers: Vec::new(),
        }
    }

    /// The advskew we advertise: the configured one, or while demoted the
    /// configured one scaled into 241..=254 ([`demoted_advskew`]). OpenBSD
    /// and carpd-xdp read the demote byte; UCARP and FreeBSD ignore it and
    /// see only this, as FreeBSD itself advertises its demotion. Our own
    /// timers follow it too, as FreeBSD's do.
    pub fn wire_advskew(&self) -> u8 {
        if self.demote > 0 {
            demoted_advskew(self.advskew)
        } else {
            self.advskew
        }
    }

    /// Our advert interval, from the advskew we advertise.
    pub fn advert_interval(&self) -> Nanos {
        advert_interval(self.advbase_secs, self.wire_advskew())
    }

    /// Our master-down interval, from the advskew we advertise.
    pub fn master_down_interval(&self) -> Nanos {
        master_down_interval(
            self.master_down_rule,
            self.deadratio,
            self.advbase_secs,
            self.wire_advskew(),
        )
    }

    /// Checks that these parameters can run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.vhid == 0 {
            return Err(ParamsError::Vhid { vhid: self.vhid });
        }
        if self.advskew == u8::MAX {
            return Err(ParamsError::Advskew {
                advskew: self.advskew,
            });
        }
        if self.deadratio == 0 {
            return Err(ParamsError::Deadratio {
                deadratio: self.deadratio,
            });
        }
        let (master_down, interval) = (self.master_down_interval(), self.advert_interval());
        if master_down <= interval {
            return Err(ParamsError::MasterDownTooShort {
                master_down,
                interval,
            });
        }
        if self.vips.is_empty() {
            return Err(ParamsError::NoVips { vhid: self.vhid });
        }
        if self.source_addrs.is_empty() {
            return Err(ParamsError::NoSourceAddress { vhid: self.vhid });
        }
        if self.announce_every_adverts == 0 {
            return Err(ParamsError::AnnouncePeriod {
                adverts: self.announce_every_adverts,
            });
        }
        if let Some(window) = self.replay_window.filter(|w| w.0 < 1_000_000) {
            return Err(ParamsError::ReplayWindow { window });
        }
        Ok(())
    }
}
