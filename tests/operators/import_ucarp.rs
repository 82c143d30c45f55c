//! `carpd-xdp import-ucarp`: UCARP's files and command line to one
//! configuration that `check-config` accepts, and one exact error per kind of
//! input it refuses.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use carp_daemon::chain::Chain;
use carp_daemon::config::import::{convert, Body, Input};
use carp_daemon::config::{self, PasswordSource, Vip};

use super::{carpd, scratch, stderr, stdout};

fn shell_input(name: &str, text: &str) -> Input {
    Input {
        name: PathBuf::from(name),
        body: Body::Shell(text.to_owned()),
    }
}

/// Host A of an active/active pair, as UCARP set it up: the defaults file
/// and one file per VIP (web preferred here, mail backed up). The init
/// script sources the defaults, then each VIP file: mail's OPTIONS replaces
/// the defaults' OPTIONS as a whole, web has none and keeps them.
const DEFAULTS: &str = "# /etc/default/ucarp\nOPTIONS=\"-z -n -f local3 -r 4\"\n";
const WEB: &str = "# VIP web: preferred on host A\nUCARP_BASE=1\nINTERFACE=eth0:carp0\n\
    INSTANCE_ID=10\nPASSWORD=\"web secret\"\nVIRTUAL_ADDRESS=10.9.0.10\n\
    VIRTUAL_NETMASK=255.255.255.0\nSOURCE_ADDRESS=10.9.0.1\n\
    UPSCRIPT=/etc/ucarp/vip-up.sh\nDOWNSCRIPT=/etc/ucarp/vip-down.sh\n";
const MAIL: &str = "# VIP mail: backup on host A\nexport INTERFACE='eth0:carp1'\n\
    INSTANCE_ID=20\nPASSWORD='mail-secret'\nVIRTUAL_ADDRESS=10.9.0.20\nVIRTUAL_NETMASK=24\n\
    SOURCE_ADDRESS=10.9.0.1\nOPTIONS=\"--advskew=100 --preempt --xparam=mail\"\n";

#[test]
fn import_of_an_active_active_host_passes_check_config() {
    let dir = scratch();
    let ucarp = dir.path().join("ucarp/interface");
    std::fs::create_dir_all(&ucarp).unwrap();
    std::fs::write(ucarp.join("ucarp0"), WEB).unwrap();
    std::fs::write(ucarp.join("ucarp1"), MAIL).unwrap();
    // Leftovers of editors and dpkg are not VIPs.
    std::fs::write(ucarp.join("ucarp1~"), "garbage").unwrap();
    std::fs::write(ucarp.join("ucarp0.dpkg-old"), "garbage").unwrap();
    let defaults = dir.path().join("default-ucarp");
    std::fs::write(&defaults, DEFAULTS).unwrap();
    let out_dir = dir.path().join("etc");
    let output = out_dir.join("carpd-xdp.toml");
    let o = output.to_str().unwrap();

    let out = carpd(&[
        "import-ucarp",
        "--default",
        defaults.to_str().unwrap(),
        ucarp.to_str().unwrap(),
        "--output",
        o,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let check = carpd(&["check-config", o]);
    assert!(check.status.success(), "{}", stderr(&check));

    let text = std::fs::read_to_string(&output).unwrap();
    assert!(
        !text.contains("secret"),
        "passwords stay out of the TOML:\n{text}"
    );
    for key in [
        "log_facility = \"local3\"",
        "label = \"eth0:carp0\"",
        "label = \"eth0:carp1\"",
        "password_file = ",
        "shutdown_on_exit = true",
        "neutral = true",
        "deadratio = 4",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }

    let config = config::load(&output).unwrap();
    assert_eq!(
        config.global.log.facility.map(|f| f.to_string()).as_deref(),
        Some("local3")
    );
    let [web, mail] = config.instances.as_slice() else {
        panic!("two instances: {config:?}");
    };
    assert_eq!(
        (
            web.interface.as_str(),
            web.label.as_deref(),
            web.vhid,
            web.advskew,
            web.advbase_secs
        ),
        ("eth0", Some("eth0:carp0"), 10, 0, 1)
    );
    assert_eq!(
        (
            mail.interface.as_str(),
            mail.label.as_deref(),
            mail.vhid,
            mail.advskew
        ),
        ("eth0", Some("eth0:carp1"), 20, 100)
    );
    assert_eq!(web.vips, [Vip::parse("10.9.0.10/24").unwrap()]);
    assert_eq!(mail.vips, [Vip::parse("10.9.0.20/24").unwrap()]);
    assert_eq!(web.srcip, Some("10.9.0.1".parse().unwrap()));
    // web: the defaults' -z -n -r 4; mail: its own OPTIONS only.
    assert_eq!(
        (
            web.preempt,
            web.shutdown_on_exit,
            web.neutral,
            web.deadratio
        ),
        (false, true, true, 4)
    );
    assert_eq!(
        (
            mail.preempt,
            mail.shutdown_on_exit,
            mail.neutral,
            mail.deadratio
        ),
        (true, false, false, 3)
    );
    assert_eq!(
        web.scripts.upscript.as_deref(),
        Some(Path::new("/etc/ucarp/vip-up.sh"))
    );
    assert_eq!(mail.scripts.upscript, None);
    assert_eq!(mail.scripts.xparam.as_deref(), Some("mail"));
    for (inst, secret) in [(web, "web secret"), (mail, "mail-secret")] {
        let PasswordSource::File(path) = inst.password.source() else {
            panic!("password_file expected: {:?}", inst.password.source());
        };
        assert_eq!(path.parent(), Some(out_dir.as_path()));
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            format!("{secret}\n")
        );
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }

    // Never over an existing output.
    let again = carpd(&["import-ucarp", ucarp.to_str().unwrap(), "--output", o]);
    assert_eq!(
        stderr(&again),
        format!("carpd-xdp: {o} already exists; not overwriting it\n")
    );
}

/// The instance a UCARP command line gives, imported with `--output` into
/// `dir`.
fn import_cmdline(dir: &Path, words: &[&str]) -> config::InstanceConfig {
    let output = dir.join("out.toml");
    let mut args = vec![
        "import-ucarp",
        "--output",
        output.to_str().unwrap(),
        "--cmdline",
        "--",
    ];
    args.extend_from_slice(words);
    let out = carpd(&args);
    assert!(out.status.success(), "{words:?}: {}", stderr(&out));
    let check = carpd(&["check-config", output.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    let mut config = config::load(&output).unwrap();
    assert_eq!(config.instances.len(), 1);
    config.instances.remove(0)
}

#[test]
fn import_of_a_ucarp_command_line_pasted_with_or_without_ucarp() {
    let words = [
        "-i",
        "eth0",
        "-s",
        "10.0.0.2",
        "-v",
        "10",
        "-p",
        "pw",
        "-a",
        "10.0.0.10",
        "--advbase=2",
        "-k",
        "50",
        "-P",
        "-S",
        "-M",
        "--upscript=/etc/up.sh",
    ];
    let with_ucarp: Vec<&str> = std::iter::once("ucarp").chain(words).collect();
    let with_path: Vec<&str> = std::iter::once("/usr/sbin/ucarp").chain(words).collect();
    // As pasted from a unit file or a shell script: one argument, quotes and
    // a continuation line.
    let pasted = "/usr/sbin/ucarp -i eth0 -s 10.0.0.2 -v 10 -p 'pw' \\\n                    -a 10.0.0.10 --advbase=2 -k 50 -P -S -M --upscript=\"/etc/up.sh\"";
    for form in [&words[..], &with_ucarp, &with_path, &[pasted][..]] {
        let dir = scratch();
        let inst = import_cmdline(dir.path(), form);
        assert_eq!(
            (
                inst.vhid,
                inst.advbase_secs,
                inst.advskew,
                inst.preempt,
                inst.ignore_ifstate,
                inst.broadcast_mac
            ),
            (10, 2, 50, true, true, true),
            "{form:?}"
        );
        assert_eq!(inst.srcip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(inst.vips, [Vip::parse("10.0.0.10/32").unwrap()]);
        assert_eq!(
            inst.scripts.upscript.as_deref(),
            Some(Path::new("/etc/up.sh"))
        );
        assert_eq!(
            inst.password.source(),
            &PasswordSource::File(dir.path().join("eth0-vhid10.pass"))
        );
        assert_eq!(inst.password.key(), b"pw");
    }
    // A word that is not an option (the wiki's init script passes a `\`):
    // UCARP ignores it, the import notes it and reads the rest.
    let out = carpd(&[
        "import-ucarp",
        "--cmdline",
        "--",
        "ucarp -i eth0 -v 3 -p pw -a 10.0.0.1 '\\' -z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("# note: command line: \"\\\\\" is not an option; UCARP ignores it"),
        "{text}"
    );
    assert!(text.contains("shutdown_on_exit = true"), "{text}");
}

#[test]
fn a_preview_on_stdout_writes_nothing() {
    let dir = scratch();
    let vip = dir.path().join("ucarp0");
    std::fs::write(&vip, WEB).unwrap();
    let pw_dir = dir.path().join("passwords");
    let out = carpd(&[
        "import-ucarp",
        vip.to_str().unwrap(),
        "--password-dir",
        pw_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!pw_dir.exists(), "a preview wrote {}", pw_dir.display());
    let preview = stdout(&out);
    assert!(
        preview.starts_with(
            "# Preview: the password files named below are written only with --output FILE.\n"
        ),
        "{preview}"
    );
    assert!(!preview.contains("web secret"), "{preview}");
    // Without a password directory, it would have gone to /etc/carpd-xdp:
    // the same text names it, and nothing else is in the scratch directory.
    let out = carpd(&["import-ucarp", vip.to_str().unwrap()]);
    assert!(stdout(&out).contains("password_file = \"/etc/carpd-xdp/eth0-vhid10.pass\""));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // The same file with --output writes the password where the preview said.
    let output = dir.path().join("out.toml");
    let out = carpd(&[
        "import-ucarp",
        vip.to_str().unwrap(),
        "--password-dir",
        pw_dir.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(preview.split_once('\n').unwrap().1, written);
    assert_eq!(
        std::fs::read_to_string(pw_dir.join("eth0-vhid10.pass")).unwrap(),
        "web secret\n"
    );
}

/// The error and its causes, as `carpd-xdp` prints them.
fn import_err(default: Option<&str>, files: &[(&str, &str)]) -> String {
    let default = default.map(|text| shell_input("/etc/default/ucarp", text));
    let inputs: Vec<Input> = files.iter().map(|(n, t)| shell_input(n, t)).collect();
    let err = convert(default.as_ref(), &inputs, Path::new("/etc/carpd-xdp"))
        .expect_err("must be refused");
    Chain(&err).to_string()
}

#[test]
fn import_refuses_what_it_cannot_map_naming_file_and_setting() {
    let vip = "INTERFACE=eth0\nINSTANCE_ID=10\nPASSWORD=pw\nVIRTUAL_ADDRESS=10.0.0.10\n";
    let with = |extra: &str| format!("{vip}{extra}");
    let f = "/etc/ucarp/interface/ucarp0";
    // (defaults file, per-VIP files, the one-line error)
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, String)>, String);
    let cases: Vec<Case> = vec![
        (None, vec![(f, with("PASSWORD=$(cat /root/pw)\n"))],
         format!("{f}: line 5: PASSWORD uses shell expansion ($), which is not evaluated; write the value itself")),
        (None, vec![(f, with("ucarp -i eth0\n"))],
         format!("{f}: line 5: not a NAME=value assignment: \"ucarp -i eth0\"")),
        (None, vec![(f, "INTERFACE=eth0\nPASSWORD=pw\nVIRTUAL_ADDRESS=10.0.0.10\n".into())],
         format!("{f}: missing the vhid (INSTANCE_ID=N or -v N)")),
        (None, vec![(f, with("VIRTUAL_NETMASK=255.0.255.0\n"))],
         format!("{f}:5: VIRTUAL_NETMASK: \"255.0.255.0\" is not a netmask (255.255.255.0 or a prefix length such as 24)")),
        (None, vec![(f, with("INSTANCE_ID=300\n"))],
         format!("{f}:5: INSTANCE_ID: invalid value '300' for '--vhid <id>': 300 is not in 1..=255")),
        (None, vec![(f, with("OPTIONS=\"-P --frobnicate\"\n"))],
         format!("{f}:5: OPTIONS: unexpected argument '--frobnicate' found")),
        (None, vec![(f, with("OPTIONS=\"-h\"\n"))],
         format!("{f}:5: OPTIONS: -h/--help or --version cannot be imported: not a setting")),
        (None, vec![(f, with("PASSWORD=12345678901234567890\n"))],
         format!("{f}:5: PASSWORD: password is 20 bytes, at most 19 are allowed (the limit of UCARP and the BSD kernels)")),
        (None, vec![(f, with("VIRTUAL_ADDRESS=10.0.0.10/24\nVIRTUAL_NETMASK=24\n"))],
         format!("{f}:6: VIRTUAL_NETMASK: cannot be combined with the prefix length in {f}:5: VIRTUAL_ADDRESS (10.0.0.10/24)")),
        (None, vec![(f, vip.into()), ("/etc/ucarp/interface/ucarp1", vip.replace("10.0.0.10", "10.0.0.11"))],
         "/etc/ucarp/interface/ucarp1:2: INSTANCE_ID: interface eth0 vhid 10 is already defined at /etc/ucarp/interface/ucarp0:2".into()),
        (None, vec![(f, vip.into()), ("/etc/ucarp/interface/ucarp1", vip.replace("=10\n", "=11\n"))],
         "/etc/ucarp/interface/ucarp1:4: VIRTUAL_ADDRESS: virtual address 10.0.0.10 is already used by instance[0]".into()),
        (None, vec![(f, with("OPTIONS=\"-f local1\"\n")), ("/etc/ucarp/interface/ucarp1", vip.replace("=10\n", "=11\n").replace("10.0.0.10", "10.0.0.11") + "OPTIONS=\"-f local2\"\n")],
         format!("/etc/ucarp/interface/ucarp1:5: OPTIONS -f/--facility: -f/--facility differs from {f}:5: OPTIONS -f/--facility (one daemon serves every instance; make them agree)")),
        (Some("OPTIONS=\"-i eth0 -v 3 -p pw -a 10.0.0.1 -s 2001:db8::1\"\n"), vec![],
         "/etc/default/ucarp:1: OPTIONS -a/--addr: 10.0.0.1 is IPv4 but srcip 2001:db8::1 is not".into()),
    ];
    for (default, files, expected) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        assert_eq!(import_err(default, &files), expected, "{files:?}");
    }
    assert_eq!(
        convert(None, &[], Path::new("/")).unwrap_err().to_string(),
        "nothing to import: give per-VIP files or directories, --default FILE, or --cmdline -- OPTIONS"
    );
}

#[test]
fn import_keeps_an_existing_password_file_only_if_it_holds_the_same_password() {
    let dir = scratch();
    let vip = dir.path().join("ucarp0");
    std::fs::write(
        &vip,
        "INTERFACE=eth0\nINSTANCE_ID=10\nPASSWORD=pw\nVIRTUAL_ADDRESS=10.0.0.10\n",
    )
    .unwrap();
    let pass = dir.path().join("eth0-vhid10.pass");
    let run = |out: &str| {
        carpd(&[
            "import-ucarp",
            vip.to_str().unwrap(),
            "--password-dir",
            dir.path().to_str().unwrap(),
            "--output",
            dir.path().join(out).to_str().unwrap(),
        ])
    };
    std::fs::write(&pass, "pw\n").unwrap();
    // Password files must be private (as sshd's keys).
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert!(run("a.toml").status.success(), "{}", stderr(&run("a.toml")));
    std::fs::write(&pass, "other\n").unwrap();
    let out = run("b.toml");
    assert_eq!(
        stderr(&out),
        format!(
            "carpd-xdp: {} already exists with another password; not overwriting it (remove it or give another --password-dir)\n",
            pass.display()
        )
    );
    assert!(!dir.path().join("b.toml").exists());
    assert_eq!(std::fs::read_to_string(&pass).unwrap(), "other\n");
}
