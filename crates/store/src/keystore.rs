//! The key store: a second SQLite file beside the registry (`keys.db`) holding every wrapped
//! data key and the blind index of names. The registry database and its backups hold ciphertext
//! only; a person's erasure deletes his row here, so no copy of the registry taken before or
//! after can be opened for him. The key store is backed up on its own, like the key file, and a
//! restore joins a registry backup with the current key store.

use crate::StoreError;
use crate::db::Sql;
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
