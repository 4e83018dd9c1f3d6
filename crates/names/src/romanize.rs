//! Hangul to Latin and Cyrillic, syllable by syllable with the context rules that matter for
//! names: voicing of ㄱ ㄷ ㅂ ㅈ between voiced sounds (McCune–Reischauer, DPRK, Kontsevich), and
//! ㄹ after ㄴ or ㄹ. Written here because no maintained crate romanizes to these systems.

use crate::hangul::{Syllable, decompose};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// Revised Romanization (South Korea, 2000): "Ri Hangeom", "Lee Han-geom".
    Rr,
    /// McCune–Reischauer with breves and apostrophes (ALA-LC practice): "Kang Kam-ch'an".
    Mr,
    /// McCune–Reischauer as people type it: no breves, no apostrophes.
    MrPlain,
    /// DPRK practice in English: syllables apart, aspirates as kh/th/ph: "Thae Yong Ho".
    Dprk,
    /// Russian Cyrillic after Kontsevich, syllables apart as Russian writes North Korean names.
    Kontsevich,
}

const RR_INITIAL: [&str; 19] = [
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p",
    "h",
];
const RR_MEDIAL: [&str; 21] = [
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
    "wi", "yu", "eu", "ui", "i",
];
/// Final consonants as pronounced before a pause, by final index (Latin systems).
const FINAL_LATIN: [&str; 28] = [
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
    "t", "t", "ng", "t", "t", "k", "t", "p", "t",
];
const MR_INITIAL: [&str; 19] = [
    "k", "kk", "n", "t", "tt", "r", "m", "p", "pp", "s", "ss", "", "ch", "tch", "ch'", "k'", "t'",
    "p'", "h",
];
const MR_MEDIAL: [&str; 21] = [
    "a", "ae", "ya", "yae", "ŏ", "e", "yŏ", "ye", "o", "wa", "wae", "oe", "yo", "u", "wŏ", "we",
    "wi", "yu", "ŭ", "ŭi", "i",
];
const DPRK_INITIAL: [&str; 19] = [
    "k", "kk", "n", "t", "tt", "r", "m", "p", "pp", "s", "ss", "", "j", "jj", "ch", "kh", "th",
    "ph", "h",
];
const CY_INITIAL: [&str; 19] = [
    "к", "кк", "н", "т", "тт", "р", "м", "п", "пп", "с", "сс", "", "ч", "чч", "чх", "кх", "тх",
    "пх", "х",
];
const CY_MEDIAL: [&str; 21] = [
    "а", "э", "я", "йя", "о", "е", "ё", "е", "о", "ва", "вэ", "ве", "ё", "у", "во", "ве", "ви",
    "ю", "ы", "ый", "и",
];
const CY_FINAL: [&str; 28] = [
    "", "к", "к", "к", "н", "н", "н", "т", "ль", "к", "м", "ль", "ль", "ль", "п", "ль", "м", "п",
    "п", "т", "т", "н", "т", "т", "к", "т", "п", "т",
];

/// Does the final (by index) end in a voiced sound: none (a vowel), ㄴ, ㄹ, ㅁ, ㅇ and clusters
/// that sound as them.
fn voiced_final(f: u8) -> bool {
    matches!(f, 0 | 4 | 5 | 6 | 8 | 10 | 11 | 12 | 13 | 15 | 16 | 21)
}

/// The plain stops that are voiced between voiced sounds: ㄱ ㄷ ㅂ ㅈ.
fn voiced_initial(i: u8, system: System) -> Option<&'static str> {
    match (i, system) {
        (0, System::Kontsevich) => Some("г"),
        (3, System::Kontsevich) => Some("д"),
        (7, System::Kontsevich) => Some("б"),
        (12, System::Kontsevich) => Some("дж"),
        (0, _) => Some("g"),
        (3, _) => Some("d"),
        (7, _) => Some("b"),
        (12, _) => Some("j"),
        _ => None,
    }
}

fn at<'a>(table: &[&'a str], i: u8) -> &'a str {
    table.get(i as usize).copied().unwrap_or("")
}

/// Romanizes one syllable given the syllable before it in the same word, if any.
pub fn syllable(s: Syllable, prev: Option<Syllable>, system: System) -> String {
    // Room for the longest spelling (Cyrillic letters are two bytes): the inventory of spellings
    // calls this a quarter of a million times, and growing the string was a third of its cost
    // (callgrind, `asylon names keys 'Kim Chol'`: 113 M of 383 M instructions).
    let mut out = String::with_capacity(16);
    // Initial consonant.
    let after_l_or_n = prev.is_some_and(|p| matches!(p.final_, 4 | 8));
    let voiced = prev.is_some_and(|p| voiced_final(p.final_));
    let initial = match system {
        System::Rr if s.initial == 5 && prev.is_some_and(|p| p.final_ == 8) => "l",
        System::Rr => at(&RR_INITIAL, s.initial),
        System::Kontsevich if s.initial == 5 && prev.is_some_and(|p| p.final_ == 8) => "л",
        System::Mr | System::MrPlain if s.initial == 5 && after_l_or_n => "l",
        // ㄴ after ㄹ assimilates to [l] (철남 Ch'ŏl-lam).
        System::Mr | System::MrPlain | System::Dprk
            if s.initial == 2 && prev.is_some_and(|p| p.final_ == 8) =>
        {
            "l"
        }
        _ => match voiced_initial(s.initial, system).filter(|_| voiced) {
            Some(v) => v,
            None => match system {
                System::Mr | System::MrPlain | System::Rr => at(&MR_INITIAL, s.initial),
                System::Dprk => at(&DPRK_INITIAL, s.initial),
                System::Kontsevich => at(&CY_INITIAL, s.initial),
            },
        },
    };
    out.push_str(initial);
    // Vowel.
    let vowel = match system {
        System::Rr => at(&RR_MEDIAL, s.medial),
        System::Mr | System::MrPlain | System::Dprk => at(&MR_MEDIAL, s.medial),
        System::Kontsevich => {
            // ㅢ after a consonant is read и.
            if s.medial == 19 && s.initial != 11 {
                "и"
            } else {
                at(&CY_MEDIAL, s.medial)
            }
        }
    };
    out.push_str(vowel);
    // Final consonant.
    out.push_str(match system {
        System::Kontsevich => at(&CY_FINAL, s.final_),
        _ => at(&FINAL_LATIN, s.final_),
    });
    match system {
        // Without breves or apostrophes, in one pass.
        System::MrPlain | System::Dprk => out
            .chars()
            .filter_map(|c| match c {
                'ŏ' => Some('o'),
                'ŭ' => Some('u'),
                '\'' => None,
                c => Some(c),
            })
            .collect(),
        _ => out,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Romanizes one word (a surname or a given name) of Hangul syllables; other characters pass
/// through. Given-name syllables are joined as each system's practice has it: RR and Kontsevich
/// Russian join (RR) or space (Kontsevich), MR hyphenates, DPRK spaces.
pub fn romanize_word(word: &str, system: System) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut prev: Option<Syllable> = None;
    for c in word.chars() {
        match decompose(c) {
            Some(s) => {
                parts.push(syllable(s, prev, system));
                prev = Some(s);
            }
            None => {
                parts.push(c.to_string());
                prev = None;
            }
        }
    }
    match system {
        System::Rr => capitalize(&parts.concat()),
        System::Mr | System::MrPlain => {
            let mut it = parts.iter();
            let first = it.next().map(|p| capitalize(p)).unwrap_or_default();
            it.fold(first, |acc, p| format!("{acc}-{p}"))
        }
        System::Dprk | System::Kontsevich => parts
            .iter()
            .map(|p| capitalize(p))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A full name, surname first.
pub fn romanize_name(family: &str, given: &str, system: System) -> String {
    let f = romanize_word(family, system);
    let g = romanize_word(given, system);
    if g.is_empty() { f } else { format!("{f} {g}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use System::*;

    #[test]
    fn the_motivating_names_come_out_as_the_lists_write_them() {
        assert_eq!(romanize_name("리", "한검", Dprk), "Ri Han Gom");
        assert_eq!(romanize_name("리", "한검", Mr), "Ri Han-gŏm");
        assert_eq!(romanize_name("이", "한검", Rr), "I Hangeom");
        assert_eq!(romanize_name("리", "한검", Kontsevich), "Ри Хан Гом");
        assert_eq!(romanize_name("김", "정은", Dprk), "Kim Jong Un");
        assert_eq!(romanize_name("김", "정은", Kontsevich), "Ким Чон Ын");
        assert_eq!(romanize_name("박", "봉주", Dprk), "Pak Pong Ju");
        assert_eq!(romanize_name("태", "영호", Dprk), "Thae Yong Ho");
        assert_eq!(romanize_name("강", "감찬", Mr), "Kang Kam-ch'an");
        assert_eq!(romanize_name("강", "감찬", MrPlain), "Kang Kam-chan");
        assert_eq!(romanize_name("최", "룡해", Dprk), "Choe Ryong Hae");
        assert_eq!(romanize_name("최", "철", Kontsevich), "Чхве Чхоль");
    }

    #[test]
    fn voicing_and_liquids_follow_the_previous_sound() {
        assert_eq!(romanize_word("철남", Mr), "Ch'ŏl-lam");
        assert_eq!(romanize_word("일복", Kontsevich), "Иль Бок");
        assert_eq!(romanize_word("윤룡", Kontsevich), "Юн Рён");
        assert_eq!(romanize_word("윤룡", Dprk), "Yun Ryong");
        assert_eq!(romanize_word("윤룡", MrPlain), "Yun-lyong");
        assert_eq!(romanize_word("국철", MrPlain), "Kuk-chol");
        assert_eq!(romanize_word("Ab", Rr), "Ab");
    }
}
