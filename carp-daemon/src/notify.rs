//! systemd readiness notification (`sd_notify(3)`) without libsystemd.
//!
//! When the service manager sets `$NOTIFY_SOCKET`, state lines such as
//! `READY=1` are sent as one datagram to that unix socket; a name starting
//! with `@` is in the abstract namespace. Without the variable every call is
//! a no-op, so the daemon runs the same under systemd and elsewhere. The
//! socket is non-blocking: a full queue is reported, never waited on.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Errors of sending notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` names neither a path nor an abstract socket.
    #[error("unsupported NOTIFY_SOCKET {value:?} (expected /path or @abstract)")]
    BadAddress {
        /// The variable's value.
        value: String,
    },
    /// A state line contains a newline inside a value, or is empty.
    #[error("invalid notification {state:?}")]
    BadState {
        /// The offending text.
        state: String,
    },
    /// A socket call failed.
    #[error("{op} {addr}")]
    Io {
        /// The call (`socket`, `send`).
        op: &'static str,
        /// The socket address as given.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Sends notifications to the service manager, if there is one.
#[derive(Debug)]
pub struct Notifier {
    /// The socket and its address, or `None` when not run by systemd.
    target: Option<Target>,
}

#[derive(Debug)]
struct Target {
    /// An unbound datagram socket.
    socket: UnixDatagram,
    /// Where notifications go.
    addr: SocketAddr,
    /// The address as given, for messages.
    name: String,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a no-op one when it is unset or
    /// empty. The variable is left in the environment.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(v) if !v.is_empty() => Notifier::with_address(&v),
            _ => Ok(Notifier::disabled()),
        }
    }

    /// A notifier that does nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A notifier for an explicit address: a filesystem path, or `@name` for
    /// the abstract namespace.
    pub fn with_address(value: &str) -> Result<Notifier, NotifyError> {
        let bad = || NotifyError::BadAddress {
            value: value.to_owned(),
        };
        let io_err = |op| {
            move |source| NotifyError::Io {
                op,
                addr: value.to_owned(),
                source,
            }
        };
        let addr = if let Some(name) = value.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(|_| bad())?
        } else if value.starts_with('/') {
            SocketAddr::from_pathname(value).map_err(|_| bad())?
        } else {
            // vsock: addresses are not supported here.
            return Err(bad());
        };
        let socket = UnixDatagram::unbound().map_err(io_err("socket"))?;
        socket.set_nonblocking(true).map_err(io_err("socket"))?;
        Ok(Notifier {
            target: Some(Target {
                socket,
                addr,
                name: value.to_owned(),
            }),
        })
    }

    /// Whether notifications are sent anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `READY=1` (start-up finished).
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.notify(&["READY=1"])
    }

    /// Sends `STATUS=<text>` (a line shown by `systemctl status`); newlines
    /// in `text` are replaced by spaces.
    pub fn status(&self, text: &str) -> Result<(), NotifyError> {
        self.notify(&[&format!("STATUS={}", text.replace('\n', " "))])
    }

    /// Sends `STOPPING=1` (shutdown begun).
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify(&["STOPPING=1"])
    }

    /// Sends `RELOADING=1` (configuration reload begun; send [`ready`]
    /// again when it is done).
    ///
    /// [`ready`]: Notifier::ready
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.notify(&["RELOADING=1"])
    }

    /// Sends several `KEY=value` lines in one datagram.
    pub fn notify(&self, states: &[&str]) -> Result<(), NotifyError> {
        let Some(t) = &self.target else { return Ok(()) };
        if let Some(bad) = states
            .iter()
            .find(|s| s.is_empty() || s.contains('\n') || !s.contains('='))
        {
            return Err(NotifyError::BadState {
                state: (*bad).to_owned(),
            });
        }
        let msg = states.join("\n");
        t.socket
            .send_to_addr(msg.as_bytes(), &t.addr)
            .map_err(|source| NotifyError::Io {
                op: "send",
                addr: t.name.clone(),
                source,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn path_socket_receives_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::with_address(path.to_str().unwrap()).unwrap();
        assert!(n.enabled());
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
        n.status("2 instances\nall MASTER").unwrap();
        assert_eq!(recv(&server), "STATUS=2 instances all MASTER");
        n.notify(&["STOPPING=1", "STATUS=bye"]).unwrap();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=bye");
    }

    #[test]
    fn abstract_socket_receives_states() {
        let name = format!("carpd-xdp-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::with_address(&format!("@{name}")).unwrap();
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn disabled_is_a_no_op_and_bad_input_is_rejected() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.ready().unwrap();
        assert!(matches!(
            Notifier::with_address("vsock:2:1234"),
            Err(NotifyError::BadAddress { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let _server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::with_address(path.to_str().unwrap()).unwrap();
        assert!(matches!(
            n.notify(&["READY=1\nX"]),
            Err(NotifyError::BadState { .. })
        ));
        assert!(matches!(
            n.notify(&["nonsense"]),
            Err(NotifyError::BadState { .. })
        ));
    }

    #[test]
    fn missing_listener_is_an_error_naming_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.sock");
        let n = Notifier::with_address(path.to_str().unwrap()).unwrap();
        let err = n.ready().unwrap_err();
        assert!(err.to_string().contains("absent.sock"), "{err}");
    }
}
