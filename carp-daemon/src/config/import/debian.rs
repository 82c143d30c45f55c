//! Debian's ucarp package: UCARP is configured on the physical interface's
//! stanza of `/etc/network/interfaces` (or a file of `interfaces.d/`), and
//! `/etc/network/if-up.d/ucarp` runs, when ifup brings that stanza up,
//!
//! ```text
//! ucarp -i $IFACE -s $IF_ADDRESS -B -z -v $IF_UCARP_VID -p $IF_UCARP_PASSWORD
//!       -a $IF_UCARP_VIP -u $IF_UCARP_UPSCRIPT -d $IF_UCARP_DOWNSCRIPT
//!       [-P] [-k ADVSKEW] [-b ADVBASE] [-r DEADRATIO] [-M] [-x XPARAM]
//! ```
//!
//! only when `ucarp-vid`, `ucarp-vip` and `ucarp-password` are all set.
//! `ucarp-master` and `ucarp-nomcast` are on unless their value starts with
//! `no`, `off`, `false` or `0`. The default scripts,
//! `/usr/share/ucarp/vip-up` and `vip-down`, run `ifup eth0:ucarp` and
//! `ifdown eth0:ucarp`: the VIP, its netmask and its label come from the
//! `iface eth0:ucarp` stanza, which carpd-xdp then does itself.
//!
//! The file format is interfaces(5): `#` comment lines, `\` continuation
//! lines, `iface`, `mapping`, `auto`, `allow-*`, `rename`, `no-auto-down`,
//! `no-scripts`, `source` and `source-directory` stanzas, and options on
//! the lines after an `iface`.

use std::path::{Path, PathBuf};

use super::settings::{parse_options, Note, Origin, Settings, Val};
use super::ImportError;

/// The scripts the package runs when none is configured.
const DEFAULT_UPSCRIPT: &str = "/usr/share/ucarp/vip-up";
const DEFAULT_DOWNSCRIPT: &str = "/usr/share/ucarp/vip-down";
/// What runs UCARP in this layout, for notes.
const HOOK: &str = "/etc/network/if-up.d/ucarp";

/// Options the hook reads, and the UCARP option each becomes.
const OPTIONS: &[(&str, &str)] = &[
    ("ucarp-vid", "--vhid"),
    ("ucarp-vip", "--addr"),
    ("ucarp-password", "--pass"),
    ("ucarp-advskew", "--advskew"),
    ("ucarp-advbase", "--advbase"),
    ("ucarp-deadratio", "--deadratio"),
    ("ucarp-xparam", "--xparam"),
    ("ucarp-upscript", "--upscript"),
    ("ucarp-downscript", "--downscript"),
    ("ucarp-master", "--preempt"),
    ("ucarp-nomcast", "--nomcast"),
];

/// The commands ifupdown runs around a stanza.
const HOOK_OPTIONS: &[&str] = &["pre-up", "up", "post-up", "down", "pre-down", "post-down"];

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
const MAX_DEPTH: usize = 8;

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

/// Where a stanza is, for messages.
fn stanza_name(s: &Stanza) -> String {
    format!("{}:{}: iface {}", s.path.display(), s.line, s.iface)
}

/// The options of a stanza with those of the templates it inherits from
/// (its own first, so they win).
fn effective<'a>(stanza: &'a Stanza, all: &'a [Stanza]) -> Vec<(&'a Stanza, &'a IfOption)> {
    let mut out: Vec<(&Stanza, &IfOption)> = stanza.options.iter().map(|o| (stanza, o)).collect();
    let mut next = stanza.inherits.as_deref();
    for _ in 0..MAX_DEPTH {
        let Some(name) = next else { break };
        let Some(template) = all.iter().find(|s| s.iface == name) else {
            break;
        };
        out.extend(template.options.iter().map(|o| (template, o)));
        next = template.inherits.as_deref();
    }
    out
}

/// The first value of an option among `opts`, refusing a second one in the
/// same stanza (which of the two ifup would pass is not obvious).
fn one<'a>(
    opts: &[(&'a Stanza, &'a IfOption)],
    name: &str,
) -> Result<Option<(&'a Stanza, &'a IfOption)>, ImportError> {
    let mut found: Option<(&Stanza, &IfOption)> = None;
    for (s, o) in opts.iter().filter(|(_, o)| o.name == name) {
        match found {
            Some((fs, fo)) if std::ptr::eq(fs, *s) => {
                return Err(ImportError::Twice {
                    at: origin(s, o).to_string(),
                    name: name.to_owned(),
                    first: fo.line,
                })
            }
            Some(_) => {}
            None => found = Some((s, o)),
        }
    }
    Ok(found)
}

fn origin(s: &Stanza, o: &IfOption) -> Origin {
    Origin::File {
        path: s.path.clone(),
        line: o.line,
        setting: o.name.clone(),
    }
}

/// The instances of the stanzas: one per stanza that configures UCARP
/// (templates only inherited from are not brought up themselves).
pub(super) fn instances(stanzas: &[Stanza]) -> Result<Vec<(Settings, String)>, ImportError> {
    let templates: Vec<&str> = stanzas
        .iter()
        .filter_map(|s| s.inherits.as_deref())
        .collect();
    let mut out = Vec::new();
    for stanza in stanzas {
        if templates.contains(&stanza.iface.as_str()) {
            continue;
        }
        let opts = effective(stanza, stanzas);
        if !opts.iter().any(|(_, o)| o.name.starts_with("ucarp-")) {
            continue;
        }
        out.push((instance(stanza, &opts, stanzas)?, stanza_name(stanza)));
    }
    Ok(out)
}

/// The first word of an option's value, as `$IF_...` unquoted on the hook's
/// command line gives it; the other words are UCARP operands it ignores.
fn first_word(s: &Stanza, o: &IfOption, notes: &mut Vec<Note>) -> String {
    let mut words = o.value.split_whitespace();
    let first = words.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = words.collect();
    if !rest.is_empty() {
        notes.push(Note {
            subject: o.name.clone(),
            at: origin(s, o).to_string(),
            text: format!(
                "only {first:?} is passed as {}: {HOOK} does not quote it, and UCARP ignores {:?}",
                o.name,
                rest.join(" ")
            ),
        });
    }
    first
}

/// `ucarp-master` and `ucarp-nomcast`: on unless the value starts with
/// `no`, `off`, `false` or `0` (the hook's `expr VALUE : "no\|off\|false\|0"`).
fn is_on(value: &str) -> bool {
    !["no", "off", "false", "0"]
        .iter()
        .any(|p| value.starts_with(p))
}

fn instance(
    stanza: &Stanza,
    opts: &[(&Stanza, &IfOption)],
    all: &[Stanza],
) -> Result<Settings, ImportError> {
    let mut s = Settings::default();
    let mut notes = Vec::new();
    for required in ["ucarp-vid", "ucarp-vip", "ucarp-password"] {
        if one(opts, required)?.is_none() {
            return Err(ImportError::Missing {
                source_name: stanza_name(stanza),
                what: match required {
                    "ucarp-vid" => "ucarp-vid",
                    "ucarp-vip" => "ucarp-vip",
                    _ => "ucarp-password",
                },
                hint: "/etc/network/if-up.d/ucarp starts UCARP only when ucarp-vid, ucarp-vip \
                       and ucarp-password are all set",
            });
        }
    }
    let iface_at = Origin::File {
        path: stanza.path.clone(),
        line: stanza.line,
        setting: format!("iface {}", stanza.iface),
    };
    fn at(o: &Origin) -> impl Fn() -> String + '_ {
        move || o.to_string()
    }
    let run = parse_options(&[format!("--interface={}", stanza.iface)], &at(&iface_at))?;
    s.merge(Settings::from_run(run, &|_| iface_at.clone())?);
    match one(opts, "address")? {
        Some((st, o)) => {
            let addr = o.value.split('/').next().unwrap_or_default();
            let from = origin(st, o);
            let run = parse_options(&[format!("--srcip={addr}")], &at(&from))?;
            s.merge(Settings::from_run(run, &|_| from.clone())?);
        }
        None => notes.push(Note {
            subject: "address".into(),
            at: stanza_name(stanza),
            text: "no address option: carpd-xdp takes the interface's own address as srcip".into(),
        }),
    }
    let mut scripts = [None, None];
    for (st, o) in opts.iter().copied() {
        let Some(name) = o.name.strip_prefix("ucarp-") else {
            continue;
        };
        let Some((_, flag)) = OPTIONS.iter().find(|(n, _)| *n == o.name) else {
            notes.push(unknown_option(st, o));
            continue;
        };
        // Duplicates are refused by `one`.
        one(opts, &o.name)?;
        let from = origin(st, o);
        let word = match name {
            "master" | "nomcast" => {
                if !is_on(&o.value) {
                    continue;
                }
                (*flag).to_owned()
            }
            _ => {
                let value = first_word(st, o, &mut notes);
                if name == "upscript" || name == "downscript" {
                    let index = usize::from(name == "downscript");
                    scripts[index] = Some((value.clone(), from.clone()));
                }
                format!("{flag}={value}")
            }
        };
        let run = parse_options(&[word], &at(&from))?;
        s.merge(Settings::from_run(run, &|_| from.clone())?);
    }
    // What the hook always passes.
    s.shutdown = Some(Val {
        value: true,
        from: Origin::Script("/etc/network/if-up.d/ucarp: -z"),
    });
    s.daemonize = Some(Val {
        value: true,
        from: Origin::Script("/etc/network/if-up.d/ucarp: -B"),
    });
    vip_stanza(stanza, all, &mut s, &scripts, &mut notes)?;
    s.notes.extend(notes);
    Ok(s)
}

/// The note for an option the hook does not read.
fn unknown_option(s: &Stanza, o: &IfOption) -> Note {
    let near = OPTIONS
        .iter()
        .find(|(known, _)| {
            known.len().abs_diff(o.name.len()) <= 2
                && known
                    .bytes()
                    .zip(o.name.bytes())
                    .filter(|(a, b)| a != b)
                    .count()
                    <= 2
        })
        .map_or_else(String::new, |(k, _)| format!(" (did you mean {k}?)"));
    Note {
        subject: o.name.clone(),
        at: origin(s, o).to_string(),
        text: format!("{} is not read by {HOOK}; not imported{near}", o.name),
    }
}

/// The VIP's prefix and label from the `iface <IFACE>:ucarp` stanza that
/// the package's default scripts bring up, and what the import does
/// instead of those scripts.
fn vip_stanza(
    stanza: &Stanza,
    all: &[Stanza],
    s: &mut Settings,
    scripts: &[Option<(String, Origin)>; 2],
    notes: &mut Vec<Note>,
) -> Result<(), ImportError> {
    let label = format!("{}:ucarp", stanza.iface);
    let vip = all.iter().find(|v| v.iface == label);
    let is_default = |i: usize, default: &str| {
        scripts[i]
            .as_ref()
            .is_none_or(|(path, _)| path.as_str() == default)
    };
    let defaults = is_default(0, DEFAULT_UPSCRIPT) && is_default(1, DEFAULT_DOWNSCRIPT);
    if let Some(v) = vip {
        let opts: Vec<(&Stanza, &IfOption)> = v.options.iter().map(|o| (v, o)).collect();
        let address = one(&opts, "address")?;
        if let (Some((vs, o)), Some(addr)) = (address, &s.addr) {
            let (ip, len) = match o.value.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (o.value.as_str(), None),
            };
            if !addr.value.iter().any(|a| a == ip) {
                return Err(ImportError::Unsupported {
                    at: origin(vs, o).to_string(),
                    setting: o.value.clone(),
                    why: "not the address of ucarp-vip (the hook announces ucarp-vip, \
                          ifup adds this one: make them the same)",
                });
            }
            if let Some(len) = len {
                s.netmask = Some(Val {
                    value: len.to_owned(),
                    from: origin(vs, o),
                });
            }
        }
        if let Some((vs, o)) = one(&opts, "netmask")? {
            s.netmask = Some(Val {
                value: o.value.clone(),
                from: origin(vs, o),
            });
        }
        if defaults {
            for o in v
                .options
                .iter()
                .filter(|o| HOOK_OPTIONS.contains(&o.name.as_str()))
            {
                notes.push(Note {
                    subject: format!("{label} {}", o.name),
                    at: origin(v, o).to_string(),
                    text: format!(
                        "`{} {}` ran when ifup brought {label} up or down; carpd-xdp does not \
                         run it: put it into an upscript or downscript",
                        o.name, o.value
                    ),
                });
            }
        }
    }
    if defaults {
        s.upscript = None;
        s.downscript = None;
        // What `ifup eth0:ucarp` did: the VIP under the label, with the
        // stanza's netmask. carpd-xdp does that itself.
        if s.addr
            .as_ref()
            .is_some_and(|a| !a.value.iter().any(|x| x.contains(':')))
        {
            s.interface = Some(Val {
                value: label.clone(),
                from: s
                    .interface
                    .as_ref()
                    .map_or(Origin::Script(HOOK), |i| i.from.clone()),
            });
        }
        notes.push(Note {
            subject: "vip-up".into(),
            at: stanza_name(stanza),
            text: match vip {
                Some(_) => format!(
                    "the package's {DEFAULT_UPSCRIPT} and {DEFAULT_DOWNSCRIPT} ran `ifup {label}` \
                     and `ifdown {label}`: carpd-xdp adds and removes the VIP itself, with that \
                     stanza's netmask and label"
                ),
                None => format!(
                    "no `iface {label}` stanza, which the package's {DEFAULT_UPSCRIPT} brings up: \
                     carpd-xdp adds the VIP itself as a host address"
                ),
            },
        });
    } else {
        for (i, default) in [DEFAULT_UPSCRIPT, DEFAULT_DOWNSCRIPT].iter().enumerate() {
            if scripts[i].is_none() {
                let from = Origin::Script(HOOK);
                let path = PathBuf::from(default);
                let value = Some(Val { value: path, from });
                if i == 0 {
                    s.upscript = value;
                } else {
                    s.downscript = value;
                }
            }
        }
    }
    Ok(())
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
