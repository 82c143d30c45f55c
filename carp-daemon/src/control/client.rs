//! The `carpd-xdp status` side: ask the running daemon, print a table.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ControlError, InstanceReport, StatusReport};

/// How long `query` waits for the daemon.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer read, in bytes.
const MAX_ANSWER_BYTES: u64 = 16 << 20;
/// Characters of a malformed answer quoted in the error.
const QUOTED_CHARS: usize = 200;

/// An error answer: `{"error": "..."}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// Asks the daemon listening at `path` for its status (blocking, at most
/// [`QUERY_TIMEOUT`] for each of connect, send and receive).
pub fn query(path: &Path) -> Result<StatusReport, ControlError> {
    let line = request(path, "status")?;
    parse_answer(path, &line)
}

/// Sends one command line and reads the one-line answer.
fn request(path: &Path, command: &str) -> Result<String, ControlError> {
    let io_err = |op| {
        move |source: io::Error| match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ControlError::Timeout {
                path: path.to_owned(),
                secs: QUERY_TIMEOUT.as_secs(),
            },
            _ => ControlError::Io {
                op,
                path: path.to_owned(),
                source,
            },
        }
    };
    let mut stream = UnixStream::connect(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ControlError::NoDaemon {
            path: path.to_owned(),
        },
        io::ErrorKind::ConnectionRefused => ControlError::NotAnswering {
            path: path.to_owned(),
        },
        _ => ControlError::Io {
            op: "connect to",
            path: path.to_owned(),
            source,
        },
    })?;
    stream
        .set_read_timeout(Some(QUERY_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(QUERY_TIMEOUT)))
        .map_err(io_err("set timeouts on"))?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(io_err("send request to"))?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_ANSWER_BYTES))
        .read_line(&mut line)
        .map_err(io_err("read answer from"))?;
    if line.trim().is_empty() {
        return Err(ControlError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(line)
}

/// A status report, or the daemon's error.
fn parse_answer(path: &Path, line: &str) -> Result<StatusReport, ControlError> {
    if let Ok(ErrorAnswer { error }) = serde_json::from_str(line) {
        return Err(ControlError::Remote { message: error });
    }
    serde_json::from_str(line).map_err(|source| ControlError::Malformed {
        path: path.to_owned(),
        answer: line.trim_end().chars().take(QUOTED_CHARS).collect(),
        source,
    })
}

/// Column titles of the instance table.
pub(super) const HEADER: [&str; 12] = [
    "INTERFACE",
    "VHID",
    "STATE",
    "SINCE",
    "MASTER",
    "LAST ADVERT",
    "ADVBASE/SKEW",
    "DEMOTE",
    "SENT",
    "ACCEPTED",
    "TRANSITIONS",
    "VIPS",
];

/// The report as a table for people: one row per instance, then the
/// receive path per interface and the non-zero counters.
pub fn render_table(report: &StatusReport) -> String {
    let mut out = format!(
        "carpd-xdp {} (pid {}), up {}\n\n",
        report.version,
        report.pid,
        duration(report.uptime_secs)
    );
    if report.instances.is_empty() {
        out.push_str("no instances\n");
    } else {
        let rows: Vec<Vec<String>> = report.instances.iter().map(instance_row).collect();
        out.push_str(&table(&HEADER, &rows));
        sync_group_notes(&mut out, &report.instances);
        instance_notes(&mut out, &report.instances);
    }
    out.push_str("\nreceive path:\n");
    if report.interfaces.is_empty() {
        out.push_str("  none\n");
    }
    receive_path(&mut out, report, "");
    out
}

/// One line per sync group: its state, why, and its members.
fn sync_group_notes(out: &mut String, instances: &[InstanceReport]) {
    let mut groups: Vec<&InstanceReport> = Vec::new();
    for i in instances.iter().filter(|i| i.sync_group.is_some()) {
        if !groups.iter().any(|g| g.sync_group == i.sync_group) {
            groups.push(i);
        }
    }
    for g in groups {
        let members: Vec<String> = instances
            .iter()
            .filter(|i| i.sync_group == g.sync_group)
            .map(|i| format!("{} vhid {}", i.interface, i.vhid))
            .collect();
        let _ = writeln!(
            out,
            "sync group {}: {}{} (members {})",
            g.sync_group.as_deref().unwrap_or_default(),
            g.group_state.as_deref().unwrap_or("-"),
            g.group_reason
                .as_deref()
                .map(|why| format!(", {why}"))
                .unwrap_or_default(),
            members.join(", ")
        );
    }
}

/// The lines under the instance table: rejects and unknown health-check
/// runs of each instance that has any.
pub(super) fn instance_notes(out: &mut String, instances: &[InstanceReport]) {
    for i in instances {
        let rejects = nonzero(i.rejects.iter());
        if !rejects.is_empty() {
            let _ = writeln!(out, "rejects {} vhid {}: {rejects}", i.interface, i.vhid);
        }
        if let Some(mac) = &i.virtual_mac {
            let on = match &i.virtual_mac_link {
                Some(link) => format!("on {link}"),
                None => "not in use (not master)".into(),
            };
            let _ = writeln!(
                out,
                "virtual MAC {} vhid {}: {mac} {on}",
                i.interface, i.vhid
            );
        }
        if i.health_unknown > 0 {
            let _ = writeln!(
                out,
                "health checks {} vhid {}: {} runs could not be started (result unknown)",
                i.interface, i.vhid, i.health_unknown
            );
        }
    }
}

/// One line per interface of `report`'s receive path, then its counters,
/// each line after `prefix`.
pub(super) fn receive_path(out: &mut String, report: &StatusReport, prefix: &str) {
    for iface in &report.interfaces {
        let _ = write!(
            out,
            "  {prefix}{} (ifindex {}): {}",
            iface.name, iface.ifindex, iface.mode
        );
        if let Some(reason) = &iface.fallback_reason {
            let what = if iface.mode == "tc" {
                "no XDP"
            } else {
                "fallback"
            };
            let _ = write!(out, " ({what}: {reason})");
        }
        out.push('\n');
    }
    let counters = nonzero(report.counters.iter());
    let indent = if prefix.is_empty() { "" } else { "  " };
    if counters.is_empty() {
        let _ = writeln!(out, "{indent}{prefix}receive counters: all zero");
    } else {
        let _ = writeln!(out, "{indent}{prefix}receive counters: {counters}");
    }
}

/// The cells of one instance's row.
pub(super) fn instance_row(i: &InstanceReport) -> Vec<String> {
    let state = if i.ifindex.is_none() {
        format!("{} (no interface)", i.state)
    } else if i.held {
        format!("{} (held)", i.state)
    } else {
        i.state.clone()
    };
    let since = match (&i.last_change_reason, i.last_change_age_ms) {
        (Some(why), Some(ms)) => format!("{} ago: {why}", age(ms)),
        _ => "-".into(),
    };
    let master = match (&i.master, &i.master_kind) {
        (Some(m), Some(kind)) if i.state != "MASTER" => format!("{m} ({kind})"),
        (Some(m), _) => m.clone(),
        (None, _) => "-".into(),
    };
    let mut demote = i.demote.to_string();
    let sources: Vec<String> = [("health", i.demote_health), ("VIPs", i.demote_vips)]
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(name, v)| format!("{name} {v}"))
        .collect();
    if !sources.is_empty() {
        let _ = write!(demote, " ({})", sources.join(", "));
    }
    vec![
        i.label.clone().unwrap_or_else(|| i.interface.clone()),
        i.vhid.to_string(),
        state,
        since,
        master,
        i.last_advert_age_ms
            .map_or_else(|| "-".into(), |ms| format!("{} ago", age(ms))),
        format!("{}/{}", i.advbase_secs, i.advskew),
        demote,
        i.adverts_sent.to_string(),
        i.adverts_accepted.to_string(),
        i.transitions.to_string(),
        i.vips.join(","),
    ]
}

/// Left-aligned columns two spaces apart, no trailing blanks.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `name total, ...` of the non-zero totals.
fn nonzero<'a>(totals: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    totals
        .filter(|(_, total)| **total != 0)
        .map(|(name, total)| format!("{name} {total}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An advert age: `0.3s` under 10 s, then whole units.
fn age(ms: u64) -> String {
    if ms < 10_000 {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    } else {
        duration(ms / 1000)
    }
}

/// `45s`, `4m05s`, `1h02m03s`, `3d04h05m`.
pub(super) fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages_read_naturally() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(245), "4m05s");
        assert_eq!(duration(3723), "1h02m03s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d04h05m");
        assert_eq!(age(0), "0.0s");
        assert_eq!(age(2_345), "2.3s");
        assert_eq!(age(12_345), "12s");
    }

    #[test]
    fn error_answers_and_garbage_are_told_apart() {
        let path = Path::new("/run/x.sock");
        let err = parse_answer(path, "{\"error\": \"unknown command \\\"x\\\"\"}\n").unwrap_err();
        assert!(matches!(err, ControlError::Remote { ref message } if message.contains("unknown")));
        let err = parse_answer(path, "hello\n").unwrap_err();
        assert!(err.to_string().contains("\"hello\""), "{err}");
        assert!(err.to_string().contains("/run/x.sock"), "{err}");
    }
}
