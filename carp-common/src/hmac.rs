//! HMAC-SHA1 of CARP adverts (RFC 2104), split so that the XDP program only
//! does the per-advert part.
//!
//! UCARP and carp(4) authenticate an advert with
//! `HMAC-SHA1(password, 0x02 0x01 vhid ‖ IPv4 VIPs ‖ IPv6 VIPs ‖ counter)`:
//! the password (at most [`CARP_KEY_LEN`] bytes) zero-padded to the 64-byte
//! block, the IPv4 VIPs (4 bytes each) and then the IPv6 VIPs (16 bytes each)
//! in ascending order without duplicates, and the 8 counter bytes as on the
//! wire. Only the counter changes from advert to advert, so the daemon calls
//! [`HmacKey::precompute`] once per (interface, vhid) and stores the result in
//! a map; per advert the XDP program calls [`verify_advert`], which runs two or
//! three SHA-1 compressions and nothing else:
//!
//! ```text
//! inner = SHA1-continue(inner state, prefix ‖ counter ‖ padding)   1 or 2 blocks
//! hmac  = SHA1-continue(outer state, inner digest ‖ padding)       1 block
//! ```

use core::fmt;

use crate::constants::{CARP_ADVERTISEMENT, CARP_HMAC_LEN, CARP_VERSION};
use crate::sha1::{self, Block, SHA1_BLOCK_LEN, SHA1_DIGEST_LEN, SHA1_INIT};

/// Longest password UCARP and carp(4) use (`CARP_KEY_LEN`), in bytes.
pub const CARP_KEY_LEN: usize = 20;

/// Longest message prefix (version, type, vhid and VIPs) that fits, in bytes.
///
/// The prefix, the 8 counter bytes and SHA-1's 9 bytes of padding must fit in
/// two blocks after the key block: 111 + 8 + 9 = 128. Since the prefix is
/// `3 + 4·n4 + 16·n6` bytes, this allows up to 27 IPv4 VIPs, or 6 IPv6 VIPs
/// and 3 IPv4 VIPs, or any mix with `4·n4 + 16·n6 ≤ 108`. The daemon verifies
/// adverts of vhids with more addresses in userspace only.
pub const PREFIX_MAX: usize = 2 * SHA1_BLOCK_LEN - COUNTER_LEN - 9;

/// Length of the advert counter, in bytes.
const COUNTER_LEN: usize = 8;

/// Bit length of the outer message: key block and inner digest.
const OUTER_BITS: u32 = ((SHA1_BLOCK_LEN + SHA1_DIGEST_LEN) * 8) as u32;

/// Why no [`HmacKey`] can be built for a vhid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacKeyError {
    /// The password is longer than [`CARP_KEY_LEN`] bytes.
    PasswordTooLong {
        /// Length of the password given, in bytes.
        len: usize,
    },
    /// Version, type, vhid and VIPs take more than [`PREFIX_MAX`] bytes.
    PrefixTooLong {
        /// Length the prefix would have (after removing duplicates), in bytes.
        len: usize,
    },
}

impl fmt::Display for HmacKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PasswordTooLong { len } => write!(
                f,
                "password of {len} bytes is longer than {CARP_KEY_LEN} bytes"
            ),
            Self::PrefixTooLong { len } => write!(
                f,
                "hmac message prefix of {len} bytes is longer than {PREFIX_MAX} bytes (too many addresses)"
            ),
        }
    }
}

impl core::error::Error for HmacKeyError {}

/// Everything the XDP program needs to check the HMAC of one vhid's adverts;
/// the value of the per-(interface, vhid) authentication map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HmacKey {
    /// SHA-1 chaining state after compressing the key block ⊕ ipad (0x36).
    pub inner: [u32; 5],
    /// SHA-1 chaining state after compressing the key block ⊕ opad (0x5c).
    pub outer: [u32; 5],
    /// Length of the message prefix, in bytes: the counter's offset in
    /// [`Self::tail`]. At most [`PREFIX_MAX`].
    pub prefix_len: u32,
    /// Number of blocks of [`Self::tail`] the inner hash uses: 1 when
    /// `prefix_len` ≤ 47, else 2.
    pub blocks: u32,
    /// The inner message after the key block, as SHA-1 message words (host
    /// byte order): prefix, 8 zero bytes where each advert's counter goes,
    /// then SHA-1 padding (0x80, zeros, the 64-bit bit length) ending
    /// block `blocks - 1`; zero after that.
    pub tail: [Block; 2],
}

/// Size of [`HmacKey`] in bytes.
pub const HMAC_KEY_LEN: usize = 176;
const _: () = assert!(size_of::<HmacKey>() == HMAC_KEY_LEN);
const _: () = assert!(PREFIX_MAX == 111);

#[cfg(feature = "user")]
// SAFETY: repr(C), u32 fields and arrays of u32 only, no implicit padding
// (size asserted above), so every bit pattern is a valid value.
unsafe impl aya::Pod for HmacKey {}

impl HmacKey {
    /// Precomputes the key of `vhid` for `password` and the vhid's VIPs.
    ///
    /// `v4` and `v6` may be in any order and contain duplicates: like carp(4),
    /// the message uses each address once, in ascending order. Runs in
    /// userspace only (it sorts).
    pub fn precompute(
        password: &[u8],
        vhid: u8,
        v4: &[[u8; 4]],
        v6: &[[u8; 16]],
    ) -> Result<Self, HmacKeyError> {
        if password.len() > CARP_KEY_LEN {
            return Err(HmacKeyError::PasswordTooLong {
                len: password.len(),
            });
        }
        let prefix_len = 3 + 4 * distinct(v4) + 16 * distinct(v6);
        if prefix_len > PREFIX_MAX {
            return Err(HmacKeyError::PrefixTooLong { len: prefix_len });
        }
        let mut bytes = [0u8; 2 * SHA1_BLOCK_LEN];
        bytes[0] = CARP_VERSION;
        bytes[1] = CARP_ADVERTISEMENT;
        bytes[2] = vhid;
        let len = append_sorted(&mut bytes, 3, v4);
        let len = append_sorted(&mut bytes, len, v6);
        debug_assert_eq!(len, prefix_len);

        let blocks = if len + COUNTER_LEN + 9 <= SHA1_BLOCK_LEN {
            1
        } else {
            2
        };
        let msg_len = len + COUNTER_LEN;
        bytes[msg_len] = 0x80;
        let bits = ((SHA1_BLOCK_LEN + msg_len) * 8) as u64;
        let end = blocks * SHA1_BLOCK_LEN;
        bytes[end - 8..end].copy_from_slice(&bits.to_be_bytes());

        let mut key = [0u8; SHA1_BLOCK_LEN];
        key[..password.len()].copy_from_slice(password);
        let mut tail = [[0u32; 16]; 2];
        for (block, chunk) in tail.iter_mut().zip(bytes.chunks_exact(SHA1_BLOCK_LEN)) {
            let mut b = [0u8; SHA1_BLOCK_LEN];
            b.copy_from_slice(chunk);
            *block = sha1::block_from_bytes(&b);
        }
        Ok(Self {
            inner: pad_state(&key, 0x36),
            outer: pad_state(&key, 0x5c),
            prefix_len: len as u32,
            blocks: blocks as u32,
            tail,
        })
    }
}

/// The chaining state after compressing `key` ⊕ `pad` (every byte).
fn pad_state(key: &[u8; SHA1_BLOCK_LEN], pad: u8) -> [u32; 5] {
    let mut block = *key;
    for b in block.iter_mut() {
        *b ^= pad;
    }
    let mut w = sha1::block_from_bytes(&block);
    let mut state = SHA1_INIT;
    sha1::compress(&mut state, &mut w);
    state
}

/// How many distinct addresses `addrs` holds.
fn distinct<const N: usize>(addrs: &[[u8; N]]) -> usize {
    addrs
        .iter()
        .enumerate()
        .filter(|(i, a)| !addrs[..*i].contains(a))
        .count()
}

/// Appends the distinct `addrs` in ascending order to `bytes[len..]` and
/// returns the new length; the caller checked that they fit.
fn append_sorted<const N: usize>(
    bytes: &mut [u8; 2 * SHA1_BLOCK_LEN],
    mut len: usize,
    addrs: &[[u8; N]],
) -> usize {
    // Selection of the next larger address, as carp(4) does it: no buffer
    // for a sorted copy is needed.
    let mut last: Option<&[u8; N]> = None;
    while let Some(addr) = addrs.iter().filter(|a| last.is_none_or(|l| *a > l)).min() {
        bytes[len..len + N].copy_from_slice(addr);
        len += N;
        last = Some(addr);
    }
    len
}

/// The HMAC of the advert of `key`'s vhid carrying `counter`.
///
/// This is what the XDP program runs: a 128-byte copy of [`HmacKey::tail`]
/// on the stack, the counter ORed into it at `prefix_len` with three masked
/// word writes, and two or three compressions. A corrupt `prefix_len` or
/// `blocks` in the map yields a wrong HMAC, never an out-of-bounds access.
#[inline(always)]
pub fn compute(key: &HmacKey, counter: &[u8; 8]) -> [u8; CARP_HMAC_LEN] {
    sha1::digest_bytes(&outer_state(key, counter))
}

/// True when `hmac` is the HMAC of the advert of `key`'s vhid carrying
/// `counter`. The comparison does not stop at the first differing word.
#[inline(always)]
pub fn verify_advert(key: &HmacKey, counter: &[u8; 8], hmac: &[u8; CARP_HMAC_LEN]) -> bool {
    let state = outer_state(key, counter);
    let mut diff = 0u32;
    for (i, word) in state.iter().enumerate() {
        let b = 4 * i;
        diff |= word ^ u32::from_be_bytes([hmac[b], hmac[b + 1], hmac[b + 2], hmac[b + 3]]);
    }
    diff == 0
}

/// The final outer chaining state, i.e. the HMAC as five words.
#[inline(always)]
fn outer_state(key: &HmacKey, counter: &[u8; 8]) -> [u32; 5] {
    let mut tail = key.tail;
    // The counter starts `off` bytes into the tail: word j gets its first
    // 4 - r bytes, word j + 1 the next four, word j + 2 the last r bytes
    // (nothing when r = 0: the u64 shift by 32 then truncates to zero).
    let c = u64::from_be_bytes(*counter);
    let off = key.prefix_len as usize;
    let j = off >> 2;
    let s = ((off & 3) * 8) as u32;
    or_word(&mut tail, j, (c >> (32 + s)) as u32);
    or_word(&mut tail, j + 1, (c >> s) as u32);
    or_word(&mut tail, j + 2, (c << (32 - s)) as u32);

    let mut state = key.inner;
    sha1::compress(&mut state, &mut tail[0]);
    if key.blocks > 1 {
        sha1::compress(&mut state, &mut tail[1]);
    }

    // Reuse the consumed first block for the outer message: the inner digest
    // (five words), 0x80, zeros, and the bit length of key block + digest.
    let w = &mut tail[0];
    *w = [0; 16];
    w[..5].copy_from_slice(&state);
    w[5] = 0x8000_0000;
    w[15] = OUTER_BITS;
    let mut outer = key.outer;
    sha1::compress(&mut outer, w);
    outer
}

/// ORs `value` into word `i` of the two-block tail; the index is masked to
/// the tail's 32 words (for the verifier, and so that it cannot panic).
#[inline(always)]
fn or_word(tail: &mut [Block; 2], i: usize, value: u32) {
    tail[(i >> 4) & 1][i & 15] |= value;
}
