//! The configuration file: the shipped examples, `check-config` output, and
//! one exact `file:line: field: message` per kind of error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use carp_daemon::chain::Chain;
use carp_daemon::config;

use super::{ip, no_env, Scratch};

const FILE: &str = "/etc/carpd-xdp/t.toml";

/// Lines: 1 `[[instance]]`, 2 interface, 3 vhid, 4 srcip, 5 vips, 6 password.
pub(crate) fn base_doc() -> String {
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

/// The error and its causes, as `carpd-xdp` prints them.
fn file_err(text: &str) -> String {
    let err = config::parse_str(text, Path::new(FILE), &no_env).expect_err("must be rejected");
    Chain(&err).to_string()
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

// The shipped file (dist/carpd-xdp.toml): cli_config/reference.rs.

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
fn unknown_keys_are_rejected_with_their_place_and_a_suggestion() {
    assert_eq!(
        file_err(&doc(&[], "advskw = 3\n")),
        format!("{FILE}:7: instance[0].advskw: unknown key advskw (did you mean advskew?)")
    );
    assert_eq!(
        file_err(&doc(&[], "upsript = \"/x\"\n")),
        format!("{FILE}:7: instance[0].upsript: unknown key upsript (did you mean upscript?)")
    );
    // A key of another table says where it belongs.
    assert_eq!(
        file_err(&format!("[global]\npreempt = true\n{}", base_doc())),
        format!("{FILE}:2: global.preempt: unknown key preempt (it belongs in [[instance]])")
    );
    // Nothing close: the keys of the table.
    let err = file_err(&format!("[global]\ncolour = \"off\"\n{}", base_doc()));
    assert!(
        err.starts_with(&format!(
            "{FILE}:2: global.colour: unknown key colour; the keys of [global] are xdp_mode, status_socket,"
        )),
        "{err}"
    );
    assert_eq!(
        file_err(&doc(&[], "[[instance.health_check]]\ncmd = [\"x\"]\n")),
        format!(
            "{FILE}:8: instance[0].health_check[0].cmd: unknown key cmd (did you mean command?)"
        )
    );
    assert_eq!(
        file_err(&doc(&[], "announce = { cont = 3 }\n")),
        format!("{FILE}:7: instance[0].announce.cont: unknown key cont (did you mean count?)")
    );
}

#[test]
fn missing_and_mistyped_keys_are_named_in_words() {
    let cases: &[(String, String)] = &[
        (
            doc(&[("vhid = 10\n", "")], ""),
            "1: instance[0].vhid: missing, required in every [[instance]]".into(),
        ),
        (
            doc(&[("vhid = 10", "vhid = \"ten\"")], ""),
            "3: instance[0].vhid: \"ten\" is not an integer".into(),
        ),
        (
            doc(&[], "preempt = \"yes\"\n"),
            "7: instance[0].preempt: \"yes\" is not true or false".into(),
        ),
        (
            doc(&[], "xparam = 12\n"),
            "7: instance[0].xparam: 12 is not a string (put it in quotes)".into(),
        ),
        (
            doc(&[], "advskew = 1.5\n"),
            "7: instance[0].advskew: 1.5 is not an integer".into(),
        ),
        (
            doc(&[], "advskew = 99999999999999999999999\n"),
            "7: instance[0].advskew: 99999999999999999999999 is not an integer in 0..=254".into(),
        ),
        (
            doc(&[("vips = [\"192.0.2.10/24\"]", "vips = \"192.0.2.10/24\"")], ""),
            "5: instance[0].vips: \"192.0.2.10/24\" is not a list of strings: ADDRESS or ADDRESS/PREFIX (default /32, /128)".into(),
        ),
        (
            doc(&[("vips = [\"192.0.2.10/24\"]", "vips = [\"192.0.2.10/24\", 7]")], ""),
            "5: instance[0].vips[1]: 7 is not a string (put it in quotes)".into(),
        ),
        (
            doc(&[], "replay = \"sometimes\"\n"),
            "7: instance[0].replay: \"sometimes\" is not one of \"strict\", \"compat\", \"auto\"".into(),
        ),
        (
            format!("[global]\ndebug = 1\n{}", base_doc()),
            "2: global.debug: 1 is not true or false".into(),
        ),
        (
            format!("[global]\nxdp_mode = \"xdp\"\n{}", base_doc()),
            "2: global.xdp_mode: \"xdp\" is not one of \"auto\", \"native\", \"skb\", \"tc\", \"off\"".into(),
        ),
        (
            doc(&[], "[[instance.health_check]]\ncommand = [\"/bin/true\"]\ninterval_secs = 5\nweight = 1\n"),
            "7: instance[0].health_check[0].timeout_secs: missing, required in every [[instance.health_check]]".into(),
        ),
        (
            format!("global = 3\n{}", base_doc()),
            "1: global: 3 is not a table ([global])".into(),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(file_err(text), format!("{FILE}:{expected}"), "{text}");
    }
}

#[test]
fn a_secret_is_never_in_a_message() {
    // Unquoted, the password is an integer: the type error names the type only.
    for (value, kind) in [
        ("12345678", "an integer"),
        ("1234.5678", "a decimal number"),
        ("[\"hunter2\"]", "a list"),
        ("true", "true or false"),
        ("1979-05-27", "a date"),
    ] {
        let text = doc(
            &[("password = \"secret\"", &format!("password = {value}"))],
            "",
        );
        let err = file_err(&text);
        assert_eq!(
            err,
            format!(
                "{FILE}:6: instance[0].password: {kind} (the value is a secret, not shown) is not a string{}",
                if matches!(kind, "a list") { "" } else { " (put it in quotes)" }
            )
        );
        for secret in ["12345678", "1234.5678", "hunter2", "1979"] {
            assert!(!err.contains(secret), "{err}");
        }
    }
    // Nor in a syntax error inside the value.
    for value in [
        "\"hun\\qter2\"",
        "'hunter2",
        "\"hunter2",
        "hunter2",
        "\"hunter2\" \"x\"",
        "[hunter2]",
        "{ s = \"hunter2\" }",
    ] {
        let text = doc(
            &[("password = \"secret\"", &format!("password = {value}"))],
            "",
        );
        let err = file_err(&text);
        assert!(
            err.starts_with(&format!("{FILE}:6: instance[0].password: ")),
            "{err}"
        );
        assert!(!err.contains("hunter2") && !err.contains("qter"), "{err}");
    }
    // Every secret key of the table is treated so.
    for key in config::keys::KEYS.iter().filter(|key| key.secret) {
        let text = doc(
            &[("password = \"secret\"\n", "")],
            &format!("{} = 87654321\n", key.name),
        );
        let err = file_err(&text);
        assert!(!err.contains("87654321"), "{err}");
    }
}

#[test]
fn a_file_without_instances_is_rejected() {
    let text = "[global]\nxdp_mode = \"off\"\n";
    assert_eq!(
        file_err(text),
        format!("{FILE}:3: instance: missing, define at least one [[instance]]")
    );
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let err = file_err(&doc(&[], "advskew = [1,\n"));
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(
        err.starts_with(&format!("{FILE}:7: instance[0].advskew: ")),
        "{err}"
    );
    // An unclosed list, inline table or string: the line that opened it, not
    // the key the parser stumbled on lines later.
    let later = "# a comment\n\nadvbase_secs = 1\ndeadratio = 3\n";
    for (opened, what) in [
        ("unicast_peers = [\"192.0.2.2\",\n", "["),
        ("announce = { count = 3\n", "{"),
        ("xparam = \"\"\"web\n", "multi-line string"),
    ] {
        let key = opened.split(' ').next().unwrap();
        let err = file_err(&doc(&[], &format!("{opened}{later}")));
        assert!(
            err.starts_with(&format!("{FILE}:7: instance[0].{key}: ")),
            "{opened}: {err}"
        );
        assert!(
            err.contains(&format!(
                "(the {what} opened on line 7 is not closed before line"
            )),
            "{err}"
        );
    }
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
            "password = \"12345678901234567890\"",
        )],
        "",
    );
    assert_eq!(
        file_err(&long),
        format!("{FILE}:6: instance[0].password: password is 20 bytes, at most 19 are allowed (the limit of UCARP and the BSD kernels)")
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

#[test]
fn password_files_others_may_read_are_refused_with_their_place() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("pwmode");
    let pass = scratch.file("vhid10.pass", "from-file\n");
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = doc(
        &[(
            "password = \"secret\"",
            &format!("password_file = {:?}", pass.to_str().unwrap()),
        )],
        "",
    );
    assert_eq!(
        file_err(&text),
        format!(
            "{FILE}:6: instance[0].password_file: password file {p} has mode 0644, which lets \
             group or others read or write it: refusing to use it (chmod 600 {p})",
            p = pass.display()
        )
    );
    let text = doc(
        &[("password = \"secret\"", "password_env = \"LC_CARP_PASS\"")],
        "",
    );
    assert!(
        file_err(&text).starts_with(&format!(
            "{FILE}:6: instance[0].password_env: LC_CARP_PASS is passed on to scripts"
        )),
        "{}",
        file_err(&text)
    );
}

#[test]
fn realtime_settings_in_global() {
    let text = format!(
        "[global]\nrealtime_priority = 40\nlock_memory = true\n{}",
        base_doc()
    );
    let config = config::parse_str(&text, Path::new(FILE), &no_env).unwrap();
    assert_eq!(config.global.realtime.priority, 40);
    assert!(config.global.realtime.lock_memory);
    // Printed by check-config.
    let printed = config::render(&config);
    assert!(
        printed.contains("\nrealtime_priority = 40\nlock_memory = true\n"),
        "{printed}"
    );
    // Off by default.
    let config = config::parse_str(&base_doc(), Path::new(FILE), &no_env).unwrap();
    assert_eq!(config.global.realtime.priority, 0);
    assert!(!config.global.realtime.lock_memory);
    // The switch to SCHED_FIFO when late: on by default, off by the key.
    assert!(config.global.realtime.auto);
    assert!(config::render(&config).contains("\nauto_realtime = true\n"));
    let off = format!("[global]\nauto_realtime = false\n{}", base_doc());
    let config = config::parse_str(&off, Path::new(FILE), &no_env).unwrap();
    assert!(!config.global.realtime.auto);
    for bad in ["100", "-1"] {
        assert_eq!(
            file_err(&format!(
                "[global]\nrealtime_priority = {bad}\n{}",
                base_doc()
            )),
            format!("{FILE}:2: global.realtime_priority: {bad} is out of range 0..=99 (0: off)")
        );
    }
}
