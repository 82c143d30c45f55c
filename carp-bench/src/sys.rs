//! Operating-system helpers of the bench: threads inside a namespace, raw
//! sockets (from `carp-testnet` and `carp-flood`), interface flags, `/proc`
//! readers, the monotonic clock (the daemon's), and the Ctrl-C flag that
//! every wait of the bench checks.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use carp_daemon::clock::monotonic_ns;
pub use carp_flood::socket::if_index;
pub use carp_testnet::socket::{bind, send_to, set_int, set_option, set_recv_timeout, socket};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic store: async-signal-safe. The bench notices the flag at
    // its next wait and unwinds, dropping the stage (namespaces, processes).
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT / SIGTERM handler that sets the interrupt flag.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_sigint as *const () as libc::sighandler_t) };
    }
}

/// True once Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails when Ctrl-C was pressed, so that `?` unwinds to the stage's drop.
pub fn check() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `d` in short steps, failing early on Ctrl-C.
pub fn pause(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Runs `f` on a new thread inside namespace `ns`.
pub fn spawn_in<T, F>(ns: &str, f: F) -> JoinHandle<Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let ns = ns.to_string();
    std::thread::spawn(move || {
        carp_testnet::enter(&ns)?;
        f()
    })
}

/// Runs `f` inside namespace `ns` and waits for it.
pub fn run_in<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match spawn_in(ns, f).join() {
        Ok(r) => r,
        Err(_) => bail!("thread in namespace {ns} panicked"),
    }
}

/// An `AF_PACKET` raw socket bound to interface `ifname` of the current
/// namespace, receiving every EtherType, and the interface's index.
pub fn packet_socket(ifname: &str) -> Result<(OwnedFd, i32)> {
    let ifindex = if_index(ifname)?;
    let fd = carp_testnet::socket::packet_socket(libc::ETH_P_ALL as u16, ifindex as u32, 0)
        .with_context(|| format!("bind to {ifname}"))?;
    Ok((fd, ifindex))
}

/// Sets interface `ifname` of the current namespace up or down (an ioctl:
/// no process to spawn, so the moment of the fault is known to the µs).
pub fn set_link(ifname: &str, up: bool) -> Result<()> {
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    // SAFETY: all-zero ifreq is valid; the name is copied in below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: valid fd and ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(io::Error::last_os_error()).context("SIOCGIFFLAGS");
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up_flag = libc::IFF_UP as libc::c_short;
    req.ifr_ifru.ifru_flags = if up {
        flags | up_flag
    } else {
        flags & !up_flag
    };
    // SAFETY: valid fd and ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(io::Error::last_os_error()).context("SIOCSIFFLAGS");
    }
    Ok(())
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Clock ticks per second of `/proc` CPU times.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may hold spaces: count fields after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are at 11 and 12 after "pid (comm)".
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

/// Peak resident set size (VmHWM) of `pid`, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Softirq time summed over all CPUs, in clock ticks (`/proc/stat`).
pub fn softirq_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu = s.lines().next()?.to_string();
            cpu.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}
