use super::*;
use proptest::prelude::*;

fn name(
    script: Script,
    system: System,
    family: &str,
    given: &str,
    source: Option<&str>,
) -> NameForm {
    NameForm {
        script,
        system,
        family: family.into(),
        given: given.into(),
        source: source.map(Into::into),
    }
}

fn sample() -> IdentityParticulars {
    IdentityParticulars {
        names: vec![
            name(Script::Hang, System::Native, "박", "웅희", None),
            name(Script::Latn, System::Mr, "Pak", "Ung-hŭi", Some("card")),
        ],
        date_of_birth: Some(PartialDate::YearMonth(1989, 2)),
        place_of_birth: None,
        rank: Some("private".into()),
        service_number: None,
        unit: None,
    }
}

/// The stored bytes of a known identity, written out by hand from postcard's specification:
/// a change of field order, of a script or system code, or of the form byte fails this, and
/// would make every part sealed before it unreadable.
#[test]
fn the_stored_form_of_an_identity_is_fixed() {
    let mut want: Vec<u8> = vec![BINARY_V1, 2]; // form, two names
    want.extend([1, 1, 3]); // Hangul, native, "박" in 3 bytes
    want.extend("박".as_bytes());
    want.push(6);
    want.extend("웅희".as_bytes());
    want.push(0); // no source
    want.extend([2, 3, 3]); // Latin, McCune–Reischauer, "Pak"
    want.extend(b"Pak");
    want.push(8); // "Ung-hŭi": ŭ is two bytes
    want.extend("Ung-hŭi".as_bytes());
    want.extend([1, 4]);
    want.extend(b"card");
    want.extend([1, 7]);
    want.extend(b"1989-02");
    want.push(0); // no place of birth
    want.extend([1, 7]);
    want.extend(b"private");
    want.extend([0, 0]); // no service number, no unit
    assert_eq!(
        identity_bytes(&sample()).unwrap().as_slice(),
        want.as_slice()
    );
}

#[test]
fn the_stored_form_of_family_particulars_is_fixed() {
    let mut f = FamilyParticulars::default();
    f.father_first_name = Some("Чол".into());
    f.next_of_kin = Some("mother".into());
    let mut want = vec![BINARY_V1, 1, 6];
    want.extend("Чол".as_bytes());
    want.extend([0, 1, 6]);
    want.extend(b"mother");
    want.extend([0, 0]);
    assert_eq!(family_bytes(&f).unwrap().as_slice(), want.as_slice());
}

#[test]
fn parts_sealed_as_json_by_earlier_versions_are_still_read() {
    let id = sample();
    let json = serde_json::to_vec(&id).unwrap();
    assert_eq!(identity_from(&json).unwrap(), id);
    let mut f = FamilyParticulars::default();
    f.home_address = Some("Pyongyang".into());
    assert_eq!(family_from(&serde_json::to_vec(&f).unwrap()).unwrap(), f);
}

#[test]
fn damaged_or_unknown_parts_are_refused() {
    let good = identity_bytes(&sample()).unwrap().to_vec();
    let mut unknown_form = good.clone();
    unknown_form[0] = 2;
    let truncated = &good[..good.len() - 1];
    let mut trailing = good.clone();
    trailing.push(0);
    let mut bad_script = good.clone();
    bad_script[2] = 9; // the first name's script
    let mut bad_system = good.clone();
    bad_system[3] = 0;
    for (what, bytes) in [
        ("empty", &[][..]),
        ("unknown form", &unknown_form),
        ("truncated", truncated),
        ("trailing byte", &trailing),
        ("unknown script", &bad_script),
        ("unknown system", &bad_system),
        ("broken JSON", b"{\"names\": ["),
    ] {
        assert!(identity_from(bytes).is_err(), "{what} was read");
    }
    assert_eq!(identity_from(&good).unwrap(), sample());
}

fn date() -> impl Strategy<Value = PartialDate> {
    prop_oneof![
        (1900i32..2100).prop_map(PartialDate::Year),
        (1900i32..2100, 1u8..=12).prop_map(|(y, m)| PartialDate::YearMonth(y, m)),
        (1900i32..2100, 1u8..=12, 1u8..=28).prop_filter_map("a day", |(y, m, d)| {
            let m = time::Month::try_from(m).ok()?;
            time::Date::from_calendar_date(y, m, d)
                .ok()
                .map(PartialDate::Full)
        }),
    ]
}

/// Any text, long ones included (a length past 127 takes a varint of two bytes).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", ".{100,300}"]
}

fn identity() -> impl Strategy<Value = IdentityParticulars> {
    let form = (
        proptest::sample::select(Script::ALL.to_vec()),
        proptest::sample::select(System::ALL.to_vec()),
        text(),
        text(),
        proptest::option::of(text()),
    )
        .prop_map(|(script, system, family, given, source)| NameForm {
            script,
            system,
            family,
            given,
            source,
        });
    (
        proptest::collection::vec(form, 0..5),
        proptest::option::of(date()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(names, date_of_birth, place_of_birth, rank, service_number, unit)| {
                IdentityParticulars {
                    names,
                    date_of_birth,
                    place_of_birth,
                    rank,
                    service_number,
                    unit,
                }
            },
        )
}

proptest! {
    #[test]
    fn any_identity_reads_back_as_it_was_written(id in identity()) {
        let bytes = identity_bytes(&id).unwrap();
        prop_assert_eq!(identity_from(&bytes).unwrap(), id);
    }

    #[test]
    fn any_family_particulars_read_back_as_written(
        f in proptest::collection::vec(proptest::option::of(text()), 5)
    ) {
        let f = FamilyParticulars {
            father_first_name: f[0].clone(),
            mother_maiden_name: f[1].clone(),
            next_of_kin: f[2].clone(),
            correspondence_address: f[3].clone(),
            home_address: f[4].clone(),
        };
        let bytes = family_bytes(&f).unwrap();
        prop_assert_eq!(family_from(&bytes).unwrap(), f);
    }
}
