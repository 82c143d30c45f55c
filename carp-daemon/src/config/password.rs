//! The CARP password: read from a file, an environment variable or given
//! inline, checked against the 19-byte limit of carp(4) and UCARP, never printed.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use super::error::{At, ConfigError};
use super::model::MAX_PASSWORD_BYTES;

/// Where a password came from; shown by `check-config` instead of the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// First line of a file (`password_file`, UCARP's `-o`).
    File(PathBuf),
    /// An environment variable (`password_env`).
    Env(String),
    /// Written in the configuration file (`password`).
    Inline,
    /// Given on the command line (UCARP's `-p`), visible in `ps`.
    CommandLine,
}

/// The shared secret of a vhid. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    key: Vec<u8>,
    source: PasswordSource,
}

impl Password {
    /// Checks a secret (1..=19 bytes) read from `source`; `at` names the field.
    pub fn new(key: Vec<u8>, source: PasswordSource, at: &At) -> Result<Password, ConfigError> {
        if key.is_empty() {
            return Err(ConfigError::PasswordEmpty { at: at.clone() });
        }
        if key.len() > MAX_PASSWORD_BYTES {
            return Err(ConfigError::PasswordTooLong {
                at: at.clone(),
                len: key.len(),
            });
        }
        Ok(Password { key, source })
    }

    /// Reads the first line of `path` without its newline, as UCARP's `-o`
    /// does (so both derive the same key from the same file).
    pub fn from_file(path: PathBuf, at: &At) -> Result<Password, ConfigError> {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(io) => {
                return Err(ConfigError::PasswordFile {
                    at: at.clone(),
                    path,
                    io,
                })
            }
        };
        let line = bytes
            .split(|b| *b == b'\n')
            .next()
            .unwrap_or_default()
            .to_vec();
        Password::new(line, PasswordSource::File(path), at)
    }

    /// Reads the variable `var` through `env` (std::env::var_os in the daemon).
    pub fn from_env(
        var: &str,
        env: &dyn Fn(&str) -> Option<OsString>,
        at: &At,
    ) -> Result<Password, ConfigError> {
        let value = env(var)
            .and_then(|value| value.into_string().ok())
            .ok_or_else(|| ConfigError::PasswordEnv {
                at: at.clone(),
                var: var.to_owned(),
            })?;
        Password::new(value.into_bytes(), PasswordSource::Env(var.to_owned()), at)
    }

    /// The key bytes for the HMAC.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Where the key came from.
    pub fn source(&self) -> &PasswordSource {
        &self.source
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Password")
            .field("key", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::File(path) => write!(f, "file {}", path.display()),
            PasswordSource::Env(var) => write!(f, "environment variable {var}"),
            PasswordSource::Inline => f.write_str("inline"),
            PasswordSource::CommandLine => f.write_str("command line"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> At {
        At::Flag("-p/--pass")
    }

    #[test]
    fn length_limits_are_enforced() {
        // 19 bytes, as BSD ifconfig keeps and UCARP accepts.
        assert!(Password::new(b"x".repeat(19), PasswordSource::Inline, &at()).is_ok());
        let err = Password::new(b"x".repeat(20), PasswordSource::Inline, &at()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-p/--pass: password is 20 bytes, at most 19 are allowed (the limit of UCARP and the BSD kernels)"
        );
        let err = Password::new(Vec::new(), PasswordSource::Inline, &at()).unwrap_err();
        assert_eq!(err.to_string(), "-p/--pass: password is empty");
    }

    #[test]
    fn file_keeps_only_the_first_line() {
        let dir = std::env::temp_dir().join(format!("carpd-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pass");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        let pw = Password::from_file(path.clone(), &at()).unwrap();
        assert_eq!(pw.key(), b"s3cret");
        assert_eq!(pw.source(), &PasswordSource::File(path));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_never_shows_the_key() {
        let pw = Password::new(b"hunter2".to_vec(), PasswordSource::Inline, &at()).unwrap();
        assert!(!format!("{pw:?}").contains("hunter2"));
    }

    #[test]
    fn env_missing_names_the_variable() {
        let none = |_: &str| None;
        let err = Password::from_env("CARP_PASS_X", &none, &at()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-p/--pass: environment variable CARP_PASS_X is not set or not valid UTF-8"
        );
        let some = |_: &str| Some(OsString::from("abc"));
        assert_eq!(Password::from_env("V", &some, &at()).unwrap().key(), b"abc");
    }
}
