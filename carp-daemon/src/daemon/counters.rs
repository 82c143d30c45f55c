//! Where the advert counter reservations of the instances are kept, so that
//! a restarted instance never sends a counter below one it sent before, even
//! after the wall clock went back (see [`crate::proto::counter`]).
//!
//! One small file per instance, `counter-<interface>-<vhid>`, holding the
//! reservation in decimal. It is replaced atomically (written to a temporary
//! file, synced, renamed, the directory synced), about twice a minute, and
//! read and written only by the thread of [`super::reservations`], never on
//! the event loop.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CounterFileError {
    /// The file or its directory could not be written.
    #[error("cannot write the counter reservation {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// The file exists but holds no counter.
    #[error("{path} does not hold a counter: {text:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it holds (at most 40 bytes of it).
        text: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read the counter reservation {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
}

/// The reservation file of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterFile {
    /// Its path.
    path: PathBuf,
}

impl CounterFile {
    /// The file of (`interface`, `vhid`) in `dir`. Characters other than
    /// ASCII letters, digits, `.`, `_` and `-` in the interface name (an
    /// alias's `:`) become `_`.
    pub fn new(dir: &Path, interface: &str, vhid: u8) -> Self {
        let name: String = interface
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            path: dir.join(format!("counter-{name}-{vhid}")),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reservation written last, `None` if there is none yet.
    pub fn load(&self) -> Result<Option<u64>, CounterFileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(io) if io.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(io) => {
                return Err(CounterFileError::Read {
                    path: self.path.clone(),
                    io,
                })
            }
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| CounterFileError::Malformed {
                path: self.path.clone(),
                text: text.chars().take(40).collect(),
            })
    }

    /// Replaces the reservation with `value`, durably.
    pub fn store(&self, value: u64) -> Result<(), CounterFileError> {
        let err = |io| CounterFileError::Write {
            path: self.path.clone(),
            io,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        writeln!(f, "{value}").map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_replacing_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = CounterFile::new(&dir.path().join("sub"), "eth0:carp0", 7);
        assert!(f.path().ends_with("counter-eth0_carp0-7"));
        assert_eq!(f.load().unwrap(), None);
        f.store(u64::MAX - 1).unwrap();
        f.store(42).unwrap();
        assert_eq!(f.load().unwrap(), Some(42));
        std::fs::write(f.path(), "garbage").unwrap();
        assert!(matches!(f.load(), Err(CounterFileError::Malformed { .. })));
    }
}
