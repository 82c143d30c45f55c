//! Throw-away networks for the namespace tests (`tests/`), `cargo xtask
//! demo` and the bench (`carp-bench`), written once:
//!
//! - [`Netns`]: a network namespace named `<prefix>-<pid>-<n>` (or a name
//!   chosen by the caller), deleted on drop with whatever still runs inside;
//!   `ip` commands, commands and code ([`Netns::run`], [`spawn_in`]) run
//!   inside it;
//! - [`veth`] pairs between namespaces, and a [`Bridge`]: a "switch"
//!   namespace whose `br0` joins hosts into one LAN;
//! - [`ChildGuard`] and [`Captured`]: child processes killed and reaped on
//!   drop, waited for with a deadline, their output captured; [`Lines`] of
//!   a child's output with a deadline; [`output`], a command run to
//!   completion that fails with its output;
//! - [`socket`]: the `AF_PACKET` socket a test or the bench receives and
//!   sends whole frames with;
//! - [`require_root`]: the root / CI gate of every namespace test;
//! - [`gateway`]: a NAT gateway pair with conntrackd, and [`flow`], a TCP
//!   flow through it whose outage is measured (issue 21).
//!
//! Nothing here needs root to compile; everything that touches the network
//! needs it to run, and touches only the namespaces it created (no host
//! interface). Every failure is an [`Error`] naming the command or call and
//! what it said; tests turn them into panics.
#![deny(missing_docs)]

pub mod flow;
mod gate;
pub mod gateway;
mod link;
mod netns;
mod process;
pub mod socket;

use std::io;
use std::process::ExitStatus;

pub use gate::{is_root, require_root};
pub use link::{mac_str, veth, Bridge, Port};
pub use netns::{enter, spawn_in, Netns};
pub use process::{output, Captured, ChildGuard, Lines};

/// Why setting up or using a throw-away network failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started.
    #[error("cannot run {command}: {io}")]
    Spawn {
        /// The command, as `Debug` prints it.
        command: String,
        /// Why it could not start.
        #[source]
        io: io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {output}")]
    Failed {
        /// The command, as `Debug` prints it.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard output and error.
        output: String,
    },
    /// A system call or file operation failed.
    #[error("{op}: {io}")]
    Os {
        /// What was being done.
        op: String,
        /// The error.
        #[source]
        io: io::Error,
    },
    /// The output of a command lacked what was looked for.
    #[error("no {what} in {output:?}")]
    Parse {
        /// What was looked for.
        what: &'static str,
        /// The output.
        output: String,
    },
    /// Code run inside a namespace panicked (its message is printed by the
    /// panic hook).
    #[error("the thread inside namespace {ns} panicked")]
    Panicked {
        /// The namespace.
        ns: String,
    },
}

impl Error {
    /// The last OS error, for `op`.
    pub fn last_os(op: impl Into<String>) -> Error {
        Error::Os {
            op: op.into(),
            io: io::Error::last_os_error(),
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
