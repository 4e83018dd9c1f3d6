//! How records are printed: JSON for machines, short text for people. Checkpoint JSON is the
//! exchange format handed to the neutral agency and the receiving state.

use anyhow::{Context, Result, bail};
use asylon_core::{Event, NameForm};
use asylon_ledger::{Checkpoint, parse_hash};
use asylon_store::PersonView;
use asylon_store::json::CheckpointJson;

/// Reads a checkpoint file handed back by the neutral agency or the receiving state.
pub fn parse_checkpoint(text: &str) -> Result<Checkpoint> {
    Ok(parse_signed_checkpoint(text)?.0)
}

/// A checkpoint file and the public key it names as its signer's (not yet checked).
pub fn parse_signed_checkpoint(text: &str) -> Result<(Checkpoint, [u8; 32])> {
    let j: CheckpointJson =
        serde_json::from_str(text).context("the checkpoint file is not checkpoint JSON")?;
    let key = parse_hash(&j.public_key)
        .map_err(|e| anyhow::anyhow!("the checkpoint's public key: {e}"))?;
    let signature = hex::decode(&j.signature).context("the checkpoint's signature is not hex")?;
    if signature.len() != 64 {
        bail!("the checkpoint's signature is not 64 bytes");
    }
    let cp = Checkpoint {
        origin: j.origin,
        size: j.size,
        root: parse_hash(&j.root).map_err(|e| anyhow::anyhow!("the checkpoint's root: {e}"))?,
        time: j.time,
        key_id: j.key_id,
        signature,
    };
    Ok((cp, key))
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
    if v.particulars_seq != r.registered_seq {
        line(
            "corrected",
            &format!(
                "particulars as corrected by event {} (event list --person {})",
                v.particulars_seq, r.case_no
            ),
        );
    }
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
        // Not opened: destroyed, or withheld from this reader (said below).
        None if r.status == asylon_core::PersonStatus::Erased => line(
            "sealed data",
            "destroyed: this person was erased; his identity and family cannot be read",
        ),
        None => {}
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

/// A number and the noun it counts: "1 captive", "2 captives".
pub(crate) fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
