//! `carpd-xdp import-ucarp`: UCARP's configuration to one carpd-xdp file.
//!
//! Inputs, each read as the shell would source it (see [`super::shell`]):
//!
//! - `--default FILE` (e.g. `/etc/default/ucarp`): settings every VIP gets,
//!   usually `OPTIONS="..."` (UCARP options);
//! - per-VIP files (every file of each DIR given, or the files given), one
//!   instance each: `INTERFACE` (`eth0` or `eth0:carp0`), `INSTANCE_ID`,
//!   `PASSWORD` or `PASSFILE`, `VIRTUAL_ADDRESS`, `VIRTUAL_NETMASK`,
//!   `SOURCE_ADDRESS`, `UPSCRIPT`, `DOWNSCRIPT`, `XPARAM`, `UCARP_BASE`
//!   (advbase, seconds) and `OPTIONS` / `UCARP_OPTS`; a per-VIP file wins over
//!   the default file, a variable over `OPTIONS` of the same file;
//! - or `--cmdline -- <UCARP options>`: one instance from a command line.
//!
//! Every UCARP option is read by the daemon's own parser ([`super::options::parse`]), so it
//! means here what it means on the command line. Passwords never go into the
//! TOML: each is written to `<password dir>/<interface>-vhid<N>.pass`, mode
//! 0600, and referenced as `password_file` (a `PASSFILE` is referenced as it
//! is). What cannot be mapped (`-h`, a subcommand, shell code, an unknown
//! variable) is refused with the file, line and setting. The result is
//! validated with the loader the daemon uses before anything is written.
mod convert;
mod settings;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::shell::ShellError;

pub use convert::{convert, Conversion};

/// Where password files go when neither `--password-dir` nor `--output` says.
pub const DEFAULT_PASSWORD_DIR: &str = "/etc/carpd-xdp";

/// Arguments of `carpd-xdp import-ucarp`.
#[derive(Clone, Debug, clap::Args)]
pub struct ImportUcarpArgs {
    /// UCARP's defaults file (e.g. /etc/default/ucarp): its settings apply to
    /// every VIP; alone, it describes the one instance.
    #[arg(long = "default", value_name = "FILE")]
    pub default: Option<PathBuf>,
    /// The arguments are one UCARP command line (after `--`), e.g.
    /// `import-ucarp --cmdline -- -i eth0 -v 10 -p pw -a 10.0.0.10`.
    #[arg(long)]
    pub cmdline: bool,
    /// Write the configuration to FILE (never overwritten) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where the password files are written (mode 0600) [default: the
    /// directory of --output, else /etc/carpd-xdp].
    #[arg(long, value_name = "DIR")]
    pub password_dir: Option<PathBuf>,
    /// Directories of per-VIP files (e.g. /etc/ucarp/interface), or files;
    /// with --cmdline, UCARP's options.
    #[arg(value_name = "DIR|FILE")]
    pub inputs: Vec<String>,
}

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An input could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// Shell text the importer does not evaluate.
    #[error("{}", path.display())]
    Shell {
        /// The file.
        path: PathBuf,
        /// What and where.
        #[source]
        error: ShellError,
    },
    /// A variable with no carpd-xdp meaning.
    #[error("{at}: {name} is not a UCARP setting import-ucarp knows (known: {known})")]
    UnknownVariable {
        /// File and line.
        at: String,
        /// The variable.
        name: String,
        /// The variables understood.
        known: &'static str,
    },
    /// A value or an option the UCARP parser refuses.
    #[error("{at}: {message}")]
    Option {
        /// File, line and setting.
        at: String,
        /// The parser's first line.
        message: String,
    },
    /// A setting that exists but has no place in a configuration file.
    #[error("{at}: {setting} cannot be imported: {why}")]
    Unsupported {
        /// File, line and variable.
        at: String,
        /// The option.
        setting: String,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// A netmask that is not one.
    #[error("{at}: {value:?} is not a netmask (255.255.255.0 or a prefix length such as 24)")]
    Netmask {
        /// File, line and variable.
        at: String,
        /// The value.
        value: String,
    },
    /// A setting every instance needs is missing.
    #[error("{source_name}: missing {what} ({hint})")]
    Missing {
        /// The per-VIP file or `command line`.
        source_name: String,
        /// What is missing.
        what: &'static str,
        /// The variable or option to set.
        hint: &'static str,
    },
    /// Two inputs set a process-wide setting differently.
    #[error(
        "{at}: {setting} differs from {first} (one daemon serves every instance; make them agree)"
    )]
    GlobalConflict {
        /// The later setting.
        at: String,
        /// The option.
        setting: &'static str,
        /// The earlier one.
        first: String,
    },
    /// The instances fail validation (duplicate vhid or VIP, families...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Nothing to import.
    #[error("nothing to import: give per-VIP files or directories, --default FILE, or --cmdline -- OPTIONS")]
    NoInput,
    /// A directory without per-VIP files.
    #[error("{}: no per-VIP files in this directory", path.display())]
    EmptyDir {
        /// The directory.
        path: PathBuf,
    },
    /// A password file exists with another password.
    #[error("{} already exists with another password; not overwriting it (remove it or give another --password-dir)", path.display())]
    PasswordExists {
        /// The file.
        path: PathBuf,
    },
    /// The output exists: never overwritten.
    #[error("{} already exists; not overwriting it", path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
    /// The produced configuration does not load (e.g. a PASSFILE missing on
    /// this host).
    #[error("the imported configuration does not load here")]
    SelfCheck {
        /// The loader's error.
        #[source]
        error: ConfigError,
    },
}

/// One input: its name for messages and what it holds.
#[derive(Clone, Debug)]
pub struct Input {
    /// The file path, or `command line`.
    pub name: PathBuf,
    /// Its contents.
    pub body: Body,
}

/// What an input holds.
#[derive(Clone, Debug)]
pub enum Body {
    /// Shell variable assignments (a per-VIP or default file).
    Shell(String),
    /// UCARP command-line arguments.
    Args(Vec<String>),
}

/// Files to skip in a directory of per-VIP files: hidden ones, editor and
/// package manager leftovers.
fn is_leftover(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".dpkg-old",
            ".dpkg-dist",
            ".dpkg-new",
            ".ucf-old",
            ".ucf-dist",
            ".bak",
            ".orig",
            ".swp",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|io| ImportError::Read {
        path: path.to_owned(),
        io,
    })
}

/// The per-VIP inputs named on the command line: files, or every file of a
/// directory in name order.
fn read_inputs(args: &ImportUcarpArgs) -> Result<Vec<Input>, ImportError> {
    if args.cmdline {
        return Ok(vec![Input {
            name: PathBuf::from("command line"),
            body: Body::Args(args.inputs.clone()),
        }]);
    }
    let mut inputs = Vec::new();
    for arg in &args.inputs {
        let path = PathBuf::from(arg);
        let read_err = |io| ImportError::Read {
            path: path.clone(),
            io,
        };
        if std::fs::metadata(&path).map_err(read_err)?.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&path).map_err(read_err)? {
                let entry = entry.map_err(read_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !is_leftover(&name) && entry.path().is_file() {
                    files.push(entry.path());
                }
            }
            if files.is_empty() {
                return Err(ImportError::EmptyDir { path });
            }
            files.sort();
            for file in files {
                let text = read(&file)?;
                inputs.push(Input {
                    name: file,
                    body: Body::Shell(text),
                });
            }
        } else {
            inputs.push(Input {
                body: Body::Shell(read(&path)?),
                name: path,
            });
        }
    }
    Ok(inputs)
}

/// Writes a password file, mode 0600, unless the same password is there.
fn write_password(path: &Path, secret: &[u8]) -> Result<(), ImportError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let write_err = |io| ImportError::Write {
        path: path.to_owned(),
        io,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let mut line = secret.to_vec();
            line.push(b'\n');
            file.write_all(&line).map_err(write_err)
        }
        Err(io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read(path).map_err(write_err)?;
            let first = existing.split(|b| *b == b'\n').next().unwrap_or_default();
            if first == secret {
                Ok(())
            } else {
                Err(ImportError::PasswordExists {
                    path: path.to_owned(),
                })
            }
        }
        Err(io) => Err(write_err(io)),
    }
}

/// Runs `carpd-xdp import-ucarp`: reads the inputs, writes the password
/// files, checks the result with the daemon's loader, then writes it to
/// `--output` (never over an existing file). Returns the text, for stdout
/// when there is no `--output`.
pub fn run(args: &ImportUcarpArgs) -> Result<String, ImportError> {
    let default = match &args.default {
        Some(path) => Some(Input {
            body: Body::Shell(read(path)?),
            name: path.clone(),
        }),
        None => None,
    };
    let inputs = read_inputs(args)?;
    if inputs.is_empty() && default.is_none() {
        return Err(ImportError::NoInput);
    }
    if let Some(out) = &args.output {
        if out.exists() {
            return Err(ImportError::OutputExists { path: out.clone() });
        }
    }
    let password_dir = args.password_dir.clone().unwrap_or_else(|| {
        match args.output.as_deref().and_then(Path::parent) {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            Some(_) => PathBuf::from("."),
            None => PathBuf::from(DEFAULT_PASSWORD_DIR),
        }
    });
    // The daemon does not run from this directory: password_file is absolute.
    let password_dir = std::path::absolute(&password_dir).map_err(|io| ImportError::Write {
        path: password_dir.clone(),
        io,
    })?;
    let conversion = convert(default.as_ref(), &inputs, &password_dir)?;
    for (path, secret) in &conversion.password_files {
        write_password(path, secret)?;
    }
    let name = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<import-ucarp output>"));
    let env = |var: &str| -> Option<OsString> { std::env::var_os(var) };
    super::parse_str(&conversion.toml, &name, &env)
        .map_err(|error| ImportError::SelfCheck { error })?;
    if let Some(out) = &args.output {
        let write_err = |io| ImportError::Write {
            path: out.clone(),
            io,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(|io| match io.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    ImportError::OutputExists { path: out.clone() }
                }
                _ => write_err(io),
            })?;
        file.write_all(conversion.toml.as_bytes())
            .map_err(write_err)?;
    }
    Ok(conversion.toml)
}
