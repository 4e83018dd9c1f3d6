//! Backup and restore of a SQLite registry.
//!
//! A backup is a consistent copy of the registry database taken with `VACUUM INTO` inside one
//! read transaction, so writes may continue while it runs (WAL mode) and the copy holds a whole
//! prefix of the log. It holds ciphertext and no key: the data keys are in the key store, backed
//! up on its own (`--keys-out`), and the KEK is in the key file or a passphrase. A restore joins a
//! registry backup with a key store — normally the current one, so a person erased after the
//! backup was taken stays unreadable in the restored copy.

use crate::registry::{Registry, data_file};
use crate::{KeySource, StoreError};
use std::path::Path;

/// What a backup holds: the log's size and root at the moment it was taken.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub events: u64,
    pub root: String,
}

impl Registry {
    /// Writes a consistent copy of the registry to `out`, and of the key store to `keys_out` if
    /// given; neither may exist.
    pub fn backup(&self, out: &Path, keys_out: Option<&Path>) -> Result<BackupReport, StoreError> {
        for path in std::iter::once(out).chain(keys_out) {
            if path.exists() {
                return Err(StoreError::Io(format!(
                    "{} exists; a backup never overwrites a file",
                    path.display()
                )));
            }
        }
        let utf8 = |p: &Path| {
            p.to_str()
                .map(str::to_string)
                .ok_or_else(|| StoreError::Io(format!("{} is not a UTF-8 path", p.display())))
        };
        if self.conn.backend() != crate::db::Backend::Sqlite {
            return Err(StoreError::Io(
                "backup of a PostgreSQL registry is not available yet: use pg_dump of its schema"
                    .into(),
            ));
        }
        let out_text = utf8(out)?;
        self.conn
            .exec("VACUUM INTO ?1", crate::db::args![out_text.as_str()])?;
        if let Some(k) = keys_out {
            let k = utf8(k)?;
            self.keys
                .conn
                .exec("VACUUM INTO ?1", crate::db::args![k.as_str()])?;
        }
        // Read what the copy holds from the copy itself.
        let copy =
            rusqlite::Connection::open_with_flags(out, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let frontier: Vec<u8> =
            copy.query_row("SELECT value FROM meta WHERE key = 'frontier'", [], |r| {
                r.get(0)
            })?;
        let f = crate::registry::decode_frontier(&frontier).ok_or_else(|| {
            StoreError::Damaged("the backup's Merkle frontier is unreadable".into())
        })?;
        Ok(BackupReport {
            events: f.size(),
            root: hex::encode(f.root()),
        })
    }

    /// Restores a registry backup, with the key store `keys` (a key store backup, or the current
    /// `keys.db`), into the empty data directory `dir` and verifies it; on any failure (wrong
    /// key, damaged copy) removes what it wrote.
    pub fn restore(
        backup: &Path,
        keys: &Path,
        dir: &Path,
        key: &KeySource,
    ) -> Result<Registry, StoreError> {
        for (what, path) in [("backup", backup), ("key store", keys)] {
            if !path.is_file() {
                return Err(StoreError::Io(format!("no {what} file {}", path.display())));
            }
        }
        let db = data_file(dir);
        let keys_db = crate::keystore::keys_file(dir);
        if db.exists() || keys_db.exists() {
            return Err(StoreError::AlreadyExists(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("cannot create the data directory", e))?;
        let copied = std::fs::copy(backup, &db)
            .and_then(|_| std::fs::copy(keys, &keys_db))
            .map_err(|e| StoreError::io("cannot copy the backup", e));
        let settings_existed = dir.join("settings.toml").exists();
        let restored = copied
            .and_then(|_| crate::law::write_default_settings(dir))
            .and_then(|()| Registry::open(dir, key))
            .and_then(|reg| reg.verify(None).map(|_| reg));
        if restored.is_err() {
            for file in [&db, &keys_db] {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
            if !settings_existed {
                let _ = std::fs::remove_file(dir.join("settings.toml"));
            }
        }
        restored
    }
}
