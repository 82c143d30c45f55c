//! `carpd-xdp monitor`: attach the receive path to interfaces and print every
//! advert that passes validation, plus the per-reason counters on request.
//! A diagnostic tool for operators and the harness of the receive-path tests.

use std::net::IpAddr;

use carp_common::event::AdvertEvent;
use carp_common::header::CarpHeader;
use carp_common::hmac::HmacKeyError;
use carp_common::maps::{
    Recent, ReplayKey, ReplayState, Settings, REPLAY_STRICT, SETTINGS_PASS_HANDLED,
};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{signal, SignalKind};

use crate::xdp::key::VhidKeys;
use crate::xdp::mode::XdpMode;
use crate::xdp::receive::{ReceiveError, ReceivePath};

/// Arguments of `carpd-xdp monitor`.
#[derive(Clone, Debug, clap::Args)]
pub struct MonitorArgs {
    /// Interface to listen on (repeat for several).
    #[arg(short = 'i', long = "interface", required = true)]
    pub interfaces: Vec<String>,
    /// Virtual host id to accept (repeat for several).
    #[arg(short = 'v', long = "vhid", required = true, value_parser = clap::value_parser!(u8).range(1..))]
    pub vhids: Vec<u8>,
    /// Receive path: auto (native, then skb, then tc, then off), native,
    /// skb, tc or off.
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    pub xdp_mode: XdpMode,
    /// Adverts per second accepted from one source for one vhid (0: no limit).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Burst of adverts accepted from one source for one vhid above the rate.
    #[arg(long, default_value_t = 20)]
    pub burst: u32,
    /// Pass handled adverts on to the kernel stack (so tcpdump sees them).
    #[arg(long)]
    pub pass_handled: bool,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Password of the vhids: the receive path then checks HMACs itself
    /// (with `--addr`, the vhids' virtual addresses, which the HMAC covers).
    /// Read from the environment variable CARPD_MONITOR_PASS to keep it out of ps.
    #[arg(
        long,
        env = "CARPD_MONITOR_PASS",
        hide_env_values = true,
        requires = "addrs"
    )]
    pub pass: Option<String>,
    /// Virtual address of the vhids (repeat for several), for `--pass`.
    #[arg(short = 'a', long = "addr")]
    pub addrs: Vec<IpAddr>,
    /// Apply the strict replay rule in the receive path to every source,
    /// from its first delivered advert on (needs `--pass`).
    #[arg(long, requires = "pass")]
    pub strict: bool,
}

/// Failures of `carpd-xdp monitor`.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// An interface name that does not exist.
    #[error("no such interface: {name}")]
    UnknownInterface {
        /// The name given.
        name: String,
    },
    /// The receive path failed.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// No HMAC key can be built from the password and addresses.
    #[error("vhid {vhid}")]
    Key {
        /// The vhid.
        vhid: u8,
        /// Why (the password is too long).
        #[source]
        source: HmacKeyError,
    },
    /// Signal handlers could not be installed.
    #[error("cannot {op}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The receive path's keys for `vhid` with password `pass` and addresses `addrs`.
fn hmac_keys(pass: &[u8], vhid: u8, addrs: &[IpAddr]) -> Result<VhidKeys, MonitorError> {
    VhidKeys::new(pass, vhid, addrs).map_err(|source| MonitorError::Key { vhid, source })
}

/// Installs the strict replay rule for the source of a delivered advert
/// (kept if one is there already: the receive path tracks the counter).
fn strict_from_now_on(path: &mut ReceivePath, ev: &AdvertEvent) -> Result<(), MonitorError> {
    let h = CarpHeader::from_bytes(&ev.carp);
    let key = ReplayKey {
        ifindex: ev.ifindex,
        vhid: u16::from(h.vhid),
        family: ev.family,
        addr: ev.src,
    };
    let state = ReplayState::new(REPLAY_STRICT, h.counter(), &Recent::EMPTY);
    Ok(path.set_replay_rule(key, &state, false)?)
}

/// Index of the interface called `name`, if it exists.
pub fn ifindex_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

fn describe(ev: &AdvertEvent, json_lines: bool) -> String {
    let h = CarpHeader::from_bytes(&ev.carp);
    let (src, dst) = (ev.source(), ev.destination());
    if json_lines {
        json!({
            "event": "advert",
            "ifindex": ev.ifindex,
            "src": src.to_string(),
            "dst": dst.to_string(),
            "vlan": ev.vlan_id,
            "vhid": h.vhid,
            "advbase": h.advbase,
            "advskew": h.advskew,
            "demote": h.demote,
            "counter": h.counter(),
            "timestamp_ns": ev.timestamp_ns,
        })
        .to_string()
    } else {
        format!(
            "advert vhid {} from {src} to {dst} (ifindex {}): advbase {} advskew {} demote {} counter {}",
            h.vhid,
            ev.ifindex,
            h.advbase,
            h.advskew,
            h.demote,
            h.counter()
        )
    }
}

/// Runs the monitor until SIGINT/SIGTERM (or `quit` on standard input).
///
/// Standard input takes commands, one per line: `counters` prints the
/// per-reason counters; `quit` exits.
pub async fn run(args: MonitorArgs) -> Result<(), MonitorError> {
    let mut interfaces = Vec::new();
    for name in &args.interfaces {
        let ifindex = ifindex_of(name)
            .ok_or_else(|| MonitorError::UnknownInterface { name: name.clone() })?;
        interfaces.push((name.clone(), ifindex));
    }
    let flags = if args.pass_handled {
        SETTINGS_PASS_HANDLED
    } else {
        0
    };
    let mut path = ReceivePath::open(
        &interfaces,
        args.xdp_mode,
        Settings::with_rate(args.rate, args.burst, flags),
    )?;
    for (_, ifindex) in &interfaces {
        for vhid in &args.vhids {
            path.serve_vhid(*ifindex, *vhid, &[])?;
            if let Some(pass) = &args.pass {
                let keys = hmac_keys(pass.as_bytes(), *vhid, &args.addrs)?;
                path.set_hmac_keys(*ifindex, *vhid, Some(&keys))?;
            }
        }
    }
    let modes: Vec<_> = path
        .interfaces()
        .iter()
        .map(|i| json!({"name": i.name, "ifindex": i.ifindex, "mode": i.reception.name(), "fallback_reason": i.fallback_reason}))
        .collect();
    if args.json {
        println!("{}", json!({"event": "ready", "interfaces": modes}));
    } else {
        for i in path.interfaces() {
            println!(
                "listening on {} (ifindex {}) in {} mode",
                i.name,
                i.ifindex,
                i.reception.name()
            );
        }
    }

    let os = |op| move |source| MonitorError::Os { op, source };
    let mut term = signal(SignalKind::terminate()).map_err(os("install the SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(os("install the SIGINT handler"))?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = path.recv() => {
                let ev = ev?;
                if args.strict {
                    strict_from_now_on(&mut path, &ev)?;
                }
                println!("{}", describe(&ev, args.json));
            }
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(cmd)) => match cmd.trim() {
                    "counters" => {
                        let counters = path.counters()?;
                        if args.json {
                            println!("{}", json!({"event": "counters", "counters": counters}));
                        } else {
                            let text: Vec<String> = counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
                            println!("counters {}", text.join(" "));
                        }
                    }
                    "quit" => break,
                    "" => {}
                    other => eprintln!("unknown command {other:?}: use counters or quit"),
                },
                Ok(None) | Err(_) => stdin_open = false,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;

    #[test]
    fn a_password_too_long_is_reported_once_with_its_vhid() {
        let e = hmac_keys(&[b'x'; 30], 5, &[]).unwrap_err();
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            Chain(&e).to_string(),
            "vhid 5: password of 30 bytes is longer than 20 bytes"
        );
    }
}
