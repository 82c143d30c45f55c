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
//! The file format is read by [`super::interfaces`].

use std::path::PathBuf;

use super::interfaces::{IfOption, Stanza, MAX_DEPTH};
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
        // A password's words stay out of the output, as the password does.
        let text = if o.name == "ucarp-password" {
            format!(
                "only the first word is passed as {}: {HOOK} does not quote it, and UCARP \
                 ignores the others",
                o.name
            )
        } else {
            format!(
                "only {first:?} is passed as {}: {HOOK} does not quote it, and UCARP ignores {:?}",
                o.name,
                rest.join(" ")
            )
        };
        notes.push(Note {
            subject: o.name.clone(),
            at: origin(s, o).to_string(),
            text,
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
