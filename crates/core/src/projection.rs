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
    /// The row a registration creates; the one rule both a replay and a live write use. Takes
    /// the particulars whole: both are done with them, and a bulk import makes one per captive.
    pub fn registered(case_no: String, seq: u64, core: CoreParticulars) -> Self {
        Self {
            case_no,
            external_id: core.external_id,
            power: core.power,
            captured_on: core.captured_on.to_string(),
            captured_at: core.captured_at,
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
    /// Boxed, as the law's cases are: a map filled in key order leaves its nodes' room for
    /// eleven values a little over half used, and a replay holds every captive's row.
    pub persons: BTreeMap<String, Box<PersonRow>>,
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
                self.persons.insert(
                    case.clone(),
                    Box::new(PersonRow::registered(case, ev.seq, core)),
                );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Actor;

    fn event(seq: u64, person: &str, kind: &str, public: serde_json::Value) -> Event {
        Event {
            seq,
            id: format!("e{seq}"),
            at: "2025-02-01T00:00:00Z".into(),
            actor: Actor {
                user: "u".into(),
                org: "detaining".into(),
            },
            person: Some(person.into()),
            kind: kind.into(),
            public: public.to_string(),
            sealed: Vec::new(),
        }
    }

    fn registered() -> Projection {
        let mut p = Projection::default();
        p.apply(&event(
            2,
            "AS-000001",
            kind::PERSON_REGISTERED,
            serde_json::json!({"external_id": "UA-1", "power": "RU",
                "captured_on": "2025-01-09", "captured_at": "Kursk"}),
        ))
        .unwrap();
        p
    }

    fn amendment(seq: u64, person: &str) -> Event {
        event(
            seq,
            person,
            kind::PERSON_AMENDED,
            serde_json::json!({"amends": 2, "reason": "misread", "external_id": "UA-1",
                "power": "KP", "captured_on": "2025-01-08"}),
        )
    }

    #[test]
    fn an_amendment_replaces_the_public_particulars_and_keeps_the_rest() {
        let mut p = registered();
        p.apply(&amendment(5, "AS-000001")).unwrap();
        let row = &p.persons["AS-000001"];
        assert_eq!(
            (
                row.power.as_str(),
                row.captured_on.as_str(),
                &row.captured_at
            ),
            ("KP", "2025-01-08", &None)
        );
        assert_eq!((row.registered_seq, row.last_seq), (2, 5));
        assert_eq!(row.external_id.as_deref(), Some("UA-1"));
        assert_eq!(row.status, PersonStatus::Registered);
    }

    #[test]
    fn an_amendment_of_no_one_or_of_an_erased_person_is_a_damaged_log() {
        let mut p = registered();
        let before = p.clone();
        let e = p.apply(&amendment(5, "AS-000002")).unwrap_err();
        assert!(e.to_string().contains("unknown person"), "{e}");
        let mut unreadable = amendment(5, "AS-000001");
        unreadable.public = "{\"amends\": 2}".into();
        assert!(p.apply(&unreadable).is_err());
        assert_eq!(p, before);
        p.apply(&event(
            6,
            "AS-000001",
            kind::PERSON_ERASED,
            serde_json::json!({"reason": "court order"}),
        ))
        .unwrap();
        let e = p.apply(&amendment(7, "AS-000001")).unwrap_err();
        assert!(e.to_string().contains("erased"), "{e}");
    }
}
