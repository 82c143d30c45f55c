//! The daemon side of the control socket: one line in (`status`), one JSON
//! line out, then close.
//!
//! The socket is created mode 0600 (status shows addresses and counters
//! only, but there is no reason for other users to poll the daemon). A
//! socket file left by a crashed run is replaced; one a live daemon answers
//! on is not.
//!
//! At most [`MAX_CONNECTIONS`] clients are served at a time, each for at
//! most [`IO_TIMEOUT`] per direction; while all are taken nothing is
//! accepted, so further clients wait in the socket's backlog (their
//! `connect` blocks, or fails with `EAGAIN` when non-blocking, once it is
//! full) and cost the daemon no file descriptor.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{ControlError, ControlRequest, StatusReport};

use crate::chain::Chain;

/// How long the main loop has to answer a request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Clients served at once; more wait in the socket's backlog.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client has to send its request and read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line read, in bytes.
const MAX_REQUEST_BYTES: u64 = 1024;

/// The listening control socket. Dropping it stops the accept task (and
/// the connections it serves) and removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    /// The socket path.
    path: PathBuf,
    /// (device, inode) of the file we created, so drop removes only ours.
    file_id: (u64, u64),
    /// The accept loop.
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Binds the socket at `path` and starts answering; requests go to the
    /// main loop over `requests`.
    ///
    /// A socket file nobody answers on is removed first; if a daemon
    /// answers, this fails with [`ControlError::AlreadyRunning`]. Must be
    /// called from within a tokio runtime.
    pub fn bind(
        path: &Path,
        requests: mpsc::Sender<ControlRequest>,
    ) -> Result<ControlServer, ControlError> {
        remove_stale(path)?;
        let listener = UnixListener::bind(path).map_err(|source| ControlError::Io {
            op: "bind",
            path: path.to_owned(),
            source,
        })?;
        let file_id = match secure(path) {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        let task = tokio::spawn(crate::control::accept::serve_connections(
            listener,
            MAX_CONNECTIONS,
            "control socket",
            move |stream| serve(stream, requests.clone()),
        ));
        Ok(ControlServer {
            path: path.to_owned(),
            file_id,
            task,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file_id);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!(path = %self.path.display(), error = %Chain(&e), "cannot remove control socket");
            }
        }
    }
}

/// Removes a socket file nothing answers on; refuses to touch anything
/// else.
fn remove_stale(path: &Path) -> Result<(), ControlError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Io {
                op: "inspect",
                path: path.to_owned(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_owned(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ControlError::AlreadyRunning {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!(path = %path.display(), "removing stale control socket");
            std::fs::remove_file(path).map_err(|source| ControlError::Io {
                op: "remove stale socket",
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(ControlError::Io {
            op: "probe existing socket",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Sets mode 0600 and returns the file's (device, inode).
fn secure(path: &Path) -> Result<(u64, u64), ControlError> {
    let io_err = |op| {
        move |source| ControlError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("set mode 0600 on"))?;
    let meta = std::fs::symlink_metadata(path).map_err(io_err("inspect"))?;
    Ok((meta.dev(), meta.ino()))
}

/// Reads one request line, writes one answer line, closes.
async fn serve(stream: UnixStream, requests: mpsc::Sender<ControlRequest>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    match tokio::time::timeout(IO_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            debug!(error = %Chain(&e), "control request unreadable");
            return;
        }
        Err(_) => {
            debug!("control client sent no request in time");
            return;
        }
    }
    let answer = answer(line.trim(), &requests).await;
    let sent = tokio::time::timeout(IO_TIMEOUT, async {
        write.write_all(answer.as_bytes()).await?;
        write.shutdown().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %Chain(&e), "control answer not sent"),
        Err(_) => debug!("control client did not read the answer in time"),
    }
}

/// The answer line (with its newline) to one request.
async fn answer(command: &str, requests: &mpsc::Sender<ControlRequest>) -> String {
    match command {
        "status" => match request_status(requests).await {
            Ok(report) => match serde_json::to_string(&report) {
                Ok(json) => json + "\n",
                Err(e) => error_line(&format!("cannot encode the status: {e}")),
            },
            Err(e) => error_line(&e.to_string()),
        },
        other => error_line(&format!("unknown command {other:?} (expected \"status\")")),
    }
}

/// Why the main loop gave no status snapshot.
#[derive(Debug, thiserror::Error)]
pub enum StatusRequestError {
    /// The main loop's request channel is closed.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The main loop dropped the reply channel without answering.
    #[error("the main loop dropped the request")]
    Dropped,
    /// No answer within [`REPLY_TIMEOUT`].
    #[error("the main loop did not answer within {} s", REPLY_TIMEOUT.as_secs())]
    Timeout,
}

/// Asks the main loop for a snapshot; the error's text is the message for
/// the client.
pub(crate) async fn request_status(
    requests: &mpsc::Sender<ControlRequest>,
) -> Result<StatusReport, StatusRequestError> {
    let (reply, answer) = oneshot::channel();
    let asked = async {
        requests
            .send(ControlRequest::Status { reply })
            .await
            .map_err(|_| StatusRequestError::ShuttingDown)?;
        answer.await.map_err(|_| StatusRequestError::Dropped)
    };
    tokio::time::timeout(REPLY_TIMEOUT, asked)
        .await
        .unwrap_or(Err(StatusRequestError::Timeout))
}

/// `{"error": "..."}` and a newline.
fn error_line(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string() + "\n"
}
