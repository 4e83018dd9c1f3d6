//! The plaintext of the identity and family classes, as sealed: a form byte, then the fields in
//! postcard's binary form (postcard 1's wire format is specified and stable: fields in order,
//! no names, lengths as varints). A registration's sealed column is 128 bytes against JSON's 331
//! (the average of 100,000 synthetic captives), and every registration's bytes are encrypted,
//! hashed into the log and written twice (WAL and database). `scripts/ab-import`, eleven
//! rounds, 100,000 captives, the builds of the commits before and with this form: wall 1.96 ->
//! 1.84 s, user 2.56 -> 2.48 s, peak memory 199 -> 181 MB.
//!
//! Parts sealed before this form hold JSON, which always starts with `{`; they are still read.
//!
//! Scripts and systems are written as the codes below, not as serde's variant indexes, so that
//! reordering those enums can never change what a stored byte means.

use crate::StoreError;
use asylon_core::{FamilyParticulars, IdentityParticulars, NameForm, PartialDate, Script, System};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The first byte of a part in the binary form (JSON starts with `{`, 0x7b).
const BINARY_V1: u8 = 1;

fn script_code(s: Script) -> u8 {
    match s {
        Script::Hang => 1,
        Script::Latn => 2,
        Script::Cyrl => 3,
        Script::Hani => 4,
    }
}

fn script_of(code: u8) -> Option<Script> {
    Script::ALL.into_iter().find(|s| script_code(*s) == code)
}

fn system_code(s: System) -> u8 {
    match s {
        System::Native => 1,
        System::Rr => 2,
        System::Mr => 3,
        System::Dprk => 4,
        System::Kontsevich => 5,
        System::Uk => 6,
        System::Adhoc => 7,
    }
}

fn system_of(code: u8) -> Option<System> {
    System::ALL.into_iter().find(|s| system_code(*s) == code)
}

/// A name form as stored; `S` is `&str` when writing (no copy of the plaintext), `String` when
/// reading.
#[derive(Serialize, Deserialize)]
struct Name<S> {
    script: u8,
    system: u8,
    family: S,
    given: S,
    source: Option<S>,
}

#[derive(Serialize, Deserialize)]
struct Identity<S> {
    names: Vec<Name<S>>,
    date_of_birth: Option<PartialDate>,
    place_of_birth: Option<S>,
    rank: Option<S>,
    service_number: Option<S>,
    unit: Option<S>,
}

#[derive(Serialize, Deserialize)]
struct Family<S> {
    father_first_name: Option<S>,
    mother_maiden_name: Option<S>,
    next_of_kin: Option<S>,
    correspondence_address: Option<S>,
    home_address: Option<S>,
}

/// Bytes a value with these strings takes at most: each string its length and a varint of at
/// most 10 bytes, each other field (an option's tag, a code, a count, a date) at most 16.
fn bound<'a>(strings: impl Iterator<Item = &'a str>, fields: usize) -> usize {
    1 + strings.map(|s| s.len() + 10).sum::<usize>() + 16 * fields
}

/// Writes `value` after the form byte into a buffer sized beforehand (at most `max` bytes), so
/// that no copy of the plaintext is left behind by a buffer growing; the buffer is zeroized
/// when dropped.
fn write<T: Serialize>(value: &T, max: usize) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut buf = Zeroizing::new(vec![0u8; max]);
    let (form, rest) = buf
        .split_first_mut()
        .ok_or_else(|| StoreError::Damaged("empty buffer for a sealed part".into()))?;
    *form = BINARY_V1;
    let used = postcard::to_slice(value, rest)
        .map_err(|e| StoreError::Damaged(format!("cannot encode a sealed part: {e}")))?
        .len();
    buf.truncate(1 + used);
    Ok(buf)
}

/// Reads a part in either form.
fn read<'a, B, J>(plain: &'a [u8]) -> Result<Result<B, J>, String>
where
    B: Deserialize<'a>,
    J: serde::de::DeserializeOwned,
{
    match plain.split_first() {
        Some((&BINARY_V1, rest)) => {
            let (value, left) = postcard::take_from_bytes(rest).map_err(|e| e.to_string())?;
            if !left.is_empty() {
                return Err(format!("{} bytes after the end", left.len()));
            }
            Ok(Ok(value))
        }
        Some((b'{', _)) => serde_json::from_slice(plain)
            .map(Err)
            .map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown form {other}")),
        None => Err("empty".into()),
    }
}

pub(crate) fn identity_bytes(id: &IdentityParticulars) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let names: Vec<Name<&str>> = id
        .names
        .iter()
        .map(|n| Name {
            script: script_code(n.script),
            system: system_code(n.system),
            family: n.family.as_str(),
            given: n.given.as_str(),
            source: n.source.as_deref(),
        })
        .collect();
    let rec = Identity {
        names,
        date_of_birth: id.date_of_birth,
        place_of_birth: id.place_of_birth.as_deref(),
        rank: id.rank.as_deref(),
        service_number: id.service_number.as_deref(),
        unit: id.unit.as_deref(),
    };
    let strings = rec
        .names
        .iter()
        .flat_map(|n| [Some(n.family), Some(n.given), n.source])
        .chain([rec.place_of_birth, rec.rank, rec.service_number, rec.unit])
        .flatten();
    let max = bound(strings, 6 + 3 * rec.names.len());
    write(&rec, max)
}

pub(crate) fn identity_from(plain: &[u8]) -> Result<IdentityParticulars, String> {
    let rec: Identity<String> = match read(plain)? {
        Ok(rec) => rec,
        Err(json) => return Ok(json),
    };
    let names = rec
        .names
        .into_iter()
        .map(|n| {
            Ok(NameForm {
                script: script_of(n.script).ok_or(format!("unknown script {}", n.script))?,
                system: system_of(n.system).ok_or(format!("unknown system {}", n.system))?,
                family: n.family,
                given: n.given,
                source: n.source,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(IdentityParticulars {
        names,
        date_of_birth: rec.date_of_birth,
        place_of_birth: rec.place_of_birth,
        rank: rec.rank,
        service_number: rec.service_number,
        unit: rec.unit,
    })
}

pub(crate) fn family_bytes(f: &FamilyParticulars) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let rec = Family {
        father_first_name: f.father_first_name.as_deref(),
        mother_maiden_name: f.mother_maiden_name.as_deref(),
        next_of_kin: f.next_of_kin.as_deref(),
        correspondence_address: f.correspondence_address.as_deref(),
        home_address: f.home_address.as_deref(),
    };
    let strings = [
        rec.father_first_name,
        rec.mother_maiden_name,
        rec.next_of_kin,
        rec.correspondence_address,
        rec.home_address,
    ];
    write(&rec, bound(strings.into_iter().flatten(), 5))
}

pub(crate) fn family_from(plain: &[u8]) -> Result<FamilyParticulars, String> {
    Ok(match read::<Family<String>, FamilyParticulars>(plain)? {
        Ok(rec) => FamilyParticulars {
            father_first_name: rec.father_first_name,
            mother_maiden_name: rec.mother_maiden_name,
            next_of_kin: rec.next_of_kin,
            correspondence_address: rec.correspondence_address,
            home_address: rec.home_address,
        },
        Err(json) => json,
    })
}

#[cfg(test)]
mod tests;
