//! Sign-in (password and TOTP), sessions, API tokens, CSRF and the sign-in back-off.
//!
//! - Passwords are checked against Argon2id hashes; an unknown account is checked against a
//!   decoy hash so neither the answer nor its timing tells whether the account exists.
//! - Every account needs a TOTP code (RFC 6238, 30 s, 6 digits); a code is accepted once.
//! - Failed sign-ins are counted per address and per account name in the database; past a free
//!   allowance each failure doubles the wait (up to an hour); 429 says how long.
//! - Passwords are checked, and keys derived from them, outside the registry, a few at a time
//!   (one per core), so a flood of sign-ins, right or wrong, makes no other request wait for
//!   the registry. An attempt counts as failed from the moment it is let through until it
//!   succeeds, so attempts checked at the same time cannot get past the allowance.
//! - A session is a random 256-bit cookie (`HttpOnly; SameSite=Strict`, `Secure` over TLS) whose
//!   SHA-256 alone is stored; it ends after `idle_secs` without use or `absolute_secs` after
//!   sign-in. A cookie-authenticated write must carry the session's CSRF token in `X-CSRF-Token`.
//! - API tokens (`asy_<id>.<secret>`, bearer) are scoped `read` (GET only) or `write`, expire, and
//!   can be revoked; they cannot manage accounts or tokens, nor open organisation-sealed notes.

use crate::error::ApiError;
use crate::{AppState, Body, Path};
use asylon_core::law::{Principal, Role};
use asylon_store::Registry;
use asylon_store::accounts::{Token, User};
use asylon_vault::{MemberKey, OrgSecret, PasswordCost, ct_eq};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

pub const SESSION_COOKIE: &str = "asylon_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const TOTP_STEP: u64 = 30;

pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// How the caller proved who he is.
#[derive(Clone, Debug)]
pub enum Via {
    /// A signed-in session: the hash of its cookie, and the token its writes must carry.
    Session {
        hash: [u8; 32],
        csrf: String,
    },
    Token {
        write: bool,
    },
}

/// The authenticated caller of a request.
#[derive(Clone)]
pub struct Caller {
    pub principal: Principal,
    pub via: Via,
    /// His organisation's key, when his session unlocked it with his password.
    org_key: Option<Arc<OrgSecret>>,
}

impl Caller {
    pub(crate) fn session(&self) -> Option<&[u8; 32]> {
        match &self.via {
            Via::Session { hash, .. } => Some(hash),
            Via::Token { .. } => None,
        }
    }

    /// Account and token management need a person at a browser, not a machine token.
    pub(crate) fn interactive(&self) -> Result<&[u8; 32], ApiError> {
        self.session().ok_or_else(|| {
            ApiError::forbidden(
                "this needs a signed-in session; API tokens cannot manage accounts or tokens",
            )
        })
    }
}

fn principal(u: &User) -> Principal {
    Principal {
        user: u.name.clone(),
        org: u.org.clone(),
        roles: u.roles.clone(),
    }
}

/// The session cookie's value, if the request carries one.
pub(crate) fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries one.
pub(crate) fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if let Some(token) = bearer(&parts.headers) {
            let token = token.to_string();
            return state
                .run(move |reg, _| {
                    let caller = token_caller(reg, &token)?;
                    if unsafe_method && !matches!(caller.via, Via::Token { write: true, .. }) {
                        return Err(ApiError::forbidden(
                            "this token is scoped `read`: it cannot change anything",
                        ));
                    }
                    Ok(caller)
                })
                .await;
        }
        let Some(value) = cookie_value(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "sign in first (POST /api/session) or send an API token",
            ));
        };
        let csrf = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        session_caller(state, value, csrf, unsafe_method).await
    }
}

/// The caller whose session cookie is `value`; for a request that may change something
/// (`unsafe_method`), only with the session's CSRF token as `csrf` (the API's `X-CSRF-Token`
/// header, a form's hidden field in the web UI).
pub(crate) async fn session_caller(
    state: &Arc<AppState>,
    value: String,
    csrf: Option<String>,
    unsafe_method: bool,
) -> Result<Caller, ApiError> {
    let value = Zeroizing::new(value);
    state
        .run(move |reg, st| {
            let hash = sha256(value.as_bytes());
            let t = now().unix_timestamp();
            let gone = || ApiError::unauthorized("your session has ended: sign in again");
            let s = reg.session(&hash)?.ok_or_else(gone)?;
            let cfg = &st.config;
            if t - s.last_seen > cfg.idle_secs || t - s.created > cfg.absolute_secs {
                reg.end_session(&hash)?;
                return Err(gone());
            }
            if unsafe_method
                && !csrf
                    .as_deref()
                    .is_some_and(|c| ct_eq(c.as_bytes(), s.csrf.as_bytes()))
            {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token header: send the token sign-in returned",
                ));
            }
            let user = reg
                .user(&s.user)?
                .filter(|u| !u.disabled)
                .ok_or_else(gone)?;
            // One write a minute at most per session, not one per request.
            if t - s.last_seen >= 60 {
                reg.touch_session(&hash, t)?;
            }
            let org_key = s.org_key.and_then(|w| {
                let k = MemberKey::from_session_secret(value.as_bytes());
                OrgSecret::unwrap_from(&k, &user.org, &session_label(&user.name), &w).ok()
            });
            Ok(Caller {
                principal: principal(&user),
                via: Via::Session {
                    hash,
                    csrf: s.csrf.clone(),
                },
                org_key: org_key.map(Arc::new),
            })
        })
        .await
}

fn token_caller(reg: &Registry, token: &str) -> Result<Caller, ApiError> {
    let bad = || ApiError::unauthorized("the API token is unknown, expired or revoked");
    let (id, secret) = token
        .strip_prefix("asy_")
        .and_then(|t| t.split_once('.'))
        .ok_or_else(bad)?;
    let t = reg.token(id)?.ok_or_else(bad)?;
    if !ct_eq(&sha256(secret.as_bytes()), &t.hash)
        || t.revoked.is_some()
        || t.expires <= now().unix_timestamp()
    {
        return Err(bad());
    }
    let user = reg.user(&t.user)?.filter(|u| !u.disabled).ok_or_else(bad)?;
    Ok(Caller {
        principal: principal(&user),
        via: Via::Token {
            write: t.scope == "write",
        },
        org_key: None,
    })
}

/// The label a session's copy of the organisation key is bound to.
fn session_label(user: &str) -> String {
    format!("{user}#session")
}

/// The organisation key unlocked for this caller's session, if any.
pub(crate) fn org_key(caller: &Caller) -> Option<Arc<OrgSecret>> {
    caller.org_key.clone()
}

/// Checks a TOTP code for `user` and consumes its time step.
pub(crate) fn check_totp(
    reg: &Registry,
    user: &User,
    code: &str,
    unix: u64,
) -> Result<bool, ApiError> {
    let seed = reg.account_key().open(&user.name, &user.totp_sealed)?;
    let totp = totp(totp_rs::Secret::from(seed.as_slice()))?;
    let step = unix / TOTP_STEP;
    for s in [step.saturating_sub(1), step, step + 1] {
        if ct_eq(
            totp.generate(s * TOTP_STEP).to_string().as_bytes(),
            code.as_bytes(),
        ) {
            return Ok(reg.use_totp_step(&user.name, s)?);
        }
    }
    Ok(false)
}

/// A TOTP generator for `seed`; totp-rs's `zeroize` feature wipes its copy of the seed on drop.
pub(crate) fn totp(seed: totp_rs::Secret) -> Result<totp_rs::Totp, ApiError> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(TOTP_STEP)
        .with_secret(seed)
        .build()
        .map_err(|_| ApiError::internal("TOTP seed"))
}

/// Fails to compile if totp-rs's copy of a seed is not wiped on drop (its `zeroize` feature).
const _: fn(&totp_rs::Secret) -> &dyn zeroize::ZeroizeOnDrop = |s| s;

/// The current code for a base32 TOTP secret (for `asylon totp` and tests).
pub fn totp_code(secret_base32: &str, unix: u64) -> Option<String> {
    let seed = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
    totp(seed).ok().map(|t| t.generate(unix).to_string())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub user: String,
    pub password: String,
    /// The current six-digit code of the account's authenticator.
    pub totp: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: String,
    pub org: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    /// Send as `X-CSRF-Token` with every write made with the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// Whether the organisation's key is unlocked (needed to read its sealed interview notes).
    pub org_key_unlocked: bool,
}

const SIGN_IN_FAILED: &str = "sign-in failed: wrong user name, password or code";

/// Sign in with password and TOTP code; sets the session cookie.
#[utoipa::path(post, path = "/api/session", tag = "session", security(()),
    request_body = SignIn,
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)))]
async fn sign_in(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(req): Body<SignIn>,
) -> Result<Response, ApiError> {
    let (info, cookie) = open_session(&st, addr, req).await?;
    let mut resp = axum::Json(info).into_response();
    if let Some(v) = session_cookie(&cookie, st.config.secure) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The `Set-Cookie` of a session whose cookie is `value`.
pub(crate) fn session_cookie(value: &str, secure: bool) -> Option<HeaderValue> {
    let mut c = cookie::Cookie::new(SESSION_COOKIE, value.to_string());
    c.set_http_only(true);
    c.set_same_site(cookie::SameSite::Strict);
    c.set_path("/");
    c.set_secure(secure);
    HeaderValue::from_str(&c.to_string()).ok()
}

/// The `Set-Cookie` that ends the session cookie in the browser.
pub(crate) fn expired_session_cookie() -> Option<HeaderValue> {
    let expired = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    HeaderValue::from_str(&expired).ok()
}

/// Signs in `req` from `addr`: the new session and its cookie's value, or why not (401, or 429
/// while the account or address is held back).
pub(crate) async fn open_session(
    st: &Arc<AppState>,
    addr: SocketAddr,
    req: SignIn,
) -> Result<(SessionInfo, Zeroizing<String>), ApiError> {
    let t = now().unix_timestamp();
    let keys = [
        (account_key(&req.user), st.config.account_free_failures),
        (
            format!("addr:{}", addr.ip()),
            st.config.address_free_failures,
        ),
    ];
    // First, under the registry: the back-off, and this attempt counted as failed in advance,
    // so that attempts whose passwords are being checked at the same time count against the
    // allowance as they would one after another.
    let charged = keys.clone();
    let user = st
        .run(move |reg, _| {
            let keys = charged.each_ref().map(|(k, free)| (k.as_str(), *free));
            let wait = reg.throttle_admit(&keys, t)?;
            if wait > 0 {
                return Err(throttled(wait));
            }
            Ok(if req.user.len() <= 64 {
                reg.user(&req.user)?
            } else {
                None
            })
        })
        .await?;
    // Then the password, without the registry: an unknown account against the decoy hash.
    let password = Zeroizing::new(req.password);
    let checked = st
        .password_work(move |st| {
            let password_ok = asylon_vault::verify_password(
                password.as_bytes(),
                user.as_ref()
                    .map_or(st.decoy_hash.as_str(), |u| u.password.as_str()),
            );
            let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
                return Ok(None);
            };
            let member = MemberKey::derive(
                password.as_bytes(),
                &user.member_salt,
                member_cost(st, &user),
            )?;
            let org_key =
                OrgSecret::unwrap_from(&member, &user.org, &user.name, &user.org_key_wrapped).ok();
            Ok(Some((user, org_key)))
        })
        .await?;
    // Last, under the registry again: the account as it is now (its password unchanged, not
    // disabled meanwhile), the code, and the session.
    st.run(move |reg, _| {
        let Some((checked, org_key)) = checked else {
            return Err(ApiError::unauthorized(SIGN_IN_FAILED));
        };
        let user = match reg.user(&checked.name)? {
            Some(u) if u.password == checked.password && !u.disabled => u,
            _ => return Err(ApiError::unauthorized(SIGN_IN_FAILED)),
        };
        if !check_totp(reg, &user, req.totp.trim(), t.max(0) as u64)? {
            return Err(ApiError::unauthorized(SIGN_IN_FAILED));
        }
        let value = Zeroizing::new(hex::encode(asylon_vault::random::<32>()));
        let hash = sha256(value.as_bytes());
        let csrf = hex::encode(asylon_vault::random::<16>());
        // The session's copy of the organisation key, openable only with the cookie.
        let session_key = MemberKey::from_session_secret(value.as_bytes());
        let sealed = org_key
            .as_ref()
            .map(|k| k.wrap_for(&session_key, &user.org, &session_label(&user.name)));
        if !reg.create_session(
            &hash,
            &user.name,
            &user.password,
            &csrf,
            t,
            sealed.as_deref(),
        )? {
            return Err(ApiError::unauthorized(SIGN_IN_FAILED));
        }
        // Only a sign-in that got its session takes back what it was counted in advance.
        let [(account, _), (address, address_free)] = &keys;
        reg.throttle_clear(account)?;
        reg.throttle_refund(address, *address_free)?;
        let unlocked = org_key.is_some();
        Ok((
            SessionInfo {
                user: user.name.clone(),
                org: user.org.clone(),
                roles: user.roles.clone(),
                csrf: Some(csrf),
                org_key_unlocked: unlocked,
            },
            value,
        ))
    })
    .await
}

/// The cost `user`'s member key was derived at: that of his password hash, made beside it,
/// whatever the server's cost for new ones is now.
fn member_cost(st: &AppState, user: &User) -> PasswordCost {
    PasswordCost::of_hash(&user.password).unwrap_or(st.config.password_cost)
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::ErrorBody)))]
async fn whoami(caller: Caller) -> axum::Json<SessionInfo> {
    let unlocked = org_key(&caller).is_some();
    axum::Json(SessionInfo {
        user: caller.principal.user,
        org: caller.principal.org,
        roles: caller.principal.roles,
        csrf: None,
        org_key_unlocked: unlocked,
    })
}

/// Sign out: the session ends and its unlocked organisation key is forgotten.
#[utoipa::path(delete, path = "/api/session", tag = "session",
    responses((status = 204), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
async fn sign_out(State(st): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    let hash = *caller.interactive()?;
    st.run(move |reg, _| {
        reg.end_session(&hash)?;
        Ok(())
    })
    .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(v) = expired_session_cookie() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub old_password: String,
    #[schema(min_length = 12, max_length = 256)]
    pub new_password: String,
}

/// The throttle's key of an account (its failures whichever way a password was tried).
fn account_key(user: &str) -> String {
    format!("user:{}", user.to_lowercase())
}

/// 429: the key is locked for `wait` seconds more.
fn throttled(wait: i64) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed sign-ins: try again in {wait} s"),
    );
    e.retry_after = Some(wait);
    e
}

/// Change one's password; the organisation key is re-wrapped under the new one and every other
/// session of the user ends. A wrong old password counts as a failed sign-in of the account
/// (a session left open is no way to try passwords one after another), and locks it as those
/// do.
#[utoipa::path(post, path = "/api/session/password", tag = "session",
    request_body = ChangePassword,
    responses((status = 204), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)))]
async fn change_password(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Body(req): Body<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let hash = *caller.interactive()?;
    crate::accounts::check_password_field("new_password", &req.new_password)?;
    if req.new_password == req.old_password {
        return Err(ApiError::invalid(
            "new_password",
            "is the old password: choose another",
        ));
    }
    let name = caller.principal.user.clone();
    let account = account_key(&name);
    let free = st.config.account_free_failures;
    // As at sign-in: the back-off and the attempt counted in advance under the registry, the
    // password work without it, the change under it again.
    let charged = account.clone();
    let user = st
        .run(move |reg, _| {
            let t = now().unix_timestamp();
            let wait = reg.throttle_admit(&[(&charged, free)], t)?;
            if wait > 0 {
                return Err(throttled(wait));
            }
            reg.user(&name)?
                .ok_or_else(|| ApiError::unauthorized(SIGN_IN_FAILED))
        })
        .await?;
    let old_password = Zeroizing::new(req.old_password);
    let new_password = Zeroizing::new(req.new_password);
    let changed = st
        .password_work(move |st| {
            if !asylon_vault::verify_password(old_password.as_bytes(), &user.password) {
                return Ok(None);
            }
            let cost = st.config.password_cost;
            let name = &user.name;
            let old = MemberKey::derive(
                old_password.as_bytes(),
                &user.member_salt,
                member_cost(st, &user),
            )?;
            let org_key = OrgSecret::unwrap_from(&old, &user.org, name, &user.org_key_wrapped)?;
            let salt = asylon_vault::random::<16>();
            let new = MemberKey::derive(new_password.as_bytes(), &salt, cost)?;
            let phc = asylon_vault::hash_password(new_password.as_bytes(), cost)?;
            let wrapped = org_key.wrap_for(&new, &user.org, name);
            Ok(Some((user, phc, salt, wrapped)))
        })
        .await?;
    st.run(move |reg, _| {
        let Some((user, phc, salt, wrapped)) = changed else {
            return Err(ApiError::forbidden(
                "the old password is wrong; nothing was changed",
            ));
        };
        reg.throttle_clear(&account)?;
        let new = asylon_store::accounts::NewPassword {
            phc: &phc,
            member_salt: &salt,
            org_key_wrapped: &wrapped,
        };
        reg.set_password(
            &caller.principal.actor(),
            now(),
            &user.name,
            &user.password,
            &new,
            Some(&hash),
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, shown in the list (1–100 characters).
    #[schema(min_length = 1, max_length = 100)]
    pub label: String,
    /// `read` (GET only) or `write`.
    #[schema(pattern = "^(read|write)$")]
    pub scope: String,
    /// Days until it expires (1–365).
    #[schema(minimum = 1, maximum = 365)]
    pub days: u32,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    /// Shown once: send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires: i64,
}

/// Issue an API token for a machine client, acting as the signed-in user.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn create_token(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, axum::Json<CreatedToken>), ApiError> {
    caller.interactive()?;
    let label = asylon_core::input::free_text("a label", &req.label, 100)
        .map_err(|why| ApiError::invalid("label", why))?
        .to_string();
    if req.scope != "read" && req.scope != "write" {
        return Err(ApiError::invalid("scope", "must be `read` or `write`"));
    }
    if !(1..=365).contains(&req.days) {
        return Err(ApiError::invalid("days", "must be between 1 and 365"));
    }
    st.run(move |reg, _| {
        let id = hex::encode(asylon_vault::random::<8>());
        let secret = Zeroizing::new(hex::encode(asylon_vault::random::<32>()));
        let t = now().unix_timestamp();
        let expires = t + i64::from(req.days) * 86_400;
        reg.create_token(&Token {
            id: id.clone(),
            hash: sha256(secret.as_bytes()).to_vec(),
            user: caller.principal.user.clone(),
            scope: req.scope,
            label,
            created: t,
            expires,
            revoked: None,
        })?;
        Ok((
            StatusCode::CREATED,
            axum::Json(CreatedToken {
                token: format!("asy_{id}.{}", secret.as_str()),
                id,
                expires,
            }),
        ))
    })
    .await
}

/// The signed-in user's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::ErrorBody)))]
async fn list_tokens(
    State(st): State<Arc<AppState>>,
    caller: Caller,
) -> Result<axum::Json<Vec<Token>>, ApiError> {
    caller.interactive()?;
    st.run(move |reg, _| Ok(axum::Json(reg.tokens(&caller.principal.user)?)))
        .await
}

/// Revoke one of one's API tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204), (status = 404, body = crate::ErrorBody)))]
async fn revoke_token(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.interactive()?;
    st.run(move |reg, _| {
        if reg.revoke_token(&caller.principal.user, &id, now().unix_timestamp())? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("you have no live token {id}")))
        }
    })
    .await
}

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, whoami, sign_out))
        .routes(routes!(change_password))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1, its 20-byte ASCII seed): the eight-digit codes there end in
    /// the six-digit codes an authenticator app shows for the same instants.
    #[test]
    fn codes_are_those_of_rfc_6238() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // base32 of "12345678901234567890"
        for (unix, rfc) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code(secret, unix).as_deref(), rfc.get(2..), "{unix}");
        }
        // What enrolment hands out reads back as the seed it was made from.
        let seed = b"12345678901234567890".to_vec();
        assert_eq!(totp_rs::Secret::from(seed).to_base32(), secret);
        assert_eq!(totp_code("not base32!", 59), None);
    }
}
