//! The `AF_PACKET` socket tests and the bench see and send whole Ethernet
//! frames with, in the calling thread's namespace (open it from
//! [`crate::Netns::run`] or [`crate::spawn_in`]), and the few socket calls
//! around it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::{Error, Result};

/// A socket(2), checked, close-on-exec.
pub fn socket(domain: i32, kind: i32, protocol: i32) -> Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(Error::last_os(format!(
            "socket({domain}, {kind}, {protocol})"
        )));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A raw `AF_PACKET` socket for EtherType `protocol` (host order;
/// `libc::ETH_P_ALL` for every frame, 0 to send only) bound to interface
/// `ifindex`; `flags` are more socket(2) type flags (`SOCK_NONBLOCK`).
pub fn packet_socket(protocol: u16, ifindex: u32, flags: i32) -> Result<OwnedFd> {
    let fd = socket(
        libc::AF_PACKET,
        libc::SOCK_RAW | flags,
        protocol.to_be().into(),
    )?;
    bind_packet(&fd, protocol, ifindex)?;
    Ok(fd)
}

/// Binds an `AF_PACKET` socket to interface `ifindex` for EtherType
/// `protocol` (host order).
pub fn bind_packet(fd: &OwnedFd, protocol: u16, ifindex: u32) -> Result<()> {
    let mut addr = sockaddr_ll(ifindex);
    addr.sll_protocol = protocol.to_be();
    bind(fd, &addr, &format!("bind to interface index {ifindex}"))
}

/// bind(2) to `addr`, a `libc::sockaddr_*` value; `what` names it in the
/// error.
pub fn bind<A>(fd: &OwnedFd, addr: &A, what: &str) -> Result<()> {
    // SAFETY: valid fd; `addr` is readable for the size given, and the
    // kernel checks the address family and length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const A).cast(),
            size_of::<A>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(what));
    }
    Ok(())
}

/// The link-layer address of interface `ifindex` for a 6-byte MAC
/// (protocol and address left to the caller).
pub fn sockaddr_ll(ifindex: u32) -> libc::sockaddr_ll {
    // SAFETY: all-zero sockaddr_ll is valid; fields set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    addr.sll_halen = 6;
    addr
}

/// Sends one whole Ethernet frame out of interface `ifindex`.
pub fn send_frame(fd: &OwnedFd, ifindex: u32, frame: &[u8]) -> std::io::Result<()> {
    let mut addr = sockaddr_ll(ifindex);
    addr.sll_addr[..6].copy_from_slice(&frame[..6]);
    match send_to(fd, frame, &addr, 0)? {
        n if n == frame.len() => Ok(()),
        n => Err(std::io::Error::other(format!(
            "sent {n} of {} bytes",
            frame.len()
        ))),
    }
}

/// sendto(2) of `buf` to `addr`, a `libc::sockaddr_*` value, with `flags`:
/// the bytes sent.
pub fn send_to<A>(fd: &OwnedFd, buf: &[u8], addr: &A, flags: i32) -> std::io::Result<usize> {
    // SAFETY: valid fd; `buf` and `addr` are readable for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            flags,
            (addr as *const A).cast(),
            size_of::<A>() as libc::socklen_t,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// One frame into `buf` without blocking: its length and whether this host
/// sent it (`PACKET_OUTGOING`); `None` when there is none.
pub fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, bool)> {
    // SAFETY: all-zero sockaddr_ll is valid.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as u32;
    // SAFETY: buf and from are valid for the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut from as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    (n > 0).then_some((n as usize, from.sll_pkttype == libc::PACKET_OUTGOING))
}

/// Waits at most `timeout` (capped at 1 s) for `fd` to be readable.
pub fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(0, 1000) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// Sets socket option `level`/`name` to `value` (an `i32`, a
/// `libc::timeval`, a `libc::tpacket_req`, ...); `what` names it in the
/// error.
pub fn set_option<T>(fd: &OwnedFd, level: i32, name: i32, value: &T, what: &str) -> Result<()> {
    // SAFETY: valid fd; `value` is readable for the size given (the kernel
    // copies it and checks the length).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(what));
    }
    Ok(())
}

/// Sets an integer socket option; `what` names it in the error.
pub fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32, what: &str) -> Result<()> {
    set_option(
        fd,
        level,
        name,
        &value,
        &format!("setsockopt {what} = {value}"),
    )
}

/// Sets a receive timeout so that reader threads can notice a stop flag.
pub fn set_recv_timeout(fd: &OwnedFd, d: Duration) -> Result<()> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")
}
