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
use crate::search::{indexed, service_number_key, service_token};
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
        if let StoreError::SharedServiceNumber { with, .. } = &refusal
            && !with.starts_with("persons[")
        {
            let cases = [with.clone()];
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

    /// For each of `asked` (a power, and a service number of a captive who depends on it), the
    /// captives of the registry who depend on that power and hold that number
    /// ([`service_number_key`]: the same letters and digits), by case number. Found through the
    /// blind index; erased captives hold none. A number without a letter or digit is held by
    /// nobody.
    pub fn service_number_holders(
        &self,
        asked: &[(&str, &str)],
    ) -> Result<Vec<Vec<Holder>>, StoreError> {
        let tokens = self.service_tokens();
        let asked: Vec<Option<ServiceToken>> = asked
            .iter()
            .map(|(power, number)| tokens.token(power, number))
            .collect();
        let wanted: Vec<ServiceToken> = asked.iter().flatten().copied().collect();
        let found: HashMap<ServiceToken, Vec<Holder>> = wanted
            .iter()
            .copied()
            .zip(self.service_token_holders(&wanted)?)
            .collect();
        Ok(asked
            .iter()
            .map(|t| t.and_then(|t| found.get(&t)).cloned().unwrap_or_default())
            .collect())
    }

    /// For each of `tokens`, the captives of the registry who hold it ([`Registry::
    /// service_number_holders`]). Asked a few hundred per query, in the index's order: the
    /// tokens are random, and asked in the order of a file each one read another page of the
    /// index. An import of 100,000 into a registry of a million, its validating stage in
    /// `--timings` (three alternating runs): 0.23 s without asking, 0.49 s asking a thousand
    /// rows at a time as they were read, 0.37 s asking all of them at the end, in order.
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
        let Some(number) = reg.identity.service_number.as_deref() else {
            return Ok(None);
        };
        let power = reg.core.power.as_str();
        let Some(token) = service_token(&self.blind_index_key(), power, number) else {
            return Ok(None);
        };
        let his = self.keys.name_tokens(case)?.unwrap_or_default();
        if shared == SharedNumbers::Allowed
            || crate::search::split_tokens(&his).contains(&token.as_slice())
        {
            return Ok(None);
        }
        let holders = self.service_number_holders(&[(power, number)])?;
        Ok(holders
            .into_iter()
            .flatten()
            .find(|h| h.case != case)
            .map(|h| StoreError::SharedServiceNumber {
                power: power.to_string(),
                with: h.case,
                at: None,
            }))
    }

    /// The first of `regs` whose service number another of them, or a captive of the registry,
    /// holds for the same power: refused with the other's place in the batch or case number.
    /// Nothing when `shared` allows it.
    pub(crate) fn shared_service_number(
        &self,
        regs: &[Registration],
        shared: SharedNumbers,
    ) -> Result<Option<StoreError>, StoreError> {
        if shared == SharedNumbers::Allowed {
            return Ok(None);
        }
        let given: Vec<(usize, &str, &str)> = regs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                Some((
                    i,
                    r.core.power.as_str(),
                    r.identity.service_number.as_deref()?,
                ))
            })
            .filter(|(_, _, n)| !service_number_key(n).is_empty())
            .collect();
        let mut first: HashMap<(&str, String), usize> = HashMap::new();
        for (i, power, number) in &given {
            if let Some(earlier) = first.insert((power, service_number_key(number)), *i) {
                return Ok(Some(StoreError::SharedServiceNumber {
                    power: power.to_string(),
                    with: format!("persons[{earlier}]"),
                    at: Some(*i),
                }));
            }
        }
        let asked: Vec<(&str, &str)> = given.iter().map(|(_, p, n)| (*p, *n)).collect();
        let holders = self.service_number_holders(&asked)?;
        Ok(given
            .iter()
            .zip(holders)
            .find_map(|((i, power, _), holders)| {
                holders.first().map(|h| StoreError::SharedServiceNumber {
                    power: power.to_string(),
                    with: h.case.clone(),
                    at: (regs.len() > 1).then_some(*i),
                })
            }))
    }
}
