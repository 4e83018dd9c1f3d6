//! Backup and restore of a SQLite registry.
//!
//! A backup is a consistent copy of the database taken with `VACUUM INTO` inside one read
//! transaction, so writes may continue while it runs (WAL mode) and the copy holds a whole
//! prefix of the log. It holds what the database holds — ciphertext for sealed classes, wrapped
//! keys — and never the key file: restoring needs the same key or passphrase.

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
    /// Writes a consistent copy of the registry to `out`, which must not exist.
    pub fn backup(&self, out: &Path) -> Result<BackupReport, StoreError> {
        if out.exists() {
            return Err(StoreError::Io(format!(
                "{} exists; a backup never overwrites a file",
                out.display()
            )));
        }
        let target = out
            .to_str()
            .ok_or_else(|| StoreError::Io(format!("{} is not a UTF-8 path", out.display())))?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
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

    /// Restores a backup into the empty data directory `dir` and verifies it; on any failure
    /// (wrong key, damaged copy) removes what it wrote.
    pub fn restore(backup: &Path, dir: &Path, key: &KeySource) -> Result<Registry, StoreError> {
        if !backup.is_file() {
            return Err(StoreError::Io(format!(
                "no backup file {}",
                backup.display()
            )));
        }
        let db = data_file(dir);
        if db.exists() {
            return Err(StoreError::AlreadyExists(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("cannot create the data directory", e))?;
        std::fs::copy(backup, &db).map_err(|e| StoreError::io("cannot copy the backup", e))?;
        let settings_existed = dir.join("settings.toml").exists();
        let restored = crate::law::write_default_settings(dir)
            .and_then(|()| Registry::open(dir, key))
            .and_then(|reg| reg.verify(None).map(|_| reg));
        if restored.is_err() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            if !settings_existed {
                let _ = std::fs::remove_file(dir.join("settings.toml"));
            }
        }
        restored
    }
}
