//! The HTTP API, over real HTTP against servers started on free ports: the access matrix in
//! docs/http-access-matrix.csv, sign-in and sessions, tokens, CSRF, the back-off, organisation
//! sealing of interview notes, bad input, and the OpenAPI document; the web UI in a real
//! browser (http/ui.rs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use asylon_core::law::{Command, Principal, Role};
use asylon_core::{Actor, RegistrationInput};
use asylon_server::accounts::{NewMember, add_org, add_user};
use asylon_server::{AppState, Config};
use asylon_store::test_support::postgres_url as pg_url;
use asylon_store::test_support::{PgOnDisk, SmallDisk};
use asylon_store::{Database, KeySource, Registry, default_key_file, load_settings};
use asylon_vault::{OrgSecret, PasswordCost};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use time::OffsetDateTime;

const LIGHT: PasswordCost = PasswordCost { m_kib: 256, t: 1 };
const PASSWORD: &str = "a long test password";
const ORGS: [(&str, &str); 3] = [
    ("detaining", "dp"),
    ("neutral", "cta"),
    ("receiving:KR", "kr"),
];
const ROLES: [&str; 8] = [
    "admin",
    "registrar",
    "interviewer",
    "medical",
    "legal",
    "liaison",
    "auditor",
    "analyst",
];
const NOTES: &str = "He spoke of his brother in the 7th brigade";

/// The backend a test body runs on: every test below runs on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// A fresh schema per registry, named after this process; earlier runs' schemas are
    /// dropped the first time.
    fn database(self) -> Database {
        match self {
            Db::Sqlite => Database::Sqlite,
            Db::Postgres => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                static CLEAN: OnceLock<()> = OnceLock::new();
                CLEAN.get_or_init(|| {
                    let mut c = ::postgres::Client::connect(&pg_url(), ::postgres::NoTls).unwrap();
                    for row in c
                        .query(
                            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'asylon_http_%'",
                            &[],
                        )
                        .unwrap()
                    {
                        let name: String = row.get(0);
                        c.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).unwrap();
                    }
                });
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Database::Postgres {
                    url: pg_url(),
                    schema: format!("asylon_http_{}_{n}", std::process::id()),
                }
            }
        }
    }

    /// Whether the test can run: PostgreSQL must be reachable, and under CI it must be.
    fn available(self) -> bool {
        if self == Db::Sqlite {
            return true;
        }
        asylon_store::test_support::postgres_client().is_some()
    }
}

/// Runs each test body on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Db::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if super::Db::Postgres.available() {
                    super::$name(super::Db::Postgres)
                }
            } )*
        }
    };
}

on_both_backends!(
    a_session_opens_its_organisations_notes_on_any_server_process,
    an_event_altered_by_someone_who_got_past_the_trigger_is_found_and_named,
    an_erased_captive_is_gone_from_every_reader_and_the_log_still_verifies,
    an_erasure_held_back_by_an_older_reader_is_answered_as_not_purged,
    a_request_that_waits_holds_up_only_its_own_handle_on_the_registry,
    an_erasure_waiting_for_an_older_reader_lets_registrations_through,
    a_captive_erased_twice_at_once_is_erased_once,
    an_erasure_that_cannot_be_recorded_says_his_keys_are_gone,
    a_correction_is_what_every_reader_sees_and_the_record_before_it_stays_in_the_log,
    events_cannot_be_changed_or_removed_in_the_database_itself,
    writers_on_several_connections_append_one_gapless_log,
    every_role_of_every_organisation_gets_what_the_matrix_says,
    sign_in_refuses_wrong_passwords_and_codes_without_telling_which,
    sign_in_is_throttled_per_account_and_per_address_in_the_database,
    sign_ins_being_checked_leave_the_registry_to_other_requests,
    sign_ins_checked_at_once_get_no_further_than_one_after_another,
    sessions_end_when_idle_and_on_sign_out,
    behind_tls_cookies_are_secure_and_hsts_is_sent,
    cookie_writes_need_the_csrf_token,
    api_tokens_are_scoped_and_revocable,
    administrators_manage_their_own_users_and_a_disabled_user_is_out_at_once,
    interview_notes_open_only_inside_the_organisation_that_took_them,
    a_password_change_rewraps_the_organisation_key_and_ends_other_sessions,
    a_password_changed_twice_at_once_is_changed_once,
    every_read_of_a_sealed_class_is_in_the_access_history,
    bad_input_gets_a_clear_error_and_changes_nothing,
    a_kept_checkpoint_is_proved_extended_and_a_withdrawn_consent_bites_at_once,
    responses_carry_strict_security_headers,
    the_openapi_document_is_valid_and_every_route_answers,
    persons_are_listed_in_the_order_of_their_numbers_a_page_at_a_time,
    a_full_disk_is_answered_507_and_nothing_is_written,
    a_write_waits_for_another_writer_and_is_answered_503_if_it_waits_too_long,
    a_child_at_capture_is_registered_and_the_answer_says_so,
    deadlines_are_the_registrys_own_for_each_caller,
    a_server_reads_the_open_duties_as_it_starts,
    deadlines_come_a_page_at_a_time_in_one_order,
    a_notification_holds_only_what_may_go_to_its_recipient,
    a_person_at_a_browser_signs_in_reads_records_and_signs_out,
    the_web_ui_shows_only_what_its_caller_may_see_and_shows_it_as_text,
    the_web_uis_forms_refuse_bad_input_and_need_the_pages_token,
);

#[path = "http/ui.rs"]
mod ui;
use ui::{
    a_person_at_a_browser_signs_in_reads_records_and_signs_out,
    the_web_ui_shows_only_what_its_caller_may_see_and_shows_it_as_text,
    the_web_uis_forms_refuse_bad_input_and_need_the_pages_token,
};

fn role(name: &str) -> Role {
    serde_json::from_value(Value::String(name.into())).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn command(v: Value) -> Command {
    serde_json::from_value(v).unwrap()
}

/// A running server on its own registry, with a user for every role of every organisation.
struct Server {
    /// Stops this server, and the others started on its registry, when it is dropped, so
    /// their connections close (PostgreSQL takes a hundred at most).
    stops: Mutex<Vec<Stop>>,
    base: String,
    dir: PathBuf,
    database: Database,
    _tmp: tempfile::TempDir,
    /// user → TOTP secret
    totp: HashMap<String, String>,
    /// user → last TOTP step used, so no code is offered twice
    steps: Mutex<HashMap<String, u64>>,
    /// captive state (none, referred, consented, write) → case number
    cases: HashMap<String, String>,
    names: HashMap<String, String>,
}

fn who(user: &str, org: &str, r: &str) -> Principal {
    Principal {
        user: user.into(),
        org: org.into(),
        roles: vec![role(r)],
    }
}

/// Registers four captives and brings them into the states the matrix names.
fn captives(reg: &mut Registry) -> (HashMap<String, String>, HashMap<String, String>) {
    let settings = asylon_core::law::Settings::default();
    let registrar = who("dp-registrar", "detaining", "registrar");
    let mut cases = HashMap::new();
    let mut names = HashMap::new();
    for (state, name, latin, number) in [
        ("none", "김철수", "Kim Chol Su", "SN-77123"),
        ("referred", "박영호", "Pak Yong Ho", "SN-77124"),
        ("consented", "최민준", "Choe Min Jun", "SN-77125"),
        ("write", "정대현", "Jong Dae Hyon", "SN-77126"),
    ] {
        let input: RegistrationInput = serde_json::from_value(json!({
            "names": [name, latin], "date_of_birth": "2001-02-03", "rank": "private",
            "service_number": number, "power": "KP", "captured_on": "2025-01-09",
            "captured_at": "Kursk region", "next_of_kin": "his mother, in Hamhung"
        }))
        .unwrap();
        let r = input.validate(now()).unwrap();
        let case = reg.register(&registrar.actor(), now(), vec![r]).unwrap()[0].clone();
        let delegate = who("cta-interviewer", "neutral", "interviewer");
        reg.act(
            &delegate,
            now(),
            &settings,
            &command(
                json!({"command": "record_interview", "case": case, "on": "2025-02-01",
                "interpreter_org": "neutral", "language": "ko", "private": true,
                "wish": "KR", "fear_of_persecution": true, "notes": NOTES}),
            ),
        )
        .unwrap();
        if state == "referred" || state == "consented" {
            let consul = who("kr-liaison", "receiving:KR", "liaison");
            reg.act(
                &consul,
                now(),
                &settings,
                &command(json!({"command": "record_acceptance", "case": case, "state": "KR"})),
            )
            .unwrap();
        }
        if state == "consented" {
            reg.act(
                &delegate,
                now(),
                &settings,
                &command(json!({"command": "record_consent", "case": case,
                    "recipient": "receiving:KR", "classes": ["identity"]})),
            )
            .unwrap();
        }
        cases.insert(state.to_string(), case);
        names.insert(state.to_string(), latin.to_string());
    }
    (cases, names)
}

fn start(db: Db, config: Config) -> Server {
    start_in(db.database(), config, tempfile::tempdir().unwrap())
}

/// [`start`] on `database`, the registry's files in `tmp`.
fn start_in(database: Database, config: Config, tmp: tempfile::TempDir) -> Server {
    let dir = tmp.path().join("registry");
    let actor = Actor {
        user: "setup".into(),
        org: "deployment".into(),
    };
    let key = KeySource::File(default_key_file(&dir));
    let mut reg = Registry::init_in(&dir, &database, &key, &actor, now()).unwrap();
    let mut totp = HashMap::new();
    for (org, prefix) in ORGS {
        let admin = NewMember {
            org,
            name: &format!("{prefix}-admin"),
            roles: &[],
            password: PASSWORD,
        };
        let (secret, e) = add_org(&mut reg, &actor, now(), org, &admin, LIGHT).unwrap();
        totp.insert(e.user, e.totp_secret);
        for r in &ROLES[1..] {
            let user = format!("{prefix}-{r}");
            let m = NewMember {
                org,
                name: &user,
                roles: &[role(r)],
                password: PASSWORD,
            };
            let e = add_user(&mut reg, &actor, now(), &secret, &m, LIGHT).unwrap();
            totp.insert(e.user, e.totp_secret);
        }
    }
    let (cases, names) = captives(&mut reg);
    let config = Config {
        password_cost: LIGHT,
        ..config
    };
    let mut s = serve_registry(reg, database, tmp, config);
    s.totp = totp;
    s.cases = cases;
    s.names = names;
    s
}

/// Serves `reg`, made in `tmp` on `database`, on two handles, as `asylon serve` opens them
/// (one per core, at least two).
fn serve_registry(
    reg: Registry,
    database: Database,
    tmp: tempfile::TempDir,
    config: Config,
) -> Server {
    let dir = tmp.path().join("registry");
    let key = KeySource::File(default_key_file(&dir));
    let other = Registry::open_in(&dir, &database, &key).unwrap();
    let settings = load_settings(&dir).unwrap();
    let state = Arc::new(AppState::with_handles(vec![reg, other], settings, config).unwrap());
    let (base, stop) = serve_on_free_port(state);
    Server {
        stops: Mutex::new(vec![stop]),
        base,
        dir,
        database,
        _tmp: tmp,
        totp: HashMap::new(),
        steps: Mutex::new(HashMap::new()),
        cases: HashMap::new(),
        names: HashMap::new(),
    }
}

/// Another server on `s`'s registry, as a second process behind a load balancer would be: it
/// shares nothing with the first but the database.
fn second_server(s: &Server) -> String {
    second_server_on(s, s.open_registry())
}

/// [`second_server`] serving `registry` (one of `s`'s, set otherwise).
fn second_server_on(s: &Server, registry: Registry) -> String {
    let config = Config {
        password_cost: LIGHT,
        ..Config::default()
    };
    serve_beside(s, vec![registry], config)
}

/// Another server on `s`'s registry, on two handles, whose password work is heavy (new
/// password hashes and member keys are made at [`HEAVY`]).
fn heavy_server_on(s: &Server) -> String {
    let config = Config {
        password_cost: HEAVY,
        ..Config::default()
    };
    serve_beside(s, vec![s.open_registry(), s.open_registry()], config)
}

/// Serves `handles` on `s`'s registry with `config`, stopped with `s`.
fn serve_beside(s: &Server, handles: Vec<Registry>, config: Config) -> String {
    let settings = load_settings(&s.dir).unwrap();
    let state = Arc::new(AppState::with_handles(handles, settings, config).unwrap());
    let (base, stop) = serve_on_free_port(state);
    s.stops.lock().unwrap().push(stop);
    base
}

/// A password cost heavy enough (tenths of a second) for password work to be seen overlapping.
const HEAVY: PasswordCost = PasswordCost {
    m_kib: 32 * 1024,
    t: 8,
};

/// The registration of a captive who gave only his name (his power and capture date being
/// known), as the law allows.
fn name_only(name: &str) -> Value {
    json!({"names": [name], "power": "KP", "captured_on": "2025-03-01",
        "not_stated": ["date_of_birth", "rank", "service_number"]})
}

/// `legal` erasing `case`, on a thread of its own.
fn erase_aside(legal: Client, case: &str) -> std::thread::JoinHandle<Resp> {
    let url = format!("/api/persons/{case}/erase");
    std::thread::spawn(move || {
        legal.post(
            &url,
            json!({"reason": "his own request, through the agency"}),
        )
    })
}

/// Stops a server when dropped (nothing is sent: the drop ends its wait).
type Stop = tokio::sync::oneshot::Sender<()>;

fn serve_on_free_port(state: Arc<AppState>) -> (String, Stop) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            asylon_server::serve(l, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    (base, stop)
}

/// The server most tests share (default limits); tests that lock accounts or expire sessions
/// start their own.
fn shared(db: Db) -> &'static Server {
    static LITE: OnceLock<Server> = OnceLock::new();
    static PG: OnceLock<Server> = OnceLock::new();
    match db {
        Db::Sqlite => &LITE,
        Db::Postgres => &PG,
    }
    .get_or_init(|| start(db, Config::default()))
}

struct Resp {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Client {
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
    bearer: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Client {
    fn anonymous(s: &Server) -> Self {
        Client {
            base: s.base.clone(),
            ..Default::default()
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&[u8]>) -> Resp {
        let url = format!("{}{path}", self.base);
        let a = agent();
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = &self.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let resp = match body {
            Some(b) => a.run(
                req.header("content-type", "application/json")
                    .body(b.to_vec())
                    .unwrap(),
            ),
            None => a.run(req.body(()).unwrap()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = resp.into_body().read_to_string().unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        assert_documented(method, path, status, &body);
        Resp {
            status,
            body,
            headers,
        }
    }

    fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body.to_string().as_bytes()))
    }

    fn put(&self, path: &str, body: Value) -> Resp {
        self.send("PUT", path, Some(body.to_string().as_bytes()))
    }

    fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None)
    }
}

impl Server {
    /// Runs a `SELECT count(*)` straight on the registry's database.
    /// Runs a statement straight on the registry's database, as its owner would.
    fn exec(&self, sql: &str) -> Result<u64, String> {
        match &self.database {
            Database::Sqlite => rusqlite::Connection::open(self.dir.join("registry.db"))
                .unwrap()
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Database::Postgres { url, schema } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO \"{schema}\""))
                    .unwrap();
                c.execute(sql, &[]).map_err(|e| {
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string())
                })
            }
        }
    }

    /// A reader of the key store that stays on its snapshot until dropped: an erasure cannot
    /// purge the files under it, and waits for it.
    fn older_key_store_reader(&self) -> Box<dyn std::any::Any> {
        match &self.database {
            Database::Sqlite => {
                let c = rusqlite::Connection::open(self.dir.join("keys.db")).unwrap();
                c.execute_batch("BEGIN; SELECT count(*) FROM data_keys")
                    .unwrap();
                Box::new(c)
            }
            Database::Postgres { url, .. } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
                    .unwrap();
                Box::new(c)
            }
        }
    }

    /// Another process holding the registry's log for writing (a rebuild, a restore) until
    /// what this gives is dropped.
    fn other_writer(&self) -> Box<dyn std::any::Any> {
        match &self.database {
            Database::Sqlite => {
                let c = rusqlite::Connection::open(self.dir.join("registry.db")).unwrap();
                c.execute_batch("BEGIN IMMEDIATE").unwrap();
                Box::new(c)
            }
            Database::Postgres { url, schema } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute(&format!(
                    "SET search_path TO \"{schema}\"; BEGIN; LOCK TABLE events IN EXCLUSIVE MODE"
                ))
                .unwrap();
                Box::new(c)
            }
        }
    }

    /// Waits until an erasure has noted that a purge of the key store is due, which it does
    /// before it destroys any key and waits for older readers.
    fn until_a_purge_is_due(&self) {
        while self.count("SELECT count(*) FROM meta WHERE key = 'keys_purge_due'") == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn open_registry(&self) -> Registry {
        Registry::open_in(
            &self.dir,
            &self.database,
            &KeySource::File(default_key_file(&self.dir)),
        )
        .unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        match &self.database {
            Database::Sqlite => rusqlite::Connection::open(self.dir.join("registry.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Database::Postgres { url, schema } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute(&format!("SET search_path TO \"{schema}\""))
                    .unwrap();
                c.query_one(sql, &[]).unwrap().get(0)
            }
        }
    }

    /// Everything the database holds, as a thief would copy it: the SQLite files with their
    /// WALs, or every row of the PostgreSQL schemas as text (bytes in hex).
    fn raw(&self) -> Vec<u8> {
        let mut raw = Vec::new();
        match &self.database {
            Database::Sqlite => {
                for f in ["registry.db", "registry.db-wal", "keys.db", "keys.db-wal"] {
                    raw.extend(std::fs::read(self.dir.join(f)).unwrap_or_default());
                }
            }
            Database::Postgres { url, schema } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                for s in [schema.clone(), format!("{schema}_keys")] {
                    let tables = c
                        .query(
                            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                            &[&s],
                        )
                        .unwrap();
                    for t in tables {
                        let t: String = t.get(0);
                        for row in c
                            .query(&format!("SELECT x::text FROM {s}.{t} x"), &[])
                            .unwrap()
                        {
                            raw.extend(row.get::<_, String>(0).into_bytes());
                        }
                    }
                }
            }
        }
        assert!(raw.len() > 1000, "nothing read");
        raw
    }

    /// A fresh TOTP code for `user` (each time step is accepted once).
    fn code(&self, user: &str) -> String {
        let secret = &self.totp[user];
        let t = now().unix_timestamp() as u64;
        let mut steps = self.steps.lock().unwrap();
        let last = steps.get(user).copied().unwrap_or(0);
        // The server accepts the previous, current and next step, each once.
        let mut step = (t / 30).saturating_sub(1);
        if step <= last {
            step = last + 1;
        }
        if step > t / 30 + 1 {
            // Both codes of this window are used: wait for the next one.
            std::thread::sleep(std::time::Duration::from_secs(30 - t % 30 + 1));
            step = now().unix_timestamp() as u64 / 30;
        }
        steps.insert(user.to_string(), step);
        asylon_server::auth::totp_code(secret, step * 30).unwrap()
    }

    fn sign_in_with(&self, user: &str, password: &str) -> (Resp, Client) {
        let mut c = Client::anonymous(self);
        let r = c.post(
            "/api/session",
            json!({"user": user, "password": password, "totp": self.code(user)}),
        );
        if r.status == 200 {
            let cookie = r.header("set-cookie").unwrap();
            c.cookie = Some(cookie.split(';').next().unwrap().to_string());
            c.csrf = r.body["csrf"].as_str().map(str::to_string);
        }
        (r, c)
    }

    fn sign_in(&self, user: &str) -> Client {
        let (r, c) = self.sign_in_with(user, PASSWORD);
        assert_eq!(r.status, 200, "{user} cannot sign in: {}", r.body);
        c
    }

    fn size(&self) -> u64 {
        let c = self.sign_in_cached("dp-auditor");
        let r = c.get("/api/ledger/checkpoint");
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["size"].as_u64().unwrap()
    }

    fn sign_in_cached(&self, user: &str) -> Client {
        static CACHE: OnceLock<Mutex<HashMap<(String, String), Client>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (self.base.clone(), user.to_string());
        if let Some(c) = cache.lock().unwrap().get(&key) {
            return c.clone();
        }
        let c = self.sign_in(user);
        cache.lock().unwrap().insert(key, c.clone());
        c
    }
}

// ---------------------------------------------------------------------------------------------
// The access matrix

struct Rule {
    endpoint: String,
    captive: String,
    org: String,
    role: String,
    allow: bool,
    used: bool,
}

fn rules() -> Vec<Rule> {
    let text = include_str!("../../../docs/http-access-matrix.csv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let [endpoint, captive, org, role, expected] = f.as_slice() else {
                panic!("bad matrix row {l:?}");
            };
            assert!(
                *expected == "allow" || *expected == "deny",
                "bad expectation in {l:?}"
            );
            Rule {
                endpoint: endpoint.to_string(),
                captive: captive.to_string(),
                org: org.to_string(),
                role: role.to_string(),
                allow: *expected == "allow",
                used: false,
            }
        })
        .collect()
}

fn expected(rules: &mut [Rule], endpoint: &str, captive: &str, org: &str, role: &str) -> bool {
    let m = |pat: &str, v: &str| pat == "*" || pat == v;
    let rule = rules
        .iter_mut()
        .find(|r| {
            m(&r.endpoint, endpoint) && m(&r.captive, captive) && m(&r.org, org) && m(&r.role, role)
        })
        .unwrap_or_else(|| panic!("no matrix row for {endpoint} {captive} {org} {role}"));
    rule.used = true;
    rule.allow
}

const READS: [&str; 19] = [
    "GET /api/persons/{case}",
    "GET /api/persons/{case}/particulars",
    "GET /api/persons/{case}#identity",
    "GET /api/persons/{case}#family",
    "GET /api/persons/{case}/status",
    "GET /api/persons/{case}/interviews",
    "GET /api/persons/{case}/interviews#notes",
    "GET /api/persons/{case}/access",
    "GET /api/persons/{case}/events",
    "GET /api/search#case",
    "GET /api/persons#case",
    "GET /api/deadlines",
    "GET /api/statistics",
    "GET /api/ledger/checkpoint",
    "GET /api/orgs/{org}/users",
    "GET /api/ledger/proof/{seq}",
    "GET /api/ledger/consistency",
    "GET /api/session",
    "GET /api/tokens",
];

/// The OpenAPI document, as JSON.
fn documented() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(asylon_server::openapi()).unwrap())
}

/// Fails unless the OpenAPI document names `status` among the answers of the operation that
/// `method path` reached: every answer of every test is one a client was told to expect. A
/// request the document has no operation for is left to the test of routing.
fn assert_documented(method: &str, path: &str, status: u16, body: &Value) {
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    let fits = |template: &str| {
        let t: Vec<&str> = template.split('/').collect();
        t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(t, s)| t == s || t.starts_with('{'))
    };
    let method = method.to_lowercase();
    // `/api/persons/import` before `/api/persons/{case}`: the template naming more of it.
    let literal = |template: &str| template.split('/').filter(|t| !t.starts_with('{')).count();
    let reached = documented()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(template, item)| item.get(&method).is_some() && fits(template))
        .max_by_key(|(template, _)| literal(template));
    if let Some((template, item)) = reached {
        assert!(
            item[&method]["responses"].get(status.to_string()).is_some(),
            "{} {template} answered {status}, which its OpenAPI entry does not name: {body}",
            method.to_uppercase()
        );
    }
}

/// Asks `endpoint` about `case` as `c`; answers whether it was allowed.
fn probe(s: &Server, c: &Client, org: &str, endpoint: &str, state: &str) -> bool {
    let case = &s.cases[state];
    let (path, part) = endpoint.split_once('#').unwrap_or((endpoint, ""));
    let (method, path) = path.split_once(' ').unwrap();
    let write = method != "GET";
    let prefix = ORGS.iter().find(|(o, _)| *o == org).unwrap().1;
    let url = path
        .replace("{case}", if write { &s.cases["write"] } else { case })
        .replace("{org}", org)
        .replace("{name}", &format!("{prefix}-analyst"))
        .replace("{seq}", "1");
    let person = name_only("Ri Chol");
    let r = match (endpoint, part) {
        (_, "case") if path == "/api/search" => c.get(&format!(
            "/api/search?name={}",
            s.names[state].replace(' ', "%20")
        )),
        (_, "case") => c.get("/api/persons?limit=1000"),
        (e, "record_interview") if e.starts_with("POST") => c.post(
            "/api/commands",
            json!({"command": "record_interview", "case": s.cases["write"], "on": "2025-02-02",
                "language": "ko", "private": false, "wish": "undecided", "fear_of_persecution": false}),
        ),
        (e, "record_acceptance") if e.starts_with("POST") => c.post(
            "/api/commands",
            json!({"command": "record_acceptance", "case": s.cases["write"], "state": "KR"}),
        ),
        ("POST /api/persons", _) => c.post(&url, person),
        ("POST /api/persons/import" | "POST /api/persons/import/check", _) => {
            c.post(&url, json!({"persons": [person]}))
        }
        // Empty on purpose: checked after the policy, so an allowed caller gets 422 and
        // nothing is erased or changed.
        ("POST /api/persons/{case}/erase", _) => c.post(&url, json!({"reason": ""})),
        ("POST /api/persons/{case}/amend", _) => {
            c.post(&url, json!({"reason": "", "particulars": person}))
        }
        ("PUT /api/orgs/{org}/users/{name}/roles", _) => c.put(&url, json!({"roles": []})),
        ("POST /api/persons/{case}/notifications", _) => c.post(&url, json!({"to": "agency"})),
        ("GET /api/ledger/consistency", _) => c.get(&format!("{url}?from=1")),
        _ => c.get(&url),
    };
    assert!(
        r.status < 500 && r.status != 401,
        "{endpoint} {state}: {} {}",
        r.status,
        r.body
    );
    let ok = (200..300).contains(&r.status) || (write && (r.status == 409 || r.status == 422));
    assert!(
        ok || r.status == 403,
        "{endpoint} about a {state} captive: unexpected {} {}",
        r.status,
        r.body
    );
    if !ok {
        return false;
    }
    match part {
        "identity" => r.body.get("identity").is_some(),
        "family" => r.body.get("family").is_some(),
        "notes" => r
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["notes"] == NOTES),
        "case" if path == "/api/search" => r
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["case_no"] == json!(case)),
        "case" => r.body["persons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["case_no"] == json!(case)),
        _ => true,
    }
}

fn every_role_of_every_organisation_gets_what_the_matrix_says(db: Db) {
    let s = shared(db);
    let mut rules = rules();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (org, prefix) in ORGS {
        for r in ROLES {
            let user = format!("{prefix}-{r}");
            let c = s.sign_in_cached(&user);
            for state in ["none", "referred", "consented"] {
                for endpoint in READS {
                    let want = expected(&mut rules, endpoint, state, org, r);
                    if probe(s, &c, org, endpoint, state) != want {
                        wrong.push(format!(
                            "{user} ({org}) {endpoint} about a {state} captive: expected {}",
                            if want { "allow" } else { "deny" }
                        ));
                    }
                    checked += 1;
                }
            }
            for endpoint in [
                "POST /api/commands#record_interview",
                "POST /api/commands#record_acceptance",
                "POST /api/persons",
                "POST /api/persons/import",
                "POST /api/persons/import/check",
                "POST /api/persons/{case}/amend",
                "POST /api/persons/{case}/erase",
                "POST /api/persons/{case}/notifications",
                "PUT /api/orgs/{org}/users/{name}/roles",
            ] {
                let want = expected(&mut rules, endpoint, "none", org, r);
                if probe(s, &c, org, endpoint, "none") != want {
                    wrong.push(format!(
                        "{user} ({org}) {endpoint}: expected {}",
                        if want { "allow" } else { "deny" }
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let unused: Vec<_> = rules
        .iter()
        .filter(|r| !r.used)
        .map(|r| format!("{},{},{},{}", r.endpoint, r.captive, r.org, r.role))
        .collect();
    assert!(
        unused.is_empty(),
        "matrix rows that match nothing: {unused:?}"
    );
    assert!(checked >= 1000, "only {checked} checks");
}

// ---------------------------------------------------------------------------------------------
// Sign-in, sessions, tokens

fn sign_in_refuses_wrong_passwords_and_codes_without_telling_which(db: Db) {
    let s = start(db, Config::default());
    let (r, _) = s.sign_in_with("dp-registrar", "not the password at all");
    assert_eq!(r.status, 401);
    let msg = r.body["error"].clone();
    let c = Client::anonymous(&s);
    let unknown = c.post(
        "/api/session",
        json!({"user": "nobody-here", "password": PASSWORD, "totp": "123456"}),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.body["error"], msg,
        "an unknown account looks the same"
    );
    let wrong_code = c.post(
        "/api/session",
        json!({"user": "dp-registrar", "password": PASSWORD, "totp": "000000"}),
    );
    assert_eq!(wrong_code.status, 401);
    assert_eq!(wrong_code.body["error"], msg);
    let missing = c.post(
        "/api/session",
        json!({"user": "dp-registrar", "password": PASSWORD}),
    );
    assert!(
        missing.status == 422 || missing.status == 400,
        "{}",
        missing.status
    );
    assert!(missing.body["error"].as_str().unwrap().contains("totp"));
    assert!(missing.header("set-cookie").is_none());

    // The right code works once; replaying it fails.
    let code = s.code("dp-registrar");
    let ok = c.post(
        "/api/session",
        json!({"user": "dp-registrar", "password": PASSWORD, "totp": code}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = ok.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Secure"), "not over TLS here");
    let replay = c.post(
        "/api/session",
        json!({"user": "dp-registrar", "password": PASSWORD, "totp": code}),
    );
    assert_eq!(replay.status, 401, "a code is accepted once");
    assert_eq!(
        c.get("/api/persons").status,
        401,
        "no session without cookie"
    );
}

fn sign_in_is_throttled_per_account_and_per_address_in_the_database(db: Db) {
    let s = start(
        db,
        Config {
            account_free_failures: 3,
            address_free_failures: 6,
            ..Config::default()
        },
    );
    let c = Client::anonymous(&s);
    for _ in 0..3 {
        let r = c.post(
            "/api/session",
            json!({"user": "cta-legal", "password": "wrong password!!", "totp": "000000"}),
        );
        assert_eq!(r.status, 401);
    }
    let (r, _) = s.sign_in_with("cta-legal", PASSWORD);
    assert_eq!(
        r.status, 429,
        "locked even with the right password: {}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    // An unknown account is locked the same way, so a 429 does not reveal existence.
    for _ in 0..3 {
        c.post(
            "/api/session",
            json!({"user": "ghost", "password": "whatever it is", "totp": "1"}),
        );
    }
    let ghost = c.post(
        "/api/session",
        json!({"user": "ghost", "password": "whatever it is", "totp": "1"}),
    );
    assert_eq!(ghost.status, 429);
    // The address has now failed 6 times: everyone from it waits, whatever the account.
    let (r, _) = s.sign_in_with("kr-legal", PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    // The back-off is kept in the database.
    let n = s.count("SELECT count(*) FROM login_throttle WHERE locked_until > 0");
    assert!(n >= 2, "{n}");
}

/// A server on an empty registry whose password work is heavy: every sign-in below is of an
/// unknown account, checked against the decoy hash, which is made at the server's cost (the
/// harness's users are made light), so that checks take long enough to be seen overlapping.
fn start_heavy(db: Db, config: Config) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("registry");
    let actor = Actor {
        user: "setup".into(),
        org: "deployment".into(),
    };
    let key = KeySource::File(default_key_file(&dir));
    let database = db.database();
    let reg = Registry::init_in(&dir, &database, &key, &actor, now()).unwrap();
    let config = Config {
        password_cost: HEAVY,
        ..config
    };
    serve_registry(reg, database, tmp, config)
}

/// Signs in as `user` (who does not exist) on `base` and tells its status and when it came.
fn ghost_sign_in(base: &str, user: &str) -> (u16, std::time::Instant) {
    let c = Client {
        base: base.to_string(),
        ..Default::default()
    };
    let r = c.post(
        "/api/session",
        json!({"user": user, "password": "not the password at all", "totp": "123456"}),
    );
    (r.status, std::time::Instant::now())
}

fn sign_ins_being_checked_leave_the_registry_to_other_requests(db: Db) {
    let s = start_heavy(db, Config::default());
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let base = s.base.clone();
            std::thread::spawn(move || ghost_sign_in(&base, &format!("ghost-{i}")))
        })
        .collect();
    // Each attempt is counted as failed before its password is checked: once all six are,
    // all six are being checked or waiting their turn.
    while s.count("SELECT count(*) FROM login_throttle WHERE key LIKE 'user:ghost-%'") < 6 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // A request that needs the registry and no password: an unknown session is looked up.
    let probe = Client {
        base: s.base.clone(),
        cookie: Some(format!("asylon_session={}", "ab".repeat(32))),
        ..Default::default()
    };
    assert_eq!(probe.get("/api/persons").status, 401);
    let answered = std::time::Instant::now();
    let done: Vec<_> = attempts.into_iter().map(|a| a.join().unwrap()).collect();
    assert!(done.iter().all(|(status, _)| *status == 401), "{done:?}");
    let before = done.iter().filter(|(_, at)| *at <= answered).count();
    assert_eq!(
        before, 0,
        "the registry waited for a password check: {before} of 6 sign-ins ended before it answered"
    );
}

fn sign_ins_checked_at_once_get_no_further_than_one_after_another(db: Db) {
    let heavy = start_heavy(
        db,
        Config {
            account_free_failures: 3,
            ..Config::default()
        },
    );
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let base = heavy.base.clone();
            std::thread::spawn(move || ghost_sign_in(&base, "ghost").0)
        })
        .collect();
    let mut statuses: Vec<u16> = attempts.into_iter().map(|a| a.join().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429, 429, 429, 429, 429, 429],
        "three free failures, the rest turned away"
    );
    // Sign-ins that succeed take back what they were counted in advance: from an address one
    // failure short of its allowance, each counted in advance reaches it (and locks it) while
    // it is checked, and each still leaves the address as it found it.
    let s = start(
        db,
        Config {
            address_free_failures: 2,
            ..Config::default()
        },
    );
    assert_eq!(ghost_sign_in(&s.base, "ghost").0, 401);
    for user in ["dp-registrar", "dp-medical", "cta-legal", "kr-liaison"] {
        let (r, _) = s.sign_in_with(user, PASSWORD);
        assert_eq!(r.status, 200, "{user}: {}", r.body);
    }
    assert_eq!(
        s.count("SELECT count(*) FROM login_throttle WHERE locked_until > 0"),
        0
    );
    assert_eq!(
        s.count("SELECT failures FROM login_throttle WHERE key = 'addr:127.0.0.1'"),
        1
    );
}

fn sessions_end_when_idle_and_on_sign_out(db: Db) {
    let s = start(
        db,
        Config {
            idle_secs: 1,
            ..Config::default()
        },
    );
    let c = s.sign_in("dp-registrar");
    assert_eq!(c.get("/api/session").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = c.get("/api/session");
    assert_eq!(r.status, 401);
    assert!(r.body["error"].as_str().unwrap().contains("ended"));

    // However busy, a session ends `absolute_secs` after sign-in.
    let s = start(
        db,
        Config {
            absolute_secs: 2,
            ..Config::default()
        },
    );
    let c = s.sign_in("dp-registrar");
    for _ in 0..5 {
        assert_eq!(c.get("/api/session").status, 200);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Times are whole seconds: 3.3 s after sign-in is past the limit of 2 whatever the phase.
    std::thread::sleep(std::time::Duration::from_millis(1800));
    assert_eq!(c.get("/api/session").status, 401);

    let s = shared(db);
    let c = s.sign_in("cta-auditor");
    assert_eq!(c.delete("/api/session").status, 204);
    assert_eq!(c.get("/api/session").status, 401);
}

fn behind_tls_cookies_are_secure_and_hsts_is_sent(db: Db) {
    let s = start(
        db,
        Config {
            secure: true,
            ..Config::default()
        },
    );
    let (r, c) = s.sign_in_with("dp-registrar", PASSWORD);
    assert_eq!(r.status, 200);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let r = c.get("/api/session");
    assert!(
        r.header("strict-transport-security")
            .unwrap()
            .contains("max-age=")
    );
}

fn cookie_writes_need_the_csrf_token(db: Db) {
    let s = &start(db, Config::default());
    let mut c = s.sign_in("dp-legal");
    let body = name_only("Kang Su Il");
    let csrf = c.csrf.take();
    let before = s.size();
    let r = c.post("/api/persons", body.clone());
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("CSRF"));
    c.csrf = Some("0".repeat(32));
    assert_eq!(c.post("/api/persons", body.clone()).status, 403);
    assert_eq!(s.size(), before, "nothing written");
    c.csrf = csrf;
    let r = c.post("/api/persons", body);
    assert_eq!(r.status, 201, "{}", r.body);
}

fn api_tokens_are_scoped_and_revocable(db: Db) {
    let s = shared(db);
    let c = s.sign_in("dp-registrar");
    let mk = |scope: &str| {
        let r = c.post(
            "/api/tokens",
            json!({"label": "nightly sync", "scope": scope, "days": 30}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        (
            r.body["id"].as_str().unwrap().to_string(),
            r.body["token"].as_str().unwrap().to_string(),
        )
    };
    let (id, read_token) = mk("read");
    let read = Client {
        base: s.base.clone(),
        bearer: Some(read_token),
        ..Default::default()
    };
    let write = Client {
        base: s.base.clone(),
        bearer: Some(mk("write").1),
        ..Default::default()
    };
    let case = &s.cases["none"];
    let status = read.get(&format!("/api/persons/{case}/status"));
    assert_eq!(status.status, 200);
    // A case number as a person types it is the same case.
    let n: u64 = case.trim_start_matches("AS-").parse().unwrap();
    let typed = read.get(&format!("/api/persons/as-{n}/status"));
    assert_eq!((typed.status, &typed.body), (200, &status.body));
    let body = name_only("Kang Il");
    let r = read.post("/api/persons", body.clone());
    assert_eq!(r.status, 403, "a read token writes nothing: {}", r.body);
    assert_eq!(
        write.post("/api/persons", body).status,
        201,
        "no CSRF for tokens"
    );
    // So is one in a command's body: the event is recorded against the case as written.
    let events = |c: &Client| c.get(&format!("/api/persons/{case}/events")).body;
    let before = events(&read).as_array().unwrap().len();
    let r = write.post(
        "/api/commands",
        json!({"command": "issue_capture_card", "case": format!("as-{n}")}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let after = events(&read);
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap()["person"], json!(case));
    // Tokens cannot mint tokens.
    let r = write.post(
        "/api/tokens",
        json!({"label": "x", "scope": "write", "days": 1}),
    );
    assert_eq!(r.status, 403);
    // Revocation takes effect on the next request.
    let list = c.get("/api/tokens");
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert!(
        list.body.to_string().find("asy_").is_none(),
        "no secrets listed"
    );
    assert_eq!(c.delete(&format!("/api/tokens/{id}")).status, 204);
    let r = read.get(&format!("/api/persons/{case}/status"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(c.delete(&format!("/api/tokens/{id}")).status, 404);
    let forged = Client {
        base: s.base.clone(),
        bearer: Some("asy_0000.1111".into()),
        ..Default::default()
    };
    assert_eq!(forged.get("/api/persons").status, 401);
    // Bad token requests are refused with the field named.
    let r = c.post(
        "/api/tokens",
        json!({"label": "x", "scope": "admin", "days": 1}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.body["fields"][0]["field"], "scope");
    let r = c.post(
        "/api/tokens",
        json!({"label": "nightly\u{202E}cnys", "scope": "read", "days": 1}),
    );
    assert_eq!(
        (r.status, &r.body["fields"][0]["field"]),
        (422, &json!("label"))
    );
}

fn administrators_manage_their_own_users_and_a_disabled_user_is_out_at_once(db: Db) {
    let s = start(db, Config::default());
    let admin = s.sign_in("kr-admin");
    let r = admin.post(
        "/api/orgs/receiving:KR/users",
        json!({"name": "kr-new-liaison", "roles": ["liaison"], "password": "first password 123"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["totp_secret"].as_str().unwrap().to_string();
    assert!(
        r.body["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let r = admin.post(
        "/api/orgs/detaining/users",
        json!({"name": "intruder", "roles": ["registrar"], "password": "first password 123"}),
    );
    assert_eq!(r.status, 403, "not another organisation's users");
    let r = admin.post(
        "/api/orgs/receiving:KR/users",
        json!({"name": "Bad Name!", "roles": ["liaison"], "password": "short"}),
    );
    assert_eq!(r.status, 422);
    let r = admin.post(
        "/api/orgs/receiving:KR/users",
        json!({"name": "kr-twice", "roles": ["liaison", "auditor", "liaison"], "password": "first password 123"}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["fields"][0]["reason"],
        "liaison is given twice: give each role once"
    );
    // An administrator keeps his own administrator role: nobody would be left to manage the
    // organisation's users. His session goes on.
    let r = admin.put(
        "/api/orgs/receiving:KR/users/kr-admin/roles",
        json!({"roles": ["liaison"]}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("your own administrator role")
    );
    assert_eq!(admin.get("/api/session").status, 200);

    let mut s2 = s;
    s2.totp.insert("kr-new-liaison".into(), secret);
    let (r, newbie) = s2.sign_in_with("kr-new-liaison", "first password 123");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["org_key_unlocked"], true,
        "the org key was wrapped for him"
    );
    assert_eq!(newbie.get("/api/session").status, 200);
    let r = admin.put(
        "/api/orgs/receiving:KR/users/kr-new-liaison/disabled",
        json!({"disabled": true}),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(newbie.get("/api/session").status, 401, "out at once");
    let users = admin.get("/api/orgs/receiving:KR/users");
    let me = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "kr-new-liaison")
        .unwrap();
    assert_eq!(me["disabled"], true);
}

// ---------------------------------------------------------------------------------------------
// Organisation sealing

fn interview_notes_open_only_inside_the_organisation_that_took_them(db: Db) {
    let s = start(db, Config::default());
    let case = s.cases["none"].clone();
    let path = format!("/api/persons/{case}/interviews");
    let notes_of = |c: &Client| {
        let r = c.get(&path);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_array().unwrap()[0]["notes"].clone()
    };
    assert_eq!(notes_of(&s.sign_in("cta-interviewer")), json!(NOTES));
    assert_eq!(notes_of(&s.sign_in("dp-interviewer")), Value::Null);
    // A machine token of the agency's own interviewer cannot open them: the key needs a password.
    let c = s.sign_in("cta-legal");
    let t = c.post(
        "/api/tokens",
        json!({"label": "t", "scope": "read", "days": 1}),
    );
    let tok = Client {
        base: s.base.clone(),
        bearer: t.body["token"].as_str().map(str::to_string),
        ..Default::default()
    };
    let r = tok.get(&path);
    assert_eq!(r.body[0]["notes"], Value::Null);
    assert!(
        r.body[0]["notes_withheld"]
            .as_str()
            .unwrap()
            .contains("sealed to neutral")
    );

    // Holding the database and the key file: the raw files do not hold the notes, the registry
    // opened with the key file cannot read them, and another organisation's key (its
    // administrator's password) does not open them.
    let raw = s.raw();
    for needle in [NOTES.to_string(), hex::encode(NOTES)] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle.as_bytes()));
    }
    let mut reg = s.open_registry();
    let dp_admin = reg.user("dp-admin").unwrap().unwrap();
    let member =
        asylon_vault::MemberKey::derive(PASSWORD.as_bytes(), &dp_admin.member_salt, LIGHT).unwrap();
    let dp_key =
        OrgSecret::unwrap_from(&member, "detaining", "dp-admin", &dp_admin.org_key_wrapped)
            .unwrap();
    for p in [
        who("dp-admin", "detaining", "interviewer"),
        who("x", "neutral", "interviewer"),
    ] {
        let views = reg.interviews(&p, now(), &case, Some(&dp_key)).unwrap();
        assert!(views.iter().all(|v| v.notes.is_none()), "{views:?}");
    }
    let views = reg
        .interviews(&who("x", "neutral", "interviewer"), now(), &case, None)
        .unwrap();
    assert!(views.iter().all(|v| v.notes.is_none()));
    assert_eq!(
        views[0].wish,
        Some(asylon_core::law::Wish::ThirdState("KR".into())),
        "a member reads the wish, but without the key not the notes"
    );
}

fn a_session_opens_its_organisations_notes_on_any_server_process(db: Db) {
    let s = &start(db, Config::default());
    let mut c = s.sign_in("cta-interviewer");
    let path = format!("/api/persons/{}/interviews", s.cases["none"]);
    c.base = second_server(s);
    let r = c.get(&path);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body[0]["notes"],
        json!(NOTES),
        "the other process opens them too"
    );
    // The session row alone (what the database holds) does not open the key: only the cookie.
    assert!(!s.raw().windows(NOTES.len()).any(|w| w == NOTES.as_bytes()));
    let forged = Client {
        cookie: Some(format!("asylon_session={}", "00".repeat(32))),
        ..c.clone()
    };
    assert_eq!(forged.get(&path).status, 401);
}

/// Two changes of one account's password at once, from two of his sessions, on a server whose
/// password work is heavy so that both are being worked out when either is stored: one is
/// made and the other refused with nothing of it kept, and the password made still opens his
/// organisation's key, derived at the cost it was made with (not the first server's).
fn a_password_changed_twice_at_once_is_changed_once(db: Db) {
    let s = &start(db, Config::default());
    let heavy = heavy_server_on(s);
    // Both signed in before either change is sent, so that both are sent at once.
    let sessions: Vec<(Client, &str)> = ["the first new password", "the second new password"]
        .into_iter()
        .map(|new| {
            let mut c = s.sign_in("cta-interviewer");
            c.base = heavy.clone();
            (c, new)
        })
        .collect();
    let changes: Vec<_> = sessions
        .into_iter()
        .map(|(c, new)| {
            std::thread::spawn(move || {
                let r = c.post(
                    "/api/session/password",
                    json!({"old_password": PASSWORD, "new_password": new}),
                );
                (r, new)
            })
        })
        .collect();
    let mut done: Vec<(Resp, &str)> = changes.into_iter().map(|t| t.join().unwrap()).collect();
    done.sort_by_key(|(r, _)| r.status);
    let [(made, new), (refused, lost)] = &done[..] else {
        unreachable!()
    };
    assert_eq!(
        (made.status, refused.status),
        (204, 409),
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("changed by another request"),
        "{}",
        refused.body
    );
    let user = s.open_registry().user("cta-interviewer").unwrap().unwrap();
    assert!(asylon_vault::verify_password(
        new.as_bytes(),
        &user.password
    ));
    assert!(!asylon_vault::verify_password(
        lost.as_bytes(),
        &user.password
    ));
    let (r, c) = s.sign_in_with("cta-interviewer", new);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["org_key_unlocked"], true, "{}", r.body);
    let notes = c.get(&format!("/api/persons/{}/interviews", s.cases["none"]));
    assert_eq!(notes.body[0]["notes"], json!(NOTES), "{}", notes.body);
}

fn a_password_change_rewraps_the_organisation_key_and_ends_other_sessions(db: Db) {
    let s = start(db, Config::default());
    let first = s.sign_in("cta-interviewer");
    let second = s.sign_in("cta-interviewer");
    let r = first.post(
        "/api/session/password",
        json!({"old_password": "wrong old password", "new_password": "a brand new password"}),
    );
    assert_eq!(r.status, 403);
    let r = first.post(
        "/api/session/password",
        json!({"old_password": PASSWORD, "new_password": "a brand new password"}),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(second.get("/api/session").status, 401, "other sessions end");
    assert_eq!(first.get("/api/session").status, 200, "this one stays");
    let old = Client::anonymous(&s).post(
        "/api/session",
        json!({"user": "cta-interviewer", "password": PASSWORD, "totp": "000000"}),
    );
    assert_eq!(old.status, 401);
    let (r, c) = s.sign_in_with("cta-interviewer", "a brand new password");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["org_key_unlocked"], true);
    let notes = c.get(&format!("/api/persons/{}/interviews", s.cases["none"]));
    assert_eq!(notes.body[0]["notes"], json!(NOTES));
    // The new password must be new, and named as the field it is.
    let change = |old: &str, new: &str| {
        c.post(
            "/api/session/password",
            json!({"old_password": old, "new_password": new}),
        )
    };
    let r = change("a brand new password", "a brand new password");
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["fields"][0]["field"], "new_password");
    let r = change("a brand new password", "short");
    assert_eq!(r.body["fields"][0]["field"], "new_password", "{}", r.body);
    // A session left open is no way to try passwords one after another: wrong old passwords
    // count as failed sign-ins of the account (five free), then even the right one waits, and
    // so does signing in.
    for _ in 0..5 {
        assert_eq!(
            change("a guess at it 123", "another new password").status,
            403
        );
    }
    let r = change("a brand new password", "another new password");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // (The lock is looked at before any code: none is spent on it.)
    let r = Client::anonymous(&s).post(
        "/api/session",
        json!({"user": "cta-interviewer", "password": "a brand new password", "totp": "000000"}),
    );
    assert_eq!(r.status, 429, "{}", r.body);
}

// ---------------------------------------------------------------------------------------------
// Records, access history, bad input

fn every_read_of_a_sealed_class_is_in_the_access_history(db: Db) {
    let s = shared(db);
    let case = &s.cases["referred"];
    let c = s.sign_in_cached("dp-legal");
    let before = c
        .get(&format!("/api/persons/{case}/access"))
        .body
        .as_array()
        .unwrap()
        .len();
    let r = s
        .sign_in_cached("dp-registrar")
        .get(&format!("/api/persons/{case}"));
    assert_eq!(r.status, 200);
    assert!(r.body["identity"]["names"].is_array());
    let after = c.get(&format!("/api/persons/{case}/access"));
    let entries = after.body.as_array().unwrap();
    assert!(entries.len() > before);
    let last = entries
        .iter()
        .rev()
        .find(|e| e["user"] == "dp-registrar")
        .unwrap();
    assert_eq!(last["classes"], json!(["identity", "family"]));
    assert_eq!(last["org"], "detaining");
}

/// A registry whose disk is full: a write is answered 507 and writes nothing, and the same
/// request is taken once space is freed. On PostgreSQL the disk is the one holding the
/// database's tablespace.
fn a_full_disk_is_answered_507_and_nothing_is_written(db: Db) {
    let tmp = tempfile::tempdir().unwrap();
    let (s, fill): (Server, Box<dyn Fn() -> PathBuf>) = match db {
        Db::Sqlite => {
            let Some(disk) = SmallDisk::mount(&tmp.path().join("disk"), "48M") else {
                return;
            };
            let in_disk = tempfile::tempdir_in(tmp.path().join("disk")).unwrap();
            let s = start_in(Database::Sqlite, Config::default(), in_disk);
            (s, Box::new(move || disk.fill()))
        }
        Db::Postgres => {
            let Some(pg) = PgOnDisk::create("48M") else {
                return;
            };
            let database = Database::Postgres {
                url: pg.url(),
                schema: "full".into(),
            };
            let s = start_in(database, Config::default(), tempfile::tempdir().unwrap());
            (s, Box::new(move || pg.fill().unwrap()))
        }
    };
    let c = s.sign_in("dp-registrar");
    let (size, persons) = (s.size(), s.count("SELECT count(*) FROM persons"));
    // More than any slack the database keeps: the batch limit, all or none.
    let batch: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"external_id": format!("FULL-{i}"), "names": ["Ri Chol Su", "리철수"],
                "power": "KP", "captured_on": "2025-03-01",
                "not_stated": ["date_of_birth", "rank", "service_number"]})
        })
        .collect();
    let batch = json!({ "persons": batch });
    let filler = fill();
    let r = c.post("/api/persons/import", batch.clone());
    assert_eq!(r.status, 507, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("full"),
        "{}",
        r.body
    );
    std::fs::remove_file(filler).unwrap();
    assert_eq!(s.count("SELECT count(*) FROM persons"), persons);
    assert_eq!(s.size(), size, "no event was appended");
    let r = c.post("/api/persons/import", batch);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.count("SELECT count(*) FROM persons"), persons + 10_000);
    s.open_registry().verify(None).unwrap();
}

fn bad_input_gets_a_clear_error_and_changes_nothing(db: Db) {
    // A server of its own: the event count must not move while it runs.
    let s = &start(db, Config::default());
    let c = s.sign_in_cached("dp-registrar");
    let before = s.size();
    let malformed = c.send("POST", "/api/persons", Some(b"{\"names\": [\"Ri"));
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(malformed.body["error"].is_string());
    // An empty body, and an array that serde would read into the object's fields by their
    // order, are refused as what they are.
    for (body, want) in [
        (&b" \r\n"[..], "the request body is empty"),
        (br#"["AS-000001", "KP"]"#, "must be one JSON object"),
        (
            br#"[["Ri Chol"], null, "private"]"#,
            "must be one JSON object",
        ),
    ] {
        for path in ["/api/persons", "/api/commands"] {
            let r = c.send("POST", path, Some(body));
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            assert!(
                r.body["error"].as_str().unwrap().contains(want),
                "{}",
                r.body
            );
        }
    }
    let r = c.post(
        "/api/persons",
        json!({"names": [], "power": "KP", "captured_on": "2999-01-01"}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let fields: Vec<&str> = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"names") && fields.contains(&"captured_on"),
        "{fields:?}"
    );
    let r = c.post("/api/persons", json!({"nmes": ["Ri Chol"]}));
    assert!(r.status == 422 || r.status == 400);
    assert!(r.body["error"].as_str().unwrap().contains("nmes"));
    let batch = c.post(
        "/api/persons/import",
        json!({"persons": [
            {"names": ["Ri Chol"], "power": "KP", "captured_on": "2025-03-01",
             "not_stated": ["date_of_birth", "rank", "service_number"]},
            {"names": ["Kim"], "power": "KP", "captured_on": "2025-03-01", "date_of_birth": "2999"}
        ]}),
    );
    assert_eq!(batch.status, 422, "{}", batch.body);
    assert!(
        batch.body.to_string().contains("persons[1]"),
        "{}",
        batch.body
    );
    // Checked first, a batch gets the same answer, and a valid one its count; nothing is
    // written either way.
    let bad_batch = json!({"persons": [
        {"names": ["Kim"], "power": "KP", "captured_on": "2025-03-01", "date_of_birth": "2999"}
    ]});
    let r = c.post("/api/persons/import/check", bad_batch);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("date_of_birth"), "{}", r.body);
    let person = json!({"names": ["Ri Chol"], "power": "KP", "captured_on": "2025-03-01",
        "external_id": "CHK-1", "not_stated": ["date_of_birth", "rank", "service_number"]});
    let r = c.post(
        "/api/persons/import/check",
        json!({"persons": [person, person]}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("appears twice"), "{}", r.body);
    let r = c.post("/api/persons/import/check", json!({"persons": [person]}));
    assert_eq!((r.status, &r.body["valid"]), (200, &json!(1)), "{}", r.body);
    let r = c.post("/api/persons/import/check", json!({"persons": []}));
    assert_eq!(r.status, 422, "{}", r.body);
    let cmd = c.post(
        "/api/commands",
        json!({"command": "move_custody", "case": s.cases["write"]}),
    );
    assert!(cmd.status == 422 || cmd.status == 400, "{}", cmd.body);
    let unknown = c.post("/api/commands", json!({"command": "launch_rocket"}));
    assert!(unknown.status == 422 || unknown.status == 400);
    let nobody = c.get("/api/persons/AS-999999/status");
    assert_eq!(nobody.status, 404);
    let weird = c.get("/api/persons/..%2f..%2fetc/status");
    assert_eq!(weird.status, 404);
    let r = c.get("/api/search?name=");
    assert_eq!(r.status, 422);
    let r = c.get("/api/search?name=Kim&limit=0");
    assert_eq!(r.status, 422);
    assert_eq!(r.body["fields"][0]["field"], "limit");
    // A name with a zero-width space in it would look like one and match nothing: said so.
    let r = c.get("/api/search?name=Kim%E2%80%8BChol");
    assert_eq!(r.status, 422);
    assert!(
        r.body["fields"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("contains U+200B"),
        "{}",
        r.body
    );
    let r = c.get("/api/persons?limit=0");
    assert_eq!(r.status, 422);
    assert_eq!(s.size(), before, "nothing was written");
    // A guard's refusal is a 409 naming the guard, and records nothing either.
    let r = c.post(
        "/api/commands",
        json!({"command": "propose_transfer", "case": s.cases["none"], "to": "KR"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["guard"], "G2");
    assert_eq!(s.size(), before);
    // A body saved by a Windows editor starts with a byte-order mark: it is read all the same.
    let person = name_only("Ri Chol");
    let with_bom = [&b"\xef\xbb\xbf"[..], person.to_string().as_bytes()].concat();
    let r = c.send("POST", "/api/persons", Some(&with_bom));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["cases"][0].is_string(), "{}", r.body);
    // An external id already registered: the check answers the import's 409, naming him.
    let mut known = person.clone();
    known["external_id"] = json!("CHK-2");
    let r = c.post("/api/persons", known.clone());
    assert_eq!(r.status, 201, "{}", r.body);
    let case = r.body["cases"][0].as_str().unwrap().to_string();
    let size = s.size();
    let r = c.post(
        "/api/persons/import/check",
        json!({"persons": [person, known]}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.to_string().contains("CHK-2") && r.body.to_string().contains(&case),
        "{}",
        r.body
    );
    assert_eq!(s.size(), size);
    // A service number a captive of the same power holds, written another way: refused with
    // 409 naming him, registering nothing, by the check as by each way of registering; a
    // sharing that is no yes or no is a bad request. Said to be two men, he is registered.
    let holder = &s.cases["none"];
    // Each refusal naming him records that the caller was told who holds the number, as a
    // name search is recorded; nothing else.
    let matched =
        || s.count("SELECT count(*) FROM events WHERE kind = 'registry.service_number_matched'");
    let mut told = matched();
    let again = json!({"names": ["Ri Chol"], "power": "KP", "captured_on": "2025-03-01",
        "date_of_birth": "2001", "rank": "private", "service_number": "sn 77123"});
    for (path, body) in [
        ("/api/persons", again.clone()),
        ("/api/persons/import", json!({"persons": [again]})),
        ("/api/persons/import/check", json!({"persons": [again]})),
        ("/api/persons?shared_service_number=false", again.clone()),
    ] {
        let r = c.post(path, body);
        assert_eq!(r.status, 409, "{path}: {}", r.body);
        let error = r.body["error"].as_str().unwrap();
        assert!(
            error.contains(holder.as_str()) && error.contains("shared_service_number=true"),
            "{path}: {error}"
        );
        told += 1;
        assert_eq!(matched(), told, "{path}");
    }
    let r = c.post("/api/persons?shared_service_number=maybe", again.clone());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(s.size(), size + 4);
    let size = s.size();
    let r = c.post(
        "/api/persons/import/check?shared_service_number=true",
        json!({"persons": [again]}),
    );
    assert_eq!((r.status, &r.body["valid"]), (200, &json!(1)), "{}", r.body);
    assert_eq!(
        s.size(),
        size,
        "a check that refuses nothing records nothing"
    );
    let r = c.post("/api/persons?shared_service_number=true", again);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_ne!(r.body["cases"][0].as_str(), Some(holder.as_str()));
    // A correction giving another captive his number: the same refusal, the same way past it.
    let write = &s.cases["write"];
    let mut particulars = c.get(&format!("/api/persons/{write}/particulars")).body;
    particulars["service_number"] = json!("SN-77123");
    let url = format!("/api/persons/{write}/amend");
    let body = json!({"reason": "his papers", "particulars": particulars});
    let size = s.size();
    let r = c.post(&url, body.clone());
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.to_string().contains(holder.as_str()), "{}", r.body);
    assert_eq!((s.size(), matched()), (size + 1, told + 1));
    let r = c.post(&format!("{url}?shared_service_number=true"), body);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Nothing is refused for a captive's age; whoever registers one under 18 at capture, or maybe
/// (his date of birth known only to the year), is told so with the law, and his record gives
/// his age at capture to those who may read his identity.
/// A write while another process holds the registry for writing waits for it; on SQLite, once
/// it has waited the busy timeout (10 s), it is answered 503 with `Retry-After`, having written
/// nothing, and goes through when sent again. (PostgreSQL waits as long as the other writer
/// holds it.)
fn a_write_waits_for_another_writer_and_is_answered_503_if_it_waits_too_long(db: Db) {
    let s = &start(db, Config::default());
    let registrar = s.sign_in("dp-registrar");
    let body = name_only("Kang Su Il");
    let persons = "SELECT count(*) FROM persons";
    let before = s.count(persons);
    let writer = s.other_writer();
    let waiting = {
        let (registrar, body) = (registrar.clone(), body.clone());
        std::thread::spawn(move || registrar.post("/api/persons", body))
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        !waiting.is_finished(),
        "it did not wait for the other writer"
    );
    match db {
        Db::Sqlite => {
            let r = waiting.join().unwrap();
            assert_eq!(r.status, 503, "{}", r.body);
            assert_eq!(r.header("retry-after"), Some("5"));
            let error = r.body["error"].as_str().unwrap();
            assert!(error.starts_with("the registry is busy"), "{error}");
            assert!(error.contains("this write was not made"), "{error}");
            drop(writer);
            assert_eq!(s.count(persons), before, "nothing written");
            let r = registrar.post("/api/persons", body);
            assert_eq!(r.status, 201, "{}", r.body);
        }
        Db::Postgres => {
            drop(writer);
            let r = waiting.join().unwrap();
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
    assert_eq!(s.count(persons), before + 1);
}

fn a_child_at_capture_is_registered_and_the_answer_says_so(db: Db) {
    let s = &start(db, Config::default());
    let c = s.sign_in("dp-registrar");
    let person = |ext: &str, born: &str| {
        json!({"external_id": ext, "names": ["Ri Chol"], "date_of_birth": born,
            "rank": "private", "power": "KP", "captured_on": "2025-03-01",
            "not_stated": ["service_number"]})
    };
    let batch = json!({"persons": [person("CH-1", "1999-05-01"), person("CH-2", "2011-03-02"),
        person("CH-3", "2007")]});
    // Checked first: the same children, by their places in the batch.
    let r = c.post("/api/persons/import/check", batch.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    let checked = r.body["children"].as_array().unwrap();
    assert_eq!(checked.len(), 2, "{}", r.body);
    assert_eq!(
        (&checked[0]["person"], &checked[1]["person"]),
        (&json!(1), &json!(2))
    );
    assert!(checked[0].get("case").is_none(), "{}", r.body);
    let r = c.post("/api/persons/import", batch);
    assert_eq!(r.status, 201, "{}", r.body);
    let cases = &r.body["cases"];
    let children = r.body["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{}", r.body);
    assert_eq!(children[0]["age_at_capture"], checked[0]["age_at_capture"]);
    // The second, 13; the third, born in 2007: 17 or 18. Only one under 15 was recruited
    // against AP I Art 77(2).
    for (child, at, (least, most), told, under_15) in [
        (&children[0], 1, (13, 13), "under 15", true),
        (&children[1], 2, (17, 18), "maybe under 18", false),
    ] {
        assert_eq!(child["case"], cases[at]);
        assert_eq!(
            child["age_at_capture"],
            json!({"least": least, "most": most})
        );
        let note = child["note"].as_str().unwrap();
        assert!(note.starts_with(told), "{note}");
        assert_eq!(note.contains("77(2)"), under_15, "{note}");
    }
    // An adult: nothing said.
    let r = c.post("/api/persons", person("CH-4", "1990-01-01"));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("children").is_none(), "{}", r.body);
    let shown = c.get(&format!("/api/persons/{}", cases[1].as_str().unwrap()));
    assert_eq!(
        shown.body["age_at_capture"],
        json!({"least": 13, "most": 13})
    );
    // A correction is told the same way: to a child's date of birth, and back.
    let adult = cases[0].as_str().unwrap();
    let born_on = |date: &str, reason: &str| {
        let mut particulars = c.get(&format!("/api/persons/{adult}/particulars")).body;
        particulars["date_of_birth"] = json!(date);
        let r = c.post(
            &format!("/api/persons/{adult}/amend"),
            json!({"reason": reason, "particulars": particulars}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r
    };
    let r = born_on("2009-06-01", "his papers");
    assert_eq!(
        r.body["child"]["age_at_capture"],
        json!({"least": 15, "most": 15})
    );
    assert!(
        r.body["child"]["note"]
            .as_str()
            .unwrap()
            .starts_with("under 18: a child")
    );
    let r = born_on("1990-01-01", "his papers, read again");
    assert!(r.body.get("child").is_none(), "{}", r.body);
}

fn a_kept_checkpoint_is_proved_extended_and_a_withdrawn_consent_bites_at_once(db: Db) {
    let s = &start(db, Config::default());
    let kr = s.sign_in("kr-liaison");
    let case = &s.cases["consented"];
    let old = kr.get("/api/ledger/checkpoint").body;
    // The captive withdraws his consent: the receiving state's next request no longer sees him,
    // nor his age at capture, which is read from his identity.
    let before = kr.get(&format!("/api/persons/{case}")).body;
    assert!(before.get("identity").is_some());
    assert_eq!(before["age_at_capture"], json!({"least": 23, "most": 23}));
    let cta = s.sign_in("cta-interviewer");
    let r = cta.post(
        "/api/commands",
        json!({"command": "withdraw_consent", "case": case, "recipient": "receiving:KR"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = kr.get(&format!("/api/persons/{case}"));
    assert_eq!(r.status, 200);
    assert!(r.body.get("identity").is_none(), "{}", r.body);
    assert!(r.body.get("age_at_capture").is_none(), "{}", r.body);
    assert!(
        r.body["withheld"][0]
            .as_str()
            .unwrap()
            .contains("has not agreed")
    );
    // The receiving state kept a checkpoint: the log since provably extends it.
    let new = kr.get("/api/ledger/checkpoint").body;
    let from = old["size"].as_u64().unwrap();
    let p = kr.get(&format!("/api/ledger/consistency?from={from}"));
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["root"], new["root"]);
    let hash = |v: &Value| asylon_ledger::parse_hash(v.as_str().unwrap()).unwrap();
    let hashes = |v: &Value| -> Vec<_> { v.as_array().unwrap().iter().map(hash).collect() };
    let path = hashes(&p.body["path"]);
    let new_size = p.body["tree_size"].as_u64().unwrap();
    asylon_ledger::verify_consistency(
        from,
        new_size,
        &hash(&old["root"]),
        &hash(&p.body["root"]),
        &path,
    )
    .unwrap();
    let mut forged = hash(&old["root"]);
    forged[0] ^= 1;
    assert!(
        asylon_ledger::verify_consistency(from, new_size, &forged, &hash(&p.body["root"]), &path)
            .is_err()
    );
    assert_eq!(kr.get("/api/ledger/consistency?from=0").status, 422);
    assert_eq!(kr.get("/api/ledger/consistency?from=99999999").status, 422);
    // Up to the later checkpoint it holds, however the log has grown since (its own read is
    // recorded), so that the proof is checked against a signed root.
    let upto = new["size"].as_u64().unwrap();
    assert_eq!(kr.get(&format!("/api/persons/{case}")).status, 200);
    let p = kr.get(&format!("/api/ledger/consistency?from={from}&to={upto}"));
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        (p.body["tree_size"].as_u64(), &p.body["root"]),
        (Some(upto), &new["root"])
    );
    let later = kr.get("/api/ledger/checkpoint").body;
    assert!(later["size"].as_u64().unwrap() > upto, "{later}");
    for bad in [
        format!("from={from}&to={}", from - 1),
        format!("from={from}&to=99999999"),
        format!("from={from}&to=0"),
    ] {
        let r = kr.get(&format!("/api/ledger/consistency?{bad}"));
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    // An inclusion proof at the size of the checkpoint it holds, too.
    let p = kr.get(&format!("/api/ledger/proof/2?size={upto}"));
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        (p.body["tree_size"].as_u64(), &p.body["root"]),
        (Some(upto), &new["root"])
    );
    let path = hashes(&p.body["path"]);
    asylon_ledger::verify_inclusion(
        &hash(&p.body["leaf_hash"]),
        1,
        upto,
        &path,
        &hash(&new["root"]),
    )
    .unwrap();
    let r = kr.get(&format!("/api/ledger/proof/{upto}?size=1"));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(kr.get("/api/ledger/proof/2?size=0").status, 422);
    assert_eq!(kr.get("/api/ledger/proof/99999999").status, 404);
}

fn events_cannot_be_changed_or_removed_in_the_database_itself(db: Db) {
    let s = &start(db, Config::default());
    let before = s.count("SELECT count(*) FROM events");
    for sql in [
        "UPDATE events SET kind = 'person.erased' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
    ] {
        let e = s.exec(sql).expect_err(sql);
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    if db == Db::Postgres {
        assert!(
            s.exec("TRUNCATE events")
                .unwrap_err()
                .contains("append-only")
        );
    }
    assert_eq!(s.count("SELECT count(*) FROM events"), before);
}

fn an_event_altered_by_someone_who_got_past_the_trigger_is_found_and_named(db: Db) {
    let s = &start(db, Config::default());
    let reg = s.open_registry();
    assert!(reg.verify(None).is_ok());
    // A database owner can lift the append-only trigger; the MAC still names what he changed.
    let lift = match db {
        Db::Sqlite => "DROP TRIGGER events_are_never_updated",
        Db::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_never_updated",
    };
    s.exec(lift).unwrap();
    // The acceptance by South Korea of a captive, turned into one by the power he fled.
    let seq = s.count("SELECT max(seq) FROM events WHERE kind = 'case.acceptance_recorded'");
    let changed = s.exec(&format!(
        "UPDATE events SET public = replace(public, '\"KR\"', '\"KP\"') WHERE seq = {seq}"
    ));
    assert_eq!(changed, Ok(1));
    let e = reg.verify(None).unwrap_err().to_string();
    assert!(
        e.contains(&format!("event {seq}")) && e.contains("MAC"),
        "{e}"
    );
}

fn an_erased_captive_is_gone_from_every_reader_and_the_log_still_verifies(db: Db) {
    let s = &start(db, Config::default());
    let case = &s.cases["consented"];
    let legal = s.sign_in("dp-legal");
    assert!(
        legal
            .get(&format!("/api/persons/{case}"))
            .body
            .get("identity")
            .is_some()
    );
    let r = legal.post(
        &format!("/api/persons/{case}/erase"),
        json!({"reason": "his own request, through the agency"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["keys_purged"], true, "{}", r.body);
    let r = legal.get(&format!("/api/persons/{case}"));
    assert_eq!(r.status, 200);
    assert!(
        r.body.get("identity").is_none() && r.body["status"] == "erased",
        "{}",
        r.body
    );
    let hits = legal.get("/api/search?name=Choe%20Min%20Jun");
    assert!(
        !hits.body.to_string().contains(case.as_str()),
        "{}",
        hits.body
    );
    let notes = s
        .sign_in("cta-interviewer")
        .get(&format!("/api/persons/{case}/interviews"));
    assert_eq!(notes.body[0]["notes"], Value::Null, "{}", notes.body);
    assert!(s.open_registry().verify(None).is_ok());
    assert_eq!(
        legal
            .post(
                &format!("/api/persons/{case}/erase"),
                json!({"reason": "again"})
            )
            .status,
        410
    );
}

/// Another process reading the key store since before an erasure, for longer than the server
/// waits for it (a backup being copied), keeps his key in the key store's files: the erasure
/// stands, and its answer says the files are not purged yet.
fn an_erasure_held_back_by_an_older_reader_is_answered_as_not_purged(db: Db) {
    let s = &start(db, Config::default());
    let case = &s.cases["consented"];
    let mut legal = s.sign_in("dp-legal");
    let mut registry = s.open_registry();
    registry.set_purge_wait(std::time::Duration::from_secs(1));
    legal.base = second_server_on(s, registry);
    let reader = s.older_key_store_reader();
    let r = legal.post(
        &format!("/api/persons/{case}/erase"),
        json!({"reason": "his own request, through the agency"}),
    );
    drop(reader);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["keys_purged"], false, "{}", r.body);
    let r = legal.get(&format!("/api/persons/{case}"));
    assert!(
        r.body.get("identity").is_none() && r.body["status"] == "erased",
        "{}",
        r.body
    );
}

fn a_request_that_waits_holds_up_only_its_own_handle_on_the_registry(db: Db) {
    // An erasure waits (a minute at most) for an older reader of the key store to let its
    // files be purged; meanwhile the server's other handle answers everyone else.
    let s = &start(db, Config::default());
    let case = s.cases["consented"].clone();
    let legal = s.sign_in("dp-legal");
    let other = s.sign_in("cta-interviewer");
    let reader = s.older_key_store_reader();
    let erasing = erase_aside(legal, &case);
    s.until_a_purge_is_due();
    let r = other.get("/api/persons?limit=2");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !erasing.is_finished(),
        "the listing was answered only once the erasure had ended"
    );
    drop(reader);
    let r = erasing.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["keys_purged"], true, "{}", r.body);
}

/// An erasure waiting for an older reader of the key store (a backup being copied) to let its
/// files be purged does not keep another process from registering captives meanwhile, and
/// still purges them once the reader has gone, within its wait.
fn an_erasure_waiting_for_an_older_reader_lets_registrations_through(db: Db) {
    let s = &start(db, Config::default());
    let case = s.cases["consented"].clone();
    let mut legal = s.sign_in("dp-legal");
    let registrar = s.sign_in("dp-registrar");
    let mut registry = s.open_registry();
    registry.set_purge_wait(std::time::Duration::from_secs(5));
    legal.base = second_server_on(s, registry);
    let reader = s.older_key_store_reader();
    let erasing = erase_aside(legal, &case);
    s.until_a_purge_is_due();
    for (name, given) in [("Kang Su Il", "Su Il"), ("Ri Chol Ung", "Chol Ung")] {
        let r = registrar.post("/api/persons", name_only(name));
        assert_eq!(r.status, 201, "{}", r.body);
        let case = r.body["cases"][0].as_str().unwrap();
        let r = registrar.get(&format!("/api/persons/{case}"));
        assert_eq!(r.body["identity"]["names"][0]["given"], given, "{}", r.body);
    }
    drop(reader);
    let r = erasing.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["keys_purged"], true,
        "the erasure still waited for the reader when it had gone: {}",
        r.body
    );
}

/// Two erasures of one captive at once (a client sending again an erasure that waits for an
/// older reader of the key store, both begun before either is recorded): one is recorded and
/// purges his keys, the other waits for it and is refused as of someone already erased, and
/// the log holds one erasure, naming the keys it destroyed.
fn a_captive_erased_twice_at_once_is_erased_once(db: Db) {
    let s = &start(db, Config::default());
    let case = s.cases["consented"].clone();
    let reader = s.older_key_store_reader();
    let erasures: Vec<_> = (0..2)
        .map(|_| erase_aside(s.sign_in("dp-legal"), &case))
        .collect();
    s.until_a_purge_is_due();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        erasures.iter().all(|e| !e.is_finished()),
        "both wait for the reader"
    );
    drop(reader);
    let mut answers: Vec<Resp> = erasures.into_iter().map(|e| e.join().unwrap()).collect();
    answers.sort_by_key(|r| r.status);
    assert_eq!(
        (answers[0].status, answers[1].status),
        (200, 410),
        "{} / {}",
        answers[0].body,
        answers[1].body
    );
    assert_eq!(answers[0].body["keys_purged"], true, "{}", answers[0].body);
    assert_eq!(
        s.count("SELECT count(*) FROM events WHERE kind = 'person.erased'"),
        1
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM events WHERE kind = 'person.erased' \
             AND public LIKE '%\"keys_destroyed\":[\"identity\"%'"
        ),
        1,
        "the erasure recorded names the keys it destroyed"
    );
}

/// An erasure that has destroyed a captive's keys and then cannot record it (on SQLite another
/// writer holds the registry past the busy timeout) says that his keys are gone, not that
/// nothing was changed; sent again, it is recorded. (On PostgreSQL it waits for the writer.)
fn an_erasure_that_cannot_be_recorded_says_his_keys_are_gone(db: Db) {
    let s = &start(db, Config::default());
    let case = s.cases["consented"].clone();
    let legal = s.sign_in("dp-legal");
    // Held in its purge by an older reader until the other writer has the registry.
    let reader = s.older_key_store_reader();
    let erasing = erase_aside(legal.clone(), &case);
    s.until_a_purge_is_due();
    let writer = s.other_writer();
    drop(reader);
    let erasures = "SELECT count(*) FROM events WHERE kind = 'person.erased'";
    if db == Db::Sqlite {
        let r = erasing.join().unwrap();
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.header("retry-after"), Some("5"));
        let error = r.body["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("{case}'s keys were destroyed"))
                && error.contains("the erasure was not recorded"),
            "{error}"
        );
        drop(writer);
        assert_eq!(s.count(erasures), 0);
        let r = legal.get(&format!("/api/persons/{case}"));
        assert_eq!(r.status, 410, "his sealed data is gone: {}", r.body);
        let r = erase_aside(legal.clone(), &case).join().unwrap();
        assert_eq!(r.status, 200, "sent again: {}", r.body);
    } else {
        drop(writer);
        let r = erasing.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(s.count(erasures), 1);
    let r = legal.get(&format!("/api/persons/{case}"));
    assert_eq!(r.body["status"], "erased", "{}", r.body);
    // The log says which of his keys are gone: destroyed by the erasure recorded, or, sent
    // again, by the one before it that could not be recorded.
    let events = s.open_registry().events(Some(&case)).unwrap();
    let erased = events.iter().rfind(|e| e.kind == "person.erased").unwrap();
    let public: Value = serde_json::from_str(&erased.public).unwrap();
    let (now, before) = (&public["keys_destroyed"], &public["keys_destroyed_before"]);
    let gone = if db == Db::Sqlite {
        assert_eq!(now, &json!([]), "{public}");
        before
    } else {
        assert!(before.is_null(), "{public}");
        now
    };
    for class in ["identity", "family", "statements"] {
        assert!(
            gone.as_array().unwrap().contains(&json!(class)),
            "{class}: {public}"
        );
    }
}

fn a_correction_is_what_every_reader_sees_and_the_record_before_it_stays_in_the_log(db: Db) {
    let s = &start(db, Config::default());
    let case = &s.cases["consented"];
    let registrar = s.sign_in("dp-registrar");
    let url = format!("/api/persons/{case}/amend");
    let corrected = json!({"names": ["최민철", "Choe Min Chol"], "date_of_birth": "2001-02-03",
        "rank": "sergeant", "service_number": "SN-77123", "power": "RU",
        "captured_on": "2025-01-08", "captured_at": "Kursk region",
        "next_of_kin": "his mother, in Hamhung"});
    let events = s.count("SELECT count(*) FROM events");
    // Refused, each with its field, and nothing written: no reason; another external id; a
    // date of capture in the future; a body without the particulars.
    for (body, field) in [
        (json!({"reason": " ", "particulars": corrected}), "reason"),
        (
            json!({"reason": "typo", "particulars": {"external_id": "UA-9", "names": ["최민철"],
                "power": "KP", "captured_on": "2025-01-08",
                "not_stated": ["date_of_birth", "rank", "service_number"]}}),
            "external_id",
        ),
        (
            json!({"reason": "typo", "particulars": {"names": ["최민철"], "power": "KP",
                "captured_on": "2999-01-01",
                "not_stated": ["date_of_birth", "rank", "service_number"]}}),
            "captured_on",
        ),
    ] {
        let r = registrar.post(&url, body);
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.to_string().contains(field), "{field}: {}", r.body);
    }
    // A body without the particulars is not this request's shape at all.
    assert_eq!(registrar.post(&url, json!({"reason": "typo"})).status, 400);
    assert_eq!(s.count("SELECT count(*) FROM events"), events);

    // What the API gives to correct from is what it takes.
    let given = registrar.get(&format!("/api/persons/{case}/particulars"));
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!(given.body["names"][1]["given"], "Min Jun", "{}", given.body);
    assert_eq!(given.body["next_of_kin"], "his mother, in Hamhung");
    let read_from = given.body["from_event"].as_u64().unwrap();
    let r = registrar.post(
        &url,
        json!({"reason": "unchanged, as given", "particulars": given.body}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.body["seq"].as_u64().unwrap();
    // A correction names the event whose particulars it corrects; one made from a reading
    // that another correction has overtaken would undo it: 409, and nothing written.
    let events = s.count("SELECT count(*) FROM events");
    let r = registrar.post(&url, json!({"reason": "typo", "particulars": corrected}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.to_string().contains("from_event"), "{}", r.body);
    let mut stale = corrected.clone();
    stale["from_event"] = json!(read_from);
    let r = registrar.post(&url, json!({"reason": "typo", "particulars": stale}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains(&format!(
            "particulars are those of event {first}, not of event {read_from}: they were \
             corrected again after they were read"
        )),
        "{}",
        r.body
    );
    assert_eq!(s.count("SELECT count(*) FROM events"), events);
    let mut corrected = corrected;
    corrected["from_event"] = json!(first);
    let r = registrar.post(
        &url,
        json!({"reason": "name and rank misread from the capture report", "particulars": corrected}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seq = r.body["seq"].as_u64().unwrap();
    // Nothing was pending for him: nothing suspended.
    assert_eq!(r.body["suspended"], json!([]), "{}", r.body);

    let shown = registrar.get(&format!("/api/persons/{case}"));
    assert_eq!(shown.body["particulars_seq"], json!(seq), "{}", shown.body);
    assert_eq!(shown.body["identity"]["rank"], "sergeant");
    assert_eq!(shown.body["identity"]["names"][1]["given"], "Min Chol");
    assert_eq!(
        shown.body["family"]["next_of_kin"],
        "his mother, in Hamhung"
    );
    assert_eq!(
        (&shown.body["power"], &shown.body["captured_on"]),
        (&json!("RU"), &json!("2025-01-08"))
    );
    // The guards' power of origin is the corrected one.
    let status = registrar.get(&format!("/api/persons/{case}/status"));
    assert_eq!(status.body["power"], "RU", "{}", status.body);
    // The receiving state he consented to share his identity with sees it as corrected.
    let kr = s.sign_in("kr-liaison").get(&format!("/api/persons/{case}"));
    assert_eq!(kr.body["identity"]["rank"], "sergeant", "{}", kr.body);
    assert!(kr.body.get("family").is_none(), "{}", kr.body);
    // Found by his corrected name, no longer by the one taken back.
    let found = |name: &str| {
        registrar
            .get(&format!("/api/search?name={}", name.replace(' ', "%20")))
            .body
            .to_string()
            .contains(case.as_str())
    };
    assert!(found("Choe Min Chol"));
    assert!(!found("Choe Min Jun"));
    // The record before it stays in the log, named by the correction.
    let log = registrar.get(&format!("/api/persons/{case}/events"));
    let amended: Vec<&Value> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "person.amended")
        .collect();
    assert_eq!(amended.len(), 2, "{}", log.body);
    assert_eq!(amended[1]["seq"], json!(seq));
    let public = amended[1]["public"].to_string();
    assert!(public.contains("misread"), "{public}");
    assert!(
        !public.contains("Min Chol"),
        "a sealed name in public: {public}"
    );
    let mut reg = s.open_registry();
    assert!(reg.verify(None).is_ok());
    reg.rebuild().unwrap();
    assert!(reg.verify(None).is_ok());
    // Not allowed to others; an erased captive cannot be corrected.
    let body = json!({"reason": "typo", "particulars": corrected});
    assert_eq!(
        s.sign_in("dp-interviewer").post(&url, body.clone()).status,
        403
    );
    let legal = s.sign_in("dp-legal");
    let r = legal.post(
        &format!("/api/persons/{case}/erase"),
        json!({"reason": "his own request"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(legal.post(&url, body).status, 410);
    assert_eq!(
        legal
            .get(&format!("/api/persons/{case}/particulars"))
            .status,
        410
    );
}

fn writers_on_several_connections_append_one_gapless_log(db: Db) {
    // Four writers, each with its own connection to the registry (as separate server processes
    // would have), register captives and record law commands at the same time.
    let s = &start(db, Config::default());
    let before = s.count("SELECT count(*) FROM events");
    let settings = asylon_core::law::Settings::default();
    std::thread::scope(|scope| {
        for w in 0..4 {
            let mut reg = s.open_registry();
            let settings = settings.clone();
            scope.spawn(move || {
                let registrar = who(&format!("writer-{w}"), "detaining", "registrar");
                for i in 0..15 {
                    let input: RegistrationInput = serde_json::from_value(json!({
                        "names": ["Ri Chol"], "power": "KP", "captured_on": "2025-03-01",
                        "not_stated": ["date_of_birth", "rank", "service_number"],
                        "external_id": format!("W{w}-{i}")
                    }))
                    .unwrap();
                    let r = input.validate(now()).unwrap();
                    let case = reg.register(&registrar.actor(), now(), vec![r]).unwrap()[0].clone();
                    reg.act(
                        &registrar,
                        now(),
                        &settings,
                        &command(json!({"command": "record_capture", "case": case})),
                    )
                    .unwrap();
                }
            });
        }
    });
    let reg = s.open_registry();
    let report = reg.verify(None).unwrap();
    assert_eq!(
        report.size as i64,
        before + 4 * 15 * 2,
        "no event lost or doubled"
    );
    assert_eq!(
        s.count("SELECT count(DISTINCT case_no) FROM persons WHERE external_id LIKE 'W%'"),
        60
    );
    // Sequence numbers are 1..n without a gap (verify checks each against its position too).
    assert_eq!(s.count("SELECT max(seq) - count(*) FROM events"), 0);
}

/// `GET /api/deadlines` answers, to each caller, what the registry itself computes for him.
/// `limit` cuts the list of deadlines into pages, each naming the next in its `Link` header,
/// which together are the whole list in its one order; `after` and `limit` that mean nothing
/// are refused, naming themselves.
fn deadlines_come_a_page_at_a_time_in_one_order(db: Db) {
    let s = start(db, Config::default());
    let registrar = s.sign_in("dp-registrar");
    for name in [
        "Kang Su Il",
        "Ri Chol Ung",
        "Han Myong Su",
        "O Song Chol",
        "Jo Kwang Il",
    ] {
        let r = registrar.post("/api/persons", name_only(name));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Two duties past due: two captives moved to a camp in May 2025 owe capture cards.
    let mut reg = s.open_registry();
    let settings = load_settings(&s.dir).unwrap();
    let actor = who("dp-registrar", "detaining", "registrar");
    reg.act(
        &actor,
        now(),
        &settings,
        &command(json!({"command": "define_place", "place": "Camp 3", "kind": "camp"})),
    )
    .unwrap();
    for state in ["referred", "consented"] {
        let cmd = json!({"command": "move_custody", "case": s.cases[state], "place": "Camp 3",
            "on": "2025-05-01"});
        reg.act(&actor, now(), &settings, &command(cmd)).unwrap();
    }
    let next = |r: &Resp| {
        r.header("link").map(|l| {
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        })
    };
    for (filter, at_least) in [("", 14), ("&overdue=true", 2)] {
        let whole = registrar.get(&format!(
            "/api/deadlines?{}",
            &filter.trim_start_matches('&')
        ));
        assert_eq!(whole.status, 200, "{}", whole.body);
        assert_eq!(next(&whole), None, "without limit, all at once");
        let whole = whole.body.as_array().unwrap().clone();
        assert!(whole.len() >= at_least, "{}", whole.len());
        let key = |d: &Value| {
            let case = d["case"].as_str().unwrap().to_string();
            let kind = [
                "capture_card",
                "notification",
                "health_update",
                "commission_decision",
            ]
            .iter()
            .position(|k| d["kind"] == *k)
            .unwrap();
            (
                d["due"].as_str().unwrap().to_string(),
                case.len(),
                case,
                kind,
            )
        };
        assert!(
            whole.windows(2).all(|w| key(&w[0]) < key(&w[1])),
            "due, then case number, then kind: {whole:?}"
        );
        let mut paged = Vec::new();
        let mut url = Some(format!("/api/deadlines?limit=3{filter}"));
        let mut pages = 0;
        while let Some(u) = url {
            let r = registrar.get(&u);
            assert_eq!(r.status, 200, "{u}: {}", r.body);
            let page = r.body.as_array().unwrap();
            assert!(!page.is_empty() && page.len() <= 3, "{u}: {}", r.body);
            paged.extend(page.iter().cloned());
            pages += 1;
            url = next(&r);
            if filter.is_empty() {
                assert!(url.as_deref().is_none_or(|u| !u.contains("overdue")), "{u}");
            } else {
                assert!(
                    url.as_deref().is_none_or(|u| u.contains("overdue=true")),
                    "{u}"
                );
            }
        }
        assert_eq!(paged, whole, "{filter}");
        assert_eq!(pages, whole.len().div_ceil(3), "{filter}");
    }
    let last = registrar.get("/api/deadlines").body;
    let last = last.as_array().unwrap().last().unwrap().clone();
    let after = format!(
        "{},{},{}",
        last["due"].as_str().unwrap(),
        last["case"].as_str().unwrap(),
        last["kind"].as_str().unwrap()
    );
    let r = registrar.get(&format!("/api/deadlines?limit=5&after={after}"));
    assert_eq!((r.status, r.body.clone()), (200, json!([])), "past the end");
    assert_eq!(next(&r), None);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("after=2025-13-01,AS-000001,capture_card", "after"),
        ("after=2025-05-08,AS-000001,capture", "after"),
        ("after=2025-05-08,AS-000001", "after"),
        ("after=yesterday", "after"),
    ] {
        let r = registrar.get(&format!("/api/deadlines?{query}"));
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert_eq!(r.body["fields"][0]["field"], field, "{query}: {}", r.body);
    }
}

/// A server reads the captives' open duties from the log as it starts, before any request
/// asks for them, and its health says when they are kept.
fn a_server_reads_the_open_duties_as_it_starts(db: Db) {
    let s = start(db, Config::default());
    let anonymous = Client::anonymous(&s);
    let mut said = Vec::new();
    for _ in 0..600 {
        let r = anonymous.get("/api/health");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "ok");
        let duties = r.body["duties"].as_str().unwrap().to_string();
        if duties == "kept" {
            return;
        }
        assert!(["busy", "unread"].contains(&duties.as_str()), "{duties}");
        said.push(duties);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the open duties were not read within 30 s of the start: {said:?}");
}

fn deadlines_are_the_registrys_own_for_each_caller(db: Db) {
    // A server of its own: no other test's write moves a duty between the two readings.
    let s = start(db, Config::default());
    let mut reg = s.open_registry();
    let settings = load_settings(&s.dir).unwrap();
    // One duty past due: the referred captive moved to a camp in May 2025 owes a new capture
    // card a week after.
    let registrar = who("dp-registrar", "detaining", "registrar");
    for cmd in [
        json!({"command": "define_place", "place": "Camp 3", "kind": "camp"}),
        json!({"command": "move_custody", "case": s.cases["referred"], "place": "Camp 3",
            "on": "2025-05-01"}),
    ] {
        reg.act(&registrar, now(), &settings, &command(cmd))
            .unwrap();
    }
    let mut seen = Vec::new();
    for (user, org, r) in [
        ("dp-registrar", "detaining", "registrar"),
        ("cta-registrar", "neutral", "registrar"),
        ("kr-liaison", "receiving:KR", "liaison"),
    ] {
        let c = s.sign_in(user);
        let store = |overdue: bool| {
            let all = reg.deadlines(&who(user, org, r), &settings, now()).unwrap();
            let kept: Vec<_> = all
                .into_iter()
                .filter(|d| !overdue || d.status == asylon_core::law::DeadlineStatus::Overdue)
                .collect();
            serde_json::to_value(kept).unwrap()
        };
        for (query, overdue) in [
            ("", false),
            ("?overdue=true", true),
            ("?overdue=false", false),
        ] {
            // Read before and after: a day that ends between them changes what is due.
            let before = store(overdue);
            let r = c.get(&format!("/api/deadlines{query}"));
            assert_eq!(r.status, 200, "{user} {query}: {}", r.body);
            assert_eq!(
                r.header("content-type"),
                Some("application/json"),
                "{user} {query}"
            );
            assert!(
                r.body == before || r.body == store(overdue),
                "{user} {query}: {} against {before}",
                r.body
            );
        }
        // The captives whose duties the caller is told of, all or only those past due.
        let cases = |query: &str| -> BTreeSet<String> {
            let answer = c.get(&format!("/api/deadlines{query}")).body;
            let duties = answer.as_array().unwrap().iter();
            duties
                .map(|d| d["case"].as_str().unwrap().to_string())
                .collect()
        };
        seen.push((user, cases(""), cases("?overdue=true")));
    }
    // The detaining power owes duties for every captive it holds; a receiving state sees the
    // ones of the captives it accepted, and no other.
    let of = |names: &[&str]| -> BTreeSet<String> {
        names.iter().map(|n| s.cases[*n].clone()).collect()
    };
    let every: BTreeSet<String> = s.cases.values().cloned().collect();
    assert_eq!(seen[0].1, every, "{seen:?}");
    assert_eq!(seen[2].1, of(&["referred", "consented"]), "{seen:?}");
    // Past due: only the captive moved in May 2025, to both who may see him.
    let late = of(&["referred"]);
    assert_eq!((&seen[0].2, &seen[2].2), (&late, &late), "{seen:?}");
    // Written beside the server, which keeps the duties it read: his card issued, and the
    // other captive KR accepted erased. The server's next answers follow.
    reg.act(
        &registrar,
        now(),
        &settings,
        &command(json!({"command": "issue_capture_card", "case": s.cases["referred"]})),
    )
    .unwrap();
    reg.erase_as(
        &registrar,
        now(),
        &s.cases["consented"],
        "asked by the test",
    )
    .unwrap();
    let mut kr = None;
    for (user, org, r) in [
        ("dp-registrar", "detaining", "registrar"),
        ("kr-liaison", "receiving:KR", "liaison"),
    ] {
        let c = s.sign_in(user);
        let store = || {
            let all = reg.deadlines(&who(user, org, r), &settings, now());
            serde_json::to_value(all.unwrap()).unwrap()
        };
        // Read before and after, as above.
        let before = store();
        let answer = c.get("/api/deadlines").body;
        assert!(answer == before || answer == store(), "{user}: {answer}");
        let cases: BTreeSet<String> = answer
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["case"].as_str().unwrap().to_string())
            .collect();
        assert!(!cases.contains(&s.cases["consented"]), "{user}: {answer}");
        let overdue = c.get("/api/deadlines?overdue=true").body;
        assert_eq!(overdue, json!([]), "{user}");
        kr = Some(c);
    }
    // KR's listing is read from the same kept referrals: one it accepts beside the server is
    // in its next page, the erased one still there (his public record).
    let kr = kr.unwrap();
    let listed = |c: &Client| -> Vec<String> {
        let r = c.get("/api/persons?limit=2");
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["persons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["case_no"].as_str().unwrap().to_string())
            .collect()
    };
    let before = listed(&kr);
    assert!(!before.contains(&s.cases["none"]), "{before:?}");
    reg.act(
        &who("kr-liaison", "receiving:KR", "liaison"),
        now(),
        &settings,
        &command(json!({"command": "record_acceptance", "case": s.cases["none"], "state": "KR"})),
    )
    .unwrap();
    let after = listed(&kr);
    assert_eq!(after.first(), Some(&s.cases["none"]), "{after:?}");
    assert_eq!(after.len(), 2, "a full page: {after:?}");
}

fn a_notification_holds_only_what_may_go_to_its_recipient(db: Db) {
    let s = start(db, Config::default());
    let registrar = s.sign_in("dp-registrar");
    let logged = || s.open_registry().events(None).unwrap().len();
    // He told the neutral agency he fears persecution at home (G1 protects him).
    let case = &s.cases["none"];
    let url = format!("/api/persons/{case}/notifications");
    let send = |to: &str| {
        let r = registrar.post(&url, json!({ "to": to }));
        assert_eq!(r.status, 201, "{}", r.body);
        let text = r.body.to_string();
        (r.body, text)
    };
    // His particulars (his names are held as family and given names: 김 철수, Kim Chol Su).
    let his = [
        "철수",
        "Chol Su",
        "SN-77123",
        "2001-02-03",
        "his mother, in Hamhung",
        "Kursk region",
    ];
    let (to_origin, text) = send("origin");
    assert!(his.iter().all(|p| !text.contains(p)), "{text}");
    assert_eq!(to_origin["case"], json!(case));
    assert_eq!(
        to_origin["withheld"],
        json!(["identity", "family", "statements"])
    );
    assert!(
        to_origin["reason"].as_str().unwrap().starts_with("G6"),
        "{to_origin}"
    );
    // To the neutral agency: his Art 122 record, and the opening recorded in his history.
    let (to_agency, text) = send("agency");
    assert!(his.iter().all(|p| text.contains(p)), "{text}");
    assert_eq!(to_agency["withheld"], json!(["statements"]));
    let access = s
        .sign_in("dp-legal")
        .get(&format!("/api/persons/{case}/access"));
    let last = access.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["user"], &last["classes"]),
        (&json!("dp-registrar"), &json!(["identity", "family"])),
        "{}",
        access.body
    );
    let sent = s.open_registry().event(to_agency["seq"].as_u64().unwrap());
    assert_eq!(sent.unwrap().kind, "case.notification_sent");
    // One who said nothing of fear: his record may go to the power he depends on.
    let unheard = registrar.post("/api/persons", name_only("Ri Chol Ung"));
    let url_unheard = format!(
        "/api/persons/{}/notifications",
        unheard.body["cases"][0].as_str().unwrap()
    );
    let r = registrar.post(&url_unheard, json!({"to": "origin"}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.to_string().contains("Chol Ung"), "{}", r.body);
    // Refused, each with nothing written: an unknown recipient, a field too many, a receiving
    // state, an unknown captive.
    let before = logged();
    for (c, path, body, status) in [
        (&registrar, url.clone(), json!({"to": "moscow"}), 422),
        (
            &registrar,
            url.clone(),
            json!({"to": "agency", "copy": "origin"}),
            400,
        ),
        (
            &s.sign_in("kr-liaison"),
            url.clone(),
            json!({"to": "agency"}),
            403,
        ),
        (
            &registrar,
            "/api/persons/AS-999999/notifications".to_string(),
            json!({"to": "agency"}),
            404,
        ),
    ] {
        let r = c.post(&path, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(logged(), before, "{body}");
    }
    let r = registrar.post(&url, json!({"to": "moscow"}));
    assert_eq!(r.body["fields"][0]["field"], "to", "{}", r.body);
}

fn persons_are_listed_in_the_order_of_their_numbers_a_page_at_a_time(db: Db) {
    let s = &start(db, Config::default());
    let c = s.sign_in("dp-registrar");
    // Captives numbered past six digits, among others: AS-1000000 sorts between AS-100000 and
    // AS-100001 as text. The counter is moved on as another server's reservations would.
    let mut registered = Vec::new();
    for (first, count) in [(100_000u64, 2), (999_999, 2)] {
        let mut reg = s.open_registry();
        reg.reserve_cases(first - 1 - reg.cases_given().unwrap())
            .unwrap();
        for i in 0..count {
            let r = c.post(
                "/api/persons",
                json!({"names": ["Pak Chol"], "power": "KP", "captured_on": "2025-03-01",
                    "external_id": format!("W-{first}-{i}"),
                    "not_stated": ["date_of_birth", "rank", "service_number"]}),
            );
            assert_eq!(r.status, 201, "{}", r.body);
            registered.push(r.body["cases"][0].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        registered,
        ["AS-100000", "AS-100001", "AS-999999", "AS-1000000"]
    );
    let cases_of = |r: &Resp| -> Vec<String> {
        let persons = r.body["persons"].as_array().unwrap();
        let case = |p: &Value| p["case_no"].as_str().unwrap().to_string();
        persons.iter().map(case).collect()
    };
    let (mut listed, mut after) = (Vec::new(), None::<String>);
    loop {
        let path = match &after {
            Some(a) => format!("/api/persons?limit=2&after={a}"),
            None => "/api/persons?limit=2".into(),
        };
        let r = c.get(&path);
        assert_eq!(r.status, 200, "{}", r.body);
        listed.extend(cases_of(&r));
        match r.body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let number = |case: &str| case[3..].parse::<u64>().unwrap();
    assert!(
        listed.windows(2).all(|w| number(&w[0]) < number(&w[1])),
        "{listed:?}"
    );
    assert!(listed.len() > registered.len(), "{listed:?}");
    assert_eq!(listed[listed.len() - registered.len()..], registered[..]);
    // A receiving state sees only the captives referred to it (the second and third of the
    // server's four, none of those above): each page holds as many of them as it may, and is
    // never short or empty while more follow.
    let kr = s.sign_in("kr-liaison");
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let r = kr.get(&format!("/api/persons?limit=1&after={after}"));
        assert_eq!(r.status, 200, "{}", r.body);
        pages.push(cases_of(&r));
        match r.body["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    // Read from the referrals the server keeps: the last of them ends the list, however many
    // captives it may not see follow it.
    assert_eq!(
        pages,
        [
            vec![s.cases["referred"].clone()],
            vec![s.cases["consented"].clone()],
        ]
    );
    // The cursor is read as typed; one that is no case number is refused, naming it.
    let r = c.get("/api/persons?limit=2&after=as-100000");
    assert_eq!(cases_of(&r), ["AS-100001", "AS-999999"]);
    let r = c.get("/api/persons?after=Kim");
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["fields"][0]["field"], "after");
    // A page asked for in a way the listing does not read is refused, naming what it reads;
    // and the captive's events, which come whole, take no limit.
    let r = c.get("/api/persons?limit=2&page=2");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["error"],
        "GET /api/persons takes the query parameters after, limit: \"page\" is not one"
    );
    let r = c.get(&format!("/api/persons/{}/events?limit=1", registered[0]));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("takes no query parameters")
    );
}

fn responses_carry_strict_security_headers(db: Db) {
    let s = shared(db);
    let r = Client::anonymous(s).get("/api/health");
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert!(r.header("strict-transport-security").is_none());
    // The server's own address, as a browser opens it, leads to the web UI.
    let home = ui::fetch(s, "/", None, "en", None);
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/ui/persons"));
    assert!(home.header("content-security-policy").is_some());
    // A path the server does not have: told where the API is, with the same headers.
    for path in ["/nothing/here", "/api/no/such/thing"] {
        let r = Client::anonymous(s).get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.body["error"],
            "no such endpoint: the API is under /api, described at /api/openapi.json",
            "{path}"
        );
        assert!(r.header("content-security-policy").is_some(), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

fn the_openapi_document_is_valid_and_every_route_answers(db: Db) {
    let s = shared(db);
    let r = Client::anonymous(s).get("/api/openapi.json");
    assert_eq!(r.status, 200);
    let doc = &r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
    // The document parses back into the OpenAPI model.
    let _: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    // Every endpoint the tests and the matrix use is documented...
    let mut used: Vec<String> = rules()
        .iter()
        .filter(|r| r.endpoint != "*")
        .map(|r| r.endpoint.split('#').next().unwrap().to_string())
        .collect();
    used.extend(
        [
            "POST /api/session",
            "GET /api/session",
            "DELETE /api/session",
            "POST /api/session/password",
            "POST /api/tokens",
            "GET /api/tokens",
            "DELETE /api/tokens/{id}",
            "POST /api/orgs/{org}/users",
            "PUT /api/orgs/{org}/users/{name}/roles",
            "PUT /api/orgs/{org}/users/{name}/disabled",
            "POST /api/persons/import",
            "POST /api/persons/{case}/erase",
            "GET /api/ledger/proof/{seq}",
            "GET /api/ledger/consistency",
            "GET /api/health",
            "GET /api/openapi.json",
        ]
        .map(String::from),
    );
    for e in &used {
        let (method, path) = e.split_once(' ').unwrap();
        assert!(
            paths
                .get(path)
                .and_then(|p| p.get(method.to_lowercase()))
                .is_some(),
            "{e} is not in the OpenAPI document"
        );
    }
    // ...and every documented operation is routed (no fallback 404 for a plausible request),
    // with its request bodies and responses described. (A session of its own: one of the
    // requests signs out.)
    let c = s.sign_in("dp-auditor");
    let mut operations = 0;
    for (path, item) in paths {
        let url = path
            .replace("{case}", &s.cases["none"])
            .replace("{org}", "detaining")
            .replace("{name}", "dp-analyst")
            .replace("{id}", "0")
            .replace("{seq}", "1");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            // Parameters are where they say: a path parameter is in the path template, and a
            // required one is one the handler cannot do without.
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap();
                if param["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {param}"
                    );
                } else {
                    assert_eq!(param["in"], "query", "{method} {path}: {param}");
                }
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            // A full disk or a failing registry may answer any operation that opens it: all
            // but these two.
            let opens_registry = !["/api/health", "/api/openapi.json"].contains(&path.as_str());
            for status in ["500", "507"] {
                assert_eq!(
                    op["responses"].get(status).is_some(),
                    opens_registry,
                    "{method} {path} {status}"
                );
            }
            if method == "post" || method == "put" {
                assert!(
                    op.get("requestBody").is_some(),
                    "{method} {path} has no request body"
                );
            }
            let body = (method != "get" && method != "delete").then_some(&b"{}"[..]);
            // A query parameter the operation does not take is refused, not ignored, before
            // anything else is looked at.
            let join = if url.contains('?') { '&' } else { '?' };
            let r = c.send(&method.to_uppercase(), &format!("{url}{join}bogus=1"), body);
            assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
            assert!(
                r.body["error"]
                    .as_str()
                    .unwrap()
                    .ends_with("\"bogus\" is not one"),
                "{method} {path}: {}",
                r.body
            );
            let r = c.send(&method.to_uppercase(), &url, body);
            assert!(
                !(r.status == 404 && r.body["error"] == asylon_server::NO_SUCH_ENDPOINT),
                "{method} {path} is documented but not routed"
            );
            assert!(r.status < 500, "{method} {path}: {}", r.status);
            // (What it answered is among the answers its entry names: `send` checks that of
            // every request of every test.)
        }
    }
    assert!(operations >= 24, "{operations}");
}
