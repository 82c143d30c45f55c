//! Log set-up: `tracing` to stderr (text or JSON), to syslog with UCARP's
//! `-f` facility, or both.
//!
//! - Level `info`, `debug` with `-D`; `RUST_LOG` overrides both.
//! - Under systemd (`$JOURNAL_STREAM` names our stderr) lines carry no
//!   timestamp (journald adds its own) and start with the `<N>` priority
//!   prefix journald reads, so levels survive into the journal.
//! - With a facility, every event also goes to syslog(3) under ident
//!   `carpd-xdp` with the priority of its level, except when stderr already
//!   goes to journald: the journal is then the system log, and a syslog copy
//!   would put every line in it twice.

use std::ffi::CString;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, ParseError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::{LogFormat, Logging};

/// Ident under which syslog lines are logged.
const SYSLOG_IDENT: &std::ffi::CStr = c"carpd-xdp";

/// Errors of the log set-up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` is not a valid filter.
    #[error("invalid RUST_LOG {value:?}")]
    Filter {
        /// The value given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: ParseError,
    },
    /// A global subscriber was already installed.
    #[error("logging already initialised")]
    AlreadySet(#[source] tracing_subscriber::util::TryInitError),
}

/// Where the process runs, as far as log formatting cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Environment {
    /// stderr is connected to journald.
    journal: bool,
    /// stderr is a terminal (colours).
    terminal: bool,
}

impl Environment {
    /// Looks at `$JOURNAL_STREAM` and stderr.
    fn detect() -> Environment {
        let journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .and_then(|v| parse_journal_stream(&v))
            .is_some_and(|id| stderr_id() == Some(id));
        Environment {
            journal,
            terminal: io::stderr().is_terminal(),
        }
    }
}

/// The subscriber below the output layers.
type Base = Layered<EnvFilter, Registry>;
/// One output layer.
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the global subscriber. `foreground`: also log to stderr (a
/// daemonized process has /dev/null there, so only syslog is used).
pub fn init(log: &Logging, foreground: bool) -> Result<(), LoggingError> {
    let filter = filter(log.debug, std::env::var("RUST_LOG").ok())?;
    let env = Environment::detect();
    let stderr = foreground.then_some(io::stderr);
    // Under journald, stderr is the system log already.
    let facility = log.facility.filter(|_| !(foreground && env.journal));
    if let Some(facility) = facility {
        // SAFETY: the ident is a 'static NUL-terminated string, as openlog(3)
        // requires (it keeps the pointer).
        unsafe { libc::openlog(SYSLOG_IDENT.as_ptr(), libc::LOG_PID, facility.to_libc()) };
    }
    let syslog = facility.map(|f| Syslog {
        facility: f.to_libc(),
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(layers(log.format, env, stderr, syslog))
        .try_init()
        .map_err(LoggingError::AlreadySet)
}

/// `RUST_LOG` if set, else `info` (`debug` with `-D`).
fn filter(debug: bool, rust_log: Option<String>) -> Result<EnvFilter, LoggingError> {
    match rust_log.filter(|v| !v.trim().is_empty()) {
        Some(value) => EnvFilter::try_new(&value).map_err(|source| LoggingError::Filter {
            value: value.clone(),
            source,
        }),
        None => Ok(EnvFilter::new(if debug { "debug" } else { "info" })),
    }
}

/// The output layers: stderr in `format` (if given a writer), syslog (if
/// given).
fn layers<W, S>(
    format: LogFormat,
    env: Environment,
    stderr: Option<W>,
    syslog: Option<S>,
) -> Vec<BoxedLayer>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    S: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::fmt;
    let mut out: Vec<BoxedLayer> = Vec::new();
    if let Some(w) = stderr {
        out.push(match (format, env.journal) {
            (LogFormat::Text, false) => fmt::layer().with_writer(w).with_ansi(env.terminal).boxed(),
            (LogFormat::Text, true) => fmt::layer()
                .with_writer(Journald(w))
                .with_ansi(false)
                .without_time()
                .boxed(),
            (LogFormat::Json, false) => fmt::layer().json().with_writer(w).boxed(),
            (LogFormat::Json, true) => fmt::layer()
                .json()
                .with_writer(Journald(w))
                .without_time()
                .boxed(),
        });
    }
    if let Some(s) = syslog {
        out.push(
            fmt::layer()
                .with_writer(s)
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .boxed(),
        );
    }
    out
}

/// The syslog(3) priority of a tracing level.
fn priority(level: Level) -> libc::c_int {
    match level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        Level::DEBUG | Level::TRACE => libc::LOG_DEBUG,
    }
}

/// `dev:ino` of `$JOURNAL_STREAM`.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// (device, inode) of our stderr.
fn stderr_id() -> Option<(u64, u64)> {
    let fd = io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// A finished log line as syslog(3) takes it: no trailing newline, no NUL.
fn syslog_message(line: &[u8]) -> CString {
    let trimmed = line.trim_ascii_end();
    let bytes: Vec<u8> = trimmed.iter().copied().filter(|b| *b != 0).collect();
    CString::new(bytes).unwrap_or_default()
}

/// Writes each event to syslog(3) with the facility and its level's
/// priority.
struct Syslog {
    /// `LOG_*` facility value.
    facility: libc::c_int,
}

/// One event's line, sent to syslog when dropped (the fmt layer writes an
/// event then drops its writer).
struct SyslogLine {
    /// Facility | priority.
    priority: libc::c_int,
    /// The formatted line.
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.line(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        self.line(*meta.level())
    }
}

impl Syslog {
    /// An empty line for an event at `level`.
    fn line(&self, level: Level) -> SyslogLine {
        SyslogLine {
            priority: self.facility | priority(level),
            buf: Vec::new(),
        }
    }
}

impl Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let message = syslog_message(&self.buf);
        // SAFETY: both strings are NUL-terminated and outlive the call; the
        // format "%s" consumes exactly the one string argument.
        unsafe { libc::syslog(self.priority, c"%s".as_ptr(), message.as_ptr()) };
    }
}

/// Wraps a writer so each line starts with journald's `<N>` priority
/// prefix (sd-daemon(3)).
struct Journald<W>(W);

/// One event's line, written with its prefix when dropped.
struct JournaldLine<W: Write> {
    /// Priority of the event.
    priority: libc::c_int,
    /// The formatted line.
    buf: Vec<u8>,
    /// Where it goes.
    out: W,
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Journald<W> {
    type Writer = JournaldLine<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JournaldLine {
            priority: libc::LOG_INFO,
            buf: Vec::new(),
            out: self.0.make_writer(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        JournaldLine {
            priority: priority(*meta.level()),
            buf: Vec::new(),
            out: self.0.make_writer_for(meta),
        }
    }
}

impl<W: Write> Write for JournaldLine<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for JournaldLine<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut line = format!("<{}>", self.priority).into_bytes();
        line.extend_from_slice(&self.buf);
        // Nowhere to report a failure to log.
        let _ = self.out.write_all(&line);
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what is written, one entry per writer (event).
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct CaptureLine(Capture, Vec<u8>);

    impl Write for CaptureLine {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.1.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for CaptureLine {
        fn drop(&mut self) {
            if !self.1.is_empty() {
                let line = String::from_utf8_lossy(&self.1).into_owned();
                self.0 .0.lock().unwrap().push(line);
            }
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = CaptureLine;
        fn make_writer(&'a self) -> CaptureLine {
            CaptureLine(self.clone(), Vec::new())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Logs a fixed set of events through the given set-up.
    fn run(format: LogFormat, journal: bool, debug: bool) -> Vec<String> {
        let capture = Capture::default();
        let env = Environment {
            journal,
            terminal: false,
        };
        let subscriber = tracing_subscriber::registry()
            .with(filter(debug, None).unwrap())
            .with(layers(format, env, Some(capture.clone()), None::<Syslog>));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(vhid = 3, iface = "eth0", "master down");
            tracing::debug!("detail");
        });
        capture.lines()
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), libc::LOG_ERR);
        assert_eq!(priority(Level::WARN), libc::LOG_WARNING);
        assert_eq!(priority(Level::INFO), libc::LOG_INFO);
        assert_eq!(priority(Level::DEBUG), libc::LOG_DEBUG);
        assert_eq!(priority(Level::TRACE), libc::LOG_DEBUG);
    }

    #[test]
    fn text_lines_have_a_timestamp_except_under_journald() {
        let plain = run(LogFormat::Text, false, false);
        assert_eq!(plain.len(), 1, "debug filtered out at info: {plain:?}");
        let line = &plain[0];
        assert!(
            line.contains("WARN") && line.contains("master down"),
            "{line}"
        );
        assert!(
            line.contains("vhid=3") && line.contains("iface=\"eth0\""),
            "{line}"
        );
        assert!(
            line.as_bytes()[0].is_ascii_digit(),
            "timestamp first: {line}"
        );

        let journal = run(LogFormat::Text, true, true);
        assert_eq!(journal.len(), 2, "debug shown with -D: {journal:?}");
        assert!(
            journal[0].starts_with("<4>") && journal[0].contains("master down"),
            "{journal:?}"
        );
        assert!(
            !journal[0].as_bytes()[3].is_ascii_digit(),
            "no timestamp: {journal:?}"
        );
        assert!(journal[1].starts_with("<7>"), "{journal:?}");
    }

    #[test]
    fn json_lines_parse_and_carry_the_fields() {
        for journal in [false, true] {
            let lines = run(LogFormat::Json, journal, false);
            assert_eq!(lines.len(), 1);
            let text = lines[0].strip_prefix("<4>").unwrap_or(&lines[0]);
            assert_eq!(lines[0].starts_with("<4>"), journal);
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["level"], "WARN");
            assert_eq!(v["fields"]["message"], "master down");
            assert_eq!(v["fields"]["vhid"], 3);
            assert_eq!(v.get("timestamp").is_some(), !journal, "{v}");
        }
    }

    #[test]
    fn rust_log_overrides_and_bad_values_are_reported() {
        assert!(filter(false, Some("carp_daemon=trace".into())).is_ok());
        let err = filter(false, Some("carp_daemon=loud".into())).unwrap_err();
        assert!(err.to_string().contains("\"carp_daemon=loud\""), "{err}");
        assert_eq!(filter(true, Some(" ".into())).unwrap().to_string(), "debug");
    }

    #[test]
    fn journal_stream_and_syslog_lines_are_parsed_and_cleaned() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
        assert_eq!(syslog_message(b"vhid=1 up\0x\n").as_bytes(), b"vhid=1 upx");
    }

    #[test]
    fn syslog_lines_carry_facility_and_level() {
        let syslog = Syslog {
            facility: libc::LOG_LOCAL3,
        };
        let line = syslog.line(Level::WARN);
        assert_eq!(line.priority, libc::LOG_LOCAL3 | libc::LOG_WARNING);
        assert_eq!(
            syslog.make_writer().priority,
            libc::LOG_LOCAL3 | libc::LOG_INFO
        );
    }
}
