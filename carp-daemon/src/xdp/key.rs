//! The receive path's HMAC key of a vhid, from its password and addresses.

use std::net::IpAddr;

use carp_common::hmac::{HmacKey, HmacKeyError};

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
