//! The registry's records over HTTP: captives, the law's commands, status, deadlines, search
//! and the ledger. Each handler identifies the caller and hands the request to the store, which
//! asks the policy before reading or writing; registration and erasure ask it here, as the CLI
//! does, before the store is touched.

use crate::auth::{Caller, now, org_key};
use crate::error::ApiError;
use crate::{AppState, Body, Path, Query};
use asylon_core::law::Command;
use asylon_core::policy::{Action, may};
use asylon_core::{FieldError, RegistrationInput};
use asylon_store::StoreError;
use asylon_store::json::{CheckpointJson, EventJson};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Res<T> = Result<Json<T>, ApiError>;

fn json<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|_| ApiError::internal("serialising a response"))
}

/// The case number of a path as the registry writes it, however it was typed (`as-17`,
/// `AS-0017`); 404 for what cannot be one.
pub(crate) fn case_in_path(case: &str) -> Result<String, ApiError> {
    if case.len() <= 32 && case.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(asylon_store::case_as_typed(case))
    } else {
        Err(ApiError::not_found(format!(
            "no person with case number {case:?}"
        )))
    }
}

/// The service is up (no sign-in needed). `duties` says whether the captives' open duties,
/// which a server reads from the log once it starts and keeps, are read (`kept`: a request for
/// deadlines, or a receiving state's listing, reads only what came since), still being read or
/// in use by a request (`busy`), or not read (`unread`: the first request that needs them reads
/// them).
#[utoipa::path(get, path = "/api/health", tag = "meta", security(()),
    responses((status = 200, body = Object)))]
async fn health(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(serde_json::json!({"status": "ok", "duties": st.duties_kept()}))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Case number to continue after (the `next` of the previous page; typed forms such as
    /// `as-17` are read too). Persons come in the order of their numbers.
    after: Option<String>,
    /// At most this many (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonPage {
    #[schema(value_type = Vec<Object>)]
    persons: Vec<asylon_core::PersonRow>,
    /// Pass as `after` for the next page; absent on the last page.
    next: Option<String>,
}

/// The captives the caller may see, in case-number order, a page at a time.
#[utoipa::path(get, path = "/api/persons", tag = "persons", params(Page),
    responses((status = 200, body = PersonPage), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn list_persons(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Res<PersonPage> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    st.run(move |reg, st| {
        let after = page.after.as_deref().unwrap_or("");
        let (persons, next) = persons_page(reg, st, &caller.principal, after, limit)?;
        Ok(Json(PersonPage { persons, next }))
    })
    .await
}

/// The captives `who` may see after case number `after`, `limit` of them, and the case to go on
/// after when more follow.
pub(crate) fn persons_page(
    reg: &mut asylon_store::Registry,
    st: &AppState,
    who: &asylon_core::law::Principal,
    after: &str,
    limit: usize,
) -> Result<(Vec<asylon_core::PersonRow>, Option<String>), ApiError> {
    // A receiving state's captives are read from the referrals kept with the duties; the
    // others' listings need nothing kept, and do not wait for it.
    Ok(match asylon_core::policy::core_scope(who) {
        Ok(asylon_core::policy::CoreScope::ReferredTo(_)) => {
            reg.persons_visible_kept(&mut st.duties(), who, after, limit)?
        }
        _ => reg.persons_visible(who, after, limit)?,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    cases: Vec<String>,
    /// Those of them whose dates of birth make them under 18 at capture, or maybe (nothing is
    /// refused for it): each is to be held apart from adults, or his date of birth corrected
    /// if it was mistyped. Left out when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<Child>,
}

/// A captive who was a child at capture, or may have been, by his date of birth.
#[derive(Serialize, ToSchema)]
pub struct Child {
    /// His place in the request, from 0.
    person: usize,
    /// His case number, once registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<String>,
    /// His age at capture in whole years: the least and the most he can have been, as far as
    /// his date of birth is known.
    #[schema(value_type = Object)]
    age_at_capture: asylon_core::Age,
    /// What the law says of him, in words.
    note: String,
}

/// Those of `regs` under 18 at capture, or maybe: nothing is refused for it, but whoever
/// registers them is told.
fn children(regs: &[asylon_core::Registration]) -> Vec<Child> {
    let child = |(person, r): (usize, &asylon_core::Registration)| {
        let age = r.age_at_capture()?;
        Some(Child {
            person,
            case: None,
            age_at_capture: age,
            note: age.child()?,
        })
    };
    regs.iter().enumerate().filter_map(child).collect()
}

/// Registrations of `inputs`, for someone who may register, or every field error among them
/// (named `persons[i].field` in a batch).
fn validated(
    caller: &Caller,
    inputs: &[RegistrationInput],
) -> Result<Vec<asylon_core::Registration>, ApiError> {
    may(&caller.principal, None, Action::Register).map_err(StoreError::Denied)?;
    let now = now();
    let many = inputs.len() > 1;
    let mut regs = Vec::with_capacity(inputs.len());
    let mut errors: Vec<FieldError> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input.validate(now) {
            Ok(r) => regs.push(r),
            Err(es) => errors.extend(es.into_iter().map(|e| FieldError {
                field: if many {
                    format!("persons[{i}].{}", e.field)
                } else {
                    e.field
                },
                reason: e.reason,
            })),
        }
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors).into());
    }
    Ok(regs)
}

/// Whether a registration may give a service number that another captive of the same power
/// holds (docs/particulars.md, "One service number, one captive").
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    /// `true` once the registrar has checked that a captive who holds the same service number
    /// for the same power is another man: he is registered even so. Without it (or `false`)
    /// such a registration is refused (409), naming the other captive.
    shared_service_number: Option<bool>,
}

impl Sharing {
    fn numbers(&self) -> asylon_store::SharedNumbers {
        asylon_store::SharedNumbers::allowed_if(self.shared_service_number == Some(true))
    }
}

fn register(
    st: &Arc<AppState>,
    caller: Caller,
    inputs: Vec<RegistrationInput>,
    sharing: &Sharing,
) -> impl std::future::Future<Output = Result<(StatusCode, Json<Registered>), ApiError>> {
    let st = Arc::clone(st);
    let shared = sharing.numbers();
    async move {
        let regs = validated(&caller, &inputs)?;
        let mut children = children(&regs);
        st.run(move |reg, _| {
            let cases = reg.register_with(&caller.principal.actor(), now(), regs, shared)?;
            for child in &mut children {
                child.case = cases.get(child.person).cloned();
            }
            Ok((StatusCode::CREATED, Json(Registered { cases, children })))
        })
        .await
    }
}

/// Register one captive (docs/particulars.md); answers his case number.
#[utoipa::path(post, path = "/api/persons", tag = "persons", request_body = RegistrationInput,
    params(Sharing),
    responses((status = 201, body = Registered), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn register_person(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(sharing): Query<Sharing>,
    Body(input): Body<RegistrationInput>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    register(&st, caller, vec![input], &sharing).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 10,000 captives; one invalid entry registers none, and every error is reported.
    #[schema(min_items = 1, max_items = 10000)]
    persons: Vec<RegistrationInput>,
}

impl Batch {
    /// Its captives, if it holds as many as a batch may.
    fn persons(self) -> Result<Vec<RegistrationInput>, ApiError> {
        if self.persons.is_empty() || self.persons.len() > 10_000 {
            return Err(ApiError::invalid("persons", "give 1 to 10,000 captives"));
        }
        Ok(self.persons)
    }
}

/// Register many captives at once, all or none.
#[utoipa::path(post, path = "/api/persons/import", tag = "persons", request_body = Batch,
    params(Sharing),
    responses((status = 201, body = Registered), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn import_persons(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(sharing): Query<Sharing>,
    Body(batch): Body<Batch>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    register(&st, caller, batch.persons()?, &sharing).await
}

#[derive(Serialize, ToSchema)]
pub struct Checked {
    /// How many captives the batch would register.
    valid: usize,
    /// Those of them under 18 at capture, or maybe, as `POST /api/persons/import` would say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<Child>,
}

/// Check a batch as `POST /api/persons/import` would, registering nothing: 200 when it would
/// register them all, else the answer it would give (every field error, an external id twice
/// in it or already registered, a service number held by another captive of the same power).
#[utoipa::path(post, path = "/api/persons/import/check", tag = "persons", request_body = Batch,
    params(Sharing),
    responses((status = 200, body = Checked), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn check_import(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(sharing): Query<Sharing>,
    Body(batch): Body<Batch>,
) -> Res<Checked> {
    let regs = validated(&caller, &batch.persons()?)?;
    let shared = sharing.numbers();
    st.run(move |reg, _| {
        reg.check_registrations((&caller.principal.actor(), now()), &regs, shared)?;
        Ok(Json(Checked {
            valid: regs.len(),
            children: children(&regs),
        }))
    })
    .await
}

/// One captive's record: the public part, and each sealed class the caller may open (each
/// opening recorded); withheld classes are named with the reason.
#[utoipa::path(get, path = "/api/persons/{case}", tag = "persons",
    params(("case" = String, Path, description = "case number, e.g. AS-000001")),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
        (status = 410, description = "The key store holds no keys for him: his sealed data cannot be read", body = crate::ErrorBody)))]
async fn show_person(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, _| {
        Ok(Json(json(&reg.show_person(
            &caller.principal,
            now(),
            &case,
        )?)?))
    })
    .await
}

/// His particulars in the shape `POST /api/persons/{case}/amend` takes, with `from_event`, the
/// event they are read from, to be edited and sent back as a correction (the read is recorded). 403 unless the caller
/// may open both sealed classes of the record: a correction made from a partial record would
/// drop the class left out.
#[utoipa::path(get, path = "/api/persons/{case}/particulars", tag = "persons",
    params(("case" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 410, body = crate::ErrorBody)))]
async fn person_particulars(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, _| Ok(Json(reg.particulars_as(&caller.principal, now(), &case)?)))
        .await
}

/// His derived state: custody, wish status (never what he said), G1 protection, movements,
/// acceptances, consents, deadlines.
#[utoipa::path(get, path = "/api/persons/{case}/status", tag = "persons",
    params(("case" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
async fn person_status(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, st| {
        Ok(Json(json(&reg.case_status(
            &caller.principal,
            &case,
            &st.settings,
            now(),
        )?)?))
    })
    .await
}

/// His interviews; what he said only in those the caller's organisation conducted, and the
/// notes only with the organisation's key unlocked by a password sign-in.
#[utoipa::path(get, path = "/api/persons/{case}/interviews", tag = "persons",
    params(("case" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
async fn interviews(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    let key = org_key(&caller);
    st.run(move |reg, _| {
        Ok(Json(json(&reg.interviews(
            &caller.principal,
            now(),
            &case,
            key.as_deref(),
        )?)?))
    })
    .await
}

/// Who opened his sealed classes, and when.
#[utoipa::path(get, path = "/api/persons/{case}/access", tag = "persons",
    params(("case" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
async fn access_history(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, _| Ok(Json(json(&reg.access_history(&caller.principal, &case)?)?)))
        .await
}

/// The events of his record (public parts; sealed parts by size only).
#[utoipa::path(get, path = "/api/persons/{case}/events", tag = "persons",
    params(("case" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
async fn person_events(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, _| {
        let events = reg.person_events(&caller.principal, &case)?;
        Ok(Json(json(
            &events.iter().map(EventJson::new).collect::<Vec<_>>(),
        )?))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amend {
    /// Why (1–500 characters); recorded in the log and seen by every organisation involved in
    /// the case, so it names no particulars.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
    /// His whole record as it should now read, as `GET /api/persons/{case}/particulars` gives
    /// it: with `from_event`, the event those particulars were read from (409 when his
    /// particulars have been corrected since: read them again). `external_id` may be left out,
    /// and cannot be changed.
    particulars: RegistrationInput,
}

/// Correct a captive's particulars: a new event carries his whole record as it now reads, with
/// the reason; the record before it stays in the log. Answers the event's seq, and the pending
/// movements the correction suspended (a transfer to the power he now depends on, while G1
/// protects him), each with the reason.
#[utoipa::path(post, path = "/api/persons/{case}/amend", tag = "persons", request_body = Amend,
    params(("case" = String, Path), Sharing),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 410, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn amend_person(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
    Query(sharing): Query<Sharing>,
    Body(req): Body<Amend>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    let shared = sharing.numbers();
    st.run(move |reg, st| {
        let done = reg.amend_as(
            &caller.principal,
            now(),
            &st.settings,
            &case,
            (&req.particulars, shared),
            &req.reason,
        )?;
        let child = done.age_at_capture.and_then(|age| {
            let note = age.child()?;
            Some(serde_json::json!({"age_at_capture": age, "note": note}))
        });
        let mut answer =
            serde_json::json!({"case": case, "seq": done.seq, "suspended": done.suspended});
        if let (Some(child), Some(fields)) = (child, answer.as_object_mut()) {
            fields.insert("child".into(), child);
        }
        Ok(Json(answer))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Erase {
    /// Why (1–500 characters); recorded in the log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Crypto-shred a captive: his data keys are destroyed; the erasure and its reason are events.
#[utoipa::path(post, path = "/api/persons/{case}/erase", tag = "persons", request_body = Erase,
    params(("case" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 410, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn erase_person(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
    Body(req): Body<Erase>,
) -> Res<Value> {
    let case = case_in_path(&case)?;
    st.run(move |reg, _| {
        let erased = reg.erase_as(&caller.principal, now(), &case, &req.reason)?;
        // Recorded either way; whether anything of his keys may still be in the key store's
        // files (another process reading it since before, for longer than the wait) is for the
        // operator to finish with `asylon purge-keys`, and for the caller to know.
        let keys_purged = erased.purge == asylon_store::Purge::Complete;
        if !keys_purged {
            eprintln!(
                "asylon-server: the erasure recorded as event {} could not purge the key \
                 store's files, another process reading it since before: run `asylon \
                 purge-keys` once it has ended",
                erased.seq
            );
        }
        Ok(Json(
            serde_json::json!({"case": case, "seq": erased.seq, "keys_purged": keys_purged}),
        ))
    })
    .await
}

/// Counts of captives for a report: by the power they depend on, by state, by place of custody.
/// No count smaller than the deployment's `k_anonymity` is given, nor any that the total and
/// the counts given would tell (`count` is then null); erased captives are not counted.
#[utoipa::path(get, path = "/api/statistics", tag = "law",
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody)))]
async fn statistics(State(st): State<Arc<AppState>>, caller: Caller) -> Res<Value> {
    st.run(move |reg, st| {
        let report = reg.statistics(&caller.principal, st.settings.k_anonymity)?;
        Ok(Json(json(&report)?))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyTo {
    /// `agency` (the neutral agency) or `origin` (the power he depends on).
    to: String,
}

/// Make a captive's Art 122 notification for the neutral agency or the power he depends on, and
/// record that it was sent: the law decides what it holds (G6: nothing of his identity, family or
/// statements goes to the power of origin while G1 protects him); the record of sending it, and
/// of the classes opened for it, are written before it is answered. A refusal records nothing.
#[utoipa::path(post, path = "/api/persons/{case}/notifications", tag = "law", request_body = NotifyTo,
    params(("case" = String, Path)),
    responses((status = 201, body = asylon_store::Notification), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 410, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn notify(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(case): Path<String>,
    Body(req): Body<NotifyTo>,
) -> Result<(StatusCode, Json<asylon_store::Notification>), ApiError> {
    let case = case_in_path(&case)?;
    if !matches!(req.to.as_str(), "agency" | "origin") {
        return Err(ApiError::invalid(
            "to",
            "must be `agency` (the neutral agency) or `origin` (the power he depends on)",
        ));
    }
    st.run(move |reg, st| {
        let made = reg.notify(&caller.principal, now(), &st.settings, &case, &req.to)?;
        Ok((StatusCode::CREATED, Json(made)))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct Recorded {
    events: Vec<RecordedEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordedEvent {
    seq: u64,
    kind: String,
}

/// Record a law command (docs/commands.md): decided against the guards G1–G8; a refusal (409)
/// names the guard and records nothing.
#[utoipa::path(post, path = "/api/commands", tag = "law", request_body = Command,
    responses((status = 201, body = Recorded), (status = 403, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn record(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Body(cmd): Body<Command>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    st.run(move |reg, st| {
        let events = reg.act(&caller.principal, now(), &st.settings, &cmd)?;
        Ok((
            StatusCode::CREATED,
            Json(Recorded {
                events: events
                    .into_iter()
                    .map(|e| RecordedEvent {
                        seq: e.seq,
                        kind: e.kind,
                    })
                    .collect(),
            }),
        ))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadlineFilter {
    /// Only those past due.
    overdue: Option<bool>,
    /// At most this many (1–10,000); when more follow, the answer's `Link` header names the
    /// next page (`rel="next"`). Without it, all of them.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// Only those after this place in the list, `DUE,CASE,KIND` (as the `Link` header of the
    /// page before gives it).
    #[param(max_length = 80)]
    after: Option<String>,
}

/// Deadlines one page may hold at most.
const DEADLINES_PER_PAGE: usize = 10_000;

/// The open duties (capture cards, notifications, health reports, commissions) of the captives
/// the caller may see, earliest due first (then by case number, then by kind), all of them or a
/// page at a time.
#[utoipa::path(get, path = "/api/deadlines", tag = "law", params(DeadlineFilter),
    responses((status = 200, body = Vec<Object>,
        headers(("link" = String, description = "`<…>; rel=\"next\"`: the next page, when `limit` left some out"))),
        (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn deadlines(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(f): Query<DeadlineFilter>,
) -> Result<axum::response::Response, ApiError> {
    use asylon_core::law::DeadlineCursor;
    use axum::response::IntoResponse;
    let after = f
        .after
        .as_deref()
        .map(|text| {
            DeadlineCursor::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "after",
                    "is no place in the list of deadlines: DUE,CASE,KIND, as a Link header gives it",
                )
            })
        })
        .transpose()?;
    if f.limit
        .is_some_and(|n| !(1..=DEADLINES_PER_PAGE).contains(&n))
    {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {DEADLINES_PER_PAGE}"),
        ));
    }
    let overdue = f.overdue.unwrap_or(false);
    let limit = f.limit.unwrap_or(usize::MAX);
    let (page, next) = st
        .run(move |reg, st| {
            let (page, next) =
                deadlines_page(reg, st, &caller.principal, overdue, after.as_ref(), limit)?;
            Ok((page, next.map(|after| (after, limit))))
        })
        .await?;
    // Written straight to bytes once the registry is free again: after an import every captive
    // owes two duties, and at a million captives a JSON tree of the answer, built while the
    // registry was held, took the server to 3.7 GB and every other request waited 8.7 s
    // (`scripts/bench-server`, docs/api.md).
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&page))
        .await
        .map_err(|_| ApiError::internal("worker failed"))?
        .map_err(|_| ApiError::internal("serialising a response"))?;
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some((after, limit)) = next {
        let overdue = if overdue { "&overdue=true" } else { "" };
        let link = format!("</api/deadlines?limit={limit}&after={after}{overdue}>; rel=\"next\"");
        if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
            resp.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    Ok(resp)
}

/// The open duties `who` may see (only those past due if `overdue`) after `after`, `limit` of
/// them, and the place to go on after (`DUE,CASE,KIND`) when more follow.
pub(crate) fn deadlines_page(
    reg: &asylon_store::Registry,
    st: &AppState,
    who: &asylon_core::law::Principal,
    overdue: bool,
    after: Option<&asylon_core::law::DeadlineCursor>,
    limit: usize,
) -> Result<(Vec<asylon_core::law::Deadline>, Option<String>), ApiError> {
    asylon_core::policy::core_scope(who).map_err(StoreError::Denied)?;
    // Only the captives whose records changed since the last request are read again.
    let mut duties = st.duties();
    duties.catch_up(reg)?;
    let (page, more) = duties.page(who, now(), overdue, after, limit)?;
    drop(duties);
    let next = page
        .last()
        .filter(|_| more)
        .map(|last| asylon_core::law::DeadlineCursor::of(last).text());
    Ok((page, next))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A name in any script and spelling: Hangul, Latin, Cyrillic, or Hanja (read by its
    /// Korean readings).
    #[param(min_length = 1, max_length = 200)]
    name: String,
    /// At most this many, best first (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Captives whose sealed names match, through the blind index; only those whose identity the
/// caller may read. The search is recorded.
#[utoipa::path(get, path = "/api/search", tag = "persons", params(SearchQuery),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn search(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Res<Value> {
    let name = asylon_core::input::free_text("a name", &q.name, 200)
        .map_err(|why| ApiError::invalid("name", why))?
        .to_string();
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    st.run(move |reg, _| {
        Ok(Json(json(&reg.search(
            &caller.principal,
            now(),
            &name,
            limit,
        )?)?))
    })
    .await
}

/// A signed checkpoint of the log (size, root, time, signature) to keep and later check.
#[utoipa::path(get, path = "/api/ledger/checkpoint", tag = "ledger",
    responses((status = 200, body = CheckpointJson), (status = 403, body = crate::ErrorBody)))]
async fn checkpoint(State(st): State<Arc<AppState>>, caller: Caller) -> Res<CheckpointJson> {
    may(&caller.principal, None, Action::ReadLedger).map_err(StoreError::Denied)?;
    st.run(move |reg, _| {
        let cp = reg.checkpoint(now())?;
        Ok(Json(CheckpointJson::new(&cp, &reg.public_key())))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// The size of the checkpoint the proof is to be checked against (default: the log's
    /// current size).
    #[param(minimum = 1)]
    #[serde(default)]
    size: Option<u64>,
}

/// An inclusion proof of event `seq` in the tree of `size` events (default: the current tree):
/// check it against the checkpoint of that size (`asylon ledger check`).
#[utoipa::path(get, path = "/api/ledger/proof/{seq}", tag = "ledger",
    params(("seq" = u64, Path, description = "event sequence number, from 1"), ProofQuery),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn proof(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Path(seq): Path<u64>,
    Query(q): Query<ProofQuery>,
) -> Res<Value> {
    may(&caller.principal, None, Action::ReadLedger).map_err(StoreError::Denied)?;
    st.run(move |reg, _| Ok(Json(json(&reg.prove(seq, q.size)?)?)))
        .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The size of the checkpoint the caller kept.
    #[param(minimum = 1)]
    from: u64,
    /// The size of the later checkpoint the caller holds (default: the log's current size, which
    /// may have grown since that checkpoint was taken).
    #[param(minimum = 1)]
    #[serde(default)]
    to: Option<u64>,
}

/// A consistency proof that the log of size `to` (default: the current log) extends the
/// caller's earlier checkpoint of size `from`: verify it against the root kept and the root of
/// the later checkpoint (`asylon ledger check` does, with no access to the registry).
#[utoipa::path(get, path = "/api/ledger/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = Object), (status = 403, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
async fn consistency(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ConsistencyQuery>,
) -> Res<Value> {
    may(&caller.principal, None, Action::ReadLedger).map_err(StoreError::Denied)?;
    st.run(move |reg, _| Ok(Json(json(&reg.prove_consistency(q.from, q.to)?)?)))
        .await
}

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(list_persons, register_person))
        .routes(routes!(import_persons))
        .routes(routes!(check_import))
        .routes(routes!(show_person))
        .routes(routes!(person_particulars))
        .routes(routes!(person_status))
        .routes(routes!(interviews))
        .routes(routes!(access_history))
        .routes(routes!(person_events))
        .routes(routes!(amend_person))
        .routes(routes!(erase_person))
        .routes(routes!(record))
        .routes(routes!(notify))
        .routes(routes!(statistics))
        .routes(routes!(deadlines))
        .routes(routes!(search))
        .routes(routes!(checkpoint))
        .routes(routes!(proof))
        .routes(routes!(consistency))
}
