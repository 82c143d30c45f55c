//! The fast path: a `PACKET_TX_RING` (PACKET_MMAP, TPACKET_V2) shared with
//! the kernel. Frames are written into free slots of the ring, marked
//! `TP_STATUS_SEND_REQUEST`, and one `send(fd, NULL, 0, MSG_DONTWAIT)` hands
//! every marked slot to the driver: one system call per batch.
//!
//! Each slot's frame is preceded by a `virtio_net_hdr` (`PACKET_VNET_HDR`)
//! whose `hdr_len` is the whole frame: the kernel then copies the frame
//! into the skb's linear area instead of attaching the ring's page as a
//! fragment. Without it every receiver has to pull the headers out of the
//! fragment first, which in a veth pair (where the receive path runs on the
//! sender's CPU) cut the rate several times over here.
//!
//! Slot life cycle, written by user space (→) and by the kernel (⇒):
//!
//! ```text
//! AVAILABLE → SEND_REQUEST ⇒ SENDING ⇒ AVAILABLE   (skb freed after transmission)
//!                  ⇑            ⇓
//!                  ⇐────────────  driver refused it: put back, sent again at the next send()
//! ```
//!
//! What is counted as sent: slots the kernel handed to the driver without
//! the driver refusing them, i.e. slots that left `SEND_REQUEST` for good
//! (a frame a veth refuses because its peer's backlog is full is put back
//! and retried, never counted twice and never counted if still refused at
//! the end).

use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use carp_testnet::socket;

use crate::socket::{is_busy, packet_socket, set_int, SendError};
use crate::Sender;

/// Slots per ring.
const SLOTS: usize = 4096;

/// Offset of the frame in a slot: the TPACKET_V2 header, aligned
/// (`TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`, as the kernel reads it
/// without `PACKET_TX_HAS_OFF`).
const DATA_OFFSET: usize = libc::TPACKET2_HDRLEN - size_of::<libc::sockaddr_ll>();

/// Size of the `virtio_net_hdr` in front of each frame.
const VNET_HDR_LEN: usize = 10;

/// Status bits that mean the kernel still owns a slot or refused it.
const BUSY: u32 = libc::TP_STATUS_SEND_REQUEST | libc::TP_STATUS_SENDING;

/// How long [`Sender::finish`] keeps re-sending slots the driver refused.
const DRAIN: Duration = Duration::from_millis(200);

/// A TX ring on its own socket, bound to one interface.
pub struct TxRing {
    /// The socket (closed after the mapping is gone: see `Drop`).
    fd: OwnedFd,
    /// The ring's mapping.
    map: NonNull<u8>,
    /// Its length in bytes.
    map_len: usize,
    /// Bytes per block (a multiple of the page size).
    block_size: usize,
    /// Bytes per slot (a multiple of 16, dividing the block).
    slot_size: usize,
    /// Slots per block.
    slots_per_block: usize,
    /// Next slot to fill (the kernel sends in the same order).
    next: usize,
    /// Slots filled and not yet seen back as available.
    in_flight: Vec<bool>,
    /// Frames transmitted and seen back as available.
    completed: u64,
    /// The last `send` found the driver or the socket busy: slots wait.
    backlog: bool,
}

// SAFETY: the mapping is owned by this value alone (nothing else holds a
// pointer into it), so moving the value to another thread moves the only
// user-space access to it along.
unsafe impl Send for TxRing {}

impl TxRing {
    /// A ring on interface `ifindex` for frames of up to `max_frame` bytes.
    pub fn open(ifindex: i32, max_frame: usize) -> Result<TxRing, SendError> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let slot_size = (DATA_OFFSET + VNET_HDR_LEN + max_frame)
            .next_power_of_two()
            .max(64);
        let block_size = slot_size.max(page);
        if block_size > 1 << 22 {
            return Err(SendError::FrameTooLong {
                len: max_frame,
                max: (1 << 22) - DATA_OFFSET - VNET_HDR_LEN,
            });
        }
        let slots_per_block = block_size / slot_size;
        let blocks = SLOTS.div_ceil(slots_per_block);
        let req = libc::tpacket_req {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: slot_size as u32,
            tp_frame_nr: (blocks * slots_per_block) as u32,
        };
        let fd = packet_socket(ifindex, |fd| {
            let v2 = libc::tpacket_versions::TPACKET_V2 as i32;
            set_int(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_VERSION,
                v2,
                "PACKET_VERSION",
            )?;
            // Before the ring: the kernel refuses it once a ring exists.
            set_int(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR,
                1,
                "PACKET_VNET_HDR",
            )?;
            let what = format!(
                "PACKET_TX_RING ({blocks} blocks of {block_size} bytes, slots of {slot_size})"
            );
            socket::set_option(fd, libc::SOL_PACKET, libc::PACKET_TX_RING, &req, &what)?;
            Ok(())
        })?;
        let map_len = blocks * block_size;
        // SAFETY: maps the ring just configured on `fd`, shared with the
        // kernel; the length is the ring's size.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(SendError::last_os(format!(
                "mmap of the TX ring ({map_len} bytes)"
            )));
        }
        let slots = blocks * slots_per_block;
        Ok(TxRing {
            fd,
            map: NonNull::new(map.cast()).expect("mmap returned a non-null mapping"),
            map_len,
            block_size,
            slot_size,
            slots_per_block,
            next: 0,
            in_flight: vec![false; slots],
            completed: 0,
            backlog: false,
        })
    }

    /// Largest frame a slot holds.
    pub fn max_frame(&self) -> usize {
        (self.slot_size - DATA_OFFSET - VNET_HDR_LEN).min(usize::from(u16::MAX))
    }

    /// Start of slot `i`.
    fn slot(&self, i: usize) -> *mut u8 {
        let offset = (i / self.slots_per_block) * self.block_size
            + (i % self.slots_per_block) * self.slot_size;
        debug_assert!(offset + self.slot_size <= self.map_len);
        // SAFETY: `offset` is inside the mapping (slot i < slots, blocks
        // laid out back to back).
        unsafe { self.map.as_ptr().add(offset) }
    }

    /// The status word of slot `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the first field of the slot's tpacket2_hdr,
        // 4-byte aligned (slots are 16-byte aligned), inside the mapping,
        // which lives as long as `self`. The kernel reads and writes it
        // concurrently; atomic accesses are the sound way to share it (the
        // kernel pairs its own accesses with barriers).
        unsafe { AtomicU32::from_ptr(self.slot(i).cast::<u32>()) }
    }

    /// `send(fd, NULL, 0, MSG_DONTWAIT)`: every `SEND_REQUEST` slot to the
    /// driver. A busy driver or socket leaves slots waiting (`backlog`).
    fn kick(&mut self) -> Result<(), SendError> {
        // SAFETY: valid fd; a null buffer of length 0 is what a TX ring's send expects.
        let rc =
            unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if !is_busy(&e) {
                return Err(SendError::Os {
                    op: "send on the TX ring".into(),
                    io: e,
                });
            }
            self.backlog = true;
        } else {
            self.backlog = false;
        }
        Ok(())
    }
}

impl Sender for TxRing {
    fn push(
        &mut self,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        let mut filled = 0;
        while filled < n {
            let i = self.next;
            if self.status(i).load(Ordering::Acquire) & BUSY != 0 {
                break;
            }
            if std::mem::replace(&mut self.in_flight[i], false) {
                self.completed += 1;
            }
            let slot = self.slot(i);
            let max = self.max_frame();
            // SAFETY: the slot is AVAILABLE, so the kernel does not touch it
            // until we mark it SEND_REQUEST below; its data area (virtio
            // header, then frame) follows the tpacket2_hdr inside the slot.
            let data = unsafe {
                std::slice::from_raw_parts_mut(slot.add(DATA_OFFSET), VNET_HDR_LEN + max)
            };
            let (vnet, frame) = data.split_at_mut(VNET_HDR_LEN);
            let len = fill(filled, frame);
            if len > max {
                return Err(SendError::FrameTooLong { len, max });
            }
            // virtio_net_hdr: no checksum offload, no GSO; hdr_len (bytes
            // 2..4, little endian) = the whole frame, copied linear.
            vnet.fill(0);
            vnet[2..4].copy_from_slice(&(len as u16).to_le_bytes());
            let hdr = slot.cast::<libc::tpacket2_hdr>();
            // SAFETY: the slot starts with its tpacket2_hdr, ours to write
            // while AVAILABLE; tp_len is what the kernel reads for TX.
            unsafe { std::ptr::addr_of_mut!((*hdr).tp_len).write((VNET_HDR_LEN + len) as u32) };
            // Release: the frame and tp_len are visible before the status.
            self.status(i)
                .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.in_flight[i] = true;
            self.next = (i + 1) % self.in_flight.len();
            filled += 1;
        }
        if filled > 0 || self.backlog {
            self.kick()?;
        }
        Ok(filled)
    }

    fn wait(&mut self) -> Result<(), SendError> {
        if self.backlog {
            // Refused frames wait in their slots: retry at once (a flood
            // keeps the driver as busy as it can).
            std::thread::yield_now();
            return Ok(());
        }
        // The next slot is still held by an skb somewhere downstream; the
        // kernel signals POLLOUT when it comes back.
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(SendError::Os {
                    op: "poll on the TX ring".into(),
                    io: e,
                });
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SendError> {
        let end = Instant::now() + DRAIN;
        let waiting = |r: &TxRing| {
            (0..r.in_flight.len()).any(|i| {
                r.in_flight[i]
                    && r.status(i).load(Ordering::Acquire) & libc::TP_STATUS_SEND_REQUEST != 0
            })
        };
        while waiting(self) && Instant::now() < end {
            self.kick()?;
            std::thread::sleep(Duration::from_micros(200));
        }
        // Slots still SEND_REQUEST were refused to the end: not sent. The
        // others went to the driver (some may still be in flight).
        let sent = (0..self.in_flight.len())
            .filter(|&i| {
                self.in_flight[i]
                    && self.status(i).load(Ordering::Acquire) & libc::TP_STATUS_SEND_REQUEST == 0
            })
            .count() as u64;
        Ok(self.completed + sent)
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `open`, once; no reference into
        // it outlives `self`. skbs still in flight hold their own page
        // references, and the socket is closed after this.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}
