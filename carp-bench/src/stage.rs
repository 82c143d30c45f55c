//! The bench's network: a "switch" namespace with a bridge, and four hosts
//! (two CARP hosts, a client, an attacker), each with an `eth0` veth whose
//! peer is a bridge port (`carp-testnet`'s [`Bridge`]). Namespace names
//! carry the bench's pid. Dropping the stage kills whatever still runs
//! inside and deletes the namespaces, on every exit path (errors, panics,
//! Ctrl-C through [`super::sys::check`]).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use carp_testnet::{output, Bridge, Netns, Port};

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
    /// The namespaces of the hosts, held for their drop (deleted with the
    /// stage).
    _namespaces: Vec<Netns>,
    /// The switch, held for its drop.
    _switch: Bridge,
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

/// Runs a command inside namespace `ns`, failing with its message.
pub fn exec_in(ns: &str, args: &[&str]) -> Result<String> {
    let out = output(Command::new("ip").args(["netns", "exec", ns]).args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Stage {
    /// Builds the segment. `dir` receives logs and scripts.
    pub fn new(dir: PathBuf) -> Result<Stage> {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let pid = std::process::id();
        let name = |role: &str| format!("cbench-{pid}-{role}");
        let switch = Bridge::new(Netns::named(&name("sw"))?)?;
        let sw = switch.ns().name().to_string();
        // A switch runs no netfilter. With br_netfilter in the kernel these
        // default to 1 and pass every bridged frame through the switch
        // namespace's IPv4/IPv6/ARP hooks: about a quarter of the cost of a
        // frame through the bridge here, added to every softirq figure.
        // Absent without br_netfilter, hence no error.
        for table in ["iptables", "ip6tables", "arptables"] {
            let key = format!("net.bridge.bridge-nf-call-{table}=0");
            let _ = exec_in(&sw, &["sysctl", "-qw", &key]);
        }
        let (a, b, client, attacker) = (
            host(name("a"), 1),
            host(name("b"), 2),
            host(name("c"), 3),
            host(name("x"), 4),
        );
        let mut namespaces = Vec::new();
        for (h, port) in [(&a, "pa"), (&b, "pb"), (&client, "pc"), (&attacker, "px")] {
            let ns = Netns::named(&h.ns)?;
            let cidr = format!("{}/24", h.addr());
            let how = Port {
                mac: Some(h.mac),
                cidr: Some(&cidr),
                down: false,
            };
            switch.attach(&ns, "eth0", port, how)?;
            namespaces.push(ns);
            // Every host's MAC known to the switch from the start: a backup
            // sends nothing for minutes, and once its entry aged out (or
            // before it was learned) a flood "to the backup" would reach
            // every port. Hosts never change ports, so the entries hold.
            let mac = mac_string(h.mac);
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
            &client.ns,
            &["sysctl", "-qw", "net.ipv4.neigh.eth0.locktime=0"],
        )?;
        Ok(Stage {
            a,
            b,
            client,
            attacker,
            dir,
            _namespaces: namespaces,
            _switch: switch,
        })
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
pub use carp_testnet::mac_str as mac_string;
