//! Errors as JSON a person can act on: `{"error": "...", "guard": "G2", "fields": [...]}`.
//! Internal failures are logged by kind only and answered with a generic 500.

use asylon_core::FieldError;
use asylon_core::law::Guard;
use asylon_store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The guard that refused a law command (G1–G8, or `Record`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub guard: Option<Guard>,
    /// Every invalid field, when the input was invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub fields: Option<Vec<FieldError>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds to wait, for 429.
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: msg.into(),
                guard: None,
                fields: None,
            },
            retry_after: None,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::from(StoreError::Invalid(vec![FieldError {
            field: field.into(),
            reason: reason.into(),
        }]))
    }

    pub fn internal(what: &str) -> Self {
        // The kind of failure only: error texts may name a case, never plaintext, but logs are
        // kept short on principle.
        eprintln!("asylon-server: internal error: {what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; nothing was changed",
        )
    }
}

/// Seconds a client is told to wait before sending again a request the registry was too busy
/// for (`Retry-After` of a 503).
const BUSY_RETRY_AFTER: i64 = 5;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StoreError as E;
        // Something was done: his keys are gone. Told as such whatever stopped it, with the
        // status (and wait) of what stopped it, not its details.
        let e = match e {
            E::ErasureNotRecorded { case, cause } => {
                eprintln!("asylon-server: an erasure destroyed the keys and was not recorded");
                let stopped = Self::from(*cause);
                return Self {
                    retry_after: stopped.retry_after,
                    ..Self::new(
                        stopped.status,
                        format!(
                            "{case}'s keys were destroyed, so his sealed data can no longer be \
                             read, but the erasure was not recorded: send it again to record it"
                        ),
                    )
                };
            }
            e => e,
        };
        let status = match &e {
            E::Denied(_) => StatusCode::FORBIDDEN,
            E::Refused(_)
            | E::DuplicateExternalId { .. }
            | E::SharedServiceNumber { .. }
            | E::RegisteredMeanwhile { .. }
            | E::Conflict(_)
            | E::AlreadyExists(_) => StatusCode::CONFLICT,
            E::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::UnknownPerson(_) | E::UnknownEvent(_) | E::UnknownUser(_) => StatusCode::NOT_FOUND,
            E::Erased { .. } | E::NoKeys { .. } => StatusCode::GONE,
            // Nothing the client can mend, and nothing written: it may try again once an
            // administrator has freed space.
            E::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            // Nothing written, and nothing wrong with the request: another writer held the
            // registry for longer than the server waits. The client may send it again.
            E::Busy(_) => {
                let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
                err.retry_after = Some(BUSY_RETRY_AFTER);
                return err;
            }
            // The server's set-up, not the request: the operator reads what to mend in the
            // server's log (tables and roles, no particulars); the client learns nothing of it.
            E::Deployment(what) => return Self::internal(what),
            // Taken apart above.
            E::ErasureNotRecorded { .. }
            | E::Db(_)
            | E::Postgres { .. }
            | E::Vault(_)
            | E::Io(_)
            | E::NoRegistry { .. }
            | E::Damaged(_)
            | E::Tampered { .. }
            | E::VerifyFailed(_)
            | E::Settings(_) => {
                return Self::internal(match &e {
                    E::Db(_) | E::Postgres { .. } => "database",
                    E::Vault(_) => "sealing",
                    E::Tampered { .. } | E::VerifyFailed(_) => "the log does not verify",
                    _ => "registry",
                });
            }
        };
        let mut err = Self::new(status, e.to_string());
        match e {
            E::Refused(r) => err.body.guard = Some(r.guard),
            E::Invalid(fields) => err.body.fields = Some(fields),
            _ => {}
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<asylon_vault::VaultError> for ApiError {
    fn from(_: asylon_vault::VaultError) -> Self {
        Self::internal("sealing")
    }
}
