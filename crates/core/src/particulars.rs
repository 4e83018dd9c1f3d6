//! A captive's particulars (GCIII Art 17 and Art 122): the input shape, its validation, and the
//! split into the `core` (public), `identity` and `family` (sealed) classes.
//!
//! Parse, don't validate: [`RegistrationInput::validate`] is the only way to get a
//! [`Registration`], so the rest of the code never checks a field again.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Date, Month, OffsetDateTime};
use zeroize::{Zeroize, ZeroizeOnDrop};

const MAX_TEXT: usize = 200;
/// Name forms one captive may have: every script and system a name is met in (two Hangul
/// spellings, Latin by several systems and by ear, Russian, Ukrainian, Hanja) is a dozen or so;
/// far more is a mistake in the data, each form is read into the blind index and sealed.
pub const MAX_NAME_FORMS: usize = 32;
const MAX_NAME: usize = 100;
/// GCIII was adopted on 12 August 1949; an earlier capture date is a typing error.
const EARLIEST_CAPTURE_YEAR: i32 = 1949;
const EARLIEST_BIRTH_YEAR: i32 = 1900;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Script {
    Hang,
    Latn,
    Cyrl,
    Hani,
}

impl Script {
    pub const ALL: [Script; 4] = [Script::Hang, Script::Latn, Script::Cyrl, Script::Hani];

    /// The one script a name is written in; `None` for no letters or a mix of scripts.
    pub fn detect(text: &str) -> Result<Self, &'static str> {
        let mut found: Option<Script> = None;
        for c in text.chars() {
            let s = match c {
                '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' => {
                    Script::Hang
                }
                '\u{0400}'..='\u{04FF}' | '\u{0500}'..='\u{052F}' => Script::Cyrl,
                '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}' => {
                    Script::Hani
                }
                c if c.is_alphabetic()
                    && (c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(&c)) =>
                {
                    Script::Latn
                }
                c if c.is_alphabetic() => return Err("contains letters of an unsupported script"),
                _ => continue,
            };
            match found {
                None => found = Some(s),
                Some(prev) if prev != s => {
                    return Err("mixes scripts; give each script as its own name form");
                }
                Some(_) => {}
            }
        }
        found.ok_or("has no letters")
    }
}

/// The romanization or spelling system a form follows (DESIGN, "The record").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Native,
    Rr,
    Mr,
    Dprk,
    Kontsevich,
    Uk,
    Adhoc,
}

impl System {
    pub const ALL: [System; 7] = [
        System::Native,
        System::Rr,
        System::Mr,
        System::Dprk,
        System::Kontsevich,
        System::Uk,
        System::Adhoc,
    ];
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct NameForm {
    #[zeroize(skip)]
    pub script: Script,
    #[zeroize(skip)]
    pub system: System,
    pub family: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub given: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl NameForm {
    pub fn full(&self) -> String {
        if self.given.is_empty() {
            return self.family.clone();
        }
        // Pushed rather than format!ted: every imported name form is written out this way once
        // to be read for the blind index (callgrind, importing 5,000 captives: 0.5% fewer
        // instructions than with format!).
        let space = self.script != Script::Hang || self.family.contains(' ');
        let mut out = String::with_capacity(self.family.len() + 1 + self.given.len());
        out.push_str(&self.family);
        if space {
            out.push(' ');
        }
        out.push_str(&self.given);
        out
    }
}

/// Korean two-syllable surnames: a Hangul name written without spaces splits after these.
const TWO_SYLLABLE_SURNAMES: [&str; 8] = [
    "남궁", "황보", "선우", "제갈", "독고", "사공", "서문", "동방",
];

/// A name form as given: either one string ("리한검", "Ri Han Gom": surname first) or parts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(untagged)]
pub enum NameInput {
    Text(String),
    Parts {
        family: String,
        #[serde(default)]
        given: Option<String>,
        #[serde(default)]
        #[zeroize(skip)]
        script: Option<Script>,
        #[serde(default)]
        #[zeroize(skip)]
        system: Option<System>,
        #[serde(default)]
        source: Option<String>,
    },
}

/// `text.contains("  ")`, as a scan of its bytes: the general substring search sets itself up
/// for every call, which cost more than the rest of cleaning a short field, and every field of
/// every imported row is cleaned.
fn has_double_space(text: &str) -> bool {
    text.as_bytes().windows(2).any(|w| w == b"  ")
}

/// Trims and collapses runs of whitespace; refuses characters that are not shown ([`crate::input::hidden_char`]) and over-long text.
fn clean(field: &dyn Fn() -> String, text: &str, max: usize) -> Result<String, FieldError> {
    if text.is_ascii() {
        clean_ascii(field, text, max)
    } else {
        clean_any(field, text, max)
    }
}

fn clean_any(field: &dyn Fn() -> String, text: &str, max: usize) -> Result<String, FieldError> {
    if let Some(why) = crate::input::hidden_char_problem(text) {
        return Err(err(field(), why));
    }
    let trimmed = text.trim();
    // Most input is already clean; only rebuild it when it is not.
    let t = if has_double_space(trimmed) || trimmed.chars().any(|c| c.is_whitespace() && c != ' ') {
        trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        trimmed.to_string()
    };
    // Decomposed text (ŭ as u and a combining breve, й as и and one, Hangul as its jamo: NFD,
    // as some keyboards and files write it) is composed: a name is one text whichever way it
    // was written, and its combining marks are no longer refused as not part of it.
    let t = if surely_composed(&t)
        || unicode_normalization::is_nfc_quick(t.chars())
            == unicode_normalization::IsNormalized::Yes
    {
        t
    } else {
        unicode_normalization::UnicodeNormalization::nfc(t.as_str()).collect()
    };
    if t.chars().count() > max {
        return Err(err(field(), format!("is longer than {max} characters")));
    }
    Ok(t)
}

/// Whether `text` is composed (NFC) as it stands, known without the normalization tables:
/// every character is below the combining marks (U+0300), a Cyrillic letter or a Hangul
/// syllable, none of which combines with what precedes it. Nearly every name and place given
/// here is, and the tables' lookup showed in the validating stage of an import's `--timings`.
fn surely_composed(text: &str) -> bool {
    text.chars().all(|c| {
        c < '\u{300}'
            || ('\u{400}'..='\u{482}').contains(&c)
            || ('\u{48A}'..='\u{4FF}').contains(&c)
            || ('\u{AC00}'..='\u{D7A3}').contains(&c)
    })
}

/// [`clean`] for ASCII text, which is most of it, in fewer passes. The same rules: in ASCII
/// every white space but the space itself is a control character, so once those are refused
/// only runs of spaces are left to fold, and characters are bytes.
fn clean_ascii(field: &dyn Fn() -> String, text: &str, max: usize) -> Result<String, FieldError> {
    if let Some(why) = crate::input::hidden_char_problem(text) {
        return Err(err(field(), why));
    }
    let trimmed = text.trim_matches(' ');
    let t = if has_double_space(trimmed) {
        trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        trimmed.to_string()
    };
    if t.len() > max {
        return Err(err(field(), format!("is longer than {max} characters")));
    }
    Ok(t)
}

/// Letters of a name: looked up in the Unicode tables only outside the ranges that hold
/// nearly every letter given here (Latin, Hangul syllables, Russian), where the lookup is slow.
fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || ('\u{AC00}'..='\u{D7A3}').contains(&c)
        || ('\u{0410}'..='\u{044F}').contains(&c)
        || c.is_alphabetic()
}

fn check_name_chars(field: &dyn Fn() -> String, text: &str) -> Result<(), FieldError> {
    match text
        .chars()
        .find(|c| !(is_letter(*c) || matches!(c, ' ' | '-' | '\'' | '’' | 'ʼ' | '.' | '·')))
    {
        Some(c) => Err(err(
            field(),
            format!("contains {c:?}, which is not part of a name"),
        )),
        None => Ok(()),
    }
}

impl NameInput {
    /// `field` names the form in an error; built only when there is one.
    fn validate(&self, field: &dyn Fn() -> String) -> Result<NameForm, FieldError> {
        let sub = |part: &'static str| move || format!("{}.{part}", field());
        let (family, given, script, system, source) = match self {
            NameInput::Text(text) => {
                let text = clean(field, text, MAX_NAME)?;
                let (family, given) = split_full_name(&text);
                (family, given, None, None, None)
            }
            NameInput::Parts {
                family,
                given,
                script,
                system,
                source,
            } => (
                clean(&sub("family"), family, MAX_NAME)?,
                clean(&sub("given"), given.as_deref().unwrap_or(""), MAX_NAME)?,
                *script,
                *system,
                match source {
                    Some(s) => Some(clean(&sub("source"), s, MAX_TEXT)?),
                    None => None,
                },
            ),
        };
        if family.is_empty() {
            return Err(err(field(), "has no surname"));
        }
        check_name_chars(field, &family)?;
        check_name_chars(field, &given)?;
        let detected = match (Script::detect(&family), Script::detect(&given)) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(f), Ok(g)) if f != g => {
                Err("mixes scripts; give each script as its own name form".to_string())
            }
            // The surname read well: what is wrong is in the given name ("Kim -").
            (Ok(_), Err(e)) if !given.is_empty() => Err(format!("its given name {e}")),
            (Ok(f), _) => Ok(f),
        }
        .map_err(|r| err(field(), r))?;
        if let Some(s) = script
            && s != detected
        {
            return Err(err(
                field(),
                format!("is said to be in script {s:?} but is written in {detected:?}"),
            ));
        }
        let system = system.unwrap_or(match detected {
            Script::Hang | Script::Hani => System::Native,
            Script::Latn | Script::Cyrl => System::Adhoc,
        });
        Ok(NameForm {
            script: detected,
            system,
            family,
            given,
            source: source.filter(|s| !s.is_empty()),
        })
    }
}

/// Splits a full name written surname first: at the first space, or for Hangul written without
/// spaces after the surname syllable(s).
fn split_full_name(text: &str) -> (String, String) {
    if let Some((f, g)) = text.split_once(' ') {
        return (f.to_string(), g.to_string());
    }
    if Script::detect(text) == Ok(Script::Hang) && text.chars().count() >= 2 {
        let n = if TWO_SYLLABLE_SURNAMES.iter().any(|s| text.starts_with(s))
            && text.chars().count() >= 3
        {
            2
        } else {
            1
        };
        let family: String = text.chars().take(n).collect();
        let given: String = text.chars().skip(n).collect();
        return (family, given);
    }
    (text.to_string(), String::new())
}

/// A date that may be known only to the year or the month, as captives' birth dates often are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartialDate {
    Year(i32),
    YearMonth(i32, u8),
    Full(Date),
}

impl PartialDate {
    pub fn parse(text: &str) -> Result<Self, String> {
        // Up to four pieces, a fourth meaning too many: no list is gathered for a date of every
        // imported row.
        let mut pieces = text.trim().split('-');
        let parts = [pieces.next(), pieces.next(), pieces.next(), pieces.next()];
        let num = |s: &str, what: &str, len: usize| -> Result<u32, String> {
            if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{what} must be {len} digits (YYYY, YYYY-MM or YYYY-MM-DD)"
                ));
            }
            s.parse().map_err(|_| format!("{what} is not a number"))
        };
        let year = |s| num(s, "year", 4).map(|y| y as i32);
        let month = |s| -> Result<Month, String> {
            let m = num(s, "month", 2)?;
            u8::try_from(m)
                .ok()
                .and_then(|m| Month::try_from(m).ok())
                .ok_or_else(|| format!("month {m} does not exist"))
        };
        match parts {
            [Some(y), None, ..] => Ok(Self::Year(year(y)?)),
            [Some(y), Some(m), None, _] => Ok(Self::YearMonth(year(y)?, month(m)? as u8)),
            [Some(y), Some(m), Some(d), None] => {
                let day = num(d, "day", 2)?;
                let (y, m) = (year(y)?, month(m)?);
                u8::try_from(day)
                    .ok()
                    .and_then(|d| Date::from_calendar_date(y, m, d).ok())
                    .map(Self::Full)
                    .ok_or_else(|| {
                        format!(
                            "{y:04}-{:02}-{day:02} is not a day of the calendar",
                            m as u8
                        )
                    })
            }
            _ => Err("is not a date (YYYY, YYYY-MM or YYYY-MM-DD)".into()),
        }
    }

    pub fn year(&self) -> i32 {
        match self {
            Self::Year(y) | Self::YearMonth(y, _) => *y,
            Self::Full(d) => d.year(),
        }
    }

    /// The earliest day this date can mean, for comparisons with "today".
    pub fn earliest(&self) -> Option<Date> {
        match self {
            Self::Year(y) => Date::from_calendar_date(*y, Month::January, 1).ok(),
            Self::YearMonth(y, m) => {
                Date::from_calendar_date(*y, Month::try_from(*m).ok()?, 1).ok()
            }
            Self::Full(d) => Some(*d),
        }
    }

    /// The latest day this date can mean.
    pub fn latest(&self) -> Option<Date> {
        match self {
            Self::Year(y) => Date::from_calendar_date(*y, Month::December, 31).ok(),
            Self::YearMonth(y, m) => {
                let month = Month::try_from(*m).ok()?;
                Date::from_calendar_date(*y, month, month.length(*y)).ok()
            }
            Self::Full(d) => Some(*d),
        }
    }
}

/// `n`'s last `N` decimal digits, zero-padded.
fn digits<const N: usize>(mut n: u32) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

impl fmt::Display for PartialDate {
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. Each part written digit by digit where it fits its
    /// width, as in every date a record holds: dates are written for each registration
    /// imported (its public part, its projection, its sealed identity), and the formatting
    /// machinery's padding was most of that work.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = match self {
            Self::Year(y) => (*y, None, None),
            Self::YearMonth(y, m) => (*y, Some(*m), None),
            Self::Full(d) => (d.year(), Some(d.month() as u8), Some(d.day())),
        };
        fn text(bytes: &[u8]) -> Result<&str, fmt::Error> {
            std::str::from_utf8(bytes).map_err(|_| fmt::Error)
        }
        match u32::try_from(y).ok().filter(|y| *y <= 9999) {
            Some(year) => f.write_str(text(&digits::<4>(year))?)?,
            None => write!(f, "{y:04}")?,
        }
        for part in [m, d].into_iter().flatten() {
            if part <= 99 {
                f.write_str("-")?;
                f.write_str(text(&digits::<2>(u32::from(part)))?)?;
            } else {
                write!(f, "-{part:02}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for PartialDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PartialDate::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The Art 17 particulars a captive is bound to give besides his name. He may refuse; the refusal
/// is recorded and never blocks registration.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Art17Field {
    DateOfBirth,
    Rank,
    ServiceNumber,
}

impl Art17Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DateOfBirth => "date_of_birth",
            Self::Rank => "rank",
            Self::ServiceNumber => "service_number",
        }
    }
}

/// Registration input, as JSON (`asylon person register`) or built from a CSV row.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub names: Vec<NameInput>,
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub rank: Option<String>,
    #[serde(default)]
    pub service_number: Option<String>,
    /// Art 17 particulars the captive did not give.
    #[serde(default)]
    #[zeroize(skip)]
    pub not_stated: Vec<Art17Field>,
    #[serde(default)]
    pub place_of_birth: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    /// ISO 3166-1 alpha-2 code of the power he depends on.
    #[serde(default)]
    pub power: Option<String>,
    #[serde(default)]
    pub father_first_name: Option<String>,
    #[serde(default)]
    pub mother_maiden_name: Option<String>,
    /// The person to inform (Art 122).
    #[serde(default)]
    pub next_of_kin: Option<String>,
    #[serde(default)]
    pub correspondence_address: Option<String>,
    #[serde(default)]
    pub home_address: Option<String>,
    #[serde(default)]
    pub captured_on: Option<String>,
    #[serde(default)]
    pub captured_at: Option<String>,
    /// In a correction only: the event whose particulars these are, as reading them gave it
    /// (`from_event` of `person show --particulars`). A correction of particulars that were
    /// corrected again since they were read is refused, so that neither correction is lost.
    #[serde(default)]
    #[zeroize(skip)]
    pub from_event: Option<u64>,
}

/// The public part: what every organisation involved in the case may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreParticulars {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub power: String,
    pub captured_on: PartialDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_stated: Vec<Art17Field>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct IdentityParticulars {
    pub names: Vec<NameForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[zeroize(skip)]
    pub date_of_birth: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct FamilyParticulars {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father_first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mother_maiden_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_of_kin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correspondence_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_address: Option<String>,
}

impl FamilyParticulars {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

// A captive's particulars are wiped from memory when the values holding them are dropped
// (zeroize): the raw input, his name forms and the sealed classes' fields. Each fails to
// compile here if that is ever taken off it. Not wiped: the date of birth (a small `Copy`
// value the compiler moves and copies freely, which no safe code can wipe in place), the CSV
// reader's buffer, and the working copies made while reading names into index keys. Core
// dumps are off in every `asylon` process, so what is left is not written to disk by a crash.
const _: fn(&RegistrationInput) -> &dyn ZeroizeOnDrop = |x| x;
const _: fn(&NameInput) -> &dyn ZeroizeOnDrop = |x| x;
const _: fn(&NameForm) -> &dyn ZeroizeOnDrop = |x| x;
const _: fn(&IdentityParticulars) -> &dyn ZeroizeOnDrop = |x| x;
const _: fn(&FamilyParticulars) -> &dyn ZeroizeOnDrop = |x| x;

/// Validated particulars, split by class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub core: CoreParticulars,
    pub identity: IdentityParticulars,
    pub family: FamilyParticulars,
}

impl Registration {
    /// His age on the day of his capture, if he gave his date of birth.
    pub fn age_at_capture(&self) -> Option<crate::Age> {
        crate::Age::between(self.identity.date_of_birth?, self.core.captured_on)
    }
}

/// Trims; an empty or absent value is `None`.
fn opt_text(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    v: &Option<String>,
    max: usize,
) -> Option<String> {
    let v = v.as_deref()?;
    match clean(&|| field.to_string(), v, max) {
        Ok(t) if t.is_empty() => None,
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// `first`, then the other problems of the same input, if it had any.
fn first_then(first: FieldError, others: Option<Vec<FieldError>>) -> Vec<FieldError> {
    let mut all = vec![first];
    all.extend(others.into_iter().flatten());
    all
}

impl RegistrationInput {
    /// Checks a registration's every field and reports every problem at once, at `now` by the
    /// caller's clock (a date is in the future when it is after [`crate::latest_today`]).
    pub fn validate(&self, now: OffsetDateTime) -> Result<Registration, Vec<FieldError>> {
        let named = self.from_event.map(|_| {
            err(
                "from_event",
                "a registration corrects nothing: from_event belongs to a correction \
                 (person amend)",
            )
        });
        let checked = self.checked(now);
        match named {
            None => checked,
            Some(e) => Err(first_then(e, checked.err())),
        }
    }

    /// [`RegistrationInput::validate`] for a correction, which names the event whose
    /// particulars it corrects (`from_event`); returns the record and that event.
    pub fn validate_correction(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Registration, u64), Vec<FieldError>> {
        match (self.checked(now), self.from_event) {
            (Ok(reg), Some(from)) => Ok((reg, from)),
            (Err(errors), Some(_)) => Err(errors),
            (checked, None) => {
                let unnamed = err(
                    "from_event",
                    "name the event whose particulars this corrects: start from his \
                     particulars as read (person show --particulars, \
                     GET /api/persons/{case}/particulars), which carry it",
                );
                Err(first_then(unnamed, checked.err()))
            }
        }
    }

    /// Every field but `from_event`, which registration and correction read apart.
    fn checked(&self, now: OffsetDateTime) -> Result<Registration, Vec<FieldError>> {
        let today = crate::latest_today(now);
        let mut errors = Vec::new();

        let mut names = Vec::new();
        if self.names.is_empty() {
            errors.push(err(
                "names",
                "at least one name form with a surname is required (Art 17)",
            ));
        }
        if self.names.len() > MAX_NAME_FORMS {
            errors.push(err(
                "names",
                format!(
                    "{} name forms given; at most {MAX_NAME_FORMS} are kept for one captive",
                    self.names.len()
                ),
            ));
        }
        for (i, n) in self.names.iter().enumerate().take(MAX_NAME_FORMS) {
            match n.validate(&|| format!("names[{i}]")) {
                // The same form given twice (a list naming him twice alike) is kept once, as a
                // field listed twice in not_stated is: it adds nothing, and each form is sealed
                // and read into the blind index.
                Ok(f) if names.contains(&f) => {}
                Ok(f) => names.push(f),
                Err(e) => errors.push(e),
            }
        }

        let external_id = opt_text(&mut errors, "external_id", &self.external_id, 64);
        if let Some(id) = &external_id
            && !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        {
            errors.push(err(
                "external_id",
                "may hold only ASCII letters, digits and - _ . / :",
            ));
        }

        let before = errors.len();
        let power = opt_text(&mut errors, "power", &self.power, 2);
        match &power {
            // Given but refused (too long, control characters): that error says why; it
            // was not missing.
            None if errors.len() > before => {}
            None => errors.push(err(
                "power",
                "the power the captive depends on is required, as a state's ISO 3166 code such as KP",
            )),
            Some(p) if !crate::states::is_state_code(p) => errors.push(err(
                "power",
                format!("{p:?} is not {}", crate::states::STATE_CODE_RULE),
            )),
            _ => {}
        }

        let captured_on = match self.captured_on.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(err(
                    "captured_on",
                    "the date of capture is required (YYYY-MM-DD)",
                ));
                None
            }
            Some(t) => match PartialDate::parse(t) {
                Ok(d @ PartialDate::Full(day)) => {
                    if day > today {
                        errors.push(err("captured_on", format!("{d} is in the future")));
                        None
                    } else if day.year() < EARLIEST_CAPTURE_YEAR {
                        errors.push(err(
                            "captured_on",
                            format!("{d} is before the Convention of 1949"),
                        ));
                        None
                    } else {
                        Some(d)
                    }
                }
                Ok(_) => {
                    errors.push(err(
                        "captured_on",
                        "give the full day of capture (YYYY-MM-DD)",
                    ));
                    None
                }
                Err(e) => {
                    errors.push(err("captured_on", e));
                    None
                }
            },
        };

        let date_of_birth = match self.date_of_birth.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => match PartialDate::parse(t) {
                Ok(d) if d.earliest().is_some_and(|e| e > today) => {
                    errors.push(err("date_of_birth", format!("{d} is in the future")));
                    None
                }
                Ok(d) if captured_on.is_some_and(|c| Some(d.earliest()) > Some(c.earliest())) => {
                    errors.push(err(
                        "date_of_birth",
                        format!("{d} is after the date of capture"),
                    ));
                    None
                }
                Ok(d) if d.year() < EARLIEST_BIRTH_YEAR => {
                    errors.push(err(
                        "date_of_birth",
                        format!("{d} is before {EARLIEST_BIRTH_YEAR}"),
                    ));
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(err("date_of_birth", e));
                    None
                }
            },
        };
        let rank = opt_text(&mut errors, "rank", &self.rank, 64);
        let service_number = opt_text(&mut errors, "service_number", &self.service_number, 64);

        // Art 17: each particular is either given or its refusal recorded; never both, never neither.
        let mut not_stated = self.not_stated.clone();
        not_stated.sort();
        not_stated.dedup();
        for (field, given) in [
            (Art17Field::DateOfBirth, self.date_of_birth.as_deref()),
            (Art17Field::Rank, self.rank.as_deref()),
            (Art17Field::ServiceNumber, self.service_number.as_deref()),
        ] {
            let present = given.is_some_and(|g| !g.trim().is_empty());
            let refused = not_stated.contains(&field);
            if present && refused {
                errors.push(err(
                    field.as_str(),
                    "is both given and listed in not_stated",
                ));
            } else if !present && !refused {
                errors.push(err(
                    field.as_str(),
                    "is missing: give it, or list it in not_stated if the captive did not give it (Art 17)",
                ));
            }
        }

        let identity = IdentityParticulars {
            names,
            date_of_birth,
            place_of_birth: opt_text(
                &mut errors,
                "place_of_birth",
                &self.place_of_birth,
                MAX_TEXT,
            ),
            rank,
            service_number,
            unit: opt_text(&mut errors, "unit", &self.unit, MAX_TEXT),
        };
        let family = FamilyParticulars {
            father_first_name: opt_text(
                &mut errors,
                "father_first_name",
                &self.father_first_name,
                MAX_NAME,
            ),
            mother_maiden_name: opt_text(
                &mut errors,
                "mother_maiden_name",
                &self.mother_maiden_name,
                MAX_NAME,
            ),
            next_of_kin: opt_text(&mut errors, "next_of_kin", &self.next_of_kin, MAX_TEXT),
            correspondence_address: opt_text(
                &mut errors,
                "correspondence_address",
                &self.correspondence_address,
                MAX_TEXT,
            ),
            home_address: opt_text(&mut errors, "home_address", &self.home_address, MAX_TEXT),
        };
        let captured_at = opt_text(&mut errors, "captured_at", &self.captured_at, MAX_TEXT);

        match (errors.is_empty(), power, captured_on) {
            (true, Some(power), Some(captured_on)) => Ok(Registration {
                core: CoreParticulars {
                    external_id,
                    power,
                    captured_on,
                    captured_at,
                    not_stated,
                },
                identity,
                family,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests;
