//! `carpd-xdp.toml(5)`: the reference of the configuration file, rendered
//! as roff from [`keys::KEYS`], the table the parser checks every file
//! against, so that the page lists exactly the keys the parser accepts,
//! with the types, defaults and ranges it applies.

use std::fmt::Write as _;

use super::keys::{self, Kind, Presence, Section};
use super::paths::{DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR};

/// Section of the manual: file formats.
pub const MAN_SECTION: &str = "5";

/// File name of the page.
pub const FILE_NAME: &str = "carpd-xdp.toml.5";

/// Escapes text for roff: backslashes, dashes, and a leading `.` or `'`.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The page, for carpd-xdp `version`.
pub fn render(version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH CARPD\\-XDP.TOML {MAN_SECTION} \"\" \"carpd\\-xdp {}\" \"File Formats Manual\"",
        roff(version)
    );
    out.push_str(
        ".SH NAME\ncarpd\\-xdp.toml \\- configuration file of the carpd\\-xdp CARP daemon\n",
    );
    let _ = writeln!(out, ".SH SYNOPSIS\n{}", roff(DEFAULT_CONFIG_PATH));
    out.push_str(&format!(
        ".SH DESCRIPTION\n{}\n.PP\n{}\n.PP\n{}\n",
        roff(
            "carpd-xdp reads a TOML file: an optional [global] table and one [[instance]] table \
             per virtual host (interface and vhid). carpd-xdp check-config FILE checks a file \
             and prints the configuration in effect, every default filled in; it also warns \
             about interfaces, scripts and health-check programs the host lacks."
        ),
        roff(
            "Loading is all or nothing: an unknown key, a value of the wrong type or out of \
             range is an error naming the file, line and key (with the closest known key when \
             the name looks like a typo), and nothing of a file with an error is applied; on \
             SIGHUP the configuration running stays. The value of a secret key is never \
             printed, not even in an error."
        ),
        roff(
            "Relative paths (password_file, upscript, downscript, status_socket, state_dir, a \
             health-check program given with a /) are relative to the directory of the \
             configuration file, whatever the working directory of the daemon."
        ),
    ));
    out.push_str(".SH KEYS\n");
    for section in Section::ALL.into_iter().filter(|s| *s != Section::Root) {
        let _ = writeln!(out, ".SS \"{}\"", roff(section.header()));
        let _ = writeln!(out, "{}", roff(section.doc()));
        for key in keys::of(section) {
            render_key(&mut out, key);
        }
    }
    out.push_str(".SH EXAMPLE\n.EX\n");
    for line in example().lines() {
        let _ = writeln!(out, "{}", roff(line));
    }
    out.push_str(".EE\n");
    let _ = writeln!(
        out,
        ".SH FILES\n.TP\n.I {}\nThe configuration file read by default.\n.TP\n.I {}\nThe \
         advert counter reservations (state_dir).\n.TP\n.I /usr/share/doc/carpd\\-xdp/carpd\\-xdp.toml\n\
         The shipped file, every key with its default.",
        roff(DEFAULT_CONFIG_PATH),
        roff(DEFAULT_STATE_DIR)
    );
    out.push_str(".SH SEE ALSO\n.BR carpd\\-xdp (8),\n.BR ucarp (8),\n.BR carp (4)\n");
    out
}

fn render_key(out: &mut String, key: &keys::Key) {
    let _ = writeln!(out, ".TP\n.B {}", roff(key.name));
    let mut facts = vec![format!("Type: {}.", key.kind.words())];
    if let Some(range) = key.kind.range() {
        facts.push(format!("Range: {range}."));
    }
    facts.push(match key.presence {
        Presence::Required => "Required.".to_owned(),
        Presence::Default(default) => format!("Default: {default}."),
        Presence::Optional(absent) => format!("Absent: {absent}."),
    });
    if key.secret {
        facts.push("A secret: never printed.".to_owned());
    }
    if !matches!(key.kind, Kind::Table(_) | Kind::Tables(_)) {
        facts.push(format!("Example: {} = {}.", key.name, key.example));
    }
    let _ = writeln!(out, "{}", roff(&facts.join(" ")));
    let _ = writeln!(out, ".br\n{}", roff(key.doc));
}

/// A small complete file, as the EXAMPLE section shows it.
pub fn example() -> &'static str {
    "[global]\nxdp_mode = \"auto\"\n\n[[instance]]\ninterface = \"eth0\"\nvhid = 10\n\
     vips = [\"192.0.2.10/24\"]\nadvskew = 0\npreempt = true\npassword_file = \"vhid10.pass\"\n\
     upscript = \"/etc/carpd-xdp/vip-up.sh\"\ndownscript = \"/etc/carpd-xdp/vip-down.sh\"\n\n\
     [[instance.health_check]]\ncommand = [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/\"]\n\
     interval_secs = 5\ntimeout_secs = 2\nweight = 100\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_what_roff_would_read() {
        assert_eq!(roff(".x"), "\\&.x");
        assert_eq!(roff("a-b\\c"), "a\\-b\\ec");
    }

    #[test]
    fn every_key_has_its_entry() {
        let page = render("1.0");
        for key in keys::KEYS.iter().filter(|k| k.section != Section::Root) {
            assert!(
                page.contains(&format!(".TP\n.B {}\n", roff(key.name))),
                "{}",
                key.name
            );
        }
    }
}
