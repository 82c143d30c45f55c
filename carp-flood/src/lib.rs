//! carp-flood: the attack generator of `cargo xtask bench` and of the
//! namespace tests. It sends the Ethernet frames of a frame file
//! ([`frames`]) in a cycle out of one interface, from several threads with
//! one `AF_PACKET` socket each, as fast as the kernel takes them or at a
//! paced rate, optionally under a million spoofed IPv4 sources ([`spoof`]).
//!
//! ```text
//!  frame file ─▶ Source ─▶ thread 0: TxRing ─┐
//!  (frames,       (frame k,  thread 1: TxRing ─┼─▶ send(fd, NULL, 0, MSG_DONTWAIT) ─▶ driver
//!   spoofing)      source k) ...               ┘
//! ```
//!
//! Thread `t` of `T` sends frame numbers `k = t, t + T, t + 2T, ...`; frame
//! `k` is frame `k mod (frames in the file)`, with source address
//! `own + (k mod N)` when spoofing `N` sources.
#![deny(missing_docs)]

pub mod flood;
pub mod frames;
pub mod mmsg;
pub mod ring;
pub mod socket;
pub mod spoof;

use socket::SendError;

/// A way of handing frames to the kernel.
pub trait Sender: Send {
    /// Hands up to `n` frames to the kernel; `fill(i, buf)` writes the `i`-th
    /// of them into `buf` and returns its length. Returns how many frames
    /// were taken (0 when the kernel has no room now; see [`Sender::wait`]).
    fn push(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize, SendError>;

    /// Waits a little (at most about a millisecond) for room.
    fn wait(&mut self) -> Result<(), SendError>;

    /// Flushes what is still waiting and returns the frames sent in all.
    fn finish(&mut self) -> Result<u64, SendError>;
}
