//! Record linkage: Fellegi–Sunter with blocking on phoneme keys (and birth year when present),
//! m/u probabilities estimated by EM on the candidate pairs, and clustering of duplicates.

use crate::compare::{Prepared, key_score, prepare, score};
use crate::key::NameKey;
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// One record to link: an id, a name in any script, and a birth year if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub birth_year: Option<i32>,
}

struct Prep {
    name: Prepared,
    year: Option<i32>,
    blocks: Vec<u64>,
}

/// Readings of a name used for blocking.
const BLOCKING_READINGS: usize = 4;

fn hash<T: Hash>(value: T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Blocking keys: the whole key; the given name with the birth year; the surname, the first
/// given syllable and the birth year. A typo in one part still meets the other blocks.
pub fn blocking_keys(key: &NameKey, year: Option<i32>) -> Vec<u64> {
    let mut v = vec![hash((0u8, &key.family, &key.given))];
    if let Some(y) = year {
        v.push(hash((1u8, &key.given, y)));
        v.push(hash((2u8, &key.family, key.given.first(), y)));
    }
    v
}

fn prep(r: &Record) -> Prep {
    let name = prepare(&r.name);
    let mut blocks: Vec<u64> = name
        .candidates
        .iter()
        .take(BLOCKING_READINGS)
        .flat_map(|c| blocking_keys(&c.key, r.birth_year))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    Prep {
        name,
        year: r.birth_year,
        blocks,
    }
}

/// Levels of the comparison vector.
const NAME_LEVELS: usize = 3;
const YEAR_LEVELS: usize = 4;

fn name_level(s: f64) -> usize {
    if s >= 0.95 {
        0
    } else if s >= 0.85 {
        1
    } else {
        2
    }
}

fn year_level(a: Option<i32>, b: Option<i32>) -> usize {
    match (a, b) {
        (Some(x), Some(y)) if x == y => 0,
        (Some(x), Some(y)) if (x - y).abs() == 1 => 1,
        (Some(_), Some(_)) => 2,
        _ => 3,
    }
}

/// Fewest candidate pairs for which the m/u probabilities are estimated rather than assumed.
const MIN_PAIRS_FOR_EM: f64 = 200.0;

/// Fellegi–Sunter parameters: the share of true matches among candidate pairs, and for each
/// comparison its level probabilities among matches (m) and non-matches (u).
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub prior: f64,
    pub m_name: [f64; NAME_LEVELS],
    pub u_name: [f64; NAME_LEVELS],
    pub m_year: [f64; YEAR_LEVELS],
    pub u_year: [f64; YEAR_LEVELS],
    /// Whether EM estimated these from the data (false: too few pairs, starting values kept).
    pub estimated: bool,
}

impl Default for Model {
    /// A starting point for EM: matches mostly agree, non-matches mostly do not.
    fn default() -> Self {
        Self {
            prior: 0.1,
            m_name: [0.85, 0.12, 0.03],
            u_name: [0.05, 0.15, 0.80],
            m_year: [0.80, 0.05, 0.05, 0.10],
            u_year: [0.10, 0.15, 0.65, 0.10],
            estimated: false,
        }
    }
}

impl Model {
    /// Log-odds (base 2) that a pair with these levels is a match: the prior odds plus each
    /// comparison's match weight. Unlike the probability it does not saturate, so it ranks.
    pub fn weight(&self, name: usize, year: usize) -> f64 {
        let g = |a: &[f64], i: usize| a.get(i).copied().unwrap_or(1e-9).max(1e-9);
        (self.prior / (1.0 - self.prior)).log2()
            + (g(&self.m_name, name) / g(&self.u_name, name)).log2()
            + (g(&self.m_year, year) / g(&self.u_year, year)).log2()
    }

    /// Probability that a pair with these levels is a match.
    pub fn probability(&self, name: usize, year: usize) -> f64 {
        1.0 / (1.0 + (-self.weight(name, year)).exp2())
    }

    /// u probabilities from pairs drawn at random (almost all non-matches), as Splink and the
    /// Fellegi–Sunter literature do: the blocked pairs are not a fair sample of non-matches.
    fn with_u_from(mut self, random_counts: &[[f64; YEAR_LEVELS]; NAME_LEVELS]) -> Self {
        let total: f64 = random_counts.iter().flatten().sum();
        if total < MIN_PAIRS_FOR_EM {
            return self;
        }
        for n in 0..NAME_LEVELS {
            let c: f64 = random_counts.get(n).map_or(0.0, |row| row.iter().sum());
            if let Some(u) = self.u_name.get_mut(n) {
                *u = (c / total).max(1e-6);
            }
        }
        for y in 0..YEAR_LEVELS {
            let c: f64 = random_counts.iter().filter_map(|row| row.get(y)).sum();
            if let Some(u) = self.u_year.get_mut(y) {
                *u = (c / total).max(1e-6);
            }
        }
        self
    }

    /// EM over the counts of each (name level, year level) pattern among candidate pairs; with
    /// `fixed_u`, only the prior and the m probabilities are estimated.
    pub fn fit(counts: &[[f64; YEAR_LEVELS]; NAME_LEVELS], iterations: usize) -> Self {
        Self::fit_from(Self::default(), counts, iterations, false)
    }

    fn fit_from(
        start: Self,
        counts: &[[f64; YEAR_LEVELS]; NAME_LEVELS],
        iterations: usize,
        fixed_u: bool,
    ) -> Self {
        let mut model = start;
        let total: f64 = counts.iter().flatten().sum();
        // With a handful of pairs EM has nothing to learn from; keep the starting values.
        if total < MIN_PAIRS_FOR_EM {
            return model;
        }
        for _ in 0..iterations {
            let mut next = Model {
                prior: 0.0,
                m_name: [0.0; NAME_LEVELS],
                u_name: [0.0; NAME_LEVELS],
                m_year: [0.0; YEAR_LEVELS],
                u_year: [0.0; YEAR_LEVELS],
                estimated: true,
            };
            let (mut sum_m, mut sum_u) = (0.0, 0.0);
            for (n, row) in counts.iter().enumerate() {
                for (y, c) in row.iter().enumerate() {
                    let p = model.probability(n, y);
                    let (wm, wu) = (c * p, c * (1.0 - p));
                    sum_m += wm;
                    sum_u += wu;
                    if let Some(x) = next.m_name.get_mut(n) {
                        *x += wm;
                    }
                    if let Some(x) = next.u_name.get_mut(n) {
                        *x += wu;
                    }
                    if let Some(x) = next.m_year.get_mut(y) {
                        *x += wm;
                    }
                    if let Some(x) = next.u_year.get_mut(y) {
                        *x += wu;
                    }
                }
            }
            let norm = |a: &mut [f64], s: f64| {
                a.iter_mut()
                    .for_each(|x| *x = (*x / s.max(1e-12)).max(1e-6))
            };
            norm(&mut next.m_name, sum_m);
            norm(&mut next.u_name, sum_u);
            norm(&mut next.m_year, sum_m);
            norm(&mut next.u_year, sum_u);
            if fixed_u {
                // u from random pairs, and the prior from the rule that a record has at most one
                // match: left to EM, both drift towards calling every candidate pair a match.
                next.u_name = model.u_name;
                next.u_year = model.u_year;
                next.prior = model.prior;
            } else {
                next.prior = (sum_m / total).clamp(1e-6, 1.0 - 1e-6);
            }
            model = next;
        }
        model
    }
}

/// A proposed link: indices into the left and right lists, the match weight (log2 odds) and
/// probability, and the name score behind them.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub left: usize,
    pub right: usize,
    pub weight: f64,
    pub probability: f64,
    pub name_score: f64,
}

/// Random pairs drawn to estimate u.
const RANDOM_PAIRS: usize = 100_000;
/// Fewest possible pairs for which u is estimated from random pairs.
const MIN_RANDOM_SPACE: usize = 1_000_000;

/// Level counts over random pairs (deterministic: a fixed linear congruential sequence).
fn random_counts(left: &[Prep], right: &[Prep]) -> [[f64; YEAR_LEVELS]; NAME_LEVELS] {
    let mut counts = [[0.0; YEAR_LEVELS]; NAME_LEVELS];
    // Too few possible pairs to say anything about non-matches: keep the starting values.
    if left.len().saturating_mul(right.len()) < MIN_RANDOM_SPACE {
        return counts;
    }
    let pairs: Vec<(usize, usize)> = (0..RANDOM_PAIRS as u64)
        .map(|k| {
            let x = k
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (
                (x >> 33) as usize % left.len(),
                (x >> 11) as usize % right.len(),
            )
        })
        .collect();
    let levels: Vec<(usize, usize)> = pairs
        .par_iter()
        .filter_map(|(i, j)| {
            let (l, r) = (left.get(*i)?, right.get(*j)?);
            let s = if key_score(&l.name, &r.name) < KEY_FLOOR {
                0.0
            } else {
                score(&l.name, &r.name)
            };
            Some((name_level(s), year_level(l.year, r.year)))
        })
        .collect();
    for (n, y) in levels {
        if let Some(c) = counts.get_mut(n).and_then(|row| row.get_mut(y)) {
            *c += 1.0;
        }
    }
    counts
}

/// Key score below which the spelling part is not computed (the pair cannot reach a link).
const KEY_FLOOR: f64 = 0.6;

/// Candidate pairs from shared blocks, scored. `same_list` skips a record paired with itself
/// and each unordered pair's second occurrence.
fn candidate_pairs(
    left: &[Prep],
    right: &[Prep],
    same_list: bool,
) -> Vec<(usize, usize, f64, usize)> {
    let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
    for (j, r) in right.iter().enumerate() {
        for b in &r.blocks {
            index.entry(*b).or_default().push(j as u32);
        }
    }
    left.par_iter()
        .enumerate()
        .flat_map_iter(|(i, l)| {
            let mut seen: Vec<u32> = l
                .blocks
                .iter()
                .filter_map(|b| index.get(b))
                .flatten()
                .copied()
                .filter(|j| !same_list || (*j as usize) > i)
                .collect();
            seen.sort_unstable();
            seen.dedup();
            seen.into_iter().filter_map(move |j| {
                let r = right.get(j as usize)?;
                if key_score(&l.name, &r.name) < KEY_FLOOR {
                    return None;
                }
                let s = score(&l.name, &r.name);
                Some((i, j as usize, s, year_level(l.year, r.year)))
            })
        })
        .collect()
}

/// Links two lists: for each left record, the right records whose match probability reaches
/// `threshold`, best first, at most `top` of them; and the fitted model.
pub fn link(left: &[Record], right: &[Record], threshold: f64, top: usize) -> (Vec<Link>, Model) {
    let lp: Vec<Prep> = left.par_iter().map(prep).collect();
    let rp: Vec<Prep> = right.par_iter().map(prep).collect();
    links(&lp, &rp, threshold, top, false)
}

fn links(
    lp: &[Prep],
    rp: &[Prep],
    threshold: f64,
    top: usize,
    same_list: bool,
) -> (Vec<Link>, Model) {
    let pairs = candidate_pairs(lp, rp, same_list);
    let mut counts = [[0.0; YEAR_LEVELS]; NAME_LEVELS];
    for (_, _, s, y) in &pairs {
        if let Some(c) = counts
            .get_mut(name_level(*s))
            .and_then(|row| row.get_mut(*y))
        {
            *c += 1.0;
        }
    }
    let total: f64 = counts.iter().flatten().sum();
    let mut start = Model::default().with_u_from(&random_counts(lp, rp));
    if total >= MIN_PAIRS_FOR_EM {
        start.prior = (lp.len().min(rp.len()) as f64 / total).clamp(1e-6, 0.5);
    }
    let model = if total < MIN_PAIRS_FOR_EM {
        start
    } else {
        Model::fit_from(start, &counts, 30, true)
    };
    let mut out: Vec<Link> = pairs
        .into_iter()
        .map(|(i, j, s, y)| {
            let w = model.weight(name_level(s), y);
            Link {
                left: i,
                right: j,
                weight: w,
                probability: model.probability(name_level(s), y),
                name_score: s,
            }
        })
        .filter(|l| l.probability >= threshold)
        .collect();
    // Best first within each left record: by match weight, then by name score.
    out.sort_by(|a, b| {
        a.left
            .cmp(&b.left)
            .then(b.weight.total_cmp(&a.weight))
            .then(b.name_score.total_cmp(&a.name_score))
    });
    let mut kept = Vec::with_capacity(out.len());
    let mut current = usize::MAX;
    let mut n = 0;
    for l in out {
        if l.left != current {
            current = l.left;
            n = 0;
        }
        if n < top {
            kept.push(l);
            n += 1;
        }
    }
    (kept, model)
}

/// Groups of records in one list that are taken for the same person (linked pairs joined
/// transitively); singletons are left out.
pub fn clusters(records: &[Record], threshold: f64) -> Vec<Vec<usize>> {
    let p: Vec<Prep> = records.par_iter().map(prep).collect();
    let (pairs, _) = links(&p, &p, threshold, usize::MAX, true);
    let mut parent: Vec<usize> = (0..records.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while let Some(&p) = parent.get(x) {
            if p == x {
                break;
            }
            let grand = parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = parent.get_mut(x) {
                *slot = grand;
            }
            x = p;
        }
        x
    }
    for l in &pairs {
        let (a, b) = (find(&mut parent, l.left), find(&mut parent, l.right));
        if a != b
            && let Some(slot) = parent.get_mut(a.max(b))
        {
            *slot = a.min(b);
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..records.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str, year: Option<i32>) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            birth_year: year,
        }
    }

    #[test]
    fn lists_in_different_scripts_are_linked_and_strangers_are_not() {
        let left = vec![
            rec("L1", "리한검", Some(2001)),
            rec("L2", "박봉주", Some(1999)),
            rec("L3", "김철남", None),
        ];
        let right = vec![
            rec("R1", "Ri Han Gom", Some(2001)),
            rec("R2", "Pak Pong Su", Some(1990)),
            rec("R3", "Ли Хан Гом", None),
            rec("R4", "Pak Pong Ju", Some(1999)),
            rec("R5", "Choe Ryong Hae", Some(1950)),
        ];
        let (links, model) = link(&left, &right, 0.5, 3);
        let pairs: Vec<(&str, &str)> = links
            .iter()
            .map(|l| (left[l.left].id.as_str(), right[l.right].id.as_str()))
            .collect();
        assert!(pairs.contains(&("L1", "R1")), "{pairs:?}");
        assert!(pairs.contains(&("L1", "R3")), "{pairs:?}");
        assert!(pairs.contains(&("L2", "R4")), "{pairs:?}");
        assert!(!pairs.contains(&("L2", "R2")), "{pairs:?}");
        assert!(!pairs.iter().any(|(l, _)| *l == "L3"), "{pairs:?}");
        assert!(model.m_name[0] > model.u_name[0]);
    }

    #[test]
    fn duplicates_within_one_list_are_clustered() {
        let list = vec![
            rec("a", "리한검", Some(2001)),
            rec("b", "Ri Han Gom", Some(2001)),
            rec("c", "Rhee Han-geom", Some(2001)),
            rec("d", "Pak Pong Ju", Some(1999)),
            rec("e", "김철남", Some(1988)),
            rec("f", "Ким Чхоль Нам", Some(1988)),
        ];
        let c = clusters(&list, 0.5);
        assert_eq!(c, vec![vec![0, 1, 2], vec![4, 5]]);
    }

    #[test]
    fn em_learns_that_agreeing_names_mark_matches() {
        let mut counts = [[0.0; YEAR_LEVELS]; NAME_LEVELS];
        counts[0][0] = 900.0;
        counts[0][3] = 100.0;
        counts[2][2] = 9000.0;
        counts[1][2] = 500.0;
        let m = Model::fit(&counts, 50);
        assert!(m.probability(0, 0) > 0.99);
        assert!(m.probability(2, 2) < 0.01);
        assert!((m.prior - 0.1).abs() < 0.05, "{}", m.prior);
    }
}
