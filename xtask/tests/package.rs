//! `cargo xtask install` into a staging directory, and `cargo xtask deb`:
//! the package builds, installs with `dpkg -i` on this machine, systemd
//! accepts its unit, `man -l` renders its page, the installed binary checks
//! the installed default configuration, and `dpkg --purge` removes it all.
//!
//! Both package the `carpd-xdp` built next to xtask (a workspace `cargo
//! test` builds it); the dpkg test needs root and, under `CI=true`, refuses
//! to skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The carpd-xdp binary of this build (same target directory as xtask).
fn carpd() -> PathBuf {
    let path = Path::new(XTASK).with_file_name("carpd-xdp");
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test at the root builds it)",
        path.display()
    );
    path
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    assert!(man(&root.join("usr/local/share/man/man8/carpd-xdp.8")).contains("--downscript"));
    // The configuration file's reference, from the parser's table of keys.
    let page = man(&root.join("usr/local/share/man/man5/carpd-xdp.toml.5"));
    assert!(
        page.contains("carpd-xdp.toml") && page.contains("advskew"),
        "{page}"
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
    let built = run(Command::new(XTASK)
        .args(["deb", "--binary"])
        .arg(carpd())
        .arg("--out")
        .arg(&out_dir.0));
    let deb = PathBuf::from(text(&built).trim());
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
}
