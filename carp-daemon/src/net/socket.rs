//! The raw sockets of the network layer, opened one way: `socket2` for the
//! socket and every option it has a safe call for, and the few `unsafe`
//! calls it lacks gathered here, each with its `SAFETY` comment. Used by
//! the advert sender ([`super::sender`], raw IP), the announcer
//! ([`super::announce`], `AF_PACKET`) and the fallback receive path
//! (`crate::xdp::fallback`, `AF_PACKET`).

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A non-blocking, close-on-exec `SOCK_RAW` socket of `domain` for
/// `protocol` (an IP protocol number for raw IP, an EtherType in network
/// order for `AF_PACKET`, 0 for a send-only packet socket).
pub(crate) fn raw(domain: Domain, protocol: i32) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(protocol)))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Hands `socket` to the tokio reactor (must be called inside a runtime).
pub(crate) fn register(socket: Socket, interest: Interest) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the Socket moves into the AsyncFd and keeps its descriptor
    // open, unchanged, for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(Into::into)
}

/// Sets an option socket2 has no call for; `value` is passed by size.
pub(crate) fn set_option<T>(socket: &Socket, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points at a live T of the size passed; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A link-layer address naming interface `ifindex`, every other field zero.
fn link_address(ifindex: i32) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: 0,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

/// Binds the packet socket `socket` to interface `ifindex`.
pub(crate) fn bind_packet(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of Linux's sockaddr types (it fits the
    // storage), and the length passed is its size.
    let addr = unsafe {
        *storage.view_as::<libc::sockaddr_ll>() = link_address(ifindex);
        SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    };
    socket.bind(&addr)
}

/// One `recvfrom` on a packet socket: the frame's length and its link-layer
/// address (interface, packet type).
pub(crate) fn recv_packet(
    socket: &Socket,
    buf: &mut [u8],
) -> io::Result<(usize, libc::sockaddr_ll)> {
    let mut addr = link_address(0);
    let mut addr_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buf and addr are valid for writes of the lengths given.
    let n = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            std::ptr::from_mut(&mut addr).cast(),
            &mut addr_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, addr))
}
