//! The domain: what a captive's record holds, how input is checked, what an event is, and the
//! projection derived from events. Pure: no I/O, no clock of its own (callers pass the time).

pub mod age;
pub mod event;
pub mod input;
pub mod law;
pub mod particulars;
pub mod policy;
pub mod projection;
pub mod states;
pub mod statistics;

pub use age::Age;
pub use event::{Actor, Class, Event, SealedPart, kind};
pub use particulars::{
    Art17Field, CoreParticulars, FamilyParticulars, FieldError, IdentityParticulars, NameForm,
    PartialDate, Registration, RegistrationInput, Script, System,
};
pub use projection::{Amended, PersonRow, PersonStatus, Projection, ProjectionError};

use time::{Date, Duration, OffsetDateTime};

/// The latest calendar day that is today somewhere on Earth at `now`: the date at UTC+14, the
/// easternmost time zone. A day after it is in the future wherever the user is; a day up to it
/// is not refused as future. Asylon is used from Kyiv (UTC+2/+3) to Seoul (UTC+9) and Geneva:
/// measured by the date in UTC, a Korean liaison recording "today" before 09:00 was told his
/// date was in the future.
pub fn latest_today(now: OffsetDateTime) -> Date {
    now.to_offset(time::UtcOffset::UTC)
        .checked_add(Duration::hours(14))
        .map_or(Date::MAX, |t| t.date())
}
