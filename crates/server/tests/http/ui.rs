//! The web UI, in a real browser (headless Chromium driven through ChromeDriver), and its forms
//! over plain HTTP where no browser is needed to show what they refuse.

use super::*;

/// A headless Chromium, driven over W3C WebDriver through ChromeDriver on a free port. The few
/// commands used here are JSON over HTTP, sent with the HTTP client the suite already has: the
/// WebDriver crates bring an HTTP stack and Unicode segmentation tables of their own to compile,
/// on two cores, for these.
struct Browser {
    driver: std::process::Child,
    at: String,
    session: String,
    profile: tempfile::TempDir,
}

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// A browser whose person reads `lang` first. `None` (with a notice) where Chromium and
    /// ChromeDriver are not installed; under CI they must be (`scripts/test` installs them).
    fn start(lang: &str) -> Option<Browser> {
        let driver =
            std::env::var("ASYLON_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium =
            std::env::var("ASYLON_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !(std::path::Path::new(&driver).exists() && std::path::Path::new(&chromium).exists()) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the web UI tests need {chromium} and {driver} under CI: scripts/test installs \
                 Debian's chromium and chromium-driver"
            );
            eprintln!("skipped: no {chromium} or {driver} (scripts/test installs them as root)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver: child,
            at: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            profile,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !agent()
            .get(format!("{}/status", b.at))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == true)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "ChromeDriver did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", b.profile.path().display()),
            &format!("--lang={lang}"),
        ];
        let created = b.send(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": args,
                    "prefs": {"intl.accept_languages": lang},
                },
            }}})),
        );
        b.session = created["sessionId"].as_str().unwrap().to_string();
        Some(b)
    }

    /// Sends a WebDriver command; its `value`. A WebDriver error fails the test, naming it.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.at);
        let req = ureq::http::Request::builder().method(method).uri(&url);
        let resp = match body {
            Some(b) => agent().run(
                req.header("content-type", "application/json")
                    .body(b.to_string().into_bytes())
                    .unwrap(),
            ),
            None => agent().run(req.body(()).unwrap()),
        };
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().unwrap();
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.send(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// The path (and query) of the page shown.
    fn path(&self) -> String {
        let url = self.command("GET", "/url", None);
        let url = url.as_str().unwrap();
        let after_host = url.split_once("://").map_or(url, |(_, rest)| rest);
        after_host
            .find('/')
            .map_or("/".into(), |i| after_host[i..].to_string())
    }

    fn all(&self, css: &str) -> Vec<String> {
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The one element `css` selects, waiting up to ten seconds for it (a page loading).
    fn one(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self.all(css);
            if let [one] = found.as_slice() {
                return one.clone();
            }
            assert!(
                found.len() < 2 && std::time::Instant::now() < deadline,
                "{} elements {css} on {}",
                found.len(),
                self.path()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn text(&self, css: &str) -> String {
        let e = self.one(css);
        let t = self.command("GET", &format!("/element/{e}/text"), None);
        t.as_str().unwrap().to_string()
    }

    fn texts(&self, css: &str) -> Vec<String> {
        self.all(css)
            .iter()
            .map(|e| {
                let t = self.command("GET", &format!("/element/{e}/text"), None);
                t.as_str().unwrap().to_string()
            })
            .collect()
    }

    fn type_in(&self, css: &str, text: &str) {
        let e = self.one(css);
        self.command("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.command(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks `css` and waits for the page it leads to (one whose `<html>` is not the one
    /// clicked on).
    fn click(&self, css: &str) {
        let before = self.one("html");
        let e = self.one(css);
        self.command("POST", &format!("/element/{e}/click"), Some(json!({})));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.all("html").first() == Some(&before) {
            assert!(
                std::time::Instant::now() < deadline,
                "clicking {css} led nowhere"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn lang(&self) -> String {
        let e = self.one("html");
        let v = self.command("GET", &format!("/element/{e}/attribute/lang"), None);
        v.as_str().unwrap_or_default().to_string()
    }

    /// Signs `user` in through the form with `password` and the current code of his
    /// authenticator.
    fn sign_in(&self, s: &Server, user: &str, password: &str) {
        self.go(&format!("{}/ui/sign-in", s.base));
        self.type_in("#user", user);
        self.type_in("#password", password);
        self.type_in("#totp", &s.code(user));
        self.click("#submit");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.at, self.session);
            let _ = agent().delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The case numbers the API lists for `c`, every page.
fn listed_by_api(c: &Client) -> Vec<String> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let r = c.get(&format!("/api/persons?limit=1000&after={after}"));
        assert_eq!(r.status, 200, "{}", r.body);
        for p in r.body["persons"].as_array().unwrap() {
            all.push(p["case_no"].as_str().unwrap().to_string());
        }
        match r.body["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => return all,
        }
    }
}

/// The case numbers the web UI lists to the browser's person, every page.
fn listed_by_ui(b: &Browser, s: &Server) -> Vec<String> {
    b.go(&format!("{}/ui/persons", s.base));
    let mut all = Vec::new();
    loop {
        all.extend(b.texts("#persons tbody tr td:first-child a"));
        if b.all("#next").is_empty() {
            return all;
        }
        b.click("#next");
    }
}

/// A registrar at a browser that reads Korean: the sign-in page in Korean, a wrong password
/// refused in Korean with nothing opened, then signed in, the captives the API lists him, in
/// English once he chooses it (and kept), a captive's record and what the law says of him, the
/// opening recorded in the captive's access history, a search by his name in two scripts, and
/// signed out.
pub(super) fn a_person_at_a_browser_signs_in_reads_records_and_signs_out(db: Db) {
    let Some(b) = Browser::start("ko") else {
        return;
    };
    let s = start(db, Config::default());
    b.go(&format!("{}/", s.base));
    assert_eq!(b.path(), "/ui/sign-in");
    assert_eq!(b.lang(), "ko");
    assert_eq!(b.text("h1"), "로그인");

    b.sign_in(&s, "dp-registrar", "not the password at all");
    assert_eq!(b.path(), "/ui/sign-in");
    assert_eq!(
        b.text("#problem"),
        "로그인 실패: 사용자 이름, 비밀번호 또는 코드가 틀렸습니다."
    );
    b.go(&format!("{}/ui/persons", s.base));
    assert_eq!(b.path(), "/ui/sign-in", "a refused sign-in opens nothing");

    b.sign_in(&s, "dp-registrar", PASSWORD);
    assert_eq!(b.path(), "/ui/persons");
    assert_eq!(b.text("h1"), "포로");
    assert_eq!(b.text("#who"), "dp-registrar");
    let registrar = s.sign_in("dp-registrar");
    let expected = listed_by_api(&registrar);
    assert!(expected.len() >= 4, "{expected:?}");
    let api = s.sign_in_cached("dp-legal");
    assert_eq!(listed_by_ui(&b, &s), expected);

    // English, chosen once, stays.
    b.click("a[hreflang=en]");
    assert_eq!(b.lang(), "en");
    assert_eq!(b.text("h1"), "Captives");
    b.go(&format!("{}/ui/deadlines", s.base));
    assert_eq!(b.text("h1"), "Deadlines");

    // A captive protected from return (he fears persecution), opened from the list.
    let case = &s.cases["none"];
    let history = |c: &Client| {
        c.get(&format!("/api/persons/{case}/access"))
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["user"] == "dp-registrar")
            .count()
    };
    let read_before = history(&api);
    b.go(&format!("{}/ui/persons", s.base));
    b.click(&format!("a[href='/ui/persons/{case}']"));
    assert_eq!(b.path(), format!("/ui/persons/{case}"));
    assert_eq!(b.text("h1"), format!("Captive {case}"));
    let names = b.texts(".names li");
    assert!(
        names.iter().any(|n| n == &s.names["none"]),
        "{names:?} {}",
        s.names["none"]
    );
    assert!(
        b.text("#protection").starts_with("barred: "),
        "{}",
        b.text("#protection")
    );
    assert!(b.text("#wish").contains("KR"), "{}", b.text("#wish"));
    assert_eq!(history(&api), read_before + 1, "the opening is recorded");

    // His name in Hangul finds him first; in Latin letters, what the API finds.
    b.click("a[href='/ui/search']");
    b.type_in("#name", "김철수");
    b.click("#find");
    let found = b.texts("#hits tbody tr td:first-child a");
    assert_eq!(found.first(), Some(case), "{found:?}");
    b.type_in("#name", "Kim Chol Su");
    b.click("#find");
    let found = b.texts("#hits tbody tr td:first-child a");
    let by_api: Vec<String> = registrar
        .get("/api/search?name=Kim%20Chol%20Su")
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["case_no"].as_str().unwrap().to_string())
        .collect();
    assert!(by_api.contains(case), "{by_api:?}");
    assert_eq!(found, by_api);

    b.click("#sign-out");
    assert_eq!(b.path(), "/ui/sign-in");
    b.go(&format!("{}/ui/persons/{case}", s.base));
    assert_eq!(b.path(), "/ui/sign-in", "a session signed out is over");
    assert_eq!(history(&api), read_before + 1);
}

/// A receiving state's liaison sees in the web UI the captives the API lets him see and no
/// other, and a record opened in the UI shows what a captive's particulars hold as text, never
/// as markup.
pub(super) fn the_web_ui_shows_only_what_its_caller_may_see_and_shows_it_as_text(db: Db) {
    let Some(b) = Browser::start("en") else {
        return;
    };
    let s = start(db, Config::default());
    // Particulars holding markup, registered through the API.
    let registrar = s.sign_in("dp-registrar");
    let mut marked = name_only("Ri Chol Su");
    marked["captured_at"] = json!("<img src=x id=injected> near Kursk");
    marked["rank"] = json!("<b id=bold>sergeant</b>");
    marked["not_stated"] = json!(["date_of_birth", "service_number"]);
    let r = registrar.post("/api/persons", marked);
    assert_eq!(r.status, 201, "{}", r.body);
    let marked_case = r.body["cases"][0].as_str().unwrap().to_string();

    b.sign_in(&s, "kr-liaison", PASSWORD);
    assert_eq!(b.path(), "/ui/persons");
    let api = s.sign_in_cached("kr-liaison");
    let expected = listed_by_api(&api);
    assert!(!expected.is_empty());
    assert_eq!(listed_by_ui(&b, &s), expected);
    assert!(!expected.contains(&marked_case));
    // One he may not see: refused, saying so.
    b.go(&format!("{}/ui/persons/{marked_case}", s.base));
    assert!(
        b.text("#problem").starts_with("You may not see this: "),
        "{}",
        b.text("#problem")
    );
    assert!(b.all(".names li").is_empty());
    b.click("#sign-out");

    b.sign_in(&s, "dp-registrar", PASSWORD);
    b.go(&format!("{}/ui/persons/{marked_case}", s.base));
    let record = b.text("#record");
    assert!(
        record.contains("<img src=x id=injected> near Kursk"),
        "{record}"
    );
    assert!(record.contains("<b id=bold>sergeant</b>"), "{record}");
    assert!(b.all("#injected").is_empty() && b.all("#bold").is_empty());
}

/// What a request to the web UI got, redirects not followed.
pub(super) struct Got {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Got {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET` (no `form`) or `POST` of `form` to `path` on `s`, with the session `cookie` if any, by
/// a browser reading `lang`.
pub(super) fn fetch(
    s: &Server,
    path: &str,
    cookie: Option<&str>,
    lang: &str,
    form: Option<&str>,
) -> Got {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(if form.is_some() { "POST" } else { "GET" })
        .uri(format!("{}{path}", s.base))
        .header("accept-language", lang);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = match form {
        Some(f) => agent.run(
            req.header("content-type", "application/x-www-form-urlencoded")
                .body(f.as_bytes().to_vec())
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap();
    Got {
        status: resp.status().as_u16(),
        headers: resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: resp.into_body().read_to_string().unwrap(),
    }
}

/// The forms refuse what they cannot take, change nothing, and say why; signing out needs the
/// session's token from the page; the pages are HTML under a policy that runs no script.
pub(super) fn the_web_uis_forms_refuse_bad_input_and_need_the_pages_token(db: Db) {
    let s = start(db, Config::default());
    let sessions = || s.count("SELECT count(*) FROM sessions");
    let before = sessions();
    // Nothing filled in, fields missing, a field given twice: the form again, in the
    // browser's language, and no session.
    for (form, status) in [
        ("user=&password=&totp=", 422),
        ("user=dp-registrar", 422),
        ("user=a&user=b&password=x&totp=123456", 400),
    ] {
        let got = fetch(&s, "/ui/sign-in", None, "uk", Some(form));
        assert_eq!(got.status, status, "{form}: {}", got.body);
        assert!(
            got.body
                .contains("пароль і код, який показує ваш автентифікатор"),
            "{form}: {}",
            got.body
        );
        assert!(got.header("set-cookie").is_none(), "{form}");
    }
    assert_eq!(sessions(), before);
    // Signed in through the form: the session cookie, and to the list.
    let form = format!(
        "user=dp-analyst&password={}&totp={}",
        PASSWORD.replace(' ', "+"),
        s.code("dp-analyst")
    );
    let got = fetch(&s, "/ui/sign-in", None, "en", Some(&form));
    assert_eq!(got.status, 303, "{}", got.body);
    assert_eq!(got.header("location"), Some("/ui/persons"));
    let set = got.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let cookie = Some(cookie.as_str());
    assert_eq!(sessions(), before + 1);
    // The list, as HTML under a policy that runs no script and sends forms only here.
    let page = fetch(&s, "/ui/persons", cookie, "en", None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    // A name holding a character that shows nothing: refused, saying why, nothing searched.
    let refused = fetch(&s, "/ui/search?name=Kim%E2%80%8BChol", cookie, "en", None);
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("This cannot be searched for: "),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("id=\"hits\""), "{}", refused.body);
    // Signing out without the page's token, or with another: refused, still signed in.
    for form in ["", "csrf=0123"] {
        let got = fetch(&s, "/ui/sign-out", cookie, "en", Some(form));
        assert_eq!(got.status, 403, "{form}");
        assert!(
            got.body.contains("Sign out from a page of this session"),
            "{form}: {}",
            got.body
        );
        assert_eq!(sessions(), before + 1, "{form}");
    }
    let out = fetch(
        &s,
        "/ui/sign-out",
        cookie,
        "en",
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(out.status, 303);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "{:?}",
        out.headers
    );
    assert_eq!(sessions(), before);
    // A page asked for once signed out leads to the sign-in form, which says the session
    // ended; without a session cookie, to the form alone.
    let after = fetch(&s, "/ui/persons", cookie, "en", None);
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/ui/sign-in?ended=1"));
    let form = fetch(&s, "/ui/sign-in?ended=1", None, "ko", None);
    assert!(form.body.contains("세션이 종료되었습니다"), "{}", form.body);
    let never = fetch(&s, "/ui/deadlines", None, "en", None);
    assert_eq!(never.header("location"), Some("/ui/sign-in"));
    let form = fetch(&s, "/ui/sign-in", None, "en", None);
    assert!(!form.body.contains("id=\"problem\""), "{}", form.body);
}
