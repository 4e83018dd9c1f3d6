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
//! The numbers themselves are sealed. Each captive's is kept in the blind index as a keyed hash
//! of the power and the number ([`crate::search::service_token`]) beside his names' tokens, so it
//! is erased with them, replaced with them by a correction, rebuilt with them by `rebuild`, and
//! backed up with the key store.

use crate::StoreError;
use crate::keystore::IndexTable;
use crate::registry::Registry;
use crate::search::{indexed, service_token};
use asylon_core::{Actor, PersonStatus, Registration, kind};
use std::collections::HashMap;
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

impl ServiceTokens {
    /// The token of `number` for a captive who depends on `power`; `None` for a number with
    /// no letter or digit.
    pub fn token(&self, power: &str, number: &str) -> Option<ServiceToken> {
        let token = service_token(&self.0, power, number)?;
        let mut head = [0u8; 8];
        head.copy_from_slice(indexed(&token));
        Some(ServiceToken(head))
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
        } = &refusal
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
            self.keys.conn.each(&sql, &args, &mut |r| {
                found.entry(r.blob(0)?).or_default().push(r.i64(1)?);
                Ok(())
            })?;
        }
        let mut people: HashMap<i64, Option<Holder>> = HashMap::new();
        let mut out = Vec::with_capacity(tokens.len());
        for token in tokens {
            let numbers = found
                .get(token.0.as_slice())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut holders = Vec::new();
            for &n in numbers {
                let holder = match people.get(&n) {
                    Some(known) => known.clone(),
                    None => {
                        let holder = self.holder(n)?;
                        people.insert(n, holder.clone());
                        holder
                    }
                };
                holders.extend(holder);
            }
            holders.sort_by(|a, b| asylon_core::law::by_case_number(&a.case, &b.case));
            holders.dedup();
            out.push(holders);
        }
        Ok(out)
    }

    /// The captive of number `n` in the blind index, unless his registration was never written
    /// (keys stored for a batch that then failed: harmless, and nobody's) or he was erased.
    fn holder(&self, n: i64) -> Result<Option<Holder>, StoreError> {
        let number = u64::try_from(n)
            .map_err(|_| StoreError::Damaged("the blind index holds a negative case".into()))?;
        match self.person(&crate::register::case_number(number)) {
            Ok(row) if row.status == PersonStatus::Erased => Ok(None),
            Ok(row) => Ok(Some(Holder {
                case: row.case_no,
                external_id: row.external_id,
                power: row.power,
            })),
            Err(StoreError::UnknownPerson(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The refusal of `reg`, the corrected particulars of `case`, if a captive other than
    /// `case` holds his service number for his power; nothing when `shared` allows it, or when
    /// the number is the one his record holds already (registered as shared, he is not asked
    /// again at each correction).
    pub(crate) fn shared_by_another(
        &self,
        case: &str,
        reg: &Registration,
        shared: SharedNumbers,
    ) -> Result<Option<StoreError>, StoreError> {
        let power = reg.core.power.as_str();
        let number = reg.identity.service_number.as_deref();
        let token = number.and_then(|n| self.service_tokens().token(power, n));
        let Some(token) = token.filter(|_| shared == SharedNumbers::Refused) else {
            return Ok(None);
        };
        let his = self.keys.name_tokens(case)?.unwrap_or_default();
        if crate::search::split_tokens(&his)
            .iter()
            .any(|t| indexed(t) == token.0)
        {
            return Ok(None);
        }
        let holders = self.service_token_holders(&[token])?;
        Ok(holders
            .into_iter()
            .flatten()
            .find(|h| h.case != case)
            .map(|h| StoreError::SharedServiceNumber {
                power: power.to_string(),
                with: SharedWith::Registered(h.case),
                at: None,
            }))
    }

    /// The first of `regs` whose service number another of them, or a captive of the registry,
    /// holds for the same power: refused with the other's place in the batch or case number.
    /// Nothing when `shared` allows it. Numbers are told the same by their tokens, as the
    /// registry tells them.
    pub(crate) fn shared_service_number(
        &self,
        regs: &[Registration],
        shared: SharedNumbers,
    ) -> Result<Option<StoreError>, StoreError> {
        if shared == SharedNumbers::Allowed {
            return Ok(None);
        }
        let tokens = self.service_tokens();
        let given: Vec<(usize, &str, ServiceToken)> = regs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let power = r.core.power.as_str();
                let token = tokens.token(power, r.identity.service_number.as_deref()?)?;
                Some((i, power, token))
            })
            .collect();
        let refused = |power: &str, with, i| StoreError::SharedServiceNumber {
            power: power.to_string(),
            with,
            at: (regs.len() > 1).then_some(i),
        };
        let mut first: HashMap<ServiceToken, usize> = HashMap::new();
        for &(i, power, token) in &given {
            if let Some(earlier) = first.insert(token, i) {
                return Ok(Some(refused(power, SharedWith::Batch(earlier), i)));
            }
        }
        let asked: Vec<ServiceToken> = given.iter().map(|g| g.2).collect();
        let holders = self.service_token_holders(&asked)?;
        Ok(given
            .iter()
            .zip(holders)
            .find_map(|(&(i, power, _), holders)| {
                let h = holders.into_iter().next()?;
                Some(refused(power, SharedWith::Registered(h.case), i))
            }))
    }
}
