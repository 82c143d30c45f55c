//! Shared helpers of the namespace integration tests: throw-away network
//! namespaces, veth pairs, code and commands run inside a namespace, and the
//! root / CI gate. Everything a test creates is removed on drop, so every exit
//! path (assert failure and panic included) cleans up.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// True when the test may use namespaces. Without root it prints why it is
/// skipped and returns false, except under `CI=true`, where it panics: CI
/// runs as root and must never skip.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root (network namespaces, XDP) and CI=true forbids skipping");
    }
    eprintln!(
        "skipped {test}: needs root for network namespaces and XDP (run as root or via .ci/run)"
    );
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace named `<prefix>-<pid>-<n>`, deleted on drop (with the
/// interfaces in it).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace with loopback up.
    pub fn new(prefix: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> ARGS`, panicking with ip's message on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command that runs PROGRAM inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered the namespace (sockets it opens
    /// stay in the namespace).
    pub fn run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: setns on this thread only, with a valid namespace fd.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("thread inside the namespace panicked")
        })
    }

    /// Index of interface `ifname` in the namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", ifname]);
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex in {out:?}"))
    }

    /// MAC address of interface `ifname` in the namespace.
    pub fn mac(&self, ifname: &str) -> [u8; 6] {
        let out = self.ip(&["-o", "link", "show", "dev", ifname]);
        let field = out
            .split("link/ether ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("link/ether");
        let mut mac = [0u8; 6];
        for (i, part) in field.split(':').enumerate() {
            mac[i] = u8::from_str_radix(part, 16).expect("hex");
        }
        mac
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Creates a veth pair, `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    run_ok(Command::new("ip").args([
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]));
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Runs a command to completion and panics with its output if it failed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends raw Ethernet frames out of `ifname` from inside `ns` (AF_PACKET).
pub fn send_frames(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) {
    let ifindex = ns.ifindex(ifname);
    ns.run(|| {
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "socket(AF_PACKET): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: all-zero sockaddr_ll is valid; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        for f in frames {
            addr.sll_addr[..6].copy_from_slice(&f[..6]);
            // SAFETY: f and addr are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(
                n,
                f.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: fd is ours and open.
        unsafe { libc::close(fd) };
    });
}

/// Lines of a child's standard output, read on a thread so that tests can
/// wait for them with a deadline.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    /// Starts reading `stdout` line by line.
    pub fn new(stdout: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
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
    pub fn next_within(&self, timeout: std::time::Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }
}

/// Hex string to bytes (test vectors).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub mod cluster;
pub mod frames;
pub mod probe;
pub mod settle;
