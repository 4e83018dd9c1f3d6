//! Backup and restore, and moving a registry between backends.
//!
//! A backup is a consistent copy of the registry database in one SQLite file: on SQLite taken
//! with `VACUUM INTO` inside one read transaction, on PostgreSQL copied table by table inside one
//! repeatable-read snapshot. Either way writes may continue while it runs and the copy holds a
//! whole prefix of the log. It holds ciphertext and no key: the data keys are in the key store, backed
//! up on its own (`--keys-out`), and the KEK is in the key file or a passphrase. A restore joins a
//! registry backup with a key store — normally the current one, so a person erased after the
//! backup was taken stays unreadable in the restored copy.

use crate::db::{Backend, Cell, Sql, Tx, Val};
use crate::keystore::KEY_TABLES;
use crate::progress::{Counter, Progress};
use crate::registry::{Registry, Shredded, data_file, in_data_dir, remove_written};
use crate::search::Reindexed;
use crate::{Database, KeySource, StoreError, VerifyReport};
use std::path::Path;

/// The registry's tables a copy carries, parents before children. Sessions and the sign-in
/// back-off are not carried: a restored or moved registry starts with everyone signed out.
const REGISTRY_TABLES: [&str; 6] = ["meta", "events", "persons", "orgs", "users", "api_tokens"];

/// Copies `tables` from one snapshot of `from` into `to` in one transaction; both have the
/// same schema (the migrations of each backend declare the columns in the same order).
fn copy_tables(
    from: &dyn Sql,
    to: &dyn Sql,
    tables: &[&str],
    progress: &dyn Progress,
) -> Result<u64, StoreError> {
    let _snapshot = Tx::read(from)?;
    let tx = Tx::write(to)?;
    let mut rows = 0;
    for t in tables {
        let count = from.one(&format!("SELECT count(*) FROM {t}"), &[])?;
        let count = count.map_or(Ok(0), |r| r.i64(0))?;
        let mut copied = Counter::begin(progress, "rows copied", u64::try_from(count).unwrap_or(0));
        let mut held = Vec::with_capacity(COPIED_PER_INSERT);
        from.each(&format!("SELECT * FROM {t}"), &[], &mut |row| {
            copied.add(1);
            rows += 1;
            held.push(row);
            if held.len() == COPIED_PER_INSERT {
                insert_held(to, t, &mut held)?;
            }
            Ok(())
        })?;
        insert_held(to, t, &mut held)?;
    }
    tx.commit()?;
    // PostgreSQL plans from statistics that autovacuum gathers in its own time; until then
    // the tables just filled look empty to it. The check of the name index that a restore
    // runs at once on them scanned the whole log for every page of captives (95 ms a page of
    // 1,000 at 200,000 captives, 3 ms with the statistics taken); `rebuild` right after
    // `migrate-store` to PostgreSQL: 40 s, 25 s with them.
    to.analyze(tables)?;
    Ok(rows)
}

/// Rows [`copy_tables`] inserts at once. Inserted one by one, each row was a round trip to
/// PostgreSQL: moving 200,000 captives there took two minutes.
const COPIED_PER_INSERT: usize = 500;

/// Inserts the rows `held` (of one table, so all of one width) into `t`, and forgets them.
fn insert_held(to: &dyn Sql, t: &str, held: &mut Vec<crate::db::Row>) -> Result<(), StoreError> {
    let Some(width) = held.first().map(|r| r.0.len()) else {
        return Ok(());
    };
    let args: Vec<Vec<Val<'_>>> = held
        .iter()
        .map(|r| r.0.iter().map(Cell::as_val).collect())
        .collect();
    to.insert_many(t, width, &args)?;
    held.clear();
    Ok(())
}

/// Whether the registry database `db` already holds a registry.
fn holds_registry(db: &dyn Sql) -> Result<bool, StoreError> {
    Ok(db
        .one("SELECT 1 FROM meta WHERE key = 'origin'", &[])?
        .is_some())
}

/// What a backup holds: the log's size and root at the moment it was taken.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    pub events: u64,
    pub root: String,
}

/// A restored registry, what its verification found, the erased captives whose keys it
/// destroyed, and what the check of its name index did.
pub struct Restored {
    pub registry: Registry,
    pub report: VerifyReport,
    /// Captives the log records as erased whose keys the key store given still held.
    pub shredded: Shredded,
    pub reindexed: Reindexed,
}

/// A registry filled from copies: its erasures applied to its key store, then verified.
struct Checked {
    registry: Registry,
    report: VerifyReport,
    shredded: Shredded,
}

impl Checked {
    fn of(registry: Registry, progress: &dyn Progress) -> Result<Self, StoreError> {
        let shredded = registry.shred_erased()?;
        let (report, leaves) = registry.verified(None, progress)?;
        // The kept subtree hashes are made from the copied events' leaves rather than copied.
        {
            let db = &*registry.conn;
            let tx = crate::db::Tx::write(db)?;
            crate::verify::remake_nodes(db, &leaves)?;
            tx.commit()?;
        }
        Ok(Self {
            registry,
            report,
            shredded,
        })
    }
}

impl Registry {
    /// Writes a consistent copy of the registry to `out`, and of the key store to `keys_out` if
    /// given; neither may exist. From PostgreSQL, `progress` is told how many rows are copied
    /// (SQLite copies itself in one statement).
    pub fn backup(
        &self,
        out: &Path,
        keys_out: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<BackupReport, StoreError> {
        for path in std::iter::once(out).chain(keys_out) {
            writable_new_file(path)?;
        }
        if keys_out == Some(out) {
            return Err(StoreError::Io(format!(
                "{} is given for both copies: the key store's needs a file of its own",
                out.display()
            )));
        }
        let written = self.write_backup(out, keys_out, progress);
        if written.is_err() {
            // Nothing half-written stays: a copy of the registry without its key store's copy
            // looks like a whole backup.
            for path in std::iter::once(out).chain(keys_out) {
                crate::registry::remove_quietly(path);
            }
        }
        written
    }

    /// [`Registry::backup`] once `out` and `keys_out` are known to be new files.
    fn write_backup(
        &self,
        out: &Path,
        keys_out: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<BackupReport, StoreError> {
        let utf8 = |p: &Path| {
            p.to_str()
                .map(str::to_string)
                .ok_or_else(|| StoreError::Io(format!("{} is not a UTF-8 path", p.display())))
        };
        if self.conn.backend() == Backend::Sqlite {
            let out_text = utf8(out)?;
            self.conn
                .exec("VACUUM INTO ?1", crate::db::args![out_text.as_str()])?;
            if let Some(k) = keys_out {
                let k = utf8(k)?;
                self.keys
                    .conn
                    .exec("VACUUM INTO ?1", crate::db::args![k.as_str()])?;
            }
        } else {
            let copy = crate::db::sqlite::open(out, true, &crate::registry::MIGRATIONS)?;
            copy_tables(&*self.conn, &copy, &REGISTRY_TABLES, progress)?;
            if let Some(k) = keys_out {
                let copy = crate::db::sqlite::open(k, true, &crate::keystore::KEYS_MIGRATIONS)?;
                copy_tables(&*self.keys.conn, &copy, &KEY_TABLES, progress)?;
            }
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
    /// `keys.db`), into `database` (its key file and settings in the data directory `dir`; for
    /// SQLite, an empty one), verifies it, and makes its name index that of its records (the
    /// key store may be newer than the backup: see [`Registry::reindex_names`]). On any failure
    /// (wrong key, damaged copy) removes what it wrote. A SQLite backup can be restored into
    /// PostgreSQL and back, since both backends' backups are SQLite files. `progress` is told
    /// how far the verification and the name index's check have gone.
    pub fn restore_in(
        backup: &Path,
        keys: &Path,
        dir: &Path,
        database: &Database,
        key: &KeySource,
        progress: &dyn Progress,
    ) -> Result<Restored, StoreError> {
        backup_files(backup, keys)?;
        let settings_existed = dir.join("settings.toml").exists();
        in_data_dir(dir, || {
            let Checked {
                registry,
                report,
                shredded,
            } = Self::restore_verified(backup, keys, dir, database, key, progress)?;
            match registry.reindex_names_showing(progress) {
                Ok(reindexed) => Ok(Restored {
                    registry,
                    report,
                    shredded,
                    reindexed,
                }),
                Err(e) => {
                    drop(registry);
                    remove_written(dir, database, settings_existed);
                    Err(e)
                }
            }
        })
    }

    /// [`Registry::restore_in`] up to its verification, in `dir`, which `restore_in` made.
    fn restore_verified(
        backup: &Path,
        keys: &Path,
        dir: &Path,
        database: &Database,
        key: &KeySource,
        progress: &dyn Progress,
    ) -> Result<Checked, StoreError> {
        if let Database::Postgres { .. } = database {
            // Read from copies, never from the files given: opening them would set their
            // journal mode to WAL (a byte of the header), leave a WAL beside them, and bring an
            // older backup's schema up to date in place. A backup is kept as evidence of what
            // the log held; a restore may not change it. (`restore_in` made `dir`.)
            let staging = tempfile::Builder::new()
                .prefix(".restore-")
                .tempdir_in(dir)
                .map_err(|e| StoreError::io("cannot make a working directory", e))?;
            let (copy, keys_copy) = (
                staging.path().join("registry.db"),
                staging.path().join("keys.db"),
            );
            sqlite_copy(backup, &copy)?;
            sqlite_copy(keys, &keys_copy)?;
            let from = crate::db::sqlite::open(&copy, false, &crate::registry::MIGRATIONS)?;
            let from_keys =
                crate::db::sqlite::open(&keys_copy, false, &crate::keystore::KEYS_MIGRATIONS)?;
            return Self::fill(dir, database, key, (&from, &from_keys), progress);
        }
        let db = data_file(dir);
        let keys_db = crate::keystore::keys_file(dir);
        if db.exists() || keys_db.exists() {
            return Err(StoreError::AlreadyExists(dir.display().to_string()));
        }
        let settings_existed = dir.join("settings.toml").exists();
        let restored = sqlite_copy(backup, &db)
            .and_then(|()| sqlite_copy(keys, &keys_db))
            .and_then(|()| crate::law::write_default_settings(dir))
            .and_then(|()| Registry::open(dir, key))
            .and_then(|registry| Checked::of(registry, progress));
        if restored.is_err() {
            remove_written(dir, &Database::Sqlite, settings_existed);
        }
        restored
    }

    /// Fills the empty registry `database` (with its key file and settings in `dir`) from
    /// another registry's database and key store, then opens and verifies it; on failure
    /// removes what it wrote.
    fn fill(
        dir: &Path,
        database: &Database,
        key: &KeySource,
        from: (&dyn Sql, &dyn Sql),
        progress: &dyn Progress,
    ) -> Result<Checked, StoreError> {
        in_data_dir(dir, || Self::fill_into(dir, database, key, from, progress))
    }

    /// [`Registry::fill`] once `dir` exists.
    fn fill_into(
        dir: &Path,
        database: &Database,
        key: &KeySource,
        (from, from_keys): (&dyn Sql, &dyn Sql),
        progress: &dyn Progress,
    ) -> Result<Checked, StoreError> {
        let to = crate::registry::connect(dir, database, true)?;
        if holds_registry(&*to)? {
            return Err(StoreError::AlreadyExists(match database {
                Database::Sqlite => dir.display().to_string(),
                Database::Postgres { schema, .. } => format!("the PostgreSQL schema {schema}"),
            }));
        }
        let settings_existed = dir.join("settings.toml").exists();
        let filled = (|| {
            copy_tables(from, &*to, &REGISTRY_TABLES, progress)?;
            let to_keys = crate::keystore::connect(dir, database, true)?;
            copy_tables(from_keys, &*to_keys, &KEY_TABLES, progress)?;
            drop((to, to_keys));
            crate::law::write_default_settings(dir)?;
            Checked::of(Registry::open_in(dir, database, key)?, progress)
        })();
        if filled.is_err() {
            remove_written(dir, database, settings_existed);
        }
        filled
    }

    /// Copies this registry, its log intact, into the empty `database` (key file and settings
    /// in `dir`), verifies the copy and checks that its root is this one's; gives the copy and
    /// what its verification found, telling `progress` how far that has gone.
    pub fn move_to(
        &self,
        dir: &Path,
        database: &Database,
        key: &KeySource,
        progress: &dyn Progress,
    ) -> Result<(Registry, VerifyReport), StoreError> {
        let Checked {
            registry: moved,
            report,
            ..
        } = Self::fill(
            dir,
            database,
            key,
            (&*self.conn, &*self.keys.conn),
            progress,
        )?;
        let (here, there) = (self.signed_head()?.0, moved.signed_head()?.0);
        if here.size() != there.size() || here.root() != there.root() {
            drop(moved);
            remove_written(dir, database, true);
            return Err(StoreError::VerifyFailed(
                "the copy's log differs from the original's (writes continued during the move?)"
                    .into(),
            ));
        }
        Ok((moved, report))
    }
}

/// Copies the SQLite database `from` to the new file `to` through SQLite itself, so that what
/// its WAL holds is copied too. The current `keys.db` given to a restore (its usual key store)
/// keeps its latest commits in `keys.db-wal` until they are folded back; a copy of the file alone
/// left the captives registered since without keys, their sealed data unreadable in the
/// restored registry.
fn sqlite_copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    let target = to
        .to_str()
        .ok_or_else(|| StoreError::Io(format!("{} is not a UTF-8 path", to.display())))?;
    let vacuum = |source: &Path| {
        rusqlite::Connection::open_with_flags(
            source,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| c.execute("VACUUM INTO ?1", [target]))
        .map(|_| ())
    };
    let Err(refused) = vacuum(from) else {
        return Ok(());
    };
    crate::registry::remove_quietly(to);
    // SQLite reads a database in WAL mode only where it can keep the WAL's index beside it: a
    // key store copied by hand onto read-only media cannot be opened where it lies. Its file and
    // WAL, copied together next to `to`, can.
    let staged = (|| {
        let dir = tempfile::Builder::new()
            .prefix(".restore-")
            .tempdir_in(to.parent().unwrap_or(Path::new(".")))?;
        let copy = dir.path().join("copy.db");
        std::fs::copy(from, &copy)?;
        let wal = Path::new(&format!("{}-wal", from.display())).to_path_buf();
        if wal.exists() {
            std::fs::copy(&wal, dir.path().join("copy.db-wal"))?;
        }
        Ok::<_, std::io::Error>((dir, copy))
    })();
    let copied = match staged {
        Ok((_dir, copy)) => vacuum(&copy).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    copied.map_err(|e| {
        crate::registry::remove_quietly(to);
        StoreError::Io(format!(
            "cannot read {} ({refused}), nor a copy of it ({e})",
            from.display()
        ))
    })
}

/// Refuses, before anything is written, a path a backup cannot be written to as a new file,
/// saying why, rather than leaving SQLite to say "unable to open database file".
fn writable_new_file(path: &Path) -> Result<(), StoreError> {
    let refuse = |why: &str| {
        Err(StoreError::Io(format!(
            "cannot write {}: {why}",
            path.display()
        )))
    };
    if path.is_dir() {
        return refuse("it is a directory; give the name of a new file in it");
    }
    if path.exists() {
        return refuse("it exists, and a backup never overwrites a file");
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            refuse(&format!("there is no directory {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Refuses, before anything is written, a backup or key store that is missing or is not a
/// SQLite database at all (a file given in the wrong place), rather than leaving SQLite to say
/// "file is not a database" of one of them.
fn backup_files(backup: &Path, keys: &Path) -> Result<(), StoreError> {
    for (what, path) in [("backup", backup), ("key store", keys)] {
        if !path.is_file() {
            return Err(StoreError::Io(format!("no {what} file {}", path.display())));
        }
        let mut magic = [0; 16];
        let read = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
        if read.is_err() || &magic != b"SQLite format 3\0" {
            return Err(StoreError::Io(format!(
                "{} is not a {what} written by `asylon backup` (not a SQLite database)",
                path.display()
            )));
        }
    }
    // The two are easily swapped: each is told as what it is. Where a file's tables cannot be
    // read here (a key store in WAL mode on read-only media), the restore reads it as before.
    let kind = |path: &Path| -> Option<(bool, bool)> {
        let c = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let has = |table: &str| {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .map(|n| n > 0)
        };
        Some((has("events")?, has("data_keys")?))
    };
    let how = "the registry backup (`asylon backup --out`) first, and the key store with --keys (its backup, `--keys-out`, or DATA_DIR/keys.db)";
    match kind(backup) {
        Some((false, true)) => {
            return Err(StoreError::Io(format!(
                "{} is a key store, not a registry backup: give {how}",
                backup.display()
            )));
        }
        Some((false, false)) => {
            return Err(StoreError::Io(format!(
                "{} is not a backup written by `asylon backup` (it holds no events)",
                backup.display()
            )));
        }
        _ => {}
    }
    match kind(keys) {
        Some((true, false)) => Err(StoreError::Io(format!(
            "{} is a registry backup, not a key store: give {how}",
            keys.display()
        ))),
        Some((false, false)) => Err(StoreError::Io(format!(
            "{} is not a key store written by `asylon backup` (it holds no data keys)",
            keys.display()
        ))),
        _ => Ok(()),
    }
}
