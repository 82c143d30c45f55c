//! Developer tasks of carpd-xdp: `cargo xtask <task>`.

mod deb;
mod demo;
mod ebpf;
mod install;
mod setup;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "carpd-xdp developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what a fresh machine lacks: rust-src, bpf-linker, test packages.
    Setup {
        /// Only the eBPF toolchain, not the Debian packages of the tests.
        #[arg(long)]
        toolchain_only: bool,
    },
    /// Build the XDP object and print its path.
    BuildEbpf,
    /// Set up, then run formatting and lint checks and the whole test suite.
    Test {
        /// Also run each fuzz target for this many seconds (default under
        /// CI=true: 60; otherwise 0, no fuzzing).
        #[arg(long)]
        fuzz_secs: Option<u64>,
    },
    /// Set up, build and run the demo in throw-away namespaces (needs root):
    /// a failover at UCARP's default timers, then at the fastest ones.
    Demo {
        /// Run this carpd-xdp binary instead of building one.
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Build, then benchmark carpd-xdp against UCARP in throw-away namespaces
    /// (needs root); writes target/bench/{report.md,report.json,failover.svg}.
    ///
    /// The bench is the carp-bench binary, built in release and run with
    /// these options.
    Bench {
        /// A short run: fewer trials, shorter floods.
        #[arg(long)]
        quick: bool,
        /// Run only this section (writes target/bench/report-<section>.{md,json}).
        // The sections are carp-bench's `--only` values.
        #[arg(long, value_name = "SECTION", value_parser = ["flood", "program", "gateway", "attack", "busy"])]
        only: Option<String>,
    },
    /// Build (release) and install the daemon, its unit, the default config
    /// (kept if present), man pages and shell completions.
    Install {
        /// Installation prefix: <prefix>/sbin, <prefix>/share/man, ...
        #[arg(long, default_value = "/usr")]
        prefix: PathBuf,
        /// Staging root prepended to every path.
        #[arg(long, default_value = "/")]
        destdir: PathBuf,
        /// Install this carpd-xdp binary instead of building one.
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Build (release) a Debian package with dpkg-deb: target/deb/*.deb.
    Deb {
        /// Package this carpd-xdp binary instead of building one.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where the package is written.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The given binary, or a release build of carpd-xdp.
fn release_binary(binary: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(binary) = binary {
        return Ok(binary);
    }
    setup::run_cmd(cargo().args(["build", "--release", "--package", "carp-daemon"]))?;
    Ok(workspace().join("target/release/carpd-xdp"))
}

/// The repository root (xtask lives one level below it).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

pub use carp_testnet::is_root;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace());
    c
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup { toolchain_only } => setup::run(!toolchain_only),
        Task::BuildEbpf => {
            let ws = workspace();
            let object = ebpf::build_object(&ws, &ws.join("target")).map_err(|e| anyhow!(e))?;
            println!("{}", object.display());
            Ok(())
        }
        Task::Test { fuzz_secs } => {
            let default = if std::env::var("CI").as_deref() == Ok("true") {
                60
            } else {
                0
            };
            test(fuzz_secs.unwrap_or(default))
        }
        Task::Demo { binary } => {
            setup::run(true)?;
            demo::run(&release_binary(binary)?)
        }
        Task::Install {
            prefix,
            destdir,
            binary,
        } => {
            let opts = install::Options {
                prefix,
                destdir,
                binary: release_binary(binary)?,
                gzip_man: false,
            };
            for path in install::install(&workspace(), &opts)? {
                println!("install: {}", path.display());
            }
            Ok(())
        }
        Task::Deb { binary, out } => {
            let binary = release_binary(binary)?;
            let out = out.unwrap_or_else(|| workspace().join("target/deb"));
            std::fs::create_dir_all(&out)?;
            let deb = deb::build(&workspace(), &binary, &out)?;
            println!("{}", deb.display());
            Ok(())
        }
        Task::Bench { quick, only } => bench(quick, only),
    }
}

/// Builds (release) the daemon, the attack generator and the bench, and
/// the XDP object, then replaces this process with the bench (so that
/// Ctrl-C reaches it alone and it cleans up), options passed through.
fn bench(quick: bool, only: Option<String>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    setup::run_cmd(cargo().args([
        "build",
        "--release",
        "--package",
        "carp-daemon",
        "--package",
        "carp-flood",
        "--package",
        "carp-bench",
    ]))?;
    let ws = workspace();
    let object = ebpf::build_object(&ws, &ws.join("target")).map_err(|e| anyhow!(e))?;
    let release = ws.join("target/release");
    let mut cmd = Command::new(release.join("carp-bench"));
    cmd.arg("--daemon")
        .arg(release.join("carpd-xdp"))
        .arg("--flood")
        .arg(release.join("carp-flood"))
        .arg("--object")
        .arg(&object);
    if quick {
        cmd.arg("--quick");
    }
    if let Some(section) = only {
        cmd.args(["--only", &section]);
    }
    Err(anyhow!(cmd.exec()).context("run target/release/carp-bench"))
}

/// The fuzz targets of `carp-daemon/fuzz` (cargo-fuzz, nightly).
const FUZZ_TARGETS: [&str; 4] = ["header_decode", "auth", "import_ucarp", "config_toml"];

fn test(fuzz_secs: u64) -> Result<()> {
    setup::run(true)?;
    if fuzz_secs > 0 {
        setup::cargo_fuzz()?;
    }
    setup::run_cmd(cargo().args(["fmt", "--all", "--", "--check"]))?;
    setup::run_cmd(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // The namespace tests flood with target/release/carp-flood.
    setup::run_cmd(cargo().args(["build", "--release", "--package", "carp-flood"]))?;
    setup::run_cmd(cargo().args(["test", "--no-fail-fast"]))?;
    for target in FUZZ_TARGETS.iter().filter(|_| fuzz_secs > 0) {
        println!("fuzz: {target} for {fuzz_secs} s");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(workspace().join("carp-daemon/fuzz"))
            .env_remove("RUSTUP_TOOLCHAIN")
            .args([&format!("+{}", ebpf::NIGHTLY), "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={fuzz_secs}"))
            .arg("-print_final_stats=1");
        setup::run_cmd(&mut cmd)?;
    }
    Ok(())
}
