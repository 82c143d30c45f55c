//! The attack of issue 19, in virtual time: a master A and a backup B; an
//! attacker captured one of A's adverts; A dies; the attacker re-sends that
//! one advert once a second, from A's address and MAC, from another address
//! with a CARP virtual-router MAC, from ever new addresses, and right after
//! B restarted (with its `state_dir`, or without). Each test is one column
//! of the table in `docs/replay.md` (a replay mode, a peer kind); each of
//! its rows says how much later than without the attacker B takes over:
//! not at all, at most one master-down interval, or never while the
//! attacker sends (as between UCARP or BSD hosts themselves).

mod instance_support;

use instance_support::*;

/// A's Ethernet source (carpd-xdp sends from the interface's own).
const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 10];
/// UCARP's virtual-router MAC of [`VHID`].
const UCARP_MAC: [u8; 6] = [0, 0, 0x5e, 0, 0, VHID];
/// OpenBSD's and FreeBSD's virtual-router MAC of [`VHID`].
const BSD_MAC: [u8; 6] = [0, 0, 0x5e, 0, 1, VHID];
/// How long the attacker keeps sending after A died.
const HORIZON: Nanos = Nanos(120_000_000_000);
/// A second.
const SECOND: Nanos = Nanos(1_000_000_000);

/// What the master is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// carpd-xdp: tagged counters from its own MAC.
    Carpd,
    /// UCARP alone on the link with us: a random counter per advert.
    Ucarp,
    /// OpenBSD: one constant cookie.
    OpenBsd,
}

/// Where the attacker sends the captured advert from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    /// A's address and MAC.
    Master,
    /// One fresh address with UCARP's virtual-router MAC.
    FreshUcarpMac,
    /// One fresh address with the BSD virtual-router MAC.
    FreshBsdMac,
    /// A new address (and MAC) for every frame.
    EverNew,
    /// A's address with UCARP's virtual-router MAC, right after B restarted
    /// and kept what it knew of its peers (`state_dir`).
    MasterUcarpMacAfterRestart,
    /// The same, B restarted without its `state_dir`.
    MasterUcarpMacAfterRestartWithoutState,
}

/// Every row of the table, in its order.
const ROWS: [From; 6] = [
    From::Master,
    From::FreshUcarpMac,
    From::FreshBsdMac,
    From::EverNew,
    From::MasterUcarpMacAfterRestart,
    From::MasterUcarpMacAfterRestartWithoutState,
];

/// How much the attacker delays B's takeover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delay {
    /// Not at all.
    None,
    /// At most one master-down interval of B.
    AtMostOneMasterDown,
    /// B never takes over while the attacker sends.
    Unbounded,
}

/// B's parameters.
fn backup_params(mode: ReplayMode, window_ms: Option<u64>) -> InstanceParams {
    let mut p = params();
    p.source_addrs = vec![ip(20)];
    p.advskew = 100;
    p.replay_mode = mode;
    p.replay_window = window_ms.map(|w| Nanos(w * 1_000_000));
    p
}

/// The wall clock at monotonic `t` (all hosts agree).
fn wall(t: Nanos) -> u64 {
    START_UNIX_NS + (t.0 - START.0)
}

/// A's first 10 adverts, one per second, and its sender.
fn masters_adverts(peer: Peer) -> (Vec<(Nanos, CarpHeader)>, Sender) {
    let mut adverts = Vec::new();
    let mac = match peer {
        Peer::Carpd => A_MAC,
        Peer::Ucarp => UCARP_MAC,
        Peer::OpenBsd => BSD_MAC,
    };
    let sender = Sender { addr: ip(10), mac };
    match peer {
        Peer::Carpd => {
            // A (advskew 0) takes over before B (advskew 100) would.
            let mut p = params();
            p.advskew = 0;
            let mut a = started(p);
            while adverts.len() < 10 {
                let t = a.poll_timeout().unwrap();
                a.handle_timeout(t);
                for h in sent(&drain(&mut a)) {
                    adverts.push((t, h));
                }
            }
        }
        Peer::Ucarp | Peer::OpenBsd => {
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            for i in 0..10 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let counter = if peer == Peer::OpenBsd {
                    0x1234_5678
                } else {
                    x
                };
                let at = START.saturating_add(Nanos(i * SECOND.0));
                adverts.push((at, advert(1, 0, 0, counter)));
            }
        }
    }
    (adverts, sender)
}

/// The sender of the attacker's `n`th frame, `a` being the master.
fn attacker(from: From, a: Sender, n: u32) -> Sender {
    let fresh = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    match from {
        From::Master => a,
        From::FreshUcarpMac => Sender {
            addr: fresh,
            mac: UCARP_MAC,
        },
        From::FreshBsdMac => Sender {
            addr: fresh,
            mac: BSD_MAC,
        },
        From::EverNew => {
            let [_, a, b, c] = (0x0a00_0000u32 + n).to_be_bytes();
            Sender {
                addr: IpAddr::V4(Ipv4Addr::new(10, a, b, c)),
                mac: [0x02, 0xaa, 0, a, b, c],
            }
        }
        From::MasterUcarpMacAfterRestart | From::MasterUcarpMacAfterRestartWithoutState => Sender {
            addr: ip(10),
            mac: UCARP_MAC,
        },
    }
}

/// Whether and how B restarts half a second after A died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Restart {
    /// It does not.
    No,
    /// It does, and keeps what it knew of its peers' counters.
    KeepingState,
    /// It does, without its `state_dir`.
    Forgetting,
}

impl From {
    /// How B restarts in this row.
    fn restart(self) -> Restart {
        match self {
            From::MasterUcarpMacAfterRestart => Restart::KeepingState,
            From::MasterUcarpMacAfterRestartWithoutState => Restart::Forgetting,
            _ => Restart::No,
        }
    }
}

/// How long after A's death (its last advert) B takes over, with the
/// attacker sending from `from` (or without attacker): `None` when B is
/// still BACKUP at [`HORIZON`].
fn takeover(
    mode: ReplayMode,
    window_ms: Option<u64>,
    peer: Peer,
    from: Option<From>,
    restart: Restart,
) -> Option<Nanos> {
    let (adverts, a) = masters_adverts(peer);
    let (death, captured) = *adverts.last().unwrap();
    let p = backup_params(mode, window_ms);
    let mut b = started(p.clone());
    for &(t, h) in &adverts {
        b.handle_timeout(t);
        b.handle_advert(t, a, &h).expect("A's advert");
        drain(&mut b);
    }
    assert_eq!(b.state(), State::Backup);
    let end = death.saturating_add(HORIZON);
    let mut restart_at = match restart {
        Restart::No => end,
        _ => death.saturating_add(Nanos(500_000_000)),
    };
    let mut next_frame = match from {
        Some(_) => death.saturating_add(SECOND),
        None => end,
    };
    let mut n = 0;
    loop {
        let now = b
            .poll_timeout()
            .unwrap_or(end)
            .min(next_frame)
            .min(restart_at);
        if now >= end {
            return None;
        }
        if now == restart_at {
            let mut fresh = Instance::new(p.clone(), now, wall(now)).unwrap();
            if restart == Restart::KeepingState {
                fresh.remember_counters(b.known_counters());
            }
            b = fresh;
            restart_at = end;
        } else if let (true, Some(from)) = (now == next_frame, from) {
            let _ = b.handle_advert(now, attacker(from, a, n), &captured);
            n += 1;
            next_frame = next_frame.saturating_add(SECOND);
        } else {
            b.handle_timeout(now);
        }
        drain(&mut b);
        if b.state() == State::Master {
            return Some(Nanos(now.0 - death.0));
        }
    }
}

/// The delay the attacker causes in row `from`, against the same run
/// (restart included) without it.
fn delay(mode: ReplayMode, window_ms: Option<u64>, peer: Peer, from: From) -> Delay {
    let md = backup_params(mode, window_ms).master_down_interval();
    let baseline = takeover(mode, window_ms, peer, None, from.restart())
        .expect("B takes over without an attacker");
    match takeover(mode, window_ms, peer, Some(from), from.restart()) {
        None => Delay::Unbounded,
        Some(t) if t <= baseline => Delay::None,
        Some(t) if t.0 - baseline.0 <= md.0 => Delay::AtMostOneMasterDown,
        Some(t) => {
            panic!("{mode} {peer:?} {from:?}: took over {t:?} after A died, baseline {baseline:?}")
        }
    }
}

/// Asserts the column: `expected` in the order of [`ROWS`].
fn column(mode: ReplayMode, window_ms: Option<u64>, peer: Peer, expected: [Delay; 6]) {
    let got: Vec<(From, Delay)> = ROWS
        .iter()
        .map(|&from| (from, delay(mode, window_ms, peer, from)))
        .collect();
    let want: Vec<(From, Delay)> = ROWS.iter().copied().zip(expected).collect();
    assert_eq!(got, want, "{mode}, window {window_ms:?}, {peer:?}");
}

use Delay::{AtMostOneMasterDown as One, None as Zero, Unbounded as Never};

#[test]
fn auto_carpd_xdp_master() {
    column(
        ReplayMode::Auto,
        None,
        Peer::Carpd,
        [Zero, Zero, Zero, Zero, Zero, One],
    );
}

#[test]
fn auto_with_a_window_carpd_xdp_master() {
    column(
        ReplayMode::Auto,
        Some(2_000),
        Peer::Carpd,
        [Zero, Zero, Zero, Zero, Zero, One],
    );
}

#[test]
fn strict_carpd_xdp_master() {
    column(
        ReplayMode::Strict,
        None,
        Peer::Carpd,
        [Zero, Zero, Zero, Zero, Zero, One],
    );
}

#[test]
fn compat_carpd_xdp_master() {
    column(
        ReplayMode::Compat,
        None,
        Peer::Carpd,
        [Zero, One, One, Never, One, One],
    );
}

#[test]
fn auto_ucarp_master() {
    column(
        ReplayMode::Auto,
        None,
        Peer::Ucarp,
        [Never, Never, Never, Never, Never, Never],
    );
}

#[test]
fn auto_openbsd_master() {
    column(
        ReplayMode::Auto,
        None,
        Peer::OpenBsd,
        [Never, Never, Never, Never, Never, Never],
    );
}
