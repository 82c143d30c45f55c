//! The root / CI gate: namespace tests need root; without it they are
//! skipped with a reason, except under `CI=true`, which runs as root and
//! must never skip.

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// True when the test may use namespaces. Without root it prints why it is
/// skipped and returns false, except under `CI=true`, where it panics: CI
/// runs as root and must never skip.
pub fn require_root(test: &str) -> bool {
    if is_root() {
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
