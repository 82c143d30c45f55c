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
    /// The file holds a number that is none of our counters, or one that
    /// would stop the counter (see [`crate::proto::counter::check_floor`]).
    #[error("{path} holds no usable counter")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// Why the value is refused.
        #[source]
        source: crate::proto::counter::FloorError,
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

    /// The reservation written last, `None` if there is none yet. A file
    /// that holds no decimal number, or a number that is none of our
    /// counters, is an error: the caller reports it and counters follow
    /// the wall clock (never lower than without the file).
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
        let value: u64 = text
            .trim()
            .parse()
            .map_err(|_| CounterFileError::Malformed {
                path: self.path.clone(),
                text: text.chars().take(40).collect(),
            })?;
        crate::proto::counter::check_floor(value)
            .map(Some)
            .map_err(|source| CounterFileError::OutOfRange {
                path: self.path.clone(),
                source,
            })
    }

    /// The temporary file a new reservation is written to before it
    /// replaces this one: the file's own name plus `.tmp`, so that no two
    /// instances share one (`counter-eth0.100-10` and `counter-eth0.200-10`
    /// would both have `counter-eth0.tmp` with the extension replaced).
    fn temporary(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    /// Replaces the reservation with `value`, durably.
    pub fn store(&self, value: u64) -> Result<(), CounterFileError> {
        let err = |io| CounterFileError::Write {
            path: self.path.clone(),
            io,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = self.temporary();
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
    use crate::chain::Chain;
    use crate::proto::counter::{tagged, COUNTER_TAG};

    #[test]
    fn stores_and_loads_replacing_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = CounterFile::new(&dir.path().join("sub"), "eth0:carp0", 7);
        assert!(f.path().ends_with("counter-eth0_carp0-7"));
        assert_eq!(f.load().unwrap(), None);
        let (first, second) = (tagged(1_763_000_060_000), tagged(1_763_000_000_000));
        f.store(first).unwrap();
        f.store(second).unwrap();
        assert_eq!(f.load().unwrap(), Some(second));
        std::fs::write(f.path(), "garbage").unwrap();
        assert!(matches!(f.load(), Err(CounterFileError::Malformed { .. })));
    }

    #[test]
    fn values_that_would_break_the_counter_are_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = CounterFile::new(dir.path(), "eth0", 7);
        // The end of our tag's range, u64::MAX, a plain number, a negative
        // one, several lines: none is a floor.
        let end_of_tag = (u64::from(COUNTER_TAG) << 48) | ((1 << 48) - 1);
        for text in [
            end_of_tag.to_string(),
            u64::MAX.to_string(),
            "42".to_string(),
            "-1".to_string(),
            "1\n2".to_string(),
        ] {
            std::fs::write(f.path(), &text).unwrap();
            let e = f.load().expect_err(&text);
            let line = Chain(&e).to_string();
            assert!(!line.contains('\n'), "{text:?}: {line:?}");
            assert!(line.contains(&*f.path().to_string_lossy()), "{line}");
        }
        std::fs::write(f.path(), end_of_tag.to_string()).unwrap();
        assert_eq!(
            Chain(&f.load().unwrap_err()).to_string(),
            format!(
                "{} holds no usable counter: {end_of_tag} is too close to the end of \
                 the counter's range",
                f.path().display()
            )
        );
        // The format before identities is still a floor.
        let old = (u64::from(COUNTER_TAG) << 48) | 1_763_000_000_000;
        std::fs::write(f.path(), format!("{old}\n")).unwrap();
        assert_eq!(f.load().unwrap(), Some(old));
    }

    #[test]
    fn each_instance_has_its_own_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = CounterFile::new(dir.path(), "eth0.100", 10);
        let b = CounterFile::new(dir.path(), "eth0.200", 10);
        assert_ne!(a.temporary(), b.temporary());
        assert!(a.temporary().ends_with("counter-eth0.100-10.tmp"));
        a.store(tagged(1_763_000_000_000)).unwrap();
        b.store(tagged(1_763_000_001_000)).unwrap();
        assert_eq!(a.load().unwrap(), Some(tagged(1_763_000_000_000)));
        assert_eq!(b.load().unwrap(), Some(tagged(1_763_000_001_000)));
    }
}
