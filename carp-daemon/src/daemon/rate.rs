//! The receive path's settings: the per-source rate limit, raised to what
//! the configured vhids need.

use carp_common::maps::Settings;

use crate::config::Config;

/// The receive path's settings. The per-source rate limit is never below
/// what the configured vhids need: a peer may advertise 256 times per second
/// on a vhid with advbase 0 (advskew 1), once per second otherwise; half as
/// much again is kept for jitter. A lower configured rate would drop genuine
/// adverts and make backups take over.
pub fn settings(config: &Config) -> Settings {
    let limit = &config.global.rate_limit;
    if limit.rate == 0 {
        return Settings::with_rate(0, 0, 0);
    }
    let needed: u32 = config
        .instances
        .iter()
        .map(|i| if i.advbase_secs == 0 { 256 } else { 1 })
        .sum();
    let floor = needed + needed / 2;
    let rate = limit.rate.max(floor);
    let burst = limit.burst.max(rate / 4);
    if rate > limit.rate {
        tracing::info!(
            "per-source rate limit raised from {} to {rate} adverts/s (burst {burst}): the configured vhids may advertise {needed} times per second",
            limit.rate
        );
    }
    Settings::with_rate(rate, burst, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(advbases: &[u8], rate: u32, burst: u32) -> Config {
        let text = advbases
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "[[instance]]\ninterface = \"eth0\"\nvhid = {}\nvips = [\"192.0.2.{}\"]\nadvbase_secs = {b}\nadvskew = 1\npassword = \"pw\"\n",
                    i + 1,
                    i + 10
                )
            })
            .collect::<String>();
        let text = format!("[global.rate_limit]\nrate = {rate}\nburst = {burst}\n{text}");
        crate::config::parse_str(&text, std::path::Path::new("t.toml"), &|_| None)
            .expect("valid config")
    }

    #[test]
    fn rate_limit_covers_the_fastest_adverts_of_the_configured_vhids() {
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
        assert_eq!(
            settings(&config(&[0, 0], 50, 20)),
            Settings::with_rate(768, 192, 0)
        );
        // A generous configured limit is kept; 0 still means no limit.
        assert_eq!(
            settings(&config(&[0], 1000, 300)),
            Settings::with_rate(1000, 300, 0)
        );
        assert_eq!(settings(&config(&[0], 0, 0)), Settings::with_rate(0, 0, 0));
    }
}
