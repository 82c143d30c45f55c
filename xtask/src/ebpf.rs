//! Building the XDP object. Included verbatim by `carp-daemon/build.rs` (so a
//! plain `cargo build` builds the object) and by the xtask (`build-ebpf`,
//! `setup`), so that the command line and the toolchain checks exist once.
//! Uses only std.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Toolchain used for the eBPF crate (`-Z build-std=core` needs nightly).
pub const NIGHTLY: &str = "nightly";
/// Target triple of the XDP object.
pub const BPF_TARGET: &str = "bpfel-unknown-none";
/// The bpf-linker release that builds against the nightly's LLVM 22.
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// What is missing for building the eBPF object, as one line, if anything.
pub fn missing_toolchain() -> Option<String> {
    let nightly = Command::new("rustc")
        .arg(format!("+{NIGHTLY}"))
        .arg("--print")
        .arg("sysroot")
        .output();
    let sysroot = match nightly {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => return Some(format!("the {NIGHTLY} toolchain is not installed")),
    };
    if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Some(format!(
            "rust-src is not installed for the {NIGHTLY} toolchain"
        ));
    }
    if bpf_linker().is_none() {
        return Some("bpf-linker is not installed".to_string());
    }
    None
}

/// Path of bpf-linker on PATH or in cargo's bin directory.
pub fn bpf_linker() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = env::var_os("CARGO_HOME")
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into()))
    {
        dirs.push(Path::new(&home).join("bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// Builds `carp-ebpf` (release) into `<target_dir>/ebpf` and returns the
/// object's path. `workspace` is the repository root.
pub fn build_object(workspace: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    if let Some(what) = missing_toolchain() {
        return Err(format!(
            "cannot build the XDP object: {what}; run `cargo xtask setup`"
        ));
    }
    let ebpf_target_dir = target_dir.join("ebpf");
    let linker_dir = bpf_linker().and_then(|p| p.parent().map(Path::to_path_buf));
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace)
        .arg(format!("+{NIGHTLY}"))
        .args([
            "build",
            "--package",
            "carp-ebpf",
            "--release",
            "--target",
            BPF_TARGET,
        ])
        .args(["-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&ebpf_target_dir);
    // An outer cargo (this may run from a build script) leaves variables that
    // would make the inner one use the stable rustc, clippy or other flags.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTUP_TOOLCHAIN"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        ["-Cdebuginfo=2", "-Clink-arg=--btf"].join("\x1f"),
    );
    if let Some(dir) = linker_dir {
        let mut path: Vec<PathBuf> = vec![dir];
        path.extend(
            env::var_os("PATH")
                .map(|p| env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        if let Ok(joined) = env::join_paths(path) {
            cmd.env("PATH", joined);
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo +{NIGHTLY}: {e}"))?;
    if !status.success() {
        return Err(format!("building carp-ebpf failed ({status})"));
    }
    let object = ebpf_target_dir
        .join(BPF_TARGET)
        .join("release")
        .join("carp-ebpf");
    if !object.is_file() {
        return Err(format!(
            "carp-ebpf built but {} is missing",
            object.display()
        ));
    }
    Ok(object)
}
