//! Scoring two names written in any scripts.
//!
//! The score has two parts. The main part compares phoneme keys: the best pair of readings, the
//! surname and the given name syllable by syllable, less the readings' penalties. A small second
//! part compares the spellings themselves after transliterating everything to plain Latin
//! letters, which separates names whose keys merge (정 and 종 are both CON) when the spelling
//! tells them apart.

use crate::hangul::to_south;
use crate::key::{NameKey, SylKey, word_similarity};
use crate::reader::conventional;
use crate::reader::{Candidate, read};
use crate::romanize::{System, romanize_name, romanize_word};
use crate::synth::ukrainian;

/// One rendering of a name in plain Latin letters.
#[derive(Clone, Debug, PartialEq)]
pub struct Spelling {
    pub text: String,
    pub weight: f64,
    /// Made from Cyrillic (compared first with other Cyrillic renderings).
    pub cyrillic: bool,
    /// McCune–Reischauer's marks: for a rendering made from Hangul, that it is spelt with them
    /// (breves and the apostrophe of aspiration); for a name as written, that it carries them.
    pub marks: bool,
}

/// A name read once, to be compared many times.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub candidates: Vec<Candidate>,
    /// Plain-Latin renderings for the spelling part of the score, each with a weight: 1 for
    /// the name as written, a little less for renderings through South Korean spelling or a
    /// conventional surname, which may equally be another name's.
    pub spellings: Vec<Spelling>,
    /// Written in Hangul (its spellings are renderings).
    pub from_hangul: bool,
}

/// Weight of the surname in the key part; the given name has the rest.
const SURNAME_WEIGHT: f64 = 0.4;
/// Weight of the spelling part.
const SPELLING_WEIGHT: f64 = 0.08;
/// How much a reading's penalty lowers its score.
const PENALTY_WEIGHT: f64 = 0.1;

/// Cyrillic (Russian and Ukrainian letters) to the Latin letters Revised Romanization would use
/// for the Korean sound Kontsevich means by them (э is ㅐ "ae", ы is ㅡ "eu", ч is ㅈ "j", чх is
/// ㅊ "ch"), so Cyrillic and Latin spellings of one name come out alike.
fn latin(c: char, next: Option<char>) -> &'static str {
    match c {
        'а' => "a",
        'б' => "b",
        'в' => "w",
        'г' | 'ґ' => "g",
        'д' if next == Some('ж') => "",
        'д' => "d",
        'е' | 'є' => "e",
        'ё' => "yeo",
        'ж' => "j",
        'з' => "j",
        'и' | 'і' => "i",
        'ї' => "yi",
        'й' => "i",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "p",
        'х' => "h",
        'ц' => "ch",
        'ч' if next == Some('х') => "c",
        'ч' => "j",
        'ш' => "s",
        'щ' => "s",
        'ы' => "eu",
        'э' => "ae",
        'ю' => "yu",
        'я' => "ya",
        _ => "",
    }
}

/// The apostrophes people type for McCune–Reischauer's.
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ' | '‘')
}

/// Whether a Latin spelling carries McCune–Reischauer's marks: a breve, or an apostrophe.
fn has_marks(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, 'ŏ' | 'ŭ' | 'ǒ' | 'ǔ' | '\u{306}') || is_apostrophe(c))
}

/// Lower-case plain Latin letters only, spaces kept between words; breves kept as the vowels
/// they mark (ŏ is ㅓ "eo", ŭ is ㅡ "eu"); McCune–Reischauer's apostrophe of aspiration kept as
/// an h (ch'ŏng "chheong" is 청, chŏng "cheong" is 정, as the DPRK writes kh, th, ph), its
/// apostrophe between syllables (Han'gŭl) dropped.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    for (i, c) in chars.iter().enumerate() {
        match c {
            'a'..='z' => out.push(*c),
            'ŏ' | 'ǒ' => out.push_str("eo"),
            'ŭ' | 'ǔ' => out.push_str("eu"),
            '\u{306}' => {
                // A combining breve after o or u.
                match out.pop() {
                    Some('o') => out.push_str("eo"),
                    Some('u') => out.push_str("eu"),
                    Some(x) => out.push(x),
                    None => {}
                }
            }
            'ö' | 'ô' => out.push('o'),
            'ü' => out.push('u'),
            'é' | 'è' | 'ê' => out.push('e'),
            ' ' | '-' => out.push(' '),
            c if is_apostrophe(*c) => {
                if out.ends_with(['k', 't', 'p']) || out.ends_with("ch") {
                    out.push('h');
                }
            }
            c => out.push_str(latin(*c, chars.get(i + 1).copied())),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_hangul(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

pub fn prepare(name: &str) -> Prepared {
    // A name in Hanja is spelt as its likeliest Hangul reading is, and read every way it may be.
    if let Some((hangul, _)) = crate::hanja::readings(name).into_iter().next() {
        return Prepared {
            candidates: read(name),
            ..prepare(&hangul)
        };
    }
    let candidates = read(name);
    let spellings = if is_hangul(name) {
        let words: Vec<&str> = name.split_whitespace().collect();
        let (family, given) = match candidates.first() {
            Some(c) if words.len() == 1 => {
                let n = c.key.family.len();
                (
                    name.chars().take(n).collect::<String>(),
                    name.chars().skip(n).collect::<String>(),
                )
            }
            _ => (
                words.first().map(|s| s.to_string()).unwrap_or_default(),
                words.get(1..).map(|w| w.concat()).unwrap_or_default(),
            ),
        };
        let mut v: Vec<Spelling> = Vec::new();
        let mut put = |text: &str, weight: f64, cyrillic: bool| {
            v.push(Spelling {
                text: plain(text).replace(' ', ""),
                weight,
                cyrillic,
                marks: has_marks(text),
            })
        };
        let south_given = if words.len() == 1 {
            given.clone()
        } else {
            to_south(&given)
        };
        let south = (to_south(&family), south_given);
        for (f, g, weight) in [
            (family.clone(), given.clone(), 1.0),
            (south.0, south.1, DERIVED),
        ] {
            for system in [
                System::Rr,
                System::Mr,
                System::MrPlain,
                System::Dprk,
                System::Kontsevich,
            ] {
                let r = romanize_name(&f, &g, system);
                // Systems that drop distinctions (no breves) match more names than they spell.
                let lossy = if matches!(system, System::MrPlain | System::Dprk) {
                    LOSSY
                } else {
                    1.0
                };
                let cyrillic = system == System::Kontsevich;
                put(&r, weight * lossy, cyrillic);
                if cyrillic {
                    // Ukrainian practice writes ㅐ and ㅔ alike (е): lossy too.
                    put(&ukrainian(&r), weight * LOSSY, true);
                }
            }
            // South Korean practice: the surname as it is conventionally spelt (Kim, Lee, Park)
            // or in McCune–Reischauer, the given name in RR.
            let rr_given = romanize_word(&g, System::Rr);
            put(
                &format!("{} {rr_given}", romanize_word(&f, System::MrPlain)),
                weight * LOSSY,
                false,
            );
            for sur in conventional(&f) {
                let cyrillic = sur.chars().any(|c| ('а'..='я').contains(&c));
                put(&format!("{sur} {rr_given}"), DERIVED, cyrillic);
            }
        }
        // Keep each rendering once, with its highest weight.
        v.sort_by(|a, b| {
            (&a.text, a.cyrillic, a.marks)
                .cmp(&(&b.text, b.cyrillic, b.marks))
                .then(b.weight.total_cmp(&a.weight))
        });
        v.dedup_by(|a, b| a.text == b.text && a.cyrillic == b.cyrillic && a.marks == b.marks);
        v
    } else {
        vec![Spelling {
            text: plain(name).replace(' ', ""),
            weight: 1.0,
            cyrillic: name.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
            marks: has_marks(name),
        }]
    };
    Prepared {
        candidates,
        spellings,
        from_hangul: is_hangul(name),
    }
}

/// Similarity of two readings' keys, in [0, 1].
pub fn key_similarity(a: &NameKey, b: &NameKey) -> f64 {
    let split = SURNAME_WEIGHT * word_similarity(&a.family, &b.family)
        + (1.0 - SURNAME_WEIGHT) * word_similarity(&a.given, &b.given);
    if a.family.len() == b.family.len() {
        return split;
    }
    // The readings end the surname in different places: a two-syllable surname (공손, 황보)
    // read as one syllable and a given name, or a name written as one word. Compare the whole
    // names syllable by syllable (as `word_similarity` does, without collecting them), each in
    // the form it has at the start of a word, a little below an agreeing split.
    let n = (a.family.len() + a.given.len()).max(b.family.len() + b.given.len());
    let matched: f64 = whole_syllables(a)
        .zip(whole_syllables(b))
        .map(|(x, y)| x.similarity(y))
        .sum();
    split.max(matched / n.max(1) as f64 - BOUNDARY_PENALTY)
}

/// A name's syllables, surname and given name together, each as at the start of a word.
fn whole_syllables(k: &NameKey) -> impl Iterator<Item = SylKey> + '_ {
    k.family.iter().chain(&k.given).map(|s| s.at_word_start())
}

/// How much less a match of whole names scores than one that agrees where the surname ends.
const BOUNDARY_PENALTY: f64 = 0.05;

/// The key part of the score: best pair of readings.
pub fn key_score(a: &Prepared, b: &Prepared) -> f64 {
    let mut best = 0.0f64;
    for ca in &a.candidates {
        for cb in &b.candidates {
            let s = key_similarity(&ca.key, &cb.key)
                - PENALTY_WEIGHT * f64::from(ca.penalty + cb.penalty);
            best = best.max(s);
        }
    }
    best
}

/// Weight of a rendering reached through South Korean spelling or a conventional surname.
const DERIVED: f64 = 0.99;
/// Weight of a rendering in a system without breves.
const LOSSY: f64 = 0.995;

/// Whether two spellings may be compared: a rendering made with McCune–Reischauer's marks only
/// with a name written with them. Folded to plain letters, a marked rendering looks like Revised
/// Romanization while meaning other sounds (chae is 재 in one, 채 in the other), so a name written
/// without marks is compared with the renderings of the systems that write none.
fn comparable(x: &Spelling, y: &Spelling, hangul_x: bool, hangul_y: bool) -> bool {
    let marked_against_unmarked =
        |rendering: &Spelling, from_hangul: bool, other: &Spelling, other_from_hangul: bool| {
            from_hangul && rendering.marks && !other_from_hangul && !other.marks
        };
    !marked_against_unmarked(x, hangul_x, y, hangul_y)
        && !marked_against_unmarked(y, hangul_y, x, hangul_x)
}

/// The spelling part: the best weighted Jaro–Winkler between plain-Latin renderings, comparing
/// Latin with Latin and Cyrillic with Cyrillic where both sides have them (Kontsevich writes ㅇ
/// as н, so 영 in Cyrillic looks like 연 in Latin).
pub fn spelling_score(a: &Prepared, b: &Prepared) -> f64 {
    let same_script = a
        .spellings
        .iter()
        .any(|x| b.spellings.iter().any(|y| x.cyrillic == y.cyrillic));
    let mut best = 0.0f64;
    for x in &a.spellings {
        for y in &b.spellings {
            if (same_script && x.cyrillic != y.cyrillic)
                || !comparable(x, y, a.from_hangul, b.from_hangul)
            {
                continue;
            }
            best = best.max(strsim::jaro_winkler(&x.text, &y.text) * x.weight * y.weight);
        }
    }
    best
}

/// How likely two names are the same person's, in about [0, 1]; comparable across pairs.
pub fn score(a: &Prepared, b: &Prepared) -> f64 {
    (1.0 - SPELLING_WEIGHT) * key_score(a, b) + SPELLING_WEIGHT * spelling_score(a, b)
}

/// Convenience: scores two names given as text.
pub fn compare(a: &str, b: &str) -> f64 {
    score(&prepare(a), &prepare(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_person_scores_above_a_different_person_where_generic_distance_fails() {
        // Jaro–Winkler ranks these the wrong way round (DESIGN, "Names across scripts").
        let same = compare("Rhee Han-geom", "Ri Han-gŏm");
        let different = compare("Pak Pong Ju", "Pak Pong Su");
        assert!(same > different, "same {same} different {different}");
        assert!(
            strsim::jaro_winkler("rhee han-geom", "ri han-gom")
                < strsim::jaro_winkler("pak pong ju", "pak pong su")
        );
    }

    /// `name` scores high against each of `spellings` and low against another man's name.
    fn scores_high_against(name: &str, spellings: &[&str]) {
        let h = prepare(name);
        for s in spellings {
            let v = score(&h, &prepare(s));
            assert!(v > 0.9, "{name} against {s}: {v}");
        }
        assert!(score(&h, &prepare("Kim Chol Nam")) < 0.5);
    }

    #[test]
    fn every_script_of_one_name_scores_high_against_the_hangul() {
        scores_high_against(
            "리한검",
            &[
                "이한검",
                "Ri Han Gom",
                "Lee Han-geom",
                "Ли Хан Гом",
                "Рі Хан Гом",
                "Ри Хан Гём",
            ],
        );
    }

    #[test]
    fn a_name_in_hanja_scores_high_against_every_script_of_its_reading() {
        scores_high_against(
            "李漢劍",
            &[
                "리한검",
                "이한검",
                "Ri Han Gom",
                "Lee Han-geom",
                "Ли Хан Гом",
                "李 漢劍",
            ],
        );
        // 金 as a surname is 김, not 금.
        let kim = prepare("金哲男");
        assert!(score(&kim, &prepare("Kim Chol Nam")) > score(&kim, &prepare("Kum Chol Nam")));
    }

    #[test]
    fn the_spelling_separates_names_whose_keys_merge() {
        // "Jeong" is only ever 정; "Jong" is 종, or 정 in the DPRK's spelling.
        let q = prepare("Kim Jeongmin");
        assert!(score(&q, &prepare("김정민")) > score(&q, &prepare("김종민")));
    }

    #[test]
    fn a_two_syllable_surname_matches_however_the_surname_is_split() {
        // 공손 is a surname of two syllables that a reader of 공손연 cannot know; the whole
        // names agree syllable by syllable.
        let q = prepare("Kongson Yŏn");
        let right = score(&q, &prepare("공손연"));
        assert!(right > 0.85, "{right}");
        assert!(right > score(&q, &prepare("독고영")));
        assert!(right > score(&q, &prepare("공선연")));
        // An agreeing split still scores above the same syllables split elsewhere.
        let h = prepare("남궁민");
        assert!(score(&h, &prepare("Namgung Min")) >= score(&h, &prepare("Nam Gungmin")));
    }

    #[test]
    fn mccune_reischauer_aspiration_is_kept_and_its_renderings_need_its_marks() {
        assert_eq!(plain("Ch'ŏng"), "chheong");
        assert_eq!(plain("Han'gŭl"), "hangeul");
        // With breves and no apostrophe, chŏng is 정, not 청.
        let q = prepare("Cho Ik-chŏng");
        assert!(score(&q, &prepare("조익정")) > score(&q, &prepare("조익청")));
        // Without marks, "ch" is Revised Romanization's 초, not McCune–Reischauer's 조.
        let q = prepare("Chohyeon");
        assert!(score(&q, &prepare("초현")) > score(&q, &prepare("조현")));
    }

    #[test]
    fn letters_written_together_lean_to_a_consonant_starting_the_next_syllable() {
        let q = prepare("Seona");
        assert!(score(&q, &prepare("Сона")) > score(&q, &prepare("Сонъа")));
        // A hyphen says where the syllable ends.
        let q = prepare("Seon-a");
        assert!(score(&q, &prepare("Сонъа")) > score(&q, &prepare("Сона")));
    }

    #[test]
    fn russian_spelling_tells_ae_from_e_where_ukrainian_does_not() {
        let q = prepare("Чеин");
        assert!(score(&q, &prepare("제인")) > score(&q, &prepare("재인")));
    }

    #[test]
    fn plain_latin_folds_every_script() {
        assert_eq!(plain("Ri Han-gŏm"), "ri han geom");
        assert_eq!(plain("Ли Хан Гом"), "li han gom");
        assert_eq!(plain("Ким Чхоль Джун"), "kim chol jun");
        assert_eq!(plain("Кім"), "kim");
    }
}
