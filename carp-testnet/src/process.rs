//! Child processes: run to completion ([`output`]), killed and reaped on
//! drop ([`ChildGuard`]), with their output captured to files
//! ([`Captured`]) or read line by line with a deadline ([`Lines`]).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Runs `cmd` to completion (standard input closed) and fails with its
/// output unless it succeeded.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|io| Error::Spawn {
            command: format!("{cmd:?}"),
            io,
        })?;
    if !out.status.success() {
        return Err(Error::Failed {
            command: format!("{cmd:?}"),
            status: out.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr).trim_end()
            ),
        });
    }
    Ok(out)
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process, not yet
    /// reaped.
    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        if unsafe { libc::kill(self.pid() as i32, signal) } != 0 {
            return Err(Error::last_os(format!("kill {} {signal}", self.pid())));
        }
        Ok(())
    }

    /// Waits (bounded by `within`) for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            match self.0.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                // Already reaped elsewhere: nothing to wait for.
                Err(_) => return None,
            }
        }
        None
    }

    /// SIGKILL and reap; the exit status, if it could be reaped.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let _ = self.0.kill();
        self.0.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process with its standard output and error in files; killed on drop,
/// and the tail of its output printed if the thread is panicking (a failing
/// test).
pub struct Captured {
    /// What it is, for messages.
    pub name: String,
    /// Killed and reaped on drop.
    pub child: ChildGuard,
    /// Captured standard output.
    pub stdout: PathBuf,
    /// Captured standard error.
    pub stderr: PathBuf,
    /// Exit status once reaped by [`Captured::wait_exit`] or
    /// [`Captured::kill9`].
    pub status: Option<ExitStatus>,
}

impl Captured {
    /// Spawns `cmd` (standard input closed) with its output going to
    /// `<dir>/<name>.stdout` and `<dir>/<name>.stderr`.
    pub fn spawn(mut cmd: Command, dir: &std::path::Path, name: &str) -> Result<Captured> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let file = |path: &PathBuf| {
            std::fs::File::create(path).map_err(|io| Error::Os {
                op: format!("create {}", path.display()),
                io,
            })
        };
        cmd.stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?);
        let child = cmd.spawn().map_err(|io| Error::Spawn {
            command: format!("{cmd:?}"),
            io,
        })?;
        Ok(Captured {
            name: name.to_string(),
            child: ChildGuard(child),
            stdout,
            stderr,
            status: None,
        })
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`), panicking if it cannot.
    pub fn signal(&self, signal: i32) {
        if let Err(e) = self.child.signal(signal) {
            panic!("{}: {e}", self.name);
        }
    }

    /// Waits (bounded by `within`) for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let st = self.child.wait_exit(within)?;
        self.status = Some(st);
        Some(st)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        self.status = self.child.kill();
    }

    /// Captured standard error so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Captured standard output so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        self.child.kill();
        if std::thread::panicking() {
            let tail = |text: String| {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(150)..].join("\n")
            };
            eprintln!(
                "---- {} stdout ----\n{}\n---- {} stderr (tail) ----\n{}",
                self.name,
                tail(self.stdout_text()),
                self.name,
                tail(self.stderr_text())
            );
        }
    }
}

/// Lines of a child's standard output, read on a thread so that callers can
/// wait for them with a deadline.
pub struct Lines(Receiver<String>);

impl Lines {
    /// Starts reading `stdout` line by line.
    pub fn new(stdout: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, or `None` if none comes within `timeout`.
    pub fn next_within(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }
}
