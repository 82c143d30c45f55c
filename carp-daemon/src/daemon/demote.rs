//! The demote sources of an instance, summed in one place, and the
//! backoff of VIP adds that failed.
//!
//! The core advertises one demote value (OpenBSD's carpdemote: higher
//! loses). The daemon feeds it from several sources: the failing health
//! checks' weights and, while a VIP cannot be added, [`VIP_FAILURE_DEMOTE`].
//! [`Demote::total`] is their sum.

use crate::proto::Nanos;

/// Demote added while a VIP cannot be added: a host that cannot hold the
/// address must not be preferred over one that can, whatever its health
/// checks say.
pub const VIP_FAILURE_DEMOTE: u32 = 255;

/// First wait before a failed VIP add is tried again (ms); it doubles with
/// every failure in a row, up to [`VIP_RETRY_MAX_MS`].
pub const VIP_RETRY_FIRST_MS: u64 = 100;

/// Longest wait between two tries of a failed VIP add (ms).
pub const VIP_RETRY_MAX_MS: u64 = 30_000;

/// Once another host has taken over from an instance demoted for a failed
/// VIP add, the demote is kept at least this long (ms), or the current
/// backoff if longer, before this host may take over and try again: a
/// host that cannot hold the address does not snatch it back every few
/// hundred milliseconds.
pub const VIP_DEMOTE_HOLD_MS: u64 = 10_000;

/// The demote sources of one instance. The core advertises their sum
/// (saturated at 255); this is the one place that sums them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demote {
    /// Sum of the weights of the failing health checks.
    pub health: u32,
    /// [`VIP_FAILURE_DEMOTE`] while VIPs cannot be added, else 0.
    pub vips: u32,
}

impl Demote {
    /// The value advertised: the sum of every source, at most 255.
    pub fn total(self) -> u8 {
        u8::try_from(self.health.saturating_add(self.vips)).unwrap_or(u8::MAX)
    }
}

/// Retry state of VIPs that could not be added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct VipRetry {
    /// Failed attempts in a row (0: the last attempt succeeded).
    pub(super) failures: u32,
    /// When to try again (as master) or, as backup, to lift the demote so
    /// that this host may take over and try again; `None`: nothing due.
    pub(super) due: Option<Nanos>,
}

impl VipRetry {
    /// The backoff after `failures` failures in a row: 100 ms, 200 ms, ...
    /// up to 30 s.
    pub(super) fn backoff(failures: u32) -> Nanos {
        let shift = failures.saturating_sub(1).min(20);
        Nanos::from_millis((VIP_RETRY_FIRST_MS << shift).min(VIP_RETRY_MAX_MS))
    }

    /// We are no longer master (`now`). A pending retry is dropped; while
    /// demoted for VIPs, the demote is lifted only after the hold (see
    /// [`VIP_DEMOTE_HOLD_MS`]), when `due` comes.
    pub(super) fn left_master(&mut self, now: Nanos, demoted: bool) {
        self.due = demoted.then(|| {
            let hold = Nanos::from_millis(VIP_DEMOTE_HOLD_MS).max(Self::backoff(self.failures));
            now.saturating_add(hold)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demote_is_the_saturated_sum_of_its_sources() {
        assert_eq!(Demote::default().total(), 0);
        let d = Demote {
            health: 30,
            vips: 0,
        };
        assert_eq!(d.total(), 30);
        let d = Demote {
            health: 30,
            vips: VIP_FAILURE_DEMOTE,
        };
        assert_eq!(d.total(), 255);
        let d = Demote {
            health: u32::MAX,
            vips: 1,
        };
        assert_eq!(d.total(), 255);
    }

    #[test]
    fn demote_is_held_after_another_host_took_over() {
        let now = Nanos::from_secs(100);
        let mut r = VipRetry {
            failures: 2,
            due: Some(Nanos::from_millis(100_200)),
        };
        r.left_master(now, true);
        assert_eq!(
            r.due,
            Some(Nanos::from_millis(100_000 + VIP_DEMOTE_HOLD_MS))
        );
        r.failures = 10;
        r.left_master(now, true);
        assert_eq!(r.due, Some(Nanos::from_millis(100_000 + VIP_RETRY_MAX_MS)));
        // Not demoted (one failure so far): the retry is dropped.
        r.left_master(now, false);
        assert_eq!(r.due, None);
        assert_eq!(r.failures, 10, "the backoff goes on growing");
    }

    #[test]
    fn vip_retry_backoff_doubles_up_to_its_bound() {
        let ms = |n| VipRetry::backoff(n).0 / 1_000_000;
        assert_eq!([ms(1), ms(2), ms(3), ms(4)], [100, 200, 400, 800]);
        assert_eq!(ms(9), 25_600);
        assert_eq!(ms(10), VIP_RETRY_MAX_MS);
        assert_eq!(ms(u32::MAX), VIP_RETRY_MAX_MS);
    }
}
