//! The daemon's one clock reading: CLOCK_MONOTONIC in nanoseconds, the clock
//! of `bpf_ktime_get_ns` (the kernel's advert timestamps and rate limiter),
//! of the fallback receive path and of the protocol core's `Nanos`.

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
