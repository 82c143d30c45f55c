//! carpd-xdp: a CARP daemon whose receive path runs in the kernel as XDP.
#![deny(missing_docs)]

pub mod assets;
pub mod chain;
pub mod child;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conntrackd;
pub mod control;
pub mod daemon;
pub mod daemonize;
pub mod health;
pub mod lateness;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod notify;
pub mod pace;
pub mod privilege;
pub mod realtime;
pub mod scripts;
pub mod standin;
pub mod timer;
pub mod xdp;

/// The protocol core, its own crate so that Cargo keeps it free of I/O; the
/// daemon and its tests name it `carp_daemon::proto`.
pub use carp_proto as proto;
