//! The split HMAC-SHA1 of `carp_common::hmac` against the `hmac`/`sha1`
//! crates on random vhids, and against adverts UCARP 1.5.2 put on the wire
//! (/work/shared/vectors/README.md).

use std::collections::BTreeSet;

use carp_common::hmac::{compute, verify_advert, verify_advert_in, HmacKey, HmacKeyError};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use sha1::Sha1;

/// HMAC-SHA1 of an advert as the reference crates compute it, with the
/// message assembled independently: sorted, deduplicated VIPs.
fn reference(
    password: &[u8],
    vhid: u8,
    v4: &[[u8; 4]],
    v6: &[[u8; 16]],
    counter: &[u8; 8],
) -> [u8; 20] {
    let mut msg = vec![2u8, 1, vhid];
    for a in v4.iter().collect::<BTreeSet<_>>() {
        msg.extend_from_slice(a);
    }
    for a in v6.iter().collect::<BTreeSet<_>>() {
        msg.extend_from_slice(a);
    }
    msg.extend_from_slice(counter);
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(password).unwrap();
    mac.update(&msg);
    mac.finalize().into_bytes().into()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The 7 UCARP frames (Ethernet included) and their counters as tshark
/// printed them.
const UCARP_FRAMES: [(&str, u64); 7] = [
    ("01005e00001200005e0000070800451000382eff4000ff7061d00a630001e0000012210700070001351cefede3c9ad1a1659039fcad73800a97623f077211f6f7d1936ebf435", 17288724999877301849),
    ("01005e00001200005e000007080045100038f3864000ff709d480a630001e0000012210700070001930364a7defa11cecc0fc0465b1cc5d667b0592656c4ee5dbafe718016bb", 7253010890525428751),
    ("01005e00001200005e00000708004510003887724000ff70095d0a630001e00000122107000700011f117a21d4231c3d6fed11d85ddcba748c0602a02e27a1e68261958c44a4", 8800548394121392109),
    ("01005e00001200005e0000070800451000384a214000ff7046ae0a630001e0000012210700070001d557f9a5aa1d5fddab0624f5ff9d5992629fd200afcb931ea80ca9e11353", 17988971329740450566),
    ("01005e00001200005e000007080045100038191f4000ff7077af0a630002e0000012210764070001359af9a5aa1d5fddab07be7c5d7c6b8c5de5c4e6afe2f832e89f12c248e4", 17988971329740450567),
    ("01005e00001200005e0000070800451000381e6a4000ff7072640a630002e00000122107640700012a80f9a5aa1d5fddab08f14c71f40ab18f7f740d6d3aac9c7d2d8bba0d88", 17988971329740450568),
    ("01005e00001200005e00000708004510003894354000ff70fc980a630002e00000122107640700016a83f9a5aa1d5fddab09e8f6c73e45d60f30a20fb74a7cb354d0df9b520c", 17988971329740450569),
];
const UCARP_PASSWORD: &[u8] = b"carp-harness";
const UCARP_VHID: u8 = 7;
const UCARP_VIP: [u8; 4] = [10, 99, 0, 100];

/// (counter, hmac) of each UCARP frame, cut out of the CARP header.
fn ucarp_adverts() -> Vec<([u8; 8], [u8; 20])> {
    UCARP_FRAMES
        .iter()
        .map(|(hex, counter)| {
            let frame = unhex(hex);
            let carp = &frame[14 + 20..];
            assert_eq!(carp.len(), 36);
            assert_eq!(carp[1], UCARP_VHID);
            let c: [u8; 8] = carp[8..16].try_into().unwrap();
            assert_eq!(u64::from_be_bytes(c), *counter);
            (c, carp[16..36].try_into().unwrap())
        })
        .collect()
}

#[test]
fn ucarp_adverts_verify() {
    let key = HmacKey::precompute(UCARP_PASSWORD, UCARP_VHID, &[UCARP_VIP], &[]).unwrap();
    assert_eq!(key.prefix_len, 7);
    assert_eq!(key.blocks, 1);
    for (counter, hmac) in ucarp_adverts() {
        assert_eq!(compute(&key, &counter), hmac);
        assert!(verify_advert(&key, &counter, &hmac));
    }
}

#[test]
fn ucarp_adverts_fail_when_anything_changes() {
    let key = HmacKey::precompute(UCARP_PASSWORD, UCARP_VHID, &[UCARP_VIP], &[]).unwrap();
    for (counter, hmac) in ucarp_adverts() {
        for i in 0..8 {
            let mut c = counter;
            c[i] ^= 0x01;
            assert!(!verify_advert(&key, &c, &hmac), "counter byte {i}");
        }
        for i in 0..20 {
            let mut h = hmac;
            h[i] ^= 0x80;
            assert!(!verify_advert(&key, &counter, &h), "hmac byte {i}");
        }
        for i in 0..UCARP_PASSWORD.len() {
            let mut p = UCARP_PASSWORD.to_vec();
            p[i] ^= 0x20;
            let k = HmacKey::precompute(&p, UCARP_VHID, &[UCARP_VIP], &[]).unwrap();
            assert!(!verify_advert(&k, &counter, &hmac), "password byte {i}");
        }
        let others = [
            HmacKey::precompute(UCARP_PASSWORD, 8, &[UCARP_VIP], &[]).unwrap(),
            HmacKey::precompute(UCARP_PASSWORD, UCARP_VHID, &[[10, 99, 0, 101]], &[]).unwrap(),
            HmacKey::precompute(UCARP_PASSWORD, UCARP_VHID, &[], &[]).unwrap(),
            HmacKey::precompute(b"carp-harness\0", UCARP_VHID, &[UCARP_VIP], &[]).unwrap(),
        ];
        // A trailing NUL is the same HMAC key (zero padding), the rest differ.
        assert!(!verify_advert(&others[0], &counter, &hmac));
        assert!(!verify_advert(&others[1], &counter, &hmac));
        assert!(!verify_advert(&others[2], &counter, &hmac));
        assert!(verify_advert(&others[3], &counter, &hmac));
    }
}

#[test]
fn address_order_and_duplicates_do_not_matter() {
    let v4 = [
        [10, 0, 0, 9],
        [10, 0, 0, 1],
        [192, 168, 1, 1],
        [10, 0, 0, 1],
    ];
    let v6 = [[0xfe; 16], [0x20; 16], [0xfe; 16]];
    let a = HmacKey::precompute(b"pw", 3, &v4, &v6).unwrap();
    let mut v4s = v4;
    v4s.sort();
    let b = HmacKey::precompute(b"pw", 3, &v4s[1..], &v6[..2]).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.prefix_len as usize, 3 + 3 * 4 + 2 * 16);
    let c = HmacKey::precompute(b"pw", 3, &[[10, 0, 0, 9]], &[]).unwrap();
    assert_ne!(a, c);
}

#[test]
fn limits() {
    assert_eq!(
        HmacKey::precompute(&[b'x'; 21], 1, &[], &[]),
        Err(HmacKeyError::PasswordTooLong { len: 21 })
    );
    assert!(HmacKey::precompute(&[b'x'; 20], 1, &[], &[]).is_ok());

    let v4: Vec<[u8; 4]> = (0..=255u8).map(|i| [10, 0, 0, i]).collect();
    let v6: Vec<[u8; 16]> = (0..=255u8).map(|i| [i; 16]).collect();
    // The prefix's full blocks go into the inner state; what is left of it
    // is the counter's offset in the tail.
    let full = HmacKey::precompute(b"k", 1, &v4[..27], &[]).unwrap();
    assert_eq!((full.prefix_len, full.blocks), (111 - 64, 1));
    // The inner message fits one block up to a 47-byte prefix.
    let one = HmacKey::precompute(b"k", 1, &v4[..11], &[]).unwrap();
    assert_eq!((one.prefix_len, one.blocks), (47, 1));
    let two = HmacKey::precompute(b"k", 1, &v4[..12], &[]).unwrap();
    assert_eq!((two.prefix_len, two.blocks), (51, 2));
    let counter = 0x0102_0304_0506_0708u64.to_be_bytes();
    for (key, n) in [(&one, 11), (&two, 12), (&full, 27)] {
        let want = reference(b"k", 1, &v4[..n], &[], &counter);
        assert_eq!(compute(key, &counter), want, "{n} addresses");
    }
    // Every prefix length around the block edges, and long ones.
    for n4 in (0..40).chain([64, 255, 256]) {
        for n6 in [0, 1, 3, 7, 64, 256] {
            let key = HmacKey::precompute(b"k", 9, &v4[..n4], &v6[..n6]).unwrap();
            let len = 3 + 4 * n4 + 16 * n6;
            assert_eq!(key.prefix_len as usize, len % 64, "{n4} + {n6}");
            let want = reference(b"k", 9, &v4[..n4], &v6[..n6], &counter);
            assert_eq!(compute(&key, &counter), want, "{n4} IPv4, {n6} IPv6");
            assert!(verify_advert(&key, &counter, &want));
        }
    }
}

/// A vhid's addresses: any mix, up to four blocks of prefix and more
/// (random addresses are distinct with near certainty; a duplicate only
/// makes the prefix shorter).
fn any_vips() -> impl Strategy<Value = (Vec<[u8; 4]>, Vec<[u8; 16]>)> {
    (
        proptest::collection::vec(any::<[u8; 4]>(), 0..=80),
        proptest::collection::vec(any::<[u8; 16]>(), 0..=20),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    /// Kernel-side computation and the reference crates agree bit for bit;
    /// the right HMAC verifies and any one-bit change of it does not.
    #[test]
    fn agrees_with_hmac_crate(
        password in proptest::collection::vec(any::<u8>(), 0..=20),
        vhid in any::<u8>(),
        (v4, v6) in any_vips(),
        counter in any::<[u8; 8]>(),
        bit in 0usize..160,
        garbage in any::<[u32; 16]>(),
    ) {
        let key = HmacKey::precompute(&password, vhid, &v4, &v6).unwrap();
        let want = reference(&password, vhid, &v4, &v6, &counter);
        prop_assert_eq!(compute(&key, &counter), want);
        prop_assert!(verify_advert(&key, &counter, &want));
        // Whatever a per-CPU scratch block held before does not matter.
        let mut scratch = garbage;
        prop_assert!(verify_advert_in(&key, &counter, &want, &mut scratch));
        let mut forged = want;
        forged[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!verify_advert(&key, &counter, &forged));
        let mut scratch = garbage;
        prop_assert!(!verify_advert_in(&key, &counter, &forged, &mut scratch));
    }

    /// The counter's offset in the tail is the prefix length modulo a block.
    #[test]
    fn prefix_tail_length(
        v4 in proptest::collection::vec(any::<[u8; 4]>(), 0..40),
        v6 in proptest::collection::vec(any::<[u8; 16]>(), 0..10),
    ) {
        let len = 3 + 4 * v4.iter().collect::<BTreeSet<_>>().len()
            + 16 * v6.iter().collect::<BTreeSet<_>>().len();
        let key = HmacKey::precompute(b"pw", 1, &v4, &v6).unwrap();
        prop_assert_eq!(key.prefix_len as usize, len % 64);
        prop_assert_eq!(key.blocks, if len % 64 <= 47 { 1 } else { 2 });
    }
}
