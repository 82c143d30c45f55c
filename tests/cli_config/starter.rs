//! `carpd-xdp init`: whatever it is given, it never writes a file that
//! check-config rejects (once the password file it names exists), refuses
//! what it cannot write a valid file for, and its placeholder VIP is
//! refused until edited.

use std::path::Path;

use carp_daemon::cli::{Cli, Command};
use carp_daemon::config::{self, starter};
use clap::Parser;

use super::Scratch;

fn init_args(args: &[&str]) -> starter::InitArgs {
    let argv = ["carpd-xdp", "init"]
        .into_iter()
        .chain(args.iter().copied());
    match Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
    {
        Some(Command::Init(init)) => init,
        other => panic!("{other:?}"),
    }
}

fn private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn every_file_init_writes_passes_check_config() {
    let scratch = Scratch::new("init-range");
    let invocations: &[&[&str]] = &[
        &["eth0", "--vip", "10.0.0.1/24"],
        // The case: two families and an IPv4 source is refused
        // (below); without --srcip both families are one instance.
        &["eth0", "--vip", "10.0.0.1/24", "--vip", "fd00::1/64"],
        &["eth0", "--vip", "fd00::1/64", "--srcip", "fd00::2"],
        &[
            "eth0",
            "--vip",
            "10.0.0.1",
            "--srcip",
            "10.0.0.2",
            "--vhid",
            "255",
            "--advskew",
            "254",
        ],
        &["eth0:carp0", "--vip", "10.0.0.1/24", "--vhid", "1"],
        &[
            "enp0s31f6.100",
            "--vip",
            "192.0.2.10/32",
            "--vip",
            "192.0.2.11/32",
        ],
        &["abcdefghijklmno", "--vip", "10.0.0.1/8"],
        &["eth0:abcdefghij", "--vip", "10.0.0.1/24"],
        &["eth0", "--vip", "2001:db8::10/128", "--vip", "2001:db8::11"],
        &[
            "bond0",
            "--vip",
            "10.0.0.1/24",
            "--password-file",
            "keys/a \"quoted\" name.pass",
        ],
    ];
    for (i, args) in invocations.iter().enumerate() {
        let dir = scratch.0.join(format!("case{i}"));
        let output = dir.join("etc/carpd-xdp.toml");
        let mut argv: Vec<&str> = args.to_vec();
        let out = output.to_str().unwrap().to_owned();
        argv.extend(["--output", &out]);
        let mut init = init_args(&argv);
        // A relative --password-file is relative to the working directory
        // of `init`; here, the case's directory.
        if let Some(p) = init.password_file.as_mut().filter(|p| p.is_relative()) {
            *p = dir.join(&*p);
        }
        let text = starter::write(&init).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        private(&starter::default_password_file(&init), "s3cret\n");
        let config =
            config::check_file(&output).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"));
        let inst = &config.instances[0];
        assert_eq!(inst.vhid, init.vhid, "{args:?}");
        assert_eq!(inst.vips.len(), init.vips.len(), "{args:?}");
        assert_eq!(inst.password.key(), b"s3cret", "{args:?}");
    }
}

#[test]
fn init_refuses_what_check_config_would_reject_and_writes_nothing() {
    let scratch = Scratch::new("init-refuse");
    let output = scratch.0.join("carpd-xdp.toml");
    let out = output.to_str().unwrap();
    for (args, expected) in [
        (
            &["eth0", "--vip", "10.0.0.1/24", "--vip", "fd00::1/64", "--srcip", "192.0.2.2"][..],
            "--vip: fd00::1/64 is IPv6 but --srcip 192.0.2.2 is not: give a --srcip of each \
             family in separate files, or leave --srcip out (the interface's address is used)",
        ),
        (
            &["eth0:a b", "--vip", "10.0.0.1/24"][..],
            "\"eth0:a b\" is not an interface name (1 to 15 bytes, no '/' or spaces; eth0 or eth0:label)",
        ),
        (
            &["eth0:abcdefghijk", "--vip", "10.0.0.1/24"][..],
            "\"eth0:abcdefghijk\" is not an interface name (1 to 15 bytes, no '/' or spaces; eth0 or eth0:label)",
        ),
    ] {
        let mut argv = args.to_vec();
        argv.extend(["--output", out]);
        let err = starter::write(&init_args(&argv)).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert!(!output.exists(), "{args:?} wrote a file");
    }
}

#[test]
fn the_placeholder_vip_is_refused_until_edited() {
    let scratch = Scratch::new("init-placeholder");
    let output = scratch.0.join("carpd-xdp.toml");
    let init = init_args(&["eth0", "--output", output.to_str().unwrap()]);
    let text = starter::write(&init).unwrap();
    private(&starter::default_password_file(&init), "s3cret\n");
    let line = text.lines().position(|l| l.starts_with("vips = ")).unwrap() + 1;
    let err = config::check_file(&output).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:{line}: instance[0].vips[0]: \"ADDRESS/PREFIX\" is a placeholder: edit it (put \
             the shared address here, e.g. \"192.0.2.10/24\")",
            output.display()
        )
    );
    std::fs::write(&output, text.replace("ADDRESS/PREFIX", "10.0.0.1/24")).unwrap();
    assert!(config::check_file(&output).is_ok());
}
