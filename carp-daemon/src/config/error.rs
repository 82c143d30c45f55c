//! Errors of configuration loading and validation, and where they happened.
//!
//! Every error carries an [`At`]: a file, line and field for the
//! configuration file (`/etc/carpd-xdp/carpd-xdp.toml:12: instance[1].advskew`)
//! or the option for the command line (`-k/--advskew`), so the operator is
//! pointed at the one place to fix.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// A field of a configuration file.
    File {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line of the value (of the table when the field is missing).
        line: usize,
        /// Dotted path of the field, e.g. `instance[1].advskew`.
        field: String,
    },
    /// A command-line option, e.g. `-k/--advskew`.
    Flag(&'static str),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::File { path, line, field } => write!(f, "{}:{line}: {field}", path.display()),
            At::Flag(flag) => f.write_str(flag),
        }
    }
}

/// ` --output PATH` unless `path` is where `carpd-xdp init` writes anyway.
fn output_option(path: &std::path::Path) -> String {
    if path == std::path::Path::new(super::paths::DEFAULT_CONFIG_PATH) {
        String::new()
    } else {
        format!(" --output {}", path.display())
    }
}

/// Why a configuration (file or command line) was rejected. Nothing of a
/// rejected configuration is ever applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (unknown key,
    /// wrong type, missing required key).
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: At,
        /// The parser's description, naming the offending key or value.
        message: String,
    },
    /// A key the file format does not have.
    #[error("{at}: unknown key {key}{hint}")]
    UnknownKey {
        /// The key.
        at: At,
        /// The unknown name.
        key: String,
        /// ` (did you mean advskew?)`, where it belongs, or the keys of its table.
        hint: String,
    },
    /// A value of the wrong type, named in words; a secret's value is not shown.
    #[error("{at}: {found} is not {expected}{hint}")]
    WrongType {
        /// The field.
        at: At,
        /// The value as written, or its type in words (always for a secret).
        found: String,
        /// The type the key takes, in words (`an integer`, `true or false`).
        expected: String,
        /// E.g. ` (put it in quotes)`, or empty.
        hint: &'static str,
    },
    /// A name that is not one of those the key accepts.
    #[error("{at}: {value:?} is not {expected}")]
    NotOneOf {
        /// The field.
        at: At,
        /// The name given.
        value: String,
        /// The names accepted, in words (`one of "strict", "compat", "auto"`).
        expected: String,
    },
    /// A placeholder written by `carpd-xdp init` or the shipped example, left unedited.
    #[error("{at}: {value:?} is a placeholder: edit it ({hint})")]
    Placeholder {
        /// The field.
        at: At,
        /// The placeholder.
        value: String,
        /// What to put there.
        hint: &'static str,
    },
    /// A number outside its allowed range.
    #[error("{at}: {value} is out of range {range}")]
    OutOfRange {
        /// The field.
        at: At,
        /// The value given.
        value: i64,
        /// The allowed range, e.g. `0..=254`.
        range: String,
    },
    /// A value that does not parse as what the field needs.
    #[error("{at}: {value:?} is not {expected}")]
    Invalid {
        /// The field.
        at: At,
        /// The value given.
        value: String,
        /// What was expected, e.g. `an IP address`.
        expected: &'static str,
    },
    /// A required value is missing.
    #[error("{at}: missing, {hint}")]
    Missing {
        /// The field (or option) that must be given.
        at: At,
        /// How to supply it.
        hint: &'static str,
    },
    /// Two settings that cannot be used together.
    #[error("{at}: cannot be combined with {other}")]
    Conflict {
        /// The field (or option) given second.
        at: At,
        /// The setting it conflicts with.
        other: String,
    },
    /// The same (interface, vhid) twice.
    #[error("{at}: interface {interface} vhid {vhid} is already defined{first}")]
    DuplicateInstance {
        /// The second definition.
        at: At,
        /// Base interface name.
        interface: String,
        /// The repeated vhid.
        vhid: u8,
        /// Where the first one is (e.g. ` at line 4`), or empty.
        first: String,
    },
    /// The same virtual address in two places.
    #[error("{at}: virtual address {vip} is already used{first}")]
    DuplicateVip {
        /// The second occurrence.
        at: At,
        /// The repeated address.
        vip: std::net::IpAddr,
        /// Where the first one is (e.g. ` by instance[0]`), or empty.
        first: String,
    },
    /// An address whose family differs from the instance's source address.
    #[error("{at}: {addr} is {family} but srcip {srcip} is not")]
    FamilyMismatch {
        /// The field holding the address.
        at: At,
        /// The offending address.
        addr: std::net::IpAddr,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The instance's source address.
        srcip: std::net::IpAddr,
    },
    /// A password longer than the peers accept (19 bytes: a NUL-terminated
    /// 20-byte key).
    #[error(
        "{at}: password is {len} bytes, at most {} are allowed (the limit of UCARP and the BSD kernels)",
        crate::proto::auth::MAX_PASSWORD_LEN
    )]
    PasswordTooLong {
        /// The password field or option.
        at: At,
        /// Its length in bytes.
        len: usize,
    },
    /// An empty password.
    #[error("{at}: password is empty")]
    PasswordEmpty {
        /// The password field or option.
        at: At,
    },
    /// The password file could not be read.
    #[error("{at}: cannot read password file {}", path.display())]
    PasswordFile {
        /// The password_file field or `-o/--passfile`.
        at: At,
        /// The password file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// The password file is a FIFO, a directory, a device...
    #[error("{at}: password file {} is {kind}, not a regular file", path.display())]
    PasswordFileType {
        /// The password_file field or `-o/--passfile`.
        at: At,
        /// The password file.
        path: PathBuf,
        /// What it is (`a FIFO`, `a directory`, ...).
        kind: &'static str,
    },
    /// Other users may read or write the password file.
    #[error(
        "{at}: password file {} has mode {mode:04o}, which lets group or others read or write it: \
         refusing to use it (chmod 600 {})",
        path.display(),
        path.display()
    )]
    PasswordFileMode {
        /// The password_file field or `-o/--passfile`.
        at: At,
        /// The password file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The password file belongs to a user other than root and the daemon's.
    #[error(
        "{at}: password file {} is owned by uid {uid}, not by root or the daemon's user (uid {euid}): \
         refusing to use it (chown root {})",
        path.display(),
        path.display()
    )]
    PasswordFileOwner {
        /// The password_file field or `-o/--passfile`.
        at: At,
        /// The password file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The daemon's effective user.
        euid: u32,
    },
    /// `password_env` names a variable that scripts and health checks get.
    #[error(
        "{at}: {var} is passed on to scripts and health checks (as are PATH, LANG, LC_*, TZ \
         and HOME): keep the password in another variable"
    )]
    PasswordEnvPassedOn {
        /// The password_env field.
        at: At,
        /// The variable name.
        var: String,
    },
    /// The password environment variable is unset or not valid text.
    #[error("{at}: environment variable {var} is not set or not valid UTF-8")]
    PasswordEnv {
        /// The password_env field.
        at: At,
        /// The variable name.
        var: String,
    },
    /// No configuration file and no UCARP instance options: what to do.
    #[error(
        "no configuration file {}: create one with `carpd-xdp init {} --vip ADDRESS/PREFIX{}` \
         (then edit it and run `carpd-xdp check-config`), convert UCARP's with \
         `carpd-xdp import-ucarp`, or give UCARP options for one instance \
         (`carpd-xdp -i eth0 -v 1 -o PASSFILE -a ADDRESS`, see `carpd-xdp -h`)",
        path.display(),
        interface.as_deref().unwrap_or("IFACE"),
        output_option(path)
    )]
    NoConfigFile {
        /// The configuration file looked for.
        path: PathBuf,
        /// The interface given on the command line, if any.
        interface: Option<String>,
    },
    /// `carpd-xdp IFACE` but the configuration has no instance on it.
    #[error("{}: no instance on interface {interface}", path.display())]
    NoInstance {
        /// The configuration file.
        path: PathBuf,
        /// The interface asked for.
        interface: String,
    },
}
