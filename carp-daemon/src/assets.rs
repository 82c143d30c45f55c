//! `carpd-xdp generate-assets --out DIR` (hidden): the man pages and shell
//! completions, generated from the very clap definitions the binary parses
//! with, so they never drift from it. `cargo xtask install` and
//! `cargo xtask deb` run it from the freshly built binary. `man8` adds
//! the sections clap does not know (exit status, signals, files, see also);
//! `completion` leaves the hidden subcommand out and mends bash's script.
//!
//! ```text
//! DIR/man/carpd-xdp.8, DIR/man/carpd-xdp-<subcommand>.8
//! DIR/man/carpd-xdp.toml.5 (from the parser's table of keys)
//! DIR/completions/carpd-xdp.bash, _carpd-xdp (zsh), carpd-xdp.fish
//! ```

use std::path::{Path, PathBuf};

mod completion;
mod man8;

pub use completion::CompletionError;

/// Section of the manual: system administration commands (`/usr/sbin`).
pub const MAN_SECTION: &str = "8";

/// Arguments of `carpd-xdp generate-assets`.
#[derive(Clone, Debug, clap::Args)]
pub struct GenerateAssetsArgs {
    /// Directory to write `man/` and `completions/` into (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Failures of `carpd-xdp generate-assets`.
#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    /// A file or directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// A generated completion script would not work.
    #[error(transparent)]
    Completion(#[from] CompletionError),
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> AssetsError + '_ {
    move |io| AssetsError::Write {
        path: path.to_owned(),
        io,
    }
}

/// Writes the man pages and completions of `command` (the clap command of
/// `carpd-xdp`) under `out`, leaving out the `help` subcommand; returns the
/// files.
pub fn generate(command: clap::Command, out: &Path) -> Result<Vec<PathBuf>, AssetsError> {
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    for dir in [&man_dir, &completion_dir] {
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    // Built, so that subcommands are named `carpd-xdp-<name>`.
    let mut cmd = command.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let top = man8::describe(cmd.clone());
    let pages = std::iter::once((top, man8::Page::TopLevel(&subcommands))).chain(
        cmd.get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(|sub| (sub.clone(), man8::Page::Subcommand)),
    );
    for (command, page) in pages {
        let man = clap_mangen::Man::new(command)
            .section(MAN_SECTION)
            .manual("System Manager's Manual");
        let path = man_dir.join(man.get_filename());
        let text = man8::page(&man, &page).map_err(write_err(&path))?;
        std::fs::write(&path, text).map_err(write_err(&path))?;
        written.push(path);
    }
    let path = man_dir.join(crate::config::reference::FILE_NAME);
    let page = crate::config::reference::render(env!("CARGO_PKG_VERSION"));
    std::fs::write(&path, page).map_err(write_err(&path))?;
    written.push(path);
    for (shell, name) in completion::SHELLS {
        let path = completion_dir.join(name);
        let text = completion::script(shell, &cmd, "carpd-xdp")?;
        std::fs::write(&path, text).map_err(write_err(&path))?;
        written.push(path);
    }
    Ok(written)
}
