//! The attacker's packet generator, `carp-flood` (the workspace crate of
//! that name, built in release): frames written to a frame file and sent
//! from the attacker's namespace by several threads with PACKET_MMAP rings,
//! as fast as the kernel takes them or at a fixed rate, optionally from a
//! million spoofed sources; and the frames of the flood cases, crafted with
//! `carp_common::craft` or taken from the wire ([`capture_advert`]).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use carp_common::constants::{CARP_GROUP_V4, CARP_HEADER_LEN, CARP_TTL, IPPROTO_CARP};
use carp_common::craft::{advert_frame, ipv4_header, AdvertFrame, IpLayer, MAX_ADVERT_FRAME};
use carp_common::header::CarpHeader;

use super::stage::Host;
use super::sys;

/// A CARP advert frame from `src` (MAC and IP) to `dst_mac`, 224.0.0.18.
pub fn carp_frame(src_mac: [u8; 6], src_ip: [u8; 4], dst_mac: [u8; 6], h: &CarpHeader) -> Vec<u8> {
    let carp = h.to_bytes();
    let mut buf = [0u8; MAX_ADVERT_FRAME];
    let len = advert_frame(
        &AdvertFrame {
            src_mac,
            dst_mac: Some(dst_mac),
            vlan_id: None,
            ip: IpLayer::V4 {
                src: src_ip,
                dst: CARP_GROUP_V4,
            },
            ttl: CARP_TTL,
            ip_id: 1,
            carp: &carp,
        },
        &mut buf,
    );
    buf[..len].to_vec()
}

/// An advert header with a valid checksum and `hmac` as given.
pub fn header(vhid: u8, counter: u64, hmac: [u8; 20]) -> CarpHeader {
    let mut h = CarpHeader::advertisement(vhid, 1, 0, 0, counter);
    h.hmac = hmac;
    h.seal_checksum();
    h
}

/// A UDP datagram (18 payload bytes) from `src` to `dst`, port 9.
pub fn udp_frame(src: &Host, dst: &Host) -> Vec<u8> {
    let payload = [0u8; 18];
    let udp_len = (8 + payload.len()) as u16;
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.mac);
    f.extend_from_slice(&src.mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = ipv4_header(src.ip, dst.ip, 64, 1, udp_len);
    // ipv4_header writes protocol 112; make it UDP and redo the checksum.
    ip[9] = 17;
    ip[10] = 0;
    ip[11] = 0;
    let sum = carp_common::checksum::internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

/// Waits in namespace `ns` for an advert of `vhid` from `src` and returns
/// the whole frame as captured.
pub fn capture_advert(ns: &str, src: [u8; 4], vhid: u8, within: Duration) -> Result<Vec<u8>> {
    sys::run_in(ns, move || {
        let (fd, _) = sys::packet_socket("eth0")?;
        sys::set_recv_timeout(&fd, Duration::from_millis(100))?;
        let end = Instant::now() + within;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < (14 + 20 + CARP_HEADER_LEN) as isize {
                continue;
            }
            let f = &buf[..n as usize];
            if f[12..14] == [0x08, 0x00]
                && f[23] == IPPROTO_CARP
                && f[26..30] == src
                && f[35] == vhid
            {
                return Ok(f.to_vec());
            }
        }
        bail!("no advert of vhid {vhid} from {src:?} within {within:?}")
    })
}

/// What the attack generator is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct Attack {
    /// How long to send.
    pub duration: Duration,
    /// Total frames per second; 0: as fast as the kernel takes them.
    pub rate: u32,
    /// Distinct spoofed IPv4 sources (0: the frames' own).
    pub spoof_sources: u32,
    /// Sending threads (`None`: carp-flood's default, one per CPU).
    pub threads: Option<usize>,
}

impl Attack {
    /// As fast as possible for `duration`, one thread per CPU.
    pub fn flood(duration: Duration) -> Attack {
        Attack {
            duration,
            rate: 0,
            spoof_sources: 0,
            threads: None,
        }
    }
}

/// What the generator reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    /// Frames the kernel transmitted.
    pub frames: u64,
    /// Seconds spent sending.
    pub seconds: f64,
}

impl Sent {
    /// Frames per second.
    pub fn pps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.frames as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A running `carp-flood` (`target/release/carp-flood`, see its `--help`)
/// sending a frame file out of `eth0` of a namespace.
pub struct Generator {
    child: Child,
    /// The frame file, for error messages.
    file: PathBuf,
}

impl Generator {
    /// Writes `frames` to `file` and starts `carp-flood` (at `bin`) in
    /// namespace `ns` as `attack` says.
    pub fn start(
        bin: &Path,
        ns: &str,
        file: &Path,
        frames: &[Vec<u8>],
        attack: Attack,
    ) -> Result<Generator> {
        let bytes = carp_flood::frames::encode(frames).context("encode the frame file")?;
        std::fs::write(file, bytes).with_context(|| format!("write {}", file.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(bin)
            .args(["--iface", "eth0", "--frames"])
            .arg(file)
            .arg("--seconds")
            .arg(format!("{:.3}", attack.duration.as_secs_f64()))
            .arg("--rate")
            .arg(attack.rate.to_string())
            .arg("--spoof-sources")
            .arg(attack.spoof_sources.to_string());
        if let Some(n) = attack.threads {
            cmd.arg("--threads").arg(n.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {} in {ns}", bin.display()))?;
        Ok(Generator {
            child,
            file: file.to_path_buf(),
        })
    }

    /// Waits for the generator to end on its own and returns what it sent.
    pub fn wait(self) -> Result<Sent> {
        let out = self
            .child
            .wait_with_output()
            .context("wait for carp-flood")?;
        if !out.status.success() {
            bail!(
                "carp-flood with {} failed ({}): {}",
                self.file.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("carp-flood printed {line:?}"))?;
        Ok(Sent {
            frames: v["sent"].as_u64().context("carp-flood: no \"sent\"")?,
            seconds: v["seconds"]
                .as_f64()
                .context("carp-flood: no \"seconds\"")?,
        })
    }

    /// Stops the generator (SIGTERM: it stops and still reports) and
    /// returns what it sent.
    pub fn finish(self) -> Result<Sent> {
        // `ip netns exec` execs carp-flood in place: the child is carp-flood.
        sys::kill(self.child.id(), libc::SIGTERM);
        self.wait()
    }
}
