//! The registry's history as an RFC 6962 (Certificate Transparency) Merkle tree.
//!
//! Leaves are hashes of the canonical bytes of each event; the tree hash, inclusion proofs and
//! consistency proofs follow RFC 6962 section 2.1, and the verifiers follow the iterative
//! algorithms of RFC 9162 section 2.1.3.2 and 2.1.4.2. Written here rather than taken from a crate
//! because the available crates either tie the tree to their own storage or to a particular log
//! server; Asylon keeps its leaves in its own event table and needs only these few functions.

mod checkpoint;
mod frontier;
mod proof;

pub use checkpoint::Checkpoint;
pub use frontier::Frontier;
pub use proof::{
    ProofError, Subtree, consistency_proof, consistency_proof_from, inclusion_proof,
    inclusion_proof_from, root, split, verify_consistency, verify_inclusion,
};

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`: the domain-separated hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// [`leaf_hash`] of data handed over in pieces by `write`.
pub fn leaf_hash_with(write: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    write(&mut |piece| h.update(piece));
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the domain-separated hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Parses a 64-digit hex string into a hash, for checkpoints and proofs read from files.
pub fn parse_hash(text: &str) -> Result<Hash, ProofError> {
    let bytes = hex::decode(text).map_err(|_| ProofError::Malformed("hash is not hex"))?;
    bytes
        .try_into()
        .map_err(|_| ProofError::Malformed("hash is not 32 bytes"))
}

#[cfg(test)]
mod tests;
