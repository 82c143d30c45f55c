//! Adverts from our encoder, read back by an independent dissector: tshark's
//! CARP dissector must see the same field values, a good checksum and the
//! HMAC we computed. The pcap file is written by hand (classic format).
//!
//! Without tshark the test is skipped with a message, unless CI=true, where
//! a missing tshark fails it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use carp_common::constants::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_TTL};
use carp_common::craft::{advert_frame, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;
use carp_proto::{Action, Admin, Instance, InstanceParams, Nanos, Password};

/// Writes frames as a classic little-endian pcap with Ethernet link type.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (n, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

fn frame(src: IpAddr, h: &CarpHeader) -> Vec<u8> {
    let carp = h.to_bytes();
    let ip = match src {
        IpAddr::V4(a) => IpLayer::V4 {
            src: a.octets(),
            dst: CARP_GROUP_V4,
        },
        IpAddr::V6(a) => IpLayer::V6 {
            src: a.octets(),
            dst: CARP_GROUP_V6,
        },
    };
    let spec = AdvertFrame {
        src_mac: [0, 0, 0x5e, 0, 1, h.vhid],
        dst_mac: None,
        vlan_id: None,
        ip,
        ttl: CARP_TTL,
        ip_id: 1,
        carp: &carp,
    };
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let len = advert_frame(&spec, &mut buf);
    buf[..len].to_vec()
}

/// Adverts our core sends: takeover, periodic, demoted, and the leave advert.
fn our_adverts(src: IpAddr, vips: Vec<IpAddr>, vhid: u8, advskew: u8) -> Vec<CarpHeader> {
    let mut p = InstanceParams::new(vhid, Password::new(b"tshark").unwrap(), vips, vec![src]);
    p.advskew = advskew;
    let mut i = Instance::new(p, Nanos(0), 1_763_000_000_000_000_000).unwrap();
    let md = i.poll_timeout().unwrap();
    i.handle_timeout(md);
    i.handle_timeout(i.poll_timeout().unwrap());
    i.set_demote(Nanos(md.0 + 1_500_000_000), 7);
    i.handle_admin(Nanos(md.0 + 1_600_000_000), Admin::GoBackup);
    std::iter::from_fn(|| i.poll_action())
        .filter_map(|a| match a {
            Action::SendAdvert(h) => Some(h),
            _ => None,
        })
        .collect()
}

#[test]
fn tshark_reads_our_adverts_as_we_wrote_them() {
    if Command::new("tshark").arg("--version").output().is_err() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tshark is not installed and CI=true: install the tshark package");
        }
        eprintln!("skipping: tshark is not installed");
        return;
    }
    let v4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let v6: IpAddr = IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap());
    let mut headers = Vec::new();
    let mut frames = Vec::new();
    for (src, vhid, skew) in [(v4, 42u8, 100u8), (v6, 255, 0)] {
        let vips = vec![
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 100)),
            "2001:db8::1".parse().unwrap(),
        ];
        for h in our_adverts(src, vips, vhid, skew) {
            frames.push(frame(src, &h));
            headers.push(h);
        }
    }
    assert_eq!(
        headers.len(),
        8,
        "takeover, periodic, demoted and leave, per family"
    );
    let dir = std::env::temp_dir().join(format!("carpd-proto-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("ours.pcap");
    write_pcap(&pcap, &frames);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-d", "ip.proto==112,carp", "-T", "fields"])
        .args(["-E", "separator=/t"])
        .args(["-e", "carp.version", "-e", "carp.type", "-e", "carp.vhid"])
        .args([
            "-e",
            "carp.advskew",
            "-e",
            "carp.authlen",
            "-e",
            "carp.demotion",
        ])
        .args([
            "-e",
            "carp.adver_int",
            "-e",
            "carp.counter",
            "-e",
            "carp.hmac",
        ])
        .args([
            "-e",
            "carp.checksum.status",
            "-e",
            "ip.ttl",
            "-e",
            "ipv6.hlim",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), headers.len(), "{text}");
    for (line, h) in lines.iter().zip(&headers) {
        let f: Vec<&str> = line.split('\t').collect();
        let hmac: String = h.hmac.iter().map(|b| format!("{b:02x}")).collect();
        let ttl = if f[10].is_empty() { f[11] } else { f[10] };
        assert_eq!(
            (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], ttl),
            (
                "2",
                "1",
                h.vhid.to_string().as_str(),
                h.advskew.to_string().as_str(),
                "7",
                h.demote.to_string().as_str(),
                h.advbase.to_string().as_str(),
                h.counter().to_string().as_str(),
                hmac.as_str(),
                "1", // checksum good
                "255",
            ),
            "{line}"
        );
    }
    assert!(headers.iter().any(|h| h.is_leave()) && headers.iter().any(|h| h.demote == 7));
}
