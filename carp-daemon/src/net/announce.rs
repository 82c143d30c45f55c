//! Sending takeover announcements through an `AF_PACKET` socket bound to the
//! interface: gratuitous ARP for IPv4 VIPs, unsolicited neighbour
//! advertisements for IPv6 VIPs (frames from [`super::frame`]).
//!
//! The socket is opened with protocol 0, so it only sends and never queues
//! received frames.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::{Domain, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{frame, socket};

/// Errors of sending announcements.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// A socket call failed.
    #[error("{op} on ifindex {ifindex}")]
    Io {
        /// The call (`socket`, `bind`, `send`).
        op: &'static str,
        /// The interface.
        ifindex: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel sent fewer bytes than the frame holds.
    #[error("short send on ifindex {ifindex}: {sent} of {len} bytes")]
    ShortSend {
        /// The interface.
        ifindex: u32,
        /// Bytes sent.
        sent: usize,
        /// Frame length.
        len: usize,
    },
}

/// A send-only packet socket bound to one interface.
#[derive(Debug)]
pub struct Announcer {
    /// The non-blocking `AF_PACKET`/`SOCK_RAW` socket.
    fd: AsyncFd<Socket>,
    /// The interface it is bound to.
    ifindex: u32,
    /// The interface MAC, the source and the announced hardware address.
    mac: [u8; 6],
}

impl Announcer {
    /// Opens a packet socket bound to `ifindex`, announcing `mac`. Needs
    /// `CAP_NET_RAW`; must be called inside a tokio runtime.
    pub fn open(ifindex: u32, mac: [u8; 6]) -> Result<Announcer, AnnounceError> {
        let io_err = |op| {
            move |source| AnnounceError::Io {
                op,
                ifindex,
                source,
            }
        };
        let fd = socket::raw(Domain::PACKET, 0).map_err(io_err("socket"))?;
        socket::bind_packet(&fd, ifindex).map_err(io_err("bind"))?;
        let fd = socket::register(fd, Interest::WRITABLE).map_err(io_err("register with tokio"))?;
        Ok(Announcer { fd, ifindex, mac })
    }

    /// The interface MAC announced.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends one gratuitous ARP for `vip`.
    pub async fn gratuitous_arp(&self, vip: Ipv4Addr) -> Result<(), AnnounceError> {
        self.send(&frame::gratuitous_arp(self.mac, vip)).await
    }

    /// Sends one unsolicited neighbour advertisement for `vip`, from `vip`,
    /// with the override flag and, when `router` is set, the router flag.
    pub async fn unsolicited_na(&self, vip: Ipv6Addr, router: bool) -> Result<(), AnnounceError> {
        self.send(&frame::unsolicited_na(self.mac, vip, vip, router))
            .await
    }

    /// Announces every VIP `count` times, `interval` apart (gratuitous ARP
    /// for IPv4, unsolicited NA with the router flag for IPv6). Stops at the
    /// first error.
    pub async fn announce(
        &self,
        vips: &[IpAddr],
        count: u32,
        interval: Duration,
    ) -> Result<(), AnnounceError> {
        for round in 0..count {
            if round > 0 {
                tokio::time::sleep(interval).await;
            }
            for vip in vips {
                match vip {
                    IpAddr::V4(v4) => self.gratuitous_arp(*v4).await?,
                    IpAddr::V6(v6) => self.unsolicited_na(*v6, true).await?,
                }
            }
        }
        tracing::debug!(
            ifindex = self.ifindex,
            count,
            vips = vips.len(),
            "announced virtual addresses"
        );
        Ok(())
    }

    async fn send(&self, buf: &[u8]) -> Result<(), AnnounceError> {
        let ifindex = self.ifindex;
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|source| AnnounceError::Io {
                    op: "wait writable",
                    ifindex,
                    source,
                })?;
            let res = guard.try_io(|fd| fd.get_ref().send(buf));
            match res {
                Ok(Ok(sent)) if sent == buf.len() => return Ok(()),
                Ok(Ok(sent)) => {
                    return Err(AnnounceError::ShortSend {
                        ifindex,
                        sent,
                        len: buf.len(),
                    })
                }
                Ok(Err(source)) => {
                    return Err(AnnounceError::Io {
                        op: "send",
                        ifindex,
                        source,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }
}
