//! The file format of Debian's `/etc/network/interfaces`, interfaces(5):
//! `#` comment lines, `\` continuation lines, `iface`, `mapping`, `auto`,
//! `allow-*`, `rename`, `no-auto-down`, `no-scripts`, `source` and
//! `source-directory` stanzas, and options on the lines after an `iface`.
//! [`parse`] reads one file without I/O; [`read`] follows its `source`
//! lines as ifup does.

use std::path::{Path, PathBuf};

use super::ImportError;

/// Why an interfaces(5) file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterfacesError {
    /// An option line before any `iface` stanza.
    #[error("line {line}: option outside an iface stanza: {text:?}")]
    Misplaced {
        /// 1-based line.
        line: usize,
        /// The line, trimmed and shortened.
        text: String,
    },
    /// `iface` without a name.
    #[error("line {line}: iface without an interface name")]
    NoName {
        /// 1-based line.
        line: usize,
    },
    /// An option with no value, which ifup refuses too.
    #[error("line {line}: option {name} has no value")]
    Empty {
        /// 1-based line.
        line: usize,
        /// The option.
        name: String,
    },
    /// `source` or `source-directory` without a path.
    #[error("line {line}: {keyword} without a path")]
    NoPath {
        /// 1-based line.
        line: usize,
        /// `source` or `source-directory`.
        keyword: String,
    },
}

/// One option line of a stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfOption {
    /// 1-based line.
    pub line: usize,
    /// The option name (`ucarp-vid`, `address`...).
    pub name: String,
    /// The rest of the line.
    pub value: String,
}

/// An `iface` stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// The file it is in.
    pub path: PathBuf,
    /// 1-based line of `iface`.
    pub line: usize,
    /// The logical interface (`eth0`, `eth0:ucarp`).
    pub iface: String,
    /// `inet`, `inet6`... (empty with `inherits` alone).
    pub family: String,
    /// The template named by `inherits`.
    pub inherits: Option<String>,
    /// Its options, in order.
    pub options: Vec<IfOption>,
}

/// A `source` or `source-directory` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// 1-based line.
    pub line: usize,
    /// The path or pattern as written.
    pub pattern: String,
    /// `source-directory` (every file named `[a-zA-Z0-9_-]+` of a
    /// directory) rather than `source` (files matching a pattern).
    pub directory: bool,
}

/// What a file holds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An `iface` stanza.
    Stanza(Stanza),
    /// A `source` or `source-directory` line.
    Include(Include),
}

/// Whether `text` reads as an interfaces(5) file: its first statement is a
/// stanza keyword (a shell file's would be an assignment).
pub fn looks_like_interfaces(text: &str) -> bool {
    logical_lines(text)
        .into_iter()
        .next()
        .and_then(|(_, line)| line.split_whitespace().next().map(str::to_owned))
        .is_some_and(|word| {
            matches!(
                word.as_str(),
                "iface"
                    | "auto"
                    | "mapping"
                    | "source"
                    | "source-directory"
                    | "rename"
                    | "no-auto-down"
                    | "no-scripts"
            ) || word.starts_with("allow-")
        })
}

/// Lines joined where they end in `\`, without comments and blank lines,
/// each with the 1-based number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        let (continues, part) = match raw.strip_suffix('\\') {
            Some(part) => (true, part),
            None => (false, raw),
        };
        let (line, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        joined.push_str(part);
        if continues {
            pending = Some((line, joined));
            continue;
        }
        let trimmed = joined.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push((line, trimmed.to_owned()));
        }
    }
    if let Some((line, joined)) = pending {
        let trimmed = joined.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push((line, trimmed.to_owned()));
        }
    }
    out
}

/// Parses one interfaces(5) file (no I/O: includes are returned, not
/// followed).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Item>, InterfacesError> {
    let mut items = Vec::new();
    // Options go to the last iface stanza; None after another keyword;
    // Some(None) inside a mapping stanza, whose lines are not options.
    let mut current: Option<Option<usize>> = None;
    for (line, text) in logical_lines(text) {
        let mut words = text.split_whitespace();
        let keyword = words.next().unwrap_or_default();
        match keyword {
            "iface" => {
                let iface = words.next().ok_or(InterfacesError::NoName { line })?;
                let rest: Vec<&str> = words.collect();
                let inherits = rest
                    .iter()
                    .position(|w| *w == "inherits")
                    .and_then(|i| rest.get(i + 1))
                    .map(|t| (*t).to_owned());
                let family = match rest.first() {
                    Some(&"inherits") | None => String::new(),
                    Some(f) => (*f).to_owned(),
                };
                items.push(Item::Stanza(Stanza {
                    path: path.to_owned(),
                    line,
                    iface: iface.to_owned(),
                    family,
                    inherits,
                    options: Vec::new(),
                }));
                current = Some(Some(items.len() - 1));
            }
            "mapping" => current = Some(None),
            "source" | "source-directory" => {
                let pattern = text[keyword.len()..].trim();
                if pattern.is_empty() {
                    return Err(InterfacesError::NoPath {
                        line,
                        keyword: keyword.to_owned(),
                    });
                }
                items.push(Item::Include(Include {
                    line,
                    pattern: pattern.to_owned(),
                    directory: keyword == "source-directory",
                }));
                current = None;
            }
            "auto" | "rename" | "no-auto-down" | "no-scripts" => current = None,
            k if k.starts_with("allow-") => current = None,
            name => match current {
                Some(Some(index)) => {
                    let value = text[name.len()..].trim();
                    if value.is_empty() {
                        return Err(InterfacesError::Empty {
                            line,
                            name: name.to_owned(),
                        });
                    }
                    if let Some(Item::Stanza(stanza)) = items.get_mut(index) {
                        stanza.options.push(IfOption {
                            line,
                            name: name.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                }
                Some(None) => {}
                None => {
                    return Err(InterfacesError::Misplaced {
                        line,
                        text: text.chars().take(60).collect(),
                    })
                }
            },
        }
    }
    Ok(items)
}

/// The stanzas of `path` and of the files it includes, in order; `root`
/// is where absolute paths are looked up (`/` on the host itself).
pub fn read(path: &Path, root: &Path) -> Result<Vec<Stanza>, ImportError> {
    let mut out = Vec::new();
    read_into(path, root, 0, &mut out)?;
    Ok(out)
}

/// How deep `source` lines may nest (ifupdown has no limit; a loop would
/// never end).
pub(super) const MAX_DEPTH: usize = 8;

fn read_into(
    path: &Path,
    root: &Path,
    depth: usize,
    out: &mut Vec<Stanza>,
) -> Result<(), ImportError> {
    let text = std::fs::read_to_string(path).map_err(|io| ImportError::Read {
        path: path.to_owned(),
        io,
    })?;
    let items = parse(path, &text).map_err(|error| ImportError::Interfaces {
        path: path.to_owned(),
        error,
    })?;
    for item in items {
        match item {
            Item::Stanza(stanza) => out.push(stanza),
            Item::Include(include) => {
                if depth >= MAX_DEPTH {
                    return Err(ImportError::Unsupported {
                        at: format!("{}:{}", path.display(), include.line),
                        setting: include.pattern,
                        why: "source lines nested too deep (a loop?)",
                    });
                }
                for file in included(path, root, &include)? {
                    read_into(&file, root, depth + 1, out)?;
                }
            }
        }
    }
    Ok(())
}

/// The files an include names: relative paths are relative to the
/// including file's directory, absolute ones are under `root`; a pattern
/// matching nothing includes nothing, as with ifup.
fn included(from: &Path, root: &Path, include: &Include) -> Result<Vec<PathBuf>, ImportError> {
    let written = Path::new(&include.pattern);
    let full = match written.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => from.parent().unwrap_or(Path::new(".")).join(written),
    };
    let (dir, pattern) = if include.directory {
        (full.clone(), None)
    } else {
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?', '[']) {
            return Ok(vec![full]);
        }
        (
            full.parent().unwrap_or(Path::new("/")).to_owned(),
            Some(name),
        )
    };
    if dir.to_string_lossy().contains(['*', '?', '[']) {
        return Err(ImportError::Unsupported {
            at: format!("{}:{}", from.display(), include.line),
            setting: include.pattern.clone(),
            why: "a wildcard in a directory name (list the files instead)",
        });
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match &pattern {
                Some(p) => !name.starts_with('.') && glob_match(p.as_bytes(), name.as_bytes()),
                None => {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                }
            }
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Shell wildcard match of one file name: `*`, `?` and `[...]` classes.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().skip(1).position(|b| *b == b']').map(|p| p + 1) else {
                return name.first() == Some(&b'[') && glob_match(rest, &name[1..]);
            };
            let (class, after) = (&rest[..end], &rest[end + 1..]);
            let (negate, class) = match class.split_first() {
                Some((b'!' | b'^', c)) => (true, c),
                _ => (false, class),
            };
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= (class[i]..=class[i + 2]).contains(&c);
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob_match(after, tail)
        }
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_the_shell() {
        for (p, n, m) in [
            ("*", "eth0", true),
            ("*.cfg", "eth0.cfg", true),
            ("*.cfg", "eth0", false),
            ("eth?", "eth0", true),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), n.as_bytes()), m, "{p} {n}");
        }
    }

    #[test]
    fn stanzas_options_continuations_and_comments() {
        let text = "# c\nauto lo\niface lo inet loopback\n\nsource interfaces.d/*\n\
                    iface eth0 inet static\n\taddress 10.0.0.2/24\n  # note\n\tup echo a \\\n b\n";
        let items = parse(Path::new("/x"), text).unwrap();
        assert_eq!(items.len(), 3);
        let Item::Stanza(eth0) = &items[2] else {
            panic!("{items:?}")
        };
        assert_eq!((eth0.iface.as_str(), eth0.line), ("eth0", 6));
        assert_eq!(eth0.options[1].value, "echo a  b");
        assert_eq!(
            parse(Path::new("/x"), "address 1.2.3.4\n").unwrap_err(),
            InterfacesError::Misplaced {
                line: 1,
                text: "address 1.2.3.4".into()
            }
        );
        assert!(looks_like_interfaces("# x\n\nauto lo\n"));
        assert!(!looks_like_interfaces("# x\nINTERFACE=eth0\n"));
    }
}
