//! What the instances know of their peers' counters, kept across restarts
//! (issue 19): the last counter accepted from each sender identity (see
//! [`crate::proto::counter`]), so that a restarted backup refuses, from its
//! first advert on, a replay of anything its previous run had heard.
//!
//! One file, `state_dir/peers`, one line per (interface, vhid, identity):
//! `<interface> <vhid> <counter>`. It is read once when the daemon starts,
//! before the event loop, by a thread of its own (the start waits at most
//! [`LOAD_WAIT`] for it), and written by that thread, never by the loop: the loop hands over the newest snapshot ([`PeerMemory::save`],
//! every [`SAVE_EVERY`] and at exit) and goes on; a writer stuck on a disk
//! delays nothing but the next write, and only the newest snapshot waits.
//! The file is replaced atomically (temporary file, rename), not synced: a
//! crash loses at most the last [`SAVE_EVERY`], after which a replay of an
//! advert from that span is accepted once per advert (each delays failover
//! by at most one master-down interval), as after a start without the file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::chain::Chain;
use crate::proto::counter::identity;

/// How often the loop hands the writer a snapshot (when anything changed).
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

/// At start, how long the daemon waits for the file to be read.
pub const LOAD_WAIT: Duration = Duration::from_secs(1);

/// At exit, how long the daemon waits for the last snapshot to be written.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Counters known per (interface, vhid).
pub type Snapshot = BTreeMap<(String, u8), Vec<u64>>;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PeersFileError {
    /// The file exists but cannot be read.
    #[error("cannot read the peers' counters {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// A line is not `<interface> <vhid> <counter>` with a counter that
    /// carries a sender's identity.
    #[error("{path} line {line}: {text:?} is not \"<interface> <vhid> <counter>\"")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What it holds (at most 60 characters of it).
        text: String,
    },
    /// The file or its directory could not be written.
    #[error("cannot write the peers' counters {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
}

/// Reads the file at `path`: what it knows, and the lines it had to skip.
/// No file is no knowledge.
pub fn load(path: &Path) -> Result<(Snapshot, Vec<PeersFileError>), PeersFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(io) => {
            return Err(PeersFileError::Read {
                path: path.to_owned(),
                io,
            })
        }
    };
    let mut known = Snapshot::new();
    let mut skipped = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some((iface, vhid, counter)) => known.entry((iface, vhid)).or_default().push(counter),
            None => skipped.push(PeersFileError::Malformed {
                path: path.to_owned(),
                line: n + 1,
                text: line.chars().take(60).collect(),
            }),
        }
    }
    Ok((known, skipped))
}

/// One line, if well formed.
fn parse_line(line: &str) -> Option<(String, u8, u64)> {
    let mut words = line.split_whitespace();
    let iface = words.next()?;
    let vhid: u8 = words.next()?.parse().ok().filter(|&v| v != 0)?;
    let counter: u64 = words.next()?.parse().ok()?;
    (words.next().is_none() && identity(counter).is_some())
        .then(|| (iface.to_owned(), vhid, counter))
}

/// Writes `snapshot` to `path`, replacing the file atomically.
pub fn store(path: &Path, snapshot: &Snapshot) -> Result<(), PeersFileError> {
    let err = |io| PeersFileError::Write {
        path: path.to_owned(),
        io,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut text = String::new();
    for ((iface, vhid), counters) in snapshot {
        for c in counters {
            text.push_str(&format!("{iface} {vhid} {c}\n"));
        }
    }
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

/// What the writer thread shares with the loop.
#[derive(Default)]
struct Shared {
    /// The newest snapshot not yet written.
    pending: Option<Snapshot>,
    /// No more snapshots: write the pending one and stop.
    closing: bool,
    /// The writer stopped.
    done: bool,
}

/// The peers' counters of every instance: read at start, written off the
/// loop.
pub struct PeerMemory {
    /// What the file held at start.
    recalled: Snapshot,
    /// The last snapshot handed over.
    saved: Snapshot,
    /// Shared with the writer thread; `None` without a writer.
    shared: Option<Arc<(Mutex<Shared>, Condvar)>>,
}

impl PeerMemory {
    /// Reads `state_dir/peers` (logging what cannot be used, one line
    /// each) and starts its writer thread.
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join("peers");
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        // The file is read by the writer's thread too: a `state_dir` that
        // blocks delays the start by at most [`LOAD_WAIT`].
        let spawned = std::thread::Builder::new()
            .name("peers-state".into())
            .spawn(move || {
                let _ = loaded_tx.send(load(&path));
                write_loop(&path, &theirs);
            });
        let shared = match spawned {
            Ok(_) => Some(shared),
            Err(e) => {
                tracing::warn!("cannot start the writer of the peers' counters: {e}");
                None
            }
        };
        let recalled = match loaded_rx.recv_timeout(LOAD_WAIT) {
            Ok(Ok((known, skipped))) => {
                for e in &skipped {
                    tracing::warn!("{}; line ignored", Chain(e));
                }
                known
            }
            Ok(Err(e)) => {
                tracing::warn!("{}; starting without it", Chain(&e));
                Snapshot::new()
            }
            Err(_) => {
                tracing::warn!(
                    "{} not read within {LOAD_WAIT:?}; starting without what it holds",
                    state_dir.join("peers").display()
                );
                Snapshot::new()
            }
        };
        Self {
            saved: recalled.clone(),
            recalled,
            shared,
        }
    }

    /// The counters known for (`interface`, `vhid`): by the previous run,
    /// and by this one as last saved (an instance a reload re-creates
    /// keeps what its predecessor knew).
    pub fn recall(&self, interface: &str, vhid: u8) -> Vec<u64> {
        let key = (interface.to_owned(), vhid);
        let mut known: Vec<u64> = [&self.recalled, &self.saved]
            .into_iter()
            .filter_map(|s| s.get(&key))
            .flatten()
            .copied()
            .collect();
        known.sort_unstable();
        known.dedup();
        known
    }

    /// Hands `snapshot` to the writer if it changed; never waits for a
    /// disk (the lock is never held across I/O).
    pub fn save(&mut self, snapshot: Snapshot) {
        if snapshot == self.saved {
            return;
        }
        if let Some(shared) = &self.shared {
            let (lock, cond) = &**shared;
            if let Ok(mut s) = lock.lock() {
                s.pending = Some(snapshot.clone());
                cond.notify_one();
            }
        }
        self.saved = snapshot;
    }

    /// Hands over the last snapshot and waits, at most [`CLOSE_WAIT`] and
    /// off the loop's thread, for the writer to finish.
    pub async fn close(&mut self, snapshot: Snapshot) {
        self.save(snapshot);
        let Some(shared) = self.shared.take() else {
            return;
        };
        let waited = tokio::task::spawn_blocking(move || {
            let (lock, cond) = &*shared;
            let Ok(mut s) = lock.lock() else { return false };
            s.closing = true;
            cond.notify_one();
            cond.wait_timeout_while(s, CLOSE_WAIT, |s| !s.done)
                .map(|(s, _)| s.done)
                .unwrap_or(false)
        })
        .await;
        if !matches!(waited, Ok(true)) {
            tracing::warn!(
                "the peers' counters were not written within {CLOSE_WAIT:?}; the next start knows less"
            );
        }
    }
}

/// The writer thread: writes the newest pending snapshot until closed.
fn write_loop(path: &Path, shared: &(Mutex<Shared>, Condvar)) {
    let (lock, cond) = shared;
    loop {
        let (next, closing) = {
            let Ok(guard) = lock.lock() else { return };
            let Ok(mut s) = cond.wait_while(guard, |s| s.pending.is_none() && !s.closing) else {
                return;
            };
            (s.pending.take(), s.closing)
        };
        if let Some(snapshot) = next {
            if let Err(e) = store(path, &snapshot) {
                tracing::warn!("{}", Chain(&e));
            }
        }
        if closing {
            if let Ok(mut s) = lock.lock() {
                // A snapshot handed over while writing is written too.
                if let Some(last) = s.pending.take() {
                    drop(s);
                    if let Err(e) = store(path, &last) {
                        tracing::warn!("{}", Chain(&e));
                    }
                    s = match lock.lock() {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                s.done = true;
                cond.notify_all();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::counter::tagged_by;

    #[test]
    fn stores_and_loads_skipping_what_is_not_a_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/peers");
        let mut s = Snapshot::new();
        let (a, b) = (
            tagged_by(7, 1_763_000_000_000),
            tagged_by(9, 1_763_000_001_000),
        );
        s.insert(("eth0.100".into(), 10), vec![a, b]);
        s.insert(("eth0".into(), 10), vec![b]);
        store(&path, &s).unwrap();
        let (known, skipped) = load(&path).unwrap();
        assert_eq!(known, s);
        assert!(skipped.is_empty(), "{skipped:?}");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("eth0 10 42\ngarbage\neth0 0 1\n\n");
        std::fs::write(&path, text).unwrap();
        let (known, skipped) = load(&path).unwrap();
        assert_eq!(known, s);
        let lines: Vec<String> = skipped.iter().map(|e| Chain(e).to_string()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].ends_with("line 4: \"eth0 10 42\" is not \"<interface> <vhid> <counter>\"")
        );
        assert_eq!(load(&dir.path().join("none")).unwrap().0, Snapshot::new());
    }

    #[tokio::test]
    async fn memory_is_written_off_the_loop_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = PeerMemory::open(dir.path());
        assert_eq!(m.recall("eth0", 1), Vec::<u64>::new());
        let c = tagged_by(7, 1_763_000_000_000);
        let mut s = Snapshot::new();
        s.insert(("eth0".into(), 1), vec![c]);
        m.save(s.clone());
        let later = tagged_by(7, 1_763_000_002_000);
        s.insert(("eth0".into(), 1), vec![later]);
        m.close(s).await;
        let mut again = PeerMemory::open(dir.path());
        assert_eq!(again.recall("eth0", 1), vec![later]);
        again.close(Snapshot::new()).await;
    }

    #[tokio::test]
    async fn a_disk_that_blocks_delays_neither_saving_nor_the_exit_beyond_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        // Opening a FIFO for writing blocks until someone reads it: the
        // writer's temporary file stands for a stalled disk.
        let fifo = dir.path().join("peers.tmp");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let mut m = PeerMemory::open(dir.path());
        let start = std::time::Instant::now();
        for i in 0..100u64 {
            let mut s = Snapshot::new();
            s.insert(
                ("eth0".into(), 1),
                vec![tagged_by(7, 1_763_000_000_000 + i)],
            );
            m.save(s);
        }
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        m.close(Snapshot::new()).await;
        let waited = start.elapsed();
        assert!(
            waited >= CLOSE_WAIT && waited < CLOSE_WAIT * 3,
            "{waited:?}"
        );
        // Unblock the writer so that its thread ends.
        let _ = std::fs::File::open(&fifo);
    }

    #[test]
    fn a_file_that_blocks_delays_the_start_by_at_most_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("peers");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let start = std::time::Instant::now();
        let m = PeerMemory::open(dir.path());
        let waited = start.elapsed();
        assert!(waited >= LOAD_WAIT && waited < LOAD_WAIT * 3, "{waited:?}");
        assert_eq!(m.recall("eth0", 1), Vec::<u64>::new());
        // Unblock the reader so that its thread ends its read.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
}
