//! The access matrix in docs/access-matrix.csv, asserted row by row.

use super::*;
use crate::Actor;
use crate::law::{Fact, FactBody, Role, World};
use time::macros::datetime;

fn role(name: &str) -> Role {
    serde_json::from_value(serde_json::Value::String(name.into())).unwrap()
}

fn case_in(state: &str) -> Case {
    let mut w = World::default();
    let at = datetime!(2025-01-09 10:00 UTC);
    w.register("AS-1", "KP", Some(at.date()), at, 1);
    let actor = Actor {
        user: "u".into(),
        org: "receiving:KR".into(),
    };
    if state == "referred_kr" || state == "consent_kr_identity" {
        let f = Fact::public(FactBody::AcceptanceRecorded {
            case: "AS-1".into(),
            state: "KR".into(),
            conditions: None,
        });
        w.apply(&f, &actor, at, 2);
    }
    if state == "consent_kr_identity" {
        let f = Fact::public(FactBody::ConsentRecorded {
            case: "AS-1".into(),
            recipient: "receiving:KR".into(),
            classes: vec![Class::Identity],
        });
        w.apply(&f, &actor, at, 3);
    }
    (*w.cases["AS-1"]).clone()
}

fn command(name: &str) -> Command {
    let v = match name {
        "propose_transfer" => serde_json::json!({"command": name, "case": "AS-1", "to": "KR"}),
        "approve" | "reconfirm" => {
            serde_json::json!({"command": name, "case": "AS-1", "movement": "AS-1/M1"})
        }
        "record_interview" => serde_json::json!({"command": name, "case": "AS-1", "language": "ko",
            "private": true, "wish": "KR", "fear_of_persecution": false}),
        "record_acceptance" => serde_json::json!({"command": name, "case": "AS-1", "state": "KR"}),
        "update_health" => serde_json::json!({"command": name, "case": "AS-1", "note": "stable"}),
        "finalise_exchange_list" => serde_json::json!({"command": name, "list": "X"}),
        "record_consent" => {
            serde_json::json!({"command": name, "case": "AS-1", "recipient": "receiving:KR", "classes": ["identity"]})
        }
        "move_custody" => serde_json::json!({"command": name, "case": "AS-1", "place": "Camp 1"}),
        other => panic!("no sample for {other}"),
    };
    serde_json::from_value(v).unwrap()
}

#[test]
fn every_row_of_the_access_matrix_holds() {
    let text = include_str!("../../../../docs/access-matrix.csv");
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let [org, roles, state, action, expected] = f.as_slice() else {
            panic!("bad matrix row {line:?}");
        };
        let p = Principal {
            user: "someone".into(),
            org: org.to_string(),
            roles: roles.split('+').map(role).collect(),
        };
        let case = case_in(state);
        let cmd;
        let action = match action.split_once(':') {
            Some(("read", "core")) => Action::ReadCore,
            Some(("read", class)) => Action::Read(Class::parse(class).unwrap()),
            Some(("record", name)) => {
                cmd = command(name);
                Action::Record(&cmd)
            }
            Some(("statements", org)) => Action::ReadStatements { org },
            Some(("manage", org)) => Action::ManageAccounts { org },
            None if *action == "access_history" => Action::ReadAccessHistory,
            None if *action == "statistics" => Action::ReadStatistics,
            None if *action == "checkpoint" => Action::ReadLedger,
            None if *action == "register" => Action::Register,
            None if *action == "erase" => Action::Erase,
            None if *action == "amend" => Action::Amend,
            _ => panic!("unknown action {action}"),
        };
        let got = may(&p, Some(&case), action);
        assert_eq!(
            got.is_ok(),
            *expected == "allow",
            "{line}: policy said {got:?}"
        );
        rows += 1;
    }
    assert!(rows >= 50, "only {rows} rows");
}

#[test]
fn a_denial_says_why() {
    let p = Principal {
        user: "a".into(),
        org: "receiving:KR".into(),
        roles: vec![Role::Liaison],
    };
    let e = may(&p, Some(&case_in("none")), Action::Read(Class::Identity)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not allowed: KR sees only captives referred to it"
    );
    let e = may(
        &p,
        Some(&case_in("referred_kr")),
        Action::Read(Class::Family),
    )
    .unwrap_err();
    assert!(
        e.0.contains("has not agreed to share his family data"),
        "{e}"
    );
}
