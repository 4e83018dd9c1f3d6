//! Reads that open sealed classes beyond `person show`: what a captive said in interviews (to the
//! organisation that interviewed him), his access history, and name search filtered by the
//! policy. Every opening of a sealed class is recorded as an event.

use crate::StoreError;
use crate::law::{data_key, notes_aad};
use crate::registry::{NewEvent, Registry, new_id};
use asylon_core::law::{FactBody, Principal, Statements, Wish};
use asylon_core::policy::{Action, may};
use asylon_core::{Class, kind};
use asylon_vault::{OrgSecret, seal_aad};
use serde::Serialize;
use time::OffsetDateTime;

/// One interview as its own organisation sees it.
#[derive(Debug, Serialize)]
pub struct InterviewView {
    pub seq: u64,
    pub at: String,
    pub on: String,
    pub org: String,
    pub interviewer: String,
    pub language: String,
    pub private: bool,
    /// What he said; `None` when the caller's organisation did not conduct it or he was erased.
    pub wish: Option<Wish>,
    pub fear_of_persecution: Option<bool>,
    pub notes: Option<String>,
    /// Why `notes` is empty when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes_withheld: Option<String>,
}

/// One opening of a person's sealed classes.
#[derive(Debug, Serialize)]
pub struct AccessEntry {
    pub seq: u64,
    pub at: String,
    pub user: String,
    pub org: String,
    pub classes: Vec<String>,
}

/// The event recording that `classes` of `case` were opened, by whoever writes it.
pub(crate) fn read_record(case: &str, classes: &[&str]) -> NewEvent {
    NewEvent {
        id: new_id(),
        person: Some(case.to_string()),
        kind: kind::SEALED_READ.into(),
        public: serde_json::json!({ "classes": classes }).to_string(),
        sealed: vec![],
        registered: None,
    }
}

impl Registry {
    /// Records that `who` opened `classes` of `case`.
    pub(crate) fn record_read(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        case: &str,
        classes: &[&str],
    ) -> Result<(), StoreError> {
        let read = read_record(case, classes);
        self.write(&who.actor(), now, |_, _| Ok(vec![read]))?;
        Ok(())
    }

    /// The interviews of `case`. Those conducted by `who`'s organisation show what he said
    /// (if the policy lets `who` read them); notes sealed to the organisation open only with
    /// `org_key`, the organisation's private key unlocked by the member's password.
    pub fn interviews(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        case: &str,
        org_key: Option<&OrgSecret>,
    ) -> Result<Vec<InterviewView>, StoreError> {
        let state = &self.authorized(who, case, Action::ReadCore)?;
        let dk = data_key(&self.keys, case, Class::Statements)?;
        let mut out = Vec::new();
        let mut opened = false;
        for ev in self.events(Some(case))? {
            let Ok(FactBody::InterviewRecorded {
                on,
                org,
                interviewer,
                language,
                private,
                ..
            }) = serde_json::from_str::<FactBody>(&ev.public)
            else {
                continue;
            };
            let mut view = InterviewView {
                seq: ev.seq,
                at: ev.at.clone(),
                on,
                org,
                interviewer,
                language,
                private,
                wish: None,
                fear_of_persecution: None,
                notes: None,
                notes_withheld: None,
            };
            if let Err(why) = may(who, Some(state), Action::ReadStatements { org: &view.org }) {
                view.notes_withheld = Some(why.0);
                out.push(view);
                continue;
            }
            let (Some(dk), Some(part)) =
                (&dk, ev.sealed.iter().find(|p| p.class == Class::Statements))
            else {
                view.notes_withheld =
                    Some(format!("{case} was erased: what he said no longer exists"));
                out.push(view);
                continue;
            };
            let plain = dk.open(
                &seal_aad(case, Class::Statements.as_str(), &ev.id),
                &part.ciphertext,
            )?;
            let st: Statements = serde_json::from_slice(&plain).map_err(|e| {
                StoreError::Damaged(format!("event {}: sealed statements: {e}", ev.seq))
            })?;
            opened = true;
            view.wish = Some(st.wish.clone());
            view.fear_of_persecution = Some(st.fear_of_persecution);
            view.notes = st.notes.clone();
            if let Some(sealed) = &st.org_notes {
                match org_key {
                    Some(k) if sealed.org == who.org => {
                        let bytes = hex::decode(&sealed.sealed).map_err(|_| {
                            StoreError::Damaged(format!("event {}: sealed notes", ev.seq))
                        })?;
                        match k.open(&notes_aad(case, &ev.id), &bytes) {
                            Ok(notes) => {
                                view.notes = Some(String::from_utf8_lossy(&notes).into_owned())
                            }
                            Err(_) => {
                                view.notes_withheld = Some(format!(
                                    "the notes do not open with this key: they are sealed to {}'s",
                                    sealed.org
                                ))
                            }
                        }
                    }
                    _ => {
                        view.notes_withheld = Some(format!(
                            "the notes are sealed to {}'s key: sign in with a password to open them",
                            sealed.org
                        ))
                    }
                }
            }
            out.push(view);
        }
        if opened {
            self.record_read(who, now, case, &[Class::Statements.as_str()])?;
        }
        Ok(out)
    }

    /// Who opened which sealed classes of `case`, and when.
    pub fn access_history(
        &self,
        who: &Principal,
        case: &str,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        self.authorized(who, case, Action::ReadAccessHistory)?;
        let mut out = Vec::new();
        for ev in self.events(Some(case))? {
            if ev.kind != kind::SEALED_READ {
                continue;
            }
            #[derive(serde::Deserialize)]
            struct Read {
                classes: Vec<String>,
            }
            let r: Read = serde_json::from_str(&ev.public).map_err(|e| StoreError::Tampered {
                seq: ev.seq,
                reason: format!("access record unreadable: {e}"),
            })?;
            out.push(AccessEntry {
                seq: ev.seq,
                at: ev.at,
                user: ev.actor.user,
                org: ev.actor.org,
                classes: r.classes,
            });
        }
        Ok(out)
    }
}
