//! Authentication of adverts: HMAC-SHA1 keyed with the shared password.
//!
//! The message is, in this order (carp(4) `carp_hmac_prepare`, UCARP
//! `carp_hmac_prepare`):
//!
//! 1. the version byte (2) and the type byte (1);
//! 2. the vhid;
//! 3. the vhid's IPv4 addresses, ascending as unsigned big-endian numbers,
//!    4 bytes each, duplicates once;
//! 4. its IPv6 addresses, ascending the same way, 16 bytes each;
//! 5. the 8 counter bytes as they are on the wire.
//!
//! For a single IPv4 VIP this is byte for byte what UCARP 1.5 computes; for
//! several addresses it is what OpenBSD and FreeBSD compute. Digests are
//! compared in constant time ([`subtle`]).
//!
//! The key is the password bytes. carp(4) and UCARP keep it in a 20-byte
//! buffer padded with NULs; HMAC pads keys with zeros to the SHA-1 block size
//! anyway, so `"pw"` and `"pw\0\0"` give the same digest and all three
//! implementations agree. That buffer is a C string: BSD `ifconfig` copies at
//! most 19 bytes of a password and UCARP refuses a longer one
//! (`strlen(pass) + 1 > sizeof sc_key`), so 19 bytes is the limit here too; a
//! 20-byte password would give digests no peer computes.
//!
//! IPv6 link-local addresses: OpenBSD leaves them out of the digest it sends
//! (`HMAC_NOV6LL`) and accepts digests with or without them; FreeBSD includes
//! them. We accept both forms and send the configured one
//! ([`LinkLocalHmac`]).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use carp_common::constants::{CARP_ADVERTISEMENT, CARP_HMAC_LEN, CARP_VERSION};
use carp_common::header::CarpHeader;
use hmac::{Hmac, KeyInit, Mac};

use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Longest password carp(4) and UCARP accept, in bytes: 19, their key buffer
/// holds a NUL-terminated string.
pub const MAX_PASSWORD_LEN: usize = carp_common::hmac::CARP_KEY_LEN - 1;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The password is longer than carp(4) and UCARP accept.
    #[error("password is {len} bytes long, at most {MAX_PASSWORD_LEN} are allowed")]
    PasswordTooLong {
        /// Length of the password that was given.
        len: usize,
    },
}

/// The shared secret of a virtual host (at most [`MAX_PASSWORD_LEN`] bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    /// The password bytes, without padding.
    bytes: Vec<u8>,
}

impl Password {
    /// A password, refused when longer than [`MAX_PASSWORD_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, AuthError> {
        if bytes.len() > MAX_PASSWORD_LEN {
            return Err(AuthError::PasswordTooLong { len: bytes.len() });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
        })
    }

    /// The password bytes (the HMAC key).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes>)", self.bytes.len())
    }
}

/// The addresses of a vhid in HMAC order: IPv4 ascending, then IPv6
/// ascending, each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacAddrs {
    /// The address bytes, concatenated in HMAC order.
    bytes: Vec<u8>,
}

impl HmacAddrs {
    /// Sorts `addrs` into HMAC order.
    pub fn new(addrs: &[IpAddr]) -> Self {
        Self::sorted(addrs.iter().copied())
    }

    /// Sorts `addrs` into HMAC order, leaving out IPv6 link-local addresses
    /// (OpenBSD's `HMAC_NOV6LL` form); `None` when there are none, so that
    /// both forms are the same.
    pub fn without_link_local(addrs: &[IpAddr]) -> Option<Self> {
        let is_ll = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local());
        addrs
            .iter()
            .any(is_ll)
            .then(|| Self::sorted(addrs.iter().copied().filter(|a| !is_ll(a))))
    }

    fn sorted(addrs: impl Iterator<Item = IpAddr> + Clone) -> Self {
        let v4: BTreeSet<[u8; 4]> = addrs
            .clone()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(a.octets()),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6: BTreeSet<[u8; 16]> = addrs
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(a.octets()),
                IpAddr::V4(_) => None,
            })
            .collect();
        // Byte-wise order of big-endian octets is numeric order.
        let mut bytes = Vec::with_capacity(v4.len() * 4 + v6.len() * 16);
        v4.iter().for_each(|a| bytes.extend_from_slice(a));
        v6.iter().for_each(|a| bytes.extend_from_slice(a));
        Self { bytes }
    }

    /// The concatenated address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The key and the address list of one vhid: everything needed to sign and
/// verify its adverts.
#[derive(Clone, Debug)]
pub struct Authenticator {
    /// HMAC key.
    password: Password,
    /// The vhid's addresses in HMAC order.
    addrs: HmacAddrs,
    /// The same without IPv6 link-local addresses, when it has any.
    addrs_no_ll: Option<HmacAddrs>,
    /// The form we send.
    send: LinkLocalHmac,
}

impl Authenticator {
    /// An authenticator for a vhid with these addresses, sending IPv6
    /// link-local addresses in the digest.
    pub fn new(password: Password, addrs: &[IpAddr]) -> Self {
        Self {
            password,
            addrs: HmacAddrs::new(addrs),
            addrs_no_ll: HmacAddrs::without_link_local(addrs),
            send: LinkLocalHmac::Include,
        }
    }

    /// The same, sending IPv6 link-local addresses in the digest as `form`
    /// says.
    pub fn sending(mut self, form: LinkLocalHmac) -> Self {
        self.send = form;
        self
    }

    /// The digest of an advert for `vhid` with `counter` (8 wire bytes),
    /// link-local addresses included.
    pub fn digest(&self, version_type: u8, vhid: u8, counter: &[u8; 8]) -> [u8; CARP_HMAC_LEN] {
        self.digest_over(&self.addrs, version_type, vhid, counter)
    }

    fn digest_over(
        &self,
        addrs: &HmacAddrs,
        version_type: u8,
        vhid: u8,
        counter: &[u8; 8],
    ) -> [u8; CARP_HMAC_LEN] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(self.password.as_bytes())
            .unwrap_or_else(|_| unreachable!("hmac takes keys of any length"));
        mac.update(&[version_type >> 4, version_type & 0x0f, vhid]);
        mac.update(addrs.as_bytes());
        mac.update(counter);
        let mut out = [0u8; CARP_HMAC_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// True when the advert's HMAC matches, with or without IPv6 link-local
    /// addresses (compared in constant time).
    pub fn verify(&self, header: &CarpHeader) -> bool {
        let check = |addrs: &HmacAddrs| -> bool {
            let expected =
                self.digest_over(addrs, header.version_type, header.vhid, &header.counter);
            expected.ct_eq(&header.hmac).into()
        };
        check(&self.addrs) || self.addrs_no_ll.as_ref().is_some_and(check)
    }

    /// Fills in the HMAC, then the checksum, of an advert: the header is ready
    /// to send.
    pub fn seal(&self, header: &mut CarpHeader) {
        header.version_type = (CARP_VERSION << 4) | CARP_ADVERTISEMENT;
        let addrs = match (self.send, &self.addrs_no_ll) {
            (LinkLocalHmac::Exclude, Some(no_ll)) => no_ll,
            _ => &self.addrs,
        };
        header.hmac = self.digest_over(addrs, header.version_type, header.vhid, &header.counter);
        header.seal_checksum();
    }
}

/// How IPv6 link-local virtual addresses enter the HMAC of the adverts we
/// send. Received adverts are accepted in either form, as OpenBSD does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinkLocalHmac {
    /// Included, as FreeBSD and (for IPv4-only vhids, trivially) UCARP do.
    #[default]
    Include,
    /// Left out, as OpenBSD sends (`HMAC_NOV6LL` in `carp_hmac_prepare`).
    Exclude,
}

impl LinkLocalHmac {
    /// The lowercase name, as in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            LinkLocalHmac::Include => "include",
            LinkLocalHmac::Exclude => "exclude",
        }
    }
}

/// A link-local HMAC form that is neither `include` nor `exclude`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown link-local HMAC form {value:?}: expected \"include\" or \"exclude\"")]
pub struct UnknownLinkLocalHmac {
    /// The text given.
    pub value: String,
}

impl std::str::FromStr for LinkLocalHmac {
    type Err = UnknownLinkLocalHmac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "include" => Ok(LinkLocalHmac::Include),
            "exclude" => Ok(LinkLocalHmac::Exclude),
            other => Err(UnknownLinkLocalHmac {
                value: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_limit_is_the_peers_19_bytes() {
        assert!(Password::new(&[b'x'; 19]).is_ok());
        assert_eq!(
            Password::new(&[b'x'; 20]),
            Err(AuthError::PasswordTooLong { len: 20 })
        );
        assert_eq!(
            AuthError::PasswordTooLong { len: 20 }.to_string(),
            "password is 20 bytes long, at most 19 are allowed"
        );
    }

    #[test]
    fn link_local_addresses_in_either_form() {
        let addrs: Vec<IpAddr> = ["fe80::1", "2001:db8::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let pw = || Password::new(b"pw").unwrap();
        let include = Authenticator::new(pw(), &addrs);
        let exclude = Authenticator::new(pw(), &addrs).sending(LinkLocalHmac::Exclude);
        let (mut a, mut b) = (
            CarpHeader::advertisement(3, 1, 0, 0, 9),
            CarpHeader::advertisement(3, 1, 0, 0, 9),
        );
        include.seal(&mut a);
        exclude.seal(&mut b);
        assert_ne!(a.hmac, b.hmac, "the two forms differ");
        // The excluded form is the digest over the global address alone.
        let global_only = Authenticator::new(pw(), &addrs[1..]);
        assert_eq!(b.hmac, global_only.digest(b.version_type, 3, &b.counter));
        for auth in [&include, &exclude] {
            assert!(auth.verify(&a) && auth.verify(&b));
        }
        // Without link-local addresses there is one form only.
        assert!(!global_only.verify(&a));
    }

    #[test]
    fn addresses_sorted_numerically_v4_first_deduplicated() {
        let addrs: Vec<IpAddr> = ["fe80::1", "10.0.2.1", "10.0.1.200", "::1", "10.0.1.200"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let b = HmacAddrs::new(&addrs);
        let mut expected = vec![10, 0, 1, 200, 10, 0, 2, 1];
        expected.extend_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        expected.extend_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(b.as_bytes(), &expected[..]);
    }

    #[test]
    fn trailing_nuls_in_key_are_equivalent_as_in_carp4() {
        let addrs = ["10.0.0.1".parse().unwrap()];
        let a = Authenticator::new(Password::new(b"pw").unwrap(), &addrs);
        let b = Authenticator::new(Password::new(b"pw\0\0\0\0").unwrap(), &addrs);
        let c = Authenticator::new(Password::new(b"pX").unwrap(), &addrs);
        let counter = 42u64.to_be_bytes();
        assert_eq!(a.digest(0x21, 1, &counter), b.digest(0x21, 1, &counter));
        assert_ne!(a.digest(0x21, 1, &counter), c.digest(0x21, 1, &counter));
    }

    #[test]
    fn sealed_header_verifies_and_tampering_fails() {
        let addrs = ["10.0.0.1".parse().unwrap()];
        let auth = Authenticator::new(Password::new(b"secret").unwrap(), &addrs);
        let mut h = CarpHeader::advertisement(9, 1, 0, 0, 77);
        auth.seal(&mut h);
        assert!(auth.verify(&h) && h.checksum_ok());
        let mut t = h;
        t.counter[7] ^= 1;
        assert!(!auth.verify(&t));
        let mut t = h;
        t.vhid = 10;
        assert!(!auth.verify(&t));
    }
}
