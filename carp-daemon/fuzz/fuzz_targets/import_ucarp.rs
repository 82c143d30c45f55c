//! `carpd-xdp import-ucarp` on any input: a defaults file, per-VIP files and
//! a command line cut out of the bytes. Every input gives a configuration or
//! a one-line error, never a panic; a configuration given is valid TOML with
//! at least one `[[instance]]`, a password file for each inline password, and
//! never the password itself in the text.
#![no_main]

use std::path::{Path, PathBuf};

use carp_daemon::config::import::{convert, Body, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Parts separated by NUL: the defaults file first, then per-VIP files.
    let mut parts: Vec<&str> = text.split('\0').collect();
    let default = (mode & 1 == 1).then(|| Input {
        name: PathBuf::from("/etc/default/ucarp"),
        body: Body::Shell(parts.remove(0).to_owned()),
    });
    let inputs: Vec<Input> = if mode & 2 == 2 {
        // A command line: the rest, split at white space.
        vec![Input {
            name: PathBuf::from("command line"),
            body: Body::Args(parts.join(" ").split_whitespace().map(str::to_owned).collect()),
        }]
    } else {
        parts
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, part)| Input {
                name: PathBuf::from(format!("/etc/ucarp/interface/ucarp{i}")),
                body: Body::Shell((*part).to_owned()),
            })
            .collect()
    };
    match convert(default.as_ref(), &inputs, Path::new("/etc/carpd-xdp")) {
        Ok(conversion) => {
            let table: toml::Table = toml::from_str(&conversion.toml)
                .unwrap_or_else(|e| panic!("not TOML ({e}):\n{}", conversion.toml));
            let instances = table["instance"].as_array().expect("instances");
            assert!(!instances.is_empty());
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
