//! G8: deadlines computed from the events, never entered by hand.

use super::Settings;
use super::world::Case;
use serde::Serialize;
use time::{Date, OffsetDateTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Art 70: capture card within a week of arrival at a camp (transit included) or hospital.
    CaptureCard,
    /// Art 122: notification to the neutral agency of registration and of every reportable change.
    Notification,
    /// Art 122: weekly health news of the seriously wounded.
    HealthUpdate,
    /// Art 110: a Mixed Medical Commission's decision to repatriate carried out within three months.
    CommissionDecision,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum DeadlineStatus {
    Due,
    Overdue,
    /// The duty cannot be carried out without breaking a guard; the reason says which.
    Waived(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub case: String,
    pub kind: DeadlineKind,
    pub since: Date,
    pub due: Date,
    pub status: DeadlineStatus,
}

impl DeadlineStatus {
    /// The status on `today` of a duty due on `due`: waived (and why) if a guard stops it,
    /// else due until its day has passed, then overdue.
    pub fn on(today: Date, due: Date, waived: Option<String>) -> Self {
        match waived {
            Some(why) => Self::Waived(why),
            None if today > due => Self::Overdue,
            None => Self::Due,
        }
    }
}

impl DeadlineKind {
    pub const ALL: [Self; 4] = [
        Self::CaptureCard,
        Self::Notification,
        Self::HealthUpdate,
        Self::CommissionDecision,
    ];

    /// Its name, as the JSON of a deadline gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaptureCard => "capture_card",
            Self::Notification => "notification",
            Self::HealthUpdate => "health_update",
            Self::CommissionDecision => "commission_decision",
        }
    }
}

/// The order deadlines are listed in: earliest due first, then by case number
/// ([`super::by_case_number`]), then by kind in the order [`DeadlineKind::ALL`] gives. A
/// captive owes each kind at most once, so no two deadlines are equal in it.
pub fn deadline_order(a: &Deadline, b: &Deadline) -> std::cmp::Ordering {
    a.due
        .cmp(&b.due)
        .then_with(|| super::by_case_number(&a.case, &b.case))
        .then_with(|| a.kind.cmp(&b.kind))
}

/// A place in the list of deadlines, after the deadline it names: `DUE,CASE,KIND`
/// (`2026-12-06,AS-000017,notification`), as the next page of a list is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlineCursor {
    pub due: Date,
    pub case: String,
    pub kind: DeadlineKind,
}

impl DeadlineCursor {
    pub fn of(d: &Deadline) -> Self {
        Self {
            due: d.due,
            case: d.case.clone(),
            kind: d.kind,
        }
    }

    /// Reads a cursor as [`DeadlineCursor::text`] writes it; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(',');
        let (due, case, kind) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || case.is_empty() || case.len() > 40 {
            return None;
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Some(Self {
            due: Date::parse(due, format).ok()?,
            case: case.to_string(),
            kind: DeadlineKind::ALL.into_iter().find(|k| k.as_str() == kind)?,
        })
    }

    pub fn text(&self) -> String {
        format!("{},{},{}", self.due, self.case, self.kind.as_str())
    }
}

/// `d` plus `months`, on the same day of the month or its last; past the last date a `Date` can
/// hold, that date (settings bound the months, but a due date never panics).
fn add_months(d: Date, months: u32) -> Date {
    let total = i64::from(d.year()) * 12 + i64::from(d.month() as u8 - 1) + i64::from(months);
    let Ok(y) = i32::try_from(total.div_euclid(12)) else {
        return Date::MAX;
    };
    let m = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(12);
    let month = time::Month::try_from(m).unwrap_or(time::Month::December);
    let last = time::util::days_in_month(month, y);
    Date::from_calendar_date(y, month, d.day().min(last)).unwrap_or(Date::MAX)
}

/// `d` plus `n` days, or the last date a `Date` can hold.
fn add_days(d: Date, n: u32) -> Date {
    d.checked_add(time::Duration::days(i64::from(n)))
        .unwrap_or(Date::MAX)
}

/// The open deadlines of one case at `now`.
pub fn deadlines(c: &Case, s: &Settings, now: OffsetDateTime) -> Vec<Deadline> {
    if c.erased {
        return Vec::new();
    }
    let today = now.date();
    let mut out = Vec::new();
    let mut push = |kind, since: Option<Date>, due: fn(Date) -> Date, waived: Option<String>| {
        if let Some(since) = since {
            let due = due(since);
            let status = DeadlineStatus::on(today, due, waived);
            out.push(Deadline {
                case: c.case.clone(),
                kind,
                since,
                due,
                status,
            });
        }
    };
    // Closures cannot capture settings in a fn pointer, so compute the due dates here.
    let card = c
        .capture_card_due_since
        .map(|d| add_days(d, s.capture_card_days));
    let note = c
        .notification_due_since
        .map(|d| add_days(d, s.notification_days));
    let health = c
        .health_update_due_since
        .filter(|_| c.seriously_wounded)
        .map(|d| add_days(d, s.health_update_days));
    let commission = c
        .commission_due_since
        .map(|d| add_months(d, s.commission_months));
    let g1 = c
        .protected_from_return(s)
        .map(|why| format!("G1: repatriation refused because {why}"));
    push(DeadlineKind::CaptureCard, card, |d| d, None);
    push(DeadlineKind::Notification, note, |d| d, None);
    push(DeadlineKind::HealthUpdate, health, |d| d, None);
    push(DeadlineKind::CommissionDecision, commission, |d| d, g1);
    // `since` is reported as the due date's origin.
    for d in &mut out {
        d.since = match d.kind {
            DeadlineKind::CaptureCard => c.capture_card_due_since.unwrap_or(d.since),
            DeadlineKind::Notification => c.notification_due_since.unwrap_or(d.since),
            DeadlineKind::HealthUpdate => c.health_update_due_since.unwrap_or(d.since),
            DeadlineKind::CommissionDecision => c.commission_due_since.unwrap_or(d.since),
        };
    }
    out
}
