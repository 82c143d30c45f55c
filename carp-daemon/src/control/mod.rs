//! The control socket behind `carpd-xdp status`.
//!
//! ```text
//!  carpd-xdp status ──"status\n"──▶ ControlServer (unix socket, 0600)
//!        ▲                              │ ControlRequest::Status { reply }
//!        │                              ▼ (mpsc)
//!        └──── one JSON line ◀──── main loop fills a StatusReport (oneshot)
//! ```
//!
//! Without `--socket`, `status` asks every daemon on the host
//! ([`find`]).
//!
//! The server owns no protocol state: each request goes to the main loop,
//! which answers with a [`StatusReport`] snapshot. The metrics endpoint
//! ([`crate::metrics`]) asks the same way.

use std::io;
use std::path::PathBuf;

use tokio::sync::oneshot;

pub mod accept;
pub mod client;
pub mod find;
pub mod report;
pub mod server;
pub mod watch;

pub use client::{query, render_table};
pub use report::{InstanceReport, InterfaceReport, StatusReport};
pub use server::ControlServer;

/// A request from the control socket (or the metrics endpoint) to the main
/// loop.
#[derive(Debug)]
pub enum ControlRequest {
    /// Take a snapshot of every instance and the receive path.
    Status {
        /// Where the main loop sends the snapshot.
        reply: oneshot::Sender<StatusReport>,
    },
}

/// Errors of the control socket, on the daemon side and the client side.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A socket or file operation on the control socket failed.
    #[error("{op} {path}", path = path.display())]
    Io {
        /// What we were doing (`bind`, `connect to`, `read answer from`, ...).
        op: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another daemon already answers on the socket.
    #[error(
        "a daemon already answers on {path}: stop it or choose another status_socket",
        path = path.display()
    )]
    AlreadyRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket is in the way.
    #[error("{path} exists and is not a socket: refusing to replace it", path = path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// No socket at the path: the daemon is not running (or uses another
    /// path).
    #[error("is carpd-xdp running? no socket at {path}", path = path.display())]
    NoDaemon {
        /// The socket path.
        path: PathBuf,
    },
    /// No carpd-xdp socket in the run directory (`status` without
    /// `--socket`).
    #[error(
        "is carpd-xdp running? no socket at {shared} nor {instances}",
        shared = run_dir.join(find::SHARED_SOCKET).display(),
        instances = run_dir.join("carpd-xdp-<interface>-<vhid>.sock").display()
    )]
    NoSockets {
        /// The directory searched.
        run_dir: PathBuf,
    },
    /// A socket file exists but nothing listens on it.
    #[error("is carpd-xdp running? nothing answers at {path} (stale socket)", path = path.display())]
    NotAnswering {
        /// The socket path.
        path: PathBuf,
    },
    /// The daemon did not answer in time.
    #[error("no answer from {path} within {secs} s", path = path.display())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The time waited, seconds.
        secs: u64,
    },
    /// The daemon closed the connection without answering.
    #[error("the daemon closed {path} without answering", path = path.display())]
    Empty {
        /// The socket path.
        path: PathBuf,
    },
    /// The answer is not a status report.
    #[error("unreadable answer from {path} ({answer:?})", path = path.display())]
    Malformed {
        /// The socket path.
        path: PathBuf,
        /// The start of the answer.
        answer: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon answered with an error.
    #[error("the daemon answered: {message}")]
    Remote {
        /// The daemon's message.
        message: String,
    },
}
