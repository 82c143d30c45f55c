//! `carpd-xdp status --watch [SECS]`: the status again every SECS seconds
//! until interrupted, to follow a failover or a migration as it happens.
//!
//! On a terminal each round redraws the screen (a time line, then the table);
//! otherwise, and with `--json`, rounds follow each other (one JSON object
//! per line with `--json`), so the output can be logged or piped. A daemon
//! that is not answering is reported on the same output and asked again at
//! the next round; the watch ends with the process (Ctrl-C) or when its
//! output is closed.

use std::io::{self, IsTerminal as _, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::find::{ask, Target};

use crate::chain::Chain;

/// Shortest interval accepted, so a typo cannot flood the daemon.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Why a `--watch` interval is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum IntervalError {
    /// Not a decimal number.
    #[error("{text:?} is not a number of seconds")]
    NotANumber {
        /// The argument as given.
        text: String,
    },
    /// Outside [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    #[error("{secs} is not in 0.1..=3600 seconds")]
    OutOfRange {
        /// The interval asked for, seconds.
        secs: f64,
    },
}

/// Parses `--watch`'s SECS (a decimal number of seconds, 0.1 to 3600).
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let secs: f64 = text.parse().map_err(|_| IntervalError::NotANumber {
        text: text.to_owned(),
    })?;
    let range = MIN_INTERVAL.as_secs_f64()..=MAX_INTERVAL.as_secs_f64();
    if !range.contains(&secs) {
        return Err(IntervalError::OutOfRange { secs });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `HH:MM:SS` (UTC) of `now`, for the time line of each round.
fn clock(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One round as text: the reports or the error, in the chosen form.
fn round(target: &Target, json: bool, interval: Duration) -> String {
    let time = clock(SystemTime::now());
    match (ask(target), json) {
        (Ok(answers), true) => format!("{}\n", answers.to_json()),
        (Ok(answers), false) => format!(
            "{time} UTC  every {:.1} s  {}\n{}",
            interval.as_secs_f64(),
            match target {
                Target::One(socket) => socket.display().to_string(),
                Target::All { run_dir } => format!("every daemon in {}", run_dir.display()),
            },
            answers.render_table()
        ),
        (Err(e), true) => format!(
            "{}\n",
            serde_json::json!({ "error": Chain(&e).to_string(), "time_utc": time })
        ),
        (Err(e), false) => format!("{time} UTC  carpd-xdp: {} (asking again)\n", Chain(&e)),
    }
}

/// Prints the status every `interval` to stdout until stdout is closed.
pub fn run(target: &Target, interval: Duration, json: bool) -> io::Result<()> {
    let redraw = !json && io::stdout().is_terminal();
    loop {
        let text = round(target, json, interval);
        let mut out = io::stdout().lock();
        let written = if redraw {
            // Cursor home, clear the screen.
            write!(out, "\x1b[H\x1b[2J{text}")
        } else if json {
            write!(out, "{text}")
        } else {
            writeln!(out, "{text}")
        };
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
        drop(out);
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_decimal_seconds_within_bounds() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_interval("0.05").unwrap_err().to_string(),
            "0.05 is not in 0.1..=3600 seconds"
        );
        assert_eq!(
            parse_interval("soon").unwrap_err().to_string(),
            "\"soon\" is not a number of seconds"
        );
        assert!(parse_interval("NaN").is_err());
        assert!(parse_interval("7200").is_err());
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        let t = UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 3600 * 4 + 60 * 5 + 6);
        assert_eq!(clock(t), "04:05:06");
    }
}
