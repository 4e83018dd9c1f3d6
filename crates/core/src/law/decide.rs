//! Commands and the guards that decide them.

use super::facts::{
    CustodyKind, Fact, FactBody, Medical, MovementKind, Statements, TribunalOutcome, Wish,
};
use super::world::{Case, DETAINING, Movement, MovementStatus, NEUTRAL, World};
use super::{Guard, Refusal, Settings};
use crate::{Actor, Class};
use serde::Deserialize;
use time::{Date, OffsetDateTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Registrar,
    Interviewer,
    Medical,
    Legal,
    Liaison,
    Auditor,
    Analyst,
}

/// Who is acting: a user of one organisation (`detaining`, `neutral` or `receiving:XX`) with roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub org: String,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.user.clone(),
            org: self.org.clone(),
        }
    }

    fn has(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
}

/// Everything a user can ask the law to record. JSON: `{"command": "record_interview", …}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command", deny_unknown_fields)]
pub enum Command {
    DefinePlace {
        place: String,
        kind: CustodyKind,
    },
    RecordCapture {
        case: String,
        capturing_unit: Option<String>,
        health: Option<String>,
    },
    MoveCustody {
        case: String,
        place: String,
        on: Option<String>,
    },
    IssueCaptureCard {
        case: String,
        on: Option<String>,
    },
    /// Art 122 notification, to `agency` (the neutral agency) or `origin` (the power he depends on).
    SendNotification {
        case: String,
        to: String,
    },
    DoubtStatus {
        case: String,
    },
    DecideTribunal {
        case: String,
        outcome: TribunalOutcome,
    },
    DeclareSeriouslyWounded {
        case: String,
        note: Option<String>,
    },
    UpdateHealth {
        case: String,
        note: String,
    },
    DecideCommission {
        case: String,
        repatriate: bool,
        note: Option<String>,
    },
    HoldForProceedings {
        case: String,
        held: bool,
    },
    RecordEscape {
        case: String,
    },
    RecordRecapture {
        case: String,
    },
    RecordDeath {
        case: String,
        on: String,
        place: String,
        cause: Option<String>,
        burial: Option<String>,
    },
    Release {
        case: String,
    },
    Correct {
        case: String,
        corrects: u64,
        note: String,
    },
    RecordInterview {
        case: String,
        on: Option<String>,
        interviewer: Option<String>,
        interpreter: Option<String>,
        interpreter_org: Option<String>,
        language: String,
        private: bool,
        /// `return`, `stay`, `undecided`, or a third state's ISO 3166 code.
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "KR"))]
        wish: Wish,
        fear_of_persecution: bool,
        notes: Option<String>,
    },
    RecordAcceptance {
        case: String,
        state: String,
        conditions: Option<String>,
    },
    WithdrawAcceptance {
        case: String,
        state: String,
    },
    RecordConsent {
        case: String,
        recipient: String,
        classes: Vec<Class>,
    },
    WithdrawConsent {
        case: String,
        recipient: String,
    },
    ProposeTransfer {
        case: String,
        to: String,
    },
    ProposeRepatriation {
        case: String,
    },
    Approve {
        case: String,
        movement: String,
    },
    Reconfirm {
        case: String,
        movement: String,
    },
    HandOver {
        case: String,
        movement: String,
    },
    WithdrawMovement {
        case: String,
        movement: String,
        reason: String,
    },
    CreateExchangeList {
        list: String,
        counterpart: String,
    },
    AddToExchangeList {
        list: String,
        case: String,
    },
    RemoveFromExchangeList {
        list: String,
        case: String,
        reason: String,
    },
    FinaliseExchangeList {
        list: String,
    },
    CompleteExchangeList {
        list: String,
    },
}

/// The `case` field of a command, if it has one: `$cmd` is `&Command` or `&mut Command`, and the
/// field comes out borrowed the same way. One list of which commands are about one person, for
/// reading the case and for rewriting it.
macro_rules! case_field {
    ($cmd:expr) => {{
        use Command as C;
        match $cmd {
            C::DefinePlace { .. }
            | C::CreateExchangeList { .. }
            | C::FinaliseExchangeList { .. }
            | C::CompleteExchangeList { .. } => None,
            C::RecordCapture { case, .. }
            | C::MoveCustody { case, .. }
            | C::IssueCaptureCard { case, .. }
            | C::SendNotification { case, .. }
            | C::DoubtStatus { case }
            | C::DecideTribunal { case, .. }
            | C::DeclareSeriouslyWounded { case, .. }
            | C::UpdateHealth { case, .. }
            | C::DecideCommission { case, .. }
            | C::HoldForProceedings { case, .. }
            | C::RecordEscape { case }
            | C::RecordRecapture { case }
            | C::RecordDeath { case, .. }
            | C::Release { case }
            | C::Correct { case, .. }
            | C::RecordInterview { case, .. }
            | C::RecordAcceptance { case, .. }
            | C::WithdrawAcceptance { case, .. }
            | C::RecordConsent { case, .. }
            | C::WithdrawConsent { case, .. }
            | C::ProposeTransfer { case, .. }
            | C::ProposeRepatriation { case }
            | C::Approve { case, .. }
            | C::Reconfirm { case, .. }
            | C::HandOver { case, .. }
            | C::WithdrawMovement { case, .. }
            | C::AddToExchangeList { case, .. }
            | C::RemoveFromExchangeList { case, .. } => Some(case),
        }
    }};
}

impl Command {
    /// The person the command is about, if it is about exactly one.
    pub fn case(&self) -> Option<&str> {
        case_field!(self).map(String::as_str)
    }

    /// The command with its case number rewritten by `f` (to read it as a person types it).
    pub fn with_case(mut self, f: impl FnOnce(&str) -> String) -> Self {
        if let Some(case) = case_field!(&mut self) {
            *case = f(case);
        }
        self
    }

    /// Whether deciding it needs every person's state (completing an exchange list does).
    pub fn needs_everyone(&self) -> bool {
        matches!(self, Command::CompleteExchangeList { .. })
    }
}

fn record(msg: impl Into<String>) -> Refusal {
    Refusal::new(Guard::Record, msg)
}

fn one(body: FactBody) -> Result<Vec<Fact>, Refusal> {
    Ok(vec![Fact::public(body)])
}

fn case<'w>(w: &'w World, id: &str) -> Result<&'w Case, Refusal> {
    let c = w
        .cases
        .get(id)
        .ok_or_else(|| record(format!("no person with case number {id}")))?;
    if c.erased {
        return Err(record(format!(
            "{id} was erased: nothing more is recorded about him"
        )));
    }
    Ok(c)
}

/// G7: after an end state only corrections and closing records.
fn live<'w>(w: &'w World, id: &str) -> Result<&'w Case, Refusal> {
    let c = case(w, id)?;
    match &c.end {
        None => Ok(c),
        Some(end) => Err(Refusal::new(
            Guard::G7,
            format!(
                "{id} was {}: after an end state only corrections and closing records are accepted",
                end.describe()
            ),
        )),
    }
}

/// The day (`YYYY-MM-DD`, today when not given) something happened to `c`: neither in the
/// future nor before his capture.
fn his_date(
    c: &Case,
    field: &str,
    text: Option<&str>,
    now: OffsetDateTime,
) -> Result<String, Refusal> {
    let Some(text) = text else {
        return Ok(now.date().to_string());
    };
    let d = Date::parse(text, &time::format_description::well_known::Iso8601::DATE)
        .map_err(|_| record(format!("{field}: {text:?} is not a date (YYYY-MM-DD)")))?;
    if d > crate::latest_today(now) {
        return Err(record(format!("{field}: {text} is in the future")));
    }
    match c.captured_on {
        Some(captured) if d < captured => Err(record(format!(
            "{field}: {d} is before his capture ({captured})"
        ))),
        _ => Ok(d.to_string()),
    }
}

fn text(field: &str, v: &str, max: usize) -> Result<String, Refusal> {
    crate::input::free_text("text", v, max)
        .map(str::to_string)
        .map_err(|why| record(format!("{field}: {why}")))
}

fn opt_text(field: &str, v: &Option<String>, max: usize) -> Result<Option<String>, Refusal> {
    v.as_deref().map(|v| text(field, v, max)).transpose()
}

fn state_code(field: &str, v: &str) -> Result<String, Refusal> {
    if crate::states::is_state_code(v) {
        Ok(v.to_string())
    } else {
        Err(record(format!(
            "{field}: {v:?} is not {}",
            crate::states::STATE_CODE_RULE
        )))
    }
}

fn movement<'c>(c: &'c Case, id: &str) -> Result<&'c Movement, Refusal> {
    c.movements
        .get(id)
        .ok_or_else(|| record(format!("{} has no movement {id}", c.case)))
}

fn pending<'c>(c: &'c Case, id: &str) -> Result<&'c Movement, Refusal> {
    let m = movement(c, id)?;
    match &m.status {
        MovementStatus::Proposed | MovementStatus::Approved => Ok(m),
        MovementStatus::Suspended { guard, reason } => Err(Refusal::new(
            *guard,
            format!("{} of {} is suspended: {reason}", m.kind.describe(), c.case),
        )),
        MovementStatus::Withdrawn { reason } => Err(record(format!(
            "{} of {} was withdrawn: {reason}",
            m.kind.describe(),
            c.case
        ))),
        MovementStatus::Completed => Err(record(format!(
            "{} of {} is already completed",
            m.kind.describe(),
            c.case
        ))),
    }
}

fn no_pending_movement(c: &Case) -> Result<(), Refusal> {
    match c.movements.values().find(|m| m.is_pending()) {
        Some(m) => Err(record(format!(
            "{} already has a pending {} ({}); withdraw it first",
            c.case,
            m.kind.describe(),
            m.id
        ))),
        None => Ok(()),
    }
}

fn not_held(c: &Case) -> Result<(), Refusal> {
    if c.held_for_proceedings {
        return Err(record(format!(
            "{} is held for judicial proceedings (Art 119): he may not leave until they end",
            c.case
        )));
    }
    Ok(())
}

/// G1: no hand-over to the power of origin while he is protected.
fn g1(c: &Case, what: &str, s: &Settings) -> Result<(), Refusal> {
    match c.protected_from_return(s) {
        None => Ok(()),
        Some(why) => Err(Refusal::new(
            Guard::G1,
            format!("{what} of {} to {} refused: {why}", c.case, c.power),
        )),
    }
}

/// G2 and G3: a verified wish to go to `to`, and `to`'s standing acceptance.
fn g2_g3(c: &Case, to: &str, s: &Settings) -> Result<(), Refusal> {
    c.verify_wish(&Wish::ThirdState(to.to_string()), s)
        .map_err(|why| {
            Refusal::new(
                Guard::G2,
                format!("transfer of {} to {to} refused: {why}", c.case),
            )
        })?;
    if !c.acceptances.contains_key(to) {
        return Err(Refusal::new(
            Guard::G3,
            format!(
                "transfer of {} to {to} refused: {to} has not recorded that it accepts him",
                c.case
            ),
        ));
    }
    Ok(())
}

/// G4 at the hand-over: approved by a legal officer, reconfirmed by the neutral agency within R days.
fn g4_ready(c: &Case, m: &Movement, s: &Settings, now: OffsetDateTime) -> Result<(), Refusal> {
    let what = format!("hand-over for the {} of {}", m.kind.describe(), c.case);
    if m.approved_by.is_none() {
        return Err(Refusal::new(
            Guard::G4,
            format!("{what} refused: no legal officer of the detaining power has approved it"),
        ));
    }
    match m.reconfirmed_at {
        None => Err(Refusal::new(
            Guard::G4,
            format!("{what} refused: the neutral agency has not reconfirmed his identity and wish"),
        )),
        Some(t) if now - t > time::Duration::days(i64::from(s.reconfirm_within_days)) => {
            Err(Refusal::new(
                Guard::G4,
                format!(
                    "{what} refused: the neutral agency's reconfirmation of {} is older than {} days; it must be repeated",
                    t.date(),
                    s.reconfirm_within_days
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Checks a movement is still allowed by G1–G3 (at approval, reconfirmation and hand-over).
/// A transfer to `to`: G2 and G3, and G1 as well when `to` is the power he depends on. Sent
/// there he is returned, whatever the movement is called; his wish to go "to" it does not clear
/// a fear of persecution the way a verified wish to return does. Asked again at the hand-over,
/// where the power may have been corrected since the proposal.
fn transfer_allowed(c: &Case, to: &str, s: &Settings) -> Result<(), Refusal> {
    if to == c.power {
        g1(c, "transfer", s)?;
    }
    g2_g3(c, to, s)
}

fn still_allowed(c: &Case, m: &Movement, s: &Settings) -> Result<(), Refusal> {
    match &m.kind {
        MovementKind::Transfer { to } => transfer_allowed(c, to, s),
        kind => g1(c, &kind.describe(), s),
    }
}

fn completion(c: &Case, m: &Movement, s: &Settings, now: OffsetDateTime) -> Result<Fact, Refusal> {
    not_held(c)?;
    still_allowed(c, m, s)?;
    g4_ready(c, m, s, now)?;
    Ok(Fact::public(FactBody::MovementCompleted {
        case: c.case.clone(),
        movement: m.id.clone(),
    }))
}

/// G5 (and G3, and G1 after a correction): after `c` changed as `after`, suspend every pending
/// movement that no longer fits.
fn suspensions(after: &Case, s: &Settings, guard: Guard, cause: &str) -> Vec<Fact> {
    after
        .movements
        .values()
        .filter(|m| m.is_pending())
        .filter_map(|m| {
            let still = match &m.kind {
                // A transfer to the power he depends on is his return: G1 as well.
                MovementKind::Transfer { to }
                    if *to == after.power && after.protected_from_return(s).is_some() =>
                {
                    false
                }
                MovementKind::Transfer { to } => match guard {
                    Guard::G3 => after.acceptances.contains_key(to),
                    _ => after.latest_wish() == Ok(Some(Wish::ThirdState(to.clone()))),
                },
                _ => after.protected_from_return(s).is_none(),
            };
            (!still).then(|| {
                Fact::public(FactBody::MovementSuspended {
                    case: after.case.clone(),
                    movement: m.id.clone(),
                    guard,
                    reason: cause.to_string(),
                })
            })
        })
        .collect()
}

/// What a correction of his particulars brings with it: recorded as depending on `power` now,
/// a pending transfer to that power is his return, which G1 refuses while it protects him (at
/// approval and at hand-over); it is suspended at once, with the reason, as G5 suspends what a
/// change of mind no longer fits. No fact when he is unknown or nothing pending is affected.
pub fn amended(w: &World, case: &str, power: &str, s: &Settings) -> Vec<Fact> {
    let Some(before) = w.cases.get(case) else {
        return Vec::new();
    };
    if before.power == power {
        return Vec::new();
    }
    let Some(why) = before.protected_from_return(s) else {
        return Vec::new();
    };
    let mut after = before.clone();
    after.power = power.to_string();
    suspensions(
        &after,
        s,
        Guard::G1,
        &format!(
            "his record was corrected: he depends on {power}, so this transfer would return him, \
             which G1 refuses: {why}"
        ),
    )
}

fn require(p: &Principal, org: &str, role: Option<Role>, what: &str) -> Result<(), Refusal> {
    if p.org != org || role.is_some_and(|r| !p.has(r)) {
        let who = match role {
            Some(r) => format!(
                "a {} user of the {org} organisation",
                format!("{r:?}").to_lowercase()
            ),
            None => format!("the {org} organisation"),
        };
        return Err(Refusal::new(
            Guard::G4,
            format!("{what} must be done by {who}"),
        ));
    }
    Ok(())
}

/// Decides a command: the facts to record, or a refusal that names the guard and changes nothing.
pub fn decide(
    w: &World,
    p: &Principal,
    cmd: &Command,
    s: &Settings,
    now: OffsetDateTime,
) -> Result<Vec<Fact>, Refusal> {
    use Command as C;
    use FactBody as F;
    match cmd {
        C::DefinePlace { place, kind } => one(F::PlaceDefined {
            place: text("place", place, 100)?,
            kind: *kind,
        }),
        C::RecordCapture {
            case: id,
            capturing_unit,
            health,
        } => {
            live(w, id)?;
            Ok(vec![Fact {
                body: F::CaptureRecorded {
                    case: id.clone(),
                    capturing_unit: opt_text("capturing_unit", capturing_unit, 200)?,
                },
                statements: None,
                medical: opt_text("health", health, 2000)?.map(|note| Medical { note }),
            }])
        }
        C::MoveCustody {
            case: id,
            place,
            on,
        } => {
            let c = live(w, id)?;
            if c.escaped {
                return Err(record(format!(
                    "{id} is recorded as escaped: record his recapture first"
                )));
            }
            let kind = *w.places.get(place).ok_or_else(|| {
                record(format!(
                    "no place {place:?}: define it first (places are reference data)"
                ))
            })?;
            one(F::CustodyMoved {
                case: id.clone(),
                place: place.clone(),
                kind,
                on: his_date(c, "on", on.as_deref(), now)?,
            })
        }
        C::IssueCaptureCard { case: id, on } => {
            let c = live(w, id)?;
            one(F::CaptureCardIssued {
                case: id.clone(),
                on: his_date(c, "on", on.as_deref(), now)?,
            })
        }
        C::SendNotification { case: id, to } => {
            // A closing record: allowed after an end state too.
            let c = case(w, id)?;
            let (included, withheld, reason) = match to.as_str() {
                "agency" => (
                    vec![Class::Identity, Class::Family],
                    vec![Class::Statements],
                    Some(
                        "statements stay with the organisation that conducted the interview".into(),
                    ),
                ),
                "origin" => match c.protected_from_return(s) {
                    Some(why) => (
                        vec![],
                        vec![Class::Identity, Class::Family, Class::Statements],
                        Some(format!(
                            "G6: {why}; nothing identifying goes to the power of origin"
                        )),
                    ),
                    None => (
                        vec![Class::Identity, Class::Family],
                        vec![Class::Statements],
                        Some(
                            "statements stay with the organisation that conducted the interview"
                                .into(),
                        ),
                    ),
                },
                other => return Err(record(format!("to: {other:?} must be agency or origin"))),
            };
            one(F::NotificationSent {
                case: id.clone(),
                to: to.clone(),
                included,
                withheld,
                reason,
            })
        }
        C::DoubtStatus { case: id } => {
            if live(w, id)?.status_in_doubt {
                return Err(record(format!(
                    "{id}'s status is already in doubt: a tribunal decision is pending"
                )));
            }
            one(F::StatusDoubted { case: id.clone() })
        }
        C::DecideTribunal { case: id, outcome } => {
            let c = live(w, id)?;
            if !c.status_in_doubt {
                return Err(record(format!(
                    "{id}'s status is not in doubt: no tribunal decision is pending"
                )));
            }
            one(F::TribunalDecided {
                case: id.clone(),
                outcome: *outcome,
            })
        }
        C::DeclareSeriouslyWounded { case: id, note } => {
            live(w, id)?;
            Ok(vec![Fact {
                body: F::SeriouslyWounded { case: id.clone() },
                statements: None,
                medical: opt_text("note", note, 2000)?.map(|note| Medical { note }),
            }])
        }
        C::UpdateHealth { case: id, note } => {
            live(w, id)?;
            Ok(vec![Fact {
                body: F::HealthUpdated { case: id.clone() },
                statements: None,
                medical: Some(Medical {
                    note: text("note", note, 2000)?,
                }),
            }])
        }
        C::DecideCommission {
            case: id,
            repatriate,
            note,
        } => {
            live(w, id)?;
            Ok(vec![Fact {
                body: F::CommissionDecided {
                    case: id.clone(),
                    repatriate: *repatriate,
                },
                statements: None,
                medical: opt_text("note", note, 2000)?.map(|note| Medical { note }),
            }])
        }
        C::HoldForProceedings { case: id, held } => {
            live(w, id)?;
            one(F::ProceedingsHeld {
                case: id.clone(),
                held: *held,
            })
        }
        C::RecordEscape { case: id } => {
            if live(w, id)?.escaped {
                return Err(record(format!("{id} is already recorded as escaped")));
            }
            one(F::Escaped { case: id.clone() })
        }
        C::RecordRecapture { case: id } => {
            if !live(w, id)?.escaped {
                return Err(record(format!("{id} is not recorded as escaped")));
            }
            one(F::Recaptured { case: id.clone() })
        }
        C::RecordDeath {
            case: id,
            on,
            place,
            cause,
            burial,
        } => {
            let c = live(w, id)?;
            Ok(vec![Fact {
                body: F::Died {
                    case: id.clone(),
                    on: his_date(c, "on", Some(on), now)?,
                    place: text("place", place, 200)?,
                    burial: opt_text("burial", burial, 200)?,
                },
                statements: None,
                medical: opt_text("cause", cause, 2000)?.map(|note| Medical { note }),
            }])
        }
        C::Release { case: id } => {
            let c = live(w, id)?;
            not_held(c)?;
            no_pending_movement(c)?;
            one(F::Released { case: id.clone() })
        }
        C::Correct {
            case: id,
            corrects,
            note,
        } => {
            case(w, id)?;
            one(F::Corrected {
                case: id.clone(),
                corrects: *corrects,
                note: text("note", note, 2000)?,
            })
        }
        C::RecordInterview {
            case: id,
            on,
            interviewer,
            interpreter,
            interpreter_org,
            language,
            private,
            wish,
            fear_of_persecution,
            notes,
        } => {
            let c = live(w, id)?;
            let on = his_date(c, "on", on.as_deref(), now)?;
            // Read as it was recorded when the log is replayed, so checked here, once.
            if let Wish::ThirdState(x) = wish {
                state_code("wish", x)?;
            }
            let fact = Fact {
                body: F::InterviewRecorded {
                    case: id.clone(),
                    on: on.clone(),
                    org: p.org.clone(),
                    interviewer: match interviewer {
                        Some(i) => text("interviewer", i, 100)?,
                        None => p.user.clone(),
                    },
                    interpreter: opt_text("interpreter", interpreter, 100)?,
                    interpreter_org: opt_text("interpreter_org", interpreter_org, 100)?,
                    language: text("language", language, 50)?,
                    private: *private,
                },
                statements: Some(Statements {
                    wish: wish.clone(),
                    fear_of_persecution: *fear_of_persecution,
                    notes: opt_text("notes", notes, 10_000)?,
                    org_notes: None,
                }),
                medical: None,
            };
            // G5: the change of mind takes effect at once.
            let mut after = w.clone();
            after.apply(&fact, &p.actor(), now, c.last_seq + 1);
            let after_case = case(&after, id)?;
            let cause = format!(
                "the interview of {on} states the wish to {}",
                wish.describe()
            );
            let mut facts = vec![fact];
            facts.extend(suspensions(after_case, s, Guard::G5, &cause));
            Ok(facts)
        }
        C::RecordAcceptance {
            case: id,
            state,
            conditions,
        } => {
            let state = state_code("state", state)?;
            live(w, id)?;
            if p.org != format!("receiving:{state}") {
                return Err(record(format!(
                    "only {state} itself can record that it accepts a person"
                )));
            }
            one(F::AcceptanceRecorded {
                case: id.clone(),
                state,
                conditions: opt_text("conditions", conditions, 2000)?,
            })
        }
        C::WithdrawAcceptance { case: id, state } => {
            let c = live(w, id)?;
            if p.org != format!("receiving:{state}") {
                return Err(record(format!(
                    "only {state} itself can withdraw its acceptance"
                )));
            }
            if !c.acceptances.contains_key(state) {
                return Err(record(format!(
                    "{state} has no standing acceptance of {id}"
                )));
            }
            let fact = Fact::public(F::AcceptanceWithdrawn {
                case: id.clone(),
                state: state.clone(),
            });
            let mut after = w.clone();
            after.apply(&fact, &p.actor(), now, c.last_seq + 1);
            let mut facts = vec![fact];
            facts.extend(suspensions(
                case(&after, id)?,
                s,
                Guard::G3,
                &format!("{state} withdrew its acceptance"),
            ));
            Ok(facts)
        }
        C::RecordConsent {
            case: id,
            recipient,
            classes,
        } => {
            case(w, id)?;
            // A consent opens his sealed classes to a receiving state's users (the policy
            // reads it for them alone): one recorded for anybody else would open nothing.
            if !crate::policy::receiving(recipient).is_some_and(crate::states::is_state_code) {
                return Err(record(format!(
                    "recipient: {recipient:?} is not a receiving state's organisation: give receiving:XX, XX {}",
                    crate::states::STATE_CODE_RULE
                )));
            }
            if classes.is_empty() {
                return Err(record(
                    "classes: name at least one class he agrees to share",
                ));
            }
            if classes.contains(&Class::Statements) {
                return Err(record(
                    "classes: what he said in interviews (statements) is never shared: it stays with the organisation that interviewed him",
                ));
            }
            // A class named twice is one consent, as a field listed twice in not_stated is.
            let mut classes = classes.clone();
            classes.sort();
            classes.dedup();
            one(F::ConsentRecorded {
                case: id.clone(),
                recipient: recipient.clone(),
                classes,
            })
        }
        C::WithdrawConsent {
            case: id,
            recipient,
        } => {
            if !case(w, id)?.consents.contains_key(recipient) {
                return Err(record(format!(
                    "{id} has no consent recorded for {recipient}"
                )));
            }
            one(F::ConsentWithdrawn {
                case: id.clone(),
                recipient: recipient.clone(),
            })
        }
        C::ProposeTransfer { case: id, to } => {
            let to = state_code("to", to)?;
            let c = live(w, id)?;
            require(p, DETAINING, None, "a transfer proposal")?;
            not_held(c)?;
            no_pending_movement(c)?;
            transfer_allowed(c, &to, s)?;
            one(F::MovementProposed {
                case: id.clone(),
                movement: format!("{id}/M{}", c.movements.len() + 1),
                kind: MovementKind::Transfer { to },
            })
        }
        C::ProposeRepatriation { case: id } => {
            let c = live(w, id)?;
            require(p, DETAINING, None, "a repatriation proposal")?;
            not_held(c)?;
            no_pending_movement(c)?;
            g1(c, "repatriation", s)?;
            one(F::MovementProposed {
                case: id.clone(),
                movement: format!("{id}/M{}", c.movements.len() + 1),
                kind: MovementKind::Repatriation,
            })
        }
        C::Approve {
            case: id,
            movement: mid,
        } => {
            let c = live(w, id)?;
            let m = pending(c, mid)?;
            require(p, DETAINING, Some(Role::Legal), "an approval")?;
            if m.proposed_by.user == p.user {
                return Err(Refusal::new(
                    Guard::G4,
                    format!(
                        "{} approval refused: {} proposed it and cannot also approve it",
                        m.kind.describe(),
                        p.user
                    ),
                ));
            }
            if m.approved_by.is_some() {
                return Err(record(format!("{mid} is already approved")));
            }
            still_allowed(c, m, s)?;
            one(F::MovementApproved {
                case: id.clone(),
                movement: mid.clone(),
            })
        }
        C::Reconfirm {
            case: id,
            movement: mid,
        } => {
            let c = live(w, id)?;
            let m = pending(c, mid)?;
            require(p, NEUTRAL, None, "the reconfirmation of identity and wish")?;
            still_allowed(c, m, s)?;
            one(F::MovementReconfirmed {
                case: id.clone(),
                movement: mid.clone(),
            })
        }
        C::HandOver {
            case: id,
            movement: mid,
        } => {
            let c = live(w, id)?;
            let m = pending(c, mid)?;
            require(p, DETAINING, None, "a hand-over")?;
            if let MovementKind::Exchange { list } = &m.kind {
                return Err(record(format!(
                    "exchange entries are handed over when list {list} is completed"
                )));
            }
            Ok(vec![completion(c, m, s, now)?])
        }
        C::WithdrawMovement {
            case: id,
            movement: mid,
            reason,
        } => {
            let c = live(w, id)?;
            let m = movement(c, mid)?;
            if matches!(
                m.status,
                MovementStatus::Completed | MovementStatus::Withdrawn { .. }
            ) {
                return Err(record(format!("{mid} can no longer be withdrawn")));
            }
            one(F::MovementWithdrawn {
                case: id.clone(),
                movement: mid.clone(),
                reason: text("reason", reason, 500)?,
            })
        }
        C::CreateExchangeList { list, counterpart } => {
            require(p, DETAINING, None, "an exchange list")?;
            let list = text("list", list, 50)?;
            if w.lists.contains_key(&list) {
                return Err(record(format!("exchange list {list} already exists")));
            }
            one(F::ExchangeListCreated {
                list,
                counterpart: text("counterpart", counterpart, 100)?,
            })
        }
        C::AddToExchangeList { list, case: id } => {
            let l = w
                .lists
                .get(list)
                .ok_or_else(|| record(format!("no exchange list {list}")))?;
            if l.finalised {
                return Err(record(format!(
                    "exchange list {list} is finalised: no one can be added"
                )));
            }
            let c = live(w, id)?;
            require(p, DETAINING, None, "an exchange list entry")?;
            not_held(c)?;
            no_pending_movement(c)?;
            g1(c, "exchange-list entry", s)?;
            one(F::MovementProposed {
                case: id.clone(),
                movement: format!("{id}/M{}", c.movements.len() + 1),
                kind: MovementKind::Exchange { list: list.clone() },
            })
        }
        C::RemoveFromExchangeList {
            list,
            case: id,
            reason,
        } => {
            let c = live(w, id)?;
            let m = list_entry(c, list)
                .ok_or_else(|| record(format!("{id} is not on exchange list {list}")))?;
            one(F::MovementWithdrawn {
                case: id.clone(),
                movement: m.id.clone(),
                reason: text("reason", reason, 500)?,
            })
        }
        C::FinaliseExchangeList { list } => {
            let l = w
                .lists
                .get(list)
                .ok_or_else(|| record(format!("no exchange list {list}")))?;
            require(
                p,
                DETAINING,
                Some(Role::Legal),
                "finalising an exchange list",
            )?;
            if l.finalised {
                return Err(record(format!("exchange list {list} is already finalised")));
            }
            one(F::ExchangeListFinalised { list: list.clone() })
        }
        C::CompleteExchangeList { list } => {
            let l = w
                .lists
                .get(list)
                .ok_or_else(|| record(format!("no exchange list {list}")))?;
            require(p, DETAINING, None, "completing an exchange")?;
            if !l.finalised || l.completed {
                return Err(record(format!(
                    "exchange list {list} must be finalised and not yet completed"
                )));
            }
            // The completions stand in the log in the order of the captives' numbers.
            let mut pending: Vec<(&Case, &Movement)> = w
                .cases
                .values()
                .map(|c| &**c)
                // One erased while on the list is left out: there is nobody to hand over.
                .filter(|c| c.end.is_none() && !c.erased)
                .filter_map(|c| Some((c, list_entry(c, list).filter(|m| m.is_pending())?)))
                .collect();
            pending.sort_by(|(a, _), (b, _)| super::by_case_number(&a.case, &b.case));
            let mut facts = Vec::new();
            for (c, m) in pending {
                facts.push(completion(c, m, s, now)?);
            }
            facts.push(Fact::public(F::ExchangeListCompleted {
                list: list.clone(),
            }));
            Ok(facts)
        }
    }
}

/// His (latest) movement on exchange list `list`.
fn list_entry<'c>(c: &'c Case, list: &str) -> Option<&'c Movement> {
    c.movements
        .values()
        .filter(|m| matches!(&m.kind, MovementKind::Exchange { list: l } if l == list))
        .rfind(|m| !matches!(m.status, MovementStatus::Withdrawn { .. }))
}
