//! Shell completions from clap_complete, with what it gets wrong for this
//! binary put right:
//!
//! - hidden subcommands (`generate-assets`) are offered by every shell's
//!   generator, so they are completed from a copy of the command without
//!   them ([`visible`]);
//! - zsh's script takes the first word after `carpd-xdp` for the optional
//!   INTERFACE operand, so `carpd-xdp status --<TAB>` offered the top
//!   level's options; the copy leaves the top level's operands out (an
//!   interface name has nothing to complete from anyway), so that the first
//!   word is the subcommand;
//! - for a hyphenated binary name the bash script names a subcommand's case
//!   arm `carpd__subcmd__xdp__subcmd__status` but sets
//!   `cmd="carpd__xdp__subcmd__status"`, so nothing completes after a
//!   subcommand; [`fix_bash`] renames the arms and checks that every name
//!   the script sets has an arm.

use clap::{Arg, ArgGroup, Command, Id};
use clap_complete::Shell;

/// The shells, with the file name each one's completion is written to.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "carpd-xdp.bash"),
    (Shell::Zsh, "_carpd-xdp"),
    (Shell::Fish, "carpd-xdp.fish"),
];

/// A completion script that does not do what it should.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    /// The bash script sets a command name no case arm handles.
    #[error("bash completion: no case arm for {name:?}")]
    NoBashArm {
        /// The name set by `cmd="..."`.
        name: String,
    },
}

/// `cmd` (built) without its hidden subcommands and its operands: a new
/// command named `bin` with the same about, options and visible
/// subcommands.
pub fn visible(cmd: &Command, bin: &'static str) -> Command {
    let operands: Vec<&Id> = cmd
        .get_arguments()
        .filter(|a| a.is_positional())
        .map(Arg::get_id)
        .collect();
    let mut out = Command::new(bin)
        // The arguments below already include the help and version flags.
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .args(cmd.get_arguments().filter(|a| !a.is_positional()).cloned())
        .groups(cmd.get_groups().map(|group| without(group, &operands)))
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if cmd.get_version().is_some() {
        // This crate builds the binary, so its version is the command's.
        out = out.version(env!("CARGO_PKG_VERSION"));
    }
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out
}

/// `group` without the arguments `left_out`.
fn without(group: &ArgGroup, left_out: &[&Id]) -> ArgGroup {
    ArgGroup::new(group.get_id().clone())
        .args(
            group
                .get_args()
                .filter(|id| !left_out.contains(id))
                .cloned(),
        )
        .multiple(group.clone().is_multiple())
        .required(group.is_required_set())
}

/// The completion script of `cmd` for `shell`, as `bin` is called.
pub fn script(shell: Shell, cmd: &Command, bin: &'static str) -> Result<Vec<u8>, CompletionError> {
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut visible(cmd, bin), bin, &mut text);
    if shell == Shell::Bash {
        let fixed = fix_bash(&String::from_utf8_lossy(&text), bin)?;
        return Ok(fixed.into_bytes());
    }
    Ok(text)
}

/// Renames the case arms of `script` (clap_complete's bash completion for
/// `bin`) to the names its `cmd="..."` lines set, and checks that every
/// such name has an arm.
pub fn fix_bash(script: &str, bin: &str) -> Result<String, CompletionError> {
    const SEP: &str = "__subcmd__";
    let wrong = format!("{}{SEP}", bin.replace('-', SEP));
    let right = format!("{}{SEP}", bin.replace('-', "__"));
    let mut out = String::with_capacity(script.len());
    let mut arms = Vec::new();
    let mut set = Vec::new();
    for line in script.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(label) = trimmed.strip_suffix(')').filter(|l| is_name(l)) {
            let label = match label.strip_prefix(&wrong) {
                Some(rest) => format!("{right}{rest}"),
                None => label.to_owned(),
            };
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}{label})\n"));
            arms.push(label);
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix("cmd=\"")
            .and_then(|r| r.strip_suffix('"'))
            .filter(|n| !n.is_empty())
        {
            set.push(name.to_owned());
        }
        out.push_str(line);
    }
    match set.into_iter().find(|name| !arms.contains(name)) {
        Some(name) => Err(CompletionError::NoBashArm { name }),
        None => Ok(out),
    }
}

/// A case arm label naming a command function (not `-i)`, `*)`, ...).
fn is_name(label: &str) -> bool {
    label.starts_with(|c: char| c.is_ascii_alphabetic())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = "    case \"${cmd},${i}\" in
            \",$1\")
                cmd=\"my__tool\"
                ;;
            my__tool,do-it)
                cmd=\"my__tool__subcmd__do__subcmd__it\"
                ;;
    esac
    case \"${cmd}\" in
        my__tool)
            ;;
        my__subcmd__tool__subcmd__do__subcmd__it)
            case \"${prev}\" in
                --out)
                    ;;
            esac
            ;;
    esac
";

    #[test]
    fn the_arms_get_the_names_the_script_sets() {
        let fixed = fix_bash(BROKEN, "my-tool").unwrap();
        assert!(
            fixed.contains("\n        my__tool__subcmd__do__subcmd__it)\n"),
            "{fixed}"
        );
        assert!(!fixed.contains("my__subcmd__tool"), "{fixed}");
        // Everything else is left as it was.
        assert_eq!(fixed.len(), BROKEN.len() - "subcmd__".len());
    }

    #[test]
    fn a_name_without_an_arm_is_an_error() {
        let script = BROKEN.replace("my__subcmd__tool__subcmd__do__subcmd__it)", "other)");
        let err = fix_bash(&script, "my-tool").unwrap_err();
        assert!(
            err.to_string().contains("my__tool__subcmd__do__subcmd__it"),
            "{err}"
        );
    }
}
