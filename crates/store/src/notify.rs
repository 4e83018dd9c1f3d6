//! Art 122 notifications as they leave the registry: the information bureau's record of a
//! captive, made for the neutral agency or for the power he depends on, holding exactly what the
//! law's record of sending it says it holds (G6: nothing of his identity, family or statements
//! goes to the power of origin while G1 protects him).
//!
//! The record that it was sent (what it included, what it withheld and why), the record that
//! his sealed classes were opened for it, and the opening itself happen in one write: the
//! notification is handed over only once both records are in the log, and neither is written if
//! it cannot be made.

use crate::StoreError;
use crate::access::read_record;
use crate::law::decided;
use crate::registry::{Registry, event_in, open_part};
use asylon_core::law::{Command, FactBody, Principal, Settings};
use asylon_core::policy::{Action, may};
use asylon_core::{
    Art17Field, Class, CoreParticulars, FamilyParticulars, IdentityParticulars, PersonStatus,
};
use serde::Serialize;
use time::OffsetDateTime;

/// A notification as it is handed over for sending.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    /// The event recording that it was sent, and what it holds.
    pub seq: u64,
    pub case: String,
    /// `agency` (the neutral agency) or `origin` (the power he depends on).
    pub to: String,
    /// When it was made (RFC 3339).
    pub at: String,
    /// The power he depends on.
    pub power: String,
    /// The day of his capture (or the year, or month, he was captured in).
    pub captured_on: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: PersonStatus,
    /// Where he was captured: given with his identity only, as it can tell his unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub identity: Option<IdentityParticulars>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub family: Option<FamilyParticulars>,
    /// The Art 17 particulars he did not give (with his identity only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub not_stated: Vec<Art17Field>,
    /// The classes it leaves out.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub withheld: Vec<Class>,
    /// Why they are left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Registry {
    /// Makes the Art 122 notification of `case` for `to` (`agency` or `origin`) and records that
    /// it was sent, as the law command `send_notification` does: the law decides which classes
    /// it holds (G6), and `who` must be one who may send it and open them. A refusal writes
    /// nothing.
    pub fn notify(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        s: &Settings,
        case: &str,
        to: &str,
    ) -> Result<Notification, StoreError> {
        let case = crate::register::case_as_typed(case);
        let row = self.person(&case)?;
        if row.status == PersonStatus::Erased {
            return Err(StoreError::Erased { case });
        }
        let cmd = Command::SendNotification {
            case: case.clone(),
            to: to.to_string(),
        };
        let mut made = None;
        let events = self.write(&who.actor(), now, |tx, store| {
            let (mut events, mut world) = decided(tx, store, who, now, s, &cmd)?;
            let sent = match events.as_slice() {
                [one] => serde_json::from_str::<FactBody>(&one.public)
                    .map_err(|e| StoreError::Damaged(e.to_string()))?,
                _ => return Err(StoreError::Damaged("a notification is one record".into())),
            };
            let FactBody::NotificationSent {
                included,
                withheld,
                reason,
                ..
            } = sent
            else {
                return Err(StoreError::Damaged("a notification is one record".into()));
            };
            let state = world
                .cases
                .remove(&case)
                .ok_or_else(|| StoreError::UnknownPerson(case.clone()))?;
            // Only one who may open what it holds makes it (today everyone the policy lets send
            // one may open both; this holds if that changes).
            for class in &included {
                may(who, Some(&state), Action::Read(*class)).map_err(StoreError::Denied)?;
            }
            // His particulars as his registration, or the latest correction, gives them.
            let ev = event_in(tx, crate::amend::particulars_seq(tx, &case)?)?;
            let core: CoreParticulars =
                serde_json::from_str(&ev.public).map_err(|e| StoreError::Tampered {
                    seq: ev.seq,
                    reason: format!("public payload unreadable: {e}"),
                })?;
            let (mut identity, mut family, mut opened) = (None, None, Vec::new());
            for part in ev.sealed.iter().filter(|p| included.contains(&p.class)) {
                let plain = open_part(store, &case, &ev, part)?;
                let damaged = |e: String| {
                    StoreError::Damaged(format!("sealed {} of {case}: {e}", part.class.as_str()))
                };
                match part.class {
                    Class::Identity => {
                        identity = Some(crate::plain::identity_from(&plain).map_err(damaged)?);
                    }
                    Class::Family => {
                        family = Some(crate::plain::family_from(&plain).map_err(damaged)?);
                    }
                    // Never included: what a notification holds is his record, not what he said.
                    Class::Medical | Class::Statements => continue,
                }
                opened.push(part.class);
            }
            // The record names what it holds, not what the law let it hold: a class he gave
            // nothing in (no family particulars, say) is not in it.
            if opened != included {
                let held = FactBody::NotificationSent {
                    case: case.clone(),
                    to: to.to_string(),
                    included: opened.clone(),
                    withheld: withheld.clone(),
                    reason: reason.clone(),
                };
                let sent = events
                    .first_mut()
                    .ok_or_else(|| StoreError::Damaged("a notification is one record".into()))?;
                sent.public =
                    serde_json::to_string(&held).map_err(|e| StoreError::Damaged(e.to_string()))?;
            }
            if !opened.is_empty() {
                let classes: Vec<&str> = opened.iter().map(|c| c.as_str()).collect();
                events.push(read_record(&case, &classes));
            }
            let with_identity = identity.is_some();
            made = Some(Notification {
                seq: 0,
                case: case.clone(),
                to: to.to_string(),
                at: String::new(),
                power: core.power,
                captured_on: core.captured_on.to_string(),
                status: row.status,
                captured_at: core.captured_at.filter(|_| with_identity),
                identity,
                family,
                not_stated: if with_identity {
                    core.not_stated
                } else {
                    Vec::new()
                },
                withheld,
                reason,
            });
            Ok(events)
        })?;
        let (Some(mut made), Some(sent)) = (made, events.first()) else {
            return Err(StoreError::Damaged("a notification was not made".into()));
        };
        made.seq = sent.seq;
        made.at.clone_from(&sent.at);
        Ok(made)
    }
}

#[cfg(test)]
mod tests;
