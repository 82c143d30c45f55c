//! The header decoder and the receive checks of the protocol core: any 36
//! bytes from any source must be decoded, re-encoded identically and either
//! accepted or rejected with a typed reason, never panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use carp_common::header::CarpHeader;
use carp_daemon::proto::{Instance, InstanceParams, Nanos, Password};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((carp, rest)) = data.split_first_chunk::<36>() else {
        return;
    };
    let h = CarpHeader::from_bytes(carp);
    assert_eq!(&h.to_bytes(), carp);
    let src = match rest.len() {
        n if n >= 16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&rest[..16]).unwrap())),
        n if n >= 4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&rest[..4]).unwrap())),
        _ => IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
    };
    let params = InstanceParams::new(
        carp[1].max(1),
        Password::new(b"carp-harness").unwrap(),
        vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))],
        vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 3))],
    );
    let Ok(mut instance) = Instance::new(params, Nanos(1), 1_763_000_000_000_000_000) else {
        return;
    };
    let _ = instance.handle_advert(Nanos(2), src, &h);
    while instance.poll_action().is_some() {}
    if let Some(t) = instance.poll_timeout() {
        instance.handle_timeout(t);
    }
});
