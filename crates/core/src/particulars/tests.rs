use super::*;
use time::macros::datetime;

// 08:00 UTC: 22:00 at UTC+14, so the 1st of June is the latest day that is today anywhere.
const NOW: OffsetDateTime = datetime!(2025-06-01 08:00 UTC);

fn full() -> RegistrationInput {
    serde_json::from_str(
        r#"{
        "external_id": "UA-17",
        "names": ["리한검", {"family": "Ri", "given": "Han Gom", "system": "dprk"}, "Ли Хан Гом"],
        "date_of_birth": "2001-04",
        "rank": "private",
        "service_number": "12-345",
        "power": "KP",
        "captured_on": "2025-01-09",
        "captured_at": "Kursk region",
        "father_first_name": "Chol",
        "next_of_kin": "mother, Pyongyang"
    }"#,
    )
    .unwrap()
}

fn fields(e: Vec<FieldError>) -> Vec<String> {
    e.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_full_registration_is_split_into_its_classes() {
    let r = full().validate(NOW).unwrap();
    assert_eq!(r.core.power, "KP");
    assert_eq!(r.core.external_id.as_deref(), Some("UA-17"));
    assert_eq!(r.identity.names.len(), 3);
    assert_eq!(r.identity.names[0].script, Script::Hang);
    assert_eq!(
        (
            r.identity.names[0].family.as_str(),
            r.identity.names[0].given.as_str()
        ),
        ("리", "한검")
    );
    assert_eq!(r.identity.names[1].system, System::Dprk);
    assert_eq!(r.identity.names[2].script, Script::Cyrl);
    assert_eq!(
        r.identity.date_of_birth,
        Some(PartialDate::YearMonth(2001, 4))
    );
    assert_eq!(r.family.father_first_name.as_deref(), Some("Chol"));
    // Nothing identifying travels in the public part.
    let public = serde_json::to_string(&r.core).unwrap();
    for secret in ["리한검", "Ri", "Chol", "12-345", "2001"] {
        assert!(
            !public.contains(secret),
            "{secret} leaked into core: {public}"
        );
    }
}

#[test]
fn a_name_form_is_written_out_surname_first() {
    let form = |script, family: &str, given: &str| NameForm {
        script,
        system: System::Adhoc,
        family: family.into(),
        given: given.into(),
        source: None,
    };
    assert_eq!(form(Script::Hang, "리", "한검").full(), "리한검");
    assert_eq!(form(Script::Hang, "남 궁", "민").full(), "남 궁 민");
    assert_eq!(form(Script::Latn, "Ri", "Han Gom").full(), "Ri Han Gom");
    assert_eq!(form(Script::Cyrl, "Ли", "Хан Гом").full(), "Ли Хан Гом");
    assert_eq!(form(Script::Latn, "Ri", "").full(), "Ri");
    assert_eq!(form(Script::Hang, "리", "").full(), "리");
}

#[test]
fn a_refusal_under_art_17_is_recorded_and_does_not_block_registration() {
    let mut i = full();
    i.service_number = None;
    i.date_of_birth = None;
    i.not_stated = vec![Art17Field::ServiceNumber, Art17Field::DateOfBirth];
    let r = i.validate(NOW).unwrap();
    assert_eq!(
        r.core.not_stated,
        vec![Art17Field::DateOfBirth, Art17Field::ServiceNumber]
    );
    assert_eq!(r.identity.service_number, None);
}

#[test]
fn a_missing_art_17_particular_without_a_recorded_refusal_is_refused() {
    let mut i = full();
    i.rank = None;
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["rank"]);
    let mut i = full();
    i.not_stated = vec![Art17Field::Rank];
    assert_eq!(
        fields(i.validate(NOW).unwrap_err()),
        ["rank"],
        "given and refused at once"
    );
    let mut i = full();
    i.names.clear();
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["names"]);
}

#[test]
fn future_and_impossible_dates_are_refused_and_partial_ones_accepted() {
    for (dob, ok) in [
        ("2001", true),
        ("2001-02", true),
        ("2001-02-28", true),
        ("2001-02-29", false),
        ("2001-13", false),
        ("2026", false),
        ("2025-07", false),
        ("01-02-2001", false),
        ("2001-02-03-04", false),
        ("2001-02-", false),
        ("1850", false),
        ("yesterday", false),
    ] {
        let mut i = full();
        i.date_of_birth = Some(dob.into());
        assert_eq!(i.validate(NOW).is_ok(), ok, "date_of_birth {dob}");
    }
    let mut i = full();
    i.captured_on = Some("2025-06-02".into());
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["captured_on"]);
    i.captured_on = Some("2025-01".into());
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["captured_on"]);
}

#[test]
fn a_date_that_is_today_somewhere_is_not_in_the_future() {
    // 23:00 UTC on the 1st is 08:00 on the 2nd in Seoul and 01:00 or 02:00 on the 2nd in Kyiv:
    // a capture there "today" is taken; the day after is in the future everywhere.
    let seoul_morning = datetime!(2025-06-01 23:00 UTC);
    let mut i = full();
    i.captured_on = Some("2025-06-02".into());
    assert!(i.validate(seoul_morning).is_ok());
    i.captured_on = Some("2025-06-03".into());
    assert_eq!(
        fields(i.validate(seoul_morning).unwrap_err()),
        ["captured_on"]
    );
    // The 2nd begins somewhere (UTC+14) at 10:00 UTC on the 1st, not a second earlier.
    i.captured_on = Some("2025-06-02".into());
    assert!(i.validate(datetime!(2025-06-01 09:59:59 UTC)).is_err());
    assert!(i.validate(datetime!(2025-06-01 10:00 UTC)).is_ok());
    // A clock given in another offset is the same instant.
    assert!(i.validate(datetime!(2025-06-01 19:00 +09:00)).is_ok());
    assert!(i.validate(datetime!(2025-06-01 18:59 +09:00)).is_err());
    // A date of birth likewise.
    let mut i = full();
    i.date_of_birth = Some("2025-06-02".into());
    i.captured_on = Some("2025-06-02".into());
    assert!(i.validate(seoul_morning).is_ok());
    i.date_of_birth = Some("2025-06-03".into());
    assert_eq!(
        fields(i.validate(seoul_morning).unwrap_err()),
        ["date_of_birth"]
    );
    // The end of the calendar does not overflow.
    assert_eq!(
        crate::latest_today(OffsetDateTime::new_utc(Date::MAX, time::Time::MIDNIGHT)),
        Date::MAX
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    // Field by field: a type wiped when dropped cannot be built from `..Default::default()`.
    let mut i = RegistrationInput::default();
    i.names = vec![NameInput::Text("Ri 한검".into())];
    i.power = Some("north korea".into());
    i.date_of_birth = Some("2030".into());
    let f = fields(i.validate(NOW).unwrap_err());
    for want in [
        "names[0]",
        "power",
        "captured_on",
        "date_of_birth",
        "rank",
        "service_number",
    ] {
        assert!(f.iter().any(|x| x == want), "{want} not reported in {f:?}");
    }
}

#[test]
fn a_correction_names_the_event_it_corrects_and_a_registration_names_none() {
    let mut i = full();
    assert!(i.validate(NOW).is_ok());
    assert_eq!(
        fields(i.validate_correction(NOW).unwrap_err()),
        ["from_event"]
    );
    i.from_event = Some(17);
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["from_event"]);
    let (reg, from) = i.validate_correction(NOW).unwrap();
    assert_eq!((reg.core.power.as_str(), from), ("KP", 17));
    // Every other problem is reported beside it.
    i.from_event = None;
    i.rank = None;
    let f = fields(i.validate_correction(NOW).unwrap_err());
    assert_eq!(f, ["from_event", "rank"]);
    // Read from JSON as a number.
    let j: RegistrationInput = serde_json::from_str(r#"{"from_event": 3}"#).unwrap();
    assert_eq!(j.from_event, Some(3));
    assert!(serde_json::from_str::<RegistrationInput>(r#"{"from_event": "3"}"#).is_err());
}

#[test]
fn a_captive_has_at_most_so_many_name_forms() {
    let with = |n: usize| {
        let mut i = full();
        i.names = (0..n)
            .map(|k| NameInput::Text(format!("Kim Chol{}", "a".repeat(k))))
            .collect();
        i.validate(NOW)
    };
    assert_eq!(
        with(MAX_NAME_FORMS).unwrap().identity.names.len(),
        MAX_NAME_FORMS
    );
    let e = with(MAX_NAME_FORMS + 1).unwrap_err();
    assert_eq!(fields(e.clone()), ["names"], "{e:?}");
    assert!(e[0].reason.contains("33 name forms given"), "{e:?}");
    // Only the first forms are read for errors: a flood of bad forms gives one line, not
    // thousands.
    let mut i = full();
    i.names = vec![NameInput::Text("Kim1".into()); 5000];
    let e = i.validate(NOW).unwrap_err();
    assert_eq!(e.len(), 1 + MAX_NAME_FORMS, "{}", e.len());
}

#[test]
fn text_that_would_read_as_something_else_is_refused() {
    // A right-to-left override makes "Kursk region\u{202E}ksroK" display reordered; a
    // zero-width space makes two place names that look alike differ.
    for (field, text, code) in [
        ("captured_at", "Kursk region\u{202E}ksroK", "U+202E"),
        ("captured_at", "Kursk\u{200B} region", "U+200B"),
        ("unit", "\u{2067}3rd brigade", "U+2067"),
        ("next_of_kin", "his mother\nin Hamhung", "U+000A"),
    ] {
        let mut i = full();
        match field {
            "captured_at" => i.captured_at = Some(text.into()),
            "unit" => i.unit = Some(text.into()),
            _ => i.next_of_kin = Some(text.into()),
        }
        let e = i.validate(NOW).unwrap_err();
        assert_eq!(fields(e.clone()), [field], "{text:?}");
        assert!(e[0].reason.contains(code), "{}", e[0].reason);
    }
    // A name's letters are checked as before: such a character is not one of them.
    let mut i = full();
    i.names = vec![NameInput::Text("Kim\u{200B}Chol".into())];
    assert_eq!(fields(i.validate(NOW).unwrap_err()), ["names[0]"]);
}

#[test]
fn a_power_given_wrongly_is_told_once_and_not_as_missing() {
    for (given, says) in [
        ("KPX", "is longer than 2 characters"),
        ("K\u{7}", "contains U+0007, a character that is not shown"),
        ("kp", "is not a state's ISO 3166 code"),
        ("XX", "is not a state's ISO 3166 code"),
    ] {
        let mut i = full();
        i.power = Some(given.into());
        let errors: Vec<_> = i
            .validate(NOW)
            .unwrap_err()
            .into_iter()
            .filter(|e| e.field == "power")
            .collect();
        assert_eq!(errors.len(), 1, "{given:?}: {errors:?}");
        assert!(errors[0].reason.contains(says), "{given:?}: {errors:?}");
    }
    for missing in [None, Some("  ".to_string())] {
        let mut i = full();
        i.power = missing.clone();
        let errors = i.validate(NOW).unwrap_err();
        assert!(
            errors.len() == 1 && errors[0].reason.contains("is required"),
            "{missing:?}: {errors:?}"
        );
    }
}

#[test]
fn names_are_checked_for_script_and_characters() {
    assert_eq!(Script::detect("Ри Хан Гём"), Ok(Script::Cyrl));
    assert_eq!(Script::detect("Ri Han-gŏm"), Ok(Script::Latn));
    assert_eq!(Script::detect("李漢劍"), Ok(Script::Hani));
    assert!(Script::detect("Ri Хан").is_err());
    assert!(Script::detect("123").is_err());
    let bad = |n: &str| NameInput::Text(n.into()).validate(&|| "n".into()).is_err();
    assert!(bad("Ri2 Han"));
    assert!(bad("Ri <script>"));
    assert!(bad(""));
    assert!(!bad("Ri Han-gŏm"));
    assert!(!bad("Kang Kam-ch'an"));
    let f = NameInput::Text("남궁민수".into())
        .validate(&|| "n".into())
        .unwrap();
    assert_eq!((f.family.as_str(), f.given.as_str()), ("남궁", "민수"));
    let wrong = NameInput::Parts {
        family: "Ri".into(),
        given: None,
        script: Some(Script::Cyrl),
        system: None,
        source: None,
    };
    assert!(wrong.validate(&|| "n".into()).is_err());
}

#[test]
fn unknown_fields_in_json_are_refused() {
    let e = serde_json::from_str::<RegistrationInput>(r#"{"nmes": []}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
}

mod fast_paths {
    use super::*;
    use proptest::prelude::*;

    fn same(a: Result<String, FieldError>, b: Result<String, FieldError>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => x.reason == y.reason,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

        /// ASCII text is cleaned as the general rules clean it: spaces, tabs, line breaks
        /// and other control characters anywhere, and lengths either side of the limit.
        #[test]
        fn ascii_text_is_cleaned_as_any_text_is(
            text in "[ a-c\\t\\n\\r\\x0b\\x0c\\x00\\x7f-]{0,12}",
            max in 0usize..10,
        ) {
            let field = || "f".to_string();
            prop_assert!(same(clean_ascii(&field, &text, max), clean_any(&field, &text, max)));
        }

        /// Dates are written digit by digit as the formatting machinery writes them, years
        /// past four digits and before year 0 (written by the machinery itself) included.
        #[test]
        fn dates_are_written_as_format_writes_them(
            y in -20_000i32..20_000,
            m in 0u8..=255,
            day in -4_300_000i32..2_900_000,
        ) {
            let date = time::Date::from_julian_day(2_451_545 + day).unwrap();
            for (d, want) in [
                (PartialDate::Year(y), format!("{y:04}")),
                (PartialDate::YearMonth(y, m), format!("{y:04}-{m:02}")),
                (
                    PartialDate::Full(date),
                    format!("{:04}-{:02}-{:02}", date.year(), date.month() as u8, date.day()),
                ),
            ] {
                prop_assert_eq!(d.to_string(), want);
            }
        }

        #[test]
        fn a_double_space_is_found_as_contains_finds_it(text in "[ a\u{00a0}가]{0,10}") {
            prop_assert_eq!(has_double_space(&text), text.contains("  "));
        }

        /// Any date written out reads back as itself; text of more than three pieces is no
        /// date, and of three or fewer is read as a year, a month or a day by its count.
        #[test]
        fn dates_read_back_and_pieces_decide_the_form(
            y in 0i32..=9999,
            m in 1u8..=12,
            day in -700_000i32..2_900_000,
            text in "[0-9 -]{0,14}",
        ) {
            let date = time::Date::from_julian_day(2_451_545 + day).unwrap();
            for d in [PartialDate::Year(y), PartialDate::YearMonth(y, m), PartialDate::Full(date)] {
                prop_assert_eq!(PartialDate::parse(&d.to_string()), Ok(d));
            }
            let pieces = text.trim().split('-').count();
            match PartialDate::parse(&text) {
                Ok(PartialDate::Year(_)) => prop_assert_eq!(pieces, 1),
                Ok(PartialDate::YearMonth(..)) => prop_assert_eq!(pieces, 2),
                Ok(PartialDate::Full(_)) => prop_assert_eq!(pieces, 3),
                Err(e) if pieces > 3 => {
                    prop_assert_eq!(e, "is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
                }
                Err(e) => prop_assert!(!e.starts_with("is not a date"), "{}", e),
            }
        }

        #[test]
        fn the_letter_shortcut_agrees_with_unicode(c in any::<char>()) {
            prop_assert_eq!(is_letter(c), c.is_alphabetic());
        }
    }

    #[test]
    fn the_letter_shortcut_agrees_with_unicode_over_its_ranges() {
        // The whole Basic Multilingual Plane, which holds every range the shortcut takes.
        for c in '\u{0}'..='\u{FFFF}' {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
        }
    }
}

#[test]
fn a_name_form_given_twice_is_kept_once_and_forms_that_differ_are_all_kept() {
    let mut i = full();
    i.names = serde_json::from_str(
        r#"["리한검", " 리한검 ", {"family": "Ri", "given": "Han Gom"}, "Ri Han Gom",
            {"family": "Ri", "given": "Han Gom", "system": "dprk"}, "Ли Хан Гом"]"#,
    )
    .unwrap();
    let names: Vec<(String, String, System)> = i
        .validate(NOW)
        .unwrap()
        .identity
        .names
        .iter()
        .map(|n| (n.family.clone(), n.given.clone(), n.system))
        .collect();
    // The Hangul form once (spaces around it are not part of it); the Latin form read from
    // the text and given in parts is one form; romanised by another system it is another.
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.0 == "리").count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.0 == "Ri").count(), 2, "{names:?}");
}

#[test]
fn a_decomposed_name_is_taken_composed() {
    // NFD, as some keyboards and files write them: ŭ as u and a combining breve, Й as И and
    // one, 김 as its three jamo.
    for (nfd, nfc) in [
        ("Pak Ung-hu\u{306}i", "Pak Ung-hŭi"),
        ("И\u{306}он Мин", "Йон Мин"),
        ("\u{1100}\u{1175}\u{11B7}철수", "김철수"),
    ] {
        let mut i = full();
        i.names = vec![NameInput::Text(nfd.into())];
        let got = i.validate(NOW).unwrap_or_else(|e| panic!("{nfd:?}: {e:?}"));
        let mut j = full();
        j.names = vec![NameInput::Text(nfc.into())];
        assert_eq!(got.identity.names, j.validate(NOW).unwrap().identity.names);
    }
    // Other text is composed too.
    let mut i = full();
    i.captured_at = Some("Pryvili\u{306}ne".into());
    let got = i.validate(NOW).unwrap();
    assert_eq!(got.core.captured_at.as_deref(), Some("Pryvilĭne"));
}

proptest::proptest! {
    /// The shortcut past the normalization tables never calls composed what is not.
    #[test]
    fn text_surely_composed_is_composed(
        text in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::char::range('\u{0}', '\u{2FF}'),
                proptest::char::range('\u{400}', '\u{4FF}'),
                proptest::char::range('\u{AC00}', '\u{D7A3}'),
                proptest::char::range('\u{300}', '\u{36F}'),
                proptest::char::range('\u{1100}', '\u{11FF}'),
            ],
            0..12,
        )
    ) {
        let text: String = text.into_iter().collect();
        if surely_composed(&text) {
            proptest::prop_assert!(unicode_normalization::is_nfc(&text), "{:?}", text);
        }
    }
}

#[test]
fn a_form_without_letters_says_which_part_has_none() {
    for (name, says) in [
        ("-", "has no letters"),
        ("Kim -", "its given name has no letters"),
        ("'", "has no letters"),
    ] {
        let mut i = full();
        i.names = vec![NameInput::Text(name.into())];
        let e = i.validate(NOW).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].reason, says, "{name:?}");
    }
}
