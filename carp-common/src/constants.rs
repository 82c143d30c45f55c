//! Protocol numbers and the names and capacities of the BPF maps.

/// IP protocol number of CARP (shared with VRRP).
pub const IPPROTO_CARP: u8 = 112;
/// CARP protocol version spoken (CARP v2, as UCARP and carp(4)).
pub const CARP_VERSION: u8 = 2;
/// CARP message type: advertisement (the only one defined).
pub const CARP_ADVERTISEMENT: u8 = 1;
/// Authentication length field, in 32-bit words (always 7 for CARP v2).
pub const CARP_AUTHLEN: u8 = 7;
/// Size of the CARP header on the wire, in bytes.
pub const CARP_HEADER_LEN: usize = 36;
/// TTL (IPv4) or hop limit (IPv6) every advert must carry.
pub const CARP_TTL: u8 = 255;
/// advbase and advskew of a "leave" advert (a master bowing out).
pub const CARP_LEAVE_ADVBASE: u8 = 255;
/// advskew of a "leave" advert.
pub const CARP_LEAVE_ADVSKEW: u8 = 255;
/// Length of the HMAC-SHA1 digest carried in the header.
pub const CARP_HMAC_LEN: usize = 20;

/// IPv4 multicast group of adverts, 224.0.0.18.
pub const CARP_GROUP_V4: [u8; 4] = [224, 0, 0, 18];
/// IPv6 multicast group of adverts, ff02::12.
pub const CARP_GROUP_V6: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// EtherType of an 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) outer tag; recognised, not parsed.
pub const ETH_P_8021AD: u16 = 0x88A8;
/// Length of an Ethernet header without VLAN tag.
pub const ETH_HLEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_HLEN: usize = 4;
/// Length of the fixed IPv6 header.
pub const IPV6_HLEN: usize = 40;
/// Minimum IPv4 header length.
pub const IPV4_MIN_HLEN: usize = 20;

/// Address family of an IPv4 advert in events and map keys (Linux `AF_INET`).
pub const AF_INET: u16 = 2;
/// Address family of an IPv6 advert in events and map keys (Linux `AF_INET6`).
pub const AF_INET6: u16 = 10;

/// Name of the XDP program in the object file.
pub const PROGRAM_NAME: &str = "carp_xdp";
/// Name of the TC (tcx ingress) program in the object file: the same
/// receive path, for an interface whose XDP hook another program holds.
pub const TC_PROGRAM_NAME: &str = "carp_tc";

/// Map of the vhids the daemon serves, keyed by [`crate::maps::VhidKey`].
pub const MAP_VHIDS: &str = "CARP_VHIDS";
/// Capacity of [`MAP_VHIDS`].
pub const MAP_VHIDS_CAPACITY: u32 = 1024;
/// The peer allow-lists: sources allowed to speak for a vhid, keyed by
/// [`crate::maps::PeerKey`].
pub const MAP_PEERS: &str = "CARP_PEERS";
/// Capacity of [`MAP_PEERS`].
pub const MAP_PEERS_CAPACITY: u32 = 4096;
/// Token buckets per (source, vhid), an LRU hash keyed by [`crate::maps::RateKey`].
pub const MAP_RATE: &str = "CARP_RATE";
/// Sources per served (interface, vhid) that [`MAP_RATE`] holds at full
/// [`MAP_VHIDS`]: a master and its backups, or unicast peers.
pub const MAP_RATE_SOURCES_PER_VHID: u32 = 8;
/// Capacity of [`MAP_RATE`] (the least recently seen keys are evicted; an
/// evicted key starts again with a full burst).
pub const MAP_RATE_CAPACITY: u32 = MAP_RATE_SOURCES_PER_VHID * MAP_VHIDS_CAPACITY;
/// Single-entry array holding [`crate::maps::Settings`].
pub const MAP_SETTINGS: &str = "CARP_SETTINGS";
/// Per-CPU array of u64 counters, indexed by [`crate::reason::Reason`].
pub const MAP_COUNTERS: &str = "CARP_COUNTERS";
/// Ring buffer of [`crate::event::AdvertEvent`]s.
pub const MAP_EVENTS: &str = "CARP_EVENTS";
/// Size of [`MAP_EVENTS`] in bytes (a power of two, multiple of the page size).
pub const MAP_EVENTS_BYTES: u32 = 256 * 1024;
/// Bytes of [`MAP_EVENTS`] that adverts from sources without a replay rule
/// (sources the daemon never accepted an advert from) may fill: beyond it,
/// theirs are dropped (`ringbuf_full`) and the rest of the ring is kept for
/// sources with a rule, the master's among them. Replays of a genuine
/// advert re-sent from ever new source addresses (no allow-list) pass the
/// HMAC and have no rule; were the whole ring theirs, the master's own
/// adverts would be lost once the daemon falls behind, and its backups
/// would take over.
pub const MAP_EVENTS_UNRULED_BYTES: u32 = MAP_EVENTS_BYTES / 2;

/// Precomputed HMAC keys ([`crate::hmac::HmacKey`]) keyed by [`crate::maps::VhidKey`].
pub const MAP_HMAC: &str = "CARP_HMAC";
/// The second accepted HMAC key of a vhid, where peers may send either of
/// two digests (IPv6 link-local VIPs, which OpenBSD leaves out); tried only
/// when [`MAP_HMAC`]'s key fails.
pub const MAP_HMAC_ALT: &str = "CARP_HMAC_ALT";
/// Replay rules per source ([`crate::maps::ReplayState`]), keyed by
/// [`crate::maps::ReplayKey`]: a hash the daemon alone fills and empties
/// (entries allocated on insert, never evicted by the kernel), so that
/// it decides which sources keep theirs.
pub const MAP_REPLAY: &str = "CARP_REPLAY";
/// Replay rules one served (interface, vhid) keeps for sources that are
/// neither allowed peers nor the current master: a master and its backups
/// fit many times over, and sources beyond it (spoofed ones, without an
/// allow-list) evict each other.
pub const REPLAY_SPARE_RULES: u32 = 16;
/// Capacity of [`MAP_REPLAY`]: every served (interface, vhid) of
/// [`MAP_VHIDS`] with its [`REPLAY_SPARE_RULES`] and its master, plus
/// every allowed peer of [`MAP_PEERS`]. The daemon never holds more, so the
/// map is never full and the master's rule always finds room. Rules are
/// allocated when inserted (2 KiB each); the capacity costs the map's
/// bucket table alone, 512 KiB of kernel memory (64 KiB at 4,096).
pub const MAP_REPLAY_CAPACITY: u32 =
    MAP_VHIDS_CAPACITY * (REPLAY_SPARE_RULES + 1) + MAP_PEERS_CAPACITY;
/// Groups of the recent counters the compat replay rule remembers per
/// source ([`crate::maps::Recent`]), in the receive path and in the
/// protocol core alike.
pub const RECENT_SETS: usize = 16;
/// Counters remembered per group of [`RECENT_SETS`].
pub const RECENT_WAYS: usize = 16;
/// Counters remembered per source in all: [`RECENT_SETS`] × [`RECENT_WAYS`].
pub const REPLAY_MEMORY: usize = RECENT_SETS * RECENT_WAYS;
/// Per-CPU scratch SHA-1 block, keeping 64 bytes off the XDP stack.
pub const MAP_SCRATCH: &str = "CARP_SCRATCH";
/// Per-CPU slot the frame's layout goes through before the stateful checks
/// ([`crate::inspect::Tables::forget_layout`]).
pub const MAP_LAYOUT: &str = "CARP_LAYOUT";

/// Every map name, so that a test can check the built object holds them all.
pub const MAP_NAMES: [&str; 11] = [
    MAP_VHIDS,
    MAP_PEERS,
    MAP_RATE,
    MAP_SETTINGS,
    MAP_COUNTERS,
    MAP_EVENTS,
    MAP_HMAC,
    MAP_HMAC_ALT,
    MAP_REPLAY,
    MAP_SCRATCH,
    MAP_LAYOUT,
];

/// High 16 bits of the counters carpd-xdp sends (the rest is the time and
/// the sender's identity, see `carp_proto::counter`); it tells our counters
/// from UCARP's random ones.
pub const COUNTER_TAG: u16 = 0xCA4D;
