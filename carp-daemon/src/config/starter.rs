//! `carpd-xdp init IFACE`: a commented starter configuration for one
//! interface, written where the daemon looks for it and never over an
//! existing file. The text is short on purpose; `dist/carpd-xdp.toml` (the
//! package's default file) documents every key.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::error::At;
use super::model::Vip;
use super::paths::DEFAULT_CONFIG_PATH;
use super::validate::{check_ifname, split_alias, MAX_IFNAME_BYTES};

/// Placeholder VIP written when `--vip` is not given: `check-config` (and
/// the daemon) refuse it with a message saying to edit it, so a file is
/// never run with an address nobody chose.
pub const PLACEHOLDER_VIP: &str = "ADDRESS/PREFIX";

/// Arguments of `carpd-xdp init`.
#[derive(Clone, Debug, clap::Args)]
pub struct InitArgs {
    /// Interface the VIP lives on (`eth0`, or UCARP's alias form `eth0:carp0`).
    #[arg(value_name = "INTERFACE")]
    pub interface: String,
    /// Virtual host id, the same on every host sharing the VIP.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=255))]
    pub vhid: u8,
    /// Virtual address, ADDRESS or ADDRESS/PREFIX (repeat for several)
    /// [default: a placeholder to edit].
    #[arg(long = "vip", value_name = "ADDRESS[/PREFIX]")]
    pub vips: Vec<String>,
    /// Source address of the adverts [default: the interface's].
    #[arg(long, value_name = "ADDRESS")]
    pub srcip: Option<IpAddr>,
    /// Advertisement skew: 0 on the preferred host, e.g. 100 on the backup.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=254))]
    pub advskew: u8,
    /// File holding the shared password [default: vhid<N>.pass next to the
    /// configuration].
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Where to write the configuration (no short form: UCARP's -o is the
    /// password file).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub output: PathBuf,
}

/// Failures of `carpd-xdp init`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The interface name cannot be one.
    #[error(
        "{name:?} is not an interface name (1 to 15 bytes, no '/' or spaces; eth0 or eth0:label)"
    )]
    Interface {
        /// The name given.
        name: String,
    },
    /// A `--vip` that does not parse.
    #[error("--vip: {value:?} is not an IP address with an optional /prefix length")]
    Vip {
        /// The value given.
        value: String,
    },
    /// A `--vip` of another family than `--srcip`: adverts go out in the
    /// source's family, so the instance could not announce that VIP.
    #[error(
        "--vip: {vip} is {family} but --srcip {srcip} is not: give a --srcip of each family in \
         separate files, or leave --srcip out (the interface's address is used)"
    )]
    Family {
        /// The VIP.
        vip: Vip,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The source address given.
        srcip: IpAddr,
    },
    /// The output file exists: `init` never overwrites.
    #[error("{} already exists; not overwriting it (edit it, or give another --output)", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file or its directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        io: std::io::Error,
    },
}

/// The password file as written into the configuration: `--password-file`
/// made absolute (it was given relative to the working directory), else
/// `vhid<N>.pass`, which the daemon reads next to the configuration.
fn password_file_in_config(args: &InitArgs) -> PathBuf {
    match &args.password_file {
        Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        None => PathBuf::from(format!("vhid{}.pass", args.vhid)),
    }
}

/// The password file used when `--password-file` is not given.
pub fn default_password_file(args: &InitArgs) -> PathBuf {
    args.password_file.clone().unwrap_or_else(|| {
        args.output
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("vhid{}.pass", args.vhid))
    })
}

/// TOML string literal for `text` (quotes and escapes as TOML needs).
pub(super) fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The starter configuration text for `args`.
pub fn render(args: &InitArgs) -> Result<String, InitError> {
    let (base, label) = split_alias(&args.interface);
    let bad_label = label.is_some_and(|l| {
        l.len() > MAX_IFNAME_BYTES || l.ends_with(':') || l.contains(char::is_whitespace)
    });
    if check_ifname(base, || At::Flag("INTERFACE")).is_err() || bad_label {
        return Err(InitError::Interface {
            name: args.interface.clone(),
        });
    }
    let mut vips = Vec::new();
    for text in &args.vips {
        let vip = Vip::parse(text).ok_or_else(|| InitError::Vip {
            value: text.clone(),
        })?;
        if let Some(srcip) = args.srcip.filter(|s| s.is_ipv4() != vip.addr.is_ipv4()) {
            return Err(InitError::Family {
                vip,
                family: if vip.addr.is_ipv4() { "IPv4" } else { "IPv6" },
                srcip,
            });
        }
        vips.push(quote(&vip.to_string()));
    }
    let placeholder = vips.is_empty();
    if placeholder {
        vips.push(quote(PLACEHOLDER_VIP));
    }
    let vhid = args.vhid;
    let password_file = password_file_in_config(args);
    let mut out = String::new();
    out.push_str(&format!(
        "# carpd-xdp configuration, written by `carpd-xdp init {}`.\n\
         # Check it with `carpd-xdp check-config {}`; every key is documented in\n\
         # carpd-xdp.toml(5) and /usr/share/doc/carpd-xdp/carpd-xdp.toml.\n\n\
         [global]\n\
         # Receive path: auto (XDP native, then generic, then a packet socket).\n\
         xdp_mode = \"auto\"\n\
         # Answers `carpd-xdp status`.\n\
         status_socket = \"/run/carpd-xdp.sock\"\n\
         # Prometheus metrics, e.g. \"127.0.0.1:9652\"; absent: none.\n\
         # metrics = \"127.0.0.1:9652\"\n\n\
         # One [[instance]] per (interface, vhid); copy the block for more.\n\
         [[instance]]\n",
        args.interface,
        args.output.display()
    ));
    out.push_str(&format!("interface = {}\n", quote(base)));
    if let Some(label) = label {
        out.push_str(&format!(
            "# VIPs are added with this label (UCARP's alias form).\nlabel = {}\n",
            quote(label)
        ));
    }
    out.push_str(&format!(
        "# The same vhid on every host sharing the VIPs (1..=255).\nvhid = {vhid}\n"
    ));
    match args.srcip {
        Some(ip) => out.push_str(&format!("srcip = {}\n", quote(&ip.to_string()))),
        None => out.push_str("# Source of the adverts; absent: the interface's primary address.\n# srcip = \"192.0.2.1\"\n"),
    }
    if placeholder {
        out.push_str(
            "# EDIT: a placeholder, refused until edited; put the shared address here,\n\
             # ADDRESS/PREFIX (e.g. \"192.0.2.10/24\").\n",
        );
    } else {
        out.push_str("# Shared addresses, ADDRESS/PREFIX.\n");
    }
    out.push_str(&format!("vips = [{}]\n", vips.join(", ")));
    out.push_str(&format!(
        "# Advert every advbase_secs + advskew/256 s: the lowest interval is master.\n\
         # 0 on the preferred host, e.g. 100 on the backup.\n\
         advbase_secs = 1\n\
         advskew = {}\n\
         # Take the VIP back from a less preferred master (UCARP's -P).\n\
         preempt = true\n\
         # The shared password: first line of this file, 1..=19 bytes, mode 0600,\n\
         # owned by root. A relative path is relative to this file's directory.\n\
         password_file = {}\n\
         # Scripts run as UCARP runs them: SCRIPT <interface> <vip> [xparam].\n\
         # carpd-xdp adds and removes the VIPs itself; scripts are optional.\n\
         # upscript = \"/etc/carpd-xdp/vip-up.sh\"\n\
         # downscript = \"/etc/carpd-xdp/vip-down.sh\"\n\n\
         # A failing check adds its weight to the demote value (gives the VIP away).\n\
         # [[instance.health_check]]\n\
         # command = [\"/usr/bin/curl\", \"-fsS\", \"-o\", \"/dev/null\", \"http://127.0.0.1/\"]\n\
         # interval_secs = 5\n\
         # timeout_secs = 2\n\
         # weight = 100\n",
        args.advskew,
        quote(&password_file.to_string_lossy())
    ));
    Ok(out)
}

/// Writes the starter configuration (creating its directory), refusing to
/// replace an existing file. Returns the text written.
pub fn write(args: &InitArgs) -> Result<String, InitError> {
    let text = render(args)?;
    let path = &args.output;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|io| InitError::Write {
            path: dir.to_owned(),
            io,
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|io| match io.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Exists { path: path.clone() },
            _ => InitError::Write {
                path: path.clone(),
                io,
            },
        })?;
    file.write_all(text.as_bytes())
        .map_err(|io| InitError::Write {
            path: path.clone(),
            io,
        })?;
    Ok(text)
}

/// What to do after `init`, for the operator.
pub fn next_steps(args: &InitArgs) -> String {
    let password_file = default_password_file(args);
    let vip_hint = if args.vips.is_empty() {
        format!(
            "  edit vips in {} (a placeholder now)\n",
            args.output.display()
        )
    } else {
        String::new()
    };
    format!(
        "wrote {out}\nnext:\n{vip_hint}  put the shared password (1 to 19 bytes, the same on every host) in {pw}:\n    \
         (umask 077; printf '%s\\n' 'PASSWORD' > {pw})\n  \
         carpd-xdp check-config {out}\n  \
         systemctl enable --now carpd-xdp   (or run: carpd-xdp --config {out})\n",
        out = args.output.display(),
        pw = password_file.display(),
    )
}
