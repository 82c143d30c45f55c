//! Detaching into the background (UCARP's `-B`): the classic double fork.
//!
//! Call [`daemonize`] **before** the tokio runtime (or any other thread)
//! starts: `fork` copies only the calling thread, so a runtime's worker
//! threads would be missing in the child. It is checked: with more than one
//! thread the call fails instead of forking.
//!
//! Steps: fork (the original process exits 0, so the shell or init script
//! gets its prompt back), `setsid` (new session, no controlling terminal),
//! fork again (the session leader exits, so the daemon can never reacquire
//! a terminal), `chdir /` (no directory kept busy), stdin/stdout/stderr to
//! `/dev/null`. Exit statuses of the intermediate processes are 0; an error
//! after the first fork is returned in the surviving process only (whose
//! stderr may still be the terminal until the last step).

use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd};

/// Errors of [`daemonize`].
#[derive(Debug, thiserror::Error)]
pub enum DaemonizeError {
    /// The process already runs several threads (e.g. the tokio runtime).
    #[error(
        "cannot daemonize a process running {threads} threads: daemonize before starting the runtime"
    )]
    Threaded {
        /// Threads found in /proc/self/task.
        threads: usize,
    },
    /// A system call failed.
    #[error("{op}")]
    Os {
        /// The step (`first fork`, `setsid`, `chdir /`, `open /dev/null`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Detaches the process; returns in the daemon (the grandchild) only.
pub fn daemonize() -> Result<(), DaemonizeError> {
    let threads = thread_count()?;
    if threads > 1 {
        return Err(DaemonizeError::Threaded { threads });
    }
    // Anything buffered would otherwise be written by parent and child.
    let _ = io::stdout().flush();
    fork_parent_exits("first fork")?;
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } == -1 {
        return Err(os("setsid"));
    }
    fork_parent_exits("second fork")?;
    std::env::set_current_dir("/").map_err(|source| DaemonizeError::Os {
        op: "chdir /",
        source,
    })?;
    null_stdio()
}

/// Threads of this process.
fn thread_count() -> Result<usize, DaemonizeError> {
    let tasks = std::fs::read_dir("/proc/self/task").map_err(|source| DaemonizeError::Os {
        op: "list /proc/self/task",
        source,
    })?;
    Ok(tasks.count())
}

/// Forks; the parent exits 0 at once, the child returns.
fn fork_parent_exits(op: &'static str) -> Result<(), DaemonizeError> {
    // SAFETY: the process has a single thread (checked by the caller), so
    // the child is a complete copy and may go on running Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(os(op)),
        0 => Ok(()),
        // SAFETY: _exit ends the process without running atexit handlers or
        // flushing stdio buffers the child now owns.
        _ => unsafe { libc::_exit(0) },
    }
}

/// Points fds 0, 1 and 2 at /dev/null.
fn null_stdio() -> Result<(), DaemonizeError> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| DaemonizeError::Os {
            op: "open /dev/null",
            source,
        })?;
    let fd = null.as_raw_fd();
    for target in 0..=2 {
        // SAFETY: both are open descriptors; dup2 replaces `target`
        // atomically and owns nothing on the Rust side.
        if fd != target && unsafe { libc::dup2(fd, target) } == -1 {
            return Err(os("redirect stdio to /dev/null"));
        }
    }
    if fd <= 2 {
        // /dev/null landed on a closed std descriptor: keep it open there.
        let _ = null.into_raw_fd();
    }
    Ok(())
}

/// The last OS error for a step.
fn os(op: &'static str) -> DaemonizeError {
    DaemonizeError::Os {
        op,
        source: io::Error::last_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_fork_a_threaded_process() {
        // A second thread for certain, whatever the test harness does.
        let (stop, wait) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        let err = daemonize().unwrap_err();
        drop(stop);
        helper.join().unwrap();
        assert!(
            err.to_string().contains("before starting the runtime"),
            "{err}"
        );
        match err {
            DaemonizeError::Threaded { threads } => assert!(threads >= 2, "{threads}"),
            other => panic!("expected Threaded, got {other}"),
        }
    }
}
