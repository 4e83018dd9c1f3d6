//! Searching sealed names through the blind index: a name's phoneme keys, hashed under a key
//! derived from the KEK, are stored beside the sealed data; a search hashes the query's keys the
//! same way and looks them up. No name is ever stored or compared in plaintext.

use crate::StoreError;
use crate::registry::Registry;
use asylon_core::NameForm;
use asylon_names::key::NameKey;
use asylon_names::reader::read_best;
use asylon_vault::BlindIndexKey;
use std::collections::HashMap;

/// Readings of each name form indexed, and of each query looked up.
const READINGS: usize = 2;

/// The text a phoneme key is indexed under: `name|` and each word's syllable codes joined by
/// dots (`name|1800|290.34`). Written into one string, the numbers with `itoa` rather than the
/// formatting machinery: it is made for every reading of every name form imported.
fn text(key: &NameKey) -> String {
    let mut digits = itoa::Buffer::new();
    let mut out = String::with_capacity(8 + 5 * (key.family.len() + key.given.len()));
    out.push_str("name");
    for word in [&key.family, &key.given] {
        out.push('|');
        for (i, k) in word.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(digits.format(k.raw()));
        }
    }
    out
}

/// Tokens for a person's name forms: one per distinct phoneme key among their best readings.
pub(crate) fn name_tokens(blind: &BlindIndexKey, names: &[NameForm]) -> Vec<[u8; 16]> {
    // A captive's forms mostly read to the same keys (박웅희, Pak Ung-hŭi): each key is hashed
    // once.
    let mut texts: Vec<String> = names
        .iter()
        .flat_map(|n| read_best(&n.full(), READINGS))
        .map(|c| text(&c.key))
        .collect();
    texts.sort_unstable();
    texts.dedup();
    let mut out: Vec<[u8; 16]> = texts.iter().map(|t| blind.token(t)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Tokens stored as one blob in the person's keys row, for erasure.
pub(crate) fn join_tokens(tokens: &[[u8; 16]]) -> Vec<u8> {
    tokens.concat()
}

pub(crate) fn split_tokens(blob: &[u8]) -> Vec<&[u8]> {
    blob.chunks(16).filter(|c| c.len() == 16).collect()
}

/// Bytes of a token the blind index is keyed by (see the key store's second migration): eight
/// bytes of a keyed hash tell apart far more phoneme keys than any registry holds.
const INDEXED: usize = 8;

/// What the blind index stores of `token`.
pub(crate) fn indexed(token: &[u8]) -> &[u8] {
    token.get(..INDEXED).unwrap_or(token)
}

/// One search result: a case number and how well the query matched his indexed names (1 for
/// the query's best reading, less for a less likely reading).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hit {
    pub case_no: String,
    pub score: f64,
}

impl Registry {
    /// Up to `limit` captives whose sealed names have a phoneme key among the query's readings,
    /// best first.
    /// The search is recorded (who, when, which case numbers it returned, and a keyed hash of
    /// the query so an auditor holding the key can tell whether a given name was looked for).
    pub fn search(
        &mut self,
        who: &asylon_core::law::Principal,
        now: time::OffsetDateTime,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        use asylon_core::policy::{Action, may};
        // A hit tells that this case bears this name: it is a read of identity, so only the
        // captives whose identity `who` may read are returned.
        may(who, None, Action::ReadCore).map_err(StoreError::Denied)?;
        let mut hits = Vec::new();
        for hit in self.find(query)? {
            if hits.len() >= limit {
                break;
            }
            match self.authorized(
                who,
                &hit.case_no,
                Action::Read(asylon_core::Class::Identity),
            ) {
                Ok(_) => hits.push(hit),
                Err(StoreError::Denied(_) | StoreError::UnknownPerson(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let public = serde_json::json!({
            "query": hex::encode(self.blind_index_key().token(&format!("query|{}", query.trim()))),
            "results": hits.iter().map(|h| h.case_no.as_str()).collect::<Vec<_>>(),
        })
        .to_string();
        self.record_search(&who.actor(), now, public)?;
        Ok(hits)
    }

    fn find(&self, query: &str) -> Result<Vec<Hit>, StoreError> {
        let blind = self.blind_index_key();
        let mut best: HashMap<String, f64> = HashMap::new();
        for c in read_best(query, READINGS) {
            let score = 1.0 - 0.1 * f64::from(c.penalty);
            let token = blind.token(&text(&c.key));
            self.keys.conn.each(
                "SELECT person FROM name_index WHERE token = ?1 \
                 UNION ALL SELECT person FROM name_index_recent WHERE token = ?1",
                crate::db::args![indexed(&token)],
                &mut |r| {
                    let number = u64::try_from(r.i64(0)?).map_err(|_| {
                        StoreError::Damaged("the blind index holds a negative case".into())
                    })?;
                    let e = best
                        .entry(crate::register::case_number(number))
                        .or_insert(f64::NEG_INFINITY);
                    *e = e.max(score);
                    Ok(())
                },
            )?;
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .map(|(case_no, score)| Hit { case_no, score })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.case_no.cmp(&b.case_no))
        });
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asylon_names::reader::read;

    #[test]
    fn the_indexed_text_of_a_key_keeps_its_format() {
        // Stored tokens are keyed hashes of this text: a change of format would orphan every
        // index entry already written.
        let plain = |key: &NameKey| {
            let word = |w: &[asylon_names::key::SylKey]| {
                w.iter()
                    .map(|k| k.raw().to_string())
                    .collect::<Vec<_>>()
                    .join(".")
            };
            format!("name|{}|{}", word(&key.family), word(&key.given))
        };
        let mut seen = 0;
        for name in ["리한검", "Ri Han Gom", "Namgung Min", "Ли Хан Гом", "Kim"] {
            for c in read(name) {
                assert_eq!(text(&c.key), plain(&c.key));
                seen += 1;
            }
        }
        assert!(seen >= 5, "{seen}");
        let key = read("리한검").remove(0).key;
        assert!(text(&key).starts_with("name|") && text(&key).matches('|').count() == 2);
        assert!(
            text(&key)
                .split('|')
                .nth(2)
                .is_some_and(|g| g.contains('.'))
        );
    }
}
