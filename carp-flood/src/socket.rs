//! The `AF_PACKET` socket both send methods start from: raw (whole Ethernet
//! frames as given), protocol 0 (it receives nothing, so a flood coming back
//! costs it nothing), bound to one interface, with the qdisc bypassed
//! (`PACKET_QDISC_BYPASS`: frames go straight to the driver, and a frame the
//! driver refuses is reported at once instead of being queued or dropped
//! silently).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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
    // SAFETY: plain socket(2) call, no pointers.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(SendError::last_os("socket(AF_PACKET, SOCK_RAW)"));
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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
    // SAFETY: an all-zero sockaddr_ll is a valid value; the fields used are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = 0;
    addr.sll_ifindex = ifindex;
    // SAFETY: valid fd; `addr` is a sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(SendError::last_os(format!(
            "bind to interface index {ifindex}"
        )));
    }
    Ok(fd)
}

/// Sets an integer socket option.
pub fn set_int(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    value: i32,
    what: &str,
) -> Result<(), SendError> {
    // SAFETY: valid fd; the pointer is to an i32 of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as u32,
        )
    };
    if rc != 0 {
        return Err(SendError::last_os(format!("setsockopt {what} = {value}")));
    }
    Ok(())
}
