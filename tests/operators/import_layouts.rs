//! `carpd-xdp import-ucarp` on each layout UCARP is set up with in the
//! field, with the files as they are found there (`field/`): the French
//! wiki's init-script files, Debian's `/etc/network/interfaces`, Red Hat's
//! `/etc/ucarp`. Each import passes `check-config` and means what the UCARP
//! setup meant; what means nothing to carpd-xdp is noted once, never
//! refused; errors name the file and line.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use carp_daemon::config::{self, Config, InstanceConfig, PasswordSource, Vip};

use super::{carpd, scratch, stderr, stdout};

/// The wiki's `/etc/default/ucarp` and `/etc/ucarp/interface/ucarp0`,
/// exactly as on the page (comments included).
const WIKI_DEFAULT: &str = include_str!("field/wiki/default-ucarp");
const WIKI_UCARP0: &str = include_str!("field/wiki/ucarp0");
/// Debian: the installer's `/etc/network/interfaces` with the stanzas of
/// the package's README.Debian, and a file of `interfaces.d/`.
const DEBIAN_INTERFACES: &str = include_str!("field/debian/interfaces");
const DEBIAN_MAIL: &str = include_str!("field/debian/mail");
/// Red Hat: `/etc/ucarp/vip-common.conf`, a `vip-001.conf` made from the
/// package's example, and a `vip-002.conf` as configuration management
/// writes it (its own ID and PASSFILE).
const REDHAT_COMMON: &str = include_str!("field/redhat/vip-common.conf");
const REDHAT_001: &str = include_str!("field/redhat/vip-001.conf");
const REDHAT_002: &str = include_str!("field/redhat/vip-002.conf");

/// Writes `files` (paths relative to the root) under `root`.
fn put(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
}

/// Runs the import with `--output` and `check-config` on the result;
/// returns the text and the loaded configuration.
fn import_ok(dir: &Path, args: &[&str]) -> (String, Config) {
    let output = dir.join("out/carpd-xdp.toml");
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let o = output.to_str().unwrap();
    let mut all = vec!["import-ucarp", "--output", o];
    all.extend_from_slice(args);
    let out = carpd(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let check = carpd(&["check-config", o]);
    assert!(check.status.success(), "{}", stderr(&check));
    let text = std::fs::read_to_string(&output).unwrap();
    (text.clone(), config::load(&output).unwrap())
}

fn secret_file(inst: &InstanceConfig) -> PathBuf {
    match inst.password.source() {
        PasswordSource::File(path) => path.clone(),
        other => panic!("password_file expected: {other:?}"),
    }
}

/// The lines of `text` that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn the_wikis_files_import_verbatim_with_their_other_keys_noted_once() {
    let dir = scratch();
    let root = dir.path();
    put(
        root,
        &[
            ("etc/default/ucarp", WIKI_DEFAULT),
            ("etc/ucarp/interface/ucarp0", WIKI_UCARP0),
            // A second VIP as the wiki says to make one: a copy, edited.
            (
                "etc/ucarp/interface/ucarp1",
                &WIKI_UCARP0
                    .replace("ucarp0.pid", "ucarp1.pid")
                    .replace("eth0:carp0", "eth0:carp1")
                    .replace("=42", "=43")
                    .replace("192.168.0.32", "192.168.0.33"),
            ),
        ],
    );
    let (text, config) = import_ok(
        root,
        &[
            "--default",
            root.join("etc/default/ucarp").to_str().unwrap(),
            root.join("etc/ucarp/interface").to_str().unwrap(),
        ],
    );
    let [vip0, vip1] = config.instances.as_slice() else {
        panic!("two instances: {text}");
    };
    // What `ucarp $OPTIONS -b $UCARP_BASE -i $INTERFACE -v $INSTANCE_ID -p
    // $PASSWORD -a $VIRTUAL_ADDRESS -s $SOURCE_ADDRESS` meant, with the
    // netmask `ifconfig` gave the alias.
    assert_eq!(
        (vip0.interface.as_str(), vip0.label.as_deref(), vip0.vhid),
        ("eth0", Some("eth0:carp0"), 42)
    );
    assert_eq!(vip0.vips, [Vip::parse("192.168.0.32/24").unwrap()]);
    assert_eq!(vip0.srcip, Some("192.168.0.1".parse().unwrap()));
    assert_eq!((vip0.advbase_secs, vip0.advskew), (1, 0));
    assert!(vip0.shutdown_on_exit && !vip0.preempt);
    assert_eq!((vip1.vhid, vip1.label.as_deref()), (43, Some("eth0:carp1")));
    assert_eq!(
        std::fs::read_to_string(secret_file(vip0)).unwrap(),
        "<password>\n"
    );
    // Each key with no meaning here: one note, every file it is in.
    for key in [
        "UCARP_EXEC",
        "IFCONFIG",
        "UCARP_PIDFILE",
        "VIRTUAL_BROADCAST",
    ] {
        let notes: Vec<&str> = lines(&text, "# note: ")
            .into_iter()
            .filter(|l| l.contains(&format!(": {key} is not imported: ")))
            .collect();
        assert_eq!(notes.len(), 1, "{key}:\n{text}");
    }
    assert!(
        text.contains("PASSWORD: the password looks like a placeholder (<...>)"),
        "{text}"
    );
    let pidfile = lines(&text, "# note: ")
        .into_iter()
        .find(|l| l.contains("UCARP_PIDFILE"))
        .unwrap();
    for file in ["ucarp0:3: UCARP_PIDFILE", "ucarp1:3: UCARP_PIDFILE"] {
        assert!(pidfile.contains(file), "{pidfile}");
    }
}

#[test]
fn an_unknown_variable_is_noted_with_the_name_it_may_be() {
    let dir = scratch();
    let vip = dir.path().join("ucarp0");
    std::fs::write(
        &vip,
        "INTERFACE=eth0\nINSTANCE_ID=10\nPASSWORD=pw\nVIRTUAL_ADDRESS=10.0.0.10\n\
         SITE_OWNER=ops\nUPSCIRPT=/etc/up.sh\n",
    )
    .unwrap();
    let (text, _) = import_ok(dir.path(), &[vip.to_str().unwrap()]);
    let f = vip.display();
    for note in [
        format!("# note: {f}:5: SITE_OWNER: SITE_OWNER is not a setting UCARP's scripts read; not imported"),
        format!("# note: {f}:6: UPSCIRPT: UPSCIRPT is not a setting UCARP's scripts read; not imported (did you mean UPSCRIPT?)"),
    ] {
        assert!(text.lines().any(|l| l == note), "{note}\n{text}");
    }
}

#[test]
fn debians_interfaces_file_imports_every_ucarp_stanza() {
    let dir = scratch();
    let root = dir.path();
    put(
        root,
        &[
            ("etc/network/interfaces", DEBIAN_INTERFACES),
            ("etc/network/interfaces.d/mail", DEBIAN_MAIL),
            // Not sourced: `*` does not match a hidden file.
            ("etc/network/interfaces.d/.mail.swp", "garbage"),
        ],
    );
    let (text, config) = import_ok(
        root,
        &["--root", root.to_str().unwrap(), "/etc/network/interfaces"],
    );
    let [mail, web] = config.instances.as_slice() else {
        panic!("two instances: {text}");
    };
    // `ucarp -i eth0 -s 10.0.0.2 -B -z -v 3 -p 16charsatmost -a 10.0.0.1 -u
    // /usr/share/ucarp/vip-up -d /usr/share/ucarp/vip-down -P -k 0 -b 1`,
    // whose scripts ran `ifup eth0:ucarp` (10.0.0.1/32, label eth0:ucarp).
    assert_eq!(
        (web.interface.as_str(), web.label.as_deref(), web.vhid),
        ("eth0", Some("eth0:ucarp"), 3)
    );
    assert_eq!(web.vips, [Vip::parse("10.0.0.1/32").unwrap()]);
    assert_eq!(web.srcip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!((web.advbase_secs, web.advskew), (1, 0));
    assert!(web.preempt && web.shutdown_on_exit);
    assert_eq!(
        (&web.scripts.upscript, &web.scripts.downscript),
        (&None, &None)
    );
    assert_eq!(
        std::fs::read_to_string(secret_file(web)).unwrap(),
        "16charsatmost\n"
    );
    // The sourced file: `ucarp-master no` is no -P; the netmask from the
    // address of `iface eth1:ucarp`.
    assert_eq!(
        (mail.interface.as_str(), mail.label.as_deref(), mail.vhid),
        ("eth1", Some("eth1:ucarp"), 20)
    );
    assert_eq!(mail.vips, [Vip::parse("192.168.10.20/24").unwrap()]);
    assert_eq!(mail.srcip, Some("192.168.10.3".parse().unwrap()));
    assert_eq!((mail.advskew, mail.preempt), (100, false));
    assert_eq!(mail.scripts.xparam.as_deref(), Some("mail"));
    // The alias stanza's own commands are not run any more: said so.
    let hooks = lines(&text, "# note: ");
    for hook in [
        "`up /usr/local/sbin/mail-routes add`",
        "`down /usr/local/sbin/mail-routes del`",
    ] {
        assert!(hooks.iter().any(|l| l.contains(hook)), "{hook}\n{text}");
    }
    assert_eq!(
        hooks
            .iter()
            .filter(|l| l.contains("-B is not carried over"))
            .count(),
        1,
        "{text}"
    );
}

#[test]
fn debians_own_scripts_stay_when_one_is_replaced() {
    let dir = scratch();
    let file = dir.path().join("interfaces");
    std::fs::write(
        &file,
        "auto eth0\niface eth0 inet static\n  address 10.0.0.2/24\n  ucarp-vid 7\n  \
         ucarp-vip 10.0.0.7\n  ucarp-password pw second-word\n  ucarp-upscript /etc/ucarp/up.sh\n  \
         ucarp-nomcast yes\n",
    )
    .unwrap();
    let (text, config) = import_ok(dir.path(), &[file.to_str().unwrap()]);
    let inst = &config.instances[0];
    // `-p $IF_UCARP_PASSWORD` unquoted: UCARP got the first word only. The
    // other words are a password's too: not in the output.
    assert_eq!(std::fs::read_to_string(secret_file(inst)).unwrap(), "pw\n");
    assert!(
        text.contains("only the first word is passed as ucarp-password"),
        "{text}"
    );
    assert!(!text.contains("second-word"), "{text}");
    // Custom scripts get `eth0`, as from UCARP: no label.
    assert_eq!((inst.label.as_deref(), inst.broadcast_mac), (None, true));
    assert_eq!(
        inst.scripts.upscript.as_deref(),
        Some(Path::new("/etc/ucarp/up.sh"))
    );
    assert_eq!(
        inst.scripts.downscript.as_deref(),
        Some(Path::new("/usr/share/ucarp/vip-down"))
    );
}

#[test]
fn debian_errors_name_the_file_and_line() {
    let dir = scratch();
    let file = dir.path().join("interfaces");
    let f = file.display().to_string();
    let stanza = "auto eth0\niface eth0 inet static\n\taddress 10.0.0.2\n";
    let cases = [
        (
            format!("{stanza}\tucarp-vid 3\n\tucarp-vip 10.0.0.1\n"),
            format!("carpd-xdp: {f}:2: iface eth0: missing ucarp-password (/etc/network/if-up.d/ucarp starts UCARP only when ucarp-vid, ucarp-vip and ucarp-password are all set)\n"),
        ),
        (
            format!("{stanza}\tucarp-vid 3\n\tucarp-vid 4\n\tucarp-vip 10.0.0.1\n\tucarp-password pw\n"),
            format!("carpd-xdp: {f}:5: ucarp-vid: ucarp-vid is set twice in one stanza, also on line 4 (keep one)\n"),
        ),
        (
            format!("{stanza}\tucarp-vid 3\n\tucarp-vip 10.0.0.1\n\tucarp-password pw\niface eth0:ucarp inet static\n\taddress 10.0.0.9\n"),
            format!("carpd-xdp: {f}:8: address: 10.0.0.9 cannot be imported: not the address of ucarp-vip (the hook announces ucarp-vip, ifup adds this one: make them the same)\n"),
        ),
        (
            "auto eth0\n\taddress 10.0.0.2\n".to_owned(),
            format!("carpd-xdp: {f}: line 2: option outside an iface stanza: \"address 10.0.0.2\"\n"),
        ),
        (
            "auto lo\niface lo inet loopback\n".to_owned(),
            format!("carpd-xdp: {f}: no UCARP instance found (an iface stanza with ucarp-vid, ucarp-vip and ucarp-password, a per-VIP file, or a command line)\n"),
        ),
        (
            format!("{stanza}\tucarp-vid 300\n\tucarp-vip 10.0.0.1\n\tucarp-password pw\n"),
            format!("carpd-xdp: {f}:4: ucarp-vid: invalid value '300' for '--vhid <id>': 300 is not in 1..=255\n"),
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, &text).unwrap();
        let out = carpd(&["import-ucarp", &f]);
        assert_eq!(stderr(&out), expected, "{text}");
    }
}

/// Red Hat's `/etc/ucarp` under `root`, with the files that are not
/// configuration next to the VIP files.
fn redhat_root(root: &Path) {
    put(
        root,
        &[
            ("etc/ucarp/vip-common.conf", REDHAT_COMMON),
            ("etc/ucarp/vip-001.conf", REDHAT_001),
            ("etc/ucarp/vip-002.conf", REDHAT_002),
            ("etc/ucarp/vip-002.pwd", "mail-secret\n"),
            (
                "etc/ucarp/vip-001.conf.example",
                "VIP_ADDRESS=\"10.1.1.3\"\n",
            ),
            (
                "etc/ucarp/README",
                "Not configuration: the notes of the admins.\n",
            ),
        ],
    );
    let pwd = root.join("etc/ucarp/vip-002.pwd");
    std::fs::set_permissions(&pwd, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn red_hats_directory_imports_each_vip_file_over_vip_common() {
    let dir = scratch();
    let root = dir.path();
    redhat_root(root);
    let output = root.join("out.toml");
    let o = output.to_str().unwrap();
    let out = carpd(&[
        "import-ucarp",
        "--root",
        root.to_str().unwrap(),
        "/etc/ucarp",
        "--output",
        o,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&output).unwrap();
    // The PASSFILE is referenced as on that system...
    assert!(
        text.contains("password_file = \"/etc/ucarp/vip-002.pwd\""),
        "{text}"
    );
    // ...and the file passes check-config where that file is.
    let here = root.join("here.toml");
    let pwd = root.join("etc/ucarp/vip-002.pwd");
    std::fs::write(
        &here,
        text.replace("/etc/ucarp/vip-002.pwd", pwd.to_str().unwrap()),
    )
    .unwrap();
    let check = carpd(&["check-config", here.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
    let config = config::load(&here).unwrap();
    let [v1, v2] = config.instances.as_slice() else {
        panic!("two instances (README, .pwd, .example left alone): {text}");
    };
    // vip-001.conf: the vhid from its name, the rest from vip-common.conf;
    // the package's vip-up added the VIP as a /32.
    assert_eq!((v1.interface.as_str(), v1.vhid), ("eth0", 1));
    assert_eq!(v1.vips, [Vip::parse("10.1.1.3/32").unwrap()]);
    assert_eq!(v1.srcip, Some("10.1.1.2".parse().unwrap()));
    assert!(v1.preempt && v1.shutdown_on_exit);
    assert_eq!(v1.scripts.upscript, None);
    assert_eq!(std::fs::read_to_string(secret_file(v1)).unwrap(), "love\n");
    // vip-002.conf: its ID, its PASSFILE over the common PASSWORD, its
    // OPTIONS over the common ones.
    assert_eq!((v2.vhid, v2.advskew, v2.preempt), (20, 100, false));
    assert_eq!(secret_file(v2), pwd);
    assert!(
        lines(&text, "# note: ")
            .iter()
            .any(|l| l.contains("/usr/libexec/ucarp/vip-up")),
        "{text}"
    );
    // The PASSFILE is read where it is: a missing one is an error.
    std::fs::remove_file(&pwd).unwrap();
    let out = carpd(&[
        "import-ucarp",
        "--root",
        root.to_str().unwrap(),
        "/etc/ucarp",
    ]);
    let err = stderr(&out);
    assert!(
        err.starts_with("carpd-xdp: the imported configuration does not load here")
            && err.contains(pwd.to_str().unwrap()),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_red_hat_vip_file_out_of_range_is_refused_with_its_name() {
    let dir = scratch();
    let ucarp = dir.path().join("ucarp");
    put(
        &ucarp,
        &[
            ("vip-common.conf", REDHAT_COMMON),
            ("vip-300.conf", REDHAT_001),
        ],
    );
    let out = carpd(&["import-ucarp", ucarp.to_str().unwrap()]);
    assert_eq!(
        stderr(&out),
        format!(
            "carpd-xdp: {}:1: the id in the file name: invalid value '300' for '--vhid <id>': 300 is not in 1..=255\n",
            ucarp.join("vip-300.conf").display()
        )
    );
}
