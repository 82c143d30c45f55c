//! Bounds-checked reads from a frame, implemented over packet pointers by the
//! XDP program and over byte slices on the host.

/// Read access to the bytes of one received frame.
pub trait Packet {
    /// Length of the frame in bytes.
    fn len(&self) -> usize;

    /// True for an empty frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `N` bytes starting at `offset`, or `None` if the frame ends first.
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;
}

impl Packet for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.get(offset..end)?);
        Some(out)
    }
}
