//! How an instance follows the interface *name* of its configuration:
//! when that interface is deleted the binding is dropped and the core told
//! the link is down; when an interface of that name appears (again, or for
//! the first time: one missing at start waits for it the same way) the
//! binding is made on its index ([`Running::follow_link`]). A binding that
//! fails is retried every [`REBIND_RETRY_MS`].

use super::binding::{Binding, REBIND_RETRY_MS};
use super::instance::Running;
use super::params::{hmac_keys, new_core};
use super::DaemonError;
use crate::chain::Chain;
use crate::net::link::{LinkInfo, Links};
use crate::net::vip::VipManager;
use crate::proto::Nanos;
use crate::xdp::mode::XdpMode;
use crate::xdp::receive::ReceivePath;

impl Running {
    /// Why the instance is not running on its interface, for `status`:
    /// `None` while it is bound to it.
    pub fn waiting_reason(&self) -> Option<String> {
        if self.io.is_some() {
            return None;
        }
        let name = &self.link.name;
        Some(match self.rebind_at {
            Some(_) => format!(
                "interface {name} cannot be used yet, trying again every {REBIND_RETRY_MS} ms"
            ),
            None => format!("waiting for interface {name} to appear"),
        })
    }

    /// The interface of the configured name is now `link` (`None`: there
    /// is none). Follows it: drops the binding to an interface that is gone
    /// (the core sees the link down), binds to a new one (XDP attached,
    /// vhid served, sockets reopened; the core sees the link up), or passes
    /// a carrier change on to the core.
    pub async fn follow_link(
        &mut self,
        now: Nanos,
        link: Option<LinkInfo>,
        links: &Links,
        receive: &mut ReceivePath,
        vips: &VipManager,
        xdp_mode: XdpMode,
    ) {
        if self.ifindex().is_some() && link.as_ref().map(|l| l.ifindex) != self.ifindex() {
            self.leave_link(now, receive, vips).await;
        }
        let Some(link) = link else {
            self.rebind_at = None;
            return;
        };
        if self.ifindex().is_some() {
            self.carrier_seen(now, link);
        } else {
            self.rebind(now, link, links, receive, xdp_mode).await;
        }
        self.carry_out(vips).await;
    }

    /// The interface bound to is gone (deleted, or its name now another
    /// index): the core sees the link down and what it asks for is carried
    /// out (a renamed interface keeps its addresses, so ours are removed
    /// from it; a deleted one took them with it), then the binding is
    /// dropped. Failures are logged.
    async fn leave_link(&mut self, now: Nanos, receive: &mut ReceivePath, vips: &VipManager) {
        tracing::warn!(
            iface = %self.cfg.interface, vhid = self.cfg.vhid,
            "interface ifindex {} is gone", self.link.ifindex
        );
        self.core.handle_link(now, false);
        self.carry_out(vips).await;
        self.unbind(receive);
    }

    /// A report on the interface bound to: its carrier goes to the core
    /// (the watch's first report included, so an instance started on a
    /// down link goes INIT), unless link state is ignored. Cannot fail.
    fn carrier_seen(&mut self, now: Nanos, link: LinkInfo) {
        let was = self.link.carrier;
        self.link = link;
        if !self.cfg.ignore_ifstate {
            if was != self.link.carrier {
                tracing::info!(
                    iface = %self.cfg.interface, vhid = self.cfg.vhid,
                    "link {}", if self.link.carrier { "up" } else { "down" }
                );
            }
            self.core.handle_link(now, self.link.carrier);
        }
    }

    /// Binds to `link`, an interface of the configured name, and tells the
    /// core the link is up. A failure ([`Running::bind`]) is warned about
    /// once per interface index and retried every [`REBIND_RETRY_MS`].
    async fn rebind(
        &mut self,
        now: Nanos,
        link: LinkInfo,
        links: &Links,
        receive: &mut ReceivePath,
        xdp_mode: XdpMode,
    ) {
        let (iface, vhid) = (self.cfg.interface.clone(), self.cfg.vhid);
        match self.bind(now, &link, links, receive, xdp_mode).await {
            Ok(()) => {
                self.rebind_at = None;
                self.rebind_warned = None;
                tracing::info!(
                    iface = %iface, vhid,
                    "interface back as ifindex {}: receiving and sending again", link.ifindex
                );
                self.link = link;
                self.core
                    .handle_link(now, self.link.carrier || self.cfg.ignore_ifstate);
            }
            Err(e) => {
                // Warned once per interface, then retried quietly.
                if self.rebind_warned == Some(link.ifindex) {
                    tracing::debug!(iface = %iface, vhid, "still cannot use ifindex {}: {}", link.ifindex, Chain(&e));
                } else {
                    self.rebind_warned = Some(link.ifindex);
                    tracing::warn!(
                        iface = %iface, vhid,
                        "cannot use interface ifindex {} yet, trying again every {REBIND_RETRY_MS} ms: {}",
                        link.ifindex,
                        Chain(&e)
                    );
                }
                self.rebind_at = Some(now.saturating_add(Nanos::from_millis(REBIND_RETRY_MS)));
            }
        }
    }

    /// Binds to `link`: receive path attached and vhid served on it, advert
    /// sockets and announcer opened. The core is kept unless the advert
    /// sources changed (no `srcip`, and the new interface has another
    /// address), which needs a new one.
    async fn bind(
        &mut self,
        now: Nanos,
        link: &LinkInfo,
        links: &Links,
        receive: &mut ReceivePath,
        xdp_mode: XdpMode,
    ) -> Result<(), DaemonError> {
        let key = self.key();
        let (binding, sources) = Binding::open(&self.cfg, &key, link, links).await?;
        receive.attach(&link.name, link.ifindex, xdp_mode)?;
        receive.serve_vhid(link.ifindex, self.cfg.vhid, &self.cfg.peers)?;
        let hmac = hmac_keys(&self.cfg);
        receive.set_hmac_keys(link.ifindex, self.cfg.vhid, hmac.as_ref())?;
        if self.provisional_core || sources != self.core.params().source_addrs {
            tracing::info!(iface = %key.interface, vhid = key.vhid, "advert sources now {sources:?}");
            let mut core = new_core(&self.cfg, &key, sources, now, super::wall_clock_unix_ns())?;
            core.set_demote(now, self.demote.total());
            // Counters go on from the old core's, never below (both are
            // our counters, checked floors), and what it knew of its peers'
            // counters stays known.
            if let Some(last) = self.core.status().last_counter_sent {
                let _ = core.raise_counter_floor(last);
            }
            if let Some(floor) = self.counter_floor {
                let _ = core.raise_counter_floor(floor);
            }
            core.remember_counters(self.core.known_counters());
            self.core = core;
            self.provisional_core = false;
        }
        self.io = Some(binding);
        Ok(())
    }

    /// Drops the binding: its sockets, the vhid in the receive path (the
    /// addresses are removed before, as the core asks).
    pub(super) fn unbind(&mut self, receive: &mut ReceivePath) {
        if let Some(io) = self.io.take() {
            // A macvlan still there was deleted before (leaving), or went
            // with its parent.
            if let Some(vmac) = io.vmac {
                vmac.link.forget();
            }
            let _ = receive.set_hmac_keys(self.link.ifindex, self.cfg.vhid, None);
            let _ = receive.unserve_vhid(self.link.ifindex, self.cfg.vhid);
        }
        self.kernel_rules
            .clear(receive, (self.link.ifindex, self.cfg.vhid));
    }
}
