//! What every JSON input, an API request body or a file given to the CLI, must be: one object.
//! serde reads a struct from a JSON array too, field by field in the order they are declared,
//! which would make every input's positional array an undocumented second shape of it.

/// Why an input is not one JSON object.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAnObject {
    /// Nothing but white space.
    Empty,
    /// Another JSON value (an array, a string), or not JSON at all.
    Other,
}

/// The JSON object `input` holds, without the UTF-8 byte-order mark Windows editors write
/// before it (JSON parsers refuse it), or why there is none. Whether the object is well formed
/// is for the parser to say.
pub fn json_object(input: &[u8]) -> Result<&[u8], NotAnObject> {
    let json = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(NotAnObject::Empty),
        Some(b'{') => Ok(json),
        Some(_) => Err(NotAnObject::Other),
    }
}

/// The first character of `text` that shows nothing of itself: a control character (Unicode
/// category Cc: line breaks, tabs, terminal escapes) or a format character (Cf: the
/// bidirectional overrides and isolates that make text display in another order than it is
/// written, zero-width spaces and joiners, the soft hyphen, the byte-order mark). What is
/// typed into a record is read by people deciding a captive's fate, on screens and printouts;
/// such a character would make it read as something it does not say, or make two texts that
/// look alike differ.
pub fn hidden_char(text: &str) -> Option<char> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    text.chars().find(|&c| {
        c.is_control() || (!surely_shown(c) && c.general_category() == GeneralCategory::Format)
    })
}

/// Whether `c`, not a control character, is surely not a format character, known without the
/// category table: Latin below the soft hyphen (U+00AD) and from it to the combining marks,
/// Cyrillic, Hangul syllables (nearly every character of what is typed here).
fn surely_shown(c: char) -> bool {
    c < '\u{AD}'
        || ('\u{AE}'..'\u{300}').contains(&c)
        || ('\u{400}'..='\u{52F}').contains(&c)
        || ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// Why `text` is refused when [`hidden_char`] finds one: names the character, which cannot be
/// seen, by its code point.
pub fn hidden_char_problem(text: &str) -> Option<String> {
    hidden_char(text).map(|c| {
        format!(
            "contains U+{:04X}, a character that is not shown (a control or formatting \
             character: a line break, a tab, a right-to-left override, a zero-width space); \
             remove it",
            u32::from(c)
        )
    })
}

/// `text` as a record keeps free text: trimmed, of 1 to `max` characters, none of them hidden
/// ([`hidden_char`]). Refused with why: the hidden character, or "give WHAT (1 to MAX
/// characters)".
pub fn free_text<'t>(what: &str, text: &'t str, max: usize) -> Result<&'t str, String> {
    let t = text.trim();
    if let Some(why) = hidden_char_problem(t) {
        return Err(why);
    }
    if t.is_empty() || t.chars().count() > max {
        return Err(format!("give {what} (1 to {max} characters)"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_that_show_nothing_are_found_and_named() {
        for (text, hidden) in [
            ("Kursk region", None),
            ("Курська область, с. Олешня", None),
            ("쿠르스크 주", None),
            ("Ri Han-gŏm’s papers", None),
            ("café – 5 km", None),
            ("order\u{202E}live", Some('\u{202E}')),
            ("a\u{2066}b\u{2069}", Some('\u{2066}')),
            ("Kim\u{200B}Chol", Some('\u{200B}')),
            ("Kim\u{200D}", Some('\u{200D}')),
            ("co\u{AD}operate", Some('\u{AD}')),
            ("\u{FEFF}text", Some('\u{FEFF}')),
            ("two\nlines", Some('\n')),
            ("tab\there", Some('\t')),
            ("esc\u{1B}[2J", Some('\u{1B}')),
            ("\u{85}next line", Some('\u{85}')),
            ("tag\u{E0041}", Some('\u{E0041}')),
        ] {
            assert_eq!(hidden_char(text), hidden, "{text:?}");
        }
        let why = hidden_char_problem("order\u{202E}live").unwrap();
        assert!(
            why.starts_with("contains U+202E, a character that is not shown"),
            "{why}"
        );
        assert_eq!(hidden_char_problem("order"), None);
    }

    #[test]
    fn free_text_is_trimmed_bounded_and_shows_all_it_holds() {
        assert_eq!(
            free_text("a label", "  nightly sync ", 12),
            Ok("nightly sync")
        );
        for bad in ["", "   ", "thirteen char"] {
            assert_eq!(
                free_text("a label", bad, 12),
                Err("give a label (1 to 12 characters)".to_string()),
                "{bad:?}"
            );
        }
        let e = free_text("a label", "night\u{202E}ly", 12).unwrap_err();
        assert!(e.starts_with("contains U+202E"), "{e}");
    }

    #[test]
    fn the_shortcut_agrees_with_the_table() {
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if surely_shown(c) && !c.is_control() {
                assert_ne!(
                    c.general_category(),
                    GeneralCategory::Format,
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn only_an_object_is_one_and_a_byte_order_mark_is_no_part_of_it() {
        assert_eq!(json_object(b" \r\n{\"a\": 1}"), Ok(&b" \r\n{\"a\": 1}"[..]));
        assert_eq!(json_object(b"\xef\xbb\xbf{}"), Ok(&b"{}"[..]));
        assert_eq!(json_object(b"{not json"), Ok(&b"{not json"[..]));
        for empty in [&b""[..], b" \n\t", b"\xef\xbb\xbf"] {
            assert_eq!(json_object(empty), Err(NotAnObject::Empty), "{empty:?}");
        }
        for other in [&b"[]"[..], b"[{}]", b"\"{}\"", b"null", b"x{"] {
            assert_eq!(json_object(other), Err(NotAnObject::Other), "{other:?}");
        }
    }
}
