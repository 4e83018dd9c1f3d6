//! What gets recorded. Each fact becomes one event: its [`FactBody`] is the public payload, and
//! its [`Statements`] and [`Medical`] parts are sealed in the classes of those names.

use crate::Class;
use serde::{Deserialize, Serialize};

/// Where a captive wishes to go when captivity ends.
/// Written as `return`, `stay`, `undecided`, or a third state's ISO 3166 code (`KR`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Wish {
    /// Back to the power he depends on.
    Return,
    /// To stay in the detaining state.
    Stay,
    /// To a third state (ISO 3166 code).
    ThirdState(String),
    Undecided,
}

impl Wish {
    pub fn describe(&self) -> String {
        match self {
            Wish::Return => "return".into(),
            Wish::Stay => "stay in the detaining state".into(),
            Wish::ThirdState(x) => format!("go to {x}"),
            Wish::Undecided => "undecided".into(),
        }
    }
}

impl std::str::FromStr for Wish {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "return" => Ok(Wish::Return),
            "stay" => Ok(Wish::Stay),
            "undecided" => Ok(Wish::Undecided),
            // The shape only: a wish is read back from the log as it was recorded, and a
            // recorded one may name a code that a later table no longer holds. Whether the code
            // is a state's is checked when the interview is recorded (`decide`).
            x if x.len() == 2 && x.bytes().all(|b| b.is_ascii_uppercase()) => {
                Ok(Wish::ThirdState(x.to_string()))
            }
            other => Err(format!(
                "{other:?} is not a wish: give return, stay, undecided or a third state's code such as KR"
            )),
        }
    }
}

impl std::fmt::Display for Wish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wish::Return => f.write_str("return"),
            Wish::Stay => f.write_str("stay"),
            Wish::Undecided => f.write_str("undecided"),
            Wish::ThirdState(x) => f.write_str(x),
        }
    }
}

impl Serialize for Wish {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Wish {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What he said in an interview: sealed in `statements`; the guards read it, people see only
/// the derived wish status unless they conducted the interview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statements {
    pub wish: Wish,
    pub fear_of_persecution: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The notes sealed to the interviewing organisation's key (replacing `notes` when that
    /// organisation has a key): only its members can open them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_notes: Option<OrgNotes>,
}

/// Notes sealed to an organisation: its id and the ciphertext, hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgNotes {
    pub org: String,
    pub sealed: String,
}

/// Health facts: sealed in `medical`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Medical {
    pub note: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustodyKind {
    Transit,
    Camp,
    Hospital,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MovementKind {
    /// To a third state that accepts him.
    Transfer { to: String },
    /// To the power he depends on.
    Repatriation,
    /// On an exchange list (he is handed to the other party, who sends him home).
    Exchange { list: String },
}

impl MovementKind {
    pub fn describe(&self) -> String {
        match self {
            MovementKind::Transfer { to } => format!("transfer to {to}"),
            MovementKind::Repatriation => "repatriation".into(),
            MovementKind::Exchange { list } => format!("exchange on list {list}"),
        }
    }

    /// Does this movement hand him to the power of origin (directly or through an exchange)?
    pub fn to_origin(&self) -> bool {
        !matches!(self, MovementKind::Transfer { .. })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TribunalOutcome {
    PrisonerOfWar,
    NotPrisonerOfWar,
}

/// Public part of a fact. Dates are `YYYY-MM-DD`; times come from the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fact")]
pub enum FactBody {
    PlaceDefined {
        place: String,
        kind: CustodyKind,
    },
    CaptureRecorded {
        case: String,
        capturing_unit: Option<String>,
    },
    CustodyMoved {
        case: String,
        place: String,
        kind: CustodyKind,
        on: String,
    },
    CaptureCardIssued {
        case: String,
        on: String,
    },
    /// Art 122. `withheld` lists the classes left out and `reason` says why (G6).
    NotificationSent {
        case: String,
        to: String,
        included: Vec<Class>,
        withheld: Vec<Class>,
        reason: Option<String>,
    },
    StatusDoubted {
        case: String,
    },
    TribunalDecided {
        case: String,
        outcome: TribunalOutcome,
    },
    SeriouslyWounded {
        case: String,
    },
    HealthUpdated {
        case: String,
    },
    CommissionDecided {
        case: String,
        repatriate: bool,
    },
    ProceedingsHeld {
        case: String,
        held: bool,
    },
    Escaped {
        case: String,
    },
    Recaptured {
        case: String,
    },
    Died {
        case: String,
        on: String,
        place: String,
        burial: Option<String>,
    },
    Released {
        case: String,
    },
    Corrected {
        case: String,
        corrects: u64,
        note: String,
    },
    InterviewRecorded {
        case: String,
        on: String,
        org: String,
        interviewer: String,
        interpreter: Option<String>,
        interpreter_org: Option<String>,
        language: String,
        private: bool,
    },
    AcceptanceRecorded {
        case: String,
        state: String,
        conditions: Option<String>,
    },
    AcceptanceWithdrawn {
        case: String,
        state: String,
    },
    ConsentRecorded {
        case: String,
        recipient: String,
        classes: Vec<Class>,
    },
    ConsentWithdrawn {
        case: String,
        recipient: String,
    },
    MovementProposed {
        case: String,
        movement: String,
        kind: MovementKind,
    },
    MovementApproved {
        case: String,
        movement: String,
    },
    MovementReconfirmed {
        case: String,
        movement: String,
    },
    MovementSuspended {
        case: String,
        movement: String,
        guard: super::Guard,
        reason: String,
    },
    MovementWithdrawn {
        case: String,
        movement: String,
        reason: String,
    },
    MovementCompleted {
        case: String,
        movement: String,
    },
    ExchangeListCreated {
        list: String,
        counterpart: String,
    },
    ExchangeListFinalised {
        list: String,
    },
    ExchangeListCompleted {
        list: String,
    },
}

impl FactBody {
    /// The person this fact is about, if any.
    pub fn case(&self) -> Option<&str> {
        use FactBody::*;
        match self {
            PlaceDefined { .. }
            | ExchangeListCreated { .. }
            | ExchangeListFinalised { .. }
            | ExchangeListCompleted { .. } => None,
            CaptureRecorded { case, .. }
            | CustodyMoved { case, .. }
            | CaptureCardIssued { case, .. }
            | NotificationSent { case, .. }
            | StatusDoubted { case }
            | TribunalDecided { case, .. }
            | SeriouslyWounded { case }
            | HealthUpdated { case }
            | CommissionDecided { case, .. }
            | ProceedingsHeld { case, .. }
            | Escaped { case }
            | Recaptured { case }
            | Died { case, .. }
            | Released { case }
            | Corrected { case, .. }
            | InterviewRecorded { case, .. }
            | AcceptanceRecorded { case, .. }
            | AcceptanceWithdrawn { case, .. }
            | ConsentRecorded { case, .. }
            | ConsentWithdrawn { case, .. }
            | MovementProposed { case, .. }
            | MovementApproved { case, .. }
            | MovementReconfirmed { case, .. }
            | MovementSuspended { case, .. }
            | MovementWithdrawn { case, .. }
            | MovementCompleted { case, .. } => Some(case),
        }
    }

    /// The event kind: `case.` and the fact's name.
    pub fn kind(&self) -> String {
        let tag = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("fact").and_then(|f| f.as_str().map(str::to_string)))
            .unwrap_or_default();
        format!("case.{tag}")
    }
}

/// One thing to record: public body and sealed parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub body: FactBody,
    pub statements: Option<Statements>,
    pub medical: Option<Medical>,
}

impl Fact {
    pub fn public(body: FactBody) -> Self {
        Self {
            body,
            statements: None,
            medical: None,
        }
    }
}
