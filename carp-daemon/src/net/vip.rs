//! Virtual IP addresses (VIPs) on an interface, over route netlink.
//!
//! [`VipManager`] adds, removes and lists addresses; both add and remove are
//! idempotent (an address already present, or already gone, is not an
//! error). [`VipSet`] remembers which addresses *this process* added so that
//! exactly those are removed on exit, and [`VipManager::remove_stale`] clears
//! configured VIPs someone else put on the interface (configured statically
//! before start, as the French wiki's init script does, added by a script, or
//! left behind by a crashed run) whenever we are not master.
//!
//! IPv4 VIPs may carry a label (`eth0:carp0`, as `ip addr add ... label`
//! does); IPv6 has no address labels, so the label is ignored there. IPv6
//! VIPs are added with `IFA_F_NODAD` so they are usable at once instead of
//! staying tentative for the duration of duplicate address detection — the
//! CARP election already guarantees that one node holds the address.

use std::io;
use std::net::IpAddr;

use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::Handle;

use super::rtnl::{self, errno, message_addr};
use crate::chain::Chain;

/// Longest interface or label name the kernel accepts (IFNAMSIZ - 1).
const MAX_LABEL_LEN: usize = 15;

/// Errors of VIP management.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// Opening the netlink socket failed.
    #[error("{op}")]
    Socket {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel rejected a netlink request.
    #[error("{op} {addr} on ifindex {ifindex}")]
    Netlink {
        /// What we were doing (`add address`, `delete address`, `list addresses`).
        op: &'static str,
        /// The address concerned (unspecified for a listing).
        addr: IpAddr,
        /// The interface.
        ifindex: u32,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// The prefix length does not fit the address family.
    #[error("prefix length {prefix_len} is too long for {addr}")]
    BadPrefix {
        /// The address.
        addr: IpAddr,
        /// The offending prefix length.
        prefix_len: u8,
    },
    /// The label is empty or longer than the kernel allows.
    #[error("address label {label:?} must be 1 to {MAX_LABEL_LEN} bytes")]
    BadLabel {
        /// The offending label.
        label: String,
    },
}

/// One virtual address as configured: address, prefix length and optional
/// label.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address itself.
    pub addr: IpAddr,
    /// Prefix length installed with it (32 or 128 by default: a host route).
    pub prefix_len: u8,
    /// Address label (IPv4 only), e.g. `eth0:carp0`.
    pub label: Option<String>,
}

impl Vip {
    /// A host address: /32 for IPv4, /128 for IPv6, no label.
    pub fn host(addr: IpAddr) -> Vip {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        Vip {
            addr,
            prefix_len,
            label: None,
        }
    }

    /// The same address with another prefix length.
    pub fn with_prefix(self, prefix_len: u8) -> Vip {
        Vip { prefix_len, ..self }
    }

    /// The same address with a label (used for IPv4 only).
    pub fn with_label(self, label: impl Into<String>) -> Vip {
        Vip {
            label: Some(label.into()),
            ..self
        }
    }

    fn validate(&self) -> Result<(), VipError> {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max {
            return Err(VipError::BadPrefix {
                addr: self.addr,
                prefix_len: self.prefix_len,
            });
        }
        if let Some(label) = &self.label {
            if label.is_empty() || label.len() > MAX_LABEL_LEN || label.contains('\0') {
                return Err(VipError::BadLabel {
                    label: label.clone(),
                });
            }
        }
        Ok(())
    }
}

/// An address found on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address (`IFA_LOCAL`, or `IFA_ADDRESS` when there is no local).
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Its label, when the kernel reports one (IPv4).
    pub label: Option<String>,
    /// Its `IFA_F_*` flags (full 32-bit set when reported).
    pub flags: u32,
}

/// Adds, removes and lists addresses over one route-netlink socket.
#[derive(Clone, Debug)]
pub struct VipManager {
    /// Request handle of the netlink connection (its task runs on tokio).
    handle: Handle,
}

impl VipManager {
    /// Opens the netlink socket. Must be called inside a tokio runtime.
    pub fn new() -> Result<VipManager, VipError> {
        let handle = rtnl::connect().map_err(|source| VipError::Socket {
            op: "open route netlink socket",
            source,
        })?;
        Ok(VipManager { handle })
    }

    /// The netlink request handle (shared with [`super::vmac`]).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Adds `vip` to interface `ifindex`. Returns `true` when it was added,
    /// `false` when it was already there (EEXIST).
    pub async fn add(&self, ifindex: u32, vip: &Vip) -> Result<bool, VipError> {
        vip.validate()?;
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        let msg = req.message_mut();
        match vip.addr {
            IpAddr::V4(_) => {
                if let Some(label) = &vip.label {
                    msg.attributes.push(AddressAttribute::Label(label.clone()));
                }
            }
            IpAddr::V6(_) => {
                msg.header.flags |= AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(source) => Err(VipError::Netlink {
                op: "add address",
                addr: vip.addr,
                ifindex,
                source,
            }),
        }
    }

    /// Removes every instance of `addr` from interface `ifindex`, whatever
    /// its prefix length. Returns `true` when something was removed, `false`
    /// when the address was not there.
    pub async fn remove(&self, ifindex: u32, addr: IpAddr) -> Result<bool, VipError> {
        let mut removed = false;
        for msg in self.dump(ifindex).await? {
            if message_addr(&msg) != Some(addr) {
                continue;
            }
            match self.handle.address().del(msg).execute().await {
                Ok(()) => removed = true,
                // Gone in between (another actor, or a duplicate entry).
                Err(e)
                    if matches!(
                        errno(&e),
                        Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ESRCH)
                    ) => {}
                Err(source) => {
                    return Err(VipError::Netlink {
                        op: "delete address",
                        addr,
                        ifindex,
                        source,
                    })
                }
            }
        }
        Ok(removed)
    }

    /// Lists the addresses on interface `ifindex`.
    pub async fn list(&self, ifindex: u32) -> Result<Vec<IfAddr>, VipError> {
        Ok(self
            .dump(ifindex)
            .await?
            .iter()
            .filter_map(if_addr)
            .collect())
    }

    /// Removes any of `vips` on `ifindex` that someone else put there
    /// (configured before start, added by a script, left by a crashed run)
    /// and returns the addresses removed; the caller says so in the log.
    pub async fn remove_stale(&self, ifindex: u32, vips: &[Vip]) -> Result<Vec<IpAddr>, VipError> {
        let mut removed = Vec::new();
        for vip in vips {
            if self.remove(ifindex, vip.addr).await? {
                removed.push(vip.addr);
            }
        }
        Ok(removed)
    }

    async fn dump(&self, ifindex: u32) -> Result<Vec<AddressMessage>, VipError> {
        rtnl::addresses(&self.handle, ifindex)
            .await
            .map_err(|source| VipError::Netlink {
                op: "list addresses",
                addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                ifindex,
                source,
            })
    }
}

/// The VIPs this process added to one interface, so that exactly those are
/// removed on exit (and none that an operator or another daemon added).
#[derive(Debug)]
pub struct VipSet {
    /// The interface.
    ifindex: u32,
    /// Addresses we added and have not removed since.
    added: Vec<Vip>,
}

impl VipSet {
    /// An empty set for interface `ifindex`.
    pub fn new(ifindex: u32) -> VipSet {
        VipSet {
            ifindex,
            added: Vec::new(),
        }
    }

    /// The interface.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Addresses we currently own.
    pub fn owned(&self) -> &[Vip] {
        &self.added
    }

    /// Adds `vip` and remembers it if we added it. An address that was
    /// already present is not ours and is not remembered. Returns whether
    /// we added it.
    pub async fn add(&mut self, mgr: &VipManager, vip: Vip) -> Result<bool, VipError> {
        let added = mgr.add(self.ifindex, &vip).await?;
        if added && !self.added.iter().any(|v| v.addr == vip.addr) {
            self.added.push(vip);
        }
        Ok(added)
    }

    /// Removes `addr` if we added it; addresses that are not ours are left
    /// alone. Returns whether an address was removed.
    pub async fn remove(&mut self, mgr: &VipManager, addr: IpAddr) -> Result<bool, VipError> {
        let Some(pos) = self.added.iter().position(|v| v.addr == addr) else {
            return Ok(false);
        };
        let removed = mgr.remove(self.ifindex, addr).await?;
        self.added.remove(pos);
        Ok(removed)
    }

    /// Removes every address we added. Tries all of them and returns the
    /// first error; addresses that failed stay remembered.
    pub async fn remove_all(&mut self, mgr: &VipManager) -> Result<(), VipError> {
        let mut first_err = None;
        let mut kept = Vec::new();
        for vip in std::mem::take(&mut self.added) {
            if let Err(e) = mgr.remove(self.ifindex, vip.addr).await {
                tracing::warn!(ifindex = self.ifindex, vip = %vip.addr, error = %Chain(&e), "cannot remove virtual address");
                first_err.get_or_insert(e);
                kept.push(vip);
            }
        }
        self.added = kept;
        first_err.map_or(Ok(()), Err)
    }
}

fn if_addr(msg: &AddressMessage) -> Option<IfAddr> {
    let addr = message_addr(msg)?;
    let label = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Label(l) => Some(l.clone()),
        _ => None,
    });
    let flags = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(f.bits()),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.flags.bits()));
    Some(IfAddr {
        addr,
        prefix_len: msg.header.prefix_len,
        label,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefix_by_family() {
        assert_eq!(Vip::host("192.0.2.1".parse().unwrap()).prefix_len, 32);
        assert_eq!(Vip::host("2001:db8::1".parse().unwrap()).prefix_len, 128);
    }

    #[test]
    fn validation_rejects_bad_prefix_and_label() {
        let v4 = Vip::host("192.0.2.1".parse().unwrap());
        assert!(v4.clone().with_prefix(24).validate().is_ok());
        assert!(matches!(
            v4.clone().with_prefix(33).validate(),
            Err(VipError::BadPrefix { prefix_len: 33, .. })
        ));
        assert!(matches!(
            v4.clone().with_label("").validate(),
            Err(VipError::BadLabel { .. })
        ));
        assert!(matches!(
            v4.clone().with_label("a-very-long-label-name").validate(),
            Err(VipError::BadLabel { .. })
        ));
        assert!(v4.with_label("eth0:carp0").validate().is_ok());
        let v6 = Vip::host("2001:db8::1".parse().unwrap());
        assert!(v6.clone().with_prefix(64).validate().is_ok());
        assert!(v6.with_prefix(129).validate().is_err());
    }

    #[test]
    fn error_names_the_value() {
        let e = Vip::host("192.0.2.1".parse().unwrap())
            .with_prefix(40)
            .validate()
            .unwrap_err();
        assert_eq!(e.to_string(), "prefix length 40 is too long for 192.0.2.1");
    }
}
