use asylon_core::FieldError;
use asylon_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Not the error's source as well: rusqlite's error has SQLite's own as its source, and
    /// every cause was told twice or three times ("database or disk is full: Error code 13:
    /// database or disk is full").
    #[error("database error: {0}")]
    Db(rusqlite::Error),
    /// The disk (or the quota) holding the registry is full: SQLite's SQLITE_FULL,
    /// PostgreSQL's 53100. The write that met it was rolled back.
    #[error("the disk holding the registry is full ({0}); free space on it")]
    Full(String),
    /// Another connection held the database for writing for longer than a statement waits
    /// (SQLite's busy timeout, 10 s; on PostgreSQL a lock wait that ran out, or a deadlock
    /// broken by failing this side). Nothing of the write was kept.
    #[error(
        "the registry is busy: another process or request held it for writing longer than this \
         one waits ({0}); this write was not made: try again once that is done (a rebuild, a \
         restore or an erasure's purge holds it longest)"
    )]
    Busy(String),
    /// An erasure destroyed the captive's keys, then failed before it was recorded (its purge,
    /// or the event, met `cause`): his sealed data is unreadable, his record not yet marked
    /// erased; the same erasure, run again, records it.
    #[error(
        "{case}'s keys were destroyed, so his sealed data can no longer be read, but the erasure \
         was not recorded ({cause}): run it again to record it"
    )]
    ErasureNotRecorded {
        case: String,
        cause: Box<StoreError>,
    },
    #[error("database error: {message}")]
    Postgres {
        message: String,
        /// SQLSTATE, e.g. 23505 for a unique violation.
        code: Option<String>,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Io(String),
    #[error("a registry already exists in {0}; refusing to overwrite it")]
    AlreadyExists(String),
    /// `place` says where (a directory, or a PostgreSQL schema), `init` how to create one there.
    #[error("no registry in {place}: create it with `{init}`")]
    NoRegistry { place: String, init: String },
    #[error("no person with case number {0}")]
    UnknownPerson(String),
    #[error("no user named {0}")]
    UnknownUser(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no event with sequence number {0}")]
    UnknownEvent(u64),
    #[error("{case} was erased: his sealed data no longer exists")]
    Erased { case: String },
    #[error(
        "the key store holds no keys for {case}: his sealed data cannot be read with it (he was \
         erased after this copy of the registry was made, or the key store is older than his \
         registration: restore with a newer one)"
    )]
    NoKeys { case: String },
    #[error("external id {external_id} is already registered as {case}")]
    DuplicateExternalId { external_id: String, case: String },
    /// A registration gives the service number of another captive of the same power, `with`;
    /// `at`, this one's place in a batch of several.
    #[error("{}", shared_number(power, with, *at))]
    SharedServiceNumber {
        power: String,
        with: crate::service::SharedWith,
        at: Option<usize>,
    },
    /// A stream of registrations (an import) stopped: while it was being written, another
    /// writer registered or corrected `case`, who depends on `power` too, giving him the service
    /// number of the captive of `external_id`, whose registration was to come.
    #[error(
        "service_number: another writer registered or corrected {case} while this import ran, \
         and he depends on {power} with the service number of {}: one captive registered twice? If \
         that is {case}, leave his row out (add what {case}'s record lacks with `person \
         amend`); if they are two men, import with --shared-service-number",
        external_id.as_deref().map_or_else(|| "a captive of this file".to_string(), |id| format!("{id} (this file)"))
    )]
    RegisteredMeanwhile {
        external_id: Option<String>,
        power: String,
        case: String,
    },
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("the registry is damaged: {0}")]
    Damaged(String),
    #[error("verification failed at event {seq}: {reason}")]
    Tampered { seq: u64, reason: String },
    #[error("verification failed: {0}")]
    VerifyFailed(String),
    #[error("{0}")]
    Denied(asylon_core::policy::Denial),
    #[error("{0}")]
    Refused(asylon_core::law::Refusal),
    #[error("settings: {0}")]
    Settings(String),
    /// The database will not let this deployment do what was asked, as it is set up (a role
    /// without the rights it needs); nothing was changed. Names tables and roles, never a
    /// captive's particulars.
    #[error("{0}")]
    Deployment(String),
}

/// A proof that cannot be made or does not check (the ranges asked of the log are those the
/// proofs ask for, so this names damage or a bug, not bad input).
impl From<asylon_ledger::ProofError> for StoreError {
    fn from(e: asylon_ledger::ProofError) -> Self {
        Self::VerifyFailed(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::Full(format!("SQLite: {e}")),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Busy(format!("SQLite: {e}"))
            }
            _ => Self::Db(e),
        }
    }
}

impl StoreError {
    pub(crate) fn io(what: &str, e: std::io::Error) -> Self {
        Self::Io(format!("{what}: {e}"))
    }
}

fn shared_number(power: &str, with: &crate::service::SharedWith, at: Option<usize>) -> String {
    use crate::service::SharedWith;
    let field = match at {
        Some(i) => format!("persons[{i}].service_number"),
        None => "service_number".into(),
    };
    let (with, again) = match with {
        SharedWith::Batch(i) => (format!("persons[{i}]"), "list him once".to_string()),
        SharedWith::Registered(case) => (
            case.clone(),
            format!(
                "do not register him again (add what {case}'s record lacks with `person amend`)"
            ),
        ),
    };
    format!(
        "{field}: {with} depends on {power} too and has the same service number: one captive \
         registered twice? If this is {with}, {again}; if they are two men, say that they share it \
         (`--shared-service-number`; over HTTP, `shared_service_number=true`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cause of a failure, outermost first, as `asylon` prints it (anyhow's `{:#}`).
    fn told(e: &StoreError) -> String {
        let mut out = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            out = format!("{out}: {cause}");
            source = cause.source();
        }
        out
    }

    #[test]
    fn a_full_disk_is_told_as_such_and_a_database_error_once() {
        let failure = |code| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("database or disk is full".into()),
            )
        };
        let full = StoreError::from(failure(rusqlite::ffi::SQLITE_FULL));
        assert!(matches!(full, StoreError::Full(_)), "{full:?}");
        assert_eq!(
            told(&full),
            "the disk holding the registry is full (SQLite: database or disk is full); free space on it"
        );
        let busy = StoreError::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        ));
        assert!(matches!(busy, StoreError::Busy(_)), "{busy:?}");
        assert!(
            told(&busy).starts_with("the registry is busy"),
            "{}",
            told(&busy)
        );
        let other = StoreError::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("attempt to write a readonly database".into()),
        ));
        assert_eq!(
            told(&other),
            "database error: attempt to write a readonly database"
        );
    }
}
