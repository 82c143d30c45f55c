//! `cargo xtask setup`: installs, idempotently, what a fresh machine lacks for
//! building the XDP object (rust-src for the nightly, bpf-linker built against
//! the nightly's own LLVM) and, as root, the Debian packages the tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ebpf::{self, BPF_LINKER_VERSION, NIGHTLY};

/// Debian packages the test suite and the demo run (command, package).
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("tcpdump", "tcpdump"),
    ("tshark", "tshark"),
    ("ucarp", "ucarp"),
    ("faketime", "faketime"),
    ("keepalived", "keepalived"),
    // The French wiki's init script (tests/field_wiki.rs) and the Italian
    // slides' scripts configure aliases with ifconfig; start-stop-daemon
    // (dpkg), unshare and nsenter (util-linux) are on every Debian system.
    ("ifconfig", "net-tools"),
    // promtool and a real server for tests/metrics_prometheus.rs.
    ("promtool", "prometheus"),
    // `cargo xtask deb`: the versioned Depends and the control file.
    ("dpkg-shlibdeps", "dpkg-dev"),
    // xtask/tests: the package checked by lintian, its man pages rendered,
    // its completions driven in each shell.
    ("lintian", "lintian"),
    ("man", "man-db"),
    ("zsh", "zsh"),
    ("fish", "fish"),
];

/// The LLVM shared library the nightly ships, which bpf-linker links against.
const NIGHTLY_LLVM: &str = "libLLVM.so.22.1-rust-1.97.0-nightly";

pub fn run(with_test_packages: bool) -> Result<()> {
    let sysroot = nightly_sysroot()?;
    rust_src(&sysroot)?;
    bpf_linker(&sysroot)?;
    if with_test_packages {
        test_packages()?;
    }
    match ebpf::missing_toolchain() {
        None => println!("setup: the eBPF toolchain is complete"),
        Some(what) => bail!("setup finished but {what}"),
    }
    Ok(())
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = Command::new("rustc")
        .arg(format!("+{NIGHTLY}"))
        .args(["--print", "sysroot"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
        _ => bail!("the {NIGHTLY} toolchain is not installed (it is preinstalled on the project's machines)"),
    }
}

fn rust_src(sysroot: &Path) -> Result<()> {
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        println!("setup: rust-src for {NIGHTLY}: present");
        return Ok(());
    }
    println!("setup: installing rust-src for {NIGHTLY}");
    run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

fn installed_bpf_linker_version() -> Option<String> {
    let path = ebpf::bpf_linker()?;
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).map(str::to_string)
}

fn bpf_linker(sysroot: &Path) -> Result<()> {
    let lib = sysroot.join("lib");
    let link = lib.join("libLLVM.so");
    if !link.exists() {
        if !lib.join(NIGHTLY_LLVM).exists() {
            bail!(
                "{} is missing: the nightly does not ship the LLVM bpf-linker needs",
                lib.join(NIGHTLY_LLVM).display()
            );
        }
        println!("setup: linking {} -> {NIGHTLY_LLVM}", link.display());
        std::os::unix::fs::symlink(NIGHTLY_LLVM, &link)
            .with_context(|| format!("symlink {}", link.display()))?;
    }
    if installed_bpf_linker_version().as_deref() == Some(BPF_LINKER_VERSION) {
        println!("setup: bpf-linker {BPF_LINKER_VERSION}: present");
        return Ok(());
    }
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} against the {NIGHTLY} LLVM (about a minute)");
    run_cmd(
        Command::new("cargo")
            .env("LLVM_PREFIX", sysroot)
            .env_remove("RUSTUP_TOOLCHAIN")
            .args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
            .args(["--no-default-features", "--features", "llvm-22"]),
    )
}

/// The cargo-fuzz release known to build with the stable toolchain here.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Installs cargo-fuzz if missing (for the fuzz step of `cargo xtask test`).
pub fn cargo_fuzz() -> Result<()> {
    if have("cargo-fuzz") {
        println!("setup: cargo-fuzz: present");
        return Ok(());
    }
    println!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    run_cmd(Command::new("cargo").env_remove("RUSTUP_TOOLCHAIN").args([
        "install",
        "--locked",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
    ]))
}

/// Whether `command` is on the PATH.
pub fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn test_packages() -> Result<()> {
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        println!("setup: test packages: present");
        return Ok(());
    }
    if !crate::is_root() {
        println!(
            "setup: not root, so not installing {}; the namespace tests will skip",
            missing.join(" ")
        );
        return Ok(());
    }
    println!("setup: installing {}", missing.join(" "));
    run_cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
