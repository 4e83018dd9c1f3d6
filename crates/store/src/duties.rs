//! Every captive's open duties (G8), kept between requests and brought up to date from the
//! events written since it last looked, by this process or any other: a page of deadlines then
//! reads the law state of the captives whose records changed, not of every captive.
//!
//! It is derived from the log alone and kept in memory: nothing is stored that `ledger verify`
//! or `rebuild` must know of. It keeps what a page needs and no more: each open duty's dates and,
//! for a decision to repatriate that G1 stops, why; and of each captive, the states he was
//! referred to, which decide whether a receiving state sees him
//! ([`asylon_core::policy::referred_to`]): a receiving state's listing of captives is read from
//! them too ([`Duties::referred_after`]).
//!
//! A captive's law state is folded from his own records alone (those about no one, places and
//! exchange lists, never change it): so the captives with records written since it last looked
//! are the only ones whose duties can have changed.

use crate::StoreError;
use crate::db::args;
use crate::law::each_case;
use crate::registry::Registry;
use asylon_core::kind;
use asylon_core::law::{
    Case, Deadline, DeadlineCursor, DeadlineKind, DeadlineStatus, Principal, Settings, deadlines,
};
use asylon_core::policy::{CoreScope, core_scope, referred_to};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use time::{Date, OffsetDateTime};

/// Captives whose records one query reads at most when catching up with those written since it
/// last looked (the first look reads every captive in one query, one captive after another).
const CATCH_UP_BATCH: usize = 1000;

/// A duty's place in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    due: Date,
    case: Arc<str>,
    kind: DeadlineKind,
}

/// [`asylon_core::law::deadline_order`]: due date, then case number (as
/// [`asylon_core::law::by_case_number`] orders them), then kind.
impl Ord for Place {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due
            .cmp(&other.due)
            .then_with(|| asylon_core::law::by_case_number(&self.case, &other.case))
            .then_with(|| self.kind.cmp(&other.kind))
    }
}

impl PartialOrd for Place {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A case number ordered as [`asylon_core::law::by_case_number`] orders them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ByNumber(Arc<str>);

impl Ord for ByNumber {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        asylon_core::law::by_case_number(&self.0, &other.0)
    }
}

impl PartialOrd for ByNumber {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What a page tells of a duty besides its place.
#[derive(Clone, Copy)]
struct Owed {
    since: Date,
    /// A guard stops it ([`Owing::waived`] says why).
    waived: bool,
}

/// Where one open duty of a captive is in the list.
struct Open {
    kind: DeadlineKind,
    due: Date,
}

/// What is kept of a captive who owes at least one duty or was referred to a state (boxed
/// slices: a million captives are kept at once).
struct Owing {
    duties: Box<[Open]>,
    /// The duties a guard stops, and why.
    waived: Box<[(DeadlineKind, Box<str>)]>,
    /// The states he was referred to, each once.
    referred: Box<[Box<str>]>,
}

/// What is kept of one captive who owes duties.
struct Kept {
    case: Arc<str>,
    his: Owing,
    /// His duties' places in the list.
    places: Vec<(Place, Owed)>,
}

/// The open duties of every captive, as of the last event it read.
pub struct Duties {
    settings: Settings,
    /// The last event read: its sequence number and id (`None` before the first).
    read: Option<(i64, String)>,
    owing: HashMap<Arc<str>, Owing, foldhash::fast::RandomState>,
    order: BTreeMap<Place, Owed>,
    /// Receiving state → the captives referred to it, in the order of their numbers.
    referred: HashMap<Box<str>, BTreeSet<ByNumber>>,
}

impl Duties {
    /// None known yet: the first [`Duties::catch_up`] reads every captive. Due dates are those
    /// of `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            read: None,
            owing: HashMap::default(),
            order: BTreeMap::new(),
            referred: HashMap::new(),
        }
    }

    /// Whether the log has been read into them at least once (a page now reads only what came
    /// since).
    pub fn is_read(&self) -> bool {
        self.read.is_some()
    }

    /// Reads what `reg`'s log has gained since it last looked. A log that no longer holds the
    /// event it last read, as that event was (a registry restored from a backup under it), is
    /// read again from its start. After an error the next call reads again every captive this
    /// one was to read.
    pub fn catch_up(&mut self, reg: &Registry) -> Result<(), StoreError> {
        let conn = &*reg.conn;
        if let Some((seq, id)) = &self.read {
            let held = conn
                .one("SELECT id FROM events WHERE seq = ?1", args![*seq])?
                .map(|r| r.text(0))
                .transpose()?;
            if held.as_deref() != Some(id.as_str()) {
                *self = Self::new(self.settings.clone());
            }
        }
        let Some(last) = conn
            .one("SELECT seq, id FROM events ORDER BY seq DESC LIMIT 1", &[])?
            .map(|r| Ok::<_, StoreError>((r.i64(0)?, r.text(1)?)))
            .transpose()?
        else {
            return Ok(());
        };
        let Some((after, _)) = &self.read else {
            // Everyone, one after another; the maps are built once all are read (in the order
            // they come, nearly the list's, a map is built in one pass).
            let (mut owing, mut order) = (Vec::new(), Vec::new());
            each_case(conn, &reg.keys, None, |case, state| {
                if let Some(kept) = self.duties_of(case, state) {
                    order.extend(kept.places);
                    owing.push((kept.case, kept.his));
                }
            })?;
            self.order = order.into_iter().collect();
            for (key, his) in &owing {
                self.note_referrals(key, his);
            }
            self.owing = owing.into_iter().collect();
            self.read = Some(last);
            return Ok(());
        };
        // The captives with a law record (registration, correction, erasure, a law command)
        // among the events read now; records of reads and searches change no one's duties.
        let mut touched = Vec::new();
        conn.each(
            "SELECT DISTINCT person FROM events WHERE seq > ?1 AND seq <= ?2 \
             AND person IS NOT NULL AND (kind IN (?3, ?4, ?5) OR kind LIKE 'case.%')",
            args![
                *after,
                last.0,
                kind::PERSON_REGISTERED,
                kind::PERSON_AMENDED,
                kind::PERSON_ERASED
            ],
            &mut |r| {
                touched.push(r.text(0)?);
                Ok(())
            },
        )?;
        for batch in touched.chunks(CATCH_UP_BATCH) {
            let persons: Vec<&str> = batch.iter().map(String::as_str).collect();
            // What was known of each goes first: one whose records hold no registration (a log
            // is read as it is) is handed on by no one, and owes nothing.
            for case in &persons {
                self.forget(case);
            }
            each_case(conn, &reg.keys, Some(&persons), |case, state| {
                if let Some(kept) = self.duties_of(case, state) {
                    self.order.extend(kept.places);
                    self.note_referrals(&kept.case, &kept.his);
                    self.owing.insert(kept.case, kept.his);
                }
            })?;
        }
        self.read = Some(last);
        Ok(())
    }

    /// What is kept of `case` in his state `c`, and his duties' places in the list; `None` if
    /// he owes none.
    fn duties_of(&self, case: &str, c: &Case) -> Option<Kept> {
        // The day only tells due from overdue, which a page tells again on its own day.
        let owed = deadlines(c, &self.settings, OffsetDateTime::UNIX_EPOCH);
        let mut referred: Vec<Box<str>> = referred_to(c).map(Box::from).collect();
        if owed.is_empty() && referred.is_empty() {
            return None;
        }
        let key: Arc<str> = Arc::from(case);
        let mut places = Vec::with_capacity(owed.len());
        let (mut duties, mut waived) = (Vec::with_capacity(owed.len()), Vec::new());
        for d in owed {
            let stopped = match d.status {
                DeadlineStatus::Waived(why) => {
                    waived.push((d.kind, why.into()));
                    true
                }
                DeadlineStatus::Due | DeadlineStatus::Overdue => false,
            };
            let place = Place {
                due: d.due,
                case: Arc::clone(&key),
                kind: d.kind,
            };
            let since = d.since;
            places.push((
                place,
                Owed {
                    since,
                    waived: stopped,
                },
            ));
            duties.push(Open {
                kind: d.kind,
                due: d.due,
            });
        }
        referred.sort_unstable();
        referred.dedup();
        let his = Owing {
            duties: duties.into_boxed_slice(),
            waived: waived.into_boxed_slice(),
            referred: referred.into_boxed_slice(),
        };
        Some(Kept {
            case: key,
            his,
            places,
        })
    }

    /// Notes `case` among the captives of each state he was referred to.
    fn note_referrals(&mut self, case: &Arc<str>, his: &Owing) {
        for state in &his.referred {
            self.referred
                .entry(state.clone())
                .or_default()
                .insert(ByNumber(Arc::clone(case)));
        }
    }

    fn forget(&mut self, case: &str) {
        let Some((key, owing)) = self.owing.remove_entry(case) else {
            return;
        };
        for d in &owing.duties {
            self.order.remove(&Place {
                due: d.due,
                case: Arc::clone(&key),
                kind: d.kind,
            });
        }
        for state in &owing.referred {
            if let Some(cases) = self.referred.get_mut(state) {
                cases.remove(&ByNumber(Arc::clone(&key)));
                if cases.is_empty() {
                    self.referred.remove(state);
                }
            }
        }
    }

    /// The open duties of the captives `who` may see, at `now`, in
    /// [`asylon_core::law::deadline_order`], after `after` and, if `overdue`, only those past
    /// due: at most `limit` of them, and whether more follow.
    pub fn page(
        &self,
        who: &Principal,
        now: OffsetDateTime,
        overdue: bool,
        after: Option<&DeadlineCursor>,
        limit: usize,
    ) -> Result<(Vec<Deadline>, bool), StoreError> {
        let scope = core_scope(who).map_err(StoreError::Denied)?;
        let today = now.date();
        let start = after.map_or(Bound::Unbounded, |c| {
            Bound::Excluded(Place {
                due: c.due,
                case: Arc::from(c.case.as_str()),
                kind: c.kind,
            })
        });
        let referred: Vec<(Place, Owed)>;
        let places: Box<dyn Iterator<Item = (&Place, &Owed)> + '_> = match scope {
            CoreScope::Everyone => Box::new(self.order.range((start, Bound::Unbounded))),
            CoreScope::ReferredTo(state) => {
                referred = self.places_referred_to(state);
                Box::new(
                    referred
                        .iter()
                        .filter(move |(p, _)| match &start {
                            Bound::Excluded(s) => p > s,
                            _ => true,
                        })
                        .map(|(p, o)| (p, o)),
                )
            }
        };
        // In due order, the overdue come first.
        let mut listed = places
            .take_while(|(p, _)| !overdue || p.due < today)
            .map(|(p, o)| self.deadline(p, *o, today))
            .filter(|d| !overdue || d.status == DeadlineStatus::Overdue);
        let page: Vec<Deadline> = listed.by_ref().take(limit).collect();
        let more = listed.next().is_some();
        Ok((page, more))
    }

    /// Up to `limit` of the captives referred to `state` whose numbers come after `after` (from
    /// the first if `None`), in the order of their numbers.
    pub fn referred_after(&self, state: &str, after: Option<&str>, limit: usize) -> Vec<String> {
        let start = after.map_or(Bound::Unbounded, |a| {
            Bound::Excluded(ByNumber(Arc::from(a)))
        });
        self.referred
            .get(state)
            .into_iter()
            .flat_map(|cases| cases.range((start.clone(), Bound::Unbounded)))
            .take(limit)
            .map(|ByNumber(case)| case.to_string())
            .collect()
    }

    /// The duties of the captives referred to `state`, in order.
    fn places_referred_to(&self, state: &str) -> Vec<(Place, Owed)> {
        let mut places: Vec<(Place, Owed)> = self
            .referred
            .get(state)
            .into_iter()
            .flatten()
            .filter_map(|ByNumber(case)| self.owing.get(case).map(|o| (case, o)))
            .flat_map(|(case, o)| {
                o.duties.iter().map(|d| Place {
                    due: d.due,
                    case: Arc::clone(case),
                    kind: d.kind,
                })
            })
            .filter_map(|p| self.order.get(&p).map(|o| (p, *o)))
            .collect();
        places.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        places
    }

    /// The deadline at `p`, as of `today`.
    fn deadline(&self, p: &Place, owed: Owed, today: Date) -> Deadline {
        let waived = owed
            .waived
            .then(|| self.owing.get(&p.case))
            .flatten()
            .and_then(|o| o.waived.iter().find(|(kind, _)| *kind == p.kind))
            .map(|(_, why)| why.to_string());
        Deadline {
            case: p.case.to_string(),
            kind: p.kind,
            since: owed.since,
            due: p.due,
            status: DeadlineStatus::on(today, p.due, waived),
        }
    }
}
#[cfg(test)]
mod tests;
