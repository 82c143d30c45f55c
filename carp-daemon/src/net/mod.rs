//! The daemon's hands on the host network: virtual addresses over netlink
//! ([`vip`]), interface lookup and carrier tracking ([`link`]), advert
//! sockets ([`sender`]; from a virtual MAC as [`advert_frame`]s), and
//! takeover announcements — gratuitous ARP and unsolicited neighbour
//! advertisements — built by [`frame`] and sent by [`announce`].
//!
//! These modules carry out the actions the protocol core returns; they make
//! no protocol decisions of their own.

pub mod advert_frame;
pub mod announce;
pub mod frame;
pub mod link;
mod rtnl;
pub mod sender;
pub(crate) mod socket;
pub mod vip;
pub mod vmac;
