//! One function per command: parse what is needed, call the registry, print.

use crate::RegistryArgs;
use crate::output::{self, JsonArray, counted, event_line, parse_checkpoint, person_text, stream};
use anyhow::{Context, Result, anyhow, bail};
use asylon_core::input::NotAnObject;
use asylon_core::law::{Principal, Role};
use asylon_core::policy::{Action, may};
use asylon_core::{Actor, Class, RegistrationInput};
use asylon_store::json::{CheckpointJson, EventJson};
use asylon_store::{KeySource, Registry, SharedNumbers, StoreError, default_key_file};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub fn data_dir(r: &RegistryArgs) -> Result<PathBuf> {
    r.data_dir
        .clone()
        .ok_or_else(|| anyhow!("no registry given: pass --data-dir DIR or set ASYLON_DATA_DIR"))
}

fn key_source(r: &RegistryArgs, dir: &Path) -> Result<KeySource> {
    match &r.passphrase_env {
        Some(var) => {
            let p = Zeroizing::new(std::env::var(var).map_err(|_| {
                anyhow!("the environment variable {var} named by --passphrase-env is not set")
            })?);
            if p.is_empty() {
                bail!("the environment variable {var} is empty");
            }
            Ok(KeySource::Passphrase(p))
        }
        None => Ok(KeySource::File(
            r.key_file.clone().unwrap_or_else(|| default_key_file(dir)),
        )),
    }
}

/// Where the records are: SQLite in the data directory, or PostgreSQL with --database.
pub fn database(r: &RegistryArgs) -> asylon_store::Database {
    match &r.database {
        Some(url) => asylon_store::Database::Postgres {
            url: url.clone(),
            schema: r.db_schema.clone(),
        },
        None => asylon_store::Database::Sqlite,
    }
}

pub fn open(r: &RegistryArgs) -> Result<Registry> {
    let dir = data_dir(r)?;
    let mut registry = Registry::open_in(&dir, &database(r), &key_source(r, &dir)?)?;
    registry.set_purge_wait(std::time::Duration::from_secs(r.purge_wait));
    Ok(registry)
}

/// Who is acting. Until accounts exist (the server), the user named by --user, or the
/// operating-system user, with the organisation and roles given on the command line.
pub fn actor(r: &RegistryArgs) -> Actor {
    let user = r
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "operator".into());
    Actor {
        user,
        org: r.org.clone(),
    }
}

/// The acting user as the policy sees him: organisation and roles from the command line.
pub fn principal(r: &RegistryArgs) -> Result<Principal> {
    let roles = r
        .roles
        .iter()
        .map(|name| {
            serde_json::from_value::<Role>(serde_json::Value::String(name.trim().to_string()))
                .map_err(|_| anyhow!("unknown role {name:?}: give admin, registrar, interviewer, medical, legal, liaison, auditor or analyst"))
        })
        .collect::<Result<Vec<_>>>()?;
    let org = &r.org;
    if !asylon_core::policy::is_org_id(org) {
        return Err(anyhow!(
            "unknown organisation {org:?}: give detaining, neutral or receiving:XX, with XX a state's ISO 3166 code (KR)"
        ));
    }
    let a = actor(r);
    Ok(Principal {
        user: a.user,
        org: a.org,
        roles,
    })
}

/// Asks the one policy function whether the acting user may do `action`.
fn allowed(r: &RegistryArgs, action: Action<'_>) -> Result<()> {
    Ok(may(&principal(r)?, None, action)?)
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn init(r: &RegistryArgs) -> Result<()> {
    let dir = data_dir(r)?;
    let key = key_source(r, &dir)?;
    let reg = Registry::init_in(&dir, &database(r), &key, &actor(r), now())?;
    say!("created registry {} in {}", reg.origin(), dir.display())?;
    match key {
        KeySource::File(p) => say!(
            "key file: {} (keep a copy off this machine; without it the sealed data is lost)",
            p.display()
        )?,
        KeySource::Passphrase(_) => {
            say!("key: derived from the passphrase with Argon2id (it is stored nowhere)")?
        }
    }
    say!(
        "signing key id: {}",
        asylon_vault::key_id(&reg.public_key())
    )?;
    Ok(())
}

/// Reads a text file, or standard input for `-`, without the byte-order mark Windows editors
/// put at the start of UTF-8 files (JSON parsers refuse it as "expected value at line 1"). The
/// text may be a captive's particulars: it is wiped from memory when dropped.
pub(crate) fn read_input(file: &Path) -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        let mut f =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        f.read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Reads one JSON object from `file` (or standard input for `-`) as `what` ("the particulars"),
/// whose shape `doc` documents. An empty input or one that is not an object is told as such,
/// rather than as serde's "EOF while parsing" or as every field of the object missing.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    file: &Path,
    what: &str,
    doc: &str,
) -> Result<T> {
    let text = read_input(file)?;
    let from = if file == Path::new("-") {
        "standard input".to_string()
    } else {
        file.display().to_string()
    };
    match asylon_core::input::json_object(text.as_bytes()) {
        Err(NotAnObject::Empty) => {
            bail!("{from} is empty: give {what} as one JSON object (see {doc})")
        }
        Ok(json) => serde_json::from_slice(json)
            .map_err(|e| anyhow!("{what}: not valid JSON of the expected shape (see {doc}): {e}")),
        Err(NotAnObject::Other) => {
            bail!("{what} must be one JSON object, {{…}} (see {doc}); {from} holds something else")
        }
    }
}

pub fn register(r: &RegistryArgs, file: &Path, shared: SharedNumbers) -> Result<()> {
    let input: RegistrationInput = read_json(file, "the particulars", "docs/particulars.md")?;
    let now = now();
    let reg = input.validate(now).map_err(StoreError::Invalid)?;
    allowed(r, Action::Register)?;
    let mut registry = open(r)?;
    let age = reg.age_at_capture();
    let cases = registry.register_with(&actor(r), now, vec![reg], shared)?;
    for c in cases {
        say!("{c}")?;
        child_note(&c, age);
    }
    Ok(())
}

/// Tells whoever registers or corrects `case` that he was a child at capture, or maybe
/// (docs/particulars.md, "A child at capture"); on standard error, as standard output is what
/// scripts read (a registration's case number alone).
fn child_note(case: &str, age: Option<asylon_core::Age>) {
    if let Some(age) = age
        && let Some(law) = age.child()
    {
        eprintln!("note: {case} was {age} at capture: {law}");
    }
}

pub fn show(r: &RegistryArgs, case: &str, json: bool, particulars: bool) -> Result<()> {
    let mut registry = open(r)?;
    if particulars {
        let p = registry.particulars_as(&principal(r)?, now(), case)?;
        say!("{}", serde_json::to_string_pretty(&p)?)?;
        return Ok(());
    }
    let view = registry.show_person(&principal(r)?, now(), case)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&view)?)?;
    } else {
        say_on!("{}", person_text(&view))?;
    }
    Ok(())
}

pub fn list(r: &RegistryArgs, json: bool) -> Result<()> {
    // The whole list is for the organisations that hold every case; a receiving state asks
    // about the captives referred to it one by one (`person status`).
    allowed(r, Action::Read(Class::Identity))?;
    let registry = open(r)?;
    // Written as read: a list of a million captives is never held whole.
    let read = |each: &mut dyn FnMut(_) -> _| registry.each_person(each);
    if json {
        let mut array = JsonArray::new(output::stdout());
        stream(read, |p| array.push(&p))?;
        return array.finish();
    }
    let mut out = output::stdout();
    let mut n = 0;
    stream(read, |p| {
        n += 1;
        Ok(writeln!(
            out,
            "{}  {:<10}  {}  captured {}  {}",
            p.case_no,
            p.status.as_str(),
            p.power,
            p.captured_on,
            p.external_id.as_deref().unwrap_or("")
        )?)
    })?;
    writeln!(out, "{}", counted(n, "captive", "captives"))?;
    Ok(out.flush()?)
}

pub fn search(r: &RegistryArgs, name: &str, limit: usize, json: bool) -> Result<()> {
    if !asylon_store::searchable(name) {
        bail!(
            "{name:?} cannot be read as a Korean name (Hangul, Latin or Cyrillic letters) and is \
             not written in Hanja"
        );
    }
    allowed(r, Action::Read(Class::Identity))?;
    let mut registry = open(r)?;
    let hits = registry.search(&principal(r)?, now(), name, limit)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&hits)?)?;
        return Ok(());
    }
    for h in &hits {
        let p = registry.person(&h.case_no)?;
        say!(
            "{}  {:.2}  {}  captured {}",
            h.case_no,
            h.score,
            p.status.as_str(),
            p.captured_on
        )?;
    }
    if hits.is_empty() {
        say!("no captive matches")?;
        return Ok(());
    }
    let told = if hits.len() == limit {
        format!("the best {limit} shown; there may be more (--limit)")
    } else {
        format!(
            "{} {}",
            counted(hits.len(), "captive", "captives"),
            match hits.len() {
                1 => "matches",
                _ => "match",
            }
        )
    };
    say!("{told}; open one with `person show CASE` (that read is recorded)")?;
    Ok(())
}

pub fn amend(
    r: &RegistryArgs,
    case: &str,
    (file, shared): (&Path, SharedNumbers),
    reason: &str,
) -> Result<()> {
    let input: RegistrationInput = read_json(file, "the particulars", "docs/particulars.md")?;
    let mut registry = open(r)?;
    let settings = asylon_store::load_settings(&data_dir(r)?)?;
    let who = principal(r)?;
    let done = registry.amend_as(&who, now(), &settings, case, (&input, shared), reason)?;
    say!(
        "{case} corrected (event {}); the corrected record is owed to the neutral agency (Art 122)",
        done.seq
    )?;
    for s in &done.suspended {
        say!("suspended {} (G1): {}", s.movement, s.reason)?;
    }
    child_note(case, done.age_at_capture);
    Ok(())
}

pub fn erase(r: &RegistryArgs, case: &str, reason: &str) -> Result<()> {
    let mut registry = open(r)?;
    let erased = registry.erase_as(&principal(r)?, now(), case, reason)?;
    say!(
        "{case} erased (event {}): his data keys are destroyed",
        erased.seq
    )?;
    purged(r, erased.purge, ("his keys", "the erasure"))?;
    Ok(())
}

pub fn events(r: &RegistryArgs, person: Option<&str>, json: bool) -> Result<()> {
    allowed(r, Action::Read(Class::Identity))?;
    let registry = open(r)?;
    if let Some(p) = person {
        registry.person(p)?;
    }
    // Written as read: a log of millions of events is never held whole.
    let read = |each: &mut dyn FnMut(_) -> _| registry.each_event(person, each);
    if json {
        let mut array = JsonArray::new(output::stdout());
        stream(read, |e| array.push(&EventJson::new(&e)))?;
        return array.finish();
    }
    let mut out = output::stdout();
    stream(read, |e| Ok(writeln!(out, "{}", event_line(&e))?))?;
    Ok(out.flush()?)
}

pub fn checkpoint(r: &RegistryArgs) -> Result<()> {
    let registry = open(r)?;
    let cp = registry.checkpoint(now())?;
    say!(
        "{}",
        serde_json::to_string_pretty(&CheckpointJson::new(&cp, &registry.public_key()))?
    )?;
    Ok(())
}

pub fn verify(r: &RegistryArgs, checkpoint: Option<&Path>) -> Result<()> {
    let registry = open(r)?;
    let earlier = match checkpoint {
        Some(path) => Some(parse_checkpoint(&read_input(path)?)?),
        None => None,
    };
    let bar = crate::passbar::PassBar::on_terminal();
    let report = registry.verify_showing(earlier.as_ref(), &bar)?;
    drop(bar);
    say!(
        "ok: {} events, root {}, {}; every event matches its MAC, the signed head and the projection",
        report.size,
        report.root,
        counted(report.persons, "captive", "captives")
    )?;
    if let Some(n) = report.extends_checkpoint {
        say!("ok: the log extends the checkpoint of size {n} (consistency proof verified)")?;
    }
    print_without_keys(&report)?;
    Ok(())
}

/// Registered captives whose keys the key store does not hold, if any, and a purge of its
/// files still due.
fn print_without_keys(report: &asylon_store::VerifyReport) -> Result<()> {
    if report.keys_purge_due {
        say!(
            "note: the key store's files may still hold a copy of keys an erasure destroyed (its \
             purge was held back by another process reading the key store, or stopped): run \
             `asylon purge-keys`"
        )?;
    }
    if !report.without_keys.is_empty() {
        say!(
            "note: no keys in the key store for {} (erased after this copy of the registry was \
             made, or the key store is older than their registration: restore with a newer \
             one; or an interrupted erasure: run `person erase` again to record it)",
            report.without_keys.join(", ")
        )?;
    }
    Ok(())
}

pub fn prove(r: &RegistryArgs, target: &str, checkpoint: Option<&Path>) -> Result<()> {
    let at = checkpoint.map(size_of).transpose()?;
    let registry = open(r)?;
    let seq = match target.parse::<u64>() {
        Ok(seq) => seq,
        // All digits, but past any sequence number: not a case number either.
        Err(_) if target.bytes().all(|b| b.is_ascii_digit()) => {
            bail!("no event with sequence number {target}")
        }
        Err(_) => registry.person(target)?.registered_seq,
    };
    let proof = registry.prove(seq, at)?;
    say!("{}", serde_json::to_string_pretty(&proof)?)?;
    Ok(())
}

pub fn consistency(r: &RegistryArgs, from: &Path, to: Option<&Path>) -> Result<()> {
    let old = size_of(from)?;
    let new = to.map(size_of).transpose()?;
    let registry = open(r)?;
    let proof = registry.prove_consistency(old, new)?;
    say!("{}", serde_json::to_string_pretty(&proof)?)?;
    Ok(())
}

/// The size of the log a checkpoint file signs (whether it is this registry's is for the one
/// checking the proof to tell: `ledger check`).
fn size_of(checkpoint: &Path) -> Result<u64> {
    let cp = parse_checkpoint(&read_input(checkpoint)?)
        .with_context(|| checkpoint.display().to_string())?;
    Ok(cp.size)
}

pub fn backup(r: &RegistryArgs, out: &Path, keys_out: Option<&Path>) -> Result<()> {
    let registry = open(r)?;
    let bar = crate::passbar::PassBar::on_terminal();
    let report = registry.backup(out, keys_out, &bar)?;
    drop(bar);
    say!(
        "backup written to {}: {} events, root {} (ciphertext only: no data key, no KEK)",
        out.display(),
        report.events,
        report.root
    )?;
    if let Some(k) = keys_out {
        say!(
            "key store written to {} (wrapped data keys: keep it like the key file)",
            k.display()
        )?;
    }
    Ok(())
}

pub fn restore(r: &RegistryArgs, file: &Path, keys: &Path) -> Result<()> {
    let dir = data_dir(r)?;
    let key = match (&r.passphrase_env, &r.key_file) {
        (None, None) if !default_key_file(&dir).exists() => {
            bail!("give the registry's key with --key-file FILE or --passphrase-env VAR")
        }
        _ => key_source(r, &dir)?,
    };
    let bar = crate::passbar::PassBar::on_terminal();
    let restored = Registry::restore_in(file, keys, &dir, &database(r), &key, &bar)?;
    drop(bar);
    let report = &restored.report;
    say!(
        "restored {} into {}: {} events, root {}, {} — verified",
        file.display(),
        dir.display(),
        report.size,
        report.root,
        counted(report.persons, "captive", "captives")
    )?;
    print_without_keys(report)?;
    print_shredded(r, &restored.shredded)?;
    print_reindexed(&restored.reindexed)?;
    // The key file is not copied (it is kept apart from the data): say how the restored
    // registry opens, or every next command fails for want of DIR/registry.key.
    if let (None, Some(file)) = (&r.passphrase_env, &r.key_file)
        && *file != default_key_file(&dir)
    {
        say!(
            "key: it opens with the key file {}: give it with --key-file (or ASYLON_KEY_FILE) \
             to every command",
            file.display()
        )?;
    }
    Ok(())
}

/// The erased captives whose data keys were still in the key store, now destroyed.
fn print_shredded(r: &RegistryArgs, shredded: &asylon_store::Shredded) -> Result<()> {
    if !shredded.cases.is_empty() {
        say!(
            "erasures applied to the key store: it still held the data keys of {}, erased in \
             the log; they are destroyed",
            shredded.cases.join(", ")
        )?;
    }
    purged(r, shredded.purge, ("their keys", "they were destroyed"))
}

/// Fails, after the rest is said, when destroyed keys may still be in the key store's files:
/// the erasure's promise (nothing of them left anywhere) is not kept until `purge-keys` has run.
/// `(what, since)`: the keys in question, and what the other process began before.
fn purged(r: &RegistryArgs, purge: asylon_store::Purge, (what, since): (&str, &str)) -> Result<()> {
    match purge {
        asylon_store::Purge::Complete => Ok(()),
        asylon_store::Purge::HeldBack => bail!(
            "the key store's files may still hold a copy of {what}: another process has been \
             reading the key store since before {since}, for more than {} s (a backup being \
             copied, a long query); once it has ended, run `asylon purge-keys`",
            r.purge_wait
        ),
    }
}

/// `asylon purge-keys`: what an erasure's purge would have done, for every destroyed key.
pub fn purge_keys(r: &RegistryArgs) -> Result<()> {
    let registry = open(r)?;
    purged(
        r,
        registry.purge_keys()?,
        ("keys erasures destroyed", "this purge"),
    )?;
    say!("the key store's files hold no copy of any destroyed key")?;
    Ok(())
}

/// What a rebuild found in the projection: whether every captive's row was as the events make
/// it, and if not, whose was not and how (the first [`NAMED`] of each kind).
fn print_rebuilt(done: &asylon_store::Rebuilt) -> Result<()> {
    use asylon_store::Correction;
    let captives = counted(done.captives, "captive", "captives");
    if done.corrected.is_empty() && done.unnamed == 0 {
        say!(
            "rebuilt the projection from the events: {captives}, each row already as they \
             make it"
        )?;
        return Ok(());
    }
    let mut what = Vec::new();
    for (how, told) in [
        (Correction::Differed, "differed, corrected"),
        (Correction::Missing, "missing, written"),
        (Correction::Unregistered, "registered by no event, removed"),
    ] {
        let cases: Vec<&str> = done
            .corrected
            .iter()
            .filter(|(_, h)| *h == how)
            .map(|(c, _)| c.as_str())
            .collect();
        if !cases.is_empty() {
            what.push(format!("{} {told}", named(&cases)));
        }
    }
    if done.unnamed > 0 {
        what.push(format!(
            "{} with no readable case number, removed",
            counted(done.unnamed, "row", "rows")
        ));
    }
    say!(
        "rebuilt the projection from the events: {captives}; rows not as the events make them: {}",
        what.join("; ")
    )?;
    Ok(())
}

/// Case numbers shown at most in a line of a rebuild's report; the rest are counted.
const NAMED: usize = 20;

/// `cases` joined, the first [`NAMED`] of them, and how many more.
fn named<S: AsRef<str>>(cases: &[S]) -> String {
    let shown = cases
        .iter()
        .take(NAMED)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    match cases.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// What a check of the name index against the records did, in a line naming each captive whose
/// index entries it replaced.
fn print_reindexed(done: &asylon_store::Reindexed) -> Result<()> {
    say!("{}", reindexed_line(done))?;
    Ok(())
}

/// The line of [`print_reindexed`]: the captives whose entries were replaced are named as a
/// rebuild names corrected rows, at most [`NAMED`] and the rest counted, so that a key store
/// damaged throughout does not print a line of a million case numbers.
fn reindexed_line(done: &asylon_store::Reindexed) -> String {
    let checked = counted(done.checked, "captive", "captives");
    let mut line = match done.replaced.len() {
        0 => {
            format!("name index: {checked} checked, each indexed under the names his record gives")
        }
        n => {
            let (was, his, is, gives) = if n == 1 {
                ("was", "his record does", "is", "it gives")
            } else {
                ("were", "their records do", "are", "they give")
            };
            format!(
                "name index: {checked} checked; {} {was} indexed under names {his} not give, and \
                 {is} now indexed under those {gives}",
                named(&done.replaced)
            )
        }
    };
    if !done.numbered.is_empty() {
        let (numbers, were, they, are) = match done.numbered.len() {
            1 => ("number of", "was", "he was", "is"),
            _ => ("numbers of", "were", "they were", "are"),
        };
        line.push_str(&format!(
            "; the service {numbers} {} {were} not indexed ({they} registered before service \
             numbers were) and now {are}",
            named(&done.numbered)
        ));
    }
    line
}

/// `--from`/`--to` of migrate-store: a data directory (SQLite) or a postgres:// URL.
fn location(r: &RegistryArgs, spec: &str) -> (Option<PathBuf>, asylon_store::Database) {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let db = asylon_store::Database::Postgres {
            url: spec.to_string(),
            schema: r.db_schema.clone(),
        };
        (None, db)
    } else {
        (Some(PathBuf::from(spec)), asylon_store::Database::Sqlite)
    }
}

/// Moves a registry between backends, its log intact; the key file and settings are those of
/// --data-dir (or of --from when it is a directory).
pub fn migrate_store(r: &RegistryArgs, from: &str, to: &str) -> Result<()> {
    let (from_dir, from_db) = location(r, from);
    let (to_dir, to_db) = location(r, to);
    let home = r
        .data_dir
        .clone()
        .or_else(|| from_dir.clone())
        .ok_or_else(|| anyhow!("give --data-dir: the directory of the key file and settings"))?;
    let key = key_source(r, &home)?;
    let source = Registry::open_in(from_dir.as_deref().unwrap_or(&home), &from_db, &key).map_err(
        |e| match e {
            // The registry to move is missing: creating one there is not what is wanted.
            StoreError::NoRegistry { place, .. } => {
                anyhow!("no registry in {place} to move (--from); nothing was written")
            }
            e => e.into(),
        },
    )?;
    let bar = crate::passbar::PassBar::on_terminal();
    let before = source.verify_showing(None, &bar)?;
    let target_dir = to_dir.unwrap_or_else(|| home.clone());
    if target_dir != home && !target_dir.join("settings.toml").exists() {
        std::fs::create_dir_all(&target_dir)?;
        let settings = home.join("settings.toml");
        if settings.exists() {
            std::fs::copy(&settings, target_dir.join("settings.toml"))?;
        }
    }
    let (_moved, after) = source.move_to(&target_dir, &to_db, &key, &bar)?;
    drop(bar);
    say!(
        "moved {} events and {} from {from} to {to}; root {} on both — verified",
        after.size,
        counted(after.persons, "captive", "captives"),
        after.root
    )?;
    if before.root != after.root {
        bail!(
            "the roots differ: {} before, {} after",
            before.root,
            after.root
        );
    }
    Ok(())
}

pub fn rebuild(r: &RegistryArgs) -> Result<()> {
    let mut registry = open(r)?;
    let bar = crate::passbar::PassBar::on_terminal();
    let rebuilt = registry.rebuild_showing(&bar)?;
    bar.clear();
    print_rebuilt(&rebuilt)?;
    // From the projection just rebuilt: which captives are erased.
    print_shredded(r, &registry.shred_erased()?)?;
    let reindexed = registry.reindex_names_showing(&bar)?;
    drop(bar);
    print_reindexed(&reindexed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rebuilds_report_names_twenty_cases_of_a_kind_and_counts_the_rest() {
        let cases: Vec<String> = (1..=23).map(|n| format!("AS-{n:06}")).collect();
        assert_eq!(super::named(&cases[..2]), "AS-000001, AS-000002");
        let shown = super::named(&cases);
        assert!(
            shown.starts_with("AS-000001, AS-000002, ")
                && shown.ends_with("AS-000019, AS-000020 and 3 more"),
            "{shown}"
        );
        assert!(!shown.contains("AS-000021"), "{shown}");
    }

    #[test]
    fn the_name_index_line_names_twenty_replaced_captives_and_counts_the_rest() {
        let cases = |numbers: Vec<u32>| -> Vec<String> {
            numbers.into_iter().map(|n| format!("AS-{n:06}")).collect()
        };
        let line = |checked, replaced: Vec<u32>| {
            super::reindexed_line(&asylon_store::Reindexed {
                checked,
                replaced: cases(replaced),
                numbered: Vec::new(),
            })
        };
        assert_eq!(
            line(3, vec![]),
            "name index: 3 captives checked, each indexed under the names his record gives"
        );
        assert_eq!(
            line(3, vec![2]),
            "name index: 3 captives checked; AS-000002 was indexed under names his record does \
             not give, and is now indexed under those it gives"
        );
        let many = line(1000, (1..=1000).collect());
        assert!(
            many.starts_with("name index: 1000 captives checked; AS-000001, AS-000002, ")
                && many.contains("AS-000020 and 980 more were indexed under names their records")
                && many.ends_with("are now indexed under those they give"),
            "{many}"
        );
        assert!(!many.contains("AS-000021"), "{many}");
        // Service numbers added to the index of a registry made before they were indexed, told
        // apart from names replaced, and cut the same way.
        let numbered = |replaced: Vec<u32>, numbered: Vec<u32>| {
            super::reindexed_line(&asylon_store::Reindexed {
                checked: 1000,
                replaced: cases(replaced),
                numbered: cases(numbered),
            })
        };
        assert_eq!(
            numbered(vec![], vec![7]),
            "name index: 1000 captives checked, each indexed under the names his record gives; \
             the service number of AS-000007 was not indexed (he was registered before service \
             numbers were) and now is"
        );
        let both = numbered(vec![3], (1..=1000).collect());
        assert!(
            both.contains("AS-000003 was indexed under names his record does not give")
                && both.contains("; the service numbers of AS-000001, ")
                && both.ends_with(
                    "AS-000020 and 980 more were not indexed (they were registered before \
                     service numbers were) and now are"
                ),
            "{both}"
        );
    }
}
