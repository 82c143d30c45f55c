//! `carpd-xdp import-ucarp`: UCARP's configuration to one carpd-xdp file.
//!
//! It reads every layout UCARP is set up with in the field, each the way the
//! script that starts UCARP reads it:
//!
//! - the init-script layout of the French wiki ([`wiki`]): `--default
//!   /etc/default/ucarp` and the per-VIP files of `/etc/ucarp/interface/`;
//! - Red Hat's and Fedora's package ([`redhat`]): the directory
//!   `/etc/ucarp`, `vip-common.conf` under each `vip-<id>.conf`;
//! - Debian's package ([`debian`], [`interfaces`]): `/etc/network/interfaces` and the files
//!   it sources, one instance per stanza with `ucarp-*` options;
//! - `--cmdline`: one UCARP command line, pasted with or without `ucarp`.
//!
//! Shell files are read as the shell would source them (see
//! [`super::shell`]), and every UCARP option by the daemon's own parser
//! ([`super::options::parse`]), so it means here what it means on the
//! command line. A variable or option that means nothing to carpd-xdp is
//! noted once in the output, never refused. Passwords never go into the
//! TOML: each is written to `<password dir>/<interface>-vhid<N>.pass`,
//! mode 0600, when the result is written with `--output`, and referenced as
//! `password_file` (a `PASSFILE` is referenced as it is). Previewing to
//! stdout writes nothing. What cannot be mapped (`-h`, a subcommand, shell
//! code) is refused with the file, line and setting. The result is
//! validated with the loader the daemon uses before anything is written.
mod convert;
pub mod debian;
mod imported;
pub mod interfaces;
mod layout;
pub mod redhat;
mod render;
mod settings;
mod wiki;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::shell::ShellError;
use super::starter::quote;

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
    /// Write the configuration to FILE (never overwritten), and the password
    /// files, instead of previewing it on stdout (which writes nothing).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where the password files are written with --output (mode 0600)
    /// [default: the directory of --output; a preview names /etc/carpd-xdp].
    #[arg(long, value_name = "DIR")]
    pub password_dir: Option<PathBuf>,
    /// Read the files of the system whose root directory is DIR (a
    /// mounted disk or backup): the paths given and absolute paths inside
    /// them (`source` lines, PASSFILE) are looked up under DIR; the
    /// configuration keeps them as they are on that system.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Directories of per-VIP files (/etc/ucarp/interface, or Red Hat's
    /// /etc/ucarp), files (/etc/network/interfaces); with --cmdline, UCARP's
    /// command line (with or without `ucarp`; one quoted argument is split
    /// as the shell would).
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
    /// An interfaces(5) file that ifup would refuse too.
    #[error("{}", path.display())]
    Interfaces {
        /// The file.
        path: PathBuf,
        /// What and where.
        #[source]
        error: interfaces::InterfacesError,
    },
    /// An option given twice in one stanza.
    #[error("{at}: {name} is set twice in one stanza, also on line {first} (keep one)")]
    Twice {
        /// File, line and option.
        at: String,
        /// The option.
        name: String,
        /// The line of the other one.
        first: usize,
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
    /// Inputs that describe no instance (an interfaces file without a
    /// stanza that configures UCARP).
    #[error("{names}: no UCARP instance found (an iface stanza with ucarp-vid, ucarp-vip and ucarp-password, a per-VIP file, or a command line)")]
    NoInstance {
        /// The inputs read.
        names: String,
    },
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
    /// Shell variable assignments of the init-script layout (a per-VIP file
    /// or `/etc/default/ucarp`).
    Shell(String),
    /// Red Hat's `vip-common.conf` or a `vip-<id>.conf` (the vhid is the
    /// number in the name unless the file sets `ID` or `VID`).
    RedHat(String),
    /// The stanzas of Debian's `/etc/network/interfaces` and the files it
    /// sources.
    Interfaces(Vec<interfaces::Stanza>),
    /// UCARP command-line arguments.
    Args(Vec<String>),
}

impl Body {
    /// A file's body by its name and contents: interfaces(5), Red Hat's
    /// `vip-*.conf`, else the init-script layout. `root` is where the
    /// files an interfaces file sources are looked up.
    fn of_file(path: &Path, text: String, root: &Path) -> Result<Body, ImportError> {
        if interfaces::looks_like_interfaces(&text) {
            Ok(Body::Interfaces(interfaces::read(path, root)?))
        } else if redhat::is_layout_file(path) {
            Ok(Body::RedHat(text))
        } else {
            Ok(Body::Shell(text))
        }
    }
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

/// `path` as seen from this host: under `root` when it is absolute.
fn on_host(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) if root != Path::new("/") => root.join(rel),
        _ => path.to_owned(),
    }
}

/// What the command line names: the defaults input (given, or Red Hat's
/// `vip-common.conf`) and the per-VIP inputs.
struct Read {
    default: Option<Input>,
    inputs: Vec<Input>,
}

/// Reads the inputs named on the command line: files, or every file of a
/// directory in name order (of Red Hat's `/etc/ucarp`, `vip-common.conf`
/// and the `vip-*.conf` files only).
fn read_inputs(args: &ImportUcarpArgs, root: &Path) -> Result<Read, ImportError> {
    let mut default = match &args.default {
        Some(path) => {
            let path = on_host(root, path);
            let text = read(&path)?;
            Some(Input {
                body: Body::of_file(&path, text, root)?,
                name: path,
            })
        }
        None => None,
    };
    if args.cmdline {
        return Ok(Read {
            default,
            inputs: vec![Input {
                name: PathBuf::from("command line"),
                body: Body::Args(args.inputs.clone()),
            }],
        });
    }
    let mut files = Vec::new();
    for arg in &args.inputs {
        let path = on_host(root, Path::new(arg));
        let read_err = |io| ImportError::Read {
            path: path.clone(),
            io,
        };
        if !std::fs::metadata(&path).map_err(read_err)?.is_dir() {
            files.push(path);
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_leftover(&name) && entry.path().is_file() {
                found.push(entry.path());
            }
        }
        // Red Hat's directory also holds the password file, the example
        // and a README: only its layout's files are configuration.
        if found.iter().any(|f| redhat::is_layout_file(f)) {
            found.retain(|f| redhat::is_layout_file(f));
        }
        if found.is_empty() {
            return Err(ImportError::EmptyDir { path });
        }
        // As `LC_COLLATE=C sort`.
        found.sort();
        files.extend(found);
    }
    let mut inputs = Vec::new();
    for file in files {
        let text = read(&file)?;
        let input = Input {
            body: Body::of_file(&file, text, root)?,
            name: file,
        };
        let is_common = input.name.file_name() == Some(redhat::COMMON.as_ref());
        if is_common && default.is_none() {
            default = Some(input);
        } else {
            inputs.push(input);
        }
    }
    Ok(Read { default, inputs })
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

/// Runs `carpd-xdp import-ucarp`: reads the inputs, checks the result with
/// the daemon's loader, then, with `--output`, writes the password files
/// and the configuration (never over an existing file). Returns the text,
/// for stdout when there is no `--output`; a preview writes nothing.
pub fn run(args: &ImportUcarpArgs) -> Result<String, ImportError> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let Read { default, inputs } = read_inputs(args, &root)?;
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
    let mut conversion = convert(default.as_ref(), &inputs, &password_dir)?;
    // The loader's check, on the text with the passwords inline (nothing is
    // written yet) and each PASSFILE where it is on this host.
    let mut check = conversion.check_toml.clone();
    for file in &conversion.passfiles {
        let host = on_host(&root, file);
        check = check.replace(
            &format!("password_file = {}", quote(&file.to_string_lossy())),
            &format!("password_file = {}", quote(&host.to_string_lossy())),
        );
    }
    let name = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<import-ucarp output>"));
    let env = |var: &str| -> Option<OsString> { std::env::var_os(var) };
    super::parse_str(&check, &name, &env).map_err(|error| ImportError::SelfCheck { error })?;
    let Some(out) = &args.output else {
        if !conversion.password_files.is_empty() {
            conversion.toml.insert_str(
                0,
                "# Preview: the password files named below are written only with --output FILE.\n",
            );
        }
        return Ok(conversion.toml);
    };
    for (path, secret) in &conversion.password_files {
        write_password(path, secret)?;
    }
    let write_err = |io| ImportError::Write {
        path: out.clone(),
        io,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|io| match io.kind() {
            std::io::ErrorKind::AlreadyExists => ImportError::OutputExists { path: out.clone() },
            _ => write_err(io),
        })?;
    file.write_all(conversion.toml.as_bytes())
        .map_err(write_err)?;
    Ok(conversion.toml)
}
