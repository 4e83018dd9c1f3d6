//! How records are printed: JSON for machines, short text for people. Checkpoint JSON is the
//! exchange format handed to the neutral agency and the receiving state.

use anyhow::{Context, Result, bail};
use asylon_core::{Event, NameForm};
use asylon_ledger::{Checkpoint, parse_hash};
use asylon_store::json::CheckpointJson;
use asylon_store::{PersonView, StoreError};

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
            if let Some(age) = v.age_at_capture {
                let law = age.child().map(|l| format!("; {l}")).unwrap_or_default();
                line("age at capture", &format!("{age}{law}"));
            }
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

/// Writes a JSON array one element at a time, byte for byte as serde_json's pretty printer
/// writes the whole array, so that a list of a million records need not be held whole.
pub struct JsonArray<W: std::io::Write> {
    out: W,
    items: usize,
    buf: Vec<u8>,
}

impl<W: std::io::Write> JsonArray<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            items: 0,
            buf: Vec::new(),
        }
    }

    pub fn push<T: serde::Serialize>(&mut self, item: &T) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, item)?;
        let open: &[u8] = if self.items == 0 { b"[\n" } else { b",\n" };
        self.out.write_all(open)?;
        // An element one level in: each of its lines two spaces further (line breaks inside
        // strings are escaped, so every raw one is the printer's).
        for (i, line) in self.buf.split(|b| *b == b'\n').enumerate() {
            let indent: &[u8] = if i == 0 { b"  " } else { b"\n  " };
            self.out.write_all(indent)?;
            self.out.write_all(line)?;
        }
        self.items += 1;
        Ok(())
    }

    /// Closes the array (and its line) and flushes.
    pub fn finish(mut self) -> Result<()> {
        let close: &[u8] = if self.items == 0 { b"[]\n" } else { b"\n]\n" };
        self.out.write_all(close)?;
        self.out.flush()?;
        Ok(())
    }
}

/// Standard output, buffered, for the commands that print many records.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// Reads records with `read`, which hands each to `write` as it comes, and stops at the first
/// error of either: an error in writing (standard output closed, a full disk) is returned as
/// itself, not as the reader's.
pub fn stream<T>(
    read: impl FnOnce(&mut dyn FnMut(T) -> Result<(), StoreError>) -> Result<(), StoreError>,
    mut write: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut failed: Option<anyhow::Error> = None;
    let read = read(&mut |item| {
        write(item).map_err(|e| {
            failed = Some(e);
            StoreError::Io("the output failed".into())
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(read?),
    }
}

/// Whether `e` is standard output closed by its reader (`asylon event list | head`): the
/// command's work is done, not failed.
pub fn closed_output(e: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        // The csv writer's errors hold the io error without giving it as their source.
        let csv = cause.downcast_ref::<csv::Error>().map(csv::Error::kind);
        cause.downcast_ref::<std::io::Error>().is_some_and(broken)
            || matches!(csv, Some(csv::ErrorKind::Io(io)) if broken(io))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_array_written_piece_by_piece_is_the_pretty_printers() {
        let items = [
            serde_json::json!({"a": 1, "b": ["x", "line\nbreak"], "c": {"d": null}}),
            serde_json::json!("text"),
            serde_json::json!([]),
        ];
        for n in 0..=items.len() {
            let mut out = Vec::new();
            let mut array = JsonArray::new(&mut out);
            for item in &items[..n] {
                array.push(item).unwrap();
            }
            array.finish().unwrap();
            let whole = serde_json::to_string_pretty(&items[..n]).unwrap() + "\n";
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{n} items");
        }
    }
}
