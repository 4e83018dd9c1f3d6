//! Registration, in two steps that can run on different threads: sealing (validation is done,
//! data keys made and wrapped, identity and family encrypted) and writing (one transaction per
//! batch). Case numbers are reserved first, so sealing, which binds the case number into every
//! ciphertext, does not need the write lock.

use crate::StoreError;
use crate::db::{Tx, Val, args, is_unique_violation};
use crate::registry::{NewEvent, Registry, meta_need, meta_put, new_id};
use asylon_core::{Actor, Class, CoreParticulars, FieldError, Registration, SealedPart, kind};
use asylon_vault::{BlindIndexKey, DataKey, Kek, key_label, seal_aad};
use std::collections::HashSet;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A registration ready to be written: nothing in it is plaintext except the public part.
pub struct SealedRegistration {
    case: String,
    id: String,
    core: CoreParticulars,
    public: String,
    parts: Vec<SealedPart>,
    identity_key: Option<Vec<u8>>,
    family_key: Option<Vec<u8>>,
    /// Blind-index tokens of his names.
    tokens: Vec<[u8; 16]>,
}

/// Seals registrations with the registry's KEK; can be moved to another thread.
pub struct Sealer {
    kek: Kek,
    blind: BlindIndexKey,
}

pub fn case_number(n: u64) -> String {
    format!("AS-{n:06}")
}

impl Sealer {
    /// Seals `regs` as cases `first`, `first + 1`, …
    pub fn seal(
        &self,
        first: u64,
        regs: &[Registration],
    ) -> Result<Vec<SealedRegistration>, StoreError> {
        let damaged = |e: serde_json::Error| StoreError::Damaged(e.to_string());
        let mut out = Vec::with_capacity(regs.len());
        for (n, reg) in (first..).zip(regs) {
            let case = case_number(n);
            let id = new_id();
            let identity = Zeroizing::new(serde_json::to_vec(&reg.identity).map_err(damaged)?);
            let family = (!reg.family.is_empty())
                .then(|| serde_json::to_vec(&reg.family).map(Zeroizing::new))
                .transpose()
                .map_err(damaged)?;
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
            let tokens = crate::search::name_tokens(&self.blind, &reg.identity.names);
            out.push(SealedRegistration {
                tokens,
                public: serde_json::to_string(&reg.core).map_err(damaged)?,
                core: reg.core.clone(),
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
        let next = meta_need(db, "next_case")?;
        let first = <[u8; 8]>::try_from(next.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Damaged("the case number counter is unreadable".into()))?;
        meta_put(db, "next_case", &(first + n).to_be_bytes())?;
        tx.commit()?;
        Ok(first)
    }

    /// Writes sealed registrations in one transaction; returns their case numbers in order.
    pub fn register_sealed(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        batch: Vec<SealedRegistration>,
    ) -> Result<Vec<String>, StoreError> {
        no_repeated_external_ids(batch.iter().map(|s| s.core.external_id.as_ref()))?;
        let external_ids: Vec<Option<String>> =
            batch.iter().map(|s| s.core.external_id.clone()).collect();
        // Keys first, in the key store: a crash after this commit leaves keys no event refers to
        // (harmless); the reverse would leave sealed data no key opens.
        let cases: Vec<String> = batch.iter().map(|s| s.case.clone()).collect();
        self.store_keys(&batch)?;
        let written = self.write(actor, now, move |_, _| {
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
        });
        match written {
            Ok(w) => Ok(w.into_iter().filter_map(|e| e.person).collect()),
            Err(e) => {
                // Nothing was registered: take the keys back.
                let _ = self.forget_keys(&cases);
                match e {
                    e if is_unique_violation(&e) => {
                        Err(self.duplicate_external_id(&external_ids).unwrap_or(e))
                    }
                    e => Err(e),
                }
            }
        }
    }

    /// Writes a batch's wrapped keys and name tokens to the key store in one transaction.
    fn store_keys(&mut self, batch: &[SealedRegistration]) -> Result<(), StoreError> {
        let db = &*self.keys.conn;
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
        let index: Vec<Vec<Val<'_>>> = batch
            .iter()
            .flat_map(|s| {
                s.tokens
                    .iter()
                    .map(move |t| args![&t[..], &s.case].to_vec())
            })
            .collect();
        db.insert_many("name_index (token, person)", 2, &index)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes keys stored for registrations that were then not written.
    fn forget_keys(&mut self, cases: &[String]) -> Result<(), StoreError> {
        let db = &*self.keys.conn;
        let tx = Tx::write(db)?;
        for case in cases {
            db.exec("DELETE FROM name_index WHERE person = ?1", args![case])?;
            db.exec("DELETE FROM data_keys WHERE person = ?1", args![case])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Registers validated captives in one transaction and returns their case numbers in order.
    pub fn register(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        regs: &[Registration],
    ) -> Result<Vec<String>, StoreError> {
        no_repeated_external_ids(regs.iter().map(|r| r.core.external_id.as_ref()))?;
        let first = self.reserve_cases(regs.len() as u64)?;
        let sealed = self.sealer().seal(first, regs)?;
        self.register_sealed(actor, now, sealed)
    }
}
