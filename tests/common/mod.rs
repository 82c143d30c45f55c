//! Shared helpers of the namespace integration tests, on top of
//! [`carp_testnet`] (throw-away namespaces, veth pairs, code and commands
//! run inside a namespace, child processes, the root / CI gate) with its
//! set-up steps panicking instead of returning errors. Everything a test
//! creates is removed on drop, so every exit path (assert failure and panic
//! included) cleans up.
#![allow(dead_code)]

use std::ops::Deref;
use std::process::{Command, Output};

#[allow(unused_imports, reason = "each test binary uses some of these")]
pub use carp_testnet::{require_root, ChildGuard, Lines};

/// The value, or a panic with the error: what a test wants of a set-up
/// step of [`carp_testnet`].
pub fn must<T>(r: carp_testnet::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A [`carp_testnet::Netns`] whose set-up steps panic on failure (named
/// `<prefix>-<pid>-<n>`, deleted on drop).
pub struct Netns(carp_testnet::Netns);

impl Deref for Netns {
    type Target = carp_testnet::Netns;

    fn deref(&self) -> &carp_testnet::Netns {
        &self.0
    }
}

impl Netns {
    /// Creates a fresh namespace with loopback up.
    pub fn new(prefix: &str) -> Netns {
        Netns(must(carp_testnet::Netns::new(prefix)))
    }

    /// Runs `ip -n <ns> ARGS`, panicking with ip's message on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        must(self.0.ip(args))
    }

    /// Runs `f` on a thread that has entered the namespace (sockets it opens
    /// stay in the namespace).
    pub fn run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        must(self.0.run(f))
    }

    /// Index of interface `ifname` in the namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        must(self.0.ifindex(ifname))
    }

    /// MAC address of interface `ifname` in the namespace.
    pub fn mac(&self, ifname: &str) -> [u8; 6] {
        must(self.0.mac(ifname))
    }
}

/// Creates a veth pair, `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    must(carp_testnet::veth(a, a_if, b, b_if))
}

/// Two fresh namespaces joined by a veth pair: `a_if` in the first
/// (`<a>-<pid>-<n>`), `b_if` in the second, both up.
pub fn veth_pair(a: &str, a_if: &str, b: &str, b_if: &str) -> (Netns, Netns) {
    let (a, b) = (Netns::new(a), Netns::new(b));
    veth(&a, a_if, &b, b_if);
    (a, b)
}

/// Runs `f` to completion on a fresh current-thread tokio runtime (call it
/// from [`Netns::run`] for netlink and sockets inside a namespace).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Runs a command to completion and panics with its output if it failed.
pub fn run_ok(cmd: &mut Command) -> Output {
    must(carp_testnet::output(cmd))
}

/// Sends raw Ethernet frames out of `ifname` from inside `ns` (AF_PACKET).
pub fn send_frames(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) {
    use carp_testnet::socket::{packet_socket, send_frame};
    let ifindex = ns.ifindex(ifname);
    ns.run(|| {
        let fd = must(packet_socket(0, ifindex, 0));
        for f in frames {
            send_frame(&fd, ifindex, f).unwrap_or_else(|e| panic!("sendto: {e}"));
        }
    });
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
pub mod xdp;
