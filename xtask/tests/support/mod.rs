//! What the package tests share: the binaries of this build, running a
//! command that must succeed, and scratch directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The carpd-xdp binary of this build (same target directory as xtask).
pub fn carpd() -> PathBuf {
    let path = Path::new(XTASK).with_file_name("carpd-xdp");
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test at the root builds it)",
        path.display()
    );
    path
}

/// Runs `cmd`, which must succeed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command the tests need, or a panic saying how to get it: a missing
/// tool is a broken setup, never a reason to skip.
pub fn require_tool(command: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {command} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{command} is missing: `cargo xtask setup` installs it (apt-get install {package})"
    );
}
