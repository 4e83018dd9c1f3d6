//! How records are printed: JSON for machines, short text for people. Checkpoint JSON is the
//! exchange format handed to the neutral agency and the receiving state.

use anyhow::{Context, Result, bail};
use asylon_core::{Event, NameForm};
use asylon_ledger::{Checkpoint, parse_hash};
use asylon_store::PersonView;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
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

    pub fn parse(text: &str) -> Result<Checkpoint> {
        let j: CheckpointJson =
            serde_json::from_str(text).context("the checkpoint file is not checkpoint JSON")?;
        let signature =
            hex::decode(&j.signature).context("the checkpoint's signature is not hex")?;
        if signature.len() != 64 {
            bail!("the checkpoint's signature is not 64 bytes");
        }
        Ok(Checkpoint {
            origin: j.origin,
            size: j.size,
            root: parse_hash(&j.root).map_err(|e| anyhow::anyhow!("the checkpoint's root: {e}"))?,
            time: j.time,
            key_id: j.key_id,
            signature,
        })
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

pub fn event_line(e: &Event) -> String {
    let sealed: Vec<&str> = e.sealed.iter().map(|p| p.class.as_str()).collect();
    format!(
        "{:>6}  {}  {:<20} {:<10} {}@{}  {}{}",
        e.seq,
        e.at,
        e.kind,
        e.person.as_deref().unwrap_or("-"),
        e.actor.user,
        e.actor.org,
        e.public,
        if sealed.is_empty() {
            String::new()
        } else {
            format!("  [sealed: {}]", sealed.join(", "))
        }
    )
}

fn name_line(n: &NameForm) -> String {
    let tag = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    format!(
        "{} ({}, {})",
        n.full(),
        tag(serde_json::to_value(n.script)),
        tag(serde_json::to_value(n.system))
    )
}

pub fn person_text(v: &PersonView) -> String {
    let r = &v.row;
    let mut out = format!("{}  {}\n", r.case_no, r.status.as_str());
    let mut line = |k: &str, val: &str| out.push_str(&format!("  {k:<16}{val}\n"));
    if let Some(x) = &r.external_id {
        line("external id", x);
    }
    line("power", &r.power);
    line(
        "captured",
        &match &r.captured_at {
            Some(p) => format!("{} at {p}", r.captured_on),
            None => r.captured_on.clone(),
        },
    );
    match &v.identity {
        Some(id) => {
            let names: Vec<String> = id.names.iter().map(name_line).collect();
            line("names", &names.join("\n                  "));
            let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not stated)".into());
            line(
                "date of birth",
                &id.date_of_birth
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "(not stated)".into()),
            );
            line("rank", &opt(&id.rank));
            line("service number", &opt(&id.service_number));
            if let Some(p) = &id.place_of_birth {
                line("place of birth", p);
            }
            if let Some(u) = &id.unit {
                line("unit", u);
            }
        }
        None => line(
            "sealed data",
            "destroyed: this person was erased; his identity and family cannot be read",
        ),
    }
    for w in &v.withheld {
        line("withheld", w);
    }
    if let Some(f) = &v.family {
        for (k, val) in [
            ("father", &f.father_first_name),
            ("mother (maiden)", &f.mother_maiden_name),
            ("next of kin", &f.next_of_kin),
            ("correspondence", &f.correspondence_address),
            ("home address", &f.home_address),
        ] {
            if let Some(val) = val {
                line(k, val);
            }
        }
    }
    out
}
