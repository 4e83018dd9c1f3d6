use crate::{Hash, empty_root, node_hash};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the earlier tree (size {old}) is larger than the later one (size {new})")]
    SizesReversed { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
}

/// Largest power of two strictly smaller than `n` (n >= 2): where RFC 6962 splits a tree of
/// `n` leaves into its two subtrees.
pub fn split(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 6962 MTH over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let at = usize::try_from(split(leaves.len() as u64)).unwrap_or(leaves.len());
            let (left, right) = leaves.split_at(at);
            node_hash(&root(left), &root(right))
        }
    }
}

/// The hash of leaves `lo..hi` of a tree, however they are kept: `root` of those leaves, or a
/// stored node for a whole subtree. The proofs below ask only for ranges the tree is made of
/// (RFC 6962's splits), so a store can answer most of them from the subtrees it kept.
pub type Subtree<'a, E> = dyn FnMut(u64, u64) -> Result<Hash, E> + 'a;

/// `leaves` as a [`Subtree`] source.
fn in_memory(leaves: &[Hash]) -> impl FnMut(u64, u64) -> Result<Hash, ProofError> + '_ {
    |lo, hi| {
        let range = usize::try_from(lo).ok().zip(usize::try_from(hi).ok());
        range
            .and_then(|(lo, hi)| leaves.get(lo..hi))
            .map(root)
            .ok_or(ProofError::Malformed("a range outside the leaves"))
    }
}

/// RFC 6962 PATH(m, D[n]): the audit path for leaf `index`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_from(leaves.len() as u64, index, &mut in_memory(leaves))
}

/// [`inclusion_proof`] in a tree of `size` leaves whose subtrees `subtree` gives: it asks for
/// at most one range per level of the tree.
pub fn inclusion_proof_from<E: From<ProofError>>(
    size: u64,
    index: u64,
    subtree: &mut Subtree<'_, E>,
) -> Result<Vec<Hash>, E> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    // From the top down, the sibling of each subtree that holds the leaf; the path lists them
    // from the bottom up.
    let mut siblings = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            siblings.push((lo + k, hi));
            hi = lo + k;
        } else {
            siblings.push((lo, lo + k));
            lo += k;
        }
    }
    siblings
        .into_iter()
        .rev()
        .map(|(lo, hi)| subtree(lo, hi))
        .collect()
}

/// RFC 6962 PROOF(m, D[n]): proves that the first `old_size` leaves are a prefix of `leaves`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_from(old_size, leaves.len() as u64, &mut in_memory(leaves))
}

/// [`consistency_proof`] between trees of `old_size` and `new_size` leaves whose subtrees
/// `subtree` gives: it asks for at most one range per level of the tree.
pub fn consistency_proof_from<E: From<ProofError>>(
    old_size: u64,
    new_size: u64,
    subtree: &mut Subtree<'_, E>,
) -> Result<Vec<Hash>, E> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        }
        .into());
    }
    let mut out = Vec::new();
    if old_size > 0 {
        subproof(old_size, 0, new_size, true, subtree, &mut out)?;
    }
    Ok(out)
}

/// RFC 6962 SUBPROOF(m, D[lo:hi], whole).
fn subproof<E>(
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    subtree: &mut Subtree<'_, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(subtree(lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, whole, subtree, out)?;
        out.push(subtree(lo + k, hi)?);
    } else {
        subproof(m - k, lo + k, hi, false, subtree, out)?;
        out.push(subtree(lo, lo + k)?);
    }
    Ok(())
}

/// RFC 9162 2.1.3.2: checks that `leaf` sits at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    expected_root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != expected_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 2.1.4.2: checks that the tree (`old_size`, `old_root`) is a prefix of
/// (`new_size`, `new_root`).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        // Every tree extends the empty one; the empty root is fixed.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
