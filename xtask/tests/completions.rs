//! The completions `carpd-xdp generate-assets` writes (and `cargo xtask
//! install` and the .deb install) complete in bash, zsh and fish: the
//! subcommands, never the hidden `generate-assets`, and after each
//! subcommand that subcommand's own options. Each shell is driven for real:
//! bash calls the completion function with COMP_WORDS set, fish runs
//! `complete -C`, zsh completes a line typed into an interactive shell on a
//! pseudo-terminal (zsh/zpty).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{carpd, require_tool, run, text, Scratch};

/// The visible subcommands, and an option each one completes after
/// `carpd-xdp <subcommand> --`.
const SUBCOMMANDS: [(&str, &str); 5] = [
    ("check-config", "--help"),
    ("status", "--json"),
    ("monitor", "--rate"),
    ("init", "--vip"),
    ("import-ucarp", "--cmdline"),
];

/// An option of the top level only (UCARP's), which no subcommand takes.
const TOP_LEVEL_ONLY: &str = "--ignoreifstate";

/// The completion files, written by the binary of this build.
fn completions(scratch: &Scratch) -> PathBuf {
    run(Command::new(carpd())
        .arg("generate-assets")
        .arg("--out")
        .arg(&scratch.0));
    scratch.0.join("completions")
}

/// What bash completes for `words` (the last one being completed).
fn bash(dir: &Path, words: &[&str]) -> Vec<String> {
    // As bash-completion calls it: the function `complete -p` names, with
    // the command, the word being completed and the one before it.
    let script = r#"source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
        f=$(complete -p carpd-xdp | sed 's/.* -F \([^ ]*\) .*/\1/')
        "$f" carpd-xdp "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}""#;
    let out = run(Command::new("bash")
        .args(["--norc", "-c", script, "bash"])
        .arg(dir.join("carpd-xdp.bash"))
        .args(words));
    text(&out).lines().map(str::to_owned).collect()
}

/// What fish completes for `words` (the last one being completed).
fn fish(dir: &Path, words: &[&str]) -> Vec<String> {
    let out = run(Command::new("fish")
        .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
        .arg(dir.join("carpd-xdp.fish"))
        .arg(words.join(" ")));
    // Each line is `candidate<TAB>description`.
    text(&out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .collect()
}

/// Types `$2` and a TAB into an interactive zsh (fpath led by `$1`,
/// compinit run) and appends every candidate offered to the file `$3`,
/// then `__done__` once the shell is past the completion.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "setopt no_auto_list no_beep; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "compadd() { local -a m; builtin compadd -O m \"\$@\"; print -rl -- \$m >> $3; builtin compadd \"\$@\" }"
zpty -w z "$2"$'\t'
zpty -w z $'\C-u'"print -r -- __done__ >> $3"
while ! grep -qx __done__ $3 2>/dev/null; do sleep 0.1; done
zpty -d z
"#;

/// What zsh completes for `words` (the last one being completed).
fn zsh(dir: &Path, words: &[&str], scratch: &Path) -> Vec<String> {
    let out = scratch.join("zsh-candidates");
    let _ = std::fs::remove_file(&out);
    let driver = scratch.join("driver.zsh");
    std::fs::write(&driver, ZSH_DRIVER).unwrap();
    run(Command::new("timeout")
        .arg("120")
        .args(["zsh", "-f"])
        .arg(&driver)
        .arg(dir)
        .arg(words.join(" "))
        .arg(&out));
    let candidates = std::fs::read_to_string(&out).unwrap();
    candidates
        .lines()
        .take_while(|l| *l != "__done__")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The subcommands among `candidates` (words that are not options).
fn subcommands_in(candidates: &[String]) -> Vec<&str> {
    let mut subs: Vec<&str> = candidates
        .iter()
        .map(String::as_str)
        .filter(|c| SUBCOMMANDS.iter().any(|(s, _)| s == c) || *c == "generate-assets")
        .collect();
    subs.sort_unstable();
    subs.dedup();
    subs
}

fn expected_subcommands() -> Vec<&'static str> {
    let mut subs: Vec<&str> = SUBCOMMANDS.iter().map(|(s, _)| *s).collect();
    subs.sort_unstable();
    subs
}

/// `candidates` after `carpd-xdp <sub> --`: the subcommand's own options.
fn assert_options_of(shell: &str, sub: &str, option: &str, candidates: &[String]) {
    assert!(
        candidates.iter().any(|c| c == option) && candidates.iter().any(|c| c == "--help"),
        "{shell}: `carpd-xdp {sub} --` does not offer {option} and --help: {candidates:?}"
    );
    assert!(
        !candidates.iter().any(|c| c == TOP_LEVEL_ONLY),
        "{shell}: `carpd-xdp {sub} --` offers the top level's {TOP_LEVEL_ONLY}: {candidates:?}"
    );
}

/// `complete` (a shell's completion of some words) offers the visible
/// subcommands, and after each one that subcommand's options.
fn assert_completes(shell: &str, complete: impl Fn(&[&str]) -> Vec<String>) {
    let top = complete(&["carpd-xdp", ""]);
    assert_eq!(
        subcommands_in(&top),
        expected_subcommands(),
        "{shell}: {top:?}"
    );
    for (sub, option) in SUBCOMMANDS {
        assert_options_of(shell, sub, option, &complete(&["carpd-xdp", sub, "--"]));
    }
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    require_tool("bash", "bash");
    let scratch = Scratch::new("complete-bash");
    let dir = completions(&scratch);
    assert_completes("bash", |words| bash(&dir, words));
    // The top level's options, and a prefix after a subcommand completes
    // to the one option it starts.
    let top = bash(&dir, &["carpd-xdp", "--adv"]);
    assert_eq!(top, ["--advbase", "--advskew"]);
    assert_eq!(bash(&dir, &["carpd-xdp", "status", "--j"]), ["--json"]);
}

#[test]
fn fish_completes_subcommands_and_their_options() {
    require_tool("fish", "fish");
    let scratch = Scratch::new("complete-fish");
    let dir = completions(&scratch);
    assert_completes("fish", |words| fish(&dir, words));
    // Where Debian's fish looks for completions of installed packages (its
    // configuration sets the path; a scratch home keeps the user's out).
    let path = text(&run(Command::new("fish")
        .env("XDG_CONFIG_HOME", &scratch.0)
        .env("XDG_DATA_HOME", &scratch.0)
        .args(["-c", "printf '%s\\n' $fish_complete_path"])));
    assert!(
        path.lines()
            .any(|l| l == "/usr/share/fish/vendor_completions.d"),
        "{path}"
    );
}

#[test]
fn zsh_completes_subcommands_and_their_options() {
    require_tool("zsh", "zsh");
    let scratch = Scratch::new("complete-zsh");
    let dir = completions(&scratch);
    assert_completes("zsh", |words| zsh(&dir, words, &scratch.0));
    // The file is installed as <prefix>/share/zsh/vendor-completions/_carpd-xdp
    // (tests/package.rs): that is where Debian's zsh looks.
    let fpath = text(&run(Command::new("zsh").args([
        "-f",
        "-c",
        "print -rl -- $fpath",
    ])));
    assert!(
        fpath
            .lines()
            .any(|l| l == "/usr/share/zsh/vendor-completions"),
        "{fpath}"
    );
}
