//! A LAN of throw-away namespaces for end-to-end daemon tests: a "switch"
//! namespace with a Linux bridge, N host namespaces and a client namespace,
//! each joined to the bridge by a veth (`eth0` on the host side, `hN` / `cl`
//! as the bridge port). Hosts are `10.<net>.<lan>.(i+1)/24` (or a wider
//! prefix, [`Lan::with_prefix`], or addresses chosen by the test,
//! [`Lan::with_addrs`]), the client is `.100`. Daemons (`carpd-xdp`) and
//! UCARP run inside host namespaces with their output captured to files in a
//! temp dir, printed when a test panics.
//!
//! Everything is removed on drop: processes are killed (SIGKILL) and reaped
//! by their guards, namespaces deleted by [`Netns`]. Declare the [`Lan`]
//! before the daemons so that the daemons are dropped first.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use carp_testnet::{Bridge, Captured, Port};
use serde_json::Value;

use super::{must, Netns};

/// Path of the daemon under test.
pub const CARPD: &str = env!("CARGO_BIN_EXE_carpd-xdp");

/// Hang guard for "eventually" conditions: long enough never to matter on a
/// loaded 2-core machine, short enough that a broken daemon fails the test.
pub const EVENTUALLY: Duration = Duration::from_secs(20);

/// One host of the LAN.
pub struct Host {
    /// Its namespace.
    pub ns: Netns,
    /// Its address on `eth0`.
    pub ip: Ipv4Addr,
    /// MAC address of its `eth0`.
    pub mac: [u8; 6],
    /// Name of its bridge port in the switch namespace.
    pub port: String,
}

/// The switch, the hosts and the client, plus a scratch directory.
pub struct Lan {
    /// The switch namespace and its bridge `br0`.
    pub switch: Bridge,
    /// The CARP hosts, index i at `.i+1`.
    pub hosts: Vec<Host>,
    /// The client (`eth0`, `.100`), where probes run.
    pub client: Netns,
    /// Scratch directory: configs, scripts, logs, status sockets.
    pub dir: tempfile::TempDir,
    /// First three octets of the /24.
    net: [u8; 3],
}

impl Lan {
    /// Builds a LAN of `hosts` hosts on `10.<a>.<b>.0/24`. `tag` names the
    /// namespaces (`tag` must be short: namespace names end up in logs).
    pub fn new(tag: &str, a: u8, b: u8, hosts: usize) -> Lan {
        Lan::with_prefix(tag, a, b, hosts, 24)
    }

    /// The same with the hosts' and client's addresses (still `.i+1` and
    /// `.100` of `10.<a>.<b>`) on a `prefix_len` network, e.g. 16 for room
    /// for more VIPs than a /24 holds, each of them a secondary address of
    /// the host's own network.
    pub fn with_prefix(tag: &str, a: u8, b: u8, hosts: usize, prefix_len: u8) -> Lan {
        let addrs: Vec<Ipv4Addr> = (0..hosts)
            .map(|i| Ipv4Addr::new(10, a, b, i as u8 + 1))
            .collect();
        Lan::with_addrs(tag, &addrs, prefix_len)
    }

    /// Builds a LAN whose host `i` has address `hosts[i]/prefix_len`, for
    /// layouts a /24 cannot give (hosts in different /24s of a /16). The
    /// client is `.100` of the first host's /24 and [`Lan::addr`] gives
    /// addresses of that /24 too; none of the hosts may be that client.
    pub fn with_addrs(tag: &str, hosts: &[Ipv4Addr], prefix_len: u8) -> Lan {
        let first = hosts.first().expect("at least one host").octets();
        let net = [first[0], first[1], first[2]];
        let client_ip = Ipv4Addr::new(net[0], net[1], net[2], 100);
        assert!(
            !hosts.contains(&client_ip),
            "{client_ip} is the client's address"
        );
        let switch = must(carp_testnet::Netns::new(&format!("{tag}-sw")).and_then(Bridge::new));
        let attach = |ns: &Netns, port: &str, ip: Ipv4Addr| {
            let cidr = format!("{ip}/{prefix_len}");
            let how = Port {
                cidr: Some(&cidr),
                ..Port::default()
            };
            must(switch.attach(ns, "eth0", port, how));
        };
        let mut list = Vec::new();
        for (i, &ip) in hosts.iter().enumerate() {
            let ns = Netns::new(&format!("{tag}-h{i}"));
            let port = format!("h{i}");
            attach(&ns, &port, ip);
            let mac = ns.mac("eth0");
            list.push(Host { ns, ip, mac, port });
        }
        let client = Netns::new(&format!("{tag}-cl"));
        attach(&client, "cl", client_ip);
        let dir = tempfile::Builder::new()
            .prefix(&format!("carpd-{tag}-"))
            .tempdir()
            .expect("temp dir");
        Lan {
            switch,
            hosts: list,
            client,
            dir,
            net,
        }
    }

    /// Address `.last` of the LAN (VIPs: pick `.10`, `.20`, ...).
    pub fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], last)
    }

    /// Path of `name` in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` in the scratch directory; `mode` 0o755 for
    /// scripts.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Pulls host `i`'s cable: its bridge port goes down, so its `eth0`
    /// loses carrier.
    pub fn cut(&self, i: usize) {
        must(self.switch.set_port(&self.hosts[i].port, false));
    }

    /// Partitions the hosts from one another (`on`) or joins them again,
    /// carrier kept: their bridge ports are isolated, so each host still
    /// reaches the client but no other host.
    pub fn split_hosts(&self, on: bool) {
        for h in &self.hosts {
            must(self.switch.set_isolated(&h.port, on));
        }
    }

    /// Plugs host `i`'s cable back in.
    pub fn restore(&self, i: usize) {
        must(self.switch.set_port(&self.hosts[i].port, true));
    }

    /// Deletes host `i`'s `eth0` (the veth pair, bridge port included) and
    /// creates it again as a re-created VLAN or bond, or a reloaded driver,
    /// would come back: same name, MAC and address, a new index, attached to
    /// the bridge again, and raised last. Returns the new index.
    pub fn recreate(&self, i: usize) -> u32 {
        self.recreate_with(i, false)
    }

    /// As [`Lan::recreate`], with `eth0` raised before its address is
    /// added when `address_last` (as a network manager may do).
    pub fn recreate_with(&self, i: usize, address_last: bool) -> u32 {
        let h = &self.hosts[i];
        let old = h.ns.ifindex("eth0");
        h.ns.ip(&["link", "del", "eth0"]);
        let how = Port {
            mac: Some(h.mac),
            down: true,
            ..Port::default()
        };
        must(self.switch.attach(&h.ns, "eth0", &h.port, how));
        let addr = format!("{}/24", h.ip);
        if address_last {
            h.ns.ip(&["link", "set", "eth0", "up"]);
            // Long enough for the daemon to see the link up without it.
            std::thread::sleep(Duration::from_millis(200));
            h.ns.ip(&["addr", "add", &addr, "dev", "eth0"]);
        } else {
            h.ns.ip(&["addr", "add", &addr, "dev", "eth0"]);
            h.ns.ip(&["link", "set", "eth0", "up"]);
        }
        let new = h.ns.ifindex("eth0");
        assert_ne!(new, old, "the re-created eth0 must have a new index");
        new
    }

    /// Indices of the hosts whose `eth0` carries `vip`.
    pub fn holders(&self, vip: Ipv4Addr) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| has_addr(&self.hosts[i].ns, vip))
            .collect()
    }

    /// The whole `ip -o addr` of every host, for failure messages.
    pub fn addresses(&self) -> String {
        let mut s = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let _ = writeln!(s, "host {i} ({}):", h.ns.name());
            s += &h.ns.ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
        }
        s
    }

    /// Daemon config for host `i`: a `[global]` section pointing the status
    /// socket at `sock` and logging to stderr, then the instances.
    pub fn config(&self, i: usize, sock: &Path, instances: &[Inst]) -> String {
        let mut t = format!(
            "[global]\nstatus_socket = \"{}\"\nlog_facility = \"none\"\ndebug = true\nstate_dir = \"{}\"\n",
            sock.display(),
            self.path(&format!("state-{i}")).display()
        );
        for inst in instances {
            t += &inst.toml(self.hosts[i].ip);
        }
        t
    }

    /// Starts `carpd-xdp --config` on host `i` with the instances given,
    /// the config named `<name>.toml`.
    pub fn daemon(&self, i: usize, name: &str, instances: &[Inst]) -> Daemon {
        let sock = self.path(&format!("{name}.sock"));
        let text = self.config(i, &sock, instances);
        let config = self.write(&format!("{name}.toml"), &text, 0o644);
        let args = vec!["--config".to_string(), config.display().to_string()];
        Daemon::start(self, i, name, &args, &[], sock)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- addresses at failure ----\n{}", self.addresses());
        }
    }
}

/// True when `eth0` in `ns` carries `addr`.
pub fn has_addr(ns: &Netns, addr: Ipv4Addr) -> bool {
    let out = ns.ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    let needle = format!("inet {addr}/");
    out.contains(&needle)
}

/// True when an XDP program is attached to `ifname` in `ns`.
pub fn xdp_attached(ns: &Netns, ifname: &str) -> bool {
    ns.ip(&["-d", "link", "show", "dev", ifname])
        .contains("xdp")
}

/// One `[[instance]]` on `eth0`.
#[derive(Clone, Debug)]
pub struct Inst {
    /// Virtual host id.
    pub vhid: u8,
    /// `ADDRESS/PREFIX` of each VIP.
    pub vips: Vec<String>,
    /// Advertisement base, seconds.
    pub advbase_secs: u8,
    /// Advertisement skew, 1/256 s.
    pub advskew: u8,
    /// Take over from a slower master.
    pub preempt: bool,
    /// Shared secret (inline).
    pub password: String,
    /// Raw TOML appended to the instance table (more keys, then
    /// `[[instance.health_check]]` tables).
    pub extra: String,
    /// Whether `srcip` is set to the host's address (else the daemon looks
    /// the sources up on the interface: first IPv4, IPv6 link-local).
    pub srcip: bool,
}

impl Inst {
    /// vhid with one VIP, advbase 1, the given advskew, preempt on.
    pub fn new(vhid: u8, vip: Ipv4Addr, advskew: u8) -> Inst {
        Inst {
            vhid,
            vips: vec![format!("{vip}/24")],
            advbase_secs: 1,
            advskew,
            preempt: true,
            password: format!("pw{vhid}"),
            extra: String::new(),
            srcip: true,
        }
    }

    /// The same with preempt set to `on`.
    pub fn preempt(mut self, on: bool) -> Inst {
        self.preempt = on;
        self
    }

    /// The same without `srcip`: advert sources are looked up on the
    /// interface, as needed for IPv6 VIPs next to IPv4 ones.
    pub fn auto_srcip(mut self) -> Inst {
        self.srcip = false;
        self
    }

    /// The same with raw TOML appended.
    pub fn extra(mut self, toml: &str) -> Inst {
        self.extra += toml;
        self
    }

    /// The `[[instance]]` table for a host whose address is `srcip`.
    pub fn toml(&self, srcip: Ipv4Addr) -> String {
        let vips: Vec<String> = self.vips.iter().map(|v| format!("\"{v}\"")).collect();
        let srcip = if self.srcip {
            format!("srcip = \"{srcip}\"\n")
        } else {
            String::new()
        };
        format!(
            "\n[[instance]]\ninterface = \"eth0\"\nvhid = {}\n{srcip}\
             vips = [{}]\nadvbase_secs = {}\nadvskew = {}\npreempt = {}\npassword = \"{}\"\n{}\n",
            self.vhid,
            vips.join(", "),
            self.advbase_secs,
            self.advskew,
            self.preempt,
            self.password,
            self.extra
        )
    }

    /// Master-down interval as a backup with these settings waits:
    /// `3 × advbase + advskew/256` s (deadratio 3; advbase 0: 3 × interval).
    pub fn master_down(&self) -> Duration {
        master_down(self.advbase_secs, self.advskew, 3)
    }

    /// The advert interval `advbase + advskew/256` s.
    pub fn interval(&self) -> Duration {
        interval(self.advbase_secs, self.advskew)
    }
}

/// `advbase + advskew/256` seconds, at least 1/256 s (the shortest
/// interval the wire format can express, as the daemon clamps it).
pub fn interval(advbase_secs: u8, advskew: u8) -> Duration {
    (Duration::from_secs(advbase_secs.into()) + Duration::from_secs(advskew.into()) / 256)
        .max(Duration::from_secs(1) / 256)
}

/// `deadratio × advbase + advskew/256` seconds; with advbase 0, where that
/// would leave no margin, `deadratio × interval` (the daemon's rule).
pub fn master_down(advbase_secs: u8, advskew: u8, deadratio: u32) -> Duration {
    if advbase_secs == 0 {
        return interval(0, advskew) * deadratio;
    }
    Duration::from_secs(u64::from(advbase_secs) * u64::from(deadratio))
        + Duration::from_secs(advskew.into()) / 256
}

/// A process in a host namespace with stdout/stderr in files of the LAN's
/// scratch directory; killed on drop, and its output printed if the test is
/// failing ([`Captured`]).
pub struct Proc(Captured);

impl Proc {
    /// Spawns `program args` in `ns` with `env` added.
    pub fn spawn(
        lan: &Lan,
        ns: &Netns,
        name: &str,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = ns.command(program);
        cmd.args(args).envs(env.iter().copied());
        Proc(must(Captured::spawn(cmd, lan.dir.path(), name)))
    }
}

impl Deref for Proc {
    type Target = Captured;

    fn deref(&self) -> &Captured {
        &self.0
    }
}

impl DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Captured {
        &mut self.0
    }
}

/// A running `carpd-xdp` and its status socket.
pub struct Daemon {
    /// The process.
    pub proc: Proc,
    /// Its status socket.
    pub sock: PathBuf,
    /// Host index it runs on.
    pub host: usize,
}

impl Daemon {
    /// Starts `carpd-xdp ARGS` on host `i`.
    pub fn start(
        lan: &Lan,
        i: usize,
        name: &str,
        args: &[String],
        env: &[(&str, &str)],
        sock: PathBuf,
    ) -> Daemon {
        // Our debug logs without the eBPF loader's, and no colours in files.
        let mut env = env.to_vec();
        env.extend([("RUST_LOG", "info,carp_daemon=debug"), ("NO_COLOR", "1")]);
        let proc = Proc::spawn(lan, &lan.hosts[i].ns, name, CARPD, args, &env);
        Daemon {
            proc,
            sock,
            host: i,
        }
    }

    /// `carpd-xdp status --json`, or `None` while the daemon does not
    /// answer (not started yet, gone, or the answer is not JSON).
    pub fn status(&self) -> Option<Value> {
        status(&self.sock)
    }

    /// The status of instance `vhid`, if the daemon answers.
    pub fn instance(&self, vhid: u8) -> Option<Value> {
        let st = self.status()?;
        st["instances"]
            .as_array()?
            .iter()
            .find(|i| i["vhid"].as_u64() == Some(vhid.into()))
            .cloned()
    }

    /// State of instance `vhid` ("INIT", "BACKUP", "MASTER").
    pub fn state(&self, vhid: u8) -> Option<String> {
        Some(self.instance(vhid)?["state"].as_str()?.to_string())
    }

    /// Waits until instance `vhid` is in `state`, panicking after
    /// [`EVENTUALLY`] or if the daemon exits.
    pub fn wait_state(&mut self, vhid: u8, state: &str) {
        self.wait_state_in(vhid, &[state]);
    }

    /// Waits until instance `vhid` is not MASTER (INIT or BACKUP: a host
    /// whose link is down may report either, as carp(4) and UCARP differ).
    pub fn wait_not_master(&mut self, vhid: u8) {
        self.wait_state_in(vhid, &["INIT", "BACKUP"]);
    }

    fn wait_state_in(&mut self, vhid: u8, states: &[&str]) {
        let name = self.proc.name.clone();
        let start = Instant::now();
        loop {
            if let Some(now) = self.state(vhid) {
                if states.contains(&now.as_str()) {
                    return;
                }
            }
            if let Some(st) = self.proc.child.0.try_wait().expect("try_wait") {
                self.proc.status = Some(st);
                panic!("{name} exited ({st}) while waiting for vhid {vhid} {states:?}");
            }
            assert!(
                start.elapsed() < EVENTUALLY,
                "{name}: vhid {vhid} not {states:?} within {EVENTUALLY:?} (last: {:?})",
                self.state(vhid)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signal number to the daemon.
    pub fn signal(&self, signal: i32) {
        self.proc.signal(signal)
    }
}

/// Runs `carpd-xdp status --json --socket SOCK` (killed after 5 s) and
/// parses its output.
pub fn status(sock: &Path) -> Option<Value> {
    if !sock.exists() {
        return None;
    }
    let mut child = Command::new(CARPD)
        .args(["status", "--json", "--socket"])
        .arg(sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn carpd-xdp status");
    // Read the answer while waiting: a report larger than the pipe's buffer
    // (hundreds of instances) would otherwise block the child forever.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let guard_start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if guard_start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader.join().ok()?.ok()?;
    if !status.success() {
        return None;
    }
    serde_json::from_slice(&out).ok()
}

/// Polls `f` every 20 ms until it returns `Some`, panicking with `what`
/// after [`EVENTUALLY`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < EVENTUALLY,
            "timed out after {EVENTUALLY:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// UCARP's options for `vhid` on `lan`: its password, the vhid's VIP,
/// advbase 1 and `advskew`, then `extra`.
pub fn ucarp_args(lan: &Lan, vhid: u8, pass: &str, advskew: u8, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        format!("--vhid={vhid}"),
        format!("--pass={pass}"),
        format!("--addr={}", lan.addr(vhid)),
        "--advbase=1".to_string(),
        format!("--advskew={advskew}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Real UCARP in host `i`, managing its VIP through up/down scripts that
/// run `ip addr add/del VIP/24` and log their argv to `<name>.scripts`.
pub fn ucarp(lan: &Lan, i: usize, name: &str, args: &[String]) -> Proc {
    let log = lan.path(&format!("{name}.scripts"));
    let up = lan.write(
        &format!("{name}-up.sh"),
        &format!(
            "#!/bin/sh\necho \"up $*\" >> {log}\nexec ip addr add \"$2/24\" dev \"$1\"\n",
            log = log.display()
        ),
        0o755,
    );
    let down = lan.write(
        &format!("{name}-down.sh"),
        &format!(
            "#!/bin/sh\necho \"down $*\" >> {log}\nip addr del \"$2/24\" dev \"$1\" 2>/dev/null\nexit 0\n",
            log = log.display()
        ),
        0o755,
    );
    let mut all = vec![
        "--interface=eth0".to_string(),
        format!("--srcip={}", lan.hosts[i].ip),
        format!("--upscript={}", up.display()),
        format!("--downscript={}", down.display()),
    ];
    all.extend_from_slice(args);
    Proc::spawn(lan, &lan.hosts[i].ns, name, "ucarp", &all, &[])
}
