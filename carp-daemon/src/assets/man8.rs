//! What the section 8 pages say beyond the options clap knows: a
//! description, the exit status, the signals, the files and the pages to
//! read next. clap_mangen renders the rest; [`page()`] puts these sections
//! where man-pages(7) orders them (before VERSION, SEE ALSO last).
//!
//! The paths come from the constants the daemon itself uses, so the page
//! cannot name a file the binary does not read.

use roff::{bold, italic, roman, Inline, Roff};

use crate::config::import::DEFAULT_PASSWORD_DIR;
use crate::config::{DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR, DEFAULT_STATUS_SOCKET};

/// DESCRIPTION of `carpd-xdp(8)`, one paragraph per item.
const DESCRIPTION: &[&str] = &[
    "carpd-xdp moves virtual IP addresses (VIPs) between hosts on one network \
     with the Common Address Redundancy Protocol, version 2, as UCARP and the \
     BSD carp(4) kernels do, and interoperates with both. Among the hosts \
     configured for a virtual host id (vhid), the one that advertises most \
     often is MASTER and holds the VIPs; the others are BACKUP and take over \
     when its adverts stop.",
    "Adverts are validated in the kernel by an XDP program (or a TC program, \
     or a packet socket where XDP cannot attach), so floods of forged or \
     replayed adverts never reach the daemon.",
    "Every UCARP option works unchanged, and a command line with UCARP's \
     instance options runs one instance without any file. Without them, the \
     instances of the configuration file are run (see carpd-xdp.toml(5)); \
     an INTERFACE operand runs only those on that interface.",
];

/// A man page reference, `name(section)`, in bold as man-pages(7) asks.
fn reference(name: &str, section: &str, last: bool) -> [Inline; 2] {
    let tail = if last { ")" } else { "),\n" };
    [bold(name), roman(format!("({section}{tail}"))]
}

/// One `.TP` entry: a tag line, then its text.
fn entry(roff: &mut Roff, tag: impl Into<Vec<Inline>>, text: &str) {
    roff.control("TP", []).text(tag).text([roman(text)]);
}

/// `roff`'s text without the preamble every rendering starts with, for
/// appending to a page that has it already.
fn body(roff: &Roff) -> String {
    let preamble = Roff::new().render();
    let text = roff.render();
    text.strip_prefix(&preamble).unwrap_or(&text).to_owned()
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    entry(
        roff,
        [bold("0")],
        "Success: the daemon stopped on SIGTERM or SIGINT after leaving \
         gracefully, or the subcommand did what it was asked (check-config: \
         the file is valid).",
    );
    entry(
        roff,
        [bold("1")],
        "An error, printed as one line on standard error: a configuration \
         that does not load (nothing is applied from it), an interface, \
         address or privilege the daemon cannot use, no daemon answering \
         status.",
    );
    entry(
        roff,
        [bold("2")],
        "The command line could not be parsed (an unknown option, a value out \
         of range); the usage is printed.",
    );
}

fn signals(roff: &mut Roff) {
    roff.control("SH", ["SIGNALS"]);
    for (signal, text) in [
        (
            "SIGTERM, SIGINT",
            "Leave gracefully: every MASTER removes its VIPs and sends a leave \
             advert, so that a BACKUP takes over at once; the receive path is \
             detached; the down script runs only with --shutdown \
             (shutdown_on_exit). The daemon waits for running scripts, at most \
             the longest script_timeout_secs, then exits.",
        ),
        (
            "SIGHUP",
            "Read the configuration file again. Unchanged instances are left \
             alone (no VIP moves), removed ones leave, new ones start, changed \
             ones are replaced once their replacement is ready. A file that \
             fails to load changes nothing.",
        ),
        (
            "SIGUSR1",
            "Log the state of every instance and the receive-path counters.",
        ),
        (
            "SIGUSR2",
            "As in UCARP: step down (a MASTER sends a leave advert and becomes \
             BACKUP), then take part in elections again.",
        ),
    ] {
        entry(roff, [bold(signal)], text);
    }
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    let ucarp_socket = DEFAULT_STATUS_SOCKET.replace(".sock", "-");
    let entries: [(Vec<Inline>, &str); 6] = [
        (
            vec![italic(DEFAULT_CONFIG_PATH)],
            "The configuration file, read when neither --config nor UCARP \
             instance options are given; see carpd-xdp.toml(5).",
        ),
        (
            vec![italic(format!("{DEFAULT_PASSWORD_DIR}/"))],
            "Password files (password_file, --passfile): the daemon refuses \
             one that group or others can read or write. import-ucarp writes \
             them here unless told otherwise.",
        ),
        (
            vec![italic(DEFAULT_STATUS_SOCKET)],
            "The unix socket of a daemon run from a configuration file \
             (status_socket, --status-socket); carpd-xdp status asks it and \
             every socket below (--run-dir, or --socket for one).",
        ),
        (
            vec![
                italic(ucarp_socket),
                italic("INTERFACE"),
                roman("-"),
                italic("VHID"),
                italic(".sock"),
            ],
            "The socket of an instance started with UCARP options, so that \
             several of them can run side by side; carpd-xdp status shows \
             them all together.",
        ),
        (
            vec![italic(format!("{DEFAULT_STATE_DIR}/"))],
            "Reservations of the advert counter (state_dir, --state-dir), so \
             that counters keep growing across restarts.",
        ),
        (
            vec![italic("/usr/share/doc/carpd-xdp/")],
            "README.md (setup, UCARP migration, signals, status), docs/*.md \
             (interoperability, replay protection, tuning, performance) and \
             example configurations.",
        ),
    ];
    for (tag, text) in entries {
        entry(roff, tag, text);
    }
}

fn see_also(roff: &mut Roff, pages: &[(String, &str)]) {
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, (name, section)) in pages.iter().enumerate() {
        line.extend(reference(name, section, i + 1 == pages.len()));
    }
    roff.text(line);
}

/// Which section 8 page.
pub enum Page<'a> {
    /// `carpd-xdp(8)`, with the names of the visible subcommands.
    TopLevel(&'a [String]),
    /// `carpd-xdp-<subcommand>(8)`.
    Subcommand,
}

/// The pages SEE ALSO names on `page`.
fn references(page: &Page) -> Vec<(String, &'static str)> {
    let mut refs: Vec<(String, &str)> = match page {
        Page::TopLevel(subcommands) => subcommands
            .iter()
            .map(|sub| (format!("carpd-xdp-{sub}"), super::MAN_SECTION))
            .collect(),
        Page::Subcommand => vec![("carpd-xdp".to_owned(), super::MAN_SECTION)],
    };
    refs.extend([
        ("carpd-xdp.toml".to_owned(), "5"),
        ("ucarp".to_owned(), "8"),
        ("keepalived".to_owned(), "8"),
    ]);
    refs
}

/// `man` rendered by clap_mangen, with the sections above added: on the
/// top-level page EXIT STATUS, SIGNALS and FILES before VERSION; on every
/// page SEE ALSO last.
pub fn page(man: &clap_mangen::Man, page: &Page) -> std::io::Result<Vec<u8>> {
    let mut generated = Vec::new();
    man.render(&mut generated)?;
    let generated = String::from_utf8_lossy(&generated)
        // clap_mangen's heading for the text after the options.
        .replace("\n.SH EXTRA\n", "\n.SH NOTES\n");
    let (head, tail) = match generated.find("\n.SH VERSION\n") {
        Some(at) => generated.split_at(at + 1),
        None => (generated.as_str(), ""),
    };

    let mut middle = Roff::new();
    if let Page::TopLevel(_) = page {
        exit_status(&mut middle);
        signals(&mut middle);
        files(&mut middle);
    }
    let mut last = Roff::new();
    see_also(&mut last, &references(page));

    let mut text = String::with_capacity(generated.len() + 4096);
    text.push_str(head);
    text.push_str(&body(&middle));
    text.push_str(tail);
    text.push_str(&body(&last));
    Ok(text.into_bytes())
}

/// `cmd` with the DESCRIPTION of the top-level page (its about stays the
/// one-line NAME).
pub fn describe(cmd: clap::Command) -> clap::Command {
    cmd.long_about(DESCRIPTION.join("\n\n"))
}
