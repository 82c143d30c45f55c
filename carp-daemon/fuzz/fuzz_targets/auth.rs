//! The authentication path: any password (valid or too long), any address
//! list, any header. Sealing then verifying must succeed; changing any
//! authenticated byte must fail; nothing may panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use carp_common::header::CarpHeader;
use carp_daemon::proto::auth::{Authenticator, MAX_PASSWORD_LEN};
use carp_daemon::proto::Password;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pw_len, rest)) = data.split_first() else {
        return;
    };
    let pw_len = usize::from(pw_len % 32).min(rest.len());
    let (pw, rest) = rest.split_at(pw_len);
    let password = match Password::new(pw) {
        Ok(p) => p,
        Err(_) => {
            assert!(pw.len() > MAX_PASSWORD_LEN);
            return;
        }
    };
    let Some((carp, rest)) = rest.split_first_chunk::<36>() else {
        return;
    };
    let addrs: Vec<IpAddr> = rest
        .chunks(5)
        .filter_map(|c| match c {
            [0, a, b, cc, d] => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *cc, *d))),
            [tag, a, b, cc, d] => {
                let mut o = [0u8; 16];
                o[0] = *tag;
                o[12..].copy_from_slice(&[*a, *b, *cc, *d]);
                Some(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => None,
        })
        .take(16)
        .collect();
    let auth = Authenticator::new(password, &addrs);
    let received = CarpHeader::from_bytes(carp);
    let _ = auth.verify(&received);

    let mut sealed = received;
    auth.seal(&mut sealed);
    assert!(auth.verify(&sealed) && sealed.checksum_ok());
    let flip = usize::from(carp[0]) % 29;
    let mut bytes = sealed.to_bytes();
    // Authenticated bytes: vhid (1), counter (8..16), HMAC (16..36).
    let at = match flip {
        0 => 1,
        n => 7 + n,
    };
    bytes[at] ^= 1 << (carp[1] % 8);
    assert!(!auth.verify(&CarpHeader::from_bytes(&bytes)));
});
