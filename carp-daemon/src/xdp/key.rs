//! The receive path's HMAC key of a vhid, from its password and addresses.

use std::net::IpAddr;

use carp_common::constants::{AF_INET, AF_INET6};
use carp_common::hmac::{HmacKey, HmacKeyError};
use carp_common::maps::{PeerKey, PeerValue};

use crate::proto::peer::AllowedPeer;

/// The precomputed key for `vhid` with `password` and virtual addresses
/// `vips`; an error when the password is too long or the addresses do not
/// fit the kernel's message prefix (such vhids are checked in userspace only).
pub fn hmac_key(
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
