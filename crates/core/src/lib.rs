//! The domain: what a captive's record holds, how input is checked, what an event is, and the
//! projection derived from events. Pure: no I/O, no clock of its own (callers pass "today").

// Tests may unwrap and index: a failure there is a failed test, not a crash in the field.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod event;
pub mod law;
pub mod particulars;
pub mod policy;
pub mod projection;

pub use event::{Actor, Class, Event, SealedPart, kind};
pub use particulars::{
    Art17Field, CoreParticulars, FamilyParticulars, FieldError, IdentityParticulars, NameForm,
    PartialDate, Registration, RegistrationInput, Script, System,
};
pub use projection::{PersonRow, PersonStatus, Projection, ProjectionError};
