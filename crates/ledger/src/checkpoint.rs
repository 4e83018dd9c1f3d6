use crate::Hash;

/// A signed statement of the log's state: "this registry's log had `size` events with `root`".
///
/// The neutral agency and the receiving state keep these; later they demand a consistency proof
/// that the current log extends the one they hold. The signature covers the origin, the size and
/// the root (a root alone could be replayed for a shorter or longer tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which registry: a random id fixed at `init`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// RFC 3339 UTC time of signing.
    pub time: String,
    /// Hex of the first 8 bytes of SHA-256 of the signing public key.
    pub key_id: String,
    /// Ed25519 signature over [`Checkpoint::signed_body`].
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The exact bytes that are signed: one field per line, in a fixed order, under a versioned
    /// header, so no two different checkpoints share a body.
    pub fn signed_body(origin: &str, size: u64, root: &Hash, time: &str) -> Vec<u8> {
        format!(
            "asylon-checkpoint/v1\n{origin}\n{size}\n{}\n{time}\n",
            hex::encode(root)
        )
        .into_bytes()
    }

    pub fn body(&self) -> Vec<u8> {
        Self::signed_body(&self.origin, self.size, &self.root, &self.time)
    }
}
