//! Reading a name written in any script into candidate phoneme keys.
//!
//! Hangul is read directly. Latin and Cyrillic are segmented into syllables against an inventory
//! of every way the romanization systems (RR, McCune–Reischauer with and without diacritics, the
//! DPRK's practice, Kontsevich, Ukrainian practice) and common surname spellings write each of the
//! 11,172 Hangul syllables; where a spelling is ambiguous, several candidates are kept. Hanja is
//! read as the Hangul of its Korean readings ([`crate::hanja`]).

use crate::hangul::{Syllable, decompose};
use crate::key::{NameKey, SylKey, WordKey, hangul_word};
use crate::romanize::{System, syllable};
use crate::synth::ukrainian;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

/// One reading of a name, with a penalty for how unusual the spellings it assumes are.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub key: NameKey,
    pub penalty: f32,
}

/// Penalty for each syllable, so that a reading in fewer syllables is preferred.
const PER_SYLLABLE: f32 = 0.05;
/// Penalty for a spelling that no system gives but people write.
const VARIANT: f32 = 0.15;
/// Readings kept per word and per name.
const BEAM: usize = 8;

/// Surnames as people spell them outside the systems (South Korean and Russian usage).
const CONVENTIONAL: &[(&str, &[&str])] = &[
    ("이", &["lee", "yi", "rhee", "li", "rhie", "ли"]),
    ("박", &["park", "bahk"]),
    ("최", &["choi", "chwe", "choy", "цой"]),
    ("정", &["jung", "chung", "тен"]),
    ("윤", &["yoon"]),
    ("임", &["lim", "лим"]),
    ("오", &["oh"]),
    ("서", &["suh"]),
    ("신", &["shin"]),
    ("안", &["ahn"]),
    ("전", &["chun", "jun"]),
    ("유", &["yoo"]),
    ("고", &["koh"]),
    ("문", &["moon"]),
    ("백", &["paik", "baik"]),
    ("허", &["hur", "huh"]),
    ("노", &["noh", "roh"]),
    ("성", &["sung"]),
    ("주", &["joo"]),
    ("우", &["woo"]),
    ("구", &["koo"]),
    ("진", &["chin"]),
    ("엄", &["um"]),
    ("현", &["hyun"]),
    ("변", &["byun"]),
    ("조", &["joe"]),
    ("곽", &["kwak"]),
];

/// Conventional Latin and Cyrillic spellings of a Hangul surname (South Korean spelling).
pub fn conventional(surname: &str) -> Vec<String> {
    CONVENTIONAL
        .iter()
        .filter(|(h, _)| *h == surname)
        .flat_map(|(_, v)| v.iter().map(|s| s.to_string()))
        .collect()
}

/// Latin letters folded: lower case, no diacritics, no apostrophes.
fn fold_latin(c: char) -> Option<char> {
    Some(match c {
        'a'..='z' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        'ŏ' | 'Ŏ' | 'ǒ' | 'Ǒ' | 'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
        'ŭ' | 'Ŭ' | 'ǔ' | 'Ǔ' | 'ü' | 'ú' | 'ù' | 'û' => 'u',
        'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
        'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        _ => return None,
    })
}

/// `c` in lower case where that is one letter found without Unicode's tables: Latin and
/// Cyrillic without diacritics, which nearly every spelling is written in. The tables are
/// searched for every other letter, and in the inventory of spellings (Kontsevich and Ukrainian
/// spellings are Cyrillic) that search was a quarter of the time it takes to build (perf
/// samples of an import, inside the inventory's construction).
fn quick_lower(c: char) -> Option<char> {
    match c {
        'a'..='z' | '\u{0430}'..='\u{045F}' => Some(c),
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        // А..Я to а..я, and Ѐ..Џ (Ukrainian Є, І, Ї among them) to ѐ..џ.
        '\u{0410}'..='\u{042F}' => char::from_u32(u32::from(c) + 0x20),
        '\u{0400}'..='\u{040F}' => char::from_u32(u32::from(c) + 0x50),
        _ => None,
    }
}

/// Cyrillic letters folded: lower case; the soft and hard signs dropped (ъ marks a syllable
/// boundary and is turned into one by [`tokens`]).
fn fold_cyrillic(c: char) -> Option<char> {
    let lower = quick_lower(c).unwrap_or_else(|| c.to_lowercase().next().unwrap_or(c));
    match lower {
        'ь' | 'ъ' => None,
        'а'..='я' | 'ё' | 'і' | 'ї' | 'є' | 'ґ' => Some(lower),
        _ => None,
    }
}

/// Folds a spelling for lookup; `None` if it holds letters of neither script.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        // Of ASCII only Latin letters survive folding, lower-cased: what `fold_any` makes of it,
        // without its passes for Cyrillic. The reader folds a quarter of a million spellings
        // when it starts, most of them Latin.
        let mut out = String::with_capacity(text.len());
        out.extend(
            text.bytes()
                .filter(u8::is_ascii_alphabetic)
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        return out;
    }
    if !text.contains(['ь', 'Ь', 'й', 'Й']) {
        // Without ь or й nothing is rewritten before the letters are folded one by one: what
        // `fold_any` makes of it, in one pass and one string (romanizations with breves, and
        // most Cyrillic spellings).
        let mut out = String::with_capacity(text.len());
        let mut push = |c: char| out.extend(fold_latin(c).or_else(|| fold_cyrillic(c)));
        for c in text.chars() {
            match quick_lower(c) {
                Some(lower) => push(lower),
                None => c.to_lowercase().for_each(&mut push),
            }
        }
        return out;
    }
    fold_any(text)
}

fn fold_any(text: &str) -> String {
    // Ukrainian writes Russian ё as ьо (йо at the start of a word): bring it back before the
    // soft sign is dropped, or the glide of 변 (Пьон) would be lost.
    let lower = text.to_lowercase().replace("ьо", "ё");
    let lower = match lower.strip_prefix("йо") {
        Some(rest) => format!("ё{rest}"),
        None => lower,
    };
    lower
        .chars()
        .filter_map(|c| fold_latin(c).or_else(|| fold_cyrillic(c)))
        .collect()
}

/// Whether a name is written in Ukrainian letters (і, ї, є, ґ occur in no Russian spelling).
fn is_ukrainian(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, 'і' | 'І' | 'ї' | 'Ї' | 'є' | 'Є' | 'ґ' | 'Ґ'))
}

/// A Ukrainian spelling turned back into the Russian letters of Kontsevich (и is ы, і is и),
/// so a name known to be Ukrainian is read without the Russian ambiguity of и.
fn ukrainian_to_russian(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'и' => 'ы',
            'И' => 'Ы',
            'і' => 'и',
            'І' => 'И',
            'ї' => 'и',
            'є' => 'е',
            c => c,
        })
        .collect()
}

/// Penalty for a Ukrainian spelling read in a name that shows no Ukrainian letter.
const UKRAINIAN: f32 = 0.1;

/// Spellings and the syllables they can be, hashed with foldhash: the map is built from a
/// quarter of a million spellings when the first name is read, and looked up for every piece of
/// every word read.
type Spellings = HashMap<String, Vec<(SylKey, f32)>, foldhash::fast::RandomState>;

struct Inventory {
    /// Spellings of a syllable at the start of a word.
    initial: Spellings,
    /// Spellings inside a word.
    medial: Spellings,
    longest: usize,
}

fn add(map: &mut Spellings, spelling: &str, key: SylKey, penalty: f32) {
    add_folded(map, fold(spelling), key, penalty);
}

fn add_folded(map: &mut Spellings, f: String, key: SylKey, penalty: f32) {
    if f.is_empty() {
        return;
    }
    let entry = map.entry(f).or_default();
    match entry.iter_mut().find(|(k, _)| *k == key) {
        Some((_, p)) => *p = p.min(penalty),
        None => entry.push((key, penalty)),
    }
}

/// The ways people deviate from the systems, for one system spelling.
fn variants(spelling: &str, s: Syllable) -> Vec<String> {
    let mut v = Vec::new();
    let vowel_i = matches!(s.medial, 19 | 20) && s.final_ == 0;
    if vowel_i && spelling.ends_with('i') {
        v.push(format!(
            "{}ee",
            spelling.trim_end_matches('i').trim_end_matches('u')
        ));
    }
    if s.medial == 19 && spelling.ends_with("ui") {
        v.push(format!("{}i", spelling.trim_end_matches("ui")));
    }
    if s.medial == 13 {
        v.push(spelling.replacen('u', "oo", 1));
    }
    if s.initial == 9
        && matches!(s.medial, 2 | 6 | 12 | 17 | 20)
        && let Some(rest) = spelling.strip_prefix('s')
    {
        v.push(format!("sh{rest}"));
    }
    if s.initial == 5
        && let Some(rest) = spelling.strip_prefix('r')
    {
        v.push(format!("l{rest}"));
    }
    if s.medial == 4 && spelling.contains('о') {
        // Russian lists write ㅓ as ё as well (Гём for 검).
        v.push(spelling.replacen('о', "ё", 1));
    }
    if matches!(s.medial, 3 | 7) && s.initial == 11 && spelling.starts_with('е') {
        // 예 is written йе as well as е.
        v.push(format!("й{spelling}"));
    }
    if s.final_ == 8 && spelling.ends_with("ль") {
        // ㄹ before ㅎ or a vowel is heard as р (설화 Сорхва).
        v.push(format!("{}р", spelling.trim_end_matches("ль")));
    }
    if spelling.contains('ё') {
        v.push(spelling.replace('ё', "е"));
    }
    for (voiceless, voiced) in [
        ("k", "g"),
        ("p", "b"),
        ("t", "d"),
        ("к", "г"),
        ("п", "б"),
        ("т", "д"),
    ] {
        if matches!(s.final_, 1 | 17 | 7 | 19) && spelling.ends_with(voiceless) {
            v.push(format!("{}{voiced}", spelling.trim_end_matches(voiceless)));
        }
    }
    if s.final_ == 21 && spelling.ends_with("ng") {
        // Finals ㅇ typed as n happen; the key merges them anyway.
        v.push(spelling.trim_end_matches('g').to_string());
    }
    v
}

fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| {
        let mut initial = Spellings::default();
        let mut medial = Spellings::default();
        // A previous syllable ending in a vowel, in ㄱ, in ㄴ and in ㄹ: the contexts that change
        // how the next syllable is written.
        let prevs: Vec<Option<Syllable>> = [0u8, 1, 4, 8]
            .iter()
            .map(|f| {
                Some(Syllable {
                    initial: 0,
                    medial: 0,
                    final_: *f,
                })
            })
            .collect();
        let systems = [System::Rr, System::Mr, System::Dprk, System::Kontsevich];
        for code in 0xAC00u32..=0xD7A3 {
            let Some(s) = char::from_u32(code).and_then(decompose) else {
                continue;
            };
            let key_initial = SylKey::of(s, true);
            let key_medial = SylKey::of(s, false);
            for system in systems {
                let put = |map: &mut Spellings, spelling: &str, key: SylKey| {
                    // Each spelling, then (Kontsevich) its Ukrainian form, penalised where the
                    // two differ once folded; every string folded once.
                    let mut put_one = |x: &str, penalty: f32| {
                        let folded = fold(x);
                        if system == System::Kontsevich {
                            let ua = fold(&ukrainian(x));
                            let extra = if ua == folded { 0.0 } else { UKRAINIAN };
                            add_folded(map, folded, key, penalty);
                            add_folded(map, ua, key, penalty + extra);
                        } else {
                            add_folded(map, folded, key, penalty);
                        }
                    };
                    put_one(spelling, 0.0);
                    for v in variants(spelling, s) {
                        put_one(&v, VARIANT);
                    }
                };
                put(&mut initial, &syllable(s, None, system), key_initial);
                // Most syllables are spelled alike after several of the finals: each spelling
                // is put once, since putting it again (same key, same penalties) changes
                // nothing.
                let mut spelled: Vec<String> = Vec::with_capacity(prevs.len());
                for prev in &prevs {
                    let spelling = syllable(s, *prev, system);
                    if !spelled.contains(&spelling) {
                        put(&mut medial, &spelling, key_medial);
                        spelled.push(spelling);
                    }
                }
            }
        }
        for (hangul, spellings) in CONVENTIONAL {
            if let Some(key) = hangul_word(hangul).and_then(|k| k.first().copied()) {
                for sp in *spellings {
                    add(&mut initial, sp, key, 0.0);
                }
            }
        }
        let longest = initial
            .keys()
            .chain(medial.keys())
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(1);
        Inventory {
            initial,
            medial,
            longest,
        }
    })
}

/// Where a word stands: its first syllable's spelling depends on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Begins the surname: written as at the start of a word.
    Surname,
    /// Begins the given name.
    Given,
    /// Continues a name part after a hyphen or space.
    Inside,
}

/// Penalty for reading a word's first syllable as written inside a word: voiced after the
/// surname (Kontsevich writes 김자연 Ким Джаён), or as popular Russian spelling writes initials
/// (Бомин, Луна).
const VOICED_START: f32 = 0.05;

type WordCache = HashMap<String, Rc<[(WordKey, f32)]>, foldhash::fast::RandomState>;

thread_local! {
    /// Readings of words already read on this thread, one map per position: lists repeat
    /// surnames and given-name syllables, so most words are read once per list, not per record.
    static WORDS: std::cell::RefCell<[WordCache; 3]> = std::cell::RefCell::new(Default::default());
}

/// Words cached per thread before the cache is cleared, bounding its memory.
const WORD_CACHE: usize = 200_000;

/// All readings of one word in syllables, best first (cached; shared, not copied, on a hit).
fn read_word(word: &str, position: Position) -> Rc<[(WordKey, f32)]> {
    let tag = position as usize;
    if let Some(hit) = WORDS.with(|w| w.borrow().get(tag).and_then(|m| m.get(word)).cloned()) {
        return hit;
    }
    let out: Rc<[(WordKey, f32)]> = read_word_uncached(word, position).into();
    WORDS.with(|w| {
        if let Some(m) = w.borrow_mut().get_mut(tag) {
            if m.len() >= WORD_CACHE {
                m.clear();
            }
            m.insert(word.to_string(), Rc::clone(&out));
        }
    });
    out
}

fn read_word_uncached(word: &str, position: Position) -> Vec<(WordKey, f32)> {
    let exact = segment(word, position, false);
    if !exact.is_empty() {
        return exact;
    }
    // A typo leaves no exact reading: read the word with one letter removed, two neighbours
    // swapped, or a vowel put back, at a price; as a last resort, skip letters.
    let chars: Vec<char> = word.chars().collect();
    let mut variants: Vec<String> = Vec::new();
    for i in 0..chars.len() {
        let mut v = chars.clone();
        v.remove(i);
        variants.push(v.iter().collect());
        if i + 1 < chars.len() {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            variants.push(v.iter().collect());
        }
        let cyrillic = chars.iter().any(|c| ('а'..='я').contains(c) || *c == 'і');
        let vowels: &[char] = if cyrillic {
            &['а', 'о', 'у', 'и', 'е', 'ы']
        } else {
            &['a', 'o', 'u', 'i', 'e']
        };
        for vowel in vowels {
            let mut v = chars.clone();
            v.insert(i + 1, *vowel);
            variants.push(v.iter().collect());
        }
    }
    let mut out: Vec<(WordKey, f32)> = Vec::new();
    for v in variants {
        for (w, p) in segment(&v, position, false) {
            let p = p + TYPO;
            match out.iter_mut().find(|(x, _)| *x == w) {
                Some((_, old)) => *old = old.min(p),
                None => out.push((w, p)),
            }
        }
    }
    if out.is_empty() {
        return segment(word, position, true);
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out.truncate(BEAM);
    out
}

/// Penalty for reading a word as if one typing slip were undone.
const TYPO: f32 = 0.3;

/// Penalty for closing a syllable with a consonant the next, vowel-initial syllable could begin
/// with, in letters written together ("Seona" as seon-a, 선아, rather than seo-na, 서나):
/// romanizations mark that split with a hyphen or apostrophe when they mean it, so unmarked
/// letters lean, slightly, towards the consonant starting the next syllable.
const CODA_BEFORE_VOWEL: f32 = 0.02;

/// Penalty for skipping a letter that no reading can place (a typo).
const SKIP: f32 = 0.35;

fn segment(word: &str, position: Position, allow_skips: bool) -> Vec<(WordKey, f32)> {
    let inv = inventory();
    // The byte offset of each letter and of the end: a piece of the word is a slice of it, so
    // looking a piece up makes no string. (Words not read before are the costly part of
    // reading a list: every one is segmented here.)
    let bounds: Vec<usize> = word
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(word.len()))
        .collect();
    let n = bounds.len().saturating_sub(1);
    let at_word_start = matches!(position, Position::Surname | Position::Given);
    // best[i]: readings of the first i letters.
    let mut best: Vec<Vec<(WordKey, f32)>> = vec![Vec::new(); n + 1];
    if let Some(first) = best.first_mut() {
        first.push((Vec::new(), 0.0));
    }
    for i in 0..n {
        // Readings end at i; they are extended into the slots after it.
        let Some((done, ahead)) = best.split_at_mut_checked(i + 1) else {
            continue;
        };
        let Some(here) = done.last() else {
            continue;
        };
        if here.is_empty() {
            continue;
        }
        if allow_skips && let Some(next) = ahead.first_mut() {
            for (w, p) in here {
                let pen = p + SKIP;
                match next.iter_mut().find(|(x, _)| x == w) {
                    Some((_, old)) => *old = old.min(pen),
                    None => next.push((w.clone(), pen)),
                }
            }
            next.sort_by(|a, b| a.1.total_cmp(&b.1));
            next.truncate(BEAM * 2);
        }
        for j in (i + 1)..=(i + inv.longest).min(n) {
            let piece = bounds
                .get(i)
                .zip(bounds.get(j))
                .and_then(|(&a, &b)| word.get(a..b))
                .unwrap_or_default();
            // At the start of a surname or given name: its spellings as an initial syllable,
            // then as written inside a word (voiced), at a price; elsewhere only the latter.
            let start = i == 0 && at_word_start;
            let initial = match start {
                true => inv.initial.get(piece).map_or(&[][..], Vec::as_slice),
                false => &[],
            };
            let medial = inv.medial.get(piece).map_or(&[][..], Vec::as_slice);
            if initial.is_empty() && medial.is_empty() {
                continue;
            }
            let keys = initial
                .iter()
                .copied()
                .chain(medial.iter().map(|&(key, p)| {
                    if start {
                        (key.at_word_start(), p + VOICED_START)
                    } else {
                        (key, p)
                    }
                }));
            let Some(slot) = ahead.get_mut(j - i - 1) else {
                continue;
            };
            for (prefix, p) in here {
                for (k, kp) in keys.clone() {
                    let onset =
                        if k.initial() == 0 && prefix.last().is_some_and(|x| x.final_() != 0) {
                            CODA_BEFORE_VOWEL
                        } else {
                            0.0
                        };
                    let pen = p + kp + PER_SYLLABLE + onset;
                    // The reading `prefix` then `k`, compared in place: most are already there.
                    let same = |x: &WordKey| {
                        x.len() == prefix.len() + 1 && x.starts_with(prefix) && x.last() == Some(&k)
                    };
                    match slot.iter_mut().find(|(x, _)| same(x)) {
                        Some((_, old)) => *old = old.min(pen),
                        None => {
                            let mut w = Vec::with_capacity(prefix.len() + 1);
                            w.extend_from_slice(prefix);
                            w.push(k);
                            slot.push((w, pen));
                        }
                    }
                }
            }
            slot.sort_by(|a, b| a.1.total_cmp(&b.1));
            slot.truncate(BEAM * 2);
        }
    }
    let mut out = best.pop().unwrap_or_default();
    // Skipping every letter is no reading.
    out.retain(|(w, _)| !w.is_empty());
    out.truncate(BEAM);
    with_liaison(&mut out);
    out
}

/// Penalty for reading a consonant as the previous syllable's final carried over (liaison).
const LIAISON: f32 = 0.12;

/// Korean carries a final consonant over to a following silent ㅇ (설아 is said and often spelt
/// Seora, 민아 Mina): for each reading, the alternative with the consonant moved back.
fn with_liaison(readings: &mut Vec<(WordKey, f32)>) {
    let mut extra = Vec::new();
    for (w, p) in readings.iter() {
        for i in 1..w.len() {
            let (Some(prev), Some(next)) = (w.get(i - 1), w.get(i)) else {
                continue;
            };
            if prev.final_() != 0 || next.initial() == 0 {
                continue;
            }
            // Initial class → the finals that are heard as it: K→K, N→N or L, T/S/C→T, M→M, P→P.
            let finals: &[u8] = match next.initial() {
                1 => &[1],
                2 => &[2, 4],
                3 | 6 | 7 => &[3],
                4 => &[5],
                5 => &[6],
                _ => &[],
            };
            for f in finals {
                let mut alt = w.clone();
                if let Some(x) = alt.get_mut(i - 1) {
                    *x = SylKey::new(prev.initial(), prev.vowel(), *f);
                }
                if let Some(x) = alt.get_mut(i) {
                    *x = SylKey::new(0, next.vowel(), next.final_());
                }
                extra.push((alt, p + LIAISON));
            }
        }
    }
    for e in extra {
        if !readings.iter().any(|(w, _)| *w == e.0) {
            readings.push(e);
        }
    }
    readings.sort_by(|a, b| a.1.total_cmp(&b.1));
    readings.truncate(BEAM * 2);
}

/// Splits a name into words: spaces separate words, hyphens and the hard sign separate
/// syllables within a word (kept as a boundary the segmentation must respect).
fn tokens(text: &str) -> Vec<Vec<String>> {
    text.split_whitespace()
        .map(|w| {
            w.split(['-', 'ъ', 'Ъ', '‐', '–'])
                .map(fold)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|w: &Vec<String>| !w.is_empty())
        .collect()
}

/// Reads a name part made of pieces (words, or hyphenated parts) into syllable keys.
fn read_part(pieces: &[&String], first: Position) -> Vec<(WordKey, f32)> {
    if let [piece] = pieces {
        // One piece (most surnames, and given names written as one word): its readings come
        // best first already, so ranking them again changes nothing.
        let readings = read_word(piece, first);
        let ranked = readings.iter().map(|(_, p)| 0.0 + p);
        if ranked.clone().is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
            return readings
                .iter()
                .zip(ranked)
                .take(BEAM)
                .map(|((w, _), p)| (w.clone(), p))
                .collect();
        }
    }
    rank_part(pieces, first)
}

/// [`read_part`] for any number of pieces: every extension of the readings so far by each
/// reading of the next piece, ranked.
fn rank_part(pieces: &[&String], first: Position) -> Vec<(WordKey, f32)> {
    let mut acc: Vec<(WordKey, f32)> = vec![(Vec::new(), 0.0)];
    for (i, piece) in pieces.iter().enumerate() {
        let readings = read_word(piece, if i == 0 { first } else { Position::Inside });
        // Rank every extension by penalty (stable), then build only the kept ones.
        let mut ranked: Vec<(f32, &WordKey, &WordKey)> = acc
            .iter()
            .flat_map(|(a, pa)| readings.iter().map(move |(b, pb)| (pa + pb, a, b)))
            .collect();
        ranked.sort_by(|x, y| x.0.total_cmp(&y.0));
        let next = ranked
            .into_iter()
            .take(BEAM)
            .map(|(p, a, b)| {
                let mut w = Vec::with_capacity(a.len() + b.len());
                w.extend_from_slice(a);
                w.extend_from_slice(b);
                (w, p)
            })
            .collect();
        acc = next;
    }
    if pieces.is_empty() { Vec::new() } else { acc }
}

fn is_hangul(text: &str) -> bool {
    text.chars().any(|c| decompose(c).is_some())
}

/// Readings of a name in Hanja: each of its Hangul readings ([`crate::hanja::readings`]) read
/// as Hangul, the two penalties added; best first, each key once.
fn read_hanja(text: &str) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = crate::hanja::readings(text)
        .into_iter()
        .flat_map(|(hangul, penalty)| {
            read_hangul(&hangul).into_iter().map(move |c| Candidate {
                key: c.key,
                penalty: c.penalty + penalty,
            })
        })
        .collect();
    // Stable: of equal penalties, the likelier Hanja reading first.
    out.sort_by(|a, b| a.penalty.total_cmp(&b.penalty));
    let mut seen: Vec<NameKey> = Vec::with_capacity(out.len());
    out.retain(|c| {
        let new = !seen.contains(&c.key);
        if new {
            seen.push(c.key.clone());
        }
        new
    });
    out.truncate(BEAM * 2);
    out
}

/// Two-syllable Korean surnames.
const TWO_SYLLABLE: [&str; 8] = [
    "남궁", "황보", "선우", "제갈", "독고", "사공", "서문", "동방",
];

fn read_hangul(text: &str) -> Vec<Candidate> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (family, given): (String, String) = match words.as_slice() {
        [one] => {
            let n = if TWO_SYLLABLE.iter().any(|s| one.starts_with(s)) && one.chars().count() >= 3 {
                2
            } else {
                1
            };
            (one.chars().take(n).collect(), one.chars().skip(n).collect())
        }
        [first, rest @ ..] => (first.to_string(), rest.concat()),
        [] => return Vec::new(),
    };
    let (Some(family), Some(given_start)) = (hangul_word(&family), hangul_word(&given)) else {
        return Vec::new();
    };
    // Written apart, the given name starts a word; written as one word with the surname, it may
    // be read either way (김룡해: 룡 or, in South Korean spelling, 용).
    let given_inside: WordKey = given
        .chars()
        .filter_map(|c| decompose(c).map(|s| SylKey::of(s, false)))
        .collect();
    let mut out = vec![Candidate {
        key: NameKey {
            family: family.clone(),
            given: if words.len() == 1 {
                given_inside.clone()
            } else {
                given_start.clone()
            },
        },
        penalty: 0.0,
    }];
    if words.len() == 1 && given_inside != given_start {
        out.push(Candidate {
            key: NameKey {
                family,
                given: given_start,
            },
            penalty: GIVEN_AS_WORD,
        });
    }
    out
}

/// Penalty for reading a given name written together with the surname as a word of its own.
const GIVEN_AS_WORD: f32 = 0.15;

/// Every plausible reading of a name, best first: surname first, or (with a small penalty)
/// surname last; a name written as one word is split after its first syllable.
pub fn read(name: &str) -> Vec<Candidate> {
    read_best(name, BEAM * 2)
}

/// The first `n` readings [`read`] gives (or fewer), without building the others: exactly
/// `read(name)` cut to `n`.
pub fn read_best(name: &str, n: usize) -> Vec<Candidate> {
    // A decomposed name (NFD: Hangul as jamo, й as и and a breve) is read as the same name
    // composed.
    match unicode_normalization::is_nfc_quick(name.chars()) {
        unicode_normalization::IsNormalized::Yes => read_best_composed(name, n),
        _ => {
            let composed =
                unicode_normalization::UnicodeNormalization::nfc(name).collect::<String>();
            read_best_composed(&composed, n)
        }
    }
}

/// [`read_best`] of a name already composed (NFC), as every name form a registry validated
/// is: the check is left out, for the import reads every form of every captive.
pub fn read_best_composed(name: &str, n: usize) -> Vec<Candidate> {
    if is_hangul(name) {
        let mut out = read_hangul(name);
        out.truncate(n);
        return out;
    }
    if crate::hanja::is_hanja(name) {
        let mut out = read_hanja(name);
        out.truncate(n);
        return out;
    }
    let russian;
    let name = if is_ukrainian(name) {
        russian = ukrainian_to_russian(name);
        russian.as_str()
    } else {
        name
    };
    let words = tokens(name);
    // Each way of cutting the name gives readings of its surname and of its given name; every
    // pairing is a candidate. Only the best are kept, so the pairings are ranked by penalty
    // first and only the kept ones are built.
    let mut cuts: Vec<Cut> = Vec::new();
    let mut push = |family: Vec<(WordKey, f32)>, given: Vec<(WordKey, f32)>, extra: f32| {
        cuts.push((family, given, extra));
    };
    match words.as_slice() {
        [] => {}
        [one] => {
            let pieces: Vec<&String> = one.iter().collect();
            for (w, p) in read_part(&pieces, Position::Surname) {
                if w.len() >= 2 {
                    let (f, g) = w.split_at(1);
                    let mut as_word = g.to_vec();
                    if let Some(first) = as_word.first_mut() {
                        *first = first.at_word_start();
                    }
                    if as_word != g {
                        push(
                            vec![(f.to_vec(), p)],
                            vec![(as_word, 0.0)],
                            0.1 + GIVEN_AS_WORD,
                        );
                    }
                    push(vec![(f.to_vec(), p)], vec![(g.to_vec(), 0.0)], 0.1);
                } else {
                    push(vec![(w, p)], vec![(Vec::new(), 0.0)], 0.3);
                }
            }
        }
        [first, rest @ ..] => {
            let family: Vec<&String> = first.iter().collect();
            let given: Vec<&String> = rest.iter().flatten().collect();
            push(
                read_part(&family, Position::Surname),
                read_part(&given, Position::Given),
                0.0,
            );
            if let Some((last, init)) = words.split_last() {
                let family: Vec<&String> = last.iter().collect();
                let given: Vec<&String> = init.iter().flatten().collect();
                push(
                    read_part(&family, Position::Surname),
                    read_part(&given, Position::Given),
                    0.25,
                );
            }
        }
    }
    best_pairings(&cuts, n.min(BEAM * 2))
}

/// One way of cutting a name: its surname's readings, its given name's, and the cut's penalty.
type Cut = (Vec<(WordKey, f32)>, Vec<(WordKey, f32)>, f32);

/// The best `n` distinct readings among every pairing of a cut's surname and given-name
/// readings, by penalty (ties in the order the cuts and readings come). Built in that order, so
/// the best `n` are the first `n` of the best `n + 1`.
fn best_pairings(cuts: &[Cut], n: usize) -> Vec<Candidate> {
    let mut ranked: Vec<(f32, &WordKey, &WordKey)> = cuts
        .iter()
        .flat_map(|(family, given, extra)| {
            family
                .iter()
                .flat_map(move |(f, pf)| given.iter().map(move |(g, pg)| (pf + pg + extra, f, g)))
        })
        .collect();
    // Stable: equal penalties keep their order.
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Candidate> = Vec::new();
    for (penalty, f, g) in ranked {
        if out.len() >= n {
            break;
        }
        if out.iter().any(|c| c.key.family == *f && c.key.given == *g) {
            continue;
        }
        out.push(Candidate {
            key: NameKey {
                family: f.clone(),
                given: g.clone(),
            },
            penalty,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_in_hanja_reads_as_its_hangul() {
        let keys = |t: &str| read(t).into_iter().map(|c| c.key).collect::<Vec<_>>();
        // Its best reading is the Hangul's, and 李 read 이 (South) gives the same keys.
        assert_eq!(keys("李漢劍").first(), keys("리한검").first());
        assert_eq!(keys("李 漢劍").first(), keys("리 한검").first());
        assert!(keys("李漢劍").contains(keys("이한검").first().unwrap()));
        // The compatibility 李 (U+F9E1) is the same character.
        assert_eq!(keys("\u{F9E1}漢劍"), keys("李漢劍"));
        // Each key once, best first, and read_best agrees with read.
        let all = read("金樂");
        assert!(all.windows(2).all(|w| w[0].penalty <= w[1].penalty));
        for (i, c) in all.iter().enumerate() {
            assert!(!all[..i].iter().any(|d| d.key == c.key), "{c:?} twice");
        }
        assert_eq!(read_best("金樂", 2), all[..2].to_vec());
        // A character without a Korean reading: no reading at all.
        assert!(read("李\u{4E28}").is_empty());
    }

    #[test]
    fn a_decomposed_name_reads_as_the_same_name_composed() {
        for (nfd, nfc) in [
            (
                "\u{1100}\u{1175}\u{11B7}\u{110E}\u{1165}\u{11AF}\u{1109}\u{116E}",
                "김철수",
            ),
            (
                "\u{1105}\u{1175}\u{1112}\u{1161}\u{11AB}\u{1100}\u{1165}\u{11B7}",
                "리한검",
            ),
            ("И\u{306}он Мин", "Йон Мин"),
            ("Pak Ung-hu\u{306}i", "Pak Ung-hŭi"),
        ] {
            let (a, b) = (read(nfd), read(nfc));
            assert!(!b.is_empty(), "{nfc}");
            assert_eq!(
                a.iter().map(|c| &c.key).collect::<Vec<_>>(),
                b.iter().map(|c| &c.key).collect::<Vec<_>>(),
                "{nfc}"
            );
        }
    }

    /// What `best_pairings` replaced: every pairing built, sorted by penalty (stable), the
    /// first of each key kept, cut to `BEAM * 2`.
    fn pairings_built_in_full(cuts: &[Cut]) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        for (family, given, extra) in cuts {
            for (f, pf) in family {
                for (g, pg) in given {
                    out.push(Candidate {
                        key: NameKey {
                            family: f.clone(),
                            given: g.clone(),
                        },
                        penalty: pf + pg + extra,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.penalty.total_cmp(&b.penalty));
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.key.clone()));
        out.truncate(BEAM * 2);
        out
    }

    #[test]
    fn a_part_of_one_piece_reads_as_the_ranking_of_any_part_reads_it() {
        let mut rng = crate::synth::Rng::new(9);
        let mut several = 0;
        for _ in 0..300 {
            let name = crate::synth::name(&mut rng);
            let mut words: Vec<String> = Vec::new();
            for spelling in crate::synth::spellings(&name, &mut rng) {
                words.extend(tokens(&spelling).into_iter().flatten());
            }
            words.push(crate::synth::typo(
                words.first().map_or("kim", |w| w),
                &mut rng,
            ));
            for word in &words {
                for position in [Position::Surname, Position::Given, Position::Inside] {
                    let want = rank_part(&[word], position);
                    assert_eq!(read_part(&[word], position), want, "{word}");
                    several += usize::from(want.len() > 1);
                }
            }
        }
        assert!(several > 1000, "{several}");
    }

    #[test]
    fn every_text_is_folded_as_fold_any_folds_it() {
        // Letters each folding path treats apart: ASCII, Latin with marks in both cases,
        // Cyrillic with the soft sign and й that `fold_any` rewrites, letters that lower-case
        // to more than one (İ) or by context (Σ), and separators.
        let pool: Vec<char> = "aZŏŎǒǓüÉàíñçЬьЙйоОёЁіІїЄєґъЪаЯыİΣς -'·.".chars().collect();
        let mut rng = crate::synth::Rng::new(6);
        let mut rewritten = 0;
        for _ in 0..50_000 {
            let text: String = (0..rng.below(10))
                .map(|_| pool[rng.below(pool.len())])
                .collect();
            assert_eq!(fold(&text), fold_any(&text), "{text:?}");
            rewritten += usize::from(text.to_lowercase().contains("ьо"));
        }
        // The texts `fold_any` rewrites did come up.
        assert!(rewritten > 100, "{rewritten}");
    }

    #[test]
    fn the_quick_lower_case_is_unicodes_wherever_it_answers() {
        let mut answered = 0;
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if let Some(lower) = quick_lower(c) {
                assert_eq!(
                    c.to_lowercase().collect::<String>(),
                    lower.to_string(),
                    "{c:?}"
                );
                answered += 1;
            }
        }
        // Both cases of the 26 Latin letters and of Cyrillic from Ѐ to џ.
        assert_eq!(answered, 2 * 26 + 2 * 48);
    }

    #[test]
    fn ascii_is_folded_as_any_text_is() {
        let mut rng = crate::synth::Rng::new(5);
        for _ in 0..20_000 {
            let text: String = (0..rng.below(12))
                .map(|_| char::from(rng.below(128) as u8))
                .collect();
            assert_eq!(fold(&text), fold_any(&text), "{text:?}");
        }
    }

    #[test]
    fn the_best_pairings_are_those_of_every_pairing_built_in_full() {
        let mut rng = crate::synth::Rng::new(11);
        // Few syllables and few penalties, so that keys repeat and penalties tie often.
        let readings = |rng: &mut crate::synth::Rng| -> Vec<(WordKey, f32)> {
            (0..1 + rng.below(BEAM))
                .map(|_| {
                    let word = (0..1 + rng.below(2))
                        .map(|_| SylKey::new(rng.below(3) as u8, rng.below(2) as u8, 0))
                        .collect();
                    (word, [0.0, 0.05, 0.1, 0.15][rng.below(4)])
                })
                .collect()
        };
        let (mut ties, mut repeated) = (0, 0);
        for _ in 0..2_000 {
            let cuts: Vec<Cut> = (0..1 + rng.below(2))
                .map(|_| {
                    (
                        readings(&mut rng),
                        readings(&mut rng),
                        [0.0, 0.25][rng.below(2)],
                    )
                })
                .collect();
            let want = pairings_built_in_full(&cuts);
            assert_eq!(best_pairings(&cuts, BEAM * 2), want, "{cuts:?}");
            for n in 0..4 {
                let first: Vec<Candidate> = want.iter().take(n).cloned().collect();
                assert_eq!(best_pairings(&cuts, n), first, "{n} of {cuts:?}");
            }
            ties += usize::from(want.windows(2).any(|w| w[0].penalty == w[1].penalty));
            let pairings: usize = cuts.iter().map(|(f, g, _)| f.len() * g.len()).sum();
            repeated += usize::from(want.len() < pairings.min(BEAM * 2));
        }
        // The cases that matter (ties kept in order, repeated keys dropped) did come up.
        assert!(ties > 100 && repeated > 100, "{ties} {repeated}");
    }

    fn best(name: &str) -> String {
        read(name)
            .first()
            .map(|c| c.key.to_string())
            .unwrap_or_default()
    }

    fn readings(name: &str) -> Vec<String> {
        read(name).iter().map(|c| c.key.to_string()).collect()
    }

    #[test]
    fn every_spelling_of_the_motivating_name_has_the_hangul_key_among_its_readings() {
        let want = best("리한검");
        assert_eq!(want, "I HAN-KOM");
        for spelling in [
            "이한검",
            "Ri Han Gom",
            "Lee Han-geom",
            "Ri Han-gŏm",
            "Ли Хан Гом",
            "Ри Хан Гём",
            "Рі Хан Гом",
            "Rhee Hangeom",
            "RI HAN GOM",
            "Han Gom Ri",
        ] {
            assert!(
                readings(spelling).contains(&want),
                "{spelling}: {:?}",
                readings(spelling)
            );
        }
    }

    #[test]
    fn different_people_keep_different_keys() {
        assert_ne!(best("Pak Pong Ju"), best("Pak Pong Su"));
        assert_eq!(best("Pak Pong Ju"), best("박봉주"));
        assert_ne!(best("Kim Chol"), best("Kim Nam"));
    }

    #[test]
    fn kontsevich_hard_sign_and_voicing_are_read() {
        assert!(
            readings("Чонъю")
                .iter()
                .any(|r| r.ends_with("CON YU") || r.contains("CON"))
        );
        assert!(
            readings("Ким Джаён").contains(&best("김자연")),
            "{:?}",
            readings("Ким Джаён")
        );
        assert!(readings("Kim Hajeong").contains(&best("김하정")));
        assert!(readings("Kang Kam-ch'an").contains(&best("강감찬")));
    }

    #[test]
    fn a_typo_still_gives_a_reading_close_to_the_name() {
        for (typo, right) in [
            ("Kimm Chol", "김철"),
            ("Pak Pong-jju", "박봉주"),
            ("Рі Хан Гвван", "리한관"),
        ] {
            let r = read(typo);
            assert!(!r.is_empty(), "{typo}");
            assert!(
                readings(typo).contains(&best(right)),
                "{typo}: {:?}",
                readings(typo)
            );
        }
    }

    #[test]
    fn nothing_readable_gives_no_candidates() {
        assert!(read("").is_empty());
        assert!(read("123 !!").is_empty());
        // Ideographs without a Korean reading (U+4E28, U+4E36: radicals).
        assert!(read("\u{4E28}\u{4E36}").is_empty());
    }
}
