//! Phoneme keys: a Korean syllable reduced to the sounds that every script and romanization
//! keeps apart, merging what they confuse.
//!
//! - initials: plain, tense and aspirated stops merge (ㄱㄲㅋ → K, ㄷㄸㅌ → T, ㅂㅃㅍ → P,
//!   ㅈㅉㅊ → C), ㅅㅆ → S, and ㄴ with ㄹ (N); at the start of a word the South Korean rule is
//!   applied to every name, so 리/이 and 로/노 give the same key;
//! - vowels: ㅓ/ㅗ (Cyrillic о, ŏ typed as o), ㅡ/ㅜ (ŭ typed as u), ㅐ/ㅔ, ㅒ/ㅖ,
//!   ㅕ/ㅛ, ㅙ/ㅚ/ㅞ and ㅢ/ㅣ merge;
//! - finals: ㄴ with ㅇ (Kontsevich writes both н), the stops by place.

use crate::hangul::{Syllable, decompose};
use std::fmt;

/// One syllable's key: initial, vowel and final classes packed into a `u16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SylKey(u16);

/// Initial classes, indexed by the 19 Hangul initials.
const INITIAL_CLASS: [u8; 19] = [1, 1, 2, 3, 3, 2, 4, 5, 5, 6, 6, 0, 7, 7, 7, 1, 3, 5, 8];
/// Vowel classes, indexed by the 21 Hangul medials.
const VOWEL_CLASS: [u8; 21] = [
    0,  // ㅏ A
    1,  // ㅐ E
    2,  // ㅑ YA
    12, // ㅒ YE
    3,  // ㅓ O
    1,  // ㅔ E
    4,  // ㅕ YO
    12, // ㅖ YE
    3,  // ㅗ O
    5,  // ㅘ WA
    6,  // ㅙ WE
    6,  // ㅚ WE
    4,  // ㅛ YO
    7,  // ㅜ U
    8,  // ㅝ WO
    6,  // ㅞ WE
    9,  // ㅟ WI
    10, // ㅠ YU
    7,  // ㅡ U
    11, // ㅢ I
    11, // ㅣ I
];
/// Final classes, indexed by the 28 finals (0 = none).
const FINAL_CLASS: [u8; 28] = [
    0, 1, 1, 1, 2, 2, 2, 3, 4, 1, 5, 4, 4, 4, 6, 4, 5, 6, 6, 3, 3, 2, 3, 3, 1, 3, 6, 3,
];

const INITIAL_NAMES: [&str; 9] = ["", "K", "N", "T", "M", "P", "S", "C", "H"];
const VOWEL_NAMES: [&str; 13] = [
    "A", "E", "YA", "O", "YO", "WA", "WE", "U", "WO", "WI", "YU", "I", "YE",
];
const FINAL_NAMES: [&str; 7] = ["", "K", "N", "T", "L", "M", "P"];

/// Initial class of ㅇ (none) and of ㄴ/ㄹ.
const SILENT: u8 = 0;
const NASAL: u8 = 2;

impl SylKey {
    pub fn new(initial: u8, vowel: u8, final_: u8) -> Self {
        Self(u16::from(initial) << 8 | u16::from(vowel) << 3 | u16::from(final_))
    }

    pub fn initial(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn vowel(self) -> u8 {
        ((self.0 >> 3) & 0x1f) as u8
    }

    pub fn final_(self) -> u8 {
        (self.0 & 0x7) as u8
    }

    pub fn raw(self) -> u16 {
        self.0
    }

    /// The key of a Hangul syllable; `word_initial` applies the initial ㄹ/ㄴ rule.
    pub fn of(s: Syllable, word_initial: bool) -> Self {
        let class = |t: &[u8], i: u8| t.get(i as usize).copied().unwrap_or(0);
        let key = Self::new(
            class(&INITIAL_CLASS, s.initial),
            class(&VOWEL_CLASS, s.medial),
            class(&FINAL_CLASS, s.final_),
        );
        if word_initial {
            key.at_word_start()
        } else {
            key
        }
    }

    /// Applies the word-initial rule to a key read from another script.
    pub fn at_word_start(self) -> Self {
        // Vowel classes YA, YO, YU, I begin with an i-glide; YE (ㅖ/ㅒ) keeps
        // their initial ㄴ in practice, so it is left alone.
        if self.initial() == NASAL && matches!(self.vowel(), 2 | 4 | 10 | 11) {
            Self::new(SILENT, self.vowel(), self.final_())
        } else {
            self
        }
    }

    /// How alike two syllables sound: 1 for the same key, partial credit for one class apart.
    pub fn similarity(self, other: Self) -> f64 {
        if self == other {
            return 1.0;
        }
        let same = [
            self.initial() == other.initial(),
            self.vowel() == other.vowel(),
            self.final_() == other.final_(),
        ];
        match same {
            [true, true, false] => 0.7,
            [true, false, true] | [false, true, true] => 0.5,
            _ => 0.0,
        }
    }
}

impl fmt::Display for SylKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |t: &[&'static str], i: u8| t.get(i as usize).copied().unwrap_or("?");
        write!(
            f,
            "{}{}{}",
            name(&INITIAL_NAMES, self.initial()),
            name(&VOWEL_NAMES, self.vowel()),
            name(&FINAL_NAMES, self.final_())
        )
    }
}

/// Keys of one word (a surname or a given name).
pub type WordKey = Vec<SylKey>;

/// The key of a whole name: surname and given name apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey {
    pub family: WordKey,
    pub given: WordKey,
}

impl fmt::Display for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |w: &WordKey| {
            w.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("-")
        };
        write!(f, "{} {}", word(&self.family), word(&self.given))
    }
}

/// Keys of a Hangul word; the first syllable takes the word-initial rule.
pub fn hangul_word(word: &str) -> Option<WordKey> {
    word.chars()
        .enumerate()
        .map(|(i, c)| decompose(c).map(|s| SylKey::of(s, i == 0)))
        .collect()
}

/// Similarity of two words' keys: aligned syllable by syllable (words of different length are
/// aligned at the start and the extra syllables count as misses).
pub fn word_similarity(a: &[SylKey], b: &[SylKey]) -> f64 {
    let n = a.len().max(b.len());
    if n == 0 {
        return 0.0;
    }
    let matched: f64 = a.iter().zip(b).map(|(x, y)| x.similarity(*y)).sum();
    matched / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(w: &str) -> String {
        hangul_word(w)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-")
    }

    #[test]
    fn north_and_south_spellings_of_one_name_have_one_key() {
        assert_eq!(k("리"), k("이"));
        assert_eq!(k("류"), k("유"));
        assert_eq!(k("로"), k("노"));
        assert_eq!(k("림"), k("임"));
        assert_eq!(k("한검"), "HAN-KOM");
        assert_eq!(k("리"), "I");
    }

    #[test]
    fn what_scripts_confuse_is_merged_and_what_they_keep_is_kept() {
        assert_eq!(k("서"), k("소"), "Kontsevich writes both Со");
        assert_eq!(k("정"), k("종"));
        assert_eq!(k("김"), k("킴"));
        assert_ne!(k("김"), k("남"));
        assert_ne!(k("박"), k("백"));
        assert_ne!(
            k("봉주"),
            k("봉수"),
            "pak pong ju / pak pong su are different people"
        );
    }

    #[test]
    fn similarity_gives_partial_credit_one_class_apart() {
        let a = hangul_word("철").unwrap()[0];
        let b = hangul_word("천").unwrap()[0];
        assert_eq!(a.similarity(a), 1.0);
        assert_eq!(a.similarity(b), 0.7);
        assert_eq!(
            word_similarity(&hangul_word("한검").unwrap(), &hangul_word("한").unwrap()),
            0.5
        );
    }
}
