//! Reading a name written in Hanja into Hangul, by the Korean readings Unihan lists for each
//! ideograph (its kHangul field, [`table`]).
//!
//! A character may have more than one reading: 李 is 리 (as the DPRK writes it) and 이 (as the
//! South does), 金 is 금 (gold) and 김 (the surname). Each reading of a name is one choice per
//! character; every choice but the first costs a penalty, so the likeliest reading comes first.
//! For the first character, the surname, readings listed for personal names come first (金 reads
//! 김, 車 차, 沈 심); for the others, Unihan's order.

mod table;

/// Penalty for each step away from a character's first reading.
const ALTERNATIVE: f32 = 0.1;
/// Readings kept of a name.
const KEPT: usize = 16;

/// Whether `c` is an ideograph a name form in Hanja is written with (the blocks the record
/// counts as Hanja: CJK Unified Ideographs, their Extension A, and the compatibility
/// ideographs).
pub fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

/// Whether `text` is written in Hanja: it holds an ideograph, and no other letter.
pub fn is_hanja(text: &str) -> bool {
    let mut any = false;
    for c in text.chars() {
        if is_ideograph(c) {
            any = true;
        } else if c.is_alphabetic() {
            return false;
        }
    }
    any
}

/// The readings Unihan lists for `c`, each a Hangul syllable and whether it is listed among the
/// Hanja for personal names; none for a character Unihan gives no Korean reading.
fn char_readings(c: char) -> Vec<(char, bool)> {
    let Ok(at) = table::KHANGUL.binary_search_by_key(&c, |&(k, _)| k) else {
        return Vec::new();
    };
    let Some((_, listed)) = table::KHANGUL.get(at) else {
        return Vec::new();
    };
    listed
        .split_whitespace()
        .filter_map(|r| {
            let (reading, sources) = r.split_once(':')?;
            let mut syllables = reading.chars();
            match (syllables.next(), syllables.next()) {
                (Some(s), None) => Some((s, sources.contains('N'))),
                _ => None,
            }
        })
        .collect()
}

/// The Hangul readings of a name written in Hanja, likeliest first, each with its penalty;
/// words stay apart as written, and marks other than spaces are left out. Empty when `text`
/// is not Hanja or holds a character with no Korean reading (nothing to read it as).
pub fn readings(text: &str) -> Vec<(String, f32)> {
    if !is_hanja(text) {
        return Vec::new();
    }
    let mut out = vec![(String::new(), 0.0f32)];
    let mut surname = true;
    for c in text.chars() {
        if c.is_whitespace() {
            for (reading, _) in &mut out {
                if !reading.is_empty() && !reading.ends_with(' ') {
                    reading.push(' ');
                }
            }
            continue;
        }
        if !is_ideograph(c) {
            continue;
        }
        let mut choices = char_readings(c);
        if choices.is_empty() {
            return Vec::new();
        }
        if surname {
            // A stable sort: those listed for names first, each group in Unihan's order.
            choices.sort_by_key(|&(_, for_names)| !for_names);
            surname = false;
        }
        let mut next = Vec::with_capacity(out.len() * choices.len());
        for (reading, penalty) in &out {
            for (rank, (syllable, _)) in (0u8..).zip(&choices) {
                let mut r = reading.clone();
                r.push(*syllable);
                next.push((r, penalty + ALTERNATIVE * f32::from(rank)));
            }
        }
        // Stable: among equal penalties, earlier characters' first choices stay first.
        next.sort_by(|a, b| a.1.total_cmp(&b.1));
        next.truncate(KEPT);
        out = next;
    }
    for (reading, _) in &mut out {
        while reading.ends_with(' ') {
            reading.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_ordered_and_every_entry_reads_as_syllables() {
        let table = table::KHANGUL;
        assert!(table.len() > 8000, "{} ideographs", table.len());
        assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "not ordered");
        for &(c, listed) in table {
            assert!(is_ideograph(c), "{c:?} is outside the Hanja blocks");
            let parsed = char_readings(c);
            assert_eq!(
                parsed.len(),
                listed.split_whitespace().count(),
                "{c} {listed}"
            );
            assert!(
                parsed
                    .iter()
                    .all(|&(s, _)| crate::hangul::decompose(s).is_some()),
                "{c} {listed}"
            );
        }
    }

    #[test]
    fn a_name_reads_as_the_hangul_it_is_spoken_as() {
        let first = |t: &str| readings(t).first().map(|(r, _)| r.clone());
        assert_eq!(first("李漢劍").as_deref(), Some("리한검"));
        assert_eq!(first("朴 成哲").as_deref(), Some("박 성철"));
        // Surnames by their reading for names; the other characters by their first reading.
        assert_eq!(first("金正日").as_deref(), Some("김정일"));
        assert_eq!(first("車 明").as_deref(), Some("차 명"));
        assert_eq!(first("沈 仁").as_deref(), Some("심 인"));
        assert_eq!(first("林明弼").as_deref(), Some("림명필"));
        // 金 inside a given name is read as Unihan lists it first (금), 김 after.
        let all: Vec<String> = readings("李金").into_iter().map(|(r, _)| r).collect();
        assert_eq!(all, ["리금", "리김", "이금", "이김"]);
        // Penalties grow down the list.
        let penalties: Vec<f32> = readings("李金").into_iter().map(|(_, p)| p).collect();
        assert!(penalties.windows(2).all(|w| w[0] <= w[1]), "{penalties:?}");
        assert!(penalties.first() == Some(&0.0));
    }

    #[test]
    fn what_is_not_hanja_or_has_no_reading_reads_as_nothing() {
        assert!(readings("리한검").is_empty());
        assert!(readings("Ri Han Gom").is_empty());
        assert!(readings("李 Han").is_empty());
        assert!(readings("").is_empty());
        // U+4E28 丨 (a stroke radical) has no Korean reading.
        assert!(char_readings('\u{4E28}').is_empty());
        assert!(readings("李\u{4E28}").is_empty());
    }

    #[test]
    fn every_reading_of_a_name_is_one_reading_of_each_character() {
        // Names of one to five characters drawn from the whole table, spaced or not.
        let table = table::KHANGUL;
        let mut rng = crate::synth::Rng::new(7);
        for _ in 0..5000 {
            let n = 1 + rng.below(5);
            let chars: Vec<char> = (0..n)
                .map(|_| table.get(rng.below(table.len())).unwrap().0)
                .collect();
            let mut text: String = chars.iter().collect();
            if n > 1 && rng.chance(300) {
                text.insert(chars[0].len_utf8(), ' ');
            }
            let all = readings(&text);
            let combos: usize = chars.iter().map(|&c| char_readings(c).len()).product();
            assert_eq!(all.len(), combos.min(KEPT), "{text}");
            assert!(all.windows(2).all(|w| w[0].1 <= w[1].1), "{text}: {all:?}");
            assert_eq!(all.first().map(|r| r.1), Some(0.0), "{text}");
            for (reading, _) in &all {
                let syllables: Vec<char> = reading.chars().filter(|c| *c != ' ').collect();
                assert_eq!(syllables.len(), n, "{text}: {reading}");
                for (c, s) in chars.iter().zip(&syllables) {
                    assert!(
                        char_readings(*c).iter().any(|(r, _)| r == s),
                        "{text}: {reading}"
                    );
                }
                assert_eq!(
                    reading.contains(' '),
                    text.contains(' '),
                    "{text}: {reading}"
                );
            }
            let distinct: std::collections::HashSet<&String> = all.iter().map(|r| &r.0).collect();
            assert_eq!(distinct.len(), all.len(), "{text}: {all:?}");
        }
    }

    #[test]
    fn many_readings_are_kept_to_the_likeliest() {
        // 樂 has four readings: six of them give 4,096 choices, of which the best are kept.
        let many = readings("樂樂樂樂樂樂");
        assert_eq!(many.len(), KEPT);
        assert_eq!(many.first().map(|(r, _)| r.as_str()), Some("악낙낙낙낙낙"));
    }
}
