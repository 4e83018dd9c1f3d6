//! Events: the only source of truth. Each is appended once and never changed.

use serde::{Deserialize, Serialize};

/// The classes of a record that are sealed separately (DESIGN, "The record"). `core` is not sealed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Identity,
    Family,
    Medical,
    Statements,
}

impl Class {
    pub const ALL: [Class; 4] = [
        Class::Identity,
        Class::Family,
        Class::Medical,
        Class::Statements,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Identity => "identity",
            Class::Family => "family",
            Class::Medical => "medical",
            Class::Statements => "statements",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Event kinds, as stored. Strings rather than an enum so an older binary can still verify and
/// list a log written by a newer one.
pub mod kind {
    pub const REGISTRY_CREATED: &str = "registry.created";
    pub const PERSON_REGISTERED: &str = "person.registered";
    pub const PERSON_ERASED: &str = "person.erased";
    /// His particulars corrected: the whole record as it now reads, sealed like a registration,
    /// and why (see [`crate::projection::Amended`]).
    pub const PERSON_AMENDED: &str = "person.amended";
    /// A sealed class was opened for someone: who, which person, which classes.
    pub const SEALED_READ: &str = "person.sealed_read";
    /// Someone searched the sealed names: who, which case numbers came back.
    pub const NAME_SEARCHED: &str = "registry.name_searched";
    /// Someone was told which captives hold a service number he gave (a registration, a
    /// correction or an import refused for it): who, what was refused, which case numbers.
    pub const SERVICE_NUMBER_MATCHED: &str = "registry.service_number_matched";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    pub org: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPart {
    pub class: Class,
    /// `nonce || ciphertext` under the person's data key for this class.
    pub ciphertext: Vec<u8>,
}

/// One entry of the log, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the log, from 1; leaf index is `seq - 1`.
    pub seq: u64,
    /// Random id, bound into the sealing of this event's payloads.
    pub id: String,
    /// RFC 3339 UTC.
    pub at: String,
    pub actor: Actor,
    /// Case number of the person concerned, if any.
    pub person: Option<String>,
    pub kind: String,
    /// Public payload: JSON text, committed to byte for byte.
    pub public: String,
    /// Sealed payloads, at most one per class, in class order.
    pub sealed: Vec<SealedPart>,
}

impl Event {
    /// The bytes the Merkle leaf commits to: every field, length-prefixed, under a versioned tag.
    /// Sealed payloads enter as ciphertext, so erasing a person's keys leaves the leaf unchanged.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.public.len());
        self.write_leaf(&mut |b| out.extend_from_slice(b));
        out
    }

    /// [`Event::leaf_bytes`] handed to `sink` piece by piece, so that they can be hashed as
    /// they come instead of being gathered first.
    pub fn write_leaf(&self, sink: &mut dyn FnMut(&[u8])) {
        let mut put = |pieces: &[&[u8]]| {
            let len: usize = pieces.iter().map(|p| p.len()).sum();
            sink(&(len as u64).to_be_bytes());
            for p in pieces {
                sink(p);
            }
        };
        put(&[b"asylon-event/v1"]);
        put(&[&self.seq.to_be_bytes()]);
        put(&[self.id.as_bytes()]);
        put(&[self.at.as_bytes()]);
        put(&[self.actor.user.as_bytes()]);
        put(&[self.actor.org.as_bytes()]);
        match &self.person {
            Some(p) => put(&[b"P", p.as_bytes()]),
            None => put(&[b"-"]),
        }
        put(&[self.kind.as_bytes()]);
        put(&[self.public.as_bytes()]);
        put(&[&(self.sealed.len() as u64).to_be_bytes()]);
        for part in &self.sealed {
            put(&[part.class.as_str().as_bytes()]);
            put(&[&part.ciphertext]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            seq: 3,
            id: "e".into(),
            at: "2025-01-01T00:00:00Z".into(),
            actor: Actor {
                user: "u".into(),
                org: "o".into(),
            },
            person: Some("AS-000001".into()),
            kind: kind::PERSON_REGISTERED.into(),
            public: "{}".into(),
            sealed: vec![SealedPart {
                class: Class::Identity,
                ciphertext: vec![1, 2, 3],
            }],
        }
    }

    /// The leaf's byte format is what every stored log was hashed with: it must not change.
    #[test]
    fn the_leaf_bytes_keep_their_format() {
        let want = "000000000000000f6173796c6f6e2d6576656e742f76310000000000000008000000000000000300\
                    00000000000001650000000000000014323032352d30312d30315430303a30303a30305a000000\
                    00000000017500000000000000016f000000000000000a5041532d3030303030310000000000000011\
                    706572736f6e2e7265676973746572656400000000000000027b7d0000000000000008000000000000\
                    000100000000000000086964656e746974790000000000000003010203";
        let got: String = sample()
            .leaf_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want.replace(' ', ""));
    }

    #[test]
    fn every_field_changes_the_leaf_bytes() {
        let base = sample().leaf_bytes();
        let edits: [fn(&mut Event); 11] = [
            (|e: &mut Event| e.seq = 4),
            (|e: &mut Event| e.id.push('x')),
            (|e: &mut Event| e.at.push('x')),
            (|e: &mut Event| e.actor.user.push('x')),
            (|e: &mut Event| e.actor.org.push('x')),
            (|e: &mut Event| e.person = None),
            (|e: &mut Event| e.kind.push('x')),
            (|e: &mut Event| e.public.push(' ')),
            (|e: &mut Event| e.sealed[0].ciphertext[1] ^= 1),
            (|e: &mut Event| e.sealed[0].class = Class::Family),
            (|e: &mut Event| e.sealed.clear()),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut e = sample();
            edit(&mut e);
            assert_ne!(e.leaf_bytes(), base, "edit {i} left the leaf unchanged");
        }
        // Moving bytes between adjacent fields must not give the same encoding.
        let mut a = sample();
        a.actor.user = "uo".into();
        a.actor.org = String::new();
        assert_ne!(a.leaf_bytes(), base);
    }
}
