//! What ties an instance to one kernel interface: its index, the advert
//! sockets bound to it, the announcer, and the addresses we added to it.
//! An instance follows the interface name of its configuration, so a
//! binding is made at start and again whenever an interface of that name
//! appears with a new index (see [`super::instance::Running::follow_link`]).

use std::net::IpAddr;

use super::key::InstanceKey;
use super::DaemonError;
use crate::config::InstanceConfig;
use crate::net::announce::Announcer;
use crate::net::link::{LinkInfo, Links};
use crate::net::sender::AdvertSocket;
use crate::net::vip::{VipManager, VipSet};
use crate::net::vmac::{mac_text, remove_stale, virtual_router_mac, vmac_name, Vmac, VmacError};

/// Wait before binding to a re-created interface is tried again when it
/// failed (its address not configured yet, for instance), in ms.
pub const REBIND_RETRY_MS: u64 = 500;

/// What ties an instance to one kernel interface.
#[derive(Debug)]
pub struct Binding {
    /// Advert sockets, one per source address, shared with the stand-in
    /// senders.
    pub(super) sockets: std::sync::Arc<[AdvertSocket]>,
    /// Gratuitous ARP / unsolicited NA sender, when the link has a MAC.
    pub(super) announcer: Option<std::sync::Arc<Announcer>>,
    /// The addresses we added to this interface.
    pub(super) vips: VipSet,
    /// With `virtual_mac`, while MASTER: the macvlan holding the VIPs.
    pub(super) vmac: Option<VirtualMac>,
}

/// The macvlan of a master with `virtual_mac`, its announcer and its VIPs.
#[derive(Debug)]
pub struct VirtualMac {
    /// The macvlan.
    pub(super) link: Vmac,
    /// Gratuitous ARP / unsolicited NA sender from the virtual MAC.
    pub(super) announcer: std::sync::Arc<Announcer>,
    /// The addresses we added to the macvlan.
    pub(super) vips: VipSet,
}

impl VirtualMac {
    /// Creates the macvlan of `cfg` on `link` and its announcer.
    pub(super) async fn create(
        cfg: &InstanceConfig,
        link: &LinkInfo,
        mgr: &VipManager,
    ) -> Result<VirtualMac, DaemonError> {
        let key = InstanceKey::of(cfg);
        let vmac = Vmac::create(mgr.handle(), link.ifindex, &link.name, cfg.vhid)
            .await
            .map_err(|source| DaemonError::Vmac {
                key: key.clone(),
                source: Box::new(source),
            })?;
        let announcer = match Announcer::open(vmac.ifindex, vmac.mac) {
            Ok(a) => a,
            Err(source) => {
                let _ = vmac.delete(mgr.handle()).await;
                return Err(DaemonError::Announce { key, source });
            }
        };
        Ok(VirtualMac {
            vips: VipSet::new(vmac.ifindex),
            announcer: std::sync::Arc::new(announcer),
            link: vmac,
        })
    }
}

impl Binding {
    /// Opens the sockets of `cfg` on `link`; returns them with the advert
    /// source addresses (configured, or looked up on the interface).
    pub(super) async fn open(
        cfg: &InstanceConfig,
        key: &InstanceKey,
        link: &LinkInfo,
        links: &Links,
    ) -> Result<(Binding, Vec<IpAddr>), DaemonError> {
        let sources = advert_sources(cfg, key, link, links).await?;
        if cfg.virtual_mac {
            // One left behind by a killed daemon would answer for the VIPs.
            match remove_stale(links.handle(), link.ifindex, cfg.vhid).await {
                Ok(true) => tracing::info!(
                    iface = %cfg.interface, vhid = cfg.vhid,
                    "removed macvlan {} left behind by an earlier run", vmac_name(cfg.vhid, link.ifindex)
                ),
                Ok(false) => {}
                Err(source) => {
                    return Err(DaemonError::Vmac {
                        key: key.clone(),
                        source: Box::new(source),
                    })
                }
            }
        }
        let mut sockets = Vec::new();
        for src in &sources {
            sockets.push(
                AdvertSocket::open(
                    &link.name,
                    link.ifindex,
                    *src,
                    &cfg.unicast_peers,
                    cfg.mcast,
                    cfg.virtual_mac.then(|| virtual_router_mac(cfg.vhid)),
                )
                .map_err(|source| DaemonError::Send { source })?,
            );
        }
        let announcer = match link.mac {
            Some(mac) => Some(std::sync::Arc::new(
                Announcer::open(link.ifindex, mac).map_err(|source| DaemonError::Announce {
                    key: key.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        Ok((
            Binding {
                sockets: sockets.into(),
                announcer,
                vips: VipSet::new(link.ifindex),
                vmac: None,
            },
            sources,
        ))
    }
}

impl Binding {
    /// Where the VIPs of `cfg` go: the interface's own set, or with
    /// `virtual_mac` the macvlan's, made first when missing.
    pub(super) async fn vip_target(
        &mut self,
        cfg: &InstanceConfig,
        link: &LinkInfo,
        mgr: &VipManager,
    ) -> Result<&mut VipSet, DaemonError> {
        if !cfg.virtual_mac {
            return Ok(&mut self.vips);
        }
        let vmac = match self.vmac.take() {
            Some(vmac) => vmac,
            None => {
                let vmac = VirtualMac::create(cfg, link, mgr).await?;
                tracing::info!(
                    iface = %cfg.interface, vhid = cfg.vhid,
                    "virtual MAC {} on {}", mac_text(vmac.link.mac), vmac.link.name
                );
                vmac
            }
        };
        Ok(&mut self.vmac.insert(vmac).vips)
    }

    /// Deletes the macvlan, if any (its addresses go with it).
    pub(super) async fn drop_vmac(&mut self, mgr: &VipManager) -> Result<(), VmacError> {
        match self.vmac.take() {
            Some(vmac) => vmac.link.delete(mgr.handle()).await,
            None => Ok(()),
        }
    }

    /// The announcer of the VIPs: with `virtual_mac` the macvlan's only
    /// (none while it does not exist), else the interface's.
    pub(super) fn announcer_for(&self, virtual_mac: bool) -> Option<&std::sync::Arc<Announcer>> {
        match &self.vmac {
            Some(vmac) => Some(&vmac.announcer),
            None if virtual_mac => None,
            None => self.announcer.as_ref(),
        }
    }
}

/// The source addresses of adverts: `srcip`, else the interface's first
/// IPv4 address when there are IPv4 VIPs, plus its IPv6 link-local address
/// when there are IPv6 VIPs.
async fn advert_sources(
    cfg: &InstanceConfig,
    key: &InstanceKey,
    link: &LinkInfo,
    links: &Links,
) -> Result<Vec<IpAddr>, DaemonError> {
    let mut sources = Vec::new();
    let wants_v4 = cfg.vips.iter().any(|v| v.addr.is_ipv4());
    let wants_v6 = cfg.vips.iter().any(|v| v.addr.is_ipv6());
    let link_err = |source| DaemonError::Link {
        key: key.clone(),
        source: Box::new(source),
    };
    match cfg.srcip {
        Some(ip) => sources.push(ip),
        None => {
            if wants_v4 {
                match links.first_ipv4(link.ifindex).await.map_err(link_err)? {
                    Some(a) => sources.push(IpAddr::V4(a)),
                    None => {
                        return Err(DaemonError::NoSource {
                            key: key.clone(),
                            family: "IPv4",
                        })
                    }
                }
            }
        }
    }
    if wants_v6 && !sources.iter().any(IpAddr::is_ipv6) {
        match links
            .link_local_ipv6(link.ifindex)
            .await
            .map_err(link_err)?
        {
            Some(a) => sources.push(IpAddr::V6(a)),
            None => {
                return Err(DaemonError::NoSource {
                    key: key.clone(),
                    family: "IPv6 link-local",
                })
            }
        }
    }
    Ok(sources)
}
