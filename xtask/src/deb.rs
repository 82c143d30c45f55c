//! `cargo xtask deb [--binary FILE] [--out DIR]`: a Debian package built with
//! `dpkg-deb` from a tree staged by [`crate::install`] (prefix `/usr`).
//!
//! dpkg-deb is part of every Debian system, so the package builds without
//! cargo-deb or debhelper. The package holds `/usr/sbin/carpd-xdp`
//! (stripped), the unit in `/usr/lib/systemd/system` (after
//! network-online.target and time-sync.target), the documented default
//! configuration `/etc/carpd-xdp/carpd-xdp.toml` as a conffile (dpkg keeps
//! the operator's edits on upgrade), the man pages (gzip) and the bash, zsh
//! and fish completions. The maintainer scripts only reload systemd and stop
//! the service on removal: the service is not enabled, since the default
//! configuration describes example addresses to be edited first.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::install::{self, Options, CONFIG_FILE};

/// The package name.
pub const PACKAGE: &str = "carpd-xdp";

const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
";

const PRERM: &str = "#!/bin/sh
set -e
if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop carpd-xdp.service >/dev/null 2>&1 || true
fi
";

const POSTRM: &str = "#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
if [ \"$1\" = purge ]; then
    # Advert counter reservations (global.state_dir).
    rm -rf /var/lib/carpd-xdp
    # Left in place if it still holds the operator's password files.
    rmdir /etc/carpd-xdp 2>/dev/null || true
fi
";

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Size of the files under `dir` in KiB, for `Installed-Size`.
fn size_kib(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            size_kib(&entry.path())? * 1024
        } else {
            meta.len()
        };
    }
    Ok(total.div_ceil(1024))
}

/// Builds the package into `out_dir`; returns its path.
pub fn build(workspace: &Path, binary: &Path, out_dir: &Path) -> Result<PathBuf> {
    let version = env!("CARGO_PKG_VERSION");
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let name = format!("{PACKAGE}_{version}_{arch}");
    let stage = out_dir.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("remove {}", stage.display()))?;
    }
    let opts = Options {
        prefix: PathBuf::from("/usr"),
        destdir: stage.clone(),
        binary: binary.to_owned(),
        gzip_man: true,
    };
    install::install(workspace, &opts)?;
    // Debian installs binaries without debug information.
    crate::setup::run_cmd(
        Command::new("strip")
            .args(["--strip-debug", "--remove-section=.comment"])
            .arg(stage.join("usr/sbin/carpd-xdp")),
    )?;

    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: carpd-xdp developers <carpd-xdp@example.invalid>\n\
         Installed-Size: {size}\n\
         Depends: libc6\n\
         Suggests: ucarp\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://example.invalid/carpd-xdp\n\
         Description: CARP daemon with an XDP receive path, a drop-in for UCARP\n \
         carpd-xdp fails a virtual IP address over between hosts with CARP v2,\n \
         as UCARP and the BSD carp(4) kernels do, and interoperates with them.\n \
         Adverts are validated in the kernel by an XDP program, so floods of\n \
         forged or replayed adverts never reach the daemon. Every UCARP option\n \
         works unchanged; a TOML configuration serves many VIPs in one process.\n",
        size = size_kib(&stage)?,
    );
    std::fs::write(debian.join("control"), control)?;
    std::fs::write(debian.join("conffiles"), format!("{CONFIG_FILE}\n"))?;
    for (script, text) in [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)] {
        let path = debian.join(script);
        std::fs::write(&path, text)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let md5sums = output(Command::new("sh").current_dir(&stage).args([
        "-c",
        "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum",
    ]))?;
    std::fs::write(debian.join("md5sums"), md5sums + "\n")?;

    let deb = out_dir.join(format!("{name}.deb"));
    crate::setup::run_cmd(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb)
            .stdout(std::process::Stdio::null()),
    )?;
    Ok(deb)
}
