//! The command line (UCARP drop-in, our options, subcommands) and the
//! configuration file: what parses, the defaults, the shipped examples, and
//! one exact error message per kind of error. The file tests are in
//! `cli_config/config_file.rs`.

#[path = "cli_config/check_host.rs"]
mod check_host;
#[path = "cli_config/config_file.rs"]
mod config_file;
#[path = "cli_config/reference.rs"]
mod reference;
#[path = "cli_config/starter.rs"]
mod starter;
#[path = "cli_config/sync_group.rs"]
mod sync_group;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use carp_daemon::chain::Chain;
use carp_daemon::cli::{Cli, Command};
use carp_daemon::config::{
    self, Config, Facility, LogFormat, MasterDownRule, PasswordSource, ReplayMode, Vip,
};
use carp_daemon::xdp::mode::XdpMode;
use clap::Parser;

pub(crate) fn no_env(_: &str) -> Option<OsString> {
    None
}

fn parse(args: &[&str]) -> Cli {
    let argv = std::iter::once("carpd-xdp").chain(args.iter().copied());
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_err(args: &[&str]) -> String {
    let argv = std::iter::once("carpd-xdp").chain(args.iter().copied());
    Cli::try_parse_from(argv)
        .expect_err("must be rejected")
        .to_string()
}

fn run(args: &[&str]) -> Result<Config, config::ConfigError> {
    config::from_cli(&parse(args).run, &no_env)
}

/// The error and its causes, as `carpd-xdp` prints them.
fn run_err(args: &[&str]) -> String {
    Chain(&run(args).expect_err("must be rejected")).to_string()
}

/// A scratch directory removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("carpd-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        // Password files must be private; configs may be too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

// ---- the UCARP command line ----

#[test]
fn every_ucarp_flag_parses_in_short_form() {
    let cli = parse(&[
        "-i",
        "eth1",
        "-s",
        "10.1.1.1",
        "-v",
        "42",
        "-p",
        "love",
        "-P",
        "-n",
        "-a",
        "10.1.1.252",
        "-b",
        "2",
        "-k",
        "50",
        "-x",
        "extra",
        "-u",
        "/etc/vip-up.sh",
        "-d",
        "/etc/vip-down.sh",
        "-D",
        "-r",
        "5",
        "-z",
        "-B",
        "-f",
        "local3",
        "-S",
        "-M",
        "-m",
        "239.192.0.1",
    ]);
    assert!(cli.command.is_none());
    let r = &cli.run;
    assert_eq!(r.interface.as_deref(), Some("eth1"));
    assert_eq!(r.srcip, Some(ip("10.1.1.1")));
    assert_eq!(r.vhid, Some(42));
    assert_eq!(r.pass.as_deref(), Some("love"));
    assert!(
        r.preempt
            && r.neutral
            && r.debug
            && r.shutdown
            && r.daemonize
            && r.ignoreifstate
            && r.nomcast
    );
    assert_eq!(r.addr, vec!["10.1.1.252"]);
    assert_eq!(
        (r.advbase, r.advskew, r.deadratio),
        (Some(2), Some(50), Some(5))
    );
    assert_eq!(r.xparam.as_deref(), Some("extra"));
    assert_eq!(r.upscript.as_deref(), Some(Path::new("/etc/vip-up.sh")));
    assert_eq!(r.downscript.as_deref(), Some(Path::new("/etc/vip-down.sh")));
    assert_eq!(r.facility.as_deref(), Some("local3"));
    assert_eq!(r.mcast, Some(ip("239.192.0.1")));

    let config = config::from_cli(r, &no_env).unwrap();
    let inst = &config.instances[0];
    assert_eq!(
        (inst.interface.as_str(), inst.vhid, inst.srcip),
        ("eth1", 42, Some(ip("10.1.1.1")))
    );
    assert_eq!(
        inst.vips,
        vec![Vip {
            addr: ip("10.1.1.252"),
            prefix_len: 32
        }]
    );
    assert_eq!(
        (inst.advbase_secs, inst.advskew, inst.deadratio),
        (2, 50, 5)
    );
    assert!(
        inst.preempt
            && inst.neutral
            && inst.shutdown_on_exit
            && inst.ignore_ifstate
            && inst.broadcast_mac
    );
    assert_eq!(inst.password.key(), b"love");
    assert_eq!(inst.scripts.xparam.as_deref(), Some("extra"));
    assert_eq!(inst.mcast, Some(ip("239.192.0.1")));
    assert_eq!(config.global.log.facility, Some(Facility::Local(3)));
    assert!(config.global.log.debug && config.global.daemonize);
}

#[test]
fn every_ucarp_flag_parses_in_long_form() {
    let scratch = Scratch::new("long");
    let passfile = scratch.file("pass", "from-file\n");
    let passfile_arg = format!("--passfile={}", passfile.display());
    let cli = parse(&[
        "--interface=eth2",
        "--srcip=10.1.1.2",
        "--vhid=7",
        &passfile_arg,
        "--preempt",
        "--neutral",
        "--addr=10.1.1.253",
        "--advbase=3",
        "--advskew=9",
        "--xparam=x",
        "--upscript=/u",
        "--downscript=/d",
        "--debug",
        "--deadratio=4",
        "--shutdown",
        "--daemonize",
        "--facility=none",
        "--ignoreifstate",
        "--nomcast",
        "--mcastip=239.192.0.2",
    ]);
    let config = config::from_cli(&cli.run, &no_env).unwrap();
    let inst = &config.instances[0];
    assert_eq!(
        (
            inst.interface.as_str(),
            inst.vhid,
            inst.advbase_secs,
            inst.advskew,
            inst.deadratio
        ),
        ("eth2", 7, 3, 9, 4)
    );
    assert_eq!(inst.password.key(), b"from-file");
    assert_eq!(inst.password.source(), &PasswordSource::File(passfile));
    assert!(
        inst.preempt
            && inst.neutral
            && inst.shutdown_on_exit
            && inst.ignore_ifstate
            && inst.broadcast_mac
    );
    assert_eq!(inst.scripts.upscript.as_deref(), Some(Path::new("/u")));
    assert_eq!(inst.scripts.downscript.as_deref(), Some(Path::new("/d")));
    assert_eq!(inst.mcast, Some(ip("239.192.0.2")));
    assert_eq!(
        config.global.log.facility, None,
        "--facility=none turns syslog off"
    );
    assert!(config.global.log.debug && config.global.daemonize);
    // --mcast is the name UCARP's usage text gives.
    assert_eq!(
        parse(&["--mcast", "239.1.1.1"]).run.mcast,
        Some(ip("239.1.1.1"))
    );
    // No warning: the password came from a file.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn ucarp_defaults_apply_when_options_are_left_out() {
    let config = run(&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.9"]).unwrap();
    let inst = &config.instances[0];
    assert_eq!(inst.advbase_secs, 1, "ucarp DEFAULT_ADVBASE");
    assert_eq!(inst.advskew, 0);
    assert_eq!(inst.deadratio, 3, "ucarp DEFAULT_DEAD_RATIO");
    assert_eq!(inst.mcast, None, "224.0.0.18");
    assert_eq!(inst.master_down, MasterDownRule::Ucarp);
    assert!(
        !inst.preempt
            && !inst.neutral
            && !inst.shutdown_on_exit
            && !inst.ignore_ifstate
            && !inst.broadcast_mac
    );
    assert_eq!(inst.srcip, None);
    assert_eq!(inst.label, None);
    assert_eq!(
        config.global.log.facility,
        Some(Facility::Daemon),
        "ucarp DEFAULT_FACILITY"
    );
    assert_eq!(config.global.xdp_mode, XdpMode::Auto);
    // One process per vhid, as UCARP runs: a status socket per instance.
    assert_eq!(
        config.global.status_socket,
        Path::new("/run/carpd-xdp-eth0-1.sock")
    );
    assert!(!config.global.daemonize && !config.global.log.debug);
    // -p is accepted but recorded as a warning (visible in ps).
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0]
        .to_string()
        .starts_with("-p/--pass: password given on the command line"));
}

#[test]
fn init_script_command_line_with_an_alias_interface_works() {
    // As an init script runs `ucarp $UCARP_OPTS`: the shell splits on spaces.
    let ucarp_opts = "--interface=eth0:carp0 --srcip=10.1.1.1 --vhid=1 --pass=mypassword \
        --addr=10.1.1.252 --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh -P -z -B -f daemon";
    let args: Vec<&str> = ucarp_opts.split_whitespace().collect();
    let config = run(&args).unwrap();
    let inst = &config.instances[0];
    assert_eq!(inst.interface, "eth0");
    assert_eq!(inst.label.as_deref(), Some("eth0:carp0"));
    assert_eq!(inst.vip_label(), "eth0:carp0");
    assert_eq!(inst.vips[0].addr, ip("10.1.1.252"));
    assert!(inst.preempt && inst.shutdown_on_exit && config.global.daemonize);
}

#[test]
fn unique_prefixes_of_long_options_are_accepted_like_getopt_long() {
    let config = run(&[
        "--inter=eth0",
        "--vh=3",
        "--pass=pw",
        "--addr=10.0.0.1",
        "--pre",
        "--dead=2",
    ])
    .unwrap();
    let inst = &config.instances[0];
    assert_eq!((inst.vhid, inst.deadratio, inst.preempt), (3, 2, true));
    // `--pass` is exact although also a prefix of `--passfile`; `--pas` is
    // ambiguous, as with getopt_long.
    assert_eq!(inst.password.key(), b"pw");
    assert!(parse_err(&["--pas=pw"]).contains("--pas"));
}

#[test]
fn several_addresses_and_ipv6_are_accepted() {
    let config = run(&[
        "-i",
        "eth0",
        "-v",
        "1",
        "-p",
        "pw",
        "-a",
        "2001:db8::1/64",
        "-a",
        "2001:db8::2",
    ])
    .unwrap();
    let vips = &config.instances[0].vips;
    assert_eq!(
        vips[0],
        Vip {
            addr: ip("2001:db8::1"),
            prefix_len: 64
        }
    );
    assert_eq!(
        vips[1],
        Vip {
            addr: ip("2001:db8::2"),
            prefix_len: 128
        }
    );
}

#[test]
fn help_is_dash_h_as_in_ucarp() {
    for flag in ["-h", "--help"] {
        let err = Cli::try_parse_from(["carpd-xdp", flag]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(err.to_string().contains("--downscript"), "{err}");
    }
}

#[test]
fn out_of_range_flags_name_the_flag_and_value() {
    for (args, flag, value) in [
        (&["-v", "0"][..], "--vhid", "0"),
        (&["-v", "256"][..], "--vhid", "256"),
        (&["-k", "255"][..], "--advskew", "255"),
        (&["-b", "256"][..], "--advbase", "256"),
        (&["-r", "0"][..], "--deadratio", "0"),
        (&["-s", "10.0.0"][..], "--srcip", "10.0.0"),
        (&["--xdp-mode", "fast"][..], "--xdp-mode", "fast"),
        (&["--replay", "never"][..], "--replay", "never"),
    ] {
        let err = parse_err(args);
        assert!(
            err.contains(flag) && err.contains(&format!("'{value}'")),
            "{args:?}: {err}"
        );
    }
}

// ---- positional interface, our options, subcommands ----

#[test]
fn positional_interface_and_subcommands_are_told_apart() {
    let cli = parse(&["eth0"]);
    assert!(cli.command.is_none());
    assert_eq!(cli.run.interface_filter.as_deref(), Some("eth0"));

    let cli = parse(&["check-config", "/tmp/x.toml"]);
    assert!(
        matches!(cli.command, Some(Command::CheckConfig(ref a)) if a.file == Path::new("/tmp/x.toml"))
    );
    let cli = parse(&["check-config"]);
    assert!(
        matches!(cli.command, Some(Command::CheckConfig(ref a)) if a.file == Path::new(config::DEFAULT_CONFIG_PATH))
    );

    let cli = parse(&["status", "--json", "--socket", "/run/x.sock"]);
    assert!(
        matches!(cli.command, Some(Command::Status(ref a)) if a.json && a.socket.as_deref() == Some(Path::new("/run/x.sock")))
    );
    let cli = parse(&["status"]);
    assert!(
        matches!(cli.command, Some(Command::Status(ref a)) if !a.json && a.socket.is_none() && a.run_dir == Path::new("/run"))
    );

    let cli = parse(&["monitor", "-i", "eth0", "-v", "5", "--json"]);
    assert!(
        matches!(cli.command, Some(Command::Monitor(ref m)) if m.interfaces == ["eth0"] && m.vhids == [5] && m.json)
    );

    // After daemon options a subcommand name would be taken as the
    // interface; it is refused instead of looking for an interface "status".
    assert_eq!(
        run_err(&["-v", "1", "status"]),
        "-i/--interface: \"status\" is not an interface name (it is a subcommand; give subcommands first)"
    );
}

#[test]
fn advbase_zero_with_advskew_zero_is_allowed_for_the_fastest_interval() {
    // UCARP refuses it; the core clamps the interval to 1/256 s (issue 3).
    let config = run(&[
        "-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.1", "-b", "0",
    ])
    .expect("advbase 0 with advskew 0 is valid");
    assert_eq!(
        (
            config.instances[0].advbase_secs,
            config.instances[0].advskew
        ),
        (0, 0)
    );
}

#[test]
fn realtime_options_parse_and_override_the_file() {
    let scratch = Scratch::new("rt");
    let text = format!(
        "[global]\nrealtime_priority = 20\n{}",
        config_file::base_doc()
    );
    let path = scratch.file("c.toml", &text);
    let path_arg = path.to_str().unwrap();
    let config = config::from_cli(&parse(&["--config", path_arg]).run, &no_env).unwrap();
    assert_eq!(config.global.realtime.priority, 20);
    assert!(!config.global.realtime.lock_memory);
    let cli = parse(&[
        "--config",
        path_arg,
        "--realtime-priority",
        "50",
        "--lock-memory",
    ]);
    let config = config::from_cli(&cli.run, &no_env).unwrap();
    assert_eq!(config.global.realtime.priority, 50);
    assert!(config.global.realtime.lock_memory);
    assert!(
        config.global.realtime.auto,
        "auto_realtime is on by default"
    );
    let cli = parse(&["--config", path_arg, "--no-auto-realtime"]);
    let config = config::from_cli(&cli.run, &no_env).unwrap();
    assert!(!config.global.realtime.auto);
    // 0 turns it off whatever the file says.
    let cli = parse(&["--config", path_arg, "--realtime-priority=0"]);
    let config = config::from_cli(&cli.run, &no_env).unwrap();
    assert_eq!(config.global.realtime.priority, 0);
    // UCARP-style command lines take them too.
    let config = run(&[
        "-i",
        "eth0",
        "-v",
        "1",
        "-p",
        "pw",
        "-a",
        "10.0.0.1",
        "--realtime-priority",
        "99",
    ])
    .unwrap();
    assert_eq!(config.global.realtime.priority, 99);
    let err = parse_err(&["--realtime-priority", "100"]);
    assert!(err.contains("100") && err.contains("0..=99"), "{err}");
}

#[test]
fn our_options_parse_and_override_the_file() {
    let scratch = Scratch::new("ours");
    let path = scratch.file("c.toml", &config_file::base_doc());
    let path_arg = path.to_str().unwrap();
    let cli = parse(&[
        "--config",
        path_arg,
        "--xdp-mode",
        "skb",
        "--replay",
        "strict",
        "--replay-window-ms",
        "120000",
        "--state-dir",
        "/srv/carp-state",
        "--status-socket",
        "/run/s.sock",
        "--metrics",
        "127.0.0.1:9652",
        "--log-format",
        "json",
        "-f",
        "local0",
        "-D",
        "-B",
        "eth0",
    ]);
    let config = config::from_cli(&cli.run, &no_env).unwrap();
    assert_eq!(config.global.xdp_mode, XdpMode::Skb);
    assert_eq!(config.global.status_socket, Path::new("/run/s.sock"));
    assert_eq!(
        config.global.metrics,
        Some("127.0.0.1:9652".parse().unwrap())
    );
    assert_eq!(config.global.log.format, LogFormat::Json);
    assert_eq!(config.global.log.facility, Some(Facility::Local(0)));
    assert!(config.global.log.debug && config.global.daemonize);
    assert_eq!(config.instances[0].replay, ReplayMode::Strict);
    assert_eq!(config.instances[0].replay_window_ms, Some(120_000));
    assert_eq!(config.global.state_dir, Path::new("/srv/carp-state"));
}

#[test]
fn replay_window_and_link_local_form_in_the_file() {
    let scratch = Scratch::new("window");
    let text = config_file::base_doc().replace(
        "[[instance]]\n",
        "[[instance]]\nreplay_window_ms = 5000\nhmac_link_local = \"exclude\"\n",
    );
    let path = scratch.file("c.toml", &text);
    let config = config::load_with_env(&path, &no_env).unwrap();
    assert_eq!(config.instances[0].replay_window_ms, Some(5_000));
    assert_eq!(
        config.instances[0].hmac_link_local,
        config::LinkLocalHmac::Exclude
    );
    // The core gets the window in nanoseconds.
    let p = carp_daemon::daemon::params::instance_params(
        &config.instances[0],
        vec!["192.0.2.1".parse().unwrap()],
        1000,
    )
    .unwrap();
    assert_eq!(
        p.replay_window,
        Some(carp_daemon::proto::Nanos::from_millis(5_000))
    );
    assert!(
        config.instances[0].peers.is_empty(),
        "no peers, no unicast_peers"
    );
    let text = config_file::base_doc().replace(
        "[[instance]]\n",
        "[[instance]]\nunicast_peers = [\"192.0.2.2\"]\n",
    );
    let path = scratch.file("unicast.toml", &text);
    let config = config::load_with_env(&path, &no_env).unwrap();
    assert_eq!(
        config.instances[0].peers,
        ["192.0.2.2".parse::<config::AllowedPeer>().unwrap()],
        "the allow-list defaults to unicast_peers"
    );
    let text = config_file::base_doc().replace(
        "[[instance]]\n",
        "[[instance]]\nunicast_peers = [\"192.0.2.2\"]\npeers = [\"192.0.2.3@02:00:00:00:00:03\", \"2001:db8::3\"]\n",
    );
    let path = scratch.file("peers.toml", &text);
    let peers = &config::load_with_env(&path, &no_env).unwrap().instances[0].peers;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].to_string(), "192.0.2.3@02:00:00:00:00:03");
    for (bad, expected) in [
        ("peers = [\"192.0.2.3@zz\"]", "peers[0]"),
        ("replay_window_ms = 0", "1..=86400000"),
        (
            "hmac_link_local = \"both\"",
            "one of \"include\", \"exclude\"",
        ),
    ] {
        let text =
            config_file::base_doc().replace("[[instance]]\n", &format!("[[instance]]\n{bad}\n"));
        let path = scratch.file("bad.toml", &text);
        let err = config::load_with_env(&path, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{bad}: {err}");
    }
}

#[test]
fn interface_argument_keeps_only_that_interfaces_instances() {
    let scratch = Scratch::new("filter");
    let text = format!(
        "{}\n[[instance]]\ninterface = \"eth1:mail\"\nvhid = 20\nvips = [\"198.51.100.20\"]\npassword = \"x\"\n",
        config_file::base_doc()
    );
    let path = scratch.file("c.toml", &text);
    let p = path.to_str().unwrap();
    let only = |args: &[&str]| -> Vec<(String, u8)> {
        run(args)
            .unwrap()
            .instances
            .iter()
            .map(|i| (i.interface.clone(), i.vhid))
            .collect()
    };
    assert_eq!(
        only(&["--config", p]),
        vec![("eth0".into(), 10), ("eth1".into(), 20)]
    );
    assert_eq!(only(&["--config", p, "eth1"]), vec![("eth1".into(), 20)]);
    assert_eq!(
        only(&["--config", p, "-i", "eth0"]),
        vec![("eth0".into(), 10)]
    );
    assert_eq!(
        only(&["--config", p, "eth1:mail"]),
        vec![("eth1".into(), 20)]
    );
    assert_eq!(
        run_err(&["--config", p, "eth9"]),
        format!("{p}: no instance on interface eth9")
    );
}

#[test]
fn command_line_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["-v", "1", "-p", "pw", "-a", "10.0.0.1"], "-i/--interface: missing, give the interface, e.g. --interface=eth0"),
        (&["-i", "eth0", "-p", "pw", "-a", "10.0.0.1"], "-v/--vhid: missing, give the vhid (1-255)"),
        (&["-i", "eth0", "-v", "1", "-a", "10.0.0.1"], "-o/--passfile: missing, give the password with -o/--passfile (or -p/--pass)"),
        (&["-i", "eth0", "-v", "1", "-p", "pw"], "-a/--addr: missing, give at least one virtual address"),
        (&["-i", "eth0", "-v", "1", "-p", "12345678901234567890", "-a", "10.0.0.1"], "-p/--pass: password is 20 bytes, at most 19 are allowed (the limit of UCARP and the BSD kernels)"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-o", "/x", "-a", "10.0.0.1"], "-o/--passfile: cannot be combined with -p/--pass"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.300"], "-a/--addr: \"10.0.0.300\" is not an IP address with an optional /prefix length"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-s", "10.0.0.1", "-a", "2001:db8::1"], "-a/--addr: 2001:db8::1 is IPv6 but srcip 10.0.0.1 is not"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.1", "--mcast", "10.0.0.2"], "--mcast: \"10.0.0.2\" is not a multicast group of the same family as a virtual address"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.1", "-f", "loud"], "-f/--facility: \"loud\" is not a syslog facility (daemon, user, local0..local7, ...) or none"),
        (&["-i", "eth0/1", "-v", "1", "-p", "pw", "-a", "10.0.0.1"], "-i/--interface: \"eth0/1\" is not an interface name (1 to 15 bytes, no '/', ':' or spaces)"),
        (&["--config", "/c.toml", "-v", "1"], "--config: cannot be combined with -v/--vhid"),
        (&["-i", "eth0", "eth1"], "-i/--interface: cannot be combined with the interface argument \"eth1\""),
    ];
    for (args, expected) in cases {
        assert_eq!(&run_err(args), expected, "{args:?}");
    }
    let err = run_err(&[
        "-i",
        "eth0",
        "-v",
        "1",
        "-o",
        "/nonexistent/carp.pass",
        "-a",
        "10.0.0.1",
    ]);
    assert!(
        err.starts_with("-o/--passfile: cannot read password file /nonexistent/carp.pass: "),
        "{err}"
    );
    // A missing file says what to do (tests/operators.rs has the details);
    // one that exists but cannot be read says why.
    let err = run_err(&["--config", "/nonexistent/carpd.toml"]);
    assert!(
        err.starts_with(
            "no configuration file /nonexistent/carpd.toml: create one with `carpd-xdp init IFACE"
        ),
        "{err}"
    );
    let err = run_err(&["--config", "/"]);
    assert!(err.starts_with("cannot read config file /: "), "{err}");
}
