//! The state the guards decide on, derived from the events.

use super::facts::{CustodyKind, Fact, FactBody, MovementKind, TribunalOutcome, Wish};
use super::{Guard, Settings};
use crate::{Actor, Class};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "place")]
pub enum Custody {
    Captured,
    Registered,
    InTransit(String),
    Interned(String),
    Hospitalised(String),
}

impl Custody {
    pub fn describe(&self) -> String {
        match self {
            Custody::Captured => "captured".into(),
            Custody::Registered => "registered".into(),
            Custody::InTransit(p) => format!("in transit ({p})"),
            Custody::Interned(p) => format!("interned ({p})"),
            Custody::Hospitalised(p) => format!("hospitalised ({p})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "end", content = "state")]
pub enum End {
    Repatriated,
    Exchanged,
    Transferred(String),
    Released,
    Deceased,
}

impl End {
    pub fn describe(&self) -> String {
        match self {
            End::Repatriated => "repatriated".into(),
            End::Exchanged => "exchanged".into(),
            End::Transferred(x) => format!("transferred to {x}"),
            End::Released => "released".into(),
            End::Deceased => "deceased".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interview {
    pub seq: u64,
    pub on: Date,
    pub org: String,
    pub private: bool,
    /// The interpreter came from the organisation that interviewed.
    pub own_interpreter: bool,
    /// `None` when the statements cannot be read (the person was erased).
    #[serde(skip)]
    pub wish: Option<Wish>,
    #[serde(skip)]
    pub fear: Option<bool>,
}

impl Interview {
    /// Private, by the neutral agency, with its own interpreter (Art 126; G2).
    pub fn is_neutral_private(&self) -> bool {
        self.org == NEUTRAL && self.private && self.own_interpreter
    }
}

/// His statements exist but can no longer be read (he was erased).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable;

pub const NEUTRAL: &str = "neutral";
pub const DETAINING: &str = "detaining";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum MovementStatus {
    Proposed,
    Approved,
    Suspended { guard: Guard, reason: String },
    Withdrawn { reason: String },
    Completed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Movement {
    pub id: String,
    pub kind: MovementKind,
    pub proposed_by: Actor,
    #[serde(with = "time::serde::rfc3339")]
    pub proposed_at: OffsetDateTime,
    pub approved_by: Option<Actor>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reconfirmed_at: Option<OffsetDateTime>,
    pub status: MovementStatus,
}

impl Movement {
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status,
            MovementStatus::Proposed | MovementStatus::Approved
        )
    }
}

/// The wish as others may see it: the derived outcome, never what was said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "wish")]
pub enum WishStatus {
    None,
    Stated(Wish),
    Verified(Wish),
    /// The latest interview changed the wish the one before it stated.
    Contested(Wish),
    /// Interviews exist but their statements cannot be read (erased).
    Unreadable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    pub case: String,
    pub power: String,
    /// The earliest day his recorded date of capture can mean: nothing about him happened
    /// before it.
    pub captured_on: Option<Date>,
    pub registered_on: Date,
    pub custody: Custody,
    pub end: Option<End>,
    pub escaped: bool,
    pub status_in_doubt: bool,
    pub tribunal: Option<TribunalOutcome>,
    pub held_for_proceedings: bool,
    pub seriously_wounded: bool,
    pub interviews: Vec<Interview>,
    /// Receiving state → its conditions.
    pub acceptances: BTreeMap<String, Option<String>>,
    /// Recipient → classes he agreed to share with it.
    pub consents: BTreeMap<String, BTreeSet<Class>>,
    pub movements: BTreeMap<String, Movement>,
    /// G8: since when each duty has been open.
    pub capture_card_due_since: Option<Date>,
    pub notification_due_since: Option<Date>,
    pub health_update_due_since: Option<Date>,
    pub commission_due_since: Option<Date>,
    pub last_seq: u64,
    /// His data keys were destroyed (`person erase`): his case is closed to the law, nothing
    /// more is recorded about him, and he owes no duty.
    pub erased: bool,
}

impl Case {
    fn new(case: String, power: String, captured_on: Option<Date>, registered_on: Date) -> Self {
        Self {
            case,
            power,
            captured_on,
            registered_on,
            custody: Custody::Registered,
            end: None,
            escaped: false,
            status_in_doubt: false,
            tribunal: None,
            held_for_proceedings: false,
            seriously_wounded: false,
            interviews: Vec::new(),
            acceptances: BTreeMap::new(),
            consents: BTreeMap::new(),
            movements: BTreeMap::new(),
            // Art 70: a capture card upon capture; Art 122: the bureau notifies at once.
            capture_card_due_since: Some(registered_on),
            notification_due_since: Some(registered_on),
            health_update_due_since: None,
            commission_due_since: None,
            last_seq: 0,
            erased: false,
        }
    }

    /// Interviews in the order they took place (date, then order of recording).
    pub fn interviews_in_order(&self) -> Vec<&Interview> {
        let mut v: Vec<&Interview> = self.interviews.iter().collect();
        v.sort_by_key(|i| (i.on, i.seq));
        v
    }

    /// The latest run of interviews that state the same wish, most recent last.
    fn latest_streak(&self) -> Option<(Wish, Vec<&Interview>)> {
        let ordered = self.interviews_in_order();
        let last = ordered.last()?;
        let wish = last.wish.clone()?;
        let streak: Vec<&Interview> = ordered
            .iter()
            .rev()
            .take_while(|i| i.wish.as_ref() == Some(&wish))
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Some((wish, streak))
    }

    /// The latest recorded wish; `Err` when interviews exist but cannot be read.
    pub fn latest_wish(&self) -> Result<Option<Wish>, Unreadable> {
        match self.interviews_in_order().last() {
            None => Ok(None),
            Some(i) => i.wish.clone().map(Some).ok_or(Unreadable),
        }
    }

    /// G2: is the wish `wish` verified? `Err` says in words what is missing.
    pub fn verify_wish(&self, wish: &Wish, s: &Settings) -> Result<(), String> {
        match self.latest_streak() {
            Some((w, streak)) if &w == wish => verify_streak(&streak, wish, s),
            Some((w, _)) => Err(format!(
                "the latest interview states the wish to {}, not to {}",
                w.describe(),
                wish.describe()
            )),
            None if self.interviews.is_empty() => Err(format!(
                "no interview states the wish to {}",
                wish.describe()
            )),
            None => Err("the interviews cannot be read".into()),
        }
    }

    /// G1: why he may not be handed to the power of origin, if he may not.
    pub fn protected_from_return(&self, s: &Settings) -> Option<String> {
        let ordered = self.interviews_in_order();
        let latest = ordered.last()?;
        let Some(wish) = &latest.wish else {
            return Some(
                "his interviews can no longer be read, so his wish cannot be known".into(),
            );
        };
        if *wish != Wish::Return {
            return Some(format!(
                "his latest recorded wish is to {}",
                wish.describe()
            ));
        }
        // A fear of persecution stands until a verified wish to return, all of it said after the
        // fear, clears it. An unreadable answer counts as fear.
        let last_fear = ordered.iter().rposition(|i| i.fear != Some(false))?;
        // The latest wish is to return, so the latest streak states return; only the part of it
        // said after the fear can clear the fear.
        let streak_len = self.latest_streak().map_or(0, |(_, streak)| streak.len());
        let after_fear: Vec<&Interview> = ordered
            .iter()
            .skip(ordered.len().saturating_sub(streak_len).max(last_fear + 1))
            .copied()
            .collect();
        if !after_fear.is_empty() && verify_streak(&after_fear, &Wish::Return, s).is_ok() {
            None
        } else {
            Some(
                "a fear of persecution he stated has not been cleared by a later verified wish to return"
                    .into(),
            )
        }
    }

    pub fn wish_status(&self, s: &Settings) -> WishStatus {
        let ordered = self.interviews_in_order();
        let Some(latest) = ordered.last() else {
            return WishStatus::None;
        };
        let Some(wish) = latest.wish.clone() else {
            return WishStatus::Unreadable;
        };
        if self.verify_wish(&wish, s).is_ok() {
            return WishStatus::Verified(wish);
        }
        let previous = ordered.len().checked_sub(2).and_then(|i| ordered.get(i));
        match previous.and_then(|p| p.wish.as_ref()) {
            Some(p) if *p != wish => WishStatus::Contested(wish),
            _ => WishStatus::Stated(wish),
        }
    }

    pub fn is_final(&self) -> bool {
        self.end.is_some()
    }
}

/// G2's rule over a run of interviews that all state `wish`.
fn verify_streak(streak: &[&Interview], wish: &Wish, s: &Settings) -> Result<(), String> {
    let mut missing = Vec::new();
    let n = streak.len() as u32;
    if n < s.interviews_needed {
        missing.push(format!(
            "{} {} the wish to {}; {} needed",
            count_words(n, "interview"),
            if n == 1 { "states" } else { "state" },
            wish.describe(),
            match s.interviews_needed {
                1 => "one is".to_string(),
                k => format!("{} are", count_words(k, "").trim_end_matches('s').trim()),
            }
        ));
    }
    if !streak.iter().any(|i| i.is_neutral_private()) {
        missing.push(
            "none of them was conducted privately by the neutral agency with its own interpreter"
                .to_string(),
        );
    }
    if let (Some(first), Some(last)) = (streak.first(), streak.last()) {
        let span = (last.on - first.on).whole_days();
        if span < i64::from(s.interview_span_days) {
            missing.push(format!(
                "the first and the last are {span} days apart; at least {} are needed",
                s.interview_span_days
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

fn count_words(n: u32, noun: &str) -> String {
    let num = match n {
        0 => "no".to_string(),
        1 => "one".to_string(),
        2 => "two".to_string(),
        3 => "three".to_string(),
        n => n.to_string(),
    };
    if n == 1 {
        format!("{num} {noun}")
    } else {
        format!("{num} {noun}s")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExchangeList {
    pub id: String,
    pub counterpart: String,
    pub finalised: bool,
    pub completed: bool,
}

/// Two case numbers as the registry writes them (`AS-` and at least six digits), in the order
/// of their numbers: AS-999999 before AS-1000000, which the order of their text puts between
/// AS-100000 and AS-100001. [`World::cases`] is kept in text order; whatever is told or
/// recorded case by case goes in this one.
pub fn by_case_number(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Everything the guards look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct World {
    /// Boxed: a `Case` is some 240 bytes, and a map's nodes hold room for eleven values while
    /// keeping about half of it filled; the deadlines of a million captives are read from a
    /// world of them all (870 → 690 MB at the peak of `asylon deadlines`).
    pub cases: BTreeMap<String, Box<Case>>,
    pub lists: BTreeMap<String, ExchangeList>,
    pub places: BTreeMap<String, CustodyKind>,
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, &time::format_description::well_known::Iso8601::DATE).ok()
}

impl World {
    /// A registration (recorded by the registry itself, outside the law commands): the power
    /// he depends on and the earliest day of his capture, from his public particulars.
    pub fn register(
        &mut self,
        case: &str,
        power: &str,
        captured_on: Option<Date>,
        at: OffsetDateTime,
        seq: u64,
    ) {
        let mut c = Case::new(case.to_string(), power.to_string(), captured_on, at.date());
        c.last_seq = seq;
        self.cases.insert(case.to_string(), Box::new(c));
    }

    /// A correction of his particulars (recorded by the registry itself, like a registration):
    /// the guards follow the power he is now recorded as depending on. The corrected record is
    /// owed to the neutral agency like any reportable change (Art 122), so the notification duty
    /// opens if it was not open.
    pub fn amend(
        &mut self,
        case: &str,
        power: &str,
        captured_on: Option<Date>,
        at: OffsetDateTime,
        seq: u64,
    ) {
        if let Some(c) = self.cases.get_mut(case) {
            c.power = power.to_string();
            c.captured_on = captured_on;
            c.notification_due_since.get_or_insert(at.date());
            c.last_seq = seq;
        }
    }

    /// An erasure (recorded by the registry itself): his case closes.
    pub fn erase(&mut self, case: &str, seq: u64) {
        if let Some(c) = self.cases.get_mut(case) {
            c.erased = true;
            c.last_seq = seq;
        }
    }

    /// Folds one recorded fact into the state. Facts were checked when decided; applying one that
    /// does not fit (a replay of a damaged log) leaves the state as it was.
    pub fn apply(&mut self, fact: &Fact, actor: &Actor, at: OffsetDateTime, seq: u64) {
        use FactBody::*;
        let today = at.date();
        match &fact.body {
            PlaceDefined { place, kind } => {
                self.places.insert(place.clone(), *kind);
            }
            ExchangeListCreated { list, counterpart } => {
                self.lists.insert(
                    list.clone(),
                    ExchangeList {
                        id: list.clone(),
                        counterpart: counterpart.clone(),
                        finalised: false,
                        completed: false,
                    },
                );
            }
            ExchangeListFinalised { list } => {
                if let Some(l) = self.lists.get_mut(list) {
                    l.finalised = true;
                }
            }
            ExchangeListCompleted { list } => {
                if let Some(l) = self.lists.get_mut(list) {
                    l.completed = true;
                }
            }
            _ => {}
        }
        let Some(case) = fact.body.case().and_then(|c| self.cases.get_mut(c)) else {
            return;
        };
        case.last_seq = seq;
        match &fact.body {
            CustodyMoved {
                place, kind, on, ..
            } => {
                let on = parse_date(on).unwrap_or(today);
                case.custody = match kind {
                    CustodyKind::Transit => Custody::InTransit(place.clone()),
                    CustodyKind::Camp => Custody::Interned(place.clone()),
                    CustodyKind::Hospital => Custody::Hospitalised(place.clone()),
                };
                // Art 70: a new card within a week of arrival at any camp or hospital;
                // Art 122: transfers and hospital admissions are notified.
                case.capture_card_due_since = Some(on);
                case.notification_due_since.get_or_insert(on);
            }
            CaptureCardIssued { .. } => case.capture_card_due_since = None,
            NotificationSent { .. } => case.notification_due_since = None,
            StatusDoubted { .. } => case.status_in_doubt = true,
            TribunalDecided { outcome, .. } => {
                case.status_in_doubt = false;
                case.tribunal = Some(*outcome);
            }
            SeriouslyWounded { .. } => {
                case.seriously_wounded = true;
                case.health_update_due_since = Some(today);
            }
            HealthUpdated { .. } => {
                if case.seriously_wounded {
                    case.health_update_due_since = Some(today);
                }
            }
            CommissionDecided { repatriate, .. } => {
                case.commission_due_since = repatriate.then_some(today);
            }
            ProceedingsHeld { held, .. } => case.held_for_proceedings = *held,
            Escaped { .. } => {
                case.escaped = true;
                case.notification_due_since.get_or_insert(today);
            }
            Recaptured { .. } => {
                case.escaped = false;
                case.capture_card_due_since = Some(today);
                case.notification_due_since.get_or_insert(today);
            }
            Died { on, .. } => {
                case.end = Some(End::Deceased);
                case.notification_due_since
                    .get_or_insert(parse_date(on).unwrap_or(today));
                case.close_duties();
            }
            Released { .. } => {
                case.end = Some(End::Released);
                case.notification_due_since.get_or_insert(today);
                case.close_duties();
            }
            InterviewRecorded {
                on,
                org,
                interpreter_org,
                private,
                ..
            } => {
                let st = fact.statements.as_ref();
                case.interviews.push(Interview {
                    seq,
                    on: parse_date(on).unwrap_or(today),
                    org: org.clone(),
                    private: *private,
                    own_interpreter: interpreter_org.as_deref() == Some(org.as_str()),
                    wish: st.map(|s| s.wish.clone()),
                    fear: st.map(|s| s.fear_of_persecution),
                });
            }
            AcceptanceRecorded {
                state, conditions, ..
            } => {
                case.acceptances.insert(state.clone(), conditions.clone());
            }
            AcceptanceWithdrawn { state, .. } => {
                case.acceptances.remove(state);
            }
            ConsentRecorded {
                recipient, classes, ..
            } => {
                case.consents
                    .insert(recipient.clone(), classes.iter().copied().collect());
            }
            ConsentWithdrawn { recipient, .. } => {
                case.consents.remove(recipient);
            }
            MovementProposed { movement, kind, .. } => {
                case.movements.insert(
                    movement.clone(),
                    Movement {
                        id: movement.clone(),
                        kind: kind.clone(),
                        proposed_by: actor.clone(),
                        proposed_at: at,
                        approved_by: None,
                        reconfirmed_at: None,
                        status: MovementStatus::Proposed,
                    },
                );
            }
            MovementApproved { movement, .. } => {
                if let Some(m) = case.movements.get_mut(movement) {
                    m.approved_by = Some(actor.clone());
                    m.status = MovementStatus::Approved;
                }
            }
            MovementReconfirmed { movement, .. } => {
                if let Some(m) = case.movements.get_mut(movement) {
                    m.reconfirmed_at = Some(at);
                }
            }
            MovementSuspended {
                movement,
                guard,
                reason,
                ..
            } => {
                if let Some(m) = case.movements.get_mut(movement) {
                    m.status = MovementStatus::Suspended {
                        guard: *guard,
                        reason: reason.clone(),
                    };
                }
            }
            MovementWithdrawn {
                movement, reason, ..
            } => {
                if let Some(m) = case.movements.get_mut(movement) {
                    m.status = MovementStatus::Withdrawn {
                        reason: reason.clone(),
                    };
                }
            }
            MovementCompleted { movement, .. } => {
                if let Some(m) = case.movements.get_mut(movement) {
                    m.status = MovementStatus::Completed;
                    case.end = Some(match &m.kind {
                        MovementKind::Transfer { to } => End::Transferred(to.clone()),
                        MovementKind::Repatriation => End::Repatriated,
                        MovementKind::Exchange { .. } => End::Exchanged,
                    });
                    case.notification_due_since.get_or_insert(today);
                    case.close_duties();
                }
            }
            CaptureRecorded { .. } | Corrected { .. } => {}
            PlaceDefined { .. }
            | ExchangeListCreated { .. }
            | ExchangeListFinalised { .. }
            | ExchangeListCompleted { .. } => {}
        }
    }
}

impl Case {
    /// At an end state the duties of custody end; only the closing notification remains.
    fn close_duties(&mut self) {
        self.capture_card_due_since = None;
        self.health_update_due_since = None;
        self.commission_due_since = None;
    }
}
