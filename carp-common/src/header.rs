//! The 36-byte CARP v2 header as it is on the wire.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  |     VHID      |    AdvSkew    |   Auth Len    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Demote     |    AdvBase    |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Counter (64 bits, big-endian)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 HMAC-SHA1 (20 bytes)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The byte at offset 4 is `carp_demote` in OpenBSD and a pad byte (sent as
//! zero) in UCARP. The checksum is RFC 1071 over these 36 bytes only, for
//! IPv4 and IPv6 alike.

use crate::checksum;
use crate::constants::{
    CARP_ADVERTISEMENT, CARP_AUTHLEN, CARP_HEADER_LEN, CARP_HMAC_LEN, CARP_VERSION,
};

/// A CARP v2 header, byte for byte as on the wire (alignment 1, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarpHeader {
    /// Version in the high nibble, type in the low nibble.
    pub version_type: u8,
    /// Virtual host id, 1..=255.
    pub vhid: u8,
    /// Skew added to advbase, in 1/256 s.
    pub advskew: u8,
    /// Length of the authentication data in 32-bit words (7).
    pub authlen: u8,
    /// Demotion counter (OpenBSD); higher loses. UCARP sends 0.
    pub demote: u8,
    /// Base advertisement interval, in seconds.
    pub advbase: u8,
    /// RFC 1071 checksum over the 36 bytes, big-endian.
    pub checksum: [u8; 2],
    /// 64-bit replay counter, big-endian.
    pub counter: [u8; 8],
    /// HMAC-SHA1 of (version, type, vhid, addresses, counter).
    pub hmac: [u8; CARP_HMAC_LEN],
}

const _: () = assert!(size_of::<CarpHeader>() == CARP_HEADER_LEN);
const _: () = assert!(align_of::<CarpHeader>() == 1);

impl CarpHeader {
    /// A version 2 advertisement with the given fields, checksum and HMAC zero.
    pub const fn advertisement(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
    ) -> Self {
        Self {
            version_type: (CARP_VERSION << 4) | CARP_ADVERTISEMENT,
            vhid,
            advskew,
            authlen: CARP_AUTHLEN,
            demote,
            advbase,
            checksum: [0; 2],
            counter: counter.to_be_bytes(),
            hmac: [0; CARP_HMAC_LEN],
        }
    }

    /// Reads a header from its 36 wire bytes.
    #[inline(always)]
    pub fn from_bytes(bytes: &[u8; CARP_HEADER_LEN]) -> Self {
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&bytes[8..16]);
        let mut hmac = [0u8; CARP_HMAC_LEN];
        hmac.copy_from_slice(&bytes[16..36]);
        Self {
            version_type: bytes[0],
            vhid: bytes[1],
            advskew: bytes[2],
            authlen: bytes[3],
            demote: bytes[4],
            advbase: bytes[5],
            checksum: [bytes[6], bytes[7]],
            counter,
            hmac,
        }
    }

    /// The 36 wire bytes of this header.
    #[inline(always)]
    pub fn to_bytes(&self) -> [u8; CARP_HEADER_LEN] {
        let mut out = [0u8; CARP_HEADER_LEN];
        out[0] = self.version_type;
        out[1] = self.vhid;
        out[2] = self.advskew;
        out[3] = self.authlen;
        out[4] = self.demote;
        out[5] = self.advbase;
        out[6..8].copy_from_slice(&self.checksum);
        out[8..16].copy_from_slice(&self.counter);
        out[16..36].copy_from_slice(&self.hmac);
        out
    }

    /// Protocol version (high nibble of the first byte).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.version_type >> 4
    }

    /// Message type (low nibble of the first byte).
    #[inline(always)]
    pub fn kind(&self) -> u8 {
        self.version_type & 0x0f
    }

    /// The replay counter as a number.
    #[inline(always)]
    pub fn counter(&self) -> u64 {
        u64::from_be_bytes(self.counter)
    }

    /// The checksum field as a number.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.checksum)
    }

    /// Recomputes and stores the checksum (call after every other field is set).
    pub fn seal_checksum(&mut self) {
        self.checksum = [0; 2];
        self.checksum = checksum::internet_checksum(&self.to_bytes()).to_be_bytes();
    }

    /// True when the stored checksum matches the 36 bytes.
    pub fn checksum_ok(&self) -> bool {
        checksum::verify(&self.to_bytes())
    }

    /// True for the advert a master sends when it leaves (advbase and advskew 255).
    pub fn is_leave(&self) -> bool {
        self.advbase == crate::constants::CARP_LEAVE_ADVBASE
            && self.advskew == crate::constants::CARP_LEAVE_ADVSKEW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 1 of shared/vectors (UCARP 1.5.2), CARP part only.
    const UCARP_FRAME1_CARP: [u8; 36] = [
        0x21, 0x07, 0x00, 0x07, 0x00, 0x01, 0x35, 0x1c, 0xef, 0xed, 0xe3, 0xc9, 0xad, 0x1a, 0x16,
        0x59, 0x03, 0x9f, 0xca, 0xd7, 0x38, 0x00, 0xa9, 0x76, 0x23, 0xf0, 0x77, 0x21, 0x1f, 0x6f,
        0x7d, 0x19, 0x36, 0xeb, 0xf4, 0x35,
    ];

    #[test]
    fn decodes_ucarp_advert() {
        let h = CarpHeader::from_bytes(&UCARP_FRAME1_CARP);
        assert_eq!(h.version(), 2);
        assert_eq!(h.kind(), 1);
        assert_eq!(h.vhid, 7);
        assert_eq!(h.advskew, 0);
        assert_eq!(h.authlen, 7);
        assert_eq!(h.demote, 0);
        assert_eq!(h.advbase, 1);
        assert_eq!(h.counter(), 17288724999877301849);
        assert_eq!(h.hmac[0], 0x03);
        assert!(h.checksum_ok());
        assert_eq!(h.to_bytes(), UCARP_FRAME1_CARP);
    }

    #[test]
    fn golden_bytes_of_a_fresh_advert() {
        let mut h = CarpHeader::advertisement(7, 1, 100, 3, 0x0102_0304_0506_0708);
        h.hmac = [0xaa; 20];
        h.seal_checksum();
        let b = h.to_bytes();
        assert_eq!(&b[..6], &[0x21, 7, 100, 7, 3, 1]);
        assert_eq!(&b[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(h.checksum_ok());
        let mut broken = h;
        broken.advskew ^= 1;
        assert!(!broken.checksum_ok());
    }

    #[test]
    fn leave_advert() {
        assert!(CarpHeader::advertisement(1, 255, 255, 0, 0).is_leave());
        assert!(!CarpHeader::advertisement(1, 255, 254, 0, 0).is_leave());
    }
}
