//! Spoofed sources: the IPv4 source address of a frame replaced by the
//! frame's own source plus an offset (a 32-bit big-endian add), and the IPv4
//! header checksum updated incrementally (RFC 1624, eqn. 3). Nothing above
//! the IPv4 header changes: CARP's HMAC does not cover the source address,
//! so a captured advert stays authentic under every spoofed source.

use carp_common::checksum::fold;

use crate::frames::ETHERNET_HEADER_LEN;

/// EtherType of IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of an IEEE 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// Length of an IPv4 header without options.
const IPV4_MIN_HEADER: usize = 20;
/// Offset of the header checksum in an IPv4 header.
const IPV4_CHECKSUM: usize = 10;
/// Offset of the source address in an IPv4 header.
const IPV4_SOURCE: usize = 12;

/// Where the source address of an IPv4 frame is, and what the incremental
/// checksum update starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Source {
    /// Offset of the source address in the frame.
    source_at: usize,
    /// Offset of the IPv4 header checksum in the frame.
    checksum_at: usize,
    /// The frame's own source address.
    source: u32,
    /// `~HC + ~m` of RFC 1624 eqn. 3 for the frame's own checksum `HC` and
    /// source words `m`, unfolded: adding the new words and folding gives
    /// the new checksum's complement.
    base: u32,
}

impl Ipv4Source {
    /// The IPv4 source of `frame` (Ethernet II, at most one 802.1Q tag), or
    /// `None` when the frame is not IPv4 or too short to hold the header.
    pub fn find(frame: &[u8]) -> Option<Ipv4Source> {
        let ethertype =
            |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
        let mut l3 = ETHERNET_HEADER_LEN;
        let mut kind = ethertype(12)?;
        if kind == ETHERTYPE_VLAN {
            kind = ethertype(16)?;
            l3 += 4;
        }
        if kind != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = frame.get(l3..l3 + IPV4_MIN_HEADER)?;
        if ip[0] >> 4 != 4 {
            return None;
        }
        let word = |at: usize| u32::from(u16::from_be_bytes([ip[at], ip[at + 1]]));
        let checksum = word(IPV4_CHECKSUM);
        let (hi, lo) = (word(IPV4_SOURCE), word(IPV4_SOURCE + 2));
        Some(Ipv4Source {
            source_at: l3 + IPV4_SOURCE,
            checksum_at: l3 + IPV4_CHECKSUM,
            source: (hi << 16) | lo,
            base: (!checksum & 0xffff) + (!hi & 0xffff) + (!lo & 0xffff),
        })
    }

    /// Writes source `own + offset` (wrapping) into `frame`, a copy of the
    /// frame this was found in, and updates its header checksum.
    pub fn rewrite(&self, frame: &mut [u8], offset: u32) {
        let source = self.source.wrapping_add(offset);
        let sum = self.base + (source >> 16) + (source & 0xffff);
        frame[self.source_at..self.source_at + 4].copy_from_slice(&source.to_be_bytes());
        frame[self.checksum_at..self.checksum_at + 2].copy_from_slice(&(!fold(sum)).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use carp_common::checksum::verify;
    use carp_common::constants::{CARP_GROUP_V4, CARP_TTL};
    use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
    use carp_common::header::CarpHeader;

    use super::*;

    /// A CARP advert from `src`, optionally with an 802.1Q tag.
    fn advert(src: [u8; 4], vlan_id: Option<u16>) -> Vec<u8> {
        let mut h = CarpHeader::advertisement(7, 1, 0, 0, 42);
        h.hmac = [0x5a; 20];
        h.seal_checksum();
        let carp = h.to_bytes();
        let mut buf = [0u8; MAX_ADVERT_FRAME];
        let len = advert_frame(
            &AdvertFrame {
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: None,
                vlan_id,
                ip: IpLayer::V4 {
                    src,
                    dst: CARP_GROUP_V4,
                },
                ttl: CARP_TTL,
                ip_id: 0x1234,
                carp: &carp,
            },
            &mut buf,
        );
        buf[..len].to_vec()
    }

    fn ip_header(frame: &[u8], l3: usize) -> &[u8] {
        let ihl = usize::from(frame[l3] & 0x0f) * 4;
        &frame[l3..l3 + ihl]
    }

    #[test]
    fn the_rewritten_source_is_the_own_plus_the_offset_and_the_checksum_stays_valid() {
        let original = advert([10, 77, 0, 1], None);
        let at = Ipv4Source::find(&original).unwrap();
        for offset in [0u32, 1, 2, 255, 256, 65_535, 65_536, 999_999, 0xffff_ffff] {
            let mut f = original.clone();
            at.rewrite(&mut f, offset);
            let expected = u32::from_be_bytes([10, 77, 0, 1]).wrapping_add(offset);
            assert_eq!(f[26..30], expected.to_be_bytes(), "offset {offset}");
            assert!(verify(ip_header(&f, 14)), "offset {offset}: bad checksum");
            // Everything but the source and the checksum is untouched.
            assert_eq!(f[..24], original[..24]);
            assert_eq!(f[30..], original[30..]);
        }
    }

    #[test]
    fn every_offset_below_a_million_gives_a_distinct_source_with_a_valid_checksum() {
        let original = advert([192, 0, 2, 250], None);
        let at = Ipv4Source::find(&original).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut f = original.clone();
        for offset in 0..1_000_000u32 {
            at.rewrite(&mut f, offset);
            assert!(verify(ip_header(&f, 14)), "offset {offset}");
            seen.insert([f[26], f[27], f[28], f[29]]);
        }
        assert_eq!(seen.len(), 1_000_000);
    }

    #[test]
    fn an_802_1q_tagged_frame_is_rewritten_behind_its_tag() {
        let original = advert([10, 0, 0, 9], Some(42));
        let at = Ipv4Source::find(&original).unwrap();
        let mut f = original.clone();
        at.rewrite(&mut f, 0x0102_0304);
        assert_eq!(f[30..34], [11, 2, 3, 13]);
        assert!(verify(ip_header(&f, 18)));
    }

    #[test]
    fn the_incremental_update_matches_a_full_recomputation() {
        let original = advert([172, 16, 254, 3], None);
        let at = Ipv4Source::find(&original).unwrap();
        for offset in [1u32, 0x00ff_ff00, 0x1234_5678] {
            let mut f = original.clone();
            at.rewrite(&mut f, offset);
            let mut header = ip_header(&f, 14).to_vec();
            let written = u16::from_be_bytes([header[10], header[11]]);
            header[10..12].fill(0);
            let full = carp_common::checksum::internet_checksum(&header);
            // One's complement has two zeros; both verify, only 0 is written
            // by a full computation, and the update cannot produce 0xffff
            // from a header that is not all zeros.
            assert_eq!(written, full, "offset {offset:#x}");
        }
    }

    #[test]
    fn frames_that_are_not_ipv4_are_left_alone() {
        let mut arp = advert([10, 0, 0, 1], None);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(Ipv4Source::find(&arp), None);
        let mut v6_version = advert([10, 0, 0, 1], None);
        v6_version[14] = 0x65;
        assert_eq!(Ipv4Source::find(&v6_version), None);
        let short = advert([10, 0, 0, 1], None)[..30].to_vec();
        assert_eq!(Ipv4Source::find(&short), None);
    }
}
