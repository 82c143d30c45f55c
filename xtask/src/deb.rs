//! `cargo xtask deb [--binary FILE] [--out DIR]`: a Debian package built
//! from a tree staged by [`crate::install`] (prefix `/usr`), with the tools
//! of dpkg-dev and no debhelper or cargo-deb.
//!
//! The package holds `/usr/sbin/carpd-xdp` (stripped as dh_strip does), the
//! unit in `/usr/lib/systemd/system` (after network-online.target and
//! time-sync.target), the documented default configuration
//! `/etc/carpd-xdp/carpd-xdp.toml` as a conffile (dpkg keeps the operator's
//! edits on upgrade), the man pages (gzip), the bash, zsh and fish
//! completions, and under `/usr/share/doc/carpd-xdp` the README, `docs/`,
//! the examples, the DEP-5 `copyright` and the changelog.
//!
//! `dist/debian/` holds what a source package's `debian/` would: `control`,
//! `changelog`, `copyright`, the maintainer scripts (deb-systemd-helper and
//! deb-systemd-invoke, as debhelper's snippets; the service is not enabled,
//! since the default configuration describes example addresses to be edited
//! first) and `lintian-overrides` (each with its reason). They are put in a
//! scratch `debian/` next to the staged tree, where `dpkg-shlibdeps`
//! computes the versioned `Depends` from the binary and `dpkg-gencontrol`
//! writes `DEBIAN/control` (version from the changelog, Installed-Size).
//!
//! ```text
//! <out>/carpd-xdp_<version>_<arch>.build/debian/{control,changelog,substvars,files}
//! <out>/carpd-xdp_<version>_<arch>.build/debian/carpd-xdp/   the package's tree
//! <out>/carpd-xdp_<version>_<arch>.deb
//! ```

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::install::{self, Options, CONFIG_FILE, DOC_DIR};
use crate::setup::run_cmd;

/// The package name.
pub const PACKAGE: &str = "carpd-xdp";

/// The maintainer scripts in `dist/debian/`.
const SCRIPTS: [&str; 3] = ["postinst", "prerm", "postrm"];

fn output_bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = output_bytes(cmd)?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// The version of the newest entry of the Debian changelog `text`.
fn changelog_version(text: &str) -> Option<&str> {
    let first = text.lines().next()?;
    let rest = first
        .strip_prefix(PACKAGE)?
        .trim_start()
        .strip_prefix('(')?;
    rest.split_once(')').map(|(version, _)| version)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

fn write(path: &Path, text: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// The crates from crates.io linked into carpd-xdp, `name version: license`
/// each, sorted (from Cargo.lock, by `cargo tree`; proc-macros and build
/// dependencies run at build time only and are left out).
fn bundled_crates() -> Result<Vec<String>> {
    let tree = output(crate::cargo().args([
        "tree",
        "--locked",
        "--package",
        "carp-daemon",
        "--edges",
        "normal,no-proc-macro",
        "--prefix",
        "none",
        "--format",
        "{p}\t{l}",
    ]))?;
    let mut crates: Vec<String> = tree
        .lines()
        .map(|l| l.trim_end_matches(" (*)"))
        // Workspace crates are printed with their path: they are this
        // package's own source.
        .filter(|l| !l.contains(" (/"))
        .filter_map(|l| {
            let (package, license) = l.split_once('\t')?;
            let (name, version) = package.split_once(" v")?;
            Some(format!("{name} {version}: {license}"))
        })
        .collect();
    crates.sort();
    crates.dedup();
    if crates.is_empty() {
        bail!("cargo tree listed no crate carpd-xdp links");
    }
    Ok(crates)
}

/// `copyright` (DEP-5) with a Comment on the crates the binary holds added
/// to its header paragraph.
fn with_bundled_crates(copyright: &str, crates: &[String]) -> String {
    let (header, rest) = copyright.split_once("\n\n").unwrap_or((copyright, ""));
    let mut text = format!(
        "{header}\nComment: /usr/sbin/carpd-xdp also holds these Rust crates from\n \
         crates.io, linked statically, each under the license it declares:\n ."
    );
    for line in crates {
        text.push_str("\n ");
        text.push_str(line);
    }
    format!("{text}\n\n{rest}")
}

/// Builds the package into `out_dir`; returns its path.
pub fn build(workspace: &Path, binary: &Path, out_dir: &Path) -> Result<PathBuf> {
    for (tool, package) in [
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("dpkg-gencontrol", "dpkg-dev"),
        ("strip", "binutils"),
    ] {
        if !crate::setup::have(tool) {
            bail!("{tool} is missing: apt-get install {package} (cargo xtask setup does, as root)");
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    let dist = workspace.join("dist/debian");
    let changelog = read(&dist.join("changelog"))?;
    match changelog_version(&changelog) {
        Some(v) if v == version => {}
        found => bail!(
            "dist/debian/changelog: the newest entry is for {found:?}, the workspace is at \
             {version}: add an entry for {version}"
        ),
    }
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let name = format!("{PACKAGE}_{version}_{arch}");
    let work = out_dir.join(format!("{name}.build"));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    }
    let debian = work.join("debian");
    let stage = debian.join(PACKAGE);
    let opts = Options {
        prefix: PathBuf::from("/usr"),
        destdir: stage.clone(),
        binary: binary.to_owned(),
        gzip_man: true,
    };
    install::install(workspace, &opts)?;
    let sbin = stage.join("usr/sbin/carpd-xdp");
    // As dh_strip does for an executable: no symbols, no debug information.
    run_cmd(
        Command::new("strip")
            .args(["--remove-section=.comment", "--remove-section=.note"])
            .arg(&sbin),
    )?;

    // What Debian asks of every package's documentation directory.
    let doc = stage.join("usr").join(DOC_DIR);
    let copyright = with_bundled_crates(&read(&dist.join("copyright"))?, &bundled_crates()?);
    write(&doc.join("copyright"), copyright.as_bytes(), 0o644)?;
    // A native package's changelog is changelog.gz.
    let gz = output_bytes(
        Command::new("gzip")
            .args(["-9nc"])
            .arg(dist.join("changelog")),
    )?;
    write(&doc.join("changelog.gz"), &gz, 0o644)?;
    write(
        &stage.join("usr/share/lintian/overrides").join(PACKAGE),
        read(&dist.join("lintian-overrides"))?.as_bytes(),
        0o644,
    )?;

    let control_dir = stage.join("DEBIAN");
    write(
        &control_dir.join("conffiles"),
        format!("{CONFIG_FILE}\n").as_bytes(),
        0o644,
    )?;
    for script in SCRIPTS {
        write(
            &control_dir.join(script),
            read(&dist.join(script))?.as_bytes(),
            0o755,
        )?;
    }

    // The source package's view: control, changelog; then the versioned
    // Depends the binary needs (shlibs:Depends) and DEBIAN/control.
    for file in ["control", "changelog"] {
        write(
            &debian.join(file),
            read(&dist.join(file))?.as_bytes(),
            0o644,
        )?;
    }
    run_cmd(
        Command::new("dpkg-shlibdeps")
            .current_dir(&work)
            .arg("-Tdebian/substvars")
            .arg(format!("-edebian/{PACKAGE}/usr/sbin/carpd-xdp")),
    )?;
    run_cmd(
        Command::new("dpkg-gencontrol")
            .current_dir(&work)
            .arg(format!("-p{PACKAGE}"))
            .arg(format!("-Pdebian/{PACKAGE}"))
            .arg("-Tdebian/substvars")
            .arg("-fdebian/files"),
    )?;

    let md5sums = output(Command::new("sh").current_dir(&stage).args([
        "-c",
        "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum",
    ]))?;
    write(
        &control_dir.join("md5sums"),
        (md5sums + "\n").as_bytes(),
        0o644,
    )?;

    let deb = out_dir.join(format!("{name}.deb"));
    run_cmd(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb)
            .stdout(std::process::Stdio::null()),
    )?;
    std::fs::remove_dir_all(&work).with_context(|| format!("remove {}", work.display()))?;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changelog_version_is_the_newest_entry() {
        let text = "carpd-xdp (1.2.3) unstable; urgency=medium\n\n  * x\n\ncarpd-xdp (1.2.2) unstable; urgency=low\n";
        assert_eq!(changelog_version(text), Some("1.2.3"));
        assert_eq!(changelog_version("other (1.0) unstable\n"), None);
        assert_eq!(changelog_version(""), None);
    }

    #[test]
    fn the_bundled_crates_go_into_the_header_paragraph() {
        let copyright = "Format: x\nUpstream-Name: y\n\nFiles: *\nLicense: MIT\n";
        let crates = ["a 1.0.0: MIT".to_owned(), "b 2.0.0: Zlib".to_owned()];
        assert_eq!(
            with_bundled_crates(copyright, &crates),
            "Format: x\nUpstream-Name: y\nComment: /usr/sbin/carpd-xdp also holds these \
             Rust crates from\n crates.io, linked statically, each under the license it \
             declares:\n .\n a 1.0.0: MIT\n b 2.0.0: Zlib\n\nFiles: *\nLicense: MIT\n"
        );
    }

    #[test]
    fn the_changelog_is_at_the_workspace_version() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/debian/changelog");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(changelog_version(&text), Some(env!("CARGO_PKG_VERSION")));
    }
}
