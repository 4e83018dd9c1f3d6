//! `import persons`: a CSV of captives, registered all or nothing as far as validity goes, in
//! committed batches as far as a crash goes.
//!
//! Pass one streams the whole file and validates every row, collecting every problem with its
//! line; a single bad row means nothing is registered. Pass two registers the rows in batches of
//! [`BATCH`] (the first `--keep-rows` ([`KEPT_ROWS`]) as pass one validated them, the rest read again): one
//! thread reads their names into blind-index tokens, one seals them, and the key store and the
//! log write them, each batch one transaction in the key store and then one in the log, with an
//! acknowledgement printed after each commit of the log. A re-run after a crash skips the
//! external ids already registered, so an interrupted import is completed by running it again.

use crate::RegistryArgs;
use crate::commands::{actor, now, open};
use crate::csvfile::Source;
use anyhow::{Context, Result, bail};
use asylon_core::{
    Art17Field, CoreParticulars, PersonRow, Registration, RegistrationInput, particulars::NameInput,
};
use asylon_names::synth;
use asylon_store::{NameTokens, Registry, SealedRegistration, SharedNumbers, cpu};
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::Path;
use std::rc::Rc;
use time::OffsetDateTime;

pub const HEADER: [&str; 8] = [
    "external_id",
    "names",
    "date_of_birth",
    "rank",
    "service_number",
    "power",
    "captured_on",
    "captured_at",
];

/// Columns a file may add, each optional in every row (Art 17 and Art 122 "in so far as
/// available"): the first two go into the sealed identity, the rest into the sealed family
/// class (docs/particulars.md).
pub const OPTIONAL: [&str; 7] = [
    "place_of_birth",
    "unit",
    "father_first_name",
    "mother_maiden_name",
    "next_of_kin",
    "correspondence_address",
    "home_address",
];

/// Every column a file may have: [`HEADER`]'s, then [`OPTIONAL`]'s.
const COLUMNS: usize = HEADER.len() + OPTIONAL.len();

/// What a header must be, for its errors.
fn header_rule() -> String {
    format!(
        "the header must be {}, and may add {}",
        HEADER.join(","),
        OPTIONAL.join(",")
    )
}

const BATCH: usize = 1000;
/// Rows whose validated registrations pass one keeps for pass two by default (a few hundred
/// bytes each); rows past them are read and validated again (`--keep-rows`).
pub const KEPT_ROWS: u64 = 250_000;
/// Batches whose names are read and that wait to be sealed, at least; as many as pass one keeps
/// rows for, if more (see [`read_ahead`]).
const READ_AHEAD: usize = 32;
/// Sealed batches waiting for the key store, at most.
const SEALED_AHEAD: usize = 4;
/// How many bad rows are printed; the count of all of them is always given.
const SHOWN_ERRORS: usize = 200;

/// Batches whose names are read and that wait to be sealed, at most. The reader reads the rows
/// pass one keeps while pass one is still validating the rest, and nothing is sealed before
/// pass one ends: a queue shorter than the kept rows stops the reader part way, and one core
/// idles until pass one ends. At 32 batches it did for a tenth of a second of a 1.6 s import
/// of 100,000 rows (`perf`, samples per 50 ms); `scripts/ab-import`, fifteen rounds, the builds
/// of the commits before and with this queue: wall 1.63 -> 1.54 s. The kept registrations are
/// in memory either way; the queue adds their tokens, and past the kept rows it holds no more
/// rows than `--keep-rows` allows. The queue's slots are allocated when it is made, hence a
/// ceiling ([`READ_AHEAD_MAX`]).
fn read_ahead(keep_rows: u64) -> usize {
    usize::try_from(keep_rows.div_ceil(BATCH as u64))
        .unwrap_or(READ_AHEAD_MAX)
        .clamp(READ_AHEAD, READ_AHEAD_MAX)
}

/// The most batches [`read_ahead`] asks for: four million rows.
const READ_AHEAD_MAX: usize = 4096;

/// Column index of each [`HEADER`] and [`OPTIONAL`] field in this file (`usize::MAX`: an
/// optional one it does not have).
struct Columns([usize; COLUMNS]);

impl Columns {
    fn from_header((line, h): (u64, &csv::StringRecord)) -> Result<Self> {
        let mut idx = [usize::MAX; COLUMNS];
        for (i, name) in h.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                bail!(
                    "line {line}: column {} of the header has no name (a separator too many at the \
                     end of the line?); {}",
                    i + 1,
                    header_rule()
                );
            }
            // `External_ID` as a spreadsheet may have capitalised it is the same column.
            let known = HEADER.iter().chain(&OPTIONAL);
            match known.clone().position(|x| x.eq_ignore_ascii_case(name)) {
                Some(k) if idx.get(k) == Some(&usize::MAX) => {
                    if let Some(slot) = idx.get_mut(k) {
                        *slot = i;
                    }
                }
                Some(_) => bail!("line {line}: column {name:?} appears twice in the header"),
                None => bail!("line {line}: unknown column {name:?}; {}", header_rule()),
            }
        }
        let required = idx.get(..HEADER.len()).unwrap_or_default();
        if let Some(k) = required.iter().position(|i| *i == usize::MAX) {
            bail!(
                "line {line}: column {:?} is missing; {}",
                HEADER.get(k).unwrap_or(&""),
                header_rule()
            );
        }
        Ok(Self(idx))
    }

    /// The optional columns the file has.
    fn optional(&self) -> Vec<&'static str> {
        let present = self.0.get(HEADER.len()..).unwrap_or_default();
        OPTIONAL
            .iter()
            .zip(present)
            .filter(|(_, i)| **i != usize::MAX)
            .map(|(name, _)| *name)
            .collect()
    }

    fn get<'r>(&self, rec: &'r csv::StringRecord, field: usize) -> &'r str {
        self.0
            .get(field)
            .and_then(|i| rec.get(*i))
            .unwrap_or("")
            .trim()
    }
}

fn row_input(rec: &csv::StringRecord, c: &Columns) -> RegistrationInput {
    let opt = |k: usize| Some(c.get(rec, k).to_string()).filter(|s| !s.is_empty());
    let mut not_stated = Vec::new();
    for (k, field) in [
        (2, Art17Field::DateOfBirth),
        (3, Art17Field::Rank),
        (4, Art17Field::ServiceNumber),
    ] {
        if opt(k).is_none() {
            not_stated.push(field);
        }
    }
    RegistrationInput {
        external_id: opt(0),
        names: c
            .get(rec, 1)
            .split('|')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| NameInput::Text(n.to_string()))
            .collect(),
        date_of_birth: opt(2),
        rank: opt(3),
        service_number: opt(4),
        not_stated,
        power: opt(5),
        captured_on: opt(6),
        captured_at: opt(7),
        // The optional columns, in OPTIONAL's order (empty where the file has not got them).
        place_of_birth: opt(8),
        unit: opt(9),
        father_first_name: opt(10),
        mother_maiden_name: opt(11),
        next_of_kin: opt(12),
        correspondence_address: opt(13),
        home_address: opt(14),
        // A registration corrects nothing.
        from_event: None,
    }
}

/// External ids met so far and the line of each: hashed with foldhash, which is several times
/// faster than the default on short keys and still seeded at random.
type Seen = HashMap<String, u64, foldhash::fast::RandomState>;

/// External ids already registered, hashed the same way (reading a million of them took
/// 0.77 s with the default hasher, half of it hashing, and 0.53 s with this one: perf of an
/// import of a header-only file into a registry of a million, when every import read them).
type Registered = HashSet<String, foldhash::fast::RandomState>;

/// How pass one tells the rows already registered, so that a run after an interrupted one
/// skips what it had done: from every external id the registry holds, read before pass one
/// (`ids`), or by looking the rows' ids up in the registry as pass one reaches them. Either way
/// it asks about a batch of rows at a time.
struct Known<'r> {
    registry: &'r asylon_store::Registry,
    ids: Option<Registered>,
}

fn external_id(reg: &Registration) -> Option<&str> {
    reg.core.external_id.as_deref()
}

/// The rows pass one has validated and not yet told registered or not: the kept rows'
/// registrations and lines, and the public particulars and line of the rest.
struct Untold {
    kept: Vec<Registration>,
    kept_lines: Vec<u64>,
    last_line: u64,
    rest: Vec<(u64, CoreParticulars)>,
}

/// Rows skipped as registered already whose public cells (power, capture date and place)
/// differ from his record: a corrected file imported again does not correct the registry, and
/// is told so. The sealed cells are not compared: that would open every skipped captive's
/// record.
#[derive(Default)]
struct Differing {
    count: u64,
    /// The first [`SHOWN_ERRORS`], in words.
    shown: Vec<String>,
}

impl Differing {
    /// Compares the rows (line, public particulars) whose external ids are among `found`, the
    /// registered ones, with the records of their captives.
    fn check<'a>(
        &mut self,
        registry: &asylon_store::Registry,
        found: &Registered,
        rows: impl Iterator<Item = (u64, &'a CoreParticulars)>,
    ) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let skipped: Vec<(u64, &CoreParticulars)> = rows
            .filter(|(_, c)| c.external_id.as_ref().is_some_and(|id| found.contains(id)))
            .collect();
        let ids: Vec<&str> = skipped
            .iter()
            .filter_map(|(_, c)| c.external_id.as_deref())
            .collect();
        let records: HashMap<String, PersonRow> = registry
            .persons_registered_as(&ids)?
            .into_iter()
            .filter_map(|row| Some((row.external_id.clone()?, row)))
            .collect();
        for (line, core) in skipped {
            let Some(row) = core.external_id.as_ref().and_then(|id| records.get(id)) else {
                continue;
            };
            let changes = differences(core, row);
            if changes.is_empty() {
                continue;
            }
            self.count += 1;
            if self.shown.len() < SHOWN_ERRORS {
                self.shown.push(format!(
                    "line {line}: {} is registered already, as {}, so the row was skipped; it \
                     differs from his record in {}; if this file is right, correct his record with \
                     `person amend {}`",
                    row.external_id.as_deref().unwrap_or_default(),
                    row.case_no,
                    changes.join(", "),
                    row.case_no
                ));
            }
        }
        Ok(())
    }
}

/// What of a row's public particulars differs from a registered record, in words.
fn differences(file: &CoreParticulars, record: &PersonRow) -> Vec<String> {
    let shown = |v: Option<&str>| v.map_or_else(|| "(empty)".to_string(), str::to_string);
    let file_on = file.captured_on.to_string();
    [
        (
            "power",
            Some(file.power.as_str()),
            Some(record.power.as_str()),
        ),
        (
            "captured_on",
            Some(file_on.as_str()),
            Some(record.captured_on.as_str()),
        ),
        (
            "captured_at",
            file.captured_at.as_deref(),
            record.captured_at.as_deref(),
        ),
    ]
    .into_iter()
    .filter(|(_, here, there)| here != there)
    .map(|(field, here, there)| {
        format!(
            "{field} (this file: {}; registered: {})",
            shown(here),
            shown(there)
        )
    })
    .collect()
}

/// Bytes per row of an import file, about: a synthetic row is 111.
const BYTES_PER_ROW: u64 = 100;

impl<'r> Known<'r> {
    /// Whichever costs less for a file of `bytes` into `registry`: reading an id costs about
    /// what looking one up among a few hundred does (0.5 µs and 0.3 µs, 100,000 rows into a
    /// registry of a million, from `--timings`' validating stage), so the registry's ids are
    /// read when it has fewer than the file has rows, and the file's looked up otherwise. A
    /// small file into a large registry no longer reads a million ids first.
    fn choose(registry: &'r asylon_store::Registry, bytes: u64) -> Result<Self> {
        let rows = bytes / BYTES_PER_ROW;
        let ids = if registry.cases_given()? <= rows {
            Some(registry.external_ids()?)
        } else {
            None
        };
        Ok(Self { registry, ids })
    }

    /// For `--timings`: how the rows already registered were told.
    fn describe(&self) -> String {
        match &self.ids {
            Some(ids) => format!("{} external ids read first", ids.len()),
            None => "the file's external ids looked up".into(),
        }
    }

    /// Whether the row of external id `id` is a registered captive's, where the registry's ids
    /// were read first; `None` where they are looked up, a batch at a time.
    fn registered_now(&self, id: Option<&str>) -> Option<bool> {
        let all = self.ids.as_ref()?;
        Some(id.is_some_and(|id| all.contains(id)))
    }

    /// Those of `ids` that are registered.
    fn registered_among(&self, ids: &[&str]) -> Result<Registered> {
        Ok(match &self.ids {
            Some(all) => ids
                .iter()
                .filter(|id| all.contains(**id))
                .map(|id| (*id).to_string())
                .collect(),
            None => self.registry.registered_among(ids)?.into_iter().collect(),
        })
    }

    /// Takes the rows already registered out of `batch` (whose lines are `lines`), noting them
    /// in `registered` and comparing them with their records.
    fn drop_registered(
        &self,
        batch: &mut Vec<Registration>,
        lines: &[u64],
        registered: &mut Registered,
        differing: &mut Differing,
    ) -> Result<()> {
        let ids: Vec<&str> = batch.iter().filter_map(external_id).collect();
        let found = self.registered_among(&ids)?;
        if !found.is_empty() {
            let rows = lines.iter().copied().zip(batch.iter().map(|reg| &reg.core));
            differing.check(self.registry, &found, rows)?;
            batch.retain(|reg| !external_id(reg).is_some_and(|id| found.contains(id)));
            registered.extend(found);
        }
        Ok(())
    }

    /// Tells the kept rows of `untold`, hands those to register to the name reader and counts
    /// them in `to_register`.
    fn tell_kept(
        &self,
        untold: &mut Untold,
        (registered, differing): (&mut Registered, &mut Differing),
        to_register: &mut u64,
        kept: &std::sync::mpsc::Sender<ToRead>,
    ) -> Result<()> {
        let mut batch = std::mem::replace(&mut untold.kept, Vec::with_capacity(BATCH));
        self.drop_registered(&mut batch, &untold.kept_lines, registered, differing)?;
        untold.kept_lines.clear();
        *to_register += batch.len() as u64;
        if !batch.is_empty() {
            // The reader is gone only if it failed, which the write stage reports.
            let _ = kept.send(ToRead::Batch(batch, untold.last_line));
        }
        Ok(())
    }

    /// Tells the other rows of `untold`: subtracts from `to_register` those registered, and
    /// compares them with their records.
    fn tell_rest(
        &self,
        untold: &mut Untold,
        (registered, differing): (&mut Registered, &mut Differing),
        to_register: &mut u64,
    ) -> Result<()> {
        let ids: Vec<&str> = untold
            .rest
            .iter()
            .filter_map(|(_, c)| c.external_id.as_deref())
            .collect();
        let found = self.registered_among(&ids)?;
        let rows = untold.rest.iter().map(|(line, c)| (*line, c));
        differing.check(self.registry, &found, rows)?;
        *to_register = to_register.saturating_sub(found.len() as u64);
        registered.extend(found);
        untold.rest.clear();
        Ok(())
    }
}

/// Validates one row; `seen` maps external ids to the line that first used them.
fn check_row(
    rec: &csv::StringRecord,
    c: &Columns,
    now: OffsetDateTime,
    line: u64,
    seen: &mut Seen,
) -> Result<Registration, Vec<String>> {
    let input = row_input(rec, c);
    let mut problems = Vec::new();
    match &input.external_id {
        None => problems.push(
            "external_id: is required in an import (it lets a re-run skip what is done)"
                .to_string(),
        ),
        Some(id) => {
            if let Some(first) = seen.insert(id.clone(), line) {
                problems.push(format!("external_id: {id} is already used on line {first}"));
            }
        }
    }
    match input.validate(now) {
        Ok(reg) if problems.is_empty() => Ok(reg),
        Ok(_) => Err(problems),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            Err(problems)
        }
    }
}

/// The rows whose dates of birth make their captives children at capture, or maybe children
/// ([`asylon_core::age`]): nothing is refused for it (a child who fought is registered like any
/// captive), but the registrar is told, once the file is known valid, so that each is held apart
/// from adults, or his date of birth corrected if it was mistyped.
#[derive(Default)]
struct Children {
    count: u64,
    /// The first [`SHOWN_ERRORS`]: line, external id, age.
    shown: Vec<(u64, String, asylon_core::Age)>,
}

impl Children {
    fn note(&mut self, line: u64, reg: &Registration) {
        let Some(age) = reg.age_at_capture().filter(|a| a.childhood().is_some()) else {
            return;
        };
        self.count += 1;
        if self.shown.len() < SHOWN_ERRORS {
            let id = external_id(reg).unwrap_or_default().to_string();
            self.shown.push((line, id, age));
        }
    }

    fn tell(&self) {
        use asylon_core::age::{CHILD, UNDER_15};
        match self.count {
            0 => return,
            1 => eprintln!(
                "note: 1 row gives a captive who was under 18 at capture, or may have been:"
            ),
            n => eprintln!(
                "note: {n} rows give captives who were under 18 at capture, or may have been:"
            ),
        }
        for (line, id, age) in &self.shown {
            let label = age.childhood().map_or("", |c| c.label());
            eprintln!("note: line {line} ({id}): {age} at capture, {label}");
        }
        if self.count > self.shown.len() as u64 {
            eprintln!(
                "note: ... and {} more",
                self.count - self.shown.len() as u64
            );
        }
        eprintln!(
            "note: each is {CHILD}; one under 15: {UNDER_15}. Check each date of birth; \
             `asylon person show CASE` gives a captive's age at capture"
        );
    }
}

/// What a row whose service number is also another captive's is told, but for the first
/// words: how to register it if they are two men.
const TWO_MEN: &str = "if they are two men, import with --shared-service-number";

/// The service numbers of the file's valid rows, by power, and the line that first gave each
/// ([`asylon_store::service_number_key`]: the same letters and digits), each held as 128 bits
/// of two hashes seeded at random: no allocation per row, and about 32 bytes each where the
/// power and number as text took three times that. Two numbers whose hashes agree in all 128
/// bits are not told apart; nothing but chance makes them (the file is the registrar's own).
/// It is on the import's one serial path (docs/import-speed.md): about 0.03 s of validating's
/// 0.25 s for 100,000 rows.
#[derive(Default)]
struct SeenNumbers {
    lines: HashMap<u128, u64, foldhash::fast::RandomState>,
    hashes: [foldhash::fast::RandomState; 2],
}

/// The bit of a line in [`SeenNumbers`] that says its row is a registered captive's.
const REGISTERED_ROW: u64 = 1 << 63;

impl SeenNumbers {
    /// The line of the latest earlier row that gave the service number of `reg`, on `line`, for
    /// his power, if one did (see asylon_store's `SharedNumbers`), and whether that row was
    /// known to be a registered captive's; `registered`: whether this one is.
    fn repeated(&mut self, reg: &Registration, line: u64, registered: bool) -> Option<(u64, bool)> {
        use std::hash::{BuildHasher, Hasher};
        let number = reg.identity.service_number.as_deref()?;
        // `service_number_key`'s characters, hashed as they come.
        let key = || asylon_store::service_number_chars(number);
        key().next()?;
        let [a, b] = self.hashes.each_ref().map(|h| {
            let mut hasher = h.build_hasher();
            hasher.write(reg.core.power.as_bytes());
            key().for_each(|c| hasher.write_u32(u32::from(c)));
            u128::from(hasher.finish())
        });
        let noted = line | if registered { REGISTERED_ROW } else { 0 };
        let earlier = self.lines.insert(a << 64 | b, noted)?;
        Some((earlier & !REGISTERED_ROW, earlier & REGISTERED_ROW != 0))
    }
}

/// A row giving a service number an earlier row of the file gave for the same power: its line,
/// the earlier one's, and the power (shared: a file whose rows all give one number, "0" for
/// every man who did not give his, holds one of these for each row but the first).
struct Repeat {
    line: u64,
    first: u64,
    power: Rc<str>,
}

/// A problem found once the whole file was read, kept small until it is shown or written (a
/// file of a million rows that all give one number has a million of them).
enum Late {
    /// Line `first` gives the same service number for a captive who depends on `power` too.
    Repeat { first: u64, power: Rc<str> },
    /// The registered captive `case`, who depends on `power` too, has the same service number.
    Held { case: Rc<str>, power: Rc<str> },
}

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Repeat { first, power } => f.write_str(&repeat_problem(*first, power)),
            Self::Held { case, power } => write!(
                f,
                "service_number: {case} depends on {power} too and has the same service \
                 number: one captive listed twice? If this row is {case}, leave it out (add what \
                 his record lacks with `person amend {case}`); {TWO_MEN}"
            ),
        }
    }
}

/// Texts held once each, however often they are given.
type Interned = HashMap<String, Rc<str>>;

fn intern(held: &mut Interned, text: &str) -> Rc<str> {
    if let Some(text) = held.get(text) {
        return Rc::clone(text);
    }
    let shared: Rc<str> = text.into();
    held.insert(text.to_string(), Rc::clone(&shared));
    shared
}

/// What a row repeating line `first`'s service number for `power` is told.
fn repeat_problem(first: u64, power: &str) -> String {
    format!(
        "service_number: line {first} gives the same one, for a captive who also depends on \
         {power}: one captive listed twice? If so, leave one of the rows out; {TWO_MEN}"
    )
}

/// Tells the [`Repeat`]s once the whole file is read, as late problems. A row that is a
/// registered captive's own (skipped, as in a file imported again) is no problem of the file.
/// A row repeating the number of a registered captive's own row is told as his: the registry
/// holds that number, and the earlier row is not registered again; he is added to `named` (see
/// [`HeldNumbers::ask`]).
fn tell_repeats(
    repeats: Vec<Repeat>,
    seen: &Seen,
    known: &Known<'_>,
    (bad, named): (&mut Problems<'_>, &mut Vec<String>),
) -> Result<()> {
    if repeats.is_empty() {
        return Ok(());
    }
    // The lines asked about, in order (the repeats are, as the file is read).
    let mut firsts: Vec<u64> = repeats.iter().map(|r| r.first).collect();
    firsts.sort_unstable();
    firsts.dedup();
    let asked = |line: &u64| {
        repeats.binary_search_by_key(line, |r| r.line).is_ok() || firsts.binary_search(line).is_ok()
    };
    // A valid row's external id was first used on its own line (a second use is a problem).
    let mut id_of: Vec<(u64, &str)> = seen
        .iter()
        .filter(|(_, line)| asked(line))
        .map(|(id, line)| (*line, id.as_str()))
        .collect();
    id_of.sort_unstable();
    let id = |line: u64| {
        let at = id_of.binary_search_by_key(&line, |(l, _)| *l).ok()?;
        id_of.get(at).map(|(_, id)| *id)
    };
    let ids: Vec<&str> = id_of.iter().map(|(_, id)| *id).collect();
    let registered = known.registered_among(&ids)?;
    let firsts_registered: Vec<&str> = firsts
        .iter()
        .filter_map(|line| id(*line))
        .filter(|id| registered.contains(*id))
        .collect();
    // Their case numbers, each held once.
    let cases: HashMap<String, Rc<str>> = known
        .registry
        .persons_registered_as(&firsts_registered)?
        .into_iter()
        .filter_map(|row| Some((row.external_id?, row.case_no.as_str().into())))
        .collect();
    let mut told: HashSet<Rc<str>> = HashSet::new();
    for Repeat { line, first, power } in repeats {
        if id(line).is_some_and(|id| registered.contains(id)) {
            continue;
        }
        let problem = match id(first).and_then(|id| cases.get(id)) {
            Some(case) => {
                told.insert(Rc::clone(case));
                Late::Held {
                    case: Rc::clone(case),
                    power,
                }
            }
            None => Late::Repeat { first, power },
        };
        bad.add_late(line, problem);
    }
    named.extend(told.iter().map(|case| case.to_string()));
    Ok(())
}

/// The service numbers of the file's valid rows, asked of the registry once the whole file is
/// read: a row whose number a registered captive of the same power holds is a problem of the
/// file, unless the row is that captive's own (his external id: a file imported again). Each
/// row is held as its number's token, its line and a hash of its external id (24 bytes), and
/// all are asked at the end, in the index's order (see `Registry::service_token_holders`).
struct HeldNumbers<'r> {
    registry: &'r asylon_store::Registry,
    tokens: asylon_store::ServiceTokens,
    ids: foldhash::fast::RandomState,
    rows: Vec<(asylon_store::ServiceToken, u64, u64)>,
}

impl<'r> HeldNumbers<'r> {
    /// `None` where nothing is to be asked: shared numbers are allowed, or the registry has
    /// never registered anyone.
    fn new(registry: &'r asylon_store::Registry, shared: SharedNumbers) -> Result<Option<Self>> {
        let asks = shared == SharedNumbers::Refused && registry.cases_given()? > 0;
        Ok(asks.then(|| Self {
            registry,
            tokens: registry.service_tokens(),
            ids: foldhash::fast::RandomState::default(),
            rows: Vec::new(),
        }))
    }

    /// Notes a valid row, on `line`.
    fn note(&mut self, reg: &Registration, line: u64) {
        use std::hash::BuildHasher;
        let number = reg.identity.service_number.as_deref();
        if let Some(token) = number.and_then(|n| self.tokens.token(&reg.core.power, n)) {
            let id = self.ids.hash_one(external_id(reg));
            self.rows.push((token, line, id));
        }
    }

    /// Asks about the rows noted, adding a problem to `bad` for each whose number a captive of
    /// the registry holds (a late one: see [`Problems::add_late`]); gives the captives named,
    /// once for each row (`pass_one` sorts them once all are known).
    fn ask(self, bad: &mut Problems<'_>) -> Result<Vec<String>> {
        use std::hash::BuildHasher;
        let tokens: Vec<asylon_store::ServiceToken> = self.rows.iter().map(|r| r.0).collect();
        let holders = self.registry.service_token_holders(&tokens)?;
        let held: Vec<(u64, asylon_store::Holder)> = self
            .rows
            .iter()
            .zip(holders)
            .filter(|((_, _, id), holders)| {
                let own = |h: &asylon_store::Holder| {
                    h.external_id.is_some() && self.ids.hash_one(h.external_id.as_deref()) == *id
                };
                !holders.iter().any(own)
            })
            .filter_map(|((_, line, _), holders)| Some((*line, holders.into_iter().next()?)))
            .collect();
        let named: Vec<String> = held.iter().map(|(_, h)| h.case.clone()).collect();
        // Each case number and power held once, however many rows give his number.
        let (mut cases, mut powers) = (Interned::new(), Interned::new());
        for (line, h) in held {
            bad.add_late(
                line,
                Late::Held {
                    case: intern(&mut cases, &h.case),
                    power: intern(&mut powers, &h.power),
                },
            );
        }
        Ok(named)
    }
}

/// The registry an import of `file` registers into, opened for someone who may register, the
/// file's size and kind, and the report of its problems if one is asked for: all before the
/// file is read, so that a wrong key or a report that cannot be written is told before a long
/// validation pass.
fn open_for_import<'e>(
    r: &RegistryArgs,
    file: Source<'_>,
    errors: Option<&'e Path>,
) -> Result<(Registry, std::fs::Metadata, Option<ErrorReport<'e>>)> {
    let may = crate::commands::principal(r)?;
    asylon_core::policy::may(&may, None, asylon_core::policy::Action::Register)?;
    let registry = open(r)?;
    let meta =
        std::fs::metadata(file.path).with_context(|| format!("cannot open {}", file.display()))?;
    let report = errors.map(ErrorReport::create).transpose()?;
    Ok((registry, meta, report))
}

/// `import persons --check`: pass one alone. Every row is validated and every problem told,
/// and rows already registered are told apart, exactly as an import would; then what it would
/// do is said, and nothing is written.
pub fn check_persons(
    r: &RegistryArgs,
    file: Source<'_>,
    errors: Option<&Path>,
    shared: SharedNumbers,
) -> Result<()> {
    let (mut registry, meta, errors) = open_for_import(r, file, errors)?;
    let known = Known::choose(&registry, meta.len())?;
    // No row is kept for a stage after this pass: there is none.
    let (kept, _) = std::sync::mpsc::channel();
    let mut named = Vec::new();
    let now = now();
    let checked = pass_one(
        file,
        (meta.len(), now),
        (&known, shared, &mut named),
        0,
        &kept,
        errors,
    );
    drop(known);
    record_named(&mut registry, r, now, &named)?;
    let checked = checked?;
    let skipped = checked.rows - checked.to_register;
    say!(
        "checked {}: all {} rows are valid; importing it would register {} and skip {skipped} \
         already registered; nothing was registered",
        file.display(),
        checked.rows,
        checked.to_register
    )?;
    told_skipped(skipped, checked.differing, &checked.cols.optional())?;
    Ok(())
}

/// Records that the one running the import was told that `named` hold service numbers of the
/// file (see `Registry::record_service_number_match`).
fn record_named(
    registry: &mut Registry,
    r: &RegistryArgs,
    now: OffsetDateTime,
    named: &[String],
) -> Result<()> {
    if !named.is_empty() {
        registry.record_service_number_match(&actor(r), now, "import", named)?;
    }
    Ok(())
}

/// Says how many skipped rows differ from their records (each was told by pass one), and,
/// when the file has optional columns, that what they hold was not added to the captives
/// skipped (a file imported again with particulars added, which its author may expect to add).
fn told_skipped(skipped: u64, differing: u64, optional: &[&str]) -> Result<()> {
    if differing > 0 {
        say!(
            "{differing} of them {} from the registry (warnings above): an import does not \
             change {}; correct a record with `person amend`",
            if differing == 1 { "differs" } else { "differ" },
            if differing == 1 { "it" } else { "them" },
        )?;
    }
    if skipped > 0 && !optional.is_empty() {
        say!(
            "note: the {} of the captives skipped were neither compared with their records nor \
             added to them; add what a record lacks with `person amend`",
            optional.join(", ")
        )?;
    }
    Ok(())
}

pub fn persons(
    r: &RegistryArgs,
    file: Source<'_>,
    (keep_rows, timings): (u64, bool),
    errors: Option<&Path>,
    shared: SharedNumbers,
) -> Result<()> {
    let started = std::time::Instant::now();
    let now = now();
    let (mut registry, meta, errors) = open_for_import(r, file, errors)?;
    // The registry is asked about the file's service numbers as of now; the write watches for
    // anyone registering one of them from here on (see `Registry::register_stream`).
    let numbers_checked_at = match shared {
        SharedNumbers::Refused => Some(registry.events_written()?),
        SharedNumbers::Allowed => None,
    };
    let bytes = meta.len();
    // A pipe (`<(unzip -p …)`, `/dev/stdin`) gives its rows once: all are kept. Reading it
    // again gave nothing, and the rows past the kept ones were left out without a word.
    let keep_rows = if meta.is_file() { keep_rows } else { u64::MAX };
    let sealer = registry.sealer();
    let actor = actor(r);
    let mut registered = 0usize;
    let mut skipped = 0u64;
    let mut to_register = 0u64;
    let mut differing = 0u64;
    let mut optional: Vec<&str> = Vec::new();
    let failure: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    let stages = std::thread::scope(|scope| -> Result<Stages> {
        // Three stages after validation, each on its thread: read the names into blind-index
        // tokens; seal; write (the key store and the log, see register_stream). Reading names
        // needs neither a valid file nor case numbers, so it starts on the rows pass one keeps
        // while pass one is still validating the rest; if the file turns out invalid, what it
        // read is dropped.
        //
        // Pass one must never wait for the reader (which may be waiting for the sealer, which
        // starts after pass one): what it hands over is bounded by --keep-rows, so its channel
        // is unbounded; the reader's own output is bounded.
        let (to_read, reading) = std::sync::mpsc::channel::<ToRead>();
        let (give, to_seal) = std::sync::mpsc::sync_channel::<Read>(read_ahead(keep_rows));
        let (sealer, failure) = (&sealer, &failure);
        let names = scope.spawn(move || {
            let deliver = |batch: Vec<Registration>, last_line: u64| {
                let tokens = sealer.name_tokens(&batch);
                give.send(Ok((batch, tokens, last_line))).is_ok()
            };
            for item in reading {
                let going = match item {
                    ToRead::Batch(batch, last_line) => deliver(batch, last_line),
                    ToRead::Rest(cols, registered, kept_and_rows) => {
                        if let Err(e) =
                            read_batches(file, &cols, now, &registered, kept_and_rows, deliver)
                        {
                            let _ = give.send(Err(e));
                        }
                        false
                    }
                };
                if !going {
                    break;
                }
            }
            cpu::thread_cpu()
        });

        // Pass one: validate everything; the first rows' registrations go on to have their
        // names read, so that pass two need not read and validate them again.
        let mut named = Vec::new();
        let (checked, validating) = cpu::timed(|| {
            let known = Known::choose(&registry, bytes)?;
            Ok::<_, anyhow::Error>((
                pass_one(
                    file,
                    (bytes, now),
                    (&known, shared, &mut named),
                    keep_rows,
                    &to_read,
                    errors,
                )?,
                known.describe(),
            ))
        });
        record_named(&mut registry, r, now, &named)?;
        let (checked, told) = checked?;
        skipped = checked.rows - checked.to_register;
        to_register = checked.to_register;
        differing = checked.differing;
        optional = checked.cols.optional();
        if checked.rows > checked.kept {
            // The rows past the kept ones are read again, validated again and registered.
            let rest = (checked.kept, checked.rows);
            let _ = to_read.send(ToRead::Rest(checked.cols, checked.registered, rest));
        }
        drop(to_read);

        // Pass two: seal and write in committed batches. The case numbers are reserved now
        // that the file is known valid, and only now: sealing binds them into the ciphertext.
        let mut next_case = registry.reserve_cases(checked.to_register)?;
        let progress = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(checked.rows);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {human_pos}/{human_len} rows committed  {rate}  eta {eta}",
            ) {
                bar.set_style(style.with_key("rate", rows_per_second));
            }
            bar
        });
        let (send, batches) = std::sync::mpsc::sync_channel::<Batch>(SEALED_AHEAD);
        let sealing = scope.spawn(move || {
            for item in to_seal {
                let sealed = item.and_then(|(regs, tokens, last_line)| {
                    let first = next_case;
                    next_case += regs.len() as u64;
                    Ok((sealer.seal_with(first, regs, tokens)?, last_line))
                });
                let stop = sealed.is_err();
                if send.send(sealed).is_err() || stop {
                    break;
                }
            }
            cpu::thread_cpu()
        });
        let sealed = batches.into_iter().map_while(|msg| match msg {
            Ok(batch) => Some(batch),
            Err(e) => {
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(e);
                }
                None
            }
        });
        let (streamed, appending) = cpu::timed(|| {
            let by = (&actor, now);
            registry.register_stream(by, numbers_checked_at, sealed, |cases, last_line| {
                registered += cases.len();
                match &progress {
                    Some(bar) => bar.set_position(last_line - 1),
                    // With its output closed the import goes on: what it commits is what
                    // matters, and its end is told again by the registry.
                    None => {
                        let _ = say!("committed through line {last_line}: {registered} registered");
                    }
                }
            })
        });
        // Cleared whether the import ended or stopped: the summary or the error says how far it
        // got.
        if let Some(bar) = &progress {
            bar.finish_and_clear();
        }
        let stream = streamed.map_err(|e| stopped(e.into(), registered, to_register))?;
        Ok(Stages(
            [
                ("validating rows", validating),
                ("reading names", names.join().ok().flatten()),
                ("sealing", sealing.join().ok().flatten()),
                ("storing keys", stream.keys),
                ("appending to the log", appending),
                ("folding the log's WAL", stream.folding),
            ],
            told,
        ))
    })?;
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(stopped(e, registered, to_register));
    }
    say!(
        "imported {}: {registered} registered, {skipped} already registered and skipped",
        file.display()
    )?;
    told_skipped(skipped, differing, &optional)?;
    if timings {
        stages.print(started.elapsed())?;
    }
    Ok(())
}

/// An import that stopped while registering: why, then what it had committed (those captives
/// are registered, and stay so) and how to register the rest.
fn stopped(e: anyhow::Error, registered: usize, to_register: u64) -> anyhow::Error {
    let done = match registered {
        0 => "nothing was registered".to_string(),
        n => format!(
            "{n} of the {to_register} captives to register were committed before it stopped, \
             and are registered"
        ),
    };
    anyhow::anyhow!(
        "{e:#}\nthe import stopped: {done}; once the cause is mended, run the same import \
         again: it skips the captives already registered and registers the rest"
    )
}

/// CPU time of each stage of an import, each on its own thread, for `--timings`: where an
/// import's time goes, so that what makes one slow can be seen rather than guessed. `None`
/// where the platform does not tell (see [`cpu`]). Rows past `--keep-rows` are read and
/// validated again on the names' thread, and count there. The second field says how the rows
/// already registered were told (see [`Known`]): a part of validating's time that grows with
/// the registry.
struct Stages([(&'static str, Option<std::time::Duration>); 6], String);

impl Stages {
    fn print(&self, wall: std::time::Duration) -> Result<()> {
        let secs = |d: Option<std::time::Duration>| {
            d.map_or_else(
                || "n/a".to_string(),
                |d| format!("{:.3} s", d.as_secs_f64()),
            )
        };
        say!(
            "timings: {:.3} s in all; CPU time of each stage, on its own thread:",
            wall.as_secs_f64()
        )?;
        for (stage, spent) in &self.0 {
            say!("  {stage:<24}{:>10}", secs(*spent))?;
        }
        // The stages the platform told about (a registry on PostgreSQL has no WAL folder).
        let known: Vec<std::time::Duration> = self.0.iter().filter_map(|(_, d)| *d).collect();
        let all = (!known.is_empty()).then(|| known.iter().sum());
        say!("  {:<24}{:>10}", "all stages", secs(all))?;
        say!("already registered rows: {}", self.1)?;
        Ok(())
    }
}

/// What the name-reading stage is given: a batch of validated registrations with the line of
/// its last row, or the word to read the rest of the file (past the kept rows) itself.
enum ToRead {
    Batch(Vec<Registration>, u64),
    /// The rows past the kept ones, the external ids pass one found registered, and how many
    /// rows it kept and validated.
    Rest(Columns, Registered, (u64, u64)),
}
type Read = Result<(Vec<Registration>, NameTokens, u64)>;
type Batch = Result<(Vec<SealedRegistration>, u64)>;

/// What pass one found in a valid file.
struct Checked {
    cols: Columns,
    rows: u64,
    /// The first rows, whose registrations were handed on to have their names read.
    kept: u64,
    to_register: u64,
    /// The file's external ids that are registered already.
    registered: Registered,
    /// How many of them differ from their records (each told by pass one).
    differing: u64,
}

/// A bar's rate of rows, in whole rows a second (indicatif's own `per_sec` shows four
/// decimals).
fn rows_per_second(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} rows/s", state.per_sec());
}

/// What pass one shows on a terminal while it reads: how much of the file it has checked, how
/// many rows, and how many problems so far. Cleared when it is dropped; nothing when standard
/// error is no terminal.
struct Checking(Option<indicatif::ProgressBar>);

impl Checking {
    /// For a file of `bytes` (0 for a pipe, whose size is not known: then only the rows are
    /// counted).
    fn show(bytes: u64) -> Self {
        Self(std::io::stderr().is_terminal().then(|| {
            crate::passbar::styled(
                bytes,
                "{bar:40} {percent:>3}% checked: {msg}  eta {eta}",
                "{spinner} checked: {msg}",
            )
        }))
    }

    fn update(&self, bytes_read: u64, rows: u64, problems: u64) {
        let Some(bar) = &self.0 else { return };
        let rows = indicatif::HumanCount(rows);
        bar.set_message(match problems {
            0 => format!("{rows} rows"),
            1 => format!("{rows} rows, 1 problem"),
            n => format!("{rows} rows, {} problems", indicatif::HumanCount(n)),
        });
        bar.set_position(bytes_read.min(bar.length().unwrap_or(u64::MAX)));
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Pass one: reads and validates the whole file, reporting every bad row. While no row has
/// failed or repeated an earlier row's service number, the registrations of its first
/// `keep_rows` rows are handed to `kept` in batches. `named` gets the registered captives a
/// problem names as holding a row's service number, for the caller to record
/// ([`record_named`]), valid file or not.
fn pass_one(
    file: Source<'_>,
    (bytes, now): (u64, OffsetDateTime),
    (known, shared, named): (&Known<'_>, SharedNumbers, &mut Vec<String>),
    keep_rows: u64,
    kept: &std::sync::mpsc::Sender<ToRead>,
    errors: Option<ErrorReport<'_>>,
) -> Result<Checked> {
    let opened = crate::csvfile::Rows::open(file).and_then(|mut rdr| {
        let cols = Columns::from_header(rdr.headers()?)?;
        Ok((rdr, cols))
    });
    let (mut rdr, cols) = match opened {
        Ok(opened) => opened,
        Err(e) => return Err(ErrorReport::failed(errors, e)),
    };
    let mut seen = Seen::default();
    let mut numbers = (shared == SharedNumbers::Refused).then(SeenNumbers::default);
    let mut repeats = Vec::new();
    let mut kept_rows = 0u64;
    // The powers of `repeats`, each held once.
    let mut powers = Interned::new();
    let mut held = HeldNumbers::new(known.registry, shared)?;
    let mut bad = Problems::new(errors);
    let mut rows = 0u64;
    let mut to_register = 0u64;
    let mut registered = Registered::default();
    let mut differing = Differing::default();
    let mut children = Children::default();
    let mut untold = Untold {
        kept: Vec::with_capacity(BATCH),
        kept_lines: Vec::with_capacity(BATCH),
        last_line: 1,
        rest: Vec::new(),
    };
    let (progress, read) = (Checking::show(bytes), rdr.read_so_far());
    while let Some((line, rec)) = rdr.next_row() {
        rows += 1;
        if rows.is_multiple_of(BATCH as u64) {
            progress.update(read.bytes(), rows, bad.count);
        }
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                bad.add(line, format!("unreadable row: {e}"))?;
                continue;
            }
        };
        let reg = match check_row(rec, &cols, now, line, &mut seen) {
            Ok(reg) => reg,
            Err(problems) => {
                for problem in problems {
                    bad.add(line, problem)?;
                }
                continue;
            }
        };
        children.note(line, &reg);
        let repeated = numbers.as_mut().and_then(|n| {
            // Whether the row is a registered captive's, where that is known without asking.
            let own = known.registered_now(external_id(&reg));
            let (first, first_registered) = n.repeated(&reg, line, own == Some(true))?;
            Some((first, first_registered, own))
        });
        if let Some((first, first_registered, own)) = repeated {
            match own {
                // A registered captive's own row, skipped: no problem of the file.
                Some(true) => {}
                // Neither row is a registered captive's: told now, as the file is read.
                Some(false) if !first_registered => {
                    bad.add(line, repeat_problem(first, &reg.core.power))?;
                    continue;
                }
                // Told at the end: as a registered captive's number (whose case number is
                // asked then), or once it is known whether the row is a registered captive's.
                _ => {
                    let power = intern(&mut powers, &reg.core.power);
                    repeats.push(Repeat { line, first, power });
                }
            }
        }
        // A repeat is told against the earlier row (see `tell_repeats`), not asked again.
        if let (Some(held), None) = (&mut held, repeated) {
            held.note(&reg, line);
        }
        // Whether a row is registered already is asked a batch at a time. The first rows are
        // kept until a row has a problem, or repeats a number (the file is likely invalid: a
        // file whose rows all give "0" held them all, 0.5 GB for a million), unless every row
        // is to be kept (a pipe, which cannot be read again).
        let told = (&mut registered, &mut differing);
        let keeping = repeats.is_empty() || keep_rows == u64::MAX;
        if rows <= keep_rows && bad.is_empty() && keeping {
            kept_rows += 1;
            untold.kept.push(reg);
            untold.kept_lines.push(line);
            untold.last_line = line;
            if untold.kept.len() == BATCH {
                known.tell_kept(&mut untold, told, &mut to_register, kept)?;
            }
        } else if bad.is_empty() {
            to_register += 1;
            untold.rest.push((line, reg.core));
            if untold.rest.len() == BATCH {
                known.tell_rest(&mut untold, told, &mut to_register)?;
            }
        }
    }
    if let Some(held) = held {
        *named = held.ask(&mut bad)?;
    }
    tell_repeats(repeats, &seen, known, (&mut bad, named))?;
    named.sort_by(|a, b| asylon_core::law::by_case_number(a, b));
    named.dedup();
    drop(progress);
    if rows == 0 {
        let e = anyhow::anyhow!(
            "{} has a header but no rows; nothing was registered",
            file.display()
        );
        return Err(ErrorReport::failed(bad.report, e));
    }
    let report = bad.report.as_ref().map(|r| r.path);
    bad.finish()?;
    if !bad.is_empty() {
        for (line, problem) in &bad.shown {
            eprintln!("line {line}: {problem}");
        }
        if bad.count > bad.shown.len() as u64 {
            let all = match report {
                Some(path) => format!("all are in {}", path.display()),
                None => "--errors FILE writes all of them".into(),
            };
            eprintln!(
                "... and {} more problems ({all})",
                bad.count - bad.shown.len() as u64
            );
        }
        let unread = match rdr.stopped_at() {
            Some(line) => format!(
                " (the file could not be read past line {line}: the rows after it were not read)"
            ),
            None => String::new(),
        };
        bail!(
            "{} of {rows} rows are invalid{unread}; nothing was registered. Correct them and import the file again",
            bad.rows
        );
    }
    known.tell_kept(
        &mut untold,
        (&mut registered, &mut differing),
        &mut to_register,
        kept,
    )?;
    known.tell_rest(
        &mut untold,
        (&mut registered, &mut differing),
        &mut to_register,
    )?;
    for warning in &differing.shown {
        eprintln!("warning: {warning}");
    }
    if differing.count > differing.shown.len() as u64 {
        eprintln!(
            "warning: ... and {} more skipped rows differ from their records",
            differing.count - differing.shown.len() as u64
        );
    }
    children.tell();
    Ok(Checked {
        cols,
        rows,
        kept: kept_rows,
        to_register,
        registered,
        differing: differing.count,
    })
}

/// The problems pass one finds, in the order of the file. Each is written to the `--errors`
/// report as it is found and only the first [`SHOWN_ERRORS`] are kept, to be shown: a file of a
/// million bad rows once held every problem in memory until the end (279 MB for 1.67 million).
/// Those found once the whole file is read (the registry asked about its service numbers,
/// [`HeldNumbers`]) are held apart and put in their lines' places by [`Problems::finish`].
struct Problems<'a> {
    shown: Vec<(u64, String)>,
    /// Every problem so far.
    count: u64,
    /// The rows with a problem so far; a row's problems come one after the other.
    rows: u64,
    last_line: Option<u64>,
    report: Option<ErrorReport<'a>>,
    /// Problems of rows that were valid until the file was read whole, one a row.
    late: Vec<(u64, Late)>,
}

impl<'a> Problems<'a> {
    fn new(report: Option<ErrorReport<'a>>) -> Self {
        Self {
            shown: Vec::new(),
            count: 0,
            rows: 0,
            last_line: None,
            report,
            late: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn add(&mut self, line: u64, problem: String) -> Result<()> {
        if self.last_line != Some(line) {
            self.rows += 1;
            self.last_line = Some(line);
        }
        self.count += 1;
        if let Some(report) = &mut self.report {
            report.record(&line.to_string(), &problem)?;
        }
        if self.shown.len() < SHOWN_ERRORS {
            self.shown.push((line, problem));
        }
        Ok(())
    }

    /// A problem of `line`, a row that was valid until the whole file was read.
    fn add_late(&mut self, line: u64, problem: Late) {
        self.count += 1;
        self.rows += 1;
        self.late.push((line, problem));
    }

    /// Puts the late problems in their lines' places among those shown (the first
    /// [`SHOWN_ERRORS`] by line) and in the report, and writes out the report, if any: then
    /// every problem is in it, in the order of the lines.
    fn finish(&mut self) -> Result<()> {
        self.late.sort_by_key(|(line, _)| *line);
        if !self.late.is_empty() {
            // In the order of their lines: only the first few can be among those shown.
            let first = self.late.iter().take(SHOWN_ERRORS);
            self.shown
                .extend(first.map(|(line, problem)| (*line, problem.to_string())));
            // Stable: a line's problems stay in the order they were found.
            self.shown.sort_by_key(|(line, _)| *line);
            self.shown.truncate(SHOWN_ERRORS);
        }
        match self.report.take() {
            Some(report) => report.finish(&self.late),
            None => Ok(()),
        }
    }
}

/// The file `--errors` names, for every problem pass one finds, as CSV (`line,problem`): for
/// a list too long to read on a terminal to be mended row by row. Made before the file is read
/// (see [`open_for_import`]); a valid file leaves it with its header alone, so that an earlier
/// run's report is not taken for this one's; a file that cannot be read at all (its header, its
/// encoding) leaves that one problem, with no line.
struct ErrorReport<'a> {
    path: &'a Path,
    out: csv::Writer<std::fs::File>,
}

impl<'a> ErrorReport<'a> {
    fn create(path: &'a Path) -> Result<Self> {
        let made = csv::Writer::from_path(path).and_then(|mut out| {
            out.write_record(["line", "problem"])?;
            Ok(out)
        });
        let out = made.with_context(|| Self::cannot(path))?;
        Ok(Self { path, out })
    }

    fn cannot(path: &Path) -> String {
        format!("cannot write the problems to {}", path.display())
    }

    /// `e`, which stopped the file from being read at all (no line of it is to blame), as
    /// the report's one problem; `e` again.
    fn failed(report: Option<Self>, e: anyhow::Error) -> anyhow::Error {
        let written = report.map(|mut r| {
            r.record("", &format!("{e:#}"))?;
            r.finish(&[])
        });
        match written {
            Some(Err(w)) => anyhow::anyhow!("{e:#}\n{w:#}"),
            _ => e,
        }
    }

    fn record(&mut self, line: &str, problem: &str) -> Result<()> {
        let written = self.out.write_record([line, problem]);
        written.with_context(|| Self::cannot(self.path))
    }

    /// Writes out the report, with `late` (in the order of their lines) merged into the
    /// problems written as they were found, which are in that order too. Merging reads the
    /// report back into a new file beside it, renamed over it once whole: the problems found
    /// first were never all held in memory.
    fn finish(mut self, late: &[(u64, Late)]) -> Result<()> {
        let flushed = self.out.flush();
        flushed.with_context(|| Self::cannot(self.path))?;
        drop(self.out);
        if late.is_empty() {
            return Ok(());
        }
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".merging");
        let merging = self.path.with_file_name(name);
        let merged = Self::merge(self.path, &merging, late).and_then(|()| {
            std::fs::rename(&merging, self.path)?;
            Ok(())
        });
        if merged.is_err() {
            let _ = std::fs::remove_file(&merging);
        }
        merged.with_context(|| Self::cannot(self.path))
    }

    fn merge(path: &Path, to: &Path, late: &[(u64, Late)]) -> Result<()> {
        let mut found = csv::Reader::from_path(path)?;
        let mut out = csv::Writer::from_path(to)?;
        out.write_record(["line", "problem"])?;
        let mut late = late.iter().peekable();
        let mut write = |line: u64, problem: &dyn std::fmt::Display| {
            out.write_record([line.to_string(), problem.to_string()])
        };
        for record in found.records() {
            let record = record?;
            // Every line this report was given is a number (only a file that could not be read
            // at all has a problem with no line, and that one has no late problems).
            let line: u64 = record.get(0).unwrap_or_default().parse().unwrap_or(0);
            while let Some((l, problem)) = late.next_if(|(l, _)| *l < line) {
                write(*l, problem)?;
            }
            write(line, &record.get(1).unwrap_or_default())?;
        }
        late.try_for_each(|(l, problem)| write(*l, problem))?;
        out.flush()?;
        Ok(())
    }
}

/// Whether a row's captive is already registered (by its external id), so an import run again
/// skips him.
fn is_registered(reg: &Registration, existing: &Registered) -> bool {
    reg.core
        .external_id
        .as_ref()
        .is_some_and(|id| existing.contains(id))
}

/// Reads the (already validated) file again from its `from`-th row on and hands over batches of
/// registrations with the line of their last row; stops early when `deliver` returns false.
/// The file must hold the `rows` rows pass one validated, no fewer and no more: a file edited
/// in between, or one that cannot be read twice, is an error, not a shorter import.
fn read_batches(
    file: Source<'_>,
    cols: &Columns,
    now: OffsetDateTime,
    registered: &Registered,
    (from, rows): (u64, u64),
    deliver: impl Fn(Vec<Registration>, u64) -> bool,
) -> Result<()> {
    let mut rdr = crate::csvfile::Rows::open(file)?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_line = 1;
    let mut seen = Seen::default();
    let mut n = 0;
    while let Some((line, rec)) = rdr.next_row() {
        n += 1;
        if n <= from {
            continue;
        }
        if n > rows {
            bail!(
                "{} has more rows than when it was validated (line {line}): it changed during \
                 the import; import it again (the rows registered are skipped)",
                file.display()
            );
        }
        last_line = line;
        // The file was valid a moment ago; if it changed since, stop rather than guess.
        let rec = rec.map_err(|e| anyhow::anyhow!("line {line} changed during the import: {e}"))?;
        // Service numbers were compared by pass one, the whole file at once: rows from `from` on
        // alone would miss those shared with the rows before them.
        let reg = check_row(rec, cols, now, last_line, &mut seen).map_err(|p| {
            anyhow::anyhow!(
                "line {last_line} changed during the import: {}",
                p.join("; ")
            )
        })?;
        if is_registered(&reg, registered) {
            continue;
        }
        batch.push(reg);
        if batch.len() == BATCH
            && !deliver(
                std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                last_line,
            )
        {
            return Ok(());
        }
    }
    if !batch.is_empty() && !deliver(batch, last_line) {
        return Ok(());
    }
    if n < rows {
        bail!(
            "{} ended after {n} of the {rows} rows validated when it was read again: it changed \
             during the import, or cannot be read twice; import it again (the rows registered \
             are skipped)",
            file.display()
        );
    }
    Ok(())
}

/// The service number of the `i`-th captive of a synthetic file of seed `seed`: nine digits, a
/// different one for each row of a file (the registry refuses a number given twice for one
/// power, as an army gives each soldier his own). The row's index, moved by an offset drawn from
/// the seed, times a number prime to 10⁹, modulo 10⁹: one to one, not in the rows' order, and
/// files of two seeds (two lists of other men) share a number only where their offsets fall
/// within a file's length of each other (for files of a million rows, about one pair of seeds in
/// five hundred).
fn synth_service_number(seed: u64, i: usize) -> String {
    const MODULUS: u64 = 1_000_000_000;
    // SplitMix64's finaliser: seeds next to each other get offsets far apart.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let offset = (z ^ (z >> 31)) % MODULUS;
    let i = (i as u64 + offset) % MODULUS;
    format!("{:09}", i * 482_713_373 % MODULUS)
}

/// Writes an import CSV of `count` synthetic captives (see `asylon_names::synth`).
pub fn synth_persons(count: usize, seed: u64, out: Option<&Path>) -> Result<()> {
    let sink: Box<dyn std::io::Write> = match out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    w.write_record(HEADER)?;
    let mut rng = synth::Rng::new(seed);
    for i in 0..count {
        let c = synth::captive(&mut rng);
        let id = format!("SYN-{seed}-{i:07}");
        let number = c
            .service_number
            .as_ref()
            .map(|_| synth_service_number(seed, i));
        w.write_record([
            id.as_str(),
            &c.names.join("|"),
            c.date_of_birth.as_deref().unwrap_or(""),
            c.rank.as_deref().unwrap_or(""),
            number.as_deref().unwrap_or(""),
            "KP",
            &c.captured_on,
            &c.captured_at,
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_service_numbers_repeat_neither_in_a_file_nor_between_the_benchmarks_files() {
        // The benchmarks import 100,000 of seed 42 into a registry of a million of seed 7
        // (scripts/ab-import with ASYLON_BENCH_BASE): a number of both would be refused.
        let imported: HashSet<String> = (0..100_000).map(|i| synth_service_number(42, i)).collect();
        assert_eq!(imported.len(), 100_000);
        assert!(imported.iter().all(|n| n.len() == 9));
        let base = (0..1_000_000).map(|i| synth_service_number(7, i));
        assert_eq!(base.filter(|n| imported.contains(n)).count(), 0);
        // Seeds next to each other (scripts/bench-proofs: 42, then 43) are as far apart.
        assert!((0..100_000).all(|i| !imported.contains(&synth_service_number(43, i))));
    }

    #[test]
    fn reading_the_rest_again_requires_the_rows_validated_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.csv");
        let mut text = HEADER.join(",") + "\n";
        for i in 0..5 {
            text += &format!("R-{i},Kim Chol,2001,private,,KP,2025-01-09,\n");
        }
        std::fs::write(&file, text).unwrap();
        let source = Source {
            path: &file,
            encoding: None,
            option: "--encoding",
        };
        let mut rows = crate::csvfile::Rows::open(source).unwrap();
        let cols = Columns::from_header(rows.headers().unwrap()).unwrap();
        let now = time::macros::datetime!(2026-01-01 12:00 UTC);
        let read = |validated: u64| {
            let got = std::sync::Mutex::new(Vec::new());
            let res = read_batches(
                source,
                &cols,
                now,
                &Registered::default(),
                (2, validated),
                |batch, last| {
                    got.lock().unwrap().push((batch.len(), last));
                    true
                },
            );
            (res.map_err(|e| e.to_string()), got.into_inner().unwrap())
        };
        assert_eq!(read(5), (Ok(()), vec![(3, 6)]));
        let (res, got) = read(4);
        assert!(
            res.unwrap_err()
                .contains("has more rows than when it was validated (line 6)")
        );
        assert!(got.is_empty(), "{got:?}");
        let (res, got) = read(7);
        assert!(
            res.unwrap_err()
                .contains("ended after 5 of the 7 rows validated")
        );
        assert_eq!(got, [(3, 6)]);
    }

    #[test]
    fn the_names_queue_holds_the_kept_rows_within_its_floor_and_ceiling() {
        assert_eq!(read_ahead(KEPT_ROWS), 250);
        assert_eq!(read_ahead(250_001), 251);
        assert_eq!(read_ahead(0), READ_AHEAD);
        assert_eq!(read_ahead(u64::MAX), READ_AHEAD_MAX);
    }

    #[test]
    fn problems_found_once_the_file_is_read_take_their_lines_places() {
        let held = |line: u64| Late::Held {
            case: format!("AS-{line:06}").into(),
            power: "KP".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("problems.csv");
        let mut bad = Problems::new(Some(ErrorReport::create(&path).unwrap()));
        // More problems than are shown, on even lines; then late ones on odd lines, one before
        // the first, some among them, one after the last.
        for line in (4..4 + 2 * SHOWN_ERRORS as u64).step_by(2) {
            bad.add(line, format!("of line {line}")).unwrap();
        }
        for line in [
            3,
            7,
            5,
            2 * SHOWN_ERRORS as u64 + 1,
            2 * SHOWN_ERRORS as u64 + 9,
        ] {
            bad.add_late(line, held(line));
        }
        // A repeated number is told in the same words wherever it is shown.
        let power: Rc<str> = "KP".into();
        bad.add_late(9, Late::Repeat { first: 4, power });
        bad.finish().unwrap();
        assert_eq!(
            (bad.count, bad.rows),
            (SHOWN_ERRORS as u64 + 6, SHOWN_ERRORS as u64 + 6)
        );
        let lines = |shown: &[(u64, String)]| -> Vec<u64> { shown.iter().map(|p| p.0).collect() };
        let shown = lines(&bad.shown);
        assert_eq!(shown.len(), SHOWN_ERRORS);
        assert_eq!(shown[..8], [3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(shown.is_sorted());
        assert_eq!(bad.shown[0].1, held(3).to_string());
        assert!(bad.shown[0].1.contains("AS-000003 depends on KP too"));
        assert_eq!(bad.shown[6].1, repeat_problem(4, "KP"));
        let mut report = csv::Reader::from_path(&path).unwrap();
        let written: Vec<(u64, String)> = report
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].parse().unwrap(), r[1].to_string())
            })
            .collect();
        assert_eq!(written.len(), SHOWN_ERRORS + 6, "every problem, once");
        assert!(lines(&written).is_sorted(), "{written:?}");
        assert_eq!(written[0], (3, held(3).to_string()));
        assert_eq!(written[1], (4, "of line 4".to_string()));
        assert_eq!(written[6], (9, repeat_problem(4, "KP")));
        let last = 2 * SHOWN_ERRORS as u64 + 9;
        assert_eq!(written[SHOWN_ERRORS + 5], (last, held(last).to_string()));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing left beside the report");
    }

    #[test]
    fn problems_are_written_as_found_and_only_the_first_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("problems.csv");
        let mut bad = Problems::new(Some(ErrorReport::create(&path).unwrap()));
        assert!(bad.is_empty());
        // 300 rows, every other one with two problems.
        for line in 2..302u64 {
            bad.add(line, format!("first of line {line}")).unwrap();
            if line.is_multiple_of(2) {
                bad.add(line, format!("second of line {line}")).unwrap();
            }
        }
        assert!(!bad.is_empty());
        assert_eq!(bad.shown.len(), SHOWN_ERRORS);
        bad.finish().unwrap();
        let Problems {
            shown, count, rows, ..
        } = bad;
        assert_eq!((count, rows), (450, 300));
        assert_eq!(shown[0], (2, "first of line 2".to_string()));
        assert_eq!(shown[1], (2, "second of line 2".to_string()));
        assert_eq!(shown[2], (3, "first of line 3".to_string()));
        let written = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 451, "the header and every problem");
        assert_eq!(lines[0], "line,problem");
        assert_eq!(lines[450], "301,first of line 301");
    }
}
