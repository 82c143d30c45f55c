//! The command line (UCARP drop-in, our options, subcommands) and the
//! configuration file: what parses, the defaults, the shipped examples, and
//! one exact `file:line: field: message` per kind of error.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use carp_daemon::cli::{Cli, Command};
use carp_daemon::config::{
    self, Config, Facility, LogFormat, MasterDownRule, PasswordSource, ReplayMode, Vip,
};
use carp_daemon::xdp::mode::XdpMode;
use clap::Parser;

const FILE: &str = "/etc/carpd-xdp/t.toml";

fn no_env(_: &str) -> Option<OsString> {
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

fn run_err(args: &[&str]) -> String {
    run(args).expect_err("must be rejected").to_string()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("carpd-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(text: &str) -> IpAddr {
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
    assert_eq!(
        config.global.status_socket,
        Path::new("/run/carpd-xdp.sock")
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
        matches!(cli.command, Some(Command::Status(ref a)) if a.json && a.socket == Path::new("/run/x.sock"))
    );
    let cli = parse(&["status"]);
    assert!(
        matches!(cli.command, Some(Command::Status(ref a)) if !a.json && a.socket == Path::new("/run/carpd-xdp.sock"))
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
fn our_options_parse_and_override_the_file() {
    let scratch = Scratch::new("ours");
    let path = scratch.file("c.toml", &base_doc());
    let path_arg = path.to_str().unwrap();
    let cli = parse(&[
        "--config",
        path_arg,
        "--xdp-mode",
        "skb",
        "--replay",
        "strict",
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
}

#[test]
fn interface_argument_keeps_only_that_interfaces_instances() {
    let scratch = Scratch::new("filter");
    let text = format!(
        "{}\n[[instance]]\ninterface = \"eth1:mail\"\nvhid = 20\nvips = [\"198.51.100.20\"]\npassword = \"x\"\n",
        base_doc()
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
        (&["-i", "eth0", "-v", "1", "-p", "123456789012345678901", "-a", "10.0.0.1"], "-p/--pass: password is 21 bytes, at most 20 are allowed"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-o", "/x", "-a", "10.0.0.1"], "-o/--passfile: cannot be combined with -p/--pass"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.300"], "-a/--addr: \"10.0.0.300\" is not an IP address with an optional /prefix length"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-s", "10.0.0.1", "-a", "2001:db8::1"], "-a/--addr: 2001:db8::1 is IPv6 but srcip 10.0.0.1 is not"),
        (&["-i", "eth0", "-v", "1", "-p", "pw", "-a", "10.0.0.1", "-b", "0"], "-b/--advbase: advbase 0 with advskew 0 gives no advertisement interval"),
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
    let err = run_err(&["--config", "/nonexistent/carpd.toml"]);
    assert!(
        err.starts_with("cannot read config file /nonexistent/carpd.toml: "),
        "{err}"
    );
}

// ---- the configuration file ----

/// Lines: 1 `[[instance]]`, 2 interface, 3 vhid, 4 srcip, 5 vips, 6 password.
fn base_doc() -> String {
    "[[instance]]\ninterface = \"eth0\"\nvhid = 10\nsrcip = \"192.0.2.1\"\nvips = [\"192.0.2.10/24\"]\npassword = \"secret\"\n"
        .to_owned()
}

/// The base document with `from` replaced by `to`, then `extra` appended.
fn doc(edits: &[(&str, &str)], extra: &str) -> String {
    let mut text = base_doc();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    text + extra
}

fn file_err(text: &str) -> String {
    config::parse_str(text, Path::new(FILE), &no_env)
        .expect_err("must be rejected")
        .to_string()
}

fn web_mail_env(var: &str) -> Option<OsString> {
    match var {
        "CARPD_WEB_PASS" => Some("web-secret".into()),
        "CARPD_MAIL_PASS" => Some("mail-secret".into()),
        _ => None,
    }
}

fn dist(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(path)
}

#[test]
fn seed_active_active_files_parse_and_mirror_each_other() {
    let a =
        config::load_with_env(&dist("examples/active-active-host-a.toml"), &web_mail_env).unwrap();
    let b =
        config::load_with_env(&dist("examples/active-active-host-b.toml"), &web_mail_env).unwrap();
    assert_eq!(a.instances.len(), 2);
    assert_eq!(b.instances.len(), 2);
    for (ia, ib) in a.instances.iter().zip(&b.instances) {
        // Same virtual host on both: vhid, VIPs, password, interval base.
        assert_eq!(
            (ia.vhid, &ia.vips, ia.password.key(), ia.advbase_secs),
            (ib.vhid, &ib.vips, ib.password.key(), ib.advbase_secs)
        );
        assert_ne!(ia.srcip, ib.srcip);
        assert!(
            ia.preempt && ib.preempt,
            "the preferred host takes its VIP back"
        );
        assert!(!ia.health_checks.is_empty() && !ib.health_checks.is_empty());
    }
    let (web_a, mail_a) = (&a.instances[0], &a.instances[1]);
    let (web_b, mail_b) = (&b.instances[0], &b.instances[1]);
    assert_eq!(web_a.vips[0].addr, ip("192.0.2.10"));
    assert_eq!(mail_a.vips[0].addr, ip("192.0.2.20"));
    assert!(web_a.advskew < web_b.advskew, "VIP-web preferred on host A");
    assert!(
        mail_b.advskew < mail_a.advskew,
        "VIP-mail preferred on host B"
    );
    assert_eq!(web_a.vip_label(), "eth0:web");
    assert!(a.warnings.is_empty() && b.warnings.is_empty());
}

#[test]
fn documented_example_parses() {
    let env = |var: &str| var.starts_with("CARPD_VHID").then(|| OsString::from("pw"));
    let config = config::load_with_env(&dist("carpd-xdp.toml"), &env).unwrap();
    assert_eq!(config.instances.len(), 2);
    assert_eq!(config.instances[0].health_checks[0].weight, 100);
    assert_eq!(config.instances[1].vips[0].addr, ip("2001:db8::10"));
}

#[test]
fn check_config_output_loads_back_to_the_same_configuration() {
    let original =
        config::load_with_env(&dist("examples/active-active-host-a.toml"), &web_mail_env).unwrap();
    let printed = config::render(&original);
    let again = config::parse_str(&printed, Path::new("printed.toml"), &web_mail_env)
        .unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again, original);
}

#[test]
fn check_config_output_redacts_inline_passwords_and_keeps_the_warning() {
    let config = config::parse_str(&base_doc(), Path::new(FILE), &no_env).unwrap();
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0]
        .to_string()
        .starts_with(&format!("{FILE}:6: instance[0].password: password written")));
    let printed = config::render(&config);
    assert!(!printed.contains("secret"), "{printed}");
    assert!(
        printed.contains("# password: <redacted> (inline)"),
        "{printed}"
    );
}

#[test]
fn numbers_out_of_range_name_file_line_and_field() {
    let at = |line: usize, field: &str, value: &str, range: &str| {
        format!("{FILE}:{line}: instance[0].{field}: {value} is out of range {range}")
    };
    assert_eq!(
        file_err(&doc(&[("vhid = 10", "vhid = 0")], "")),
        at(3, "vhid", "0", "1..=255")
    );
    assert_eq!(
        file_err(&doc(&[("vhid = 10", "vhid = 256")], "")),
        at(3, "vhid", "256", "1..=255")
    );
    assert_eq!(
        file_err(&doc(&[], "advskew = 300\n")),
        at(7, "advskew", "300", "0..=254")
    );
    assert_eq!(
        file_err(&doc(&[], "advbase_secs = -1\n")),
        at(7, "advbase_secs", "-1", "0..=255")
    );
    assert_eq!(
        file_err(&doc(&[], "deadratio = 0\n")),
        at(7, "deadratio", "0", "1..=255")
    );
    assert_eq!(
        file_err(&doc(&[], "announce = { count = 101 }\n")),
        at(7, "announce.count", "101", "0..=100")
    );
    let hc = "[[instance.health_check]]\ncommand = [\"/bin/true\"]\ninterval_secs = 5\ntimeout_secs = 1\nweight = 0\n";
    assert_eq!(
        file_err(&doc(&[], hc)),
        at(11, "health_check[0].weight", "0", "1..=255")
    );
    assert_eq!(
        file_err(&format!("[global.rate_limit]\nrate = -5\n{}", base_doc())),
        format!("{FILE}:2: global.rate_limit.rate: -5 is out of range 0..=1000000")
    );
}

#[test]
fn second_instance_errors_point_into_it() {
    let second = "\n[[instance]]\ninterface = \"eth1\"\nvhid = 10\nvips = [\"192.0.2.11\"]\npassword = \"p\"\nadvskew = 300\n";
    assert_eq!(
        file_err(&doc(&[], second)),
        format!("{FILE}:13: instance[1].advskew: 300 is out of range 0..=254")
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_place() {
    let err = file_err(&doc(&[], "advskw = 3\n"));
    assert!(
        err.starts_with(&format!(
            "{FILE}:7: instance[0].advskw: unknown field `advskw`"
        )),
        "{err}"
    );
    let err = file_err(&format!("[global]\nxdp = \"off\"\n{}", base_doc()));
    assert!(
        err.starts_with(&format!("{FILE}:2: global.xdp: unknown field `xdp`")),
        "{err}"
    );
    let err = file_err(&doc(&[], "[[instance.health_check]]\ncmd = [\"x\"]\n"));
    assert!(
        err.starts_with(&format!(
            "{FILE}:8: instance[0].health_check[0].cmd: unknown field `cmd`"
        )),
        "{err}"
    );
}

#[test]
fn missing_and_mistyped_keys_name_the_field() {
    let err = file_err(&doc(&[("vhid = 10\n", "")], ""));
    assert!(
        err.starts_with(&format!("{FILE}:1: instance[0].vhid: missing field `vhid`")),
        "{err}"
    );
    let err = file_err(&doc(&[("vhid = 10", "vhid = \"ten\"")], ""));
    assert!(
        err.starts_with(&format!("{FILE}:3: instance[0].vhid: invalid type")),
        "{err}"
    );
    let err = file_err(&doc(&[], "preempt = \"yes\"\n"));
    assert!(
        err.starts_with(&format!("{FILE}:7: instance[0].preempt: invalid type")),
        "{err}"
    );
    let err = file_err(&doc(&[], "replay = \"sometimes\"\n"));
    assert!(
        err.starts_with(&format!(
            "{FILE}:7: instance[0].replay: unknown variant `sometimes`"
        )),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let err = file_err(&doc(&[], "advskew = [1,\n"));
    assert!(
        err.starts_with(&format!("{FILE}:7: instance[0].advskew: ")),
        "{err}"
    );
}

#[test]
fn duplicate_interface_and_vhid_is_rejected() {
    let second = "[[instance]]\ninterface = \"eth0:other\"\nvhid = 10\nvips = [\"192.0.2.11\"]\npassword = \"p\"\n";
    assert_eq!(
        file_err(&doc(&[], second)),
        format!("{FILE}:9: instance[1].vhid: interface eth0 vhid 10 is already defined at line 3")
    );
    let third = "[[instance]]\ninterface = \"eth1\"\nvhid = 11\nvips = [\"192.0.2.10/24\"]\npassword = \"p\"\n";
    assert_eq!(
        file_err(&doc(&[], third)),
        format!("{FILE}:10: instance[1].vips[0]: virtual address 192.0.2.10 is already used by instance[0]")
    );
}

#[test]
fn address_family_must_match_srcip() {
    let err = file_err(&doc(
        &[(
            "vips = [\"192.0.2.10/24\"]",
            "vips = [\"192.0.2.10/24\",\n  \"2001:db8::1\"]",
        )],
        "",
    ));
    assert_eq!(
        err,
        format!("{FILE}:6: instance[0].vips[1]: 2001:db8::1 is IPv6 but srcip 192.0.2.1 is not")
    );
    let err = file_err(&doc(&[], "unicast_peers = [\"2001:db8::2\"]\n"));
    assert_eq!(err, format!("{FILE}:7: instance[0].unicast_peers[0]: 2001:db8::2 is IPv6 but srcip 192.0.2.1 is not"));
}

#[test]
fn malformed_values_are_rejected_with_their_place() {
    let cases: &[(String, String)] = &[
        (doc(&[("192.0.2.10/24", "192.0.2.10/33")], ""), "5: instance[0].vips[0]: \"192.0.2.10/33\" is not an IP address with an optional /prefix length".into()),
        (doc(&[("srcip = \"192.0.2.1\"", "srcip = \"host-a\"")], ""), "4: instance[0].srcip: \"host-a\" is not an IP address".into()),
        (doc(&[("vips = [\"192.0.2.10/24\"]", "vips = []")], ""), "5: instance[0].vips: missing, give at least one virtual address".into()),
        (doc(&[], "label = \"eth1:web\"\n"), "7: instance[0].label: \"eth1:web\" is not a label of the form <interface>:<name> of at most 15 bytes".into()),
        (doc(&[], "mcast = \"192.0.2.99\"\n"), "7: instance[0].mcast: \"192.0.2.99\" is not a multicast group of the same family as a virtual address".into()),
        (doc(&[], "unicast_peers = [\"192.0.2.2\"]\nmcast = \"239.1.1.1\"\n"), "8: instance[0].mcast: cannot be combined with unicast_peers".into()),
        (doc(&[], "advbase_secs = 0\n"), "7: instance[0].advbase_secs: advbase 0 with advskew 0 gives no advertisement interval".into()),
        (doc(&[], "[[instance.health_check]]\ncommand = []\ninterval_secs = 1\ntimeout_secs = 1\nweight = 1\n"), "8: instance[0].health_check[0].command: missing, give the program and its arguments as a list of strings".into()),
        (format!("[global]\nmetrics = \"localhost\"\n{}", base_doc()), "2: global.metrics: \"localhost\" is not an ADDRESS:PORT to listen on".into()),
        (format!("[global]\nlog_facility = \"loud\"\n{}", base_doc()), "2: global.log_facility: \"loud\" is not a syslog facility (daemon, user, local0..local7, ...) or none".into()),
    ];
    for (text, expected) in cases {
        assert_eq!(file_err(text), format!("{FILE}:{expected}"), "{text}");
    }
}

#[test]
fn password_errors_name_the_field_and_the_source() {
    let long = doc(
        &[(
            "password = \"secret\"",
            "password = \"123456789012345678901\"",
        )],
        "",
    );
    assert_eq!(
        file_err(&long),
        format!("{FILE}:6: instance[0].password: password is 21 bytes, at most 20 are allowed")
    );
    let none = doc(&[("password = \"secret\"\n", "")], "");
    assert_eq!(file_err(&none), format!("{FILE}:1: instance[0].password_file: missing, set password_file, password_env or password"));
    let two = doc(&[], "password_env = \"X\"\n");
    assert_eq!(
        file_err(&two),
        format!("{FILE}:7: instance[0].password_env: cannot be combined with instance[0].password")
    );
    let env = doc(
        &[(
            "password = \"secret\"",
            "password_env = \"CARPD_UNSET_VAR\"",
        )],
        "",
    );
    assert_eq!(file_err(&env), format!("{FILE}:6: instance[0].password_env: environment variable CARPD_UNSET_VAR is not set or not valid UTF-8"));
    let unreadable = doc(
        &[(
            "password = \"secret\"",
            "password_file = \"/nonexistent/vhid10.pass\"",
        )],
        "",
    );
    let err = file_err(&unreadable);
    assert!(
        err.starts_with(&format!("{FILE}:6: instance[0].password_file: cannot read password file /nonexistent/vhid10.pass: ")),
        "{err}"
    );
}

#[test]
fn password_file_and_env_supply_the_key_without_warnings() {
    let scratch = Scratch::new("pwfile");
    let pass = scratch.file("vhid10.pass", "from-file\nsecond line ignored\n");
    let text = doc(
        &[(
            "password = \"secret\"",
            &format!("password_file = {:?}", pass.to_str().unwrap()),
        )],
        "",
    );
    let config = config::parse_str(&text, Path::new(FILE), &no_env).unwrap();
    assert_eq!(config.instances[0].password.key(), b"from-file");
    assert!(config.warnings.is_empty());
    let text = doc(
        &[("password = \"secret\"", "password_env = \"CARPD_WEB_PASS\"")],
        "",
    );
    let config = config::parse_str(&text, Path::new(FILE), &web_mail_env).unwrap();
    assert_eq!(config.instances[0].password.key(), b"web-secret");
}
