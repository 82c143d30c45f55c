//! The advert and master-down intervals, and the table of deadlines.
//!
//! Intervals are exact in nanoseconds: one advskew step is 1/256 s =
//! 3,906,250 ns.

use std::fmt;
use std::str::FromStr;

use super::Nanos;

/// One advskew step, 1/256 s, in nanoseconds.
pub const SKEW_STEP_NS: u64 = Nanos::PER_SEC / 256;

/// The advert interval `advbase + advskew/256` s (carp(4) `carp_setrun`,
/// MASTER). With both zero it would be zero; it is clamped to 1/256 s, the
/// shortest interval the wire format can express.
pub const fn advert_interval(advbase_secs: u8, advskew: u8) -> Nanos {
    let ns = advbase_secs as u64 * Nanos::PER_SEC + advskew as u64 * SKEW_STEP_NS;
    if ns == 0 {
        Nanos(SKEW_STEP_NS)
    } else {
        Nanos(ns)
    }
}

/// The interval `advbase + advskew/256` s as the election compares it: the
/// wire values, without the clamp of [`advert_interval`]. carp(4) and UCARP
/// compare the `struct timeval`s built from the two fields, so advbase 0
/// with advskew 0 ranks before advskew 1, although both send every 1/256 s.
pub const fn rank_interval(advbase_secs: u8, advskew: u8) -> Nanos {
    Nanos(advbase_secs as u64 * Nanos::PER_SEC + advskew as u64 * SKEW_STEP_NS)
}

/// Which master-down formula a backup uses (see [`master_down_interval`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MasterDownRule {
    /// `deadratio × advbase + advskew/256` s, as UCARP.
    #[default]
    Ucarp,
    /// `deadratio × (advbase + advskew/256)` s, the `3 × interval` rule.
    OpenBsd,
}

impl MasterDownRule {
    /// Every rule, in the order the documentation lists them.
    pub const ALL: [MasterDownRule; 2] = [MasterDownRule::Ucarp, MasterDownRule::OpenBsd];

    /// The lowercase name, as in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            MasterDownRule::Ucarp => "ucarp",
            MasterDownRule::OpenBsd => "openbsd",
        }
    }
}

impl fmt::Display for MasterDownRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`MasterDownRule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown master-down rule {name:?}: expected \"ucarp\" or \"openbsd\"")]
pub struct UnknownMasterDownRule {
    /// The name given.
    pub name: String,
}

impl FromStr for MasterDownRule {
    type Err = UnknownMasterDownRule;

    /// One of the names of [`MasterDownRule::name`], exactly (lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|rule| rule.name() == s)
            .ok_or_else(|| UnknownMasterDownRule { name: s.to_owned() })
    }
}

/// How long a backup waits without adverts before it takes over.
///
/// - [`MasterDownRule::Ucarp`] (default): `deadratio × advbase + advskew/256`
///   s, UCARP's rule; with deadratio 3 it is also what the carp(4) sources arm
///   in `carp_setrun` (BACKUP: `3 * sc_advbase` seconds plus the skew). With
///   advbase 0 (which UCARP does not accept) it would equal the advert
///   interval and leave no margin for a late advert, so it becomes
///   `deadratio × interval` there.
/// - [`MasterDownRule::OpenBsd`]: `deadratio × (advbase + advskew/256)` s,
///   the `3 × interval` rule with deadratio 3: the skew is multiplied too, so
///   backups with different skews are further apart.
pub const fn master_down_interval(
    rule: MasterDownRule,
    deadratio: u8,
    advbase_secs: u8,
    advskew: u8,
) -> Nanos {
    let interval = advert_interval(advbase_secs, advskew);
    match rule {
        MasterDownRule::Ucarp if advbase_secs > 0 => Nanos(
            deadratio as u64 * advbase_secs as u64 * Nanos::PER_SEC + advskew as u64 * SKEW_STEP_NS,
        ),
        MasterDownRule::Ucarp | MasterDownRule::OpenBsd => {
            interval.saturating_mul(deadratio as u64)
        }
    }
}

/// The timers of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// MASTER: time to send the next advert.
    Advert = 0,
    /// BACKUP: the master is presumed down.
    MasterDown = 1,
}

impl Timer {
    /// Every timer, in the order they fire when due at the same time.
    pub const ALL: [Timer; 2] = [Timer::Advert, Timer::MasterDown];
}

/// A deadline per [`Timer`], each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    /// Deadlines, indexed by `Timer as usize`.
    deadlines: [Option<Nanos>; 2],
}

impl TimerTable {
    /// Arms `timer` at `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Nanos) {
        self.deadlines[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [None; 2];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Nanos> {
        self.deadlines[timer as usize]
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Nanos> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns `timer` if it is due at `now`.
    pub fn take_expired(&mut self, timer: Timer, now: Nanos) -> bool {
        match self.deadlines[timer as usize] {
            Some(at) if at <= now => {
                self.deadlines[timer as usize] = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_interval_exact_nanoseconds() {
        assert_eq!(advert_interval(1, 0), Nanos(1_000_000_000));
        assert_eq!(advert_interval(1, 100), Nanos(1_390_625_000));
        assert_eq!(advert_interval(0, 0), Nanos(3_906_250));
        assert_eq!(advert_interval(0, 1), Nanos(3_906_250));
        assert_eq!(advert_interval(0, 254), Nanos(992_187_500));
        assert_eq!(advert_interval(255, 0), Nanos(255_000_000_000));
        assert_eq!(advert_interval(255, 254), Nanos(255_992_187_500));
        // The leave advert's interval (never ours: advskew stops at 254).
        assert_eq!(advert_interval(255, 255), Nanos(255_996_093_750));
    }

    #[test]
    fn ucarp_master_down_exact_nanoseconds() {
        let md = |d, b, s| master_down_interval(MasterDownRule::Ucarp, d, b, s);
        assert_eq!(md(3, 1, 0), Nanos(3_000_000_000));
        assert_eq!(md(3, 1, 100), Nanos(3_390_625_000));
        assert_eq!(md(3, 255, 0), Nanos(765_000_000_000));
        assert_eq!(md(3, 255, 254), Nanos(765_992_187_500));
        assert_eq!(md(2, 1, 254), Nanos(2_992_187_500));
        // advbase 0: deadratio × interval.
        assert_eq!(md(3, 0, 0), Nanos(11_718_750));
        assert_eq!(md(3, 0, 254), Nanos(2_976_562_500));
    }

    #[test]
    fn openbsd_master_down_exact_nanoseconds() {
        let md = |d, b, s| master_down_interval(MasterDownRule::OpenBsd, d, b, s);
        assert_eq!(md(3, 1, 0), Nanos(3_000_000_000));
        assert_eq!(md(3, 1, 100), Nanos(4_171_875_000));
        assert_eq!(md(3, 255, 254), Nanos(767_976_562_500));
        assert_eq!(md(3, 255, 0), Nanos(765_000_000_000));
        assert_eq!(md(3, 0, 0), Nanos(11_718_750));
        assert_eq!(md(3, 0, 254), Nanos(2_976_562_500));
    }

    #[test]
    fn table_returns_earliest_and_expires_once() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::MasterDown, Nanos(50));
        t.set(Timer::Advert, Nanos(70));
        assert_eq!(t.next(), Some(Nanos(50)));
        assert!(!t.take_expired(Timer::MasterDown, Nanos(49)));
        assert!(t.take_expired(Timer::MasterDown, Nanos(50)));
        assert!(!t.take_expired(Timer::MasterDown, Nanos(50)));
        assert_eq!(t.next(), Some(Nanos(70)));
        t.stop_all();
        assert_eq!(t.next(), None);
    }

    #[test]
    fn master_down_rule_names() {
        for (name, rule) in [
            ("ucarp", MasterDownRule::Ucarp),
            ("openbsd", MasterDownRule::OpenBsd),
        ] {
            assert_eq!(rule.to_string(), name);
            assert_eq!(name.parse::<MasterDownRule>(), Ok(rule));
        }
        assert_eq!(MasterDownRule::default(), MasterDownRule::Ucarp);
        assert_eq!(
            "OpenBSD".parse::<MasterDownRule>().unwrap_err().to_string(),
            r#"unknown master-down rule "OpenBSD": expected "ucarp" or "openbsd""#
        );
    }
}
