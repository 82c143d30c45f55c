//! The SHA-1 compression function (FIPS 180-4 section 6.1.2), written for the
//! eBPF verifier.
//!
//! Only the block function lives here: the HMAC of an advert
//! ([`crate::hmac`]) starts from chaining states the daemon precomputed and
//! feeds at most three 64-byte blocks, already split into 32-bit words, so no
//! buffering or padding logic runs in the kernel. The code uses a 16-word
//! rolling message schedule (64 bytes, clobbering the caller's block instead
//! of copying it), four fixed loops of 20 rounds (no per-round branch on the
//! round number), no table lookups and no indexing that can panic.

/// Size of a SHA-1 message block, in bytes.
pub const SHA1_BLOCK_LEN: usize = 64;
/// Size of a SHA-1 digest, in bytes.
pub const SHA1_DIGEST_LEN: usize = 20;
/// Initial chaining state H(0) (FIPS 180-4 section 5.3.1).
pub const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// Round constants K for rounds 0-19, 20-39, 40-59 and 60-79 (section 4.2.1).
const K: [u32; 4] = [0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xCA62_C1D6];

/// One 64-byte block as the sixteen big-endian 32-bit words W0..W15.
pub type Block = [u32; 16];

/// Message word `t` of the schedule (section 6.1.2 step 1), computed in place.
///
/// For `t` < 16 this is the block's own word; from 16 on, the word 16
/// positions back is overwritten with
/// `ROTL1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16])`. All indices are taken
/// modulo 16 with a mask, so they are always in bounds.
#[inline(always)]
fn schedule(w: &mut Block, t: usize) -> u32 {
    if t >= 16 {
        let x = w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^ w[t & 15];
        w[t & 15] = x.rotate_left(1);
    }
    w[t & 15]
}

/// Working variables a..e of one compression.
#[derive(Clone, Copy)]
struct Vars {
    a: u32,
    b: u32,
    c: u32,
    d: u32,
    e: u32,
}

impl Vars {
    /// One round with `f` = f_t(b, c, d) already computed (section 6.1.2 step 3).
    #[inline(always)]
    fn round(&mut self, f: u32, k: u32, w: u32) {
        let temp = self
            .a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(self.e)
            .wrapping_add(k)
            .wrapping_add(w);
        self.e = self.d;
        self.d = self.c;
        self.c = self.b.rotate_left(30);
        self.b = self.a;
        self.a = temp;
    }
}

/// Compresses one block into `state` (H(i) = H(i-1) + compression).
///
/// `w` holds the block's 16 message words on entry; it is used as the rolling
/// message schedule and holds garbage on return.
#[inline(always)]
pub fn compress(state: &mut [u32; 5], w: &mut Block) {
    let mut v = Vars {
        a: state[0],
        b: state[1],
        c: state[2],
        d: state[3],
        e: state[4],
    };
    for t in 0..20 {
        let f = (v.b & v.c) | (!v.b & v.d); // Ch
        v.round(f, K[0], schedule(w, t));
    }
    for t in 20..40 {
        let f = v.b ^ v.c ^ v.d; // Parity
        v.round(f, K[1], schedule(w, t));
    }
    for t in 40..60 {
        let f = (v.b & v.c) | (v.b & v.d) | (v.c & v.d); // Maj
        v.round(f, K[2], schedule(w, t));
    }
    for t in 60..80 {
        let f = v.b ^ v.c ^ v.d; // Parity
        v.round(f, K[3], schedule(w, t));
    }
    state[0] = state[0].wrapping_add(v.a);
    state[1] = state[1].wrapping_add(v.b);
    state[2] = state[2].wrapping_add(v.c);
    state[3] = state[3].wrapping_add(v.d);
    state[4] = state[4].wrapping_add(v.e);
}

/// The 16 big-endian message words of a 64-byte block.
#[inline(always)]
pub fn block_from_bytes(bytes: &[u8; SHA1_BLOCK_LEN]) -> Block {
    let mut w = [0u32; 16];
    for (i, word) in w.iter_mut().enumerate() {
        let b = 4 * i;
        *word = u32::from_be_bytes([bytes[b], bytes[b + 1], bytes[b + 2], bytes[b + 3]]);
    }
    w
}

/// The digest bytes of a final chaining state (H0..H4, big-endian).
#[inline(always)]
pub fn digest_bytes(state: &[u32; 5]) -> [u8; SHA1_DIGEST_LEN] {
    let mut out = [0u8; SHA1_DIGEST_LEN];
    for (i, word) in state.iter().enumerate() {
        let b = word.to_be_bytes();
        out[4 * i] = b[0];
        out[4 * i + 1] = b[1];
        out[4 * i + 2] = b[2];
        out[4 * i + 3] = b[3];
    }
    out
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use ::sha1::{Digest, Sha1};
    use proptest::prelude::*;
    use std::vec::Vec;

    /// SHA-1 of `msg` through [`compress`] with the padding of section 5.1.1.
    fn sha1(msg: &[u8]) -> [u8; SHA1_DIGEST_LEN] {
        let mut padded: Vec<u8> = msg.to_vec();
        padded.push(0x80);
        while padded.len() % SHA1_BLOCK_LEN != 56 {
            padded.push(0);
        }
        padded.extend_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
        let mut state = SHA1_INIT;
        for chunk in padded.chunks_exact(SHA1_BLOCK_LEN) {
            let mut w = block_from_bytes(chunk.try_into().unwrap());
            compress(&mut state, &mut w);
        }
        digest_bytes(&state)
    }

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_examples() {
        // FIPS 180-4 / RFC 3174 test cases.
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million_a = std::vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&sha1(&million_a)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn digest_bytes_is_big_endian() {
        assert_eq!(
            digest_bytes(&[0x0102_0304, 0, 0, 0, 0xa0b0_c0d0])[..4],
            [1, 2, 3, 4]
        );
        assert_eq!(
            digest_bytes(&[0x0102_0304, 0, 0, 0, 0xa0b0_c0d0])[16..],
            [0xa0, 0xb0, 0xc0, 0xd0]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any message of 0..300 bytes (one to six blocks, every padding
        /// case) hashes as the `sha1` crate does.
        #[test]
        fn agrees_with_sha1_crate(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
            let want: [u8; 20] = Sha1::digest(&msg).into();
            prop_assert_eq!(sha1(&msg), want);
        }
    }
}
