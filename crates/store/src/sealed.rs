//! The encoding of an event's sealed payloads in one column: for each part, a class byte, a
//! 4-byte big-endian length and the ciphertext. One column instead of a table row per part keeps
//! a registration to three inserts.

use asylon_core::{Class, SealedPart};

fn class_byte(c: Class) -> u8 {
    match c {
        Class::Identity => 1,
        Class::Family => 2,
        Class::Medical => 3,
        Class::Statements => 4,
    }
}

pub fn encode(parts: &[SealedPart]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| 5 + p.ciphertext.len()).sum());
    for p in parts {
        out.push(class_byte(p.class));
        out.extend_from_slice(&(p.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&p.ciphertext);
    }
    out
}

pub fn decode(mut bytes: &[u8]) -> Result<Vec<SealedPart>, &'static str> {
    let mut parts = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        let class = Class::ALL
            .into_iter()
            .find(|c| class_byte(*c) == tag)
            .ok_or("unknown class tag in sealed payloads")?;
        let (len, rest) = rest
            .split_at_checked(4)
            .ok_or("truncated sealed payloads")?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| "truncated sealed payloads")?);
        let (ct, rest) = rest
            .split_at_checked(len as usize)
            .ok_or("truncated sealed payloads")?;
        if parts.last().is_some_and(|p: &SealedPart| p.class >= class) {
            return Err("sealed payloads out of class order");
        }
        parts.push(SealedPart {
            class,
            ciphertext: ct.to_vec(),
        });
        bytes = rest;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_parts_round_trip_and_damage_is_caught() {
        let parts = vec![
            SealedPart {
                class: Class::Identity,
                ciphertext: vec![9; 40],
            },
            SealedPart {
                class: Class::Family,
                ciphertext: vec![],
            },
        ];
        let enc = encode(&parts);
        assert_eq!(decode(&enc).unwrap(), parts);
        assert!(decode(&enc[..enc.len() - 1]).is_err());
        assert!(decode(&[7, 0, 0, 0, 0]).is_err());
        let mut swapped = encode(&parts[1..]);
        swapped.extend(encode(&parts[..1]));
        assert!(decode(&swapped).is_err());
        assert_eq!(decode(&[]).unwrap(), vec![]);
    }
}
