//! `carpd-xdp status` without `--socket`: every daemon on the host.
//!
//! A host may run one daemon with a configuration file (its socket
//! `/run/carpd-xdp.sock`) and any number of UCARP-style processes, one per
//! (interface, vhid), each on `/run/carpd-xdp-<interface>-<vhid>.sock`, as
//! init scripts start UCARP. [`sockets`] lists those present in the run
//! directory (`--run-dir`, default `/run`), [`ask`] asks each of them, and
//! [`Answers`] shows them together: one daemon as before, several as one
//! table of every instance with the pid of the daemon that serves it.
//!
//! With `--socket PATH` only that socket is asked, as before.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::client::{duration, instance_notes, instance_row, receive_path, table, HEADER};
use super::{query, render_table, ControlError, StatusReport};
use crate::chain::Chain;

/// Name of the shared socket (a daemon run from a configuration file).
pub const SHARED_SOCKET: &str = "carpd-xdp.sock";

/// Which sockets `status` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Only this one (`--socket`).
    One(PathBuf),
    /// Every carpd-xdp socket in this directory.
    All {
        /// The run directory (`/run`).
        run_dir: PathBuf,
    },
}

/// Whether `name` is a socket name carpd-xdp uses: the shared one, or
/// `carpd-xdp-<interface>-<vhid>.sock` with a vhid of 1..=255.
pub fn is_socket_name(name: &str) -> bool {
    if name == SHARED_SOCKET {
        return true;
    }
    let Some(middle) = name
        .strip_prefix("carpd-xdp-")
        .and_then(|rest| rest.strip_suffix(".sock"))
    else {
        return false;
    };
    match middle.rsplit_once('-') {
        Some((iface, vhid)) => !iface.is_empty() && vhid.parse::<u8>().is_ok_and(|v| v > 0),
        None => false,
    }
}

/// The carpd-xdp sockets in `run_dir`: the shared one first, then the
/// per-instance ones by interface and vhid. Other files are ignored.
pub fn sockets(run_dir: &Path) -> Result<Vec<PathBuf>, ControlError> {
    use std::os::unix::fs::FileTypeExt;
    let entries = std::fs::read_dir(run_dir).map_err(|source| ControlError::Io {
        op: "list",
        path: run_dir.to_owned(),
        source,
    })?;
    let mut found: Vec<(bool, String, u8, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_socket_name(&name) || !entry.file_type().is_ok_and(|t| t.is_socket()) {
            continue;
        }
        let (iface, vhid) = name
            .strip_suffix(".sock")
            .and_then(|n| n.strip_prefix("carpd-xdp-"))
            .and_then(|n| n.rsplit_once('-'))
            .map_or((String::new(), 0), |(i, v)| {
                (i.to_owned(), v.parse().unwrap_or(0))
            });
        found.push((name != SHARED_SOCKET, iface, vhid, entry.path()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, _, path)| path).collect())
}

/// What the daemons asked answered.
#[derive(Debug, Default)]
pub struct Answers {
    /// Each answering daemon's socket and report.
    pub daemons: Vec<(PathBuf, StatusReport)>,
    /// Each socket that did not answer, and why.
    pub errors: Vec<(PathBuf, ControlError)>,
}

/// One daemon in the JSON of several.
#[derive(Serialize)]
struct DaemonJson<'a> {
    /// Its socket.
    socket: &'a Path,
    /// Its report.
    status: &'a StatusReport,
}

/// A socket that did not answer, in the JSON of several.
#[derive(Serialize)]
struct ErrorJson<'a> {
    /// The socket.
    socket: &'a Path,
    /// Why, in words.
    error: String,
}

/// Asks the daemons of `target`. Fails when there is no daemon to ask, or
/// when the only one asked does not answer; otherwise each socket's answer
/// or error is in the result.
pub fn ask(target: &Target) -> Result<Answers, ControlError> {
    let paths = match target {
        Target::One(path) => vec![path.clone()],
        Target::All { run_dir } => match sockets(run_dir)? {
            found if found.is_empty() => {
                return Err(ControlError::NoSockets {
                    run_dir: run_dir.clone(),
                })
            }
            found => found,
        },
    };
    let mut answers = Answers::default();
    for path in paths {
        match query(&path) {
            Ok(report) => answers.daemons.push((path, report)),
            Err(e) => answers.errors.push((path, e)),
        }
    }
    if answers.daemons.is_empty() && answers.errors.len() == 1 {
        if let Some((_, e)) = answers.errors.pop() {
            return Err(e);
        }
    }
    Ok(answers)
}

impl Answers {
    /// Whether every socket asked answered.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// For people: one daemon's table as `--socket` shows it; several
    /// daemons as one line each, then one table of every instance with a
    /// PID column, then each daemon's receive path. Sockets that did not
    /// answer are listed last.
    pub fn render_table(&self) -> String {
        let mut out = match self.daemons.as_slice() {
            [(_, report)] => render_table(report),
            daemons => render_several(daemons),
        };
        if !self.errors.is_empty() {
            out.push_str("\nnot answering:\n");
            for (path, e) in &self.errors {
                let _ = writeln!(out, "  {}: {}", path.display(), Chain(e));
            }
        }
        out
    }

    /// For programs: one daemon that answered alone gives its report as
    /// `--socket` does; otherwise `{"daemons": [{"socket", "status"}],
    /// "errors": [{"socket", "error"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        if let ([(_, report)], true) = (self.daemons.as_slice(), self.complete()) {
            return serde_json::to_value(report).unwrap_or_default();
        }
        let daemons: Vec<DaemonJson<'_>> = self
            .daemons
            .iter()
            .map(|(socket, status)| DaemonJson { socket, status })
            .collect();
        let errors: Vec<ErrorJson<'_>> = self
            .errors
            .iter()
            .map(|(socket, e)| ErrorJson {
                socket,
                error: Chain(e).to_string(),
            })
            .collect();
        serde_json::json!({ "daemons": daemons, "errors": errors })
    }
}

/// An error for `--json` output: `{"error": "..."}`.
pub fn error_json(e: &ControlError) -> serde_json::Value {
    serde_json::json!({ "error": Chain(e).to_string() })
}

/// Several daemons' reports as one table.
fn render_several(daemons: &[(PathBuf, StatusReport)]) -> String {
    let mut out = format!("carpd-xdp: {} daemons\n", daemons.len());
    let lines: Vec<Vec<String>> = daemons
        .iter()
        .map(|(path, r)| {
            vec![
                format!("pid {}", r.pid),
                format!("carpd-xdp {}", r.version),
                format!("up {}", duration(r.uptime_secs)),
                path.display().to_string(),
            ]
        })
        .collect();
    for line in table(&["", "", "", ""], &lines).lines().skip(1) {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = daemons
        .iter()
        .flat_map(|(_, r)| {
            r.instances.iter().map(|i| {
                let mut row = vec![r.pid.to_string()];
                row.extend(instance_row(i));
                row
            })
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no instances\n");
    } else {
        let header: Vec<&str> = std::iter::once("PID").chain(HEADER).collect();
        out.push_str(&table(&header, &rows));
        for (_, r) in daemons {
            instance_notes(&mut out, &r.instances);
        }
    }
    out.push_str("\nreceive path:\n");
    for (_, r) in daemons {
        receive_path(&mut out, r, &format!("pid {}: ", r.pid));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names() {
        for name in [
            "carpd-xdp.sock",
            "carpd-xdp-eth0-1.sock",
            "carpd-xdp-eth0.100-255.sock",
            "carpd-xdp-br-lan-7.sock",
        ] {
            assert!(is_socket_name(name), "{name}");
        }
        for name in [
            "carpd-xdp-eth0-0.sock",
            "carpd-xdp-eth0-256.sock",
            "carpd-xdp-eth0.sock",
            "carpd-xdp--1.sock",
            "carpd-xdp-eth0-1.sock.tmp",
            "carpd-xdp-notify.sock",
            "ucarp.sock",
        ] {
            assert!(!is_socket_name(name), "{name}");
        }
    }

    #[test]
    fn a_ucarp_style_daemons_socket_is_found() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "carpd-xdp",
            "--interface=eth0.100:carp0",
            "--srcip=192.0.2.1",
            "--vhid=42",
            "--pass=secret",
            "--addr=192.0.2.10",
        ])
        .unwrap();
        let config = crate::config::from_cli(&cli.run, &|_| None).unwrap();
        let socket = &config.global.status_socket;
        assert_eq!(
            socket.parent(),
            Some(Path::new(crate::config::DEFAULT_RUN_DIR))
        );
        let name = socket.file_name().unwrap().to_str().unwrap();
        assert!(is_socket_name(name), "{name}");
    }
}
