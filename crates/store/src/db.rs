//! The one trait every SQL statement of the store goes through, so the same code runs on the
//! embedded SQLite default and on PostgreSQL.
//!
//! Statements are written once, with `?1`, `?2`… placeholders and the SQL both databases share;
//! each backend adapts what differs (placeholders, how a write transaction takes the write
//! lock, schema versions). Rows come back owned, as [`Row`]s of [`Cell`]s, so no borrow of a
//! connection outlives a call. Transactions are plain `BEGIN`/`COMMIT` on the connection,
//! guarded by [`Tx`], which rolls back if dropped uncommitted.

use crate::StoreError;

/// A parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Null,
    I64(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Val::Blob(v)
    }
}

impl<'a, T: Into<Val<'a>>> From<Option<T>> for Val<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Parameters, converted: `args![a, b]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Val::from($v)),*][..] };
}
pub(crate) use args;

/// A value read back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    Null,
    I64(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, owned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

fn wrong(i: usize, want: &str, got: Option<&Cell>) -> StoreError {
    StoreError::Damaged(format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn cell(&self, i: usize) -> Option<&Cell> {
        self.0.get(i)
    }

    pub(crate) fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self.cell(i) {
            Some(Cell::I64(v)) => Ok(*v),
            c => Err(wrong(i, "an integer", c)),
        }
    }

    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i) {
            Some(Cell::Null) => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.cell(i) {
            Some(Cell::Text(v)) => Ok(v.clone()),
            c => Err(wrong(i, "text", c)),
        }
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i) {
            Some(Cell::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub(crate) fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.cell(i) {
            Some(Cell::Blob(v)) => Ok(v.clone()),
            c => Err(wrong(i, "bytes", c)),
        }
    }

    pub(crate) fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i) {
            Some(Cell::Null) => Ok(None),
            _ => self.blob(i).map(Some),
        }
    }
}

/// Whether a failed statement broke a unique constraint (a duplicate external id).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Db(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        _ => false,
    }
}

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
}

/// A connection to the registry's database (or to its key store).
pub(crate) trait Sql: Send {
    fn backend(&self) -> Backend;

    /// Runs a statement; answers how many rows it changed.
    fn exec(&self, sql: &str, args: &[Val<'_>]) -> Result<usize, StoreError>;

    /// Runs a query, handing each row to `f` as it comes.
    fn each(
        &self,
        sql: &str,
        args: &[Val<'_>],
        f: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs statements without parameters (transaction control, schema).
    fn batch(&self, sql: &str) -> Result<(), StoreError>;

    /// Starts the one write transaction that may run at a time across every process.
    fn begin_write(&self) -> Result<(), StoreError>;

    /// Starts a read transaction that sees one snapshot.
    fn begin_read(&self) -> Result<(), StoreError>;

    fn one(&self, sql: &str, args: &[Val<'_>]) -> Result<Option<Row>, StoreError> {
        let mut out = None;
        self.each(sql, args, &mut |r| {
            if out.is_none() {
                out = Some(r);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn all(&self, sql: &str, args: &[Val<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, args, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }
}

/// An open transaction; rolled back when dropped without [`Tx::commit`].
pub(crate) struct Tx<'a> {
    db: &'a dyn Sql,
    done: bool,
}

impl<'a> Tx<'a> {
    pub(crate) fn write(db: &'a dyn Sql) -> Result<Self, StoreError> {
        db.begin_write()?;
        Ok(Self { db, done: false })
    }

    pub(crate) fn read(db: &'a dyn Sql) -> Result<Self, StoreError> {
        db.begin_read()?;
        Ok(Self { db, done: false })
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.done = true;
        self.db.batch("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

/// The embedded default.
pub(crate) mod sqlite {
    use super::*;
    use rusqlite::types::{ToSqlOutput, ValueRef};

    pub(crate) struct Lite(pub(crate) rusqlite::Connection);

    /// Opens (or creates) the SQLite file at `path` and brings its schema up to date.
    pub(crate) fn open(
        path: &std::path::Path,
        create: bool,
        migrations: &[&str],
    ) -> Result<Lite, StoreError> {
        use rusqlite::OpenFlags;
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = rusqlite::Connection::open_with_flags(path, flags)?;
        configure(&conn)?;
        migrate(&mut conn, migrations)?;
        Ok(Lite(conn))
    }

    fn configure(conn: &rusqlite::Connection) -> Result<(), StoreError> {
        // WAL: readers never block the writer. FULL: a commit survives power loss, not only a
        // crash. secure_delete: deleted data keys are overwritten, not left in free pages.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // 64 MiB of page cache and a WAL folded back every 32 MiB rather than every 4: the
        // blind index is keyed by random tokens, so its inserts touch pages all over its
        // B-tree, and with the defaults most of those pages are written back and read again
        // many times per import.
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(())
    }

    fn migrate(conn: &mut rusqlite::Connection, migrations: &[&str]) -> Result<(), StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = migrations.len() as i64;
        if version > known {
            return Err(StoreError::Damaged(format!(
                "schema version {version} was written by a newer Asylon (this one knows {known})"
            )));
        }
        for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Folds the WAL back into the database and empties it, so no old page (a destroyed key)
    /// stays in it.
    pub(crate) fn truncate_wal(conn: &dyn Sql) -> Result<(), StoreError> {
        conn.each("PRAGMA wal_checkpoint(TRUNCATE)", &[], &mut |_| Ok(()))
    }

    fn params<'a>(args: &'a [Val<'a>]) -> impl Iterator<Item = ToSqlOutput<'a>> + 'a {
        args.iter().map(|a| {
            ToSqlOutput::Borrowed(match *a {
                Val::Null => ValueRef::Null,
                Val::I64(v) => ValueRef::Integer(v),
                Val::Text(s) => ValueRef::Text(s.as_bytes()),
                Val::Blob(b) => ValueRef::Blob(b),
            })
        })
    }

    impl Sql for Lite {
        fn backend(&self) -> Backend {
            Backend::Sqlite
        }

        fn exec(&self, sql: &str, args: &[Val<'_>]) -> Result<usize, StoreError> {
            let mut stmt = self.0.prepare_cached(sql)?;
            Ok(stmt.execute(rusqlite::params_from_iter(params(args)))?)
        }

        fn each(
            &self,
            sql: &str,
            args: &[Val<'_>],
            f: &mut dyn FnMut(Row) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            let mut stmt = self.0.prepare_cached(sql)?;
            let n = stmt.column_count();
            let mut rows = stmt.query(rusqlite::params_from_iter(params(args)))?;
            while let Some(r) = rows.next()? {
                let mut cells = Vec::with_capacity(n);
                for i in 0..n {
                    cells.push(match r.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::I64(v),
                        ValueRef::Real(v) => Cell::I64(v as i64),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                    });
                }
                f(Row(cells))?;
            }
            Ok(())
        }

        fn batch(&self, sql: &str) -> Result<(), StoreError> {
            Ok(self.0.execute_batch(sql)?)
        }

        fn begin_write(&self) -> Result<(), StoreError> {
            // IMMEDIATE takes the write lock at once: one writer at a time, across processes.
            self.batch("BEGIN IMMEDIATE")
        }

        fn begin_read(&self) -> Result<(), StoreError> {
            // In WAL mode a read transaction sees the snapshot of its first read.
            self.batch("BEGIN DEFERRED")
        }
    }
}
