//! The frame file: whole Ethernet frames, each prefixed by its length as a
//! big-endian `u16`, back to back. The generator sends them in a cycle.
//!
//! ```text
//! ┌────────┬──────────────┬────────┬──────────────┬─────
//! │ len 0  │ frame 0      │ len 1  │ frame 1      │ ...
//! │ u16 BE │ len 0 bytes  │ u16 BE │ len 1 bytes  │
//! └────────┴──────────────┴────────┴──────────────┴─────
//! ```

use thiserror::Error;

/// An Ethernet header: destination, source, EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Why a frame file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramesError {
    /// The file holds no frame at all.
    #[error("the frame file is empty")]
    Empty,
    /// A length prefix is cut short by the end of the file.
    #[error("truncated length prefix at byte {offset} (one byte left)")]
    TruncatedPrefix {
        /// Offset of the prefix in the file.
        offset: usize,
    },
    /// A frame is shorter than its prefix says.
    #[error("frame {index} at byte {offset} announces {len} bytes, only {left} remain")]
    TruncatedFrame {
        /// Index of the frame in the file.
        index: usize,
        /// Offset of its prefix in the file.
        offset: usize,
        /// Its announced length.
        len: usize,
        /// Bytes left in the file after the prefix.
        left: usize,
    },
    /// A frame too short to hold an Ethernet header.
    #[error("frame {index} at byte {offset} is {len} bytes, shorter than an Ethernet header (14)")]
    TooShort {
        /// Index of the frame in the file.
        index: usize,
        /// Offset of its prefix in the file.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A frame whose length does not fit the `u16` prefix (encoding only).
    #[error("frame {index} is {len} bytes, more than a u16 length prefix can say")]
    TooLong {
        /// Index of the frame.
        index: usize,
        /// Its length.
        len: usize,
    },
}

/// Splits the contents of a frame file into its frames.
pub fn parse(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FramesError> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let Some(prefix) = bytes.get(offset..offset + 2) else {
            return Err(FramesError::TruncatedPrefix { offset });
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let start = offset + 2;
        let index = frames.len();
        let Some(frame) = bytes.get(start..start + len) else {
            return Err(FramesError::TruncatedFrame {
                index,
                offset,
                len,
                left: bytes.len() - start,
            });
        };
        if len < ETHERNET_HEADER_LEN {
            return Err(FramesError::TooShort { index, offset, len });
        }
        frames.push(frame.to_vec());
        offset = start + len;
    }
    if frames.is_empty() {
        return Err(FramesError::Empty);
    }
    Ok(frames)
}

/// The frame file holding `frames`, in order.
pub fn encode<F: AsRef<[u8]>>(frames: &[F]) -> Result<Vec<u8>, FramesError> {
    let mut out = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        let frame = frame.as_ref();
        let len = u16::try_from(frame.len()).map_err(|_| FramesError::TooLong {
            index,
            len: frame.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(frame);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fill: u8, len: usize) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn encode_then_parse_gives_the_frames_back_in_order() {
        let frames = vec![frame(1, 14), frame(2, 70), frame(3, 1514)];
        let file = encode(&frames).unwrap();
        assert_eq!(file.len(), 3 * 2 + 14 + 70 + 1514);
        assert_eq!(&file[..2], &[0, 14]);
        assert_eq!(&file[16..18], &[0, 70]);
        assert_eq!(parse(&file).unwrap(), frames);
    }

    #[test]
    fn the_prefix_is_big_endian() {
        let mut file = vec![0x01, 0x02];
        file.extend(frame(7, 0x0102));
        let frames = parse(&file).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 258);
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert_eq!(parse(&[]), Err(FramesError::Empty));
    }

    #[test]
    fn a_lone_prefix_byte_is_refused_with_its_offset() {
        let mut file = encode(&[frame(1, 20)]).unwrap();
        file.push(0);
        assert_eq!(
            parse(&file),
            Err(FramesError::TruncatedPrefix { offset: 22 })
        );
    }

    #[test]
    fn a_frame_cut_short_is_refused_with_what_remains() {
        let mut file = encode(&[frame(1, 20), frame(2, 60)]).unwrap();
        file.truncate(file.len() - 10);
        assert_eq!(
            parse(&file),
            Err(FramesError::TruncatedFrame {
                index: 1,
                offset: 22,
                len: 60,
                left: 50
            })
        );
    }

    #[test]
    fn frames_shorter_than_an_ethernet_header_are_refused() {
        let file = encode(&[frame(1, 20), frame(2, 13)]).unwrap();
        assert_eq!(
            parse(&file),
            Err(FramesError::TooShort {
                index: 1,
                offset: 22,
                len: 13
            })
        );
        assert_eq!(
            parse(&[0, 0]),
            Err(FramesError::TooShort {
                index: 0,
                offset: 0,
                len: 0
            })
        );
    }

    #[test]
    fn frames_past_the_u16_prefix_cannot_be_encoded() {
        assert_eq!(
            encode(&[frame(0, 65536)]),
            Err(FramesError::TooLong {
                index: 0,
                len: 65536
            })
        );
    }
}
