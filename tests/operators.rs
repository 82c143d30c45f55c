//! What an operator meets first: help on every subcommand next to UCARP's
//! `-h`, the message when there is no configuration, `carpd-xdp init`, the
//! README agreeing with the binary, and `carpd-xdp import-ucarp` (UCARP's
//! files and command line to one configuration that `check-config` accepts).

#[path = "operators/import_layouts.rs"]
mod import_layouts;
#[path = "operators/import_ucarp.rs"]
mod import_ucarp;

use std::path::Path;
use std::process::{Command, Output};

use carp_daemon::cli::Cli;
use carp_daemon::config::{self, PasswordSource, Vip};
use clap::CommandFactory;
use clap::Parser;

const CARPD: &str = env!("CARGO_BIN_EXE_carpd-xdp");

fn carpd(args: &[&str]) -> Output {
    Command::new(CARPD)
        .args(args)
        .env_remove("CARPD_MONITOR_PASS")
        .output()
        .expect("run carpd-xdp")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

// ---- help ----

#[test]
fn every_subcommand_has_help_and_ucarp_keeps_dash_h() {
    for sub in ["check-config", "status", "monitor", "init", "import-ucarp"] {
        for flag in ["-h", "--help"] {
            let err = Cli::try_parse_from(["carpd-xdp", sub, flag]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::DisplayHelp,
                "{sub} {flag}: {err}"
            );
            assert!(
                err.to_string().contains(&format!("Usage: carpd-xdp {sub}")),
                "{sub} {flag}: {err}"
            );
        }
    }
    // The binary: exit 0, help on stdout.
    let out = carpd(&["monitor", "--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("--pass-handled"), "{}", stdout(&out));
    // UCARP's -h is still the top-level help, also after UCARP options.
    for args in [&["-h"][..], &["-i", "eth0", "-v", "1", "-h"][..]] {
        let out = carpd(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("--downscript"), "{args:?}");
    }
}

// ---- no configuration ----

fn assert_no_config_message(text: &str, path: &str, iface: &str) {
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    let line = text.trim_end();
    assert!(
        line.starts_with(&format!("carpd-xdp: no configuration file {path}: ")),
        "{line}"
    );
    for hint in [
        format!("`carpd-xdp init {iface} --vip ADDRESS/PREFIX"),
        "`carpd-xdp import-ucarp`".to_owned(),
        "`carpd-xdp -i eth0 -v 1 -o PASSFILE -a ADDRESS`".to_owned(),
        "carpd-xdp check-config".to_owned(),
    ] {
        assert!(line.contains(&hint), "{hint} missing from: {line}");
    }
}

#[test]
fn without_a_config_file_one_line_says_what_to_do() {
    let dir = scratch();
    let missing = dir.path().join("none.toml");
    let m = missing.to_str().unwrap();
    let out = carpd(&["--config", m, "eth0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_config_message(&stderr(&out), m, "eth0");
    assert!(
        stderr(&out).contains(&format!("--output {m}`")),
        "{}",
        stderr(&out)
    );

    // The default path, as `carpd-xdp` and `carpd-xdp eth0` look for it.
    if Path::new(config::DEFAULT_CONFIG_PATH).exists() {
        eprintln!(
            "{} exists here: the default-path cases are not run",
            config::DEFAULT_CONFIG_PATH
        );
        return;
    }
    let out = carpd(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_config_message(&stderr(&out), config::DEFAULT_CONFIG_PATH, "IFACE");
    let out = carpd(&["eth0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_config_message(&stderr(&out), config::DEFAULT_CONFIG_PATH, "eth0");
    assert!(!stderr(&out).contains("--output"), "{}", stderr(&out));
}

// ---- init ----

#[test]
fn init_writes_a_starter_config_that_checks_and_never_overwrites() {
    let dir = scratch();
    let file = dir.path().join("etc/carpd-xdp.toml");
    let f = file.to_str().unwrap();
    let out = carpd(&[
        "init",
        "eth0:web",
        "--vhid",
        "7",
        "--vip",
        "10.9.0.10/24",
        "--advskew",
        "100",
        "--output",
        f,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pass = dir.path().join("etc/vhid7.pass");
    assert!(
        stderr(&out).contains(&format!("wrote {f}"))
            && stderr(&out).contains(pass.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() >= 10,
        "commented:\n{text}"
    );

    // It names a password file that does not exist yet: check-config says so.
    let out = carpd(&["check-config", f]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read password file"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&pass, "s3cret\n").unwrap();
    // Password files must be private (as sshd's keys).
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = carpd(&["check-config", f]);
    assert!(out.status.success(), "{}", stderr(&out));

    let config = config::load(&file).unwrap();
    let inst = &config.instances[0];
    assert_eq!(
        (
            inst.interface.as_str(),
            inst.label.as_deref(),
            inst.vhid,
            inst.advskew
        ),
        ("eth0", Some("eth0:web"), 7, 100)
    );
    assert_eq!(inst.vips, [Vip::parse("10.9.0.10/24").unwrap()]);
    assert!(inst.preempt);
    assert_eq!(inst.password.source(), &PasswordSource::File(pass.clone()));

    // A second init refuses and leaves the file alone.
    let out = carpd(&["init", "eth1", "--vip", "10.9.1.10", "--output", f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("carpd-xdp: {f} already exists; not overwriting it (edit it, or give another --output)\n")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // Without --vip: a placeholder, marked for editing, that check-config
    // refuses until it is edited.
    let other = dir.path().join("other.toml");
    let out = carpd(&["init", "eth0", "--output", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&other).unwrap();
    assert!(text.contains("# EDIT: a placeholder"), "{text}");
    let pass1 = dir.path().join("vhid1.pass");
    std::fs::write(&pass1, "pw\n").unwrap();
    std::fs::set_permissions(&pass1, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = carpd(&["check-config", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("instance[0].vips[0]: \"ADDRESS/PREFIX\" is a placeholder: edit it"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&other, text.replace("ADDRESS/PREFIX", "10.9.2.10/24")).unwrap();
    let out = carpd(&["check-config", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = carpd(&["init", "eth0", "--vip", "10.0.0.300", "--output", f]);
    assert_eq!(
        stderr(&out),
        "carpd-xdp: --vip: \"10.0.0.300\" is not an IP address with an optional /prefix length\n"
    );
    let out = carpd(&["init", "eth 0", "--output", f]);
    assert!(
        stderr(&out).contains("\"eth 0\" is not an interface name"),
        "{}",
        stderr(&out)
    );
}

// ---- README and binary agree ----

/// Every long option of carpd-xdp and its subcommands.
fn long_options() -> Vec<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut names = Vec::new();
    let mut add = |c: &clap::Command| {
        for arg in c.get_arguments() {
            names.extend(arg.get_long().map(str::to_owned));
            names.extend(
                arg.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
        }
    };
    add(&cmd);
    for sub in cmd.get_subcommands() {
        add(sub);
    }
    names
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

#[test]
fn every_option_the_readme_names_exists() {
    // Options of `cargo xtask` and other tools the README shows.
    const OTHER_TOOLS: [&str; 7] = [
        "--quick",
        "--only",
        "--prefix",
        "--destdir",
        "--fuzz-secs",
        "--now",
        "--subsecond",
    ];
    let known = long_options();
    let text = readme();
    let mut unknown = Vec::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let flag = format!("--{name}");
        let starts_with_letter = name.starts_with(|c: char| c.is_ascii_alphabetic());
        if !starts_with_letter || OTHER_TOOLS.contains(&flag.as_str()) {
            continue;
        }
        if !known.contains(&name) {
            unknown.push(flag);
        }
    }
    assert!(
        unknown.is_empty(),
        "README names options carpd-xdp lacks: {unknown:?}"
    );
    // --pass-handled is monitor's: the README must say so where it names it.
    for line in text.lines().filter(|l| l.contains("--pass-handled")) {
        assert!(line.contains("monitor"), "{line}");
    }
}

#[test]
fn every_carpd_command_in_the_readme_parses() {
    let text = readme();
    let mut in_code = false;
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" # ").next().unwrap_or_default().trim();
        if pending.is_empty() && !line.starts_with("carpd-xdp ") && line != "carpd-xdp" {
            continue;
        }
        pending.push(' ');
        pending.push_str(line.trim_end_matches('\\'));
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut pending));
        }
    }
    assert!(commands.len() >= 5, "{commands:?}");
    for command in &commands {
        let words: Vec<&str> = command
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
            .filter(|w| !w.is_empty() && *w != "...")
            .collect();
        if let Err(e) = Cli::try_parse_from(&words) {
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp,
                "{command}: {e}"
            );
        }
    }
}

// ---- status --watch ----

#[test]
fn status_watch_repeats_until_interrupted_and_survives_a_missing_daemon() {
    use carp_daemon::control::{ControlRequest, ControlServer, StatusReport};
    use std::io::BufRead as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dir = scratch();
    let socket = dir.path().join("carpd.sock");
    let asked = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let counter = asked.clone();
    rt.spawn(async move {
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let report = StatusReport {
                pid: 1000 + n as u32,
                ..StatusReport::default()
            };
            let _ = reply.send(report);
        }
    });
    let server = ControlServer::bind(&socket, tx).unwrap();

    let mut child = Command::new(CARPD)
        .args(["status", "--json", "--watch", "0.2", "--socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    for _ in 0..3 {
        let line = lines.next().expect("a line per round").unwrap();
        let report: StatusReport =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        pids.push(report.pid);
    }
    // Each round asked the daemon again.
    assert_eq!(pids, [1000, 1001, 1002]);

    // The daemon goes away: the watch says so and keeps asking.
    drop(server);
    let _ = std::fs::remove_file(&socket);
    let line = (0..20)
        .map(|_| lines.next().expect("a line per round").unwrap())
        .find(|l| l.contains("\"error\""))
        .expect("an error round");
    assert!(line.contains("carpd.sock"), "{line}");
    assert!(child.try_wait().unwrap().is_none(), "still watching");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = carpd(&["status", "--watch", "0.01"]);
    assert!(
        stderr(&out).contains("0.01 is not in 0.1..=3600 seconds"),
        "{}",
        stderr(&out)
    );
}
