//! Sending adverts: one raw IP socket (protocol 112) per instance and
//! address family, TTL / hop limit 255, bound to the interface and our source
//! address, to the CARP group or to each unicast peer.
//!
//! The IPv4 socket also joins 224.0.0.18 (and the IPv6 one ff02::12) on the
//! interface: XDP sees only the frames the NIC lets in, and a NIC filters
//! multicast MAC addresses it was not told about. A classic BPF filter that
//! accepts nothing keeps the kernel from queueing received adverts on these
//! send-only sockets.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use carp_common::constants::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_TTL, IPPROTO_CARP};
use carp_common::header::CarpHeader;

/// Failures of the advert sockets.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A socket call failed.
    #[error("advert socket on {iface}: cannot {op}")]
    Socket {
        /// Interface name.
        iface: String,
        /// The call.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sending one advert failed.
    #[error("cannot send an advert from {from} to {to} on {iface}")]
    Send {
        /// Interface name.
        iface: String,
        /// Our address.
        from: IpAddr,
        /// Destination.
        to: IpAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A raw socket sending one instance's adverts in one address family.
#[derive(Debug)]
pub struct AdvertSocket {
    fd: OwnedFd,
    iface: String,
    source: IpAddr,
    destinations: Vec<SocketAddr>,
}

fn set<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points at a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl AdvertSocket {
    /// Opens the socket for adverts from `source` on interface `iface`
    /// (index `ifindex`), to `peers` if any, else to the CARP group
    /// (`group` overrides 224.0.0.18 / ff02::12, as UCARP's `--mcast`).
    pub fn open(
        iface: &str,
        ifindex: u32,
        source: IpAddr,
        peers: &[IpAddr],
        group: Option<IpAddr>,
    ) -> Result<Self, SendError> {
        let err = |op| {
            let iface = iface.to_string();
            move |source| SendError::Socket { iface, op, source }
        };
        let domain = if source.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(IPPROTO_CARP),
            )
        };
        if raw < 0 {
            return Err(err("open a raw socket")(io::Error::last_os_error()));
        }
        // SAFETY: raw is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut name = [0u8; libc::IFNAMSIZ];
        let bytes = iface.as_bytes();
        name[..bytes.len().min(libc::IFNAMSIZ - 1)]
            .copy_from_slice(&bytes[..bytes.len().min(libc::IFNAMSIZ - 1)]);
        set(&fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &name)
            .map_err(err("bind to the interface"))?;
        let reject_all = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: reject_all.as_ptr().cast_mut(),
        };
        set(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(err("attach the receive filter"))?;
        let ttl = i32::from(CARP_TTL);
        let destinations: Vec<SocketAddr> = match source {
            IpAddr::V4(src) => {
                set(&fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl).map_err(err("set IP_TTL"))?;
                set(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)
                    .map_err(err("set IP_MULTICAST_TTL"))?;
                set(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0i32)
                    .map_err(err("set IP_MULTICAST_LOOP"))?;
                // Low delay, as UCARP and carp(4) send.
                set(&fd, libc::IPPROTO_IP, libc::IP_TOS, &0x10i32).map_err(err("set IP_TOS"))?;
                let group = match group {
                    Some(IpAddr::V4(g)) => g,
                    _ => Ipv4Addr::from(CARP_GROUP_V4),
                };
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(group).to_be(),
                    },
                    imr_address: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    imr_ifindex: ifindex as i32,
                };
                set(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)
                    .map_err(err("set IP_MULTICAST_IF"))?;
                set(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)
                    .map_err(err("join the CARP group"))?;
                let local = libc::sockaddr_in {
                    sin_family: libc::AF_INET as u16,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // The source may not be configured yet at boot: bind anyway.
                set(&fd, libc::IPPROTO_IP, libc::IP_FREEBIND, &1i32)
                    .map_err(err("set IP_FREEBIND"))?;
                bind(&fd, &local).map_err(err("bind to the source address"))?;
                if peers.is_empty() {
                    vec![SocketAddr::V4(SocketAddrV4::new(group, 0))]
                } else {
                    peers
                        .iter()
                        .filter(|p| p.is_ipv4())
                        .map(|p| SocketAddr::new(*p, 0))
                        .collect()
                }
            }
            IpAddr::V6(src) => {
                set(&fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)
                    .map_err(err("set IPV6_UNICAST_HOPS"))?;
                set(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)
                    .map_err(err("set IPV6_MULTICAST_HOPS"))?;
                set(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &0i32)
                    .map_err(err("set IPV6_MULTICAST_LOOP"))?;
                set(
                    &fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_IF,
                    &(ifindex as i32),
                )
                .map_err(err("set IPV6_MULTICAST_IF"))?;
                let group = match group {
                    Some(IpAddr::V6(g)) => g,
                    _ => Ipv6Addr::from(CARP_GROUP_V6),
                };
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: group.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                set(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
                    .map_err(err("join the CARP group"))?;
                let local = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as u16,
                    sin6_port: 0,
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    sin6_scope_id: ifindex,
                };
                // At boot the link-local address may still be tentative (DAD):
                // bind anyway; sends fail until it is usable, then work.
                set(&fd, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, &1i32)
                    .map_err(err("set IPV6_FREEBIND"))?;
                bind(&fd, &local).map_err(err("bind to the source address"))?;
                if peers.is_empty() {
                    vec![SocketAddr::V6(SocketAddrV6::new(group, 0, 0, ifindex))]
                } else {
                    peers
                        .iter()
                        .filter(|p| p.is_ipv6())
                        .map(|p| SocketAddr::new(*p, 0))
                        .collect()
                }
            }
        };
        Ok(Self {
            fd,
            iface: iface.to_string(),
            source,
            destinations,
        })
    }

    /// Our source address.
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// Sends `advert` to every destination. Non-blocking: a full socket
    /// buffer drops this advert (the next one follows an interval later).
    pub fn send(&self, advert: &CarpHeader) -> Result<(), SendError> {
        let bytes = advert.to_bytes();
        for dest in &self.destinations {
            let rc = match dest {
                SocketAddr::V4(d) => {
                    let sa = libc::sockaddr_in {
                        sin_family: libc::AF_INET as u16,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*d.ip()).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    send_to(&self.fd, &bytes, &sa)
                }
                SocketAddr::V6(d) => {
                    let sa = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as u16,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr {
                            s6_addr: d.ip().octets(),
                        },
                        sin6_scope_id: d.scope_id(),
                    };
                    send_to(&self.fd, &bytes, &sa)
                }
            };
            rc.map_err(|source| SendError::Send {
                iface: self.iface.clone(),
                from: self.source,
                to: dest.ip(),
                source,
            })?;
        }
        Ok(())
    }
}

fn bind<T>(fd: &OwnedFd, addr: &T) -> io::Result<()> {
    // SAFETY: addr points at a live sockaddr of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn send_to<T>(fd: &OwnedFd, bytes: &[u8], addr: &T) -> io::Result<()> {
    // SAFETY: bytes and addr are valid for the lengths passed.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (addr as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
