use super::*;
use crate::register::tests::{kim_chols, new_registry};
use asylon_core::kind;
use asylon_core::law::Role;
use proptest::prelude::*;
use serde_json::json;

fn person(user: &str, org: &str, role: Role) -> Principal {
    Principal {
        user: user.into(),
        org: org.into(),
        roles: vec![role],
    }
}

fn registrar() -> Principal {
    person("test", "detaining", Role::Registrar)
}

/// An interview of `case` by the neutral agency `days` ago, stating `wish`.
fn interview(case: &str, days: i64, wish: &str, fear: bool, now: OffsetDateTime) -> Command {
    let on = (now - time::Duration::days(days)).date().to_string();
    serde_json::from_value(
        json!({"command": "record_interview", "case": case, "on": on,
        "language": "ko", "interpreter": "I. Park", "interpreter_org": "neutral",
        "private": true, "wish": wish, "fear_of_persecution": fear}),
    )
    .unwrap()
}

/// The kinds and public payloads of the events after the first `from`.
fn written_since(reg: &Registry, from: usize) -> Vec<(String, serde_json::Value)> {
    reg.events(None).unwrap()[from..]
        .iter()
        .map(|e| (e.kind.clone(), serde_json::from_str(&e.public).unwrap()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// G6: whatever he said in his interviews, a notification to the power of origin holds
    /// nothing of his identity or family while G1 protects him, and holds them once it does
    /// not; one to the neutral agency always holds them. What it holds is what the log records
    /// it held, and the opening of each class it holds is recorded beside it.
    #[test]
    fn a_notification_holds_what_the_law_lets_go_to_its_recipient(
        said in proptest::collection::vec((0i64..40, 0u8..3, any::<bool>()), 0..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        // Captured at a place that could tell his unit; his mother's name given.
        let mut his = kim_chols("N", 1);
        his[0].core.captured_at = Some("near Kursk".into());
        his[0].family.mother_maiden_name = Some("Pak Sun-hui".into());
        let case = reg.register(&actor, now, his).unwrap().remove(0);
        let s = Settings::default();
        let delegate = person("cta", "neutral", Role::Interviewer);
        for (days, wish, fear) in said {
            let wish = ["return", "KR", "stay"][usize::from(wish)];
            // The law may refuse one (two on one day in another order, say): nothing is written then.
            let _ = reg.act(&delegate, now, &s, &interview(&case, days, wish, fear, now));
        }
        let protected = reg
            .case_status(&registrar(), &case, &s, now)
            .unwrap()
            .protected_from_return;
        for to in ["origin", "agency"] {
            let before = reg.events(None).unwrap().len();
            let n = reg.notify(&registrar(), now, &s, &case, to).unwrap();
            let holds = to == "agency" || protected.is_none();
            prop_assert_eq!(n.identity.is_some(), holds, "{} {:?}", to, protected);
            prop_assert_eq!(n.family.is_some(), holds);
            prop_assert_eq!(n.captured_at.is_some(), holds);
            let text = serde_json::to_string(&n).unwrap();
            prop_assert_eq!(text.contains("Kim"), holds, "{}", text);
            prop_assert_eq!(text.contains("Kursk"), holds, "{}", text);
            prop_assert_eq!(text.contains("Pak Sun-hui"), holds, "{}", text);
            prop_assert!(n.withheld.contains(&Class::Statements));
            if !holds {
                prop_assert!(n.withheld.contains(&Class::Identity) && n.withheld.contains(&Class::Family));
                prop_assert!(n.reason.as_deref().is_some_and(|r| r.starts_with("G6")), "{:?}", n.reason);
            }
            // The record of sending it, and of the classes opened for it, in one write.
            let written = written_since(&reg, before);
            prop_assert_eq!(written[0].0.as_str(), "case.notification_sent");
            prop_assert_eq!(written[0].1["to"].as_str(), Some(to));
            let included = if holds { json!(["identity", "family"]) } else { json!([]) };
            prop_assert_eq!(&written[0].1["included"], &included);
            if holds {
                prop_assert_eq!(written.len(), 2);
                prop_assert_eq!(&written[1].0, kind::SEALED_READ);
                prop_assert_eq!(&written[1].1["classes"], &included);
            } else {
                prop_assert_eq!(written.len(), 1);
            }
            prop_assert_eq!(reg.events(None).unwrap()[before].seq, n.seq);
        }
    }
}

#[test]
fn a_notification_refused_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, actor, now) = new_registry(dir.path());
    let cases = reg.register(&actor, now, kim_chols("R", 2)).unwrap();
    let s = Settings::default();
    reg.erase(&actor, now, &cases[1], "asked by the test")
        .unwrap();
    let before = reg.events(None).unwrap().len();
    let kr = person("kr", "receiving:KR", Role::Liaison);
    let medical = person("doc", "detaining", Role::Medical);
    let refusals = [
        (registrar(), cases[0].as_str(), "moscow"),
        (kr, cases[0].as_str(), "agency"),
        // A medical officer may not send one.
        (medical, cases[0].as_str(), "agency"),
        (registrar(), cases[1].as_str(), "agency"),
        (registrar(), "AS-999999", "agency"),
    ];
    for (who, case, to) in refusals {
        let refused = reg.notify(&who, now, &s, case, to);
        assert!(
            matches!(
                refused,
                Err(StoreError::Refused(_)
                    | StoreError::Denied(_)
                    | StoreError::Erased { .. }
                    | StoreError::UnknownPerson(_))
            ),
            "{who:?} {case} {to}: {refused:?}"
        );
        assert_eq!(reg.events(None).unwrap().len(), before, "{case} {to}");
    }
    // Typed as a person types a case number, it is made.
    let typed = cases[0].to_lowercase().replace("-00000", "-");
    let n = reg.notify(&registrar(), now, &s, &typed, "agency").unwrap();
    assert_eq!(n.case, cases[0]);
    assert_eq!(reg.events(None).unwrap().len(), before + 2);
}

/// A captive who gave no family particulars: the notification holds his identity alone, and
/// the log says it held that, not the family the law would have let it hold.
#[test]
fn a_notification_records_only_the_classes_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, actor, now) = new_registry(dir.path());
    let case = reg
        .register(&actor, now, kim_chols("F", 1))
        .unwrap()
        .remove(0);
    let s = Settings::default();
    let before = reg.events(None).unwrap().len();
    let n = reg.notify(&registrar(), now, &s, &case, "agency").unwrap();
    assert!(n.identity.is_some() && n.family.is_none(), "{n:?}");
    let written = written_since(&reg, before);
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(written[0].0, "case.notification_sent");
    assert_eq!(written[0].1["included"], json!(["identity"]));
    assert_eq!(written[0].1["withheld"], json!(["statements"]));
    assert_eq!(written[1].1["classes"], json!(["identity"]));
    // The law's state reads the record it was sent as before.
    let after = reg.case_status(&registrar(), &case, &s, now).unwrap();
    assert!(
        after.case.notification_due_since.is_none(),
        "{:?}",
        after.case
    );
}
