//! `asylon ledger check`: what a party that keeps the registry's checkpoints (the neutral
//! agency, a receiving state) can check on its own, with no access to the registry and no key
//! of it. The detaining power runs the registry; `ledger verify` is its own word that the log
//! is whole. A checkpoint's signature, an event's inclusion in the log it signs and that log's
//! extension of an earlier checkpoint are checked here from the files alone, so that a
//! rewritten history (a recorded wish deleted before an exchange) is found by the party it was
//! hidden from.

use crate::commands::read_input;
use crate::output::parse_signed_checkpoint;
use anyhow::{Context, Result, anyhow, bail};
use asylon_ledger::{Checkpoint, verify_consistency, verify_inclusion};
use asylon_store::{ConsistencyProof, InclusionProof};
use std::path::Path;

/// What to check a checkpoint's log against.
pub enum Against<'a> {
    /// Only its signature.
    Nothing,
    /// An inclusion proof (`ledger prove`) of an event in it.
    Inclusion(&'a Path),
    /// An earlier checkpoint, and the consistency proof (`ledger consistency`) that it extends it.
    Extends { earlier: &'a Path, proof: &'a Path },
}

pub fn check(checkpoint: &Path, key_id: Option<&str>, against: Against<'_>) -> Result<()> {
    let (cp, key) = signed(checkpoint, "the checkpoint")?;
    if let Some(want) = key_id
        && !cp.key_id.eq_ignore_ascii_case(want.trim())
    {
        bail!(
            "the checkpoint is signed by key {}, not by {want}: it is not the registry's you know",
            cp.key_id
        );
    }
    say!(
        "ok: checkpoint of registry {}: {} events, root {}, signed at {} by key {}",
        cp.origin,
        cp.size,
        hex::encode(cp.root),
        cp.time,
        cp.key_id
    )?;
    match against {
        Against::Nothing => Ok(()),
        Against::Inclusion(path) => inclusion(&cp, path),
        Against::Extends { earlier, proof } => extends(&cp, &key, earlier, proof),
    }
}

/// An inclusion proof (`path`) of an event in the log `cp` signs.
fn inclusion(cp: &Checkpoint, path: &Path) -> Result<()> {
    let proof: InclusionProof = serde_json::from_str(&read_input(path)?)
        .context("the inclusion proof is not the JSON `asylon ledger prove` prints")?;
    // The event's number is not what the proof proves, its place in the tree is: the
    // two must agree, or the line below would name another event than the one proven.
    if proof.leaf_index.checked_add(1) != Some(proof.seq) {
        bail!(
            "the inclusion proof names event {} but proves the leaf at index {} (event {})",
            proof.seq,
            proof.leaf_index,
            proof.leaf_index.saturating_add(1)
        );
    }
    if (proof.tree_size, proof.root) != (cp.size, cp.root) {
        bail!(
            "the inclusion proof is for the log of {} events with root {}, not the \
             checkpoint's: ask for it at the checkpoint's size ({})",
            proof.tree_size,
            hex::encode(proof.root),
            cp.size
        );
    }
    verify_inclusion(
        &proof.leaf_hash,
        proof.leaf_index,
        cp.size,
        &proof.path,
        &cp.root,
    )
    .map_err(|e| anyhow!("the inclusion proof does not hold: {e}"))?;
    say!(
        "ok: event {} (leaf hash {}) is in the log this checkpoint signs",
        proof.seq,
        hex::encode(proof.leaf_hash)
    )?;
    Ok(())
}

/// That the log `cp` (signed with `key`) signs extends the `earlier` checkpoint, by `proof`.
fn extends(cp: &Checkpoint, key: &[u8; 32], earlier: &Path, proof: &Path) -> Result<()> {
    let (old, old_key) = signed(earlier, "the earlier checkpoint")?;
    if old.origin != cp.origin {
        bail!(
            "the earlier checkpoint is of registry {}, this one of {}: they are not one log",
            old.origin,
            cp.origin
        );
    }
    if old_key != *key {
        bail!(
            "the earlier checkpoint is signed by key {}, this one by {}",
            old.key_id,
            cp.key_id
        );
    }
    let proof: ConsistencyProof = serde_json::from_str(&read_input(proof)?)
        .context("the consistency proof is not the JSON `asylon ledger consistency` prints")?;
    if (proof.old_size, proof.tree_size, proof.root) != (old.size, cp.size, cp.root) {
        bail!(
            "the consistency proof is from {} to {} events (root {}), not from the \
             earlier checkpoint's {} to this one's {}: ask for it between the two",
            proof.old_size,
            proof.tree_size,
            hex::encode(proof.root),
            old.size,
            cp.size
        );
    }
    verify_consistency(old.size, cp.size, &old.root, &cp.root, &proof.path).map_err(|e| {
        anyhow!(
            "the log of {} events does not extend the earlier checkpoint of {} events: its \
             history was rewritten, or the proof is damaged ({e})",
            cp.size,
            old.size
        )
    })?;
    say!(
        "ok: the log of {} events extends the earlier checkpoint of {} events \
         (consistency proof verified)",
        cp.size,
        old.size
    )?;
    Ok(())
}

/// A checkpoint from `path` whose signature holds under the key it names, and that key.
fn signed(path: &Path, what: &str) -> Result<(Checkpoint, [u8; 32])> {
    let (cp, key) =
        parse_signed_checkpoint(&read_input(path)?).with_context(|| what.to_string())?;
    if cp.key_id != asylon_vault::key_id(&key) {
        bail!(
            "{what}: its key id {} is not that of its public key",
            cp.key_id
        );
    }
    if !asylon_vault::verify_signature(&key, &cp.body(), &cp.signature) {
        bail!("{what}: its signature does not verify: it was altered after it was signed");
    }
    Ok((cp, key))
}
