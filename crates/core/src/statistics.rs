//! Counts of captives for reports (DESIGN, "Security" 6: small numbers identify). A count
//! smaller than `k` is never given; nor is any count that, taken from the total with the others
//! given, would tell how many are in a group smaller than `k`: the counts left out of a table
//! add up to none or to at least `k`.
//!
//! Each table counts the captives held or once held (erased ones are not counted) by one thing
//! the public record says of them: the power they depend on, their state, where they are held.
//! No table crosses two of them.

use crate::law::{Case, Custody};
use serde::Serialize;
use std::collections::BTreeMap;

/// One count of a table: how many captives have `value`, or `None` when it is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub value: String,
    pub count: Option<u64>,
}

/// Captives counted by one thing said of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Table {
    /// What they are counted by: `power`, `state` or `place`.
    pub by: &'static str,
    pub cells: Vec<Cell>,
}

/// A report: how many captives (left out when fewer than `k`), and the tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statistics {
    /// The least count given.
    pub k: u64,
    pub captives: Option<u64>,
    pub tables: Vec<Table>,
}

/// The counts of a report, taken captive by captive.
#[derive(Default)]
pub struct Tally {
    captives: u64,
    power: BTreeMap<String, u64>,
    state: BTreeMap<String, u64>,
    place: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts `c` (an erased captive is not counted: his case is closed).
    pub fn add(&mut self, c: &Case) {
        if c.erased {
            return;
        }
        self.captives += 1;
        *self.power.entry(c.power.clone()).or_default() += 1;
        let (state, place) = match (&c.end, c.escaped, &c.custody) {
            (Some(end), _, _) => (end.describe(), None),
            (None, true, _) => ("escaped".to_string(), None),
            (None, false, Custody::Captured) => ("captured".to_string(), None),
            (None, false, Custody::Registered) => ("registered".to_string(), None),
            (None, false, Custody::InTransit(p)) => ("in transit".to_string(), Some(p)),
            (None, false, Custody::Interned(p)) => ("interned".to_string(), Some(p)),
            (None, false, Custody::Hospitalised(p)) => ("hospitalised".to_string(), Some(p)),
        };
        *self.state.entry(state).or_default() += 1;
        if let Some(p) = place {
            *self.place.entry(p.clone()).or_default() += 1;
        }
    }

    /// The report, no count smaller than `k` given (`k` is at least 2: settings refuse less).
    pub fn report(self, k: u64) -> Statistics {
        let captives = self.captives;
        let table = |by, counts: BTreeMap<String, u64>| Table {
            by,
            cells: suppress(counts, k),
        };
        Statistics {
            k,
            captives: (captives >= k).then_some(captives),
            tables: vec![
                table("power", self.power),
                table("state", self.state),
                table("place", self.place),
            ],
        }
    }
}

/// The cells of one table: a count smaller than `k` is left out; then, while what is left out
/// adds up to fewer than `k` (and more than none), the smallest count given is left out too, so
/// that the table's total, less the counts given, tells no group smaller than `k`. A table of
/// fewer than `k` in all gives nothing.
pub fn suppress(counts: BTreeMap<String, u64>, k: u64) -> Vec<Cell> {
    let mut cells: Vec<(String, u64, bool)> = counts
        .into_iter()
        .map(|(value, n)| (value, n, n < k))
        .collect();
    loop {
        let hidden: u64 = cells.iter().filter(|c| c.2).map(|c| c.1).sum();
        if hidden == 0 || hidden >= k {
            break;
        }
        let smallest = cells
            .iter_mut()
            .filter(|c| !c.2)
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        match smallest {
            Some(c) => c.2 = true,
            None => break,
        }
    }
    cells
        .into_iter()
        .map(|(value, n, hidden)| Cell {
            value,
            count: (!hidden).then_some(n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the counts: every count given is at least k and is the true count; what is
        /// left out adds up to none or to at least k; and only as much is left out as that
        /// needs (leaving out one count fewer, the smallest of those left out at least k, would
        /// break it).
        #[test]
        fn no_count_given_or_worked_out_is_smaller_than_k(
            counts in proptest::collection::btree_map("[A-Z]{2}", 1u64..30, 0..12),
            k in 2u64..10,
        ) {
            let cells = suppress(counts.clone(), k);
            prop_assert_eq!(cells.len(), counts.len());
            let mut hidden = Vec::new();
            for c in &cells {
                match c.count {
                    Some(n) => {
                        prop_assert!(n >= k, "{:?}", cells);
                        prop_assert_eq!(Some(&n), counts.get(&c.value));
                    }
                    None => hidden.push(counts[&c.value]),
                }
            }
            let sum: u64 = hidden.iter().sum();
            let total: u64 = counts.values().sum();
            prop_assert!(sum == 0 || sum >= k || sum == total, "{:?} k {}", cells, k);
            if total >= k {
                prop_assert!(sum == 0 || sum >= k, "{:?} k {}", cells, k);
            }
            // Each count left out that was at least k was needed: without the last of them
            // (the largest), what is left out would add up to fewer than k.
            let forced: Vec<u64> = hidden.iter().copied().filter(|&n| n >= k).collect();
            if let Some(&largest) = forced.iter().max() {
                let without = sum - largest;
                prop_assert!(without > 0 && without < k, "{:?} k {}", cells, k);
            }
        }
    }

    #[test]
    fn a_small_group_is_not_told_by_the_total() {
        let counts = BTreeMap::from([("KP".to_string(), 8), ("RU".to_string(), 3)]);
        // RU (3) is left out; so is KP, or 11 − 8 would tell RU's 3.
        let cells = suppress(counts, 5);
        assert!(cells.iter().all(|c| c.count.is_none()), "{cells:?}");
        let counts = BTreeMap::from([
            ("KP".to_string(), 8),
            ("RU".to_string(), 3),
            ("CN".to_string(), 2),
            ("BY".to_string(), 6),
        ]);
        // 3 + 2 left out add up to 5: nothing more is.
        let cells = suppress(counts, 5);
        let given: Vec<(&str, Option<u64>)> =
            cells.iter().map(|c| (c.value.as_str(), c.count)).collect();
        assert_eq!(
            given,
            [("BY", Some(6)), ("CN", None), ("KP", Some(8)), ("RU", None)]
        );
    }
}
