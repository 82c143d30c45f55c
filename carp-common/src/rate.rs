//! Rate limit per (source, vhid): the generic cell rate algorithm (GCRA), a
//! token bucket kept as one timestamp, with no division on the packet path.

use crate::maps::{RateState, Settings};

/// Decides whether an advert arriving at `now_ns` conforms, updating `state`.
///
/// An advert conforms when the key's theoretical arrival time is at most
/// `rate_tolerance_ns` in the future; each conforming advert pushes it
/// `rate_interval_ns` further. A key seen for the first time starts with a
/// full burst (call with `RateState::default()`).
#[inline(always)]
pub fn conforms(state: &mut RateState, settings: &Settings, now_ns: u64) -> bool {
    if settings.rate_interval_ns == 0 {
        return true;
    }
    let tat = if state.tat_ns > now_ns {
        state.tat_ns
    } else {
        now_ns
    };
    if tat - now_ns > settings.rate_tolerance_ns {
        return false;
    }
    state.tat_ns = tat + settings.rate_interval_ns;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let s = Settings::with_rate(10, 5, 0); // 100 ms per advert, burst 5
        let mut st = RateState::default();
        let t0 = 1_000_000_000;
        let passed = (0..20).filter(|_| conforms(&mut st, &s, t0)).count();
        assert_eq!(passed, 5);
        // 100 ms later exactly one more token has accrued.
        assert!(conforms(&mut st, &s, t0 + 100_000_000));
        assert!(!conforms(&mut st, &s, t0 + 100_000_000));
        // After a long quiet spell the full burst is back, not more.
        let later = t0 + 60_000_000_000;
        assert_eq!((0..20).filter(|_| conforms(&mut st, &s, later)).count(), 5);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let s = Settings::with_rate(0, 0, 0);
        let mut st = RateState::default();
        assert!((0..1000).all(|_| conforms(&mut st, &s, 5)));
    }

    #[test]
    fn burst_zero_is_one() {
        let s = Settings::with_rate(1, 0, 0);
        let mut st = RateState::default();
        assert!(conforms(&mut st, &s, 10));
        assert!(!conforms(&mut st, &s, 10));
    }
}
