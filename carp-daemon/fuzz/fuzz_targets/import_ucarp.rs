//! `carpd-xdp import-ucarp` on any input, in every layout: a defaults file
//! and per-VIP files of the init-script layout or of Red Hat's
//! (`vip-common.conf`, `vip-<id>.conf`), Debian's `/etc/network/interfaces`
//! (parsed without following `source`), and a command line cut out of the
//! bytes or pasted as one line. Every input gives a configuration or a
//! one-line error, never a panic; a configuration given is valid TOML with
//! at least one `[[instance]]`, a password file for each inline password,
//! no `password` key (passwords stay out of the text), and its check text
//! (passwords inline) valid TOML too.
#![no_main]

use std::path::{Path, PathBuf};

use carp_daemon::config::import::{convert, interfaces, Body, Input};
use libfuzzer_sys::fuzz_target;

/// The first byte chooses the layout: bit 0 a defaults file first, bits 1-2
/// the kind of the other parts (0: init-script files, 1: a command line
/// split at white space, 2: Red Hat files, 3: an interfaces file); bit 3
/// passes a command line as one pasted argument.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Parts separated by NUL: the defaults file first, then per-VIP files.
    let mut parts: Vec<&str> = text.split('\0').collect();
    let redhat = (mode >> 1) & 3 == 2;
    let default = (mode & 1 == 1).then(|| {
        let body = parts.remove(0).to_owned();
        if redhat {
            Input {
                name: PathBuf::from("/etc/ucarp/vip-common.conf"),
                body: Body::RedHat(body),
            }
        } else {
            Input {
                name: PathBuf::from("/etc/default/ucarp"),
                body: Body::Shell(body),
            }
        }
    });
    let inputs: Vec<Input> = match (mode >> 1) & 3 {
        1 => {
            let line = parts.join(" ");
            let words = if mode & 8 == 8 {
                vec![line]
            } else {
                line.split_whitespace().map(str::to_owned).collect()
            };
            vec![Input {
                name: PathBuf::from("command line"),
                body: Body::Args(words),
            }]
        }
        3 => {
            let path = Path::new("/etc/network/interfaces");
            let Ok(items) = interfaces::parse(path, &parts.join("\n")) else {
                return;
            };
            let stanzas = items
                .into_iter()
                .filter_map(|item| match item {
                    interfaces::Item::Stanza(s) => Some(s),
                    interfaces::Item::Include(_) => None,
                })
                .collect();
            vec![Input {
                name: path.to_owned(),
                body: Body::Interfaces(stanzas),
            }]
        }
        kind => parts
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, part)| {
                if kind == 2 {
                    Input {
                        name: PathBuf::from(format!("/etc/ucarp/vip-00{}.conf", i + 1)),
                        body: Body::RedHat((*part).to_owned()),
                    }
                } else {
                    Input {
                        name: PathBuf::from(format!("/etc/ucarp/interface/ucarp{i}")),
                        body: Body::Shell((*part).to_owned()),
                    }
                }
            })
            .collect(),
    };
    match convert(default.as_ref(), &inputs, Path::new("/etc/carpd-xdp")) {
        Ok(conversion) => {
            let table: toml::Table = toml::from_str(&conversion.toml)
                .unwrap_or_else(|e| panic!("not TOML ({e}):\n{}", conversion.toml));
            let instances = table["instance"].as_array().expect("instances");
            assert!(!instances.is_empty());
            assert!(instances.iter().all(|i| i.get("password").is_none()));
            toml::from_str::<toml::Table>(&conversion.check_toml)
                .unwrap_or_else(|e| panic!("check text not TOML ({e}):\n{}", conversion.check_toml));
            for (path, secret) in &conversion.password_files {
                assert!(path.starts_with("/etc/carpd-xdp"));
                assert!(!secret.is_empty() && secret.len() <= 19);
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
        }
    }
});
