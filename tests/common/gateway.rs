//! The NAT gateway pair of issue 21 for the namespace tests: the topology
//! of [`carp_testnet::gateway`] (client, gateways A and B with SNAT and a
//! strict stateful forward filter, server), conntrackd (FTFW over the sync
//! link) running in each gateway with its files in the pair's temp dir,
//! carpd-xdp per gateway with both VIPs, and the TCP flow
//! ([`carp_testnet::flow`]) through the master.
//!
//! Declare the [`Pair`] before the daemons and the flow: they are dropped
//! first, the namespaces last.

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use carp_testnet::flow::{echo_server, Flow};
use carp_testnet::gateway::{
    GatewayNet, LAN_IF, LAN_VHID, LAN_VIP, SERVER, WAN_IF, WAN_VHID, WAN_VIP,
};
use carp_testnet::Captured;

use super::cluster::{eventually, status, CARPD};
use super::must;

/// The echo server's port.
pub const ECHO_PORT: u16 = 7000;
/// The client sends a line every 10 ms.
pub const FLOW_INTERVAL: Duration = Duration::from_millis(10);

/// The gateway pair, its conntrackd daemons and its scratch directory.
pub struct Pair {
    /// The namespaces and links.
    pub net: GatewayNet,
    /// conntrackd.conf of gateway A and B.
    pub conntrackd_conf: [PathBuf; 2],
    /// The conntrackd daemons (killed on drop, before the namespaces go).
    conntrackd: Vec<Captured>,
    /// Configurations, logs, sockets (declared last: removed last).
    pub dir: tempfile::TempDir,
}

impl Pair {
    /// Builds the topology and starts conntrackd in both gateways, waiting
    /// until each answers on its socket.
    pub fn new(tag: &str) -> Pair {
        let dir = tempfile::Builder::new()
            .prefix(&format!("carpd-{tag}-"))
            .tempdir()
            .expect("temp dir");
        let net = must(GatewayNet::new(tag, dir.path()));
        let conntrackd_conf = [0, 1].map(|i| must(net.write_conntrackd_config(i)));
        let conntrackd = (0..2)
            .map(|i| {
                let cmd = net.conntrackd(i, &conntrackd_conf[i], &[]);
                must(Captured::spawn(cmd, dir.path(), &format!("conntrackd-{i}")))
            })
            .collect();
        let pair = Pair {
            net,
            conntrackd_conf,
            conntrackd,
            dir,
        };
        for i in 0..2 {
            eventually_ok(&format!("conntrackd {i} answering"), || {
                pair.conntrackd_client(i, &["-s"]).is_ok()
            });
        }
        pair
    }

    /// `conntrackd -C CONF ARGS` (a client call) in gateway `i`.
    pub fn conntrackd_client(&self, i: usize, args: &[&str]) -> carp_testnet::Result<String> {
        self.net
            .conntrackd_client(i, &self.conntrackd_conf[i], args)
    }

    /// Commits gateway `i`'s external cache as `primary-backup.sh` does on
    /// becoming primary: `-c`, `-f`, `-R`, `-B`.
    pub fn commit_by_hand(&self, i: usize) {
        for flag in ["-c", "-f", "-R", "-B"] {
            must(self.conntrackd_client(i, &[flag]));
        }
    }

    /// Writes `text` as `name` in the scratch directory (`mode` 0o755 for
    /// scripts).
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// carpd-xdp's configuration for gateway `i`: the LAN and WAN
    /// instances with `timers`, in one sync group driving conntrackd when
    /// `group` is set; `wan_extra` is appended to the WAN instance.
    pub fn carpd_config(&self, i: usize, timers: Timers, group: bool, wan_extra: &str) -> String {
        let conntrackd = group.then_some(self.conntrackd_conf[i].as_path());
        self.net.carpd_config(
            i,
            timers.advbase_secs,
            timers.advskew[i],
            conntrackd,
            wan_extra,
        )
    }

    /// Starts carpd-xdp in gateway `i` with configuration `text`.
    pub fn carpd(&self, i: usize, text: &str) -> Carpd {
        let name = format!("carpd-{i}");
        let config = self.write(&format!("{name}.toml"), text, 0o644);
        let mut cmd = self.net.gateways[i].ns.command(CARPD);
        cmd.arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info,carp_daemon=debug")
            .env("NO_COLOR", "1");
        Carpd {
            proc: must(Captured::spawn(cmd, self.dir.path(), &name)),
            sock: self.net.carpd_socket(i),
        }
    }

    /// Starts the echo server and the flow from the client through the
    /// LAN VIP.
    pub fn flow(&self) -> (JoinHandle<()>, Flow) {
        let addr = SocketAddrV4::new(SERVER, ECHO_PORT);
        let server = must(echo_server(&self.net.server, addr));
        let flow = must(Flow::start(&self.net.client, addr, FLOW_INTERVAL));
        (server, flow)
    }

    /// Waits until gateway `i`'s external cache holds the flow (conntrackd
    /// synced it from the master).
    pub fn wait_flow_synced(&self, i: usize) {
        let port = format!("dport={ECHO_PORT}");
        eventually_ok(&format!("the flow in gateway {i}'s external cache"), || {
            self.conntrackd_client(i, &["-e"])
                .is_ok_and(|cache| cache.contains(&port))
        });
    }

    /// Which gateways hold the LAN VIP and which the WAN VIP.
    pub fn holders(&self) -> (Vec<usize>, Vec<usize>) {
        (
            must(self.net.holders(LAN_IF, LAN_VIP)),
            must(self.net.holders(WAN_IF, WAN_VIP)),
        )
    }

    /// Waits until gateway `i` alone holds both VIPs.
    pub fn wait_both_vips_on(&self, i: usize) {
        eventually_ok(&format!("both VIPs on gateway {i} alone"), || {
            self.holders() == (vec![i], vec![i])
        });
    }
}

/// Advertisement timers of the pair.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    /// advbase of both gateways, seconds.
    pub advbase_secs: u8,
    /// advskew of A and B.
    pub advskew: [u8; 2],
}

/// A carpd-xdp in a gateway namespace and its status socket.
pub struct Carpd {
    /// The process (killed on drop).
    pub proc: Captured,
    /// Its status socket.
    pub sock: PathBuf,
}

impl Carpd {
    /// The state of instance `vhid`, if the daemon answers.
    pub fn state(&self, vhid: u8) -> Option<String> {
        let st = status(&self.sock)?;
        st["instances"]
            .as_array()?
            .iter()
            .find(|i| i["vhid"].as_u64() == Some(vhid.into()))
            .and_then(|i| i["state"].as_str().map(str::to_owned))
    }

    /// Waits until both instances are in `state`, panicking if the daemon
    /// exits (e.g. refusing its configuration).
    pub fn wait_both(&mut self, state: &str) {
        let name = self.proc.name.clone();
        eventually_ok(&format!("{name}: both instances {state}"), || {
            if let Some(st) = self.proc.child.0.try_wait().expect("try_wait") {
                panic!("{name} exited ({st}): {}", self.proc.stderr_text());
            }
            self.state(LAN_VHID).as_deref() == Some(state)
                && self.state(WAN_VHID).as_deref() == Some(state)
        });
    }
}

/// Polls `f` until it is true, panicking with `what` after
/// [`super::cluster::EVENTUALLY`].
pub fn eventually_ok(what: &str, mut f: impl FnMut() -> bool) {
    eventually(what, || f().then_some(()));
}
