//! The other method, kept for comparison (`--method mmsg`): `sendmmsg` of a
//! batch of buffers on the same kind of socket. Each frame is copied into an
//! skb by the kernel; what is counted as sent is what `sendmmsg` reports as
//! sent (a frame the driver refuses ends the call and is written again
//! into the next batch).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::socket::{is_busy, packet_socket, SendError};
use crate::Sender;

/// Frames per `sendmmsg` call.
const BATCH: usize = 256;

/// A socket and a batch of buffers.
pub struct Mmsg {
    /// The socket.
    fd: OwnedFd,
    /// `BATCH` buffers of `cap` bytes, back to back.
    bufs: Vec<u8>,
    /// Capacity of one buffer.
    cap: usize,
    /// One iovec per buffer, pointing into `bufs` (heap memory that never
    /// moves: `bufs` is never resized).
    iovs: Vec<libc::iovec>,
    /// One header per buffer, pointing at its iovec.
    msgs: Vec<libc::mmsghdr>,
    /// Frames sent.
    sent: u64,
    /// The last call found the driver or the socket busy.
    busy: bool,
}

// SAFETY: the raw pointers inside `iovs` and `msgs` point only into heap
// memory owned by this value (`bufs`, `iovs`), so moving it to another
// thread moves every user of that memory along.
unsafe impl Send for Mmsg {}

impl Mmsg {
    /// A sender on interface `ifindex` for frames of up to `max_frame` bytes.
    pub fn open(ifindex: i32, max_frame: usize) -> Result<Mmsg, SendError> {
        let fd = packet_socket(ifindex, |_| Ok(()))?;
        let cap = max_frame;
        let mut bufs = vec![0u8; BATCH * cap];
        let mut iovs: Vec<libc::iovec> = bufs
            .chunks_exact_mut(cap)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: 0,
            })
            .collect();
        let msgs = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero mmsghdr is a valid value (no name,
                // no control data); the iovec is set below.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        Ok(Mmsg {
            fd,
            bufs,
            cap,
            iovs,
            msgs,
            sent: 0,
            busy: false,
        })
    }
}

impl Sender for Mmsg {
    fn push(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        let n = n.min(BATCH);
        for (i, buf) in self.bufs.chunks_exact_mut(self.cap).take(n).enumerate() {
            let len = fill(i, buf);
            if len > self.cap {
                return Err(SendError::FrameTooLong { len, max: self.cap });
            }
            self.iovs[i].iov_len = len;
        }
        // SAFETY: the first `n` headers point at iovecs that point into
        // `bufs`; all live in `self` for the duration of the call.
        let rc = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if !is_busy(&e) {
                return Err(SendError::Os {
                    op: "sendmmsg".into(),
                    io: e,
                });
            }
            self.busy = true;
            return Ok(0);
        }
        self.busy = false;
        self.sent += rc as u64;
        Ok(rc as usize)
    }

    fn wait(&mut self) -> Result<(), SendError> {
        if self.busy {
            std::thread::yield_now();
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SendError> {
        Ok(self.sent)
    }
}
