//! carpd-xdp: a CARP daemon whose receive path runs in the kernel as XDP.
#![deny(missing_docs)]

pub mod monitor;
pub mod proto;
pub mod xdp;
