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
//! three SHA-1 compressions and nothing else, however many VIPs the vhid
//! has (the inner state already covers the prefix's full blocks):
//!
//! ```text
//! inner = SHA1-continue(inner state, prefix tail ‖ counter ‖ padding)   1 or 2 blocks
//! hmac  = SHA1-continue(outer state, inner digest ‖ padding)       1 block
//! ```
//!
//! Measured on kernel 6.18 (nightly 1.97, bpf-linker, release): the work is
//! one out-of-line BPF function with a 176-byte frame plus the 64-byte block,
//! which [`verify_advert`] puts on the caller's stack and
//! [`verify_advert_in`] takes from the caller (a per-CPU array value). A
//! minimal XDP program around either verifies in about 16,100 processed
//! instructions and checks a UCARP advert in 0.6-0.9 µs (`BPF_PROG_TEST_RUN`).
//! The verifier limits the *combined* stack of a call chain to 512 bytes, so
//! the caller's own frame must stay below 512 - 176 (- 64) bytes.

use core::fmt;

use crate::constants::{CARP_ADVERTISEMENT, CARP_HMAC_LEN, CARP_VERSION};
use crate::sha1::{self, Block, SHA1_BLOCK_LEN, SHA1_DIGEST_LEN, SHA1_INIT};

/// Size of the key buffer of UCARP and carp(4) (`CARP_KEY_LEN`), in bytes.
/// It holds a NUL-terminated password, so passwords are at most one byte
/// shorter (`carp_proto::auth::MAX_PASSWORD_LEN`).
pub const CARP_KEY_LEN: usize = 20;

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
}

impl fmt::Display for HmacKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PasswordTooLong { len } => write!(
                f,
                "password of {len} bytes is longer than {CARP_KEY_LEN} bytes"
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
    /// SHA-1 chaining state after compressing the key block ⊕ ipad (0x36)
    /// and every full 64-byte block of the message prefix.
    pub inner: [u32; 5],
    /// SHA-1 chaining state after compressing the key block ⊕ opad (0x5c).
    pub outer: [u32; 5],
    /// Length of what is left of the prefix after its full blocks, in bytes
    /// (0 to 63): the counter's offset in [`Self::tail`].
    pub prefix_len: u32,
    /// Number of blocks of [`Self::tail`] the inner hash uses: 1 when
    /// `prefix_len` ≤ 47, else 2.
    pub blocks: u32,
    /// The rest of the inner message, as SHA-1 message words (host byte
    /// order): the prefix's last `prefix_len` bytes, 8 zero bytes where each
    /// advert's counter goes, then SHA-1 padding (0x80, zeros, the 64-bit
    /// bit length of the whole inner message) ending block `blocks - 1`;
    /// zero after that.
    pub tail: [Block; 2],
}

/// Size of [`HmacKey`] in bytes.
pub const HMAC_KEY_LEN: usize = 176;
const _: () = assert!(size_of::<HmacKey>() == HMAC_KEY_LEN);

#[cfg(feature = "user")]
// SAFETY: repr(C), u32 fields and arrays of u32 only, no implicit padding
// (size asserted above), so every bit pattern is a valid value.
unsafe impl aya::Pod for HmacKey {}

impl HmacKey {
    /// Precomputes the key of `vhid` for `password` and the vhid's VIPs.
    ///
    /// `v4` and `v6` may be in any order and contain duplicates: like carp(4),
    /// the message uses each address once, in ascending order. Any number
    /// of addresses fits: the full blocks of the prefix are compressed here,
    /// so the receive path's work per advert does not depend on it. Runs in
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
        let mut key = [0u8; SHA1_BLOCK_LEN];
        key[..password.len()].copy_from_slice(password);
        let mut prefix = Absorber::new(pad_state(&key, 0x36));
        prefix.push(&[CARP_VERSION, CARP_ADVERTISEMENT, vhid]);
        push_sorted(&mut prefix, v4);
        push_sorted(&mut prefix, v6);

        let len = prefix.len;
        let mut bytes = [0u8; 2 * SHA1_BLOCK_LEN];
        bytes[..len].copy_from_slice(&prefix.block[..len]);
        let blocks = if len + COUNTER_LEN + 9 <= SHA1_BLOCK_LEN {
            1
        } else {
            2
        };
        bytes[len + COUNTER_LEN] = 0x80;
        let bits = ((SHA1_BLOCK_LEN + prefix.total + COUNTER_LEN) * 8) as u64;
        let end = blocks * SHA1_BLOCK_LEN;
        bytes[end - 8..end].copy_from_slice(&bits.to_be_bytes());

        let mut tail = [[0u32; 16]; 2];
        for (block, chunk) in tail.iter_mut().zip(bytes.chunks_exact(SHA1_BLOCK_LEN)) {
            let mut b = [0u8; SHA1_BLOCK_LEN];
            b.copy_from_slice(chunk);
            *block = sha1::block_from_bytes(&b);
        }
        Ok(Self {
            inner: prefix.state,
            outer: pad_state(&key, 0x5c),
            prefix_len: len as u32,
            blocks: blocks as u32,
            tail,
        })
    }
}

/// SHA-1 fed byte by byte: each full block is compressed, the last partial
/// one is kept.
struct Absorber {
    state: [u32; 5],
    block: [u8; SHA1_BLOCK_LEN],
    /// Bytes in `block`.
    len: usize,
    /// Bytes pushed in all.
    total: usize,
}

impl Absorber {
    fn new(state: [u32; 5]) -> Self {
        Self {
            state,
            block: [0; SHA1_BLOCK_LEN],
            len: 0,
            total: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.block[self.len] = b;
            self.len += 1;
            self.total += 1;
            if self.len == SHA1_BLOCK_LEN {
                let mut w = sha1::block_from_bytes(&self.block);
                sha1::compress(&mut self.state, &mut w);
                self.len = 0;
            }
        }
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

/// Pushes the distinct `addrs` in ascending order.
fn push_sorted<const N: usize>(prefix: &mut Absorber, addrs: &[[u8; N]]) {
    // Selection of the next larger address, as carp(4) does it: no buffer
    // for a sorted copy is needed.
    let mut last: Option<&[u8; N]> = None;
    while let Some(addr) = addrs.iter().filter(|a| last.is_none_or(|l| *a > l)).min() {
        prefix.push(addr);
        last = Some(addr);
    }
}

/// The HMAC of the advert of `key`'s vhid carrying `counter`.
///
/// This is what the XDP program runs: per block, a 64-byte copy of
/// [`HmacKey::tail`] on the stack with the counter ORed in at `prefix_len`,
/// then a compression; two or three compressions in all. A corrupt
/// `prefix_len` or `blocks` in the map yields a wrong HMAC, never an
/// out-of-bounds access.
#[inline(always)]
pub fn compute(key: &HmacKey, counter: &[u8; 8]) -> [u8; CARP_HMAC_LEN] {
    sha1::digest_bytes(&outer_state(key, counter, &mut [0; 16]))
}

/// True when `hmac` is the HMAC of the advert of `key`'s vhid carrying
/// `counter`. The comparison does not stop at the first differing word.
///
/// Needs a 64-byte block on the caller's stack; see [`verify_advert_in`]
/// for one that lives elsewhere.
#[inline(always)]
pub fn verify_advert(key: &HmacKey, counter: &[u8; 8], hmac: &[u8; CARP_HMAC_LEN]) -> bool {
    verify_advert_in(key, counter, hmac, &mut [0; 16])
}

/// [`verify_advert`] with the 64-byte message block in `scratch`, e.g. the
/// value of a per-CPU array map, to keep it off the BPF stack. `scratch`
/// holds garbage on return.
#[inline(always)]
pub fn verify_advert_in(
    key: &HmacKey,
    counter: &[u8; 8],
    hmac: &[u8; CARP_HMAC_LEN],
    scratch: &mut Block,
) -> bool {
    let state = outer_state(key, counter, scratch);
    let mut diff = 0u32;
    for (i, word) in state.iter().enumerate() {
        let b = 4 * i;
        diff |= word ^ u32::from_be_bytes([hmac[b], hmac[b + 1], hmac[b + 2], hmac[b + 3]]);
    }
    diff == 0
}

/// The final outer chaining state, i.e. the HMAC as five words.
///
/// Kept out of line so that its frame (one 64-byte block, two states and
/// spills) is not added to the frame of the function calling it.
#[inline(never)]
fn outer_state(key: &HmacKey, counter: &[u8; 8], w: &mut Block) -> [u32; 5] {
    let c = u64::from_be_bytes(*counter);
    let mut state = key.inner;
    *w = key.tail[0];
    or_counter(w, 0, key.prefix_len, c);
    sha1::compress(&mut state, w);
    if key.blocks > 1 {
        *w = key.tail[1];
        or_counter(w, 1, key.prefix_len, c);
        sha1::compress(&mut state, w);
    }

    // The outer message after the key block: the inner digest (five words),
    // 0x80, zeros, and the bit length of key block + digest.
    *w = [0; 16];
    w[..5].copy_from_slice(&state);
    w[5] = 0x8000_0000;
    w[15] = OUTER_BITS;
    let mut outer = key.outer;
    sha1::compress(&mut outer, w);
    outer
}

/// ORs the part of counter `c` that falls into block `block` (0 or 1) of the
/// tail into `w`, a copy of that block, for a counter `prefix_len` bytes into
/// the tail.
///
/// With `prefix_len` = 4·j + r, word j of the tail gets the counter's first
/// 4 - r bytes, word j + 1 the next four and word j + 2 the last r bytes
/// (nothing when r = 0: the u64 shift by 32 then truncates to zero). Words
/// of the other block are masked to zero arithmetically rather than skipped
/// with a branch, and indices are masked to the block, so a corrupt
/// `prefix_len` from the map gives a wrong HMAC, never an out-of-bounds
/// access or a panic.
#[inline(always)]
fn or_counter(w: &mut Block, block: usize, prefix_len: u32, c: u64) {
    let j = (prefix_len >> 2) as usize;
    let s = (prefix_len & 3) * 8;
    let words = [
        (c >> (32 + s)) as u32,
        (c >> s) as u32,
        (c << (32 - s)) as u32,
    ];
    for (k, value) in words.into_iter().enumerate() {
        let i = j + k;
        // 1 when word i lies in this block, else 0; negated: all ones or 0.
        let here = (((i >> 4) ^ block ^ 1) & 1) as u32;
        w[i & 15] |= value & here.wrapping_neg();
    }
}
