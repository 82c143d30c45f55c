//! A NAT gateway pair in throw-away namespaces (issue 21), for the
//! end-to-end test (`tests/gateway_conntrack.rs`) and the bench's gateway
//! section:
//!
//! ```text
//!  client 10.70.1.10 ── lan switch ──┬── lan0 A 10.70.1.2 ─ sync0 10.70.3.1 ┐
//!  (default via LAN VIP 10.70.1.1)   └── lan0 B 10.70.1.3 ─ sync0 10.70.3.2 ┘
//!  server 10.70.2.100 ── wan switch ─┬── wan0 A 10.70.2.2
//!                                    └── wan0 B 10.70.2.3
//! ```
//!
//! Each gateway forwards, SNATs what leaves `wan0` to the WAN VIP 10.70.2.1
//! and filters forwarding statefully ([`RULESET`]: `ct state invalid drop`,
//! with `nf_conntrack_tcp_loose = 0`, so a connection the kernel does not
//! know is dropped, not picked up mid-stream). conntrackd syncs connection
//! state (FTFW) over the dedicated `sync0` link, each gateway's with its
//! own configuration, lock file, UNIX socket and log under the caller's
//! directory ([`GatewayNet::conntrackd_config`]): nothing of the host's
//! `/run`, `/var/lock` or `/etc` is used. The VIPs are not placed here: a
//! CARP daemon (or keepalived) in each gateway namespace does that.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::link::{veth, Bridge, Port};
use crate::netns::Netns;
use crate::process::output;
use crate::Result;

/// The client, behind the gateways.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 10);
/// The LAN VIP, the client's default route (vhid 1).
pub const LAN_VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 1, 1);
/// The WAN VIP, the NAT source address (vhid 2).
pub const WAN_VIP: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 1);
/// The server, beyond the gateways.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 70, 2, 100);
/// vhid of the LAN VIP.
pub const LAN_VHID: u8 = 1;
/// vhid of the WAN VIP.
pub const WAN_VHID: u8 = 2;
/// The gateways' LAN interface.
pub const LAN_IF: &str = "lan0";
/// The gateways' WAN interface.
pub const WAN_IF: &str = "wan0";
/// The gateways' dedicated sync interface.
pub const SYNC_IF: &str = "sync0";
/// conntrackd's UDP port on the sync link.
pub const SYNC_PORT: u16 = 3780;

/// The gateways' nftables ruleset: SNAT to the WAN VIP, a strict stateful
/// forward filter (new connections only from the LAN, invalid dropped).
pub const RULESET: &str = "\
flush ruleset
table ip nat {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"wan0\" ip saddr 10.70.1.0/24 snat to 10.70.2.1
\t}
}
table inet filter {
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t\tct state invalid drop
\t\tct state established,related accept
\t\tiifname \"lan0\" oifname \"wan0\" ct state new accept
\t}
}
";

/// Sysctls of each gateway namespace: forwarding, and conntrack that does
/// not pick up connections in the middle.
pub const SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_forward=1",
    "net.netfilter.nf_conntrack_tcp_loose=0",
];

/// One gateway.
pub struct Gateway {
    /// Its namespace.
    pub ns: Netns,
    /// Its own LAN address.
    pub lan: Ipv4Addr,
    /// Its own WAN address.
    pub wan: Ipv4Addr,
    /// Its sync-link address.
    pub sync: Ipv4Addr,
    /// Its port on the LAN switch.
    pub lan_port: String,
    /// Its port on the WAN switch.
    pub wan_port: String,
}

/// The whole topology: the switches, the client, the server and the two
/// gateways (index 0 is A, the preferred one; 1 is B). Dropping it deletes
/// every namespace, and with them whatever runs inside.
pub struct GatewayNet {
    /// The LAN switch.
    pub lan: Bridge,
    /// The WAN switch.
    pub wan: Bridge,
    /// The client namespace (`eth0`).
    pub client: Netns,
    /// The server namespace (`eth0`).
    pub server: Netns,
    /// Gateways A and B.
    pub gateways: [Gateway; 2],
    /// Where the conntrackd files go.
    dir: PathBuf,
}

impl GatewayNet {
    /// Builds the topology, namespaces named after `tag`, conntrackd's
    /// files under `dir` (which the caller keeps and removes).
    pub fn new(tag: &str, dir: &Path) -> Result<GatewayNet> {
        let lan = Bridge::new(Netns::new(&format!("{tag}-lsw"))?)?;
        let wan = Bridge::new(Netns::new(&format!("{tag}-wsw"))?)?;
        let client = Netns::new(&format!("{tag}-cl"))?;
        let client_cidr = format!("{CLIENT}/24");
        lan.attach(&client, "eth0", "cl", cidr(&client_cidr))?;
        client.ip(&["route", "add", "default", "via", &LAN_VIP.to_string()])?;
        let server = Netns::new(&format!("{tag}-sv"))?;
        let server_cidr = format!("{SERVER}/24");
        wan.attach(&server, "eth0", "sv", cidr(&server_cidr))?;
        let a = gateway(tag, 0, &lan, &wan)?;
        let b = gateway(tag, 1, &lan, &wan)?;
        veth(&a.ns, SYNC_IF, &b.ns, SYNC_IF)?;
        for g in [&a, &b] {
            g.ns.ip(&["addr", "add", &format!("{}/24", g.sync), "dev", SYNC_IF])?;
        }
        Ok(GatewayNet {
            lan,
            wan,
            client,
            server,
            gateways: [a, b],
            dir: dir.to_path_buf(),
        })
    }

    /// The text of gateway `i`'s conntrackd.conf: FTFW over UDP on the
    /// sync link, its lock file, socket and log under the directory.
    pub fn conntrackd_config(&self, i: usize) -> String {
        let me = &self.gateways[i];
        let peer = &self.gateways[1 - i];
        let file = |what: &str| self.dir.join(format!("conntrackd-{i}.{what}"));
        format!(
            "Sync {{\n\
             \tMode FTFW {{\n\
             \t\tDisableExternalCache off\n\
             \t}}\n\
             \tUDP {{\n\
             \t\tIPv4_address {}\n\
             \t\tIPv4_Destination_Address {}\n\
             \t\tPort {SYNC_PORT}\n\
             \t\tInterface {SYNC_IF}\n\
             \t\tChecksum on\n\
             \t}}\n\
             }}\n\
             General {{\n\
             \tHashSize 8192\n\
             \tHashLimit 65536\n\
             \tLogFile {}\n\
             \tSyslog off\n\
             \tLockFile {}\n\
             \tUNIX {{\n\
             \t\tPath {}\n\
             \t}}\n\
             \tFilter From Userspace {{\n\
             \t\tProtocol Accept {{\n\
             \t\t\tTCP\n\
             \t\t}}\n\
             \t\tAddress Ignore {{\n\
             \t\t\tIPv4_address 127.0.0.1\n\
             \t\t\tIPv4_address {}\n\
             \t\t\tIPv4_address {}\n\
             \t\t\tIPv4_address {}\n\
             \t\t}}\n\
             \t}}\n\
             }}\n",
            me.sync,
            peer.sync,
            file("log").display(),
            file("lock").display(),
            file("ctl").display(),
            me.lan,
            me.wan,
            me.sync,
        )
    }

    /// Writes gateway `i`'s conntrackd.conf into the directory; its path.
    pub fn write_conntrackd_config(&self, i: usize) -> Result<PathBuf> {
        let path = self.dir.join(format!("conntrackd-{i}.conf"));
        std::fs::write(&path, self.conntrackd_config(i)).map_err(|io| crate::Error::Os {
            op: format!("write {}", path.display()),
            io,
        })?;
        Ok(path)
    }

    /// `conntrackd -C CONFIG ARGS` in gateway `i`'s namespace (no `-d`:
    /// the caller keeps the daemon as its child).
    pub fn conntrackd(&self, i: usize, config: &Path, args: &[&str]) -> Command {
        let mut cmd = self.gateways[i].ns.command("conntrackd");
        cmd.arg("-C").arg(config).args(args);
        cmd
    }

    /// Runs `conntrackd -C CONFIG ARGS` in gateway `i` to completion.
    pub fn conntrackd_client(&self, i: usize, config: &Path, args: &[&str]) -> Result<String> {
        let out = output(&mut self.conntrackd(i, config, args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// carpd-xdp's configuration for gateway `i`: its status socket and
    /// state directory under the directory, the LAN instance (vhid 1) and
    /// the WAN instance (vhid 2) with `advbase_secs` and `advskew`, preempt
    /// on; with `group`, both in sync group `gw` driving the conntrackd of
    /// `group`'s configuration file; `wan_extra` appended to the WAN
    /// instance.
    pub fn carpd_config(
        &self,
        i: usize,
        advbase_secs: u8,
        advskew: u8,
        group: Option<&Path>,
        wan_extra: &str,
    ) -> String {
        let g = &self.gateways[i];
        let mut t = format!(
            "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\n\
             state_dir = \"{}\"\n",
            self.carpd_socket(i).display(),
            self.dir.join(format!("state-{i}")).display(),
        );
        let member = if group.is_some() {
            "sync_group = \"gw\"\n"
        } else {
            ""
        };
        for (ifname, vhid, vip, srcip, extra) in [
            (LAN_IF, LAN_VHID, LAN_VIP, g.lan, ""),
            (WAN_IF, WAN_VHID, WAN_VIP, g.wan, wan_extra),
        ] {
            t += &format!(
                "\n[[instance]]\ninterface = \"{ifname}\"\nvhid = {vhid}\nsrcip = \"{srcip}\"\n\
                 vips = [\"{vip}/24\"]\nadvbase_secs = {advbase_secs}\nadvskew = {advskew}\n\
                 preempt = true\npassword = \"gw{vhid}\"\n{member}{extra}\n",
            );
        }
        if let Some(conntrackd) = group {
            t += &format!(
                "\n[[sync_group]]\nname = \"gw\"\nconntrackd_config = \"{}\"\n",
                conntrackd.display()
            );
        }
        t
    }

    /// The status socket of gateway `i`'s carpd-xdp
    /// ([`GatewayNet::carpd_config`]).
    pub fn carpd_socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("carpd-{i}.sock"))
    }

    /// Plugs gateway `i`'s WAN cable in or pulls it (its `wan0` loses
    /// carrier).
    pub fn set_wan(&self, i: usize, up: bool) -> Result<()> {
        self.wan.set_port(&self.gateways[i].wan_port, up)
    }

    /// Plugs gateway `i`'s LAN cable in or pulls it.
    pub fn set_lan(&self, i: usize, up: bool) -> Result<()> {
        self.lan.set_port(&self.gateways[i].lan_port, up)
    }

    /// Takes gateway `i`'s sync link down (its peer's end loses carrier).
    pub fn cut_sync(&self, i: usize) -> Result<()> {
        self.gateways[i].ns.ip(&["link", "set", SYNC_IF, "down"])?;
        Ok(())
    }

    /// Which gateways hold `vip` on `ifname`.
    pub fn holders(&self, ifname: &str, vip: Ipv4Addr) -> Result<Vec<usize>> {
        let needle = format!("inet {vip}/");
        let mut holders = Vec::new();
        for (i, g) in self.gateways.iter().enumerate() {
            if g.ns
                .ip(&["-o", "-4", "addr", "show", "dev", ifname])?
                .contains(&needle)
            {
                holders.push(i);
            }
        }
        Ok(holders)
    }
}

/// A gateway namespace: `lan0` and `wan0` on the switches, forwarding,
/// the sysctls and the ruleset.
fn gateway(tag: &str, i: u8, lan: &Bridge, wan: &Bridge) -> Result<Gateway> {
    let ns = Netns::new(&format!("{tag}-gw{i}"))?;
    let g = Gateway {
        ns,
        lan: Ipv4Addr::new(10, 70, 1, 2 + i),
        wan: Ipv4Addr::new(10, 70, 2, 2 + i),
        sync: Ipv4Addr::new(10, 70, 3, 1 + i),
        lan_port: format!("g{i}l"),
        wan_port: format!("g{i}w"),
    };
    let lan_cidr = format!("{}/24", g.lan);
    lan.attach(&g.ns, LAN_IF, &g.lan_port, cidr(&lan_cidr))?;
    let wan_cidr = format!("{}/24", g.wan);
    wan.attach(&g.ns, WAN_IF, &g.wan_port, cidr(&wan_cidr))?;
    // The ruleset first: it loads nf_conntrack, whose sysctls only then
    // exist in the namespace.
    nft(&g.ns, RULESET)?;
    for sysctl in SYSCTLS {
        g.ns.exec("sysctl", &["-q", "-w", sysctl])?;
    }
    Ok(g)
}

/// Loads `ruleset` with `nft -f -` in `ns`.
fn nft(ns: &Netns, ruleset: &str) -> Result<()> {
    use std::io::Write;
    let mut cmd = ns.command("nft");
    cmd.args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|io| crate::Error::Spawn {
        command: format!("{cmd:?}"),
        io,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|io| crate::Error::Os {
                op: "write the ruleset to nft".into(),
                io,
            })?;
    }
    let out = child.wait_with_output().map_err(|io| crate::Error::Os {
        op: "wait for nft".into(),
        io,
    })?;
    if !out.status.success() {
        return Err(crate::Error::Failed {
            command: format!("{cmd:?}"),
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// A bridge port with address `cidr`.
fn cidr(cidr: &str) -> Port<'_> {
    Port {
        cidr: Some(cidr),
        ..Port::default()
    }
}
