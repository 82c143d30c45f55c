//! Helpers shared by the instance tests: parameters, peers, adverts.
// Each test file uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub use std::net::{IpAddr, Ipv4Addr};

pub use carp_common::header::CarpHeader;
pub use carp_proto::auth::Authenticator;
pub use carp_proto::counter::{embedded_millis, is_tagged};
pub use carp_proto::timers::{advert_interval, master_down_interval};
pub use carp_proto::{
    Action, Admin, Instance, InstanceParams, MasterDownRule, Nanos, ParamsError, Password,
    PeerKind, Reason, Reject, ReplayError, ReplayMode, Script, Sender, State,
};

pub const START: Nanos = Nanos(1_000_000_000_000);
pub const START_UNIX_NS: u64 = 1_763_000_000_000_000_000;
pub const VHID: u8 = 5;

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

pub fn vips() -> Vec<IpAddr> {
    vec![ip(100), "2001:db8::100".parse().unwrap()]
}

pub fn params() -> InstanceParams {
    InstanceParams::new(
        VHID,
        Password::new(b"s3cret").unwrap(),
        vips(),
        vec![ip(10)],
    )
}

pub fn auth() -> Authenticator {
    Authenticator::new(Password::new(b"s3cret").unwrap(), &vips())
}

/// A valid advert from a peer.
pub fn advert(advbase: u8, advskew: u8, demote: u8, counter: u64) -> CarpHeader {
    let mut h = CarpHeader::advertisement(VHID, advbase, advskew, demote, counter);
    auth().seal(&mut h);
    h
}

pub fn drain(i: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| i.poll_action()).collect()
}

pub fn started(p: InstanceParams) -> Instance {
    let mut i = Instance::new(p, START, START_UNIX_NS).unwrap();
    drain(&mut i);
    i
}

/// An instance that has just become master by master-down expiry.
pub fn master(p: InstanceParams) -> (Instance, Nanos) {
    let md = p.master_down_interval();
    let mut i = started(p);
    let t = START.saturating_add(md);
    i.handle_timeout(t);
    assert_eq!(i.state(), State::Master);
    drain(&mut i);
    (i, t)
}

pub fn changed(from: State, to: State, reason: Reason) -> Action {
    Action::StateChanged { from, to, reason }
}

pub fn sent(actions: &[Action]) -> Vec<CarpHeader> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(h) => Some(*h),
            _ => None,
        })
        .collect()
}
