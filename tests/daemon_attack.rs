//! An on-link attacker cannot move the VIP (issue 8): a LAN of namespaces
//! with a master on host 0, a backup on host 1 (preempt on, so that a better
//! forged master or a weaker-looking master would move things) and the
//! attacker in the client namespace. The attacker captures the master's
//! adverts off the wire and floods, as fast as its sender goes:
//!
//! - (a) the master's advert replayed unchanged (its IP and MAC), and a set
//!   of the master's last adverts replayed in rotation;
//! - (b) forged digests from the master's IP and MAC: the captured advert
//!   with an incrementing counter and a wrong HMAC;
//! - (c) the captured advert re-sent from new addresses, once with advskew 0
//!   and demote 0, once with advbase 255 and advskew 255;
//! - (d) the captured advert replayed from 10^6 distinct spoofed sources.
//!
//! The carpd-xdp hosts list the two real hosts in `peers`. During and after
//! each flood: no false transition (the master stays master, the backup
//! stays backup, neither changes state), the VIP on the master alone; the
//! backup's RSS flat (within 2 MiB) across (d). Pairs: a real UCARP master
//! with a carpd-xdp backup, and two carpd-xdp hosts. Without an allow-list
//! only the memory is asserted across (d): re-sent adverts from new
//! addresses may move the VIP then (`docs/replay.md`).
//!
//! Each pair runs every case, waits for the pair to be steady again after a
//! case that moved it, and fails at the end naming every case that moved it.
//!
//! UCARP has no allow-list and steps down for an advert with its own
//! interval from a source it ranks lower (`ip_src.s_addr < srcip.s_addr`,
//! the network-order word compared as a host integer: on little-endian
//! hosts the last octet weighs most). Its host is 10.219.0.0/16, the lowest
//! address in that order among every source the attacker uses, and its
//! advskew 0, so that what is measured is carpd-xdp, not UCARP's own
//! weakness. UCARP also adopts the counter of every advert it accepts
//! (`sc.sc_counter = tmp_counter` in `src/carp.c`), so adverts re-sent from
//! new addresses make it send one counter again and again: each case prints
//! how many distinct counters the master sent meanwhile.

#[path = "common/attack.rs"]
mod attack;
mod common;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use attack::{flood, flood_sources, rss_kib, Advert, Capture, Sent};
use common::cluster::{interval, master_down, ucarp, Daemon, Inst, Lan, Proc, EVENTUALLY};
use common::require_root;
use common::settle::wait_sole_holder;

const VHID: u8 = 44;
/// At most 19 bytes, as UCARP requires.
const PASS: &str = "attack-pw-44";
/// advskew of the UCARP master: 0, so that re-sent adverts with advskew 0
/// are no faster than it (UCARP would step down for a faster one).
const UCARP_MASTER_SKEW: u8 = 0;
/// advskew of a carpd-xdp master.
const CARPD_MASTER_SKEW: u8 = 50;
/// advskew of the backup.
const BACKUP_SKEW: u8 = 100;
/// Length of each max-rate flood.
const FLOOD_SECS: u32 = 5;
/// Fewer frames than this in a max-rate flood and the test proves nothing.
const MIN_SENT: u64 = 200_000;
/// Distinct spoofed sources of case (d).
const SOURCES: u32 = 1_000_000;
/// Adverts replayed in rotation.
const ROTATION: usize = 20;
/// How much the backup's RSS may grow across case (d).
const RSS_SLACK_KIB: u64 = 2048;
/// Scheduling slack on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(500);

/// The floods of this file never overlap, whatever `--test-threads` says:
/// two at once would starve the daemons of CPU, a failure of the machine,
/// not of the receive path.
static SERIAL: Mutex<()> = Mutex::new(());

/// Who is master on host 0.
enum Master {
    /// Real UCARP; its transitions are its script runs.
    Ucarp(Proc),
    /// carpd-xdp.
    Carpd(Daemon),
}

/// A master on host 0, a backup on host 1, the attacker capturing the
/// master's adverts in the client namespace. Fields drop in order: the
/// capture and the processes before the namespaces.
struct Pair {
    /// What the pair is, for messages.
    name: &'static str,
    capture: Capture,
    master: Master,
    backup: Daemon,
    /// The backup's instance (master-down, interval).
    inst: Inst,
    vip: Ipv4Addr,
    lan: Lan,
}

/// State-change counts of master and backup at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Marks {
    master: u64,
    backup: u64,
}

fn transitions(d: &Daemon) -> Option<u64> {
    d.instance(VHID)?["transitions"].as_u64()
}

/// A JSON object of counts as a map (empty when absent).
fn counts(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The receive-path counters of a daemon, by reason.
fn counters(d: &Daemon) -> BTreeMap<String, u64> {
    d.status()
        .map(|st| counts(&st["counters"]))
        .unwrap_or_default()
}

/// The adverts the protocol core of a daemon refused, by reason.
fn rejects(d: &Daemon) -> BTreeMap<String, u64> {
    d.instance(VHID)
        .map(|i| counts(&i["rejects"]))
        .unwrap_or_default()
}

/// The counters that grew from `before` to `after`, and by how much.
fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, &v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

impl Pair {
    /// The pair's marks, or why they cannot be read.
    fn marks(&self) -> Result<Marks, String> {
        let master = match &self.master {
            Master::Ucarp(_) => self.ucarp_script_runs(),
            Master::Carpd(d) => transitions(d).ok_or("the master does not answer status")?,
        };
        let backup = transitions(&self.backup).ok_or("the backup does not answer status")?;
        Ok(Marks { master, backup })
    }

    fn ucarp_script_runs(&self) -> u64 {
        std::fs::read_to_string(self.lan.path("ucarp.scripts"))
            .unwrap_or_default()
            .lines()
            .count() as u64
    }

    /// `Ok` when the master is MASTER, the backup BACKUP, host 0 alone holds
    /// the VIP and (with `since`) neither changed state since those marks.
    fn steady(&self, since: Option<Marks>) -> Result<(), String> {
        if let Master::Carpd(d) = &self.master {
            let st = d.state(VHID);
            if st.as_deref() != Some("MASTER") {
                return Err(format!("the master is {st:?}"));
            }
        }
        let st = self.backup.state(VHID);
        if st.as_deref() != Some("BACKUP") {
            return Err(format!("the backup is {st:?}"));
        }
        let holders = self.lan.holders(self.vip);
        if holders != [0] {
            return Err(format!("VIP holders {holders:?}"));
        }
        if let Some(before) = since {
            let now = self.marks()?;
            if now != before {
                return Err(format!(
                    "state changes (master, backup) went from ({}, {}) to ({}, {})",
                    before.master, before.backup, now.master, now.backup
                ));
            }
        }
        Ok(())
    }

    /// Returns at once when the pair is steady; otherwise (after a case
    /// that moved it) waits until it has been steady for two advert
    /// intervals, panicking after [`EVENTUALLY`].
    fn settle(&self) {
        let start = Instant::now();
        let mut moved = false;
        let mut steady_since: Option<Instant> = None;
        loop {
            match self.steady(None) {
                Ok(()) if !moved => return,
                Ok(()) => {
                    let t = *steady_since.get_or_insert_with(Instant::now);
                    if t.elapsed() >= interval(1, BACKUP_SKEW) * 2 {
                        return;
                    }
                }
                Err(e) => {
                    moved = true;
                    steady_since = None;
                    assert!(
                        start.elapsed() < EVENTUALLY,
                        "{}: not steady within {EVENTUALLY:?}: {e}; backup {}; master {}",
                        self.name,
                        self.backup_status(),
                        self.master_status()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The master's status (carpd-xdp) or last state lines (UCARP).
    fn master_status(&self) -> String {
        match &self.master {
            Master::Carpd(d) => d
                .instance(VHID)
                .map_or("no status".to_string(), |v| v.to_string()),
            Master::Ucarp(u) => {
                let err = u.stderr_text();
                let lines: Vec<&str> = err
                    .lines()
                    .filter(|l| l.contains("state") || l.contains("Preferred"))
                    .collect();
                lines[lines.len().saturating_sub(4)..].join(" | ")
            }
        }
    }

    fn backup_status(&self) -> String {
        self.backup
            .instance(VHID)
            .map_or("no status".to_string(), |v| v.to_string())
    }

    /// Floods `frames` for [`FLOOD_SECS`] while watching the pair, then
    /// waits one master-down interval of the backup and looks again. `Err`
    /// says what moved. The flood must have sent at least [`MIN_SENT`]
    /// frames and at least half of them must have reached the backup's
    /// receive path (else this panics: the case would prove nothing).
    fn withstand(&self, case: &str, frames: &[Advert]) -> (Sent, Result<(), String>) {
        self.withstand_with(case, &|| {
            flood(
                &self.lan.client,
                self.lan.dir.path(),
                frames,
                FLOOD_SECS,
                None,
            )
        })
    }

    /// As [`Pair::withstand`], the flood sent by `send`.
    fn withstand_with(
        &self,
        case: &str,
        send: &(dyn Fn() -> Sent + Sync),
    ) -> (Sent, Result<(), String>) {
        self.settle();
        let marks = self.marks().expect("marks of a steady pair");
        let before = counters(&self.backup);
        let rejects_before = rejects(&self.backup);
        let heard_from = self.capture.adverts().len();
        let (sent, during) = std::thread::scope(|s| {
            let sender = s.spawn(send);
            let mut during: Result<(), String> = Ok(());
            while !sender.is_finished() {
                if during.is_ok() {
                    during = self
                        .steady(Some(marks))
                        .map_err(|e| format!("during the flood: {e}"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (sender.join().expect("the flood"), during)
        });
        std::thread::sleep(self.inst.master_down() + SLACK);
        let after = self
            .steady(Some(marks))
            .map_err(|e| format!("after the flood: {e}"));
        let delta = grown(&before, &counters(&self.backup));
        let refused = grown(&rejects_before, &rejects(&self.backup));
        // What the master sent meanwhile: UCARP adopts the counter of every
        // advert it accepts, so re-sent adverts make it repeat one.
        let heard = self.capture.adverts().split_off(heard_from);
        let distinct: BTreeSet<u64> = heard.iter().map(Advert::counter).collect();
        let master_sent = format!(
            "the master sent {} adverts meanwhile, {} distinct counters",
            heard.len(),
            distinct.len()
        );
        eprintln!(
            "{} {case}: sent {} frames in {:.1} s ({:.0} frames/s, {} threads); \
             backup's receive path: {delta:?}, its core refused {refused:?}; {master_sent}",
            self.name, sent.sent, sent.seconds, sent.pps, sent.threads
        );
        assert!(
            sent.sent >= MIN_SENT,
            "{} {case}: the flood sent only {} frames ({:.0}/s): too few to prove anything",
            self.name,
            sent.sent,
            sent.pps
        );
        let seen: u64 = delta.values().sum();
        assert!(
            seen >= sent.sent / 2,
            "{} {case}: of {} frames sent, the backup's receive path counted {seen}",
            self.name,
            sent.sent
        );
        let result = during.and(after).map_err(|e| {
            format!(
                "{} {case}: {e}; {master_sent}; backup {}; its receive path {delta:?}, \
                 its core refused {refused:?}; master {}",
                self.name,
                self.backup_status(),
                self.master_status()
            )
        });
        (sent, result)
    }

    /// Every case against this pair: `new_hosts` are the last octets of the
    /// new source addresses of (c), `spoof_base` the first of the 10^6
    /// sources of (d). Returns the failures.
    fn run_cases(&self, new_hosts: std::ops::Range<u8>, spoof_base: Ipv4Addr) -> Vec<String> {
        let mut failures = Vec::new();
        let fastest = Cell::new(0.0f64);
        let mut note = |(sent, result): (Sent, Result<(), String>)| {
            fastest.set(fastest.get().max(sent.pps));
            if let Err(e) = result {
                failures.push(e);
            }
        };
        let captured = self.capture.last(1, EVENTUALLY).remove(0);
        let (advbase, _, _) = captured.priority();

        // (b) Forged digests from the master's address and MAC.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let forged: Vec<Advert> = (0..4096u64)
            .map(|i| {
                let mut hmac = [0u8; 20];
                for chunk in hmac.chunks_mut(8) {
                    // xorshift64: a different wrong digest each frame.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_be_bytes()[..chunk.len()]);
                }
                let counter = captured.counter().wrapping_add(i + 1);
                captured.clone().with_digest(counter, hmac)
            })
            .collect();
        note(self.withstand("(b) forged digests from the master's address", &forged));

        // (c) The captured advert re-sent from new addresses.
        let resend = |advbase: u8, advskew: u8, demote: u8| -> Vec<Advert> {
            new_hosts
                .clone()
                .map(|last| {
                    let ip = self.lan.addr(last);
                    let o = ip.octets();
                    captured
                        .clone()
                        .sent_by([0x02, 0xaa, 0, o[1], o[2], o[3]], ip)
                        .with_priority(advbase, advskew, demote)
                })
                .collect()
        };
        note(self.withstand(
            "(c) re-sent from new addresses with advskew 0 / demote 0",
            &resend(advbase, 0, 0),
        ));
        note(self.withstand(
            "(c) re-sent from new addresses with advbase 255 / advskew 255",
            &resend(255, 255, 0),
        ));

        // (a) The master's latest advert replayed unchanged, then its last
        // adverts in rotation.
        note(self.withstand(
            "(a) the master's advert replayed",
            &self.capture.last(1, EVENTUALLY),
        ));
        note(self.withstand(
            &format!("(a) the master's last {ROTATION} adverts replayed in rotation"),
            &self.capture.last(ROTATION, EVENTUALLY * 2),
        ));

        // (d) Replays from 10^6 spoofed sources; the backup's memory flat.
        let pid = self.backup.proc.child.pid();
        let rss_before = rss_kib(pid);
        let pps = fastest.get();
        let (sent, result) = self.withstand_with("(d) replays from 10^6 spoofed sources", &|| {
            let (ns, dir) = (&self.lan.client, self.lan.dir.path());
            flood_sources(ns, dir, &captured, spoof_base, SOURCES, pps)
        });
        let rss_after = rss_kib(pid);
        eprintln!(
            "{} (d): backup RSS {rss_before} KiB before, {rss_after} KiB after",
            self.name
        );
        let rss = if rss_after > rss_before + RSS_SLACK_KIB {
            Err(format!(
                "{} (d): the backup's RSS grew from {rss_before} KiB to {rss_after} KiB",
                self.name
            ))
        } else {
            Ok(())
        };
        note((sent, result.and(rss)));
        failures
    }
}

/// The `peers` key listing the LAN's two hosts.
fn peers(lan: &Lan) -> String {
    format!(
        "peers = [\"{}\", \"{}\"]\n",
        lan.hosts[0].ip, lan.hosts[1].ip
    )
}

fn carpd_inst(lan: &Lan, advskew: u8, extra: &str) -> Inst {
    let mut i = Inst::new(VHID, lan.addr(VHID), advskew).extra(extra);
    i.password = PASS.to_string();
    i
}

/// Two carpd-xdp hosts (master advskew 50, backup 100, preempt), `extra`
/// added to both instances; returns once they are MASTER and BACKUP, the
/// attacker capturing the master's adverts.
fn carpd_pair(name: &'static str, lan: Lan, extra: &str) -> Pair {
    let vip = lan.addr(VHID);
    let mut a = lan.daemon(0, "a", &[carpd_inst(&lan, CARPD_MASTER_SKEW, extra)]);
    a.wait_state(VHID, "MASTER");
    let capture = Capture::start(&lan.client, "eth0", lan.hosts[0].ip, VHID);
    let inst = carpd_inst(&lan, BACKUP_SKEW, extra);
    let mut b = lan.daemon(1, "b", std::slice::from_ref(&inst));
    b.wait_state(VHID, "BACKUP");
    Pair {
        name,
        capture,
        master: Master::Carpd(a),
        backup: b,
        inst,
        vip,
        lan,
    }
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} case(s) moved things:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn floods_do_not_move_the_vip_from_a_ucarp_master_to_an_allow_listed_carpd_xdp_backup() {
    if !require_root(
        "floods_do_not_move_the_vip_from_a_ucarp_master_to_an_allow_listed_carpd_xdp_backup",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // See the module's comment for UCARP's address.
    let lan = Lan::with_addrs(
        "atu",
        &[Ipv4Addr::new(10, 219, 0, 0), Ipv4Addr::new(10, 219, 0, 2)],
        16,
    );
    let vip = lan.addr(VHID);
    let capture = Capture::start(&lan.client, "eth0", lan.hosts[0].ip, VHID);
    let args = vec![
        format!("--vhid={VHID}"),
        format!("--pass={PASS}"),
        format!("--addr={vip}"),
        "--advbase=1".to_string(),
        format!("--advskew={UCARP_MASTER_SKEW}"),
        "--shutdown".to_string(),
        "--preempt".to_string(),
    ];
    let u = ucarp(&lan, 0, "ucarp", &args);
    wait_sole_holder(&lan, vip, 0, master_down(1, UCARP_MASTER_SKEW, 3) * 3);
    let inst = carpd_inst(&lan, BACKUP_SKEW, &peers(&lan));
    let mut b = lan.daemon(1, "b", std::slice::from_ref(&inst));
    b.wait_state(VHID, "BACKUP");
    let pair = Pair {
        name: "UCARP master / carpd-xdp backup",
        capture,
        master: Master::Ucarp(u),
        backup: b,
        inst,
        vip,
        lan,
    };
    let failures = pair.run_cases(150..170, Ipv4Addr::new(10, 220, 0, 1));
    report(&failures);
}

#[test]
fn floods_do_not_move_the_vip_between_allow_listed_carpd_xdp_hosts() {
    if !require_root("floods_do_not_move_the_vip_between_allow_listed_carpd_xdp_hosts") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new("atc", 219, 1, 2);
    let extra = peers(&lan);
    let pair = carpd_pair("carpd-xdp master / carpd-xdp backup", lan, &extra);
    let failures = pair.run_cases(150..170, Ipv4Addr::new(10, 221, 0, 1));
    report(&failures);
}

#[test]
fn without_an_allow_list_replays_from_a_million_sources_leave_the_backups_memory_flat() {
    if !require_root(
        "without_an_allow_list_replays_from_a_million_sources_leave_the_backups_memory_flat",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lan = Lan::new("atm", 219, 2, 2);
    let pair = carpd_pair("carpd-xdp pair without an allow-list", lan, "");
    pair.settle();
    let captured = pair.capture.last(1, EVENTUALLY).remove(0);
    let Master::Carpd(a) = &pair.master else {
        unreachable!()
    };
    let (pid_a, pid_b) = (a.proc.child.pid(), pair.backup.proc.child.pid());
    let before = (rss_kib(pid_a), rss_kib(pid_b));
    let counters_before = counters(&pair.backup);
    // Every frame reaches userspace here, so the sender gets less CPU than
    // in the cases above: about 60,000 frames/s on two cores.
    let sent = flood_sources(
        &pair.lan.client,
        pair.lan.dir.path(),
        &captured,
        Ipv4Addr::new(10, 222, 0, 1),
        SOURCES,
        60_000.0,
    );
    std::thread::sleep(pair.inst.master_down());
    let after = (rss_kib(pid_a), rss_kib(pid_b));
    let delta = grown(&counters_before, &counters(&pair.backup));
    eprintln!(
        "sent {} frames in {:.1} s ({:.0}/s, {} threads) from {SOURCES} sources; RSS \
         (master, backup) {before:?} KiB before, {after:?} KiB after; backup's receive \
         path: {delta:?}; states (master, backup) {:?}",
        sent.sent,
        sent.seconds,
        sent.pps,
        sent.threads,
        (a.state(VHID), pair.backup.state(VHID))
    );
    // The frames got as far as the backup's userspace.
    assert!(
        delta.get("delivered").copied().unwrap_or(0) >= 10_000,
        "the backup's receive path: {delta:?}"
    );
    let status = pair
        .backup
        .instance(VHID)
        .expect("the backup answers status after the flood");
    assert!(
        after.1 <= before.1 + RSS_SLACK_KIB,
        "the backup's RSS grew from {} KiB to {} KiB; {status}",
        before.1,
        after.1
    );
}
