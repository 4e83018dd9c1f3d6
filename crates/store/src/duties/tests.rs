use super::*;
use crate::KeySource;
use crate::register::tests::{kim_chols, new_registry};
use asylon_core::law::{Role, deadline_order};
use asylon_core::policy::{Action, may};
use proptest::prelude::*;
use serde_json::json;

/// Every open deadline `who` may see, folded from the whole log at once and told captive by
/// captive by the policy: what the registry answered before it kept its duties.
fn from_the_whole_world(
    reg: &Registry,
    who: &Principal,
    s: &Settings,
    now: OffsetDateTime,
) -> Result<Vec<Deadline>, StoreError> {
    may(who, None, Action::ReadCore).map_err(StoreError::Denied)?;
    let world = crate::law::load_world(&*reg.conn, &reg.keys, None)?;
    let mut all: Vec<Deadline> = world
        .cases
        .values()
        .filter(|c| may(who, Some(c), Action::ReadCore).is_ok())
        .flat_map(|c| deadlines(c, s, now))
        .collect();
    all.sort_by(deadline_order);
    Ok(all)
}

fn person(user: &str, org: &str, role: Role) -> Principal {
    Principal {
        user: user.into(),
        org: org.into(),
        roles: vec![role],
    }
}

/// The registrar, a delegate of the neutral agency, a receiving state's liaison and an
/// administrator (who sees no captive).
fn everyone() -> [Principal; 4] {
    [
        person("test", "detaining", Role::Registrar),
        person("cta", "neutral", Role::Interviewer),
        person("kr", "receiving:KR", Role::Liaison),
        person("admin", "detaining", Role::Admin),
    ]
}

/// Checks `kept`, brought up to date on `reg`, against the whole world's deadlines for each
/// caller, today and forty days on, all at once, overdue only, and a page at a time.
fn same_as_the_whole_world(kept: &mut Duties, reg: &Registry, now: OffsetDateTime) -> usize {
    kept.catch_up(reg).unwrap();
    let s = kept.settings.clone();
    let mut seen = 0;
    for who in everyone() {
        for day in [now, now + time::Duration::days(40)] {
            let whole = from_the_whole_world(reg, &who, &s, day);
            let listed = kept.page(&who, day, false, None, usize::MAX);
            let (whole, (listed, more)) = match (whole, listed) {
                (Ok(w), Ok(l)) => (w, l),
                (Err(StoreError::Denied(_)), Err(StoreError::Denied(_))) => continue,
                (w, l) => panic!("{who:?}: {w:?} against {l:?}"),
            };
            assert_eq!(listed, whole, "{who:?} on {day}");
            assert!(!more);
            seen += whole.len();
            let overdue: Vec<Deadline> = whole
                .iter()
                .filter(|d| d.status == DeadlineStatus::Overdue)
                .cloned()
                .collect();
            let (listed, _) = kept.page(&who, day, true, None, usize::MAX).unwrap();
            assert_eq!(listed, overdue, "{who:?} on {day}, overdue");
            for (limit, only_overdue) in [(1, false), (3, false), (2, true)] {
                let expected = if only_overdue { &overdue } else { &whole };
                let (mut pages, mut after) = (Vec::new(), None);
                loop {
                    let (page, more) = kept
                        .page(&who, day, only_overdue, after.as_ref(), limit)
                        .unwrap();
                    assert!(page.len() == limit || !more, "a short page before the end");
                    after = page.last().map(DeadlineCursor::of);
                    pages.extend(page);
                    assert!(pages.len() <= expected.len(), "{who:?}: pages run on");
                    if !more {
                        break;
                    }
                }
                assert_eq!(&pages, expected, "{who:?} on {day}, pages of {limit}");
            }
        }
    }
    seen
}

/// The command of a step of the property below, about `case`, `days` before today.
fn command(op: u8, case: &str, days: u8, now: OffsetDateTime) -> (Principal, serde_json::Value) {
    let [registrar, delegate, kr, _] = everyone();
    let on = (now - time::Duration::days(i64::from(days)))
        .date()
        .to_string();
    match op {
        0 => (
            registrar,
            json!({"command": "move_custody", "case": case, "place": "Camp 3", "on": on}),
        ),
        1 => (
            registrar,
            json!({"command": "move_custody", "case": case, "place": "Hospital 1", "on": on}),
        ),
        2 => (
            registrar,
            json!({"command": "issue_capture_card", "case": case, "on": on}),
        ),
        3 => (
            registrar,
            json!({"command": "send_notification", "case": case, "to": "agency"}),
        ),
        4 => (
            delegate,
            json!({"command": "declare_seriously_wounded", "case": case}),
        ),
        5 => (
            delegate,
            json!({"command": "update_health", "case": case, "note": "better"}),
        ),
        6 => (
            delegate,
            json!({"command": "decide_commission", "case": case, "repatriate": true}),
        ),
        7 => (
            delegate,
            json!({"command": "record_interview", "case": case, "on": on, "language": "ko",
                "interpreter": "I. Park", "interpreter_org": "neutral", "private": true,
                "wish": if days.is_multiple_of(3) { "return" } else { "KR" },
                "fear_of_persecution": days.is_multiple_of(2)}),
        ),
        8 => (
            kr,
            json!({"command": "record_acceptance", "case": case, "state": "KR"}),
        ),
        9 => (
            registrar,
            json!({"command": "propose_transfer", "case": case, "to": "KR"}),
        ),
        _ => (
            kr,
            json!({"command": "withdraw_acceptance", "case": case, "state": "KR"}),
        ),
    }
}

/// A registry of `n` captives with two places to move them to, and a second handle on it.
fn registry_of(dir: &std::path::Path, n: usize) -> (Registry, Registry, Vec<String>) {
    let (mut reg, actor, now) = new_registry(dir);
    let cases = reg.register(&actor, now, kim_chols("D", n)).unwrap();
    let [registrar, ..] = everyone();
    for (place, kind) in [("Camp 3", "camp"), ("Hospital 1", "hospital")] {
        let define = json!({"command": "define_place", "place": place, "kind": kind});
        reg.act(
            &registrar,
            now,
            &Settings::default(),
            &serde_json::from_value(define).unwrap(),
        )
        .unwrap();
    }
    let other = Registry::open(&dir.join("r"), &KeySource::File(dir.join("k"))).unwrap();
    (reg, other, cases)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// G8: the duties kept between requests and brought up to date from the events written
    /// since, by this handle or another, list what the whole log folded at once lists, for
    /// every caller, on any day, whole and a page at a time.
    #[test]
    fn duties_kept_up_to_date_are_those_of_the_whole_log(
        steps in proptest::collection::vec((0u8..14, 0usize..6, 0u8..30, any::<bool>()), 1..32)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, mut other, mut cases) = registry_of(dir.path(), 6);
        let now = OffsetDateTime::now_utc();
        let s = Settings::default();
        let mut kept = Duties::new(s.clone());
        same_as_the_whole_world(&mut kept, &reg, now);
        for (op, i, days, beside) in steps {
            let writer = if beside { &mut other } else { &mut reg };
            let case = cases[i % cases.len()].clone();
            match op {
                10 => {
                    let erased = writer.erase(&person("test", "detaining", Role::Registrar).actor(), now, &case, "asked");
                    prop_assert!(erased.is_ok() || matches!(erased, Err(StoreError::Erased { .. })), "{erased:?}");
                }
                11 => {
                    let actor = person("test", "detaining", Role::Registrar).actor();
                    let n = cases.len();
                    cases.extend(writer.register(&actor, now, kim_chols(&format!("E{n}-"), 1)).unwrap());
                }
                12 => {
                    same_as_the_whole_world(&mut kept, &reg, now);
                }
                _ => {
                    let (who, cmd) = command(op, &case, days, now);
                    // The law may refuse it (no decision on a captive erased, say): nothing is written then.
                    let _ = writer.act(&who, now, &s, &serde_json::from_value(cmd).unwrap());
                }
            }
        }
        same_as_the_whole_world(&mut kept, &reg, now);
        // And what a fresh reading of the whole log finds.
        let mut fresh = Duties::new(s);
        same_as_the_whole_world(&mut fresh, &other, now);
    }
}

#[test]
fn duties_follow_each_record_that_changes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reg, mut other, cases) = registry_of(dir.path(), 4);
    let now = OffsetDateTime::now_utc();
    let s = Settings::default();
    let mut kept = Duties::new(s.clone());
    // Every captive owes a capture card and a notification a week after registration.
    assert_eq!(same_as_the_whole_world(&mut kept, &reg, now), 8 * 2 * 2);
    let act = |r: &mut Registry, op: u8, case: &str, days: u8| {
        let (who, cmd) = command(op, case, days, now);
        r.act(&who, now, &s, &serde_json::from_value(cmd).unwrap())
            .unwrap();
    };
    // Moved to a camp twenty days ago (a card overdue since), his notification sent; wounded
    // (weekly news); a commission's decision G1 stops, for a fear he stated; referred to KR.
    act(&mut reg, 0, &cases[0], 20);
    act(&mut other, 3, &cases[0], 0);
    act(&mut other, 4, &cases[1], 0);
    act(&mut reg, 7, &cases[2], 2);
    act(&mut reg, 6, &cases[2], 0);
    act(&mut other, 8, &cases[3], 0);
    // Accepted by KR, two interviews stating his wish to go there, his transfer there
    // proposed, and KR's acceptance withdrawn: the transfer still refers him to KR.
    act(&mut other, 8, &cases[1], 0);
    act(&mut reg, 7, &cases[1], 10);
    act(&mut other, 7, &cases[1], 1);
    act(&mut reg, 9, &cases[1], 0);
    act(&mut reg, 13, &cases[1], 0);
    same_as_the_whole_world(&mut kept, &reg, now);
    let [registrar, _, kr, _] = everyone();
    let (all, _) = kept.page(&registrar, now, false, None, 100).unwrap();
    let of = |case: &str| -> Vec<(DeadlineKind, DeadlineStatus)> {
        all.iter()
            .filter(|d| d.case == case)
            .map(|d| (d.kind, d.status.clone()))
            .collect()
    };
    assert_eq!(
        of(&cases[0]),
        [(DeadlineKind::CaptureCard, DeadlineStatus::Overdue)]
    );
    assert!(
        of(&cases[1]).contains(&(DeadlineKind::HealthUpdate, DeadlineStatus::Due)),
        "{all:?}"
    );
    assert!(
        of(&cases[2])
            .iter()
            .any(|(k, s)| *k == DeadlineKind::CommissionDecision
                && matches!(s, DeadlineStatus::Waived(why) if why.starts_with("G1"))),
        "{all:?}"
    );
    let (seen_by_kr, _) = kept.page(&kr, now, false, None, 100).unwrap();
    let mut referred: Vec<&str> = seen_by_kr.iter().map(|d| d.case.as_str()).collect();
    referred.sort_unstable();
    referred.dedup();
    assert_eq!(referred, [&cases[1], &cases[3]], "{seen_by_kr:?}");
    // Erased on the other handle, he owes nothing and is seen by no one.
    other
        .erase(&registrar.actor(), now, &cases[3], "asked by the test")
        .unwrap();
    same_as_the_whole_world(&mut kept, &reg, now);
    let (seen_by_kr, _) = kept.page(&kr, now, false, None, 100).unwrap();
    assert!(
        seen_by_kr.iter().all(|d| d.case == cases[1]),
        "{seen_by_kr:?}"
    );
    let (all, _) = kept.page(&registrar, now, false, None, 100).unwrap();
    assert!(all.iter().all(|d| d.case != cases[3]), "{all:?}");
}

#[test]
fn duties_read_from_another_log_are_read_again_from_its_start() {
    // What it kept of one registry, asked of another with a log as long (as a registry
    // restored from a backup under a server would be): read again, not added to.
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut first, _, cases) = registry_of(one.path(), 3);
    let (mut second, _, other_cases) = registry_of(two.path(), 3);
    let now = OffsetDateTime::now_utc();
    let s = Settings::default();
    let mut kept = Duties::new(s.clone());
    let (who, cmd) = command(2, &cases[0], 0, now);
    first
        .act(&who, now, &s, &serde_json::from_value(cmd).unwrap())
        .unwrap();
    // As many events in the other, the last another one.
    let (who, cmd) = command(3, &other_cases[0], 0, now);
    second
        .act(&who, now, &s, &serde_json::from_value(cmd).unwrap())
        .unwrap();
    kept.catch_up(&first).unwrap();
    let [registrar, ..] = everyone();
    let cards = |d: &Duties| {
        d.page(&registrar, now, false, None, 100)
            .unwrap()
            .0
            .iter()
            .filter(|d| d.kind == DeadlineKind::CaptureCard)
            .count()
    };
    assert_eq!(cards(&kept), 2, "the card issued to one of three");
    same_as_the_whole_world(&mut kept, &second, now);
    assert_eq!(cards(&kept), 3);
}
