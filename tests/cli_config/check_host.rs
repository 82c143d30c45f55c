//! `check-config` on a real file: relative paths are relative to the file
//! (whatever the working directory, as when systemd starts the daemon from
//! /), and what the file names but the host lacks is a warning, not an
//! error: a missing interface (the daemon waits for it), scripts and
//! health-check programs that are missing or not executable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use carp_daemon::config::{self, PasswordSource};

use super::{no_env, Scratch};

fn carpd(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carpd-xdp"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn relative_paths_are_relative_to_the_file_not_the_working_directory() {
    let scratch = Scratch::new("relative");
    let pass = scratch.file("vhid10.pass", "from-file\n");
    let up = scratch.file("up.sh", "#!/bin/sh\n");
    executable(&up);
    std::fs::create_dir_all(scratch.0.join("checks")).unwrap();
    let check = scratch.file("checks/web.sh", "#!/bin/sh\n");
    executable(&check);
    let text = "[global]\nstate_dir = \"state\"\nstatus_socket = \"run/carpd.sock\"\n\
        [[instance]]\ninterface = \"lo\"\nvhid = 10\nvips = [\"192.0.2.10/24\"]\n\
        password_file = \"vhid10.pass\"\nupscript = \"up.sh\"\ndownscript = \"./up.sh\"\n\
        [[instance.health_check]]\ncommand = [\"checks/web.sh\", \"arg\"]\n\
        interval_secs = 5\ntimeout_secs = 1\nweight = 10\n\
        [[instance.health_check]]\ncommand = [\"true\"]\ninterval_secs = 5\ntimeout_secs = 1\nweight = 10\n";
    let file = scratch.file("carpd-xdp.toml", text);
    // The test runs in the crate's directory, not the file's.
    let config = config::load_with_env(&file, &no_env).unwrap();
    let inst = &config.instances[0];
    assert_eq!(inst.password.key(), b"from-file");
    assert_eq!(inst.password.source(), &PasswordSource::File(pass));
    assert_eq!(inst.scripts.upscript.as_deref(), Some(up.as_path()));
    assert_eq!(
        inst.scripts.downscript.as_deref(),
        Some(scratch.0.join("./up.sh").as_path())
    );
    assert_eq!(inst.health_checks[0].command[0], check.to_str().unwrap());
    // A bare program name is left for PATH.
    assert_eq!(inst.health_checks[1].command[0], "true");
    assert_eq!(config.global.state_dir, scratch.0.join("state"));
    assert_eq!(
        config.global.status_socket,
        scratch.0.join("run/carpd.sock")
    );

    // check-config from / (as systemd starts the daemon) and from the
    // file's directory agree, without a warning.
    for cwd in [Path::new("/"), scratch.0.as_path()] {
        let out = carpd(&["check-config", file.to_str().unwrap()], cwd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "from {}: {stderr}", cwd.display());
        assert_eq!(stderr, "", "from {}", cwd.display());
    }
    // A relative path to the file itself works too.
    let out = carpd(&["check-config", "carpd-xdp.toml"], &scratch.0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "password_file = \"{}/vhid10.pass\"",
            scratch.0.display()
        )),
        "{stdout}"
    );
}

#[test]
fn check_config_warns_about_what_the_host_lacks_and_still_passes() {
    let scratch = Scratch::new("hostwarn");
    scratch.file("vhid10.pass", "pw\n");
    // Mode 0600 from Scratch::file: not executable.
    scratch.file("down.sh", "#!/bin/sh\n");
    let text = "[[instance]]\ninterface = \"late0\"\nvhid = 10\nvips = [\"192.0.2.10/24\"]\n\
        password_file = \"vhid10.pass\"\nupscript = \"/nonexistent/up.sh\"\ndownscript = \"down.sh\"\n\
        [[instance.health_check]]\ncommand = [\"/nonexistent/check\"]\ninterval_secs = 5\ntimeout_secs = 1\nweight = 10\n\
        [[instance.health_check]]\ncommand = [\"carpd-no-such-program\"]\ninterval_secs = 5\ntimeout_secs = 1\nweight = 10\n";
    let file = scratch.file("carpd-xdp.toml", text);
    let f = file.display();
    let d = scratch.0.display();
    let warnings: Vec<String> = config::check_file(&file)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            format!("{f}:2: instance[0].interface: no interface named late0 on this host (yet): the daemon waits for it in INIT and starts the instance when it appears"),
            format!("{f}:6: instance[0].upscript: /nonexistent/up.sh does not exist: the script will fail each time it is run"),
            format!("{f}:7: instance[0].downscript: {d}/down.sh is not executable (chmod +x {d}/down.sh): the script will fail each time it is run"),
            format!("{f}:9: instance[0].health_check[0].command: /nonexistent/check does not exist: the health check will fail and demote this host"),
            format!("{f}:14: instance[0].health_check[1].command: carpd-no-such-program is not found in PATH: the health check will fail and demote this host"),
        ]
    );
    // The daemon's own load does not look at the host.
    assert!(config::load(&file).unwrap().warnings.is_empty());
    // check-config prints them and passes.
    let out = carpd(&["check-config", file.to_str().unwrap()], Path::new("/"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for w in &warnings {
        assert!(stderr.contains(&format!("warning: {w}\n")), "{stderr}");
    }
}
