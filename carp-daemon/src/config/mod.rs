//! Configuration: the model the daemon runs from, the TOML file, the UCARP
//! command line, and the printing of `check-config`.
//!
//! The default file is [`DEFAULT_CONFIG_PATH`]
//! (`/etc/carpd-xdp/carpd-xdp.toml`); `dist/carpd-xdp.toml` documents every
//! key. Loading is all or nothing: a file with any error yields `Err` naming
//! the file, line and field, and nothing of it is used.
//!
//! ```text
//!     RunArgs ──from_cli──┬── UCARP options ──────────────► Config
//!                         └── load(file) ── select_interface ─► Config
//! ```

mod error;
mod facility;
mod host;
pub mod import;
pub mod keys;
mod locate;
mod model;
mod options;
mod password;
mod paths;
mod print;
mod raw;
pub mod reference;
mod schema;
mod shell;
pub mod starter;
mod toml;
mod ucarp;
mod validate;

use std::ffi::OsString;
use std::path::Path;

pub use error::{At, ConfigError};
pub use facility::{Facility, UnknownFacility};
pub use model::*;
pub use options::{RunArgs, SUBCOMMANDS};
pub use password::{Password, PasswordSource};
pub use paths::*;
pub use print::render;
pub use ucarp::from_cli;

/// Reads, parses and validates a configuration file; password variables
/// come from the process environment. Relative paths in the file are
/// relative to the file's directory, whatever the working directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &|var| std::env::var_os(var))
}

/// As [`load`], with password variables looked up through `env`.
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    read_file(path, false, env)
}

/// As [`load`], for `carpd-xdp check-config`: also warns about what the
/// file names that this host lacks (an interface, a script or health-check
/// program that is missing or not executable).
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    read_file(path, true, &|var| std::env::var_os(var))
}

fn read_file(
    path: &Path,
    host_checks: bool,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|io| ConfigError::Read {
        path: path.to_owned(),
        io,
    })?;
    // Absolute, so that the daemon (started from /, or after it changed
    // directory) finds what check-config found.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let base = absolute.parent().unwrap_or(Path::new("/"));
    let options = toml::Options { base, host_checks };
    toml::parse_str(&src, path, &options, env)
}

/// Parses and validates configuration text; `path` names it in messages,
/// and relative paths in the text are relative to its directory.
pub fn parse_str(
    src: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let base = path.parent().unwrap_or(Path::new(""));
    let options = toml::Options {
        base,
        host_checks: false,
    };
    toml::parse_str(src, path, &options, env)
}

/// Keeps the instances on `interface` (a base name such as `eth0`, or a
/// label such as `eth0:carp0`), as for `carpd-xdp eth0`; an error if none.
pub fn select_interface(
    mut config: Config,
    interface: &str,
    path: &Path,
) -> Result<Config, ConfigError> {
    config
        .instances
        .retain(|inst| inst.interface == interface || inst.label.as_deref() == Some(interface));
    if config.instances.is_empty() {
        return Err(ConfigError::NoInstance {
            path: path.to_owned(),
            interface: interface.to_owned(),
        });
    }
    Ok(config)
}
