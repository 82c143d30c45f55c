//! The receive path's settings: the rate limit per (source, vhid), raised to
//! what one vhid's master may send.

use carp_common::maps::Settings;

use crate::config::Config;

/// Smallest burst the receive path accepts per (source, vhid): besides its
/// periodic adverts a master sends one at takeover, one before it steps down
/// for a better master, a leave advert and one per demote change, and a
/// loaded sender or network may bunch adverts up.
pub const MIN_BURST: u32 = 8;

/// Adverts per second the master of a vhid with this advbase may send: one
/// per advert interval, which is at least 1/256 s with advbase 0 and at
/// least 1 s otherwise.
pub const fn adverts_per_sec(advbase_secs: u8) -> u32 {
    if advbase_secs == 0 {
        256
    } else {
        1
    }
}

/// The receive path's settings. The limit applies to each (source, vhid)
/// apart, so it never depends on how many vhids a peer is master of, nor on
/// how their adverts line up. It is never below what the fastest configured
/// vhid needs, with half as much again for jitter (at least 2/s), and a burst
/// of at least a quarter of a second's worth or [`MIN_BURST`]: a lower
/// configured limit would drop genuine adverts and make backups take over.
pub fn settings(config: &Config) -> Settings {
    let limit = &config.global.rate_limit;
    if limit.rate == 0 {
        return Settings::with_rate(0, 0, 0);
    }
    let needed = config
        .instances
        .iter()
        .map(|i| adverts_per_sec(i.advbase_secs))
        .max()
        .unwrap_or(1);
    let floor = (needed + needed / 2).max(2);
    let rate = limit.rate.max(floor);
    let burst = limit.burst.max(rate / 4).max(MIN_BURST);
    if rate > limit.rate || burst > limit.burst {
        tracing::info!(
            "rate limit per source and vhid raised from {}/s (burst {}) to {rate}/s (burst {burst}): a master of the configured vhids may advertise {needed} times per second",
            limit.rate,
            limit.burst
        );
    }
    Settings::with_rate(rate, burst, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carp_common::maps::RateState;
    use carp_common::rate::conforms;

    fn config(advbases: &[u8], rate: u32, burst: u32) -> Config {
        let text = advbases
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "[[instance]]\ninterface = \"eth0\"\nvhid = {}\nvips = [\"10.1.{}.{}\"]\nadvbase_secs = {b}\nadvskew = 1\npassword = \"pw\"\n",
                    i + 1,
                    i / 200,
                    i % 200 + 10
                )
            })
            .collect::<String>();
        let text = format!("[global.rate_limit]\nrate = {rate}\nburst = {burst}\n{text}");
        crate::config::parse_str(&text, std::path::Path::new("t.toml"), &|_| None)
            .expect("valid config")
    }

    #[test]
    fn rate_limit_covers_the_fastest_adverts_of_one_vhid() {
        // Slow vhids: the configured limit stands.
        assert_eq!(
            settings(&config(&[1, 1], 50, 20)),
            Settings::with_rate(50, 20, 0)
        );
        // advbase 0: up to 256 adverts/s from the master, plus headroom.
        assert_eq!(
            settings(&config(&[0], 50, 20)),
            Settings::with_rate(384, 96, 0)
        );
        // The limit is per (source, vhid): more vhids need no more.
        assert_eq!(
            settings(&config(&[0, 0], 50, 20)),
            Settings::with_rate(384, 96, 0)
        );
        assert_eq!(
            settings(&config(&[1; 255], 50, 20)),
            Settings::with_rate(50, 20, 0)
        );
        // A tiny configured limit is raised to what one slow vhid needs.
        assert_eq!(
            settings(&config(&[1; 255], 1, 1)),
            Settings::with_rate(2, MIN_BURST, 0)
        );
        // A generous configured limit is kept; 0 still means no limit.
        assert_eq!(
            settings(&config(&[0], 1000, 300)),
            Settings::with_rate(1000, 300, 0)
        );
        assert_eq!(settings(&config(&[0], 0, 0)), Settings::with_rate(0, 0, 0));
    }

    /// A small deterministic generator for phases and jitter.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// Replays `secs` seconds of the adverts a peer that is master of every
    /// configured vhid sends (each vhid at its own interval, the smallest one
    /// for its advbase, from a random phase, every send up to `jitter_ns`
    /// late, plus a takeover advert right after the first one) through the
    /// receive path's limiter; returns how many were dropped.
    fn dropped(advbases: &[u8], rate: u32, burst: u32, secs: u64, jitter_ns: u64) -> usize {
        let s = settings(&config(advbases, rate, burst));
        let mut rng = Lcg(7);
        let mut arrivals: Vec<(u64, usize)> = Vec::new();
        for (vhid, &advbase) in advbases.iter().enumerate() {
            let interval = 1_000_000_000 / u64::from(adverts_per_sec(advbase));
            let start = 1_000_000_000 + rng.below(interval);
            arrivals.push((start, vhid));
            let mut at = start;
            while at < start + secs * 1_000_000_000 {
                arrivals.push((at + rng.below(jitter_ns + 1), vhid));
                at += interval;
            }
        }
        arrivals.sort_unstable();
        let mut states = vec![RateState::default(); advbases.len()];
        arrivals
            .iter()
            .filter(|&&(at, vhid)| !conforms(&mut states[vhid], &s, at))
            .count()
    }

    #[test]
    fn no_genuine_advert_is_dropped_whatever_the_number_of_vhids() {
        // 255 vhids on one peer, the adverts of each second in one burst:
        // a bucket per source would drop the tail of every burst.
        assert_eq!(dropped(&[1; 255], 50, 20, 10, 1_000_000), 0);
        assert_eq!(dropped(&[1; 255], 1, 1, 10, 1_000_000), 0);
        // Fast and slow vhids mixed, 3 ms of jitter on 3.9 ms intervals.
        let mixed: Vec<u8> = (0..255).map(|i| if i % 4 == 0 { 0 } else { 1 }).collect();
        assert_eq!(dropped(&mixed, 50, 20, 3, 3_000_000), 0);
    }

    #[test]
    fn a_flood_of_one_vhid_is_still_limited() {
        let s = settings(&config(&[1; 3], 50, 20));
        let mut st = RateState::default();
        let t = 1_000_000_000;
        let passed = (0..1000).filter(|_| conforms(&mut st, &s, t)).count();
        assert_eq!(passed, 20);
    }
}
