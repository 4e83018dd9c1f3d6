//! Correcting a captive's particulars. Nothing in the log is changed: a `person.amended` event
//! carries his whole record as it now reads (the same particulars a registration takes), sealed
//! under his own data keys like a registration, with the event it replaces and the reason. What
//! `person show` opens is the latest of his registration and its amendments; the projection's
//! public columns, the guards' power of origin and the blind index of names follow it.

use crate::StoreError;
use crate::db::args;
use crate::registry::{NewEvent, Registry, new_id};
use asylon_core::law::{Principal, Settings};
use asylon_core::{Amended, Class, FieldError, PersonStatus, RegistrationInput, SealedPart, kind};
use asylon_vault::seal_aad;
use time::OffsetDateTime;

/// The longest reason a correction or an erasure takes.
const REASON_CHARS: usize = 500;

/// The reason given for a correction or an erasure (`what`), trimmed: 1 to 500 characters.
pub(crate) fn reason_text(what: &str, reason: &str) -> Result<String, FieldError> {
    asylon_core::input::free_text(&format!("the reason for the {what}"), reason, REASON_CHARS)
        .map(str::to_string)
        .map_err(|why| FieldError {
            field: "reason".into(),
            reason: why,
        })
}

/// What a correction recorded: its event, the movements it suspended, and his age at capture
/// by the corrected date of birth (if it gives one), for the one correcting it to be told of a
/// child.
#[derive(Debug, serde::Serialize)]
pub struct Amendment {
    pub seq: u64,
    pub suspended: Vec<Suspension>,
    pub age_at_capture: Option<asylon_core::Age>,
}

/// A pending movement a correction suspended, and why.
#[derive(Debug, serde::Serialize)]
pub struct Suspension {
    pub movement: String,
    pub reason: String,
}

/// A public payload: what the registry made itself, so a failure is a fault, not bad input.
fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Damaged(e.to_string()))
}

/// The seq of the event whose particulars are his current ones: his registration, or the
/// latest amendment of it.
pub(crate) fn particulars_seq(conn: &dyn crate::db::Sql, case: &str) -> Result<u64, StoreError> {
    let row = conn.one(
        "SELECT seq FROM events WHERE person = ?1 AND kind IN (?2, ?3) ORDER BY seq DESC LIMIT 1",
        args![case, kind::PERSON_REGISTERED, kind::PERSON_AMENDED],
    )?;
    match row {
        Some(r) => Ok(r.i64(0)?.max(0) as u64),
        None => Err(StoreError::UnknownPerson(case.to_string())),
    }
}

/// Why a correction of the particulars of event `from` was refused when his current ones are
/// those of event `current`.
fn stale_correction(case: &str, from: u64, current: u64) -> String {
    let since = if from < current {
        "they were corrected again after they were read, and this correction would undo that one; "
    } else {
        ""
    };
    format!(
        "{case}'s particulars are those of event {current}, not of event {from}: {since}read them \
         again (person show {case} --particulars, GET /api/persons/{case}/particulars) and make \
         the change on what they say now; nothing was written"
    )
}

impl Registry {
    /// Replaces `case`'s particulars by `input`, his whole record as it should now read, if the
    /// policy lets `who` correct it; returns what was recorded. `input` is validated as a
    /// registration is; an external id, if given, must be the one he is registered under (it
    /// ties him to the list he came from and cannot be moved to another captive). Anything
    /// invalid, an erased captive or a refusal by the policy writes nothing. `input` names the
    /// event whose particulars it corrects (`from_event`, given by [`Registry::particulars_as`]);
    /// when his particulars have been corrected since, it is refused
    /// ([`StoreError::Conflict`]): made from an older reading it would silently undo the other.
    ///
    /// A correction of the power he depends on suspends, in the same transaction, a pending
    /// transfer to that power while G1 protects him ([`asylon_core::law::amended`]).
    ///
    /// The name index is changed in the key store just before the events are appended: a crash
    /// between the two leaves him found by his new names while his record still reads as
    /// before: the same correction made again completes it, and [`Registry::reindex_names`]
    /// (`asylon rebuild`) gives him back the index of the record he has.
    pub fn amend_as(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        settings: &Settings,
        case: &str,
        (input, shared): (&RegistrationInput, crate::SharedNumbers),
        reason: &str,
    ) -> Result<Amendment, StoreError> {
        self.authorized(who, case, asylon_core::policy::Action::Amend)?;
        let row = self.person(case)?;
        if row.status == PersonStatus::Erased {
            return Err(StoreError::Erased {
                case: case.to_string(),
            });
        }
        let mut errors = Vec::new();
        let reason = reason_text("correction", reason).map_err(|e| errors.push(e));
        if let Some(given) = &input.external_id
            && Some(given.trim()) != row.external_id.as_deref()
        {
            errors.push(FieldError {
                field: "external_id".into(),
                reason: match &row.external_id {
                    Some(id) => format!(
                        "{case} is registered under {id}; a correction cannot change it (leave it out or give it unchanged)"
                    ),
                    None => format!(
                        "{case} was registered without one; a correction cannot add it (leave it out)"
                    ),
                },
            });
        }
        let mut checked = match input.validate_correction(now) {
            Ok(checked) => Some(checked),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let (Ok(reason), Some((reg, from_event)), true) =
            (reason, checked.as_mut(), errors.is_empty())
        else {
            return Err(StoreError::Invalid(errors));
        };
        let from_event = *from_event;
        // A service number another captive of his power holds, as at registration: asked in
        // the write's transaction (see `NumbersGiven`).
        let given = self.numbers_given(std::slice::from_ref(reg), shared)?;
        reg.core.external_id = row.external_id.clone();
        let identity = crate::plain::identity_bytes(&reg.identity)?;
        let family = (!reg.family.is_empty())
            .then(|| crate::plain::family_bytes(&reg.family))
            .transpose()?;
        let tokens =
            crate::search::person_tokens(&self.blind_index_key(), &reg.identity, &reg.core.power);
        let core = reg.core.clone();
        let age_at_capture = reg.age_at_capture();
        let mut suspensions = Vec::new();
        let written = self.write(&who.actor(), now, |tx, keys| {
            // Read in the write's transaction: no other correction comes between the check
            // and this one.
            let amends = particulars_seq(tx, case)?;
            if amends != from_event {
                return Err(StoreError::Conflict(stale_correction(
                    case, from_event, amends,
                )));
            }
            given.held(tx, keys, Some(case))?;
            let id = new_id();
            let mut sealed = Vec::with_capacity(2);
            let parts = [(Class::Identity, Some(identity)), (Class::Family, family)];
            for (class, plain) in parts {
                let Some(plain) = plain else { continue };
                let dk = crate::law::data_key_for_write(keys, case, class)?;
                sealed.push(SealedPart {
                    class,
                    ciphertext: dk.seal(&seal_aad(case, class.as_str(), &id), &plain),
                });
            }
            let world = crate::law::load_world(tx, keys, Some(case))?;
            let suspended = asylon_core::law::amended(&world, case, &core.power, settings);
            let mut events = vec![NewEvent {
                id,
                person: Some(case.to_string()),
                kind: kind::PERSON_AMENDED.into(),
                public: json(&Amended {
                    amends,
                    reason,
                    core,
                })?,
                sealed,
                registered: None,
            }];
            for fact in suspended {
                if let asylon_core::law::FactBody::MovementSuspended {
                    movement, reason, ..
                } = &fact.body
                {
                    suspensions.push(Suspension {
                        movement: movement.clone(),
                        reason: reason.clone(),
                    });
                }
                events.push(NewEvent {
                    id: new_id(),
                    person: Some(case.to_string()),
                    kind: fact.body.kind(),
                    public: json(&fact.body)?,
                    sealed: Vec::new(),
                    registered: None,
                });
            }
            keys.replace_tokens(case, &tokens)?;
            Ok(events)
        });
        let written = written.map_err(|e| self.told(&who.actor(), now, "correction", e))?;
        let seq = written
            .first()
            .map(|e| e.seq)
            .ok_or_else(|| StoreError::Damaged("the amendment was not written".into()))?;
        Ok(Amendment {
            seq,
            suspended: suspensions,
            age_at_capture,
        })
    }
}

impl Registry {
    /// His particulars in the JSON `person amend` takes, for `who` (the
    /// read is recorded), so that a correction starts from the record as it reads. The policy
    /// is asked for both sealed classes of the record before either is opened: a record given
    /// back without a class would drop it, so a reader who may not open both gets nothing.
    pub fn particulars_as(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        case: &str,
    ) -> Result<serde_json::Value, StoreError> {
        use asylon_core::policy::{Action, may};
        // His state is loaded once for both questions (loading it reads his whole record).
        let state = self.authorized(who, case, Action::Read(Class::Identity))?;
        may(who, Some(&state), Action::Read(Class::Family)).map_err(StoreError::Denied)?;
        let view = self.show_person(who, now, case)?;
        if view.row.status == PersonStatus::Erased {
            return Err(StoreError::Erased {
                case: case.to_string(),
            });
        }
        view.particulars().ok_or_else(|| {
            StoreError::Denied(asylon_core::policy::Denial(format!(
                "{case}'s particulars cannot be given whole: {}",
                view.withheld.join("; ")
            )))
        })
    }
}

impl crate::PersonView {
    /// His record in the JSON shape `person amend` takes (docs/particulars.md), with the event
    /// it is read from (`from_event`). `None` unless every sealed class of it was opened (see
    /// [`Registry::particulars_as`]).
    fn particulars(&self) -> Option<serde_json::Value> {
        use serde_json::{Map, Value, json};
        let id = self.identity.as_ref()?;
        if !self.withheld.is_empty() {
            return None;
        }
        let mut out = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                out.insert(k.to_string(), v);
            }
        };
        let text = |t: &Option<String>| t.as_ref().map(|t| json!(t));
        let row = &self.row;
        put("external_id", text(&row.external_id));
        put("names", Some(json!(id.names)));
        put(
            "date_of_birth",
            id.date_of_birth.map(|d| json!(d.to_string())),
        );
        put("rank", text(&id.rank));
        put("service_number", text(&id.service_number));
        put(
            "not_stated",
            (!self.not_stated.is_empty()).then(|| json!(self.not_stated)),
        );
        put("place_of_birth", text(&id.place_of_birth));
        put("unit", text(&id.unit));
        put("power", Some(json!(row.power)));
        if let Some(f) = &self.family {
            put("father_first_name", text(&f.father_first_name));
            put("mother_maiden_name", text(&f.mother_maiden_name));
            put("next_of_kin", text(&f.next_of_kin));
            put("correspondence_address", text(&f.correspondence_address));
            put("home_address", text(&f.home_address));
        }
        put("captured_on", Some(json!(row.captured_on)));
        put("captured_at", text(&row.captured_at));
        // What a correction made from this reading names (a registration refuses it).
        put("from_event", Some(json!(self.particulars_seq)));
        Some(Value::Object(out))
    }
}
