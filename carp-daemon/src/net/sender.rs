//! Sending adverts: one raw IP socket (protocol 112) per instance and
//! address family, TTL / hop limit 255, bound to the interface and our source
//! address, to the CARP group or to each unicast peer.
//!
//! With `virtual_mac`, adverts to the group leave as whole frames from the
//! virtual MAC instead, through a packet socket on the same interface
//! ([`super::advert_frame`]); the raw socket stays, to join the group and
//! for unicast peers, whose adverts leave from the interface's own MAC
//! (their Ethernet address would have to be resolved first).
//!
//! The IPv4 socket also joins 224.0.0.18 (and the IPv6 one ff02::12) on the
//! interface: XDP sees only the frames the NIC lets in, and a NIC filters
//! multicast MAC addresses it was not told about. A classic BPF filter that
//! accepts nothing keeps the kernel from queueing received adverts on these
//! send-only sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use carp_common::constants::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_TTL, IPPROTO_CARP};
use carp_common::header::CarpHeader;
use socket2::{Domain, InterfaceIndexOrAddress, SockAddr, SockFilter, Socket};

use super::{advert_frame, socket};

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
    socket: Socket,
    iface: String,
    source: IpAddr,
    destinations: Vec<SocketAddr>,
    /// With a virtual MAC and the group as destination: where adverts go
    /// instead of `socket`.
    frames: Option<FrameOut>,
}

/// Adverts to the group as whole frames from a virtual MAC.
#[derive(Debug)]
struct FrameOut {
    /// Non-blocking, send-only packet socket bound to the interface.
    socket: Socket,
    /// The group.
    group: IpAddr,
    /// Ethernet and IP headers, the same for every advert.
    headers: Vec<u8>,
}

impl FrameOut {
    /// Opens the packet socket for adverts from `source` to `group` on
    /// `ifindex`, sent from `mac`; `None` when `group` is not multicast.
    fn open(
        ifindex: u32,
        mac: [u8; 6],
        source: IpAddr,
        group: IpAddr,
    ) -> io::Result<Option<FrameOut>> {
        let Some(dst_mac) = advert_frame::multicast_mac(group) else {
            return Ok(None);
        };
        let carp = [0; carp_common::constants::CARP_HEADER_LEN];
        let Some(mut headers) = advert_frame::advert(mac, dst_mac, source, group, &carp) else {
            return Ok(None);
        };
        headers.truncate(headers.len() - carp.len());
        let socket = socket::raw(Domain::PACKET, 0)?;
        socket::bind_packet(&socket, ifindex)?;
        Ok(Some(FrameOut {
            socket,
            group,
            headers,
        }))
    }
}

impl AdvertSocket {
    /// Opens the socket for adverts from `source` on interface `iface`
    /// (index `ifindex`), to `peers` if any, else to the CARP group
    /// (`group` overrides 224.0.0.18 / ff02::12, as UCARP's `--mcast`).
    /// With `from_mac`, adverts to the group are sent from that MAC.
    pub fn open(
        iface: &str,
        ifindex: u32,
        source: IpAddr,
        peers: &[IpAddr],
        group: Option<IpAddr>,
        from_mac: Option<[u8; 6]>,
    ) -> Result<Self, SendError> {
        let err = |op| {
            let iface = iface.to_string();
            move |source| SendError::Socket { iface, op, source }
        };
        let domain = if source.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let fd = socket::raw(domain, i32::from(IPPROTO_CARP)).map_err(err("open a raw socket"))?;
        fd.bind_device(Some(iface.as_bytes()))
            .map_err(err("bind to the interface"))?;
        fd.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])
            .map_err(err("attach the receive filter"))?;
        let ttl = u32::from(CARP_TTL);
        let destinations: Vec<SocketAddr> = match source {
            IpAddr::V4(src) => {
                fd.set_ttl_v4(ttl).map_err(err("set IP_TTL"))?;
                fd.set_multicast_ttl_v4(ttl)
                    .map_err(err("set IP_MULTICAST_TTL"))?;
                fd.set_multicast_loop_v4(false)
                    .map_err(err("set IP_MULTICAST_LOOP"))?;
                // Low delay, as UCARP and carp(4) send.
                fd.set_tos_v4(0x10).map_err(err("set IP_TOS"))?;
                let group = match group {
                    Some(IpAddr::V4(g)) => g,
                    _ => Ipv4Addr::from(CARP_GROUP_V4),
                };
                // By index and address: the address alone fails while it
                // is not configured yet.
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(group).to_be(),
                    },
                    imr_address: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    imr_ifindex: ifindex as i32,
                };
                socket::set_option(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)
                    .map_err(err("set IP_MULTICAST_IF"))?;
                fd.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(err("join the CARP group"))?;
                // The source may not be configured yet at boot: bind anyway.
                fd.set_freebind_v4(true).map_err(err("set IP_FREEBIND"))?;
                fd.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
                    .map_err(err("bind to the source address"))?;
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
                fd.set_unicast_hops_v6(ttl)
                    .map_err(err("set IPV6_UNICAST_HOPS"))?;
                fd.set_multicast_hops_v6(ttl)
                    .map_err(err("set IPV6_MULTICAST_HOPS"))?;
                fd.set_multicast_loop_v6(false)
                    .map_err(err("set IPV6_MULTICAST_LOOP"))?;
                fd.set_multicast_if_v6(ifindex)
                    .map_err(err("set IPV6_MULTICAST_IF"))?;
                let group = match group {
                    Some(IpAddr::V6(g)) => g,
                    _ => Ipv6Addr::from(CARP_GROUP_V6),
                };
                fd.join_multicast_v6(&group, ifindex)
                    .map_err(err("join the CARP group"))?;
                // At boot the link-local address may still be tentative (DAD):
                // bind anyway; sends fail until it is usable, then work.
                fd.set_freebind_v6(true).map_err(err("set IPV6_FREEBIND"))?;
                fd.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))
                    .map_err(err("bind to the source address"))?;
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
        let frames = match (from_mac, destinations.as_slice()) {
            (Some(mac), [group]) if peers.is_empty() => {
                FrameOut::open(ifindex, mac, source, group.ip())
                    .map_err(err("open a packet socket for the virtual MAC"))?
            }
            _ => None,
        };
        Ok(Self {
            socket: fd,
            iface: iface.to_string(),
            source,
            destinations,
            frames,
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
        if let Some(out) = &self.frames {
            let mut frame = Vec::with_capacity(out.headers.len() + bytes.len());
            frame.extend_from_slice(&out.headers);
            frame.extend_from_slice(&bytes);
            return match out.socket.send(&frame) {
                Ok(_) => Ok(()),
                Err(source) => Err(SendError::Send {
                    iface: self.iface.clone(),
                    from: self.source,
                    to: out.group,
                    source,
                }),
            };
        }
        for dest in &self.destinations {
            self.socket
                .send_to(&bytes, &SockAddr::from(*dest))
                .map_err(|source| SendError::Send {
                    iface: self.iface.clone(),
                    from: self.source,
                    to: dest.ip(),
                    source,
                })?;
        }
        Ok(())
    }
}
