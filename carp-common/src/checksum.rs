//! The Internet checksum (RFC 1071), as CARP and IPv4 use it.

/// Adds `bytes` as big-endian 16-bit words to `sum` (an odd last byte is
/// padded with zero) and returns the unfolded 32-bit sum.
#[inline(always)]
pub fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut i = 0;
    while i + 1 < bytes.len() {
        sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    if i < bytes.len() {
        sum += u32::from(bytes[i]) << 8;
    }
    sum
}

/// Folds a 32-bit sum of 16-bit words into 16 bits with end-around carry.
#[inline(always)]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum to store in a header whose checksum field is zero.
#[inline(always)]
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !fold(add_words(0, bytes))
}

/// True when `bytes`, checksum field included, sums to all ones.
#[inline(always)]
pub fn verify(bytes: &[u8]) -> bool {
    fold(add_words(0, bytes)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_words(0, &data)), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn stored_checksum_verifies() {
        let mut data = [
            0x45u8, 0x00, 0x00, 0x38, 0x12, 0x34, 0, 0, 0xff, 0x70, 0, 0, 10, 0, 0, 1, 224, 0, 0,
            18,
        ];
        assert!(!verify(&data));
        let c = internet_checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&data));
        data[3] ^= 1;
        assert!(!verify(&data));
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(add_words(0, &[0xab]), 0xab00);
    }
}
