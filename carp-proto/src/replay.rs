//! Replay protection: which received counters are accepted.
//!
//! UCARP, OpenBSD and FreeBSD accept any counter, so a captured advert of a
//! dead master, replayed, keeps its backups from ever taking over. We keep
//! state per (source address, vhid) and apply one of three rules. The state
//! changes only for adverts that passed authentication, so a forger cannot
//! poison it. `docs/replay.md` has the threat model.
//!
//! - [`ReplayMode::Strict`]: a counter must be greater than the last one
//!   accepted from that source and vhid. With a window configured, a counter
//!   must also carry our tag (see [`super::counter`]) and a time within the
//!   window of our own wall clock.
//! - [`ReplayMode::Compat`], for peers whose counters are random (UCARP sends
//!   a fresh random counter in every advert until it hears a peer, then the
//!   last counter it heard + 1 per advert): a counter is accepted unless it is
//!   one of the recent counters accepted from that source and vhid
//!   ([`Recent`]: the last [`COMPAT_MEMORY`] of counters that grow by one,
//!   at least the last 16 and usually near [`COMPAT_MEMORY`] of random
//!   ones). This stops the replay of recent adverts, not of older ones.
//! - [`ReplayMode::Auto`] (default): tagged counters follow the strict rule
//!   against the last tagged counter of that source; untagged counters follow
//!   the compat rule, until the source has sent two tagged adverts in a row
//!   with growing counters. From then on it is known to be a carpd-xdp source
//!   and untagged counters from it are refused ([`ReplayError::Downgrade`]).
//!   Two in a row, because a random UCARP counter carries the tag once in
//!   65,536 adverts; twice in a row, growing, once in about 8.6 × 10⁹.
//!   Only a source sending from a MAC that is not a CARP virtual-router
//!   address ([`MacClass::Other`], or unknown) becomes known this way: UCARP
//!   and FreeBSD continue the last counter they heard, ours included, so
//!   their counters look like ours until they restart and go back to random
//!   ones, which must not then be refused.
//!
//! Counters in today's format carry their sender's identity (see
//! [`super::counter`]): with a time within [`PLAUSIBLE_MS`] of ours, they
//! must also exceed the last counter accepted from that identity, from any
//! source address ([`ReplayError::Replayed`]), in `strict` and `auto`; that
//! state is never forgotten (254 identities per vhid) and the daemon keeps
//! it across restarts ([`ReplayGuard::identities`], [`ReplayGuard::remember`]).
//! A tagged counter is never a [`Admission::Repeat`], and the window is
//! checked before anything else.
//!
//! OpenBSD puts one constant cookie in every advert (`vhe_replay_cookie`).
//! In `compat` and `auto`, a source sending from a BSD virtual-router MAC
//! ([`MacClass::Bsd`]) whose every accepted counter was that same value may
//! repeat it: such an advert proves that the host is alive, nothing more, and
//! a replay of it cannot be told apart. `strict` refuses it (counters must
//! grow): it is for carpd-xdp-only clusters.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use carp_common::constants::REPLAY_MEMORY;
use carp_common::maps::{
    Recent, ReplayState, REPLAY_RECENT, REPLAY_REPEATS, REPLAY_REQUIRE_TAG, REPLAY_STRICT,
    REPLAY_TAGGED_GROW,
};

use super::counter::{embedded_millis, identity, is_tagged};
use super::peer::MacClass;

/// How many recent counters per source the compat rule remembers: as many
/// as the receive path's rule, so that what it lets through is never a
/// duplicate here.
pub const COMPAT_MEMORY: usize = REPLAY_MEMORY;

/// How many (source, vhid) pairs one guard tracks; the least recently
/// accepted is forgotten first.
pub const MAX_SOURCES: usize = 256;

/// Which replay rule applies (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReplayMode {
    /// Counters must grow per source and vhid (carpd-xdp-only clusters).
    Strict,
    /// Counters must not repeat a recent one (clusters with UCARP or carp(4)).
    Compat,
    /// Strict for carpd-xdp sources, compat for the others.
    #[default]
    Auto,
}

impl ReplayMode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [ReplayMode; 3] = [ReplayMode::Strict, ReplayMode::Compat, ReplayMode::Auto];

    /// The lowercase name, as in the configuration file and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReplayMode::Strict => "strict",
            ReplayMode::Compat => "compat",
            ReplayMode::Auto => "auto",
        }
    }
}

impl fmt::Display for ReplayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`ReplayMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown replay mode {name:?}: expected \"strict\", \"compat\" or \"auto\"")]
pub struct UnknownReplayMode {
    /// The name given.
    pub name: String,
}

impl FromStr for ReplayMode {
    type Err = UnknownReplayMode;

    /// One of the names of [`ReplayMode::name`], exactly (lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.name() == s)
            .ok_or_else(|| UnknownReplayMode { name: s.to_owned() })
    }
}

/// What an accepted counter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// New: the advert counts in full.
    Fresh,
    /// Seen before, from a peer that repeats counters when made to: the
    /// advert proves that its sender lives, and changes nothing else (its
    /// advbase, advskew and demote may be anyone's edit of an old advert).
    Repeat,
    /// The last counter of its sender's identity, arriving again from
    /// another address: the same advert delivered twice, as a dual-stack
    /// sender's IPv4 and IPv6 copies of one advert are. It changes nothing,
    /// proves nothing (a replay of the last advert looks the same) and is
    /// not a refusal.
    Copy,
}

/// Errors of this module: why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The counter is not greater than the last one accepted from the source.
    #[error("counter {counter} is not greater than the last accepted {last}")]
    Stale {
        /// Counter received.
        counter: u64,
        /// Last counter accepted from that source and vhid.
        last: u64,
    },
    /// The counter was accepted recently from the same source (compat rule).
    #[error("counter {counter} was already accepted recently")]
    Duplicate {
        /// Counter received.
        counter: u64,
    },
    /// An untagged counter from a source known to send tagged ones.
    #[error("untagged counter {counter} from a source that sends tagged counters")]
    Downgrade {
        /// Counter received.
        counter: u64,
    },
    /// The counter is not greater than the last one accepted from its
    /// sender's identity, whatever address it came from: a replay.
    #[error("counter {counter} of sender {identity} is not greater than its last accepted {last}")]
    Replayed {
        /// Counter received.
        counter: u64,
        /// The sender's identity the counter carries.
        identity: u8,
        /// Last counter accepted from that identity and vhid.
        last: u64,
    },
    /// A window is configured and the counter carries no time.
    #[error("counter {counter} carries no time and a replay window is set")]
    Untimed {
        /// Counter received.
        counter: u64,
    },
    /// The time in the counter is outside the window around our clock.
    #[error("counter {counter} is {skew_ms} ms from our clock, the window is {window_ms} ms")]
    OutsideWindow {
        /// Counter received.
        counter: u64,
        /// Embedded time minus our time, in milliseconds.
        skew_ms: i64,
        /// The configured window, in milliseconds either side.
        window_ms: u64,
    },
}

impl ReplayError {
    /// A short stable name for counting rejections by kind.
    pub const fn name(&self) -> &'static str {
        match self {
            ReplayError::Stale { .. } => "replay-stale",
            ReplayError::Replayed { .. } => "replay-identity",
            ReplayError::Duplicate { .. } => "replay-duplicate",
            ReplayError::Downgrade { .. } => "replay-downgrade",
            ReplayError::Untimed { .. } => "replay-untimed",
            ReplayError::OutsideWindow { .. } => "replay-window",
        }
    }
}

/// What we know about one (source, vhid).
#[derive(Clone, Debug, Default)]
struct SourceState {
    /// Last accepted counter (strict rule).
    last: Option<u64>,
    /// Last accepted tagged counter (auto rule).
    last_tagged: Option<u64>,
    /// The previous accepted advert carried a tagged counter.
    previous_tagged: bool,
    /// Two tagged adverts in a row were seen: a carpd-xdp source.
    known_tagged: bool,
    /// Recently accepted counters (compat rule), the very table the
    /// receive path keeps (2 KiB, hence boxed).
    recent: Box<Recent>,
    /// Every accepted counter so far was this one (OpenBSD's cookie).
    constant: Option<u64>,
    /// Order of the last acceptance, for forgetting the oldest source.
    touched: u64,
}

/// Replay state of every source heard, for one or more vhids.
#[derive(Clone, Debug)]
pub struct ReplayGuard {
    /// The rule applied.
    mode: ReplayMode,
    /// Allowed distance between a counter's time and ours, in milliseconds.
    window_ms: Option<u64>,
    /// State per (source address, vhid).
    sources: BTreeMap<(IpAddr, u8), SourceState>,
    /// Last accepted counter per (vhid, sender identity), whatever the
    /// source: at most 254 per vhid, so never evicted.
    identities: BTreeMap<(u8, u8), u64>,
    /// Acceptances so far, to order sources by recency.
    clock: u64,
    /// Our wall clock at the last [`Self::admit`], in ms since the Unix
    /// epoch.
    now_ms: u64,
}

impl ReplayGuard {
    /// A guard applying `mode`, with an optional time window in milliseconds.
    pub fn new(mode: ReplayMode, window_ms: Option<u64>) -> Self {
        Self {
            mode,
            window_ms,
            sources: BTreeMap::new(),
            identities: BTreeMap::new(),
            clock: 0,
            now_ms: 0,
        }
    }

    /// The rule applied.
    pub fn mode(&self) -> ReplayMode {
        self.mode
    }

    /// Checks `counter` from `src` for `vhid` and, if it passes as new,
    /// records it. Call only for adverts that passed authentication.
    /// `now_unix_ms` is our wall clock, used only with a window; `mac` is
    /// the class of the advert's Ethernet source.
    ///
    /// In `compat` and `auto`, an untagged counter seen before from a UCARP
    /// or BSD virtual-router MAC, from a source not known to be carpd-xdp,
    /// is [`Admission::Repeat`] rather than refused: those peers take on the
    /// counter of any advert they accept, so whoever re-sends one of their
    /// old adverts to them (from any address) makes them send counters
    /// again that they sent before. Refusing those would take a live master
    /// for dead. A tagged counter is never a repeat: carpd-xdp's counters
    /// never repeat, and a replay of one is recognised by its identity
    /// from any source ([`ReplayError::Replayed`]).
    pub fn admit(
        &mut self,
        src: IpAddr,
        vhid: u8,
        counter: u64,
        now_unix_ms: u64,
        mac: MacClass,
    ) -> Result<Admission, ReplayError> {
        self.now_ms = now_unix_ms;
        match self.check(src, vhid, counter, now_unix_ms, mac) {
            Ok(()) => {
                self.record(src, vhid, counter, is_tagged(counter), mac);
                Ok(Admission::Fresh)
            }
            Err(ReplayError::Stale { .. } | ReplayError::Duplicate { .. })
                if !is_tagged(counter)
                    && matches!(mac, MacClass::Ucarp | MacClass::Bsd)
                    && match self.mode {
                        ReplayMode::Compat => true,
                        ReplayMode::Auto => !self.is_known_tagged(src, vhid),
                        ReplayMode::Strict => false,
                    } =>
            {
                self.clock += 1;
                if let Some(s) = self.sources.get_mut(&(src, vhid)) {
                    s.touched = self.clock;
                }
                Ok(Admission::Repeat)
            }
            // The source's own rule passed (it runs first): the identity's
            // last counter, from an address that had not sent it.
            Err(ReplayError::Replayed { counter, last, .. }) if counter == last => {
                Ok(Admission::Copy)
            }
            Err(e) => Err(e),
        }
    }

    /// The rule of [`Self::admit`], without recording.
    fn check(
        &self,
        src: IpAddr,
        vhid: u8,
        counter: u64,
        now_unix_ms: u64,
        mac: MacClass,
    ) -> Result<(), ReplayError> {
        let tagged = is_tagged(counter);
        let state = self.sources.get(&(src, vhid));
        let cookie = mac == MacClass::Bsd && state.is_some_and(|s| s.constant == Some(counter));
        // The window first: nothing (a cookie, a repeat) bypasses it.
        if self.mode == ReplayMode::Strict || (self.mode == ReplayMode::Auto && tagged) {
            self.check_window(counter, now_unix_ms)?;
        }
        // OpenBSD's cookie is random: it may carry our tag by chance, but
        // then hardly a time near ours; one of our counters never repeats.
        let cookie = cookie && !is_ours(counter, now_unix_ms);
        match self.mode {
            ReplayMode::Compat | ReplayMode::Auto if cookie => {}
            ReplayMode::Strict => {
                check_greater(counter, state.and_then(|s| s.last))?;
                self.check_identity(counter, vhid)?;
            }
            ReplayMode::Compat => check_fresh(counter, state)?,
            ReplayMode::Auto if tagged => {
                check_greater(counter, state.and_then(|s| s.last_tagged))?;
                self.check_identity(counter, vhid)?;
            }
            ReplayMode::Auto => {
                if state.is_some_and(|s| s.known_tagged) {
                    return Err(ReplayError::Downgrade { counter });
                }
                check_fresh(counter, state)?;
            }
        }
        Ok(())
    }

    /// The identity rule: a counter carrying a sender's identity (and a
    /// time near ours, see [`PLAUSIBLE_MS`]) must be greater than the last
    /// one accepted from that identity, from any source address. A random
    /// UCARP counter that carries the tag by chance thus hardly ever meets
    /// the rule, and never leaves a time far from ours in its identity's
    /// state, where it would refuse that identity's genuine counters.
    fn check_identity(&self, counter: u64, vhid: u8) -> Result<(), ReplayError> {
        let Some(identity) = identity(counter).filter(|_| is_ours(counter, self.now_ms)) else {
            return Ok(());
        };
        match self.identities.get(&(vhid, identity)) {
            Some(&last) if counter <= last => Err(ReplayError::Replayed {
                counter,
                identity,
                last,
            }),
            _ => Ok(()),
        }
    }

    /// The last counter accepted from each sender identity of `vhid`, for
    /// keeping across restarts.
    pub fn identities(&self, vhid: u8) -> Vec<u64> {
        self.identities
            .range((vhid, 0)..=(vhid, u8::MAX))
            .map(|(_, &last)| last)
            .collect()
    }

    /// Remembers that `last` was accepted from its identity for `vhid`
    /// (kept from a previous run). Values that carry no identity are
    /// ignored; a lower value than the one known changes nothing.
    pub fn remember(&mut self, vhid: u8, last: u64) {
        if let Some(id) = identity(last) {
            let known = self.identities.entry((vhid, id)).or_insert(last);
            *known = (*known).max(last);
        }
    }

    /// The window rule, when a window is set.
    fn check_window(&self, counter: u64, now_unix_ms: u64) -> Result<(), ReplayError> {
        let Some(window_ms) = self.window_ms else {
            return Ok(());
        };
        if !is_tagged(counter) {
            return Err(ReplayError::Untimed { counter });
        }
        let skew_ms = embedded_millis(counter) as i128 - now_unix_ms as i128;
        if skew_ms.unsigned_abs() > u128::from(window_ms) {
            return Err(ReplayError::OutsideWindow {
                counter,
                skew_ms: skew_ms.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                window_ms,
            });
        }
        Ok(())
    }

    /// Records an accepted counter.
    fn record(&mut self, src: IpAddr, vhid: u8, counter: u64, tagged: bool, mac: MacClass) {
        let evicted = super::make_room(&mut self.sources, &(src, vhid), MAX_SOURCES, |s| s.touched);
        self.clock += 1;
        let fresh = !self.sources.contains_key(&(src, vhid));
        let s = self.sources.entry((src, vhid)).or_insert_with(|| {
            // The forgotten source's table serves the new one: a flood of
            // ever new sources allocates nothing.
            let mut recent = evicted.map(|e| e.recent).unwrap_or_default();
            *recent = Recent::EMPTY;
            SourceState {
                recent,
                ..SourceState::default()
            }
        });
        s.touched = self.clock;
        s.last = Some(counter);
        s.constant = match s.constant {
            _ if fresh => Some(counter),
            Some(c) if c == counter => Some(c),
            _ => None,
        };
        let may_be_ours = matches!(mac, MacClass::Other | MacClass::Unknown);
        if tagged {
            if may_be_ours && s.previous_tagged && s.last_tagged.is_some_and(|l| counter > l) {
                s.known_tagged = true;
            }
            s.last_tagged = Some(counter);
        }
        s.previous_tagged = tagged;
        s.recent.push(counter);
        if is_ours(counter, self.now_ms) {
            self.remember(vhid, counter);
        }
    }

    /// True when `src` has shown it sends tagged counters (auto rule).
    pub fn is_known_tagged(&self, src: IpAddr, vhid: u8) -> bool {
        self.sources
            .get(&(src, vhid))
            .is_some_and(|s| s.known_tagged)
    }

    /// The rule for `src` as the receive path applies it before the HMAC
    /// and the rate limit (see [`ReplayState`]), with this guard's state of
    /// the source: what it lets through, the rules above accept, except for
    /// the window, which only the core checks. `None` before anything was
    /// accepted from `src`.
    pub fn receive_rule(&self, src: IpAddr, vhid: u8) -> Option<ReplayState> {
        let s = self.sources.get(&(src, vhid))?;
        let rule = match self.mode {
            ReplayMode::Strict => {
                let tag = if self.window_ms.is_some() {
                    REPLAY_REQUIRE_TAG
                } else {
                    0
                };
                return Some(ReplayState::new(
                    REPLAY_STRICT | tag,
                    s.last?,
                    &Recent::EMPTY,
                ));
            }
            ReplayMode::Auto if s.known_tagged => ReplayState::new(
                REPLAY_STRICT | REPLAY_REQUIRE_TAG,
                s.last_tagged?,
                &Recent::EMPTY,
            ),
            ReplayMode::Auto => ReplayState::new(
                REPLAY_TAGGED_GROW | REPLAY_RECENT | REPLAY_REPEATS,
                s.last_tagged.unwrap_or(0),
                &s.recent,
            ),
            ReplayMode::Compat => ReplayState::new(REPLAY_RECENT | REPLAY_REPEATS, 0, &s.recent),
        };
        Some(match s.constant {
            Some(cookie) if !is_ours(cookie, self.now_ms) => {
                rule.with_cookie(cookie, MacClass::bsd_mac(vhid))
            }
            _ => rule,
        })
    }

    /// Number of (source, vhid) pairs tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

/// How far from our clock the time of a counter carrying an identity may be
/// for it to count as one of ours: for the identity rule, and where a
/// random value would otherwise be allowed to repeat (OpenBSD's cookie).
/// 30 days either side: carpd-xdp hosts whose clocks differ by more are
/// judged per source address only.
pub const PLAUSIBLE_MS: u64 = 30 * 86_400_000;

/// Whether `counter` carries an identity and a time within
/// [`PLAUSIBLE_MS`] of `now_unix_ms`: one of carpd-xdp's, not a random
/// value that happens to carry the tag: of random values, 2⁻¹⁶ carry the
/// tag and of those 60 days in 2⁴⁰ ms (0.47 %) such a time, about 7 × 10⁻⁸.
fn is_ours(counter: u64, now_unix_ms: u64) -> bool {
    identity(counter).is_some() && embedded_millis(counter).abs_diff(now_unix_ms) <= PLAUSIBLE_MS
}

/// The strict rule: greater than the last accepted.
fn check_greater(counter: u64, last: Option<u64>) -> Result<(), ReplayError> {
    match last {
        Some(last) if counter <= last => Err(ReplayError::Stale { counter, last }),
        _ => Ok(()),
    }
}

/// The compat rule: not one of the recent counters.
fn check_fresh(counter: u64, state: Option<&SourceState>) -> Result<(), ReplayError> {
    if state.is_some_and(|s| s.recent.contains(counter)) {
        return Err(ReplayError::Duplicate { counter });
    }
    Ok(())
}
