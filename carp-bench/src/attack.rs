//! The attack section (issue 19): one captured advert of the master,
//! re-sent after the master died, and how long the backup then takes to
//! take over, carpd-xdp (default settings: replay mode `auto`, no
//! allow-list) and UCARP side by side. The rows are the issue's
//! measurement:
//!
//! - (a) re-sent from A's address and MAC, 10 per second;
//! - (b) from a fresh address and UCARP's virtual MAC, once a second;
//! - (c) from A's address and UCARP's virtual MAC, once a second, right
//!   after B's daemon restarted (SIGTERM, started again with its state).
//!
//! Time is from the cut of A's link to B's first reply at the VIP; the
//! bench waits at most a few master-down intervals.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use carp_common::constants::CARP_HEADER_LEN;
use serde_json::{json, Value};

use super::daemons::{Impl, Timers};
use super::failover::{ms, Fault, Pair};
use super::generator::{self, Attack, Generator};
use super::probe::Prober;
use super::stage::{Stage, VHID};
use super::sys;

/// Where the attacker re-sends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// (a) A's address and MAC, 10/s.
    MasterAddressAndMac,
    /// (b) a fresh address, UCARP's virtual MAC, 1/s.
    FreshAddressUcarpMac,
    /// (c) A's address, UCARP's virtual MAC, 1/s, after B restarted.
    AfterBackupRestart,
}

impl Row {
    /// Every row, in the report's order.
    pub const ALL: [Row; 3] = [
        Row::MasterAddressAndMac,
        Row::FreshAddressUcarpMac,
        Row::AfterBackupRestart,
    ];

    /// The row's words in the report.
    pub fn name(self) -> &'static str {
        match self {
            Row::MasterAddressAndMac => "A's address and MAC, 10/s",
            Row::FreshAddressUcarpMac => {
                "a fresh address and UCARP's MAC 00:00:5e:00:00:<vhid>, 1/s"
            }
            Row::AfterBackupRestart => {
                "A's address and UCARP's MAC, 1/s, right after B's daemon restarted"
            }
        }
    }

    /// Frames per second.
    fn rate(self) -> u32 {
        match self {
            Row::MasterAddressAndMac => 10,
            _ => 1,
        }
    }
}

/// One measurement.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Implementation (A and B alike).
    pub which: Impl,
    /// Where the attacker re-sent from.
    pub row: Row,
    /// Link cut to B's first reply at the VIP, in ms; `None`: no takeover
    /// within `waited_ms`.
    pub takeover_ms: Option<f64>,
    /// How long the bench waited, in ms.
    pub waited_ms: f64,
    /// B's master-down interval, in ms.
    pub master_down_ms: f64,
}

/// The destination MAC of CARP adverts (IPv4 multicast 224.0.0.18).
const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

/// The captured advert (a whole frame) sent from `mac` and `ip`, to the
/// CARP group; IPv4 header checksum redone, CARP bytes untouched (the HMAC
/// covers neither the MAC nor the address).
fn sent_from(advert: &[u8], mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = advert[..(14 + 20 + CARP_HEADER_LEN).min(advert.len())].to_vec();
    f[..6].copy_from_slice(&GROUP_MAC);
    f[6..12].copy_from_slice(&mac);
    f[26..30].copy_from_slice(&ip);
    f[24..26].fill(0);
    let sum = carp_common::checksum::internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Every row for `which`, each on a pair of its own at UCARP's default
/// timers; `flood` is carp-flood.
pub fn measure(
    stage: &Stage,
    daemon: &Path,
    flood: &Path,
    which: Impl,
    prober: &Prober,
) -> Result<Vec<Outcome>> {
    let timers = Timers::DEFAULTS;
    let mut out = Vec::new();
    for row in Row::ALL {
        let mut pair = Pair::start(stage, daemon, which, timers, prober)?;
        let master_down = pair.master_down();
        let limit = master_down * 4;
        let advert = generator::capture_advert(
            &stage.attacker.ns,
            stage.a.ip,
            VHID,
            Duration::from_secs(5),
        )?;
        let ucarp_mac = [0, 0, 0x5e, 0, 0, VHID];
        let fresh = [stage.a.ip[0], stage.a.ip[1], stage.a.ip[2], 99];
        let frame = match row {
            Row::MasterAddressAndMac => sent_from(&advert, stage.a.mac, stage.a.ip),
            Row::FreshAddressUcarpMac => sent_from(&advert, ucarp_mac, fresh),
            Row::AfterBackupRestart => sent_from(&advert, ucarp_mac, stage.a.ip),
        };
        // Let B hear a few adverts after the one captured.
        sys::pause(pair.interval() * 2)?;
        let cut = pair.inject(Fault::LinkDown)?;
        if row == Row::AfterBackupRestart {
            pair.restart_b()?;
        }
        let generator = Generator::start(
            flood,
            &stage.attacker.ns,
            &stage.dir.join("attack-resend.bin"),
            &[frame],
            Attack {
                duration: limit * 2,
                rate: row.rate(),
                spoof_sources: 0,
                threads: Some(1),
            },
        )?;
        let deadline = cut + limit;
        let reply = loop {
            sys::pause(Duration::from_millis(10))?;
            if let Some(r) = prober.first_reply_from(stage.b.mac, cut) {
                break Some(r.at);
            }
            if Instant::now() > deadline {
                break None;
            }
        };
        let sent = generator.finish()?;
        let o = Outcome {
            which,
            row,
            takeover_ms: reply.map(|at| ms(at - cut)),
            waited_ms: ms(limit),
            master_down_ms: ms(master_down),
        };
        println!(
            "bench:   {} attack, {}: {} ({} frames re-sent)",
            which.name(),
            row.name(),
            o.takeover_ms.map_or(
                format!("no takeover within {:.0} s", limit.as_secs_f64()),
                |v| format!("takeover after {v:.0} ms")
            ),
            sent.frames
        );
        out.push(o);
        pair.stop();
        // A's cable back in for the next pair.
        sys::run_in(&stage.a.ns, || sys::set_link("eth0", true))?;
    }
    Ok(out)
}

/// The section of the report: one row per attack, one column per
/// implementation.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut m = String::from(
        "## One captured advert re-sent after the master died (issue 19)\n\n\
         A is master, B backup, both at UCARP's default timers (carpd-xdp with its \
         default settings: replay mode `auto`, no allow-list); the attacker captured one \
         of A's adverts, A's link is cut, and the attacker re-sends that advert. Time from \
         the cut to B's first reply at the VIP.\n\n\
         | re-sent from | carpd-xdp | UCARP |\n|---|---|---|\n",
    );
    for row in Row::ALL {
        let cell = |which: Impl| {
            outcomes
                .iter()
                .find(|o| o.row == row && o.which == which)
                .map_or("–".to_string(), |o| {
                    o.takeover_ms.map_or(
                        format!("**never** (waited {:.0} s)", o.waited_ms / 1e3),
                        |v| format!("{v:.0} ms (master-down {:.0} ms)", o.master_down_ms),
                    )
                })
        };
        m += &format!(
            "| {} | {} | {} |\n",
            row.name(),
            cell(Impl::Carpd),
            cell(Impl::Ucarp)
        );
    }
    m.push('\n');
    m
}

/// The section in the JSON report.
pub fn json(outcomes: &[Outcome]) -> Value {
    Value::Array(
        outcomes
            .iter()
            .map(|o| {
                json!({
                    "implementation": o.which.name(),
                    "resent_from": o.row.name(),
                    "takeover_ms": o.takeover_ms,
                    "waited_ms": o.waited_ms,
                    "master_down_ms": o.master_down_ms,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use carp_common::checksum::verify;

    use super::*;

    #[test]
    fn a_resent_advert_keeps_its_carp_bytes_and_has_a_valid_ip_checksum() {
        let mut advert = vec![0u8; 14 + 20 + CARP_HEADER_LEN];
        advert[14] = 0x45;
        advert[14 + 9] = 112;
        for (i, b) in advert[34..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let f = sent_from(&advert, [0, 0, 0x5e, 0, 0, 7], [10, 0, 0, 99]);
        assert_eq!(&f[6..12], &[0, 0, 0x5e, 0, 0, 7]);
        assert_eq!(&f[26..30], &[10, 0, 0, 99]);
        assert_eq!(&f[34..], &advert[34..]);
        assert!(verify(&f[14..34]));
    }
}
