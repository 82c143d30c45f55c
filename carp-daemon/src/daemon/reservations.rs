//! The counter reservation files, read and written off the event loop.
//!
//! ```text
//!  loop: Running::carry_out(PersistCounter) ─► Reserver::store ─┐ (never waits)
//!  loop: instance started ──────────────────► Reserver::load  ──┤
//!                                                               ▼
//!                    pending jobs, one slot per file (Mutex + Condvar)
//!                                                               │
//!                          writer thread (SCHED_OTHER): load / create,
//!                          write, fsync, rename, directory fsync
//!                                                               │
//!  loop: select! ◄── Done { path, Loaded | Stored } ◄── channel ◄┘
//! ```
//!
//! The loop never waits for a disk: a request only replaces the file's
//! pending slot (a later reservation supersedes one not yet written, so the
//! queue holds at most one job per file) and wakes the thread. What the
//! thread did comes back on a channel the loop selects on: a reservation
//! written goes to the core ([`crate::proto::instance::Instance::counter_persisted`]),
//! a reservation read raises the counter floor of the instances using that
//! file. A `state_dir` that blocks (a frozen filesystem, a hung disk) holds
//! up only this thread; a write pending for longer than [`STALL_WARNING`]
//! is warned about once, when the next one is asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::counters::{CounterFile, CounterFileError};
use crate::chain::Chain;

/// A write pending for longer than this is warned about.
pub const STALL_WARNING: Duration = Duration::from_secs(10);

/// Results the thread can hand over before it waits for the loop.
const DONE_CAPACITY: usize = 64;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ReservationsError {
    /// The writer thread could not be started.
    #[error("cannot start the counter reservation writer thread")]
    Spawn {
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
}

/// What the thread did with one file.
#[derive(Debug)]
pub enum Outcome {
    /// The file was read: the reservation it holds, if any.
    Loaded(Result<Option<u64>, CounterFileError>),
    /// The reservation was written (or not).
    Stored {
        /// The reservation.
        value: u64,
        /// Whether it is on stable storage.
        result: Result<(), CounterFileError>,
    },
}

/// One result of the thread.
#[derive(Debug)]
pub struct Done {
    /// The file.
    pub path: PathBuf,
    /// What was done.
    pub outcome: Outcome,
}

/// A job waiting for the thread, per file.
#[derive(Default)]
struct Job {
    /// The file.
    file: Option<CounterFile>,
    /// Read it first.
    load: bool,
    /// Then write this reservation.
    store: Option<u64>,
}

/// What the loop and the thread share.
#[derive(Default)]
struct Queue {
    /// Jobs not taken by the thread yet, by path.
    jobs: BTreeMap<PathBuf, Job>,
    /// Per path: when the oldest reservation not reported written yet was
    /// asked for, and whether that was warned about.
    unwritten: BTreeMap<PathBuf, (Instant, bool)>,
    /// The loop is gone: the thread ends once the jobs are done.
    closed: bool,
}

/// The queue and its wake-up.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic on the thread leaves the queue consistent: keep going.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread and the results it reports; owned by the loop.
pub struct Reservations {
    shared: Arc<Shared>,
    done: mpsc::Receiver<Done>,
}

impl Reservations {
    /// Starts the thread. Threads started by the (real-time) loop thread
    /// run SCHED_OTHER (see [`crate::realtime`]).
    pub fn start() -> Result<Self, ReservationsError> {
        let shared = Arc::new(Shared::default());
        let (tx, done) = mpsc::channel(DONE_CAPACITY);
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("carpd-reserve".into())
            .spawn(move || run(&thread_shared, &tx))
            .map_err(|io| ReservationsError::Spawn { io })?;
        Ok(Self { shared, done })
    }

    /// A handle for the instance whose reservations `file` keeps.
    pub fn reserver(&self, file: CounterFile) -> Reserver {
        Reserver {
            file,
            shared: Arc::clone(&self.shared),
        }
    }

    /// The next result of the thread.
    pub async fn done(&mut self) -> Option<Done> {
        self.done.recv().await
    }

    /// Files with a reservation asked for and not carried out yet.
    pub fn unwritten(&self) -> usize {
        self.shared.lock().unwritten.len()
    }

    /// The next result, waiting at most until `deadline`.
    pub async fn done_by(&mut self, deadline: tokio::time::Instant) -> Option<Done> {
        tokio::time::timeout_at(deadline, self.done.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Reservations {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// An instance's handle on its reservation file; never blocks on the disk.
#[derive(Clone)]
pub struct Reserver {
    file: CounterFile,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reserver").field(&self.file).finish()
    }
}

impl Reserver {
    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Asks for the file to be read; the result comes back as
    /// [`Outcome::Loaded`].
    pub fn load(&self) {
        let mut q = self.shared.lock();
        self.job(&mut q).load = true;
        drop(q);
        self.shared.wake.notify_one();
    }

    /// Asks for `value` to be written, replacing a lower one not written
    /// yet. Returns how long the oldest reservation not yet reported
    /// written has waited, the first time that is more than
    /// [`STALL_WARNING`] (for a warning).
    pub fn store(&self, value: u64) -> Option<Duration> {
        let now = Instant::now();
        let mut q = self.shared.lock();
        let job = self.job(&mut q);
        job.store = Some(job.store.map_or(value, |v| v.max(value)));
        let (since, warned) = q
            .unwritten
            .entry(self.file.path().to_path_buf())
            .or_insert((now, false));
        let waited = now.duration_since(*since);
        let stalled = (waited > STALL_WARNING && !*warned).then_some(waited);
        if stalled.is_some() {
            *warned = true;
        }
        drop(q);
        self.shared.wake.notify_one();
        stalled
    }

    /// The file's pending job, created if there is none.
    fn job<'q>(&self, q: &'q mut Queue) -> &'q mut Job {
        let job = q.jobs.entry(self.file.path().to_path_buf()).or_default();
        job.file = Some(self.file.clone());
        job
    }
}

/// The thread: takes every pending job, carries it out, reports; ends when
/// the loop is gone.
fn run(shared: &Shared, tx: &mpsc::Sender<Done>) {
    loop {
        let jobs = {
            let mut q = shared.lock();
            while q.jobs.is_empty() && !q.closed {
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            if q.jobs.is_empty() {
                return;
            }
            std::mem::take(&mut q.jobs)
        };
        for (path, job) in jobs {
            let Some(file) = job.file else { continue };
            if job.load {
                let outcome = Outcome::Loaded(file.load());
                if tx
                    .blocking_send(Done {
                        path: path.clone(),
                        outcome,
                    })
                    .is_err()
                {
                    return;
                }
            }
            if let Some(value) = job.store {
                let result = file.store(value);
                {
                    // Done (written or failed, which is reported): a later
                    // request still queued starts its own wait.
                    let mut q = shared.lock();
                    if q.jobs.get(&path).is_some_and(|j| j.store.is_some()) {
                        q.unwritten.insert(path.clone(), (Instant::now(), false));
                    } else {
                        q.unwritten.remove(&path);
                    }
                }
                let outcome = Outcome::Stored { value, result };
                if tx.blocking_send(Done { path, outcome }).is_err() {
                    return;
                }
            }
        }
    }
}

impl super::Daemon {
    /// At start: hands the instances the reservations read from their
    /// files, waiting at most [`super::COUNTER_LOAD_WAIT`] in all (a file
    /// read later is handled by the loop).
    pub(super) async fn await_counter_floors(&mut self) {
        let deadline = tokio::time::Instant::now() + super::COUNTER_LOAD_WAIT;
        let mut waiting = self.instances.len();
        while waiting > 0 {
            let Some(done) = self.reservations.done_by(deadline).await else {
                tracing::warn!("{waiting} counter files not read yet; going on without waiting");
                return;
            };
            if matches!(done.outcome, Outcome::Loaded(_)) {
                waiting -= 1;
            }
            self.on_reservation(done);
        }
    }

    /// The writer thread read or wrote a counter file: every instance
    /// using it hears of it. Failures are logged: counters then follow the
    /// wall clock alone, as they did before reservations existed.
    pub(super) fn on_reservation(&mut self, done: Done) {
        let users = self.instances.iter_mut().filter(|r| {
            r.counter_file
                .as_ref()
                .is_some_and(|f| f.path() == done.path)
        });
        match done.outcome {
            Outcome::Loaded(Ok(Some(floor))) => users.for_each(|r| r.counter_floor_read(floor)),
            Outcome::Loaded(Ok(None)) => {}
            Outcome::Stored {
                value,
                result: Ok(()),
            } => {
                users.for_each(|r| r.core.counter_persisted(value));
            }
            Outcome::Loaded(Err(e)) => {
                tracing::warn!("{}; counters follow the wall clock only", Chain(&e));
            }
            Outcome::Stored { result: Err(e), .. } => tracing::warn!("{}", Chain(&e)),
        }
    }

    /// At exit, after the leave: waits at most [`super::COUNTER_FLUSH_WAIT`]
    /// for reservations still being written.
    pub(super) async fn flush_reservations(&mut self) {
        let deadline = tokio::time::Instant::now() + super::COUNTER_FLUSH_WAIT;
        while self.reservations.unwritten() > 0 {
            match self.reservations.done_by(deadline).await {
                Some(done) => self.on_reservation(done),
                None => {
                    tracing::warn!(
                        "exiting with {} counter reservations not written",
                        self.reservations.unwritten()
                    );
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::counter::tagged;

    /// A counter file only holds counters of ours (`CounterFile::load`).
    fn ours(n: u64) -> u64 {
        tagged(1_763_000_000_000 + n)
    }

    async fn next(r: &mut Reservations) -> Done {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        r.done_by(deadline).await.expect("a result in time")
    }

    #[tokio::test]
    async fn loads_and_stores_off_the_calling_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Reservations::start().unwrap();
        let a = r.reserver(CounterFile::new(dir.path(), "eth0", 7));
        a.load();
        let d = next(&mut r).await;
        assert_eq!(d.path, a.path());
        assert!(matches!(d.outcome, Outcome::Loaded(Ok(None))));
        assert_eq!(a.store(ours(42)), None);
        let d = next(&mut r).await;
        assert!(matches!(
            d.outcome,
            Outcome::Stored {
                value,
                result: Ok(())
            } if value == ours(42)
        ));
        assert_eq!(
            CounterFile::new(dir.path(), "eth0", 7).load().unwrap(),
            Some(ours(42))
        );
        a.load();
        assert!(matches!(
            next(&mut r).await.outcome,
            Outcome::Loaded(Ok(Some(v))) if v == ours(42)
        ));
    }

    #[tokio::test]
    async fn a_blocked_file_never_blocks_the_caller_and_requests_coalesce() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Reservations::start().unwrap();
        let file = CounterFile::new(dir.path(), "eth0", 9);
        // A FIFO where the file is: reading it blocks until a writer comes,
        // as a hung disk would.
        let fifo = std::ffi::CString::new(file.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `fifo` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let a = r.reserver(file.clone());
        let started = Instant::now();
        a.load();
        for v in 1..=1000 {
            assert_eq!(a.store(ours(v)), None);
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the caller waited"
        );
        // Nothing comes back while the thread is blocked.
        let soon = tokio::time::Instant::now() + Duration::from_millis(300);
        assert!(r.done_by(soon).await.is_none());
        // Unblock it.
        let path = file.path().to_path_buf();
        std::thread::spawn(move || std::fs::write(path, format!("{}\n", ours(5))).unwrap());
        let d = next(&mut r).await;
        assert!(
            matches!(d.outcome, Outcome::Loaded(Ok(Some(v))) if v == ours(5)),
            "{d:?}"
        );
        // The requests queued meanwhile became at most two writes (one the
        // thread may have taken with the load), the last one 1000.
        let mut writes = 0;
        loop {
            let d = next(&mut r).await;
            let Outcome::Stored { value, result } = d.outcome else {
                panic!("{d:?}");
            };
            result.unwrap();
            writes += 1;
            if value == ours(1000) {
                break;
            }
        }
        assert!(writes <= 2, "{writes} writes");
        assert_eq!(file.load().unwrap(), Some(ours(1000)));
    }
}
