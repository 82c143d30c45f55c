//! `cargo xtask install [--prefix DIR] [--destdir DIR] [--binary FILE]`:
//! puts carpd-xdp where an operator (or a package) expects it.
//!
//! ```text
//! <prefix>/sbin/carpd-xdp                           the daemon (0755)
//! <prefix>/lib/systemd/system/carpd-xdp.service     the unit, ExecStart=<prefix>/sbin/carpd-xdp
//! /etc/carpd-xdp/carpd-xdp.toml                     dist/carpd-xdp.toml, never overwritten
//! <prefix>/share/man/man8/carpd-xdp*.8              from the clap definitions
//! <prefix>/share/man/man5/carpd-xdp.toml.5          from the parser's table of keys
//! <prefix>/share/bash-completion/completions/carpd-xdp
//! <prefix>/share/zsh/vendor-completions/_carpd-xdp
//! <prefix>/share/fish/vendor_completions.d/carpd-xdp.fish
//! <prefix>/share/doc/carpd-xdp/                     README.md, docs/*.md (cited by --help
//!                                                   and the man pages), the documented
//!                                                   config, examples/
//! ```
//!
//! Everything lands under `--destdir` when given (for staging a package).
//! The man pages and completions come from `carpd-xdp generate-assets`, run
//! from the binary being installed, so they describe exactly that binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where the daemon looks for its configuration (not under the prefix: the
/// path is compiled in).
pub const CONFIG_FILE: &str = "/etc/carpd-xdp/carpd-xdp.toml";

/// The documentation directory under the prefix.
pub const DOC_DIR: &str = "share/doc/carpd-xdp";

/// The files in `dir` whose extension is `ext` (relative to the workspace), sorted.
fn files_in(workspace: &Path, dir: &str, ext: &str) -> Result<Vec<PathBuf>> {
    let path = workspace.join(dir);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&path).with_context(|| format!("read {}", path.display()))? {
        let name = entry?.file_name();
        if Path::new(&name).extension().is_some_and(|e| e == ext) {
            found.push(Path::new(dir).join(name));
        }
    }
    found.sort();
    Ok(found)
}

/// The documentation: (file in the workspace, path under the doc directory).
/// `docs/` keeps its name, so that the README's links and the `docs/...`
/// that `--help` cites lead to the files.
pub fn doc_files(workspace: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut files = vec![
        (PathBuf::from("README.md"), PathBuf::from("README.md")),
        (
            PathBuf::from("dist/carpd-xdp.toml"),
            PathBuf::from("carpd-xdp.toml"),
        ),
    ];
    for doc in files_in(workspace, "docs", "md")? {
        files.push((doc.clone(), doc));
    }
    for example in files_in(workspace, "dist/examples", "toml")? {
        let to = Path::new("examples").join(example.file_name().expect("a file"));
        files.push((example, to));
    }
    Ok(files)
}

/// What to install and where.
pub struct Options {
    /// Installation prefix, e.g. `/usr` or `/usr/local`.
    pub prefix: PathBuf,
    /// Staging root prepended to every path (`/` for a real install).
    pub destdir: PathBuf,
    /// The `carpd-xdp` binary to install.
    pub binary: PathBuf,
    /// Compress man pages with `gzip -9n` (Debian policy).
    pub gzip_man: bool,
}

impl Options {
    /// `path` (absolute) under the destdir.
    fn dest(&self, path: &Path) -> PathBuf {
        self.destdir.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn under_prefix(&self, rel: &str) -> PathBuf {
        self.prefix.join(rel)
    }

    /// The unit directory: `/usr/lib/systemd/system` for prefix `/usr`.
    pub fn unit_dir(&self) -> PathBuf {
        self.under_prefix("lib/systemd/system")
    }
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // Replace rather than write into an existing file: the binary may be running.
    let tmp = to.with_extension("xtask-new");
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copy {} to {}", from.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("rename to {}", to.display()))?;
    Ok(())
}

fn write(to: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(to, text).with_context(|| format!("write {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// The unit of `dist/`, pointing at `<prefix>/sbin/carpd-xdp` and the
/// documentation under `<prefix>`.
pub fn unit_text(workspace: &Path, prefix: &Path) -> Result<String> {
    let path = workspace.join("dist/carpd-xdp.service");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    if !text.contains("ExecStart=/usr/sbin/carpd-xdp ") {
        bail!("{}: no ExecStart=/usr/sbin/carpd-xdp line", path.display());
    }
    let sbin = prefix.join("sbin/carpd-xdp");
    let doc = prefix.join(DOC_DIR);
    Ok(text
        .replace(
            "ExecStart=/usr/sbin/carpd-xdp ",
            &format!("ExecStart={} ", sbin.display()),
        )
        .replace(
            "file:/usr/share/doc/carpd-xdp/",
            &format!("file:{}/", doc.display()),
        ))
}

/// Installs; returns the paths written (under the destdir).
pub fn install(workspace: &Path, opts: &Options) -> Result<Vec<PathBuf>> {
    if !opts.prefix.is_absolute() {
        bail!("--prefix must be absolute: {}", opts.prefix.display());
    }
    let mut written = Vec::new();

    let sbin = opts.dest(&opts.under_prefix("sbin/carpd-xdp"));
    copy(&opts.binary, &sbin, 0o755)?;
    written.push(sbin);

    let unit = opts.dest(&opts.unit_dir().join("carpd-xdp.service"));
    write(&unit, &unit_text(workspace, &opts.prefix)?, 0o644)?;
    written.push(unit);

    let config = opts.dest(Path::new(CONFIG_FILE));
    if config.exists() {
        println!("install: {} exists, left as it is", config.display());
    } else {
        copy(&workspace.join("dist/carpd-xdp.toml"), &config, 0o644)?;
        written.push(config);
    }

    let doc = opts.dest(&opts.under_prefix(DOC_DIR));
    for (from, to) in doc_files(workspace)? {
        copy(&workspace.join(&from), &doc.join(&to), 0o644)?;
        written.push(doc.join(to));
    }

    let assets = tempfile_dir("carpd-xdp-assets")?;
    let result = install_assets(opts, &assets, &mut written);
    let _ = std::fs::remove_dir_all(&assets);
    result?;
    Ok(written)
}

/// A fresh scratch directory under the system temp dir.
fn tempfile_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

fn install_assets(opts: &Options, assets: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    crate::setup::run_cmd(
        Command::new(&opts.binary)
            .arg("generate-assets")
            .arg("--out")
            .arg(assets)
            .stdout(std::process::Stdio::null()),
    )?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(assets.join("man"))
        .context("read the generated man pages")?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    pages.sort();
    if pages.is_empty() {
        bail!("carpd-xdp generate-assets wrote no man page");
    }
    for page in pages {
        let name = page.file_name().expect("a file").to_owned();
        // The section is the last extension: carpd-xdp.8, carpd-xdp.toml.5.
        let section = page
            .extension()
            .and_then(|e| e.to_str())
            .context("a man page without a section")?;
        let man_dir = opts.dest(&opts.under_prefix(&format!("share/man/man{section}")));
        let to = man_dir.join(&name);
        copy(&page, &to, 0o644)?;
        if opts.gzip_man {
            crate::setup::run_cmd(Command::new("gzip").args(["-9nf"]).arg(&to))?;
            written.push(to.with_extension(format!("{section}.gz")));
        } else {
            written.push(to);
        }
    }
    for (name, dir, installed) in [
        (
            "carpd-xdp.bash",
            "share/bash-completion/completions",
            "carpd-xdp",
        ),
        ("_carpd-xdp", "share/zsh/vendor-completions", "_carpd-xdp"),
        (
            "carpd-xdp.fish",
            "share/fish/vendor_completions.d",
            "carpd-xdp.fish",
        ),
    ] {
        let to = opts.dest(&opts.under_prefix(dir)).join(installed);
        copy(&assets.join("completions").join(name), &to, 0o644)?;
        written.push(to);
    }
    Ok(())
}
