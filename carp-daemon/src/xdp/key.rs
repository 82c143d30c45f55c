//! The receive path's HMAC keys and allow-list entries of a vhid, from its
//! configuration.

use std::net::IpAddr;

use carp_common::constants::{AF_INET, AF_INET6, CARP_HMAC_LEN};
use carp_common::hmac::{verify_advert, HmacKey, HmacKeyError};
use carp_common::maps::{PeerKey, PeerValue};

use crate::proto::peer::AllowedPeer;

/// The keys the receive path checks a vhid's HMACs with: the digest over
/// every VIP and, where the vhid has IPv6 link-local VIPs, the one without
/// them as well (OpenBSD leaves such addresses out of its digest, UCARP and
/// FreeBSD keep them), tried when the first fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VhidKeys {
    /// The digest over every VIP.
    pub key: HmacKey,
    /// The digest without IPv6 link-local VIPs, where there are any.
    pub alt: Option<HmacKey>,
}

impl VhidKeys {
    /// The keys for `vhid` with `password` and virtual addresses `vips`; an
    /// error when the password is too long.
    pub fn new(password: &[u8], vhid: u8, vips: &[IpAddr]) -> Result<Self, HmacKeyError> {
        let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local());
        let key = hmac_key(password, vhid, vips.iter().copied())?;
        let alt = if vips.iter().any(link_local) {
            Some(hmac_key(
                password,
                vhid,
                vips.iter().copied().filter(|a| !link_local(a)),
            )?)
        } else {
            None
        };
        Ok(Self { key, alt })
    }

    /// Whether `hmac` is the digest of an advert carrying `counter` under
    /// either key.
    pub fn verify(&self, counter: &[u8; 8], hmac: &[u8; CARP_HMAC_LEN]) -> bool {
        verify_advert(&self.key, counter, hmac)
            || self
                .alt
                .as_ref()
                .is_some_and(|alt| verify_advert(alt, counter, hmac))
    }
}

/// The precomputed key for `vhid` with `password` and virtual addresses
/// `vips`; an error when the password is too long.
fn hmac_key(
    password: &[u8],
    vhid: u8,
    vips: impl IntoIterator<Item = IpAddr>,
) -> Result<HmacKey, HmacKeyError> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for vip in vips {
        match vip {
            IpAddr::V4(a) => v4.push(a.octets()),
            IpAddr::V6(a) => v6.push(a.octets()),
        }
    }
    HmacKey::precompute(password, vhid, &v4, &v6)
}

/// The receive path's allow-list entries of `vhid` on `ifindex`.
pub fn peer_entries(ifindex: u32, vhid: u8, peers: &[AllowedPeer]) -> Vec<(PeerKey, PeerValue)> {
    peers
        .iter()
        .map(|p| {
            let (family, addr) = match p.addr {
                IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    (AF_INET, b)
                }
                IpAddr::V6(a) => (AF_INET6, a.octets()),
            };
            let key = PeerKey {
                ifindex,
                vhid: u16::from(vhid),
                family,
                addr,
            };
            let value = PeerValue {
                mac: p.mac.map_or([0; 6], |m| m.0),
                mac_pinned: u16::from(p.mac.is_some()),
            };
            (key, value)
        })
        .collect()
}
