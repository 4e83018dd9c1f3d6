//! The web UI: pages for a person at a browser, in English, Ukrainian or Korean, served under
//! `/ui` beside the API. They read through the same store calls as the API, and so through the
//! same policy: a page shows what the API would answer the same caller, and opening a captive's
//! record is recorded in his access history as the API's reading of it is.
//!
//! Sign-in is a form (password and TOTP code) that opens the API's own session cookie; the one
//! form that changes anything once signed in, signing out, carries the session's CSRF token as
//! a hidden field, checked as the API checks its header. The pages are plain HTML and one
//! stylesheet: no script runs, and the content security policy lets none run.

mod text;

use crate::api::{deadlines_page, persons_page};
use crate::auth::{
    Caller, SignIn, cookie_named, cookie_value, expired_session_cookie, now, open_session,
    session_caller, session_cookie,
};
use crate::{ApiError, AppState};
use askama::Template;
use asylon_core::law::{Deadline, DeadlineCursor, DeadlineKind, DeadlineStatus, Wish, WishStatus};
use asylon_core::{Art17Field, PersonRow, PersonStatus};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
pub use text::{Lang, Text};

/// The cookie that keeps the language a person chose.
const LANG_COOKIE: &str = "asylon_lang";

/// Captives a page of the list shows.
const PERSONS_PER_PAGE: usize = 50;

/// Captives a search shows at most, best first.
const SEARCH_HITS: usize = 50;

/// Open duties a page of deadlines shows.
const DEADLINES_PER_PAGE: usize = 100;

/// The content security policy of the UI's pages: its own stylesheet, forms sent to itself,
/// nothing else (no script at all).
pub(crate) const UI_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/style.css", get(style))
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/persons", get(persons))
        .route("/ui/persons/{case}", get(person))
        .route("/ui/deadlines", get(deadlines))
        .route("/ui/search", get(search))
}

/// The language of a request: `?lang=` (kept in a cookie from then on), else the cookie, else
/// the browser's `Accept-Language`, else English.
pub struct Speaking {
    lang: Lang,
    /// Chosen by this request's `?lang=`: the page sets the cookie.
    chosen: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Speaking {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let asked = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("lang="))
                .find_map(Lang::of)
        });
        if let Some(lang) = asked {
            return Ok(Self { lang, chosen: true });
        }
        let kept = cookie_named(&parts.headers, LANG_COOKIE).and_then(|c| Lang::of(&c));
        let lang = kept
            .or_else(|| {
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::accepted)
            })
            .unwrap_or(Lang::En);
        Ok(Self {
            lang,
            chosen: false,
        })
    }
}

impl Speaking {
    fn t(&self) -> &'static Text {
        self.lang.text()
    }

    /// `page` as an HTML answer with `status`, keeping a language just chosen.
    fn page(&self, status: StatusCode, page: &impl Template) -> Response {
        let Ok(html) = page.render() else {
            return ApiError::internal("rendering a page").into_response();
        };
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        if self.chosen {
            let c = format!(
                "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict",
                self.lang.code()
            );
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    /// The page for an error of a request signed in as `who`: to sign in again when there is
    /// no session, else what went wrong in words of the page's language.
    fn error(&self, who: Option<&Who>, e: &ApiError) -> Response {
        let t = self.t();
        let message = match e.status {
            StatusCode::UNAUTHORIZED => return Redirect::to("/ui/sign-in").into_response(),
            StatusCode::NOT_FOUND => t.no_such_captive.to_string(),
            StatusCode::FORBIDDEN => t.forbidden.replace("{why}", &e.body.error),
            StatusCode::GONE => t.gone.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                t.no_such_page.to_string()
            }
            StatusCode::SERVICE_UNAVAILABLE => t.busy.to_string(),
            _ => t.failed.to_string(),
        };
        self.page(
            e.status,
            &ErrorPage {
                frame: self.frame(who.cloned()),
                message,
            },
        )
    }

    fn frame(&self, who: Option<Who>) -> Frame {
        Frame {
            t: self.t(),
            lang: self.lang.code(),
            langs: Lang::ALL.map(|l| (l.code(), l.text().name)),
            who,
        }
    }
}

/// A request for a page that needs someone signed in: his language, who he is, and what his
/// page shows of him. Without a live session the request goes to the sign-in form (or is
/// answered with what stopped it) before its handler runs.
pub struct Visitor {
    speaking: Speaking,
    caller: Caller,
}

impl FromRequestParts<Arc<AppState>> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let Ok(speaking) = Speaking::from_request_parts(parts, state).await;
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => Ok(Visitor { speaking, caller }),
            // A session cookie no longer good for a session: he is told it ended.
            Err(e)
                if e.status == StatusCode::UNAUTHORIZED
                    && cookie_value(&parts.headers).is_some() =>
            {
                Err(Redirect::to("/ui/sign-in?ended=1").into_response())
            }
            Err(e) => Err(speaking.error(None, &e)),
        }
    }
}

impl Visitor {
    /// `page` for him, with `status`.
    fn page(&self, status: StatusCode, page: &impl Template) -> Response {
        self.speaking.page(status, page)
    }

    /// The page saying what went wrong.
    fn error(&self, e: &ApiError) -> Response {
        self.speaking.error(Who::of(&self.caller).as_ref(), e)
    }

    fn frame(&self) -> Frame {
        self.speaking.frame(Who::of(&self.caller))
    }

    fn t(&self) -> &'static Text {
        self.speaking.t()
    }
}

/// The signed-in person a page is shown to, and the token his sign-out form carries.
#[derive(Clone)]
pub struct Who {
    user: String,
    org: String,
    csrf: String,
}

impl Who {
    fn of(caller: &Caller) -> Option<Who> {
        match &caller.via {
            crate::auth::Via::Session { csrf, .. } => Some(Who {
                user: caller.principal.user.clone(),
                org: caller.principal.org.clone(),
                csrf: csrf.clone(),
            }),
            crate::auth::Via::Token { .. } => None,
        }
    }
}

/// What every page shows around its content.
pub struct Frame {
    t: &'static Text,
    lang: &'static str,
    langs: [(&'static str, &'static str); 3],
    who: Option<Who>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    message: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    frame: Frame,
    user: String,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "persons.html")]
struct PersonsPage {
    frame: Frame,
    persons: Vec<PersonLine>,
    next: Option<String>,
}

struct PersonLine {
    case: String,
    power: String,
    captured_on: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    frame: Frame,
    title: String,
    erased: bool,
    /// His particulars the reader may see, each as a label and its value.
    facts: Vec<(&'static str, String)>,
    names: Vec<String>,
    not_stated: Vec<&'static str>,
    withheld: Vec<String>,
    protection: String,
    wish: String,
    duties: Vec<DutyLine>,
}

struct DutyLine {
    due: String,
    case: String,
    kind: &'static str,
    status: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "deadlines.html")]
struct DeadlinesPage {
    frame: Frame,
    overdue: bool,
    duties: Vec<DutyLine>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    frame: Frame,
    name: String,
    problem: Option<String>,
    /// `None` before a search.
    hits: Option<Vec<HitLine>>,
}

struct HitLine {
    case: String,
    power: String,
    captured_on: String,
    score: String,
}

async fn home() -> Redirect {
    Redirect::to("/ui/persons")
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../templates/style.css"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SignInQuery {
    /// Sent here because his session ended (idle, too old, signed out elsewhere, disabled).
    ended: Option<String>,
}

async fn sign_in_page(speaking: Speaking, Query(q): Query<SignInQuery>) -> Response {
    speaking.page(
        StatusCode::OK,
        &SignInPage {
            frame: speaking.frame(None),
            user: String::new(),
            problem: q.ended.map(|_| speaking.t().session_ended.to_string()),
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    user: Option<String>,
    password: Option<String>,
    totp: Option<String>,
}

/// Signs in with the form's user name, password and code; on success, to the list of captives
/// with the session cookie set, else the form again saying why (the user name kept).
async fn sign_in(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    speaking: Speaking,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let t = speaking.t();
    let again = |user: String, status: StatusCode, problem: String| {
        speaking.page(
            status,
            &SignInPage {
                frame: speaking.frame(None),
                user,
                problem: Some(problem),
            },
        )
    };
    let filled = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let Ok(axum::Form(form)) = form else {
        return again(
            String::new(),
            StatusCode::BAD_REQUEST,
            t.sign_in_incomplete.into(),
        );
    };
    let (Some(user), Some(password), Some(totp)) =
        (filled(form.user), filled(form.password), filled(form.totp))
    else {
        return again(
            String::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            t.sign_in_incomplete.into(),
        );
    };
    let req = SignIn {
        user: user.clone(),
        password,
        totp,
    };
    match open_session(&st, addr, req).await {
        Ok((_, cookie)) => {
            let mut resp = Redirect::to("/ui/persons").into_response();
            if let Some(v) = session_cookie(&cookie, st.config.secure) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            let wait = e.retry_after.unwrap_or(1).to_string();
            again(user, e.status, t.throttled.replace("{s}", &wait))
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            again(user, e.status, t.sign_in_failed.into())
        }
        Err(e) => speaking.error(None, &e),
    }
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf: Option<String>,
}

/// Ends the session whose CSRF token the form carries; then to the sign-in page.
async fn sign_out(
    State(st): State<Arc<AppState>>,
    speaking: Speaking,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|axum::Form(f)| f.csrf);
    let Some(value) = cookie_value(&headers) else {
        return Redirect::to("/ui/sign-in").into_response();
    };
    let ended = async {
        let caller = session_caller(&st, value, csrf, true).await?;
        let hash = *caller.interactive()?;
        st.run(move |reg, _| Ok(reg.end_session(&hash)?)).await
    };
    match ended.await {
        Ok(()) => {
            let mut resp = Redirect::to("/ui/sign-in").into_response();
            if let Some(v) = expired_session_cookie() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        // Without the token of a page of this session (a form sent from elsewhere, or kept
        // from an earlier session): nothing ends, and he is told how to sign out.
        Err(e) if e.status == StatusCode::FORBIDDEN => speaking.page(
            e.status,
            &ErrorPage {
                frame: speaking.frame(None),
                message: speaking.t().sign_out_refused.to_string(),
            },
        ),
        Err(e) => speaking.error(None, &e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    overdue: Option<String>,
}

async fn persons(
    State(st): State<Arc<AppState>>,
    v: Visitor,
    Query(q): Query<ListQuery>,
) -> Response {
    let after = q.after.unwrap_or_default();
    let p = v.caller.principal.clone();
    let page = st
        .run(move |reg, st| persons_page(reg, st, &p, &after, PERSONS_PER_PAGE))
        .await;
    let (rows, next) = match page {
        Ok(p) => p,
        Err(e) => return v.error(&e),
    };
    let t = v.t();
    let persons = rows
        .into_iter()
        .map(|r: PersonRow| PersonLine {
            status: record_state(t, r.status),
            case: r.case_no,
            power: r.power,
            captured_on: r.captured_on,
        })
        .collect();
    v.page(
        StatusCode::OK,
        &PersonsPage {
            frame: v.frame(),
            persons,
            next,
        },
    )
}

/// A captive's record as the caller may see it (the opening of his sealed classes recorded, as
/// `GET /api/persons/{case}` records it), and what the law says of him now.
async fn person(State(st): State<Arc<AppState>>, v: Visitor, Path(case): Path<String>) -> Response {
    let case = match crate::api::case_in_path(&case) {
        Ok(c) => c,
        Err(e) => return v.error(&e),
    };
    let p = v.caller.principal.clone();
    let read = st
        .run(move |reg, st| Ok(reg.show_person_and_status(&p, now(), &st.settings, &case)?))
        .await;
    let (shown, status) = match read {
        Ok(r) => r,
        Err(e) => return v.error(&e),
    };
    let t = v.t();
    let row = &shown.row;
    let mut facts = vec![
        (t.case, row.case_no.clone()),
        (t.record, record_state(t, row.status).to_string()),
        (t.power, row.power.clone()),
        (t.captured_on, row.captured_on.clone()),
    ];
    if let Some(at) = &row.captured_at {
        facts.push((t.captured_at, at.clone()));
    }
    let mut names = Vec::new();
    if let Some(id) = &shown.identity {
        for n in &id.names {
            names.push(
                [n.family.as_str(), n.given.as_str()]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let more = [
            (t.date_of_birth, id.date_of_birth.map(|d| d.to_string())),
            (t.place_of_birth, id.place_of_birth.clone()),
            (t.rank, id.rank.clone()),
            (t.service_number, id.service_number.clone()),
            (t.unit, id.unit.clone()),
        ];
        facts.extend(more.into_iter().filter_map(|(l, v)| Some((l, v?))));
    }
    if let Some(f) = &shown.family {
        let family = [
            (t.father_first_name, f.father_first_name.clone()),
            (t.mother_maiden_name, f.mother_maiden_name.clone()),
        ];
        facts.extend(family.into_iter().filter_map(|(l, v)| Some((l, v?))));
    }
    let not_stated = shown
        .not_stated
        .iter()
        .map(|f| match f {
            Art17Field::DateOfBirth => t.date_of_birth,
            Art17Field::Rank => t.rank,
            Art17Field::ServiceNumber => t.service_number,
        })
        .collect();
    let (protection, wish, duties) = match &status {
        Some(s) => (
            match &s.protected_from_return {
                Some(why) => t.protected.replace("{why}", why),
                None => t.not_protected.to_string(),
            },
            wish_text(t, &s.wish_status),
            s.deadlines.iter().map(|d| duty_line(t, d)).collect(),
        ),
        None => (String::new(), String::new(), Vec::new()),
    };
    v.page(
        StatusCode::OK,
        &PersonPage {
            frame: v.frame(),
            title: t.captive.replace("{case}", &row.case_no),
            erased: row.status == PersonStatus::Erased,
            facts,
            names,
            not_stated,
            withheld: shown.withheld.clone(),
            protection,
            wish,
            duties,
        },
    )
}

async fn deadlines(
    State(st): State<Arc<AppState>>,
    v: Visitor,
    Query(q): Query<ListQuery>,
) -> Response {
    let overdue = q.overdue.as_deref() == Some("true");
    let after = match q.after.as_deref().map(DeadlineCursor::parse) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return v.error(&ApiError::bad_request("no such place in the list")),
    };
    let p = v.caller.principal.clone();
    let page = st
        .run(move |reg, st| {
            deadlines_page(reg, st, &p, overdue, after.as_ref(), DEADLINES_PER_PAGE)
        })
        .await;
    let (page, next) = match page {
        Ok(p) => p,
        Err(e) => return v.error(&e),
    };
    let t = v.t();
    v.page(
        StatusCode::OK,
        &DeadlinesPage {
            frame: v.frame(),
            overdue,
            duties: page.iter().map(|d| duty_line(t, d)).collect(),
            next,
        },
    )
}

#[derive(Deserialize)]
struct SearchQuery {
    name: Option<String>,
}

/// Captives whose names match one typed in any script or spelling, through the blind index, as
/// `GET /api/search` finds them (only those whose identity the caller may read); the search is
/// recorded. The form alone until a name is given.
async fn search(
    State(st): State<Arc<AppState>>,
    v: Visitor,
    Query(q): Query<SearchQuery>,
) -> Response {
    let t = v.t();
    let typed = q.name.unwrap_or_default();
    let shown = |status, problem: Option<String>, hits: Option<Vec<HitLine>>| {
        v.page(
            status,
            &SearchPage {
                frame: v.frame(),
                name: typed.clone(),
                problem,
                hits,
            },
        )
    };
    let name = match asylon_core::input::free_text("a name", &typed, 200) {
        Ok("") => return shown(StatusCode::OK, None, None),
        Ok(name) => name.to_string(),
        Err(why) => {
            let problem = t.search_invalid.replace("{why}", &why);
            return shown(StatusCode::UNPROCESSABLE_ENTITY, Some(problem), None);
        }
    };
    let p = v.caller.principal.clone();
    let found = st
        .run(move |reg, _| {
            let hits = reg.search(&p, now(), &name, SEARCH_HITS)?;
            hits.into_iter()
                .map(|h| {
                    let row = reg.person(&h.case_no)?;
                    Ok(HitLine {
                        case: h.case_no,
                        power: row.power,
                        captured_on: row.captured_on,
                        score: format!("{:.2}", h.score),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await;
    match found {
        Ok(hits) => shown(StatusCode::OK, None, Some(hits)),
        Err(e) => v.error(&e),
    }
}

/// Whether his record stands or was erased, in words.
fn record_state(t: &Text, status: PersonStatus) -> &'static str {
    match status {
        PersonStatus::Registered => t.registered,
        PersonStatus::Erased => t.erased,
    }
}

fn duty_line(t: &Text, d: &Deadline) -> DutyLine {
    let status = match &d.status {
        DeadlineStatus::Due => t.status_due.to_string(),
        DeadlineStatus::Overdue => t.status_overdue.to_string(),
        DeadlineStatus::Waived(why) => t.status_waived.replace("{why}", why),
    };
    DutyLine {
        due: d.due.to_string(),
        case: d.case.clone(),
        kind: match d.kind {
            DeadlineKind::CaptureCard => t.capture_card,
            DeadlineKind::Notification => t.notification,
            DeadlineKind::HealthUpdate => t.health_update,
            DeadlineKind::CommissionDecision => t.commission_decision,
        },
        overdue: matches!(d.status, DeadlineStatus::Overdue),
        status,
    }
}

fn wish_text(t: &Text, w: &WishStatus) -> String {
    let wish = |w: &Wish| match w {
        Wish::Return => t.wish_return.to_string(),
        Wish::Stay => t.wish_stay.to_string(),
        Wish::ThirdState(state) => t.wish_third_state.replace("{state}", state),
        Wish::Undecided => t.wish_undecided.to_string(),
    };
    match w {
        WishStatus::None => t.wish_none.to_string(),
        WishStatus::Stated(w) => t.wish_stated.replace("{wish}", &wish(w)),
        WishStatus::Verified(w) => t.wish_verified.replace("{wish}", &wish(w)),
        WishStatus::Contested(w) => t.wish_contested.replace("{wish}", &wish(w)),
        WishStatus::Unreadable => t.wish_unreadable.to_string(),
    }
}
