//! Every key of the configuration file, once: its table, type, default,
//! range and meaning.
//!
//! The parser checks each key of a file against [`KEYS`] before converting
//! it (unknown keys with a "did you mean", types named in words, ranges),
//! and `carpd-xdp.toml(5)` is rendered from the same table
//! (`reference.rs`), so the page and the parser cannot drift apart.

/// A table of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// The top level: `[global]` and the `[[instance]]` list.
    Root,
    /// `[global]`: process-wide settings.
    Global,
    /// `[global.rate_limit]`.
    RateLimit,
    /// `[[instance]]`: one per (interface, vhid).
    Instance,
    /// `announce` of an instance (an inline table or `[instance.announce]`).
    Announce,
    /// `[[instance.health_check]]`.
    HealthCheck,
    /// `[[sync_group]]`: instances that change state together.
    SyncGroup,
}

impl Section {
    /// Every table, in the order of the manual.
    pub const ALL: [Section; 7] = [
        Section::Root,
        Section::Global,
        Section::RateLimit,
        Section::Instance,
        Section::Announce,
        Section::HealthCheck,
        Section::SyncGroup,
    ];

    /// Dotted name of the table (empty at the top level).
    pub fn path(self) -> &'static str {
        match self {
            Section::Root => "",
            Section::Global => "global",
            Section::RateLimit => "global.rate_limit",
            Section::Instance => "instance",
            Section::Announce => "instance.announce",
            Section::HealthCheck => "instance.health_check",
            Section::SyncGroup => "sync_group",
        }
    }

    /// How the table is written in a file.
    pub fn header(self) -> &'static str {
        match self {
            Section::Root => "(top level)",
            Section::Global => "[global]",
            Section::RateLimit => "[global.rate_limit]",
            Section::Instance => "[[instance]]",
            Section::Announce => "announce = { ... } or [instance.announce]",
            Section::HealthCheck => "[[instance.health_check]]",
            Section::SyncGroup => "[[sync_group]]",
        }
    }

    /// What the table is for.
    pub fn doc(self) -> &'static str {
        match self {
            Section::Root => {
                "The file holds an optional [global] table and one or more [[instance]] tables."
            }
            Section::Global => "Process-wide settings; every key is optional.",
            Section::RateLimit => {
                "Adverts accepted per source and vhid by the receive path. Each (source, vhid) has \
                 its own bucket. The daemon raises both values to what the fastest configured vhid \
                 needs (256/s with advbase_secs 0, 1/s otherwise, plus headroom; a burst of at \
                 least 8), so that genuine adverts are never dropped."
            }
            Section::Instance => {
                "One virtual host: an (interface, vhid) pair and its virtual addresses. Several \
                 per interface, several interfaces, several VIPs per instance. Exactly one of \
                 password_file, password_env and password is required."
            }
            Section::Announce => {
                "Gratuitous ARPs (IPv4) and unsolicited neighbour advertisements (IPv6) sent for \
                 each VIP on takeover."
            }
            Section::HealthCheck => {
                "A command run periodically; while it fails (non-zero exit or timeout) its weight \
                 is added to the instance's demote value, so that another host takes the VIPs \
                 although this one is up. No shell: the command is a list. A run that cannot be \
                 started for want of resources (EMFILE, ENOMEM, ...) is unknown: the last result \
                 stands."
            }
            Section::SyncGroup => {
                "Instances (vhids, on one interface or several) that change state together, as a \
                 gateway's LAN and WAN addresses must: each member names the group with \
                 sync_group. A member whose link goes down puts the group in FAULT: every member \
                 bows out with a leave advert and stays backup until all are up again; a member \
                 that becomes master (or steps down) takes the others with it; the group's \
                 demote is the highest of its members'. The members must share advbase_secs, \
                 advskew and preempt, and every host should give the group the same vhids; do \
                 not let two hosts tie (give each its own advskew)."
            }
        }
    }

    /// The hint of the error for a missing required key of this table.
    pub fn required_hint(self) -> &'static str {
        match self {
            Section::HealthCheck => "required in every [[instance.health_check]]",
            Section::SyncGroup => "required in every [[sync_group]]",
            _ => "required in every [[instance]]",
        }
    }
}

/// What a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max`; `note` explains special values.
    Integer {
        /// Smallest value allowed.
        min: i64,
        /// Largest value allowed.
        max: i64,
        /// Appended to the range, e.g. `(0: off)`; may be empty.
        note: &'static str,
    },
    /// `true` or `false`.
    Bool,
    /// Free text.
    String,
    /// A file or directory; relative paths are relative to the directory
    /// of the configuration file.
    Path,
    /// Text of a given form (an address, ...), described by the key's doc.
    Text(&'static str),
    /// One of these names.
    OneOf(&'static [&'static str]),
    /// A list of strings.
    Strings(&'static str),
    /// A sub-table.
    Table(Section),
    /// A list of tables (`[[...]]`).
    Tables(Section),
}

/// The names `global.xdp_mode` accepts.
pub const XDP_MODES: &[&str] = &["auto", "native", "skb", "tc", "off"];
/// The names `global.log_format` accepts.
pub const LOG_FORMATS: &[&str] = &["text", "json"];
/// The names `replay` accepts.
pub const REPLAY_MODES: &[&str] = &["strict", "compat", "auto"];
/// The names `master_down` accepts.
pub const MASTER_DOWN_RULES: &[&str] = &["ucarp", "openbsd"];
/// The names `hmac_link_local` accepts.
pub const LINK_LOCAL_FORMS: &[&str] = &["include", "exclude"];

impl Kind {
    /// The type as a person names it: `an integer`, `true or false`.
    pub fn words(self) -> String {
        match self {
            Kind::Integer { .. } => "an integer".into(),
            Kind::Bool => "true or false".into(),
            Kind::String => "a string".into(),
            Kind::Path => "a path (a string)".into(),
            Kind::Text(form) => format!("a string: {form}"),
            Kind::OneOf(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("one of {}", names.join(", "))
            }
            Kind::Strings(form) => format!("a list of strings: {form}"),
            Kind::Table(section) => format!("a table ({})", section.header()),
            Kind::Tables(section) => format!("a list of tables ({})", section.header()),
        }
    }

    /// The allowed range of an integer, e.g. `1..=255`, `0..=99 (0: off)`.
    pub fn range(self) -> Option<String> {
        match self {
            Kind::Integer { min, max, note: "" } => Some(format!("{min}..={max}")),
            Kind::Integer { min, max, note } => Some(format!("{min}..={max} {note}")),
            _ => None,
        }
    }
}

/// Whether a key must be given, and what its absence means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// The key must be given.
    Required,
    /// Absent means this value (as TOML).
    Default(&'static str),
    /// Absent means what this says.
    Optional(&'static str),
}

/// One key of the file.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The table it belongs to.
    pub section: Section,
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether it must be given, and its default.
    pub presence: Presence,
    /// A valid value, as TOML (the manual's example; the test that every
    /// documented key parses writes it).
    pub example: &'static str,
    /// Its value is a secret: never printed, not even in a type error.
    pub secret: bool,
    /// What it means.
    pub doc: &'static str,
}

const fn key(
    section: Section,
    name: &'static str,
    kind: Kind,
    presence: Presence,
    example: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        section,
        name,
        kind,
        presence,
        example,
        secret: false,
        doc,
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Integer { min, max, note: "" }
}

/// Every key the parser accepts, in the order of the manual.
pub static KEYS: &[Key] = {
    use Kind::{Bool, OneOf, Path, Strings, Table, Tables, Text};
    use Presence::{Default as Def, Optional as Opt, Required as Req};
    use Section::{Announce, Global, HealthCheck, Instance, RateLimit, Root, SyncGroup};
    &[
    key(Root, "global", Table(Global), Opt("every global setting at its default"), "{}", "Process-wide settings."),
    key(Root, "instance", Tables(Instance), Req, "[]", "The virtual hosts, at least one."),
    key(Root, "sync_group", Tables(SyncGroup), Opt("no sync group"), "[]",
        "Groups of instances that change state together."),
    key(Global, "xdp_mode", OneOf(XDP_MODES), Def("\"auto\""), "\"auto\"",
        "Receive path: \"auto\" (native XDP, else generic XDP, else the TC program, else a packet \
         socket), \"native\", \"skb\" (generic XDP), \"tc\" (the same checks in the kernel from \
         the tcx hook, kernel 6.6 or later: what a second process on an interface gets) or \
         \"off\" (packet socket, the same checks in userspace)."),
    key(Global, "status_socket", Path, Def("\"/run/carpd-xdp.sock\""), "\"/run/carpd-xdp.sock\"",
        "Unix socket answering carpd-xdp status."),
    key(Global, "metrics", Text("ADDRESS:PORT"), Opt("no metrics endpoint"), "\"127.0.0.1:9652\"",
        "Address and port of the Prometheus metrics endpoint."),
    key(Global, "log_facility", Text("a syslog facility (daemon, user, local0..local7, ...) or \"none\""),
        Def("\"daemon\""), "\"local3\"",
        "Syslog facility, or \"none\" for stderr only."),
    key(Global, "log_format", OneOf(LOG_FORMATS), Def("\"text\""), "\"json\"", "Format of the lines on stderr."),
    key(Global, "debug", Bool, Def("false"), "true", "Debug logging (UCARP's -D)."),
    key(Global, "daemonize", Bool, Def("false"), "false",
        "Run in the background (UCARP's -B); not needed under systemd."),
    key(Global, "state_dir", Path, Def("\"/var/lib/carpd-xdp\""), "\"/var/lib/carpd-xdp\"",
        "Where each instance keeps its advert counter reservation (one small file, rewritten \
         about once a minute), so that counters never go back across restarts, even after the \
         wall clock was set back."),
    key(Global, "realtime_priority", Kind::Integer { min: 0, max: 99, note: "(0: off)" }, Def("0"), "40",
        "SCHED_FIFO priority of the daemon's thread, for advbase_secs = 0 on a host that may be \
         busy; scripts and health checks always run SCHED_OTHER. Needs root, CAP_SYS_NICE or \
         LimitRTPRIO= in the systemd unit. Read at start-up only."),
    key(Global, "auto_realtime", Bool, Def("true"), "false",
        "Switch the daemon's thread to SCHED_FIFO (priority 10) the first time the timers of an \
         advbase_secs = 0 instance fire later than a quarter of its advert interval (a busy \
         host); logged once. Needs root, CAP_SYS_NICE or LimitRTPRIO=10; without them the \
         daemon warns at start that the fastest timers are not safe on a busy host."),
    key(Global, "lock_memory", Bool, Def("false"), "true",
        "Lock the daemon's memory (mlockall), so that it is never swapped out."),
    key(Global, "rate_limit", Table(RateLimit), Opt("the defaults of its keys"), "{}",
        "The receive path's rate limit."),
    key(RateLimit, "rate", int(0, 1_000_000), Def("50"), "100",
        "Adverts per second accepted from one source for one vhid (0: no limit)."),
    key(RateLimit, "burst", int(0, 1_000_000), Def("20"), "40",
        "Adverts accepted above the rate in a burst."),
    key(Instance, "interface", Text("an interface name, or UCARP's alias form eth0:carp0"), Req, "\"eth0\"",
        "Interface the adverts go out and come in on. With the alias form eth0:carp0 the VIPs \
         are added with that label. The instance follows this name: if the interface is \
         missing, deleted or renamed the instance is INIT, and when an interface of this name \
         appears it resumes on it by itself."),
    key(Instance, "label", Text("<interface>:<name>, at most 15 bytes"), Opt("the interface's name"), "\"eth0:web\"",
        "Label the VIPs are added with."),
    key(Instance, "vhid", int(1, 255), Req, "10",
        "Virtual host id: the same on every host sharing these VIPs."),
    key(Instance, "srcip", Text("an IP address"), Opt("the interface's primary address of the VIPs' family"),
        "\"192.0.2.1\"",
        "Source address of the adverts; of the same family as the VIPs."),
    key(Instance, "vips", Strings("ADDRESS or ADDRESS/PREFIX (default /32, /128)"), Req,
        "[\"192.0.2.10/24\"]", "Virtual addresses, at least one."),
    key(Instance, "advbase_secs", int(0, 255), Def("1"), "1",
        "An advert every advbase_secs + advskew/256 seconds; the lowest interval is master."),
    key(Instance, "advskew", int(0, 254), Def("0"), "100",
        "Skew of the advert interval, 1/256 s: 0 on the preferred host."),
    key(Instance, "deadratio", int(1, 255), Def("3"), "3",
        "Adverts missed before the master is taken as dead."),
    key(Instance, "master_down", OneOf(MASTER_DOWN_RULES), Def("\"ucarp\""), "\"openbsd\"",
        "Master-down time: \"ucarp\" = deadratio x advbase + advskew/256 seconds, \"openbsd\" \
         = deadratio x (advbase + advskew/256) seconds (carp(4)'s 3 x interval with deadratio 3)."),
    key(Instance, "preempt", Bool, Def("false"), "true",
        "Take over from a master advertising a longer interval (UCARP's -P)."),
    key(Instance, "neutral", Bool, Def("false"), "true",
        "Do not run the down script at start-up (UCARP's -n)."),
    key(Instance, "shutdown_on_exit", Bool, Def("false"), "true",
        "Run the down script at exit unless backup (UCARP's -z). At exit every instance first \
         removes its VIPs and sends its leave advert; then the daemon waits for down scripts, \
         at most the longest script_timeout_secs."),
    key(Instance, "ignore_ifstate", Bool, Def("false"), "true",
        "Ignore link state / carrier (UCARP's -S)."),
    key(Instance, "virtual_mac", Bool, Def("false"), "true",
        "While master, the VIPs answer ARP and neighbour solicitations from the virtual-router \
         MAC 00:00:5e:00:01:<vhid> (a macvlan vmac<vhid>.<ifindex> on the interface, up only \
         while master); gratuitous ARPs, unsolicited NAs and adverts to the group are sent \
         from it. Sets \
         arp_ignore = 1 and arp_announce = 2 on the interface while the macvlan exists \
         (restored after)."),
    key(Instance, "password_file", Path, Opt("see password"), "\"vhid10.pass\"",
        "File whose first line is the shared password (1..=19 bytes, the same on every host). \
         A regular file owned by root or the daemon's user, mode 0600 or 0400."),
    key(Instance, "password_env", Text("an environment variable name (not PATH, LANG, LC_*, TZ, HOME)"),
        Opt("see password"), "\"CARPD_VHID10_PASS\"",
        "Environment variable holding the shared password (e.g. from systemd's EnvironmentFile=)."),
    Key {
        secret: true,
        ..key(Instance, "password", Kind::String, Opt("password_file or password_env is required"),
            "\"secret\"",
            "The shared password written in the file, 1..=19 bytes (the limit of UCARP and the BSD \
             kernels); works, with a warning. Exactly one of password_file, password_env and \
             password is required; the first two keep the password out of the file and out of \
             ps (unlike UCARP's -p).")
    },
    key(Instance, "upscript", Path, Opt("no script"), "\"/etc/carpd-xdp/vip-up.sh\"",
        "Run on becoming master, as UCARP runs it: SCRIPT <interface> <vip> [xparam], once per \
         VIP, asynchronously. The daemon adds and removes the VIPs itself."),
    key(Instance, "downscript", Path, Opt("no script"), "\"/etc/carpd-xdp/vip-down.sh\"",
        "Run on becoming backup, as upscript."),
    key(Instance, "xparam", Kind::String, Opt("no extra argument"), "\"web\"",
        "Extra last argument of the scripts (UCARP's -x)."),
    key(Instance, "script_timeout_secs", int(1, 3600), Def("10"), "10",
        "Seconds a script may run before it is killed. Jobs waiting behind a running script \
         are coalesced: only the latest state's runs."),
    key(Instance, "replay", OneOf(REPLAY_MODES), Def("\"auto\""), "\"strict\"",
        "Advert counter replay protection: \"strict\" (carpd-xdp-only clusters), \"compat\" \
         (refuse recent repeats) or \"auto\" (strict with carpd-xdp peers, compat with UCARP and \
         FreeBSD, OpenBSD's constant counter as liveness only)."),
    key(Instance, "replay_window_ms", int(1, 86_400_000), Opt("no window"), "120000",
        "With tagged counters (carpd-xdp peers), refuse those whose time is more than this many \
         milliseconds from our clock (needs NTP)."),
    key(Instance, "hmac_link_local", OneOf(LINK_LOCAL_FORMS), Def("\"include\""), "\"exclude\"",
        "IPv6 link-local VIPs in the HMAC we send: \"include\" (FreeBSD) or \"exclude\" (OpenBSD); \
         both forms are accepted on receipt."),
    key(Instance, "unicast_peers", Strings("IP addresses"), Def("[]"), "[\"192.0.2.2\"]",
        "Send adverts to these peers instead of multicast (same family as the VIPs)."),
    key(Instance, "peers", Strings("ADDRESS or ADDRESS@MAC"), Opt("unicast_peers"), "[\"192.0.2.2@02:00:00:00:00:02\"]",
        "The peer allow-list: only these sources may speak for this vhid (with @MAC, only from \
         that MAC); checked in the receive path before the HMAC. Empty: anyone with the password."),
    key(Instance, "mcast", Text("a multicast group"), Opt("224.0.0.18 / ff02::12"), "\"239.192.0.18\"",
        "Multicast group instead of the CARP group (UCARP's --mcast)."),
    key(Instance, "broadcast_mac", Bool, Def("false"), "true",
        "Ethernet broadcast instead of the multicast MAC (UCARP's -M)."),
    key(Instance, "announce", Table(Announce), Opt("the defaults of its keys"), "{}",
        "Announcements on takeover."),
    key(Instance, "health_check", Tables(HealthCheck), Opt("no health check"), "[]",
        "Health checks of this instance."),
    key(Instance, "sync_group", Text("the name of a [[sync_group]]"), Opt("in no group"), "\"gateway\"",
        "The sync group this instance belongs to: it changes state together with the group's \
         other members (see [[sync_group]])."),
    key(Announce, "count", int(0, 100), Def("3"), "5",
        "Gratuitous ARPs / unsolicited NAs per VIP on takeover."),
    key(Announce, "interval_ms", int(1, 60_000), Def("1000"), "500",
        "Milliseconds between them."),
    key(HealthCheck, "command", Strings("the program and its arguments"), Req,
        "[\"/bin/true\"]",
        "Program and arguments, run without a shell, with the same environment as scripts but no \
         CARP_* variables. A relative program path (one with a /) is relative to the \
         configuration file's directory; a bare name is looked up in PATH."),
    key(HealthCheck, "interval_secs", int(1, 86_400), Req, "5", "Seconds between runs."),
    key(HealthCheck, "timeout_secs", int(1, 86_400), Req, "2",
        "Seconds before a run is killed and counted as failed."),
    key(HealthCheck, "weight", int(1, 255), Req, "100", "Demote value added while failing."),
    key(SyncGroup, "name", Text("a name, as the members' sync_group gives it"), Req, "\"gateway\"",
        "The group's name, unique in the file."),
    key(SyncGroup, "upscript", Path, Opt("no script"), "\"/etc/carpd-xdp/group-up.sh\"",
        "Run once when the whole group has become master: SCRIPT <group> MASTER, asynchronously. \
         The members' own upscripts run as well."),
    key(SyncGroup, "downscript", Path, Opt("no script"), "\"/etc/carpd-xdp/group-down.sh\"",
        "Run once when the group becomes backup (at start too) or enters FAULT: SCRIPT <group> \
         BACKUP or SCRIPT <group> FAULT, asynchronously. The members' own downscripts run as \
         well."),
    key(SyncGroup, "conntrackd_config", Path, Opt("conntrackd is not driven"),
        "\"/etc/conntrackd/conntrackd.conf\"",
        "conntrackd's configuration: carpd-xdp drives conntrackd on the group's transitions \
         (commit, flush, resync and bulk update on becoming master, before the gratuitous ARPs \
         or at most 1 s later; a resync request on becoming backup; shorter kernel timers on \
         FAULT and at exit). Adverts are never delayed."),
    ]
};

/// The key `name` of `section`, if there is one.
pub fn find(section: Section, name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|key| key.section == section && key.name == name)
}

/// The key `name` of `section`; the table must have it (a programming
/// error otherwise, caught by the tests that parse every key).
pub fn get(section: Section, name: &str) -> &'static Key {
    find(section, name).unwrap_or_else(|| panic!("no key {name} in {}", section.path()))
}

/// The keys of one table.
pub fn of(section: Section) -> impl Iterator<Item = &'static Key> {
    KEYS.iter().filter(move |key| key.section == section)
}

/// The known key of `section` closest to the unknown `name`, if one is
/// close enough to be a typo or an abbreviation (`cmd` for `command`).
pub fn did_you_mean(section: Section, name: &str) -> Option<&'static str> {
    of(section)
        .map(|key| (distance(name, key.name), key.name))
        .filter(|(d, known)| {
            let typo = *d <= 2.max(known.len() / 4) && *d < known.len();
            typo || abbreviates(name, known)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// `short` has 3 characters or more, starts as `long` does and its
/// characters appear in `long` in order (`cmd`, `command`).
fn abbreviates(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.len() >= 3
        && short.chars().next() == long.chars().next()
        && short.chars().all(|c| rest.any(|l| l == c))
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_table_and_sub_tables_are_declared() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..]
                    .iter()
                    .all(|b| (a.section, a.name) != (b.section, b.name)),
                "{} twice",
                a.name
            );
        }
        for section in Section::ALL {
            assert!(of(section).next().is_some(), "{section:?} has no key");
        }
    }

    #[test]
    fn typos_find_the_key() {
        assert_eq!(did_you_mean(Section::Instance, "advskw"), Some("advskew"));
        assert_eq!(did_you_mean(Section::Instance, "upsript"), Some("upscript"));
        assert_eq!(
            did_you_mean(Section::Instance, "passwd_file"),
            Some("password_file")
        );
        assert_eq!(did_you_mean(Section::Global, "xdp"), Some("xdp_mode"));
        assert_eq!(did_you_mean(Section::Instance, "colour"), None);
        assert_eq!(did_you_mean(Section::HealthCheck, "cmd"), Some("command"));
        assert_eq!(did_you_mean(Section::Instance, "iface"), Some("interface"));
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn integer_defaults_and_examples_are_within_range() {
        for key in KEYS {
            let Kind::Integer { min, max, .. } = key.kind else {
                continue;
            };
            let mut values = vec![key.example];
            if let Presence::Default(default) = key.presence {
                values.push(default);
            }
            for text in values {
                let v: i64 = text.parse().unwrap();
                assert!((min..=max).contains(&v), "{}: {v}", key.name);
            }
        }
    }
}
