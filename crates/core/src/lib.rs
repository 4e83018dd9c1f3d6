//! The domain: what a captive's record holds, how input is checked, what an event is, and the
//! projection derived from events. Pure: no I/O, no clock of its own (callers pass "today").

pub mod event;
pub mod input;
pub mod law;
pub mod particulars;
pub mod policy;
pub mod projection;
pub mod states;

pub use event::{Actor, Class, Event, SealedPart, kind};
pub use particulars::{
    Art17Field, CoreParticulars, FamilyParticulars, FieldError, IdentityParticulars, NameForm,
    PartialDate, Registration, RegistrationInput, Script, System,
};
pub use projection::{Amended, PersonRow, PersonStatus, Projection, ProjectionError};
