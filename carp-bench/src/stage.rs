//! The bench's network: a "switch" namespace with a bridge, and four hosts
//! (two CARP hosts, a client, an attacker), each with an `eth0` veth whose
//! peer is a bridge port. Namespace names carry the xtask's pid. Dropping
//! the stage kills whatever still runs inside and deletes the namespaces,
//! on every exit path (errors, panics, Ctrl-C through [`super::sys::check`]).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One host on the segment.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its namespace.
    pub ns: String,
    /// Address of its `eth0` (/24).
    pub ip: [u8; 4],
    /// MAC address of its `eth0`.
    pub mac: [u8; 6],
}

impl Host {
    /// Dotted address.
    pub fn addr(&self) -> String {
        dotted(self.ip)
    }
}

/// The segment and its hosts.
pub struct Stage {
    /// Host A, master at the start of every scenario (lower advskew).
    pub a: Host,
    /// Host B, backup at the start of every scenario.
    pub b: Host,
    /// The client probing the VIP and sending legitimate traffic.
    pub client: Host,
    /// The attacker sending floods.
    pub attacker: Host,
    /// Working directory for logs and scripts (kept after the run).
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

/// The virtual address the CARP hosts share.
pub const VIP: [u8; 4] = [10, 77, 0, 100];
/// Virtual host id of the bench.
pub const VHID: u8 = 7;
/// Password of the bench (same for both implementations).
pub const PASSWORD: &str = "benchpass";

/// Dotted notation of an IPv4 address.
pub fn dotted(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// Runs `ip ARGS`, failing with its message.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command inside namespace `ns`, failing with its message.
pub fn exec_in(ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {args:?} in {ns}"))?;
    if !out.status.success() {
        bail!(
            "{} in {ns}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Stage {
    /// Builds the segment. `dir` receives logs and scripts.
    pub fn new(dir: PathBuf) -> Result<Stage> {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let pid = std::process::id();
        let name = |role: &str| format!("cbench-{pid}-{role}");
        let mut stage = Stage {
            a: host(name("a"), 1),
            b: host(name("b"), 2),
            client: host(name("c"), 3),
            attacker: host(name("x"), 4),
            dir,
            namespaces: Vec::new(),
        };
        let sw = name("sw");
        for ns in [
            &sw,
            &stage.a.ns,
            &stage.b.ns,
            &stage.client.ns,
            &stage.attacker.ns,
        ] {
            ip(&["netns", "add", ns])?;
            stage.namespaces.push(ns.clone());
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        // A switch runs no netfilter. With br_netfilter in the kernel these
        // default to 1 and pass every bridged frame through the switch
        // namespace's IPv4/IPv6/ARP hooks: about a quarter of the cost of a
        // frame through the bridge here, added to every softirq figure.
        // Absent without br_netfilter, hence no error.
        for table in ["iptables", "ip6tables", "arptables"] {
            let key = format!("net.bridge.bridge-nf-call-{table}=0");
            let _ = exec_in(&sw, &["sysctl", "-qw", &key]);
        }
        let hosts = [
            (stage.a.clone(), "pa"),
            (stage.b.clone(), "pb"),
            (stage.client.clone(), "pc"),
            (stage.attacker.clone(), "px"),
        ];
        for (h, port) in hosts {
            ip(&[
                "link", "add", "eth0", "netns", &h.ns, "type", "veth", "peer", "name", port,
                "netns", &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", port, "master", "br0", "up"])?;
            let mac = mac_string(h.mac);
            ip(&["-n", &h.ns, "link", "set", "eth0", "address", &mac])?;
            let cidr = format!("{}/24", h.addr());
            ip(&["-n", &h.ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &h.ns, "link", "set", "eth0", "up"])?;
            // Every host's MAC known to the switch from the start: a backup
            // sends nothing for minutes, and once its entry aged out (or
            // before it was learned) a flood "to the backup" would reach
            // every port. Hosts never change ports, so the entries hold.
            exec_in(
                &sw,
                &[
                    "bridge", "fdb", "replace", &mac, "dev", port, "master", "static",
                ],
            )?;
        }
        // The client must follow a gratuitous ARP at once, however recent
        // its entry (the default locktime of 1 s would delay fast failovers).
        exec_in(
            &stage.client.ns,
            &["sysctl", "-qw", "net.ipv4.neigh.eth0.locktime=0"],
        )?;
        Ok(stage)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // Processes left inside (a daemon, a script) would keep the
            // namespace alive after `ip netns del`.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<u32>() {
                        super::sys::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn host(ns: String, n: u8) -> Host {
    Host {
        ns,
        ip: [10, 77, 0, n],
        mac: [0x02, 0xcb, 0, 0, 0, n],
    }
}

/// `aa:bb:cc:dd:ee:ff` notation.
pub fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
