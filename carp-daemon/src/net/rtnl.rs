//! Opening route-netlink connections on the current tokio runtime.

use std::io;

use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::packet_core::NetlinkMessage;
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
