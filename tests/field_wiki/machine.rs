//! An emulated machine for the field tests: a host namespace of a [`Lan`]
//! plus a private mount namespace of its own, so that init scripts and
//! daemons that write to fixed paths (`/etc/ucarp`, `/var/run/ucarp0.pid`,
//! `/run/carpd-xdp-eth0-42.sock`, `/var/lib/carpd-xdp`) find a machine of
//! their own, as separate machines do, and the host's files are never
//! touched:
//!
//! - `/run` is a fresh tmpfs;
//! - `/etc`, `/usr/sbin`, `/opt`, `/var/lib` and `/dev` are overlays whose
//!   lower layer is the host's directory (read only) and whose upper layer
//!   is a tmpfs of this machine: the host's `/etc/default` is there, and
//!   what the test writes (`/etc/default/ucarp`, `/etc/ucarp/...`) is added
//!   on top, seen by this machine only;
//! - `/usr/sbin/carpd-xdp` is the binary under test (bind-mounted), so that
//!   `UCARP_EXEC=/usr/sbin/carpd-xdp` is the one documented edit;
//! - `/dev/log` is a datagram socket of the test: what the daemons send to
//!   syslog is kept per machine ([`Machine::syslog`]).
//!
//! Each machine's syslog is printed when a test fails, and always with
//! `FIELD_DEBUG=1`.
//!
//! A holder process (`sleep`) keeps the mount namespace alive; commands
//! enter it and the host's network namespace with `nsenter`. Everything is
//! gone when the holder and the namespace's processes are killed (the
//! [`Lan`] kills every process in its namespaces on drop): the mounts live
//! in the private namespace only.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::cluster::{Lan, CARPD};
use crate::common::must;
use carp_testnet::Captured;

/// Directories the machine sees through an overlay of its own.
const OVERLAID: [&str; 5] = ["/etc", "/usr/sbin", "/opt", "/var/lib", "/dev"];

/// One emulated machine.
pub struct Machine {
    /// Its name, for messages (`host0`).
    pub name: String,
    /// Keeps the mount namespace alive; killed on drop.
    holder: Captured,
    /// What its daemons sent to syslog, one message per entry.
    syslog: Arc<Mutex<Vec<String>>>,
    /// Tells the syslog reader to stop.
    stop: Arc<AtomicBool>,
}

impl Machine {
    /// Boots machine `name` on host `i` of `lan`.
    pub fn boot(lan: &Lan, i: usize, name: &str) -> Machine {
        let root = lan.path(name);
        std::fs::create_dir_all(root.join("upper")).unwrap();
        let log = root.join("log.sock");
        let socket = UnixDatagram::bind(&log).unwrap_or_else(|e| panic!("bind {log:?}: {e}"));
        let (syslog, stop) = read_syslog(socket);
        let mut setup = format!(
            "set -e\n\
             mount -t tmpfs -o mode=0755 tmpfs /run\n\
             mount -t tmpfs tmpfs {upper}\n",
            upper = root.join("upper").display()
        );
        for dir in OVERLAID {
            let layer = root
                .join("upper")
                .join(dir.trim_start_matches('/').replace('/', "_"));
            setup += &format!(
                "mkdir -p {u}/u {u}/w\n\
                 mount -t overlay overlay -o lowerdir={dir},upperdir={u}/u,workdir={u}/w {dir}\n",
                u = layer.display()
            );
        }
        setup += &format!(
            "rm -f /dev/log && touch /dev/log && mount --bind {log} /dev/log\n\
             touch /usr/sbin/carpd-xdp && mount --bind {CARPD} /usr/sbin/carpd-xdp\n\
             echo ready\n\
             exec sleep 100000\n",
            log = log.display()
        );
        let mut cmd = lan.hosts[i].ns.command("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &setup]);
        let mut holder = must(Captured::spawn(
            cmd,
            lan.dir.path(),
            &format!("{name}-holder"),
        ));
        let start = Instant::now();
        while !holder.stdout_text().contains("ready") {
            if let Some(st) = holder.wait_exit(Duration::from_millis(20)) {
                panic!("{name}: set-up failed ({st}): {}", holder.stderr_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name}: set-up hangs"
            );
        }
        Machine {
            name: name.to_string(),
            holder,
            syslog,
            stop,
        }
    }

    /// `sh -c script` inside the machine (its mounts and network), with
    /// `stdin` as standard input; waits for it.
    pub fn sh_with_input(&self, script: &str, stdin: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("nsenter")
            .arg("-t")
            .arg(self.holder.child.pid().to_string())
            .args(["-m", "-n", "--", "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsenter");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin)
            .expect("write stdin");
        child.wait_with_output().expect("wait nsenter")
    }

    /// `sh -c script` inside the machine; its output.
    pub fn sh(&self, script: &str) -> Output {
        self.sh_with_input(script, b"")
    }

    /// `sh -c script` inside the machine, which must succeed; its standard
    /// output.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{}: {script:?} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `text` to `path` in the machine with `mode`, as an operator's
    /// editor would.
    pub fn write(&self, path: &str, text: &str, mode: u32) {
        let script = format!("cat > {path} && chmod {mode:o} {path}");
        let out = self.sh_with_input(&script, text.as_bytes());
        assert!(
            out.status.success(),
            "{}: write {path}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether `path` exists in the machine.
    pub fn exists(&self, path: &str) -> bool {
        self.sh(&format!("test -e {path}")).status.success()
    }

    /// `carpd-xdp status --json` of the daemon listening on `socket`, if
    /// it answers.
    pub fn status(&self, socket: &str) -> Option<serde_json::Value> {
        let out = self.sh(&format!(
            "timeout 5 /usr/sbin/carpd-xdp status --json --socket {socket}"
        ));
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The state of the first instance of the daemon on `socket`.
    pub fn state(&self, socket: &str) -> Option<String> {
        let st = self.status(socket)?;
        Some(st["instances"][0]["state"].as_str()?.to_string())
    }

    /// Every message the machine's daemons sent to syslog so far.
    pub fn syslog(&self) -> Vec<String> {
        self.syslog.lock().unwrap().clone()
    }

    /// The messages that contain `needle`.
    pub fn syslog_matching(&self, needle: &str) -> Vec<String> {
        self.syslog()
            .into_iter()
            .filter(|m| m.contains(needle))
            .collect()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if std::thread::panicking() || std::env::var_os("FIELD_DEBUG").is_some() {
            eprintln!(
                "---- {} syslog ----\n{}",
                self.name,
                self.syslog().join("\n")
            );
        }
    }
}

/// Whether process `pid` is alive (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

/// The command name of process `pid`, if it exists.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

/// Reads syslog datagrams from `socket` on a thread until told to stop.
fn read_syslog(socket: UnixDatagram) -> (Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let (kept, stopped) = (messages.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while !stopped.load(Ordering::SeqCst) {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                kept.lock().unwrap().push(text);
            }
        }
    });
    (messages, stop)
}
