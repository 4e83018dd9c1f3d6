//! Synthetic captives with realistic North Korean names, each written in several scripts and
//! spellings the way different lists write them, with occasional typos and missing particulars.
//! Deterministic for a seed, so a benchmark or a test can be reproduced exactly.

use crate::hangul::to_south;
use crate::romanize::{System, romanize_word};

/// SplitMix64: small, fast and good enough for test data; no dependency needed for that.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; 0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.next_u64() % 1000 < u64::from(per_mille)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    fn weighted<'a>(&mut self, items: &'a [(&'a str, u32)]) -> &'a str {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(total as usize) as u32;
        for (s, w) in items {
            if x < *w {
                return s;
            }
            x -= w;
        }
        items.first().map(|(s, _)| *s).unwrap_or("김")
    }
}

/// Surnames in North Korean spelling, weighted by frequency per 10,000 (Korean census shares).
const SURNAMES: &[(&str, u32)] = &[
    ("김", 2150),
    ("리", 1470),
    ("박", 840),
    ("최", 470),
    ("정", 440),
    ("강", 230),
    ("조", 210),
    ("윤", 210),
    ("장", 200),
    ("림", 170),
    ("한", 150),
    ("오", 150),
    ("서", 150),
    ("신", 140),
    ("권", 140),
    ("황", 140),
    ("안", 140),
    ("송", 130),
    ("전", 130),
    ("홍", 110),
    ("류", 110),
    ("고", 90),
    ("문", 90),
    ("량", 90),
    ("손", 90),
    ("배", 80),
    ("백", 70),
    ("허", 70),
    ("남", 50),
    ("심", 50),
    ("로", 40),
    ("하", 40),
    ("곽", 40),
    ("성", 40),
    ("차", 40),
    ("주", 40),
    ("우", 40),
    ("구", 40),
    ("라", 30),
    ("민", 30),
    ("진", 30),
    ("지", 30),
    ("엄", 30),
    ("채", 30),
    ("원", 30),
    ("천", 20),
    ("방", 20),
    ("공", 20),
    ("현", 20),
    ("함", 20),
    ("변", 20),
    ("렴", 20),
    ("려", 20),
    ("추", 10),
    ("도", 10),
    ("소", 10),
    ("석", 10),
    ("선", 10),
    ("설", 10),
    ("마", 10),
    ("길", 10),
    ("연", 10),
    ("위", 10),
    ("표", 10),
    ("명", 10),
    ("기", 10),
    ("반", 10),
    ("왕", 10),
    ("금", 10),
    ("옥", 10),
    ("육", 10),
    ("인", 10),
    ("맹", 10),
    ("제", 10),
    ("모", 10),
    ("탁", 10),
    ("국", 10),
    ("태", 10),
    ("남궁", 5),
    ("황보", 5),
    ("선우", 3),
    ("제갈", 2),
];

/// Syllables common in North Korean men's given names.
const GIVEN: &[&str] = &[
    "철", "광", "명", "성", "혁", "일", "남", "영", "국", "수", "호", "진", "민", "준", "룡", "학",
    "봉", "주", "금", "은", "정", "훈", "석", "용", "동", "현", "경", "한", "검", "기", "복", "춘",
    "대", "원", "효", "상", "순", "문", "세", "우", "태", "건", "강", "만", "길", "천", "무", "송",
    "혜", "향", "옥", "림", "청", "범", "웅", "선", "평", "해", "삼", "창", "근", "덕", "식", "충",
    "련", "산", "걸", "권", "택", "흥", "희", "빈", "재", "규", "열", "환", "윤", "승", "관", "의",
    "란", "력", "률", "록", "봉", "산", "혁", "갑", "룡", "남",
];

/// How South Korean and Western lists spell common surnames (after South Korean spelling).
const CONVENTIONAL: &[(&str, &[&str])] = &[
    ("이", &["Lee", "Yi", "Rhee", "Li"]),
    ("박", &["Park", "Bak"]),
    ("김", &["Kim", "Gim"]),
    ("최", &["Choi", "Choe", "Chwe"]),
    ("정", &["Jung", "Chung", "Jeong"]),
    ("강", &["Kang"]),
    ("조", &["Cho", "Jo"]),
    ("윤", &["Yoon", "Yun"]),
    ("장", &["Jang", "Chang"]),
    ("임", &["Lim", "Im"]),
    ("오", &["Oh"]),
    ("서", &["Seo", "Suh"]),
    ("신", &["Shin"]),
    ("안", &["Ahn"]),
    ("전", &["Jeon", "Chun"]),
    ("유", &["Yoo", "Yu"]),
    ("문", &["Moon"]),
    ("양", &["Yang"]),
    ("배", &["Bae"]),
    ("허", &["Heo", "Hur"]),
    ("노", &["Noh", "Roh"]),
    ("성", &["Sung"]),
    ("주", &["Joo"]),
    ("우", &["Woo"]),
    ("구", &["Koo"]),
    ("현", &["Hyun"]),
    ("변", &["Byun"]),
    ("염", &["Yeom"]),
    ("여", &["Yeo"]),
    ("나", &["Na", "Ra"]),
];

/// A name in Hangul, North Korean spelling, surname and given name apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthName {
    pub family: String,
    pub given: String,
}

pub fn name(rng: &mut Rng) -> SynthName {
    let family = rng.weighted(SURNAMES).to_string();
    let syllables = if rng.chance(30) { 1 } else { 2 };
    let given = (0..syllables)
        .filter_map(|_| rng.pick(GIVEN).copied())
        .collect::<String>();
    SynthName { family, given }
}

/// Kontsevich Russian spelling turned into Ukrainian letters, as Ukrainian lists write it.
pub fn ukrainian(russian: &str) -> String {
    let mut out = String::with_capacity(russian.len());
    let mut prev_letter = false;
    for c in russian.chars() {
        match c {
            'и' => out.push('і'),
            'И' => out.push('І'),
            'ы' => out.push('и'),
            'э' => out.push('е'),
            'Э' => out.push('Е'),
            'ё' if prev_letter => out.push_str("ьо"),
            'ё' => out.push_str("йо"),
            'Ё' => out.push_str("Йо"),
            c => out.push(c),
        }
        // The Russian letters first: the inventory of spellings turns a hundred thousand
        // spellings into Ukrainian, and Unicode's table of letters is slow to search.
        prev_letter = ('\u{0410}'..='\u{044F}').contains(&c) || c.is_alphabetic();
    }
    out
}

/// One slip of a typist's hand inside a word: a swapped, dropped or doubled letter.
pub fn typo(text: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    let letters: Vec<usize> = (1..chars.len())
        .filter(|&i| chars.get(i).is_some_and(|c| c.is_alphabetic()))
        .collect();
    let Some(&i) = rng.pick(&letters) else {
        return text.to_string();
    };
    let mut out = chars.clone();
    match rng.below(3) {
        0 if out.get(i - 1).is_some_and(|c| c.is_alphabetic()) => out.swap(i - 1, i),
        1 if letters.len() > 2 => {
            out.remove(i);
        }
        _ => {
            if let Some(&c) = chars.get(i) {
                out.insert(i, c);
            }
        }
    }
    out.into_iter().collect()
}

/// Spellings of `n` in other scripts and systems: one of each kind a list might use.
pub fn spellings(n: &SynthName, rng: &mut Rng) -> Vec<String> {
    let south_family = to_south(&n.family);
    let south_given = to_south(&n.given);
    let conventional = CONVENTIONAL
        .iter()
        .find(|(h, _)| *h == south_family)
        .and_then(|(_, v)| rng.pick(v).copied());
    let rr_given = romanize_word(&south_given, System::Rr);
    let mr_given = romanize_word(&n.given, System::Mr);
    vec![
        format!("{}{}", south_family, south_given),
        format!(
            "{} {}",
            romanize_word(&n.family, System::Dprk),
            romanize_word(&n.given, System::Dprk)
        ),
        format!("{} {}", romanize_word(&n.family, System::Mr), mr_given),
        format!(
            "{} {}",
            romanize_word(&n.family, System::MrPlain),
            romanize_word(&n.given, System::MrPlain)
        ),
        format!(
            "{} {}",
            conventional.map_or_else(|| romanize_word(&south_family, System::Rr), str::to_string),
            rr_given
        ),
        format!(
            "{} {}",
            romanize_word(&n.family, System::Kontsevich),
            romanize_word(&n.given, System::Kontsevich)
        ),
        ukrainian(&format!(
            "{} {}",
            romanize_word(&n.family, System::Kontsevich),
            romanize_word(&n.given, System::Kontsevich)
        )),
    ]
}

/// A synthetic captive's particulars, as the import CSV carries them.
#[derive(Clone, Debug)]
pub struct SynthCaptive {
    pub name: SynthName,
    /// Name forms: the North Korean Hangul first, then one to three other spellings.
    pub names: Vec<String>,
    pub date_of_birth: Option<String>,
    pub rank: Option<String>,
    pub service_number: Option<String>,
    pub captured_on: String,
    pub captured_at: String,
}

const RANKS: &[(&str, u32)] = &[
    ("private", 60),
    ("junior sergeant", 12),
    ("sergeant", 10),
    ("senior sergeant", 6),
    ("lieutenant", 6),
    ("senior lieutenant", 4),
    ("captain", 2),
];

const PLACES: &[&str] = &[
    "Kursk region",
    "Sudzha district",
    "Korenevo district",
    "Glushkovo district",
    "Belgorod region",
];

pub fn captive(rng: &mut Rng) -> SynthCaptive {
    let name = name(rng);
    let mut names = vec![format!("{}{}", name.family, name.given)];
    let mut others = spellings(&name, rng);
    others.retain(|o| Some(o) != names.first());
    let count = 1 + rng.below(3);
    for _ in 0..count {
        if others.is_empty() {
            break;
        }
        let mut form = others.swap_remove(rng.below(others.len()));
        if rng.chance(50) && !form.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)) {
            form = typo(&form, rng);
        }
        if !names.contains(&form) {
            names.push(form);
        }
    }
    let year = 1985 + rng.below(21);
    let (month, day) = (1 + rng.below(12), 1 + rng.below(28));
    let date_of_birth = match rng.below(100) {
        0..=84 => Some(format!("{year:04}-{month:02}-{day:02}")),
        85..=92 => Some(format!("{year:04}")),
        93..=96 => Some(format!("{year:04}-{month:02}")),
        _ => None,
    };
    let rank = (!rng.chance(50)).then(|| rng.weighted(RANKS).to_string());
    let service_number = (!rng.chance(200)).then(|| format!("{:07}", rng.below(10_000_000)));
    let captured = time_of_capture(rng);
    SynthCaptive {
        name,
        names,
        date_of_birth,
        rank,
        service_number,
        captured_on: captured,
        captured_at: rng
            .pick(PLACES)
            .copied()
            .unwrap_or("Kursk region")
            .to_string(),
    }
}

/// A capture date between October 2024 and June 2025.
fn time_of_capture(rng: &mut Rng) -> String {
    let (year, month) = match rng.below(9) {
        m @ 0..=2 => (2024, 10 + m),
        m => (2025, m - 2),
    };
    format!("{year:04}-{month:02}-{:02}", 1 + rng.below(28))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_captives_and_another_seed_others() {
        let a: Vec<_> = (0..50)
            .map({
                let mut r = Rng::new(7);
                move |_| captive(&mut r).names
            })
            .collect();
        let b: Vec<_> = (0..50)
            .map({
                let mut r = Rng::new(7);
                move |_| captive(&mut r).names
            })
            .collect();
        let c: Vec<_> = (0..50)
            .map({
                let mut r = Rng::new(8);
                move |_| captive(&mut r).names
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn captives_carry_hangul_and_other_spellings_with_realistic_surnames() {
        let mut r = Rng::new(1);
        let people: Vec<_> = (0..2000).map(|_| captive(&mut r)).collect();
        let kim = people.iter().filter(|p| p.name.family == "김").count();
        assert!(
            (300..600).contains(&kim),
            "김 should be about a fifth: {kim}"
        );
        assert!(people.iter().all(|p| p.names.len() >= 2));
        let cyrillic = people
            .iter()
            .filter(|p| {
                p.names
                    .iter()
                    .any(|n| n.chars().any(|c| ('а'..='я').contains(&c)))
            })
            .count();
        assert!(cyrillic > 400, "{cyrillic}");
        let missing_dob = people.iter().filter(|p| p.date_of_birth.is_none()).count();
        assert!((20..120).contains(&missing_dob), "{missing_dob}");
    }

    #[test]
    fn ukrainian_letters_replace_russian_ones() {
        assert_eq!(ukrainian("Ри Хан Гом"), "Рі Хан Гом");
        assert_eq!(ukrainian("Ким Ён Ир"), "Кім Йон Ір");
        assert_eq!(ukrainian("Пак Сын"), "Пак Син");
    }

    #[test]
    fn a_typo_changes_a_name_a_little() {
        let mut r = Rng::new(3);
        for _ in 0..100 {
            let t = typo("Ri Han Gom", &mut r);
            assert_ne!(t, "Ri Han Gom");
            let diff = t.chars().count() as i64 - 10;
            assert!(diff.abs() <= 1, "{t}");
        }
    }
}

/// One record of a synthetic list to link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRecord {
    pub id: String,
    /// The person behind it, for scoring a linkage (never given to the linker).
    pub person: usize,
    pub name: String,
    pub date_of_birth: Option<String>,
}

/// Two lists for a linkage benchmark: `right` has one record for each of `people` captives, in
/// one of his spellings; `left` has `left` records, four in five of them people from `right`
/// written another way (another script or system, sometimes with a typo, sometimes without a
/// birth date), the rest people who are not in `right`.
pub fn link_lists(people: usize, left: usize, seed: u64) -> (Vec<ListRecord>, Vec<ListRecord>) {
    let mut rng = Rng::new(seed);
    let captives: Vec<SynthCaptive> = (0..people).map(|_| captive(&mut rng)).collect();
    let pick = |c: &SynthCaptive, rng: &mut Rng| -> String {
        c.names
            .get(rng.below(c.names.len()))
            .cloned()
            .unwrap_or_default()
    };
    let mut right = Vec::with_capacity(people);
    let mut right_form = Vec::with_capacity(people);
    for (i, c) in captives.iter().enumerate() {
        let name = pick(c, &mut rng);
        right_form.push(name.clone());
        right.push(ListRecord {
            id: format!("R{i:07}"),
            person: i,
            name,
            date_of_birth: c.date_of_birth.clone(),
        });
    }
    let mut left_list = Vec::with_capacity(left);
    for j in 0..left {
        let (person, c) = if rng.chance(800) && people > 0 {
            let i = rng.below(people);
            (i, captives.get(i).cloned())
        } else {
            (people + j, Some(captive(&mut rng)))
        };
        let Some(c) = c else { continue };
        // Another form than the right list's where there is one.
        let mut name = pick(&c, &mut rng);
        for _ in 0..4 {
            if right_form.get(person) != Some(&name) {
                break;
            }
            name = pick(&c, &mut rng);
        }
        let date_of_birth = if rng.chance(250) {
            None
        } else {
            c.date_of_birth.clone()
        };
        left_list.push(ListRecord {
            id: format!("L{j:07}"),
            person,
            name,
            date_of_birth,
        });
    }
    (left_list, right)
}
