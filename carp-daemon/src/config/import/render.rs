//! The configuration text of an import: where it came from, the notes,
//! `[global]` and one `[[instance]]` per imported instance.

use std::fmt::Write as _;

use super::super::model::ReplayMode;
use super::super::starter::quote;
use super::imported::Imported;
use super::settings::Note;
use super::Input;

/// Text for a comment line: line breaks become spaces, and every other
/// control character TOML refuses in a comment (all but tab) is written
/// escaped, as `\u{1b}`.
fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// The notes, each once with every place it applies to, in the order first
/// seen.
fn note_lines(notes: &[Note]) -> Vec<String> {
    let mut grouped: Vec<(&Note, Vec<&str>)> = Vec::new();
    for note in notes {
        match grouped
            .iter_mut()
            .find(|(n, _)| n.subject == note.subject && n.text == note.text)
        {
            Some((_, places)) => {
                if !places.contains(&note.at.as_str()) {
                    places.push(&note.at);
                }
            }
            None => grouped.push((note, vec![&note.at])),
        }
    }
    grouped
        .into_iter()
        .map(|(n, places)| comment(&format!("# note: {}: {}", places.join(", "), n.text)))
        .collect()
}

/// The configuration text; `inline` writes the passwords to be written
/// into files inline instead, for the loader's check.
pub(super) fn render(
    default: Option<&Input>,
    imported: &[Imported],
    global: &str,
    notes: &[Note],
    inline: bool,
) -> String {
    let mut out = String::new();
    out.push_str("# carpd-xdp configuration written by `carpd-xdp import-ucarp` from:\n");
    for name in default
        .map(|d| d.name.display().to_string())
        .into_iter()
        .chain(imported.iter().map(|i| i.source.clone()))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let _ = writeln!(out, "{}", comment(&format!("#   {name}")));
    }
    out.push_str(
        "# Check it with `carpd-xdp check-config FILE`. Unlike UCARP, carpd-xdp adds\n\
         # and removes the VIPs itself (scripts that add them too keep working).\n",
    );
    for line in note_lines(notes) {
        let _ = writeln!(out, "{line}");
    }
    if !global.is_empty() {
        out.push_str("\n[global]\n");
        out.push_str(global);
    }
    for imp in imported {
        let i = &imp.instance;
        let _ = writeln!(out, "\n{}", comment(&format!("# from {}", imp.source)));
        out.push_str("[[instance]]\n");
        let _ = writeln!(out, "interface = {}", quote(&i.interface));
        if let Some(label) = &i.label {
            let _ = writeln!(out, "label = {}", quote(label));
        }
        let _ = writeln!(out, "vhid = {}", i.vhid);
        if let Some(ip) = i.srcip {
            let _ = writeln!(out, "srcip = {}", quote(&ip.to_string()));
        }
        let vips: Vec<String> = i.vips.iter().map(|v| quote(&v.to_string())).collect();
        let _ = writeln!(out, "vips = [{}]", vips.join(", "));
        let _ = writeln!(out, "advbase_secs = {}", i.advbase_secs);
        let _ = writeln!(out, "advskew = {}", i.advskew);
        let _ = writeln!(out, "deadratio = {}", i.deadratio);
        out.push_str("master_down = \"ucarp\"\n");
        let _ = writeln!(out, "preempt = {}", i.preempt);
        let _ = writeln!(out, "neutral = {}", i.neutral);
        let _ = writeln!(out, "shutdown_on_exit = {}", i.shutdown_on_exit);
        let _ = writeln!(out, "ignore_ifstate = {}", i.ignore_ifstate);
        match &imp.secret {
            Some(secret) if inline => {
                let _ = writeln!(
                    out,
                    "password = {}",
                    quote(&String::from_utf8_lossy(secret))
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "password_file = {}",
                    quote(&imp.password_file.to_string_lossy())
                );
            }
        }
        for (key, path) in [
            ("upscript", &i.scripts.upscript),
            ("downscript", &i.scripts.downscript),
        ] {
            if let Some(path) = path {
                let _ = writeln!(out, "{key} = {}", quote(&path.to_string_lossy()));
            }
        }
        if let Some(x) = &i.scripts.xparam {
            let _ = writeln!(out, "xparam = {}", quote(x));
        }
        if i.replay != ReplayMode::default() {
            let _ = writeln!(out, "replay = {}", quote(i.replay.name()));
        }
        if let Some(ms) = i.replay_window_ms {
            let _ = writeln!(out, "replay_window_ms = {ms}");
        }
        if let Some(mcast) = i.mcast {
            let _ = writeln!(out, "mcast = {}", quote(&mcast.to_string()));
        }
        let _ = writeln!(out, "broadcast_mac = {}", i.broadcast_mac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::comment;

    #[test]
    fn a_comment_holds_no_control_character_toml_refuses() {
        let text = comment("down /usr/local/sbin/mail-r\u{1b}\u{7f}\u{0}x\ty\nz");
        assert_eq!(
            text,
            "down /usr/local/sbin/mail-r\\u{1b}\\u{7f}\\u{0}x\ty z"
        );
        let line = format!("# {text}\nkey = 1\n");
        assert!(toml::from_str::<toml::Table>(&line).is_ok(), "{line}");
    }
}
