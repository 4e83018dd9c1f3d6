//! Hangul syllables as (initial, medial, final) jamo indices, per the Unicode algorithm.

const BASE: u32 = 0xAC00;
const LAST: u32 = 0xD7A3;
pub const INITIALS: usize = 19;
pub const MEDIALS: usize = 21;
pub const FINALS: usize = 28;

/// One syllable: indices into the 19 initials, 21 medials and 28 finals (0 = no final).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Syllable {
    pub initial: u8,
    pub medial: u8,
    pub final_: u8,
}

/// Initial ㅇ: written but silent.
pub const SILENT: u8 = 11;
/// Initial ㄹ, written ㅇ or ㄴ word-initially in South Korean spelling.
pub const RIEUL: u8 = 5;
/// Initial ㄴ.
pub const NIEUN: u8 = 2;

pub fn decompose(c: char) -> Option<Syllable> {
    let code = c as u32;
    if !(BASE..=LAST).contains(&code) {
        return None;
    }
    let s = code - BASE;
    Some(Syllable {
        initial: (s / (MEDIALS * FINALS) as u32) as u8,
        medial: ((s / FINALS as u32) % MEDIALS as u32) as u8,
        final_: (s % FINALS as u32) as u8,
    })
}

pub fn compose(s: Syllable) -> Option<char> {
    if s.initial as usize >= INITIALS || s.medial as usize >= MEDIALS || s.final_ as usize >= FINALS
    {
        return None;
    }
    let code = BASE
        + (s.initial as u32 * MEDIALS as u32 + s.medial as u32) * FINALS as u32
        + s.final_ as u32;
    char::from_u32(code)
}

/// Medials that begin with an i/y glide (ㅣ ㅑ ㅕ ㅛ ㅠ ㅒ ㅖ): before them South Korean spelling
/// drops an initial ㄹ or ㄴ (리 → 이, 녀 → 여), and turns the remaining ㄹ to ㄴ (로 → 노).
pub fn is_iotized(medial: u8) -> bool {
    matches!(medial, 2 | 3 | 6 | 7 | 12 | 17 | 20)
}

/// The South Korean spelling of a North Korean word-initial syllable (리 → 이, 로 → 노, 녀 → 여).
pub fn south_initial(s: Syllable) -> Syllable {
    match s.initial {
        RIEUL if is_iotized(s.medial) => Syllable {
            initial: SILENT,
            ..s
        },
        RIEUL => Syllable {
            initial: NIEUN,
            ..s
        },
        NIEUN if is_iotized(s.medial) => Syllable {
            initial: SILENT,
            ..s
        },
        _ => s,
    }
}

/// Applies [`south_initial`] to the first syllable of a word.
pub fn to_south(word: &str) -> String {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let first = decompose(first)
        .and_then(|s| compose(south_initial(s)))
        .unwrap_or(first);
    std::iter::once(first).chain(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syllable_round_trips() {
        for code in BASE..=LAST {
            let c = char::from_u32(code).unwrap();
            assert_eq!(compose(decompose(c).unwrap()), Some(c));
        }
        assert_eq!(decompose('A'), None);
    }

    #[test]
    fn north_korean_initials_become_south_korean_ones() {
        assert_eq!(to_south("리"), "이");
        assert_eq!(to_south("류"), "유");
        assert_eq!(to_south("로"), "노");
        assert_eq!(to_south("림"), "임");
        assert_eq!(to_south("량"), "양");
        assert_eq!(to_south("녀"), "여");
        assert_eq!(to_south("김"), "김");
        assert_eq!(to_south("라선"), "나선");
    }
}
