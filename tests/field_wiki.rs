//! The UCARP setups of the field, run as they are (issue 18, item 1):
//!
//! - the French wiki's `/etc/default/ucarp`, `/etc/ucarp/interface/ucarp0`
//!   and `/etc/init.d/ucarp` (`field_wiki/`, byte for byte as in the page,
//!   comments included), with the one documented edit
//!   (`UCARP_EXEC=/usr/sbin/carpd-xdp`), the password placeholder replaced
//!   as every user must, and host B's own `SOURCE_ADDRESS`. The init script
//!   itself runs on two emulated machines ([`machine`]: each its own
//!   network namespace with `eth0`, its own `/run`, `/etc` and `/var/lib`);
//! - the Italian slides' command line (`-P -B`, up/down scripts doing
//!   `ifconfig eth0:1 ...`), on two machines, with the cable pulled.
//!
//! Without root only the command-line test runs.

mod common;
#[path = "field_wiki/machine.rs"]
mod machine;

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use carp_daemon::cli::Cli;
use carp_daemon::config::{self, Vip};
use clap::Parser;
use common::cluster::{eventually, xdp_attached, Lan};
use common::require_root;
use machine::{alive, comm, Machine};

/// `/etc/default/ucarp` as on the wiki page.
const DEFAULT_UCARP: &str = include_str!("field_wiki/default-ucarp");
/// `/etc/ucarp/interface/ucarp0` as on the wiki page.
const UCARP0: &str = include_str!("field_wiki/interface-ucarp0");
/// `/etc/init.d/ucarp` as on the wiki page (its line ending in `\ ` too).
const INIT_D_UCARP: &str = include_str!("field_wiki/init.d-ucarp");

/// What the operator puts in place of `<password>`.
const PASSWORD: &str = "wiki-secret";
/// The wiki's VIP and its hosts: A is the page's `SOURCE_ADDRESS`.
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 32);
const HOST_A: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const HOST_B: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
/// Where a UCARP-style daemon on `eth0`, vhid 42, answers `status`.
const WIKI_SOCKET: &str = "/run/carpd-xdp-eth0-42.sock";
/// The warning for the init script's stray `\`, as the daemon logs it.
const STRAY_WARNING: &str = r#"ignoring what is not an option, as UCARP does: "\\""#;

/// `text` with the one occurrence of `from` replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in the seed");
    text.replacen(from, to, 1)
}

/// `/etc/default/ucarp` after the one documented edit.
fn default_ucarp() -> String {
    edit(
        DEFAULT_UCARP,
        "UCARP_EXEC=/usr/sbin/ucarp\n",
        "UCARP_EXEC=/usr/sbin/carpd-xdp\n",
    )
}

/// `/etc/ucarp/interface/ucarp0` with the password and this host's address.
fn ucarp0(source: Ipv4Addr) -> String {
    let text = edit(
        UCARP0,
        "PASSWORD=<password>\n",
        &format!("PASSWORD={PASSWORD}\n"),
    );
    edit(
        &text,
        "SOURCE_ADDRESS=192.168.0.1\n",
        &format!("SOURCE_ADDRESS={source}\n"),
    )
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

/// The words the init script passes after `--`: its own two `UCARP_OPTS`
/// lines, evaluated by `sh` after sourcing the two files, split as its
/// unquoted `${UCARP_OPTS}` is.
fn init_script_words() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("default-ucarp");
    let ucarp0_path = dir.path().join("ucarp0");
    std::fs::write(&default, default_ucarp()).unwrap();
    std::fs::write(&ucarp0_path, ucarp0(HOST_A)).unwrap();
    let start = INIT_D_UCARP
        .find("UCARP_OPTS=")
        .expect("the UCARP_OPTS line");
    let end = start + INIT_D_UCARP[start..].find("\"\n").expect("its end") + 2;
    let script = format!(
        ". {}\n. {}\n{}printf '%s\\n' ${{UCARP_OPTS}}\n",
        default.display(),
        ucarp0_path.display(),
        &INIT_D_UCARP[start..end]
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The warnings of `config` about words that are not options.
fn operand_warnings(config: &config::Config) -> Vec<String> {
    config
        .warnings
        .iter()
        .map(ToString::to_string)
        .filter(|w| w.contains("not an option"))
        .collect()
}

#[test]
fn the_init_script_command_line_runs_and_its_stray_backslash_is_ignored() {
    let words = init_script_words();
    assert_eq!(
        words,
        [
            "-z",
            "-b",
            "1",
            "-i",
            "eth0:carp0",
            "\\",
            "-v",
            "42",
            "-p",
            PASSWORD,
            "-a",
            "192.168.0.32",
            "-s",
            "192.168.0.1"
        ],
        "the shell's words"
    );
    let argv = std::iter::once("carpd-xdp").chain(words.iter().map(String::as_str));
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    let config = config::from_cli(&cli.run, &no_env).unwrap_or_else(|e| panic!("{e}"));
    let inst = &config.instances[0];
    assert_eq!(
        (inst.interface.as_str(), inst.label.as_deref(), inst.vhid),
        ("eth0", Some("eth0:carp0"), 42)
    );
    assert_eq!(inst.vips, [Vip::parse("192.168.0.32").unwrap()]);
    assert_eq!(inst.srcip, Some(HOST_A.into()));
    assert_eq!((inst.advbase_secs, inst.advskew), (1, 0));
    assert!(inst.shutdown_on_exit && !inst.preempt);
    let ignored = operand_warnings(&config);
    assert_eq!(ignored, [format!("command line: {STRAY_WARNING}")]);

    // Several stray words: one warning naming them all. (`-a` may carry
    // a prefix, unlike UCARP's.)
    let cli = Cli::try_parse_from([
        "carpd-xdp",
        "-i",
        "eth0",
        "foo",
        "-v",
        "1",
        "-p",
        "pw",
        "-a",
        "10.0.0.1/24",
        "bar",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let config = config::from_cli(&cli.run, &no_env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.instances[0].vips,
        [Vip::parse("10.0.0.1/24").unwrap()]
    );
    let ignored = operand_warnings(&config);
    assert_eq!(
        ignored,
        [r#"command line: ignoring what is not an option, as UCARP does: "foo" "bar""#]
    );
    // Running from a file, the interface argument is still one.
    let cli = Cli::try_parse_from(["carpd-xdp", "--config", "/nonexistent.toml", "eth0", "eth1"])
        .unwrap_or_else(|e| panic!("{e}"));
    let err = config::from_cli(&cli.run, &no_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"INTERFACE: cannot be combined with a second interface argument "eth1" (after "eth0")"#
    );
}

/// The pid in `path` on machine `m`.
fn pid_in(m: &Machine, path: &str) -> u32 {
    let text = m.sh_ok(&format!("cat {path}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: {path}: {text:?}", m.name))
}

/// Waits until one machine reports MASTER and the other BACKUP on
/// `socket`; returns the master's index.
fn one_master(hosts: &[Machine; 2], socket: &str) -> usize {
    eventually("one MASTER and one BACKUP", || {
        let states: Vec<Option<String>> = hosts.iter().map(|m| m.state(socket)).collect();
        match (states[0].as_deref(), states[1].as_deref()) {
            (Some("MASTER"), Some("BACKUP")) => Some(0),
            (Some("BACKUP"), Some("MASTER")) => Some(1),
            _ => None,
        }
    })
}

/// Waits until host `i` alone has `vip`.
fn alone_holds(lan: &Lan, vip: Ipv4Addr, i: usize) {
    eventually(&format!("{vip} on host {i} only"), || {
        (lan.holders(vip) == [i]).then_some(())
    });
}

/// Waits until `ifconfig ALIAS` on `m` shows `vip`.
fn alias_shows(m: &Machine, alias: &str, vip: Ipv4Addr) {
    eventually(&format!("{vip} on {alias} of {}", m.name), || {
        let out = m.sh(&format!("ifconfig {alias}"));
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("inet {vip}"))
            .then_some(())
    });
}

/// For `window`, only host `holder` has `vip`, and its daemon stays MASTER.
fn stays(lan: &Lan, hosts: &[Machine; 2], socket: &str, vip: Ipv4Addr, holder: usize) {
    let window = Duration::from_secs(4);
    let start = Instant::now();
    while start.elapsed() < window {
        assert_eq!(lan.holders(vip), [holder], "{}", lan.addresses());
        assert_eq!(hosts[holder].state(socket).as_deref(), Some("MASTER"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Once the daemons `pids` are gone, nothing of them is left on either
/// host: no `vip`, no carpd-xdp process in its namespace, no receive
/// program on `eth0`, no status `socket`.
fn nothing_left(lan: &Lan, hosts: &[Machine; 2], pids: &[u32], vip: Ipv4Addr, socket: &str) {
    for &pid in pids {
        eventually("the daemons gone", || (!alive(pid)).then_some(()));
    }
    assert!(lan.holders(vip).is_empty(), "{}", lan.addresses());
    for (i, host) in lan.hosts.iter().enumerate() {
        let pids = common::run_ok(std::process::Command::new("ip").args([
            "netns",
            "pids",
            host.ns.name(),
        ]));
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let pid: u32 = pid.parse().unwrap();
            assert!(
                !alive(pid) || comm(pid).as_deref() != Some("carpd-xdp"),
                "host {i}: carpd-xdp {pid} still runs"
            );
        }
        assert!(
            !xdp_attached(&host.ns, "eth0"),
            "host {i}: XDP left on eth0"
        );
        assert!(!hosts[i].exists(socket), "host {i}: {socket} left");
    }
}

#[test]
fn the_wiki_setup_runs_verbatim_on_two_hosts() {
    if !require_root("the_wiki_setup_runs_verbatim_on_two_hosts") {
        return;
    }
    let lan = Lan::with_addrs("wiki", &[HOST_A, HOST_B], 24);
    let hosts = [
        Machine::boot(&lan, 0, "host0"),
        Machine::boot(&lan, 1, "host1"),
    ];
    for (i, m) in hosts.iter().enumerate() {
        // The page's steps, in its order.
        m.sh_ok("mkdir /etc/ucarp && mkdir /etc/ucarp/interface");
        m.write("/etc/default/ucarp", &default_ucarp(), 0o644);
        m.write(
            "/etc/ucarp/interface/ucarp0",
            &ucarp0(lan.hosts[i].ip),
            0o644,
        );
        m.write("/etc/init.d/ucarp", INIT_D_UCARP, 0o644);
        m.sh_ok("chmod 744 /etc/init.d/ucarp");
        let out = m.sh_ok("/etc/init.d/ucarp start");
        assert_eq!(out, "Starting ucarp daemon: ucarp.\n", "{}", m.name);
    }
    // Both daemons run, under start-stop-daemon's pid files.
    let pids: Vec<u32> = hosts
        .iter()
        .map(|m| pid_in(m, "/var/run/ucarp0.pid"))
        .collect();
    // start-stop-daemon --background writes the pid file from its forked
    // child, which may not have exec'd the daemon yet.
    for &pid in &pids {
        eventually(&format!("pid {pid} of the pid file runs carpd-xdp"), || {
            (comm(pid).as_deref() == Some("carpd-xdp")).then_some(())
        });
    }
    // Exactly one holds the VIP, with the alias label, and keeps it.
    let master = one_master(&hosts, WIKI_SOCKET);
    alone_holds(&lan, VIP, master);
    stays(&lan, &hosts, WIKI_SOCKET, VIP, master);
    alias_shows(&hosts[master], "eth0:carp0", VIP);
    for (i, m) in hosts.iter().enumerate() {
        assert!(alive(pids[i]), "{}: the daemon exited", m.name);
        // One warning for the stray `\`; the VIP the script configured
        // before start removed while BACKUP, said once.
        assert_eq!(m.syslog_matching(STRAY_WARNING).len(), 1, "{}", m.name);
        let removed = format!("removed {VIP} from eth0 while BACKUP");
        assert_eq!(
            m.syslog_matching(&removed).len(),
            1,
            "{}: {removed}",
            m.name
        );
    }

    // The master's cable is pulled: the VIP moves; plugged back, it stays.
    let other = 1 - master;
    lan.cut(master);
    alone_holds(&lan, VIP, other);
    lan.restore(master);
    eventually("the old master BACKUP", || {
        (hosts[master].state(WIKI_SOCKET).as_deref() == Some("BACKUP")).then_some(())
    });
    stays(&lan, &hosts, WIKI_SOCKET, VIP, other);

    // The page's stop, on both: `ifconfig eth0:carp0 down`, then SIGTERM.
    for i in [other, master] {
        let out = hosts[i].sh("/etc/init.d/ucarp stop");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Stopping ucarp daemon: ucarp.\n",
            "{}",
            hosts[i].name
        );
    }
    nothing_left(&lan, &hosts, &pids, VIP, WIKI_SOCKET);
    // The pid file is start-stop-daemon's (`--make-pidfile`, and `stop`
    // has no `--remove-pidfile`): it stays, as it does with UCARP.
    for m in &hosts {
        assert!(m.exists("/var/run/ucarp0.pid"), "{}", m.name);
    }
}

#[test]
fn the_italian_slides_command_lines_keep_working() {
    if !require_root("the_italian_slides_command_lines_keep_working") {
        return;
    }
    let vip = Ipv4Addr::new(172, 16, 90, 31);
    let (web, mail) = (
        Ipv4Addr::new(172, 16, 90, 101),
        Ipv4Addr::new(172, 16, 90, 102),
    );
    let lan = Lan::with_addrs("slid", &[web, mail], 24);
    let hosts = [
        Machine::boot(&lan, 0, "web"),
        Machine::boot(&lan, 1, "mail"),
    ];
    let socket = "/run/carpd-xdp-eth0-1.sock";
    for (i, m) in hosts.iter().enumerate() {
        m.sh_ok("mkdir -p /opt/bin");
        m.write(
            "/opt/bin/vip1-up.sh",
            "#!/bin/sh\n/sbin/ifconfig eth0:1 172.16.90.31\n",
            0o755,
        );
        m.write(
            "/opt/bin/vip1-down.sh",
            "#!/bin/sh\n/sbin/ifconfig eth0:1 down\n",
            0o755,
        );
        // The slides' line, `ucarp` replaced; -B: it returns at once.
        m.sh_ok(&format!(
            "/usr/sbin/carpd-xdp -i eth0 -s {} -v 1 -P -p password -a 172.16.90.31 -B \
             -u /opt/bin/vip1-up.sh -d /opt/bin/vip1-down.sh",
            lan.hosts[i].ip
        ));
    }
    let master = one_master(&hosts, socket);
    alone_holds(&lan, vip, master);
    // The up script's alias is there beside the daemon's address.
    alias_shows(&hosts[master], "eth0:1", vip);
    stays(&lan, &hosts, socket, vip, master);
    let pids: Vec<u32> = hosts
        .iter()
        .map(|m| {
            let st = m.status(socket).expect("status");
            u32::try_from(st["pid"].as_u64().expect("pid")).unwrap()
        })
        .collect();

    // "Scollegando il cavo di rete dal web server": the other host serves.
    let other = 1 - master;
    lan.cut(master);
    alone_holds(&lan, vip, other);
    alias_shows(&hosts[other], "eth0:1", vip);

    // SIGTERM (no -z): both leave, nothing is left.
    for &pid in &pids {
        // SAFETY: kill(2) has no memory preconditions.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    }
    nothing_left(&lan, &hosts, &pids, vip, socket);
}
