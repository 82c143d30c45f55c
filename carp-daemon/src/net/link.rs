//! Interfaces: name → index, MAC and addresses, and carrier tracking.
//!
//! A link "has carrier" when it is administratively up (`IFF_UP`) and the
//! kernel reports it running (`IFF_RUNNING`), which Linux sets exactly when
//! the operational state (`IFLA_OPERSTATE`, RFC 2863) is UP or UNKNOWN —
//! the latter for drivers, such as dummy, that report no carrier at all.
//! An interface that disappears has no carrier.
//!
//! [`watch`] subscribes to `RTNLGRP_LINK` and reports, for the interface
//! names asked for, which interface has that name and its carrier, at start
//! and then at every change: an instance follows the name in its
//! configuration across the interface being deleted and created again
//! (a VLAN or bond re-created, a driver reloaded) or renamed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::mpsc;

use super::rtnl::{self, errno};

/// Errors of interface lookup and tracking.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Opening the netlink socket failed.
    #[error("{op}")]
    Socket {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No interface has this name.
    #[error("no interface named {name:?}")]
    NoSuchName {
        /// The name asked for.
        name: String,
    },
    /// No interface has this index.
    #[error("no interface with index {ifindex}")]
    NoSuchIndex {
        /// The index asked for.
        ifindex: u32,
    },
    /// The kernel rejected a netlink request.
    #[error("{op} {target}")]
    Netlink {
        /// What we were doing.
        op: &'static str,
        /// The interface concerned, as name or index.
        target: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

/// What we know about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Kernel name (without any `:label` suffix).
    pub name: String,
    /// Hardware address, when the interface has a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// Whether the link has carrier (see the module documentation).
    pub carrier: bool,
    /// Operational state as reported (`IFLA_OPERSTATE`).
    pub oper_state: Option<State>,
}

/// What became of one watched interface name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// The kernel name watched (`eth0`).
    pub name: String,
    /// The interface that now has this name, or `None` when none has (it
    /// was deleted or renamed).
    pub link: Option<LinkInfo>,
}

impl LinkEvent {
    /// Index of the interface of that name, if one exists.
    pub fn ifindex(&self) -> Option<u32> {
        self.link.as_ref().map(|l| l.ifindex)
    }

    /// Whether the interface exists and has carrier.
    pub fn carrier(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.carrier)
    }
}

/// The kernel device of an interface argument: UCARP accepts an alias such
/// as `eth0:carp0`, whose device is `eth0` and whose label is `eth0:carp0`.
pub fn device_name(interface: &str) -> &str {
    interface.split_once(':').map_or(interface, |(dev, _)| dev)
}

/// Interface lookups over one route-netlink socket.
#[derive(Clone, Debug)]
pub struct Links {
    /// Request handle of the netlink connection.
    handle: Handle,
}

impl Links {
    /// Opens the netlink socket. Must be called inside a tokio runtime.
    pub fn new() -> Result<Links, LinkError> {
        let handle = rtnl::connect().map_err(|source| LinkError::Socket {
            op: "open route netlink socket",
            source,
        })?;
        Ok(Links { handle })
    }

    /// The netlink request handle (shared with [`super::vmac`]).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Looks up an interface by name (an alias `eth0:carp0` resolves `eth0`).
    pub async fn by_name(&self, interface: &str) -> Result<LinkInfo, LinkError> {
        let name = device_name(interface);
        let msg = self
            .handle
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_next()
            .await;
        match msg {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(LinkError::NoSuchName {
                name: name.to_owned(),
            }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Err(LinkError::NoSuchName {
                name: name.to_owned(),
            }),
            Err(source) => Err(LinkError::Netlink {
                op: "get link",
                target: name.to_owned(),
                source,
            }),
        }
    }

    /// Looks up an interface by index.
    pub async fn by_index(&self, ifindex: u32) -> Result<LinkInfo, LinkError> {
        let msg = self
            .handle
            .link()
            .get()
            .match_index(ifindex)
            .execute()
            .try_next()
            .await;
        match msg {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(LinkError::NoSuchIndex { ifindex }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Err(LinkError::NoSuchIndex { ifindex }),
            Err(source) => Err(LinkError::Netlink {
                op: "get link",
                target: ifindex.to_string(),
                source,
            }),
        }
    }

    /// The first IPv4 address of the interface (the one UCARP uses as the
    /// advert source when `--srcip` is not given), if any.
    pub async fn first_ipv4(&self, ifindex: u32) -> Result<Option<Ipv4Addr>, LinkError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .into_iter()
            .find_map(|a| match a {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            }))
    }

    /// The link-local IPv6 address (fe80::/10) of the interface, if any.
    pub async fn link_local_ipv6(&self, ifindex: u32) -> Result<Option<Ipv6Addr>, LinkError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .into_iter()
            .find_map(|a| match a {
                IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(v6),
                _ => None,
            }))
    }

    async fn addresses(&self, ifindex: u32) -> Result<Vec<IpAddr>, LinkError> {
        let msgs = rtnl::addresses(&self.handle, ifindex)
            .await
            .map_err(|source| LinkError::Netlink {
                op: "list addresses of",
                target: ifindex.to_string(),
                source,
            })?;
        Ok(msgs.iter().filter_map(rtnl::message_addr).collect())
    }
}

/// Watches the interfaces named `names` (kernel device names, no `:label`):
/// the receiver first gets the current state of each (in order), then one
/// event whenever one of them appears, disappears, changes index or changes
/// carrier. An interface deleted and created again with the same name
/// reports `None`, then its new index; a renamed one is gone under its old
/// name and appears under its new one. Repeated notifications that change
/// none of these are folded. The watch task ends when the receiver is
/// dropped. Must be called inside a tokio runtime.
pub async fn watch(names: &[String]) -> Result<mpsc::Receiver<LinkEvent>, LinkError> {
    // Subscribe before reading the current state so no change is missed.
    let (handle, mut messages) =
        rtnl::connect_multicast(&[MulticastGroup::Link]).map_err(|source| LinkError::Socket {
            op: "subscribe to link notifications",
            source,
        })?;
    let links = Links { handle };
    let mut current = NameTable::default();
    let mut initial = Vec::new();
    for name in names {
        if current.watched.contains_key(name) {
            continue;
        }
        let link = match links.by_name(name).await {
            Ok(info) => Some(info),
            Err(LinkError::NoSuchName { .. }) => None,
            Err(e) => return Err(e),
        };
        current.watched.insert(name.clone(), link.clone());
        initial.push(LinkEvent {
            name: name.clone(),
            link,
        });
    }
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        // Keeps the netlink connection open for the life of the watch.
        let _links = links;
        for ev in initial {
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                () = tx.closed() => return,
            };
            let Some((msg, _)) = msg else {
                tracing::warn!("link notification socket closed");
                return;
            };
            let events = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    current.new_link(link_info(&link))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    current.del_link(link.header.index)
                }
                _ => continue,
            };
            for ev in events {
                tracing::debug!(iface = %ev.name, ifindex = ?ev.ifindex(), carrier = ev.carrier(), "link changed");
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// What the watch last reported for each watched name.
#[derive(Debug, Default)]
struct NameTable {
    /// Watched name → the interface of that name, if one exists.
    watched: HashMap<String, Option<LinkInfo>>,
}

impl NameTable {
    /// An `RTM_NEWLINK`: a new interface, a change, or a rename.
    fn new_link(&mut self, info: LinkInfo) -> Vec<LinkEvent> {
        // A watched name whose interface now has another name was renamed
        // away: that name has no interface any more.
        let mut events = self.forget(|link| link.ifindex == info.ifindex && link.name != info.name);
        if let Some(slot) = self.watched.get_mut(&info.name) {
            let same = slot
                .as_ref()
                .is_some_and(|l| l.ifindex == info.ifindex && l.carrier == info.carrier);
            if !same {
                *slot = Some(info.clone());
                events.push(LinkEvent {
                    name: info.name.clone(),
                    link: Some(info),
                });
            }
        }
        events
    }

    /// An `RTM_DELLINK`: the interface `ifindex` is gone.
    fn del_link(&mut self, ifindex: u32) -> Vec<LinkEvent> {
        self.forget(|link| link.ifindex == ifindex)
    }

    /// Marks every watched name whose interface matches as gone.
    fn forget(&mut self, matches: impl Fn(&LinkInfo) -> bool) -> Vec<LinkEvent> {
        let mut events = Vec::new();
        for (name, slot) in &mut self.watched {
            if slot.as_ref().is_some_and(&matches) {
                *slot = None;
                events.push(LinkEvent {
                    name: name.clone(),
                    link: None,
                });
            }
        }
        events.sort_by(|a, b| a.name.cmp(&b.name));
        events
    }
}

fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        ifindex: msg.header.index,
        name: String::new(),
        mac: None,
        carrier: msg.header.flags.contains(LinkFlags::Up)
            && msg.header.flags.contains(LinkFlags::Running),
        oper_state: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => info.name.clone_from(name),
            LinkAttribute::Address(bytes) => info.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok(),
            LinkAttribute::OperState(state) => info.oper_state = Some(*state),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_resolves_to_device() {
        assert_eq!(device_name("eth0:carp0"), "eth0");
        assert_eq!(device_name("eth0"), "eth0");
    }

    fn info(ifindex: u32, name: &str, carrier: bool) -> LinkInfo {
        LinkInfo {
            ifindex,
            name: name.into(),
            mac: None,
            carrier,
            oper_state: None,
        }
    }

    fn table(names: &[(&str, Option<LinkInfo>)]) -> NameTable {
        NameTable {
            watched: names
                .iter()
                .map(|(n, l)| ((*n).to_string(), l.clone()))
                .collect(),
        }
    }

    #[test]
    fn deleted_and_recreated_interface_is_followed_by_name() {
        let mut t = table(&[("eth0", Some(info(3, "eth0", true)))]);
        let gone = t.del_link(3);
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].name.as_str(), gone[0].ifindex()), ("eth0", None));
        // Another interface's events are not ours; a repeated delete is folded.
        assert!(t.new_link(info(4, "eth1", true)).is_empty());
        assert!(t.del_link(3).is_empty());
        // Re-created (down, then up) under the same name with a new index.
        let back = t.new_link(info(9, "eth0", false));
        assert_eq!((back[0].ifindex(), back[0].carrier()), (Some(9), false));
        assert!(t.new_link(info(9, "eth0", false)).is_empty(), "folded");
        let up = t.new_link(info(9, "eth0", true));
        assert_eq!((up[0].ifindex(), up[0].carrier()), (Some(9), true));
    }

    #[test]
    fn renamed_interface_leaves_its_old_name() {
        let mut t = table(&[("eth0", Some(info(3, "eth0", false))), ("lan", None)]);
        let ev = t.new_link(info(3, "lan", false));
        let got: Vec<_> = ev.iter().map(|e| (e.name.as_str(), e.ifindex())).collect();
        assert_eq!(got, [("eth0", None), ("lan", Some(3))]);
        // Another interface renamed to eth0 becomes eth0.
        let ev = t.new_link(info(7, "eth0", false));
        assert_eq!((ev[0].name.as_str(), ev[0].ifindex()), ("eth0", Some(7)));
    }

    #[test]
    fn carrier_needs_up_and_running() {
        let mut msg = LinkMessage::default();
        msg.header.index = 3;
        msg.attributes.push(LinkAttribute::IfName("eth9".into()));
        msg.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]));
        msg.header.flags = LinkFlags::Up;
        assert!(!link_info(&msg).carrier);
        msg.header.flags = LinkFlags::Up | LinkFlags::Running;
        let info = link_info(&msg);
        assert!(info.carrier);
        assert_eq!(info.name, "eth9");
        assert_eq!(info.mac, Some([2, 0, 0, 0, 0, 1]));
        msg.header.flags = LinkFlags::Running;
        assert!(!link_info(&msg).carrier);
    }
}
