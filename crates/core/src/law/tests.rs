//! Named scenarios and a property-based state machine over the guards.

use super::*;
use crate::{Actor, Class};
use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn p(user: &str, org: &str, roles: &[Role]) -> Principal {
    Principal {
        user: user.into(),
        org: org.into(),
        roles: roles.to_vec(),
    }
}

fn registrar() -> Principal {
    p("reg", "detaining", &[Role::Registrar])
}
fn legal() -> Principal {
    p("lawyer", "detaining", &[Role::Legal])
}
fn neutral() -> Principal {
    p("delegate", "neutral", &[Role::Interviewer])
}
fn korea() -> Principal {
    p("consul", "receiving:KR", &[Role::Liaison])
}

/// A world that records what it applies, as the store does.
struct Sim {
    world: World,
    settings: Settings,
    now: OffsetDateTime,
    log: Vec<(Fact, Actor, OffsetDateTime)>,
    seq: u64,
}

impl Sim {
    fn new(cases: &[&str]) -> Self {
        let mut s = Self {
            world: World::default(),
            settings: Settings::default(),
            now: datetime!(2025-01-09 10:00 UTC),
            log: Vec::new(),
            seq: 0,
        };
        for c in cases {
            s.seq += 1;
            s.world.register(c, "KP", Some(s.now.date()), s.now, s.seq);
        }
        s
    }

    fn days(&mut self, n: i64) {
        self.now += Duration::days(n);
    }

    fn run(&mut self, who: &Principal, cmd: Command) -> Result<Vec<Fact>, Refusal> {
        let facts = decide(&self.world, who, &cmd, &self.settings, self.now)?;
        for f in &facts {
            self.seq += 1;
            self.world.apply(f, &who.actor(), self.now, self.seq);
            self.log.push((f.clone(), who.actor(), self.now));
        }
        Ok(facts)
    }

    fn ok(&mut self, who: &Principal, cmd: Command) -> Vec<Fact> {
        match self.run(who, cmd.clone()) {
            Ok(f) => f,
            Err(r) => panic!("{cmd:?} refused: {r}"),
        }
    }

    fn refused(&mut self, who: &Principal, cmd: Command) -> Refusal {
        let before = self.world.clone();
        let log_len = self.log.len();
        let r = self
            .run(who, cmd.clone())
            .expect_err(&format!("{cmd:?} should have been refused"));
        assert_eq!(self.world, before, "a refusal changed the state");
        assert_eq!(self.log.len(), log_len, "a refusal recorded something");
        r
    }

    /// A verified wish to go to KR (two private neutral interviews a week apart), KR's
    /// acceptance, and a proposed transfer; returns the movement.
    fn transfer_to_korea_proposed(&mut self, c: &str) -> String {
        self.interview(c, "KR", false, true);
        self.days(7);
        self.interview(c, "KR", false, true);
        self.ok(
            &korea(),
            Command::RecordAcceptance {
                case: c.into(),
                state: "KR".into(),
                conditions: None,
            },
        );
        movement_id(&self.ok(
            &registrar(),
            Command::ProposeTransfer {
                case: c.into(),
                to: "KR".into(),
            },
        ))
    }

    fn case(&self, c: &str) -> &Case {
        &self.world.cases[c]
    }

    fn interview(&mut self, c: &str, wish: &str, fear: bool, private_neutral: bool) -> Vec<Fact> {
        let who = if private_neutral {
            neutral()
        } else {
            registrar()
        };
        let cmd = interview_command(c, wish, fear, &who.org, private_neutral);
        self.ok(&who, cmd)
    }
}

/// An interview of `c` by an interviewer of `org`, stating `wish`.
fn interview_command(c: &str, wish: &str, fear: bool, org: &str, private: bool) -> Command {
    Command::RecordInterview {
        case: c.into(),
        on: None,
        interviewer: None,
        interpreter: Some("I. Kim".into()),
        interpreter_org: Some(org.into()),
        language: "ko".into(),
        private,
        wish: wish.parse().unwrap(),
        fear_of_persecution: fear,
        notes: Some("what he said, in his words".into()),
    }
}

fn approve(case: &str, movement: impl Into<String>) -> Command {
    Command::Approve {
        case: case.into(),
        movement: movement.into(),
    }
}

fn reconfirm(case: &str, movement: impl Into<String>) -> Command {
    Command::Reconfirm {
        case: case.into(),
        movement: movement.into(),
    }
}

fn hand_over(case: &str, movement: impl Into<String>) -> Command {
    Command::HandOver {
        case: case.into(),
        movement: movement.into(),
    }
}

fn cmd_interview(c: &str, wish: &str, fear: bool) -> Command {
    Command::RecordInterview {
        case: c.into(),
        on: None,
        interviewer: None,
        interpreter: None,
        interpreter_org: Some("neutral".into()),
        language: "ko".into(),
        private: true,
        wish: wish.parse().unwrap(),
        fear_of_persecution: fear,
        notes: None,
    }
}

fn movement_id(facts: &[Fact]) -> String {
    facts
        .iter()
        .find_map(|f| match &f.body {
            FactBody::MovementProposed { movement, .. } => Some(movement.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_transfer_to_the_power_he_depends_on_is_a_return_and_g1_decides_it() {
    // A depends on KP (as registered); B was registered as depending on RU, wrongly.
    let mut s = Sim::new(&["A"]);
    s.seq += 1;
    s.world
        .register("B", "RU", Some(s.now.date()), s.now, s.seq);
    let officials = p("official", "receiving:KP", &[Role::Liaison]);
    for c in ["A", "B"] {
        s.interview(c, "KP", true, true);
    }
    s.days(7);
    for c in ["A", "B"] {
        s.interview(c, "KP", true, true);
        s.ok(
            &officials,
            Command::RecordAcceptance {
                case: c.into(),
                state: "KP".into(),
                conditions: None,
            },
        );
    }
    let to_kp = |c: &str| Command::ProposeTransfer {
        case: c.into(),
        to: "KP".into(),
    };
    // His "wish to go to KP" is verified and KP accepts him, but he fears persecution there.
    let r = s.refused(&registrar(), to_kp("A"));
    assert_eq!(r.guard, Guard::G1, "{r}");
    assert!(r.message.contains("transfer of A to KP refused"), "{r}");
    // For B, KP was a third state when the transfer was proposed and approved; then his
    // particulars were corrected: he depends on KP. The hand-over is his return.
    let m = movement_id(&s.ok(&registrar(), to_kp("B")));
    s.ok(&legal(), approve("B", m.clone()));
    s.ok(&neutral(), reconfirm("B", m.clone()));
    s.seq += 1;
    s.world
        .amend("B", "KP", s.case("B").captured_on, s.now, s.seq);
    let r = s.refused(&registrar(), hand_over("B", m));
    assert_eq!(r.guard, Guard::G1, "{r}");
}

#[test]
fn a_correction_of_his_power_suspends_a_transfer_there_at_once() {
    // Registered as depending on RU; he asked, twice, to go to KP and to KR.
    let mut s = Sim::new(&[]);
    for (c, seq) in [("B", 1), ("C", 2)] {
        s.world.register(c, "RU", Some(s.now.date()), s.now, seq);
    }
    s.seq = 2;
    let kp = p("official", "receiving:KP", &[Role::Liaison]);
    for (c, to) in [("B", "KP"), ("C", "KR")] {
        s.interview(c, to, true, true);
    }
    s.days(7);
    let mut moves = Vec::new();
    for (c, to, state) in [("B", "KP", &kp), ("C", "KR", &korea())] {
        s.interview(c, to, true, true);
        s.ok(
            state,
            Command::RecordAcceptance {
                case: c.into(),
                state: to.into(),
                conditions: None,
            },
        );
        moves.push(movement_id(&s.ok(
            &registrar(),
            Command::ProposeTransfer {
                case: c.into(),
                to: to.into(),
            },
        )));
    }
    // Corrected to RU again, or a transfer to another state: nothing to suspend.
    assert!(amended(&s.world, "B", "RU", &s.settings).is_empty());
    assert!(amended(&s.world, "C", "KP", &s.settings).is_empty());
    assert!(amended(&s.world, "Z", "KP", &s.settings).is_empty());
    // He depends on KP: the transfer to KP would return him.
    let facts = amended(&s.world, "B", "KP", &s.settings);
    assert_eq!(facts.len(), 1, "{facts:?}");
    let FactBody::MovementSuspended {
        movement,
        guard,
        reason,
        ..
    } = &facts[0].body
    else {
        panic!("{facts:?}")
    };
    assert_eq!((movement, *guard), (&moves[0], Guard::G1));
    assert!(
        reason.contains("depends on KP") && reason.contains("latest recorded wish"),
        "{reason}"
    );
    s.seq += 1;
    s.world
        .amend("B", "KP", s.case("B").captured_on, s.now, s.seq);
    for f in &facts {
        s.seq += 1;
        s.world.apply(f, &registrar().actor(), s.now, s.seq);
    }
    assert!(!s.case("B").movements[&moves[0]].is_pending());
    assert!(s.case("C").movements[&moves[1]].is_pending());
    s.refused(&legal(), approve("B", moves[0].clone()));
}

#[test]
fn an_exchange_completes_its_captives_in_the_order_of_their_numbers() {
    // In the world's own (text) order AS-1000000 comes between AS-100000 and AS-100001.
    let ids = ["AS-1000000", "AS-999999", "AS-100001", "AS-100000"];
    let mut s = Sim::new(&ids);
    s.days(3);
    for id in ids {
        s.interview(id, "return", false, true);
    }
    s.days(8);
    for id in ids {
        s.interview(id, "return", false, true);
    }
    let list = || "X1".to_string();
    s.ok(
        &registrar(),
        Command::CreateExchangeList {
            list: list(),
            counterpart: "RU".into(),
        },
    );
    for id in ids {
        let entry = movement_id(&s.ok(
            &registrar(),
            Command::AddToExchangeList {
                list: list(),
                case: id.into(),
            },
        ));
        s.ok(&legal(), approve(id, entry.clone()));
        s.ok(&neutral(), reconfirm(id, entry));
    }
    s.ok(&legal(), Command::FinaliseExchangeList { list: list() });
    let facts = s.ok(&registrar(), Command::CompleteExchangeList { list: list() });
    let completed: Vec<&str> = facts
        .iter()
        .filter_map(|f| match &f.body {
            FactBody::MovementCompleted { case, .. } => Some(case.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        ["AS-100000", "AS-100001", "AS-999999", "AS-1000000"]
    );
    assert!(ids.iter().all(|id| s.case(id).end == Some(End::Exchanged)));
}

#[test]
fn settings_are_bounded_and_no_setting_makes_a_due_date_fail() {
    let mut s = Settings {
        capture_card_days: 4_000_000_000,
        ..Settings::default()
    };
    let e = s.validate().unwrap_err();
    assert_eq!(e, "capture_card_days must be at most 3650");
    s.capture_card_days = 3650;
    assert_eq!(s.validate(), Ok(()));
    s.interview_span_days = 0;
    assert_eq!(s.validate(), Ok(()), "interviews on one day");
    // Even unchecked, the largest of each gives the last date there is, not a panic.
    let extreme = Settings {
        capture_card_days: u32::MAX,
        notification_days: u32::MAX,
        health_update_days: u32::MAX,
        commission_months: u32::MAX,
        ..Settings::default()
    };
    let sim = Sim::new(&["A"]);
    let due = deadlines(sim.case("A"), &extreme, sim.now);
    assert!(due.len() >= 2, "{due:?}");
    assert!(due.iter().all(|d| d.due == time::Date::MAX), "{due:?}");
}

#[test]
fn an_erased_captive_is_left_out_of_everything_the_law_records_and_owes_nothing() {
    let mut s = Sim::new(&["A", "B"]);
    s.days(3);
    for id in ["A", "B"] {
        s.interview(id, "return", false, true);
    }
    s.days(8);
    s.ok(
        &registrar(),
        Command::CreateExchangeList {
            list: "X1".into(),
            counterpart: "RU".into(),
        },
    );
    for id in ["A", "B"] {
        s.interview(id, "return", false, true);
        let entry = movement_id(&s.ok(
            &registrar(),
            Command::AddToExchangeList {
                list: "X1".into(),
                case: id.into(),
            },
        ));
        s.ok(&legal(), approve(id, entry.clone()));
        s.ok(&neutral(), reconfirm(id, entry));
    }
    s.ok(
        &legal(),
        Command::FinaliseExchangeList { list: "X1".into() },
    );
    assert!(!deadlines(s.case("B"), &s.settings, s.now).is_empty());
    // B's keys are destroyed (`person erase`) after the list was finalised.
    s.seq += 1;
    s.world.erase("B", s.seq);
    assert!(deadlines(s.case("B"), &s.settings, s.now).is_empty());
    let r = s.refused(
        &registrar(),
        Command::IssueCaptureCard {
            case: "B".into(),
            on: None,
        },
    );
    assert_eq!(
        r.message,
        "B was erased: nothing more is recorded about him"
    );
    let facts = s.ok(
        &registrar(),
        Command::CompleteExchangeList { list: "X1".into() },
    );
    let completed: Vec<&str> = facts.iter().filter_map(|f| f.body.case()).collect();
    assert_eq!(completed, ["A"]);
    assert_eq!(s.case("A").end, Some(End::Exchanged));
    assert_eq!(s.case("B").end, None);
}

#[test]
fn the_motivating_case_two_soldiers_an_exchange_and_a_transfer_to_korea() {
    // A decides early; B wavers for months; C wants to go home.
    let mut s = Sim::new(&["A", "B", "C"]);
    s.days(3);
    s.interview("A", "KR", true, true);
    s.interview("B", "stay", true, true);
    s.interview("C", "return", false, true);
    s.days(8);
    s.interview("A", "KR", true, true);
    s.interview("C", "return", false, true);
    assert_eq!(
        s.case("A").wish_status(&s.settings),
        WishStatus::Verified(Wish::ThirdState("KR".into()))
    );

    // An exchange for prisoners held by the other side is proposed.
    s.ok(
        &registrar(),
        Command::CreateExchangeList {
            list: "X1".into(),
            counterpart: "RU".into(),
        },
    );
    let r = s.refused(
        &registrar(),
        Command::AddToExchangeList {
            list: "X1".into(),
            case: "B".into(),
        },
    );
    assert_eq!(r.guard, Guard::G1);
    assert!(r.message.contains("stay in the detaining state"), "{r}");
    let r = s.refused(
        &registrar(),
        Command::AddToExchangeList {
            list: "X1".into(),
            case: "A".into(),
        },
    );
    assert_eq!(r.guard, Guard::G1);
    let entry = movement_id(&s.ok(
        &registrar(),
        Command::AddToExchangeList {
            list: "X1".into(),
            case: "C".into(),
        },
    ));
    s.ok(&legal(), approve("C", entry.clone()));
    s.ok(&neutral(), reconfirm("C", entry));
    s.ok(
        &legal(),
        Command::FinaliseExchangeList { list: "X1".into() },
    );
    s.ok(
        &registrar(),
        Command::CompleteExchangeList { list: "X1".into() },
    );
    assert_eq!(s.case("C").end, Some(End::Exchanged));

    // Months of wavering: stay, then return, then Korea.
    s.days(30);
    s.interview("B", "return", true, false);
    s.days(30);
    s.interview("B", "KR", true, true);
    let r = s.refused(
        &registrar(),
        Command::ProposeTransfer {
            case: "B".into(),
            to: "KR".into(),
        },
    );
    assert_eq!(r.guard, Guard::G2);
    assert_eq!(
        r.message,
        "transfer of B to KR refused: one interview states the wish to go to KR; two are needed; \
         the first and the last are 0 days apart; at least 7 are needed"
    );
    s.days(10);
    s.interview("B", "KR", true, true);
    let r = s.refused(
        &registrar(),
        Command::ProposeTransfer {
            case: "B".into(),
            to: "KR".into(),
        },
    );
    assert_eq!(r.guard, Guard::G3, "{r}");
    // Only Korea can say Korea accepts him.
    let r = s.refused(
        &registrar(),
        Command::RecordAcceptance {
            case: "B".into(),
            state: "KR".into(),
            conditions: None,
        },
    );
    assert!(r.message.contains("only KR itself"), "{r}");
    s.ok(
        &korea(),
        Command::RecordAcceptance {
            case: "B".into(),
            state: "KR".into(),
            conditions: Some("as a citizen".into()),
        },
    );
    let m = movement_id(&s.ok(
        &registrar(),
        Command::ProposeTransfer {
            case: "B".into(),
            to: "KR".into(),
        },
    ));

    // Four eyes: not the proposer, a legal officer; then the neutral agency, within R days.
    let proposer_as_legal = p("reg", "detaining", &[Role::Legal]);
    let r = s.refused(&proposer_as_legal, approve("B", m.clone()));
    assert_eq!(r.guard, Guard::G4);
    let r = s.refused(&registrar(), hand_over("B", m.clone()));
    assert_eq!(r.guard, Guard::G4);
    s.ok(&legal(), approve("B", m.clone()));
    let r = s.refused(&registrar(), hand_over("B", m.clone()));
    assert!(r.message.contains("has not reconfirmed"), "{r}");
    s.ok(&neutral(), reconfirm("B", m.clone()));
    s.days(3);
    let r = s.refused(&registrar(), hand_over("B", m.clone()));
    assert!(r.message.contains("older than 2 days"), "{r}");
    s.ok(&neutral(), reconfirm("B", m.clone()));
    s.ok(&registrar(), hand_over("B", m));
    assert_eq!(s.case("B").end, Some(End::Transferred("KR".into())));

    // G7: the record is closed.
    let r = s.refused(&neutral(), cmd_interview("B", "return", false));
    assert_eq!(r.guard, Guard::G7);
    s.ok(
        &registrar(),
        Command::SendNotification {
            case: "B".into(),
            to: "agency".into(),
        },
    );
}

#[test]
fn a_change_of_mind_suspends_a_pending_transfer_at_once() {
    let mut s = Sim::new(&["A"]);
    let m = s.transfer_to_korea_proposed("A");
    s.ok(&legal(), approve("A", m.clone()));
    let facts = s.interview("A", "stay", false, true);
    assert!(matches!(
        &facts[1].body,
        FactBody::MovementSuspended { guard: Guard::G5, reason, .. } if reason.contains("stay in the detaining state")
    ));
    let r = s.refused(&neutral(), reconfirm("A", m.clone()));
    assert_eq!(r.guard, Guard::G5);
    let r = s.refused(&registrar(), hand_over("A", m));
    assert_eq!(r.guard, Guard::G5);
}

#[test]
fn a_withdrawn_acceptance_suspends_the_transfer() {
    let mut s = Sim::new(&["A"]);
    let m = s.transfer_to_korea_proposed("A");
    let facts = s.ok(
        &korea(),
        Command::WithdrawAcceptance {
            case: "A".into(),
            state: "KR".into(),
        },
    );
    assert!(matches!(
        &facts[1].body,
        FactBody::MovementSuspended {
            guard: Guard::G3,
            ..
        }
    ));
    assert!(!s.case("A").movements[&m].is_pending());
}

#[test]
fn a_seriously_wounded_captive_who_will_not_go_home_is_not_repatriated_by_a_commission_decision() {
    let mut s = Sim::new(&["W"]);
    s.ok(
        &registrar(),
        Command::DeclareSeriouslyWounded {
            case: "W".into(),
            note: Some("shrapnel".into()),
        },
    );
    s.ok(
        &registrar(),
        Command::DecideCommission {
            case: "W".into(),
            repatriate: true,
            note: None,
        },
    );
    s.interview("W", "stay", true, true);
    let r = s.refused(
        &registrar(),
        Command::ProposeRepatriation { case: "W".into() },
    );
    assert_eq!(r.guard, Guard::G1);
    assert!(
        r.message.starts_with("repatriation of W to KP refused"),
        "{r}"
    );
    let d = deadlines(s.case("W"), &s.settings, s.now);
    let commission = d
        .iter()
        .find(|d| d.kind == DeadlineKind::CommissionDecision)
        .unwrap();
    assert!(matches!(&commission.status, DeadlineStatus::Waived(why) if why.starts_with("G1")));
    // His health is still reported weekly.
    s.days(8);
    let d = deadlines(s.case("W"), &s.settings, s.now);
    assert!(
        d.iter()
            .any(|d| d.kind == DeadlineKind::HealthUpdate && d.status == DeadlineStatus::Overdue)
    );
    s.ok(
        &registrar(),
        Command::UpdateHealth {
            case: "W".into(),
            note: "stable".into(),
        },
    );
    let d = deadlines(s.case("W"), &s.settings, s.now);
    assert!(
        d.iter()
            .any(|d| d.kind == DeadlineKind::HealthUpdate && d.status == DeadlineStatus::Due)
    );
}

#[test]
fn a_fear_stands_until_a_later_verified_wish_to_return_clears_it() {
    let mut s = Sim::new(&["F"]);
    s.interview("F", "return", true, true);
    assert!(s.case("F").protected_from_return(&s.settings).is_some());
    s.days(1);
    s.interview("F", "return", false, true);
    s.days(7);
    // Two interviews state return but the streak began with the fear itself.
    s.interview("F", "return", false, false);
    assert!(
        s.case("F").protected_from_return(&s.settings).is_none(),
        "the streak after the fear is verified"
    );
    let mut s = Sim::new(&["G"]);
    s.interview("G", "return", true, true);
    s.days(8);
    s.interview("G", "return", false, true);
    assert!(
        s.case("G").protected_from_return(&s.settings).is_some(),
        "the fear is inside the streak"
    );
}

#[test]
fn the_capture_card_deadline_turns_overdue_and_clears_when_the_card_is_recorded() {
    let mut s = Sim::new(&["A"]);
    s.ok(
        &registrar(),
        Command::IssueCaptureCard {
            case: "A".into(),
            on: None,
        },
    );
    s.ok(
        &registrar(),
        Command::DefinePlace {
            place: "Camp 1".into(),
            kind: CustodyKind::Camp,
        },
    );
    s.days(2);
    s.ok(
        &registrar(),
        Command::MoveCustody {
            case: "A".into(),
            place: "Camp 1".into(),
            on: None,
        },
    );
    let card = |s: &Sim| {
        deadlines(s.case("A"), &s.settings, s.now)
            .into_iter()
            .find(|d| d.kind == DeadlineKind::CaptureCard)
    };
    assert_eq!(card(&s).unwrap().status, DeadlineStatus::Due);
    assert_eq!(card(&s).unwrap().due, (s.now + Duration::days(7)).date());
    s.days(7);
    assert_eq!(
        card(&s).unwrap().status,
        DeadlineStatus::Due,
        "due on the seventh day"
    );
    s.days(1);
    assert_eq!(card(&s).unwrap().status, DeadlineStatus::Overdue);
    s.ok(
        &registrar(),
        Command::IssueCaptureCard {
            case: "A".into(),
            on: None,
        },
    );
    assert!(card(&s).is_none());
    let r = s.refused(
        &registrar(),
        Command::MoveCustody {
            case: "A".into(),
            place: "Nowhere".into(),
            on: None,
        },
    );
    assert!(r.message.contains("define it first"), "{r}");
}

#[test]
fn a_notification_to_the_power_of_origin_carries_nothing_identifying_for_a_protected_captive() {
    let mut s = Sim::new(&["P", "R"]);
    s.interview("P", "KR", true, true);
    s.interview("R", "return", false, true);
    s.days(8);
    s.interview("R", "return", false, true);
    let f = s.ok(
        &registrar(),
        Command::SendNotification {
            case: "P".into(),
            to: "origin".into(),
        },
    );
    match &f[0].body {
        FactBody::NotificationSent {
            included,
            withheld,
            reason,
            ..
        } => {
            assert!(included.is_empty());
            assert_eq!(
                withheld,
                &vec![
                    crate::Class::Identity,
                    crate::Class::Family,
                    crate::Class::Statements
                ]
            );
            assert!(
                reason
                    .as_deref()
                    .unwrap()
                    .starts_with("G6: his latest recorded wish is to go to KR")
            );
        }
        other => panic!("{other:?}"),
    }
    let f = s.ok(
        &registrar(),
        Command::SendNotification {
            case: "R".into(),
            to: "origin".into(),
        },
    );
    assert!(
        matches!(&f[0].body, FactBody::NotificationSent { included, .. } if included.len() == 2)
    );
    assert!(
        deadlines(s.case("R"), &s.settings, s.now)
            .iter()
            .all(|d| d.kind != DeadlineKind::Notification)
    );
}

#[test]
fn a_day_that_is_today_somewhere_is_not_in_the_future() {
    // 23:00 UTC on the 9th of January is 08:00 on the 10th in Seoul: an interview recorded
    // there that morning, dated that day, is taken; the 11th is in the future everywhere.
    let mut s = Sim::new(&["A"]);
    s.now = datetime!(2025-01-09 23:00 UTC);
    let on = |d: &str| Command::IssueCaptureCard {
        case: "A".into(),
        on: Some(d.into()),
    };
    let r = s.refused(&registrar(), on("2025-01-11"));
    assert!(r.message.contains("2025-01-11 is in the future"), "{r}");
    s.ok(&registrar(), on("2025-01-10"));
    // Before 10:00 UTC the 10th has begun nowhere.
    let mut s = Sim::new(&["A"]);
    s.now = datetime!(2025-01-09 09:59 UTC);
    let r = s.refused(&registrar(), on("2025-01-10"));
    assert!(r.message.contains("in the future"), "{r}");
}

#[test]
fn bad_command_fields_are_refused_with_the_field_named() {
    let mut s = Sim::new(&["A"]);
    // A place that looks like another but differs by a character that is not shown would be a
    // second place; a note with a right-to-left override reads as something else.
    let r = s.refused(
        &registrar(),
        Command::DefinePlace {
            place: "Camp\u{200B} 1".into(),
            kind: CustodyKind::Camp,
        },
    );
    assert!(r.message.starts_with("place: contains U+200B"), "{r}");
    let r = s.refused(
        &registrar(),
        Command::DeclareSeriouslyWounded {
            case: "A".into(),
            note: Some("stable\u{202E}lacitirc".into()),
        },
    );
    assert!(r.message.starts_with("note: contains U+202E"), "{r}");
    let r = s.refused(
        &registrar(),
        Command::IssueCaptureCard {
            case: "A".into(),
            on: Some("2030-01-01".into()),
        },
    );
    assert!(r.message.contains("in the future"));
    let r = s.refused(
        &registrar(),
        Command::IssueCaptureCard {
            case: "Z".into(),
            on: None,
        },
    );
    assert!(r.message.contains("no person"));
    let r = s.refused(
        &registrar(),
        Command::ProposeTransfer {
            case: "A".into(),
            to: "Korea".into(),
        },
    );
    assert!(r.message.contains("two capital letters"), "{r}");
    assert!("Korea".parse::<Wish>().is_err());
    // Two capitals that name no state: neither a destination nor a wish.
    let r = s.refused(
        &registrar(),
        Command::ProposeTransfer {
            case: "A".into(),
            to: "XX".into(),
        },
    );
    assert!(
        r.message.contains("\"XX\" is not a state's ISO 3166 code"),
        "{r}"
    );
    // A doubt about his status is raised once, until a tribunal decides.
    s.ok(&registrar(), Command::DoubtStatus { case: "A".into() });
    let r = s.refused(&registrar(), Command::DoubtStatus { case: "A".into() });
    assert!(r.message.contains("already in doubt"), "{r}");
    // A consent is given to a receiving state's organisation, for classes that can be shared.
    let consent = |recipient: &str, classes: &[Class]| Command::RecordConsent {
        case: "A".into(),
        recipient: recipient.into(),
        classes: classes.to_vec(),
    };
    for (recipient, classes, says) in [
        (
            "detaining",
            &[Class::Identity][..],
            "is not a receiving state's organisation",
        ),
        (
            "receiving:XX",
            &[Class::Identity][..],
            "is not a receiving state's organisation",
        ),
        (
            "receiving:KR",
            &[Class::Statements][..],
            "statements) is never shared",
        ),
        ("receiving:KR", &[][..], "name at least one class"),
    ] {
        let r = s.refused(&neutral(), consent(recipient, classes));
        assert!(r.message.contains(says), "{recipient} {classes:?}: {r}");
    }
    let facts = s.ok(
        &neutral(),
        consent(
            "receiving:KR",
            &[Class::Medical, Class::Identity, Class::Medical],
        ),
    );
    assert!(
        matches!(&facts[0].body, FactBody::ConsentRecorded { classes, .. }
            if classes == &[Class::Identity, Class::Medical]),
        "{facts:?}"
    );
    // Nothing about him is dated before his capture (2025-01-09 here): a card, an interview, a
    // death.
    let mut early = interview_command("A", "return", true, "neutral", true);
    if let Command::RecordInterview { on, .. } = &mut early {
        *on = Some("2015-01-10".into());
    }
    for (who, cmd) in [
        (
            registrar(),
            Command::IssueCaptureCard {
                case: "A".into(),
                on: Some("2025-01-08".into()),
            },
        ),
        (neutral(), early),
        (
            registrar(),
            Command::RecordDeath {
                case: "A".into(),
                on: "2024-12-31".into(),
                place: "Camp 1".into(),
                cause: None,
                burial: None,
            },
        ),
    ] {
        let r = s.refused(&who, cmd);
        assert!(
            r.message.contains("is before his capture (2025-01-09)"),
            "{r}"
        );
    }
    s.ok(
        &registrar(),
        Command::IssueCaptureCard {
            case: "A".into(),
            on: Some("2025-01-09".into()),
        },
    );
    let before = s.case("A").interviews.len();
    let r = s.refused(
        &neutral(),
        interview_command("A", "UK", true, "neutral", true),
    );
    assert!(r.message.contains("wish: \"UK\" is not a state's"), "{r}");
    assert_eq!(s.case("A").interviews.len(), before);
    let r = s.refused(
        &registrar(),
        Command::Correct {
            case: "A".into(),
            corrects: 1,
            note: "  ".into(),
        },
    );
    assert!(r.message.contains("note"));
}

// ---------------------------------------------------------------------------------------------
// The state machine

/// One random step: who acts, what, on whom, with which values, after how long.
#[derive(Clone, Debug)]
struct Step {
    who: u8,
    what: u8,
    case: u8,
    wish: u8,
    flag_a: bool,
    flag_b: bool,
    hours: u16,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<u8>(),
        any::<u8>(),
        0u8..4,
        0u8..6,
        any::<bool>(),
        any::<bool>(),
        0u16..(24 * 6),
    )
        .prop_map(|(who, what, case, wish, flag_a, flag_b, hours)| Step {
            who,
            what,
            case,
            wish,
            flag_a,
            flag_b,
            hours,
        })
}

const CASES: [&str; 4] = ["A", "B", "C", "D"];
const WISHES: [&str; 6] = ["return", "stay", "KR", "US", "KP", "undecided"];
/// The states a transfer is proposed to and that accept captives: two third states, and KP, the
/// power every case is registered as depending on (an amendment may make it RU).
const STATES: [&str; 3] = ["KR", "US", "KP"];

fn principals() -> Vec<Principal> {
    vec![
        registrar(),
        legal(),
        p("lawyer2", "detaining", &[Role::Legal]),
        neutral(),
        korea(),
        p("usc", "receiving:US", &[Role::Liaison]),
        p("kpo", "receiving:KP", &[Role::Liaison]),
    ]
}

/// Who acts in step `st`: half the time anyone, half the time someone whose organisation and
/// role may do what the step does (the only ones who get past the policy to the guards: chosen
/// at random alone, a verified wish, an acceptance, a proposal, an approval and a
/// reconfirmation within days almost never line up, and the guards on hand-overs go untried).
fn actor(st: &Step, all: &[Principal]) -> Principal {
    if st.who % 2 == 1 {
        return all[usize::from(st.who / 2) % all.len()].clone();
    }
    match st.what % 20 {
        0..=4 | 11 | 12 => neutral(),
        5 | 6 => {
            let state = STATES[usize::from(st.wish) % STATES.len()];
            p("liaison", &format!("receiving:{state}"), &[Role::Liaison])
        }
        9 | 10 | 16 if st.flag_a => legal(),
        9 | 10 | 16 => p("lawyer2", "detaining", &[Role::Legal]),
        _ => registrar(),
    }
}

/// A movement waiting only for its hand-over: pending, approved and reconfirmed (perhaps too
/// long ago).
fn ready(m: &Movement) -> bool {
    m.is_pending() && m.approved_by.is_some() && m.reconfirmed_at.is_some()
}

fn command(w: &World, st: &Step, who: &Principal) -> Command {
    // An approval, a reconfirmation or a hand-over is mostly about a captive with a movement
    // pending, the next one from the step's on.
    let pending = |c: &&str| {
        w.cases
            .get(*c)
            .is_some_and(|c| c.movements.values().any(Movement::is_pending))
    };
    let moving = matches!(st.what % 20, 9..=13 | 18) && st.flag_b;
    let case = CASES
        .iter()
        .cycle()
        .skip(st.case as usize)
        .take(CASES.len())
        .find(|c| !moving || pending(c))
        .unwrap_or(&CASES[st.case as usize])
        .to_string();
    // Mostly a captive says again what he said last, and a transfer is proposed to where he
    // last asked to go: random wishes and states alone almost never verify a wish (one
    // transfer in 24 runs), and the guards on transfers would go untried.
    let latest = w
        .cases
        .get(&case)
        .and_then(|c| c.latest_wish().ok().flatten());
    let wish = match &latest {
        Some(last) if !(st.flag_a && st.flag_b) => last.to_string(),
        _ => WISHES[st.wish as usize].to_string(),
    };
    let state = match (&latest, who.org.strip_prefix("receiving:")) {
        (_, Some(own)) if st.flag_b => own.to_string(),
        (Some(Wish::ThirdState(x)), _) if st.flag_b => x.clone(),
        _ => STATES[usize::from(st.what / 20) % STATES.len()].to_string(),
    };
    // Half the time the movement still pending, half the time any of his.
    let movement = w.cases.get(&case).and_then(|c| {
        let ms: Vec<&String> = c
            .movements
            .iter()
            .filter(|(_, m)| !st.flag_b || m.is_pending())
            .map(|(id, _)| id)
            .collect();
        (!ms.is_empty()).then(|| ms[st.wish as usize % ms.len()].clone())
    });
    let movement = movement.unwrap_or_else(|| format!("{case}/M1"));
    match st.what % 20 {
        0..=4 => Command::RecordInterview {
            case,
            on: None,
            interviewer: None,
            interpreter: None,
            interpreter_org: st.flag_b.then(|| "neutral".into()),
            language: "ko".into(),
            private: st.flag_a || st.flag_b,
            wish: wish.parse().unwrap(),
            fear_of_persecution: st.wish.is_multiple_of(2) && st.flag_a,
            notes: None,
        },
        5 => Command::RecordAcceptance {
            case,
            state,
            conditions: None,
        },
        6 => Command::WithdrawAcceptance { case, state },
        7 => Command::ProposeTransfer { case, to: state },
        8 => Command::ProposeRepatriation { case },
        9 | 10 => Command::Approve { case, movement },
        11 | 12 => Command::Reconfirm { case, movement },
        13 => Command::HandOver { case, movement },
        14 => Command::CreateExchangeList {
            list: format!("L{}", st.wish % 2),
            counterpart: "RU".into(),
        },
        15 => Command::AddToExchangeList {
            list: format!("L{}", st.wish % 2),
            case,
        },
        16 => Command::FinaliseExchangeList {
            list: format!("L{}", st.wish % 2),
        },
        17 => Command::CompleteExchangeList {
            list: format!("L{}", st.wish % 2),
        },
        // A withdrawal a quarter of the time, or most movements would be withdrawn before
        // they could be handed over.
        18 if st.flag_a && st.flag_b => Command::WithdrawMovement {
            case,
            movement,
            reason: "changed plans".into(),
        },
        18 => Command::HandOver { case, movement },
        _ => {
            // Release ends a case: rare, or the run would end early.
            if st.flag_a && st.flag_b && st.hours.is_multiple_of(32) {
                Command::Release { case }
            } else {
                Command::SendNotification {
                    case,
                    to: "origin".into(),
                }
            }
        }
    }
}

/// Checks one recorded fact against the state just before it (the guards' promises).
fn check_fact(
    before: &World,
    f: &Fact,
    actor: &Actor,
    s: &Settings,
    now: OffsetDateTime,
) -> Result<(), String> {
    let Some(id) = f.body.case() else {
        return Ok(());
    };
    let Some(c) = before.cases.get(id) else {
        return Err(format!("fact about unknown case {id}"));
    };
    // G7
    if c.end.is_some()
        && !matches!(
            f.body,
            FactBody::Corrected { .. }
                | FactBody::NotificationSent { .. }
                | FactBody::ConsentRecorded { .. }
                | FactBody::ConsentWithdrawn { .. }
        )
    {
        return Err(format!("G7: {:?} recorded after the end of {id}", f.body));
    }
    match &f.body {
        FactBody::MovementProposed { .. } | FactBody::MovementApproved { .. } => {
            let kind = kind_of(c, &f.body).ok_or("approval of an unknown movement")?;
            match &kind {
                MovementKind::Transfer { to } => {
                    c.verify_wish(&Wish::ThirdState(to.clone()), s)
                        .map_err(|e| format!("G2 broken: {e}"))?;
                    if !c.acceptances.contains_key(to) {
                        return Err("G3 broken".into());
                    }
                    g1_for_transfer(c, to, s)?;
                }
                _ => {
                    if let Some(why) = c.protected_from_return(s) {
                        return Err(format!("G1 broken at {:?}: {why}", f.body));
                    }
                }
            }
        }
        FactBody::MovementCompleted { movement, .. } => {
            let m = &c.movements[movement];
            match &m.kind {
                MovementKind::Transfer { to } => {
                    c.verify_wish(&Wish::ThirdState(to.clone()), s)
                        .map_err(|e| format!("G2 broken: {e}"))?;
                    if !c.acceptances.contains_key(to) {
                        return Err("G3 broken at hand-over".into());
                    }
                    g1_for_transfer(c, to, s)?;
                }
                _ => {
                    if let Some(why) = c.protected_from_return(s) {
                        return Err(format!("G1 broken at hand-over: {why}"));
                    }
                }
            }
            let approver = m
                .approved_by
                .as_ref()
                .ok_or("G4: completed without approval")?;
            if approver.user == m.proposed_by.user || approver.org != "detaining" {
                return Err("G4: approved by the proposer or outside the detaining power".into());
            }
            let r = m
                .reconfirmed_at
                .ok_or("G4: completed without reconfirmation")?;
            if now - r > Duration::days(i64::from(s.reconfirm_within_days)) {
                return Err("G4: reconfirmation too old".into());
            }
            if actor.org != "detaining" {
                return Err("hand-over recorded by another organisation".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// G1 for a transfer: sent to the power he depends on, he is returned.
fn g1_for_transfer(c: &Case, to: &str, s: &Settings) -> Result<(), String> {
    match c.protected_from_return(s) {
        Some(why) if to == c.power => Err(format!("G1 broken by a transfer to {to}: {why}")),
        _ => Ok(()),
    }
}

fn kind_of(c: &Case, body: &FactBody) -> Option<MovementKind> {
    match body {
        FactBody::MovementProposed { kind, .. } => Some(kind.clone()),
        FactBody::MovementApproved { movement, .. } => {
            c.movements.get(movement).map(|m| m.kind.clone())
        }
        _ => None,
    }
}

/// G5 as a state invariant: no pending movement contradicts what he now wants.
fn check_world(w: &World, s: &Settings) -> Result<(), String> {
    for c in w.cases.values() {
        for m in c.movements.values().filter(|m| m.is_pending()) {
            match &m.kind {
                MovementKind::Transfer { to } => {
                    if *to == c.power {
                        return Err(format!(
                            "G1: pending transfer of {} to {to}, the power he depends on",
                            c.case
                        ));
                    }
                    if c.latest_wish() != Ok(Some(Wish::ThirdState(to.clone()))) {
                        return Err(format!(
                            "G5: pending transfer of {} to {to} against his latest wish",
                            c.case
                        ));
                    }
                    if !c.acceptances.contains_key(to) {
                        return Err(format!(
                            "G3: pending transfer of {} to {to} without acceptance",
                            c.case
                        ));
                    }
                }
                kind => {
                    if let Some(why) = c.protected_from_return(s) {
                        return Err(format!(
                            "G5/G1: pending {} of {}: {why}",
                            kind.describe(),
                            c.case
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The facts as the store keeps them: public JSON and sealed JSON, read back.
fn round_trip(f: &Fact) -> Fact {
    Fact {
        body: serde_json::from_str(&serde_json::to_string(&f.body).unwrap()).unwrap(),
        statements: f
            .statements
            .as_ref()
            .map(|x| serde_json::from_slice(&serde_json::to_vec(x).unwrap()).unwrap()),
        medical: f
            .medical
            .as_ref()
            .map(|x| serde_json::from_slice(&serde_json::to_vec(x).unwrap()).unwrap()),
    }
}

/// How far a run of the guard state machine got: what the guards were tried on.
#[derive(Debug, Default)]
struct Reach {
    accepted: usize,
    transfers_proposed: usize,
    handed_over: usize,
    /// Refusals by G1 of a transfer (to the power he depends on).
    g1_transfer_refusals: usize,
}

/// Runs `steps` through the guard state machine, checking every guard's promise after each
/// step and, at the end, that a replay of the log gives the same state.
fn machine(steps: &[Step]) -> Result<Reach, TestCaseError> {
    let mut s = Sim::new(&CASES);
    let who = principals();
    let mut reach = Reach::default();
    // Corrections of the power a case depends on, between the commands: where in the log
    // (how many facts came before), which case, which power, when.
    let mut amendments: Vec<(usize, String, &str, OffsetDateTime)> = Vec::new();
    for st in steps {
        // Days between most steps (a wish is verified over a week), hours between some
        // (a reconfirmation holds for two days before the hand-over).
        let hours = if st.what % 3 == 0 {
            st.hours
        } else {
            st.hours % 12
        };
        // Hours, not days, while a movement waits only for its hand-over, as when the people
        // who move a captive are at work: at a day or more a step, a reconfirmation (good for
        // two days) has almost always lapsed by the time a step hands the movement over.
        let waiting = s
            .world
            .cases
            .values()
            .any(|c| c.movements.values().any(ready));
        let hours = if waiting { hours % 6 } else { hours };
        s.now += Duration::hours(i64::from(hours));
        if st.what >= 240 {
            // As the store records a correction: the amendment, then what it suspends.
            let case = CASES[st.case as usize];
            let power = if st.flag_a { "KP" } else { "RU" };
            let facts = amended(&s.world, case, power, &s.settings);
            s.seq += 1;
            s.world
                .amend(case, power, s.case(case).captured_on, s.now, s.seq);
            amendments.push((s.log.len(), case.to_string(), power, s.now));
            let registrar = registrar().actor();
            for f in facts {
                s.seq += 1;
                s.world.apply(&f, &registrar, s.now, s.seq);
                s.log.push((f, registrar.clone(), s.now));
            }
            check_world(&s.world, &s.settings).map_err(|e| {
                TestCaseError::fail(format!("{e}\n after a correction of {case} to {power}"))
            })?;
            continue;
        }
        let principal = &actor(st, &who);
        let cmd = command(&s.world, st, principal);
        let before = s.world.clone();
        let log_len = s.log.len();
        match decide(&s.world, principal, &cmd, &s.settings, s.now) {
            Err(refusal) => {
                prop_assert_eq!(&s.world, &before);
                prop_assert_eq!(s.log.len(), log_len);
                if refusal.guard == Guard::G1 && refusal.message.contains("transfer of") {
                    reach.g1_transfer_refusals += 1;
                }
            }
            Ok(facts) => {
                reach.accepted += 1;
                let mut state = before;
                for f in &facts {
                    check_fact(&state, f, &principal.actor(), &s.settings, s.now)
                        .map_err(|e| TestCaseError::fail(format!("{e}\n after {cmd:?}")))?;
                    match &f.body {
                        FactBody::MovementProposed {
                            kind: MovementKind::Transfer { .. },
                            ..
                        } => reach.transfers_proposed += 1,
                        FactBody::MovementCompleted { .. } => reach.handed_over += 1,
                        _ => {}
                    }
                    s.seq += 1;
                    state.apply(f, &principal.actor(), s.now, s.seq);
                    s.log.push((f.clone(), principal.actor(), s.now));
                }
                s.world = state;
            }
        }
        check_world(&s.world, &s.settings)
            .map_err(|e| TestCaseError::fail(format!("{e}\n after {cmd:?}")))?;
    }
    // The state equals a replay of the log, read back as the store would read it.
    let mut replay = Sim::new(&CASES).world;
    let mut seq = CASES.len() as u64;
    let mut amended = amendments.iter().peekable();
    for (i, (f, actor, at)) in s.log.iter().enumerate() {
        while let Some((_, case, power, when)) = amended.next_if(|a| a.0 == i) {
            seq += 1;
            replay.amend(
                case,
                power,
                replay.cases[case.as_str()].captured_on,
                *when,
                seq,
            );
        }
        seq += 1;
        replay.apply(&round_trip(f), actor, *at, seq);
    }
    for (_, case, power, when) in amended {
        seq += 1;
        replay.amend(
            case,
            power,
            replay.cases[case.as_str()].captured_on,
            *when,
            seq,
        );
    }
    prop_assert_eq!(&replay, &s.world);
    Ok(reach)
}

/// Runs of the state machine this long, this many per test.
const STEPS: usize = 1500;
const RUNS: u32 = 24;

proptest! {
    #![proptest_config(ProptestConfig { cases: RUNS, max_shrink_iters: 2000, .. ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_commands_breaks_a_guard(steps in prop::collection::vec(step(), STEPS)) {
        let reach = machine(&steps)?;
        // The run did something: at least some commands were accepted.
        prop_assert!(reach.accepted > 50, "only {} commands accepted", reach.accepted);
    }
}

/// A machine whose steps never get past the policy, never verify a wish or never line up an
/// approval and a reconfirmation before a hand-over tries no guard on movements and passes
/// anyway. Its reach, over as many runs as the property test makes, from a fixed seed (when
/// this test was written: 51 transfers proposed, 2 movements handed over, 160 transfers refused
/// by G1; with every actor chosen at random, a throwaway edit of `actor`, 12, 0 and 103; with
/// hours between steps while a movement waits for its hand-over, 47, 11 and 145).
#[test]
fn the_guard_state_machine_reaches_transfers_hand_overs_and_g1_refusals() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(step(), STEPS);
    let mut total = Reach::default();
    for _ in 0..RUNS {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let reach = machine(&steps).unwrap();
        total.accepted += reach.accepted;
        total.transfers_proposed += reach.transfers_proposed;
        total.handed_over += reach.handed_over;
        total.g1_transfer_refusals += reach.g1_transfer_refusals;
    }
    // `cargo test -p asylon-core -- reaches --nocapture` prints it.
    println!("reach of {RUNS} runs from the fixed seed: {total:?}");
    assert!(
        total.transfers_proposed >= 20
            && total.handed_over >= 5
            && total.g1_transfer_refusals >= 20,
        "{total:?}"
    );
}

proptest! {
    /// The place of any deadline, written out as a `Link` header gives it and read back, is
    /// itself (the store's `Duties` lists what comes after it).
    #[test]
    fn a_place_in_the_deadlines_reads_back_as_itself(
        days in 0i64..4000, number in 1u64..2_000_000_000, kind in 0usize..4,
    ) {
        let start = time::macros::date!(2026 - 01 - 01);
        let d = Deadline {
            case: format!("AS-{number:06}"),
            kind: DeadlineKind::ALL[kind],
            since: start,
            due: start + Duration::days(days),
            status: DeadlineStatus::Due,
        };
        let at = DeadlineCursor::of(&d);
        prop_assert_eq!(DeadlineCursor::parse(&at.text()), Some(at));
    }
}
