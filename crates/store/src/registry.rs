use crate::keystore::KeyStore;
use crate::{StoreError, rfc3339, sealed};
use asylon_core::{
    Actor, Class, Event, FamilyParticulars, IdentityParticulars, PersonRow, PersonStatus,
    Projection, SealedPart, kind,
};
use asylon_ledger::{Checkpoint, Frontier, Hash, leaf_hash};
use asylon_vault::{EventMacKey, KdfParams, Kek, Signer, seal_aad};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const DB_FILE: &str = "registry.db";
const KEY_FILE: &str = "registry.key";
const MIGRATIONS: [&str; 2] = [
    include_str!("migrations/sqlite/0001_init.sql"),
    include_str!("migrations/sqlite/0002_accounts.sql"),
];

pub fn data_file(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Where `init` writes the key file unless told otherwise. Operators should move it off the
/// machine that holds the database and pass `--key-file`.
pub fn default_key_file(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// How the key-encryption key is obtained.
pub enum KeySource {
    File(PathBuf),
    Passphrase(Zeroizing<String>),
}

/// A person's record as an authorised reader sees it.
#[derive(Debug, serde::Serialize)]
pub struct PersonView {
    #[serde(flatten)]
    pub row: PersonRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityParticulars>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<FamilyParticulars>,
    /// Classes the reader may not open, each with the policy's reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct InclusionProof {
    pub seq: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(with = "hex_hash")]
    pub leaf_hash: Hash,
    #[serde(with = "hex_hash")]
    pub root: Hash,
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

/// A proof that the current log extends the one of `old_size` events (RFC 9162 §2.1.4).
#[derive(Debug, serde::Serialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub tree_size: u64,
    #[serde(with = "hex_hash")]
    pub root: Hash,
    #[serde(with = "hex_hashes")]
    pub path: Vec<Hash>,
}

pub(crate) mod hex_hash {
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&hex::encode(h))
    }
}

pub(crate) mod hex_hashes {
    use serde::ser::SerializeSeq;
    pub fn serialize<S: serde::Serializer>(hs: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hs.len()))?;
        for h in hs {
            seq.serialize_element(&hex::encode(h))?;
        }
        seq.end()
    }
}

/// An event not yet in the log.
pub(crate) struct NewEvent {
    pub(crate) id: String,
    pub(crate) person: Option<String>,
    pub(crate) kind: String,
    pub(crate) public: String,
    pub(crate) sealed: Vec<SealedPart>,
    /// For a registration, the core particulars the public payload was made from, so the
    /// projection row is built from them rather than by parsing the payload back.
    pub(crate) registered: Option<asylon_core::CoreParticulars>,
}

pub struct Registry {
    pub(crate) conn: Connection,
    pub(crate) keys: KeyStore,
    pub(crate) mac_key: EventMacKey,
    signer: Signer,
    pub(crate) origin: String,
}

pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    // WAL: readers never block the writer. FULL: a commit survives power loss, not only a crash.
    // secure_delete: deleted data keys are overwritten, not left in free pages.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    // 64 MiB of page cache and a WAL folded back every 32 MiB rather than every 4: the blind
    // index is keyed by random tokens, so its inserts touch pages all over its B-tree, and with
    // the defaults most of those pages are written back and read again many times per import.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

pub(crate) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = migrations.len() as i64;
    if version > known {
        return Err(StoreError::Damaged(format!(
            "schema version {version} was written by a newer Asylon (this one knows {known})"
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_need(conn: &Connection, key: &str) -> Result<Vec<u8>, StoreError> {
    meta_get(conn, key)?
        .ok_or_else(|| StoreError::Damaged(format!("registry setting {key} is missing")))
}

pub(crate) fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn encode_frontier(f: &Frontier) -> Vec<u8> {
    let mut out = f.size().to_be_bytes().to_vec();
    for p in f.peaks() {
        out.extend_from_slice(p);
    }
    out
}

pub(crate) fn decode_frontier(bytes: &[u8]) -> Option<Frontier> {
    let (size, rest) = bytes.split_at_checked(8)?;
    let size = u64::from_be_bytes(size.try_into().ok()?);
    let peaks = rest
        .chunks(32)
        .map(|c| <[u8; 32]>::try_from(c).ok())
        .collect::<Option<Vec<_>>>()?;
    Frontier::from_parts(size, peaks)
}

pub(crate) fn row_to_event(r: &rusqlite::Row<'_>) -> Result<Event, String> {
    let seq: i64 = r.get(0).map_err(|e| e.to_string())?;
    let text =
        |i: usize| -> Result<String, String> { r.get(i).map_err(|e| format!("column {i}: {e}")) };
    let sealed_bytes: Vec<u8> = r.get(8).map_err(|e| format!("sealed: {e}"))?;
    Ok(Event {
        seq: u64::try_from(seq).map_err(|_| "negative sequence number".to_string())?,
        id: text(1)?,
        at: text(2)?,
        actor: Actor {
            user: text(3)?,
            org: text(4)?,
        },
        person: r.get(5).map_err(|e| format!("person: {e}"))?,
        kind: text(6)?,
        public: text(7)?,
        sealed: sealed::decode(&sealed_bytes).map_err(str::to_string)?,
    })
}

pub(crate) const EVENT_COLUMNS: &str =
    "seq, id, at, actor_user, actor_org, person, kind, public, sealed, mac";

pub(crate) fn new_id() -> String {
    uuid::Builder::from_random_bytes(asylon_vault::random())
        .into_uuid()
        .to_string()
}

fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

impl Registry {
    /// Creates a registry in `dir`: database, KEK (new key file, or from a passphrase) and
    /// signing key. Refuses if a registry or key file is already there; on failure removes what
    /// it created.
    pub fn init(
        dir: &Path,
        key: &KeySource,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("cannot create the data directory", e))?;
        let db = data_file(dir);
        if db.exists() || crate::keystore::keys_file(dir).exists() {
            return Err(StoreError::AlreadyExists(dir.display().to_string()));
        }
        let (kek, kdf) = match key {
            KeySource::File(path) => {
                if path.exists() {
                    return Err(StoreError::AlreadyExists(format!(
                        "{} (the key file {} exists)",
                        dir.display(),
                        path.display()
                    )));
                }
                let kek = Kek::generate();
                kek.write_key_file(path).map_err(|e| {
                    StoreError::io(&format!("cannot write key file {}", path.display()), e)
                })?;
                (kek, None)
            }
            KeySource::Passphrase(p) => {
                if p.chars().count() < 12 {
                    return Err(StoreError::Io(
                        "the passphrase is shorter than 12 characters; choose a longer one".into(),
                    ));
                }
                let params = KdfParams::new_random();
                (Kek::from_passphrase(p.as_bytes(), &params)?, Some(params))
            }
        };
        let settings_existed = dir.join("settings.toml").exists();
        let created = crate::law::write_default_settings(dir)
            .and_then(|()| Self::create(dir, kek, kdf, actor, now));
        if created.is_err() {
            for file in [db.clone(), crate::keystore::keys_file(dir)] {
                for suffix in ["", "-wal", "-shm"] {
                    remove_quietly(Path::new(&format!("{}{suffix}", file.display())));
                }
            }
            if let KeySource::File(path) = key {
                remove_quietly(path);
            }
            if !settings_existed {
                remove_quietly(&dir.join("settings.toml"));
            }
        }
        created
    }

    fn create(
        dir: &Path,
        kek: Kek,
        kdf: Option<KdfParams>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let mut conn = Connection::open(data_file(dir))?;
        configure(&conn)?;
        migrate(&mut conn, &MIGRATIONS)?;
        let signer = Signer::generate();
        let origin = hex::encode(asylon_vault::random::<16>());
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            meta_put(&tx, "origin", origin.as_bytes())?;
            match &kdf {
                Some(p) => meta_put(&tx, "kek_passphrase_kdf", p.encode().as_bytes())?,
                None => meta_put(&tx, "kek_key_file", b"1")?,
            }
            meta_put(&tx, "kek_check", &kek.check_value())?;
            meta_put(&tx, "signing_public", &signer.public_key())?;
            meta_put(&tx, "signing_wrapped", &kek.wrap_signer(&signer))?;
            meta_put(&tx, "frontier", &encode_frontier(&Frontier::new()))?;
            meta_put(&tx, "next_case", &1u64.to_be_bytes())?;
            tx.commit()?;
        }
        let mut reg = Self {
            conn,
            mac_key: kek.event_mac_key(),
            keys: KeyStore::open(dir, kek, true)?,
            signer,
            origin: origin.clone(),
        };
        let public = serde_json::json!({
            "origin": origin,
            "signing_key": hex::encode(reg.signer.public_key()),
        })
        .to_string();
        reg.write(actor, now, |_, _| {
            Ok(vec![NewEvent {
                id: new_id(),
                person: None,
                kind: kind::REGISTRY_CREATED.into(),
                public,
                sealed: vec![],
                registered: None,
            }])
        })?;
        Ok(reg)
    }

    /// Opens an existing registry; a wrong key file or passphrase is refused before anything else.
    pub fn open(dir: &Path, key: &KeySource) -> Result<Self, StoreError> {
        let db = data_file(dir);
        if !db.exists() {
            return Err(StoreError::NoRegistry(dir.display().to_string()));
        }
        let mut conn = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        migrate(&mut conn, &MIGRATIONS)?;
        let kdf = meta_get(&conn, "kek_passphrase_kdf")?;
        let kek = match (key, kdf) {
            (KeySource::File(path), None) => Kek::read_key_file(path)?,
            (KeySource::Passphrase(p), Some(kdf)) => {
                let params = std::str::from_utf8(&kdf)
                    .ok()
                    .and_then(KdfParams::decode)
                    .ok_or_else(|| {
                        StoreError::Damaged("passphrase parameters unreadable".into())
                    })?;
                Kek::from_passphrase(p.as_bytes(), &params)?
            }
            (KeySource::File(_), Some(_)) => {
                return Err(StoreError::Io(
                    "this registry's key comes from a passphrase: give --passphrase-env VAR".into(),
                ));
            }
            (KeySource::Passphrase(_), None) => {
                return Err(StoreError::Io(
                    "this registry's key is in a key file: give --key-file FILE".into(),
                ));
            }
        };
        if !kek.matches(&meta_need(&conn, "kek_check")?) {
            return Err(asylon_vault::VaultError::WrongKey.into());
        }
        let signer = kek.unwrap_signer(&meta_need(&conn, "signing_wrapped")?)?;
        let origin = String::from_utf8(meta_need(&conn, "origin")?)
            .map_err(|_| StoreError::Damaged("origin is not text".into()))?;
        Ok(Self {
            conn,
            mac_key: kek.event_mac_key(),
            keys: KeyStore::open(dir, kek, false)?,
            signer,
            origin,
        })
    }

    /// Appends the record of a name search.
    pub(crate) fn record_search(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        public: String,
    ) -> Result<(), StoreError> {
        self.write(actor, now, |_, _| {
            Ok(vec![NewEvent {
                id: new_id(),
                person: None,
                kind: kind::NAME_SEARCHED.into(),
                public,
                sealed: vec![],
                registered: None,
            }])
        })?;
        Ok(())
    }

    pub(crate) fn blind_index_key(&self) -> asylon_vault::BlindIndexKey {
        self.keys.kek.blind_index_key()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signer.public_key()
    }

    /// Runs one write: `build` sees the open transaction and returns the events to append; they
    /// are appended with their MACs, the projection updated, the frontier advanced and the tree
    /// head re-signed, all in one `BEGIN IMMEDIATE` transaction.
    pub(crate) fn write<F>(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        build: F,
    ) -> Result<Vec<Event>, StoreError>
    where
        F: FnOnce(&Transaction<'_>, &KeyStore) -> Result<Vec<NewEvent>, StoreError>,
    {
        let at = rfc3339(now);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut frontier = decode_frontier(&meta_need(&tx, "frontier")?).ok_or_else(|| {
            StoreError::Damaged("the stored Merkle frontier is unreadable".into())
        })?;
        let new = build(&tx, &self.keys)?;
        let mut written = Vec::with_capacity(new.len());
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?;
            for n in new {
                let registered = n.registered;
                let ev = Event {
                    seq: frontier.size() + 1,
                    id: n.id,
                    at: at.clone(),
                    actor: actor.clone(),
                    person: n.person,
                    kind: n.kind,
                    public: n.public,
                    sealed: n.sealed,
                };
                let leaf = leaf_hash(&ev.leaf_bytes());
                let mac = self.mac_key.mac(ev.seq, &leaf);
                insert.execute(params![
                    ev.seq as i64,
                    ev.id,
                    ev.at,
                    ev.actor.user,
                    ev.actor.org,
                    ev.person,
                    ev.kind,
                    ev.public,
                    sealed::encode(&ev.sealed),
                    &mac[..],
                ])?;
                frontier.push(leaf);
                match (&registered, &ev.person) {
                    (Some(core), Some(case)) => {
                        insert_person(&tx, &PersonRow::registered(case.clone(), ev.seq, core))?
                    }
                    _ => project(&tx, &ev)?,
                }
                written.push(ev);
            }
        }
        meta_put(&tx, "frontier", &encode_frontier(&frontier))?;
        let sig = self.signer.sign(&Checkpoint::signed_body(
            &self.origin,
            frontier.size(),
            &frontier.root(),
            &at,
        ));
        meta_put(&tx, "head_time", at.as_bytes())?;
        meta_put(&tx, "head_signature", &sig)?;
        tx.commit()?;
        Ok(written)
    }

    /// After a unique-constraint failure: which external id is already registered, and as whom.
    pub(crate) fn duplicate_external_id(
        &self,
        external_ids: &[Option<String>],
    ) -> Option<StoreError> {
        external_ids.iter().find_map(|ext| {
            let ext = ext.as_ref()?;
            let case: String = self
                .conn
                .query_row(
                    "SELECT case_no FROM persons WHERE external_id = ?1",
                    [ext],
                    |r| r.get(0),
                )
                .ok()?;
            Some(StoreError::DuplicateExternalId {
                external_id: ext.clone(),
                case,
            })
        })
    }

    /// Every external id already registered, so an interrupted import can be run again and skip
    /// what it had finished.
    pub fn external_ids(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT external_id FROM persons WHERE external_id IS NOT NULL")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    pub fn person(&self, case: &str) -> Result<PersonRow, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{PERSON_SELECT} WHERE case_no = ?1"))?;
        stmt.query_row([case], person_from_row)
            .optional()?
            .ok_or_else(|| StoreError::UnknownPerson(case.to_string()))?
    }

    /// Up to `limit` persons after case number `after`, in case-number order.
    pub fn persons_page(&self, after: &str, limit: usize) -> Result<Vec<PersonRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{PERSON_SELECT} WHERE case_no > ?1 ORDER BY case_no LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], person_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    pub fn persons(&self) -> Result<Vec<PersonRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("{PERSON_SELECT} ORDER BY case_no"))?;
        let rows = stmt.query_map([], person_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Opens a person's sealed classes for `actor` and records the read as an event.
    pub fn show_person(
        &mut self,
        who: &asylon_core::law::Principal,
        now: OffsetDateTime,
        case: &str,
    ) -> Result<PersonView, StoreError> {
        use asylon_core::policy::{Action, may};
        let row = self.person(case)?;
        let world = crate::law::load_world(&self.conn, &self.keys, Some(case))?;
        let state = world.cases.get(case);
        may(who, state, Action::ReadCore).map_err(StoreError::Denied)?;
        if row.status == PersonStatus::Erased {
            return Ok(PersonView {
                row,
                identity: None,
                family: None,
                withheld: Vec::new(),
            });
        }
        let ev = self.event(row.registered_seq)?;
        let mut identity = None;
        let mut family = None;
        let mut read = Vec::new();
        let mut withheld = Vec::new();
        for part in &ev.sealed {
            if let Err(why) = may(who, state, Action::Read(part.class)) {
                withheld.push(format!("{}: {}", part.class.as_str(), why.0));
                continue;
            }
            let plain = self.open_part(case, &ev, part)?;
            let damaged = |e: serde_json::Error| {
                StoreError::Damaged(format!("sealed {} of {case}: {e}", part.class.as_str()))
            };
            match part.class {
                Class::Identity => {
                    identity = Some(serde_json::from_slice(&plain).map_err(damaged)?)
                }
                Class::Family => family = Some(serde_json::from_slice(&plain).map_err(damaged)?),
                Class::Medical | Class::Statements => continue,
            }
            read.push(part.class.as_str());
        }
        self.record_read(who, now, case, &read)?;
        Ok(PersonView {
            row,
            identity,
            family,
            withheld,
        })
    }

    fn open_part(
        &self,
        case: &str,
        ev: &Event,
        part: &SealedPart,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let dk = crate::law::data_key(&self.keys, case, part.class)?.ok_or_else(|| {
            StoreError::Erased {
                case: case.to_string(),
            }
        })?;
        Ok(dk.open(
            &seal_aad(case, part.class.as_str(), &ev.id),
            &part.ciphertext,
        )?)
    }

    /// Crypto-shreds a person: destroys his data keys, records the erasure and its reason, and
    /// checkpoints the WAL so no copy of the keys stays in it.
    pub fn erase(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        case: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(StoreError::Invalid(vec![asylon_core::FieldError {
                field: "reason".into(),
                reason: "give the reason for the erasure (1 to 500 characters)".into(),
            }]));
        }
        let row = self.person(case)?;
        if row.status == PersonStatus::Erased {
            return Err(StoreError::Erased {
                case: case.to_string(),
            });
        }
        // First the keys, in the key store: from that commit on his sealed data is unreadable in
        // every copy of the registry. Then the event that records it. A crash between the two
        // leaves him unreadable but not yet marked erased; running the erasure again completes it.
        let classes = self.destroy_keys(case)?;
        let person = case.to_string();
        let written = self.write(actor, now, |_, _| {
            Ok(vec![NewEvent {
                id: new_id(),
                person: Some(person.clone()),
                kind: kind::PERSON_ERASED.into(),
                public: serde_json::json!({ "reason": reason, "keys_destroyed": classes })
                    .to_string(),
                sealed: vec![],
                registered: None,
            }])
        })?;
        Ok(written.first().map(|e| e.seq).unwrap_or_default())
    }

    /// Deletes a person's data keys and name tokens from the key store, overwriting them in place
    /// and emptying its WAL; returns the classes whose keys were destroyed.
    fn destroy_keys(&mut self, case: &str) -> Result<Vec<&'static str>, StoreError> {
        let tx = self
            .keys
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(Vec<bool>, Option<Vec<u8>>)> = tx
            .query_row(
                "SELECT identity IS NOT NULL, family IS NOT NULL, medical IS NOT NULL,
                        statements IS NOT NULL, name_tokens FROM data_keys WHERE person = ?1",
                [case],
                |r| {
                    Ok((
                        (0..4)
                            .map(|i| r.get::<_, bool>(i))
                            .collect::<Result<_, _>>()?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()?;
        let (present, tokens) = row.unwrap_or_default();
        for token in crate::search::split_tokens(&tokens.unwrap_or_default()) {
            tx.execute(
                "DELETE FROM name_index WHERE token = ?1 AND person = ?2",
                params![token, case],
            )?;
        }
        tx.execute("DELETE FROM data_keys WHERE person = ?1", [case])?;
        tx.commit()?;
        // The WAL still holds the pages as they were before: fold them back and empty it.
        self.keys
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(Class::ALL
            .iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(c, _)| c.as_str())
            .collect())
    }

    pub fn event(&self, seq: u64) -> Result<Event, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
        ))?;
        stmt.query_row([seq as i64], |r| Ok(row_to_event(r)))
            .optional()?
            .ok_or(StoreError::UnknownEvent(seq))?
            .map_err(|reason| StoreError::Tampered { seq, reason })
    }

    /// Events in log order, all or those about one person.
    pub fn events(&self, person: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let (sql, args): (String, Vec<&str>) = match person {
            Some(p) => (
                format!("SELECT {EVENT_COLUMNS} FROM events WHERE person = ?1 ORDER BY seq"),
                vec![p],
            ),
            None => (
                format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"),
                vec![],
            ),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            out.push(row_to_event(r).map_err(|reason| StoreError::Tampered {
                seq: seq as u64,
                reason,
            })?);
        }
        Ok(out)
    }

    /// A fresh signed checkpoint of the current log.
    pub fn checkpoint(&self, now: OffsetDateTime) -> Result<Checkpoint, StoreError> {
        let frontier = decode_frontier(&meta_need(&self.conn, "frontier")?).ok_or_else(|| {
            StoreError::Damaged("the stored Merkle frontier is unreadable".into())
        })?;
        let time = rfc3339(now);
        let root = frontier.root();
        let body = Checkpoint::signed_body(&self.origin, frontier.size(), &root, &time);
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: frontier.size(),
            root,
            time,
            key_id: asylon_vault::key_id(&self.signer.public_key()),
            signature: self.signer.sign(&body).to_vec(),
        })
    }

    /// The stored signed tree head: (size, root, time, signature).
    pub(crate) fn signed_head(&self) -> Result<(Frontier, String, Vec<u8>), StoreError> {
        let frontier = decode_frontier(&meta_need(&self.conn, "frontier")?).ok_or_else(|| {
            StoreError::VerifyFailed("the stored Merkle frontier is unreadable".into())
        })?;
        let time = String::from_utf8(meta_need(&self.conn, "head_time")?)
            .map_err(|_| StoreError::VerifyFailed("the signed head's time is not text".into()))?;
        Ok((frontier, time, meta_need(&self.conn, "head_signature")?))
    }

    /// Rebuilds the projection from the events, in one transaction.
    pub fn rebuild(&mut self) -> Result<usize, StoreError> {
        let projection = self.replay()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM persons", [])?;
        for row in projection.persons.values() {
            insert_person(&tx, row)?;
        }
        tx.commit()?;
        Ok(projection.persons.len())
    }

    pub(crate) fn replay(&self) -> Result<Projection, StoreError> {
        let mut p = Projection::default();
        each_event(&self.conn, None, |ev| {
            p.apply(&ev).map_err(|e| StoreError::Damaged(e.to_string()))
        })?;
        Ok(p)
    }
}

/// Calls `f` with every event in log order, or with those about `person` and the shared law
/// records about no one (places, exchange lists).
pub(crate) fn each_event(
    conn: &Connection,
    person: Option<&str>,
    mut f: impl FnMut(Event) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (sql, args): (String, Vec<&str>) = match person {
        Some(p) => (
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE person = ?1 UNION ALL \
                 SELECT {EVENT_COLUMNS} FROM events WHERE person IS NULL AND kind LIKE 'case.%' \
                 ORDER BY seq"
            ),
            vec![p],
        ),
        None => (
            format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"),
            vec![],
        ),
    };
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let ev = row_to_event(r).map_err(|reason| StoreError::Tampered {
            seq: seq as u64,
            reason,
        })?;
        f(ev)?;
    }
    Ok(())
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

const PERSON_SELECT: &str = "SELECT case_no, external_id, power, captured_on, captured_at, status, registered_seq, last_seq FROM persons";

fn person_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<PersonRow, StoreError>> {
    let status: String = r.get(5)?;
    let case_no: String = r.get(0)?;
    let Some(status) = PersonStatus::parse(&status) else {
        return Ok(Err(StoreError::Damaged(format!(
            "{case_no} has unknown status {status:?}"
        ))));
    };
    Ok(Ok(PersonRow {
        case_no,
        external_id: r.get(1)?,
        power: r.get(2)?,
        captured_on: r.get(3)?,
        captured_at: r.get(4)?,
        status,
        registered_seq: r.get::<_, i64>(6)? as u64,
        last_seq: r.get::<_, i64>(7)? as u64,
    }))
}

fn insert_person(tx: &Transaction<'_>, row: &PersonRow) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO persons (case_no, external_id, power, captured_on, captured_at, status, registered_seq, last_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        row.case_no,
        row.external_id,
        row.power,
        row.captured_on,
        row.captured_at,
        row.status.as_str(),
        row.registered_seq as i64,
        row.last_seq as i64
    ])?;
    Ok(())
}

/// Applies one event to the stored projection, using the same rules as a replay.
fn project(tx: &Transaction<'_>, ev: &Event) -> Result<(), StoreError> {
    let Some(case) = ev.person.as_deref() else {
        return Ok(());
    };
    if ev.kind == kind::PERSON_REGISTERED {
        let mut p = Projection::default();
        p.apply(ev)
            .map_err(|e| StoreError::Damaged(e.to_string()))?;
        for row in p.persons.values() {
            insert_person(tx, row)?;
        }
        return Ok(());
    }
    // Every other kind acts on an existing row: load it, apply, store it back.
    let mut p = Projection::default();
    let mut stmt = tx.prepare_cached(&format!("{PERSON_SELECT} WHERE case_no = ?1"))?;
    if let Some(row) = stmt.query_row([case], person_from_row).optional()? {
        let row = row?;
        p.persons.insert(row.case_no.clone(), row);
    }
    p.apply(ev)
        .map_err(|e| StoreError::Damaged(e.to_string()))?;
    if let Some(row) = p.persons.get(case) {
        tx.prepare_cached("UPDATE persons SET status = ?2, last_seq = ?3 WHERE case_no = ?1")?
            .execute(params![case, row.status.as_str(), row.last_seq as i64])?;
    }
    Ok(())
}
