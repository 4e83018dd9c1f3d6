//! `ledger verify`: recompute the Merkle tree over every event, check each event's MAC, the signed
//! head, the projection against a replay, and optionally that the log extends an earlier
//! checkpoint. The first failure is named by its sequence number.

use crate::StoreError;
use crate::registry::{ConsistencyProof, EVENT_COLUMNS, InclusionProof, Registry, row_to_event};
use asylon_core::Projection;
use asylon_ledger::{
    Checkpoint, Hash, consistency_proof, inclusion_proof, leaf_hash_with, root, verify_consistency,
};

#[derive(Debug, serde::Serialize)]
pub struct VerifyReport {
    pub size: u64,
    pub root: String,
    pub persons: usize,
    /// Size of the earlier checkpoint the log was proven to extend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends_checkpoint: Option<u64>,
    /// Registered persons whose keys are not in the key store: erased after this copy of the
    /// registry was taken, or an erasure interrupted before it was recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_keys: Vec<String>,
}

fn tampered(seq: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Tampered {
        seq,
        reason: reason.into(),
    }
}

impl Registry {
    /// Reads every event in order, checking positions and MACs; returns the leaf hashes and the
    /// replayed projection.
    fn checked_leaves(&self) -> Result<(Vec<Hash>, Projection), StoreError> {
        let mut leaves = Vec::new();
        let mut projection = Projection::default();
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq");
        self.conn.each(&sql, &[], &mut |r| {
            let expected = leaves.len() as u64 + 1;
            let seq = r
                .i64(0)
                .ok()
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| {
                    tampered(expected, "the sequence number is not a positive integer")
                })?;
            if seq != expected {
                return Err(tampered(
                    expected,
                    format!(
                        "event {expected} is missing: the log goes from {} to {seq}",
                        expected - 1
                    ),
                ));
            }
            let ev = row_to_event(&r).map_err(|e| tampered(seq, format!("unreadable: {e}")))?;
            let mac: Vec<u8> = r
                .blob(9)
                .map_err(|e| tampered(seq, format!("MAC unreadable: {e}")))?;
            let leaf = leaf_hash_with(|sink| ev.write_leaf(sink));
            if !self.mac_key.verify(seq, &leaf, &mac) {
                return Err(tampered(
                    seq,
                    format!(
                        "event {seq} ({}, id {}) does not match its MAC: it was altered, moved, \
                         or inserted by someone without the registry key",
                        ev.kind, ev.id
                    ),
                ));
            }
            projection
                .apply(&ev)
                .map_err(|e| tampered(seq, format!("the event cannot be applied: {e}")))?;
            leaves.push(leaf);
            Ok(())
        })?;
        Ok((leaves, projection))
    }

    pub fn verify(&self, earlier: Option<&Checkpoint>) -> Result<VerifyReport, StoreError> {
        // One read transaction: a snapshot of the log, its head and the projection, while a
        // server goes on writing.
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let (leaves, replayed) = self.checked_leaves()?;
        let size = leaves.len() as u64;
        let tree_root = root(&leaves);

        let (head, head_time, head_sig) = self.signed_head()?;
        if head.size() > size {
            return Err(tampered(
                size + 1,
                format!(
                    "events {} to {} are missing from the end of the log (the signed head has {})",
                    size + 1,
                    head.size(),
                    head.size()
                ),
            ));
        }
        if head.size() < size {
            return Err(tampered(
                head.size() + 1,
                format!(
                    "event {} was appended after the last signed head (size {})",
                    head.size() + 1,
                    head.size()
                ),
            ));
        }
        if head.root() != tree_root {
            return Err(StoreError::VerifyFailed(
                "the events do not hash to the stored tree head: the head was altered".into(),
            ));
        }
        let body = Checkpoint::signed_body(&self.origin, size, &tree_root, &head_time);
        if !asylon_vault::verify_signature(&self.public_key(), &body, &head_sig) {
            return Err(StoreError::VerifyFailed(
                "the stored tree head's signature does not verify".into(),
            ));
        }

        let stored = self.persons()?;
        if stored.len() != replayed.persons.len() {
            return Err(StoreError::VerifyFailed(format!(
                "the projection holds {} persons but the events register {}: run `asylon rebuild`",
                stored.len(),
                replayed.persons.len()
            )));
        }
        for row in &stored {
            if replayed.persons.get(&row.case_no) != Some(row) {
                return Err(StoreError::VerifyFailed(format!(
                    "the projection of {} differs from a replay of the events: run `asylon rebuild`",
                    row.case_no
                )));
            }
        }

        let mut with_keys = std::collections::HashSet::new();
        self.keys
            .conn
            .each("SELECT person FROM data_keys", &[], &mut |r| {
                with_keys.insert(r.text(0)?);
                Ok(())
            })?;
        let erased_with_keys: Vec<&str> = stored
            .iter()
            .filter(|p| p.status == asylon_core::PersonStatus::Erased)
            .filter(|p| with_keys.contains(&p.case_no))
            .map(|p| p.case_no.as_str())
            .collect();
        if !erased_with_keys.is_empty() {
            return Err(StoreError::VerifyFailed(format!(
                "the key store holds the data keys of {}, whom the log records as erased: \
                 their sealed data can be read with them (a key store older than the \
                 erasure?); `asylon rebuild` destroys them",
                erased_with_keys.join(", ")
            )));
        }
        let without_keys = stored
            .iter()
            .filter(|p| p.status == asylon_core::PersonStatus::Registered)
            .filter(|p| !with_keys.contains(&p.case_no))
            .map(|p| p.case_no.clone())
            .collect();
        let extends_checkpoint = match earlier {
            None => None,
            Some(cp) => {
                self.check_checkpoint(cp, &leaves)?;
                Some(cp.size)
            }
        };
        Ok(VerifyReport {
            size,
            root: hex::encode(tree_root),
            persons: stored.len(),
            extends_checkpoint,
            without_keys,
        })
    }

    /// Checks an earlier checkpoint: ours, validly signed, and a prefix of the current log.
    fn check_checkpoint(&self, cp: &Checkpoint, leaves: &[Hash]) -> Result<(), StoreError> {
        let fail = |m: String| Err(StoreError::VerifyFailed(m));
        if cp.origin != self.origin {
            return fail(format!(
                "the checkpoint is for registry {}, not this one ({})",
                cp.origin, self.origin
            ));
        }
        if cp.key_id != asylon_vault::key_id(&self.public_key()) {
            return fail(format!(
                "the checkpoint was signed by key {}, not this registry's",
                cp.key_id
            ));
        }
        if !asylon_vault::verify_signature(&self.public_key(), &cp.body(), &cp.signature) {
            return fail("the checkpoint's signature does not verify: it was altered".into());
        }
        let size = leaves.len() as u64;
        if cp.size > size {
            return fail(format!(
                "the checkpoint has {} events but the log has only {size}: events were removed",
                cp.size
            ));
        }
        let proof = consistency_proof(leaves, cp.size)
            .map_err(|e| StoreError::VerifyFailed(e.to_string()))?;
        verify_consistency(cp.size, size, &cp.root, &root(leaves), &proof).map_err(|_| {
            StoreError::VerifyFailed(format!(
                "the log does not extend the checkpoint of size {}: its first {} events were rewritten",
                cp.size, cp.size
            ))
        })
    }

    /// A consistency proof from the tree of `old_size` events to that of `new_size` (the
    /// current one if `None`), for a party that kept a checkpoint of `old_size` and holds one
    /// of `new_size`; checked before it is returned.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let leaves = cut(self.checked_leaves()?.0, new_size, "to")?;
        let new_size = leaves.len() as u64;
        if old_size == 0 || old_size > new_size {
            return Err(invalid(
                "from",
                format!("must be between 1 and the size proven to, {new_size}"),
            ));
        }
        let path = consistency_proof(&leaves, old_size)
            .map_err(|e| StoreError::VerifyFailed(e.to_string()))?;
        let old_root = root(leaves.get(..old_size as usize).unwrap_or_default());
        let tree_root = root(&leaves);
        verify_consistency(old_size, new_size, &old_root, &tree_root, &path)
            .map_err(|e| StoreError::VerifyFailed(e.to_string()))?;
        Ok(ConsistencyProof {
            old_size,
            tree_size: new_size,
            root: tree_root,
            path,
        })
    }

    /// An inclusion proof of event `seq` in the tree of `size` events (the current one if
    /// `None`: a party holding a checkpoint asks at its size), checked before it is returned.
    pub fn prove(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, StoreError> {
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let (leaves, _) = self.checked_leaves()?;
        let index = seq
            .checked_sub(1)
            .filter(|i| *i < leaves.len() as u64)
            .ok_or(StoreError::UnknownEvent(seq))?;
        let leaves = cut(leaves, size, "size")?;
        let size = leaves.len() as u64;
        if index >= size {
            return Err(invalid(
                "size",
                format!("event {seq} came after the log's first {size}"),
            ));
        }
        let leaf = *usize::try_from(index)
            .ok()
            .and_then(|i| leaves.get(i))
            .ok_or(StoreError::UnknownEvent(seq))?;
        let path =
            inclusion_proof(&leaves, index).map_err(|e| StoreError::VerifyFailed(e.to_string()))?;
        let tree_root = root(&leaves);
        asylon_ledger::verify_inclusion(&leaf, index, size, &path, &tree_root)
            .map_err(|e| StoreError::VerifyFailed(e.to_string()))?;
        Ok(InclusionProof {
            seq,
            leaf_index: index,
            tree_size: size,
            leaf_hash: leaf,
            root: tree_root,
            path,
        })
    }
}

/// Bad input in one field of a request for a proof.
fn invalid(field: &str, reason: String) -> StoreError {
    StoreError::Invalid(vec![asylon_core::FieldError {
        field: field.into(),
        reason,
    }])
}

/// `leaves` cut to the first `size` (all of them if `None`); a size the log does not have is
/// refused as the input `field`.
fn cut(mut leaves: Vec<Hash>, size: Option<u64>, field: &str) -> Result<Vec<Hash>, StoreError> {
    let have = leaves.len() as u64;
    if let Some(n) = size {
        if n == 0 || n > have {
            return Err(invalid(
                field,
                format!("must be between 1 and the current size, {have}"),
            ));
        }
        leaves.truncate(n as usize);
    }
    Ok(leaves)
}
