//! The law as code: GCIII duties and the guards G1–G8 as pure functions.
//!
//! A [`Command`] from a [`Principal`] is decided against the current [`World`] (derived from the
//! events), the deployment [`Settings`] and the time `now`: the answer is either the [`Fact`]s to
//! record, or a [`Refusal`] that names the guard and says in plain words what is missing. A
//! refusal records nothing. `World::apply` folds facts into state; replaying the log through it
//! gives the same world as applying the facts as they were decided.

mod deadlines;
mod decide;
mod facts;
mod settings;
mod world;

pub use deadlines::{
    Deadline, DeadlineCursor, DeadlineKind, DeadlineStatus, deadline_order, deadlines,
};
pub use decide::{Command, Principal, Role, amended, decide};
pub use facts::{
    CustodyKind, Fact, FactBody, Medical, MovementKind, OrgNotes, Statements, TribunalOutcome, Wish,
};
pub use settings::Settings;
pub use world::{
    Case, Custody, End, ExchangeList, Interview, Movement, MovementStatus, WishStatus, World,
    by_case_number,
};

use std::fmt;

/// The guard that refused a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Guard {
    G1,
    G2,
    G3,
    G4,
    G5,
    G6,
    G7,
    G8,
    /// Not a guard of the Convention: the command does not fit the record (unknown person,
    /// a movement that does not exist, a role the actor lacks).
    Record,
}

/// Why a command was refused, in words a legal officer understands. Nothing was recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub guard: Guard,
    pub message: String,
}

impl Refusal {
    pub fn new(guard: Guard, message: impl Into<String>) -> Self {
        Self {
            guard,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "transfer of AS-1 to KR refused (G2): one interview …", or the guard at the end.
        match self.guard {
            Guard::Record => write!(f, "{}", self.message),
            g => match self.message.split_once(" refused: ") {
                Some((what, why)) => write!(f, "{what} refused ({g:?}): {why}"),
                None => write!(f, "{} ({g:?})", self.message),
            },
        }
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests;
