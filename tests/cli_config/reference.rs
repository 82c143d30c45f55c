//! The table of keys (`config::keys`) is what the parser checks files
//! against and what `carpd-xdp.toml(5)` is rendered from: every key of the
//! table parses and takes effect, every default it documents is the
//! parser's, the page lists exactly its keys, and the shipped file sets every
//! key to its real default and starts after its one documented edit.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use carp_daemon::config::keys::{self, Kind, Presence, Section};
use carp_daemon::config::{self, reference, Config};

use super::Scratch;

const BASE: &str = "[[instance]]\ninterface = \"eth0\"\nvhid = 10\nvips = [\"192.0.2.10/24\"]\npassword_env = \"CARPD_T\"\n";
const CHECK: &str = "\n[[instance.health_check]]\ncommand = [\"/bin/true\"]\ninterval_secs = 5\ntimeout_secs = 2\nweight = 100\n";

fn env(var: &str) -> Option<OsString> {
    (var == "CARPD_T" || var == "CARPD_VHID10_PASS").then(|| "pw".into())
}

/// A file with `key = value` in its place, everything else minimal.
fn with_key(key: &keys::Key, value: &str) -> String {
    let line = format!("{} = {value}\n", key.name);
    match key.section {
        Section::Root => unreachable!(),
        Section::Global => format!("[global]\n{line}{BASE}"),
        Section::RateLimit => format!("[global.rate_limit]\n{line}{BASE}"),
        Section::Instance => {
            let mut lines: Vec<String> = BASE.lines().map(str::to_owned).collect();
            let password = key.name.starts_with("password");
            let replaced = |l: &str| {
                l.starts_with(&format!("{} = ", key.name)) || password && l.starts_with("password")
            };
            lines.retain(|l| !replaced(l));
            lines.push(line.trim_end().to_owned());
            lines.join("\n") + "\n"
        }
        Section::Announce => format!("{BASE}announce = {{ {} = {value} }}\n", key.name),
        Section::HealthCheck => {
            let check: String = CHECK
                .lines()
                .filter(|l| !l.starts_with(&format!("{} = ", key.name)))
                .map(|l| format!("{l}\n"))
                .collect();
            format!("{BASE}{check}{line}")
        }
    }
}

fn parse(text: &str, dir: &Path) -> Config {
    config::parse_str(text, &dir.join("t.toml"), &env).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn every_key_of_the_table_parses_and_takes_effect() {
    let scratch = Scratch::new("every-key");
    scratch.file("vhid10.pass", "pw\n");
    let base = parse(BASE, &scratch.0);
    for key in keys::KEYS.iter().filter(|k| k.section != Section::Root) {
        let text = with_key(key, key.example);
        let config = parse(&text, &scratch.0);
        let structural = matches!(key.kind, Kind::Table(_) | Kind::Tables(_));
        let differs = match key.presence {
            Presence::Default(default) => default != key.example,
            Presence::Optional(_) => !structural,
            Presence::Required => false,
        };
        if differs {
            assert_ne!(config, base, "{} = {} has no effect", key.name, key.example);
        }
    }
}

#[test]
fn every_documented_default_is_the_parsers() {
    let scratch = Scratch::new("defaults");
    for key in keys::KEYS {
        let Presence::Default(default) = key.presence else {
            continue;
        };
        // The same file without the key and with it set to the default.
        let set = with_key(key, default);
        let unset = with_key(key, key.example).replace(
            &match key.section {
                Section::Announce => format!("announce = {{ {} = {} }}\n", key.name, key.example),
                _ => format!("{} = {}\n", key.name, key.example),
            },
            "",
        );
        assert_eq!(
            parse(&set, &scratch.0),
            parse(&unset, &scratch.0),
            "{}: documented default {default}",
            key.name
        );
    }
}

/// (table header, key) of every `.TP .B key` entry of the page.
fn page_keys(page: &str) -> BTreeSet<(String, String)> {
    let mut header = String::new();
    let mut keys = BTreeSet::new();
    let lines: Vec<&str> = page.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = line.strip_prefix(".SS ") {
            header = h.trim_matches('"').replace("\\-", "-");
        }
        if *line == ".TP" && lines[i + 1].starts_with(".B ") && !header.is_empty() {
            keys.insert((header.clone(), lines[i + 1][3..].replace("\\-", "-")));
        }
    }
    keys
}

#[test]
fn the_manual_lists_exactly_the_keys_the_parser_accepts() {
    let page = reference::render("0.0.0");
    let table: BTreeSet<(String, String)> = keys::KEYS
        .iter()
        .filter(|k| k.section != Section::Root)
        .map(|k| (k.section.header().to_owned(), k.name.to_owned()))
        .collect();
    assert_eq!(page_keys(&page), table);
    for key in keys::KEYS.iter().filter(|k| k.section != Section::Root) {
        let entry = page
            .split(&format!(".TP\n.B {}\n", key.name.replace('-', "\\-")))
            .nth(1)
            .unwrap();
        let entry = entry.split(".TP").next().unwrap().replace("\\-", "-");
        let words = key.kind.words();
        assert!(
            entry.contains(&format!("Type: {words}.")),
            "{}: {entry}",
            key.name
        );
        if let Some(range) = key.kind.range() {
            assert!(entry.contains(&format!("Range: {range}.")), "{entry}");
        }
        if let Presence::Default(default) = key.presence {
            assert!(entry.contains(&format!("Default: {default}.")), "{entry}");
        }
    }
    // A key not in the table is refused, with the table's suggestion.
    let err = config::parse_str(&format!("{BASE}advskw = 1\n"), Path::new("t.toml"), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown key advskw (did you mean advskew?)"),
        "{err}"
    );
    // The same page is what generate-assets writes.
    let scratch = Scratch::new("assets");
    let written = carp_daemon::assets::generate(
        <carp_daemon::cli::Cli as clap::CommandFactory>::command(),
        &scratch.0,
    )
    .unwrap();
    let path = scratch.0.join("man").join(reference::FILE_NAME);
    assert!(written.contains(&path));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        reference::render(env!("CARGO_PKG_VERSION"))
    );
}

fn dist() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/carpd-xdp.toml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_shipped_file_is_refused_until_its_one_edit_then_starts() {
    let scratch = Scratch::new("dist");
    let shipped = dist();
    let file = scratch.file("carpd-xdp.toml", &shipped);
    // The edit is the one the file's head describes.
    let head: String = shipped.lines().take(12).collect::<Vec<_>>().join("\n");
    assert!(head.contains("make the one edit it needs"), "{head}");
    assert!(head.contains("/etc/carpd-xdp/vhid10.pass"), "{head}");
    let err = config::check_file(&file).unwrap_err().to_string();
    assert!(
        err.contains("instance[0].vips[0]: \"ADDRESS/PREFIX\" is a placeholder: edit it"),
        "{err}"
    );
    // The edit: the address in vips, the password in vhid10.pass (next to
    // the file, as /etc/carpd-xdp/vhid10.pass is next to the installed one).
    let edited = shipped.replace("vips = [\"ADDRESS/PREFIX\"]", "vips = [\"192.0.2.10/24\"]");
    assert_ne!(edited, shipped);
    let file = scratch.file("carpd-xdp.toml", &edited);
    let pass = scratch.file("vhid10.pass", "s3cret\n");
    let config = config::check_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.instances.len(), 1);
    assert_eq!(
        config.instances[0].password.source(),
        &config::PasswordSource::File(pass)
    );
    // What check-config warns about is only the host (eth0 may be absent
    // here), never the file itself.
    for w in &config.warnings {
        assert!(w.message.starts_with("no interface named eth0"), "{w}");
    }
}

#[test]
fn the_shipped_file_sets_every_key_to_its_real_default() {
    let text = dist();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let table_of = |section: Section| -> Option<&toml::Table> {
        match section {
            Section::Root => Some(&doc),
            Section::Global => doc.get("global")?.as_table(),
            Section::RateLimit => doc.get("global")?.get("rate_limit")?.as_table(),
            Section::Instance => doc.get("instance")?.get(0)?.as_table(),
            Section::Announce => doc.get("instance")?.get(0)?.get("announce")?.as_table(),
            Section::HealthCheck => None,
        }
    };
    for key in keys::KEYS {
        // Every key is in the file: set, or commented out with an example.
        let mentioned = text.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{} =", key.name))
                || l.starts_with(&format!("{}  ", key.name))
                || l.contains(&format!("{{ {} =", key.name))
                || l.contains(&format!(", {} =", key.name))
                || l.starts_with(&format!("[[{}]]", key.name))
                || l.starts_with(&format!("[{}]", key.name))
                || (l.starts_with('[') && l.contains(&format!(".{}]", key.name)))
        });
        assert!(mentioned, "{} is not in dist/carpd-xdp.toml", key.name);
        // Every key with a default is set, to that default.
        if let Presence::Default(default) = key.presence {
            let value = table_of(key.section)
                .and_then(|t| t.get(key.name))
                .unwrap_or_else(|| panic!("{} is not set", key.name));
            let expected: toml::Table = toml::from_str(&format!("v = {default}")).unwrap();
            assert_eq!(Some(value), expected.get("v"), "{}", key.name);
        }
    }
}

#[test]
fn the_manuals_example_parses_and_misspelled_tables_get_a_suggestion() {
    let scratch = Scratch::new("man-example");
    scratch.file("vhid10.pass", "pw\n");
    let config = parse(reference::example(), &scratch.0);
    assert_eq!(config.instances[0].health_checks.len(), 1);
    for (text, expected) in [
        (
            "[[instanse]]\n",
            "instanse: unknown key instanse (did you mean instance?)",
        ),
        (
            "[globl]\n",
            "globl: unknown key globl (did you mean global?)",
        ),
        (
            "[[instance.health_checks]]\n",
            "instance[0].health_checks: unknown key health_checks (did you mean health_check?)",
        ),
    ] {
        let err = config::parse_str(&format!("{BASE}{text}"), Path::new("t.toml"), &env)
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("t.toml:6: {expected}"));
    }
}
