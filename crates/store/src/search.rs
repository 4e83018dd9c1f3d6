//! Searching sealed names through the blind index: a name's phoneme keys, hashed under a key
//! derived from the KEK, are stored beside the sealed data; a search hashes the query's keys the
//! same way and looks them up. No name is ever stored or compared in plaintext.

use crate::StoreError;
use crate::amend::particulars_seq;
use crate::db::Tx;
use crate::progress::{Counter, Progress};
use crate::registry::{EVENT_COLUMNS, Registry, row_to_event};
use asylon_core::{Class, IdentityParticulars, NameForm, PersonStatus, Script, kind};
use asylon_names::key::NameKey;
use asylon_names::reader::{read_best, read_best_composed};
use asylon_vault::BlindIndexKey;
use asylon_vault::{key_label, seal_aad};
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

/// The text a name in Hanja is indexed under and looked up by, beside the phoneme keys of its
/// Korean readings: `hanja|` and its characters, composed (NFC: a compatibility ideograph,
/// such as the 李 that Korean encodings write apart for its reading 이, is the character it
/// stands for), without spaces or punctuation. So a form in Hanja is found by its Hangul, a
/// romanization or Cyrillic spelling of it, or the same Hanja, even where Unihan gives one of
/// its characters no reading.
fn hanja_key(name: &str) -> String {
    let mut out = String::from("hanja|");
    out.extend(
        unicode_normalization::UnicodeNormalization::nfc(name).filter(|c| c.is_alphabetic()),
    );
    out
}

/// [`hanja_key`] of a query, if it is written in Hanja.
fn hanja_text(query: &str) -> Option<String> {
    (Script::detect(query) == Ok(Script::Hani)).then(|| hanja_key(query))
}

/// Whether a search for `query` can find anyone: it reads as a Korean name (Hanja included), or
/// it is Hanja.
pub fn searchable(query: &str) -> bool {
    !asylon_names::reader::read(query).is_empty() || hanja_text(query).is_some()
}

/// Tokens for a person's name forms: one per distinct phoneme key among their best readings
/// (a form in Hanja is read through its Korean readings), and one per form in Hanja
/// ([`hanja_key`]).
pub(crate) fn name_tokens(blind: &BlindIndexKey, names: &[NameForm]) -> Vec<[u8; 16]> {
    // A captive's forms mostly read to the same keys (박웅희, Pak Ung-hŭi): each key is hashed
    // once.
    let mut texts: Vec<String> = names
        .iter()
        // Validated forms are composed (NFC) already.
        .flat_map(|n| read_best_composed(&n.full(), READINGS))
        .map(|c| text(&c.key))
        .chain(
            names
                .iter()
                // A validated form's script is known.
                .filter(|n| n.script == Script::Hani)
                .map(|n| hanja_key(&n.full())),
        )
        .collect();
    texts.sort_unstable();
    texts.dedup();
    let mut out: Vec<[u8; 16]> = texts.iter().map(|t| blind.token(t)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A service number as the registry compares it: its letters and digits, upper-case, a
/// Cyrillic capital that looks like a Latin one read as that Latin one (`kpa 998-877`,
/// `KPA998877` and `КРА998877` in Cyrillic are one number written three ways: a number copied
/// from a Russian document onto a Ukrainian or English keyboard changes script, not meaning).
/// Empty when it has neither letter nor digit.
pub fn service_number_key(number: &str) -> String {
    service_number_chars(number).collect()
}

/// The characters of [`service_number_key`], one by one, for a caller that hashes them rather
/// than keep them (an import's check of its own rows).
pub fn service_number_chars(number: &str) -> impl Iterator<Item = char> + '_ {
    number
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .map(latin_lookalike)
}

/// The Latin capital a Cyrillic capital is drawn as, if it is drawn as one; any other
/// character as it is.
fn latin_lookalike(c: char) -> char {
    match c {
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' => 'Y',
        'Х' => 'X',
        'І' => 'I',
        'Ј' => 'J',
        'Ѕ' => 'S',
        other => other,
    }
}

/// The token of a service number of a captive who depends on `power`, kept in the blind index
/// beside his names' so that the same number given again for the same power is found without
/// the number ever being stored: `service|` and the power and [`service_number_key`], a text no
/// name's reading ([`text`], [`hanja_key`]) or query (`query|`) is written as. `None` for a
/// number with no letter or digit.
pub(crate) fn service_token(blind: &BlindIndexKey, power: &str, number: &str) -> Option<[u8; 16]> {
    let key = service_number_key(number);
    (!key.is_empty()).then(|| blind.token(&format!("service|{power}|{key}")))
}

/// Every token of a captive's identity in the blind index: his names' ([`name_tokens`]) and
/// his service number's ([`service_token`]), sorted.
pub(crate) fn person_tokens(
    blind: &BlindIndexKey,
    identity: &IdentityParticulars,
    power: &str,
) -> Vec<[u8; 16]> {
    tokens_and_number(blind, identity, power).0
}

/// [`person_tokens`], and his service number's among them.
pub(crate) fn tokens_and_number(
    blind: &BlindIndexKey,
    identity: &IdentityParticulars,
    power: &str,
) -> IdentityTokens {
    let mut tokens = name_tokens(blind, &identity.names);
    let number = identity.service_number.as_deref();
    let number = number.and_then(|n| service_token(blind, power, n));
    if let Some(token) = number {
        tokens.push(token);
        tokens.sort_unstable();
        tokens.dedup();
    }
    (tokens, number)
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

    pub(crate) fn find(&self, query: &str) -> Result<Vec<Hit>, StoreError> {
        let blind = self.blind_index_key();
        let mut best: HashMap<String, f64> = HashMap::new();
        let readings = read_best(query, READINGS)
            .into_iter()
            .map(|c| (text(&c.key), 1.0 - 0.1 * f64::from(c.penalty)));
        for (text, score) in readings.chain(hanja_text(query).map(|t| (t, 1.0))) {
            let token = blind.token(&text);
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
                .then_with(|| asylon_core::law::by_case_number(&a.case_no, &b.case_no))
        });
        Ok(hits)
    }
}

/// What [`Registry::reindex_names`] found.
#[derive(Debug, Default)]
pub struct Reindexed {
    /// Captives whose sealed names were read into index entries and compared with theirs.
    pub checked: usize,
    /// Those whose entries were not those of their record, and were replaced.
    pub replaced: Vec<String>,
    /// Those whose entries were their names' but lacked their service number's (registered
    /// before service numbers were indexed), which was added.
    pub numbered: Vec<String>,
}

/// A captive's name tokens two ways: from his record, and as his keys row lists them.
pub(crate) struct Listed {
    pub(crate) case: String,
    /// The event holding his current particulars.
    pub(crate) seq: u64,
    /// The index tokens of its names and service number.
    pub(crate) tokens: Vec<[u8; 16]>,
    /// Its service number's among them, if it holds one.
    pub(crate) number: Option<[u8; 16]>,
    /// The tokens his keys row lists (joined).
    pub(crate) stored: Vec<u8>,
}

impl Registry {
    /// Makes each captive's entries in the name index those of his current record, and says
    /// whose were not. The index is kept in the key store and the records in the log, and the
    /// two can part: a backup taken before a correction, restored with the key store as it is
    /// now, gives his earlier record beside the index of his corrected names (a search by the
    /// names his record gives misses him); so does a correction whose process died after the
    /// index was changed and before its events were appended (`amend_as`).
    ///
    /// Opens every captive's sealed identity, as the process holding the key-encryption key:
    /// only keyed hashes of his names leave it, into the index, and nobody reads them, so no
    /// read is recorded. Erased captives have neither names nor entries. A captive corrected
    /// meanwhile is checked again under the log's write lock, which corrections hold while
    /// they change the index, so his latest names are never replaced by earlier ones.
    pub fn reindex_names(&self) -> Result<Reindexed, StoreError> {
        self.reindex_names_showing(&())
    }

    /// [`Registry::reindex_names`], telling `progress` how many captives it has checked.
    pub fn reindex_names_showing(&self, progress: &dyn Progress) -> Result<Reindexed, StoreError> {
        // The pass asks the log, a page of captives at a time, for the event of each one's
        // particulars: planned without statistics (a log just imported into PostgreSQL, before
        // autovacuum took them, or where it is off), each such query read the whole log.
        // `asylon rebuild` right after `asylon import persons` of 100,000 captives (`asylon
        // synth persons --count 100000 --seed 42`) into a new PostgreSQL schema, a build
        // without this call against one with it, three alternating rounds: 8.1 s (6.5 to
        // 8.8) without them, 4.25 s (4.2 to 4.4) with.
        self.conn.refresh_statistics(&["events"])?;
        let mut out = Reindexed::default();
        let mut counter = Counter::begin(progress, "captives' names checked", self.person_count()?);
        self.person_pages(&mut |page| {
            counter.add(page.len() as u64);
            let cases: Vec<&str> = page
                .iter()
                .filter(|r| r.status != PersonStatus::Erased)
                .map(|r| r.case_no.as_str())
                .collect();
            for Listed {
                case,
                seq,
                tokens,
                number,
                stored,
            } in self.page_tokens(&cases)?
            {
                out.checked += 1;
                if join_tokens(&tokens) == stored {
                    continue;
                }
                let names_only = number.is_some_and(|n| {
                    let without: Vec<[u8; 16]> =
                        tokens.iter().filter(|t| **t != n).copied().collect();
                    join_tokens(&without) == stored
                });
                let lock = Tx::write(&*self.conn)?;
                let replaced = particulars_seq(&*self.conn, &case)
                    .and_then(|now| {
                        if now == seq {
                            Ok(tokens)
                        } else {
                            self.tokens_of(&case, now).map(|(tokens, _)| tokens)
                        }
                    })
                    .and_then(|tokens| self.keys.replace_tokens(&case, &tokens));
                drop(lock);
                match replaced {
                    Ok(()) if names_only => out.numbered.push(case),
                    Ok(()) => out.replaced.push(case),
                    // Erased meanwhile: nothing of his is left to index.
                    Err(StoreError::Erased { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// What [`Listed`] says of each of `cases` that has a keys row. Three queries for all of
    /// them rather than three for each: on PostgreSQL each is a round trip, and asked one by one
    /// a rebuild spent most of its time waiting for them. A captive without a keys row was
    /// erased after this copy of the log was taken (`ledger verify` names him): he has nothing
    /// to index.
    pub(crate) fn page_tokens(&self, cases: &[&str]) -> Result<Vec<Listed>, StoreError> {
        if cases.is_empty() {
            return Ok(Vec::new());
        }
        let marks = crate::db::placeholders;
        let mut args: Vec<crate::db::Val<'_>> =
            cases.iter().map(|c| crate::db::Val::Text(c)).collect();
        // Each captive's wrapped identity key and listed tokens. A page is a run of case
        // numbers in the database's order, asked first as a range: PostgreSQL reads a range
        // from each of the key store's partitions by its index (3 ms a page of 1,000 at 200,000
        // captives), where for a list of a thousand it scanned every partition whole (63 ms).
        // Rows of the range outside the page are never looked up; any of the page that the
        // range missed (an order other than the one assumed) is asked for by name.
        type Keys = HashMap<String, (Option<Vec<u8>>, Vec<u8>)>;
        let mut keys = Keys::new();
        let read_keys = |keys: &mut Keys, condition: String, args: &[crate::db::Val<'_>]| {
            self.keys.conn.each(
                &format!("SELECT person, identity, name_tokens FROM data_keys WHERE {condition}"),
                args,
                &mut |r| {
                    keys.insert(
                        r.text(0)?,
                        (r.opt_blob(1)?, r.opt_blob(2)?.unwrap_or_default()),
                    );
                    Ok(())
                },
            )
        };
        if let (Some(first), Some(last)) = (cases.first(), cases.last()) {
            read_keys(
                &mut keys,
                "person BETWEEN ?1 AND ?2".into(),
                &[crate::db::Val::Text(first), crate::db::Val::Text(last)],
            )?;
        }
        let missed: Vec<crate::db::Val<'_>> = cases
            .iter()
            .filter(|c| !keys.contains_key(**c))
            .map(|c| crate::db::Val::Text(c))
            .collect();
        if !missed.is_empty() {
            let condition = format!("person IN ({})", marks(missed.len()));
            read_keys(&mut keys, condition, &missed)?;
        }
        // The event of each one's current particulars: his registration or its latest
        // amendment.
        args.push(crate::db::Val::Text(kind::PERSON_REGISTERED));
        args.push(crate::db::Val::Text(kind::PERSON_AMENDED));
        let mut seqs = Vec::with_capacity(cases.len());
        self.conn.each(
            &format!(
                "SELECT MAX(seq) FROM events WHERE person IN ({}) AND kind IN (?{}, ?{}) \
                 GROUP BY person",
                marks(cases.len()),
                cases.len() + 1,
                cases.len() + 2
            ),
            &args,
            &mut |r| {
                seqs.push(r.i64(0)?);
                Ok(())
            },
        )?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let seq_args: Vec<crate::db::Val<'_>> =
            seqs.iter().map(|s| crate::db::Val::I64(*s)).collect();
        let mut out = Vec::with_capacity(seqs.len());
        let blind = self.blind_index_key();
        self.conn.each(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq IN ({})",
                marks(seqs.len())
            ),
            &seq_args,
            &mut |r| {
                let ev = row_to_event(&r).map_err(|reason| StoreError::Tampered {
                    seq: r.i64(0).map_or(0, |s| s.max(0) as u64),
                    reason,
                })?;
                let Some(case) = ev.person.clone() else {
                    return Ok(());
                };
                let Some((wrapped, stored)) = keys.remove(&case) else {
                    return Ok(());
                };
                let dk = wrapped
                    .map(|w| {
                        let label = key_label(&case, Class::Identity.as_str());
                        self.keys.kek.unwrap_key(&label, &w).map_err(|_| {
                            StoreError::Damaged(format!(
                                "the data key of {case} in the key store does not open with this \
                                 registry's key: the key store is another registry's, or damaged"
                            ))
                        })
                    })
                    .transpose()?;
                let (tokens, number) = match identity_tokens(&case, &ev, dk.as_ref(), &blind) {
                    Ok(tokens) => tokens,
                    // No identity key left: nothing of his can be indexed.
                    Err(StoreError::Erased { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                };
                out.push(Listed {
                    case,
                    seq: ev.seq,
                    tokens,
                    number,
                    stored,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The index tokens of event `seq`'s sealed identity ([`identity_tokens`]).
    fn tokens_of(&self, case: &str, seq: u64) -> Result<IdentityTokens, StoreError> {
        let dk = crate::law::data_key(&self.keys, case, Class::Identity)?;
        identity_tokens(
            case,
            &self.event(seq)?,
            dk.as_ref(),
            &self.blind_index_key(),
        )
    }
}

/// A captive's index tokens ([`person_tokens`]), and his service number's among them.
pub(crate) type IdentityTokens = (Vec<[u8; 16]>, Option<[u8; 16]>);

/// The index tokens of the names and service number sealed in `ev`'s identity, opened with
/// `dk`, his identity key (`None`: erased). An event with no identity sealed names nobody.
fn identity_tokens(
    case: &str,
    ev: &asylon_core::Event,
    dk: Option<&asylon_vault::DataKey>,
    blind: &BlindIndexKey,
) -> Result<IdentityTokens, StoreError> {
    let Some(part) = ev.sealed.iter().find(|p| p.class == Class::Identity) else {
        return Ok((Vec::new(), None));
    };
    let dk = dk.ok_or_else(|| StoreError::Erased {
        case: case.to_string(),
    })?;
    let plain = dk.open(
        &seal_aad(case, Class::Identity.as_str(), &ev.id),
        &part.ciphertext,
    )?;
    let identity = crate::plain::identity_from(&plain)
        .map_err(|e| StoreError::Damaged(format!("sealed identity of {case}: {e}")))?;
    Ok(tokens_and_number(blind, &identity, &event_power(case, ev)?))
}

/// The power `ev`, his registration or a correction of his particulars, says he depends on
/// (both hold his public particulars in their public part).
fn event_power(case: &str, ev: &asylon_core::Event) -> Result<String, StoreError> {
    let public: serde_json::Value = serde_json::from_str(&ev.public)
        .map_err(|e| StoreError::Damaged(format!("event {} of {case}: {e}", ev.seq)))?;
    public
        .get("power")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::Damaged(format!(
                "event {} of {case} holds particulars without a power",
                ev.seq
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asylon_names::reader::read;

    #[test]
    fn service_numbers_compare_by_their_letters_and_digits_in_any_case() {
        for (a, b) in [
            ("KPA-998877", "kpa 998 877"),
            ("KPA-998877", "KPA998877"),
            ("АБ-123456", "аб 123456"),
            ("  7 ", "7"),
            // Latin and Cyrillic letters drawn alike: АВ, КРА, ОХ in Cyrillic.
            ("AB-1", "АВ-1"),
            ("kpa-998877", "кра 998877"),
            ("OX 5", "ох-5"),
        ] {
            assert_eq!(service_number_key(a), service_number_key(b), "{a:?} {b:?}");
        }
        for (a, b) in [
            ("KPA-998877", "KPA-998878"),
            // Б and Д are drawn like no Latin capital.
            ("AB-1", "АБ-1"),
            ("D-1", "Д-1"),
            ("12", "1-2-3"),
        ] {
            assert_ne!(service_number_key(a), service_number_key(b), "{a:?} {b:?}");
        }
        assert_eq!(service_number_key("- / -"), "");
        let blind = asylon_vault::Kek::generate().blind_index_key();
        assert_eq!(service_token(&blind, "KP", "—"), None);
        assert_eq!(
            service_token(&blind, "KP", "kpa-1"),
            service_token(&blind, "KP", "KPA 1")
        );
        assert_ne!(
            service_token(&blind, "KP", "KPA-1"),
            service_token(&blind, "RU", "KPA-1")
        );
    }

    #[test]
    fn the_record_and_the_reader_count_the_same_characters_as_hanja() {
        // A form the record takes as Hanja is read through its Korean readings only if the
        // names crate (which depends on nothing of ours) agrees that it is Hanja.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                Script::detect(&text) == Ok(Script::Hani),
                asylon_names::hanja::is_ideograph(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

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
