//! `cargo xtask install` into a staging directory, and `cargo xtask deb`:
//! the package builds, installs with `dpkg -i` on this machine, systemd
//! accepts its unit, `man -l` renders its page, the installed binary checks
//! the installed default configuration, and `dpkg --purge` removes it all.
//!
//! Both package the `carpd-xdp` built next to xtask (a workspace `cargo
//! test` builds it); the dpkg test needs root and, under `CI=true`, refuses
//! to skip.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{carpd, require_tool, run, text, Scratch, XTASK};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Renders a man page the way `man` shows it.
fn man(page: &Path) -> String {
    let out = run(Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .env("PAGER", "cat"));
    // Without a terminal, man marks bold and underline by overstriking
    // (`N\bN`, `_\bx`): keep the last character of each such pair.
    let mut plain = String::new();
    for c in text(&out).chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The rendered `carpd-xdp(8)` has a one-line NAME and the sections of a
/// reference page beyond the options.
fn assert_reference_sections(page: &str) {
    assert!(
        page.contains("NAME\n       carpd-xdp - CARP daemon with an XDP receive path"),
        "{page}"
    );
    assert!(!page.contains("carpd-xdp - carpd-xdp"), "{page}");
    for section in ["EXIT STATUS", "SIGNALS", "FILES", "SEE ALSO"] {
        assert!(
            page.lines().any(|l| l == section),
            "no {section} section:\n{page}"
        );
    }
    for text in [
        "SIGHUP",
        "SIGUSR2",
        "/etc/carpd-xdp/carpd-xdp.toml",
        "/var/lib/carpd-xdp/",
        "/run/carpd-xdp.sock",
        "/usr/share/doc/carpd-xdp/",
        "carpd-xdp.toml(5)",
        "ucarp(8)",
        "keepalived(8)",
        "carpd-xdp-import-ucarp(8)",
    ] {
        assert!(page.contains(text), "no {text}:\n{page}");
    }
    let see_also = page.split("SEE ALSO").last().unwrap();
    assert!(see_also.contains("keepalived(8)"), "{see_also}");
}

#[test]
fn install_stages_every_file_and_keeps_an_edited_config() {
    let stage = Scratch::new("install");
    let install = |prefix: &str| {
        run(Command::new(XTASK)
            .args(["install", "--prefix", prefix, "--destdir"])
            .arg(&stage.0)
            .arg("--binary")
            .arg(carpd()))
    };
    install("/usr/local");
    let root = &stage.0;
    let sbin = root.join("usr/local/sbin/carpd-xdp");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&sbin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let unit = std::fs::read_to_string(root.join("usr/local/lib/systemd/system/carpd-xdp.service"))
        .unwrap();
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/sbin/carpd-xdp --config /etc/carpd-xdp/carpd-xdp.toml\n"
        ),
        "{unit}"
    );
    assert!(
        unit.contains("After=network-online.target time-sync.target"),
        "{unit}"
    );
    let config = root.join("etc/carpd-xdp/carpd-xdp.toml");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read_to_string(workspace().join("dist/carpd-xdp.toml")).unwrap()
    );
    for sub in [
        "",
        "-check-config",
        "-status",
        "-monitor",
        "-init",
        "-import-ucarp",
    ] {
        let page = root.join(format!("usr/local/share/man/man8/carpd-xdp{sub}.8"));
        let rendered = man(&page);
        assert!(
            rendered.contains(&format!("carpd-xdp{sub}")),
            "{}:\n{rendered}",
            page.display()
        );
    }
    let page = man(&root.join("usr/local/share/man/man8/carpd-xdp.8"));
    assert!(page.contains("--downscript"), "{page}");
    assert_reference_sections(&page);
    for sub in ["status", "init"] {
        let page = man(&root.join(format!("usr/local/share/man/man8/carpd-xdp-{sub}.8")));
        assert!(page.contains("SEE ALSO\n       carpd-xdp(8)"), "{page}");
    }
    // The documentation --help and the man page cite, where the man page
    // says it is, with the README's links to docs/ intact.
    let doc = root.join("usr/local/share/doc/carpd-xdp");
    for entry in std::fs::read_dir(workspace().join("docs")).unwrap() {
        let name = entry.unwrap().file_name();
        let installed = doc.join("docs").join(&name);
        assert_eq!(
            std::fs::read(&installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display())),
            std::fs::read(workspace().join("docs").join(&name)).unwrap()
        );
    }
    let readme = std::fs::read_to_string(doc.join("README.md")).unwrap();
    assert!(readme.contains("(docs/tuning.md)"), "README links");
    assert!(doc.join("examples/active-active-host-a.toml").exists());
    assert!(
        unit.contains("\nDocumentation=file:/usr/local/share/doc/carpd-xdp/README.md\n"),
        "{unit}"
    );
    assert!(!unit.contains("example.invalid"), "{unit}");
    // The configuration file's reference, from the parser's table of keys.
    let toml_page = man(&root.join("usr/local/share/man/man5/carpd-xdp.toml.5"));
    assert!(
        toml_page.contains("carpd-xdp.toml") && toml_page.contains("advskew"),
        "{toml_page}"
    );
    assert!(!root
        .join("usr/local/share/man/man8/carpd-xdp-generate-assets.8")
        .exists());
    let bash =
        std::fs::read_to_string(root.join("usr/local/share/bash-completion/completions/carpd-xdp"))
            .unwrap();
    assert!(
        bash.contains("import-ucarp") && bash.contains("--advskew"),
        "bash completion"
    );
    // The bash completion loads in bash and completes a subcommand.
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "source {}; COMP_WORDS=(carpd-xdp imp); COMP_CWORD=1; COMP_LINE='carpd-xdp imp'; COMP_POINT=13; \
         f=$(complete -p carpd-xdp | sed 's/.* -F \\([^ ]*\\) .*/\\1/'); \
         \"$f\" carpd-xdp imp carpd-xdp; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        root.join("usr/local/share/bash-completion/completions/carpd-xdp").display()
    )));
    assert!(
        text(&out).lines().any(|l| l == "import-ucarp"),
        "{}",
        text(&out)
    );
    assert!(!bash.contains("generate-assets"), "bash completion");
    assert!(root
        .join("usr/local/share/zsh/vendor-completions/_carpd-xdp")
        .exists());
    assert!(root
        .join("usr/local/share/fish/vendor_completions.d/carpd-xdp.fish")
        .exists());

    // An edited configuration survives a second install.
    std::fs::write(&config, "# edited\n").unwrap();
    let out = install("/usr");
    assert!(
        text(&out).contains("exists, left as it is"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# edited\n");
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/carpd-xdp.service")).unwrap();
    assert!(unit.contains("\nExecStart=/usr/sbin/carpd-xdp "), "{unit}");
}

fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root (dpkg -i) and CI=true forbids skipping");
    }
    eprintln!("skipped {test}: needs root for dpkg -i");
    false
}

/// `cargo xtask deb` of this build's carpd-xdp into `out_dir`: the package.
fn build_deb(out_dir: &Scratch) -> PathBuf {
    let built = run(Command::new(XTASK)
        .args(["deb", "--binary"])
        .arg(carpd())
        .arg("--out")
        .arg(&out_dir.0));
    PathBuf::from(text(&built).trim())
}

/// Runs dpkg, waiting while another dpkg or apt holds its lock.
fn dpkg(args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let out = Command::new("dpkg").args(args).output().expect("run dpkg");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let locked = !out.status.success() && stderr.contains("lock");
        if !locked || start.elapsed() > Duration::from_secs(300) {
            return out;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Where deb-systemd-helper keeps what it knows of the package's unit.
const DSH_STATE: &str = "/var/lib/systemd/deb-systemd-helper-enabled/carpd-xdp.service.dsh-also";

/// Purges the package when dropped, so a failed assertion leaves no trace.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = dpkg(&["--purge", "carpd-xdp"]);
        if !out.status.success() {
            eprintln!(
                "dpkg --purge carpd-xdp: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn deb_builds_installs_verifies_and_purges() {
    if !require_root("deb_builds_installs_verifies_and_purges") {
        return;
    }
    // Never clobber a carpd-xdp that is not ours.
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "carpd-xdp"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("installed"),
        "a carpd-xdp package is already installed here; remove it to run this test"
    );
    for path in ["/usr/sbin/carpd-xdp", "/etc/carpd-xdp/carpd-xdp.toml"] {
        assert!(
            !Path::new(path).exists(),
            "{path} exists (not from a package); remove it to run this test"
        );
    }

    let out_dir = Scratch::new("deb");
    let deb = build_deb(&out_dir);
    assert!(
        deb.exists() && deb.extension().is_some_and(|e| e == "deb"),
        "{}",
        deb.display()
    );

    let info = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    for field in [
        "Package: carpd-xdp",
        "Version: ",
        "Architecture: ",
        "Depends: libc6",
        "Description: ",
    ] {
        assert!(info.contains(field), "{field} missing:\n{info}");
    }
    let contents = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/sbin/carpd-xdp",
        "./usr/lib/systemd/system/carpd-xdp.service",
        "./etc/carpd-xdp/carpd-xdp.toml",
        "./usr/share/man/man8/carpd-xdp.8.gz",
        "./usr/share/man/man8/carpd-xdp-import-ucarp.8.gz",
        "./usr/share/man/man5/carpd-xdp.toml.5.gz",
        "./usr/share/bash-completion/completions/carpd-xdp",
        "./usr/share/zsh/vendor-completions/_carpd-xdp",
        "./usr/share/fish/vendor_completions.d/carpd-xdp.fish",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{contents}"
        );
    }
    assert!(
        contents.lines().all(|l| l.contains("root/root")),
        "owned by root:\n{contents}"
    );

    let installed = Installed;
    let out = dpkg(&["-i", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dpkg -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = text(&run(Command::new("dpkg").args(["-s", "carpd-xdp"])));
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(
        status.contains("Conffiles:\n /etc/carpd-xdp/carpd-xdp.toml "),
        "{status}"
    );
    // postinst registered the unit with deb-systemd-helper (its state file,
    // read by a later enable, mask or purge) and did not enable it.
    assert!(
        Path::new(DSH_STATE).exists(),
        "postinst did not run deb-systemd-helper update-state"
    );
    assert!(
        !Path::new("/etc/systemd/system/multi-user.target.wants/carpd-xdp.service").exists(),
        "enabled on install"
    );

    // systemd accepts the unit as installed (the binary it names exists now).
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/carpd-xdp.service"])
        .output()
        .expect("systemd-analyze");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/carpd-xdp.service").unwrap();
    assert!(unit.contains("After=network-online.target time-sync.target"));

    let page = man(Path::new("/usr/share/man/man8/carpd-xdp.8.gz"));
    assert!(
        page.contains("carpd-xdp") && page.contains("--preempt"),
        "{page}"
    );

    // The installed default configuration is refused until its one edit
    // (cli_config/reference.rs tests that edit).
    let out = Command::new("/usr/sbin/carpd-xdp")
        .args(["check-config", "/etc/carpd-xdp/carpd-xdp.toml"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("\"ADDRESS/PREFIX\" is a placeholder: edit it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = man(Path::new("/usr/share/man/man5/carpd-xdp.toml.5.gz"));
    assert!(
        page.contains("advskew") && page.contains("password_file"),
        "{page}"
    );

    drop(installed);
    assert!(!Path::new("/usr/sbin/carpd-xdp").exists());
    assert!(!Path::new("/etc/carpd-xdp/carpd-xdp.toml").exists());
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "carpd-xdp"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&status.stdout).contains("installed"));
    // postrm purged the unit's deb-systemd-helper state.
    assert!(!Path::new(DSH_STATE).exists(), "{DSH_STATE} left behind");
}

/// The highest `GLIBC_x.y` symbol version `binary` needs.
fn glibc_needed(binary: &Path) -> (u32, u32) {
    let dynsyms = text(&run(Command::new("objdump").arg("-T").arg(binary)));
    dynsyms
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let (major, minor) = version.split_once('.')?;
            Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
        })
        .max()
        .expect("the binary uses glibc")
}

#[test]
fn deb_passes_lintian() {
    require_tool("lintian", "lintian");
    require_tool("dpkg-shlibdeps", "dpkg-dev");
    let out_dir = Scratch::new("lintian");
    let deb = build_deb(&out_dir);

    // No error, and no warning that is not overridden (an overridden tag
    // shows as O:, with --show-overrides).
    let lint = Command::new("lintian")
        .args(["--display-info", "--show-overrides"])
        .arg(&deb)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        !report
            .lines()
            .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "lintian:\n{report}"
    );
    assert!(lint.status.success(), "lintian failed:\n{report}");

    let tree = out_dir.0.join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    // Each override carries its reason: comment lines right above it.
    let overrides = std::fs::read_to_string(tree.join("usr/share/lintian/overrides/carpd-xdp"))
        .expect("the overrides are installed");
    let mut reason = false;
    for line in overrides.lines() {
        if line.starts_with('#') {
            reason = true;
        } else if !line.trim().is_empty() {
            assert!(reason, "override without a reason: {line}");
            reason = false;
        }
    }

    // The versioned Depends dpkg-shlibdeps computes: at least the glibc
    // symbol versions the binary uses.
    let info = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb)));
    let (major, minor) = glibc_needed(&tree.join("usr/sbin/carpd-xdp"));
    assert!(
        info.contains(&format!("Depends: libc6 (>= {major}.{minor})")),
        "GLIBC_{major}.{minor} needed:\n{info}"
    );
    assert!(!info.contains("example.invalid"), "{info}");
    let unit =
        std::fs::read_to_string(tree.join("usr/lib/systemd/system/carpd-xdp.service")).unwrap();
    assert!(!unit.contains("example.invalid"), "{unit}");
    assert!(
        unit.contains("\nDocumentation=file:/usr/share/doc/carpd-xdp/README.md\n"),
        "{unit}"
    );

    // Machine-readable copyright, with the workspace's license.
    let doc = tree.join("usr/share/doc/carpd-xdp");
    let copyright = std::fs::read_to_string(doc.join("copyright")).unwrap();
    assert!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ),
        "{copyright}"
    );
    let cargo = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let license = cargo
        .lines()
        .find_map(|l| l.strip_prefix("license = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a workspace license");
    let files_license = copyright
        .split("\n\n")
        .find(|p| p.starts_with("Files: *"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("License: ")))
        .expect("a Files: * paragraph with a License");
    assert_eq!(files_license.replace(" or ", " OR "), license);
    for name in license.split(" OR ") {
        assert!(
            copyright.contains(&format!("\n\nLicense: {name}\n")),
            "no License paragraph for {name}:\n{copyright}"
        );
    }
    // The crates linked into the binary, with their licenses.
    assert!(
        copyright
            .lines()
            .any(|l| l.starts_with(" tokio ") && l.contains("MIT")),
        "{copyright}"
    );
    assert!(doc.join("changelog.gz").exists());
}
