//! `asylon demo`: a registry a newcomer can explore. Three organisations (the detaining power,
//! the neutral agency, South Korea as receiving state) with a user for every role, the
//! motivating case, and synthetic captives spread over every state of the lifecycle; then the
//! server. Every step goes through the same policy and guards as real use.

use crate::RegistryArgs;
use crate::commands::{init, now, open};
use crate::output::person_text;
use anyhow::{Result, anyhow};
use asylon_core::RegistrationInput;
use asylon_core::law::{Command, Principal, Role, Settings};
use asylon_server::accounts::{Enrolment, NewMember, add_org, add_user};
use asylon_store::{Registry, StoreError, load_settings};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// The one password of every demo user (a real deployment gives each user his own).
pub const DEMO_PASSWORD: &str = "asylon-demo-password";

/// The motivating case (DESIGN): two soldiers captured in January 2025.
const DEMO_CAPTIVES: [&str; 2] = [
    r#"{"external_id": "DEMO-RI", "names": ["리한검", "Ri Han Gom", "Ли Хан Гом"],
        "date_of_birth": "2003-05-14", "rank": "private", "service_number": "4521907",
        "power": "KP", "captured_on": "2025-01-09", "captured_at": "Kursk region",
        "next_of_kin": "mother (name withheld)"}"#,
    r#"{"external_id": "DEMO-PAEK", "names": ["백광철", "Paek Kwang Chol"],
        "date_of_birth": "2004-03", "rank": "private", "service_number": "4731129",
        "power": "KP", "captured_on": "2025-01-09", "captured_at": "Kursk region"}"#,
];

/// The first demo captive's record as corrected: the Ukrainian spelling of his name from the
/// camp's register, and his day of birth, misread at capture.
const DEMO_CORRECTION: &str = r#"{"external_id": "DEMO-RI",
    "names": ["리한검", "Ri Han Gom", "Ли Хан Гом", "Рі Хан Гом"],
    "date_of_birth": "2003-05-04", "rank": "private", "service_number": "4521907",
    "power": "KP", "captured_on": "2025-01-09", "captured_at": "Kursk region",
    "next_of_kin": "mother (name withheld)"}"#;

const ORGS: [(&str, &str, &str); 3] = [
    (
        "detaining",
        "Detaining power: National Information Bureau",
        "dp",
    ),
    ("neutral", "Neutral agency: Central Tracing Agency", "cta"),
    ("receiving:KR", "Receiving state: Republic of Korea", "kr"),
];

const ROLES: [Role; 7] = [
    Role::Registrar,
    Role::Interviewer,
    Role::Medical,
    Role::Legal,
    Role::Liaison,
    Role::Auditor,
    Role::Analyst,
];

fn role_name(r: Role) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn who(user: &str, org: &str, role: Role) -> Principal {
    Principal {
        user: user.into(),
        org: org.into(),
        roles: vec![role],
    }
}

/// The organisations and their users; returns each user's enrolment.
fn accounts(registry: &mut Registry, r: &RegistryArgs) -> Result<Vec<(String, String, Enrolment)>> {
    let actor = crate::commands::actor(r);
    let cost = asylon_vault::PasswordCost::default();
    let mut out = Vec::new();
    for (id, name, prefix) in ORGS {
        let admin = NewMember {
            org: id,
            name: &format!("{prefix}-admin"),
            roles: &[Role::Admin],
            password: DEMO_PASSWORD,
        };
        let (secret, e) = add_org(registry, &actor, now(), name, &admin, cost)
            .map_err(|e| anyhow!(e.body.error))?;
        out.push((id.to_string(), "admin".to_string(), e));
        for role in ROLES {
            let user = format!("{prefix}-{}", role_name(role));
            let m = NewMember {
                org: id,
                name: &user,
                roles: &[role],
                password: DEMO_PASSWORD,
            };
            let e = add_user(registry, &actor, now(), &secret, &m, cost)
                .map_err(|e| anyhow!(e.body.error))?;
            out.push((id.to_string(), role_name(role), e));
        }
    }
    Ok(out)
}

fn cmd(v: serde_json::Value) -> Result<Command> {
    Ok(serde_json::from_value(v)?)
}

/// Plays `steps`; returns how many were recorded and the refusals' messages.
fn play(
    registry: &mut Registry,
    settings: &Settings,
    steps: Vec<(Principal, Command)>,
    verbose: bool,
) -> Result<(usize, Vec<String>)> {
    let mut recorded = 0;
    let mut refused = Vec::new();
    for (p, c) in steps {
        match registry.act(&p, now(), settings, &c) {
            Ok(events) => {
                recorded += events.len();
                if verbose {
                    for e in events {
                        say!(
                            "  {:<18} recorded {} {}",
                            p.user,
                            e.kind,
                            e.person.unwrap_or_default()
                        )?;
                    }
                }
            }
            Err(StoreError::Refused(why)) => {
                if verbose {
                    say!("  {:<18} REFUSED: {why}", p.user)?;
                }
                refused.push(why.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((recorded, refused))
}

fn interview(case: &str, on: &str, wish: &str, fear: bool, notes: &str) -> Result<Command> {
    cmd(json!({
        "command": "record_interview", "case": case, "on": on, "interviewer": "cta-interviewer",
        "interpreter_org": "neutral", "language": "ko", "private": true,
        "wish": wish, "fear_of_persecution": fear, "notes": notes
    }))
}

/// The motivating case: one wishes to go to South Korea and fears return, the other to stay;
/// an exchange is proposed; the transfer completes after two interviews, acceptance, approval
/// by a second officer and the neutral agency's reconfirmation.
fn motivating_case(ri: &str, paek: &str) -> Result<Vec<(Principal, Command)>> {
    let registrar = who("dp-registrar", "detaining", Role::Registrar);
    let legal = who("dp-legal", "detaining", Role::Legal);
    let delegate = who("cta-interviewer", "neutral", Role::Interviewer);
    let consul = who("kr-liaison", "receiving:KR", Role::Liaison);
    let m1 = format!("{ri}/M1");
    Ok(vec![
        (
            registrar.clone(),
            cmd(
                json!({"command": "move_custody", "case": ri, "place": "Camp 1", "on": "2025-01-12"}),
            )?,
        ),
        (
            registrar.clone(),
            cmd(
                json!({"command": "move_custody", "case": paek, "place": "Camp 1", "on": "2025-01-12"}),
            )?,
        ),
        (
            delegate.clone(),
            interview(
                ri,
                "2025-02-01",
                "KR",
                true,
                "Fears for his family if returned; asks for South Korea.",
            )?,
        ),
        (
            delegate.clone(),
            interview(
                paek,
                "2025-02-01",
                "stay",
                true,
                "Wishes to stay; afraid of punishment at home.",
            )?,
        ),
        (
            registrar.clone(),
            cmd(json!({"command": "create_exchange_list", "list": "EX-1", "counterpart": "RU"}))?,
        ),
        (
            registrar.clone(),
            cmd(json!({"command": "add_to_exchange_list", "list": "EX-1", "case": paek}))?,
        ),
        (
            registrar.clone(),
            cmd(json!({"command": "propose_transfer", "case": ri, "to": "KR"}))?,
        ),
        (
            delegate.clone(),
            interview(
                ri,
                "2025-02-15",
                "KR",
                true,
                "Repeats his wish, alone with the delegate.",
            )?,
        ),
        (
            consul.clone(),
            cmd(
                json!({"command": "record_acceptance", "case": ri, "state": "KR", "conditions": "as a citizen"}),
            )?,
        ),
        (
            delegate.clone(),
            cmd(
                json!({"command": "record_consent", "case": ri, "recipient": "receiving:KR", "classes": ["identity"]}),
            )?,
        ),
        (
            registrar.clone(),
            cmd(json!({"command": "propose_transfer", "case": ri, "to": "KR"}))?,
        ),
        (
            legal,
            cmd(json!({"command": "approve", "case": ri, "movement": m1}))?,
        ),
        (
            delegate,
            cmd(json!({"command": "reconfirm", "case": ri, "movement": m1}))?,
        ),
        (
            registrar,
            cmd(json!({"command": "hand_over", "case": ri, "movement": m1}))?,
        ),
    ])
}

/// Lifecycle steps for synthetic captive number `i` (case `case`), so that every state appears.
fn lifecycle(i: usize, case: &str, today: OffsetDateTime) -> Result<Vec<(Principal, Command)>> {
    let registrar = who("dp-registrar", "detaining", Role::Registrar);
    let legal = who("dp-legal", "detaining", Role::Legal);
    let medical = who("dp-medical", "detaining", Role::Medical);
    let delegate = who("cta-interviewer", "neutral", Role::Interviewer);
    let consul = who("kr-liaison", "receiving:KR", Role::Liaison);
    let day = |ago: i64| (today - Duration::days(ago)).date().to_string();
    let m1 = format!("{case}/M1");
    let camp = |ago: i64| {
        cmd(json!({"command": "move_custody", "case": case, "place": "Camp 1", "on": day(ago)}))
    };
    // In a camp from `since` days ago, two interviews asking for South Korea, accepted by it,
    // consent to share `classes` with it, and a transfer proposed.
    let referred_to_kr = |since: i64, classes: &[&str]| -> Result<Vec<(Principal, Command)>> {
        Ok(vec![
            (registrar.clone(), camp(since)?),
            (
                delegate.clone(),
                interview(case, &day(since - 10), "KR", true, "Asks for South Korea.")?,
            ),
            (
                delegate.clone(),
                interview(case, &day(since - 25), "KR", true, "Repeats it.")?,
            ),
            (
                consul.clone(),
                cmd(json!({"command": "record_acceptance", "case": case, "state": "KR"}))?,
            ),
            (
                delegate.clone(),
                cmd(json!({"command": "record_consent", "case": case,
                    "recipient": "receiving:KR", "classes": classes}))?,
            ),
            (
                registrar.clone(),
                cmd(json!({"command": "propose_transfer", "case": case, "to": "KR"}))?,
            ),
        ])
    };
    // The proposed movement approved by a second officer, reconfirmed by the agency, done.
    let carried_out = || -> Result<Vec<(Principal, Command)>> {
        let step = |p: &Principal, command: &str| -> Result<(Principal, Command)> {
            Ok((
                p.clone(),
                cmd(json!({"command": command, "case": case, "movement": m1}))?,
            ))
        };
        Ok(vec![
            step(&legal, "approve")?,
            step(&delegate, "reconfirm")?,
            step(&registrar, "hand_over")?,
        ])
    };
    let mut steps = vec![(
        registrar.clone(),
        cmd(json!({"command": "record_capture", "case": case, "capturing_unit": "3rd brigade"}))?,
    )];
    match i % 12 {
        // Registered and captured only: every duty still open.
        0 => {}
        // In a camp, capture card sent, the agency notified.
        1 => {
            steps.push((registrar.clone(), camp(40)?));
            steps.push((
                registrar.clone(),
                cmd(json!({"command": "issue_capture_card", "case": case, "on": day(38)}))?,
            ));
            steps.push((
                registrar.clone(),
                cmd(json!({"command": "send_notification", "case": case, "to": "agency"}))?,
            ));
        }
        // In a camp for three weeks without a capture card: overdue.
        2 => steps.push((registrar.clone(), camp(21)?)),
        // Seriously wounded in hospital.
        3 => {
            steps.push((registrar.clone(), cmd(json!({"command": "define_place", "place": "Military Hospital 2", "kind": "hospital"}))?));
            steps.push((registrar.clone(), cmd(json!({"command": "move_custody", "case": case, "place": "Military Hospital 2", "on": day(20)}))?));
            steps.push((medical.clone(), cmd(json!({"command": "declare_seriously_wounded", "case": case, "note": "shrapnel wounds, both legs"}))?));
            steps.push((medical, cmd(json!({"command": "update_health", "case": case, "note": "stable, healing slowly"}))?));
        }
        // Wishes to return, verified; repatriated.
        4 => {
            steps.push((registrar.clone(), camp(60)?));
            steps.push((
                delegate.clone(),
                interview(case, &day(50), "return", false, "Wants to go home.")?,
            ));
            steps.push((
                delegate.clone(),
                interview(case, &day(35), "return", false, "Confirms it, alone.")?,
            ));
            steps.push((
                registrar.clone(),
                cmd(json!({"command": "propose_repatriation", "case": case}))?,
            ));
            steps.extend(carried_out()?);
        }
        // Wishes to stay and fears return: protected by G1.
        5 => {
            steps.push((registrar.clone(), camp(45)?));
            steps.push((
                delegate.clone(),
                interview(
                    case,
                    &day(30),
                    "stay",
                    true,
                    "Afraid of what awaits deserters.",
                )?,
            ));
            steps.push((
                delegate,
                interview(case, &day(15), "stay", true, "Same wish, same fear.")?,
            ));
        }
        // Referred to South Korea: wish verified, accepted, consent to share identity, transfer
        // proposed and awaiting approval.
        6 => steps.extend(referred_to_kr(70, &["identity"])?),
        // Transferred to South Korea.
        7 => {
            steps.extend(referred_to_kr(90, &["identity", "medical"])?);
            steps.extend(carried_out()?);
        }
        // Died in captivity (Art 120 particulars).
        8 => {
            steps.push((registrar.clone(), camp(100)?));
            steps.push((registrar, cmd(json!({"command": "record_death", "case": case, "on": day(10), "place": "Camp 1", "cause": "heart failure", "burial": "Camp 1 cemetery, grave 4"}))?));
        }
        // Escaped.
        9 => {
            steps.push((registrar.clone(), camp(50)?));
            steps.push((
                registrar,
                cmd(json!({"command": "record_escape", "case": case}))?,
            ));
        }
        // Held for judicial proceedings (Art 119): no movement possible.
        10 => {
            steps.push((registrar.clone(), camp(50)?));
            steps.push((
                legal,
                cmd(json!({"command": "hold_for_proceedings", "case": case, "held": true}))?,
            ));
        }
        // Status in doubt, before a tribunal.
        _ => {
            steps.push((registrar.clone(), camp(10)?));
            steps.push((
                registrar,
                cmd(json!({"command": "doubt_status", "case": case}))?,
            ));
        }
    }
    Ok(steps)
}

/// Builds the demo registry in `dir` and returns the users' enrolments.
pub fn build(
    r: &RegistryArgs,
    dir: &Path,
    count: usize,
) -> Result<Vec<(String, String, Enrolment)>> {
    let args = RegistryArgs {
        data_dir: Some(dir.to_path_buf()),
        ..r.clone()
    };
    init(&args)?;
    let settings = load_settings(dir)?;
    let mut registry = open(&args)?;
    let users = accounts(&mut registry, &args)?;
    let registrar = who("dp-registrar", "detaining", Role::Registrar);
    let today = now();
    let mut regs = Vec::new();
    for text in DEMO_CAPTIVES {
        let input: RegistrationInput = serde_json::from_str(text)?;
        regs.push(input.validate(today).map_err(StoreError::Invalid)?);
    }
    let cases = registry.register(&registrar.actor(), today, regs)?;
    drop(registry);

    let csv = dir.join("synthetic-captives.csv");
    crate::import::synth_persons(count, 2025, Some(&csv))?;
    let import_args = RegistryArgs {
        user: Some("dp-registrar".into()),
        ..args.clone()
    };
    let source = crate::csvfile::Source {
        path: &csv,
        encoding: None,
        option: "--encoding",
    };
    crate::import::persons(
        &import_args,
        source,
        (crate::import::KEPT_ROWS, false),
        None,
        asylon_store::SharedNumbers::Refused,
    )?;

    let mut registry = open(&args)?;
    let mut steps = vec![(
        registrar.clone(),
        cmd(json!({"command": "define_place", "place": "Camp 1", "kind": "camp"}))?,
    )];
    if let [ri, paek] = cases.as_slice() {
        say!("\nThe motivating case, through the guards:")?;
        steps.extend(motivating_case(ri, paek)?);
        play(&mut registry, &settings, steps, true)?;
        for case in [ri, paek] {
            let st = registry.case_status(&registrar, case, &settings, now())?;
            let wish = serde_json::to_value(&st.wish_status)?;
            say!(
                "  {case}: {}; wish {}{}",
                st.case
                    .end
                    .as_ref()
                    .map_or_else(|| st.case.custody.describe(), |e| e.describe()),
                wish.get("status").and_then(|s| s.as_str()).unwrap_or("?"),
                wish.get("wish")
                    .and_then(|s| s.as_str())
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            )?;
        }
    }
    let mut all = Vec::new();
    for i in 0..count {
        let case = asylon_store::case_number((cases.len() + 1 + i) as u64);
        all.extend(lifecycle(i, &case, today)?);
    }
    let (recorded, refused) = play(&mut registry, &settings, all, false)?;
    say!(
        "\nSynthetic captives through the lifecycle: {recorded} events recorded, {} steps refused by the guards",
        refused.len()
    )?;
    let mut why: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &refused {
        *why.entry(r.as_str()).or_default() += 1;
    }
    for (r, n) in why.iter().take(5) {
        say!("  {n} × {r}")?;
    }
    let erased = asylon_store::case_number(cases.len() as u64 + 3);
    registry.erase_as(&registrar, today, &erased, "demo: a data subject's erasure")?;
    if let Some(first) = cases.first() {
        let mut corrected: RegistrationInput = serde_json::from_str(DEMO_CORRECTION)?;
        // A correction starts from his particulars as they read (the read is recorded) and
        // names the event they were read from.
        let read = registry.particulars_as(&registrar, today, first)?;
        corrected.from_event = read.get("from_event").and_then(serde_json::Value::as_u64);
        registry.amend_as(
            &registrar,
            today,
            &settings,
            first,
            (&corrected, asylon_store::SharedNumbers::Refused),
            "demo: Ukrainian spelling from the camp register; day of birth misread at capture",
        )?;
        say!(
            "\nOne record, corrected and opened by dp-registrar (the read itself is recorded as an event):"
        )?;
        say_on!(
            "{}",
            person_text(&registry.show_person(&registrar, today, first)?)
        )?;
    }
    let report = registry.verify(None)?;
    say!(
        "\nLedger: {} events, root {} — verified.",
        report.size,
        report.root
    )?;
    Ok(users)
}

pub fn demo(r: &RegistryArgs, count: usize, listen: Option<SocketAddr>) -> Result<()> {
    let dir = match &r.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("asylon-demo-{}", now().unix_timestamp_nanos())),
    };
    let users = build(r, &dir, count)?;
    let mut table = String::from("org\trole\tuser\ttotp_secret\n");
    for (org, role, e) in &users {
        table.push_str(&format!("{org}\t{role}\t{}\t{}\n", e.user, e.totp_secret));
    }
    let file = dir.join("demo-users.tsv");
    std::fs::write(&file, &table)?;
    let example = users
        .iter()
        .find(|(_, role, _)| role == "interviewer")
        .map(|(_, _, e)| e.clone());
    let mut banner = format!(
        "\nDemo registry in {d}. Users (password for all: {DEMO_PASSWORD}) and their TOTP secrets: {f}\n",
        d = dir.display(),
        f = file.display()
    );
    for (org, role, e) in &users {
        banner.push_str(&format!(
            "  {:<18} {:<13} {:<12} {}\n",
            e.user, org, role, e.totp_secret
        ));
    }
    if let (Some(e), Some(addr)) = (example, listen) {
        banner.push_str(&format!(
            "\nIn a browser: http://{addr}/ui/ (English, Ukrainian or Korean), as {u} with the password \
             {DEMO_PASSWORD} and the code `asylon totp {s}` prints.\n\
             \nSign in to the API (the code comes from `asylon totp SECRET` or any authenticator app):\n  \
             curl -si -c jar -H 'content-type: application/json' http://{addr}/api/session \\\n    \
             -d \"{{\\\"user\\\":\\\"{u}\\\",\\\"password\\\":\\\"{DEMO_PASSWORD}\\\",\\\"totp\\\":\\\"$(asylon totp {s})\\\"}}\"\n  \
             curl -s -b jar http://{addr}/api/persons/AS-000001/status\n  \
             curl -s -b jar http://{addr}/api/persons/AS-000001/interviews\n",
            u = e.user,
            s = e.totp_secret
        ));
    }
    match listen {
        None => {
            say_on!("{banner}")?;
            Ok(())
        }
        Some(addr) => {
            let args = RegistryArgs {
                data_dir: Some(dir.clone()),
                ..r.clone()
            };
            let settings = load_settings(&dir)?;
            crate::serve::run(
                || open(&args),
                None,
                settings,
                asylon_server::Config::default(),
                addr,
                Some(banner),
            )
        }
    }
}
