//! The key store: a second SQLite file beside the registry (`keys.db`) holding every wrapped
//! data key and the blind index of names. The registry database and its backups hold ciphertext
//! only; a person's erasure deletes his row here, so no copy of the registry taken before or
//! after can be opened for him. The key store is backed up on its own, like the key file, and a
//! restore joins a registry backup with the current key store.

use crate::StoreError;
use crate::db::{Sql, args};
use asylon_core::Class;
use asylon_vault::Kek;
use std::path::{Path, PathBuf};

const KEYS_FILE: &str = "keys.db";
pub(crate) const KEYS_MIGRATIONS: [&str; 1] = [include_str!("migrations/sqlite/keys_0001.sql")];
const PG_KEYS_MIGRATIONS: [&str; 1] = [include_str!("migrations/postgres/keys_0001.sql")];

pub fn keys_file(dir: &Path) -> PathBuf {
    dir.join(KEYS_FILE)
}

pub(crate) struct KeyStore {
    pub(crate) conn: Box<dyn Sql>,
    pub(crate) kek: Kek,
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
        Ok(Self {
            conn: connect(dir, db, create)?,
            kek,
        })
    }

    /// Deletes a person's keys row and his rows in the blind index, inside the caller's
    /// transaction; returns the classes he had a key for (none if he had no row). His index rows
    /// are found through the tokens his keys row lists and deleted by their primary key: the
    /// index has no index by person, and a delete by person alone reads all of it.
    pub(crate) fn delete_person(&self, case: &str) -> Result<Vec<Class>, StoreError> {
        let db = &*self.conn;
        let row = db.one(
            "SELECT identity, family, medical, statements, name_tokens FROM data_keys WHERE person = ?1",
            args![case],
        )?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        // The columns are selected in `Class::ALL`'s order.
        let mut keyed = Vec::new();
        for (i, class) in Class::ALL.into_iter().enumerate() {
            if row.opt_blob(i)?.is_some() {
                keyed.push(class);
            }
        }
        let tokens = row.opt_blob(Class::ALL.len())?.unwrap_or_default();
        for token in crate::search::split_tokens(&tokens) {
            db.exec(
                "DELETE FROM name_index WHERE token = ?1 AND person = ?2",
                args![token, case],
            )?;
        }
        db.exec("DELETE FROM data_keys WHERE person = ?1", args![case])?;
        Ok(keyed)
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
        crate::Database::Postgres { url, schema } => Box::new(crate::db::pg::open(
            url,
            &format!("{schema}_keys"),
            create,
            &PG_KEYS_MIGRATIONS,
        )?),
    })
}
