//! `ledger verify`: recompute the Merkle tree over every event, check each event's MAC, the signed
//! head, the projection against a replay, and optionally that the log extends an earlier
//! checkpoint. The first failure is named by its sequence number.
//!
//! Proofs (`ledger prove`, `ledger consistency`): made from the hashes of the log's whole
//! subtrees kept as they are completed (at [`KEPT_HEIGHT`] and above) and a few hundred events,
//! and checked against the signed tree head before they are given.

use crate::StoreError;
use crate::db::Sql;
use crate::progress::{Counter, Progress};
use crate::registry::{ConsistencyProof, EVENT_COLUMNS, InclusionProof, Registry, row_to_event};
use asylon_core::Projection;
use asylon_ledger::{
    Checkpoint, Frontier, Hash, consistency_proof, consistency_proof_from, inclusion_proof_from,
    leaf_hash_with, root, verify_consistency,
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
    /// The key store's files may still hold keys an erasure deleted: its purge was held back
    /// by an older reader, or stopped (`asylon purge-keys` completes it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keys_purge_due: bool,
}

/// The number of `case` if it is a case number as the registry writes it (`AS-000017`, not
/// `AS-0000017`).
fn number_of(case: &str) -> Option<u64> {
    let n = u64::try_from(crate::register::case_index(case)?).ok()?;
    (crate::register::case_number(n) == case).then_some(n)
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
    pub(crate) fn checked_leaves(
        &self,
        progress: &dyn Progress,
    ) -> Result<(Vec<Hash>, Projection), StoreError> {
        let mut leaves = Vec::new();
        let mut projection = Projection::default();
        let mut counter = Counter::begin(progress, "events checked", self.log_size());
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq");
        self.conn.each(&sql, &[], &mut |r| {
            counter.add(1);
            let (seq, ev, leaf) = self.checked_leaf(&r, leaves.len() as u64 + 1)?;
            projection
                .apply(&ev)
                .map_err(|e| tampered(seq, format!("the event cannot be applied: {e}")))?;
            leaves.push(leaf);
            Ok(())
        })?;
        Ok((leaves, projection))
    }

    /// The event in row `r`, which must be event `expected`, and its leaf hash, checked against
    /// its MAC.
    fn checked_leaf(
        &self,
        r: &crate::db::Row,
        expected: u64,
    ) -> Result<(u64, asylon_core::Event, Hash), StoreError> {
        let seq = r
            .i64(0)
            .ok()
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| tampered(expected, "the sequence number is not a positive integer"))?;
        if seq != expected {
            return Err(tampered(
                expected,
                format!(
                    "event {expected} is missing: the log goes from {} to {seq}",
                    expected - 1
                ),
            ));
        }
        let ev = row_to_event(r).map_err(|e| tampered(seq, format!("unreadable: {e}")))?;
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
        Ok((seq, ev, leaf))
    }

    /// The leaf hashes of events `lo + 1 ..= hi` (leaves `lo..hi`), each checked against its
    /// MAC.
    fn leaves_between(&self, lo: u64, hi: u64) -> Result<Vec<Hash>, StoreError> {
        let mut leaves = Vec::new();
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq");
        let (from, to) = (i64::try_from(lo), i64::try_from(hi));
        let (Ok(from), Ok(to)) = (from, to) else {
            return Err(StoreError::UnknownEvent(hi));
        };
        self.conn.each(&sql, crate::db::args![from, to], &mut |r| {
            let (_, _, leaf) = self.checked_leaf(&r, lo + leaves.len() as u64 + 1)?;
            leaves.push(leaf);
            Ok(())
        })?;
        if leaves.len() as u64 != hi - lo {
            return Err(tampered(
                lo + leaves.len() as u64 + 1,
                format!(
                    "event {} is missing from the log",
                    lo + leaves.len() as u64 + 1
                ),
            ));
        }
        Ok(leaves)
    }

    /// The hash of leaves `lo..hi`: a kept node for a whole subtree of [`KEPT_HEIGHT`] or more,
    /// else made from the events (a large range whose node is missing, in a log kept before
    /// nodes were, is read whole).
    fn subtree(&self, lo: u64, hi: u64) -> Result<Hash, StoreError> {
        let n = hi - lo;
        if n.is_power_of_two() && n.trailing_zeros() >= KEPT_HEIGHT && lo.is_multiple_of(n) {
            let height = n.trailing_zeros();
            let row = self.conn.one(
                "SELECT hash FROM tree_nodes WHERE height = ?1 AND idx = ?2",
                crate::db::args![i64::from(height), i64::try_from(lo >> height).unwrap_or(-1)],
            )?;
            if let Some(row) = row {
                return Hash::try_from(row.blob(0)?.as_slice()).map_err(|_| {
                    StoreError::Damaged(format!(
                        "the log's kept node at height {height} for events {} to {hi} is not a hash",
                        lo + 1
                    ))
                });
            }
            return Ok(root(&self.leaves_between(lo, hi)?));
        }
        if n > 2 << KEPT_HEIGHT {
            let k = asylon_ledger::split(n);
            return Ok(asylon_ledger::node_hash(
                &self.subtree(lo, lo + k)?,
                &self.subtree(lo + k, hi)?,
            ));
        }
        Ok(root(&self.leaves_between(lo, hi)?))
    }

    /// The signed tree head, its signature checked: its size and root.
    fn checked_head(&self) -> Result<(u64, Hash), StoreError> {
        let (head, time, sig) = self.signed_head()?;
        let body = Checkpoint::signed_body(&self.origin, head.size(), &head.root(), &time);
        if !asylon_vault::verify_signature(&self.public_key(), &body, &sig) {
            return Err(StoreError::VerifyFailed(
                "the stored tree head's signature does not verify".into(),
            ));
        }
        Ok((head.size(), head.root()))
    }

    /// The root of the log's first `size` events, bound to the signed head `head` (its size
    /// and root): the head's own root at its size; at an earlier size, the root made from kept
    /// nodes and events, checked by a consistency proof to the head's. A kept node that is not
    /// what the events make fails here, or in the check of the proof made against this root.
    fn root_at(&self, size: u64, head: (u64, Hash)) -> Result<Hash, StoreError> {
        let (head_size, head_root) = head;
        if size == head_size {
            return Ok(head_root);
        }
        let tree_root = self.subtree(0, size)?;
        let proof = consistency_proof_from(size, head_size, &mut |lo, hi| self.subtree(lo, hi))?;
        verify_consistency(size, head_size, &tree_root, &head_root, &proof)
            .map_err(|_| unbound())?;
        Ok(tree_root)
    }

    pub fn verify(&self, earlier: Option<&Checkpoint>) -> Result<VerifyReport, StoreError> {
        self.verify_showing(earlier, &())
    }

    /// [`Registry::verify`], telling `progress` how many events it has checked.
    pub fn verify_showing(
        &self,
        earlier: Option<&Checkpoint>,
        progress: &dyn Progress,
    ) -> Result<VerifyReport, StoreError> {
        Ok(self.verified(earlier, progress)?.0)
    }

    /// [`Registry::verify`], and the leaf hashes it checked.
    pub(crate) fn verified(
        &self,
        earlier: Option<&Checkpoint>,
        progress: &dyn Progress,
    ) -> Result<(VerifyReport, Vec<Hash>), StoreError> {
        // One read transaction: a snapshot of the log, its head and the projection, while a
        // server goes on writing.
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let (leaves, replayed) = self.checked_leaves(progress)?;
        let size = leaves.len() as u64;
        let tree_root = root(&leaves);

        let (head_size, head_root) = self.checked_head()?;
        if head_size > size {
            return Err(tampered(
                size + 1,
                format!(
                    "events {} to {} are missing from the end of the log (the signed head has {})",
                    size + 1,
                    head_size,
                    head_size
                ),
            ));
        }
        if head_size < size {
            return Err(tampered(
                head_size + 1,
                format!(
                    "event {} was appended after the last signed head (size {})",
                    head_size + 1,
                    head_size
                ),
            ));
        }
        if head_root != tree_root {
            return Err(StoreError::VerifyFailed(
                "the events do not hash to the stored tree head: the head was altered".into(),
            ));
        }

        // The projection is compared a page at a time, as it is listed, against the replay:
        // a registry of a million is not held twice. Its rows are counted first, the listing
        // reading only rows numbered as case numbers are: a row added under any other key
        // would not be in it.
        let registered = replayed.persons.len() as u64;
        let more_or_fewer = |held: u64| {
            StoreError::VerifyFailed(format!(
                "the projection holds {held} persons but the events register {registered}: run \
                 `asylon rebuild`"
            ))
        };
        let rows = self.person_count()?;
        if rows != registered {
            return Err(more_or_fewer(rows));
        }
        // Whose keys the key store holds, in one reading (asked a page at a time instead,
        // PostgreSQL took five times as long over its partitions), by the number of each case
        // (a million strings took five times the memory); a row under anything but a case
        // number is nobody's keys.
        let mut with_keys = std::collections::HashSet::new();
        self.keys
            .conn
            .each("SELECT person FROM data_keys", &[], &mut |r| {
                with_keys.extend(number_of(&r.text(0)?));
                Ok(())
            })?;
        let mut listed = 0u64;
        let (mut erased_with_keys, mut without_keys) = (Vec::new(), Vec::new());
        self.person_pages(&mut |page| {
            for row in page {
                listed += 1;
                if replayed.persons.get(&row.case_no).map(|r| &**r) != Some(&row) {
                    return Err(StoreError::VerifyFailed(format!(
                        "the projection of {} differs from a replay of the events: run \
                         `asylon rebuild`",
                        row.case_no
                    )));
                }
                let keyed = number_of(&row.case_no).is_some_and(|n| with_keys.contains(&n));
                match row.status {
                    asylon_core::PersonStatus::Erased if keyed => {
                        erased_with_keys.push(row.case_no)
                    }
                    asylon_core::PersonStatus::Registered if !keyed => {
                        without_keys.push(row.case_no);
                    }
                    _ => {}
                }
            }
            Ok(())
        })?;
        if listed != registered {
            return Err(more_or_fewer(listed));
        }
        if !erased_with_keys.is_empty() {
            return Err(StoreError::VerifyFailed(format!(
                "the key store holds the data keys of {}, whom the log records as erased: \
                 their sealed data can be read with them (a key store older than the \
                 erasure?); `asylon rebuild` destroys them",
                erased_with_keys.join(", ")
            )));
        }
        let extends_checkpoint = match earlier {
            None => None,
            Some(cp) => {
                self.check_checkpoint(cp, &leaves)?;
                Some(cp.size)
            }
        };
        let report = VerifyReport {
            size,
            root: hex::encode(tree_root),
            persons: replayed.persons.len(),
            extends_checkpoint,
            without_keys,
            keys_purge_due: self.purge_due()?,
        };
        Ok((report, leaves))
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
    /// of `new_size`; checked before it is returned. It reads the log's kept subtree hashes and
    /// a few hundred events at most, not the whole log.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let head = self.checked_head()?;
        let new_size = within(head.0, new_size, "to")?;
        if old_size == 0 || old_size > new_size {
            return Err(invalid(
                "from",
                format!("must be between 1 and the size proven to, {new_size}"),
            ));
        }
        let mut subtree = |lo, hi| self.subtree(lo, hi);
        let path = consistency_proof_from(old_size, new_size, &mut subtree)?;
        let old_root = self.subtree(0, old_size)?;
        let tree_root = self.root_at(new_size, head)?;
        verify_consistency(old_size, new_size, &old_root, &tree_root, &path)
            .map_err(|_| unbound())?;
        Ok(ConsistencyProof {
            old_size,
            tree_size: new_size,
            root: tree_root,
            path,
        })
    }

    /// An inclusion proof of event `seq` in the tree of `size` events (the current one if
    /// `None`: a party holding a checkpoint asks at its size), checked before it is returned.
    /// It reads the log's kept subtree hashes and a few hundred events at most.
    pub fn prove(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, StoreError> {
        let _snapshot = crate::db::Tx::read(&*self.conn)?;
        let head = self.checked_head()?;
        let index = seq
            .checked_sub(1)
            .filter(|i| *i < head.0)
            .ok_or(StoreError::UnknownEvent(seq))?;
        let size = within(head.0, size, "size")?;
        if index >= size {
            return Err(invalid(
                "size",
                format!("event {seq} came after the log's first {size}"),
            ));
        }
        let leaf = *self
            .leaves_between(index, index + 1)?
            .first()
            .ok_or(StoreError::UnknownEvent(seq))?;
        let path = inclusion_proof_from(size, index, &mut |lo, hi| self.subtree(lo, hi))?;
        let tree_root = self.root_at(size, head)?;
        asylon_ledger::verify_inclusion(&leaf, index, size, &path, &tree_root)
            .map_err(|_| unbound())?;
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

/// A proof made from the log's kept nodes and events does not check against its signed head:
/// a kept node (or the head) is not what the events make.
fn unbound() -> StoreError {
    StoreError::VerifyFailed(
        "the log's kept subtree hashes do not lead to its signed head: run `asylon ledger \
         verify` to find what was altered, and `asylon rebuild` to make them again"
            .into(),
    )
}

/// Height from which the log keeps the hashes of its whole subtrees (registry migration 4):
/// 256 events. A proof reads at most about twice that many events besides the kept nodes.
pub(crate) const KEPT_HEIGHT: u32 = 8;

/// Adds `leaf` to `frontier`, and to `nodes` each whole subtree it completes that the log
/// keeps (height, index, hash).
pub(crate) fn push_keeping(frontier: &mut Frontier, leaf: Hash, nodes: &mut Vec<(u32, u64, Hash)>) {
    frontier.push_with(leaf, |height, index, hash| {
        if height >= KEPT_HEIGHT {
            nodes.push((height, index, *hash));
        }
    });
}

/// Keeps the nodes a write completed (height, index, hash) in the write's transaction.
pub(crate) fn keep_nodes(db: &dyn Sql, nodes: &[(u32, u64, Hash)]) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<crate::db::Val<'_>>> = nodes
        .iter()
        .map(|(height, index, hash)| {
            crate::db::args![
                i64::from(*height),
                i64::try_from(*index).unwrap_or(i64::MAX),
                &hash[..]
            ]
            .to_vec()
        })
        .collect();
    db.insert_many("tree_nodes (height, idx, hash)", 3, &rows)
}

/// Makes the log's kept nodes again from its leaves, all of them in order (`asylon rebuild`,
/// a restore, a move between backends), in the caller's transaction.
pub(crate) fn remake_nodes(db: &dyn Sql, leaves: &[Hash]) -> Result<(), StoreError> {
    db.exec("DELETE FROM tree_nodes", &[])?;
    let (mut frontier, mut nodes) = (Frontier::new(), Vec::new());
    for leaf in leaves {
        push_keeping(&mut frontier, *leaf, &mut nodes);
    }
    for chunk in nodes.chunks(1000) {
        keep_nodes(db, chunk)?;
    }
    Ok(())
}

/// The size asked for (`None`: the log's, `have`), which must be one the log has; refused as
/// the input `field` otherwise.
fn within(have: u64, size: Option<u64>, field: &str) -> Result<u64, StoreError> {
    match size {
        None => Ok(have),
        Some(n) if n == 0 || n > have => Err(invalid(
            field,
            format!("must be between 1 and the current size, {have}"),
        )),
        Some(n) => Ok(n),
    }
}

/// Bad input in one field of a request for a proof.
fn invalid(field: &str, reason: String) -> StoreError {
    StoreError::Invalid(vec![asylon_core::FieldError {
        field: field.into(),
        reason,
    }])
}
