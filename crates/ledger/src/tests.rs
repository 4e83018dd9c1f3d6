//! Known-answer tests (RFC 6962 vectors as published by the Certificate Transparency project)
//! and adversarial tests of the verifiers.

use super::*;

fn h(text: &str) -> Hash {
    parse_hash(text).unwrap_or([0xee; 32])
}

fn reference_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|x| leaf_hash(&hex::decode(x).unwrap_or_default()))
    .collect()
}

/// A leaf hashed from pieces is the leaf hashed whole, however the data is cut.
#[test]
fn a_leaf_hashed_in_pieces_is_the_leaf_hashed_whole() {
    let data: Vec<u8> = (0u8..=200).collect();
    let whole = leaf_hash(&data);
    for cut in [0, 1, 63, 64, 100, 201] {
        let (a, b) = data.split_at(cut);
        let pieces = leaf_hash_with(|sink| {
            sink(a);
            sink(&[]);
            sink(b);
        });
        assert_eq!(pieces, whole, "cut at {cut}");
    }
    assert_ne!(leaf_hash_with(|sink| sink(&data[1..])), whole);
}

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn roots_match_the_rfc_6962_vectors_for_every_size() {
    let leaves = reference_leaves();
    for n in 0..=8 {
        assert_eq!(hex::encode(root(&leaves[..n])), ROOTS[n], "size {n}");
    }
}

#[test]
fn the_frontier_gives_the_same_roots_as_the_recursive_definition() {
    let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut f = Frontier::new();
    assert_eq!(f.root(), empty_root());
    for (i, l) in leaves.iter().enumerate() {
        f.push(*l);
        assert_eq!(f.root(), root(&leaves[..=i]), "size {}", i + 1);
        let again = Frontier::from_parts(f.size(), f.peaks().to_vec());
        assert_eq!(again.as_ref(), Some(&f));
    }
    assert!(Frontier::from_parts(3, vec![[0; 32]]).is_none());
}

#[test]
fn the_frontier_tells_every_whole_subtree_once_with_its_hash() {
    let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut f = Frontier::new();
    let mut told = std::collections::BTreeMap::new();
    for l in &leaves {
        f.push_with(*l, |height, index, hash| {
            assert!(
                told.insert((height, index), *hash).is_none(),
                "{height} {index} twice"
            );
        });
    }
    // Every whole subtree of 2..=256 leaves within the 300, and no other.
    let expected: usize = (1..=8).map(|h| 300 >> h).sum();
    assert_eq!(told.len(), expected);
    for ((height, index), hash) in told {
        let (lo, hi) = ((index << height) as usize, ((index + 1) << height) as usize);
        assert_eq!(hash, root(&leaves[lo..hi]), "height {height} index {index}");
    }
}

#[test]
fn proofs_from_subtrees_are_those_from_the_leaves_and_ask_one_range_a_level() {
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for n in 1..=leaves.len() {
        let tree = &leaves[..n];
        let asked = std::cell::Cell::new(0);
        let mut subtree = |lo: u64, hi: u64| -> Result<Hash, ProofError> {
            asked.set(asked.get() + 1);
            Ok(root(&tree[lo as usize..hi as usize]))
        };
        let levels = (n as u64).next_power_of_two().trailing_zeros() as usize;
        for i in 0..n as u64 {
            asked.set(0);
            let path = inclusion_proof_from(n as u64, i, &mut subtree).unwrap();
            assert_eq!(path, inclusion_proof(tree, i).unwrap(), "n {n} i {i}");
            assert!(asked.get() <= levels, "n {n} i {i}: {} ranges", asked.get());
        }
        for m in 0..=n as u64 {
            asked.set(0);
            let proof = consistency_proof_from(m, n as u64, &mut subtree).unwrap();
            assert_eq!(proof, consistency_proof(tree, m).unwrap(), "n {n} m {m}");
            assert!(
                asked.get() <= levels + 1,
                "n {n} m {m}: {} ranges",
                asked.get()
            );
        }
        assert!(inclusion_proof_from(n as u64, n as u64, &mut subtree).is_err());
        assert!(consistency_proof_from(n as u64 + 1, n as u64, &mut subtree).is_err());
    }
}

#[test]
fn inclusion_proofs_match_the_published_paths() {
    let leaves = reference_leaves();
    let cases: [(u64, &[&str]); 2] = [
        (
            0,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    let r = h(ROOTS[8]);
    for (index, expected) in cases {
        let path = inclusion_proof(&leaves, index).unwrap_or_default();
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(path, expected, "index {index}");
        assert_eq!(
            verify_inclusion(&leaves[index as usize], index, 8, &path, &r),
            Ok(())
        );
    }
}

#[test]
fn consistency_proofs_match_the_published_paths() {
    let leaves = reference_leaves();
    let cases: [(u64, u64, &[&str]); 3] = [
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, expected) in cases {
        let proof = consistency_proof(&leaves[..new as usize], old).unwrap_or_default();
        let expected: Vec<Hash> = expected.iter().map(|x| h(x)).collect();
        assert_eq!(proof, expected, "{old} -> {new}");
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        assert_eq!(verify_consistency(old, new, &r1, &r2, &proof), Ok(()));
    }
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    if let Some(b) = out.get_mut(bit / 8) {
        *b ^= 1 << (bit % 8);
    }
    out
}

#[test]
fn every_inclusion_proof_verifies_and_no_tampered_one_does() {
    let leaves: Vec<Hash> = (0u32..37).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    for n in 1..=leaves.len() {
        let tree = &leaves[..n];
        let r = root(tree);
        let size = n as u64;
        for i in 0..size {
            let leaf = &tree[i as usize];
            let path = inclusion_proof(tree, i).unwrap_or_default();
            assert_eq!(verify_inclusion(leaf, i, size, &path, &r), Ok(()));
            for bit in [0, 77, 255] {
                assert!(verify_inclusion(&flip(leaf, bit), i, size, &path, &r).is_err());
                assert!(verify_inclusion(leaf, i, size, &path, &flip(&r, bit)).is_err());
                for k in 0..path.len() {
                    let mut bad = path.clone();
                    bad[k] = flip(&bad[k], bit);
                    assert!(verify_inclusion(leaf, i, size, &bad, &r).is_err());
                }
            }
            // Wrong index or size, a path cut short or padded.
            assert!(
                verify_inclusion(leaf, i ^ 1, size, &path, &r).is_err() || n == 1 || i ^ 1 >= size
            );
            // (A different size with the same path shape can reach the same root: the size is
            // bound by the signed checkpoint, not by the path, so it is not asserted here.)
            let mut longer = path.clone();
            longer.push(r);
            assert!(verify_inclusion(leaf, i, size, &longer, &r).is_err());
            if let Some((_, shorter)) = path.split_last() {
                assert!(verify_inclusion(leaf, i, size, shorter, &r).is_err());
            }
        }
        assert!(verify_inclusion(&tree[0], size, size, &[], &r).is_err());
    }
}

#[test]
fn every_consistency_proof_verifies_and_no_tampered_one_does() {
    let leaves: Vec<Hash> = (0u32..33).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    for new in 1..=leaves.len() {
        let r2 = root(&leaves[..new]);
        for old in 1..=new {
            let r1 = root(&leaves[..old]);
            let (o, n) = (old as u64, new as u64);
            let proof = consistency_proof(&leaves[..new], o).unwrap_or_default();
            assert_eq!(
                verify_consistency(o, n, &r1, &r2, &proof),
                Ok(()),
                "{old}->{new}"
            );
            for bit in [3, 128, 254] {
                assert!(verify_consistency(o, n, &flip(&r1, bit), &r2, &proof).is_err());
                assert!(verify_consistency(o, n, &r1, &flip(&r2, bit), &proof).is_err());
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k], bit);
                    assert!(
                        verify_consistency(o, n, &r1, &r2, &bad).is_err(),
                        "{old}->{new} #{k}"
                    );
                }
            }
            if old < new {
                // Claiming another earlier size, or swapping the trees, must not pass.
                assert!(verify_consistency(o + 1, n, &r1, &r2, &proof).is_err());
                assert!(verify_consistency(n, o, &r2, &r1, &proof).is_err());
                let mut longer = proof.clone();
                longer.push(r2);
                assert!(verify_consistency(o, n, &r1, &r2, &longer).is_err());
            }
        }
    }
}

#[test]
fn a_checkpoint_from_a_forked_log_is_not_consistent_with_the_real_one() {
    // Both logs share 10 events; the fork rewrites event 7 (say, deletes a recorded wish) and
    // then grows to the same length. A checkpoint of the fork cannot be proven against the real log.
    let real: Vec<Hash> = (0u32..20).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let mut fork = real.clone();
    fork[7] = leaf_hash(b"the wish was never recorded");
    let fork_root_at_12 = root(&fork[..12]);
    let proof = consistency_proof(&real, 12).unwrap_or_default();
    assert_eq!(
        verify_consistency(12, 20, &fork_root_at_12, &root(&real), &proof),
        Err(ProofError::RootMismatch)
    );
    // A checkpoint taken before the fork point still verifies against both.
    let before = root(&real[..6]);
    let p = consistency_proof(&fork, 6).unwrap_or_default();
    assert_eq!(verify_consistency(6, 20, &before, &root(&fork), &p), Ok(()));
}

#[test]
fn the_empty_tree_is_extended_by_every_tree_and_sizes_cannot_shrink() {
    let leaves: Vec<Hash> = (0u32..5).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    assert_eq!(
        verify_consistency(0, 5, &empty_root(), &root(&leaves), &[]),
        Ok(())
    );
    assert!(verify_consistency(0, 5, &[1; 32], &root(&leaves), &[]).is_err());
    assert!(matches!(
        consistency_proof(&leaves, 6),
        Err(ProofError::SizesReversed { .. })
    ));
    assert!(inclusion_proof(&leaves, 5).is_err());
}

#[test]
fn checkpoint_bodies_differ_when_any_field_differs() {
    let r = [7u8; 32];
    let base = Checkpoint::signed_body("reg", 10, &r, "2025-01-01T00:00:00Z");
    assert_ne!(
        base,
        Checkpoint::signed_body("reg", 11, &r, "2025-01-01T00:00:00Z")
    );
    assert_ne!(
        base,
        Checkpoint::signed_body("reh", 10, &r, "2025-01-01T00:00:00Z")
    );
    assert_ne!(
        base,
        Checkpoint::signed_body("reg", 10, &[8; 32], "2025-01-01T00:00:00Z")
    );
    assert_ne!(
        base,
        Checkpoint::signed_body("reg", 10, &r, "2025-01-01T00:00:01Z")
    );
}
