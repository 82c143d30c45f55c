//! Per-reason receive counters, summed over CPUs (XDP) or kept in userspace
//! (fallback path).

use carp_common::reason::{Reason, REASON_COUNT};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One total per [`Reason`], indexed by the reason's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; REASON_COUNT as usize]);

impl Counters {
    /// The total for one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize]
    }

    /// Adds one to a reason's total.
    pub fn bump(&mut self, reason: Reason) {
        self.0[reason as usize] += 1;
    }

    /// Adds another set of totals to this one.
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// What each total grew by since `before` (totals only grow; a total
    /// below `before`'s counts as 0).
    pub fn since(&self, before: &Counters) -> Counters {
        let mut d = Counters::default();
        for (d, (a, b)) in d.0.iter_mut().zip(self.0.iter().zip(before.0)) {
            *d = a.saturating_sub(b);
        }
        d
    }

    /// Sum of every drop reason (all but `delivered`).
    pub fn dropped(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| **r != Reason::Delivered)
            .map(|r| self.get(*r))
            .sum()
    }

    /// (name, total) pairs in counter order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Reason::ALL.iter().map(|r| (r.name(), self.get(*r)))
    }
}

impl Serialize for Counters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(REASON_COUNT as usize))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_every_reason_by_name() {
        let mut c = Counters::default();
        c.bump(Reason::Ttl);
        c.bump(Reason::Ttl);
        c.bump(Reason::Delivered);
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["ttl"], 2);
        assert_eq!(json["delivered"], 1);
        assert_eq!(json.as_object().unwrap().len(), REASON_COUNT as usize);
        assert_eq!(c.dropped(), 2);
    }
}
