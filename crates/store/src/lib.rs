//! The registry on disk: one SQLite database in a data directory holding the event log, the
//! sealed payloads (ciphertext only), the wrapped data keys and the projection.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction that appends the events, their sealed
//! payloads and MACs, updates the projection, advances the Merkle frontier and re-signs the tree
//! head, so a crash leaves either all of it or none of it.

mod access;
pub mod accounts;
mod amend;
mod backup;
pub mod cpu;
mod db;
mod duties;
mod error;
pub mod json;
mod keystore;
mod law;
mod notify;
mod plain;
pub mod progress;
mod register;
mod registry;
mod sealed;
mod search;
mod service;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod verify;

pub use access::{AccessEntry, InterviewView};
pub use amend::{Amendment, Suspension};
pub use backup::{BackupReport, Restored};
pub use db::{PURGE_WAIT, Purge};
pub use duties::Duties;
pub use error::StoreError;
pub use keystore::keys_file;
pub use law::{CaseStatus, default_settings_text, load_settings};
pub use notify::Notification;
pub use progress::Progress;
pub use register::{NameTokens, SealedRegistration, Sealer, StreamCpu, case_as_typed, case_number};
pub use registry::{
    ConsistencyProof, Correction, Database, Erased, InclusionProof, KeySource, PersonView, Rebuilt,
    Registry, Shredded, data_file, default_key_file,
};
pub use search::{Hit, Reindexed, searchable, service_number_chars, service_number_key};
pub use service::{Holder, ServiceToken, ServiceTokens, SharedNumbers, SharedWith};
pub use verify::VerifyReport;

/// Renders a time as RFC 3339 UTC, the form every event and checkpoint carries.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
