//! The HTTP API of a registry.
//!
//! Every handler identifies its caller ([`auth::Caller`]: a session cookie with a CSRF token for
//! writes, or a scoped API token), then asks the store, which asks the one policy function
//! (`asylon_core::policy::may`) before any read or write. No handler checks roles itself. The
//! OpenAPI document at `/api/openapi.json` is generated from the handlers' annotations.

pub mod accounts;
mod api;
pub mod auth;
mod error;
mod ui;

pub use error::{ApiError, ErrorBody};

use asylon_core::input::NotAnObject;
use asylon_core::law::Settings;
use asylon_store::{Duties, Registry};
use asylon_vault::PasswordCost;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// How the server treats sign-in and sessions.
#[derive(Clone, Debug)]
pub struct Config {
    pub password_cost: PasswordCost,
    /// A session ends after this many seconds without a request…
    pub idle_secs: i64,
    /// …and this many after sign-in, whatever happens.
    pub absolute_secs: i64,
    /// Mark cookies `Secure` and send HSTS: set when the server is reached over TLS (directly or
    /// through a terminating proxy).
    pub secure: bool,
    /// Failed sign-ins allowed per account, then per address, before the back-off starts.
    pub account_free_failures: u32,
    pub address_free_failures: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            password_cost: PasswordCost::default(),
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
            secure: false,
            account_free_failures: 5,
            address_free_failures: 20,
        }
    }
}

/// How many handles on its registry a server opens: one per core, and at least two, so that
/// a long request (every open deadline of a large registry) leaves one for the others.
pub fn handles_to_open() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// What every handler shares.
pub struct AppState {
    /// Handles on the one registry, each with its own connections: a request takes one to
    /// itself, so requests run side by side (the database orders their writes, as it does
    /// those of several server processes) and a long one holds up only its own.
    registries: Vec<Mutex<Registry>>,
    /// One permit per handle in `registries`: whoever holds one finds a handle free.
    registry_permits: Arc<tokio::sync::Semaphore>,
    settings: Settings,
    /// Every captive's open duties, kept between requests for deadlines and brought up to
    /// date from the log by each (`asylon_store::Duties`).
    duties: Mutex<Duties>,
    config: Config,
    /// A hash to check unknown accounts' passwords against, so the time taken does not tell
    /// whether an account exists.
    decoy_hash: String,
    /// Password work (Argon2id, 19 MiB and tens of milliseconds each) runs outside the
    /// registry, so that sign-ins, wrong ones included, do not make every other request wait;
    /// these permits, one per core, bound how many run at once, and so their memory.
    password_permits: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A server's state with one handle on its registry: one request at a time.
    pub fn new(registry: Registry, settings: Settings, config: Config) -> Result<Self, ApiError> {
        Self::with_handles(vec![registry], settings, config)
    }

    /// A server's state with `registries`, handles opened on one registry (see
    /// [`handles_to_open`]).
    pub fn with_handles(
        registries: Vec<Registry>,
        settings: Settings,
        config: Config,
    ) -> Result<Self, ApiError> {
        if registries.is_empty() {
            return Err(ApiError::internal("no registry to serve"));
        }
        let decoy_hash =
            asylon_vault::hash_password(&asylon_vault::random::<16>(), config.password_cost)
                .map_err(|_| ApiError::internal("password hashing"))?;
        Ok(Self {
            registry_permits: Arc::new(tokio::sync::Semaphore::new(registries.len())),
            registries: registries.into_iter().map(Mutex::new).collect(),
            duties: Mutex::new(Duties::new(settings.clone())),
            settings,
            config,
            decoy_hash,
            password_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
        })
    }

    /// Runs `f` on a free handle on the registry, on a blocking thread (SQLite blocks).
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Registry, &AppState) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking(&self.registry_permits, move |st| {
            // Every holder of a permit holds at most one handle, and lets it go before its
            // permit: one is free. A handle whose request panicked is not used again.
            let mut reg = st
                .registries
                .iter()
                .find_map(|r| r.try_lock().ok())
                .ok_or_else(|| ApiError::internal("no registry handle left"))?;
            f(&mut reg, st)
        })
        .await
    }

    /// The open duties kept between requests. A request that panicked while it held them may
    /// have left them half changed: they are then read again from the start of the log.
    pub(crate) fn duties(&self) -> MutexGuard<'_, Duties> {
        self.duties.lock().unwrap_or_else(|poisoned| {
            let mut duties = poisoned.into_inner();
            *duties = Duties::new(self.settings.clone());
            self.duties.clear_poison();
            duties
        })
    }

    /// Reads every captive's open duties from the log into those kept between requests, on a
    /// free handle, as the first request for deadlines (or a receiving state's first listing)
    /// would: [`serve`] starts it, so that such a request finds them read (at a million
    /// captives reading them takes seconds) or waits only for the rest of the reading.
    pub async fn keep_duties(self: &Arc<Self>) -> Result<(), ApiError> {
        self.run(|reg, st| Ok(st.duties().catch_up(reg)?)).await
    }

    /// Whether the open duties are read (`kept`), being read or used (`busy`), or not read
    /// (`unread`), without waiting for them.
    pub(crate) fn duties_kept(&self) -> &'static str {
        match self.duties.try_lock() {
            Ok(d) if d.is_read() => "kept",
            Ok(_) | Err(std::sync::TryLockError::Poisoned(_)) => "unread",
            Err(std::sync::TryLockError::WouldBlock) => "busy",
        }
    }

    /// Runs `f`, password work, on a blocking thread without the registry, once one of the
    /// password permits is free.
    pub(crate) async fn password_work<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        self.blocking(&self.password_permits, f).await
    }

    /// Runs `f` on a blocking thread once one of `permits` is free. The permit goes with the
    /// work, so a client that gives up waiting does not let more run at once.
    async fn blocking<T, F>(
        self: &Arc<Self>,
        permits: &Arc<tokio::sync::Semaphore>,
        f: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        let permit = Arc::clone(permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("server closing"))?;
        let st = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let out = f(&st);
            drop(permit);
            out
        })
        .await
        .map_err(|_| ApiError::internal("worker failed"))?
    }
}

/// A JSON body whose rejection is a JSON error saying what is wrong. Every body of the API is
/// one JSON object: an empty body, or a JSON array (which serde would read field by field into
/// the object's fields, in their order: a second, undocumented shape of every request), is
/// refused as such. A UTF-8 byte-order mark before it (Windows editors write one; `curl
/// --data-binary @file` sends it) is no part of it.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::bad_request(
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        match asylon_core::input::json_object(&bytes) {
            Err(NotAnObject::Empty) => Err(ApiError::bad_request(
                "the request body is empty: send one JSON object",
            )),
            Ok(json) => axum::Json::<T>::from_bytes(json)
                .map(|axum::Json(v)| Body(v))
                .map_err(|e| ApiError::bad_request(e.body_text())),
            Err(NotAnObject::Other) => Err(ApiError::bad_request(
                "the request body must be one JSON object, {…}",
            )),
        }
    }
}

/// Whether the request says its body is JSON: `application/json`, or `application/…+json`,
/// with any parameters (`; charset=utf-8`).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// A query string whose rejection is a JSON error.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A path parameter whose rejection is a JSON error.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Asylon",
        description = "Protected registry of prisoners of war: records, the guards G1–G8, sign-in and disclosure by policy.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("session" = []), ("token" = []))
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "Set by POST /api/session; writes also need the X-CSRF-Token header it returned.",
            ))),
        );
        c.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from POST /api/tokens"))
                    .build(),
            ),
        );
    }
}

/// This document (OpenAPI 3.1), generated from the handlers.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", security(()),
    responses((status = 200, body = Object)))]
async fn openapi_json() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(openapi))
}

fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(openapi_json))
        .merge(auth::routes())
        .merge(accounts::routes())
        .merge(api::routes())
}

/// The OpenAPI 3.1 document, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    with_common_answers(routes().split_for_parts().1)
}

/// `doc` with the answers its operations give before their handlers run, where each applies:
/// 400 for a request that cannot be read (a body, query or path of the wrong shape: [`Body`],
/// [`Query`], [`Path`]; a query parameter it does not take: [`QueryNames`]), 401 without a
/// live session or token where one is needed, and 500, 503 (another writer held the registry
/// too long) and 507 (a disk full) wherever the registry is opened. Each operation's own list
/// names what its handler answers.
fn with_common_answers(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |what: &str| {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        RefOr::T(
            ResponseBuilder::new()
                .description(what)
                .content("application/json", body)
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let reads_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            // `security(())`: an operation anyone may call.
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.contains(&SecurityRequirement::default()));
            let answers = &mut op.responses.responses;
            answers.entry("400".into()).or_insert_with(|| {
                error(
                    "The request cannot be read: a body, query or path of the wrong shape, or a query parameter the operation does not take",
                )
            });
            if !public {
                answers.entry("401".into()).or_insert_with(|| {
                    error("No session or token, or it has ended: sign in again")
                });
            }
            // Every operation but the two that never open the registry (health, this
            // document) may write: a session's last use, the record of a read, sign-in's
            // throttle. Each may find the disk full, or the registry failing.
            if reads_input || !public {
                answers.entry("500".into()).or_insert_with(|| {
                    error("Internal error: nothing was changed (the server's log says what)")
                });
                answers.entry("503".into()).or_insert_with(|| {
                    error("The registry is busy: another writer held it longer than the server waits; this write was not made: send it again after Retry-After seconds")
                });
                answers.entry("507".into()).or_insert_with(|| {
                    error("The disk holding the registry is full: nothing was written; try again once space is freed")
                });
            }
        }
    }
    doc
}

/// The query parameters each operation takes, by route template and method, as the OpenAPI
/// document the routes make names them. One it does not name is refused (400) rather than
/// ignored: `?limit=10` on an operation that has no limit must not look as if it had one.
struct QueryNames(std::collections::HashMap<String, Vec<(axum::http::Method, Vec<String>)>>);

impl QueryNames {
    fn of(doc: &utoipa::openapi::OpenApi) -> Self {
        use axum::http::Method;
        use utoipa::openapi::path::ParameterIn;
        let mut names = std::collections::HashMap::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            let takes = ops
                .into_iter()
                .filter_map(|(method, op)| {
                    let params = op.as_ref()?.parameters.iter().flatten();
                    let query = params.filter(|p| p.parameter_in == ParameterIn::Query);
                    Some((method, query.map(|p| p.name.clone()).collect()))
                })
                .collect();
            names.insert(path.clone(), takes);
        }
        Self(names)
    }

    /// Refuses a query parameter the operation `req` reached does not take.
    fn check(&self, req: &Request) -> Result<(), ApiError> {
        if req.uri().query().is_none_or(str::is_empty) {
            return Ok(());
        }
        let Some(path) = req.extensions().get::<axum::extract::MatchedPath>() else {
            return Ok(());
        };
        let Some(takes) = self.0.get(path.as_str()).and_then(|ops| {
            ops.iter()
                .find(|(method, _)| method == req.method())
                .map(|(_, takes)| takes)
        }) else {
            return Ok(());
        };
        let given: Vec<(String, String)> = axum::extract::Query::try_from_uri(req.uri())
            .map(|axum::extract::Query(pairs)| pairs)
            // Not repeated back: a query may hold a name searched for.
            .map_err(|_| ApiError::bad_request("the query string cannot be read"))?;
        let operation = format!("{} {}", req.method(), path.as_str());
        match given.iter().find(|(name, _)| !takes.contains(name)) {
            None => Ok(()),
            Some((name, _)) if takes.is_empty() => Err(ApiError::bad_request(format!(
                "{operation} takes no query parameters: {name:?} is not one"
            ))),
            Some((name, _)) => Err(ApiError::bad_request(format!(
                "{operation} takes the query parameters {}: {name:?} is not one",
                takes.join(", ")
            ))),
        }
    }
}

/// The application: every route, the OpenAPI document, security headers, JSON 404s.
pub fn app(state: Arc<AppState>) -> axum::Router {
    let secure = state.config.secure;
    let (router, doc) = routes().split_for_parts();
    let names = Arc::new(QueryNames::of(&doc));
    router
        .route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let names = Arc::clone(&names);
                async move {
                    match names.check(&req) {
                        Ok(()) => next.run(req).await,
                        Err(e) => axum::response::IntoResponse::into_response(e),
                    }
                }
            },
        ))
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found(NO_SUCH_ENDPOINT) })
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .layer(axum::middleware::from_fn(move |req, next| {
            security_headers(secure, req, next)
        }))
        .with_state(state)
}

/// What a request for a path the server does not have is told: where the API is (the server's
/// own address leads a browser to the web UI, under /ui).
pub const NO_SUCH_ENDPOINT: &str =
    "no such endpoint: the API is under /api, described at /api/openapi.json";

async fn security_headers(secure: bool, req: Request, next: Next) -> Response {
    // The web UI's pages load their stylesheet and send their forms to the server; nothing
    // else loads anything.
    let csp = if req.uri().path().starts_with("/ui/") {
        ui::UI_CSP
    } else {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let mut set = |k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(header::CONTENT_SECURITY_POLICY, csp);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, "no-store");
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if secure {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    resp
}

/// Serves `state` on `listener` until ctrl-c (or the future `stop` completes), reading the
/// open duties kept between requests meanwhile ([`AppState::keep_duties`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Read while the first requests come in; one that fails leaves the duties unread, to be
    // read (and its failure answered) by the first request that needs them.
    let keeping = Arc::clone(&state);
    tokio::spawn(async move {
        let _ = keeping.keep_duties().await;
    });
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}
