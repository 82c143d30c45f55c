//! `carp-flood`: sends the frames of a frame file out of an interface of
//! the current network namespace, from several threads, and prints one JSON
//! line with what it sent. See the library documentation and `--help`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use carp_flood::flood::{self, Schedule, Source};
use carp_flood::mmsg::Mmsg;
use carp_flood::ring::TxRing;
use carp_flood::{frames, socket, Sender};

const USAGE: &str = "\
usage: carp-flood --iface IFACE --frames FILE [--threads N] [--seconds S] [--rate PPS]
                  [--spoof-sources N] [--method ring|mmsg]

Sends the frames of FILE (each prefixed by its length, a big-endian u16) in a
cycle out of IFACE of the current network namespace, then prints
{\"sent\": u64, \"seconds\": f64, \"pps\": f64, \"threads\": n}.

  --iface IFACE        interface to send on
  --frames FILE        the frames
  --threads N          sending threads, one socket each (default: CPUs)
  --seconds S          how long to send, fractions allowed (default 5)
  --rate PPS           total frames per second over all threads
                       (default 0: as fast as the kernel takes them)
  --spoof-sources N    IPv4 frames: source address = own + (k mod N), k the
                       running frame number, header checksum fixed (default 0: off)
  --method ring|mmsg   PACKET_TX_RING (default) or sendmmsg
";

/// Set by SIGINT / SIGTERM: the threads stop and the totals are printed.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// How frames are handed to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// `PACKET_TX_RING` and `send(fd, NULL, 0, MSG_DONTWAIT)`.
    Ring,
    /// `sendmmsg` of a batch of buffers.
    Mmsg,
}

/// The command line.
#[derive(Debug)]
struct Args {
    iface: String,
    frames: String,
    threads: usize,
    seconds: f64,
    rate: f64,
    spoof_sources: u32,
    method: Method,
}

/// Parses the command line (`--opt VALUE` or `--opt=VALUE`); `None` for
/// `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>> {
    let mut iface = None;
    let mut frames = None;
    let mut threads = None;
    let mut seconds: f64 = 5.0;
    let mut rate: f64 = 0.0;
    let mut spoof_sources = 0;
    let mut method = Method::Ring;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| anyhow!("{name} needs a value"))
        };
        match name.as_str() {
            "--iface" => iface = Some(value()?),
            "--frames" => frames = Some(value()?),
            "--threads" => {
                let v = value()?;
                let n: usize = v.parse().with_context(|| format!("--threads {v:?}"))?;
                if n == 0 {
                    bail!("--threads must be at least 1");
                }
                threads = Some(n);
            }
            "--seconds" => {
                let v = value()?;
                seconds = v.parse().with_context(|| format!("--seconds {v:?}"))?;
                if !(seconds > 0.0 && seconds.is_finite()) {
                    bail!("--seconds must be a positive number, not {v}");
                }
            }
            "--rate" => {
                let v = value()?;
                rate = v.parse().with_context(|| format!("--rate {v:?}"))?;
                if !(rate >= 0.0 && rate.is_finite()) {
                    bail!("--rate must be 0 or a positive number, not {v}");
                }
            }
            "--spoof-sources" => {
                let v = value()?;
                spoof_sources = v
                    .parse()
                    .with_context(|| format!("--spoof-sources {v:?}"))?;
            }
            "--method" => {
                method = match value()?.as_str() {
                    "ring" => Method::Ring,
                    "mmsg" => Method::Mmsg,
                    other => bail!("--method is ring or mmsg, not {other:?}"),
                }
            }
            _ => bail!("unknown argument {arg:?} (see --help)"),
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Some(Args {
        iface: iface.context("--iface is required")?,
        frames: frames.context("--frames is required")?,
        threads: threads.unwrap_or(cpus),
        seconds,
        rate,
        spoof_sources,
        method,
    }))
}

/// Opens the senders, runs the threads, returns (frames sent, seconds).
fn flood(args: &Args) -> Result<(u64, f64)> {
    let bytes = std::fs::read(&args.frames).with_context(|| format!("read {}", args.frames))?;
    let frames = frames::parse(&bytes).with_context(|| format!("frame file {}", args.frames))?;
    let source = Arc::new(Source::new(frames, args.spoof_sources));
    let ifindex = socket::if_index(&args.iface)?;
    let senders: Vec<Box<dyn Sender>> = (0..args.threads)
        .map(|_| -> Result<Box<dyn Sender>> {
            Ok(match args.method {
                Method::Ring => Box::new(TxRing::open(ifindex, source.max_len())?),
                Method::Mmsg => Box::new(Mmsg::open(ifindex, source.max_len())?),
            })
        })
        .collect::<Result<_>>()
        .with_context(|| format!("open a sender on {}", args.iface))?;
    let start = Instant::now();
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(thread, mut sender)| {
            let source = source.clone();
            let schedule = Schedule {
                thread,
                threads: args.threads,
                start,
                duration: Duration::from_secs_f64(args.seconds),
                rate: args.rate / args.threads as f64,
            };
            std::thread::spawn(move || flood::run(sender.as_mut(), &source, schedule, &STOP))
        })
        .collect();
    let mut sent = 0;
    let mut first_error = None;
    for (i, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(Ok(n)) => sent += n,
            Ok(Err(e)) => {
                // One failed thread stops the others.
                STOP.store(true, Ordering::SeqCst);
                first_error.get_or_insert(anyhow!(e).context(format!("thread {i}")));
            }
            Err(_) => {
                STOP.store(true, Ordering::SeqCst);
                first_error.get_or_insert(anyhow!("thread {i} panicked"));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok((sent, start.elapsed().as_secs_f64()))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("carp-flood: {e:#}");
            return ExitCode::from(1);
        }
    };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    match flood(&args) {
        Ok((sent, seconds)) => {
            let pps = if seconds > 0.0 {
                sent as f64 / seconds
            } else {
                0.0
            };
            println!(
                "{{\"sent\": {sent}, \"seconds\": {seconds:.6}, \"pps\": {pps:.1}, \"threads\": {}}}",
                args.threads
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("carp-flood: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Args>> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn the_documented_command_line_parses_with_its_defaults() {
        let a = parse("--iface eth0 --frames /tmp/f").unwrap().unwrap();
        assert_eq!((a.iface.as_str(), a.frames.as_str()), ("eth0", "/tmp/f"));
        assert_eq!((a.seconds, a.rate, a.spoof_sources), (5.0, 0.0, 0));
        assert!(a.threads >= 1);
        assert_eq!(a.method, Method::Ring);
        let a = parse("--iface=eth1 --frames f --threads 3 --seconds 0.5 --rate 10 --spoof-sources 1000000 --method mmsg")
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.threads, a.seconds, a.rate, a.spoof_sources, a.method),
            (3, 0.5, 10.0, 1_000_000, Method::Mmsg)
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |l: &str| format!("{:#}", parse(l).unwrap_err());
        assert!(err("--frames f").contains("--iface is required"));
        assert!(err("--iface eth0").contains("--frames is required"));
        assert!(err("--iface eth0 --frames f --threads 0").contains("at least 1"));
        assert!(err("--iface eth0 --frames f --seconds -1").contains("positive"));
        assert!(err("--iface eth0 --frames f --rate x").contains("--rate \"x\""));
        assert!(err("--iface eth0 --frames f --bogus").contains("unknown argument"));
        assert!(err("--iface").contains("--iface needs a value"));
        assert!(parse("--help").unwrap().is_none());
    }
}
