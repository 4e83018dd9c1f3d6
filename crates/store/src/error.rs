use asylon_core::FieldError;
use asylon_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
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
    #[error("no registry in {0}: run `asylon init --data-dir {0}` first")]
    NoRegistry(String),
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
    #[error("external id {external_id} is already registered as {case}")]
    DuplicateExternalId { external_id: String, case: String },
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
}

impl StoreError {
    pub(crate) fn io(what: &str, e: std::io::Error) -> Self {
        Self::Io(format!("{what}: {e}"))
    }
}
