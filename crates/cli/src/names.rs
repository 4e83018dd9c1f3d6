//! `names keys`, `names eval` and `match`: names across scripts.

use crate::csvfile::Source;
use crate::output::counted;
use anyhow::{Context, Result, bail};
use asylon_names::compare::prepare;
use asylon_names::eval::{
    JaroWinkler, Keys, Query, Report, evaluate, evaluate_with_misses, held_out, queries_from_pairs,
};
use std::io::Write as _;
use std::path::Path;

/// Default threshold of the name score above which two names are taken for one person.
pub const THRESHOLD: f64 = 0.85;

pub fn keys(name: &str) -> Result<()> {
    let p = prepare(name);
    if p.candidates.is_empty() {
        bail!(
            "{name:?} has no letters Asylon can read as a Korean name (Hangul, Latin or Cyrillic)"
        );
    }
    say!("readings of {name:?}, best first (surname, given name; penalty):")?;
    for c in &p.candidates {
        say!("  {:<28} {:.2}", c.key.to_string(), c.penalty)?;
    }
    let sp: Vec<&str> = p.spellings.iter().map(|s| s.text.as_str()).collect();
    say!("spellings compared: {}", sp.join(" | "))?;
    Ok(())
}

/// Reads `한글 -> spelling` lines.
fn arrow_pairs(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .collect())
}

/// The ALA-LC CSV's pairs (source name, romanization), the rows written in Hangul and those in
/// Hanja apart, and how many rows were neither.
struct Alalc {
    hangul: Vec<(String, String)>,
    hanja: Vec<(String, String)>,
    other: usize,
}

/// Reads the ALA-LC CSV.
fn alalc_pairs(path: &Path) -> Result<Alalc> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Alalc {
        hangul: Vec::new(),
        hanja: Vec::new(),
        other: 0,
    };
    for rec in rdr.records() {
        let rec = rec?;
        let (Some(src), Some(rom)) = (rec.get(1), rec.get(2)) else {
            continue;
        };
        let pair = (src.trim().to_string(), rom.trim().to_string());
        if src.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)) {
            out.hangul.push(pair);
        } else if asylon_names::hanja::is_hanja(src) {
            out.hanja.push(pair);
        } else {
            out.other += 1;
        }
    }
    Ok(out)
}

fn split_queries(candidates: &[String], queries: Vec<Query>) -> (Vec<Query>, Vec<Query>) {
    queries.into_iter().partition(|q| {
        !q.truth
            .iter()
            .next()
            .and_then(|i| candidates.get(*i))
            .is_some_and(|c| held_out(c))
    })
}

fn row(set: &str, split: &str, ours: &Report, base: &Report) -> Result<()> {
    say!(
        "{set:<34} {split:<9} {:>6} {:>6} | {:>6.3} {:>6.3} {:>6.3} {:>6.3} | {:>6.3} {:>6.3} {:>6.3} {:>6.3}",
        ours.queries,
        ours.unique_queries,
        ours.recall_at_1_unique,
        ours.recall_at_10,
        ours.precision,
        ours.coverage,
        base.recall_at_1_unique,
        base.recall_at_10,
        base.precision,
        base.coverage
    )?;
    Ok(())
}

fn run_set(
    set: &str,
    pairs: &[(String, String)],
    threshold: f64,
    show_misses: bool,
    totals: &mut Vec<(String, Report)>,
) -> Result<()> {
    let (candidates, queries) = queries_from_pairs(pairs);
    let (tune, held) = split_queries(&candidates, queries);
    // The whole set too: the targets are for each set; the held-out row shows whether tuning
    // carried over to names it never saw.
    let whole: Vec<Query> = tune.iter().chain(&held).cloned().collect();
    for (split, qs) in [("tune", tune), ("held-out", held), ("whole", whole)] {
        let (ours, misses) = evaluate_with_misses(&Keys, &candidates, &qs, threshold);
        // Only the tuning part's misses are ever shown.
        if show_misses && split == "tune" {
            for m in &misses {
                say!(
                    "    miss {:?}: right {} {:.3}, chose {} {:.3}",
                    m.query,
                    m.right,
                    m.right_score,
                    m.chosen,
                    m.chosen_score
                )?;
            }
        }
        let base = evaluate(&JaroWinkler, &candidates, &qs, threshold);
        row(set, split, &ours, &base)?;
        totals.push((format!("{set} {split}"), ours));
    }
    Ok(())
}

pub fn eval(dir: &Path, threshold: f64, show_misses: bool) -> Result<()> {
    say!(
        "{:<34} {:<9} {:>6} {:>6} | {:^27} | {:^27}",
        "set",
        "split",
        "query",
        "unique",
        "asylon keys",
        "baseline: Jaro-Winkler"
    )?;
    say!(
        "{:<34} {:<9} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6}",
        "",
        "",
        "",
        "",
        "r@1",
        "r@10",
        "prec",
        "cover",
        "r@1",
        "r@10",
        "prec",
        "cover"
    )?;
    let mut totals = Vec::new();
    let mut by_hangul: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    for file in [
        "hangeuljs-names-2syl-en.txt",
        "hangeuljs-names-2syl-ru.txt",
        "hangeuljs-names-3syl-en.txt",
        "hangeuljs-names-3syl-ru.txt",
    ] {
        let pairs = arrow_pairs(&dir.join(file))?;
        run_set(
            file.trim_end_matches(".txt"),
            &pairs,
            threshold,
            show_misses,
            &mut totals,
        )?;
        by_hangul.push((file, pairs));
    }
    let alalc = alalc_pairs(&dir.join("scriptshifter-korean-names-alalc.csv"))?;
    for (set, pairs) in [
        ("scriptshifter-alalc (Hangul rows)", &alalc.hangul),
        ("scriptshifter-alalc (Hanja rows)", &alalc.hanja),
    ] {
        run_set(set, pairs, threshold, show_misses, &mut totals)?;
    }
    // Latin against Cyrillic: the same Hangul name's spellings, each side as written.
    for (en, ru, name) in [
        (0, 1, "2syl Latin vs Cyrillic"),
        (2, 3, "3syl Latin vs Cyrillic"),
    ] {
        let (Some((_, en)), Some((_, ru))) = (by_hangul.get(en), by_hangul.get(ru)) else {
            continue;
        };
        let ru_of: std::collections::HashMap<&str, Vec<&str>> =
            ru.iter().fold(Default::default(), |mut m, (h, r)| {
                m.entry(h.as_str()).or_default().push(r.as_str());
                m
            });
        let pairs: Vec<(String, String)> = en
            .iter()
            .flat_map(|(h, e)| {
                ru_of
                    .get(h.as_str())
                    .into_iter()
                    .flatten()
                    .map(move |r| (r.to_string(), e.clone()))
            })
            .collect();
        run_set(name, &pairs, threshold, show_misses, &mut totals)?;
    }
    say!(
        "\nthreshold {threshold}; r@1 over queries whose spelling belongs to one name only; ties count as misses; \
         {} ALA-LC rows in neither Hangul nor Hanja skipped; held-out: about 30% of names by a fixed hash, never used for tuning; whole: both parts",
        alalc.other
    )?;
    Ok(())
}

/// Match probability from which a pair is reported (Fellegi–Sunter posterior).
pub const LINK_THRESHOLD: f64 = 0.5;

/// Reads a list for `match`: header `id,name` or `id,name,date_of_birth`; every bad row is
/// reported with its line, and nothing is matched if there is one.
fn read_list(source: Source<'_>) -> Result<Vec<asylon_names::link::Record>> {
    let path = source.path;
    let mut rdr = crate::csvfile::Rows::open(source)?;
    let (line, header) = rdr.headers().with_context(|| path.display().to_string())?;
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let with_dob = match header
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["id", "name"] => false,
        ["id", "name", "date_of_birth"] => true,
        _ => bail!(
            "{}: line {line}: the header must be id,name or id,name,date_of_birth (found {})",
            path.display(),
            header.join(",")
        ),
    };
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    let mut ids = std::collections::HashMap::new();
    while let Some((line, rec)) = rdr.next_row() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push(format!("line {line}: unreadable row: {e}"));
                continue;
            }
        };
        let id = rec.get(0).unwrap_or("").trim().to_string();
        let name = rec.get(1).unwrap_or("").trim().to_string();
        if id.is_empty() {
            bad.push(format!("line {line}: id is empty"));
        } else if let Some(first) = ids.insert(id.clone(), line) {
            bad.push(format!(
                "line {line}: id {id} is already used on line {first}"
            ));
        }
        // A name with a typo may have no reading; it is kept (it just matches less), but a
        // name without a letter is a mistake in the file.
        if !name.chars().any(char::is_alphabetic) {
            bad.push(format!("line {line}: name {name:?} has no letters"));
        }
        let birth_year = match rec
            .get(2)
            .map(str::trim)
            .filter(|d| with_dob && !d.is_empty())
        {
            None => None,
            Some(d) => match asylon_core::PartialDate::parse(d) {
                Ok(p) => Some(p.year()),
                Err(e) => {
                    bad.push(format!("line {line}: date_of_birth {d:?}: {e}"));
                    None
                }
            },
        };
        out.push(asylon_names::link::Record {
            id,
            name,
            birth_year,
        });
    }
    if !bad.is_empty() {
        const SHOWN: usize = 200;
        for b in bad.iter().take(SHOWN) {
            eprintln!("{}: {b}", path.display());
        }
        let count = match bad.len() {
            1 => "1 problem".to_string(),
            n if n > SHOWN => format!("{n} problems (the first {SHOWN} above)"),
            n => format!("{n} problems"),
        };
        bail!("{}: {count}; nothing was matched", path.display());
    }
    Ok(out)
}

pub fn matches(left: Source<'_>, right: Source<'_>, out: Option<&Path>, top: usize) -> Result<()> {
    if top == 0 {
        bail!("--top must be at least 1");
    }
    let l = read_list(left)?;
    let r = read_list(right)?;
    let (links, model) = asylon_names::link::link(&l, &r, LINK_THRESHOLD, top);
    let sink: Box<dyn std::io::Write> = match out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    w.write_record(["left_id", "right_id", "score"])?;
    for link in &links {
        let (Some(a), Some(b)) = (l.get(link.left), r.get(link.right)) else {
            continue;
        };
        w.write_record([
            a.id.as_str(),
            b.id.as_str(),
            &format!("{:.4}", link.probability),
        ])?;
    }
    w.flush()?;
    eprintln!(
        "{} for {} left and {} right records (match prior {:.4}; m/u {})",
        counted(links.len(), "link", "links"),
        l.len(),
        r.len(),
        model.prior,
        if model.estimated {
            "estimated by EM"
        } else {
            "assumed: too few candidate pairs for EM"
        }
    );
    Ok(())
}

pub fn dedupe(file: Source<'_>) -> Result<()> {
    let list = read_list(file)?;
    let groups = asylon_names::link::clusters(&list, LINK_THRESHOLD);
    let mut out = crate::output::stdout();
    for (n, g) in groups.iter().enumerate() {
        let ids: Vec<String> = g
            .iter()
            .filter_map(|i| list.get(*i))
            .map(|r| format!("{} ({})", r.id, r.name))
            .collect();
        writeln!(out, "group {}: {}", n + 1, ids.join(", "))?;
    }
    writeln!(
        out,
        "{} of possible duplicates among {} records",
        counted(groups.len(), "group", "groups"),
        list.len()
    )?;
    Ok(out.flush()?)
}

/// A name as plain Latin surname and given name, the way a generic linker is given it: Hangul
/// through Revised Romanization, other scripts through the plain transliteration.
fn romanized_parts(name: &str) -> (String, String) {
    let hangul = name.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
    let text = if hangul {
        let (f, g) = match name.split_once(' ') {
            Some((f, g)) => (f.to_string(), g.replace(' ', "")),
            None => (
                name.chars().take(1).collect(),
                name.chars().skip(1).collect(),
            ),
        };
        format!(
            "{} {}",
            asylon_names::romanize::romanize_word(&f, asylon_names::romanize::System::Rr),
            asylon_names::romanize::romanize_word(&g, asylon_names::romanize::System::Rr)
        )
    } else {
        name.to_string()
    };
    let plain = asylon_names::eval::generic_ascii(&text);
    match plain.split_once(' ') {
        Some((f, g)) => (f.to_string(), g.replace(' ', "")),
        None => (plain, String::new()),
    }
}

pub fn link_lists(right: usize, left: usize, seed: u64, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (l, r) = asylon_names::synth::link_lists(right, left, seed);
    let year = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| d.get(..4))
            .unwrap_or("")
            .to_string()
    };
    for (list, file, latin) in [
        (&l, "left.csv", "left_latin.csv"),
        (&r, "right.csv", "right_latin.csv"),
    ] {
        let mut w = csv::Writer::from_path(dir.join(file))?;
        w.write_record(["id", "name", "date_of_birth"])?;
        let mut wl = csv::Writer::from_path(dir.join(latin))?;
        wl.write_record(["unique_id", "surname", "given", "birth_year"])?;
        for rec in list.iter() {
            w.write_record([
                rec.id.as_str(),
                &rec.name,
                rec.date_of_birth.as_deref().unwrap_or(""),
            ])?;
            let (f, g) = romanized_parts(&rec.name);
            wl.write_record([rec.id.as_str(), &f, &g, &year(&rec.date_of_birth)])?;
        }
        w.flush()?;
        wl.flush()?;
    }
    let by_person: std::collections::HashMap<usize, &str> =
        r.iter().map(|x| (x.person, x.id.as_str())).collect();
    let mut t = csv::Writer::from_path(dir.join("truth.csv"))?;
    t.write_record(["left_id", "right_id"])?;
    let mut n = 0;
    for rec in &l {
        if let Some(rid) = by_person.get(&rec.person) {
            t.write_record([rec.id.as_str(), rid])?;
            n += 1;
        }
    }
    t.flush()?;
    say!(
        "{} left, {} right records, {n} true links, in {}",
        l.len(),
        r.len(),
        dir.display()
    )?;
    Ok(())
}
