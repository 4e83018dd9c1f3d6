//! JSON forms shared by the CLI and the HTTP API: the checkpoint exchanged with the neutral
//! agency and the receiving state, and an event as shown to people (ciphertext sizes only).

use asylon_core::Event;
use asylon_ledger::Checkpoint;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckpointJson {
    pub origin: String,
    pub size: u64,
    pub root: String,
    pub time: String,
    pub key_id: String,
    pub public_key: String,
    pub signature: String,
}

impl CheckpointJson {
    pub fn new(cp: &Checkpoint, public_key: &[u8; 32]) -> Self {
        Self {
            origin: cp.origin.clone(),
            size: cp.size,
            root: hex::encode(cp.root),
            time: cp.time.clone(),
            key_id: cp.key_id.clone(),
            public_key: hex::encode(public_key),
            signature: hex::encode(&cp.signature),
        }
    }
}

#[derive(Serialize)]
pub struct EventJson<'a> {
    seq: u64,
    id: &'a str,
    at: &'a str,
    actor: &'a asylon_core::Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    person: Option<&'a str>,
    kind: &'a str,
    public: serde_json::Value,
    /// Sealed classes and their ciphertext sizes; never their content.
    sealed: Vec<SealedInfo>,
}

#[derive(Serialize)]
struct SealedInfo {
    class: &'static str,
    bytes: usize,
}

impl<'a> EventJson<'a> {
    pub fn new(e: &'a Event) -> Self {
        Self {
            seq: e.seq,
            id: &e.id,
            at: &e.at,
            actor: &e.actor,
            person: e.person.as_deref(),
            kind: &e.kind,
            public: serde_json::from_str(&e.public).unwrap_or(serde_json::Value::Null),
            sealed: e
                .sealed
                .iter()
                .map(|p| SealedInfo {
                    class: p.class.as_str(),
                    bytes: p.ciphertext.len(),
                })
                .collect(),
        }
    }
}
