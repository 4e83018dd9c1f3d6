use crate::{Hash, empty_root, node_hash};

/// The right edge of a Merkle tree: one hash per perfect subtree, largest first.
///
/// Appending a leaf and computing the root both take O(log n), so the store keeps this instead of
/// re-reading every leaf on each write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Perfect-subtree roots, left to right; their sizes are the set bits of `size`, descending.
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from stored parts; `None` when the peak count does not fit the size.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (size.count_ones() as usize == peaks.len()).then_some(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// [`Frontier::push`], telling `completed` of each whole subtree of two or more leaves
    /// that the leaf completes: its height (2^height leaves), its index among the subtrees of
    /// that height (it holds leaves `index << height .. (index + 1) << height`) and its hash.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut carry = leaf;
        let size = self.size + 1;
        // Each trailing one bit of the old size is a peak of the same height as `carry`.
        let (mut merges, mut height) = (self.size.trailing_ones(), 0);
        while merges > 0 {
            match self.peaks.pop() {
                Some(left) => carry = node_hash(&left, &carry),
                None => break,
            }
            height += 1;
            completed(height, (size >> height) - 1, &carry);
            merges -= 1;
        }
        self.peaks.push(carry);
        self.size = size;
    }

    /// The RFC 6962 tree head: peaks folded from the right.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}
