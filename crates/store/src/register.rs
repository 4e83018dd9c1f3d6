//! Registration, in two steps that can run on different threads: sealing (validation is done,
//! data keys made and wrapped, identity and family encrypted) and writing (one transaction per
//! batch). Case numbers are reserved first, so sealing, which binds the case number into every
//! ciphertext, does not need the write lock.

use crate::StoreError;
use crate::db::{Sql, Tx, Val, args, is_unique_violation};
use crate::keystore::{IndexTable, KeyStore};
use crate::registry::{Log, NewEvent, Registry, meta_need, meta_put, new_id};
use crate::service::{NumbersGiven, ServiceToken, SharedNumbers, StreamWatch};
use asylon_core::{Actor, Class, CoreParticulars, FieldError, Registration, SealedPart, kind};
use asylon_vault::{BlindIndexKey, DataKey, Kek, key_label, seal_aad};
use std::collections::HashSet;
use time::OffsetDateTime;

/// A registration ready to be written: nothing in it is plaintext except the public part.
pub struct SealedRegistration {
    case: String,
    id: String,
    core: CoreParticulars,
    public: String,
    parts: Vec<SealedPart>,
    identity_key: Option<Vec<u8>>,
    family_key: Option<Vec<u8>>,
    /// Blind-index tokens of his names and service number.
    tokens: Vec<[u8; 16]>,
    /// What the blind index keeps of his service number, if he gave one.
    service: Option<ServiceToken>,
}

impl SealedRegistration {
    pub(crate) fn service_token(&self) -> Option<ServiceToken> {
        self.service
    }

    pub(crate) fn external_id(&self) -> Option<&str> {
        self.core.external_id.as_deref()
    }
}

/// Seals registrations with the registry's KEK; can be moved to another thread.
pub struct Sealer {
    kek: Kek,
    blind: BlindIndexKey,
}

/// What every case number starts with. The key store's second migration strips it by length.
pub(crate) const CASE_PREFIX: &str = "AS-";

pub fn case_number(n: u64) -> String {
    format!("{CASE_PREFIX}{n:06}")
}

/// A case number as a person may type it (`as-17`, `AS-0017`, ` AS-000017 `) as the registry
/// writes it (`AS-000017`); `None` for anything else.
pub fn parse_case_number(typed: &str) -> Option<String> {
    let typed = typed.trim();
    let digits = typed
        .get(..CASE_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(CASE_PREFIX))
        .and_then(|_| typed.get(CASE_PREFIX.len()..))?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n > 0).then(|| case_number(n))
}

/// What a person typed as a case number, as the registry writes it when it is one
/// ([`parse_case_number`]); anything else as typed, for the caller to say it knows no such case.
pub fn case_as_typed(typed: &str) -> String {
    parse_case_number(typed).unwrap_or_else(|| typed.to_string())
}

/// The number of a case number made by [`case_number`], as the blind index stores it.
pub(crate) fn case_index(case: &str) -> Option<i64> {
    let digits = case.strip_prefix(CASE_PREFIX)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The blind-index tokens of a batch's names, one list per registration, made apart from the
/// sealing so that the two can run on different threads (reading names is the larger part).
pub struct NameTokens(Vec<crate::search::IdentityTokens>);

impl Sealer {
    /// Seals `regs` as cases `first`, `first + 1`, …
    pub fn seal(
        &self,
        first: u64,
        regs: Vec<Registration>,
    ) -> Result<Vec<SealedRegistration>, StoreError> {
        let tokens = self.name_tokens(&regs);
        self.seal_with(first, regs, tokens)
    }

    /// Reads the names of `regs` into blind-index tokens, and adds each one's service number's.
    pub fn name_tokens(&self, regs: &[Registration]) -> NameTokens {
        NameTokens(
            regs.iter()
                .map(|r| crate::search::tokens_and_number(&self.blind, &r.identity, &r.core.power))
                .collect(),
        )
    }

    /// [`Sealer::seal`] with the batch's tokens already made by [`Sealer::name_tokens`]. Takes
    /// the registrations whole: their public particulars move into the sealed batch.
    pub fn seal_with(
        &self,
        first: u64,
        regs: Vec<Registration>,
        tokens: NameTokens,
    ) -> Result<Vec<SealedRegistration>, StoreError> {
        if tokens.0.len() != regs.len() {
            return Err(StoreError::Damaged(
                "name tokens were made for another batch".into(),
            ));
        }
        let damaged = |e: serde_json::Error| StoreError::Damaged(e.to_string());
        let mut out = Vec::with_capacity(regs.len());
        for ((n, reg), (tokens, service)) in (first..).zip(regs).zip(tokens.0) {
            let case = case_number(n);
            let id = new_id();
            let identity = crate::plain::identity_bytes(&reg.identity)?;
            let family = (!reg.family.is_empty())
                .then(|| crate::plain::family_bytes(&reg.family))
                .transpose()?;
            let seal = |class: Class, plain: &[u8], parts: &mut Vec<SealedPart>| {
                let dk = DataKey::generate();
                parts.push(SealedPart {
                    class,
                    ciphertext: dk.seal(&seal_aad(&case, class.as_str(), &id), plain),
                });
                self.kek.wrap(&key_label(&case, class.as_str()), &dk)
            };
            let mut parts = Vec::with_capacity(2);
            let identity_key = Some(seal(Class::Identity, &identity, &mut parts));
            let family_key = family.map(|f| seal(Class::Family, &f, &mut parts));
            out.push(SealedRegistration {
                tokens,
                service: service.as_ref().map(ServiceToken::of),
                public: serde_json::to_string(&reg.core).map_err(damaged)?,
                core: reg.core,
                case,
                id,
                parts,
                identity_key,
                family_key,
            });
        }
        Ok(out)
    }
}

fn no_repeated_external_ids<'a>(
    ids: impl Iterator<Item = Option<&'a String>>,
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for ext in ids.flatten() {
        if !seen.insert(ext) {
            return Err(StoreError::Invalid(vec![FieldError {
                field: "external_id".into(),
                reason: format!("{ext} appears twice in one registration batch"),
            }]));
        }
    }
    Ok(())
}

/// The case numbers and external ids of a batch, kept for its failure report.
struct BatchIds {
    cases: Vec<String>,
    external_ids: Vec<Option<String>>,
}

impl BatchIds {
    fn of(batch: &[SealedRegistration]) -> Self {
        Self {
            cases: batch.iter().map(|s| s.case.clone()).collect(),
            external_ids: batch.iter().map(|s| s.core.external_id.clone()).collect(),
        }
    }
}

/// Appends a batch's registration events, once `first` has run inside the append's
/// transaction (and not failed): a stream's keys are already stored; a single write's are
/// stored by `first`.
fn append_registrations(
    log: &Log<'_>,
    actor: &Actor,
    now: OffsetDateTime,
    batch: Vec<SealedRegistration>,
    first: impl FnOnce(&dyn Sql, &[SealedRegistration]) -> Result<(), StoreError>,
) -> Result<Vec<String>, StoreError> {
    let written = log.append(actor, now, move |db| {
        first(db, &batch)?;
        Ok(batch
            .into_iter()
            .map(|s| NewEvent {
                id: s.id,
                person: Some(s.case),
                kind: kind::PERSON_REGISTERED.into(),
                public: s.public,
                sealed: s.parts,
                registered: Some(s.core),
            })
            .collect())
    })?;
    Ok(written.into_iter().filter_map(|e| e.person).collect())
}

/// Captives whose keys the key store writes in one transaction when registering a stream.
const KEYS_PER_COMMIT: usize = 10_000;
/// Batches of a stream the log appends between two folds of its WAL.
const CHECKPOINT_EVERY: usize = 4;
/// Batches of a stream after which the log waits for its WAL to be folded entirely. SQLite
/// writes a WAL from its start again only when a write transaction begins with nothing left to
/// fold; the folds running beside the log never catch up with it, so without this wait the WAL
/// grows to the size of all that is imported (85 MB for 100,000 captives), written into new file
/// space throughout and deleted at the end. With it, 13 MB. `scripts/ab-import`, nine rounds
/// against a build that never waits (this constant above any import's batch count): wall
/// 3.63 -> 3.44 s, system time 0.94 -> 0.83 s; every 8 batches did as well, every 4 or 32 less
/// well.
const RESTART_EVERY: usize = 16;
/// Asks the WAL-folding thread to fold and say when it is done.
type Folded = std::sync::mpsc::SyncSender<()>;
/// Batches keyed and waiting for the log, at most: one transaction's worth and a little more,
/// so that the key store does not run far ahead of the log and take the CPU it needs.
const KEYED_AHEAD: usize = 12;

/// CPU time of the threads a stream of registrations ran on besides the caller's, which appends
/// to the log (see [`crate::cpu`]); `None` where it cannot be read.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamCpu {
    /// The key store's writer.
    pub keys: Option<std::time::Duration>,
    /// The thread folding the log's WAL back into its database, if there was one.
    pub folding: Option<std::time::Duration>,
}

/// The key store's side of [`Registry::register_stream`]: stores the keys of the stream's
/// batches, several batches per transaction, and hands each batch on to the log once its keys
/// are committed, until the stream ends or `stop` is raised.
fn store_keys<T>(
    keys: &mut KeyStore,
    mut batches: impl Iterator<Item = (Vec<SealedRegistration>, T)>,
    send: &std::sync::mpsc::SyncSender<(Vec<SealedRegistration>, T)>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), StoreError> {
    // Into an empty index, the stream's commits rewrite only its own pages, as they would in
    // the table for imports, and the fold would be a copy of all of them for nothing. A build
    // that always writes `Recent` (this condition made false), against this one,
    // `ROUNDS=9 scripts/ab-import`, 100,000 into a new registry: wall 1.24 / 1.13 s.
    let index = if keys.index_is_empty()? {
        IndexTable::Main
    } else {
        IndexTable::Recent
    };
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let mut group = Vec::new();
        let mut n = 0;
        while n < KEYS_PER_COMMIT
            && let Some(item) = batches.next()
        {
            n += item.0.len();
            group.push(item);
        }
        if group.is_empty() {
            break;
        }
        for (batch, _) in &group {
            no_repeated_external_ids(batch.iter().map(|s| s.core.external_id.as_ref()))?;
        }
        keys.store(group.iter().flat_map(|(batch, _)| batch), index)?;
        let mut group = group.into_iter();
        while let Some(item) = group.next() {
            // The log drains this channel until this thread ends, so a send fails
            // only if the log is gone: nothing keyed from here on will be written.
            if let Err(unsent) = send.send(item) {
                let cases: Vec<String> = std::iter::once(unsent.0)
                    .chain(group)
                    .flat_map(|(batch, _)| BatchIds::of(&batch).cases)
                    .collect();
                keys.forget(&cases)?;
                return Ok(());
            }
        }
    }
    // Every batch is keyed: the stream's index rows join the main index now, beside the log's
    // last appends. A stream that stopped early, or a fold that failed, leaves them where they
    // are, searchable, for the next stream to fold: nothing is lost, so a failed fold is not the
    // stream's failure.
    if index == IndexTable::Recent && !stop.load(std::sync::atomic::Ordering::Acquire) {
        let _ = keys.fold_recent();
    }
    // The key store is done while the log still has batches to append: fold its WAL
    // back and empty it now, on this thread, rather than when it is closed, on the
    // main thread, after the log (`scripts/ab-import`, nine rounds against the same
    // code without this fold: the tail of an import of 100,000 captives fell from 154
    // to 42 ms).
    // A failed fold loses nothing: the close folds what is left.
    let _ = keys.conn.truncate_wal();
    Ok(())
}

impl KeyStore {
    /// Writes registrations' wrapped keys, and their name tokens into `index`, in one
    /// transaction.
    fn store<'r>(
        &mut self,
        regs: impl Iterator<Item = &'r SealedRegistration>,
        index: IndexTable,
    ) -> Result<(), StoreError> {
        let batch: Vec<&SealedRegistration> = regs.collect();
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        let tokens: Vec<Vec<u8>> = batch
            .iter()
            .map(|s| crate::search::join_tokens(&s.tokens))
            .collect();
        let keys: Vec<Vec<Val<'_>>> = batch
            .iter()
            .zip(&tokens)
            .map(|(s, t)| {
                args![&s.case, s.identity_key.as_ref(), s.family_key.as_ref(), t].to_vec()
            })
            .collect();
        db.insert_many(
            "data_keys (person, identity, family, name_tokens)",
            4,
            &keys,
        )?;
        // In the index's own order: its tokens are random, and inserting them sorted walks its
        // B-tree once from end to end instead of jumping about it for every row.
        let mut pairs: Vec<(&[u8], i64)> = Vec::new();
        for s in &batch {
            let number = case_index(&s.case)
                .ok_or_else(|| StoreError::Damaged(format!("{} is not a case number", s.case)))?;
            pairs.extend(s.tokens.iter().map(|t| (crate::search::indexed(t), number)));
        }
        pairs.sort_unstable();
        let rows: Vec<Vec<Val<'_>>> = pairs
            .into_iter()
            .map(|(t, number)| args![t, number].to_vec())
            .collect();
        db.insert_many(&format!("{} (token, person)", index.name()), 2, &rows)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes keys stored for registrations that were then not written.
    fn forget(&mut self, cases: &[String]) -> Result<(), StoreError> {
        self.delete_persons(cases, false).map(drop)
    }
}

/// The number the next case will be given: one more than every case number given so far.
pub(crate) fn next_case(db: &dyn Sql) -> Result<u64, StoreError> {
    let next = meta_need(db, "next_case")?;
    <[u8; 8]>::try_from(next.as_slice())
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Damaged("the case number counter is unreadable".into()))
}

impl Registry {
    pub fn sealer(&self) -> Sealer {
        Sealer {
            kek: self.keys.kek.duplicate(),
            blind: self.keys.kek.blind_index_key(),
        }
    }

    /// Reserves `n` consecutive case numbers and returns the first. Case numbers are unique and
    /// increasing; a reservation that is never used (a crash) leaves a gap, never a reuse.
    pub fn reserve_cases(&mut self, n: u64) -> Result<u64, StoreError> {
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        let first = next_case(db)?;
        let next = first
            .checked_add(n)
            .filter(|&next| i64::try_from(next).is_ok())
            .ok_or_else(|| {
                StoreError::Damaged(format!(
                    "the case number counter ({first}) leaves no room for {n} more cases"
                ))
            })?;
        meta_put(db, "next_case", &next.to_be_bytes())?;
        tx.commit()?;
        Ok(first)
    }

    /// Writes sealed registrations in one transaction, refusing the first whose service number
    /// (of `given`) a captive of the registry holds; returns their case numbers in order.
    fn register_sealed(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        batch: Vec<SealedRegistration>,
        given: &NumbersGiven,
    ) -> Result<Vec<String>, StoreError> {
        no_repeated_external_ids(batch.iter().map(|s| s.core.external_id.as_ref()))?;
        let ids = BatchIds::of(&batch);
        let (log, keys) = self.split();
        let written = append_registrations(&log, actor, now, batch, |db, batch| {
            // Under the log's write lock, so that no other writer registers one of these
            // numbers between this check and the commit (see `NumbersGiven`).
            given.held(db, keys, None)?;
            // Keys first, in the key store: a crash after this commit leaves keys no event
            // refers to (harmless); the reverse would leave sealed data no key opens.
            keys.store(batch.iter(), IndexTable::Main)
        });
        written.map_err(|e| self.not_appended(e, &ids))
    }

    /// Writes a stream of sealed batches, each in its own transaction in the log, calling
    /// `committed` with each batch's case numbers and tag once its events are committed. The key
    /// store writes the keys on a thread of its own, ahead of the log, so the two databases work
    /// at once; a batch's keys always commit before its events. It stores several batches per
    /// transaction: the blind index's tokens are random, so every commit rewrites pages all over
    /// its B-tree, and fewer, larger commits rewrite far fewer. The first failure stops the
    /// stream; keys stored for batches not written are taken back.
    ///
    /// `numbers_checked_at`: the log's size when the caller asked the registry about the
    /// stream's service numbers; from then on the stream watches for another writer, and asks
    /// again about the numbers of each batch it appends once it has seen one (see
    /// [`StreamWatch`]). `None` where shared numbers are allowed.
    pub fn register_stream<T: Send>(
        &mut self,
        (actor, now): (&Actor, OffsetDateTime),
        numbers_checked_at: Option<u64>,
        batches: impl Iterator<Item = (Vec<SealedRegistration>, T)> + Send,
        mut committed: impl FnMut(&[String], T),
    ) -> Result<StreamCpu, StoreError> {
        let (log, keys) = self.split();
        let mut watch = match numbers_checked_at {
            Some(at) => StreamWatch::new(at, keys)?,
            None => None,
        };
        // The log's WAL is folded back into its database on a thread of its own, every few
        // batches, rather than by the log's own commits: the log is the import's slowest stage.
        let checkpointer = log.conn.checkpointer()?;
        if checkpointer.is_some() {
            log.conn.set_auto_checkpoint(false)?;
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (outcome, keys_outcome, not_written, cpu) = std::thread::scope(|scope| {
            let (appended, appends) = std::sync::mpsc::channel::<Option<Folded>>();
            let folding = checkpointer.is_some();
            let folder = checkpointer.map(|side| {
                scope.spawn(move || {
                    for (n, wait) in appends.iter().enumerate() {
                        if wait.is_some() || (n + 1) % CHECKPOINT_EVERY == 0 {
                            // A failed fold loses nothing: the commits are in the WAL, and the
                            // next fold (here, or the log's own once restored) takes them.
                            let _ = side.checkpoint();
                        }
                        if let Some(done) = wait {
                            let _ = done.send(());
                        }
                    }
                    crate::cpu::thread_cpu()
                })
            });
            let (send, keyed) =
                std::sync::mpsc::sync_channel::<(Vec<SealedRegistration>, T)>(KEYED_AHEAD);
            let stop = &stop;
            let keys_thread = scope.spawn(move || {
                let stored = store_keys(keys, batches, &send, stop);
                (stored, crate::cpu::thread_cpu())
            });
            let mut outcome = Ok(());
            let mut not_written = Vec::new();
            let mut appends = 0usize;
            // Runs until the key store's thread ends, so that every batch it keyed is either
            // appended or listed for its keys to be taken back.
            for (batch, tag) in keyed.iter() {
                if outcome.is_err() {
                    not_written.extend(BatchIds::of(&batch).cases);
                    continue;
                }
                let ids = BatchIds::of(&batch);
                let watched = |db: &dyn Sql, batch: &[SealedRegistration]| match &mut watch {
                    Some(watch) => watch.check(db, batch),
                    None => Ok(()),
                };
                match append_registrations(&log, actor, now, batch, watched) {
                    Ok(_) => {
                        committed(&ids.cases, tag);
                        appends += 1;
                        if folding && appends.is_multiple_of(RESTART_EVERY) {
                            // Wait for the fold of everything committed so far: the next
                            // transaction then finds the WAL folded and writes it again from
                            // its start (see RESTART_EVERY).
                            let (done, folded) = std::sync::mpsc::sync_channel(1);
                            if appended.send(Some(done)).is_ok() {
                                let _ = folded.recv();
                            }
                        } else {
                            let _ = appended.send(None);
                        }
                    }
                    Err(e) => {
                        outcome = Err((e, ids));
                        stop.store(true, std::sync::atomic::Ordering::Release);
                    }
                }
            }
            drop(appended);
            let (keys_outcome, keys_cpu) = keys_thread.join().unwrap_or_else(|_| {
                (
                    Err(StoreError::Damaged("the key store writer stopped".into())),
                    None,
                )
            });
            let cpu = StreamCpu {
                keys: keys_cpu,
                folding: folder.and_then(|f| f.join().ok().flatten()),
            };
            (outcome, keys_outcome, not_written, cpu)
        });
        let restored = self.conn.set_auto_checkpoint(true);
        if !not_written.is_empty() {
            // Keys left behind here are harmless (no event refers to them, search skips unknown
            // cases); the failure that stopped the stream is the one to report.
            let _ = self.keys.forget(&not_written);
        }
        match outcome {
            Ok(()) => keys_outcome.and(restored).map(|()| cpu),
            Err((e, ids)) => {
                let e = self.not_appended(e, &ids);
                Err(self.told(actor, now, "import", e))
            }
        }
    }

    /// A batch whose append failed: its keys are taken back, and a unique-constraint failure
    /// is reported as the external id already registered.
    fn not_appended(&mut self, e: StoreError, ids: &BatchIds) -> StoreError {
        // Keys left behind if this fails are harmless: no event refers to them.
        let _ = self.keys.forget(&ids.cases);
        if is_unique_violation(&e) {
            let ext: Vec<Option<&str>> = ids.external_ids.iter().map(Option::as_deref).collect();
            // Telling which is the refusal's detail: if that fails, the refusal stands.
            return self.duplicate_external_id(&ext).ok().flatten().unwrap_or(e);
        }
        e
    }

    /// What [`Registry::register_with`] of `regs` would refuse besides their validation, which
    /// is done: an external id twice among them, or one already registered (the first, and as
    /// whom); a service number twice among them or already held, for the same power, unless
    /// `shared` allows it (see [`SharedNumbers`]). Nothing is written.
    /// A refusal that names a registered captive as holding a service number is recorded as
    /// `actor`'s (see [`Registry::record_service_number_match`]).
    pub fn check_registrations(
        &mut self,
        (actor, now): (&Actor, OffsetDateTime),
        regs: &[Registration],
        shared: SharedNumbers,
    ) -> Result<(), StoreError> {
        self.checked((actor, now), regs, shared).map(drop)
    }

    /// [`Registry::check_registrations`], giving the service numbers checked, to be asked
    /// again inside the write's transaction.
    fn checked(
        &mut self,
        (actor, now): (&Actor, OffsetDateTime),
        regs: &[Registration],
        shared: SharedNumbers,
    ) -> Result<NumbersGiven, StoreError> {
        no_repeated_external_ids(regs.iter().map(|r| r.core.external_id.as_ref()))?;
        let ext: Vec<Option<&str>> = regs.iter().map(|r| r.core.external_id.as_deref()).collect();
        if let Some(refused) = self.duplicate_external_id(&ext)? {
            return Err(refused);
        }
        let held = self.numbers_given(regs, shared).and_then(|given| {
            given.held(&*self.conn, &self.keys, None)?;
            Ok(given)
        });
        held.map_err(|e| self.told(actor, now, "registration", e))
    }

    /// Registers validated captives in one transaction and returns their case numbers in order;
    /// refuses one whose service number another captive of the same power holds (see
    /// [`SharedNumbers`]).
    pub fn register(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        regs: Vec<Registration>,
    ) -> Result<Vec<String>, StoreError> {
        self.register_with(actor, now, regs, SharedNumbers::Refused)
    }

    /// [`Registry::register`], allowing shared service numbers or not. Whatever it refuses is
    /// refused before a case number is taken (a captive registered again under his external
    /// id is told so, not that his service number is held); only a service number registered
    /// by another writer in the moment between that check and the write is refused after.
    pub fn register_with(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        regs: Vec<Registration>,
        shared: SharedNumbers,
    ) -> Result<Vec<String>, StoreError> {
        let given = self.checked((actor, now), &regs, shared)?;
        let first = self.reserve_cases(regs.len() as u64)?;
        let sealed = self.sealer().seal(first, regs)?;
        let written = self.register_sealed(actor, now, sealed, &given);
        written.map_err(|e| self.told(actor, now, "registration", e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::KeySource;
    use asylon_core::{Art17Field, RegistrationInput, particulars::NameInput};

    #[test]
    fn case_numbers_are_read_as_people_type_them() {
        for typed in [
            "AS-000017",
            "as-17",
            "As-0017",
            " AS-17\n",
            "aS-000000000000000017",
        ] {
            assert_eq!(
                parse_case_number(typed).as_deref(),
                Some("AS-000017"),
                "{typed:?}"
            );
        }
        assert_eq!(
            parse_case_number("as-1234567").as_deref(),
            Some("AS-1234567")
        );
        for not in [
            "17",
            "AS-",
            "AS-0",
            "AS-1a",
            "AS-+1",
            "AS 17",
            "BS-17",
            "AS-٣",
            "AS-1234567890123456789",
            "ÄS-1",
        ] {
            assert_eq!(parse_case_number(not), None, "{not:?}");
        }
    }

    #[test]
    fn case_numbers_compare_as_their_numbers() {
        let mut cases: Vec<String> = [1_000_000, 17, 100_001, 999_999, 100_000, 10_000_000, 1]
            .into_iter()
            .map(case_number)
            .collect();
        cases.sort_by(|a, b| asylon_core::law::by_case_number(a, b));
        let numbers: Vec<i64> = cases.iter().filter_map(|c| case_index(c)).collect();
        assert_eq!(
            numbers,
            [1, 17, 100_000, 100_001, 999_999, 1_000_000, 10_000_000]
        );
    }

    /// `n` captives named Kim Chol, their external ids `{prefix}0`, `{prefix}1`, ….
    pub(crate) fn kim_chols(prefix: &str, n: usize) -> Vec<Registration> {
        (0..n)
            .map(|i| registration(&format!("{prefix}{i}"), "Kim Chol"))
            .collect()
    }

    fn registration(ext: &str, name: &str) -> Registration {
        numbered(ext, name, ("KP", None))
    }

    /// A captive who depends on `power`, with `number` as his service number (`None`: he did
    /// not give one).
    fn numbered(ext: &str, name: &str, (power, number): (&str, Option<&str>)) -> Registration {
        let mut input = RegistrationInput::default();
        input.external_id = Some(ext.into());
        input.names = vec![NameInput::Text(name.into())];
        input.not_stated = vec![Art17Field::DateOfBirth, Art17Field::Rank];
        match number {
            Some(n) => input.service_number = Some(n.into()),
            None => input.not_stated.push(Art17Field::ServiceNumber),
        }
        input.power = Some(power.into());
        input.captured_on = Some("2025-01-10".into());
        input
            .validate(time::macros::datetime!(2026-01-01 12:00 UTC))
            .unwrap()
    }

    use crate::service::SharedWith;

    #[test]
    fn a_service_number_given_again_for_the_same_power_is_refused_naming_its_holder() {
        on_sqlite(one_service_number_one_captive);
    }

    #[test]
    fn on_postgres_a_service_number_given_again_for_the_same_power_is_refused() {
        on_postgres("service_numbers", one_service_number_one_captive);
    }

    #[test]
    fn a_service_number_registered_between_the_check_and_the_write_is_refused_by_the_write() {
        on_sqlite(asked_again_in_the_write);
    }

    #[test]
    fn on_postgres_a_service_number_registered_after_the_check_is_refused_by_the_write() {
        on_postgres("numbers_in_write", asked_again_in_the_write);
    }

    #[test]
    fn a_stream_stops_at_a_service_number_another_writer_registered_after_its_check() {
        on_sqlite(watched_stream);
    }

    #[test]
    fn on_postgres_a_stream_stops_at_a_number_another_writer_registered() {
        on_postgres("watched_stream", watched_stream);
    }

    #[test]
    fn reading_the_law_state_of_no_captive_reads_nothing() {
        on_sqlite(nobody_asked_about);
    }

    #[test]
    fn on_postgres_reading_the_law_state_of_no_captive_reads_nothing() {
        on_postgres("nobody_asked", nobody_asked_about);
    }

    /// Asked about no captive at all (an empty page, a catch-up with nothing new), the readers
    /// of many captives answer with none rather than sending the database an empty `IN ()`,
    /// which PostgreSQL refuses.
    fn nobody_asked_about(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        reg.register(actor, now, kim_chols("E", 2)).unwrap();
        let mut seen = Vec::new();
        crate::law::each_case(&*reg.conn, &reg.keys, Some(&[]), |case, _| {
            seen.push(case.to_string());
        })
        .unwrap();
        assert!(seen.is_empty(), "{seen:?}");
        crate::law::each_case(&*reg.conn, &reg.keys, None, |case, _| {
            seen.push(case.to_string());
        })
        .unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        let world = crate::law::load_world_of(&*reg.conn, &reg.keys, Some(&[])).unwrap();
        assert!(world.cases.is_empty());
        assert!(reg.persons_numbered(&[]).unwrap().is_empty());
    }

    /// A stream (an import) whose numbers were checked when the log held `at` events: another
    /// writer registering another number after that is no matter; one registering the number of
    /// a row of its second batch stops it there, naming him and the row: its first batch is
    /// registered, the second's keys are taken back, and the match is recorded.
    fn watched_stream(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        let kp = |ext: &str, number: &str| numbered(ext, "Kim Chol", ("KP", Some(number)));
        let two_batches = |p: &str| {
            let n = |i: u32| kp(&format!("{p}{i}"), &format!("{p}-{i}"));
            vec![vec![n(1), n(2)], vec![n(3), n(4)]]
        };
        let at = reg.events_written().unwrap();
        reg.register(actor, now, vec![kp("O1", "S-9")]).unwrap();
        let stream = sealed_stream(reg, &two_batches("S"));
        let mut written = Vec::new();
        reg.register_stream((actor, now), Some(at), stream.into_iter(), |cases, _| {
            written.extend_from_slice(cases)
        })
        .unwrap();
        assert_eq!(written.len(), 4);

        let at = reg.events_written().unwrap();
        let other = reg.register(actor, now, vec![kp("O2", "t 3")]).unwrap();
        let stream = sealed_stream(reg, &two_batches("T"));
        let cases: Vec<String> = stream
            .iter()
            .flat_map(|(batch, _)| batch.iter().map(|s| s.case.clone()))
            .collect();
        let events = reg.log_size();
        let mut written = Vec::new();
        let stopped = reg
            .register_stream((actor, now), Some(at), stream.into_iter(), |c, _| {
                written.extend_from_slice(c)
            })
            .unwrap_err();
        assert!(
            matches!(&stopped, StoreError::RegisteredMeanwhile { external_id: Some(id), power, case }
                if id == "T3" && power == "KP" && *case == other[0]),
            "{stopped:?}"
        );
        assert!(
            stopped.to_string().contains("--shared-service-number"),
            "{stopped}"
        );
        assert_eq!(written, cases[..2]);
        let keyed = keyed_cases(reg);
        assert!(
            keyed.contains(&cases[1]) && !keyed.contains(&cases[2]) && !keyed.contains(&cases[3])
        );
        // The first batch's two events, and the match.
        assert_eq!(
            last_match(reg, events + 3, actor),
            serde_json::json!({"refused": "import", "results": [other[0]]})
        );

        // Another import of the same rows registered one of them meanwhile: he is the row's
        // captive, registered already, not another man with his number.
        let at = reg.events_written().unwrap();
        let batches = two_batches("U");
        let same = reg
            .register(actor, now, vec![batches[1][0].clone()])
            .unwrap();
        let stream = sealed_stream(reg, &batches);
        let stopped = reg
            .register_stream((actor, now), Some(at), stream.into_iter(), |_, _| {})
            .unwrap_err();
        assert!(
            matches!(&stopped, StoreError::DuplicateExternalId { external_id, case }
                if external_id == "U3" && *case == same[0]),
            "{stopped:?}"
        );
    }

    /// The public part of the log's last event, which must be its `seq`-th and record that
    /// `actor` was told who holds a service number.
    fn last_match(reg: &Registry, seq: u64, actor: &Actor) -> serde_json::Value {
        assert_eq!(reg.log_size(), seq);
        let ev = reg.event(seq).unwrap();
        assert_eq!(ev.kind, kind::SERVICE_NUMBER_MATCHED);
        assert_eq!((ev.person, &ev.actor), (None, actor));
        serde_json::from_str(&ev.public).unwrap()
    }

    /// Another writer (a process beside this one) registers a service number in the moment
    /// between a registration's check and its write: the write asks again, under the log's
    /// write lock, and refuses the registration naming him, writing nothing of it. And a
    /// captive registered again under his external id is told that, before his number is asked
    /// about (nothing is recorded of a number, no case number is taken).
    fn asked_again_in_the_write(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        let kp = |ext: &str, number: &str| numbered(ext, "Kim Chol", ("KP", Some(number)));
        let regs = vec![kp("A", "KPA-1"), kp("B", "KPA-2")];
        let given = reg
            .checked((actor, now), &regs, SharedNumbers::Refused)
            .unwrap();
        let other = reg.register(actor, now, vec![kp("C", "kpa 2")]).unwrap();
        let (events, keyed) = (reg.log_size(), keyed_cases(reg));
        let first = reg.reserve_cases(2).unwrap();
        let sealed = reg.sealer().seal(first, regs.clone()).unwrap();
        let refused = reg.register_sealed(actor, now, sealed, &given).unwrap_err();
        assert!(
            matches!(&refused, StoreError::SharedServiceNumber { with: SharedWith::Registered(case), at: Some(1), .. }
                if *case == other[0]),
            "{refused:?}"
        );
        assert_eq!(reg.log_size(), events);
        assert_eq!(keyed_cases(reg), keyed);
        for n in [first, first + 1] {
            assert!(matches!(
                reg.person(&case_number(n)),
                Err(StoreError::UnknownPerson(_))
            ));
        }
        // Allowed as shared, the same write goes through.
        let given = reg
            .checked((actor, now), &regs, SharedNumbers::Allowed)
            .unwrap();
        let first = reg.reserve_cases(2).unwrap();
        let sealed = reg.sealer().seal(first, regs).unwrap();
        let written = reg.register_sealed(actor, now, sealed, &given).unwrap();
        assert_eq!(written, [case_number(first), case_number(first + 1)]);

        let (events, cases) = (reg.log_size(), reg.cases_given().unwrap());
        let again = reg
            .register(actor, now, vec![kp("C", "KPA-2")])
            .unwrap_err();
        assert!(
            matches!(&again, StoreError::DuplicateExternalId { external_id, case }
                if external_id == "C" && *case == other[0]),
            "{again:?}"
        );
        assert_eq!(reg.log_size(), events);
        assert_eq!(reg.cases_given().unwrap(), cases);
    }

    /// A second registration of a service number for the same power is refused, naming the
    /// captive who holds it, and writes nothing; the same number for another power, or allowed
    /// as shared, is registered; an erasure takes the number with the rest of him; a registry
    /// whose index lacks the numbers (made before they were indexed) gets them from the check
    /// `rebuild` runs.
    fn one_service_number_one_captive(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        let kp = |ext: &str, number: &str| numbered(ext, "Kim Chol", ("KP", Some(number)));
        let first = reg
            .register(actor, now, vec![kp("A", "KPA-998877")])
            .unwrap();
        let holders = |reg: &Registry, power: &str, number: &str| -> Vec<String> {
            let token = reg.service_tokens().token(power, number).unwrap();
            let found = reg.service_token_holders(&[token]).unwrap();
            found.concat().into_iter().map(|h| h.case).collect()
        };
        assert_eq!(holders(reg, "KP", "kpa 998 877"), first);
        assert!(holders(reg, "RU", "KPA-998877").is_empty());
        assert!(holders(reg, "KP", "KPA-998878").is_empty());

        // The same letters and digits, written another way.
        let events = reg.log_size();
        let keyed = keyed_cases(reg);
        let refused = reg
            .register(actor, now, vec![kp("B", "kpa 998877")])
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::SharedServiceNumber { power, with: SharedWith::Registered(case), at: None }
                if power == "KP" && *case == first[0]),
            "{refused:?}"
        );
        assert!(
            refused.to_string().contains("--shared-service-number"),
            "{refused}"
        );
        // Nothing of him is written; that the registrar was told who holds the number is, as
        // a name search is.
        assert_eq!(keyed_cases(reg), keyed);
        let told = |reg: &Registry, events: u64| {
            assert_eq!(
                last_match(reg, events + 1, actor),
                serde_json::json!({"refused": "registration", "results": [first[0]]})
            );
        };
        told(reg, events);
        let b = [kp("B", "kpa 998877")];
        let events = reg.log_size();
        assert!(matches!(
            reg.check_registrations((actor, now), &b, SharedNumbers::Refused),
            Err(StoreError::SharedServiceNumber { .. })
        ));
        told(reg, events);
        let events = reg.log_size();
        reg.check_registrations((actor, now), &b, SharedNumbers::Allowed)
            .unwrap();
        assert_eq!(reg.log_size(), events);

        // Twice in one batch: refused, naming the first of the two by its place.
        let batch = vec![kp("C", "KPA-1"), kp("D", "KPA-2"), kp("E", "kpa-1")];
        let refused = reg.register(actor, now, batch).unwrap_err();
        assert!(
            matches!(
                &refused,
                StoreError::SharedServiceNumber {
                    with: SharedWith::Batch(0),
                    at: Some(2),
                    ..
                }
            ),
            "{refused:?}"
        );
        // Told nothing of anyone registered: nothing recorded.
        assert_eq!(reg.log_size(), events);

        // Another power's number; then the same man's as shared, the registrar having checked.
        let ru = numbered("F", "Kim Chol", ("RU", Some("KPA-998877")));
        let other = reg.register(actor, now, vec![ru]).unwrap();
        let shared = reg
            .register_with(
                actor,
                now,
                vec![kp("B", "KPA998877")],
                SharedNumbers::Allowed,
            )
            .unwrap();
        assert_eq!(
            holders(reg, "KP", "KPA-998877"),
            [first[0].clone(), shared[0].clone()]
        );
        assert_eq!(holders(reg, "RU", "KPA-998877"), other);
        // His number's token beside his names' leaves the search by name as it was.
        let mut found: Vec<String> = reg
            .find("Kim Chol")
            .unwrap()
            .into_iter()
            .map(|h| h.case_no)
            .collect();
        found.sort();
        let mut all = vec![first[0].clone(), other[0].clone(), shared[0].clone()];
        all.sort();
        assert_eq!(found, all);

        // An index made before service numbers were: the check of the name index puts them in.
        let tokens = |reg: &Registry| -> usize {
            let n = reg
                .keys
                .conn
                .one("SELECT count(*) FROM name_index", &[])
                .unwrap();
            n.unwrap().i64(0).unwrap() as usize
        };
        let with_numbers = tokens(reg);
        let names = kp("X", "1").identity.names.clone();
        let names_only = crate::search::name_tokens(&reg.blind_index_key(), &names);
        for case in [&first[0], &shared[0], &other[0]] {
            reg.keys.replace_tokens(case, &names_only).unwrap();
        }
        assert_eq!(tokens(reg), with_numbers - 3);
        assert!(holders(reg, "KP", "KPA-998877").is_empty());
        let checked = reg.reindex_names().unwrap();
        assert!(checked.replaced.is_empty(), "{:?}", checked.replaced);
        let mut numbered = checked.numbered.clone();
        numbered.sort();
        let mut want = vec![first[0].clone(), shared[0].clone(), other[0].clone()];
        want.sort();
        assert_eq!(numbered, want);
        assert_eq!(tokens(reg), with_numbers);
        assert_eq!(
            holders(reg, "KP", "KPA-998877"),
            [first[0].clone(), shared[0].clone()]
        );

        // Erased, he holds nothing: the other is the one holder left.
        reg.erase(actor, now, &first[0], "registered in error")
            .unwrap();
        assert_eq!(holders(reg, "KP", "KPA-998877"), shared);
    }

    fn keyed_cases(reg: &Registry) -> Vec<String> {
        let persons = |sql: &str| -> Vec<String> {
            let rows = reg.keys.conn.all(sql, &[]).unwrap();
            rows.iter().map(|r| r.text(0).unwrap()).collect()
        };
        let mut v = persons("SELECT person FROM data_keys");
        let index: Vec<String> = reg
            .keys
            .conn
            .all(
                "SELECT person FROM name_index UNION SELECT person FROM name_index_recent",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| case_number(r.i64(0).unwrap() as u64))
            .collect();
        v.sort();
        for p in &index {
            assert!(v.contains(p), "name tokens of {p} have no keys row");
        }
        v
    }

    /// A new registry in `dir/r` (its key file `dir/k`), the actor who made it and when.
    pub(crate) fn new_registry(dir: &std::path::Path) -> (Registry, Actor, OffsetDateTime) {
        new_registry_in(dir, &crate::Database::Sqlite)
    }

    /// [`new_registry`] with its records in `database`.
    fn new_registry_in(
        dir: &std::path::Path,
        database: &crate::Database,
    ) -> (Registry, Actor, OffsetDateTime) {
        let actor = Actor {
            user: "test".into(),
            org: "detaining".into(),
        };
        let now = time::OffsetDateTime::now_utc();
        let key = KeySource::File(dir.join("k"));
        let reg = Registry::init_in(&dir.join("r"), database, &key, &actor, now).unwrap();
        (reg, actor, now)
    }

    /// Seals `batches` as the next cases in order, each tagged with its index.
    fn sealed_stream(
        reg: &mut Registry,
        batches: &[Vec<Registration>],
    ) -> Vec<(Vec<SealedRegistration>, usize)> {
        let sealer = reg.sealer();
        let total: usize = batches.iter().map(Vec::len).sum();
        let mut next = reg.reserve_cases(total as u64).unwrap();
        let mut stream = Vec::new();
        for (i, regs) in batches.iter().enumerate() {
            stream.push((sealer.seal(next, regs.clone()).unwrap(), i));
            next += regs.len() as u64;
        }
        stream
    }

    #[test]
    fn a_name_index_changed_without_its_correction_is_made_that_of_the_record_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let cases = reg
            .register(
                &actor,
                now,
                vec![
                    registration("A", "Kim Chol"),
                    registration("B", "Ri Han Gom"),
                ],
            )
            .unwrap();
        let found = |reg: &Registry, name: &str| -> Vec<String> {
            reg.find(name)
                .unwrap()
                .into_iter()
                .map(|h| h.case_no)
                .collect()
        };
        assert_eq!(found(&reg, "Kim Chol"), [cases[0].clone()]);
        // A correction's first step, the index of his new names, without the rest (the
        // process died before its events were appended).
        let corrected = registration("A", "Pak Pong Ju").identity.names.clone();
        let tokens = crate::search::name_tokens(&reg.blind_index_key(), &corrected);
        reg.keys.replace_tokens(&cases[0], &tokens).unwrap();
        assert_eq!(found(&reg, "Pak Pong Ju"), [cases[0].clone()]);
        assert!(found(&reg, "Kim Chol").is_empty());

        let done = reg.reindex_names().unwrap();
        assert_eq!((done.checked, done.replaced), (2, vec![cases[0].clone()]));
        assert_eq!(found(&reg, "Kim Chol"), [cases[0].clone()]);
        assert!(found(&reg, "Pak Pong Ju").is_empty());
        assert_eq!(found(&reg, "Ri Han Gom"), [cases[1].clone()]);
        assert!(reg.reindex_names().unwrap().replaced.is_empty());
    }

    #[test]
    fn a_page_of_the_name_index_check_gets_the_keys_of_its_captives_in_any_order() {
        on_sqlite(page_keys_in_any_order);
    }

    #[test]
    fn on_postgres_a_page_of_the_name_index_check_gets_its_keys_in_any_order() {
        on_postgres("pages", page_keys_in_any_order);
    }

    /// The check of the name index reads a page's keys as a range of case numbers: it gets
    /// those of the page's captives, and only theirs, whatever order the page is in.
    fn page_keys_in_any_order(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        let cases = reg
            .register(
                actor,
                now,
                vec![
                    registration("A", "Kim Chol"),
                    registration("B", "Ri Han Gom"),
                    registration("C", "Pak Pong Ju"),
                ],
            )
            .unwrap();
        let listed = |page: &[&str]| -> Vec<String> {
            let mut got: Vec<String> = reg
                .page_tokens(page)
                .unwrap()
                .into_iter()
                .map(|l| {
                    // What his keys row lists is what his record's names make.
                    assert_eq!(
                        crate::search::join_tokens(&l.tokens),
                        l.stored,
                        "{}",
                        l.case
                    );
                    l.case
                })
                .collect();
            got.sort();
            got
        };
        // In case order, the range of the page's first to last case holds another captive,
        // who is not of the page.
        assert_eq!(
            listed(&[&cases[0], &cases[2]]),
            [cases[0].clone(), cases[2].clone()]
        );
        // Out of that order (a page crossing from AS-999999 to AS-1000000 is, byte by byte),
        // the range is empty: the page's captives are asked for by name.
        assert_eq!(
            listed(&[&cases[2], &cases[0]]),
            [cases[0].clone(), cases[2].clone()]
        );
    }

    #[test]
    fn proofs_read_the_kept_subtrees_and_a_few_events_and_agree_with_the_whole_log() {
        on_sqlite(proofs_agree_with_the_whole_log);
    }

    #[test]
    fn on_postgres_proofs_read_the_kept_subtrees_and_agree_with_the_whole_log() {
        on_postgres("proofs", proofs_agree_with_the_whole_log);
    }

    #[test]
    fn rebuild_writes_the_projection_whole_where_most_rows_are_wrong_or_one_cannot_be_named() {
        use crate::{Correction, Rebuilt};
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let cases = reg.register(&actor, now, kim_chols("W", 10)).unwrap();
        let count = |reg: &Registry| reg.person_count().unwrap();
        // Every row gone: each is missing, and all are written.
        reg.conn.exec("DELETE FROM persons", &[]).unwrap();
        let missing: Vec<(String, Correction)> = cases
            .iter()
            .map(|c| (c.clone(), Correction::Missing))
            .collect();
        let rebuilt = reg.rebuild().unwrap();
        assert_eq!(
            rebuilt,
            Rebuilt {
                captives: 10,
                corrected: missing,
                unnamed: 0
            }
        );
        assert_eq!(count(&reg), 10);
        reg.verify(None).unwrap();
        // A row whose case number is not text cannot be named, nor deleted by its number.
        reg.conn
            .exec(
                "INSERT INTO persons SELECT X'0102', NULL, power, captured_on, captured_at, status,
                   registered_seq, last_seq FROM persons LIMIT 1",
                &[],
            )
            .unwrap();
        assert_eq!(count(&reg), 11);
        assert!(reg.verify(None).is_err());
        let rebuilt = reg.rebuild().unwrap();
        assert_eq!((rebuilt.corrected.len(), rebuilt.unnamed), (0, 1));
        assert_eq!(count(&reg), 10);
        reg.verify(None).unwrap();
    }

    #[test]
    fn on_postgres_the_name_check_first_takes_the_log_statistics_where_they_are_stale() {
        on_postgres("stats", statistics_taken_where_stale);
    }

    /// Without statistics the planner read the whole log for every page of the name index
    /// check: the check takes them when autovacuum would, and only then.
    fn statistics_taken_where_stale(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        reg.register(actor, now, kim_chols("S", 200)).unwrap();
        let stats = |reg: &Registry| {
            let row = reg
                .conn
                .one(
                    "SELECT n_mod_since_analyze, analyze_count FROM pg_stat_user_tables
                     WHERE schemaname = current_schema() AND relname = 'events'",
                    &[],
                )
                .unwrap()
                .unwrap();
            (row.i64(0).unwrap(), row.i64(1).unwrap())
        };
        // A connection reports its counts when idle, at most once a second unless asked.
        reg.conn.batch("SELECT pg_stat_force_next_flush()").unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while stats(reg).0 < 200 {
            assert!(std::time::Instant::now() < until, "{:?}", stats(reg));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(stats(reg).1, 0, "not analyzed yet");
        reg.reindex_names().unwrap();
        assert_eq!(stats(reg), (0, 1), "analyzed once, by the check");
        // Nothing changed since: the check does not take them again.
        reg.reindex_names().unwrap();
        assert_eq!(stats(reg), (0, 1));
    }

    /// `body` on a new registry in SQLite files of a directory of its own.
    fn on_sqlite(body: fn(&mut Registry, &Actor, OffsetDateTime)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        body(&mut reg, &actor, now);
    }

    /// `body` on a new registry in a PostgreSQL schema of its own (named from `name`), dropped
    /// afterwards.
    fn on_postgres(name: &str, body: fn(&mut Registry, &Actor, OffsetDateTime)) {
        let Some(mut admin) = crate::test_support::postgres_client() else {
            return;
        };
        let schema = format!("{name}_{}", std::process::id());
        let gone = format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {schema}_keys CASCADE"
        );
        admin.batch_execute(&gone).unwrap();
        let database = crate::Database::Postgres {
            url: crate::test_support::postgres_url(),
            schema: schema.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry_in(dir.path(), &database);
        body(&mut reg, &actor, now);
        drop(reg);
        admin.batch_execute(&gone).unwrap();
    }

    /// Fills `reg` with some 1,300 events and checks its proofs against those made from every
    /// leaf, with its kept nodes, without them, and with one altered.
    fn proofs_agree_with_the_whole_log(reg: &mut Registry, actor: &Actor, now: OffsetDateTime) {
        use asylon_ledger::{consistency_proof, inclusion_proof, root};
        // Writes of many sizes, so that whole subtrees are completed inside writes and across
        // them.
        for (i, count) in [1, 700, 3, 300, 296].into_iter().enumerate() {
            let regs = (0..count)
                .map(|j| registration(&format!("E{i}-{j}"), "Kim Chol"))
                .collect();
            reg.register(actor, now, regs).unwrap();
        }
        let (leaves, _) = reg.checked_leaves(&()).unwrap();
        let size = leaves.len() as u64;
        assert!(size > 1300, "{size}");
        let kept = |reg: &Registry| {
            reg.conn
                .all("SELECT height, idx FROM tree_nodes", &[])
                .unwrap()
                .len() as u64
        };
        // Every whole subtree of 256 leaves or more, and no other.
        let whole: u64 = (8..16).map(|h| size >> h).sum();
        assert_eq!(kept(reg), whole);
        let agree = |reg: &Registry| {
            for seq in [1, 2, 255, 256, 257, 511, 512, 513, 1000, size] {
                for n in [None, Some(seq), Some(777), Some(1024), Some(size - 1)] {
                    let at = n.unwrap_or(size);
                    if at < seq {
                        assert!(reg.prove(seq, n).is_err(), "{seq} at {at}");
                        continue;
                    }
                    let p = reg.prove(seq, n).unwrap();
                    let tree = &leaves[..at as usize];
                    assert_eq!(
                        p.path,
                        inclusion_proof(tree, seq - 1).unwrap(),
                        "{seq} at {at}"
                    );
                    assert_eq!((p.root, p.tree_size), (root(tree), at));
                }
            }
            for old in [1, 255, 256, 257, 700, 1024, size - 1, size] {
                let p = reg.prove_consistency(old, None).unwrap();
                assert_eq!(
                    p.path,
                    consistency_proof(&leaves, old).unwrap(),
                    "from {old}"
                );
                let p = reg.prove_consistency(1, Some(old)).unwrap();
                let tree = &leaves[..old as usize];
                assert_eq!(p.path, consistency_proof(tree, 1).unwrap(), "1 to {old}");
            }
        };
        agree(reg);
        // A log kept before its nodes were (or whose nodes were lost): the same proofs, from
        // the events; `rebuild` makes the nodes again.
        reg.conn.exec("DELETE FROM tree_nodes", &[]).unwrap();
        agree(reg);
        reg.rebuild().unwrap();
        assert_eq!(kept(reg), whole);
        agree(reg);

        // A kept node that is not what the events make is found, not handed on in a proof:
        // leaves 0..256 are on the path of event 300.
        reg.conn
            .exec(
                "UPDATE tree_nodes SET hash = ?1 WHERE height = 8 AND idx = 0",
                crate::db::args![&[7u8; 32][..]],
            )
            .unwrap();
        let e = reg.prove(300, None).unwrap_err().to_string();
        assert!(e.contains("do not lead to its signed head"), "{e}");
        // From 300 the path holds leaves 0..256 too; from 100 it does not (it is made from
        // the events, and is right).
        let e = reg.prove_consistency(300, None).unwrap_err().to_string();
        assert!(e.contains("do not lead to its signed head"), "{e}");
        let p = reg.prove_consistency(100, None).unwrap();
        assert_eq!(p.path, consistency_proof(&leaves, 100).unwrap());
        reg.rebuild().unwrap();
        agree(reg);

        // A proof reads only its own part of the tree: an event altered elsewhere does not
        // stop it (the proof is of the signed log, which holds the event proven), while that
        // event's own proof and `verify` name it.
        let unguard = match reg.conn.backend() {
            crate::db::Backend::Sqlite => "DROP TRIGGER events_are_never_updated",
            crate::db::Backend::Postgres => "DROP TRIGGER events_are_never_updated ON events",
        };
        reg.conn.exec(unguard, &[]).unwrap();
        reg.conn
            .exec("UPDATE events SET public = '{}' WHERE seq = 5", &[])
            .unwrap();
        let p = reg.prove(1000, None).unwrap();
        assert_eq!(p.path, inclusion_proof(&leaves, 999).unwrap());
        let e = reg.prove(5, None).unwrap_err().to_string();
        assert!(e.contains("event 5") && e.contains("MAC"), "{e}");
        let e = reg.verify(None).unwrap_err().to_string();
        assert!(e.contains("event 5"), "{e}");
    }

    #[test]
    fn verify_checks_every_page_of_the_projection_and_of_the_key_store() {
        use crate::db::args;
        use crate::registry::LISTING_PAGE;
        // Three pages of the listing that verify compares the projection by, a page at a time.
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let n = 2 * LISTING_PAGE + 345;
        let regs: Vec<Registration> = (0..n)
            .map(|i| registration(&format!("P{i}"), "Kim Chol"))
            .collect();
        let stream = sealed_stream(&mut reg, &[regs]);
        reg.register_stream((&actor, now), None, stream.into_iter(), |_, _| ())
            .unwrap();
        let report = reg.verify(None).unwrap();
        assert_eq!((report.persons, report.without_keys.len()), (n, 0));

        // The check verify fails with, naming what it found.
        let fails = |reg: &Registry, found: &str| {
            let e = reg.verify(None).unwrap_err().to_string();
            assert!(e.contains(found), "{e}");
        };
        let fewer = format!(
            "the projection holds {} persons but the events register {n}",
            n - 1
        );
        let drop_keys = |reg: &Registry, case: &str| {
            reg.keys
                .conn
                .exec("DELETE FROM data_keys WHERE person = ?1", args![case])
                .unwrap();
        };
        // The first captive's keys, stored again under `person`.
        let copy_keys = |reg: &Registry, person: &str| {
            reg.keys
                .conn
                .exec(
                    "INSERT INTO data_keys SELECT ?1, identity, family, medical, statements, \
                     name_tokens FROM data_keys WHERE person = ?2",
                    args![person, case_number(1).as_str()],
                )
                .unwrap();
        };

        // Keys gone for one captive of the first page and one of the last: both are named,
        // in case order, and verify still passes (an older key store, or an erasure stopped).
        drop_keys(&reg, &case_number(2 * LISTING_PAGE as u64 + 300));
        drop_keys(&reg, &case_number(7));
        // A row under a name that reads as the same number is not his keys.
        copy_keys(&reg, "AS-0000007");
        let report = reg.verify(None).unwrap();
        assert_eq!(
            report.without_keys,
            [case_number(7), case_number(2 * LISTING_PAGE as u64 + 300)]
        );

        // An erased captive of the second page whose keys are back in the key store fails it.
        let erased = case_number(LISTING_PAGE as u64 + 10);
        reg.erase(&actor, now, &erased, "asked by the test")
            .unwrap();
        reg.verify(None).unwrap();
        copy_keys(&reg, &erased);
        fails(
            &reg,
            &format!("holds the data keys of {erased}, whom the log records as erased"),
        );
        drop_keys(&reg, &erased);
        reg.verify(None).unwrap();

        // A row of the last page altered is named.
        let altered = case_number(2 * LISTING_PAGE as u64 + 200);
        reg.conn
            .exec(
                "UPDATE persons SET captured_at = 'elsewhere' WHERE case_no = ?1",
                args![altered.as_str()],
            )
            .unwrap();
        fails(&reg, &format!("the projection of {altered} differs"));
        reg.rebuild().unwrap();
        reg.verify(None).unwrap();

        // A row of the second page taken away and one added past the last under a case number
        // the events never gave: as many rows as the events register, and the stranger named.
        let stranger = case_number(n as u64 + 1);
        reg.conn
            .exec(
                "DELETE FROM persons WHERE case_no = ?1",
                args![case_number(LISTING_PAGE as u64 + 20).as_str()],
            )
            .unwrap();
        reg.conn
            .exec(
                "INSERT INTO persons SELECT ?1, NULL, power, captured_on, captured_at, status, \
                 registered_seq, last_seq FROM persons WHERE case_no = ?2",
                args![stranger.as_str(), case_number(1).as_str()],
            )
            .unwrap();
        fails(&reg, &format!("the projection of {stranger} differs"));
        // The stranger under a key no case number has: in no page of the listing, so as many
        // rows as the events register but one fewer listed; then taken away, one row fewer.
        reg.conn
            .exec(
                "UPDATE persons SET case_no = 'X-1' WHERE case_no = ?1",
                args![stranger.as_str()],
            )
            .unwrap();
        fails(&reg, &fewer);
        reg.conn
            .exec("DELETE FROM persons WHERE case_no = 'X-1'", &[])
            .unwrap();
        fails(&reg, &fewer);
        reg.rebuild().unwrap();
        reg.verify(None).unwrap();
    }

    #[test]
    fn a_case_number_reads_back_as_its_number_and_nothing_else_does() {
        for n in [0, 1, 999_999, 1_000_000, 123_456_789] {
            assert_eq!(case_index(&case_number(n)), Some(n as i64));
        }
        // The key store's second migration strips the prefix by its length.
        assert_eq!(CASE_PREFIX.len(), 3);
        for other in [
            "AS-",
            "AS-+5",
            "AS-1x",
            "XS-000001",
            "000001",
            "AS-99999999999999999999",
        ] {
            assert_eq!(case_index(other), None, "{other}");
        }
    }

    #[test]
    fn a_failed_batch_in_a_stream_leaves_no_keys_behind_and_names_the_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        reg.register(&actor, now, vec![registration("X", "Kim Chol")])
            .unwrap();

        // Batch 2 repeats X, so its append fails; batch 3's keys are stored by then (the key
        // store writes ahead of the log).
        let regs = [
            vec![registration("A", "Ri Han Gom"), registration("B", "박웅희")],
            vec![
                registration("C", "Pak Ung-hui"),
                registration("X", "Ли Хан Гом"),
            ],
            vec![registration("D", "Jo Cheonmun")],
        ];
        let batches = sealed_stream(&mut reg, &regs);
        let events_before = reg.events(None).unwrap().len();
        let mut committed = Vec::new();
        let err = reg
            .register_stream((&actor, now), None, batches.into_iter(), |cases, i| {
                committed.push((cases.to_vec(), i))
            })
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateExternalId { external_id, .. } if external_id == "X"),
            "{err:?}"
        );
        assert_eq!(committed.len(), 1, "only the first batch commits");
        assert_eq!(committed[0].1, 0);
        assert_eq!(reg.events(None).unwrap().len(), events_before + 2);
        let mut expected: Vec<String> = reg
            .persons()
            .unwrap()
            .into_iter()
            .map(|p| p.case_no)
            .collect();
        expected.sort();
        assert_eq!(expected.len(), 3);
        assert_eq!(
            keyed_cases(&reg),
            expected,
            "keys only for registered persons"
        );
    }

    #[test]
    fn persons_are_listed_in_the_order_of_their_numbers_past_six_digits() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        // In the key's text order AS-1000000 comes between AS-100000 and AS-100001, and
        // AS-10000000 between AS-1000000 and AS-1000001.
        let mut registered = Vec::new();
        for (first, count) in [(1, 1), (100_000, 2), (999_999, 3), (10_000_000, 1)] {
            reg.reserve_cases(first - 1 - reg.cases_given().unwrap())
                .unwrap();
            let regs = (0..count)
                .map(|i| registration(&format!("{first}-{i}"), "Kim Chol"))
                .collect();
            registered.extend(reg.register(&actor, now, regs).unwrap());
        }
        let numbers: Vec<i64> = registered.iter().filter_map(|c| case_index(c)).collect();
        assert_eq!(
            numbers,
            [
                1, 100_000, 100_001, 999_999, 1_000_000, 1_000_001, 10_000_000
            ]
        );
        for limit in [1, 2, 3, 4, 6, 7, 100] {
            let (mut listed, mut after, mut pages) = (Vec::new(), String::new(), Vec::new());
            loop {
                let page = reg.persons_page(&after, limit).unwrap();
                let Some(last) = page.last() else { break };
                after.clone_from(&last.case_no);
                pages.push(page.len());
                listed.extend(page.into_iter().map(|p| p.case_no));
            }
            assert_eq!(listed, registered, "pages of {limit}");
            // Only the last page is short: a reader stops at the first short one.
            let full = pages.len().saturating_sub(1);
            assert!(pages[..full].iter().all(|&n| n == limit), "{pages:?}");
        }
        let mut each = Vec::new();
        reg.each_person(&mut |p| {
            each.push(p.case_no);
            Ok(())
        })
        .unwrap();
        assert_eq!(each, registered);
        // Equal search scores and deadlines due the same day fall back to the same order: all
        // bear one name and were captured on one day.
        let registrar = asylon_core::law::Principal {
            user: actor.user.clone(),
            org: actor.org.clone(),
            roles: vec![asylon_core::law::Role::Registrar],
        };
        let hits = reg.search(&registrar, now, "Kim Chol", 100).unwrap();
        assert!(
            hits.windows(2).all(|w| w[0].score == w[1].score),
            "one score"
        );
        let found: Vec<String> = hits.into_iter().map(|h| h.case_no).collect();
        assert_eq!(found, registered, "search hits of equal score");
        let settings = asylon_core::law::Settings::default();
        let due = reg.deadlines(&registrar, &settings, now).unwrap();
        let first = due.first().unwrap();
        let (kind, day) = (first.kind, first.due);
        let cases: Vec<String> = due
            .into_iter()
            .filter(|d| d.kind == kind && d.due == day)
            .map(|d| d.case)
            .collect();
        assert_eq!(cases, registered, "{kind:?} deadlines due {day}");
        // A cursor as typed, one past every number, and one that is no case number.
        let cases = |after: &str| -> Vec<String> {
            let page = reg.persons_page(after, 2).unwrap();
            page.into_iter().map(|p| p.case_no).collect()
        };
        assert_eq!(cases("as-100000"), ["AS-100001", "AS-999999"]);
        assert_eq!(cases("AS-1000001"), ["AS-10000000"]);
        assert!(cases("AS-10000000").is_empty());
        assert!(cases("AS-99999999999").is_empty());
        match reg.persons_page("AS-1x", 2) {
            Err(StoreError::Invalid(fields)) => assert_eq!(fields[0].field, "after"),
            other => panic!("{:?}", other.map(|p| p.len())),
        }
    }

    #[test]
    fn a_registry_lives_in_a_postgres_schema_named_by_a_word_sql_reserves() {
        /// A database of its own (the schema's name cannot carry this process's id), dropped
        /// however the test ends.
        struct Own(postgres::Client, String);
        impl Drop for Own {
            fn drop(&mut self) {
                let drop_db = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.1);
                let _ = self.0.batch_execute(&drop_db);
            }
        }
        let Some(mut admin) = crate::test_support::postgres_client() else {
            return;
        };
        let name = format!("asylon_reserved_{}", std::process::id());
        // One statement at a time: a database is not made inside a transaction.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let _own = Own(admin, name.clone());
        let url = crate::test_support::postgres_url_of(&name);
        let database = crate::Database::Postgres {
            url: url.clone(),
            schema: "order".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let (key, data) = (KeySource::File(dir.path().join("k")), dir.path().join("r"));
        let (mut reg, actor, now) = new_registry_in(dir.path(), &database);
        let case = reg
            .register(&actor, now, vec![registration("O-1", "Kim Chol")])
            .unwrap();
        drop(reg);
        let reg = Registry::open_in(&data, &database, &key).unwrap();
        let listed: Vec<String> = reg
            .persons_page("", 10)
            .unwrap()
            .into_iter()
            .map(|p| p.case_no)
            .collect();
        assert_eq!(listed, case);
        assert!(reg.verify(None).is_ok());
        drop(reg);
        // What a failed init or restore removes: both schemas.
        let schemas = || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query(
                "SELECT schema_name::text FROM information_schema.schemata \
                 WHERE schema_name LIKE 'order%' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
        };
        assert_eq!(schemas(), ["order", "order_keys"]);
        crate::registry::remove_written(&data, &database, true);
        assert!(schemas().is_empty(), "{:?}", schemas());
    }

    #[test]
    fn a_caller_who_sees_few_gets_full_pages_each_from_a_bounded_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let cases = reg.register(&actor, now, kim_chols("P", 30)).unwrap();
        // South Korea accepts every seventh: those alone are referred to it.
        let kr = asylon_core::law::Principal {
            user: "kr".into(),
            org: "receiving:KR".into(),
            roles: vec![asylon_core::law::Role::Liaison],
        };
        let settings = asylon_core::law::Settings::default();
        let referred: Vec<String> = cases.iter().step_by(7).cloned().collect();
        for case in &referred {
            let accept =
                serde_json::json!({"command": "record_acceptance", "case": case, "state": "KR"});
            reg.act(
                &kr,
                now,
                &settings,
                &serde_json::from_value(accept).unwrap(),
            )
            .unwrap();
        }
        let walk = |limit: usize, scan: usize| {
            let (mut pages, mut after) = (Vec::new(), String::new());
            loop {
                let (page, next) = reg
                    .persons_visible_within(&kr, &after, limit, scan)
                    .unwrap();
                pages.push(page.into_iter().map(|p| p.case_no).collect::<Vec<_>>());
                match next {
                    Some(n) => after = n,
                    None => return pages,
                }
            }
        };
        for limit in [1, 2, 3, 5, 100] {
            let pages = walk(limit, usize::MAX);
            assert_eq!(pages.concat(), referred, "pages of {limit}");
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() == limit), "{pages:?}");
            assert!(last.len() <= limit, "{pages:?}");
        }
        // Reading at most 10 rows a request: what those hold, and where to go on.
        let pages = walk(100, 10);
        assert_eq!(pages.concat(), referred);
        assert_eq!(pages.len(), 3, "{pages:?}");
        // The registry sees all of them, a page at a time.
        let registrar = asylon_core::law::Principal {
            user: actor.user.clone(),
            org: actor.org.clone(),
            roles: vec![asylon_core::law::Role::Registrar],
        };
        let (page, next) = reg.persons_visible(&registrar, "", 30).unwrap();
        assert_eq!(page.len(), 30);
        assert_eq!(next, None);
    }

    #[test]
    fn a_report_counts_every_captive_and_gives_no_count_a_small_group_could_be_told_by() {
        use asylon_core::law::{Principal, Role, Settings};
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        // 13 of KP, 3 of RU, 2 of CN; one of KP erased.
        let mut regs = kim_chols("K", 13);
        for (i, power) in ["RU", "RU", "RU", "CN", "CN"].into_iter().enumerate() {
            regs.push(numbered(&format!("O{i}"), "Ri Chol", (power, None)));
        }
        let cases = reg.register(&actor, now, regs).unwrap();
        let person = |org: &str, role: Role| Principal {
            user: "u".into(),
            org: org.into(),
            roles: vec![role],
        };
        let registrar = person("detaining", Role::Registrar);
        let settings = Settings::default();
        let act = |reg: &mut Registry, command: serde_json::Value| {
            let command = serde_json::from_value(command).unwrap();
            reg.act(&registrar, now, &settings, &command).unwrap();
        };
        for (place, kind) in [("Camp 3", "camp"), ("Hospital 1", "hospital")] {
            act(
                &mut reg,
                serde_json::json!({"command": "define_place", "place": place, "kind": kind}),
            );
        }
        // Six interned, two in hospital, the rest registered.
        for (i, case) in cases.iter().take(8).enumerate() {
            let place = if i < 6 { "Camp 3" } else { "Hospital 1" };
            act(
                &mut reg,
                serde_json::json!({"command": "move_custody", "case": case, "place": place}),
            );
        }
        reg.erase(&actor, now, &cases[12], "asked by the test")
            .unwrap();
        let report = reg
            .statistics(&person("neutral", Role::Analyst), 5)
            .unwrap();
        assert_eq!(report.captives, Some(17));
        let table = |by: &str| -> Vec<(String, Option<u64>)> {
            let t = report.tables.iter().find(|t| t.by == by).unwrap();
            t.cells.iter().map(|c| (c.value.clone(), c.count)).collect()
        };
        let cells = |v: &[(&str, Option<u64>)]| -> Vec<(String, Option<u64>)> {
            v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
        };
        // RU's 3 and CN's 2 left out: together 5.
        assert_eq!(
            table("power"),
            cells(&[("CN", None), ("KP", Some(12)), ("RU", None)])
        );
        // Two in hospital: left out, and the six interned with them, or 17 − 9 would tell.
        assert_eq!(
            table("state"),
            cells(&[
                ("hospitalised", None),
                ("interned", None),
                ("registered", Some(9))
            ])
        );
        assert_eq!(
            table("place"),
            cells(&[("Camp 3", None), ("Hospital 1", None)])
        );
        // With k = 2 every count is given.
        let report = reg.statistics(&registrar, 2).unwrap();
        let place = &report.tables[2].cells;
        assert_eq!(
            (place[0].count, place[1].count),
            (Some(6), Some(2)),
            "{place:?}"
        );
        // Not for a receiving state, nor for an administrator.
        for who in [
            person("receiving:KR", Role::Liaison),
            person("detaining", Role::Admin),
            person("detaining", Role::Medical),
        ] {
            assert!(
                matches!(reg.statistics(&who, 5), Err(StoreError::Denied(_))),
                "{who:?}"
            );
        }
    }

    /// Every page of a listing, from the first: the case numbers listed, and each page's length.
    fn walk(
        mut page: impl FnMut(&str) -> (Vec<asylon_core::PersonRow>, Option<String>),
    ) -> (Vec<String>, Vec<usize>) {
        let (mut listed, mut lengths, mut after) = (Vec::new(), Vec::new(), String::new());
        loop {
            let (rows, next) = page(&after);
            lengths.push(rows.len());
            listed.extend(rows.into_iter().map(|p| p.case_no));
            match next {
                Some(n) => after = n,
                None => return (listed, lengths),
            }
        }
    }

    #[test]
    fn the_law_state_of_captives_read_together_is_each_ones_read_alone() {
        use asylon_core::law::{Principal, Role, Settings};
        use asylon_core::policy::Action;
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let cases = reg.register(&actor, now, kim_chols("L", 12)).unwrap();
        let person = |user: &str, org: &str, role: Role| Principal {
            user: user.into(),
            org: org.into(),
            roles: vec![role],
        };
        let registrar = person(&actor.user, &actor.org, Role::Registrar);
        let delegate = person("cta", "neutral", Role::Interviewer);
        let kr = person("kr", "receiving:KR", Role::Liaison);
        let settings = Settings::default();
        let mut act = |who: &Principal, command: serde_json::Value| {
            let command = serde_json::from_value(command).unwrap();
            reg.act(who, now, &settings, &command).unwrap();
        };
        // A place (a record about no one), and each captive in his own state: moved there,
        // interviewed in private (his statements sealed), accepted by a receiving state, his
        // consent to it seeing his identity given; one erased.
        act(
            &registrar,
            serde_json::json!({"command": "define_place", "place": "Camp 3", "kind": "camp"}),
        );
        for (i, case) in cases.iter().enumerate() {
            if i % 2 == 0 {
                act(
                    &registrar,
                    serde_json::json!({"command": "move_custody", "case": case, "place": "Camp 3"}),
                );
            }
            if i % 3 == 0 {
                act(
                    &delegate,
                    serde_json::json!({"command": "record_interview", "case": case,
                        "language": "ko", "private": true, "wish": "KR",
                        "fear_of_persecution": i % 2 == 0, "notes": "his brother is in Hamhung"}),
                );
            }
            if i % 4 == 1 {
                act(
                    &kr,
                    serde_json::json!({"command": "record_acceptance", "case": case, "state": "KR"}),
                );
            }
            if i == 9 {
                act(
                    &delegate,
                    serde_json::json!({"command": "record_consent", "case": case,
                        "recipient": "receiving:KR", "classes": ["identity"]}),
                );
            }
        }
        reg.erase(&actor, now, &cases[5], "asked by the test")
            .unwrap();
        // Reads of records, which the law's view does not read back.
        for case in [&cases[0], &cases[0], &cases[3]] {
            reg.record_read(&delegate, now, case, &["identity"])
                .unwrap();
        }
        let all: Vec<&str> = cases.iter().map(String::as_str).collect();
        let load = |persons: Option<&[&str]>| {
            crate::law::load_world_of(&*reg.conn, &reg.keys, persons).unwrap()
        };
        let (together, everyone) = (load(Some(&all)), load(None));
        let from_every_event =
            crate::law::load_world_from_every_event(&*reg.conn, &reg.keys).unwrap();
        assert_eq!(everyone, from_every_event);
        assert!(everyone.cases[all[5]].erased);
        for case in &all {
            let alone = crate::law::load_world(&*reg.conn, &reg.keys, Some(case)).unwrap();
            assert!(alone.cases.contains_key(*case), "{case}");
            assert_eq!(together.cases.get(*case), alone.cases.get(*case), "{case}");
            assert_eq!(everyone.cases.get(*case), alone.cases.get(*case), "{case}");
            assert_eq!(together.places, alone.places);
        }
        assert_eq!(together.places.len(), 1);
        // Only those asked about.
        let some = load(Some(&all[3..6]));
        assert_eq!(
            some.cases.keys().collect::<Vec<_>>(),
            cases[3..6].iter().collect::<Vec<_>>()
        );
        assert!(load(Some(&[])).cases.is_empty());
        // One after another, folded from his own records alone: each as in the whole world.
        let each = |persons: Option<&[&str]>| {
            let mut seen = std::collections::BTreeMap::new();
            crate::law::each_case(&*reg.conn, &reg.keys, persons, |case, state| {
                assert!(
                    seen.insert(case.to_string(), state.clone()).is_none(),
                    "{case}"
                );
            })
            .unwrap();
            seen
        };
        let whole: std::collections::BTreeMap<String, asylon_core::law::Case> = everyone
            .cases
            .iter()
            .map(|(case, state)| (case.clone(), (**state).clone()))
            .collect();
        assert_eq!(each(None), whole);
        let some: Vec<String> = each(Some(&all[3..6])).into_keys().collect();
        assert_eq!(some, cases[3..6]);
        // Each caller's listing, in pages of every size, is the captives the policy lets him
        // see one by one.
        for who in [&registrar, &delegate, &kr] {
            let one_by_one: Vec<&str> = all
                .iter()
                .copied()
                .filter(|c| reg.authorized(who, c, Action::ReadCore).is_ok())
                .collect();
            // The receiving state those it accepted (the erased one's public record among
            // them), the others everyone.
            let expected: Vec<&str> = match who.org.as_str() {
                "receiving:KR" => vec![all[1], all[5], all[9]],
                _ => all.clone(),
            };
            assert_eq!(one_by_one, expected, "{}", who.org);
            for limit in [1, 3, 100] {
                let (listed, _) = walk(|after| reg.persons_visible(who, after, limit).unwrap());
                assert_eq!(listed, one_by_one, "{} in pages of {limit}", who.org);
                // The same from the referrals kept with the duties, whole pages each.
                let mut kept = crate::Duties::new(settings.clone());
                let (listed, pages) = walk(|after| {
                    reg.persons_visible_kept(&mut kept, who, after, limit)
                        .unwrap()
                });
                assert_eq!(listed, one_by_one, "{}, kept, in pages of {limit}", who.org);
                let full = pages.len().saturating_sub(1);
                assert!(pages[..full].iter().all(|&n| n == limit), "{pages:?}");
            }
        }
        // A state none was referred to sees none.
        let jp = person("jp", "receiving:JP", Role::Liaison);
        let mut kept = crate::Duties::new(settings.clone());
        let (none, next) = reg.persons_visible_kept(&mut kept, &jp, "", 10).unwrap();
        assert!(none.is_empty() && next.is_none(), "{none:?}");
        // A cursor that is no case number is refused as the listing refuses it.
        match reg.persons_visible_kept(&mut kept, &kr, "AS-1x", 2) {
            Err(StoreError::Invalid(fields)) => assert_eq!(fields[0].field, "after"),
            other => panic!("{:?}", other.map(|p| p.0.len())),
        }
    }

    #[test]
    fn registered_external_ids_are_found_among_many_asked_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        reg.register(&actor, now, kim_chols("R", 600)).unwrap();
        // More than one query's worth, registered and unknown ids interleaved.
        let asked: Vec<String> = (0..600)
            .flat_map(|i| [format!("R{i}"), format!("U{i}")])
            .collect();
        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
        let mut found = reg.registered_among(&asked).unwrap();
        found.sort();
        let mut expected: Vec<String> = (0..600).map(|i| format!("R{i}")).collect();
        expected.sort();
        assert_eq!(found, expected);
        assert!(reg.registered_among(&[]).unwrap().is_empty());
        assert_eq!(reg.cases_given().unwrap(), 600);
    }

    #[test]
    fn a_streams_index_rows_are_folded_when_it_ends_and_erased_wherever_they_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let rows = |reg: &Registry, table: &str, case: &str| -> i64 {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE person = ?1");
            let number = case_index(case).unwrap();
            let row = reg.keys.conn.one(&sql, args![number]).unwrap().unwrap();
            row.i64(0).unwrap()
        };
        let all = |reg: &Registry, table: &str| -> i64 {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            reg.keys
                .conn
                .one(&sql, &[])
                .unwrap()
                .unwrap()
                .i64(0)
                .unwrap()
        };
        let registered = reg
            .register(&actor, now, vec![registration("X", "Kim Chol")])
            .unwrap();
        // One registration writes into the main index.
        assert!(rows(&reg, "name_index", &registered[0]) > 0);
        assert_eq!(all(&reg, "name_index_recent"), 0);

        // What an import killed after its first commits leaves: keys stored and events
        // appended as a stream does, and its end, which folds, never reached.
        let batch = sealed_stream(
            &mut reg,
            &[vec![
                registration("A", "Ri Han Gom"),
                registration("B", "박웅희"),
            ]],
        )
        .remove(0)
        .0;
        reg.keys.store(batch.iter(), IndexTable::Recent).unwrap();
        let stopped =
            append_registrations(&reg.split().0, &actor, now, batch, |_, _| Ok(())).unwrap();
        assert_eq!(stopped.len(), 2);
        for case in &stopped {
            assert!(rows(&reg, "name_index_recent", case) > 0, "{case}");
            assert_eq!(rows(&reg, "name_index", case), 0, "{case}");
        }
        // Erasing one finds his rows there.
        {
            let tx = Tx::write(&*reg.keys.conn).unwrap();
            assert_eq!(
                reg.keys.delete_person(&stopped[0]).unwrap(),
                Some(vec![Class::Identity])
            );
            tx.commit().unwrap();
        }
        assert_eq!(rows(&reg, "name_index_recent", &stopped[0]), 0);
        assert!(rows(&reg, "name_index_recent", &stopped[1]) > 0);

        // The next stream that ends folds its own rows and those left waiting.
        let batches = sealed_stream(&mut reg, &[vec![registration("C", "Pak Ung-hui")]]);
        let mut done = Vec::new();
        reg.register_stream((&actor, now), None, batches.into_iter(), |cases, _| {
            done.extend_from_slice(cases)
        })
        .unwrap();
        assert_eq!(all(&reg, "name_index_recent"), 0);
        for case in [&registered[0], &stopped[1], &done[0]] {
            assert!(rows(&reg, "name_index", case) > 0, "{case}");
        }
        assert_eq!(rows(&reg, "name_index", &stopped[0]), 0);
    }

    /// Streams `batches` batches of 20 registrations into a new registry and returns the size
    /// of its log's WAL at the end (the registry still open, so the WAL is still there).
    /// Checks that every captive is registered and that the key store's WAL is empty.
    fn wal_after_stream(batches: usize) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = new_registry(dir.path());
        let per_batch = 20;
        let regs: Vec<Vec<Registration>> = (0..batches)
            .map(|b| {
                (0..per_batch)
                    .map(|i| registration(&format!("E{b}-{i}"), "Kim Chol"))
                    .collect()
            })
            .collect();
        let stream = sealed_stream(&mut reg, &regs);
        let mut acknowledged = 0;
        reg.register_stream((&actor, now), None, stream.into_iter(), |cases, _| {
            acknowledged += cases.len()
        })
        .unwrap();
        assert_eq!(acknowledged, batches * per_batch);
        assert_eq!(reg.persons().unwrap().len(), batches * per_batch);
        let wal = |db: &str| {
            std::fs::metadata(dir.path().join("r").join(format!("{db}-wal")))
                .unwrap()
                .len()
        };
        // The key store's WAL was folded and emptied once its last keys were stored.
        assert_eq!(wal("keys.db"), 0);
        wal("registry.db")
    }

    #[test]
    fn a_long_stream_writes_the_logs_wal_again_from_its_start() {
        // A stream writes its WAL from the start again after every RESTART_EVERY batches, so
        // the WAL holds at most about RESTART_EVERY batches' commits, however long the stream;
        // never written from its start again, it would hold all of them. A fold beside the log
        // may also end just before a commit, and the WAL then restarts sooner: comparing two
        // streams' WALs made one lucky and the test fail (seen on a loaded machine). So what a
        // batch adds to the WAL is measured first where no fold runs at all (streams shorter
        // than CHECKPOINT_EVERY batches), and the long stream's WAL held to two intervals'
        // worth of batches, a third of what it would be without the restarts.
        const { assert!(3 < CHECKPOINT_EVERY) };
        let (one, three) = (wal_after_stream(1), wal_after_stream(3));
        let per_batch = three.saturating_sub(one) / 2;
        assert!(
            per_batch > 0,
            "WAL after one batch {one} bytes, after three {three}"
        );
        let n = 6 * RESTART_EVERY;
        let long = wal_after_stream(n);
        let bound = one + 2 * RESTART_EVERY as u64 * per_batch;
        assert!(
            long < bound,
            "WAL after {n} batches {long} bytes, more than {bound}: one batch adds {per_batch}"
        );
    }
}
