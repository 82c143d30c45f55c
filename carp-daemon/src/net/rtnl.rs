//! Route netlink shared by [`super::link`] and [`super::vip`]: opening
//! connections on the current tokio runtime, the address dump, and reading
//! its replies.

use std::io;
use std::net::IpAddr;

use futures::channel::mpsc::UnboundedReceiver;
use futures::TryStreamExt;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};

/// Notifications received on a multicast connection.
pub(crate) type Messages = UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// Opens a route-netlink request socket and spawns its connection task on the
/// current tokio runtime. The task ends when the last [`Handle`] is dropped.
pub(crate) fn connect() -> io::Result<Handle> {
    let (conn, handle, _messages) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Like [`connect`] but also subscribed to `groups`; their notifications
/// arrive on the returned receiver.
pub(crate) fn connect_multicast(groups: &[MulticastGroup]) -> io::Result<(Handle, Messages)> {
    let (conn, handle, messages) = rtnetlink::new_multicast_connection(groups)?;
    tokio::spawn(conn);
    Ok((handle, messages))
}

/// Every address on interface `ifindex` (one `RTM_GETADDR` dump).
pub(crate) async fn addresses(
    handle: &Handle,
    ifindex: u32,
) -> Result<Vec<AddressMessage>, rtnetlink::Error> {
    handle
        .address()
        .get()
        .set_link_index_filter(ifindex)
        .execute()
        .try_collect()
        .await
}

/// The interface address of a dumped message (`IFA_LOCAL` first).
pub(crate) fn message_addr(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// The errno of a netlink error reply, if it is one.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}
