//! Virtual MAC (`virtual_mac = true`): while MASTER an instance's VIPs live
//! on a macvlan carrying the virtual-router MAC `00:00:5e:00:01:<vhid>`
//! (RFC 5798 §7.3, the MAC OpenBSD and FreeBSD carp use), so that ARP and
//! neighbour solicitations for them are answered from that MAC and the
//! takeover announcements are sent from it. The macvlan exists only while
//! MASTER: as BACKUP nothing on the host answers for or sends from that MAC.
//!
//! The macvlan is in `private` mode (it exchanges nothing with other
//! macvlans of the parent) and named deterministically,
//! [`vmac_name`]`(vhid, parent)`, so that one left behind by a killed daemon
//! is found and removed at the next start ([`remove_stale`]). The receive
//! path stays on the parent, where XDP sees every advert.
//!
//! Linux answers ARP for any local address on any interface (`arp_ignore =
//! 0`): the parent would answer for the VIP from its own MAC; and it sends
//! ARP requests on the parent from whatever source the packet has (`arp_announce
//! = 0`), a VIP included, which moves a client's entry for the VIP to the
//! parent's MAC. While a virtual MAC of ours exists on a parent, its
//! `arp_ignore` is 1 and its `arp_announce` 2 ([`PARENT_SYSCTLS`]), and the
//! macvlan's `arp_ignore` is 1 (it would otherwise answer for the parent's
//! addresses). The parent's previous values are restored when the last one
//! goes; they are also written in the macvlan's alias, so that
//! [`remove_stale`] restores them after a crash.
//! The macvlan gets no IPv6 link-local address (`addr_gen_mode = 1`): every
//! host of the group would derive the same one from the shared MAC.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage, MacVlanMode};
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};

use super::rtnl::errno;

/// Prefix of the alias of our macvlans; the parent's previous values of
/// [`PARENT_SYSCTLS`] follow, comma-separated.
const ALIAS_PREFIX: &str = "carpd-xdp parent arp_ignore,arp_announce=";

/// What a parent's IPv4 sysctls are while a virtual MAC is on it:
/// `arp_ignore` 1 (answer ARP only for addresses on the receiving
/// interface, not for the VIPs on the macvlan) and `arp_announce` 2 (ARP
/// requests sent on the parent carry its own address, never a VIP: a
/// client would otherwise move its entry for the VIP to the parent's MAC).
const PARENT_SYSCTLS: [(&str, &str); 2] = [("arp_ignore", "1"), ("arp_announce", "2")];

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;

/// Errors of virtual MAC handling.
#[derive(Debug, thiserror::Error)]
pub enum VmacError {
    /// The kernel rejected a netlink request about the macvlan.
    #[error("cannot {op} macvlan {name}")]
    Netlink {
        /// What we were doing (`create`, `delete`, `bring up`, `look up`).
        op: &'static str,
        /// The macvlan's name.
        name: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
    /// Another instance of this process (the one a reload replaces) still
    /// holds the macvlan; adding the VIPs is tried again later.
    #[error("macvlan {name} still held by the instance being replaced")]
    InUse {
        /// The macvlan's name.
        name: String,
    },
    /// The macvlan was gone right after it was created.
    #[error("macvlan {name} vanished right after it was created")]
    Vanished {
        /// The macvlan's name.
        name: String,
    },
    /// Reading or writing a sysctl failed.
    #[error("cannot {op} {path}")]
    Sysctl {
        /// `read` or `write`.
        op: &'static str,
        /// The file under /proc/sys.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The virtual-router MAC of `vhid`: `00:00:5e:00:01:<vhid>`.
pub fn virtual_router_mac(vhid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vhid]
}

/// A MAC as `00:00:5e:00:01:0a`.
pub fn mac_text(mac: [u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// The name of the macvlan of `vhid` on interface index `parent`:
/// `vmac<vhid>.<parent>`, or `vm<vhid>.<parent in hex>` when that is longer
/// than the kernel allows (at most 14 bytes).
pub fn vmac_name(vhid: u8, parent: u32) -> String {
    let name = format!("vmac{vhid}.{parent}");
    if name.len() <= MAX_NAME_LEN {
        name
    } else {
        format!("vm{vhid}.{parent:x}")
    }
}

/// Parents with virtual MACs of this process: their sysctls before the first
/// one, and how many there are.
static PARENTS: Mutex<BTreeMap<u32, (String, usize)>> = Mutex::new(BTreeMap::new());

/// Names of the macvlans this process made and has not deleted: never
/// taken for ones left behind (an instance being replaced on reload still
/// holds its own while its replacement binds).
static OWNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn owned() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    OWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A macvlan carrying a virtual-router MAC, up, made by [`Vmac::create`].
#[derive(Debug)]
pub struct Vmac {
    /// Its name ([`vmac_name`]).
    pub name: String,
    /// Its interface index.
    pub ifindex: u32,
    /// The interface it sits on.
    pub parent: u32,
    /// Its MAC ([`virtual_router_mac`]).
    pub mac: [u8; 6],
}

impl Vmac {
    /// Creates the macvlan of `vhid` on `parent` (named `parent_name`),
    /// replacing one of that name left behind, sets the sysctls described
    /// in the module documentation, and brings it up.
    pub async fn create(
        handle: &Handle,
        parent: u32,
        parent_name: &str,
        vhid: u8,
    ) -> Result<Vmac, VmacError> {
        let name = vmac_name(vhid, parent);
        if owned().contains(&name) {
            return Err(VmacError::InUse { name });
        }
        remove_stale(handle, parent, vhid).await?;
        let mac = virtual_router_mac(vhid);
        let original = hold_parent(parent, parent_name)?;
        let made = async {
            let msg = LinkMacVlan::new(&name, parent, MacVlanMode::Private)
                .address(mac.to_vec())
                .build();
            handle
                .link()
                .add(msg)
                .execute()
                .await
                .map_err(netlink("create", &name))?;
            let ifindex = index_of(handle, &name)
                .await?
                .ok_or_else(|| VmacError::Vanished { name: name.clone() })?;
            write_sysctl(&format!("ipv4/conf/{name}/arp_ignore"), "1")?;
            write_sysctl(&format!("ipv4/conf/{name}/rp_filter"), "0")?;
            // IPv6 may be disabled on the host: no link-local to suppress.
            let _ = write_sysctl(&format!("ipv6/conf/{name}/addr_gen_mode"), "1");
            handle
                .link()
                // The kernel takes no alias when it creates a link.
                .set(
                    LinkUnspec::new_with_index(ifindex)
                        .alias(format!("{ALIAS_PREFIX}{original}"))
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(netlink("bring up", &name))?;
            Ok(ifindex)
        }
        .await;
        match made {
            Ok(ifindex) => {
                owned().insert(name.clone());
                Ok(Vmac {
                    name,
                    ifindex,
                    parent,
                    mac,
                })
            }
            Err(e) => {
                let _ = delete_link(handle, &name).await;
                release_parent(parent);
                Err(e)
            }
        }
    }

    /// The macvlan went with its parent (deleted): only the count of
    /// virtual MACs on the parent is updated.
    pub fn forget(self) {
        owned().remove(&self.name);
        release_parent(self.parent);
    }

    /// Deletes the macvlan (its addresses go with it) and restores the
    /// parent's sysctls if it was the last one. A macvlan already gone
    /// (its parent deleted) is not an error.
    pub async fn delete(self, handle: &Handle) -> Result<(), VmacError> {
        let deleted = delete_link(handle, &self.name).await;
        owned().remove(&self.name);
        release_parent(self.parent);
        deleted.map(|_| ())
    }
}

/// Removes the macvlan of `vhid` on `parent` if one exists and this
/// process did not make it (left behind by a killed daemon), restoring the
/// parent's sysctls from its alias.
/// Returns whether one was removed.
pub async fn remove_stale(handle: &Handle, parent: u32, vhid: u8) -> Result<bool, VmacError> {
    let name = vmac_name(vhid, parent);
    if owned().contains(&name) {
        return Ok(false);
    }
    let Some(msg) = link_named(handle, &name).await? else {
        return Ok(false);
    };
    let original = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(alias) => alias.strip_prefix(ALIAS_PREFIX).map(str::to_owned),
        _ => None,
    });
    let removed = delete_index(handle, msg.header.index, &name).await?;
    let ours = PARENTS
        .lock()
        .map(|p| p.contains_key(&parent))
        .unwrap_or(true);
    if let (Some(original), false) = (original, ours) {
        if let Some(parent_name) = name_of(handle, parent).await {
            restore_parent(&parent_name, &original);
        }
    }
    Ok(removed)
}

fn netlink<'a>(op: &'static str, name: &'a str) -> impl FnOnce(rtnetlink::Error) -> VmacError + 'a {
    move |source| VmacError::Netlink {
        op,
        name: name.to_owned(),
        source,
    }
}

async fn delete_link(handle: &Handle, name: &str) -> Result<bool, VmacError> {
    match index_of(handle, name).await? {
        Some(ifindex) => delete_index(handle, ifindex, name).await,
        None => Ok(false),
    }
}

/// Deletes link `ifindex` (named `name`, for errors); false if it was gone.
async fn delete_index(handle: &Handle, ifindex: u32, name: &str) -> Result<bool, VmacError> {
    match handle.link().del(ifindex).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(netlink("delete", name)(e)),
    }
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>, VmacError> {
    Ok(link_named(handle, name).await?.map(|m| m.header.index))
}

/// The link called `name`, if any.
async fn link_named(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, VmacError> {
    match handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await
    {
        Ok(msg) => Ok(msg),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink("look up", name)(e)),
    }
}

async fn name_of(handle: &Handle, ifindex: u32) -> Option<String> {
    let msg = handle
        .link()
        .get()
        .match_index(ifindex)
        .execute()
        .try_next()
        .await
        .ok()??;
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// Counts one more virtual MAC on `parent`; with the first, saves the
/// parent's [`PARENT_SYSCTLS`] and sets them. Returns the saved values.
fn hold_parent(parent: u32, parent_name: &str) -> Result<String, VmacError> {
    let mut parents = PARENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((original, count)) = parents.get_mut(&parent) {
        *count += 1;
        return Ok(original.clone());
    }
    let mut original = Vec::new();
    for (key, _) in PARENT_SYSCTLS {
        original.push(read_sysctl(&format!("ipv4/conf/{parent_name}/{key}"))?);
    }
    let original = original.join(",");
    for (key, value) in PARENT_SYSCTLS {
        if let Err(e) = write_sysctl(&format!("ipv4/conf/{parent_name}/{key}"), value) {
            restore_parent(parent_name, &original);
            return Err(e);
        }
    }
    parents.insert(parent, (original.clone(), 1));
    Ok(original)
}

/// Counts one virtual MAC less on `parent`; with the last, restores the
/// parent's [`PARENT_SYSCTLS`].
fn release_parent(parent: u32) {
    let mut parents = PARENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some((original, count)) = parents.get_mut(&parent) else {
        return;
    };
    *count -= 1;
    if *count == 0 {
        let original = original.clone();
        parents.remove(&parent);
        if let Some(name) = parent_name_now(parent) {
            restore_parent(&name, &original);
        }
    }
}

/// Writes back the parent's [`PARENT_SYSCTLS`] saved as `original`
/// (comma-separated, in that order). Best effort: a parent gone has
/// nothing to restore.
fn restore_parent(parent_name: &str, original: &str) {
    for ((key, _), value) in PARENT_SYSCTLS.iter().zip(original.split(',')) {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            let _ = write_sysctl(&format!("ipv4/conf/{parent_name}/{key}"), value);
        }
    }
}

/// The current name of interface `ifindex`, from the kernel.
fn parent_name_now(ifindex: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}

fn read_sysctl(path: &str) -> Result<String, VmacError> {
    let full = format!("/proc/sys/net/{path}");
    std::fs::read_to_string(&full)
        .map(|s| s.trim().to_owned())
        .map_err(|source| VmacError::Sysctl {
            op: "read",
            path: full,
            source,
        })
}

fn write_sysctl(path: &str, value: &str) -> Result<(), VmacError> {
    let full = format!("/proc/sys/net/{path}");
    std::fs::write(&full, value).map_err(|source| VmacError::Sysctl {
        op: "write",
        path: full,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_carries_the_vhid() {
        assert_eq!(virtual_router_mac(7), [0, 0, 0x5e, 0, 1, 7]);
        assert_eq!(virtual_router_mac(255), [0, 0, 0x5e, 0, 1, 0xff]);
    }

    #[test]
    fn names_fit_the_kernel() {
        assert_eq!(vmac_name(10, 3), "vmac10.3");
        assert_eq!(vmac_name(255, 9_999_999), "vmac255.9999999");
        assert_eq!(vmac_name(255, u32::MAX), "vm255.ffffffff");
        for vhid in [1, 99, 255] {
            for parent in [1, 10_000_000, u32::MAX] {
                assert!(vmac_name(vhid, parent).len() <= MAX_NAME_LEN);
            }
        }
    }
}
