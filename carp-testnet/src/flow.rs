//! An established TCP flow to watch across a failover: a client that sends
//! a numbered line every few milliseconds and an echo server that sends it
//! back. The client notes when each echo arrives; a reset, an early close
//! or a line out of order is a failure. The longest gap between two echoes
//! is the outage the flow saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{Error, Result};

/// Starts an echo server on `addr` in `ns`: it serves one connection,
/// sending every line back, until the client closes it.
pub fn echo_server(ns: &Netns, addr: SocketAddrV4) -> Result<JoinHandle<()>> {
    let listener = ns
        .run(|| TcpListener::bind(addr))?
        .map_err(|io| Error::Os {
            op: format!("bind {addr}"),
            io,
        })?;
    Ok(std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if writer.write_all(format!("{line}\n").as_bytes()).is_err() {
                return;
            }
        }
    }))
}

/// What the client has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// When each echo arrived, in order.
    echoes: Vec<Instant>,
    /// The first failure (reset, close, out of order), if any.
    failure: Option<String>,
}

/// The client side of the flow: a writer and a reader thread.
pub struct Flow {
    /// The connection (shut down to stop the reader).
    stream: TcpStream,
    /// Tells the writer to stop.
    stop: Arc<AtomicBool>,
    /// Shared with the reader and the writer.
    seen: Arc<Mutex<Seen>>,
    /// The writer and the reader.
    threads: Vec<JoinHandle<()>>,
}

impl Flow {
    /// Connects from `ns` to `server` and sends a line every `interval`.
    pub fn start(ns: &Netns, server: SocketAddrV4, interval: Duration) -> Result<Flow> {
        let stream = ns
            .run(|| TcpStream::connect_timeout(&server.into(), Duration::from_secs(5)))?
            .map_err(|io| Error::Os {
                op: format!("connect to {server}"),
                io,
            })?;
        let os = |op: &str| {
            let op = op.to_string();
            move |io| Error::Os { op, io }
        };
        stream.set_nodelay(true).map_err(os("set TCP_NODELAY"))?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut writer = stream.try_clone().map_err(os("clone the stream"))?;
        let reader = stream.try_clone().map_err(os("clone the stream"))?;
        let writing = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = writer.write_all(format!("{n}\n").as_bytes()) {
                        fail(&seen, format!("send {n}: {e}"));
                        return;
                    }
                    n += 1;
                    std::thread::sleep(interval);
                }
            })
        };
        let reading = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || read_echoes(reader, &seen, &stop))
        };
        Ok(Flow {
            stream,
            stop,
            seen,
            threads: vec![writing, reading],
        })
    }

    /// The echoes received so far.
    pub fn echoes(&self) -> usize {
        self.lock().echoes.len()
    }

    /// The echoes received after `t`.
    pub fn echoes_after(&self, t: Instant) -> usize {
        self.lock().echoes.iter().filter(|&&e| e > t).count()
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// The longest time without an echo from `t` on: from `t` (or the last
    /// echo before it) to the next echo, and between the echoes after it.
    /// `None` when no echo came after `t`.
    pub fn longest_gap_after(&self, t: Instant) -> Option<Duration> {
        longest_gap_after(&self.lock().echoes, t)
    }

    /// Waits (at most `within`) until `count` echoes came after `t`, or a
    /// failure; whether they came.
    pub fn wait_echoes_after(&self, t: Instant, count: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.echoes_after(t) >= count {
                return true;
            }
            if self.failure().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.echoes_after(t) >= count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The longest time without an echo in `echoes` (in order) from `t` on:
/// from the last echo at or before `t` (or `t` itself when there is none)
/// to the first after it, and between the echoes after it.
fn longest_gap_after(echoes: &[Instant], t: Instant) -> Option<Duration> {
    let first_after = echoes.iter().position(|&e| e > t)?;
    let before = first_after.checked_sub(1).map_or(t, |i| echoes[i]);
    let mut previous = before;
    let mut longest = Duration::ZERO;
    for &echo in &echoes[first_after..] {
        longest = longest.max(echo - previous);
        previous = echo;
    }
    Some(longest)
}

/// Notes the first failure.
fn fail(seen: &Mutex<Seen>, what: String) {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.failure.get_or_insert(what);
}

/// Reads the echoes, checking they come back in order, until the stream
/// ends; an end the client did not ask for is a failure.
fn read_echoes(stream: TcpStream, seen: &Mutex<Seen>, stop: &AtomicBool) {
    let mut expected: u64 = 0;
    for line in BufReader::new(stream).lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    fail(seen, format!("receive after echo {expected}: {e}"));
                }
                return;
            }
        };
        if line.parse::<u64>().ok() != Some(expected) {
            fail(seen, format!("echo {line:?} where {expected} was due"));
            return;
        }
        expected += 1;
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .echoes
            .push(Instant::now());
    }
    if !stop.load(Ordering::Relaxed) {
        fail(seen, format!("closed by the server after echo {expected}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_runs_from_the_last_echo_before_the_fault() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let echoes = [at(0), at(10), at(20), at(320), at(330), at(900)];
        // The fault at 25 ms: 20 -> 320, then 330 -> 900.
        assert_eq!(
            longest_gap_after(&echoes, at(25)),
            Some(Duration::from_millis(570))
        );
        // The fault at 5 ms: the gap 20 -> 320 is the largest before 330.
        assert_eq!(
            longest_gap_after(&echoes[..5], at(5)),
            Some(Duration::from_millis(300))
        );
        // No echo before the fault: counted from the fault.
        assert_eq!(
            longest_gap_after(&echoes[3..5], at(100)),
            Some(Duration::from_millis(220))
        );
        assert_eq!(longest_gap_after(&echoes, at(1000)), None);
    }
}
