//! One service number, one captive. A service number identifies a soldier within his armed
//! forces, so two captives who depend on the same power and give the same one are most likely
//! one man registered twice (from two lists, or once at capture and once at a camp). Two case
//! numbers for one man split his record: a wish not to return recorded on one does not stop a
//! repatriation proposed on the other (G1). So a registration whose service number a captive
//! of the same power already holds, in the registry or in the same batch, is refused, naming
//! him. Two men can still share one (a clerk's error, a false document: DESIGN, "The record"):
//! the registrar who has checked says so ([`SharedNumbers::Allowed`]) and he is registered.
//!
//! A refusal that names a registered captive tells its reader that he holds the number given,
//! which is a read of his identity: like a name search, it is recorded
//! ([`Registry::record_service_number_match`]), though nothing else is written.
//!
//! Another process can register beside this one (the CLI beside a running server, two servers on
//! one PostgreSQL schema). A registration or correction asks the registry again inside its
//! write's transaction ([`NumbersGiven::held`]); an import, which writes in many transactions,
//! watches for other writers as it goes ([`StreamWatch`]).
//!
//! The numbers themselves are sealed. Each captive's is kept in the blind index as a keyed hash
//! of the power and the number ([`crate::search::service_token`]) beside his names' tokens, so it
//! is erased with them, replaced with them by a correction, rebuilt with them by `rebuild`, and
//! backed up with the key store.

use crate::StoreError;
use crate::db::Sql;
use crate::keystore::{IndexTable, KeyStore};
use crate::registry::{Registry, persons_in};
use crate::search::{indexed, service_token};
use asylon_core::{Actor, PersonStatus, Registration, kind};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// Whether a registration may give a service number another captive of the same power holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SharedNumbers {
    /// Refused, naming the other captive (the default).
    #[default]
    Refused,
    /// Registered even so: the registrar has checked that they are two men.
    Allowed,
}

impl SharedNumbers {
    /// `Allowed` when the registrar said so (a flag or a parameter given as true).
    pub fn allowed_if(said: bool) -> Self {
        if said { Self::Allowed } else { Self::Refused }
    }
}

/// Who holds the service number a refused registration gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharedWith {
    /// A captive of the registry, by case number.
    Registered(String),
    /// Another registration of the same batch, by its place in it.
    Batch(usize),
}

/// A captive of the registry who holds a service number asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub case: String,
    pub external_id: Option<String>,
    /// The power he depends on (the one asked about).
    pub power: String,
}

/// Tokens asked of the blind index in one query.
const PER_QUERY: usize = 500;

/// What the blind index holds of a power and service number ([`service_token`]): a keyed hash,
/// made by [`ServiceTokens`], to be asked about with [`Registry::service_token_holders`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceToken([u8; 8]);

/// Makes [`ServiceToken`]s with the registry's blind-index key, without asking the registry:
/// for an import, which makes one for each row as it reads them and asks about all of them at
/// the end.
pub struct ServiceTokens(asylon_vault::BlindIndexKey);

impl ServiceToken {
    /// The token the blind index keeps of `token`, a whole one ([`service_token`]).
    pub(crate) fn of(token: &[u8; 16]) -> Self {
        let mut head = [0u8; 8];
        head.copy_from_slice(indexed(token));
        Self(head)
    }
}

impl ServiceTokens {
    /// The token of `number` for a captive who depends on `power`; `None` for a number with
    /// no letter or digit.
    pub fn token(&self, power: &str, number: &str) -> Option<ServiceToken> {
        service_token(&self.0, power, number).map(|t| ServiceToken::of(&t))
    }
}

impl Registry {
    /// Records that `actor` was told that `cases` hold service numbers he gave, when `refused`
    /// (a registration, a correction, an import) was refused for them: one event, as a name
    /// search is recorded, so that an auditor sees who learnt which captive holds a number.
    pub fn record_service_number_match(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        refused: &str,
        cases: &[String],
    ) -> Result<(), StoreError> {
        let public = serde_json::json!({"refused": refused, "results": cases}).to_string();
        self.record_lookup(actor, now, kind::SERVICE_NUMBER_MATCHED, public)
    }

    /// `refusal`, recorded first if it names a registered captive
    /// ([`Registry::record_service_number_match`]).
    pub(crate) fn told(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        refused: &str,
        refusal: StoreError,
    ) -> StoreError {
        if let StoreError::SharedServiceNumber {
            with: SharedWith::Registered(case),
            ..
        }
        | StoreError::RegisteredMeanwhile { case, .. } = &refusal
        {
            let cases = [case.clone()];
            // A refusal whose reading cannot be recorded is not given: the failure to record is.
            if let Err(e) = self.record_service_number_match(actor, now, refused, &cases) {
                return e;
            }
        }
        refusal
    }

    pub fn service_tokens(&self) -> ServiceTokens {
        ServiceTokens(self.blind_index_key())
    }

    /// For each of `tokens` (a power and a service number, [`ServiceTokens::token`]), the
    /// captives of the registry who depend on that power and hold that number (the same
    /// letters and digits, [`crate::service_number_key`]), by case number; erased captives hold
    /// none. Asked a few hundred per query, in the index's order: the tokens are random, and
    /// asked in the order of a file each one read another page of the index. An import of
    /// 100,000 into a registry of a million, its validating stage in `--timings` (three
    /// alternating runs): 0.23 s by df6de5d's build, which did not ask; 0.49 s by 58b5074's,
    /// asking a thousand rows at a time as they were read; 0.37 s by 0eff0b4's, asking all of
    /// them at the end, in order.
    pub fn service_token_holders(
        &self,
        tokens: &[ServiceToken],
    ) -> Result<Vec<Vec<Holder>>, StoreError> {
        holders_in(&*self.conn, &*self.keys.conn, tokens)
    }

    /// The service numbers `regs` give, to be asked of the registry by [`NumbersGiven::held`];
    /// refused at once when two of them give one number for one power (naming the first).
    /// Nothing to ask when `shared` allows it. Numbers are told the same by their tokens, as
    /// the registry tells them.
    pub(crate) fn numbers_given(
        &self,
        regs: &[Registration],
        shared: SharedNumbers,
    ) -> Result<NumbersGiven, StoreError> {
        if shared == SharedNumbers::Allowed {
            return Ok(NumbersGiven(Vec::new()));
        }
        let tokens = self.service_tokens();
        let batch = regs.len() > 1;
        let given: Vec<Given> = regs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let power = r.core.power.as_str();
                let token = tokens.token(power, r.identity.service_number.as_deref()?)?;
                Some(Given {
                    at: batch.then_some(i),
                    power: power.to_string(),
                    token,
                })
            })
            .collect();
        // Two of them only where the batch holds several: each has its place.
        let mut first: HashMap<ServiceToken, usize> = HashMap::new();
        for g in &given {
            if let Some(earlier) = first.insert(g.token, g.at.unwrap_or_default()) {
                return Err(g.refused(SharedWith::Batch(earlier)));
            }
        }
        Ok(NumbersGiven(given))
    }
}

/// A service number one registration (or correction) gives.
struct Given {
    /// Its place in its batch, if the batch holds more than one.
    at: Option<usize>,
    power: String,
    token: ServiceToken,
}

impl Given {
    fn refused(&self, with: SharedWith) -> StoreError {
        StoreError::SharedServiceNumber {
            power: self.power.clone(),
            with,
            at: self.at,
        }
    }
}

/// The service numbers a batch of registrations, or a correction, gives
/// ([`Registry::numbers_given`]), to be asked of the registry. They are asked before anything
/// is written, for a prompt refusal that takes no case number, and again inside the write's
/// transaction, under the log's write lock ([`NumbersGiven::held`]): another process that
/// registered one of them in between (the CLI beside a running server, two servers on one
/// PostgreSQL schema) has committed its keys and events by the time this write holds the lock,
/// so the second registration of one number is refused however the two fall in time.
pub(crate) struct NumbersGiven(Vec<Given>);

impl NumbersGiven {
    /// The refusal of the first number a captive of the registry other than `except` (the
    /// captive a correction corrects) holds, asked on `log` (the log's connection, inside the
    /// write's transaction) and `keys`. A correction that keeps the number his record holds is
    /// not asked: registered as sharing it, he is not refused at each correction.
    pub(crate) fn held(
        &self,
        log: &dyn Sql,
        keys: &KeyStore,
        except: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let his = match except {
            Some(case) => keys.name_tokens(case)?.unwrap_or_default(),
            None => Vec::new(),
        };
        let his = crate::search::split_tokens(&his);
        let asked: Vec<&Given> = self
            .0
            .iter()
            .filter(|g| !his.iter().any(|t| indexed(t) == g.token.0))
            .collect();
        let tokens: Vec<ServiceToken> = asked.iter().map(|g| g.token).collect();
        let holders = holders_in(log, &*keys.conn, &tokens)?;
        let refusal = asked.iter().zip(holders).find_map(|(g, holders)| {
            let h = holders
                .into_iter()
                .find(|h| Some(h.case.as_str()) != except)?;
            Some(g.refused(SharedWith::Registered(h.case)))
        });
        refusal.map_or(Ok(()), Err)
    }
}

/// [`Registry::service_token_holders`], on the log's connection `log` and the key store's
/// `keys`.
fn holders_in(
    log: &dyn Sql,
    keys: &dyn Sql,
    tokens: &[ServiceToken],
) -> Result<Vec<Vec<Holder>>, StoreError> {
    let mut wanted: Vec<ServiceToken> = tokens.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: HashMap<Vec<u8>, Vec<i64>> = HashMap::new();
    for chunk in wanted.chunks(PER_QUERY) {
        let marks = crate::db::placeholders(chunk.len());
        let sql = IndexTable::BOTH
            .map(|t| {
                format!(
                    "SELECT token, person FROM {} WHERE token IN ({marks})",
                    t.name()
                )
            })
            .join(" UNION ALL ");
        let args: Vec<crate::db::Val<'_>> =
            chunk.iter().map(|t| crate::db::Val::Blob(&t.0)).collect();
        keys.each(&sql, &args, &mut |r| {
            found.entry(r.blob(0)?).or_default().push(r.i64(1)?);
            Ok(())
        })?;
    }
    // The captives found, in a few queries rather than one each: an import asks about every
    // row of its file at once.
    let mut numbers: Vec<i64> = found.values().flatten().copied().collect();
    numbers.sort_unstable();
    numbers.dedup();
    let cases = numbers
        .iter()
        .map(|&n| {
            u64::try_from(n)
                .map(crate::register::case_number)
                .map_err(|_| StoreError::Damaged("the blind index holds a negative case".into()))
        })
        .collect::<Result<Vec<String>, StoreError>>()?;
    // Not those whose registration was never written (keys stored for a batch that then
    // failed, or one still being written), nor the erased.
    let cases: Vec<&str> = cases.iter().map(String::as_str).collect();
    let people: HashMap<String, Holder> = persons_in(log, &cases)?
        .into_iter()
        .filter(|row| row.status != PersonStatus::Erased)
        .map(|row| {
            let holder = Holder {
                case: row.case_no.clone(),
                external_id: row.external_id,
                power: row.power,
            };
            (row.case_no, holder)
        })
        .collect();
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        let numbers = found
            .get(token.0.as_slice())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut holders: Vec<Holder> = numbers
            .iter()
            .filter_map(|&n| u64::try_from(n).ok())
            .filter_map(|n| people.get(&crate::register::case_number(n)).cloned())
            .collect();
        holders.sort_by(|a, b| asylon_core::law::by_case_number(&a.case, &b.case));
        holders.dedup();
        out.push(holders);
    }
    Ok(out)
}

/// Watches a stream of registrations ([`Registry::register_stream`]) for another writer. The
/// stream's service numbers were asked of the registry once, before it began (by its caller,
/// when the log held `checked_at` events); each batch is appended in a transaction of its own,
/// and between two of them another process may register a captive with one of the numbers still
/// to come. Such a process asks the registry in its own write ([`NumbersGiven::held`]), but the
/// stream's captive is not registered yet, only keyed (his keys are stored ahead of his event),
/// so it does not see him. So inside each batch's append the log's size is read: while it is
/// what this stream's own appends made it, nobody else has written (one read of the log's head a
/// batch). When it is not, the events the others appended are read, and of the captives they
/// registered or corrected (the only events that give a captive a number) the tokens are learnt
/// from the key store, on a connection of its own (the stream's key store is busy on its
/// writer's thread). A row whose number's token is among them is asked of the registry as it
/// is now (his number may have been corrected away, or he erased), and the first one a
/// registered captive holds stops the stream there ([`StoreError::RegisteredMeanwhile`]).
///
/// Other writers mostly write other events (a server records every read of a sealed class):
/// those cost one read of their kinds. Asking the whole registry about every row of every batch
/// once another writer had been seen, as this watch first did, cost an import of 100,000 rows
/// ≈ 0.13 s of wall time beside a registration of one captive (`ASYLON_BENCH_BESIDE=1
/// scripts/ab-import`, docs/import-speed.md).
pub(crate) struct StreamWatch {
    expected: u64,
    /// The tokens of the captives others registered or corrected since the check (every token
    /// of theirs, names' among them: a keyed hash of a name is never a number's). Who holds one
    /// is asked of the registry when a row gives it.
    others: HashSet<ServiceToken>,
    keys: Box<dyn Sql>,
}

impl StreamWatch {
    /// A watch from `checked_at`, with a connection of its own to the key store of `keys`;
    /// `None` for a key store in memory (tests), beside which nothing else can write.
    pub(crate) fn new(checked_at: u64, keys: &KeyStore) -> Result<Option<Self>, StoreError> {
        Ok(keys.conn.another()?.map(|keys| Self {
            expected: checked_at,
            others: HashSet::new(),
            keys,
        }))
    }

    /// Learns the tokens of the captives registered or corrected by the events after the
    /// `from`th, up to the `to`th: another writer's.
    fn learn(&mut self, log: &dyn Sql, (from, to): (u64, u64)) -> Result<(), StoreError> {
        let mut cases = Vec::new();
        let (from, to) = (i64::try_from(from), i64::try_from(to));
        let (Ok(from), Ok(to)) = (from, to) else {
            return Err(StoreError::Damaged("the log's size is out of range".into()));
        };
        log.each(
            "SELECT person FROM events WHERE seq > ?1 AND seq <= ?2 AND kind IN (?3, ?4)",
            crate::db::args![from, to, kind::PERSON_REGISTERED, kind::PERSON_AMENDED],
            &mut |r| {
                if let Some(case) = r.opt_text(0)? {
                    cases.push(case);
                }
                Ok(())
            },
        )?;
        cases.sort_unstable();
        cases.dedup();
        for chunk in cases.chunks(PER_QUERY) {
            let sql = format!(
                "SELECT name_tokens FROM data_keys WHERE person IN ({})",
                crate::db::placeholders(chunk.len())
            );
            let args: Vec<crate::db::Val<'_>> =
                chunk.iter().map(|c| crate::db::Val::Text(c)).collect();
            let others = &mut self.others;
            self.keys.each(&sql, &args, &mut |r| {
                let tokens = r.opt_blob(0)?.unwrap_or_default();
                for token in crate::search::split_tokens(&tokens) {
                    if let Ok(head) = <[u8; 8]>::try_from(indexed(token)) {
                        others.insert(ServiceToken(head));
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Asks, if another writer has registered or corrected a captive since the stream's check
    /// with one of `batch`'s service numbers, the registry about it, on `log` inside the
    /// append's transaction.
    pub(crate) fn check(
        &mut self,
        log: &dyn Sql,
        batch: &[crate::register::SealedRegistration],
    ) -> Result<(), StoreError> {
        let size = crate::registry::log_size_in(log)?;
        if size != self.expected {
            self.learn(log, (self.expected, size))?;
        }
        let given: Vec<(&crate::register::SealedRegistration, ServiceToken)> = batch
            .iter()
            .filter_map(|s| Some((s, s.service_token()?)))
            .filter(|(_, token)| self.others.contains(token))
            .collect();
        if !given.is_empty() {
            let tokens: Vec<ServiceToken> = given.iter().map(|g| g.1).collect();
            let holders = holders_in(log, &*self.keys, &tokens)?;
            // A holder with the row's external id is the row's captive, registered by another
            // import of the same rows: the append refuses him as registered already.
            let taken = given.iter().zip(holders).find_map(|((s, _), holders)| {
                let other = |h: &Holder| {
                    h.external_id.is_none() || h.external_id.as_deref() != s.external_id()
                };
                Some((s, holders.into_iter().find(other)?))
            });
            if let Some((s, holder)) = taken {
                return Err(StoreError::RegisteredMeanwhile {
                    external_id: s.external_id().map(str::to_string),
                    power: holder.power,
                    case: holder.case,
                });
            }
        }
        self.expected = size + batch.len() as u64;
        Ok(())
    }
}
