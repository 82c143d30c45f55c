//! Syslog facilities, named as in syslog.h and UCARP's `-f`.

use std::fmt;
use std::str::FromStr;

/// A syslog facility. `-f none` (no syslog) is `None` in
/// [`Logging::facility`](super::model::Logging::facility), not a variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Facility {
    /// Security/authorisation messages.
    Auth,
    /// Private security/authorisation messages.
    Authpriv,
    /// Clock daemon.
    Cron,
    /// System daemons (UCARP's default).
    #[default]
    Daemon,
    /// FTP daemon.
    Ftp,
    /// Kernel messages.
    Kern,
    /// Line printer subsystem.
    Lpr,
    /// Mail subsystem.
    Mail,
    /// Network news subsystem.
    News,
    /// Messages of syslogd itself.
    Syslog,
    /// Generic user-level messages.
    User,
    /// UUCP subsystem.
    Uucp,
    /// Local use 0 to 7.
    Local(u8),
}

/// The `-f` value that turns syslog off.
pub const NO_SYSLOG: &str = "none";

const NAMED: [(&str, Facility); 12] = [
    ("auth", Facility::Auth),
    ("authpriv", Facility::Authpriv),
    ("cron", Facility::Cron),
    ("daemon", Facility::Daemon),
    ("ftp", Facility::Ftp),
    ("kern", Facility::Kern),
    ("lpr", Facility::Lpr),
    ("mail", Facility::Mail),
    ("news", Facility::News),
    ("syslog", Facility::Syslog),
    ("user", Facility::User),
    ("uucp", Facility::Uucp),
];

impl Facility {
    /// The libc `LOG_*` value of the facility, for openlog(3).
    pub fn to_libc(self) -> libc::c_int {
        match self {
            Facility::Auth => libc::LOG_AUTH,
            Facility::Authpriv => libc::LOG_AUTHPRIV,
            Facility::Cron => libc::LOG_CRON,
            Facility::Daemon => libc::LOG_DAEMON,
            Facility::Ftp => libc::LOG_FTP,
            Facility::Kern => libc::LOG_KERN,
            Facility::Lpr => libc::LOG_LPR,
            Facility::Mail => libc::LOG_MAIL,
            Facility::News => libc::LOG_NEWS,
            Facility::Syslog => libc::LOG_SYSLOG,
            Facility::User => libc::LOG_USER,
            Facility::Uucp => libc::LOG_UUCP,
            Facility::Local(n) => libc::LOG_LOCAL0 + (libc::c_int::from(n) << 3),
        }
    }

    /// Parses `-f`: a facility name (any case) or `none` (`Ok(None)`).
    pub fn parse_option(text: &str) -> Result<Option<Facility>, UnknownFacility> {
        if text.eq_ignore_ascii_case(NO_SYSLOG) {
            return Ok(None);
        }
        text.parse().map(Some)
    }
}

impl FromStr for Facility {
    type Err = UnknownFacility;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.to_ascii_lowercase();
        if let Some((_, facility)) = NAMED.iter().find(|(name, _)| *name == lower) {
            return Ok(*facility);
        }
        match lower
            .strip_prefix("local")
            .and_then(|n| n.parse::<u8>().ok())
        {
            Some(n) if n <= 7 && lower.len() == 6 => Ok(Facility::Local(n)),
            _ => Err(UnknownFacility {
                name: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::Local(n) => write!(f, "local{n}"),
            other => {
                let name = NAMED
                    .iter()
                    .find(|(_, fac)| fac == other)
                    .map_or("?", |(name, _)| name);
                f.write_str(name)
            }
        }
    }
}

/// A facility name that syslog does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown syslog facility {name:?} (expected daemon, user, local0..local7, ... or none)")]
pub struct UnknownFacility {
    /// The name given.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_case_is_ignored() {
        for (name, facility) in NAMED {
            assert_eq!(name.to_uppercase().parse::<Facility>().unwrap(), facility);
            assert_eq!(facility.to_string(), name);
        }
        assert_eq!("LOCAL7".parse::<Facility>().unwrap(), Facility::Local(7));
        assert_eq!(Facility::Local(3).to_string(), "local3");
        assert_eq!(Facility::Local(7).to_libc(), libc::LOG_LOCAL7);
    }

    #[test]
    fn none_turns_syslog_off_and_unknown_names_fail() {
        assert_eq!(Facility::parse_option("None").unwrap(), None);
        for bad in ["local8", "local", "local01", "deamon", ""] {
            let err = bad.parse::<Facility>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
