//! Who may see and do what: one function, [`may`], decides every read of a class and every law
//! command, from the actor's organisation and roles, the person's state and his consents
//! (DESIGN, "The record" and "Security" 2 and 4). Callers never check roles themselves.

use crate::Class;
use crate::law::{Case, Command, MovementKind, Principal, Role};
use std::fmt;

/// What someone wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// See the public part of the record.
    ReadCore,
    /// Open a sealed class.
    Read(Class),
    /// Record a law command.
    Record(&'a Command),
    /// Register captives (single or import).
    Register,
    /// Correct a captive's particulars (`person amend`).
    Amend,
    /// Crypto-shred a captive.
    Erase,
    /// Read what he said in an interview conducted by organisation `org` (wish, fear, notes).
    ReadStatements { org: &'a str },
    /// See who opened his sealed classes, and when.
    ReadAccessHistory,
    /// Manage the users and tokens of organisation `org`.
    ManageAccounts { org: &'a str },
    /// Take a signed checkpoint or an inclusion proof (hashes only).
    ReadLedger,
    /// Read the counts of captives of a report (no count smaller than k).
    ReadStatistics,
}

/// A refusal by the policy, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial(pub String);

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not allowed: {}", self.0)
    }
}

impl std::error::Error for Denial {}

fn deny(reason: impl Into<String>) -> Result<(), Denial> {
    Err(Denial(reason.into()))
}

/// The receiving state an organisation speaks for (`receiving:KR` → KR).
pub fn receiving(org: &str) -> Option<&str> {
    org.strip_prefix("receiving:")
}

/// Whether `id` names an organisation: `detaining`, `neutral` or `receiving:XX` with XX a
/// state's ISO 3166 code.
pub fn is_org_id(id: &str) -> bool {
    match receiving(id) {
        Some(state) => crate::states::is_state_code(state),
        None => id == "detaining" || id == "neutral",
    }
}

/// Has he been referred to state `x`: a transfer to it proposed, or its acceptance recorded?
fn referred(case: &Case, x: &str) -> bool {
    referred_to(case).any(|state| state == x)
}

/// The states he has been referred to (each as often as it was: an acceptance, and each
/// transfer proposed): the receiving states that may see his public record.
pub fn referred_to(case: &Case) -> impl Iterator<Item = &str> {
    let transfers = case.movements.values().filter_map(|m| match &m.kind {
        MovementKind::Transfer { to } => Some(to.as_str()),
        _ => None,
    });
    case.acceptances.keys().map(String::as_str).chain(transfers)
}

/// Whose public records someone may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreScope<'a> {
    /// Every captive's.
    Everyone,
    /// Only those of captives referred to this state ([`referred_to`]).
    ReferredTo(&'a str),
}

/// Whose public records `p` may see, for a listing that keeps what [`may`] decides
/// [`Action::ReadCore`] on ([`referred_to`]) rather than each captive's whole state; a refusal
/// if he may see none. What it says of each captive is what [`may`] says.
pub fn core_scope(p: &Principal) -> Result<CoreScope<'_>, Denial> {
    may(p, None, Action::ReadCore)?;
    Ok(scope_of(&p.org))
}

fn scope_of(org: &str) -> CoreScope<'_> {
    match receiving(org) {
        Some(x) => CoreScope::ReferredTo(x),
        None => CoreScope::Everyone,
    }
}

fn consented(case: &Case, org: &str, class: Class) -> bool {
    case.consents.get(org).is_some_and(|c| c.contains(&class))
}

/// Decides whether `p` may do `action` about `case` (None for actions on no one person).
pub fn may(p: &Principal, case: Option<&Case>, action: Action<'_>) -> Result<(), Denial> {
    let has = |r: Role| p.roles.contains(&r);
    let org = p.org.as_str();
    let detaining = org == "detaining";
    let neutral = org == "neutral";
    if let Action::ManageAccounts { org: target } = action {
        return if has(Role::Admin) && target == org {
            Ok(())
        } else {
            deny("only an administrator of an organisation manages its users")
        };
    }
    // Deployment administrators manage accounts, not content.
    if p.roles.iter().all(|r| *r == Role::Admin) {
        return deny("administrators manage accounts and cannot read or record captives' data");
    }
    match action {
        Action::Register | Action::Amend | Action::Erase => {
            if detaining && (has(Role::Registrar) || has(Role::Legal)) {
                Ok(())
            } else {
                deny(
                    "only a registrar or legal officer of the detaining power registers, corrects or erases captives",
                )
            }
        }
        Action::ReadCore => match (scope_of(org), case) {
            (CoreScope::ReferredTo(x), Some(c)) if !referred(c, x) => {
                deny(format!("{x} sees only captives referred to it"))
            }
            _ => Ok(()),
        },
        Action::Read(class) => {
            if let (Some(x), Some(c)) = (receiving(org), case) {
                if !referred(c, x) {
                    return deny(format!("{x} sees only captives referred to it"));
                }
                return if class != Class::Statements && consented(c, org, class) {
                    Ok(())
                } else {
                    deny(format!(
                        "he has not agreed to share his {} data with {x}",
                        class.as_str()
                    ))
                };
            }
            match class {
                Class::Identity if detaining || neutral => Ok(()),
                Class::Family
                    if neutral || (detaining && (has(Role::Registrar) || has(Role::Legal))) =>
                {
                    Ok(())
                }
                Class::Medical if neutral || has(Role::Medical) => Ok(()),
                // Statements are sealed to the organisation that conducted the interview; only
                // the derived wish status is shown to others.
                Class::Statements => {
                    deny("what he said stays with the organisation that interviewed him")
                }
                c => deny(format!(
                    "the {} class is not open to {org} users with these roles",
                    c.as_str()
                )),
            }
        }
        Action::Record(cmd) => record(p, cmd),
        Action::ReadStatements { org: by } => {
            if by == org && (has(Role::Interviewer) || has(Role::Legal)) {
                Ok(())
            } else {
                deny("what he said stays with the organisation that interviewed him")
            }
        }
        Action::ReadAccessHistory => {
            if neutral || (detaining && (has(Role::Legal) || has(Role::Auditor))) {
                Ok(())
            } else {
                deny(
                    "the access history is open to the neutral agency and the detaining power's legal officers and auditors",
                )
            }
        }
        // Checkpoints and proofs hold hashes only; every party keeps them.
        Action::ReadLedger => Ok(()),
        // Counts of every captive: for the detaining power and the neutral agency, not for a
        // receiving state, which sees only captives referred to it.
        Action::ReadStatistics => {
            let reads = has(Role::Analyst)
                || has(Role::Registrar)
                || has(Role::Legal)
                || has(Role::Auditor);
            if (detaining || neutral) && reads {
                Ok(())
            } else {
                deny(
                    "statistics are for the detaining power's and the neutral agency's analysts, registrars, legal officers and auditors",
                )
            }
        }
        Action::ManageAccounts { .. } => deny("accounts are managed above"),
    }
}

fn record(p: &Principal, cmd: &Command) -> Result<(), Denial> {
    use Command as C;
    let has = |r: Role| p.roles.contains(&r);
    let org = p.org.as_str();
    let detaining = org == "detaining";
    let neutral = org == "neutral";
    let ok = match cmd {
        C::DefinePlace { .. }
        | C::RecordCapture { .. }
        | C::MoveCustody { .. }
        | C::IssueCaptureCard { .. }
        | C::SendNotification { .. }
        | C::DoubtStatus { .. }
        | C::HoldForProceedings { .. }
        | C::RecordEscape { .. }
        | C::RecordRecapture { .. }
        | C::RecordDeath { .. }
        | C::Release { .. }
        | C::Correct { .. }
        | C::ProposeTransfer { .. }
        | C::ProposeRepatriation { .. }
        | C::HandOver { .. }
        | C::WithdrawMovement { .. }
        | C::CreateExchangeList { .. }
        | C::AddToExchangeList { .. }
        | C::RemoveFromExchangeList { .. }
        | C::CompleteExchangeList { .. } => detaining && (has(Role::Registrar) || has(Role::Legal)),
        C::DecideTribunal { .. } | C::Approve { .. } | C::FinaliseExchangeList { .. } => {
            detaining && has(Role::Legal)
        }
        C::DeclareSeriouslyWounded { .. } | C::UpdateHealth { .. } | C::DecideCommission { .. } => {
            has(Role::Medical) || (neutral && has(Role::Interviewer))
        }
        // A receiving state states whom it accepts; it does not interview in the camps.
        C::RecordInterview { .. } => has(Role::Interviewer) && receiving(org).is_none(),
        C::Reconfirm { .. } => neutral && (has(Role::Interviewer) || has(Role::Legal)),
        C::RecordAcceptance { .. } | C::WithdrawAcceptance { .. } => {
            receiving(org).is_some() && (has(Role::Liaison) || has(Role::Legal))
        }
        C::RecordConsent { .. } | C::WithdrawConsent { .. } => {
            (neutral || detaining)
                && (has(Role::Interviewer) || has(Role::Registrar) || has(Role::Legal))
        }
    };
    if ok {
        Ok(())
    } else {
        deny(format!(
            "{} users with roles {:?} cannot record this",
            p.org, p.roles
        ))
    }
}

#[cfg(test)]
mod tests;
