use crate::db::{Purge, Row, Sql, Tx, Val, args};
use crate::keystore::KeyStore;
use crate::progress::{Counter, Progress};
use crate::register::{CASE_PREFIX, case_number, parse_case_number};
use crate::{StoreError, rfc3339, sealed};
use asylon_core::{
    Actor, Class, Event, FamilyParticulars, IdentityParticulars, PersonRow, PersonStatus,
    Projection, SealedPart, kind,
};
use asylon_ledger::{Checkpoint, Frontier, Hash, leaf_hash_with};
use asylon_vault::{EventMacKey, KdfParams, Kek, Signer, seal_aad};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const DB_FILE: &str = "registry.db";
const KEY_FILE: &str = "registry.key";
pub(crate) const MIGRATIONS: [&str; 5] = [
    include_str!("migrations/sqlite/0001_init.sql"),
    include_str!("migrations/sqlite/0002_accounts.sql"),
    include_str!("migrations/sqlite/0003_session_org_key.sql"),
    include_str!("migrations/sqlite/0004_tree_nodes.sql"),
    include_str!("migrations/sqlite/0005_throttle_forgets.sql"),
];
const PG_MIGRATIONS: [&str; 5] = [
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_accounts.sql"),
    include_str!("migrations/postgres/0003_session_org_key.sql"),
    include_str!("migrations/postgres/0004_tree_nodes.sql"),
    include_str!("migrations/postgres/0005_throttle_forgets.sql"),
];

/// Where a registry's records are: SQLite files in its data directory (the default), or a
/// schema of a PostgreSQL database. The key file (or passphrase parameters) and the settings
/// stay in the data directory either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres { url: String, schema: String },
}

pub(crate) fn connect(dir: &Path, db: &Database, create: bool) -> Result<Box<dyn Sql>, StoreError> {
    Ok(match db {
        Database::Sqlite => Box::new(crate::db::sqlite::open(
            &data_file(dir),
            create,
            &MIGRATIONS,
        )?),
        Database::Postgres { url, schema } => {
            Box::new(crate::db::pg::open(url, schema, create, &PG_MIGRATIONS)?)
        }
    })
}

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
    /// The event his particulars are read from: his registration, or the latest correction.
    pub particulars_seq: u64,
    /// The Art 17 particulars he did not give.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_stated: Vec<asylon_core::Art17Field>,
    /// Classes the reader may not open, each with the policy's reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// His age on the day of his capture, from his date of birth: given only to a reader of
    /// his identity, and only if he gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_at_capture: Option<asylon_core::Age>,
}

/// Read back by `asylon ledger check`, which needs no registry: every field must be there, and
/// no other.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A proof that the log of `tree_size` events extends the one of `old_size` (RFC 9162 §2.1.4).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        asylon_ledger::parse_hash(&text).map_err(serde::de::Error::custom)
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

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let texts: Vec<String> = serde::Deserialize::deserialize(d)?;
        texts
            .iter()
            .map(|t| asylon_ledger::parse_hash(t).map_err(serde::de::Error::custom))
            .collect()
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

/// What an erasure did: the event that records it, and whether its keys are gone from the key
/// store's files too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erased {
    pub seq: u64,
    pub purge: Purge,
}

/// What [`Registry::shred_erased`] did: the erased captives whose keys the key store still
/// held, now destroyed, and whether they are gone from its files too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shredded {
    pub cases: Vec<String>,
    pub purge: Purge,
}

pub struct Registry {
    pub(crate) conn: Box<dyn Sql>,
    pub(crate) keys: KeyStore,
    pub(crate) mac_key: EventMacKey,
    signer: Signer,
    pub(crate) origin: String,
}

fn meta_get(conn: &dyn Sql, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    conn.one("SELECT value FROM meta WHERE key = ?1", args![key])?
        .map(|r| r.blob(0))
        .transpose()
}

/// The registry's note that the key store's files may still hold keys deleted from it (see
/// `Registry::destroy`).
const PURGE_DUE: &str = "keys_purge_due";

pub(crate) fn meta_need(conn: &dyn Sql, key: &str) -> Result<Vec<u8>, StoreError> {
    meta_get(conn, key)?
        .ok_or_else(|| StoreError::Damaged(format!("registry setting {key} is missing")))
}

pub(crate) fn meta_put(conn: &dyn Sql, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
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

pub(crate) fn row_to_event(r: &Row) -> Result<Event, String> {
    let seq: i64 = r.i64(0).map_err(|e| e.to_string())?;
    let text = |i: usize| -> Result<String, String> { r.text(i).map_err(|e| e.to_string()) };
    let sealed_bytes: Vec<u8> = r.blob(8).map_err(|e| format!("sealed: {e}"))?;
    Ok(Event {
        seq: u64::try_from(seq).map_err(|_| "negative sequence number".to_string())?,
        id: text(1)?,
        at: text(2)?,
        actor: Actor {
            user: text(3)?,
            org: text(4)?,
        },
        person: r.opt_text(5).map_err(|e| format!("person: {e}"))?,
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

pub(crate) fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Runs `make` in the data directory `dir`, created with its parents if missing. If `make`
/// fails and the directory was made here, it is removed again once nothing is left in it
/// (`remove_dir` removes only an empty one), so that a refused `init`, `restore` or move
/// leaves no empty directory behind.
pub(crate) fn in_data_dir<T>(
    dir: &Path,
    make: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::io("cannot create the data directory", e))?;
    let made = make();
    if made.is_err() && !existed {
        let _ = std::fs::remove_dir(dir);
    }
    made
}

/// Removes what a failed init, restore or move wrote: the registry's SQLite files (with their
/// WALs) or its PostgreSQL schemas, and the settings file unless it was there before. Never a
/// directory's other files.
pub(crate) fn remove_written(dir: &Path, database: &Database, settings_existed: bool) {
    match database {
        Database::Sqlite => {
            for file in [data_file(dir), crate::keystore::keys_file(dir)] {
                // `-erasing`: the lock erasures take (`Sql::erasing`).
                for suffix in ["", "-wal", "-shm", "-erasing"] {
                    remove_quietly(Path::new(&format!("{}{suffix}", file.display())));
                }
            }
        }
        Database::Postgres { url, schema } => {
            if let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) {
                let (registry, keys) = (
                    crate::db::pg::ident(schema),
                    crate::db::pg::ident(&format!("{schema}_keys")),
                );
                let _ = c.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {registry} CASCADE; DROP SCHEMA IF EXISTS {keys} CASCADE"
                ));
            }
        }
    }
    if !settings_existed {
        remove_quietly(&dir.join("settings.toml"));
    }
}

/// What appending to the log needs: the registry's connection and its MAC and signing keys.
pub(crate) struct Log<'a> {
    pub(crate) conn: &'a dyn Sql,
    mac_key: &'a EventMacKey,
    signer: &'a Signer,
    origin: &'a str,
}

impl Log<'_> {
    /// See [`Registry::write`].
    pub(crate) fn append<F>(
        &self,
        actor: &Actor,
        now: OffsetDateTime,
        build: F,
    ) -> Result<Vec<Event>, StoreError>
    where
        F: FnOnce(&dyn Sql) -> Result<Vec<NewEvent>, StoreError>,
    {
        let at = rfc3339(now);
        let db = self.conn;
        let tx = Tx::write(db)?;
        let mut frontier = stored_frontier(db)?;
        let new = build(db)?;
        // Number, hash and MAC every event first, then append them together.
        let mut written = Vec::with_capacity(new.len());
        let mut stored = Vec::with_capacity(new.len());
        let mut registered = Vec::new();
        let mut to_project = Vec::new();
        let mut nodes = Vec::new();
        for n in new {
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
            let leaf = leaf_hash_with(|sink| ev.write_leaf(sink));
            crate::verify::push_keeping(&mut frontier, leaf, &mut nodes);
            stored.push((sealed::encode(&ev.sealed), self.mac_key.mac(ev.seq, &leaf)));
            match (n.registered, &ev.person) {
                (Some(core), Some(case)) => {
                    registered.push(PersonRow::registered(case.clone(), ev.seq, core))
                }
                _ => to_project.push(written.len()),
            }
            written.push(ev);
        }
        let rows: Vec<Vec<crate::db::Val<'_>>> = written
            .iter()
            .zip(&stored)
            .map(|(ev, (sealed, mac))| {
                args![
                    ev.seq as i64,
                    &ev.id,
                    &ev.at,
                    &ev.actor.user,
                    &ev.actor.org,
                    ev.person.as_deref(),
                    &ev.kind,
                    &ev.public,
                    &sealed[..],
                    &mac[..],
                ]
                .to_vec()
            })
            .collect();
        db.insert_many(&format!("events ({EVENT_COLUMNS})"), 10, &rows)?;
        crate::verify::keep_nodes(db, &nodes)?;
        let persons: Vec<Vec<crate::db::Val<'_>>> =
            registered.iter().map(|p| person_args(p).to_vec()).collect();
        db.insert_many(&format!("persons ({PERSON_COLUMNS})"), 8, &persons)?;
        for i in to_project {
            if let Some(ev) = written.get(i) {
                project(db, ev)?;
            }
        }
        meta_put(db, "frontier", &encode_frontier(&frontier))?;
        let sig = self.signer.sign(&Checkpoint::signed_body(
            self.origin,
            frontier.size(),
            &frontier.root(),
            &at,
        ));
        meta_put(db, "head_time", at.as_bytes())?;
        meta_put(db, "head_signature", &sig)?;
        tx.commit()?;
        Ok(written)
    }
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
        Self::init_in(dir, &Database::Sqlite, key, actor, now)
    }

    /// [`Registry::init`] with the records in `database`.
    pub fn init_in(
        dir: &Path,
        database: &Database,
        key: &KeySource,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        if let KeySource::Passphrase(p) = key
            && p.chars().count() < 12
        {
            return Err(StoreError::Io(
                "the passphrase is shorter than 12 characters; choose a longer one".into(),
            ));
        }
        in_data_dir(dir, || Self::init_into(dir, database, key, actor, now))
    }

    /// [`Registry::init_in`] once the data directory exists.
    fn init_into(
        dir: &Path,
        database: &Database,
        key: &KeySource,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let db = data_file(dir);
        if db.exists() || crate::keystore::keys_file(dir).exists() {
            return Err(StoreError::AlreadyExists(dir.display().to_string()));
        }
        if let Database::Postgres { schema, .. } = database
            && let Ok(conn) = connect(dir, database, false)
            && meta_get(&*conn, "origin")?.is_some()
        {
            return Err(StoreError::AlreadyExists(format!(
                "the PostgreSQL schema {schema}"
            )));
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
                let params = KdfParams::new_random();
                (Kek::from_passphrase(p.as_bytes(), &params)?, Some(params))
            }
        };
        let settings_existed = dir.join("settings.toml").exists();
        let created = crate::law::write_default_settings(dir)
            .and_then(|()| Self::create(dir, database, kek, kdf, actor, now));
        if created.is_err() {
            remove_written(dir, database, settings_existed);
            if let KeySource::File(path) = key {
                remove_quietly(path);
            }
        }
        created
    }

    fn create(
        dir: &Path,
        database: &Database,
        kek: Kek,
        kdf: Option<KdfParams>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let conn = connect(dir, database, true)?;
        let signer = Signer::generate();
        let origin = hex::encode(asylon_vault::random::<16>());
        {
            let tx = Tx::write(&*conn)?;
            let c = &*conn;
            meta_put(c, "origin", origin.as_bytes())?;
            match &kdf {
                Some(p) => meta_put(c, "kek_passphrase_kdf", p.encode().as_bytes())?,
                None => meta_put(c, "kek_key_file", b"1")?,
            }
            meta_put(c, "kek_check", &kek.check_value())?;
            meta_put(c, "signing_public", &signer.public_key())?;
            meta_put(c, "signing_wrapped", &kek.wrap_signer(&signer))?;
            meta_put(c, "frontier", &encode_frontier(&Frontier::new()))?;
            meta_put(c, "next_case", &1u64.to_be_bytes())?;
            tx.commit()?;
        }
        let mut reg = Self {
            conn,
            mac_key: kek.event_mac_key(),
            keys: KeyStore::open(dir, database, kek, true)?,
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
        Self::open_in(dir, &Database::Sqlite, key)
    }

    /// [`Registry::open`] with the records in `database`.
    pub fn open_in(dir: &Path, database: &Database, key: &KeySource) -> Result<Self, StoreError> {
        if *database == Database::Sqlite && !data_file(dir).exists() {
            return Err(StoreError::NoRegistry {
                place: dir.display().to_string(),
                init: format!("asylon init --data-dir {}", dir.display()),
            });
        }
        let conn = connect(dir, database, false)?;
        let kdf = meta_get(&*conn, "kek_passphrase_kdf")?;
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
        if !kek.matches(&meta_need(&*conn, "kek_check")?) {
            return Err(asylon_vault::VaultError::WrongKey.into());
        }
        let signer = kek.unwrap_signer(&meta_need(&*conn, "signing_wrapped")?)?;
        let origin = String::from_utf8(meta_need(&*conn, "origin")?)
            .map_err(|_| StoreError::Damaged("origin is not text".into()))?;
        Ok(Self {
            conn,
            mac_key: kek.event_mac_key(),
            keys: KeyStore::open(dir, database, kek, false)?,
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
        self.record_lookup(actor, now, kind::NAME_SEARCHED, public)
    }

    /// Appends the record of a lookup in the blind index (`kind`: a name search, or a service
    /// number's holders told): who, and what `public` says was asked and found.
    pub(crate) fn record_lookup(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        kind: &str,
        public: String,
    ) -> Result<(), StoreError> {
        self.write(actor, now, |_, _| {
            Ok(vec![NewEvent {
                id: new_id(),
                person: None,
                kind: kind.into(),
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
        F: FnOnce(&dyn Sql, &KeyStore) -> Result<Vec<NewEvent>, StoreError>,
    {
        let (log, keys) = self.split();
        log.append(actor, now, |db| build(db, keys))
    }

    /// The log and the key store apart, so that each can be used on a thread of its own.
    pub(crate) fn split(&mut self) -> (Log<'_>, &mut KeyStore) {
        (
            Log {
                conn: &*self.conn,
                mac_key: &self.mac_key,
                signer: &self.signer,
                origin: &self.origin,
            },
            &mut self.keys,
        )
    }

    /// The first of `external_ids` (in their order) that is already registered, as the
    /// refusal of a registration naming it and his case; `None` if none is. Asked a few hundred
    /// per query (see [`Registry::registered_among`]).
    pub(crate) fn duplicate_external_id(
        &self,
        external_ids: &[Option<&str>],
    ) -> Result<Option<StoreError>, StoreError> {
        let ids: Vec<&str> = external_ids.iter().flatten().copied().collect();
        let registered: HashMap<String, String> = self
            .persons_registered_as(&ids)?
            .into_iter()
            .filter_map(|p| Some((p.external_id?, p.case_no)))
            .collect();
        Ok(ids.iter().find_map(|id| {
            registered
                .get(*id)
                .map(|case| StoreError::DuplicateExternalId {
                    external_id: id.to_string(),
                    case: case.clone(),
                })
        }))
    }

    /// How many case numbers the registry has given: at least as many as the persons it holds.
    pub fn cases_given(&self) -> Result<u64, StoreError> {
        Ok(crate::register::next_case(&*self.conn)?.saturating_sub(1))
    }

    /// Those of `external_ids` that are registered, asked a few hundred per query: 100,000
    /// ids asked of a registry of a million took 0.03 s, one query each (4ab1831) 0.33 s (the
    /// validating stage of `import persons --timings`, against an empty registry's).
    pub fn registered_among(&self, external_ids: &[&str]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        self.each_registered_as("SELECT external_id FROM persons", external_ids, |r| {
            found.push(r.text(0)?);
            Ok(())
        })?;
        Ok(found)
    }

    /// The records of those of `external_ids` that are registered.
    pub fn persons_registered_as(
        &self,
        external_ids: &[&str],
    ) -> Result<Vec<PersonRow>, StoreError> {
        let mut found = Vec::new();
        self.each_registered_as(PERSON_SELECT, external_ids, |r| {
            found.push(person_from_row(&r)?);
            Ok(())
        })?;
        Ok(found)
    }

    /// Runs `select` (a query on `persons`, without its condition) for the rows of
    /// `external_ids`, a few hundred per query.
    fn each_registered_as(
        &self,
        select: &str,
        external_ids: &[&str],
        f: impl FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        each_person_where(&*self.conn, (select, "external_id"), external_ids, f)
    }

    /// Every external id already registered, so an interrupted import can be run again and skip
    /// what it had finished. In a set hashed as the caller chooses: for a registry of a
    /// million, hashing is half the time it takes to read them with the default hasher.
    pub fn external_ids<S: std::hash::BuildHasher + Default>(
        &self,
    ) -> Result<HashSet<String, S>, StoreError> {
        // Sized once, from the case counter (no more persons than case numbers given), rather
        // than grown as it fills, rehashing at each doubling with the old table held beside the
        // new one. Only a hint, so a damaged counter cannot ask for more than 16 million.
        let cases = self.cases_given()?;
        let mut ids = HashSet::with_capacity_and_hasher(
            usize::try_from(cases.min(1 << 24)).unwrap_or(0),
            S::default(),
        );
        self.conn.each(
            "SELECT external_id FROM persons WHERE external_id IS NOT NULL",
            &[],
            &mut |r| {
                ids.insert(r.text(0)?);
                Ok(())
            },
        )?;
        Ok(ids)
    }

    pub fn person(&self, case: &str) -> Result<PersonRow, StoreError> {
        self.conn
            .one(&format!("{PERSON_SELECT} WHERE case_no = ?1"), args![case])?
            .map(|r| person_from_row(&r))
            .ok_or_else(|| StoreError::UnknownPerson(case.to_string()))?
    }

    /// The persons numbered `cases`, in that order, read in one query.
    pub(crate) fn persons_numbered(&self, cases: &[String]) -> Result<Vec<PersonRow>, StoreError> {
        if cases.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Val<'_>> = cases.iter().map(|c| c.as_str().into()).collect();
        let sql = format!(
            "{PERSON_SELECT} WHERE case_no IN ({})",
            crate::db::placeholders(cases.len())
        );
        let mut found: HashMap<String, PersonRow> = HashMap::with_capacity(cases.len());
        for row in self.conn.all(&sql, &args)? {
            let person = person_from_row(&row)?;
            found.insert(person.case_no.clone(), person);
        }
        cases
            .iter()
            .map(|c| {
                found
                    .remove(c)
                    .ok_or_else(|| StoreError::UnknownPerson(c.clone()))
            })
            .collect()
    }

    /// Up to `limit` persons after case number `after` (`""`: from the first), in the order of
    /// their numbers: AS-999999, then AS-1000000. A cursor that is no case number is refused.
    ///
    /// The table's key is the case number's text, in which AS-1000000 comes between AS-100000
    /// and AS-100001. Rather than a second index on every registration, a page walks the key one
    /// width at a time, narrowest first: within one width text order is number order. A page
    /// passes over the wider numbers that sort among those it gives (ten of seven digits
    /// between two of six).
    pub fn persons_page(&self, after: &str, limit: usize) -> Result<Vec<PersonRow>, StoreError> {
        let mut from = match after {
            "" => String::new(),
            typed => page_after(typed)?,
        };
        let mut width = from.len().max(case_number(1).len());
        let widest = case_number(self.cases_given()?).len();
        let mut page = Vec::new();
        while page.len() < limit && width <= widest {
            let wanted = limit - page.len();
            let rows = self.conn.all(
                &format!(
                    "{PERSON_SELECT} WHERE case_no > ?1 AND length(case_no) = ?2 \
                     ORDER BY case_no LIMIT ?3"
                ),
                args![from.as_str(), width as i64, wanted as i64],
            )?;
            let short = rows.len() < wanted;
            for row in &rows {
                page.push(person_from_row(row)?);
            }
            if short {
                // The next width's first number, AS-10…0, less its last digit: a prefix sorts
                // just before what it begins.
                width += 1;
                let zeros = width - CASE_PREFIX.len() - 2;
                from = format!("{CASE_PREFIX}1{}", "0".repeat(zeros));
            }
        }
        Ok(page)
    }

    pub fn persons(&self) -> Result<Vec<PersonRow>, StoreError> {
        let mut out = Vec::new();
        self.each_person(&mut |p| {
            out.push(p);
            Ok(())
        })?;
        Ok(out)
    }

    /// Every captive in case order, handed to `each` a page at a time: a list of a million need
    /// not be held whole. No query stays open while `each` runs (a listing read slowly, piped
    /// into a pager, would otherwise hold a read open for as long, and SQLite could not fold
    /// its WAL back past it while others write). An error from `each` stops the reading and is
    /// returned.
    pub fn each_person(
        &self,
        each: &mut dyn FnMut(PersonRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.person_pages(&mut |page| page.into_iter().try_for_each(&mut *each))
    }

    /// Every captive in case order, a page of [`LISTING_PAGE`] at a time, each read by a query
    /// of its own that is done before `each` is given the page.
    pub(crate) fn person_pages(
        &self,
        each: &mut dyn FnMut(Vec<PersonRow>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut after = String::new();
        loop {
            let page = self.persons_page(&after, LISTING_PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after.clone_from(&last.case_no);
            each(page)?;
        }
    }

    /// Opens a person's sealed classes for `actor` and records the read as an event.
    pub fn show_person(
        &mut self,
        who: &asylon_core::law::Principal,
        now: OffsetDateTime,
        case: &str,
    ) -> Result<PersonView, StoreError> {
        self.shown_in_state(who, now, case).map(|(view, _)| view)
    }

    /// [`Registry::show_person`], and what the law says of him on `now` (as
    /// [`Registry::case_status`] does; `None` once he is erased), from one reading of his law
    /// state.
    pub fn show_person_and_status(
        &mut self,
        who: &asylon_core::law::Principal,
        now: OffsetDateTime,
        s: &asylon_core::law::Settings,
        case: &str,
    ) -> Result<(PersonView, Option<crate::law::CaseStatus>), StoreError> {
        let (view, state) = self.shown_in_state(who, now, case)?;
        let status = (view.row.status == PersonStatus::Registered)
            .then(|| crate::law::CaseStatus::of(state, s, now));
        Ok((view, status))
    }

    /// His record as `who` may read it, and the law state it was decided on.
    fn shown_in_state(
        &mut self,
        who: &asylon_core::law::Principal,
        now: OffsetDateTime,
        case: &str,
    ) -> Result<(PersonView, asylon_core::law::Case), StoreError> {
        use asylon_core::policy::{Action, may};
        let row = self.person(case)?;
        let state = self.authorized(who, case, Action::ReadCore)?;
        let particulars_seq = crate::amend::particulars_seq(&*self.conn, case)?;
        let ev = self.event(particulars_seq)?;
        // A registration's public payload is his core particulars; an amendment's holds them
        // beside what it amends and why.
        let core: asylon_core::CoreParticulars =
            serde_json::from_str(&ev.public).map_err(|e| StoreError::Tampered {
                seq: ev.seq,
                reason: format!("public payload unreadable: {e}"),
            })?;
        if row.status == PersonStatus::Erased {
            let view = PersonView {
                row,
                identity: None,
                family: None,
                particulars_seq,
                not_stated: core.not_stated,
                withheld: Vec::new(),
                age_at_capture: None,
            };
            return Ok((view, state));
        }
        let mut identity = None;
        let mut family = None;
        let mut read = Vec::new();
        let mut withheld = Vec::new();
        for part in &ev.sealed {
            if let Err(why) = may(who, Some(&state), Action::Read(part.class)) {
                withheld.push(format!("{}: {}", part.class.as_str(), why.0));
                continue;
            }
            let plain = self.open_part(case, &ev, part)?;
            let damaged = |e: String| {
                StoreError::Damaged(format!("sealed {} of {case}: {e}", part.class.as_str()))
            };
            match part.class {
                Class::Identity => {
                    identity = Some(crate::plain::identity_from(&plain).map_err(damaged)?)
                }
                Class::Family => family = Some(crate::plain::family_from(&plain).map_err(damaged)?),
                Class::Medical | Class::Statements => continue,
            }
            read.push(part.class.as_str());
        }
        self.record_read(who, now, case, &read)?;
        let age_at_capture = identity
            .as_ref()
            .and_then(|i| asylon_core::Age::between(i.date_of_birth?, core.captured_on));
        let view = PersonView {
            row,
            identity,
            family,
            particulars_seq,
            not_stated: core.not_stated,
            withheld,
            age_at_capture,
        };
        Ok((view, state))
    }

    fn open_part(
        &self,
        case: &str,
        ev: &Event,
        part: &SealedPart,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        open_part(&self.keys, case, ev, part)
    }

    /// Crypto-shreds a person: destroys his data keys, records the erasure and its reason, and
    /// purges the key store's files so no copy of the keys stays in them. Callers go through
    /// [`Registry::erase_as`], which asks the policy first.
    pub(crate) fn erase(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        case: &str,
        reason: &str,
    ) -> Result<Erased, StoreError> {
        let reason = crate::amend::reason_text("erasure", reason)
            .map_err(|e| StoreError::Invalid(vec![e]))?;
        let held = self.conn.erasing()?;
        let erased = self.erase_alone(actor, now, case, reason);
        held.release_after(&*self.conn, erased)
    }

    /// [`Registry::erase`], once no other erasure runs.
    fn erase_alone(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        case: &str,
        reason: String,
    ) -> Result<Erased, StoreError> {
        let row = self.person(case)?;
        if row.status == PersonStatus::Erased {
            return Err(StoreError::Erased {
                case: case.to_string(),
            });
        }
        // First the keys, in the key store: from that commit on his sealed data is unreadable in
        // every copy of the registry. Then the event that records it. A crash between the two
        // leaves him unreadable but not yet marked erased; running the erasure again completes it.
        let person = case.to_string();
        let erased = self.destroy_keys(case).and_then(|(classes, purge)| {
            let mut public = serde_json::Map::new();
            public.insert("reason".into(), reason.clone().into());
            public.insert("keys_destroyed".into(), classes.clone().into());
            if classes.is_empty() {
                // None left to destroy: an erasure before this one destroyed them and was not
                // recorded (stopped, or refused by a busy or full registry). The classes he has
                // sealed data in are named, so that the log still says which keys are gone.
                let before = self.sealed_classes(&person)?;
                public.insert("keys_destroyed_before".into(), before.into());
            }
            let public = serde_json::Value::Object(public);
            let written = self.write(actor, now, |_, _| {
                Ok(vec![NewEvent {
                    id: new_id(),
                    person: Some(person.clone()),
                    kind: kind::PERSON_ERASED.into(),
                    public: public.to_string(),
                    sealed: vec![],
                    registered: None,
                }])
            })?;
            Ok(Erased {
                seq: written.first().map(|e| e.seq).unwrap_or_default(),
                purge,
            })
        });
        // A failure once his keys are gone (the purge, or recording the erasure, meeting a busy
        // or full registry) must not read as if nothing had happened.
        erased.map_err(|cause| {
            let keyed = self
                .keys
                .conn
                .one("SELECT 1 FROM data_keys WHERE person = ?1", args![&person]);
            match keyed {
                Ok(None) => StoreError::ErasureNotRecorded {
                    case: person.clone(),
                    cause: Box::new(cause),
                },
                _ => cause,
            }
        })
    }

    /// The classes `case` has sealed data in, in their order, each once.
    fn sealed_classes(&self, case: &str) -> Result<Vec<&'static str>, StoreError> {
        let mut classes = std::collections::BTreeSet::new();
        for ev in self.events(Some(case))? {
            classes.extend(ev.sealed.iter().map(|p| p.class));
        }
        Ok(classes.into_iter().map(Class::as_str).collect())
    }

    /// Destroys a person's data keys and name tokens in the key store, leaving nothing of them
    /// in its files (unless held back); returns the classes whose keys were destroyed.
    fn destroy_keys(&mut self, case: &str) -> Result<(Vec<&'static str>, Purge), StoreError> {
        let cases = [case.to_string()];
        let (destroyed, purge) = self.destroy(&cases)?;
        let classes = destroyed
            .into_iter()
            .flat_map(|(_, classes)| classes)
            .map(Class::as_str)
            .collect();
        Ok((classes, purge))
    }

    /// Destroys the keys of `cases` in the key store and purges its files of them. The
    /// registry notes that a purge is due ([`PURGE_DUE`]) before any key is deleted, and forgets
    /// it only once a purge is complete: a purge held back by an older reader, or never reached
    /// (a kill, a power cut between the deletion's commit and the purge), stays due. A purge
    /// found due is made here for every table (which held the keys deleted then is no longer
    /// known: on PostgreSQL, a rewrite of the whole key store), and `ledger verify` tells of
    /// one still due.
    fn destroy<'c>(
        &self,
        cases: &'c [String],
    ) -> Result<(Vec<crate::keystore::Had<'c>>, Purge), StoreError> {
        let due = self.purge_due()?;
        if cases.is_empty() && !due {
            return Ok((Vec::new(), Purge::Complete));
        }
        if !due {
            self.set_purge_due(true)?;
        }
        let (had, purge) = self.keys.delete_persons(cases, true)?;
        let purge = match purge {
            Purge::Complete if due => self.keys.purge()?,
            purge => purge,
        };
        if purge == Purge::Complete {
            self.set_purge_due(false)?;
        }
        Ok((had, purge))
    }

    /// Whether a purge of the key store's files is due (see [`Registry::destroy`]).
    pub(crate) fn purge_due(&self) -> Result<bool, StoreError> {
        Ok(meta_get(&*self.conn, PURGE_DUE)?.is_some())
    }

    fn set_purge_due(&self, due: bool) -> Result<(), StoreError> {
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        if due {
            meta_put(db, PURGE_DUE, b"1")?;
        } else {
            db.exec("DELETE FROM meta WHERE key = ?1", args![PURGE_DUE])?;
        }
        tx.commit()
    }

    /// Leaves nothing of any destroyed key in the key store's files, after an erasure whose
    /// purge another session held back ([`Purge::HeldBack`]) or that was stopped before its
    /// purge: run once that session has ended. On PostgreSQL it rewrites the whole key store,
    /// and so takes as long as copying it.
    pub fn purge_keys(&self) -> Result<Purge, StoreError> {
        let held = self.conn.erasing()?;
        let purged = self.keys.purge().and_then(|purge| {
            if purge == Purge::Complete {
                self.set_purge_due(false)?;
            }
            Ok(purge)
        });
        held.release_after(&*self.conn, purged)
    }

    /// How long an erasure (or [`Registry::purge_keys`]) waits, at most, for another session
    /// that began before it and holds what it destroyed where it cannot be rewritten
    /// ([`crate::PURGE_WAIT`] unless set): a server may want its requests to wait less.
    pub fn set_purge_wait(&mut self, wait: std::time::Duration) {
        self.keys.purge_wait = wait;
    }

    /// Destroys, in the key store, the data keys and name tokens of every captive the log
    /// records as erased, and gives their case numbers. The key store and the log can part: a
    /// registry backup taken after an erasure, restored with a key store (or its backup) taken
    /// before it, brought his keys back, and with them his sealed data and a name search that
    /// finds him. In one transaction, its files purged as an erasure's are.
    pub fn shred_erased(&self) -> Result<Shredded, StoreError> {
        let mut erased = Vec::new();
        self.conn.each(
            "SELECT case_no FROM persons WHERE status = ?1 ORDER BY case_no",
            args![PersonStatus::Erased.as_str()],
            &mut |r| {
                erased.push(r.text(0)?);
                Ok(())
            },
        )?;
        let held = self.conn.erasing()?;
        let destroyed = self.destroy(&erased);
        let (had, purge) = held.release_after(&*self.conn, destroyed)?;
        Ok(Shredded {
            cases: had.into_iter().map(|(case, _)| case.to_string()).collect(),
            purge,
        })
    }

    pub fn event(&self, seq: u64) -> Result<Event, StoreError> {
        event_in(&*self.conn, seq)
    }

    /// Events in log order, all or those about one person.
    pub fn events(&self, person: Option<&str>) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        self.each_event(person, &mut |e| {
            out.push(e);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Registry::events`] handed to `each` a page at a time, so that a log of millions need
    /// not be held whole, with no query open while `each` runs (see [`Registry::each_person`]),
    /// and no further than the log's size when it began. An error from `each` stops the
    /// reading and is returned.
    pub fn each_event(
        &self,
        person: Option<&str>,
        each: &mut dyn FnMut(Event) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let upto = stored_frontier(&*self.conn)?.size() as i64;
        let of_person = if person.is_some() {
            " AND person = ?4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ?1 AND seq <= ?2{of_person} \
             ORDER BY seq LIMIT ?3"
        );
        let mut after = 0i64;
        loop {
            let page = match person {
                Some(p) => self
                    .conn
                    .all(&sql, args![after, upto, LISTING_PAGE as i64, p])?,
                None => self
                    .conn
                    .all(&sql, args![after, upto, LISTING_PAGE as i64])?,
            };
            let events: Vec<Event> = page.iter().map(event_of).collect::<Result<_, _>>()?;
            let Some(last) = events.last() else {
                return Ok(());
            };
            after = last.seq as i64;
            events.into_iter().try_for_each(&mut *each)?;
        }
    }

    /// A fresh signed checkpoint of the current log.
    pub fn checkpoint(&self, now: OffsetDateTime) -> Result<Checkpoint, StoreError> {
        let frontier = stored_frontier(&*self.conn)?;
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
        let db = &*self.conn;
        let frontier = decode_frontier(&meta_need(db, "frontier")?).ok_or_else(|| {
            StoreError::VerifyFailed("the stored Merkle frontier is unreadable".into())
        })?;
        let time = String::from_utf8(meta_need(db, "head_time")?)
            .map_err(|_| StoreError::VerifyFailed("the signed head's time is not text".into()))?;
        Ok((frontier, time, meta_need(db, "head_signature")?))
    }

    /// How many captives the projection holds, erased ones included.
    pub(crate) fn person_count(&self) -> Result<u64, StoreError> {
        let row = self.conn.one("SELECT count(*) FROM persons", &[])?;
        Ok(match row {
            Some(r) => u64::try_from(r.i64(0)?).unwrap_or(0),
            None => 0,
        })
    }

    /// The number of events the signed head covers, for a progress bar: 0 when the head cannot
    /// be read (the pass that follows says so, where it matters to it).
    /// How many events the log holds now: given to [`Registry::register_stream`] as the point
    /// from which it watches for another writer.
    pub fn events_written(&self) -> Result<u64, StoreError> {
        log_size_in(&*self.conn)
    }

    pub(crate) fn log_size(&self) -> u64 {
        self.signed_head().map_or(0, |(head, ..)| head.size())
    }

    /// Rebuilds the projection and the log's kept subtree hashes from the events, in one
    /// transaction that reads them once.
    pub fn rebuild(&mut self) -> Result<Rebuilt, StoreError> {
        self.rebuild_showing(&())
    }

    /// [`Registry::rebuild`], telling `progress` how many events it has replayed, how many
    /// captives' rows it has compared and, if any was wrong, how many it has written.
    pub fn rebuild_showing(&mut self, progress: &dyn Progress) -> Result<Rebuilt, StoreError> {
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        let (projection, leaves) = self.replay(progress)?;
        let rebuilt = correct_projection(db, &projection, progress)?;
        crate::verify::remake_nodes(db, &leaves)?;
        tx.commit()?;
        Ok(rebuilt)
    }

    /// The projection replayed from the events, and their leaf hashes.
    fn replay(
        &self,
        progress: &dyn Progress,
    ) -> Result<(Projection, Vec<asylon_ledger::Hash>), StoreError> {
        let (mut p, mut leaves) = (Projection::default(), Vec::new());
        let mut counter = Counter::begin(progress, "events replayed", self.log_size());
        each_event(&*self.conn, |ev| {
            counter.add(1);
            leaves.push(leaf_hash_with(|sink| ev.write_leaf(sink)));
            p.apply(&ev).map_err(|e| StoreError::Damaged(e.to_string()))
        })?;
        Ok((p, leaves))
    }
}

/// Calls `f` with every event in log order.
pub(crate) fn each_event(
    conn: &dyn Sql,
    f: impl FnMut(Event) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    each_event_where(
        conn,
        &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"),
        &[],
        f,
    )
}

/// Calls `f`, in log order, with the events the law's view of the captives is built from
/// (registrations, corrections, erasures and law records): of everyone, or of `persons` and
/// the law records about no one (places, exchange lists). The records of reads and searches
/// are left in the database: a captive's record opened ten thousand times would otherwise
/// be read ten thousand rows deep each time the policy is asked about him.
pub(crate) fn each_law_event(
    conn: &dyn Sql,
    persons: Option<&[&str]>,
    f: impl FnMut(Event) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let n = persons.map_or(0, <[&str]>::len);
    let folded = format!(
        "(kind IN (?{}, ?{}, ?{}) OR kind LIKE 'case.%')",
        n + 1,
        n + 2,
        n + 3
    );
    let shared =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE person IS NULL AND kind LIKE 'case.%'");
    let sql = match persons {
        None => format!("SELECT {EVENT_COLUMNS} FROM events WHERE {folded} ORDER BY seq"),
        Some([]) => format!("{shared} ORDER BY seq"),
        Some(p) => format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE person IN ({}) AND {folded} \
             UNION ALL {shared} ORDER BY seq",
            crate::db::placeholders(p.len())
        ),
    };
    let mut args: Vec<Val<'_>> = persons
        .unwrap_or_default()
        .iter()
        .map(|&p| p.into())
        .collect();
    if persons != Some(&[]) {
        args.extend(
            [
                kind::PERSON_REGISTERED,
                kind::PERSON_AMENDED,
                kind::PERSON_ERASED,
            ]
            .map(Val::from),
        );
    }
    each_event_where(conn, &sql, &args, f)
}

/// The case number a page of captives follows, as a person typed it (`as-17`); a cursor that is
/// no case number is refused, naming `after`.
pub(crate) fn page_after(typed: &str) -> Result<String, StoreError> {
    parse_case_number(typed).ok_or_else(|| {
        StoreError::Invalid(vec![asylon_core::FieldError {
            field: "after".into(),
            reason: format!("{typed:?} is not a case number (AS-000017, as-17)"),
        }])
    })
}

/// Event `seq` as `conn` reads it (inside a write, as that write sees it).
pub(crate) fn event_in(conn: &dyn Sql, seq: u64) -> Result<Event, StoreError> {
    let row = conn
        .one(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"),
            args![seq as i64],
        )?
        .ok_or(StoreError::UnknownEvent(seq))?;
    row_to_event(&row).map_err(|reason| StoreError::Tampered { seq, reason })
}

/// The plaintext of sealed part `part` of event `ev` about `case`, opened with his data key from
/// `keys`. His record says registered (an erased one is not opened): a key store without his
/// keys was given with a copy of the registry it does not match.
pub(crate) fn open_part(
    keys: &KeyStore,
    case: &str,
    ev: &Event,
    part: &SealedPart,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let dk = crate::law::data_key(keys, case, part.class)?.ok_or_else(|| StoreError::NoKeys {
        case: case.to_string(),
    })?;
    Ok(dk.open(
        &seal_aad(case, part.class.as_str(), &ev.id),
        &part.ciphertext,
    )?)
}

pub(crate) fn each_event_where(
    conn: &dyn Sql,
    sql: &str,
    args: &[Val<'_>],
    mut f: impl FnMut(Event) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.each(sql, args, &mut |r| f(event_of(&r)?))
}

/// An event from its row; an unreadable one is named as tampered.
pub(crate) fn event_of(r: &Row) -> Result<Event, StoreError> {
    row_to_event(r).map_err(|reason| StoreError::Tampered {
        seq: r.i64(0).unwrap_or_default().max(0) as u64,
        reason,
    })
}

/// The log's Merkle frontier as stored beside it (its size and the hashes of its subtrees).
/// How many events the log holds, read on `db` (inside a write, what it holds for that write).
pub(crate) fn log_size_in(db: &dyn Sql) -> Result<u64, StoreError> {
    Ok(stored_frontier(db)?.size())
}

fn stored_frontier(db: &dyn Sql) -> Result<Frontier, StoreError> {
    decode_frontier(&meta_need(db, "frontier")?)
        .ok_or_else(|| StoreError::Damaged("the stored Merkle frontier is unreadable".into()))
}

/// Rows read per query by the listings ([`Registry::each_person`], [`Registry::each_event`]).
pub(crate) const LISTING_PAGE: usize = 1000;

const PERSON_SELECT: &str = "SELECT case_no, external_id, power, captured_on, captured_at, status, registered_seq, last_seq FROM persons";

/// The projection's rows of those of `cases` it holds, read on `db` a few hundred per query, in
/// no order.
pub(crate) fn persons_in(db: &dyn Sql, cases: &[&str]) -> Result<Vec<PersonRow>, StoreError> {
    let mut found = Vec::new();
    each_person_where(db, (PERSON_SELECT, "case_no"), cases, |r| {
        found.push(person_from_row(&r)?);
        Ok(())
    })?;
    Ok(found)
}

/// Runs `select` (a query on `persons`, without its condition) on `db` for the rows whose
/// `column` is one of `values`, a few hundred per query.
fn each_person_where(
    db: &dyn Sql,
    (select, column): (&str, &str),
    values: &[&str],
    mut f: impl FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    const PER_QUERY: usize = 500;
    for chunk in values.chunks(PER_QUERY) {
        let sql = format!(
            "{select} WHERE {column} IN ({})",
            crate::db::placeholders(chunk.len())
        );
        let args: Vec<Val<'_>> = chunk.iter().map(|v| Val::Text(v)).collect();
        db.each(&sql, &args, &mut f)?;
    }
    Ok(())
}

fn person_from_row(r: &Row) -> Result<PersonRow, StoreError> {
    let status = r.text(5)?;
    let case_no = r.text(0)?;
    let Some(status) = PersonStatus::parse(&status) else {
        return Err(StoreError::Damaged(format!(
            "{case_no} has unknown status {status:?}"
        )));
    };
    Ok(PersonRow {
        case_no,
        external_id: r.opt_text(1)?,
        power: r.text(2)?,
        captured_on: r.text(3)?,
        captured_at: r.opt_text(4)?,
        status,
        registered_seq: r.i64(6)?.max(0) as u64,
        last_seq: r.i64(7)?.max(0) as u64,
    })
}

const PERSON_COLUMNS: &str =
    "case_no, external_id, power, captured_on, captured_at, status, registered_seq, last_seq";

fn person_args(row: &PersonRow) -> [crate::db::Val<'_>; 8] {
    use crate::db::Val;
    [
        Val::from(&row.case_no),
        Val::from(row.external_id.as_deref()),
        Val::from(&row.power),
        Val::from(&row.captured_on),
        Val::from(row.captured_at.as_deref()),
        Val::from(row.status.as_str()),
        Val::from(row.registered_seq as i64),
        Val::from(row.last_seq as i64),
    ]
}

/// What [`Registry::rebuild`] found in the stored projection, and corrected.
#[derive(Debug, Default, PartialEq)]
pub struct Rebuilt {
    /// Captives the events register.
    pub captives: usize,
    /// Each row that was not what the events make, by case number in case order, and how.
    pub corrected: Vec<(String, Correction)>,
    /// Rows whose case number could not be read as one: none is named above, and the
    /// projection was written again whole.
    pub unnamed: usize,
}

/// How a captive's row of the stored projection differed from the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// His row said otherwise than the events.
    Differed,
    /// The events register him; no row did.
    Missing,
    /// A row, though no event registers him: removed.
    Unregistered,
}

/// Makes the stored projection what `projection` (replayed from the events) says. It compares
/// every stored row with its replay and writes only those that differ: a projection that is
/// right, as it nearly always is, is read and left alone (on PostgreSQL, writing it all again
/// took 2.1–2.5 s of a rebuild of 100,000 captives), and the rebuild can tell which rows were
/// wrong. Where most rows are wrong, or a row cannot be named, it is written again whole.
fn correct_projection(
    db: &dyn Sql,
    projection: &asylon_core::Projection,
    progress: &dyn Progress,
) -> Result<Rebuilt, StoreError> {
    use crate::db::{Cell, Val};
    let persons = &projection.persons;
    let mut compared = Counter::begin(progress, "captives compared", persons.len() as u64);
    let (mut found, mut corrected, mut unnamed, mut stored) =
        (HashSet::new(), Vec::new(), 0, 0usize);
    db.each(
        &format!("SELECT {PERSON_COLUMNS} FROM persons"),
        &[],
        &mut |row| {
            compared.add(1);
            stored += 1;
            let Some(Cell::Text(case)) = row.0.first() else {
                unnamed += 1;
                return Ok(());
            };
            match persons.get_key_value(case) {
                Some((key, p)) => {
                    found.insert(key.as_str());
                    let replayed = person_args(p);
                    let agrees = row.0.len() == replayed.len()
                        && row.0.iter().zip(&replayed).all(|(c, v)| c.as_val() == *v);
                    if !agrees {
                        corrected.push((case.clone(), Correction::Differed));
                    }
                }
                None => corrected.push((case.clone(), Correction::Unregistered)),
            }
            Ok(())
        },
    )?;
    drop(compared);
    corrected.extend(
        persons
            .keys()
            .filter(|c| !found.contains(c.as_str()))
            .map(|c| (c.clone(), Correction::Missing)),
    );
    corrected.sort_by(|a, b| asylon_core::law::by_case_number(&a.0, &b.0));
    let rows: Vec<Vec<Val<'_>>> = if unnamed > 0 || corrected.len() > stored / 2 {
        db.exec("DELETE FROM persons", &[])?;
        persons.values().map(|p| person_args(p).to_vec()).collect()
    } else {
        let gone: Vec<Val<'_>> = corrected
            .iter()
            .filter(|(_, how)| *how != Correction::Missing)
            .map(|(c, _)| Val::from(c))
            .collect();
        for chunk in gone.chunks(500) {
            let marks = crate::db::placeholders(chunk.len());
            db.exec(
                &format!("DELETE FROM persons WHERE case_no IN ({marks})"),
                chunk,
            )?;
        }
        corrected
            .iter()
            .filter_map(|(c, _)| persons.get(c))
            .map(|p| person_args(p).to_vec())
            .collect()
    };
    if !rows.is_empty() {
        let target = format!("persons ({PERSON_COLUMNS})");
        let mut written = Counter::begin(progress, "captives written", rows.len() as u64);
        for chunk in rows.chunks(crate::progress::EVERY as usize) {
            db.insert_many(&target, 8, chunk)?;
            written.add(chunk.len() as u64);
        }
    }
    Ok(Rebuilt {
        captives: persons.len(),
        corrected,
        unnamed,
    })
}

fn insert_person(db: &dyn Sql, row: &PersonRow) -> Result<(), StoreError> {
    db.insert_many(
        &format!("persons ({PERSON_COLUMNS})"),
        8,
        &[person_args(row).to_vec()],
    )
}

/// Applies one event to the stored projection, using the same rules as a replay.
fn project(tx: &dyn Sql, ev: &Event) -> Result<(), StoreError> {
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
    if let Some(row) = tx.one(&format!("{PERSON_SELECT} WHERE case_no = ?1"), args![case])? {
        let row = person_from_row(&row)?;
        p.persons.insert(row.case_no.clone(), Box::new(row));
    }
    p.apply(ev)
        .map_err(|e| StoreError::Damaged(e.to_string()))?;
    if let Some(row) = p.persons.get(case) {
        // A correction changes the public particulars; other kinds leave them as they were.
        tx.exec(
            "UPDATE persons SET power = ?2, captured_on = ?3, captured_at = ?4, status = ?5, \
             last_seq = ?6 WHERE case_no = ?1",
            args![
                case,
                &row.power,
                &row.captured_on,
                row.captured_at.as_deref(),
                row.status.as_str(),
                row.last_seq as i64
            ],
        )?;
    }
    Ok(())
}
