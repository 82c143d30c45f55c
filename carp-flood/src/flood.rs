//! One sending thread: frame numbers in, frames out at full speed or at a
//! paced rate, until the deadline or a stop request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::socket::SendError;
use crate::spoof::Ipv4Source;
use crate::Sender;

/// Frames handed to the kernel per call at full speed.
pub const BATCH: usize = 256;

/// Longest sleep of a paced thread, so that it notices a stop request.
const MAX_NAP: Duration = Duration::from_millis(10);

/// The frames to send and how their sources are spoofed.
pub struct Source {
    /// The frames of the file, each with its IPv4 source if it has one.
    frames: Vec<(Vec<u8>, Option<Ipv4Source>)>,
    /// Distinct spoofed sources (0: no spoofing).
    spoof_sources: u32,
}

impl Source {
    /// The frames of a frame file; with `spoof_sources` > 0 the IPv4
    /// frames are sent from that many sources.
    pub fn new(frames: Vec<Vec<u8>>, spoof_sources: u32) -> Source {
        Source {
            frames: frames
                .into_iter()
                .map(|f| {
                    let at = Ipv4Source::find(&f);
                    (f, at)
                })
                .collect(),
            spoof_sources,
        }
    }

    /// Length of the longest frame.
    pub fn max_len(&self) -> usize {
        self.frames.iter().map(|(f, _)| f.len()).max().unwrap_or(0)
    }

    /// Writes frame number `k` into `buf` and returns its length.
    pub fn write(&self, k: u64, buf: &mut [u8]) -> usize {
        let (frame, at) = &self.frames[(k % self.frames.len() as u64) as usize];
        buf[..frame.len()].copy_from_slice(frame);
        if let (Some(at), n @ 1..) = (at, self.spoof_sources) {
            at.rewrite(&mut buf[..frame.len()], (k % u64::from(n)) as u32);
        }
        frame.len()
    }
}

/// What one thread does.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// This thread's number, from 0.
    pub thread: usize,
    /// Threads in all.
    pub threads: usize,
    /// When sending starts (the same for every thread).
    pub start: Instant,
    /// How long to send.
    pub duration: Duration,
    /// Frames per second of this thread; 0: as fast as possible.
    pub rate: f64,
}

/// Sends frames from `source` on `sender` following `schedule` until its
/// end or until `stop` is set; returns the frames sent.
pub fn run(
    sender: &mut dyn Sender,
    source: &Source,
    schedule: Schedule,
    stop: &AtomicBool,
) -> Result<u64, SendError> {
    let Schedule {
        thread,
        threads,
        start,
        duration,
        rate,
    } = schedule;
    let end = start + duration;
    // Frames handed over so far by this thread: its j-th frame is number
    // k = thread + j × threads.
    let mut handed = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let want = if rate > 0.0 {
            // Frames due by now, the first one at once.
            let due = ((now - start).as_secs_f64() * rate) as u64 + 1;
            if due <= handed {
                let next = start + Duration::from_secs_f64(handed as f64 / rate);
                std::thread::sleep((next.min(end) - now).min(MAX_NAP));
                continue;
            }
            ((due - handed) as usize).min(BATCH)
        } else {
            BATCH
        };
        let base = handed;
        let taken = sender.push(want, &mut |i, buf| {
            let k = thread as u64 + (base + i as u64) * threads as u64;
            source.write(k, buf)
        })?;
        handed += taken as u64;
        if taken == 0 {
            sender.wait()?;
        }
    }
    sender.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 frame (Ethernet + 20-byte header + 4 payload bytes) from `src`.
    fn ipv4(src: [u8; 4], payload: u8) -> Vec<u8> {
        let mut f = vec![0xff; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [
            0x45, 0, 0, 24, 0, 1, 0, 0, 255, 112, 0, 0, 0, 0, 0, 0, 224, 0, 0, 18,
        ];
        ip[12..16].copy_from_slice(&src);
        let sum = carp_common::checksum::internet_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[payload; 4]);
        f
    }

    /// A sender that records what it is given; room for `room` frames.
    struct Recorder {
        frames: Vec<Vec<u8>>,
        room: usize,
    }

    impl Sender for Recorder {
        fn push(
            &mut self,
            n: usize,
            fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
        ) -> Result<usize, SendError> {
            let n = n.min(self.room - self.frames.len());
            for i in 0..n {
                let mut buf = [0u8; 128];
                let len = fill(i, &mut buf);
                self.frames.push(buf[..len].to_vec());
            }
            Ok(n)
        }
        fn wait(&mut self) -> Result<(), SendError> {
            Ok(())
        }
        fn finish(&mut self) -> Result<u64, SendError> {
            Ok(self.frames.len() as u64)
        }
    }

    /// Runs thread `thread.0` of `thread.1` of `source` into a [`Recorder`]
    /// with room for `room` frames, for `duration` at `rate` (0: as fast as
    /// it goes), stop requested from the start if `stopped`: frames sent
    /// and the recorder.
    fn run_recorded(
        source: &Source,
        room: usize,
        thread: (usize, usize),
        duration: Duration,
        rate: f64,
        stopped: bool,
    ) -> (u64, Recorder) {
        let mut rec = Recorder {
            frames: Vec::new(),
            room,
        };
        let schedule = Schedule {
            thread: thread.0,
            threads: thread.1,
            start: Instant::now(),
            duration,
            rate,
        };
        let sent = run(&mut rec, source, schedule, &AtomicBool::new(stopped)).unwrap();
        (sent, rec)
    }

    /// [`run_recorded`] of the only thread, with room for every frame:
    /// frames sent.
    fn alone(source: &Source, duration: Duration, rate: f64, stopped: bool) -> u64 {
        run_recorded(source, usize::MAX, (0, 1), duration, rate, stopped).0
    }

    #[test]
    fn frames_go_out_in_a_cycle() {
        let source = Source::new(vec![ipv4([10, 0, 0, 1], 1), ipv4([10, 0, 0, 1], 2)], 0);
        let mut buf = [0u8; 64];
        let payloads: Vec<u8> = (0..5)
            .map(|k| {
                let n = source.write(k, &mut buf);
                buf[n - 1]
            })
            .collect();
        assert_eq!(payloads, [1, 2, 1, 2, 1]);
    }

    #[test]
    fn the_spoofed_source_is_the_own_plus_k_mod_n() {
        let source = Source::new(vec![ipv4([10, 0, 0, 1], 1)], 3);
        let mut buf = [0u8; 64];
        let last: Vec<u8> = (0..7)
            .map(|k| {
                source.write(k, &mut buf);
                buf[29]
            })
            .collect();
        assert_eq!(last, [1, 2, 3, 1, 2, 3, 1]);
        assert!(carp_common::checksum::verify(&buf[14..34]));
    }

    #[test]
    fn threads_interleave_frame_numbers() {
        // Two threads, spoofing 1000 sources: thread 1 sends k = 1, 3, 5, ...
        let source = Source::new(vec![ipv4([10, 0, 0, 0], 0)], 1000);
        let (sent, rec) = run_recorded(&source, 4, (1, 2), Duration::from_millis(20), 0.0, false);
        assert_eq!(sent, 4);
        let sources: Vec<u8> = rec.frames.iter().map(|f| f[29]).collect();
        assert_eq!(sources, [1, 3, 5, 7]);
    }

    #[test]
    fn a_paced_thread_keeps_to_its_rate() {
        let source = Source::new(vec![ipv4([10, 0, 0, 1], 1)], 0);
        let sent = alone(&source, Duration::from_millis(300), 100.0, false);
        // 100/s for 0.3 s: 30 frames, the first at once; a slow machine may
        // fall short, never ahead.
        assert!((20..=31).contains(&sent), "{sent} frames");
    }

    #[test]
    fn a_stop_request_ends_the_thread() {
        let source = Source::new(vec![ipv4([10, 0, 0, 1], 1)], 0);
        let t = Instant::now();
        let sent = alone(&source, Duration::from_secs(60), 10.0, true);
        assert_eq!(sent, 0);
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
