//! Current state derived from the events. `rebuild` replays the log through [`Projection::apply`];
//! `ledger verify` compares the stored projection with such a replay.

use crate::event::{Event, kind};
use crate::particulars::CoreParticulars;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The public payload of a `person.amended` event: his public particulars as they now read, the
/// event whose particulars they replace (his registration or the amendment before), and why.
/// The sealed classes it carries replace those of that event whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amended {
    pub amends: u64,
    pub reason: String,
    #[serde(flatten)]
    pub core: CoreParticulars,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    Registered,
    Erased,
}

impl PersonStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Erased => "erased",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Registered, Self::Erased]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One person's current state: public facts only, never sealed content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonRow {
    pub case_no: String,
    pub external_id: Option<String>,
    pub power: String,
    pub captured_on: String,
    pub captured_at: Option<String>,
    pub status: PersonStatus,
    /// The event that registered him.
    pub registered_seq: u64,
    /// The latest event about him.
    pub last_seq: u64,
}

impl PersonRow {
    /// The row a registration creates; the one rule both a replay and a live write use.
    pub fn registered(case_no: String, seq: u64, core: &CoreParticulars) -> Self {
        Self {
            case_no,
            external_id: core.external_id.clone(),
            power: core.power.clone(),
            captured_on: core.captured_on.to_string(),
            captured_at: core.captured_at.clone(),
            status: PersonStatus::Registered,
            registered_seq: seq,
            last_seq: seq,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProjectionError {
    #[error("event {seq}: {reason}")]
    Invalid { seq: u64, reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    pub persons: BTreeMap<String, PersonRow>,
}

impl Projection {
    pub fn apply(&mut self, ev: &Event) -> Result<(), ProjectionError> {
        let bad = |reason: String| ProjectionError::Invalid {
            seq: ev.seq,
            reason,
        };
        match ev.kind.as_str() {
            kind::PERSON_REGISTERED => {
                let case = ev
                    .person
                    .clone()
                    .ok_or_else(|| bad("registration without a case number".into()))?;
                if self.persons.contains_key(&case) {
                    return Err(bad(format!("{case} is registered twice")));
                }
                let core: CoreParticulars = serde_json::from_str(&ev.public)
                    .map_err(|e| bad(format!("public payload unreadable: {e}")))?;
                self.persons
                    .insert(case.clone(), PersonRow::registered(case, ev.seq, &core));
            }
            kind::PERSON_AMENDED => {
                let case = ev.person.as_deref().unwrap_or_default();
                let amended: Amended = serde_json::from_str(&ev.public)
                    .map_err(|e| bad(format!("public payload unreadable: {e}")))?;
                let row = self
                    .persons
                    .get_mut(case)
                    .ok_or_else(|| bad(format!("amendment of unknown person {case:?}")))?;
                if row.status == PersonStatus::Erased {
                    return Err(bad(format!("amendment of {case}, who was erased")));
                }
                row.power = amended.core.power;
                row.captured_on = amended.core.captured_on.to_string();
                row.captured_at = amended.core.captured_at;
                row.last_seq = ev.seq;
            }
            kind::PERSON_ERASED => {
                let case = ev.person.as_deref().unwrap_or_default();
                let row = self
                    .persons
                    .get_mut(case)
                    .ok_or_else(|| bad(format!("erasure of unknown person {case:?}")))?;
                row.status = PersonStatus::Erased;
                row.last_seq = ev.seq;
            }
            // Kinds this version does not project (for example, written by a newer one) leave
            // the persons it knows unchanged, but still touch the person's latest event.
            _ => {
                if let Some(row) = ev.person.as_deref().and_then(|p| self.persons.get_mut(p)) {
                    row.last_seq = ev.seq;
                }
            }
        }
        Ok(())
    }
}
