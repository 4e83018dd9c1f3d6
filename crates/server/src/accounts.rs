//! Organisations and their users. The first administrator of an organisation is made with the
//! organisation (`asylon org add`); after that each organisation's administrators manage its
//! users through the API. A new member receives the organisation's private key wrapped under his
//! own password, which needs a member who has it unlocked: the administrator adding him.

use crate::auth::{Caller, now, org_key};
use crate::error::ApiError;
use crate::{AppState, Body, Path};
use asylon_core::Actor;
use asylon_core::law::Role;
use asylon_core::policy::{Action, may};
use asylon_store::Registry;
use asylon_store::accounts::{Org, User};
use asylon_vault::{MemberKey, OrgSecret, PasswordCost};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `detaining`, `neutral` or `receiving:XX` (XX: a state's ISO 3166 code in capitals).
pub fn check_org_id(id: &str) -> Result<(), ApiError> {
    if asylon_core::policy::is_org_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "org",
            "must be `detaining`, `neutral` or `receiving:XX` with XX a state's ISO 3166 code in capitals (KR)",
        ))
    }
}

/// What a user name may be.
const USER_NAME_RULE: &str = "2 to 64 characters: lower-case letters, digits, `.`, `_` or `-`";

fn valid_user_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

pub fn check_user_name(name: &str) -> Result<(), ApiError> {
    if valid_user_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid("name", USER_NAME_RULE))
    }
}

pub fn check_password(pw: &str) -> Result<(), ApiError> {
    check_password_field("password", pw)
}

/// [`check_password`] of the body's field `field`.
pub(crate) fn check_password_field(field: &str, pw: &str) -> Result<(), ApiError> {
    let n = pw.chars().count();
    if (12..=256).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must be 12 to 256 characters long",
        ))
    }
}

fn check_roles(roles: &[Role]) -> Result<(), ApiError> {
    if roles.is_empty() {
        return Err(ApiError::invalid("roles", "give at least one role"));
    }
    let repeated = roles.iter().enumerate().find_map(|(i, r)| {
        roles
            .get(..i)
            .filter(|before| before.contains(r))
            .map(|_| r)
    });
    if let Some(role) = repeated {
        let name = serde_json::to_value(role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(ApiError::invalid(
            "roles",
            format!("{name} is given twice: give each role once"),
        ));
    }
    Ok(())
}

/// A new user's second factor, shown once to whoever created the account.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Enrolment {
    pub user: String,
    /// Base32 TOTP secret (SHA-1, 6 digits, 30 s).
    pub totp_secret: String,
    pub otpauth_url: String,
}

/// A user to make: his organisation, name, roles and first password.
pub struct NewMember<'a> {
    pub org: &'a str,
    pub name: &'a str,
    pub roles: &'a [Role],
    pub password: &'a str,
}

/// Makes a user, wrapping the organisation's key under his password.
pub fn add_user(
    reg: &mut Registry,
    actor: &Actor,
    at: OffsetDateTime,
    org_secret: &OrgSecret,
    m: &NewMember<'_>,
    cost: PasswordCost,
) -> Result<Enrolment, ApiError> {
    let secrets = member_secrets(org_secret, m, cost)?;
    enrol(reg, actor, at, secrets)
}

/// A checked new member and what his password gives, made before the registry is taken
/// (Argon2id twice): the hash it is checked against, and his copy of the organisation's key
/// wrapped under it.
pub struct MemberSecrets {
    org: String,
    name: String,
    roles: Vec<Role>,
    phc: String,
    salt: [u8; 16],
    org_key_wrapped: Vec<u8>,
}

/// Checks `m` and makes his [`MemberSecrets`].
pub fn member_secrets(
    org_secret: &OrgSecret,
    m: &NewMember<'_>,
    cost: PasswordCost,
) -> Result<MemberSecrets, ApiError> {
    check_user_name(m.name)?;
    check_password(m.password)?;
    check_roles(m.roles)?;
    let salt = asylon_vault::random::<16>();
    let member = MemberKey::derive(m.password.as_bytes(), &salt, cost)?;
    Ok(MemberSecrets {
        org: m.org.to_string(),
        name: m.name.to_string(),
        roles: m.roles.to_vec(),
        phc: asylon_vault::hash_password(m.password.as_bytes(), cost)?,
        salt,
        org_key_wrapped: org_secret.wrap_for(&member, m.org, m.name),
    })
}

/// Makes the user `secrets` were made for.
pub fn enrol(
    reg: &mut Registry,
    actor: &Actor,
    at: OffsetDateTime,
    secrets: MemberSecrets,
) -> Result<Enrolment, ApiError> {
    let seed = asylon_vault::random::<20>();
    let name = secrets.name;
    let user = User {
        totp_sealed: reg.account_key().seal(&name, &seed),
        name: name.clone(),
        org: secrets.org,
        roles: secrets.roles,
        password: secrets.phc,
        totp_last_step: 0,
        member_salt: secrets.salt,
        org_key_wrapped: secrets.org_key_wrapped,
        disabled: false,
    };
    reg.create_user(actor, at, &user)?;
    let secret = totp_rs::Secret::from(seed.to_vec()).to_base32();
    Ok(Enrolment {
        user: name.to_string(),
        otpauth_url: format!(
            "otpauth://totp/Asylon:{name}?secret={secret}&issuer=Asylon&algorithm=SHA1&digits=6&period=30"
        ),
        totp_secret: secret,
    })
}

/// Makes an organisation with a fresh key pair and `admin`, its first administrator (whose
/// roles are set to `admin`).
pub fn add_org(
    reg: &mut Registry,
    actor: &Actor,
    at: OffsetDateTime,
    name: &str,
    admin: &NewMember<'_>,
    cost: PasswordCost,
) -> Result<(OrgSecret, Enrolment), ApiError> {
    check_org_id(admin.org)?;
    // `name` is the organisation's here: the administrator's is told apart.
    if !valid_user_name(admin.name) {
        return Err(ApiError::invalid(
            "admin",
            format!("the administrator's user name: {USER_NAME_RULE}"),
        ));
    }
    check_password(admin.password)?;
    let name = asylon_core::input::free_text("the organisation's name", name, 200)
        .map_err(|why| ApiError::invalid("name", why))?;
    let secret = OrgSecret::generate();
    reg.create_org(
        actor,
        at,
        &Org {
            id: admin.org.to_string(),
            name: name.to_string(),
            public_key: secret.public_key(),
        },
    )?;
    let admin = NewMember {
        roles: &[Role::Admin],
        ..*admin
    };
    let e = add_user(reg, actor, at, &secret, &admin, cost)?;
    Ok((secret, e))
}

#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub org: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    pub disabled: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = "^[a-z0-9._-]{2,64}$")]
    pub name: String,
    #[schema(value_type = Vec<String>, min_items = 1)]
    pub roles: Vec<Role>,
    /// The first password (12–256 characters); the user should change it.
    #[schema(min_length = 12, max_length = 256)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
}

fn allowed(caller: &Caller, org: &str) -> Result<(), ApiError> {
    may(&caller.principal, None, Action::ManageAccounts { org })
        .map_err(|d| ApiError::forbidden(d.to_string()))
}

/// The users of an organisation (its administrators only).
#[utoipa::path(get, path = "/api/orgs/{org}/users", tag = "accounts",
    params(("org" = String, Path, description = "detaining, neutral or receiving:XX")),
    responses((status = 200, body = Vec<UserInfo>), (status = 403, body = crate::ErrorBody)))]
async fn list_users(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<axum::Json<Vec<UserInfo>>, ApiError> {
    allowed(&caller, &org)?;
    st.run(move |reg, _| {
        Ok(axum::Json(
            reg.users(&org)?
                .into_iter()
                .map(|u| UserInfo {
                    name: u.name,
                    org: u.org,
                    roles: u.roles,
                    disabled: u.disabled,
                })
                .collect(),
        ))
    })
    .await
}

/// Add a user to one's organisation; returns his TOTP enrolment once.
#[utoipa::path(post, path = "/api/orgs/{org}/users", tag = "accounts", request_body = NewUser,
    params(("org" = String, Path, description = "detaining, neutral or receiving:XX")),
    responses((status = 201, body = Enrolment), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn create_user(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(org): Path<String>,
    Body(req): Body<NewUser>,
) -> Result<(StatusCode, axum::Json<Enrolment>), ApiError> {
    allowed(&caller, &org)?;
    caller.interactive()?;
    check_user_name(&req.name)?;
    check_password(&req.password)?;
    check_roles(&req.roles)?;
    let key = org_key(&caller).ok_or_else(|| {
        ApiError::conflict("your organisation's key is not unlocked in this session: sign in again with your password to add members")
    })?;
    let secrets = st
        .password_work(move |st| {
            let m = NewMember {
                org: &org,
                name: &req.name,
                roles: &req.roles,
                password: &req.password,
            };
            member_secrets(&key, &m, st.config.password_cost)
        })
        .await?;
    st.run(move |reg, _| {
        let e = enrol(reg, &caller.principal.actor(), now(), secrets)?;
        Ok((StatusCode::CREATED, axum::Json(e)))
    })
    .await
}

fn member_of(reg: &Registry, org: &str, name: &str) -> Result<(), ApiError> {
    match reg.user(name)? {
        Some(u) if u.org == org => Ok(()),
        _ => Err(ApiError::not_found(format!("{org} has no user {name}"))),
    }
}

/// Replace a user's roles; his sessions end. An administrator cannot take his own
/// administrator role away (another administrator of the organisation can): the last one
/// would leave it with nobody to manage its users.
#[utoipa::path(put, path = "/api/orgs/{org}/users/{name}/roles", tag = "accounts", request_body = Roles,
    params(("org" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn set_roles(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path((org, name)): Path<(String, String)>,
    Body(req): Body<Roles>,
) -> Result<StatusCode, ApiError> {
    allowed(&caller, &org)?;
    check_roles(&req.roles)?;
    if name == caller.principal.user && !req.roles.contains(&Role::Admin) {
        return Err(ApiError::conflict(
            "you cannot take away your own administrator role: another administrator of the organisation can",
        ));
    }
    st.run(move |reg, _| {
        member_of(reg, &org, &name)?;
        reg.set_roles(&caller.principal.actor(), now(), &name, &req.roles)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Standing {
    pub disabled: bool,
}

/// Disable (sessions end, tokens are revoked) or re-enable a user.
#[utoipa::path(put, path = "/api/orgs/{org}/users/{name}/disabled", tag = "accounts", request_body = Standing,
    params(("org" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody)))]
async fn set_disabled(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path((org, name)): Path<(String, String)>,
    Body(req): Body<Standing>,
) -> Result<StatusCode, ApiError> {
    allowed(&caller, &org)?;
    if name == caller.principal.user {
        return Err(ApiError::conflict("you cannot disable yourself"));
    }
    st.run(move |reg, _| {
        member_of(reg, &org, &name)?;
        reg.set_disabled(&caller.principal.actor(), now(), &name, req.disabled)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(set_roles))
        .routes(routes!(set_disabled))
}
