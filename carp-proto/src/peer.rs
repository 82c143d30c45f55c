//! Who is on the other side: what an advert shows of the CARP implementation
//! that sent it, and what follows for the election and the replay rules.
//!
//! The four implementations agree on the wire format but not on what they
//! do with it (`docs/interop.md` has the whole matrix, with the lines of
//! the peers' sources it rests on):
//!
//! | peer     | source MAC            | counter                         | demote byte | tie of two masters     |
//! |----------|-----------------------|---------------------------------|-------------|------------------------|
//! | carpd-xdp| the interface's own, or `00:00:5e:00:01:vhid` with `virtual_mac` | tagged, growing with time ([`super::counter`]) | honoured | lower address wins     |
//! | UCARP    | `00:00:5e:00:00:vhid` | random, then last heard + 1     | ignored (0) | lower address wins, compared as a host-order word |
//! | OpenBSD  | `00:00:5e:00:01:vhid` | one constant cookie             | honoured    | the master that hears it yields |
//! | FreeBSD  | `00:00:5e:00:01:vhid` | random start, +1, last heard + 1 | ignored (0): demotion is added to advskew | the master that hears it yields |
//!
//! From the BSDs' MAC, carpd-xdp is told by its counter: tagged, and each
//! one ahead of the one before by at least a millisecond of its time part
//! (it carries the sender's clock). FreeBSD, once it has heard one of our
//! adverts, continues that counter by +1 per advert, so its counters are
//! tagged too, but step by one (and first from its random one to ours);
//! OpenBSD repeats one cookie. Until a second advert shows the step, a
//! tagged counter from the BSDs' MAC is taken for carpd-xdp: two carpd-xdp
//! masters on the virtual MAC then settle their tie at the first advert, as
//! they do from their own MACs. Judged wrongly: a FreeBSD host first heard
//! sending a counter it took on from us (a tie at that advert then has both
//! yield, and the next master-down settles it), and a FreeBSD master that
//! keeps hearing a carpd-xdp master and answers each advert with its
//! counter + 1 (it yields at that tie anyway; once alone it steps by one).
//!
//! None of this is authenticated: the source MAC and the demote byte are
//! outside the HMAC. An attacker on the link can already move the VIP with
//! the fields the HMAC does not cover (`docs/replay.md`), so a forged MAC
//! gains nothing new; it only selects which peer's rules we follow.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::counter::{identity, is_tagged};
use super::make_room;

/// The Ethernet source address of an advert, sorted by who uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacClass {
    /// Not known (the advert came without its link layer).
    Unknown,
    /// `00:00:5e:00:00:<vhid>`: UCARP writes this in every advert.
    Ucarp,
    /// `00:00:5e:00:01:<vhid>`: the IANA virtual-router address OpenBSD and
    /// FreeBSD carp(4) send from.
    Bsd,
    /// Any other address: carpd-xdp sends from the interface's own
    /// (without `virtual_mac`).
    Other,
}

impl MacClass {
    /// The virtual-router MAC OpenBSD and FreeBSD send `vhid`'s adverts from.
    pub const fn bsd_mac(vhid: u8) -> [u8; 6] {
        [0x00, 0x00, 0x5e, 0x00, 0x01, vhid]
    }

    /// Sorts `mac`, the source of an advert for `vhid`.
    pub fn of(mac: [u8; 6], vhid: u8) -> Self {
        match mac {
            [0, 0, 0, 0, 0, 0] => MacClass::Unknown,
            [0x00, 0x00, 0x5e, 0x00, 0x00, v] if v == vhid => MacClass::Ucarp,
            [0x00, 0x00, 0x5e, 0x00, 0x01, v] if v == vhid => MacClass::Bsd,
            _ => MacClass::Other,
        }
    }
}

/// The sender of a received advert: its IP source and, when the receive
/// path saw the frame, its Ethernet source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// IP source address.
    pub addr: IpAddr,
    /// Ethernet source address; all zero when unknown.
    pub mac: [u8; 6],
}

impl From<IpAddr> for Sender {
    /// A sender whose link layer is unknown.
    fn from(addr: IpAddr) -> Self {
        Self { addr, mac: [0; 6] }
    }
}

/// An Ethernet address, printed `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Errors of this module: text that is not a MAC address or an allowed peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerParseError {
    /// Not six colon-separated pairs of hex digits.
    #[error("{text:?} is not a MAC address (aa:bb:cc:dd:ee:ff)")]
    Mac {
        /// The text given.
        text: String,
    },
    /// The part before `@` is not an IP address.
    #[error("{text:?} is not an IP address")]
    Addr {
        /// The text given.
        text: String,
    },
}

impl std::str::FromStr for Mac {
    type Err = PeerParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_a_mac = || PeerParseError::Mac { text: s.to_owned() };
        let parts: Vec<u8> = s
            .split(':')
            .map(|p| {
                (p.len() == 2)
                    .then(|| u8::from_str_radix(p, 16).ok())
                    .flatten()
            })
            .collect::<Option<_>>()
            .ok_or_else(not_a_mac)?;
        <[u8; 6]>::try_from(parts).map(Mac).map_err(|_| not_a_mac())
    }
}

/// A source allowed to speak for a vhid (the peer allow-list): its address
/// and, if pinned, the Ethernet address it must send from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllowedPeer {
    /// IP source address.
    pub addr: IpAddr,
    /// Pinned Ethernet source, if any.
    pub mac: Option<Mac>,
}

impl AllowedPeer {
    /// Whether `sender` is this peer.
    pub fn admits(&self, sender: Sender) -> bool {
        self.addr == sender.addr && self.mac.is_none_or(|m| m.0 == sender.mac)
    }
}

impl std::fmt::Display for AllowedPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.mac {
            Some(mac) => write!(f, "{}@{mac}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl std::str::FromStr for AllowedPeer {
    type Err = PeerParseError;

    /// `ADDRESS` or `ADDRESS@MAC`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, mac) = match s.split_once('@') {
            Some((a, m)) => (a, Some(m.parse()?)),
            None => (s, None),
        };
        let addr = addr.parse().map_err(|_| PeerParseError::Addr {
            text: addr.to_owned(),
        })?;
        Ok(AllowedPeer { addr, mac })
    }
}

/// Which CARP implementation a source is, as far as its adverts show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// carpd-xdp: tagged counters from a MAC that is not a CARP one, or
    /// from the BSDs' MAC growing with time.
    Carpd,
    /// UCARP, by its source MAC.
    Ucarp,
    /// OpenBSD: a BSD source MAC and a repeated counter or a demote byte.
    OpenBsd,
    /// FreeBSD: a BSD source MAC and a counter that changes.
    FreeBsd,
    /// A BSD source MAC, one advert heard: OpenBSD or FreeBSD.
    Bsd,
    /// Nothing tells (no MAC and an untagged counter).
    Unknown,
}

/// How a peer settles two masters of equal priority that hear each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TieBreak {
    /// The lower address stays master (UCARP, and carpd-xdp so that it
    /// agrees with UCARP): see [`super::election::tie_order`].
    LowerAddress,
    /// The master that hears the tie yields (OpenBSD, FreeBSD: MASTER goes
    /// BACKUP on an equal interval). Against such a peer we keep the VIP,
    /// or both would yield and the tie would repeat at every master-down.
    PeerYields,
}

impl PeerKind {
    /// Whether the peer reads the demote byte of our adverts. UCARP and
    /// FreeBSD do not; they see our demotion only in advskew.
    pub fn honours_demote(self) -> bool {
        !matches!(self, PeerKind::Ucarp | PeerKind::FreeBsd)
    }

    /// How the peer settles a tie of two masters.
    pub fn tie_break(self) -> TieBreak {
        match self {
            PeerKind::OpenBsd | PeerKind::FreeBsd | PeerKind::Bsd => TieBreak::PeerYields,
            PeerKind::Carpd | PeerKind::Ucarp | PeerKind::Unknown => TieBreak::LowerAddress,
        }
    }

    /// A short name, for status and logs.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Carpd => "carpd-xdp",
            PeerKind::Ucarp => "ucarp",
            PeerKind::OpenBsd => "openbsd",
            PeerKind::FreeBsd => "freebsd",
            PeerKind::Bsd => "bsd",
            PeerKind::Unknown => "unknown",
        }
    }
}

/// What one source's authentic adverts have shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    /// Class of its last source MAC.
    mac: MacClass,
    /// Its last counter.
    last_counter: u64,
    /// Some advert repeated the counter before it.
    repeated: bool,
    /// Some advert changed the counter.
    changed: bool,
    /// Some advert carried a demote byte other than zero.
    demoted: bool,
    /// The last counter is tagged (today's format) and is the first heard,
    /// or follows a tagged one by more than one: carpd-xdp's counters move
    /// so, FreeBSD's (+1, or from random to one of ours it took on) and
    /// OpenBSD's (one cookie) do not.
    clocked: bool,
    /// Order of the last advert, to forget the oldest source first.
    touched: u64,
}

/// How many sources one table remembers; the least recently heard is
/// forgotten first.
pub const MAX_PEERS: usize = 64;

/// What the authentic adverts of each source have shown (bounded).
#[derive(Clone, Debug, Default)]
pub struct PeerTable {
    /// Per source address.
    seen: BTreeMap<IpAddr, Seen>,
    /// Adverts recorded, to order sources by recency.
    clock: u64,
}

impl PeerTable {
    /// Records an accepted advert and returns what its sender is.
    pub fn record(&mut self, sender: Sender, vhid: u8, counter: u64, demote: u8) -> PeerKind {
        make_room(&mut self.seen, &sender.addr, MAX_PEERS, |s| s.touched);
        self.clock += 1;
        let mac = MacClass::of(sender.mac, vhid);
        let tagged = identity(counter).is_some();
        let seen = self
            .seen
            .entry(sender.addr)
            .and_modify(|s| {
                s.repeated |= s.last_counter == counter;
                s.changed |= s.last_counter != counter;
                s.clocked = tagged
                    && identity(s.last_counter).is_some()
                    && counter > s.last_counter.saturating_add(1);
            })
            .or_insert(Seen {
                mac,
                last_counter: counter,
                repeated: false,
                changed: false,
                demoted: false,
                clocked: tagged,
                touched: 0,
            });
        seen.mac = mac;
        seen.last_counter = counter;
        seen.demoted |= demote != 0;
        seen.touched = self.clock;
        kind_of(seen)
    }

    /// What `addr` is, if it was heard.
    pub fn kind(&self, addr: IpAddr) -> Option<PeerKind> {
        self.seen.get(&addr).map(kind_of)
    }
}

/// The kind a source's adverts show.
fn kind_of(s: &Seen) -> PeerKind {
    match s.mac {
        MacClass::Ucarp => PeerKind::Ucarp,
        MacClass::Bsd if s.clocked => PeerKind::Carpd,
        MacClass::Bsd if s.repeated || s.demoted => PeerKind::OpenBsd,
        MacClass::Bsd if s.changed => PeerKind::FreeBsd,
        MacClass::Bsd => PeerKind::Bsd,
        MacClass::Other => PeerKind::Carpd,
        MacClass::Unknown if is_tagged(s.last_counter) => PeerKind::Carpd,
        MacClass::Unknown => PeerKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: u8 = 7;

    fn sender(mac: [u8; 6]) -> Sender {
        Sender {
            addr: "10.0.0.2".parse().unwrap(),
            mac,
        }
    }

    #[test]
    fn mac_classes() {
        assert_eq!(MacClass::of([0, 0, 0x5e, 0, 0, V], V), MacClass::Ucarp);
        assert_eq!(MacClass::of([0, 0, 0x5e, 0, 1, V], V), MacClass::Bsd);
        assert_eq!(MacClass::of([0, 0, 0x5e, 0, 1, 8], V), MacClass::Other);
        assert_eq!(MacClass::of([2, 0, 0, 0, 0, 1], V), MacClass::Other);
        assert_eq!(MacClass::of([0; 6], V), MacClass::Unknown);
    }

    #[test]
    fn openbsd_by_its_constant_cookie_freebsd_by_a_changing_counter() {
        let bsd = sender([0, 0, 0x5e, 0, 1, V]);
        let mut t = PeerTable::default();
        assert_eq!(t.record(bsd, V, 99, 0), PeerKind::Bsd);
        assert_eq!(t.record(bsd, V, 99, 0), PeerKind::OpenBsd);

        let mut t = PeerTable::default();
        t.record(bsd, V, 99, 0);
        assert_eq!(t.record(bsd, V, 100, 0), PeerKind::FreeBsd);

        let mut t = PeerTable::default();
        assert_eq!(t.record(bsd, V, 5, 1), PeerKind::OpenBsd);
    }

    #[test]
    fn ucarp_by_mac_carpd_by_mac_or_tag() {
        let mut t = PeerTable::default();
        assert_eq!(
            t.record(sender([0, 0, 0x5e, 0, 0, V]), V, 1, 0),
            PeerKind::Ucarp
        );
        let mut t = PeerTable::default();
        assert_eq!(
            t.record(sender([2, 0, 0, 0, 0, 1]), V, 1, 0),
            PeerKind::Carpd
        );
        let mut t = PeerTable::default();
        assert_eq!(t.record(sender([0; 6]), V, 1, 0), PeerKind::Unknown);
        let tagged = super::super::counter::tagged(5);
        assert_eq!(t.record(sender([0; 6]), V, tagged, 0), PeerKind::Carpd);
    }

    #[test]
    fn carpd_on_the_virtual_mac_by_counters_growing_with_time() {
        use super::super::counter::tagged_by;
        let vmac = sender(MacClass::bsd_mac(V));
        let t0 = 1_790_000_000_000;
        let mut t = PeerTable::default();
        // Tagged and alone: carpd-xdp until shown otherwise.
        assert_eq!(t.record(vmac, V, tagged_by(9, t0), 0), PeerKind::Carpd);
        // A millisecond or more later, same or new identity, demoted or not.
        assert_eq!(t.record(vmac, V, tagged_by(9, t0 + 1), 0), PeerKind::Carpd);
        assert_eq!(
            t.record(vmac, V, tagged_by(9, t0 + 1000), 3),
            PeerKind::Carpd
        );
        assert_eq!(
            t.record(vmac, V, tagged_by(40, t0 + 2000), 0),
            PeerKind::Carpd
        );

        // FreeBSD continuing one of our counters: +1 per advert.
        let mut t = PeerTable::default();
        let c = tagged_by(9, t0);
        assert_eq!(t.record(vmac, V, c + 1, 0), PeerKind::Carpd);
        assert_eq!(t.record(vmac, V, c + 2, 0), PeerKind::FreeBsd);
        // Across the identity byte's wrap too.
        let mut t = PeerTable::default();
        let c = tagged_by(255, t0);
        t.record(vmac, V, c, 0);
        assert_eq!(t.record(vmac, V, c + 1, 0), PeerKind::FreeBsd);

        // OpenBSD whose cookie happens to carry the tag: it repeats.
        let mut t = PeerTable::default();
        t.record(vmac, V, c, 0);
        assert_eq!(t.record(vmac, V, c, 0), PeerKind::OpenBsd);

        // Untagged counters from the BSDs' MAC stay BSD, and so does a
        // FreeBSD host going from its random counter to one of ours + 1.
        let mut t = PeerTable::default();
        assert_eq!(t.record(vmac, V, 99, 0), PeerKind::Bsd);
        assert_eq!(t.record(vmac, V, 5_000_000, 0), PeerKind::FreeBsd);
        assert_eq!(
            t.record(vmac, V, tagged_by(9, t0) + 1, 0),
            PeerKind::FreeBsd
        );
    }

    #[test]
    fn bounded_forgetting_the_oldest() {
        let mut t = PeerTable::default();
        for i in 0..(MAX_PEERS as u32 + 10) {
            let s = Sender {
                addr: IpAddr::V4(i.into()),
                mac: [2, 0, 0, 0, 0, 1],
            };
            t.record(s, V, 1, 0);
        }
        assert_eq!(t.seen.len(), MAX_PEERS);
        assert_eq!(t.kind(IpAddr::V4(0.into())), None);
        assert!(t.kind(IpAddr::V4((MAX_PEERS as u32 + 9).into())).is_some());
    }
}
