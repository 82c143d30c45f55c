//! The authentication path against real UCARP 1.5.2 adverts captured on the
//! wire (tests/data/ucarp-adverts.pcap, see /work/shared/vectors/README.md):
//! password `carp-harness`, vhid 7, VIP 10.99.0.100.

use std::net::{IpAddr, Ipv4Addr};

use carp_common::header::CarpHeader;
use carp_proto::action::State;
use carp_proto::auth::Authenticator;
use carp_proto::peer::Sender;
use carp_proto::replay::Admission;
use carp_proto::{Instance, InstanceParams, Nanos, Password, Reject, ReplayError, ReplayMode};

const PCAP: &[u8] = include_bytes!("data/ucarp-adverts.pcap");
const PASSWORD: &[u8] = b"carp-harness";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const START_UNIX_NS: u64 = 1_763_000_000_000_000_000;

/// Counters as tshark reads them (README).
const COUNTERS: [u64; 7] = [
    17288724999877301849,
    7253010890525428751,
    8800548394121392109,
    17988971329740450566,
    17988971329740450567,
    17988971329740450568,
    17988971329740450569,
];

/// One captured advert: IPv4 source and the 36 CARP bytes.
struct Captured {
    src: IpAddr,
    carp: [u8; 36],
}

/// Reads the classic pcap by hand (little-endian, microsecond magic).
fn captured() -> Vec<Captured> {
    assert_eq!(&PCAP[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    assert_eq!(
        u32::from_le_bytes(PCAP[20..24].try_into().unwrap()),
        1,
        "ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= PCAP.len() {
        let incl = u32::from_le_bytes(PCAP[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &PCAP[at + 16..at + 16 + incl];
        at += 16 + incl;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "ipv4");
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        assert_eq!(ip[9], 112, "carp");
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let carp: [u8; 36] = ip[ihl..ihl + 36].try_into().unwrap();
        out.push(Captured { src, carp });
    }
    out
}

fn params(password: &[u8], mode: ReplayMode) -> InstanceParams {
    let mut p = InstanceParams::new(
        7,
        Password::new(password).unwrap(),
        vec![IpAddr::V4(VIP)],
        vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 3))],
    );
    p.replay_mode = mode;
    p
}

/// A fresh receiver's verdict on one advert.
fn verdict(password: &[u8], src: IpAddr, carp: &[u8; 36]) -> Result<(), Reject> {
    let mut i = Instance::new(params(password, ReplayMode::Auto), Nanos(0), START_UNIX_NS).unwrap();
    i.handle_advert(Nanos(1), src, &CarpHeader::from_bytes(carp))
        .map(drop)
}

#[test]
fn pcap_holds_the_seven_documented_adverts() {
    let frames = captured();
    assert_eq!(frames.len(), 7);
    for (f, counter) in frames.iter().zip(COUNTERS) {
        let h = CarpHeader::from_bytes(&f.carp);
        assert_eq!(h.counter(), counter);
        assert_eq!((h.vhid, h.advbase), (7, 1));
    }
}

#[test]
fn every_captured_advert_verifies() {
    for f in captured() {
        assert_eq!(verdict(PASSWORD, f.src, &f.carp), Ok(()), "from {}", f.src);
    }
}

#[test]
fn our_encoder_reproduces_ucarp_bytes_exactly() {
    let auth = Authenticator::new(Password::new(PASSWORD).unwrap(), &[IpAddr::V4(VIP)]);
    for f in captured() {
        let theirs = CarpHeader::from_bytes(&f.carp);
        let mut ours = CarpHeader::advertisement(7, 1, theirs.advskew, 0, theirs.counter());
        auth.seal(&mut ours);
        assert_eq!(ours.to_bytes(), f.carp);
    }
}

#[test]
fn any_single_changed_byte_is_rejected() {
    for f in captured() {
        for byte in 0..36 {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut carp = f.carp;
                carp[byte] ^= flip;
                assert!(
                    verdict(PASSWORD, f.src, &carp).is_err(),
                    "byte {byte} ^ {flip:#x} accepted"
                );
            }
        }
    }
}

#[test]
fn changed_authenticated_byte_with_fixed_checksum_fails_the_hmac() {
    // Version/type, vhid, counter and HMAC are authenticated. (advskew,
    // demote and advbase are not, by the protocol's design: only the
    // checksum covers them.)
    let f = &captured()[0];
    for byte in [0usize, 1].into_iter().chain(8..36) {
        let mut h = CarpHeader::from_bytes(&f.carp);
        let mut b = h.to_bytes();
        b[byte] ^= 0x10;
        h = CarpHeader::from_bytes(&b);
        if byte == 1 {
            // A changed vhid is refused before the HMAC.
            h.seal_checksum();
            assert!(matches!(
                verdict(PASSWORD, f.src, &h.to_bytes()),
                Err(Reject::Vhid { .. })
            ));
            continue;
        }
        if byte == 0 {
            h.seal_checksum();
            assert!(matches!(
                verdict(PASSWORD, f.src, &h.to_bytes()),
                Err(Reject::Version { .. })
            ));
            continue;
        }
        h.seal_checksum();
        assert!(
            matches!(
                verdict(PASSWORD, f.src, &h.to_bytes()),
                Err(Reject::Auth { .. })
            ),
            "byte {byte}"
        );
    }
}

#[test]
fn wrong_password_or_vip_is_rejected() {
    for f in captured() {
        for password in [&b"carp-harnesS"[..], b"carp-harness-", b"", b"carp-harnes"] {
            assert!(matches!(
                verdict(password, f.src, &f.carp),
                Err(Reject::Auth { .. })
            ));
        }
        let mut p = params(PASSWORD, ReplayMode::Auto);
        p.vips = vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101))];
        let mut i = Instance::new(p, Nanos(0), START_UNIX_NS).unwrap();
        let r = i.handle_advert(Nanos(1), f.src, &CarpHeader::from_bytes(&f.carp));
        assert!(matches!(r, Err(Reject::Auth { .. })));
    }
}

#[test]
fn captured_sequence_passes_auto_and_compat_and_replays_are_caught() {
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut i = Instance::new(params(PASSWORD, mode), Nanos(0), START_UNIX_NS).unwrap();
        let frames = captured();
        for (n, f) in frames.iter().enumerate() {
            let t = Nanos::from_millis(n as u64 * 100);
            i.handle_advert(t, f.src, &CarpHeader::from_bytes(&f.carp))
                .unwrap();
        }
        // Replaying any of them again is a duplicate.
        for f in &frames {
            let r = i.handle_advert(Nanos::from_secs(1), f.src, &CarpHeader::from_bytes(&f.carp));
            assert!(
                matches!(
                    r,
                    Err(Reject::Replay {
                        source: ReplayError::Duplicate { .. },
                        ..
                    })
                ),
                "{mode}: {r:?}"
            );
        }
    }
}

#[test]
fn strict_mode_refuses_ucarp_random_counters() {
    let mut i = Instance::new(
        params(PASSWORD, ReplayMode::Strict),
        Nanos(0),
        START_UNIX_NS,
    )
    .unwrap();
    let frames = captured();
    i.handle_advert(
        Nanos(1),
        frames[0].src,
        &CarpHeader::from_bytes(&frames[0].carp),
    )
    .unwrap();
    // Frame 2's random counter is lower than frame 1's.
    let r = i.handle_advert(
        Nanos(2),
        frames[1].src,
        &CarpHeader::from_bytes(&frames[1].carp),
    );
    assert_eq!(
        r,
        Err(Reject::Replay {
            src: frames[1].src,
            source: ReplayError::Stale {
                counter: COUNTERS[1],
                last: COUNTERS[0]
            }
        })
    );
}

/// The captured adverts as UCARP sends them: from its virtual-router MAC.
fn from_ucarp(f: &Captured) -> Sender {
    Sender {
        addr: f.src,
        mac: [0, 0, 0x5e, 0, 0, 7],
    }
}

#[test]
fn repeated_ucarp_counters_only_prove_that_the_master_lives() {
    // UCARP takes on the counter of any advert it accepts, so anyone can
    // make a live UCARP master repeat counters it sent before. From its
    // MAC those adverts keep a backup's master alive, and never make the
    // backup take over, even edited to advbase and advskew 255.
    for mode in [ReplayMode::Auto, ReplayMode::Compat] {
        let mut p = params(PASSWORD, mode);
        p.preempt = true;
        p.advskew = 100;
        let mut i = Instance::new(p, Nanos(0), START_UNIX_NS).unwrap();
        i.handle_link(Nanos(0), true);
        let frames = captured();
        let master = &frames[3];
        i.handle_advert(
            Nanos(1),
            from_ucarp(master),
            &CarpHeader::from_bytes(&master.carp),
        )
        .unwrap();
        assert_eq!(i.state(), State::Backup);
        // Ten seconds of repeats, one a second, edited to look weaker.
        for s in 1..=10 {
            let mut h = CarpHeader::from_bytes(&master.carp);
            (h.advbase, h.advskew) = (255, 255);
            h.seal_checksum();
            let t = Nanos::from_secs(s);
            i.handle_timeout(t);
            assert_eq!(
                i.handle_advert(t, from_ucarp(master), &h),
                Ok(Admission::Repeat)
            );
            assert_eq!(i.state(), State::Backup, "{mode} at {s} s");
        }
        assert_eq!(i.status().adverts_repeated, 10);
        // From another MAC, the same adverts are replays.
        let r = i.handle_advert(
            Nanos::from_secs(11),
            master.src,
            &CarpHeader::from_bytes(&master.carp),
        );
        assert!(matches!(r, Err(Reject::Replay { .. })), "{r:?}");
        // When they stop, the master is taken for dead (master down, on
        // time).
        let deadline = i.poll_timeout().unwrap();
        assert!(deadline < Nanos::from_secs(15));
        i.handle_timeout(deadline);
        assert_eq!(i.state(), State::Master);
    }
}

#[test]
fn a_master_yields_to_a_preferred_ucarp_master_even_repeating_counters() {
    // Two masters is the outcome not to allow: a UCARP host made to repeat
    // its counters may really be master.
    let mut p = params(PASSWORD, ReplayMode::Auto);
    p.advskew = 100;
    let mut i = Instance::new(p, Nanos(0), START_UNIX_NS).unwrap();
    i.handle_link(Nanos(0), true);
    let frames = captured();
    let ucarp = &frames[3];
    i.handle_advert(
        Nanos(1),
        from_ucarp(ucarp),
        &CarpHeader::from_bytes(&ucarp.carp),
    )
    .unwrap();
    let deadline = i.poll_timeout().unwrap();
    assert!(deadline < Nanos::from_secs(5));
    i.handle_timeout(deadline);
    assert_eq!(i.state(), State::Master);
    assert_eq!(
        i.handle_advert(
            Nanos::from_secs(6),
            from_ucarp(ucarp),
            &CarpHeader::from_bytes(&ucarp.carp)
        ),
        Ok(Admission::Repeat)
    );
    assert_eq!(i.state(), State::Backup);
}
