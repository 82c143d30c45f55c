//! The CARP password: read from a file, an environment variable or given
//! inline, checked against the 19-byte limit of carp(4) and UCARP, never printed.
//!
//! A password file must be a regular file that neither group nor others may
//! read or write (mode 0600 or 0400, as sshd asks of private keys), owned by
//! root or the daemon's user (as sshd asks of its files); it is
//! opened non-blocking and checked on the open descriptor, so a FIFO or a
//! device put in its place is refused at once instead of blocking the
//! daemon. A `password_env` variable must not be one of those passed on to
//! scripts and health checks ([`crate::child::PASSED_ON`], `LC_*`).

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use super::error::{At, ConfigError};
use crate::proto::auth::{self, AuthError};

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

/// The shared secret of a vhid and where it came from. `Debug` and
/// `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password {
    /// The secret, within the core's length limit.
    key: auth::Password,
    /// Where it came from.
    source: PasswordSource,
}

impl Password {
    /// Checks a secret read from `source`: not empty, and within the
    /// core's limit ([`auth::MAX_PASSWORD_LEN`]); `at` names the field.
    pub fn new(key: Vec<u8>, source: PasswordSource, at: &At) -> Result<Password, ConfigError> {
        if key.is_empty() {
            return Err(ConfigError::PasswordEmpty { at: at.clone() });
        }
        let key = auth::Password::new(&key).map_err(|e| match e {
            AuthError::PasswordTooLong { len } => ConfigError::PasswordTooLong {
                at: at.clone(),
                len,
            },
        })?;
        Ok(Password { key, source })
    }

    /// Reads the first line of `path` without its newline, as UCARP's `-o`
    /// does (so both derive the same key from the same file).
    pub fn from_file(path: PathBuf, at: &At) -> Result<Password, ConfigError> {
        let bytes = match read_private(&path, at) {
            Ok(bytes) => bytes,
            Err(Ok(e)) => return Err(e),
            Err(Err(io)) => {
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
        if crate::child::passed_on(var) {
            return Err(ConfigError::PasswordEnvPassedOn {
                at: at.clone(),
                var: var.to_owned(),
            });
        }
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
        self.key.as_bytes()
    }

    /// The core's password.
    pub fn core(&self) -> &auth::Password {
        &self.key
    }

    /// Where the key came from.
    pub fn source(&self) -> &PasswordSource {
        &self.source
    }
}

/// Longest password file read, in bytes (only the first line is used).
const MAX_FILE_BYTES: u64 = 4096;

/// Reads a password file that only its owner may read or write: `Err(Ok)`
/// for a file of the wrong type or mode, `Err(Err)` for an I/O error.
fn read_private(
    path: &std::path::Path,
    at: &At,
) -> Result<Vec<u8>, Result<ConfigError, std::io::Error>> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. The checks are on the descriptor, so nothing can be swapped in
    // between check and read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(Err)?;
    let meta = file.metadata().map_err(Err)?;
    let kind = meta.file_type();
    let not_regular = if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else {
        Some("not a plain file")
    };
    if let Some(kind) = not_regular {
        return Err(Ok(ConfigError::PasswordFileType {
            at: at.clone(),
            path: path.to_owned(),
            kind,
        }));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o066 != 0 {
        return Err(Ok(ConfigError::PasswordFileMode {
            at: at.clone(),
            path: path.to_owned(),
            mode,
        }));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let uid = meta.uid();
    if uid != 0 && uid != euid {
        return Err(Ok(ConfigError::PasswordFileOwner {
            at: at.clone(),
            path: path.to_owned(),
            uid,
            euid,
        }));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(Err)?;
    Ok(bytes)
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
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
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

    #[test]
    fn files_others_may_read_or_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "s3cret\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Password::from_file(path.clone(), &at()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "-p/--pass: password file {p} has mode {mode:04o}, which lets group or others \
                     read or write it: refusing to use it (chmod 600 {p})",
                    p = path.display()
                )
            );
        }
        for mode in [0o600, 0o400, 0o700] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                Password::from_file(path.clone(), &at()).unwrap().key(),
                b"s3cret"
            );
        }
    }

    #[test]
    fn files_of_another_user_are_refused() {
        // Only root can give a file to another user.
        if !carp_testnet::require_root("files_of_another_user_are_refused") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = Password::from_file(path.clone(), &at()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "-p/--pass: password file {p} is owned by uid 65534, not by root or the daemon's \
                 user (uid 0): refusing to use it (chown root {p})",
                p = path.display()
            )
        );
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        assert_eq!(Password::from_file(path, &at()).unwrap().key(), b"s3cret");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever opens it: a blocking open would hang the test.
        let err = Password::from_file(path.clone(), &at()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "-p/--pass: password file {} is a FIFO, not a regular file",
                path.display()
            )
        );
        let err = Password::from_file(dir.path().to_owned(), &at()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn password_env_must_not_be_passed_on_to_children() {
        let some = |_: &str| Some(OsString::from("abc"));
        for var in ["PATH", "LANG", "LC_CARP", "TZ", "HOME"] {
            let err = Password::from_env(var, &some, &at()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "-p/--pass: {var} is passed on to scripts and health checks (as are PATH, \
                     LANG, LC_*, TZ and HOME): keep the password in another variable"
                )
            );
        }
    }
}
