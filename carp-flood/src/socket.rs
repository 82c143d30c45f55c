//! The `AF_PACKET` socket both send methods start from: raw (whole Ethernet
//! frames as given), protocol 0 (it receives nothing, so a flood coming back
//! costs it nothing), bound to one interface, with the qdisc bypassed
//! (`PACKET_QDISC_BYPASS`: frames go straight to the driver, and a frame the
//! driver refuses is reported at once instead of being queued or dropped
//! silently).

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;

use carp_testnet::socket;
pub use carp_testnet::socket::set_int;
use thiserror::Error;

/// Send buffer asked for: room for many frames in flight when the receiver
/// holds on to them.
const SNDBUF_BYTES: i32 = 16 << 20;

/// Why sending failed.
#[derive(Debug, Error)]
pub enum SendError {
    /// An operating-system call failed.
    #[error("{op}")]
    Os {
        /// What was being done.
        op: String,
        /// The error.
        #[source]
        io: io::Error,
    },
    /// The interface does not exist in this network namespace.
    #[error("no interface {name:?} in this network namespace")]
    NoInterface {
        /// The name given.
        name: String,
    },
    /// Opening, binding or setting up the socket failed.
    #[error(transparent)]
    Socket(#[from] carp_testnet::Error),
    /// A frame is larger than a ring slot can take.
    #[error("a frame of {len} bytes is larger than the {max} bytes a TX ring slot can hold")]
    FrameTooLong {
        /// Length of the frame.
        len: usize,
        /// Largest frame supported.
        max: usize,
    },
}

impl SendError {
    /// The last OS error, for `op`.
    pub fn last_os(op: impl Into<String>) -> SendError {
        SendError::Os {
            op: op.into(),
            io: io::Error::last_os_error(),
        }
    }
}

/// True for the errors that mean "the device or the socket is busy, try
/// again": the driver refused a frame (`ENOBUFS`, e.g. a veth peer's backlog
/// is full), the send buffer is full (`EAGAIN`), or a signal came (`EINTR`).
pub fn is_busy(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
    )
}

/// Index of interface `name` in the current network namespace.
pub fn if_index(name: &str) -> Result<i32, SendError> {
    let c = CString::new(name).map_err(|_| SendError::NoInterface { name: name.into() })?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(SendError::NoInterface { name: name.into() });
    }
    Ok(index as i32)
}

/// A raw `AF_PACKET` socket of protocol 0 with the qdisc bypassed and a
/// large send buffer; `before_bind` runs on it before it is bound to
/// interface `ifindex` (the TX ring is set up there).
pub fn packet_socket(
    ifindex: i32,
    before_bind: impl FnOnce(&OwnedFd) -> Result<(), SendError>,
) -> Result<OwnedFd, SendError> {
    let fd = socket::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
    set_int(
        &fd,
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        1,
        "PACKET_QDISC_BYPASS",
    )?;
    // SO_SNDBUFFORCE passes the wmem_max limit (root); plain SO_SNDBUF is
    // the fallback, capped by the kernel.
    if set_int(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        SNDBUF_BYTES,
        "SO_SNDBUFFORCE",
    )
    .is_err()
    {
        set_int(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            SNDBUF_BYTES,
            "SO_SNDBUF",
        )?;
    }
    before_bind(&fd)?;
    socket::bind_packet(&fd, 0, ifindex as u32)?;
    Ok(fd)
}
