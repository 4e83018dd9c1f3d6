//! The key store: a second SQLite file beside the registry (`keys.db`) holding every wrapped
//! data key and the blind index of names. The registry database and its backups hold ciphertext
//! only; a person's erasure deletes his row here, so no copy of the registry taken before or
//! after can be opened for him. The key store is backed up on its own, like the key file, and a
//! restore joins a registry backup with the current key store.

use crate::StoreError;
use crate::db::{Deleted, Purge, Sql, Tx, args};
use asylon_core::Class;
use asylon_vault::Kek;
use std::path::{Path, PathBuf};
use std::time::Duration;

const KEYS_FILE: &str = "keys.db";
pub(crate) const KEYS_MIGRATIONS: [&str; 3] = [
    include_str!("migrations/sqlite/keys_0001.sql"),
    include_str!("migrations/sqlite/keys_0002.sql"),
    include_str!("migrations/sqlite/keys_0003.sql"),
];
const PG_KEYS_MIGRATIONS: [&str; 4] = [
    include_str!("migrations/postgres/keys_0001.sql"),
    include_str!("migrations/postgres/keys_0002.sql"),
    include_str!("migrations/postgres/keys_0003.sql"),
    include_str!("migrations/postgres/keys_0004.sql"),
];

/// The blind index's two tables. A registration writes its rows into `name_index`; an import
/// into a registry whose index holds rows already writes into `name_index_recent` and folds it
/// into `name_index` when it ends, so that each of its commits rewrites the pages of what it
/// has imported so far rather than of the whole registry's index (the key store's third
/// migration says why, with the figures). A search reads both, an erasure deletes from both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexTable {
    Main,
    Recent,
}

impl IndexTable {
    pub(crate) const BOTH: [Self; 2] = [Self::Main, Self::Recent];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Main => "name_index",
            Self::Recent => "name_index_recent",
        }
    }

    fn delete_row(self) -> &'static str {
        match self {
            Self::Main => "DELETE FROM name_index WHERE token = ?1 AND person = ?2",
            Self::Recent => "DELETE FROM name_index_recent WHERE token = ?1 AND person = ?2",
        }
    }
}

/// The key store's tables: the data keys and the two of the blind index. A backup carries each
/// of them (in this order); an erasure deletes from each.
pub(crate) const KEY_TABLES: [&str; 3] = [
    "data_keys",
    IndexTable::Main.name(),
    IndexTable::Recent.name(),
];

pub fn keys_file(dir: &Path) -> PathBuf {
    dir.join(KEYS_FILE)
}

/// A person whose keys row was deleted, with the classes he had a key for.
pub(crate) type Had<'c> = (&'c str, Vec<Class>);

pub(crate) struct KeyStore {
    pub(crate) conn: Box<dyn Sql>,
    pub(crate) kek: Kek,
    /// How long an erasure waits for older readers before it leaves its purge to
    /// [`KeyStore::purge`] ([`crate::PURGE_WAIT`] unless set).
    pub(crate) purge_wait: Duration,
}

impl KeyStore {
    /// Opens the key store of a registry (`DIR/keys.db`, or the schema `<schema>_keys` beside
    /// a PostgreSQL registry's), creating it when `create` is set.
    pub(crate) fn open(
        dir: &Path,
        db: &crate::Database,
        kek: Kek,
        create: bool,
    ) -> Result<Self, StoreError> {
        Ok(Self::on(connect(dir, db, create)?, kek))
    }

    /// The key store on a connection already open.
    pub(crate) fn on(conn: Box<dyn Sql>, kek: Kek) -> Self {
        Self {
            conn,
            kek,
            purge_wait: crate::PURGE_WAIT,
        }
    }

    /// Deletes a person's keys row and his rows in the blind index, inside the caller's
    /// transaction; returns the classes he had a key for, `None` if he had no row.
    pub(crate) fn delete_person(&self, case: &str) -> Result<Option<Vec<Class>>, StoreError> {
        let db = &*self.conn;
        let row = db.one(
            "SELECT identity, family, medical, statements, name_tokens FROM data_keys WHERE person = ?1",
            args![case],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        // The columns are selected in `Class::ALL`'s order.
        let mut keyed = Vec::new();
        for (i, class) in Class::ALL.into_iter().enumerate() {
            if row.opt_blob(i)?.is_some() {
                keyed.push(class);
            }
        }
        let tokens = row.opt_blob(Class::ALL.len())?.unwrap_or_default();
        self.delete_index_rows(case, &tokens)?;
        db.exec("DELETE FROM data_keys WHERE person = ?1", args![case])?;
        Ok(Some(keyed))
    }

    /// [`KeyStore::delete_person`] for each of `cases`, in one transaction; gives those who had
    /// a keys row, each with the classes he had a key for, and whether nothing of them is left
    /// in the files. `destroyed`: their keys are being destroyed (an erasure), so nothing of
    /// them may stay in the database's files (see [`Sql::purge_deleted`], which waits up to
    /// [`KeyStore::purge_wait`] for older readers); where the database would not let them be
    /// purged, the transaction is rolled back and nothing changes. Otherwise (keys stored for
    /// registrations that were then not written) the rows are only deleted.
    pub(crate) fn delete_persons<'c>(
        &self,
        cases: &'c [String],
        destroyed: bool,
    ) -> Result<(Vec<Had<'c>>, Purge), StoreError> {
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        let mut had = Vec::new();
        for case in cases {
            if let Some(classes) = self.delete_person(case)? {
                had.push((case.as_str(), classes));
            }
        }
        let plan = (destroyed && !had.is_empty())
            .then(|| db.purge_plan(&KEY_TABLES, Deleted::Here))
            .transpose()?;
        tx.commit()?;
        let purge = match plan {
            Some(plan) => db.purge_deleted(&plan, self.purge_wait)?,
            None => Purge::Complete,
        };
        Ok((had, purge))
    }

    /// Leaves nothing of any key ever deleted from the key store in its files: what an erasure
    /// does for the keys it destroys, for all of them, when a purge is due (one held back by an
    /// older reader, [`Purge::HeldBack`], or stopped). It rewrites every table of the key store
    /// on PostgreSQL, and so takes as long as copying it.
    pub(crate) fn purge(&self) -> Result<Purge, StoreError> {
        let db = &*self.conn;
        let plan = db.purge_plan(&KEY_TABLES, Deleted::Ever)?;
        db.purge_deleted(&plan, self.purge_wait)
    }

    /// Deletes a person's rows in the blind index, those of the tokens his keys row lists
    /// (`tokens`, as stored there), by their primary key: the index has no index by person,
    /// and a delete by person alone reads all of it.
    fn delete_index_rows(&self, case: &str, tokens: &[u8]) -> Result<(), StoreError> {
        // Every case number the registry gives has a number; one without has no index rows.
        // His rows may still wait in the import's table (see `IndexTable`).
        if let Some(number) = crate::register::case_index(case) {
            for token in crate::search::split_tokens(tokens) {
                for table in IndexTable::BOTH {
                    self.conn.exec(
                        table.delete_row(),
                        args![crate::search::indexed(token), number],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// A person's name tokens as his keys row lists them (joined); `None` without a keys row
    /// (erased).
    pub(crate) fn name_tokens(&self, case: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .one(
                "SELECT name_tokens FROM data_keys WHERE person = ?1",
                args![case],
            )?
            .map(|row| Ok(row.opt_blob(0)?.unwrap_or_default()))
            .transpose()
    }

    /// Replaces a person's name tokens, in his keys row and in the blind index, in one
    /// transaction: after a correction of his names a search finds him by the names he now
    /// has, and no longer by those taken back. An erased person (no keys row) is refused.
    pub(crate) fn replace_tokens(&self, case: &str, tokens: &[[u8; 16]]) -> Result<(), StoreError> {
        let db = &*self.conn;
        let number = crate::register::case_index(case)
            .ok_or_else(|| StoreError::Damaged(format!("{case} is not a case number")))?;
        let tx = Tx::write(db)?;
        let Some(old) = self.name_tokens(case)? else {
            return Err(StoreError::Erased {
                case: case.to_string(),
            });
        };
        self.delete_index_rows(case, &old)?;
        let rows: Vec<Vec<crate::db::Val<'_>>> = tokens
            .iter()
            .map(|t| args![crate::search::indexed(t), number].to_vec())
            .collect();
        db.insert_many(
            &format!("{} (token, person)", IndexTable::Main.name()),
            2,
            &rows,
        )?;
        let joined = crate::search::join_tokens(tokens);
        db.exec(
            "UPDATE data_keys SET name_tokens = ?2 WHERE person = ?1",
            args![case, &joined],
        )?;
        tx.commit()
    }

    /// Whether the main index has no row at all (a registry with no captive, or none named).
    pub(crate) fn index_is_empty(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .one("SELECT 1 FROM name_index LIMIT 1", &[])?
            .is_none())
    }

    /// Moves the index rows imports wrote into `name_index_recent` to `name_index`, in one
    /// transaction and in the index's order, so that the main index's pages are rewritten once
    /// per import. Interrupted, it leaves both tables as they were.
    pub(crate) fn fold_recent(&self) -> Result<(), StoreError> {
        let db = &*self.conn;
        let tx = Tx::write(db)?;
        db.exec(
            "INSERT INTO name_index (token, person) \
             SELECT token, person FROM name_index_recent ORDER BY token, person",
            &[],
        )?;
        db.exec("DELETE FROM name_index_recent", &[])?;
        tx.commit()
    }
}

/// A connection to the key store of the registry in `dir` / `db`.
pub(crate) fn connect(
    dir: &Path,
    db: &crate::Database,
    create: bool,
) -> Result<Box<dyn Sql>, StoreError> {
    Ok(match db {
        crate::Database::Sqlite => {
            let path = keys_file(dir);
            if !create && !path.exists() {
                return Err(StoreError::Io(format!(
                    "the key store {} is missing: restore it from its backup",
                    path.display()
                )));
            }
            Box::new(crate::db::sqlite::open(&path, create, &KEYS_MIGRATIONS)?)
        }
        crate::Database::Postgres { url, schema } => {
            let pg =
                crate::db::pg::open(url, &format!("{schema}_keys"), create, &PG_KEYS_MIGRATIONS)?;
            // The tables are split (the fourth migration): a statement planned once for any
            // value locks and sets up every partition each time it runs, one planned for its
            // value only the partition it reads. `scripts/bench-backends` gives the search's
            // pace on PostgreSQL at a million captives.
            pg.batch("SET plan_cache_mode = force_custom_plan")?;
            Box::new(pg)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Val;

    /// A token whose first eight bytes are `head` and last eight `tail`.
    fn token(head: u8, tail: u8) -> Vec<u8> {
        [[head; 8], [tail; 8]].concat()
    }

    /// Fills a key store at the first migration with the rows of that schema (16-byte tokens,
    /// case numbers as text), then brings it up to date with `reopen` and checks the index:
    /// every row kept, keyed by the token's first eight bytes and the case's number, and a
    /// person's erasure still finding and deleting every row of his.
    fn the_index_survives_its_migration(old: Box<dyn Sql>, reopen: impl Fn() -> Box<dyn Sql>) {
        // AS-001234's token shares its first eight bytes with one of AS-000007's.
        let persons = [
            ("AS-000007", vec![token(0x11, 0xa1), token(0x22, 0xa2)]),
            ("AS-001234", vec![token(0x11, 0xb1)]),
        ];
        for (case, tokens) in &persons {
            let blob = tokens.concat();
            old.exec(
                "INSERT INTO data_keys (person, identity, name_tokens) VALUES (?1, ?2, ?3)",
                &[Val::Text(case), Val::Blob(&[9; 72]), Val::Blob(&blob)],
            )
            .unwrap();
            for t in tokens {
                old.exec(
                    "INSERT INTO name_index (token, person) VALUES (?1, ?2)",
                    &[Val::Blob(t), Val::Text(case)],
                )
                .unwrap();
            }
        }
        drop(old);
        let keys = KeyStore::on(reopen(), Kek::generate());
        let index = || -> Vec<(Vec<u8>, i64)> {
            let rows = keys
                .conn
                .all(
                    "SELECT token, person FROM name_index ORDER BY person, token",
                    &[],
                )
                .unwrap();
            rows.iter()
                .map(|r| (r.blob(0).unwrap(), r.i64(1).unwrap()))
                .collect()
        };
        assert_eq!(
            index(),
            vec![
                (vec![0x11; 8], 7),
                (vec![0x22; 8], 7),
                (vec![0x11; 8], 1234)
            ]
        );
        assert_eq!(
            keys.delete_person("AS-000007").unwrap(),
            Some(vec![Class::Identity])
        );
        assert_eq!(index(), vec![(vec![0x11; 8], 1234)]);
        let left = keys.conn.all("SELECT person FROM data_keys", &[]).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].text(0).unwrap(), "AS-001234");
    }

    #[test]
    fn a_key_store_of_the_first_schema_keeps_its_index_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let old = crate::db::sqlite::open(&path, true, &KEYS_MIGRATIONS[..1]).unwrap();
        the_index_survives_its_migration(Box::new(old), || {
            Box::new(crate::db::sqlite::open(&path, false, &KEYS_MIGRATIONS).unwrap())
        });
    }

    /// A schema of the test server for one test (`prefix` and this process), dropped if it
    /// is there: the server's URL, the schema, the statement that drops it and a connection to
    /// run it; `None` where the server cannot be reached (see its `postgres_client`).
    fn pg_schema(prefix: &str) -> Option<(String, String, String, postgres::Client)> {
        let mut admin = crate::test_support::postgres_client()?;
        let schema = format!("{prefix}_{}", std::process::id());
        let drop_schema = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        admin.batch_execute(&drop_schema).unwrap();
        Some((
            crate::test_support::postgres_url(),
            schema,
            drop_schema,
            admin,
        ))
    }

    #[test]
    fn a_key_store_of_the_first_schema_keeps_its_index_on_postgres() {
        let Some((url, schema, drop_schema, mut admin)) = pg_schema("asylon_keys_migration") else {
            return;
        };
        let old = crate::db::pg::open(&url, &schema, true, &PG_KEYS_MIGRATIONS[..1]).unwrap();
        the_index_survives_its_migration(Box::new(old), || {
            Box::new(crate::db::pg::open(&url, &schema, false, &PG_KEYS_MIGRATIONS).unwrap())
        });
        admin.batch_execute(&drop_schema).unwrap();
    }

    /// On PostgreSQL an erasure rewrites what held the destroyed rows (see
    /// [`Sql::purge_deleted`]); the key store is split so that this is a few partitions, not
    /// all of it. Each relation's file is named by its `relfilenode`, which a rewrite changes.
    #[test]
    fn on_postgres_an_erasure_rewrites_only_the_partitions_that_held_his_rows() {
        let Some((url, schema, drop_schema, mut admin)) = pg_schema("asylon_keys_purge") else {
            return;
        };
        let keys = KeyStore::on(
            Box::new(crate::db::pg::open(&url, &schema, true, &PG_KEYS_MIGRATIONS).unwrap()),
            Kek::generate(),
        );
        for n in 1..=200u8 {
            let case = format!("AS-{n:06}");
            let tokens = [token(n, 1), token(n ^ 0x5a, 2)];
            keys.conn
                .exec(
                    "INSERT INTO data_keys (person, identity, name_tokens) VALUES (?1, ?2, ?3)",
                    &[
                        Val::Text(&case),
                        Val::Blob(&[n; 72]),
                        Val::Blob(&tokens.concat()),
                    ],
                )
                .unwrap();
            for t in &tokens {
                keys.conn
                    .exec(
                        "INSERT INTO name_index (token, person) VALUES (?1, ?2)",
                        &[Val::Blob(&t[..8]), Val::I64(i64::from(n))],
                    )
                    .unwrap();
            }
        }
        let mut files = || -> std::collections::BTreeMap<String, u32> {
            admin
                .query(
                    "SELECT relname::text, relfilenode::oid FROM pg_class
                     WHERE relnamespace = $1::text::regnamespace AND relkind = 'r'
                       AND relname <> 'schema_version'",
                    &[&schema],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        let before = files();
        // His rows' partitions, asked of PostgreSQL itself.
        let held: std::collections::BTreeSet<String> = keys
            .conn
            .all(
                "SELECT c.relname::text FROM data_keys k JOIN pg_class c ON c.oid = k.tableoid
                 WHERE k.person = 'AS-000007'
                 UNION SELECT c.relname::text FROM name_index i
                 JOIN pg_class c ON c.oid = i.tableoid WHERE i.person = 7",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert!(held.iter().any(|t| t.starts_with("data_keys_")), "{held:?}");
        assert!(
            held.iter().any(|t| t.starts_with("name_index_")),
            "{held:?}"
        );
        // Split: sixteen partitions of each table, and the import's table.
        assert_eq!(before.len(), 33, "{before:?}");

        let cases = ["AS-000007".to_string()];
        let (had, purge) = keys.delete_persons(&cases, true).unwrap();
        assert_eq!(had, vec![("AS-000007", vec![Class::Identity])]);
        assert_eq!(purge, Purge::Complete);

        let after = files();
        let rewritten: std::collections::BTreeSet<String> = before
            .iter()
            .filter(|(t, node)| after.get(*t) != Some(node))
            .map(|(t, _)| t.clone())
            .collect();
        assert_eq!(rewritten, held);
        let left = |sql: &str| keys.conn.one(sql, &[]).unwrap().unwrap().i64(0).unwrap();
        assert_eq!(left("SELECT count(*) FROM data_keys"), 199);
        assert_eq!(left("SELECT count(*) FROM name_index"), 398);
        assert_eq!(
            left("SELECT count(*) FROM data_keys WHERE person = 'AS-000007'"),
            0
        );
        // Deleting keys that are not being destroyed (a registration that was then not
        // written) rewrites nothing.
        let before = files();
        let cases = ["AS-000008".to_string()];
        let (_, purge) = keys.delete_persons(&cases, false).unwrap();
        assert_eq!((files(), purge), (before, Purge::Complete));
        admin.batch_execute(&drop_schema).unwrap();
    }
}
