//! End-to-end tests of the `asylon` binary: each test makes its own registry in a temporary
//! directory and runs the real command, as an operator would. One test binary for the crate.

// A test may unwrap and index: a failure there is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use asylon_store::test_support::postgres_url as pg_url;
use asylon_store::test_support::{PgOnDisk, SmallDisk};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "common/timings.rs"]
mod timings;

const BIN: &str = env!("CARGO_BIN_EXE_asylon");

struct Reg {
    dir: tempfile::TempDir,
    /// A key file given with every command (a registry restored from another one's backup).
    key: Option<PathBuf>,
    /// The PostgreSQL schema holding the records, given with every command; None: SQLite.
    pg: Option<String>,
}

impl Reg {
    /// A fresh, initialised registry.
    fn new() -> Self {
        let r = Self::empty();
        r.ok(&["init"]);
        r
    }

    fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            key: None,
            // The whole suite runs a second time on PostgreSQL (scripts/test).
            pg: on_postgres().then(|| {
                pg_schema().expect("ASYLON_TEST_BACKEND=postgres needs a reachable PostgreSQL")
            }),
        }
    }

    /// An empty directory whose commands all use `key`.
    fn empty_with_key(key: PathBuf) -> Self {
        Self {
            key: Some(key),
            ..Self::empty()
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `backup --out OUT --keys-out KEYS`; what it printed.
    fn backup_to(&self, out: &Path, keys: &Path) -> String {
        let (o, k) = (out.to_str().unwrap(), keys.to_str().unwrap());
        self.ok(&["backup", "--out", o, "--keys-out", k])
    }

    /// `restore BACKUP --keys KEYS`; what it printed.
    fn restore_from(&self, backup: &Path, keys: &Path) -> String {
        let (b, k) = (backup.to_str().unwrap(), keys.to_str().unwrap());
        self.ok(&["restore", b, "--keys", k])
    }

    fn db(&self) -> PathBuf {
        self.data().join("registry.db")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir").arg(self.data());
        if let Some(k) = &self.key {
            c.arg("--key-file").arg(k);
        }
        if let Some(schema) = &self.pg {
            c.args(["--database", &pg_url(), "--db-schema", schema]);
        }
        c.args(args);
        c.env_remove("ASYLON_KEY_FILE")
            .env_remove("ASYLON_DATABASE_URL")
            .env_remove("ASYLON_DB_SCHEMA")
            .env("ASYLON_USER", "tester");
        c
    }

    /// Starts a command with its output piped back.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut c = self.cmd(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin);
        assert!(
            o.status.success(),
            "asylon {args:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its error output.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin);
        assert!(
            !o.status.success(),
            "asylon {args:?} should have failed but printed:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    /// A CSV of `count` synthetic captives (`asylon synth persons`) in the test's directory.
    fn synth(&self, name: &str, count: usize, seed: u64) -> PathBuf {
        let p = self.dir.path().join(name);
        self.ok(&[
            "synth",
            "persons",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            p.to_str().unwrap(),
        ]);
        p
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The first column of a query's rows, read from the key store itself: its SQLite file, or
    /// the PostgreSQL schema beside the registry's.
    fn keys_column<T>(&self, sql: &str) -> Vec<T>
    where
        T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
    {
        if let Some(schema) = &self.pg {
            let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
            c.batch_execute(&format!("SET search_path TO {schema}_keys"))
                .unwrap();
            return c
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        }
        let c = Connection::open(self.data().join("keys.db")).unwrap();
        let mut s = c.prepare(sql).unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A count read from the key store itself (see [`Reg::keys_column`]).
    fn keys_count(&self, sql: &str) -> i64 {
        self.keys_column(sql)[0]
    }

    /// Whether a search for the first name form on line `line` of a synthetic CSV finds the
    /// captive registered from it.
    fn found_by_name(&self, csv: &str, line: u64) -> bool {
        let row = csv.lines().nth(line as usize - 1).unwrap();
        let mut fields = row.split(',');
        let (external_id, names) = (fields.next().unwrap(), fields.next().unwrap());
        let name = names.split('|').next().unwrap();
        let case = self
            .persons_json()
            .into_iter()
            .find(|p| p["external_id"] == external_id)
            .unwrap()["case_no"]
            .clone();
        let hits: Vec<serde_json::Value> = serde_json::from_str(
            &self.ok(&["person", "search", name, "--limit", "100000", "--json"]),
        )
        .unwrap();
        hits.iter().any(|h| h["case_no"] == case)
    }

    fn event_count(&self) -> i64 {
        let cp: serde_json::Value =
            serde_json::from_str(&self.ok(&["ledger", "checkpoint"])).unwrap();
        cp["size"].as_i64().unwrap()
    }

    /// The event `case`'s particulars are read from, which a correction of them names (read
    /// with `person show --json`, itself a recorded read).
    fn particulars_seq(&self, case: &str) -> u64 {
        let shown: serde_json::Value =
            serde_json::from_str(&self.ok(&["person", "show", case, "--json"])).unwrap();
        shown["particulars_seq"].as_u64().unwrap()
    }

    /// How many captives `person list` gives, and their external ids (fewer, if one was
    /// registered twice).
    fn external_ids(&self) -> (usize, std::collections::HashSet<String>) {
        let persons = self.persons_json();
        let ids = persons
            .iter()
            .map(|p| p["external_id"].as_str().unwrap().to_string())
            .collect();
        (persons.len(), ids)
    }

    fn persons_json(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["person", "list", "--json"])).unwrap()
    }

    /// Runs SQL on the registry's database the way an attacker holding it would: the append-only
    /// triggers are only a guard against mistakes, so drop them first.
    fn tamper(&self, sql: &str) {
        self.tamper_on(sql, sql);
    }

    /// [`Reg::tamper`] with the statement each backend understands.
    fn tamper_on(&self, sqlite: &str, postgres: &str) {
        if let Some(schema) = &self.pg {
            let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "SET search_path TO {schema}; ALTER TABLE events DISABLE TRIGGER USER;"
            ))
            .unwrap();
            c.batch_execute(postgres).unwrap();
            return;
        }
        let c = Connection::open(self.db()).unwrap();
        c.execute_batch(
            "DROP TRIGGER IF EXISTS events_are_never_updated;
             DROP TRIGGER IF EXISTS events_are_never_deleted;",
        )
        .unwrap();
        c.execute_batch(sqlite).unwrap();
    }
}

fn person_json(ext: &str, name: &str) -> String {
    format!(
        r#"{{"external_id": "{ext}", "names": ["{name}"], "date_of_birth": "2001-04-12",
            "rank": "private", "service_number": "SN{ext}", "power": "KP",
            "captured_on": "2025-01-09", "captured_at": "Kursk region"}}"#
    )
}

/// Asserts that `text` (a command's output) holds each of `wants`.
fn contains_all(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "expected {want:?} in:\n{text}");
    }
}

fn csv(rows: &[&str]) -> String {
    let mut s = String::from(
        "external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at\n",
    );
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// A registry with `n` registered captives T-0001.. (events 2..=n+1).
fn with_captives(n: usize) -> Reg {
    with_captives_in(Reg::new(), n)
}

fn with_captives_in(r: Reg, n: usize) -> Reg {
    let rows: Vec<String> = (1..=n)
        .map(|i| {
            format!("T-{i:04},김철{i}|Kim Chol,2001-04-12,private,SN{i:05},KP,2025-01-09,Kursk")
        })
        .collect();
    // Names may not hold digits: build valid names from a fixed syllable table instead.
    let syl = ["철", "광", "명", "성", "혁", "일", "남", "영", "국", "수"];
    let rows: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let g = format!("{}{}", syl[i % 10], syl[(i / 10) % 10]);
            format!(
                "T-{:04},김{g},2001-04-12,private,SN{:05},KP,2025-01-09,Kursk",
                i + 1,
                i + 1
            )
        })
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let f = r.file("t.csv", &csv(&refs));
    r.ok(&["import", "persons", f.to_str().unwrap()]);
    r
}

// ---------------------------------------------------------------------------------------------
// Registration, display, listing

#[test]
fn a_registered_captive_is_shown_with_all_his_name_forms_and_partial_birth_date() {
    let r = Reg::new();
    let case = r.ok_in(
        &["person", "register", "-"],
        Some(
            r#"{"external_id": "UA-1", "names": ["리한검", {"family": "Ri", "given": "Han Gom", "system": "dprk"}, "Ри Хан Гём"],
                "date_of_birth": "2005", "rank": "private", "not_stated": ["service_number"],
                "power": "KP", "captured_on": "2025-01-09", "father_first_name": "Chol"}"#,
        ),
    );
    assert_eq!(case.trim(), "AS-000001");
    let shown = r.ok(&["person", "show", "AS-000001"]);
    for want in [
        "리한검 (Hang, native)",
        "Ri Han Gom (Latn, dprk)",
        "Ри Хан Гём (Cyrl, adhoc)",
        "2005",
        "Chol",
        "(not stated)",
    ] {
        assert!(shown.contains(want), "{want} missing from:\n{shown}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000001", "--json"])).unwrap();
    assert_eq!(json["identity"]["names"][1]["family"], "Ri");
    assert_eq!(json["status"], "registered");
    // The list carries only public facts.
    let list = r.ok(&["person", "list"]);
    assert!(
        list.contains("AS-000001") && !list.contains("리한검"),
        "{list}"
    );
    // Each show was recorded as a read of sealed classes, by whom.
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["event", "list", "--person", "AS-000001", "--json"])).unwrap();
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "person.sealed_read")
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[0]["actor"]["user"], "tester");
    assert_eq!(
        reads[0]["public"]["classes"],
        serde_json::json!(["identity", "family"])
    );
}

/// A captive under 18 at his capture is registered like any other, and whoever registers him is
/// told, with the law that protects him (or a date of birth to correct); his record shows his
/// age at capture.
#[test]
fn a_child_at_capture_is_registered_and_told_by_his_age() {
    let r = Reg::new();
    let particulars = |ext: &str, born: &str| {
        format!(
            r#"{{"external_id": "{ext}", "names": ["Kim Chol"], "date_of_birth": "{born}",
                "rank": "private", "not_stated": ["service_number"], "power": "KP",
                "captured_on": "2025-01-09"}}"#
        )
    };
    let o = r.run(
        &["person", "register", "-"],
        Some(&particulars("K-1", "2010-01-10")),
    );
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), "AS-000001\n");
    let told = String::from_utf8(o.stderr).unwrap();
    contains_all(
        &told,
        &[
            "note: AS-000001 was 14 at capture: under 15: a child",
            "77(2)",
            "77(5)",
        ],
    );
    let o = r.run(
        &["person", "register", "-"],
        Some(&particulars("K-2", "2007-01-09")),
    );
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");

    let file = r.data().with_extension("csv");
    std::fs::write(
        &file,
        csv(&[
            "K-3,Ri Su,2008,private,3,KP,2025-01-09,",
            "K-4,Pak Il,1990-01-01,private,4,KP,2025-01-09,",
            "K-5,Jo Un,2007-01,private,5,KP,2025-01-09,",
        ]),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for args in [
        &["import", "persons", path, "--check"][..],
        &["import", "persons", path],
    ] {
        let o = r.run(args, None);
        assert!(o.status.success(), "{o:?}");
        let told = String::from_utf8(o.stderr).unwrap();
        contains_all(
            &told,
            &[
                "note: 2 rows give captives who were under 18 at capture, or may have been:",
                "note: line 2 (K-3): 16 or 17 at capture, under 18\n",
                "note: line 4 (K-5): 17 or 18 at capture, maybe under 18 (his date of birth",
                "77(4)",
            ],
        );
        assert!(!told.contains("line 3"), "{told}");
    }
    let shown = r.ok(&["person", "show", "AS-000003"]);
    contains_all(&shown, &["age at capture  16 or 17; under 18: a child"]);
    let shown = r.ok(&["person", "show", "AS-000004"]);
    contains_all(&shown, &["age at capture  35\n"]);
    let json: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000001", "--json"])).unwrap();
    assert_eq!(
        json["age_at_capture"],
        serde_json::json!({"least": 14, "most": 14})
    );

    // A correction that makes him a child is told as a registration is.
    let mut particulars: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000002", "--particulars"])).unwrap();
    particulars["date_of_birth"] = "2009-06-01".into();
    let o = r.run(
        &[
            "person",
            "amend",
            "AS-000002",
            "-",
            "--reason",
            "his papers",
        ],
        Some(&particulars.to_string()),
    );
    assert!(o.status.success(), "{o:?}");
    let told = String::from_utf8(o.stderr).unwrap();
    contains_all(
        &told,
        &["note: AS-000002 was 15 at capture: under 18: a child"],
    );
}

#[test]
fn a_long_listing_read_in_part_ends_quietly() {
    let r = Reg::new();
    let file = r.synth("many.csv", 3000, 5);
    imported(&r, &file, &[]);
    // Each listing is far more than a pipe holds: the reader that stops early closes it while
    // the command is still writing. That is its reader's choice, not a failure.
    for args in [
        &["person", "list"][..],
        &["person", "list", "--json"],
        &["event", "list"],
        &["event", "list", "--json"],
        &["synth", "persons", "--count", "5000"],
    ] {
        let mut child = r
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 64];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn a_listing_read_slowly_holds_no_read_open() {
    if on_postgres() {
        return; // folds the SQLite WAL itself
    }
    let r = Reg::new();
    let file = r.synth("many.csv", 3000, 6);
    imported(&r, &file, &[]);
    // A reader that stops reading (a pager left open): the listing waits on a full pipe.
    let mut child = r
        .cmd(&["event", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Others write meanwhile, and the WAL can be folded back entirely: no snapshot is held.
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("W-1", "박봉주")),
    );
    let c = Connection::open(r.data().join("registry.db")).unwrap();
    let busy: i64 = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .unwrap();
    assert_eq!(busy, 0, "a read is held open by the listing");
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn init_refuses_to_overwrite_an_existing_registry() {
    let r = Reg::new();
    let before = std::fs::read(r.data().join("registry.key")).unwrap();
    let e = r.fails(&["init"], None);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(
        std::fs::read(r.data().join("registry.key")).unwrap(),
        before
    );
    let e = Reg::empty().fails(&["person", "list"], None);
    assert!(e.contains("asylon init"), "{e}");
    // A key store left behind is never mixed into a new registry.
    let leftover = Reg::empty();
    std::fs::create_dir_all(leftover.data()).unwrap();
    std::fs::write(leftover.data().join("keys.db"), b"").unwrap();
    let e = leftover.fails(&["init"], None);
    assert!(e.contains("already exists"), "{e}");
    // On PostgreSQL, a schema holding a registry is never given a second one, whatever data
    // directory (and key file) the new one would have.
    if let Some(schema) = &r.pg {
        let events = r.event_count();
        let elsewhere = Reg {
            dir: tempfile::tempdir().unwrap(),
            key: None,
            pg: Some(schema.clone()),
        };
        let e = elsewhere.fails(&["init"], None);
        assert!(e.contains("already exists"), "{e}");
        assert!(!elsewhere.data().join("registry.key").exists());
        assert_eq!(r.event_count(), events);
        r.ok(&["ledger", "verify"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error, and nothing written

#[test]
fn bad_particulars_are_refused_with_the_reason_and_nothing_is_written() {
    let r = Reg::new();
    let before = r.event_count();
    let cases: [(&str, &str); 8] = [
        ("{not json", "not valid JSON"),
        ("  \n", "standard input is empty"),
        (r#"["김철", "KP"]"#, "must be one JSON object"),
        (r#"{"names": ["김철"], "nmae": 1}"#, "unknown field"),
        (
            r#"{"names": ["김철"], "rank": "private", "service_number": "1", "power": "KP", "captured_on": "2025-01-09"}"#,
            "date_of_birth: is missing",
        ),
        (
            r#"{"names": ["김철"], "date_of_birth": "2999-01", "rank": "private", "service_number": "1", "power": "KP", "captured_on": "2025-01-09"}"#,
            "date_of_birth: 2999-01 is in the future",
        ),
        (
            r#"{"names": [], "date_of_birth": "2001", "rank": "private", "service_number": "1", "power": "KP", "captured_on": "2025-01-09"}"#,
            "names: at least one name form",
        ),
        (
            r#"{"names": ["김철"], "date_of_birth": "2001", "rank": "private", "service_number": "1", "power": "Korea", "captured_on": "2099-01-09"}"#,
            "captured_on: 2099-01-09 is in the future",
        ),
    ];
    for (input, want) in cases {
        let e = r.fails(&["person", "register", "-"], Some(input));
        assert!(e.contains(want), "for {input}: expected {want:?} in {e}");
    }
    let e = r.fails(&["record", "-"], Some(""));
    assert!(e.contains("give the command as one JSON object"), "{e}");
    assert_eq!(r.event_count(), before);
    r.ok(&["ledger", "verify"]);
}

#[test]
fn a_csv_with_any_bad_row_registers_nothing_and_names_every_bad_line() {
    let r = Reg::new();
    let before = r.event_count();
    let good = "A-1,김철|Kim Chol,2001-04-12,private,123,KP,2025-01-09,Kursk";
    let file = r.file(
        "bad.csv",
        &csv(&[
            good,
            // line 3: dates in the wrong columns
            "A-2,리명,2025-01-09,private,124,KP,2001-04-12,Kursk",
            good.replace("A-1", "A-3")
                .replace(",123,", ",128,")
                .as_str(),
            // line 5: the same external id as line 2
            "A-1,박성,2002,private,125,KP,2025-01-09,Kursk",
            // line 6: no name, a power that is not a code
            "A-6,,2002,private,126,North Korea,2025-01-09,Kursk",
            // line 7: a name with a digit, a date that does not exist
            "A-7,Kim1,2001-02-30,private,127,KP,2025-01-09,Kursk",
        ]),
    );
    let e = r.fails(&["import", "persons", file.to_str().unwrap()], None);
    contains_all(
        &e,
        &[
            "line 3: date_of_birth",
            "line 5: external_id: A-1 is already used on line 2",
            "line 6: names",
            "line 6: power",
            "line 7: names[0]",
            "line 7: date_of_birth",
            "4 of 6 rows are invalid; nothing was registered",
        ],
    );
    assert!(!e.contains("line 2:") && !e.contains("line 4:"), "{e}");
    assert_eq!(r.event_count(), before);

    for (content, want) in [
        (
            "external_id,names\nA,B\n",
            "column \"date_of_birth\" is missing",
        ),
        (
            "external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at,extra\n",
            "unknown column \"extra\"",
        ),
        (&csv(&[]), "no rows"),
        (&csv(&["A-1,김철,2001"]), "line 2: unreadable row"),
    ] {
        let f = r.file("h.csv", content);
        let e = r.fails(&["import", "persons", f.to_str().unwrap()], None);
        assert!(e.contains(want), "expected {want:?} in:\n{e}");
    }
    let e = r.fails(&["import", "persons", "/nonexistent.csv"], None);
    assert!(e.contains("cannot open"), "{e}");
    assert_eq!(r.event_count(), before);

    // A bad row after more than a batch of good ones: nothing is written, and no case number
    // is used up by the failed import.
    let mut rows: Vec<String> = (0..2_500)
        .map(|i| format!("B-{i},김철|Kim Chol,2001-04-12,private,{i},KP,2025-01-09,Kursk"))
        .collect();
    rows.push("B-bad,Kim1,2001,private,1,KP,2025-01-09,Kursk".into());
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let f = r.file("late.csv", &csv(&rows));
    let e = r.fails(&["import", "persons", f.to_str().unwrap()], None);
    assert!(e.contains("line 2502: names[0]"), "{e}");
    assert!(e.contains("1 of 2501 rows are invalid"), "{e}");
    assert_eq!(r.event_count(), before);
    assert!(
        r.ok(&["person", "list"])
            .lines()
            .all(|l| !l.contains("AS-"))
    );
    let case = r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("C-1", "박성")),
    );
    assert_eq!(
        case.trim(),
        "AS-000001",
        "no case number is lost to the failed import"
    );
}

#[test]
fn a_service_number_given_twice_for_one_power_registers_nothing_until_said_to_be_shared() {
    let r = Reg::new();
    let first = r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("A", "김철")),
    );
    let first = first.trim();
    let count = |r: &Reg| r.ok(&["person", "list"]).matches("AS-").count();
    // His number, written another way, for the same power: refused, naming him.
    let again = r#"{"external_id": "B", "names": ["Ri Han Gom"], "date_of_birth": "2002",
        "rank": "private", "service_number": "sn-a", "power": "KP", "captured_on": "2025-01-09"}"#;
    // Nothing of him is written; that the registrar was told who holds the number is, as a
    // name search is.
    let told = |before: i64, refused: &str, cases: &[&str]| {
        assert_eq!(r.event_count(), before + 1);
        assert_eq!(
            last_number_match(&r),
            serde_json::json!({"refused": refused, "results": cases}),
        );
        r.event_count()
    };
    let before = r.event_count();
    let e = r.fails(&["person", "register", "-"], Some(again));
    assert!(
        e.contains(&format!(
            "{first} depends on KP too and has the same service number"
        )) && e.contains("--shared-service-number"),
        "{e}"
    );
    let mut before = told(before, "registration", &[first]);

    let file = r.file(
        "numbers.csv",
        &csv(&[
            "C,Ri Han Gom,2001,private,SN-77,KP,2025-01-09,",
            // line 3: line 2's number
            "D,Pak Pong Ju,2001,private,sn 77,KP,2025-01-09,",
            // line 4: the registered captive's
            "E,Kim Il Nam,2001,private,SNA,KP,2025-01-09,",
            // the same number for another power
            "F,Ri Yong Su,2001,private,SNA,RU,2025-01-09,",
            // the registered captive himself, listed again: skipped, not a problem
            "A,김철,2001-04-12,private,SNA,KP,2025-01-09,Kursk region",
        ]),
    );
    let path = file.to_str().unwrap();
    for check in [&[][..], &["--check"]] {
        let e = r.fails(&[&["import", "persons", path][..], check].concat(), None);
        contains_all(
            &e,
            &[
                "line 3: service_number: line 2 gives the same one, for a captive who also depends on KP",
                &format!("line 4: service_number: {first} depends on KP too"),
                "--shared-service-number",
                "2 of 5 rows are invalid; nothing was registered",
            ],
        );
        // The registered captive listed again is skipped: his row giving line 4's number again
        // is no problem of the file (line 4 is told as his); nor is the row for another power.
        assert!(!e.contains("line 6:") && !e.contains("line 5:"), "{e}");
        // Told in the order of the file, though the registry is asked after the rows are read.
        let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("line ")).collect();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
        before = told(before, "import", &[first]);
    }
    // The report `--errors` writes has them in the order of the file too.
    let report = r.file("problems.csv", "");
    let report_path = report.to_str().unwrap();
    r.fails(&["import", "persons", path, "--errors", report_path], None);
    before = told(before, "import", &[first]);
    let written = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = written
        .lines()
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(lines, ["line", "3", "4"], "{written}");
    assert_eq!(count(&r), 1);
    // Registered again under his external id: told that he is, and as whom, before his
    // number is asked about (nothing is recorded, no case number taken).
    let e = r.fails(
        &["person", "register", "-"],
        Some(&person_json("A", "김철")),
    );
    assert!(
        e.contains("A is already registered as") && e.contains(first),
        "{e}"
    );
    assert_eq!(r.event_count(), before);

    // The registrar has checked: they are other men.
    let out = r.ok(&["import", "persons", path, "--shared-service-number"]);
    assert!(
        out.contains("4 registered, 1 already registered and skipped"),
        "{out}"
    );
    let out = r.ok_in(
        &["person", "register", "-", "--shared-service-number"],
        Some(again),
    );
    assert!(
        out.trim().starts_with("AS-") && out.trim() != first,
        "{out}"
    );
    assert_eq!(count(&r), 6);

    // A correction giving him a number another captive of his power holds: refused the same
    // way, writing nothing; his own number given again is no problem.
    let case = out.trim();
    let mut p: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", case, "--particulars"])).unwrap();
    let amend = |p: &serde_json::Value, more: &[&str]| {
        let file = r.file("p.json", &p.to_string());
        let path = file.to_str().unwrap().to_string();
        let mut args = vec!["person", "amend", case, &path, "--reason", "his papers"];
        args.extend(more);
        r.run(&args, None)
    };
    p["rank"] = "sergeant".into();
    let o = amend(&p, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut p: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", case, "--particulars"])).unwrap();
    p["service_number"] = "SN 77".into();
    let before = r.event_count();
    let o = amend(&p, &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("depends on KP too") && e.contains("AS-000002"),
        "{e}"
    );
    told(before, "correction", &["AS-000002"]);
    let o = amend(&p, &["--shared-service-number"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    r.ok(&["ledger", "verify"]);
}

/// A file imported again lists captives already registered, who are skipped: their rows are no
/// problem of the file's service numbers. A new row giving the number of a registered captive
/// listed before it is told as his, not as the skipped row's; two registered captives who share
/// a number (registered as two men) do not make the file invalid.
#[test]
fn a_registered_captive_listed_again_is_no_problem_of_the_files_service_numbers() {
    let r = Reg::new();
    let a = "A,김철,2001-04-12,private,SN-1,KP,2025-01-09,Kursk region";
    let b = "B,Ri Han Gom,2002,private,SN-2,KP,2025-01-09,";
    let b2 = "B2,Choe Su,2003,private,sn 2,KP,2025-01-09,";
    // Into a registry that holds nobody yet, a repeat is told as the file is read.
    let twice = r.file("twice.csv", &csv(&[a, b, b2]));
    let e = r.fails(&["import", "persons", twice.to_str().unwrap()], None);
    contains_all(
        &e,
        &[
            "line 4: service_number: line 3 gives the same one",
            "1 of 3 rows are invalid",
        ],
    );
    let first = r.file("first.csv", &csv(&[a, b]));
    r.ok(&["import", "persons", first.to_str().unwrap()]);
    let shared = r.file("shared.csv", &csv(&[b2]));
    let shared = shared.to_str().unwrap();
    r.ok(&["import", "persons", shared, "--shared-service-number"]);
    let mut events = r.event_count();

    // Told the same whether pass one reads the registry's external ids first (a file large
    // for the registry: its repeats are told as it is read) or looks the file's up (they are
    // told at its end): a file of fewer than 300 bytes against three registered, or more.
    let long_place = "a camp near the village of Pokrovka in the Kursk region taken over from \
                      another unit of the same army after a week of fighting";
    for place in ["", long_place] {
        let rows = [
            a.to_string(),
            // line 3: the number of the registered captive of line 2
            format!("C,Pak Pong Ju,2001,private,S-N-1,KP,2025-01-09,{place}"),
            format!("D,Kim Il Nam,2001,private,SN-9,KP,2025-01-09,{place}"),
            // line 5: line 4's
            format!("E,Ri Yong Su,2001,private,SN 9,KP,2025-01-09,{place}"),
        ];
        let text = csv(&rows.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(text.len() < 300, place.is_empty());
        let again = r.file("again.csv", &text);
        let e = r.fails(&["import", "persons", again.to_str().unwrap()], None);
        contains_all(
            &e,
            &[
                "line 3: service_number: AS-000001 depends on KP too and has the same service number",
                "line 5: service_number: line 4 gives the same one",
                "2 of 4 rows are invalid; nothing was registered",
            ],
        );
        assert!(
            !e.contains("line 2:") && !e.contains("line 3: service_number: line 2"),
            "{e}"
        );
        // Nothing written but the record that the registrar was told who holds the number.
        assert_eq!(r.event_count(), events + 1);
        events = r.event_count();
        assert_eq!(
            last_number_match(&r),
            serde_json::json!({"refused": "import", "results": ["AS-000001"]}),
        );
    }

    // B and B2 share a number, registered as two men: listed again, both are skipped.
    let both = r.file("both.csv", &csv(&[b, b2]));
    let out = r.ok(&["import", "persons", both.to_str().unwrap()]);
    assert!(
        out.contains("0 registered, 2 already registered and skipped"),
        "{out}"
    );
}

#[test]
fn a_service_number_registered_by_another_process_while_an_import_writes_stops_the_import_there() {
    another_process_gives_the_number_of_an_imported_row(false);
}

#[test]
fn a_service_number_given_by_another_processs_correction_while_an_import_writes_stops_it_there() {
    another_process_gives_the_number_of_an_imported_row(true);
}

/// An import of 20,000 rows, and once it has committed its first batch, another process giving
/// the last row's service number to a captive: registering him (`correcting` false), or
/// correcting the record of one registered before the import began, under another number.
fn another_process_gives_the_number_of_an_imported_row(correcting: bool) {
    let r = Reg::new();
    let file = r.synth("race.csv", 20_000, 11);
    let text = std::fs::read_to_string(&file).unwrap();
    // The last row: external id, its service number (fifth column) and power (sixth).
    let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    let (ext, number, power) = (last[0], last[4], last[5]);
    let particulars = |number: &str| {
        format!(
            r#"{{"external_id": "OTHER", "names": ["Ri Yong Ho"], "date_of_birth": "1990",
                "rank": "private", "service_number": "{number}", "power": "{power}",
                "captured_on": "2025-01-09"}}"#
        )
    };
    // The other process's command, and the captive it corrects (none when it registers one).
    let (command, corrected): (Vec<String>, _) = if correcting {
        let json = r.file("other.json", &particulars("NOT-IN-THE-FILE"));
        let case = r.ok(&["person", "register", json.to_str().unwrap()]);
        let case = case.trim().to_string();
        let mut record: serde_json::Value =
            serde_json::from_str(&r.ok(&["person", "show", &case, "--particulars"])).unwrap();
        record["service_number"] = number.into();
        let json = r.file("corrected.json", &record.to_string());
        let json = json.to_str().unwrap();
        let args = ["person", "amend", &case, json, "--reason", "his papers"];
        (args.map(String::from).to_vec(), Some(case))
    } else {
        let json = r.file("other.json", &particulars(number));
        let args = ["person", "register", json.to_str().unwrap()];
        (args.map(String::from).to_vec(), None)
    };
    let mut import = r.spawn(&["import", "persons", file.to_str().unwrap()]);
    // Once the import has committed its first batch (the registry was asked about the file's
    // numbers before that), another process gives a captive the last row's number.
    let mut out = std::io::BufReader::new(import.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert!(first.starts_with("committed through line 1001"), "{first}");
    // The import is held still meanwhile: on a busy machine its nineteen batches left were
    // once all written before the other process had started (seen in CI). Stopped while it
    // holds a lock the registration waits for, it is let run a few milliseconds at a time
    // until the registration is through.
    let pid = import.id().to_string();
    let signal = |sig: &str| {
        let sent = Command::new("kill").args([sig, pid.as_str()]).status();
        assert!(sent.unwrap().success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut registering = r.spawn(&args);
    while registering.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
        signal("-CONT");
        std::thread::sleep(std::time::Duration::from_millis(10));
        signal("-STOP");
    }
    signal("-CONT");
    let registered = registering.wait_with_output().unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let other = corrected.unwrap_or_else(|| {
        String::from_utf8(registered.stdout)
            .unwrap()
            .trim()
            .to_string()
    });
    let other = other.as_str();
    std::io::Read::read_to_string(&mut out, &mut first).unwrap();
    let done = import.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success(), "{first}");
    contains_all(
        &e,
        &[
            &format!("another writer registered or corrected {other} while this import ran"),
            &format!("the service number of {ext} (this file)"),
            "the import stopped: ",
            "--shared-service-number",
        ],
    );
    // One captive holds the number: the import's row is not registered, the rows of its
    // batches before are; the registrar was told who holds it, and that is recorded.
    let list = r.ok(&["person", "list"]);
    assert!(!list.contains(ext), "{ext} registered too");
    assert!(list.contains("SYN-11-0000000"));
    assert_eq!(
        last_number_match(&r),
        serde_json::json!({"refused": "import", "results": [other]})
    );
    r.ok(&["ledger", "verify"]);
}

/// The public part of the log's last event, which records that a registrar was told who holds
/// a service number he gave.
fn last_number_match(r: &Reg) -> serde_json::Value {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["event", "list", "--json"])).unwrap();
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "registry.service_number_matched", "{last}");
    last["public"].clone()
}

#[test]
fn files_from_spreadsheets_and_pipes_are_read_whole_and_rows_told_by_their_lines() {
    // Excel on Windows writes `\r\n` and a byte-order mark; old exports end lines with `\r`.
    // The reader counted neither ending as a line (rows were told a line early, or all on
    // line 1), so a user sent to fix a row went to the wrong one.
    let good = "E-1,김철|Kim Chol,2001-04-12,private,123,KP,2025-01-09,Kursk";
    let rows = [
        good,
        "",
        "E-2,Kim1,2001-04-12,private,124,KP,2025-01-09,Kursk",
        "E-3,\"Ri\nHan\",2001,private,125,KP,2025-01-09,Kursk",
        "E-1,박성,2002,private,126,KP,2025-01-09,Kursk",
    ];
    for (ending, name) in [("\r\n", "crlf"), ("\r", "cr"), ("\n", "lf")] {
        let r = Reg::new();
        let text = format!("\u{feff}{}", csv(&rows).replace('\n', ending));
        let e = r.fails(
            &["import", "persons", r.file(name, &text).to_str().unwrap()],
            None,
        );
        // line 2 good, 3 blank, 4 a digit in a name, 5-6 a name broken over two lines, 7
        // an external id already on line 2.
        for want in [
            "line 4: names[0]",
            "line 5: names[0]",
            "line 7: external_id: E-1 is already used on line 2",
            "3 of 4 rows are invalid",
        ] {
            assert!(e.contains(want), "{name}: expected {want:?} in:\n{e}");
        }
        assert_eq!(r.event_count(), 1, "{name}");
        let fixed = format!(
            "\u{feff}{}",
            csv(&[
                good,
                "",
                &good.replace("E-1", "E-2").replace(",123,", ",124,")
            ])
            .replace('\n', ending)
        );
        let out = r.ok(&["import", "persons", r.file(name, &fixed).to_str().unwrap()]);
        assert!(
            out.contains("committed through line 4: 2 registered"),
            "{name}: {out}"
        );
    }
    // Excel where the comma is the decimal mark (Ukraine, Russia, much of Europe) separates
    // "CSV" fields with semicolons, and a spreadsheet may capitalise the header.
    let r = Reg::new();
    let header =
        "External_ID;Names;Date_of_birth;Rank;Service_number;Power;Captured_on;Captured_at";
    let semi = r.file(
        "semi.csv",
        &format!(
            "{header}\r\nS-1;Kim Chol|김철;2001;private;;KP;2025-01-09;\"Kursk; near Sudzha\"\r\n"
        ),
    );
    let out = r.ok(&["import", "persons", semi.to_str().unwrap()]);
    assert!(out.contains("1 registered"), "{out}");
    let shown: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000001", "--json"])).unwrap();
    assert_eq!(shown["external_id"], "S-1");
    assert_eq!(shown["captured_at"], "Kursk; near Sudzha");
    assert_eq!(shown["identity"]["names"][1]["family"], "김");
    // The header is looked at without reading the file twice: a pipe serves as well.
    let piped = format!("{header}\r\nS-2;Pak Ung;2001;private;;KP;2025-01-09;\r\n");
    let out = r.ok_in(&["import", "persons", "/dev/stdin"], Some(&piped));
    assert!(out.contains("1 registered"), "{out}");
    assert_eq!(r.persons_json().len(), 2);
    // Nor is it read twice for rows past those kept: it gives them once. (They were read
    // again from the emptied pipe, found missing, and left out while the import said it was
    // done.)
    let rows: Vec<String> = (0..25)
        .map(|i| format!("P-{i},Kim Chol,2001,private,,KP,2025-01-09,"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let out = r.ok_in(
        &["import", "persons", "/dev/stdin", "--keep-rows", "10"],
        Some(&csv(&rows)),
    );
    assert!(out.contains("25 registered"), "{out}");
    assert_eq!(r.persons_json().len(), 27);
    // A separator too many at the end of the header is named, not an "unknown column \"\"".
    let trailing = r.file("t.csv", &csv(&[]).replace('\n', ",\n"));
    let e = r.fails(&["import", "persons", trailing.to_str().unwrap()], None);
    assert!(
        e.contains("line 1: column 9 of the header has no name"),
        "{e}"
    );
    // Blank lines before the header are skipped: the header tells the separator and is told
    // on its own line.
    let late = r.file(
        "late.csv",
        &format!(
            "\r\n\r\n{}",
            csv(&[]).replace("rank", "rang").replace(',', ";")
        ),
    );
    let e = r.fails(&["import", "persons", late.to_str().unwrap()], None);
    assert!(e.contains("line 3: unknown column \"rang\""), "{e}");
    // Excel's "Unicode Text", the one way older versions save Hangul and Cyrillic together:
    // UTF-16 with a byte-order mark, tabs, `\r\n`. Bad rows are told by their lines; rows past
    // those kept are read and decoded again.
    let unicode_text = |rows: &[&str]| -> Vec<u8> {
        let text = csv(rows).replace(',', "\t").replace('\n', "\r\n");
        [0xfeff_u16]
            .into_iter()
            .chain(text.encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect()
    };
    let u16file = r.dir.path().join("unicode.txt");
    let u16arg = u16file.to_str().unwrap();
    let bad = [
        "U-0,리한검|Ли Хан Гом,2001,private,,KP,2025-01-09,",
        "U-1,Kim1,2001,private,,KP,2025-01-09,",
    ];
    std::fs::write(&u16file, unicode_text(&bad)).unwrap();
    let e = r.fails(&["import", "persons", u16arg], None);
    assert!(
        e.contains("line 3: names[0]") && e.contains("1 of 2 rows"),
        "{e}"
    );
    let rows: Vec<String> = (0..12)
        .map(|i| format!("U-{i},리한검|Ли Хан Гом,2001,private,,KP,2025-01-09,Курськ"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    std::fs::write(&u16file, unicode_text(&rows)).unwrap();
    let out = r.ok(&["import", "persons", u16arg, "--keep-rows", "5"]);
    assert!(
        out.contains("committed through line 13: 12 registered"),
        "{out}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000039", "--json"])).unwrap();
    assert_eq!(shown["external_id"], "U-11");
    assert_eq!(shown["captured_at"], "Курськ");
    assert_eq!(shown["identity"]["names"][1]["given"], "Хан Гом");

    // Excel's plain "CSV" is written in the code page of the Windows it runs on: euc-kr in
    // Korean, windows-1251 in Russian or Ukrainian. Unnamed, such a file is refused saying how
    // to name it, and nothing is registered; named, its names are read as written.
    let in_code_page = |name: &str, encoding: &'static encoding_rs::Encoding, rows: &[&str]| {
        let file = r.dir.path().join(name);
        let text = csv(rows).replace('\n', "\r\n");
        std::fs::write(&file, encoding.encode(&text).0).unwrap();
        file
    };
    let korean = in_code_page(
        "korean.csv",
        encoding_rs::EUC_KR,
        &[
            "K-1,리한검,2001,private,,KP,2025-01-09,",
            "K-2,박봉주,2001,private,,KP,2025-01-09,",
        ],
    );
    let k = korean.to_str().unwrap();
    let before = r.persons_json().len();
    let e = r.fails(&["import", "persons", k], None);
    assert!(
        e.contains("line 2: unreadable row: column \"names\" is not UTF-8 text")
            && e.contains("with --encoding;")
            && !e.contains("match")
            && e.contains("2 of 2 rows are invalid"),
        "{e}"
    );
    assert_eq!(r.persons_json().len(), before);
    // Past the rows kept, read and decoded again.
    let out = r.ok(&[
        "import",
        "persons",
        k,
        "--encoding",
        "euc-kr",
        "--keep-rows",
        "1",
    ]);
    assert!(out.contains("2 registered"), "{out}");
    let shown: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000040", "--json"])).unwrap();
    assert_eq!(shown["external_id"], "K-1");
    assert_eq!(shown["identity"]["names"][0]["given"], "한검");
    let cyrillic = in_code_page(
        "russian.csv",
        encoding_rs::WINDOWS_1251,
        &["R-1,Пак Пон Чжу,2001,рядовой,,KP,2025-01-09,Суджа"],
    );
    let c = cyrillic.to_str().unwrap();
    r.ok(&["import", "persons", c, "--encoding", "windows-1251"]);
    let shown: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000042", "--json"])).unwrap();
    assert_eq!(
        (&shown["identity"]["rank"], &shown["captured_at"]),
        (&"рядовой".into(), &"Суджа".into())
    );
    // A UTF-8 file named windows-1251 would be read as other letters: refused, nothing written.
    let utf8 = r.file("utf8.csv", &csv(&["R-2,Пак Пон Чжу,2001,,,KP,2025-01-09,"]));
    let refused_as = |file: &Path, label: &str| {
        let args = [
            "import",
            "persons",
            file.to_str().unwrap(),
            "--encoding",
            label,
        ];
        r.fails(&args, None)
    };
    let e = refused_as(&utf8, "cp1251");
    assert!(e.contains("reads as UTF-8 text, not windows-1251"), "{e}");
    let e = refused_as(&cyrillic, "latin-42");
    assert!(e.contains("latin-42 is no encoding known here"), "{e}");
    // Bytes that are no euc-kr character: told at their row, and that nothing past it was read.
    let mut broken = encoding_rs::EUC_KR
        .encode(&csv(&["K-8,리한검,2001,private,,KP,2025-01-09,"]))
        .0
        .into_owned();
    broken.extend_from_slice(
        b"K-9,\xff\xfe,2001,private,,KP,2025-01-09,\nK-10,x,2001,,,KP,2025-01-09,\n",
    );
    let bad = r.dir.path().join("broken.csv");
    std::fs::write(&bad, broken).unwrap();
    let e = refused_as(&bad, "euc-kr");
    assert!(
        e.contains("line 3: unreadable row: the file is not EUC-KR text")
            && e.contains("1 of 2 rows are invalid (the file could not be read past line 3"),
        "{e}"
    );
    assert_eq!(r.persons_json().len(), 42);

    // The lists `match` reads: the same.
    let r = Reg::new();
    let left = r.file("l.csv", "id,name\r\nL1,리한검\r\n\r\nL1,Kim\r\n");
    let right = r.file("r.csv", "id,name\nR1,Ri Han Gom\n");
    let e = r.fails(
        &["match", left.to_str().unwrap(), right.to_str().unwrap()],
        None,
    );
    assert!(e.contains("line 4: id L1 is already used on line 2"), "{e}");
    let left = r.file("l.csv", "\u{feff}ID;Name\r\nL1;리한검\r\n");
    let out = r.ok(&["match", left.to_str().unwrap(), right.to_str().unwrap()]);
    assert!(out.contains("L1,R1,"), "{out}");
    // Each list in its own encoding.
    let right = r.dir.path().join("r1251.csv");
    let text = encoding_rs::WINDOWS_1251
        .encode("id,name\r\nR7,Ли Хан Гом\r\n")
        .0;
    std::fs::write(&right, text).unwrap();
    let (l, rr) = (left.to_str().unwrap(), right.to_str().unwrap());
    let e = r.fails(&["match", l, rr], None);
    assert!(
        e.contains("line 2: unreadable row") && e.contains("with --right-encoding;"),
        "{e}"
    );
    let e = r.fails(&["match", l, rr, "--left-encoding", "cp1251"], None);
    assert!(
        e.contains("not windows-1251 text; leave out --left-encoding"),
        "{e}"
    );
    let out = r.ok(&["match", l, rr, "--right-encoding", "windows-1251"]);
    assert!(out.contains("L1,R7,"), "{out}");

    // Windows editors also start UTF-8 JSON with a byte-order mark, which JSON parsers refuse
    // ("expected value at line 1 column 1").
    let json = r.file(
        "p.json",
        &format!(
            "\u{feff}{}",
            person_json("W-1", "Kim Chol").replace('\n', "\r\n")
        ),
    );
    assert_eq!(
        r.ok(&["person", "register", json.to_str().unwrap()]).trim(),
        "AS-000001"
    );
    let cp = r.file(
        "cp.json",
        &format!("\u{feff}{}", r.ok(&["ledger", "checkpoint"])),
    );
    let out = r.ok(&["ledger", "verify", "--checkpoint", cp.to_str().unwrap()]);
    assert!(out.contains("extends the checkpoint"), "{out}");
}

#[test]
fn columns_may_come_in_any_order_and_empty_art_17_cells_are_recorded_refusals() {
    let r = Reg::new();
    let f = r.file(
        "o.csv",
        "names,external_id,power,captured_on,captured_at,rank,service_number,date_of_birth\n\
         리한검|Ли Хан Гом,B-1,KP,2025-01-09,Kursk,,,\n",
    );
    r.ok(&["import", "persons", f.to_str().unwrap()]);
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["event", "list", "--json"])).unwrap();
    let reg = events
        .iter()
        .find(|e| e["kind"] == "person.registered")
        .unwrap();
    assert_eq!(
        reg["public"]["not_stated"],
        serde_json::json!(["date_of_birth", "rank", "service_number"])
    );
}

#[test]
fn optional_columns_bring_art_122_particulars_sealed_with_the_rest() {
    let r = Reg::new();
    let f = r.file(
        "family.csv",
        "external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at,\
         Father_First_Name,place_of_birth,home_address\n\
         F-1,리한검,2001,private,,KP,2025-01-09,Kursk,한철,Hoeryong,\"Hoeryong, North Hamgyong\"\n\
         F-2,박봉주,2001,private,,KP,2025-01-09,Kursk,,,\n",
    );
    r.ok(&["import", "persons", f.to_str().unwrap()]);
    let shown = |case: &str| -> serde_json::Value {
        serde_json::from_str(&r.ok(&["person", "show", case, "--json"])).unwrap()
    };
    let first = shown("AS-000001");
    assert_eq!(first["identity"]["place_of_birth"], "Hoeryong");
    assert_eq!(first["family"]["father_first_name"], "한철");
    assert_eq!(first["family"]["home_address"], "Hoeryong, North Hamgyong");
    // Empty cells: nothing to seal in a family class.
    let second = shown("AS-000002");
    assert!(second["family"].is_null(), "{second}");
    assert!(second["identity"]["place_of_birth"].is_null(), "{second}");
    // Imported again with F-2's particulars filled in: he is skipped, and told that what the
    // file adds was not added; without optional columns nothing is said of them.
    let again = r.file(
        "again.csv",
        "external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at,\
         father_first_name\n\
         F-2,박봉주,2001,private,,KP,2025-01-09,Kursk,박철\n",
    );
    let (out, _) = imported(&r, &again, &[]);
    assert!(
        out.contains("0 registered, 1 already registered and skipped")
            && out.contains("note: the father_first_name of the captives skipped were neither")
            && out.contains("person amend"),
        "{out}"
    );
    assert!(shown("AS-000002")["family"].is_null());
    let plain = r.file(
        "plain.csv",
        &csv(&["F-2,박봉주,2001,private,,KP,2025-01-09,Kursk"]),
    );
    let (out, _) = imported(&r, &plain, &[]);
    assert!(!out.contains("note:"), "{out}");
    // Its values are validated like the JSON's; a column it does not know is named with
    // those it does.
    let bad = r.file(
        "bad.csv",
        "external_id,names,date_of_birth,rank,service_number,power,captured_on,captured_at,unit\n\
         F-3,정대현,2001,private,,KP,2025-01-09,Kursk,\"a\u{7}b\"\n",
    );
    let e = r.fails(&["import", "persons", bad.to_str().unwrap()], None);
    assert!(e.contains("line 2: unit"), "{e}");
    let odd = r.file(
        "odd.csv",
        &csv(&[]).replace("captured_at", "captured_at,father"),
    );
    let e = r.fails(&["import", "persons", odd.to_str().unwrap()], None);
    assert!(
        e.contains("unknown column \"father\"") && e.contains("may add place_of_birth,unit"),
        "{e}"
    );
    assert_eq!(r.persons_json().len(), 2);
}

#[test]
fn a_case_counter_with_no_room_left_is_refused_and_nothing_is_written() {
    let r = Reg::new();
    let file = r.synth("two.csv", 2, 3);
    // A counter at the largest number the blind index can hold leaves no room, and one at the
    // largest it can store must not wrap around.
    r.tamper_on(
        "UPDATE meta SET value = X'7FFFFFFFFFFFFFFF' WHERE key = 'next_case'",
        "UPDATE meta SET value = '\\x7fffffffffffffff'::bytea WHERE key = 'next_case'",
    );
    let events = r.event_count();
    let err = r.fails(&["import", "persons", file.to_str().unwrap()], None);
    assert!(
        err.contains("case number counter (9223372036854775807) leaves no room for 2 more"),
        "{err}"
    );
    r.tamper_on(
        "UPDATE meta SET value = X'FFFFFFFFFFFFFFFF' WHERE key = 'next_case'",
        "UPDATE meta SET value = '\\xffffffffffffffff'::bytea WHERE key = 'next_case'",
    );
    let err = r.fails(
        &["person", "register", "-"],
        Some(&person_json("K1", "Kim Chol")),
    );
    assert!(err.contains("leaves no room for 1 more"), "{err}");
    assert!(r.persons_json().is_empty());
    assert_eq!(r.event_count(), events);
}

#[test]
fn a_wrong_or_unreadable_key_is_refused_before_anything_is_written() {
    let r = with_captives(2);
    let before = r.event_count();
    let other = Reg::new();
    let other_key = other.data().join("registry.key");
    let e = r.fails(
        &[
            "--key-file",
            other_key.to_str().unwrap(),
            "person",
            "show",
            "AS-000001",
        ],
        None,
    );
    assert!(e.contains("does not open this registry"), "{e}");
    let garbage = r.file("garbage.key", "hello");
    let e = r.fails(
        &["--key-file", garbage.to_str().unwrap(), "person", "list"],
        None,
    );
    assert!(e.contains("not an Asylon key file"), "{e}");
    let e = r.fails(&["--key-file", "/nonexistent/key", "person", "list"], None);
    assert!(e.contains("cannot read key file"), "{e}");
    assert_eq!(r.event_count(), before);
}

#[test]
fn a_passphrase_registry_opens_only_with_the_passphrase() {
    let r = Reg::empty();
    let run = |pass: &str, args: &[&str]| {
        let mut c = r.cmd(args);
        c.env("PASS", pass).output().unwrap()
    };
    let o = run("short", &["--passphrase-env", "PASS", "init"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("shorter than 12"));
    assert!(
        !r.data().exists(),
        "a refused init left its directory behind"
    );
    let o = run(
        "correct horse battery",
        &["--passphrase-env", "PASS", "init"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!r.data().join("registry.key").exists());
    let o = run(
        "correct horse battery",
        &["--passphrase-env", "PASS", "person", "list"],
    );
    assert!(o.status.success());
    let o = run(
        "correct horse batterz",
        &["--passphrase-env", "PASS", "person", "list"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong key file or wrong passphrase"));
    let o = run("x", &["person", "list"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --passphrase-env"));
    let o = r
        .cmd(&["--passphrase-env", "UNSET_VAR_X", "person", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("UNSET_VAR_X"));
}

// ---------------------------------------------------------------------------------------------
// Tampering with the database file

fn verify_fails_at(r: &Reg, seq: u64) -> String {
    let e = r.fails(&["ledger", "verify"], None);
    assert!(
        e.contains(&format!("at event {seq}:")),
        "expected event {seq} named in:\n{e}"
    );
    e
}

#[test]
fn a_changed_byte_in_an_event_is_found_and_named() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let r = with_captives(8);
    r.ok(&["ledger", "verify"]);
    // Edit the file itself, not through SQL: find T-0005's public payload and change one byte.
    let mut bytes = std::fs::read(r.db()).unwrap();
    let needle = b"\"external_id\":\"T-0005\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("payload on disk");
    bytes[at + needle.len() - 2] = b'9';
    std::fs::write(r.db(), &bytes).unwrap();
    // T-0005 is the fifth registration, after the registry.created event: event 6.
    let e = verify_fails_at(&r, 6);
    assert!(e.contains("does not match its MAC"), "{e}");
}

#[test]
fn a_flipped_bit_in_a_sealed_payload_is_found_and_named() {
    let r = with_captives(4);
    // Byte 21 lies in the nonce, random: change it to a value it cannot already have.
    r.tamper_on(
        "UPDATE events SET sealed = substr(sealed, 1, 20)
           || CASE WHEN substr(sealed, 21, 1) = X'00' THEN X'01' ELSE X'00' END
           || substr(sealed, 22) WHERE seq = 3",
        "UPDATE events SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE seq = 3",
    );
    verify_fails_at(&r, 3);
}

#[test]
fn a_deleted_event_is_found_and_named() {
    let r = with_captives(6);
    r.tamper("DELETE FROM events WHERE seq = 4");
    let e = verify_fails_at(&r, 4);
    assert!(e.contains("event 4 is missing"), "{e}");
}

#[test]
fn events_removed_from_the_end_are_found() {
    let r = with_captives(6);
    r.tamper("DELETE FROM events WHERE seq >= 6");
    let e = verify_fails_at(&r, 6);
    assert!(e.contains("missing from the end"), "{e}");
}

#[test]
fn two_swapped_events_are_found_and_the_first_named() {
    let r = with_captives(6);
    r.tamper(
        "UPDATE events SET seq = -1 WHERE seq = 3;
         UPDATE events SET seq = 3 WHERE seq = 4;
         UPDATE events SET seq = 4 WHERE seq = -1;",
    );
    verify_fails_at(&r, 3);
}

#[test]
fn an_inserted_event_is_found_and_named() {
    let r = with_captives(6);
    // Make room at 4 and put a copy of event 3 (with its own valid MAC) there.
    r.tamper(
        "UPDATE events SET seq = seq + 1000 WHERE seq >= 4;
         UPDATE events SET seq = seq - 999 WHERE seq >= 1004;
         INSERT INTO events SELECT 4, id, at, actor_user, actor_org, person, kind, public, sealed, mac
           FROM events WHERE seq = 3;",
    );
    verify_fails_at(&r, 4);
    // Appended at the end, it is found as well.
    let r = with_captives(3);
    r.tamper(
        "INSERT INTO events SELECT 5, id, at, actor_user, actor_org, person, kind, public, sealed, mac
           FROM events WHERE seq = 4;",
    );
    verify_fails_at(&r, 5);
}

#[test]
fn an_altered_projection_is_found_and_rebuild_restores_it_naming_each_row_it_corrected() {
    let r = with_captives(5);
    let clean =
        "rebuilt the projection from the events: 5 captives, each row already as they make it";
    assert!(r.ok(&["rebuild"]).contains(clean));
    r.tamper("UPDATE persons SET status = 'erased' WHERE case_no = 'AS-000002'");
    let e = r.fails(&["ledger", "verify"], None);
    assert!(e.contains("projection of AS-000002 differs"), "{e}");
    // A row altered, one taken away and one added for nobody the events register.
    r.tamper(
        "DELETE FROM persons WHERE case_no = 'AS-000004';
         INSERT INTO persons SELECT 'AS-000099', NULL, power, captured_on, captured_at, status,
           registered_seq, last_seq FROM persons WHERE case_no = 'AS-000001';",
    );
    let out = r.ok(&["rebuild"]);
    assert!(
        out.contains(
            "rebuilt the projection from the events: 5 captives; rows not as the events make \
             them: AS-000002 differed, corrected; AS-000004 missing, written; AS-000099 \
             registered by no event, removed"
        ),
        "{out}"
    );
    r.ok(&["ledger", "verify"]);
    let persons = r.persons_json();
    let cases: Vec<&str> = persons
        .iter()
        .map(|p| p["case_no"].as_str().unwrap())
        .collect();
    assert_eq!(
        cases,
        [
            "AS-000001",
            "AS-000002",
            "AS-000003",
            "AS-000004",
            "AS-000005"
        ]
    );
    assert_eq!(persons[1]["status"], "registered");
    // Put right, there is nothing left to correct.
    assert!(r.ok(&["rebuild"]).contains(clean));
    // A row under a key no case number has is in no listing, but verify counts it, and
    // rebuild removes it.
    r.tamper(
        "INSERT INTO persons SELECT 'X-1', NULL, power, captured_on, captured_at, status,
           registered_seq, last_seq FROM persons WHERE case_no = 'AS-000001'",
    );
    let e = r.fails(&["ledger", "verify"], None);
    assert!(
        e.contains("the projection holds 6 persons but the events register 5"),
        "{e}"
    );
    let out = r.ok(&["rebuild"]);
    assert!(
        out.contains("rows not as the events make them: X-1 registered by no event, removed"),
        "{out}"
    );
    r.ok(&["ledger", "verify"]);
}

#[test]
fn the_append_only_guard_refuses_updates_through_sql() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let r = with_captives(2);
    let c = Connection::open(r.db()).unwrap();
    let e = c
        .execute("UPDATE events SET kind = 'x' WHERE seq = 2", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(c.execute("DELETE FROM events WHERE seq = 2", []).is_err());
}

// ---------------------------------------------------------------------------------------------
// Checkpoints and proofs

#[test]
fn the_log_extends_an_earlier_checkpoint_and_a_forged_or_foreign_one_is_refused() {
    let r = with_captives(5);
    let cp = r.ok(&["ledger", "checkpoint"]);
    let cp_file = r.file("cp.json", &cp);
    let cp_json: serde_json::Value = serde_json::from_str(&cp).unwrap();
    assert_eq!(cp_json["size"], 6);
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("N-1", "박성")),
    );
    let out = r.ok(&[
        "ledger",
        "verify",
        "--checkpoint",
        cp_file.to_str().unwrap(),
    ]);
    assert!(out.contains("extends the checkpoint of size 6"), "{out}");

    // Altered size: the signature no longer matches.
    let mut forged = cp_json.clone();
    forged["size"] = serde_json::json!(5);
    let f = r.file("forged.json", &forged.to_string());
    let e = r.fails(
        &["ledger", "verify", "--checkpoint", f.to_str().unwrap()],
        None,
    );
    assert!(e.contains("signature does not verify"), "{e}");

    // A checkpoint of another registry.
    let other = with_captives(5);
    let f = r.file("other.json", &other.ok(&["ledger", "checkpoint"]));
    let e = r.fails(
        &["ledger", "verify", "--checkpoint", f.to_str().unwrap()],
        None,
    );
    assert!(e.contains("not this one"), "{e}");

    // Not a checkpoint at all.
    let f = r.file("junk.json", "{\"size\": 1}");
    let e = r.fails(
        &["ledger", "verify", "--checkpoint", f.to_str().unwrap()],
        None,
    );
    assert!(e.contains("not checkpoint JSON"), "{e}");
}

#[test]
fn a_rewritten_history_does_not_extend_the_checkpoint_taken_before() {
    if on_postgres() {
        return; // forks the registry by copying its files
    }
    // Whoever holds the key can build a second history and MAC it; verify alone cannot tell
    // which is real, but a checkpoint of one is refused by the other.
    let r = with_captives(5);
    let f = r.file("cp.json", &r.ok(&["ledger", "checkpoint"]));
    // Same origin and key make a fair fork: copy the registry, then let both diverge.
    let fork = Reg::empty();
    copy_dir(&r.data(), &fork.data());
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("N-1", "박성")),
    );
    r.ok(&["ledger", "verify", "--checkpoint", f.to_str().unwrap()]);
    // The fork has a different history for the same size: a checkpoint of it is refused by r.
    fork.ok_in(
        &["person", "register", "-"],
        Some(&person_json("N-2", "최일")),
    );
    let fork_cp = r.file("fork.json", &fork.ok(&["ledger", "checkpoint"]));
    let e = r.fails(
        &[
            "ledger",
            "verify",
            "--checkpoint",
            fork_cp.to_str().unwrap(),
        ],
        None,
    );
    assert!(e.contains("does not extend the checkpoint"), "{e}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// `asylon ledger check CHECKPOINT ARGS` as a party holding only files runs it: no data
/// directory, no key, no database; its output, or its error if it fails.
fn check_offline(dir: &Path, checkpoint: &Path, more: &[&str]) -> Result<String, String> {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(["ledger", "check"])
        .arg(checkpoint)
        .args(more);
    for var in ["ASYLON_DATA_DIR", "ASYLON_KEY_FILE", "ASYLON_DATABASE_URL"] {
        c.env_remove(var);
    }
    let o = c.output().unwrap();
    match o.status.success() {
        true => Ok(String::from_utf8(o.stdout).unwrap()),
        false => Err(String::from_utf8(o.stderr).unwrap()),
    }
}

#[test]
fn a_party_holding_checkpoints_checks_proofs_and_finds_a_fork_without_the_registry() {
    let r = with_captives(3);
    let dir = r.dir.path();
    let cp1 = r.file("cp1.json", &r.ok(&["ledger", "checkpoint"]));
    let (b, k) = (dir.join("fork.backup"), dir.join("fork.keys"));
    r.backup_to(&b, &k);
    let more = r.synth("more.csv", 2, 5);
    r.ok(&["import", "persons", more.to_str().unwrap()]);
    let cp2 = r.file("cp2.json", &r.ok(&["ledger", "checkpoint"]));
    // The log grows after the checkpoint; proofs are asked for at its size.
    r.ok(&["person", "show", "AS-000001"]);
    let (c1, c2) = (cp1.to_str().unwrap(), cp2.to_str().unwrap());
    let cons = r.file(
        "cons.json",
        &r.ok(&["ledger", "consistency", "--from", c1, "--to", c2]),
    );
    let inc = r.file(
        "inc.json",
        &r.ok(&["ledger", "prove", "AS-000002", "--checkpoint", c2]),
    );
    let key_id = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&cp2).unwrap())
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();

    // `checkpoint` checked against `earlier` with the consistency proof in `proof`.
    let extends = |checkpoint: &Path, earlier: &str, proof: &Path| {
        let more = ["--extends", earlier, "--proof", proof.to_str().unwrap()];
        check_offline(dir, checkpoint, &more)
    };
    let out = extends(&cp2, c1, &cons).unwrap();
    assert!(
        out.contains("ok: the log of 6 events extends the earlier checkpoint of 4 events"),
        "{out}"
    );
    let inc_arg = ["--inclusion", inc.to_str().unwrap(), "--key-id", &key_id];
    let out = check_offline(dir, &cp2, &inc_arg).unwrap();
    assert!(out.contains("ok: event 3 (leaf hash"), "{out}");

    // Each of these is refused, saying why.
    let flipped = {
        let text = std::fs::read_to_string(&cons).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let h = v["path"][0].as_str().unwrap().to_string();
        let first = if h.starts_with('0') { "1" } else { "0" };
        v["path"][0] = serde_json::json!(format!("{first}{}", &h[1..]));
        r.file("flipped.json", &v.to_string())
    };
    let e = extends(&cp2, c1, &flipped).unwrap_err();
    assert!(
        e.contains("does not extend the earlier checkpoint of 4"),
        "{e}"
    );
    let e = check_offline(dir, &cp1, &inc_arg).unwrap_err();
    assert!(e.contains("ask for it at the checkpoint's size (4)"), "{e}");
    let altered = r.file(
        "altered.json",
        &std::fs::read_to_string(&cp2)
            .unwrap()
            .replace("\"size\": 6", "\"size\": 5"),
    );
    let e = check_offline(dir, &altered, &[]).unwrap_err();
    assert!(e.contains("its signature does not verify"), "{e}");
    let e = check_offline(dir, &cp2, &["--key-id", "0011223344556677"]).unwrap_err();
    assert!(e.contains("not by 0011223344556677"), "{e}");
    let other = Reg::new();
    let cpx = r.file("cpx.json", &other.ok(&["ledger", "checkpoint"]));
    let e = extends(&cp2, cpx.to_str().unwrap(), &cons).unwrap_err();
    assert!(e.contains("they are not one log"), "{e}");
    let renamed = r.file(
        "renamed.json",
        &std::fs::read_to_string(&inc)
            .unwrap()
            .replace("\"seq\": 3", "\"seq\": 5"),
    );
    let more = ["--inclusion", renamed.to_str().unwrap()];
    let e = check_offline(dir, &cp2, &more).unwrap_err();
    assert!(
        e.contains("names event 5 but proves the leaf at index 2"),
        "{e}"
    );
    let junk = r.file("junk.json", "{\"path\": []}");
    let e = check_offline(dir, &cp2, &["--inclusion", junk.to_str().unwrap()]).unwrap_err();
    assert!(
        e.contains("is not the JSON `asylon ledger prove` prints"),
        "{e}"
    );

    // A fork: the same registry restored from its backup and written on differently (same
    // origin, same signing key). It extends the checkpoint taken before the fork, but not the
    // one the party took of the other branch, and the party finds out from the files alone.
    let fork = Reg::empty_with_key(r.data().join("registry.key"));
    fork.restore_from(&b, &k);
    let other_rows = fork.synth("other.csv", 2, 6);
    fork.ok(&["import", "persons", other_rows.to_str().unwrap()]);
    let cpf = fork.file("cpf.json", &fork.ok(&["ledger", "checkpoint"]));
    // The fork's checkpoint, checked against an earlier one with the proof the fork gives.
    let fork_extends = |earlier: &str| {
        let proof = fork.file(
            "from.json",
            &fork.ok(&["ledger", "consistency", "--from", earlier]),
        );
        extends(&cpf, earlier, &proof)
    };
    let out = fork_extends(c1).unwrap();
    assert!(
        out.contains("extends the earlier checkpoint of 4 events"),
        "{out}"
    );
    let e = fork_extends(c2).unwrap_err();
    assert!(
        e.contains("does not extend the earlier checkpoint of 6 events"),
        "{e}"
    );
}

#[test]
fn an_inclusion_proof_is_printed_for_a_case_and_for_a_sequence_number() {
    let r = with_captives(7);
    let p: serde_json::Value =
        serde_json::from_str(&r.ok(&["ledger", "prove", "AS-000003"])).unwrap();
    assert_eq!(p["seq"], 4);
    assert_eq!(p["tree_size"], 8);
    assert_eq!(p["path"].as_array().unwrap().len(), 3);
    let cp: serde_json::Value = serde_json::from_str(&r.ok(&["ledger", "checkpoint"])).unwrap();
    assert_eq!(p["root"], cp["root"]);
    let p2: serde_json::Value = serde_json::from_str(&r.ok(&["ledger", "prove", "4"])).unwrap();
    assert_eq!(p, p2);
    // A case number is read as people type it, here and in the other commands about a case.
    let p3: serde_json::Value = serde_json::from_str(&r.ok(&["ledger", "prove", "as-3"])).unwrap();
    assert_eq!(p, p3);
    let shown = r.ok(&["person", "show", "AS-000003"]);
    assert_eq!(r.ok(&["person", "show", " as-03"]), shown);
    assert!(r.ok(&["person", "status", "As-3"]).starts_with("AS-000003"));
    let events = r.ok(&["event", "list", "--person", "as-000003"]);
    assert!(events.contains("person.registered"), "{events}");
    assert!(
        r.fails(&["person", "show", "3"], None)
            .contains("no person with case number 3")
    );
    assert!(
        r.fails(&["ledger", "prove", "99"], None)
            .contains("no event")
    );
    // Digits past any sequence number are still a sequence number asked for, not a case.
    let e = r.fails(&["ledger", "prove", "99999999999999999999"], None);
    assert!(
        e.contains("no event with sequence number 99999999999999999999"),
        "{e}"
    );
    assert!(
        r.fails(&["ledger", "prove", "AS-999999"], None)
            .contains("no person")
    );
}

// ---------------------------------------------------------------------------------------------
// What is on disk

/// The database and WAL bytes as text (invalid UTF-8 replaced), so any stored UTF-8 name shows.
fn raw_text(r: &Reg) -> String {
    String::from_utf8_lossy(&raw_files(r)).into_owned()
}

/// The registry database, the key store and their WALs; on PostgreSQL the files of both
/// schemas' tables and indexes (see [`pg_files`]).
fn raw_files(r: &Reg) -> Vec<u8> {
    if let Some(schema) = &r.pg {
        return pg_files(schema);
    }
    let mut all = Vec::new();
    for file in [r.db(), r.data().join("keys.db")] {
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(format!("{}{suffix}", file.display())) {
                all.extend(b);
            }
        }
    }
    all
}

/// The files in which PostgreSQL keeps the tables and indexes (their TOAST included) of the
/// registry's schema and its key store's, as they are once a checkpoint has written every
/// changed page to them: what a copy of the server's data directory holds of the registry,
/// read through the server (the test's role is a superuser).
fn pg_files(schema: &str) -> Vec<u8> {
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    c.batch_execute("CHECKPOINT").unwrap();
    let schemas = vec![schema.to_string(), format!("{schema}_keys")];
    let rows = c
        .query(
            "WITH rels AS (
                 SELECT c.oid, c.reltoastrelid FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname::text = ANY($1) AND c.relkind IN ('r', 'i', 'S')
             ), stored AS (
                 SELECT oid FROM rels
                 UNION SELECT reltoastrelid FROM rels WHERE reltoastrelid <> 0
                 UNION SELECT i.indexrelid FROM pg_index i
                     JOIN rels ON i.indrelid = rels.reltoastrelid
             )
             SELECT pg_read_binary_file(pg_relation_filepath(oid)) FROM stored",
            &[&schemas],
        )
        .unwrap();
    // Both schemas' tables at least: a query that found nothing would make every check pass.
    assert!(rows.len() >= 10, "{} relations", rows.len());
    rows.iter()
        .flat_map(|row| row.get::<_, Vec<u8>>(0))
        .collect()
}

/// Where PostgreSQL's WAL ends now, for [`pg_wal_since`].
fn pg_wal_position() -> String {
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    c.query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .unwrap()
        .get(0)
}

/// What PostgreSQL has written to its WAL since `from` (a [`pg_wal_position`]), as its
/// segment files hold it: every change made since then, by this test and by any other writing
/// to the server meanwhile.
fn pg_wal_since(from: &str) -> Vec<u8> {
    let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    let rows = c
        .query(
            "WITH b AS (
                 SELECT s.file_name AS first, s.file_offset AS start,
                        e.file_name AS last, e.file_offset AS stop
                 FROM pg_walfile_name_offset($1::text::pg_lsn) s,
                      pg_walfile_name_offset(pg_current_wal_insert_lsn()) e
             ), parts AS (
                 SELECT w.name,
                        CASE WHEN w.name = b.first THEN b.start ELSE 0 END AS start,
                        CASE WHEN w.name = b.last THEN b.stop ELSE w.size END AS stop
                 FROM pg_ls_waldir() w, b
                 WHERE w.name >= b.first AND w.name <= b.last AND w.name ~ '^[0-9A-F]{24}$'
             )
             SELECT pg_read_binary_file('pg_wal/' || name, start, stop - start) FROM parts
             ORDER BY name",
            &[&from],
        )
        .unwrap();
    assert!(!rows.is_empty(), "no WAL segment since {from}");
    rows.iter()
        .flat_map(|row| row.get::<_, Vec<u8>>(0))
        .collect()
}

/// Whether `needle` is in `hay`. By memchr's search, compiled optimised: `str::contains` is
/// compiled into this unoptimised test crate, and two thousand searches of a PostgreSQL WAL
/// written to by the tests running beside this one took minutes.
fn contains(hay: &str, needle: &str) -> bool {
    memchr::memmem::find(hay.as_bytes(), needle.as_bytes()).is_some()
}

#[test]
fn neither_the_database_nor_its_wal_holds_a_name_a_birth_date_or_a_service_number() {
    let r = Reg::new();
    // Hold a connection open so the WAL is not folded into the database when commands exit;
    // on PostgreSQL, keep where its WAL stands, to read all that is written after.
    let (hold, wal_from) = if r.pg.is_some() {
        (None, Some(pg_wal_position()))
    } else {
        let hold = Connection::open(r.db()).unwrap();
        hold.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let _: i64 = hold
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        (Some(hold), None)
    };
    let synth = r.synth("s.csv", 300, 9);
    r.ok(&["import", "persons", synth.to_str().unwrap()]);
    r.ok_in(
        &["person", "register", "-"],
        Some(
            r#"{"names": ["리한검", "Ri Han-gŏm", "Ли Хан Гом", "Рі Хан Гом"], "date_of_birth": "2005-03-17",
                "rank": "private", "service_number": "KPA-998877", "power": "KP",
                "captured_on": "2025-01-09", "father_first_name": "Myongchol",
                "next_of_kin": "Pak Sun Hui, Hoeryong"}"#,
        ),
    );
    // A correction is sealed as the registration is.
    let amended = r.file(
        "amended.json",
        &format!(
            r#"{{"names": ["최광혁", "Choe Kwang-hyŏk"], "date_of_birth": "2004-11-02",
                "rank": "corporal", "service_number": "KPA-112233", "power": "KP",
                "captured_on": "2025-01-09", "mother_maiden_name": "Kang Ok-sun",
                "from_event": {}}}"#,
            r.particulars_seq("AS-000301")
        ),
    );
    r.ok(&[
        "person",
        "amend",
        "AS-000301",
        amended.to_str().unwrap(),
        "--reason",
        "identified from his papers",
    ]);
    let raw = match &wal_from {
        Some(from) => {
            let wal = pg_wal_since(from);
            // The WAL read is the one these commands wrote: the file's external ids are there.
            let last_id = csv::Reader::from_path(&synth)
                .unwrap()
                .records()
                .last()
                .unwrap()
                .unwrap()[0]
                .to_string();
            assert!(
                wal.windows(last_id.len()).any(|w| w == last_id.as_bytes()),
                "{last_id} not in {} bytes of WAL",
                wal.len()
            );
            let mut raw = raw_files(&r);
            raw.extend(wal);
            String::from_utf8_lossy(&raw).into_owned()
        }
        None => {
            assert!(
                std::fs::metadata(format!("{}-wal", r.db().display()))
                    .unwrap()
                    .len()
                    > 0
            );
            raw_text(&r)
        }
    };
    let mut secrets: Vec<String> = vec![
        "리한검".into(),
        "Ri Han-gŏm".into(),
        "Ли Хан Гом".into(),
        "Рі Хан Гом".into(),
        "2005-03-17".into(),
        "KPA-998877".into(),
        "Myongchol".into(),
        "Pak Sun Hui".into(),
        "최광혁".into(),
        "Choe Kwang-hyŏk".into(),
        "2004-11-02".into(),
        "KPA-112233".into(),
        "Kang Ok-sun".into(),
    ];
    let mut rdr = csv::Reader::from_path(&synth).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        for name in rec[1].split('|') {
            secrets.push(name.to_string());
            // The given name alone, too (Hangul is stored without the space).
            if let Some((_, given)) = name.split_once(' ')
                && given.chars().count() >= 3
            {
                secrets.push(given.to_string());
            }
        }
        if rec[2].len() == 10 {
            secrets.push(rec[2].to_string());
        }
        if !rec[4].is_empty() {
            // Seven bare digits turn up by chance inside the nanoseconds of event times; a
            // leaked service number would stand in JSON, quoted.
            secrets.push(format!("\"{}\"", &rec[4]));
        }
    }
    // Ciphertext is random bytes, in which any short string turns up by chance (a three-letter
    // name about once in ten megabytes); six bytes or more are checked.
    secrets.retain(|s| s.len() >= 6);
    assert!(secrets.len() > 1000, "{}", secrets.len());
    // A check that could not fail proves nothing: the public case numbers are there.
    assert!(contains(&raw, "AS-000301"));
    for s in &secrets {
        assert!(
            !contains(&raw, s),
            "{s:?} is readable in the database files"
        );
    }
    drop(hold);
}

#[test]
fn a_corrected_record_is_what_every_command_shows_and_a_bad_correction_writes_nothing() {
    let r = Reg::new();
    r.ok_in(
        &["person", "register", "-"],
        Some(
            r#"{"external_id": "UA-7", "names": ["리한검", "Ri Han Gom"], "date_of_birth": "2005",
                "rank": "private", "not_stated": ["service_number"], "power": "RU",
                "captured_on": "2025-01-09", "captured_at": "Kursk region",
                "father_first_name": "Myongchol"}"#,
        ),
    );
    // Whoever may not open both classes gets none of them, and nothing is opened (no read is
    // recorded): an interviewer may read his identity, not his family.
    let events = r.event_count();
    let o = r
        .cmd(&["person", "show", "AS-000001", "--particulars"])
        .env("ASYLON_ROLES", "interviewer")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("not allowed"), "{e}");
    assert_eq!(r.event_count(), events);
    // His particulars as `person register` takes them, edited and given back.
    let mut p: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "as-1", "--particulars"])).unwrap();
    assert_eq!(p["external_id"], "UA-7");
    assert_eq!(p["not_stated"], serde_json::json!(["service_number"]));
    assert_eq!(p["father_first_name"], "Myongchol");
    p["names"][0]["given"] = "철수".into();
    p["names"][1]["given"] = "Chol Su".into();
    p["power"] = "KP".into();
    p["date_of_birth"] = "2004-06".into();
    p["mother_maiden_name"] = "Kang Ok Sun".into();
    let file = r.file("p.json", &p.to_string());
    let path = file.to_str().unwrap();

    let bad = |args: &[&str], stdin: Option<&str>, says: &str| {
        let events = r.event_count();
        let e = r.fails(args, stdin);
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(r.event_count(), events, "{args:?} wrote");
    };
    let events = r.event_count();
    let amend = ["person", "amend", "AS-000001"];
    bad(
        &[&amend[..], &[path, "--reason", " "]].concat(),
        None,
        "reason",
    );
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some("[]"),
        "JSON object",
    );
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some("{"),
        "JSON",
    );
    let moved = p.to_string().replace("UA-7", "UA-8");
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some(&moved),
        "UA-7",
    );
    let future = p.to_string().replace("2025-01-09", "2999-01-09");
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some(&future),
        "captured_on",
    );
    // A correction names what it corrects; a registration corrects nothing.
    assert_eq!(p["from_event"], 2);
    let mut unnamed = p.clone();
    unnamed.as_object_mut().unwrap().remove("from_event");
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some(&unnamed.to_string()),
        "from_event: name the event whose particulars this corrects",
    );
    bad(
        &["person", "register", "-"],
        Some(&p.to_string().replace("UA-7", "UA-9")),
        "from_event: a registration corrects nothing",
    );
    bad(
        &["person", "amend", "AS-000009", path, "--reason", "typo"],
        None,
        "AS-000009",
    );
    let mut c = r.cmd(&[&amend[..], &[path, "--reason", "typo"]].concat());
    let o = c.env("ASYLON_ROLES", "interviewer").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not allowed"));
    assert_eq!(r.event_count(), events);

    let out = r.ok(&[&amend[..], &[path, "--reason", "misheard at capture"]].concat());
    let seq: u64 = out
        .strip_prefix("AS-000001 corrected (event ")
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    // The same reading given again would undo whatever that correction changed (two officers
    // correcting one record from one reading): refused, and the first stands.
    bad(
        &[&amend[..], &[path, "--reason", "birth year"]].concat(),
        None,
        &format!(
            "AS-000001's particulars are those of event {seq}, not of event 2: they were \
             corrected again after they were read"
        ),
    );
    bad(
        &[&amend[..], &["-", "--reason", "typo"]].concat(),
        Some(
            &p.to_string()
                .replace("\"from_event\":2", "\"from_event\":99999"),
        ),
        &format!("are those of event {seq}, not of event 99999: read them again"),
    );
    // Given back as it was given, read from the correction.
    let mut again: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000001", "--particulars"])).unwrap();
    assert_eq!(again["from_event"], seq);
    again["from_event"] = p["from_event"].clone();
    assert_eq!(again, p);
    let shown = r.ok(&["person", "show", "AS-000001"]);
    for want in ["corrected", "Ri Chol Su", "2004-06", "KP", "Kang Ok Sun"] {
        assert!(shown.contains(want), "{want}: {shown}");
    }
    assert!(!shown.contains("Han Gom"), "{shown}");
    let listed = &r.persons_json()[0];
    assert_eq!(listed["power"], "KP");
    let status = r.ok(&["person", "status", "AS-000001"]);
    assert!(status.contains("power KP"), "{status}");
    let found = |name: &str| r.ok(&["person", "search", name]).contains("AS-000001");
    assert!(found("Ri Chol Su"));
    assert!(!found("Ri Han Gom"));
    let log = r.ok(&["event", "list", "--person", "AS-000001"]);
    assert!(log.contains("person.amended"), "{log}");
    assert!(
        log.contains("misheard at capture") && log.contains("\"amends\":2"),
        "{log}"
    );
    r.ok(&["ledger", "verify"]);
    r.ok(&["rebuild"]);
    r.ok(&["ledger", "verify"]);

    r.ok(&["person", "erase", "AS-000001", "--reason", "court order"]);
    let e = r.fails(&["person", "show", "AS-000001", "--particulars"], None);
    assert!(e.contains("erased"), "{e}");
    bad(
        &[&amend[..], &[path, "--reason", "typo"]].concat(),
        None,
        "erased",
    );
}

#[test]
fn an_erased_person_cannot_be_read_by_any_command_and_the_log_still_verifies() {
    // The last registered: on PostgreSQL the last row of a page, whose bytes a plain VACUUM
    // leaves where they lay.
    let r = with_captives(4);
    let before = r.ok(&["person", "show", "AS-000004"]);
    assert!(before.contains("SN00004"));
    // A check that could not fail proves nothing: the key is in the files before.
    let has_key = finds_wrapped_key(&r, "AS-000004");
    assert!(has_key(&raw_files(&r)));
    let e = r.fails(&["person", "erase", "AS-000004", "--reason", " "], None);
    assert!(e.contains("reason"), "{e}");
    // A reason is public and read by every organisation involved: nothing in it may make it
    // read as something else, or run over lines the log's listing prints one to an event.
    for (reason, code) in [
        ("court order\u{202E}71/2025", "U+202E"),
        ("court order\n    99  person.registered", "U+000A"),
    ] {
        let e = r.fails(&["person", "erase", "AS-000004", "--reason", reason], None);
        assert!(e.contains(&format!("reason: contains {code}")), "{e}");
    }
    // On PostgreSQL, a transaction begun before the erasure and still open while it runs (a
    // server's read, a pg_dump) could see his row: the rewrite must wait for it to end. So
    // must it for one that has written and waits between two statements (another import's),
    // which holds no snapshot then and still keeps the row in the rewritten table.
    let (older, reader) = older_readers(
        &r,
        4,
        &[
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1",
            "BEGIN; SELECT pg_current_xact_id()",
        ],
    );
    let erase = r
        .cmd(&[
            "person",
            "erase",
            "AS-000004",
            "--reason",
            "court order 17/2025",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for mut c in older {
        std::thread::sleep(std::time::Duration::from_millis(500));
        c.batch_execute("COMMIT").unwrap();
    }
    // On SQLite, a reader of the key store on a snapshot from before the erasure (a backup
    // copying it) stops its WAL, which holds the pages as they were, from being emptied, for
    // longer than a write waits for a lock (10 s): the erasure waits for it to end. Its
    // connection stays open after (a server's would): closing the last one empties the WAL.
    if let Some(c) = &reader {
        std::thread::sleep(std::time::Duration::from_secs(11));
        c.execute_batch("COMMIT").unwrap();
    }
    let out = erase.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("erased"));

    let shown = r.ok(&["person", "show", "AS-000004"]);
    assert!(
        shown.contains("erased") && !shown.contains("SN00004"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000004", "--json"])).unwrap();
    assert!(json.get("identity").is_none(), "{json}");
    assert_eq!(json["status"], "erased");
    // The erasure and its reason are events.
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["event", "list", "--person", "AS-000004", "--json"])).unwrap();
    let erasure = events
        .iter()
        .find(|e| e["kind"] == "person.erased")
        .unwrap();
    assert_eq!(erasure["public"]["reason"], "court order 17/2025");
    // An imported captive has keys for his identity only (no family particulars in the file).
    assert_eq!(
        erasure["public"]["keys_destroyed"],
        serde_json::json!(["identity"])
    );
    // The key bytes are gone from the files, not merely unlinked from the table (on
    // PostgreSQL, from the tables' files: its WAL keeps them until it recycles the segment).
    assert!(!has_key(&raw_files(&r)));
    // Others are untouched; the log verifies; a second erasure is refused.
    assert!(r.ok(&["person", "show", "AS-000002"]).contains("SN00002"));
    r.ok(&["ledger", "verify"]);
    assert!(
        r.fails(&["person", "erase", "AS-000004", "--reason", "again"], None)
            .contains("was erased")
    );
    // His case is closed: he owes no duty, and nothing more is recorded about him.
    let status = r.ok(&["person", "status", "AS-000004"]);
    assert!(
        status.contains("erased       his case is closed"),
        "{status}"
    );
    let due = r.ok(&["deadlines"]);
    assert!(
        due.contains("AS-000003") && !due.contains("AS-000004"),
        "{due}"
    );
    let e = r.fails(
        &["record", "-"],
        Some(r#"{"command": "issue_capture_card", "case": "AS-000004"}"#),
    );
    assert!(
        e.contains("AS-000004 was erased: nothing more is recorded about him"),
        "{e}"
    );
    r.ok(&["ledger", "verify"]);
}

/// An erasure stopped after its first commit (his keys deleted from the key store) and before
/// it had purged the key store's files of them (a kill, a power cut) leaves his wrapped key in
/// those files, and the log not yet saying he is erased. Running the erasure again records it,
/// and purges the files, though it finds no keys of his left to delete.
#[test]
fn an_erasure_stopped_after_deleting_his_keys_is_completed_by_running_it_again_files_and_all() {
    let r = with_captives(3);
    let has_key = finds_wrapped_key(&r, "AS-000003");
    // What the erasure commits before it is stopped: the registry's note that a purge of the
    // key store is due, then his keys row and his rows of the blind index deleted (on SQLite
    // overwriting them in its pages, as the erasure's connection does). The SQLite connection
    // stays open, as a server's would: closing the last one would fold and remove the WAL by
    // itself.
    let due = "INSERT INTO meta (key, value) VALUES ('keys_purge_due', '1')";
    let deleted = "DELETE FROM name_index WHERE person = 3; \
                   DELETE FROM name_index_recent WHERE person = 3; \
                   DELETE FROM data_keys WHERE person = 'AS-000003'";
    let _open = match &r.pg {
        Some(schema) => {
            let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "SET search_path TO {schema}; {}; SET search_path TO {schema}_keys; {deleted}",
                due.replace("'1'", "'\\x31'")
            ))
            .unwrap();
            None
        }
        None => {
            Connection::open(r.db())
                .unwrap()
                .execute_batch(&due.replace("'1'", "x'31'"))
                .unwrap();
            let c = Connection::open(r.data().join("keys.db")).unwrap();
            c.execute_batch(&format!("PRAGMA secure_delete = ON; {deleted}"))
                .unwrap();
            Some(c)
        }
    };
    assert!(has_key(&raw_files(&r)), "the stopped erasure left his key");
    let verified = r.ok(&["ledger", "verify"]);
    assert!(
        verified.contains("no keys in the key store for AS-000003")
            && verified.contains("may still hold a copy of keys an erasure destroyed"),
        "{verified}"
    );
    let out = r.ok(&[
        "person",
        "erase",
        "AS-000003",
        "--reason",
        "court order 9/2026",
    ]);
    assert!(out.contains("AS-000003 erased (event"), "{out}");
    assert!(!has_key(&raw_files(&r)));
    let shown = r.ok(&["person", "show", "AS-000003"]);
    assert!(
        shown.contains("erased") && !shown.contains("SN00003"),
        "{shown}"
    );
    assert!(!r.ok(&["ledger", "verify"]).contains("may still hold"));
}

/// Whether some bytes (the registry's files) hold the wrapped key of `case`'s identity, read
/// from the key store as it is now.
fn finds_wrapped_key(r: &Reg, case: &str) -> impl Fn(&[u8]) -> bool {
    let wrapped: Vec<Vec<u8>> = r.keys_column(&format!(
        "SELECT identity FROM data_keys WHERE person = '{case}'"
    ));
    assert_eq!(wrapped.len(), 1);
    let key = wrapped.into_iter().next().unwrap();
    move |raw| raw.windows(key.len()).any(|w| w == key)
}

/// Sessions that began before what comes next and are still open, as a backup being copied or
/// another process's transaction would be: on PostgreSQL one for each of `begins` (each a
/// transaction begun); on SQLite a read transaction of the key store, on a snapshot in which
/// it holds `keys` data keys.
fn older_readers(
    r: &Reg,
    keys: i64,
    begins: &[&str],
) -> (Vec<postgres::Client>, Option<Connection>) {
    if r.pg.is_some() {
        let sessions = begins
            .iter()
            .map(|begin| {
                let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
                c.batch_execute(begin).unwrap();
                c
            })
            .collect();
        return (sessions, None);
    }
    let c = Connection::open(r.data().join("keys.db")).unwrap();
    c.execute_batch("BEGIN").unwrap();
    let held: i64 = c
        .query_row("SELECT count(*) FROM data_keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(held, keys);
    (Vec::new(), Some(c))
}

/// A reader of the key store from before an erasure that outlasts the erasure's wait (a backup
/// being copied) keeps the destroyed key in the key store's files. The erasure is recorded all
/// the same, and says so and fails, rather than tell of keys destroyed everywhere; `purge-keys`
/// finishes it once the reader has ended, and says the same while it has not.
#[test]
fn an_erasure_held_back_by_an_older_reader_says_so_and_purge_keys_finishes_it() {
    let r = with_captives(3);
    let has_key = finds_wrapped_key(&r, "AS-000003");
    assert!(has_key(&raw_files(&r)));
    let (mut pg_readers, lite_reader) =
        older_readers(&r, 3, &["BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1"]);
    let erase = [
        "--purge-wait",
        "1",
        "person",
        "erase",
        "AS-000003",
        "--reason",
        "court order 5/2026",
    ];
    let o = r.run(&erase, None);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("AS-000003 erased (event"), "{out}");
    contains_all(
        &err,
        &[
            "the key store's files may still hold a copy of his keys",
            "for more than 1 s",
            "run `asylon purge-keys`",
        ],
    );
    // What it says is so: the key is still in the files.
    assert!(has_key(&raw_files(&r)));
    // He is erased nonetheless: nothing shows his particulars, the erasure is not repeated.
    let shown = r.ok(&["person", "show", "AS-000003"]);
    assert!(
        shown.contains("erased") && !shown.contains("SN00003"),
        "{shown}"
    );
    assert!(r.fails(&erase, None).contains("was erased"));
    let due = "note: the key store's files may still hold a copy of keys an erasure destroyed";
    assert!(r.ok(&["ledger", "verify"]).contains(due));
    // While the reader stays, purging cannot finish either, and says so.
    let e = r.fails(&["--purge-wait", "1", "purge-keys"], None);
    assert!(
        e.contains("may still hold a copy of keys erasures destroyed"),
        "{e}"
    );
    assert!(has_key(&raw_files(&r)));
    for c in &mut pg_readers {
        c.batch_execute("COMMIT").unwrap();
    }
    if let Some(c) = &lite_reader {
        c.execute_batch("COMMIT").unwrap();
    }
    let done = r.ok(&["purge-keys"]);
    assert!(done.contains("hold no copy of any destroyed key"), "{done}");
    assert!(!has_key(&raw_files(&r)));
    assert!(r.ok(&["person", "show", "AS-000002"]).contains("SN00002"));
    assert!(!r.ok(&["ledger", "verify"]).contains(due));
}

// ---------------------------------------------------------------------------------------------
// Crashes

/// Small deterministic generator for kill times; the seed is printed so a failure reproduces.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// How many of `total` captives an import stopped by a full disk says it committed; it gives
/// the database's `cause` once, says how to finish, and some but not all were committed.
fn committed_before_the_disk_filled(e: &str, total: usize, cause: &str) -> usize {
    // Told once, not three times over.
    assert_eq!(e.matches(cause).count(), 1, "{e}");
    let committed: usize = e
        .split("the import stopped: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of what was committed: {e}"));
    assert!(
        e.contains(&format!(
            "{committed} of the {total} captives to register were committed"
        )) && e.contains("run the same import again"),
        "{e}"
    );
    assert!(committed > 0 && committed < total, "{committed}");
    committed
}

#[test]
fn on_postgres_an_import_that_fills_the_disk_keeps_what_it_committed() {
    if on_postgres() {
        return; // makes a database of its own, once
    }
    let Some(db) = PgOnDisk::create("8M") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--database", &db.url(), "--db-schema", "reg"])
            .args(args)
            .env("ASYLON_USER", "tester")
            .env_remove("ASYLON_KEY_FILE")
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.success(), text(out.stdout), text(out.stderr))
    };
    assert!(run(&["init"]).0);
    let file = dir.path().join("many.csv");
    let f = file.to_str().unwrap();
    assert!(
        run(&[
            "synth", "persons", "--count", "8000", "--seed", "12", "--out", f
        ])
        .0
    );
    let (ok, _, e) = run(&["import", "persons", f]);
    assert!(!ok);
    assert!(
        e.contains("the disk holding the registry is full (PostgreSQL: could not extend file"),
        "{e}"
    );
    let committed = committed_before_the_disk_filled(&e, 8000, "No space left on device");
    // What it said was committed is there, and nothing else; the log verifies.
    let (ok, out, e) = run(&["ledger", "verify"]);
    assert!(
        ok && out.contains(&format!("{committed} captives")),
        "{out}{e}"
    );
    // Space given, the same import registers the rest.
    db.grow("64M");
    let (ok, out, e) = run(&["import", "persons", f]);
    assert!(
        ok && out.contains(&format!(
            "{} registered, {committed} already registered",
            8000 - committed
        )),
        "{out}{e}"
    );
    assert!(run(&["ledger", "verify"]).1.contains("8000 captives"));
    drop(db);
}

#[test]
fn an_import_that_fills_the_disk_keeps_what_it_committed_and_says_how_to_finish() {
    if on_postgres() {
        return; // fills the disk holding the SQLite files
    }
    let r = Reg::empty();
    let Some(disk) = SmallDisk::mount(&r.data(), "4M") else {
        return;
    };
    r.ok(&["init"]);
    let file = r.synth("many.csv", 6000, 12);
    let f = file.to_str().unwrap();
    let e = r.fails(&["import", "persons", f], None);
    assert!(
        e.contains("the disk holding the registry is full (SQLite: database or disk is full)"),
        "{e}"
    );
    let committed = committed_before_the_disk_filled(&e, 6000, "database or disk is full");
    // What it said was committed is there, and nothing else; the log verifies.
    assert!(r.ok(&["ledger", "verify"]).starts_with("ok"));
    assert_eq!(r.persons_json().len(), committed);
    // Space freed, the same import registers the rest.
    disk.grow("64M");
    let (out, _) = imported(&r, &file, &[]);
    let rest = 6000 - committed;
    assert!(
        out.contains(&format!(
            "{rest} registered, {committed} already registered"
        )),
        "{out}"
    );
    assert!(r.ok(&["ledger", "verify"]).contains("6000 captives"));
}

#[test]
fn an_import_killed_at_random_moments_loses_nothing_it_acknowledged() {
    use std::io::BufRead;
    let r = Reg::new();
    let rows = 20_000;
    let file = r.synth("big.csv", rows, 5);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("kill-time seed {seed}");
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut rng = Lcg(seed);
    let mut acknowledged_through = 1u64;
    for round in 0..6 {
        let mut child = r.spawn(&["import", "persons", file.to_str().unwrap()]);
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let stdout = child.stdout.take().unwrap();
        let (ack, acks) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = 1u64;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(n) = line
                    .strip_prefix("committed through line ")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.parse().ok())
                {
                    last = n;
                    let _ = ack.send(n);
                }
            }
            last
        });
        // The moment: while the file is read and checked (no batch acknowledged yet), or a
        // little after this run's first, second, … acknowledgement, while later batches are
        // keyed, appended and committed. Counted in acknowledgements rather than in time, so
        // that the moments fall all through the import however fast the build is.
        let after = rng.next() % 5;
        if after == 0 {
            std::thread::sleep(std::time::Duration::from_millis(30 + rng.next() % 400));
        } else {
            for _ in 0..after {
                if acks.recv().is_err() {
                    break; // the import ended
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(rng.next() % 60));
        }
        // SIGKILL: no destructor, no cleanup.
        let _ = child.kill();
        let status = child.wait().unwrap();
        let acked = reader.join().unwrap();
        // Killed, or done before the kill came: an import after a killed one never fails.
        assert!(
            status.success() || std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "round {round}: the import failed (seed {seed}): {}",
            errors.join().unwrap()
        );
        acknowledged_through = acknowledged_through.max(acked);
        r.ok(&["ledger", "verify"]);
        let (_, present) = r.external_ids();
        // Line n of the file holds SYN-5-(n-2).
        for line in 2..=acknowledged_through {
            let id = format!("SYN-5-{:07}", line - 2);
            assert!(
                present.contains(&id),
                "round {round}: acknowledged {id} is missing (seed {seed})"
            );
        }
        // The index rows of an import that did not end wait in the key store's table for
        // imports (their fold into the main index comes at the end): searchable all the same.
        let recent = r.keys_count("SELECT COUNT(*) FROM name_index_recent");
        if acknowledged_through > 1 {
            assert!(
                r.found_by_name(&csv, acknowledged_through),
                "round {round}: line {acknowledged_through} is not found by name \
                 ({recent} index rows not folded; seed {seed})"
            );
        }
        println!(
            "round {round}: killed after {after} acknowledgements; acknowledged through line \
             {acknowledged_through}, {} present, {recent} index rows not folded",
            present.len()
        );
    }
    // Running it again completes the import, without duplicates, and folds every index row
    // the killed imports left.
    r.ok(&["import", "persons", file.to_str().unwrap()]);
    assert_eq!(r.keys_count("SELECT COUNT(*) FROM name_index_recent"), 0);
    assert!(r.found_by_name(&csv, acknowledged_through.max(2)));
    assert!(r.found_by_name(&csv, rows as u64 + 1));
    let (listed, unique) = r.external_ids();
    assert_eq!((listed, unique.len()), (rows, rows));
    r.ok(&["ledger", "verify"]);
}

/// What `import persons` reported of its committed batches: the last line acknowledged.
fn acknowledged_through(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("committed through line "))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .max()
        .unwrap_or(1)
}

#[test]
fn two_imports_at_once_of_overlapping_files_register_each_captive_once() {
    // Two operators import at the same moment: one file whole, the other its second half and
    // rows of its own. However the two interleave, each captive is registered once, whatever
    // either reported as committed is there, and the one that met the other's captives says so
    // and is finished by running it again.
    let r = Reg::new();
    let rows = 6_000;
    let whole = r.synth("whole.csv", rows, 11);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let own = std::fs::read_to_string(r.synth("own.csv", 1_000, 12)).unwrap();
    let half = format!(
        "{}\n{}\n{}",
        lines[0],
        lines[1 + rows / 2..].join("\n"),
        own.lines().skip(1).collect::<Vec<_>>().join("\n")
    );
    let half = r.file("half.csv", &half);
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let runs: Vec<_> = [whole.clone(), half.clone()]
        .into_iter()
        .map(|file| {
            let mut c = r.cmd(&["import", "persons", file.to_str().unwrap()]);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                c.output().unwrap()
            })
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    r.ok(&["ledger", "verify"]);
    let (_, present) = r.external_ids();
    for (o, file) in outs.iter().zip([&whole, &half]) {
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        if !o.status.success() {
            assert!(err.contains("is already registered as AS-"), "{err}");
            assert!(err.contains("run the same import again"), "{err}");
        }
        // Every line reported as committed holds a captive who is registered.
        let file_text = std::fs::read_to_string(file).unwrap();
        for line in file_text
            .lines()
            .skip(1)
            .take(acknowledged_through(&out) as usize - 1)
        {
            let id = line.split(',').next().unwrap();
            assert!(present.contains(id), "{id} was acknowledged and is missing");
        }
        println!(
            "{}: {} through line {}",
            file.display(),
            if o.status.success() {
                "done"
            } else {
                "stopped"
            },
            acknowledged_through(&out)
        );
    }
    // Run again, each finishes with nothing registered twice.
    for file in [&whole, &half] {
        let out = r.ok(&["import", "persons", file.to_str().unwrap()]);
        assert!(out.contains("already registered and skipped"), "{out}");
    }
    let (listed, unique) = r.external_ids();
    assert_eq!((listed, unique.len()), (rows + 1_000, rows + 1_000));
    let persons = r.persons_json();
    let cases: std::collections::HashSet<_> = persons
        .iter()
        .map(|p| p["case_no"].as_str().unwrap())
        .collect();
    assert_eq!(cases.len(), rows + 1_000);
    assert_eq!(r.event_count(), (rows + 1_000 + 1) as i64);
    r.ok(&["ledger", "verify"]);
}

#[test]
fn every_problem_of_a_long_file_can_be_had_as_csv() {
    let r = Reg::new();
    // 250 rows with a power that is no country code, between good ones.
    let rows: Vec<String> = (0..300)
        .map(|i| {
            let power = if i % 6 == 0 { "KP" } else { "K1" };
            format!("E-{i},리한검,2001,private,,{power},2025-01-09,")
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let file = r.file("long.csv", &csv(&rows));
    let f = file.to_str().unwrap();
    let e = r.fails(&["import", "persons", f], None);
    assert_eq!(
        e.lines().filter(|l| l.starts_with("line ")).count(),
        200,
        "{e}"
    );
    assert!(
        e.contains("... and 50 more problems (--errors FILE writes all of them)")
            && e.contains("250 of 300 rows are invalid"),
        "{e}"
    );
    let report = r.dir.path().join("problems.csv");
    let p = report.to_str().unwrap();
    for check in [true, false] {
        let args = [&["import", "persons", f, "--errors", p][..], &["--check"]].concat();
        let args = if check { &args[..] } else { &args[..5] };
        let e = r.fails(args, None);
        assert!(e.contains(&format!("(all are in {p})")), "{e}");
        let mut read = csv::Reader::from_path(&report).unwrap();
        let problems: Vec<(u64, String)> = read
            .records()
            .map(|row| {
                let row = row.unwrap();
                (row[0].parse().unwrap(), row[1].to_string())
            })
            .collect();
        assert_eq!(problems.len(), 250);
        assert_eq!(problems[0].0, 3, "the second row, on line 3");
        assert_eq!(problems[249].0, 301);
        assert!(
            problems[0].1.starts_with("power: \"K1\""),
            "{:?}",
            problems[0]
        );
    }
    assert!(r.persons_json().is_empty());
    // A report that cannot be written is told before the file is read.
    let e = r.fails(
        &["import", "persons", f, "--errors", "/no-such-dir/p.csv"],
        None,
    );
    assert!(
        e.contains("cannot write the problems to /no-such-dir/p.csv") && !e.contains("line 3"),
        "{e}"
    );
    // A file that cannot be read at all leaves that one problem, with no line to blame.
    let odd = r.file("odd.csv", "external_id,nom\n1,x\n");
    let e = r.fails(
        &["import", "persons", odd.to_str().unwrap(), "--errors", p],
        None,
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        e.contains("unknown column \"nom\"")
            && text.starts_with("line,problem\n,")
            && text.contains("unknown column \"\"nom\"\""),
        "{text}"
    );
    // A valid file leaves the report with its header alone, not the last run's problems.
    let good = r.file("good.csv", &csv(&rows[..1]));
    r.ok(&["import", "persons", good.to_str().unwrap(), "--errors", p]);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "line,problem\n");
}

#[test]
fn a_corrected_file_imported_again_is_told_it_did_not_correct_the_registry() {
    let r = Reg::new();
    let first = r.file(
        "first.csv",
        &csv(&[
            "UA-1,리한검,2001-04-12,private,SN1,KP,2025-01-09,Kursk",
            "UA-2,김철수,2001-04-12,private,SN2,RU,2025-01-09,Kursk",
            "UA-3,박영호,2001-04-12,private,SN3,KP,2025-01-09,",
        ]),
    );
    r.ok(&["import", "persons", first.to_str().unwrap()]);
    // UA-2's power and capture date corrected, UA-3's name (sealed, not compared) and place.
    let second = r.file(
        "second.csv",
        &csv(&[
            "UA-1,리한검,2001-04-12,private,SN1,KP,2025-01-09,Kursk",
            "UA-2,김철수,2001-04-12,private,SN2,KP,2025-01-08,Kursk",
            "UA-3,박영수,2001-04-12,private,SN3,KP,2025-01-09,Sumy",
            "UA-4,정대현,2001-04-12,private,SN4,KP,2025-01-09,Kursk",
        ]),
    );
    // Checked first: the same warnings and counts, and nothing written.
    let events = r.ok(&["event", "list"]);
    let (out, err) = imported(&r, &second, &["--check"]);
    assert!(
        out.contains(
            "all 4 rows are valid; importing it would register 1 and skip 3 already registered; \
             nothing was registered"
        ) && out.contains("2 of them differ from the registry"),
        "{out}"
    );
    assert_eq!(err.matches("warning: line").count(), 2, "{err}");
    assert_eq!(r.ok(&["event", "list"]), events);
    assert_eq!(r.persons_json().len(), 3);
    let bad = r.file(
        "bad.csv",
        &csv(&["UA-5,정대현,2001-04-12,private,SN5,KP,2035-01-09,Kursk"]),
    );
    let e = r.fails(
        &["import", "persons", bad.to_str().unwrap(), "--check"],
        None,
    );
    assert!(
        e.contains("line 2: captured_on") && e.contains("1 of 1 rows are invalid"),
        "{e}"
    );
    let (out, err) = imported(&r, &second, &[]);
    assert!(
        out.contains("1 registered, 3 already registered and skipped"),
        "{out}"
    );
    assert!(out.contains("2 of them differ from the registry"), "{out}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("line 3: UA-2 is registered already, as AS-000002")
            && warnings[0].contains("power (this file: KP; registered: RU)")
            && warnings[0].contains("captured_on (this file: 2025-01-08; registered: 2025-01-09)")
            && warnings[0].contains("person amend AS-000002"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("line 4: UA-3")
            && warnings[1].contains("captured_at (this file: Sumy; registered: (empty))")
            && !warnings[1].contains("power"),
        "{}",
        warnings[1]
    );
    let listed = r.persons_json();
    assert_eq!(listed[1]["power"], "RU", "the import changed a record");
    // Again, into a registry larger than the file (its ids are looked up rather than read)
    // and with rows past those kept between the passes: the same two rows are told.
    for i in 5..12 {
        r.ok_in(
            &["person", "register", "-"],
            Some(&person_json(&format!("UA-{i}"), "김영남")),
        );
    }
    let (out, err) = imported(&r, &second, &["--keep-rows", "1", "--timings"]);
    assert!(
        out.contains("0 registered, 4 already registered and skipped"),
        "{out}"
    );
    assert!(out.contains("the file's external ids looked up"), "{out}");
    let told: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(|l| l.split(':').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(told, [" line 3", " line 4"], "{err}");
    // A file that agrees with the registry says nothing of it.
    let (out, err) = imported(&r, &first, &[]);
    assert!(
        !out.contains("differ") && !err.contains("warning"),
        "{out}{err}"
    );
}

/// Runs `args` with standard error a terminal (a pseudo-terminal's far end), as for an operator
/// at one: its exit status, its output, and what the terminal was shown.
fn on_a_terminal(r: &Reg, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::io::Read;
    let near = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&near).unwrap();
    unlockpt(&near).unwrap();
    let far = ptsname(&near, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(far.to_str().unwrap())
        .unwrap();
    let mut screen = std::fs::File::from(near);
    let shown = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Once every copy of the far end is closed, Linux answers a read with EIO.
        let _ = screen.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut cmd = r.cmd(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(terminal));
    let o = cmd.output().unwrap();
    drop(cmd);
    (
        o.status,
        String::from_utf8(o.stdout).unwrap(),
        shown.join().unwrap(),
    )
}

#[test]
fn an_import_run_in_a_terminal_shows_a_progress_bar_instead_of_lines() {
    let r = Reg::new();
    let file = r.synth("bar.csv", 3000, 9);
    let (status, out, shown) = on_a_terminal(&r, &["import", "persons", file.to_str().unwrap()]);
    assert!(status.success(), "{shown}");
    // Pass one shows how much of the file it has checked, then pass two what it committed,
    // with the rate in whole rows a second.
    assert!(shown.contains("% checked: 2,000 rows"), "no bar: {shown:?}");
    assert!(shown.contains("/3,000 rows committed"), "no bar: {shown:?}");
    let rate = shown
        .split(" rows committed  ")
        .nth(1)
        .and_then(|rest| rest.split(" rows/s").next())
        .unwrap_or_default();
    assert!(
        !rate.is_empty() && rate.chars().all(|c| c.is_ascii_digit()),
        "rate {rate:?}: {shown:?}"
    );
    assert!(
        out.contains("3000 registered") && !out.contains("committed through line"),
        "{out}"
    );
    // Without a terminal, a line per committed batch instead (the bar's place is a log).
    let (plain, _) = imported(&Reg::new(), &file, &[]);
    assert!(
        plain.contains("committed through line 3001: 3000 registered"),
        "{plain}"
    );
    // A file with problems: pass one counts them as it goes; they are told when it is done.
    let text = std::fs::read_to_string(&file).unwrap();
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            5 | 7 => format!("{}\n", l.replacen(",KP,", ",K1,", 1)),
            _ => format!("{l}\n"),
        })
        .collect();
    let bad = r.file("bad.csv", &bad);
    let (status, _, shown) =
        on_a_terminal(&r, &["import", "persons", bad.to_str().unwrap(), "--check"]);
    assert!(!status.success(), "{shown}");
    assert!(
        shown.contains("checked: 2,000 rows, 2 problems"),
        "{shown:?}"
    );
    assert!(
        shown.contains("line 6: ") && shown.contains("line 8: "),
        "{shown:?}"
    );
}

#[test]
fn rebuild_and_verify_run_in_a_terminal_show_each_pass_and_print_nothing_to_a_pipe() {
    let r = Reg::new();
    let file = r.synth("pass.csv", 3000, 5);
    imported(&r, &file, &[]);
    let (status, out, shown) = on_a_terminal(&r, &["rebuild"]);
    assert!(status.success(), "{shown}");
    // Each pass: what it does, of how many (the events, then the captives).
    for pass in [
        "/3,001 events replayed",
        "/3,000 captives compared",
        "/3,000 captives' names checked",
    ] {
        assert!(shown.contains(pass), "no {pass:?}: {shown:?}");
    }
    assert!(
        out.contains("rebuilt the projection from the events: 3000 captives"),
        "{out}"
    );
    let (status, out, shown) = on_a_terminal(&r, &["ledger", "verify"]);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("/3,001 events checked"), "{shown:?}");
    assert!(out.starts_with("ok: 3001 events"), "{out}");
    // Without a terminal: the same report and nothing on standard error.
    for args in [&["rebuild"][..], &["ledger", "verify"]] {
        let o = r.run(args, None);
        assert!(o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{args:?}");
    }
    // A restore verifies the copy and checks its name index, each pass shown.
    let (b, k) = (r.dir.path().join("b.db"), r.dir.path().join("k.db"));
    r.backup_to(&b, &k);
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let (b, k) = (b.to_str().unwrap(), k.to_str().unwrap());
    let (status, out, shown) = on_a_terminal(&target, &["restore", b, "--keys", k]);
    assert!(status.success(), "{shown}");
    assert!(out.contains("3001 events"), "{out}");
    for pass in ["/3,001 events checked", "/3,000 captives' names checked"] {
        assert!(shown.contains(pass), "no {pass:?}: {shown:?}");
    }
}

/// Imports `file` (with `extra` arguments), which must succeed: its output and error output.
fn imported(r: &Reg, file: &Path, extra: &[&str]) -> (String, String) {
    let o = r.run(
        &[&["import", "persons", file.to_str().unwrap()][..], extra].concat(),
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn rows_past_those_kept_between_the_passes_are_read_again_and_registered_once() {
    let r = Reg::new();
    let file = r.synth("all.csv", 3500, 9);
    // Some rows on both sides of the kept part are registered already.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut early: Vec<&str> = lines[1..11].to_vec();
    early.extend(&lines[2001..2011]);
    let first = r.file(
        "early.csv",
        &format!("{}\n{}\n", lines[0], early.join("\n")),
    );
    // Any number of rows may be kept (the queue of rows whose names are read has a ceiling).
    let first_out = r.ok(&[
        "import",
        "persons",
        first.to_str().unwrap(),
        "--keep-rows",
        &u64::MAX.to_string(),
    ]);
    // Timings only when asked for.
    assert!(!first_out.contains("timings"), "{first_out}");

    let out = r.ok(&[
        "import",
        "persons",
        file.to_str().unwrap(),
        "--keep-rows",
        "1200",
        "--timings",
    ]);
    assert!(
        out.contains("3480 registered, 20 already registered and skipped"),
        "{out}"
    );
    assert_stage_timings(&out);
    // A file far larger than the registry: its external ids are read before pass one.
    assert!(
        out.contains("already registered rows: 20 external ids read first"),
        "{out}"
    );
    assert!(out.contains("committed through line 3501"), "{out}");
    let persons = r.persons_json();
    assert_eq!(persons.len(), 3500);
    let ids: std::collections::HashSet<&str> = persons
        .iter()
        .map(|p| p["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3500);
    // Case numbers run on without a gap across the kept part and the part read again.
    let mut cases: Vec<&str> = persons
        .iter()
        .map(|p| p["case_no"].as_str().unwrap())
        .collect();
    cases.sort();
    assert_eq!(cases.first(), Some(&"AS-000001"));
    assert_eq!(cases.last(), Some(&"AS-003500"));
    r.ok(&["ledger", "verify"]);

    // A file far smaller than the registry: each row's external id is looked up instead. Two
    // new captives among four registered ones, on both sides of the kept part again.
    let other = r.synth("other.csv", 2, 10);
    let other = std::fs::read_to_string(&other).unwrap();
    let new: Vec<&str> = other.lines().skip(1).collect();
    let mixed = [new[0], lines[5], lines[3000], new[1], lines[1], lines[3500]];
    let small = r.file(
        "small.csv",
        &format!("{}\n{}\n", lines[0], mixed.join("\n")),
    );
    let out = r.ok(&[
        "import",
        "persons",
        small.to_str().unwrap(),
        "--keep-rows",
        "2",
        "--timings",
    ]);
    assert!(
        out.contains("2 registered, 4 already registered and skipped"),
        "{out}"
    );
    assert!(
        out.contains("already registered rows: the file's external ids looked up"),
        "{out}"
    );
    let persons = r.persons_json();
    assert_eq!(persons.len(), 3502);
    for row in &new {
        let id = row.split(',').next().unwrap();
        assert_eq!(
            persons.iter().filter(|p| p["external_id"] == id).count(),
            1,
            "{id}"
        );
    }
    r.ok(&["ledger", "verify"]);
}

/// `import persons --timings` printed a CPU time for each stage of the import (on Linux; the
/// log's WAL is folded on a thread of its own on SQLite only), and their sum.
fn assert_stage_timings(out: &str) {
    let times = timings::stage_times(out);
    let secs = |stage: &str| -> Option<f64> {
        times
            .iter()
            .find(|(s, _)| s == stage)
            .unwrap_or_else(|| panic!("no line for {stage}: {out}"))
            .1
    };
    let mut sum = 0.0;
    for stage in [
        "validating rows",
        "reading names",
        "sealing",
        "storing keys",
        "appending to the log",
    ] {
        let t = secs(stage).unwrap_or_else(|| panic!("no time for {stage}: {out}"));
        // Each of these stages did work for 3,480 captives on its thread.
        assert!(t > 0.0 && t < 600.0, "{stage}: {t} in {out}");
        sum += t;
    }
    match secs("folding the log's WAL") {
        Some(t) => {
            assert!(!on_postgres(), "{out}");
            sum += t;
        }
        None => assert!(on_postgres(), "{out}"),
    }
    let all = secs("all stages").unwrap();
    // Each figure is rounded to the millisecond.
    assert!((all - sum).abs() <= 0.004, "{all} vs {sum} in {out}");
}

// ---------------------------------------------------------------------------------------------
// The demo

#[test]
fn the_demo_builds_a_registry_that_verifies() {
    let r = Reg::empty();
    let out = r.ok(&["demo", "--count", "50", "--no-serve"]);
    assert!(out.contains("리한검"), "{out}");
    // His record as corrected after his transfer (corrections are accepted after an end).
    assert!(
        out.contains("corrected       particulars as corrected by event")
            && out.contains("Рі Хан Гом")
            && out.contains("2003-05-04"),
        "{out}"
    );
    assert!(
        out.contains("recorded, 0 steps refused by the guards"),
        "every synthetic lifecycle step passes the guards: {out}"
    );
    let users = std::fs::read_to_string(r.data().join("demo-users.tsv")).unwrap();
    assert_eq!(
        users.lines().count(),
        1 + 3 * 8,
        "a user for every role of every organisation"
    );
    assert!(out.contains("verified"), "{out}");
    assert!(
        out.contains("REFUSED: exchange-list entry of AS-000002 to KP refused (G1)"),
        "{out}"
    );
    assert!(
        out.contains("AS-000001: transferred to KR; wish verified (KR)"),
        "{out}"
    );
    assert_eq!(r.persons_json().len(), 52);
    r.ok(&["ledger", "verify"]);
}

/// One HTTP/1.1 request over a plain socket: (status, headers and body as text).
fn http(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

impl Reg {
    /// Starts `args`, a command that serves HTTP, and waits until it says where.
    fn serving(&self, args: &[&str]) -> (std::process::Child, String) {
        use std::io::BufRead;
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server stopped before serving")
                .unwrap();
            if let Some(rest) = line.strip_prefix("asylon: serving http://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        (child, addr)
    }

    /// Signs `user` in at `addr` with `password` and the current code of his TOTP `secret`.
    fn sign_in(&self, addr: &str, user: &str, password: &str, secret: &str) -> (u16, String) {
        let code = String::from_utf8(self.cmd(&["totp", secret]).output().unwrap().stdout).unwrap();
        let body = format!(
            r#"{{"user":"{user}","password":"{password}","totp":"{}"}}"#,
            code.trim()
        );
        http(
            addr,
            &format!(
                "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    }
}

#[test]
fn the_demo_serves_and_its_users_sign_in_with_a_second_factor() {
    let r = Reg::empty();
    let (mut child, addr) = r.serving(&["demo", "--count", "24", "--listen", "127.0.0.1:0"]);
    let users = std::fs::read_to_string(r.data().join("demo-users.tsv")).unwrap();
    let secret = users
        .lines()
        .find(|l| l.contains("\tcta-interviewer\t"))
        .and_then(|l| l.split('\t').nth(3))
        .unwrap()
        .to_string();
    let (status, resp) = r.sign_in(&addr, "cta-interviewer", "asylon-demo-password", &secret);
    assert_eq!(status, 200, "{resp}");
    let cookie = resp
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let (status, resp) = http(
        &addr,
        &format!(
            "GET /api/persons/AS-000001/interviews HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{resp}");
    assert!(
        resp.contains("Fears for his family"),
        "the agency reads its own notes: {resp}"
    );
    let (status, _) = http(
        &addr,
        "GET /api/persons/AS-000001 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401, "nothing without signing in");
    // The server holds the key-encryption key and opens sealed classes: no core dump of it.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn org_add_creates_an_organisation_whose_administrator_signs_in() {
    const PASSWORD: &str = "a long enough password";
    let r = Reg::new();
    let add = |password: Option<&str>, args: &[&str]| {
        let mut c = r.cmd(&[&["org", "add"][..], args].concat());
        c.env_remove("ASYLON_ADMIN_PASSWORD");
        if let Some(p) = password {
            c.env("ASYLON_ADMIN_PASSWORD", p);
        }
        c.output().unwrap()
    };
    let before = r.event_count();
    let good = [
        "neutral",
        "--name",
        "ICRC Central Tracing Agency",
        "--admin",
        "cta-admin",
    ];
    for (password, args, want) in [
        (
            None,
            good,
            "set the administrator's password in $ASYLON_ADMIN_PASSWORD",
        ),
        (
            Some("too short"),
            good,
            "password: must be 12 to 256 characters",
        ),
        (
            Some(PASSWORD),
            ["martians", "--name", "M", "--admin", "cta-admin"],
            "org: must be",
        ),
        (
            Some(PASSWORD),
            ["receiving:XX", "--name", "M", "--admin", "cta-admin"],
            "with XX a state's ISO 3166 code",
        ),
        (
            Some(PASSWORD),
            ["neutral", "--name", "ICRC", "--admin", "CTA Admin"],
            "admin: the administrator's user name",
        ),
        (
            Some(PASSWORD),
            ["neutral", "--name", " ", "--admin", "cta-admin"],
            "name: give the organisation's name",
        ),
    ] {
        let o = add(password, &args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(want), "{args:?}: {e}");
    }
    assert_eq!(r.event_count(), before, "a refused org add wrote something");
    let o = add(Some(PASSWORD), &good);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("organisation neutral created") && out.contains("user cta-admin"),
        "{out}"
    );
    let secret = out
        .split("TOTP secret ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let e = String::from_utf8_lossy(&add(Some(PASSWORD), &good).stderr).to_string();
    assert!(e.contains("organisation neutral already exists"), "{e}");
    // Its administrator signs in with the password and the second factor he was given.
    let (mut child, addr) = r.serving(&["serve", "--listen", "127.0.0.1:0"]);
    let (status, resp) = r.sign_in(&addr, "cta-admin", "not the password", &secret);
    assert_eq!(status, 401, "{resp}");
    let (status, resp) = r.sign_in(&addr, "cta-admin", PASSWORD, &secret);
    assert_eq!(status, 200, "{resp}");
    assert!(
        resp.contains(r#""org":"neutral""#) && resp.contains(r#""roles":["admin"]"#),
        "{resp}"
    );
    // Ctrl-c stops it cleanly, its registry's connections closed (on PostgreSQL too).
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the server did not stop cleanly: {status}"
    );
}

// ---------------------------------------------------------------------------------------------
// The law: record, person status, deadlines

impl Reg {
    /// Runs `record -` as a user of an organisation with roles.
    fn record_as(&self, user: &str, org: &str, roles: &str, cmd: &str) -> Output {
        self.run(
            &[
                "--user", user, "--org", org, "--roles", roles, "record", "-",
            ],
            Some(cmd),
        )
    }

    fn record_ok(&self, user: &str, org: &str, roles: &str, cmd: &str) -> String {
        let o = self.record_as(user, org, roles, cmd);
        assert!(
            o.status.success(),
            "{cmd} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn record_refused(&self, user: &str, org: &str, roles: &str, cmd: &str) -> String {
        let before = self.event_count();
        let o = self.record_as(user, org, roles, cmd);
        assert!(!o.status.success(), "{cmd} should have been refused");
        assert_eq!(self.event_count(), before, "a refusal wrote something");
        String::from_utf8(o.stderr).unwrap()
    }

    fn status_json(&self, case: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["person", "status", case, "--json"])).unwrap()
    }
}

fn interview(case: &str, on: &str, wish: &str, fear: bool, notes: &str) -> String {
    format!(
        r#"{{"command": "record_interview", "case": "{case}", "on": "{on}", "interpreter": "K. Lee",
            "interpreter_org": "neutral", "language": "ko", "private": true, "wish": "{wish}",
            "fear_of_persecution": {fear}, "notes": "{notes}"}}"#
    )
}

#[test]
fn report_gives_counts_and_none_smaller_than_k() {
    let r = with_captives(6);
    let report =
        || -> serde_json::Value { serde_json::from_str(&r.ok(&["report", "--json"])).unwrap() };
    let six = report();
    assert_eq!(
        (six["k"].as_u64(), six["captives"].as_u64()),
        (Some(5), Some(6))
    );
    assert_eq!(
        six["tables"][0],
        serde_json::json!({"by": "power", "cells": [{"value": "KP", "count": 6}]})
    );
    let text = r.ok(&["report"]);
    assert!(
        text.contains("captives  6") && text.contains("KP"),
        "{text}"
    );
    // Two erased: four are fewer than k (5), and no count is given.
    for case in ["AS-000001", "AS-000002"] {
        r.ok(&["person", "erase", case, "--reason", "court order"]);
    }
    let four = report();
    assert_eq!(four["captives"], serde_json::Value::Null, "{four}");
    assert_eq!(
        four["tables"][0]["cells"][0]["count"],
        serde_json::Value::Null,
        "{four}"
    );
    let e = r.fails(
        &["--org", "receiving:KR", "--roles", "liaison", "report"],
        None,
    );
    assert!(e.contains("statistics are for"), "{e}");
}

#[test]
fn person_notify_hands_over_what_may_go_to_its_recipient_and_records_it() {
    let r = with_captives(2);
    // The first told the neutral agency he fears going home (G1 protects him).
    r.record_ok(
        "delegate",
        "neutral",
        "interviewer",
        &interview("AS-000001", "2025-03-01", "stay", true, "first"),
    );
    let notify = |case: &str, to: &str| -> serde_json::Value {
        serde_json::from_str(&r.ok(&["person", "notify", case, "--to", to])).unwrap()
    };
    let to_origin = notify("as-1", "origin");
    assert_eq!(to_origin["case"], "AS-000001");
    assert_eq!(
        to_origin["withheld"],
        serde_json::json!(["identity", "family", "statements"])
    );
    let text = to_origin.to_string();
    for his in ["SN00001", "Kursk", "2001-04-12"] {
        assert!(!text.contains(his), "{his} in {text}");
    }
    // To the neutral agency, and for the second (who said nothing) to his own power: his record.
    for (case, to) in [("AS-000001", "agency"), ("AS-000002", "origin")] {
        let n = notify(case, to);
        assert!(n["identity"]["service_number"].is_string(), "{n}");
        let log = r.ok(&["event", "list", "--person", case]);
        assert!(
            log.contains("case.notification_sent") && log.contains("person.sealed_read"),
            "{log}"
        );
    }
    // Refused with a clear error, and nothing written.
    let before = r.event_count();
    let e = r.fails(&["person", "notify", "AS-000001", "--to", "moscow"], None);
    assert!(e.contains("agency") && e.contains("origin"), "{e}");
    let e = r.fails(
        &[
            "--org",
            "receiving:KR",
            "--roles",
            "liaison",
            "person",
            "notify",
            "AS-000001",
            "--to",
            "agency",
        ],
        None,
    );
    assert!(e.contains("not allowed"), "{e}");
    let e = r.fails(&["person", "notify", "AS-000009", "--to", "agency"], None);
    assert!(e.contains("AS-000009"), "{e}");
    assert_eq!(r.event_count(), before);
    r.ok(&["ledger", "verify"]);
}

#[test]
fn correcting_his_power_suspends_a_transfer_that_would_return_him() {
    let r = Reg::new();
    // Registered, wrongly, as depending on RU; he asks to go to KP, which accepts him.
    let registered = r#"{"external_id": "UA-9", "names": ["백광철"], "date_of_birth": "2004",
        "rank": "private", "service_number": "4731129", "power": "RU",
        "captured_on": "2025-01-09"}"#;
    r.ok_in(&["person", "register", "-"], Some(registered));
    let n = |cmd: &str| r.record_ok("delegate", "neutral", "interviewer", cmd);
    n(&interview("AS-000001", "2025-03-01", "KP", true, "first"));
    n(&interview("AS-000001", "2025-03-12", "KP", true, "second"));
    r.record_ok(
        "official",
        "receiving:KP",
        "liaison",
        r#"{"command": "record_acceptance", "case": "AS-000001", "state": "KP"}"#,
    );
    let out = r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "propose_transfer", "case": "AS-000001", "to": "KP"}"#,
    );
    assert!(out.contains("AS-000001/M1"), "{out}");
    let out = r.ok_in(
        &[
            "person",
            "amend",
            "AS-000001",
            "-",
            "--reason",
            "unit papers: KPA",
        ],
        Some(&registered.replace(
            "\"RU\"",
            &format!("\"KP\", \"from_event\": {}", r.particulars_seq("AS-000001")),
        )),
    );
    assert!(
        out.contains("suspended AS-000001/M1 (G1): his record was corrected: he depends on KP"),
        "{out}"
    );
    let status = r.status_json("AS-000001");
    assert_eq!(status["power"], "KP", "{status}");
    let m = &status["movements"]["AS-000001/M1"]["status"];
    assert_eq!(
        (&m["status"], &m["guard"]),
        (&"suspended".into(), &"G1".into()),
        "{status}"
    );
    let e = r.record_refused(
        "reg",
        "detaining",
        "legal",
        r#"{"command": "approve", "case": "AS-000001", "movement": "AS-000001/M1"}"#,
    );
    assert!(e.contains("suspended"), "{e}");
    r.ok(&["ledger", "verify"]);
}

#[test]
fn a_transfer_to_a_third_state_passes_every_guard_and_a_refusal_writes_nothing() {
    let r = with_captives(2);
    let case = "AS-000001";
    let n = |cmd: &str| r.record_ok("delegate", "neutral", "interviewer", cmd);
    n(&interview(
        case,
        "2025-03-01",
        "KR",
        true,
        "he fears his family will be sent to a camp",
    ));
    let e = r.record_refused(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "propose_transfer", "case": "AS-000001", "to": "KR"}"#,
    );
    assert!(
        e.contains("transfer of AS-000001 to KR refused (G2): one interview states the wish to go to KR; two are needed"),
        "{e}"
    );
    n(&interview(
        case,
        "2025-03-12",
        "KR",
        true,
        "the same, a second time",
    ));
    let e = r.record_refused(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "propose_transfer", "case": "AS-000001", "to": "KR"}"#,
    );
    assert!(e.contains("(G3)"), "{e}");
    r.record_ok("consul", "receiving:KR", "liaison", r#"{"command": "record_acceptance", "case": "AS-000001", "state": "KR", "conditions": "as a citizen"}"#);
    // Referred to KR, which sees his public record; his identity is withheld (he has not
    // consented), and said to be withheld, not destroyed.
    let seen = r.ok(&[
        "--user",
        "consul",
        "--org",
        "receiving:KR",
        "--roles",
        "liaison",
        "person",
        "show",
        "AS-000001",
    ]);
    assert!(
        seen.contains("withheld") && seen.contains("has not agreed"),
        "{seen}"
    );
    assert!(!seen.contains("destroyed"), "{seen}");
    let out = r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "propose_transfer", "case": "AS-000001", "to": "KR"}"#,
    );
    assert!(out.contains("AS-000001/M1"), "{out}");
    let m = r#""case": "AS-000001", "movement": "AS-000001/M1""#;
    let e = r.record_refused(
        "reg",
        "detaining",
        "legal",
        &format!(r#"{{"command": "approve", {m}}}"#),
    );
    assert!(e.contains("cannot also approve"), "{e}");
    r.record_ok(
        "lawyer",
        "detaining",
        "legal",
        &format!(r#"{{"command": "approve", {m}}}"#),
    );
    let e = r.record_refused(
        "reg",
        "detaining",
        "registrar",
        &format!(r#"{{"command": "hand_over", {m}}}"#),
    );
    assert!(e.contains("(G4)") && e.contains("not reconfirmed"), "{e}");
    n(&format!(r#"{{"command": "reconfirm", {m}}}"#));
    r.record_ok(
        "reg",
        "detaining",
        "registrar",
        &format!(r#"{{"command": "hand_over", {m}}}"#),
    );

    let st = r.status_json(case);
    assert_eq!(
        st["end"],
        serde_json::json!({"end": "transferred", "state": "KR"})
    );
    assert_eq!(
        st["wish_status"],
        serde_json::json!({"status": "verified", "wish": "KR"})
    );
    // G7 after the end; the log verifies; what he said is nowhere in the files.
    let e = r.record_refused(
        "delegate",
        "neutral",
        "interviewer",
        &interview(case, "2025-04-01", "return", false, "x"),
    );
    assert!(e.contains("(G7)"), "{e}");
    r.ok(&["ledger", "verify"]);
    let raw = raw_text(&r);
    assert!(!raw.contains("sent to a camp") && !raw.contains("a second time"));
    // The status shows the derived wish, not the statements.
    let text = r.ok(&["person", "status", case]);
    assert!(
        text.contains("verified: go to KR") && !text.contains("camp"),
        "{text}"
    );
}

#[test]
fn a_change_of_mind_suspends_a_pending_repatriation_at_once() {
    let r = with_captives(1);
    let case = "AS-000001";
    r.record_ok(
        "delegate",
        "neutral",
        "interviewer",
        &interview(case, "2025-03-01", "return", false, "home"),
    );
    r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "propose_repatriation", "case": "AS-000001"}"#,
    );
    let out = r.record_ok(
        "delegate",
        "neutral",
        "interviewer",
        &interview(case, "2025-03-05", "stay", true, "afraid"),
    );
    assert!(
        out.contains("case.movement_suspended") && out.contains("G5"),
        "{out}"
    );
    let st = r.status_json(case);
    assert_eq!(
        st["movements"]["AS-000001/M1"]["status"]["status"],
        "suspended"
    );
    assert!(
        st["protected_from_return"]
            .as_str()
            .unwrap()
            .contains("stay in the detaining state")
    );
    // The notification to the power of origin withholds everything identifying, and says why.
    let out = r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "send_notification", "case": "AS-000001", "to": "origin"}"#,
    );
    assert!(
        out.contains(r#""included":[]"#)
            && out.contains(r#""withheld":["identity","family","statements"]"#),
        "{out}"
    );
    assert!(out.contains("G6:"), "{out}");
}

#[test]
fn an_overdue_capture_card_is_listed_and_clears_when_the_card_is_recorded() {
    let r = with_captives(2);
    // Registration opens the capture card duty; issue it for both, then move one to a camp.
    for c in ["AS-000001", "AS-000002"] {
        r.record_ok(
            "reg",
            "detaining",
            "registrar",
            &format!(r#"{{"command": "issue_capture_card", "case": "{c}"}}"#),
        );
    }
    r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "define_place", "place": "Camp 3", "kind": "camp"}"#,
    );
    r.record_ok("reg", "detaining", "registrar", r#"{"command": "move_custody", "case": "AS-000002", "place": "Camp 3", "on": "2025-05-01"}"#);
    let overdue = r.ok(&["deadlines", "--overdue"]);
    assert!(
        overdue.contains("AS-000002 capture_card") && overdue.contains("due 2025-05-08  OVERDUE"),
        "{overdue}"
    );
    assert!(!overdue.contains("AS-000001"), "{overdue}");
    r.record_ok(
        "reg",
        "detaining",
        "registrar",
        r#"{"command": "issue_capture_card", "case": "AS-000002"}"#,
    );
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["deadlines", "--json"])).unwrap();
    assert!(all.iter().all(|d| d["kind"] != "capture_card"), "{all:?}");
    assert!(all.iter().any(|d| d["kind"] == "notification"));
}

#[test]
fn malformed_law_commands_and_actors_are_refused_clearly() {
    let r = with_captives(1);
    for (cmd, want) in [
        (
            r#"{"command": "teleport", "case": "AS-000001"}"#,
            "unknown variant",
        ),
        (
            r#"{"command": "propose_repatriation", "case": "AS-000001", "extra": 1}"#,
            "unknown field",
        ),
        (
            &interview("AS-000001", "2025-03-01", "Korea", false, "x"),
            "is not a wish",
        ),
        (
            &interview("AS-000001", "2999-03-01", "KR", false, "x"),
            "in the future",
        ),
        (
            r#"{"command": "reconfirm", "case": "AS-999999", "movement": "AS-999999/M1"}"#,
            "no person",
        ),
        ("not json", "the command must be one JSON object"),
        (
            "{not json",
            "the command: not valid JSON of the expected shape",
        ),
    ] {
        let e = r.record_refused("delegate", "neutral", "interviewer", cmd);
        assert!(e.contains(want), "{cmd}: expected {want:?} in {e}");
    }
    let e = r.record_refused(
        "x",
        "martians",
        "registrar",
        r#"{"command": "doubt_status", "case": "AS-000001"}"#,
    );
    assert!(e.contains("unknown organisation"), "{e}");
    let e = r.record_refused(
        "x",
        "detaining",
        "king",
        r#"{"command": "doubt_status", "case": "AS-000001"}"#,
    );
    assert!(e.contains("unknown role"), "{e}");
    std::fs::write(r.data().join("settings.toml"), "interviews_needed = 0\n").unwrap();
    let e = r.record_refused(
        "x",
        "detaining",
        "registrar",
        r#"{"command": "doubt_status", "case": "AS-000001"}"#,
    );
    assert!(e.contains("interviews_needed must be at least 1"), "{e}");
    // A setting past any use is refused, rather than a due date past the calendar.
    std::fs::write(
        r.data().join("settings.toml"),
        "capture_card_days = 4000000000\n",
    )
    .unwrap();
    let e = r.fails(&["deadlines"], None);
    assert!(e.contains("capture_card_days must be at most 3650"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Names: keys, match, dedupe, search through the blind index

#[test]
fn names_keys_shows_one_key_for_the_scripts_of_one_name() {
    let r = Reg::empty();
    let hangul = r.ok(&["names", "keys", "리한검"]);
    let cyrillic = r.ok(&["names", "keys", "Рі Хан Гом"]);
    let key = hangul
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(key, "I HAN-KOM");
    assert!(cyrillic.contains(&key), "{cyrillic}");
    let e = r.fails(&["names", "keys", "!!!"], None);
    assert!(e.contains("no letters"), "{e}");
}

/// The lists the linkage benchmark uses, written by `synth link-lists` and linked by `match`
/// end to end: what it links is measured against the truth it was written with. Seeded, so
/// the same every run; `cargo test -p asylon-cli --test cli synthetic_lists -- --nocapture`
/// prints the figures (recall 0.957, precision 0.928 when written).
#[test]
fn synthetic_lists_are_linked_with_their_truth_found() {
    let r = Reg::empty();
    let dir = r.dir.path().join("lists");
    let d = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let out = r.ok(&[
        "synth",
        "link-lists",
        "--left",
        "200",
        "--right",
        "2000",
        "--seed",
        "3",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("200 left, 2000 right records"), "{out}");
    r.ok(&[
        "match",
        &d("left.csv"),
        &d("right.csv"),
        "--out",
        &d("links.csv"),
    ]);
    let pairs = |file: &str| -> std::collections::HashSet<(String, String)> {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        text.lines()
            .skip(1)
            .map(|l| {
                let mut f = l.split(',');
                (f.next().unwrap().to_string(), f.next().unwrap().to_string())
            })
            .collect()
    };
    let (truth, links) = (pairs("truth.csv"), pairs("links.csv"));
    assert!(truth.len() > 100, "{} true links", truth.len());
    let found = truth.intersection(&links).count() as f64;
    let (recall, precision) = (found / truth.len() as f64, found / links.len() as f64);
    eprintln!("recall {recall:.3}, precision {precision:.3}");
    assert!(
        recall >= 0.9 && precision >= 0.85,
        "recall {recall:.3}, precision {precision:.3}"
    );
}

#[test]
fn match_links_lists_across_scripts_and_refuses_bad_lists() {
    let r = Reg::empty();
    let left = r.file(
        "left.csv",
        "id,name,date_of_birth\nL1,리한검,2001\nL2,박봉주,1999-03\nL3,김철남,\n",
    );
    let right = r.file(
        "right.csv",
        "id,name,date_of_birth\nR1,Ri Han Gom,2001\nR2,Pak Pong Su,1990\nR3,Ли Хан Гом,\nR4,Pak Pong Ju,1999\n",
    );
    let out = r.dir.path().join("links.csv");
    r.ok(&[
        "match",
        left.to_str().unwrap(),
        right.to_str().unwrap(),
        "--top",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["left_id", "right_id", "score"]);
    let pairs: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(pairs, [("L1", "R1"), ("L1", "R3"), ("L2", "R4")], "{text}");
    // Scores are probabilities, best first per left record.
    let s: Vec<f64> = rows[1..].iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        s[0] >= s[1] && s.iter().all(|x| (0.5..=1.0).contains(x)),
        "{s:?}"
    );

    let bad = r.file(
        "bad.csv",
        "id,name,date_of_birth\nX,리한검,2001\nX,Kim,20011\n,!!!,\n",
    );
    let e = r.fails(
        &["match", bad.to_str().unwrap(), right.to_str().unwrap()],
        None,
    );
    contains_all(
        &e,
        &[
            "line 3: id X is already used on line 2",
            "line 3: date_of_birth",
            "line 4: id is empty",
            "line 4: name",
            "bad.csv: 4 problems; nothing was matched",
        ],
    );
    let one = r.file(
        "one.csv",
        "id,name
X,
",
    );
    let e = r.fails(
        &["match", one.to_str().unwrap(), right.to_str().unwrap()],
        None,
    );
    assert!(e.contains("one.csv: 1 problem; nothing"), "{e}");
    let e = r.fails(
        &[
            "match",
            r.file("h.csv", "name,id\n").to_str().unwrap(),
            right.to_str().unwrap(),
        ],
        None,
    );
    assert!(e.contains("header must be id,name"), "{e}");
    let dups = r.ok(&["names", "dedupe", right.to_str().unwrap()]);
    assert!(
        dups.contains("group 1: R1 (Ri Han Gom), R3 (Ли Хан Гом)"),
        "{dups}"
    );
    assert!(
        dups.contains("1 group of possible duplicates among 4 records"),
        "{dups}"
    );
}

#[test]
fn person_search_finds_sealed_names_in_any_script_and_forgets_the_erased() {
    let r = Reg::new();
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("P-1", "리한검")),
    );
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("P-2", "박봉주")),
    );
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("P-3", "박봉수")),
    );
    for q in [
        "Ri Han Gom",
        "Lee Han-geom",
        "Ли Хан Гом",
        "Рі Хан Гом",
        "이한검",
    ] {
        let hits: Vec<serde_json::Value> =
            serde_json::from_str(&r.ok(&["person", "search", q, "--json"])).unwrap();
        assert_eq!(hits.len(), 1, "{q}: {hits:?}");
        assert_eq!(hits[0]["case_no"], "AS-000001", "{q}");
    }
    let hits: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["person", "search", "Pak Pong Ju", "--json"])).unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h["case_no"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["AS-000002"]
    );
    // The index holds keyed hashes only: no key text, no name.
    let raw = raw_text(&r);
    assert!(!raw.contains("HAN-KOM") && !raw.contains("리한검"));
    let e = r.fails(&["person", "search", "42"], None);
    assert!(e.contains("cannot be read"), "{e}");
    // Every search is recorded: who, and which case numbers it returned, never the name typed.
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["event", "list", "--json"])).unwrap();
    let searches: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "registry.name_searched")
        .collect();
    assert_eq!(searches.len(), 6);
    assert_eq!(
        searches[0]["public"]["results"],
        serde_json::json!(["AS-000001"])
    );
    assert_eq!(searches[0]["actor"]["user"], "tester");
    assert!(!r.ok(&["event", "list"]).contains("Ri Han Gom"));
    // The text says how many, and when the limit cut the list short.
    let text = r.ok(&["person", "search", "Pak Pong Ju"]);
    assert!(
        text.contains("AS-000002") && text.contains("1 captive matches;"),
        "{text}"
    );
    let text = r.ok(&["person", "search", "Pak Pong Ju", "--limit", "1"]);
    assert!(
        text.contains("the best 1 shown; there may be more (--limit)"),
        "{text}"
    );
    // The blind index keys its rows by the case's number.
    let indexed = || r.keys_count("SELECT COUNT(*) FROM name_index WHERE person = 1");
    assert!(indexed() > 0);
    r.ok(&["person", "erase", "AS-000001", "--reason", "court order"]);
    let hits: Vec<serde_json::Value> =
        serde_json::from_str(&r.ok(&["person", "search", "Ri Han Gom", "--json"])).unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let text = r.ok(&["person", "search", "Ri Han Gom"]);
    assert_eq!(text.trim(), "no captive matches");
    assert_eq!(indexed(), 0);
    r.ok(&["ledger", "verify"]);

    // A form in Hanja is found by the same Hanja, however spaced, by the compatibility
    // ideograph Korean encodings write for 李 read 이 (U+F9E1, the same character as U+674E),
    // and by its Korean reading in any script (李 is 리 or 이; 金 as a surname is 김); not by
    // other Hanja or another reading.
    let lee = r#"{"external_id": "P-4", "names": ["李漢劍"], "date_of_birth": "2001-04-12",
        "rank": "private", "service_number": "SN4", "power": "KP",
        "captured_on": "2025-01-09"}"#;
    let kim = lee
        .replace("P-4", "P-5")
        .replace("李漢劍", "金漢劍")
        .replace("SN4", "SN5");
    r.ok_in(&["person", "register", "-"], Some(lee));
    r.ok_in(&["person", "register", "-"], Some(&kim));
    let found = |q: &str| -> Vec<String> {
        serde_json::from_str::<Vec<serde_json::Value>>(&r.ok(&["person", "search", q, "--json"]))
            .unwrap()
            .iter()
            .map(|h| h["case_no"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(found("李漢劍"), ["AS-000004"]);
    assert_eq!(found("李 漢劍"), ["AS-000004"]);
    assert_eq!(found("\u{F9E1}漢劍"), ["AS-000004"]);
    assert_eq!(found("金漢劍"), ["AS-000005"]);
    assert!(found("朴漢劍").is_empty());
    for q in [
        "리한검",
        "이한검",
        "Ri Han Gom",
        "Lee Han-geom",
        "Ли Хан Гом",
    ] {
        assert_eq!(found(q), ["AS-000004"], "{q}");
    }
    assert_eq!(found("Kim Han Gom"), ["AS-000005"]);
    assert!(found("Pak Han Gom").is_empty());
    assert!(!raw_text(&r).contains("漢劍"));
}

// ---------------------------------------------------------------------------------------------
// Backup and restore

#[test]
fn a_backup_taken_during_an_import_restores_to_a_registry_that_extends_the_earlier_checkpoint() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let r = with_captives(3);
    let cp = r.file("cp.json", &r.ok(&["ledger", "checkpoint"]));
    let file = r.synth("big.csv", 8000, 3);
    let mut import = r
        .cmd(&["import", "persons", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backup = r.dir.path().join("registry.backup");
    let keys_backup = r.dir.path().join("keys.backup");
    let out = r.backup_to(&backup, &keys_backup);
    assert!(
        out.contains("backup written") && out.contains("key store written"),
        "{out}"
    );
    assert!(import.wait().unwrap().success());
    // The registry copy holds ciphertext and no key.
    let raw = String::from_utf8_lossy(&std::fs::read(&backup).unwrap()).into_owned();
    assert!(
        raw.contains("AS-000001") && !raw.contains("김철"),
        "names readable in the backup"
    );
    let c = Connection::open(&backup).unwrap();
    assert!(
        c.query_row("SELECT COUNT(*) FROM data_keys", [], |x| x.get::<_, i64>(0))
            .is_err(),
        "keys in the backup"
    );
    drop(c);
    // Restored elsewhere with the key: it verifies and extends the checkpoint taken before.
    let (b, kb) = (backup.to_str().unwrap(), keys_backup.to_str().unwrap());
    let e = Reg::empty().fails(&["restore", b, "--keys", kb], None);
    assert!(e.contains("--key-file"), "{e}");
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let out = target.ok(&["restore", b, "--keys", kb]);
    assert!(out.contains("verified"), "{out}");
    let v = target.ok(&["ledger", "verify", "--checkpoint", cp.to_str().unwrap()]);
    assert!(v.contains("extends the checkpoint of size 4"), "{v}");
    assert!(
        target
            .ok(&["person", "show", "AS-000002"])
            .contains("SN00002")
    );
    // Never over an existing file or registry; a wrong key leaves nothing behind.
    let e = r.fails(&["backup", "--out", b], None);
    assert!(e.contains("never overwrites"), "{e}");
    // Where a copy cannot be written is said before anything is written.
    let dir = r.dir.path();
    let (fresh, missing) = (dir.join("fresh.db"), dir.join("no-such-dir/keys.db"));
    let (f, m) = (fresh.to_str().unwrap(), missing.to_str().unwrap());
    for (args, want) in [
        (vec!["--out", dir.to_str().unwrap()], "it is a directory"),
        (vec!["--out", m], "there is no directory"),
        (vec!["--out", f, "--keys-out", m], "there is no directory"),
        (vec!["--out", f, "--keys-out", f], "needs a file of its own"),
    ] {
        let e = r.fails(&[&["backup"][..], &args].concat(), None);
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!fresh.exists() && !missing.exists(), "{args:?}");
    }
    // A backup that fails once the registry's copy is written (here: a key store path SQLite
    // cannot be given, not being UTF-8) leaves no half of it: a registry copy without the key
    // store's it was asked with would pass for a whole backup.
    let o = r
        .cmd(&["backup", "--out", f, "--keys-out"])
        .arg(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                &[dir.to_str().unwrap().as_bytes(), b"/k\xff.db"].concat(),
            ),
        )
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("is not a UTF-8 path"),
        "{e}"
    );
    assert!(
        !fresh.exists(),
        "the registry's copy of a failed backup stayed"
    );
    let e = target.fails(&["restore", b, "--keys", kb], None);
    assert!(e.contains("already exists"), "{e}");
    let other = Reg::new();
    let wrong = Reg::empty_with_key(other.data().join("registry.key"));
    let e = wrong.fails(&["restore", b, "--keys", kb], None);
    assert!(e.contains("does not open this registry"), "{e}");
    assert!(
        !wrong.data().exists(),
        "a refused restore left its directory behind"
    );
    // A file given in the wrong place is named, before anything is written: another file, an
    // empty database, or the two swapped.
    let csv = r.file("list.csv", &csv(&[]));
    let empty = r.dir.path().join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let empty = empty.to_str().unwrap();
    let fresh = Reg::empty_with_key(r.data().join("registry.key"));
    for (args, want) in [
        (
            ["restore", csv.to_str().unwrap(), "--keys", kb],
            "list.csv is not a backup written by `asylon backup`",
        ),
        (
            ["restore", b, "--keys", csv.to_str().unwrap()],
            "list.csv is not a key store written by `asylon backup`",
        ),
        (
            ["restore", empty, "--keys", kb],
            "empty.db is not a backup written by `asylon backup` (it holds no events)",
        ),
        (
            ["restore", b, "--keys", empty],
            "empty.db is not a key store written by `asylon backup` (it holds no data keys)",
        ),
        (
            ["restore", kb, "--keys", b],
            "is a key store, not a registry backup: give the registry backup",
        ),
        (
            ["restore", b, "--keys", b],
            "is a registry backup, not a key store: give the registry backup",
        ),
    ] {
        let e = fresh.fails(&args, None);
        assert!(e.contains(want), "{e}");
        assert!(!fresh.data().exists());
    }
}

#[test]
fn an_erasure_reaches_every_backup_taken_before_it() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let r = with_captives(3);
    let backup = r.dir.path().join("before.backup");
    r.ok(&["backup", "--out", backup.to_str().unwrap()]);
    r.ok(&["person", "erase", "AS-000002", "--reason", "court order"]);
    // The backup from before the erasure, restored with the key store as it is now.
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let keys_now = r.data().join("keys.db");
    let out = target.restore_from(&backup, &keys_now);
    assert!(out.contains("verified"), "{out}");
    // Restored, he reads as registered, but nothing of him can be read: the restore says so.
    assert!(
        out.contains("note: no keys in the key store for AS-000002"),
        "{out}"
    );
    let e = target.fails(&["person", "show", "AS-000002"], None);
    assert!(
        e.contains("the key store holds no keys for AS-000002: his sealed data cannot be read"),
        "{e}"
    );
    assert!(
        target
            .ok(&["person", "show", "AS-000003"])
            .contains("SN00003")
    );
    let v = target.ok(&["ledger", "verify"]);
    assert!(v.contains("no keys in the key store for AS-000002"), "{v}");
}

/// Files (and directories) under `path` that a user other than their owner may read, write or
/// enter, with their modes.
fn open_to_others(path: &Path, out: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    if mode & 0o077 != 0 {
        out.push(format!("{} {:o}", path.display(), mode & 0o777));
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            open_to_others(&entry.unwrap().path(), out);
        }
    }
}

#[test]
fn every_file_asylon_writes_is_kept_to_its_owner() {
    // As under a default login shell: without Asylon's own mask, every file here is readable by
    // every account on the machine. The mask is inherited by the commands run below.
    rustix::process::umask(rustix::fs::Mode::WGRP | rustix::fs::Mode::WOTH);
    let r = with_captives(3);
    r.ok(&["person", "show", "AS-000002"]);
    let mut written = vec![r.data()];
    let (backup, keys) = (r.dir.path().join("b.backup"), r.dir.path().join("k.backup"));
    r.backup_to(&backup, &keys);
    written.extend([backup, keys]);
    let list = r.file("list.csv", "id,name\nL1,리한검\nL2,Ri Han Gom\n");
    let links = r.dir.path().join("links.csv");
    let (l, out) = (list.to_str().unwrap(), links.to_str().unwrap());
    r.ok(&["match", l, l, "--out", out]);
    written.push(links);
    let mut open = Vec::new();
    for path in &written {
        assert!(path.exists(), "{} was not written", path.display());
        open_to_others(path, &mut open);
    }
    assert!(open.is_empty(), "open to other accounts: {open:#?}");
    // The check can fail: the test's own file, made under the same mask, is open to them.
    open_to_others(&list, &mut open);
    assert_eq!(open.len(), 1, "{open:?}");
}

#[test]
fn a_backup_from_before_a_correction_restores_with_the_name_index_of_its_records() {
    let r = with_captives(3);
    let before = r.dir.path().join("before.backup");
    r.ok(&["backup", "--out", before.to_str().unwrap()]);
    let mut record: serde_json::Value =
        serde_json::from_str(&r.ok(&["person", "show", "AS-000002", "--particulars"])).unwrap();
    record["names"] = serde_json::json!(["박봉주"]);
    let file = r.file("corrected.json", &record.to_string());
    let f = file.to_str().unwrap();
    r.ok(&["person", "amend", "AS-000002", f, "--reason", "misheard"]);
    let found = |reg: &Reg, name: &str| reg.ok(&["person", "search", name]).contains("AS-000002");
    assert!(found(&r, "박봉주") && !found(&r, "김광철"));
    // The key store as it is now (on PostgreSQL it is not a file: its backup, taken now).
    let (after, keys) = (
        r.dir.path().join("after.backup"),
        r.dir.path().join("keys.now"),
    );
    let (a, k) = (after.to_str().unwrap(), keys.to_str().unwrap());
    r.ok(&["backup", "--out", a, "--keys-out", k]);
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let out = target.ok(&["restore", before.to_str().unwrap(), "--keys", k]);
    assert!(
        out.contains(
            "3 captives checked; AS-000002 was indexed under names his record does not give"
        ),
        "{out}"
    );
    assert!(out.contains("key: it opens with the key file"), "{out}");
    // His restored record names him 김광철: a search finds him by it, and by the correction
    // the restored log does not hold no more.
    assert!(found(&target, "김광철") && !found(&target, "박봉주"));
    assert!(found(&target, "Kim Kwang Chol"));
    let ok = "3 captives checked, each indexed under the names his record gives";
    assert!(target.ok(&["rebuild"]).contains(ok));
    // In the corrected registry, nothing to replace.
    assert!(r.ok(&["rebuild"]).contains(ok));
    assert!(found(&r, "박봉주") && !found(&r, "김광철"));
}

#[test]
fn a_restore_with_the_current_key_store_takes_what_its_wal_holds() {
    if on_postgres() {
        return; // reads the SQLite files themselves
    }
    let r = with_captives(2);
    // Another connection open on the key store (a server, say): the latest commits stay in its
    // WAL rather than being folded into keys.db when a command ends.
    let holder = Connection::open(r.data().join("keys.db")).unwrap();
    let count: i64 = holder
        .query_row("SELECT COUNT(*) FROM data_keys", [], |x| x.get(0))
        .unwrap();
    assert_eq!(count, 2);
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("W-1", "박봉주")),
    );
    let wal = std::fs::metadata(r.data().join("keys.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal > 0,
        "the new key is not in the WAL: the test shows nothing"
    );
    let backup = r.dir.path().join("now.backup");
    r.ok(&["backup", "--out", backup.to_str().unwrap()]);
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let keys = r.data().join("keys.db");
    let out = target.restore_from(&backup, &keys);
    assert!(!out.contains("no keys"), "{out}");
    assert!(
        target
            .ok(&["person", "show", "AS-000003"])
            .contains("박봉주")
    );
    // The key store given is read, not changed.
    assert_eq!(
        std::fs::metadata(r.data().join("keys.db-wal"))
            .unwrap()
            .len(),
        wal
    );
    drop(holder);
}

#[test]
fn a_restore_into_either_backend_changes_neither_file_it_is_given() {
    if on_postgres() {
        return; // reads the SQLite files themselves
    }
    let r = with_captives(2);
    let copies = tempfile::tempdir().unwrap();
    let (backup, keys) = (
        copies.path().join("registry.backup"),
        copies.path().join("keys.backup"),
    );
    let (b, k) = (backup.to_str().unwrap(), keys.to_str().unwrap());
    r.ok(&["backup", "--out", b, "--keys-out", k]);
    let before = (
        std::fs::read(&backup).unwrap(),
        std::fs::read(&keys).unwrap(),
    );
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(copies.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(files(), ["keys.backup", "registry.backup"]);
    for (backend, target) in restore_targets(&r) {
        restores(&target, backend, b, k, ("AS-000002", "SN00002"));
        // A backup is evidence: a restore reads it and writes nothing beside it, not even
        // the journal mode in its header or a WAL.
        assert!(
            std::fs::read(&backup).unwrap() == before.0,
            "{backend}: the restore changed the backup"
        );
        assert!(
            std::fs::read(&keys).unwrap() == before.1,
            "{backend}: the restore changed the key store backup"
        );
        assert_eq!(files(), ["keys.backup", "registry.backup"], "{backend}");
        // Nor is the working copy left in the data directory.
        let left: Vec<_> = std::fs::read_dir(target.data())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".restore"))
            .collect();
        assert!(left.is_empty(), "{backend}: {left:?}");
    }
}

#[test]
fn a_restore_reads_its_files_from_read_only_media() {
    if on_postgres() {
        return; // copies the SQLite files themselves
    }
    let r = with_captives(2);
    let media = r.dir.path().join("media");
    let Some(disk) = SmallDisk::mount(&media, "16M") else {
        return;
    };
    // The key store as files copied by hand while a server held it open, so that the latest
    // captive's key is in its WAL: in WAL mode (header bytes 18 and 19 are 2), which SQLite
    // cannot open read-only where it may not write the WAL's index beside it.
    let holder = Connection::open(r.data().join("keys.db")).unwrap();
    holder
        .query_row("SELECT COUNT(*) FROM data_keys", [], |x| x.get::<_, i64>(0))
        .unwrap();
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("W-1", "박봉주")),
    );
    let keys = media.join("keys.db");
    for suffix in ["", "-wal"] {
        let from = r.data().join(format!("keys.db{suffix}"));
        std::fs::copy(from, media.join(format!("keys.db{suffix}"))).unwrap();
    }
    drop(holder);
    assert!(std::fs::metadata(media.join("keys.db-wal")).unwrap().len() > 0);
    assert_eq!(std::fs::read(&keys).unwrap()[18..20], [2, 2]);
    let backup = media.join("registry.backup");
    let b = backup.to_str().unwrap();
    r.ok(&["backup", "--out", b]);
    disk.read_only();
    for (backend, target) in restore_targets(&r) {
        let k = keys.to_str().unwrap();
        restores(&target, backend, b, k, ("AS-000003", "박봉주"));
    }
}

/// Empty registries to restore a backup of `r` into, on each backend, with `r`'s key file
/// (PostgreSQL's: `pg_empty` fails under CI when it cannot connect).
fn restore_targets(r: &Reg) -> Vec<(&'static str, Reg)> {
    let key = r.data().join("registry.key");
    let mut targets = vec![("SQLite", Reg::empty_with_key(key.clone()))];
    if let Some(pg) = Reg::pg_empty() {
        targets.push((
            "PostgreSQL",
            Reg {
                key: Some(key),
                ..pg
            },
        ));
    }
    targets
}

/// Restores `backup` with the key store `keys` into `target`, which then shows `case` with
/// `text` in his record.
fn restores(target: &Reg, backend: &str, backup: &str, keys: &str, (case, text): (&str, &str)) {
    let out = target.ok(&["restore", backup, "--keys", keys]);
    assert!(out.contains("verified"), "{backend}: {out}");
    let shown = target.ok(&["person", "show", case]);
    assert!(shown.contains(text), "{backend}: {shown}");
}

#[test]
fn a_restore_with_another_registrys_key_store_is_refused_and_leaves_nothing() {
    let r = with_captives(2);
    let other = with_captives(2);
    let (b, k) = (
        r.dir.path().join("r.backup"),
        r.dir.path().join("other.keys"),
    );
    r.ok(&["backup", "--out", b.to_str().unwrap()]);
    other.backup_to(&r.dir.path().join("o.backup"), &k);
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let e = target.fails(
        &[
            "restore",
            b.to_str().unwrap(),
            "--keys",
            k.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        e.contains(
            "the data key of AS-000001 in the key store does not open with this registry's key"
        ),
        "{e}"
    );
    // Nothing restored, nothing left (no database, settings or working copy): the same
    // command with the right key store then works.
    assert!(!target.data().join("registry.db").exists());
    if let Ok(left) = std::fs::read_dir(target.data()) {
        let left: Vec<_> = left.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{left:?}");
    }
    let keys = r.dir.path().join("r.keys");
    r.backup_to(&r.dir.path().join("r2.backup"), &keys);
    let out = target.restore_from(&b, &keys);
    assert!(out.contains("verified"), "{out}");
}

#[test]
fn an_erasure_reaches_a_key_store_backed_up_before_it() {
    let r = with_captives(3);
    let (reg1, keys1) = (r.dir.path().join("reg1.backup"), r.dir.path().join("keys1"));
    let k1 = keys1.to_str().unwrap();
    r.ok(&["backup", "--out", reg1.to_str().unwrap(), "--keys-out", k1]);
    r.ok(&["person", "erase", "AS-000002", "--reason", "court order"]);
    let reg2 = r.dir.path().join("reg2.backup");
    r.ok(&["backup", "--out", reg2.to_str().unwrap()]);
    // The log after his erasure, with the key store from before it: his keys are destroyed
    // again, and nothing of him can be read or found.
    let target = Reg::empty_with_key(r.data().join("registry.key"));
    let given = [
        std::fs::read(&reg2).unwrap(),
        std::fs::read(&keys1).unwrap(),
    ];
    let out = target.ok(&["restore", reg2.to_str().unwrap(), "--keys", k1]);
    assert!(
        out.contains("erasures applied to the key store: it still held the data keys of AS-000002"),
        "{out}"
    );
    // In the restored copy only: the files given are as they were.
    let now = [
        std::fs::read(&reg2).unwrap(),
        std::fs::read(&keys1).unwrap(),
    ];
    assert!(given == now, "the restore changed the files it was given");
    let his = "SELECT COUNT(*) FROM data_keys WHERE person = 'AS-000002'";
    assert_eq!(target.keys_count(his), 0);
    assert_eq!(target.keys_count("SELECT COUNT(*) FROM data_keys"), 2);
    assert!(
        !target
            .ok(&["person", "search", "김광철"])
            .contains("AS-000002")
    );
    assert!(
        target
            .ok(&["person", "search", "김철철"])
            .contains("AS-000001")
    );
    let e = target.fails(&["person", "show", "AS-000002", "--particulars"], None);
    assert!(e.contains("erased"), "{e}");
    assert!(target.ok(&["ledger", "verify"]).starts_with("ok"));
}

#[test]
fn verify_fails_while_the_key_store_holds_an_erased_captives_keys_and_rebuild_destroys_them() {
    if on_postgres() {
        return; // puts an older key store file in place
    }
    let r = with_captives(3);
    let keys1 = r.dir.path().join("keys1");
    let k1 = keys1.to_str().unwrap();
    let b = r.dir.path().join("b");
    r.ok(&["backup", "--out", b.to_str().unwrap(), "--keys-out", k1]);
    r.ok(&["person", "erase", "AS-000003", "--reason", "court order"]);
    for stale in ["keys.db-wal", "keys.db-shm"] {
        let _ = std::fs::remove_file(r.data().join(stale));
    }
    std::fs::copy(&keys1, r.data().join("keys.db")).unwrap();
    let e = r.fails(&["ledger", "verify"], None);
    assert!(
        e.contains(
            "the key store holds the data keys of AS-000003, whom the log records as erased"
        ),
        "{e}"
    );
    let out = r.ok(&["rebuild"]);
    assert!(
        out.contains("it still held the data keys of AS-000003"),
        "{out}"
    );
    assert!(r.ok(&["ledger", "verify"]).starts_with("ok"));
    assert!(!r.ok(&["rebuild"]).contains("erasures applied"));
}

#[test]
fn the_policy_decides_who_sees_and_records_what() {
    let r = with_captives(1);
    let as_ = |org: &str, roles: &str, args: &[&str]| -> Output {
        let mut all = vec!["--user", "someone", "--org", org, "--roles", roles];
        all.extend_from_slice(args);
        r.run(&all, None)
    };
    // A receiving state sees nothing of a captive not referred to it.
    let o = as_("receiving:KR", "liaison", &["person", "show", "AS-000001"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("KR sees only captives referred to it"));
    let o = as_(
        "receiving:KR",
        "liaison",
        &["person", "status", "AS-000001"],
    );
    assert!(!o.status.success());
    // Once KR accepts him it sees the public record, and his identity only with his consent.
    r.record_ok(
        "consul",
        "receiving:KR",
        "liaison",
        r#"{"command": "record_acceptance", "case": "AS-000001", "state": "KR"}"#,
    );
    let o = as_(
        "receiving:KR",
        "liaison",
        &["person", "show", "AS-000001", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("identity").is_none(), "{v}");
    assert!(
        v["withheld"][0]
            .as_str()
            .unwrap()
            .contains("has not agreed to share his identity data")
    );
    r.record_ok("delegate", "neutral", "interviewer", r#"{"command": "record_consent", "case": "AS-000001", "recipient": "receiving:KR", "classes": ["identity"]}"#);
    let o = as_(
        "receiving:KR",
        "liaison",
        &["person", "show", "AS-000001", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["service_number"], "SN00001");
    // Withdrawal takes effect on the next request.
    r.record_ok(
        "delegate",
        "neutral",
        "interviewer",
        r#"{"command": "withdraw_consent", "case": "AS-000001", "recipient": "receiving:KR"}"#,
    );
    let o = as_(
        "receiving:KR",
        "liaison",
        &["person", "show", "AS-000001", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("identity").is_none(), "{v}");
    // An administrator manages accounts, not content; a medical officer does not see family.
    let o = as_("detaining", "admin", &["person", "show", "AS-000001"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("administrators manage accounts"));
    r.ok_in(
        &["person", "register", "-"],
        Some(r#"{"names": ["박봉주"], "date_of_birth": "1999", "rank": "private", "service_number": "7",
                "power": "KP", "captured_on": "2025-01-09", "father_first_name": "Chol"}"#),
    );
    let o = as_(
        "detaining",
        "medical",
        &["person", "show", "AS-000002", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v.get("family").is_none() && v.get("identity").is_some(),
        "{v}"
    );
    assert!(
        v["withheld"][0].as_str().unwrap().starts_with("family:"),
        "{v}"
    );
    let o = as_(
        "detaining",
        "registrar",
        &["person", "show", "AS-000002", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["family"]["father_first_name"], "Chol");
    // Recording is decided by the same policy, and a denial writes nothing.
    let e = r.record_refused(
        "clerk",
        "detaining",
        "interviewer",
        r#"{"command": "propose_repatriation", "case": "AS-000001"}"#,
    );
    assert!(e.contains("not allowed"), "{e}");
    let o = as_(
        "neutral",
        "interviewer",
        &["person", "erase", "AS-000001", "--reason", "x"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not allowed"));
    assert_eq!(r.persons_json()[0]["status"], "registered");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: the same commands on a schema of the machine's server

/// Whether this run of the suite keeps its registries in PostgreSQL.
fn on_postgres() -> bool {
    std::env::var("ASYLON_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// The root hash named in `ledger verify`'s report.
fn root_in(verify: &str) -> String {
    let after = verify.split("root ").nth(1).unwrap();
    after.split(',').next().unwrap().to_string()
}

/// A fresh schema name for this process (earlier runs' schemas are dropped on first use);
/// None when no server can be reached outside CI (under CI=true that fails the test).
fn pg_schema() -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    static CLEAN: std::sync::Once = std::sync::Once::new();
    let mut c = asylon_store::test_support::postgres_client()?;
    CLEAN.call_once(|| {
        let rows = c
            .query(
                "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'asylon_cli_%'",
                &[],
            )
            .unwrap();
        for row in rows {
            let name: String = row.get(0);
            c.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).unwrap();
        }
    });
    let n = N.fetch_add(1, Ordering::SeqCst);
    Some(format!("asylon_cli_{}_{n}", std::process::id()))
}

impl Reg {
    /// An empty data directory whose records go to a fresh PostgreSQL schema.
    fn pg_empty() -> Option<Self> {
        Some(Self {
            pg: Some(pg_schema()?),
            ..Self::empty()
        })
    }

    fn root(&self) -> String {
        root_in(&self.ok(&["ledger", "verify"]))
    }
}

#[test]
fn on_postgres_a_backup_taken_during_an_import_restores_and_extends_the_earlier_checkpoint() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let Some(r) = Reg::pg_empty() else { return };
    r.ok(&["init"]);
    let r = with_captives_in(r, 3);
    let cp = r.file("cp.json", &r.ok(&["ledger", "checkpoint"]));
    let file = r.synth("big.csv", 6000, 3);
    let f = file.to_str().unwrap();
    let mut import = r
        .cmd(&["import", "persons", f])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (backup, keys) = (r.dir.path().join("pg.backup"), r.dir.path().join("pg.keys"));
    let (b, k) = (backup.to_str().unwrap(), keys.to_str().unwrap());
    let out = r.ok(&["backup", "--out", b, "--keys-out", k]);
    assert!(out.contains("backup written"), "{out}");
    assert!(import.wait().unwrap().success());
    let raw = String::from_utf8_lossy(&std::fs::read(&backup).unwrap()).into_owned();
    assert!(
        raw.contains("AS-000001") && !raw.contains("김철"),
        "names readable in the backup"
    );
    // Restored into another schema with the key: it verifies and extends the checkpoint.
    let target = Reg {
        key: Some(r.data().join("registry.key")),
        ..Reg::pg_empty().unwrap()
    };
    let out = target.ok(&["restore", b, "--keys", k]);
    assert!(out.contains("verified"), "{out}");
    let v = target.ok(&["ledger", "verify", "--checkpoint", cp.to_str().unwrap()]);
    assert!(v.contains("extends the checkpoint of size 4"), "{v}");
    assert!(
        target
            .ok(&["person", "show", "AS-000002"])
            .contains("SN00002")
    );
    // Restoring onto a schema that holds a registry is refused.
    let e = target.fails(&["restore", b, "--keys", k], None);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn migrate_store_moves_a_registry_to_postgres_and_back_with_the_same_root() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let Some(schema) = pg_schema() else { return };
    let r = with_captives(6);
    r.ok(&["person", "erase", "AS-000003", "--reason", "asked for it"]);
    let root = r.root();
    let (data, url) = (r.data(), pg_url());
    let data = data.to_str().unwrap();
    // A server that cannot be reached is told with the reason, not only "error connecting".
    let e = r.fails(
        &[
            "migrate-store",
            "--from",
            data,
            "--to",
            "postgres://postgres@127.0.0.1:1/test",
        ],
        None,
    );
    assert!(e.contains("error connecting to server: "), "{e}");
    assert_eq!(r.root(), root);
    // A source that holds no registry is told as the thing to move, not as one to create, and
    // the target is not made.
    let (nowhere, target) = (r.dir.path().join("nowhere"), r.dir.path().join("target"));
    for from in [nowhere.to_str().unwrap(), &url] {
        let e = r.fails(
            &[
                "--db-schema",
                "no_such_registry",
                "migrate-store",
                "--from",
                from,
                "--to",
                target.to_str().unwrap(),
            ],
            None,
        );
        assert!(e.contains("to move (--from); nothing was written"), "{e}");
        assert!(!e.contains("asylon init"), "{e}");
        assert!(!target.exists());
    }
    let to_pg = [
        "--db-schema",
        &schema,
        "migrate-store",
        "--from",
        data,
        "--to",
        &url,
    ];
    // On a terminal: a bar for each pass (the source verified, rows copied, the copy verified).
    let (status, out, shown) = on_a_terminal(&r, &to_pg);
    assert!(status.success(), "{shown}");
    assert!(out.contains(&root), "{out}");
    for pass in ["events checked", "rows copied"] {
        assert!(shown.contains(pass), "no {pass:?}: {shown:?}");
    }
    let cmd = |args: &[&str]| {
        let mut all = vec!["--database", &url, "--db-schema", &schema];
        all.extend_from_slice(args);
        r.ok(&all)
    };
    assert!(cmd(&["ledger", "verify"]).contains(&root));
    assert!(cmd(&["person", "show", "AS-000002"]).contains("SN00002"));
    assert!(
        !cmd(&["person", "show", "AS-000003"]).contains("SN00003"),
        "erased stays erased"
    );
    // Onto a registry that exists: refused, and the existing one untouched.
    let e = r.fails(&to_pg, None);
    assert!(e.contains("already exists"), "{e}");
    // And back to SQLite, in a new directory (the two reads above are events of its log now).
    let pg_root = root_in(&cmd(&["ledger", "verify"]));
    assert_ne!(pg_root, root);
    let back = r.dir.path().join("back");
    let out = r.ok(&[
        "--db-schema",
        &schema,
        "migrate-store",
        "--from",
        &url,
        "--to",
        back.to_str().unwrap(),
    ]);
    assert!(out.contains(&pg_root), "{out}");
}

/// A role of the test server that may read and write a registry's tables but owns none, as a
/// deployment may give its servers; made once per server, granted each schema it is used on.
const NOT_OWNER: &str = "asylon_test_not_owner";

/// [`pg_url`] with [`NOT_OWNER`] as its user.
fn not_owner_url() -> String {
    let url = pg_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{NOT_OWNER}@{rest}")
}

#[test]
fn on_postgres_an_erasure_by_a_role_that_does_not_own_the_key_store_is_refused() {
    if on_postgres() {
        return; // makes a role of its own, once
    }
    let Some(r) = Reg::pg_empty() else { return };
    r.ok(&["init"]);
    let r = with_captives_in(r, 2);
    let schema = r.pg.clone().unwrap();
    let mut admin = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    // Another process of the suite may have made it first.
    let _ = admin.batch_execute(&format!("CREATE ROLE {NOT_OWNER} LOGIN"));
    let db: String = admin
        .query_one("SELECT current_database()::text", &[])
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "GRANT CREATE ON DATABASE {db} TO {NOT_OWNER};
             GRANT USAGE, CREATE ON SCHEMA {schema}, {schema}_keys TO {NOT_OWNER};
             GRANT SELECT, INSERT, UPDATE, DELETE
                 ON ALL TABLES IN SCHEMA {schema}, {schema}_keys TO {NOT_OWNER};
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema}, {schema}_keys
                 TO {NOT_OWNER};",
        ))
        .unwrap();
    let as_not_owner = |args: &[&str]| {
        Command::new(BIN)
            .arg("--data-dir")
            .arg(r.data())
            .args(["--database", &not_owner_url(), "--db-schema", &schema])
            .args(args)
            .env_remove("ASYLON_DATABASE_URL")
            .env("ASYLON_USER", "tester")
            .output()
            .unwrap()
    };
    // It may read and write: the refusal below is the erasure's own.
    let shown = as_not_owner(&["person", "show", "AS-000002"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("SN00002"),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let events = r.event_count();
    let o = as_not_owner(&["person", "erase", "AS-000002", "--reason", "court order"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("nothing changed") && e.contains(&format!("not to {NOT_OWNER}")),
        "{e}"
    );
    // Nothing changed: his keys, his record, the log.
    assert_eq!(
        r.keys_count("SELECT COUNT(*) FROM data_keys WHERE person = 'AS-000002'"),
        1
    );
    assert_eq!(r.event_count(), events);
    assert!(r.ok(&["person", "show", "AS-000002"]).contains("SN00002"));
    // Its owner erases him; then a rebuild by the other role has no keys to destroy, and is
    // not refused for an erasure already done.
    r.ok(&["person", "erase", "AS-000002", "--reason", "court order"]);
    assert_eq!(
        r.keys_count("SELECT COUNT(*) FROM data_keys WHERE person = 'AS-000002'"),
        0
    );
    let o = as_not_owner(&["rebuild"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    r.ok(&["ledger", "verify"]);
}

#[test]
fn processes_importing_into_one_postgres_registry_append_one_gapless_log() {
    if on_postgres() {
        return; // reads or edits the SQLite files themselves
    }
    let Some(r) = Reg::pg_empty() else { return };
    r.ok(&["init"]);
    // One captive registered first, erased while the imports run: the erasure rewrites the
    // key store's tables the imports are writing to (see `purge_deleted`).
    r.ok_in(
        &["person", "register", "-"],
        Some(&person_json("P-1", "리한검")),
    );
    let files: Vec<PathBuf> = (1..=3)
        .map(|seed| r.synth(&format!("p{seed}.csv"), 1500, seed))
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            r.cmd(&["import", "persons", f.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    r.ok(&["person", "erase", "AS-000001", "--reason", "court order"]);
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let v = r.ok(&["ledger", "verify"]);
    assert!(
        v.contains("ok: 4503 events") && v.contains("4501 captives"),
        "{v}"
    );
    assert_eq!(
        r.keys_count("SELECT COUNT(*) FROM data_keys WHERE person = 'AS-000001'"),
        0
    );
    assert_eq!(r.keys_count("SELECT COUNT(*) FROM data_keys"), 4500);
    let list = r.ok(&["person", "list", "--json"]);
    let persons: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    let mut cases: Vec<&str> = persons
        .iter()
        .map(|p| p["case_no"].as_str().unwrap())
        .collect();
    cases.dedup();
    assert_eq!(cases.len(), 4501, "case numbers are unique");
}
