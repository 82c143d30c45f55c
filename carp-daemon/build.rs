//! Builds the XDP object with the nightly toolchain and bpf-linker and puts it
//! in OUT_DIR, where the daemon embeds it. Stops with one line naming
//! `cargo xtask setup` when the eBPF toolchain is missing.

#[path = "../xtask/src/ebpf.rs"]
#[expect(dead_code, reason = "shared with xtask, which uses more of it")]
mod ebpf;

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .expect("carp-daemon lives in the workspace")
        .to_path_buf();
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("carp-ebpf.o");

    for dir in [
        "carp-ebpf/src",
        "carp-ebpf/Cargo.toml",
        "carp-common/src",
        "carp-common/Cargo.toml",
        "xtask/src/ebpf.rs",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=CARPD_EBPF_OBJECT");

    // A prebuilt object (packaging, or a machine without the eBPF toolchain).
    if let Some(prebuilt) = env::var_os("CARPD_EBPF_OBJECT") {
        copy(&PathBuf::from(prebuilt), &out);
        return;
    }
    match ebpf::build_object(&workspace, &target_dir) {
        Ok(object) => copy(&object, &out),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    if let Err(e) = std::fs::copy(from, to) {
        eprintln!(
            "error: cannot copy the XDP object {} to {}: {e}",
            from.display(),
            to.display()
        );
        std::process::exit(1);
    }
}
