//! The one trait every SQL statement of the store goes through, so the same code runs on the
//! embedded SQLite default and on PostgreSQL.
//!
//! Statements are written once, with `?1`, `?2`… placeholders and the SQL both databases share;
//! each backend adapts what differs (placeholders, how a write transaction takes the write
//! lock, schema versions). Rows come back owned, as [`Row`]s of [`Cell`]s, so no borrow of a
//! connection outlives a call. Transactions are plain `BEGIN`/`COMMIT` on the connection,
//! guarded by [`Tx`], which rolls back if dropped uncommitted.

use crate::StoreError;
use std::time::Duration;

/// A parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
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

impl Cell {
    /// The value as a parameter: a row read from one table written into another, or compared
    /// with the values it should hold.
    pub(crate) fn as_val(&self) -> Val<'_> {
        match self {
            Cell::Null => Val::Null,
            Cell::I64(v) => Val::I64(*v),
            Cell::Text(t) => Val::Text(t),
            Cell::Blob(b) => Val::Blob(b),
        }
    }
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

/// `?1, ?2, …, ?n`: the parameters of a statement taking `n` values (a row, or a list after IN).
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a failed statement broke a unique constraint (a duplicate external id).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Db(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        StoreError::Postgres { code, .. } => code.as_deref() == Some("23505"),
        _ => false,
    }
}

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
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

    /// A second connection to the same database that folds the WAL back into it while this one
    /// goes on writing (see `Registry::register_stream`); `None` where the database does that
    /// itself.
    fn checkpointer(&self) -> Result<Option<Box<dyn Sql>>, StoreError> {
        Ok(None)
    }

    /// Another connection to the same database, for reading beside this one while it is used on
    /// another thread; `None` where there can be none (a database in memory).
    fn another(&self) -> Result<Option<Box<dyn Sql>>, StoreError>;

    /// Stops or restarts the folding of the WAL that each commit does when the WAL has grown.
    fn set_auto_checkpoint(&self, _on: bool) -> Result<(), StoreError> {
        Ok(())
    }

    /// Folds what is committed in the WAL back into the database, without waiting for anyone.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Folds the WAL back into the database and empties it, so that no old page (a destroyed
    /// key) stays in it and no WAL is left to fold when the connection closes. Nothing where
    /// the database keeps no WAL file of its own.
    fn truncate_wal(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Takes the planner's statistics of each of `tables` afresh: for tables just filled,
    /// which the planner would otherwise take for empty. Nothing on SQLite, whose planner
    /// needs none.
    fn analyze(&self, _tables: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    /// [`Sql::analyze`] of those of `tables` whose statistics are stale, as
    /// autovacuum would (never taken, or more than a tenth of the rows changed since), for a
    /// pass about to query them at once, before autovacuum comes round or where it is off.
    /// Nothing on SQLite, whose planner needs none.
    fn refresh_statistics(&self, _tables: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    /// What [`Sql::purge_deleted`] must rewrite so that nothing of the rows deleted from
    /// `tables` (destroyed data keys and the name tokens beside them) stays in the database's
    /// own files: with [`Deleted::Here`], asked inside the deleting transaction, those it
    /// deleted from; with [`Deleted::Ever`], every one. It refuses what this connection's
    /// rights could not do, so that the refusal rolls the deletion back. Nothing on SQLite,
    /// which has overwritten them in place (`secure_delete`).
    fn purge_plan(&self, _tables: &[&str], _deleted: Deleted) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Leaves nothing of the deleted rows in the database's own files, once their deletion is
    /// committed: rewrites the relations of `plan` (a [`Sql::purge_plan`]). SQLite's WAL
    /// still holds the pages as they were before, and it is emptied. Run outside any
    /// transaction. Another session that began before the deletion and still reads may keep
    /// the rows where they cannot be rewritten: it is waited for, at most `wait`, and if it
    /// outlasts that, [`Purge::HeldBack`] says so.
    fn purge_deleted(&self, plan: &[String], wait: Duration) -> Result<Purge, StoreError>;

    /// Waits for, then holds until [`Erasing::release_after`], the registry's lock for erasures
    /// (and the other ways keys are destroyed and the key store purged): one at a time,
    /// whichever handle or process makes it, so that a second erasure of a captive (a client
    /// sending again an erasure that waits for an older reader) finds him erased rather than
    /// destroying nothing beside the first and recording that. Taken on the registry's own
    /// connection, and let go on it.
    fn erasing(&self) -> Result<Erasing, StoreError>;

    /// Inserts `rows` into `target` (`table (column, …)`), each of `width` values, many rows
    /// per statement (see [`insert_sql`]). Inside a transaction only, and a failure abandons it:
    /// the rows before the failing one may stay (SQLite, see its `insert_many`) until the caller
    /// rolls back, as every caller does by returning the error and dropping its [`Tx`].
    fn insert_many(
        &self,
        target: &str,
        width: usize,
        rows: &[Vec<Val<'_>>],
    ) -> Result<(), StoreError>;

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

/// `{insert} {target} VALUES (…), (…)` for `rows` rows of `width` values, the parameters
/// numbered from 1 after `mark` (`?1` for SQLite, `$1` for PostgreSQL).
fn insert_sql(insert: &str, target: &str, width: usize, rows: usize, mark: char) -> String {
    use std::fmt::Write;
    let mut sql = format!("{insert} {target} VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            if col > 0 {
                sql.push_str(", ");
            }
            // Writing to a String cannot fail.
            let _ = write!(sql, "{mark}{}", row * width + col + 1);
        }
        sql.push(')');
    }
    sql
}

/// Rows per INSERT statement on SQLite (at most a few hundred parameters each).
const SQLITE_ROWS_PER_INSERT: usize = 50;

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

/// How long an erasure waits, unless told otherwise, for readers and writers that began before
/// it and still hold what it destroyed where it cannot be rewritten: PostgreSQL's older
/// snapshots (`Pg::wait_for_older_snapshots`), SQLite's readers of pages its WAL cannot be
/// emptied of.
pub const PURGE_WAIT: Duration = Duration::from_secs(60);

/// Which deleted rows a [`Sql::purge_plan`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Those the current transaction deleted (an erasure).
    Here,
    /// Any ever deleted, by whom and whenever (`Registry::purge_keys`, after an erasure that
    /// was held back).
    Ever,
}

/// The registry's lock for erasures ([`Sql::erasing`]), held until [`Erasing::release_after`] (or
/// until the process, or its connection, ends).
#[must_use]
pub(crate) enum Erasing {
    /// A database in memory: one connection, nobody to wait for.
    Alone,
    /// An exclusive lock (flock) on a file beside the SQLite database.
    File(std::fs::File),
    /// A session-level advisory lock of PostgreSQL: the statement that lets it go, on the
    /// connection that took it.
    Advisory(String),
}

impl Erasing {
    /// Lets the lock go, on `db`, the connection that took it, once `done` (what was done
    /// while it was held) is known; gives `done`, or the failure to let go.
    pub(crate) fn release_after<T>(
        self,
        db: &dyn Sql,
        done: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let released = self.release(db);
        let done = done?;
        released?;
        Ok(done)
    }

    fn release(self, db: &dyn Sql) -> Result<(), StoreError> {
        match self {
            Erasing::Alone => Ok(()),
            Erasing::File(file) => file
                .unlock()
                .map_err(|e| StoreError::io("letting go the erasure lock", e)),
            Erasing::Advisory(unlock) => db.batch(&unlock),
        }
    }
}

/// Whether a purge of deleted keys left nothing of them in the key store's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Purge {
    /// Nothing of them is left in the files (beyond PostgreSQL's own WAL, README
    /// "Crypto-shredding").
    Complete,
    /// Another session that began before the deletion was still reading when the wait ran
    /// out, and the files may still hold a copy of them: once it has ended,
    /// `Registry::purge_keys` (`asylon purge-keys`) removes it.
    HeldBack,
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

    /// Bytes per page of a new database.
    const PAGE_SIZE: i64 = 8192;
    /// WAL pages after which a commit folds the WAL back (32 MiB).
    const AUTO_CHECKPOINT_PAGES: i64 = 32 * 1024 * 1024 / PAGE_SIZE;

    /// How long a statement waits for a lock another connection holds.
    const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long each try of an erasure's purge waits for readers, holding the write lock.
    const PURGE_TRY: Duration = Duration::from_millis(100);
    /// How long an erasure's purge leaves the write lock between its tries: more than the
    /// longest sleep of SQLite's busy handler (100 ms), so a writer waiting for it gets in.
    const PURGE_PAUSE: Duration = Duration::from_millis(250);

    fn configure(conn: &rusqlite::Connection) -> Result<(), StoreError> {
        // 8 KiB pages for a new database (an existing one keeps its own): the log appends rows
        // of several hundred bytes and the blind index is rewritten page by page at each commit,
        // and with half as many pages both do less B-tree work per byte. `scripts/ab-import`,
        // fifteen rounds, 100,000 captives, a build with PAGE_SIZE 4096 against this one:
        // wall 1.46 -> 1.41 s, system time 0.49 -> 0.41 s. (Measured after bulk inserts stopped
        // keeping a statement journal, see SQLITE_INSERT; before, larger pages spilled that
        // journal to disk sooner and gained nothing.) Set before anything else: once the
        // database file has its first page, SQLite ignores it.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
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
        conn.pragma_update(None, "wal_autocheckpoint", AUTO_CHECKPOINT_PAGES)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
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

    /// A bulk insert on SQLite. With the default conflict resolution (ABORT) SQLite must be able
    /// to undo a failed statement's earlier rows alone, so it first copies every page a
    /// multi-row insert changes to a statement journal, which goes to a temporary file past
    /// 64 KiB: importing 100,000 captives made 137,000 writes where 47,000 do (`strace -f -c`).
    /// FAIL keeps no statement journal; a failure abandons the whole transaction anyway (see
    /// [`Sql::insert_many`]). `scripts/ab-import`, eleven rounds, 100,000 captives, the builds
    /// of the commits before and with this change: wall 1.84 -> 1.72 s, system time 0.67 ->
    /// 0.46 s.
    const SQLITE_INSERT: &str = "INSERT OR FAIL INTO";

    thread_local! {
        /// The text of a full [`SQLITE_ROWS_PER_INSERT`]-row insert, by target and width: a bulk
        /// insert asks for it thousands of times, and writing it numbers hundreds of parameters.
        /// Targets are the few tables the code names.
        static FULL_INSERTS: std::cell::RefCell<Vec<(String, usize, std::rc::Rc<str>)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    /// [`insert_sql`] for SQLite: the full-size statement written once per target and thread,
    /// the shorter last one of an insert written when needed.
    fn insert_statement(target: &str, width: usize, rows: usize) -> std::rc::Rc<str> {
        if rows != SQLITE_ROWS_PER_INSERT {
            return insert_sql(SQLITE_INSERT, target, width, rows, '?').into();
        }
        FULL_INSERTS.with(|cache| {
            let mut cache = cache.borrow_mut();
            if let Some((.., sql)) = cache.iter().find(|(t, w, _)| t == target && *w == width) {
                return std::rc::Rc::clone(sql);
            }
            let sql: std::rc::Rc<str> = insert_sql(SQLITE_INSERT, target, width, rows, '?').into();
            cache.push((target.to_string(), width, std::rc::Rc::clone(&sql)));
            sql
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

        fn insert_many(
            &self,
            target: &str,
            width: usize,
            rows: &[Vec<Val<'_>>],
        ) -> Result<(), StoreError> {
            // Many rows per statement, and the statement prepared once per shape: per row,
            // looking a statement up in the cache and stepping it cost more than the insert.
            for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let sql = insert_statement(target, width, chunk.len());
                let mut stmt = self.0.prepare_cached(&sql)?;
                stmt.execute(rusqlite::params_from_iter(
                    chunk.iter().flat_map(|r| params(r)),
                ))?;
            }
            Ok(())
        }

        fn checkpointer(&self) -> Result<Option<Box<dyn Sql>>, StoreError> {
            self.another()
        }

        fn another(&self) -> Result<Option<Box<dyn Sql>>, StoreError> {
            let Some(path) = self.0.path().filter(|p| !p.is_empty()) else {
                return Ok(None);
            };
            let conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn)?;
            Ok(Some(Box::new(Lite(conn))))
        }

        fn set_auto_checkpoint(&self, on: bool) -> Result<(), StoreError> {
            let pages = if on { AUTO_CHECKPOINT_PAGES } else { 0 };
            Ok(self.0.pragma_update(None, "wal_autocheckpoint", pages)?)
        }

        fn checkpoint(&self) -> Result<(), StoreError> {
            self.each("PRAGMA wal_checkpoint(PASSIVE)", &[], &mut |_| Ok(()))
        }

        fn truncate_wal(&self) -> Result<(), StoreError> {
            self.each("PRAGMA wal_checkpoint(TRUNCATE)", &[], &mut |_| Ok(()))
        }

        /// Empties the WAL, which holds the pages as they were before the deletion. A reader
        /// on an older snapshot (a backup copying the key store) stops that: the checkpoint
        /// waits for it, then gives up, saying so in its first column. So it is tried again
        /// until nobody is in the way, up to `wait`, as PostgreSQL waits for older snapshots.
        /// (Seen: an erasure beside a reader of more than 10 s said his keys were destroyed,
        /// and the key store's files held his wrapped key until long after the reader had
        /// ended.) A checkpoint that empties the WAL holds the key store's write lock while it
        /// waits for readers, so each try waits only [`PURGE_TRY`] and then leaves the lock
        /// for longer than a writer's busy handler sleeps between its own tries: registrations
        /// in this process or another go on while an erasure waits. (Seen: each try waited the
        /// whole busy timeout, and a registration beside it waited as long, or failed.)
        fn purge_deleted(&self, _plan: &[String], wait: Duration) -> Result<Purge, StoreError> {
            let until = std::time::Instant::now() + wait;
            let purged = loop {
                let left = until.saturating_duration_since(std::time::Instant::now());
                self.0.busy_timeout(left.min(PURGE_TRY))?;
                let mut busy = 0;
                let tried = self.each("PRAGMA wal_checkpoint(TRUNCATE)", &[], &mut |r| {
                    busy = r.i64(0)?;
                    Ok(())
                });
                if tried.is_err() || busy == 0 || left.is_zero() {
                    break tried.map(|()| {
                        if busy == 0 {
                            Purge::Complete
                        } else {
                            Purge::HeldBack
                        }
                    });
                }
                std::thread::sleep(PURGE_PAUSE.min(left));
            };
            self.0.busy_timeout(BUSY_TIMEOUT)?;
            purged
        }

        fn erasing(&self) -> Result<Erasing, StoreError> {
            use std::os::unix::fs::OpenOptionsExt;
            let Some(path) = self.0.path().filter(|p| !p.is_empty()) else {
                return Ok(Erasing::Alone);
            };
            let lock = format!("{path}-erasing");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&lock)
                .map_err(|e| StoreError::io(&format!("opening {lock}"), e))?;
            // flock(2): handles of one process open the file each on its own, and exclude each
            // other as other processes do.
            file.lock()
                .map_err(|e| StoreError::io(&format!("locking {lock}"), e))?;
            Ok(Erasing::File(file))
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

/// PostgreSQL: one registry per schema (its key store in a second schema), several processes
/// writing to it at once.
pub(crate) mod pg {
    use super::*;
    use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
    use std::cell::RefCell;
    use std::collections::HashMap;

    impl From<postgres::Error> for StoreError {
        fn from(e: postgres::Error) -> Self {
            let code = e.code().map(|c| c.code().to_string());
            let message = match e.as_db_error() {
                Some(d) => d.message().to_string(),
                // The client's own errors say what failed ("error connecting to server") and
                // keep why ("Connection refused") as their source: both are told.
                None => {
                    let mut message = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(cause) = source {
                        message = format!("{message}: {cause}");
                        source = cause.source();
                    }
                    message
                }
            };
            match code.as_deref() {
                Some("53100") => return StoreError::Full(format!("PostgreSQL: {message}")),
                // lock_not_available (a lock_timeout ran out), deadlock_detected
                Some("55P03" | "40P01") => {
                    return StoreError::Busy(format!("PostgreSQL: {message}"));
                }
                _ => {}
            }
            StoreError::Postgres { message, code }
        }
    }

    impl ToSql for Val<'_> {
        fn to_sql(
            &self,
            ty: &Type,
            out: &mut bytes::BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            match *self {
                Val::Null => Ok(IsNull::Yes),
                Val::I64(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Val::I64(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Val::I64(v) => v.to_sql(ty, out),
                Val::Text(t) => t.to_sql(ty, out),
                Val::Blob(b) => b.to_sql(ty, out),
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    struct Conn {
        client: postgres::Client,
        statements: HashMap<String, postgres::Statement>,
    }

    /// A connection; RefCell lets `&self` methods reach the client (the registry is used by one
    /// thread at a time, behind a lock or owned by one command).
    pub(crate) struct Pg {
        /// None only once dropped (see the `Drop` below).
        conn: RefCell<Option<Conn>>,
        /// The advisory lock that serialises writers of this schema, across processes.
        lock: i64,
        /// Where it connected, for [`Sql::another`]: the URL (which may carry a password, so
        /// it is wiped when the connection is dropped) and the schema.
        place: (zeroize::Zeroizing<String>, String),
    }

    /// `?1` → `$1`: the statements are written once, in SQLite's placeholder style.
    fn placeholders(sql: &str) -> String {
        sql.replace('?', "$")
    }

    fn cell(row: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
        let ty = row
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Damaged(format!("no column {i}")))?;
        let get_err = |e: postgres::Error| StoreError::from(e);
        Ok(match ty {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, Cell::I64),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, |v| Cell::I64(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, |v| Cell::I64(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, |v| Cell::I64(v.into())),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, Cell::Blob),
            _ => row
                .try_get::<_, Option<String>>(i)
                .map_err(get_err)?
                .map_or(Cell::Null, Cell::Text),
        })
    }

    impl Pg {
        /// Waits, up to `wait`, until no other session of this database holds a
        /// snapshot taken before now, or is inside a transaction that wrote and began before now
        /// (what `pg_stat_activity` shows this role: sessions of other roles only with
        /// `pg_read_all_stats`). Both hold back what a rewrite may leave out: a writing
        /// transaction between two statements has no snapshot, and still counts as running
        /// (seen: a key left in the files by an erasure while another test's import was
        /// storing keys). A session that outlasts the wait keeps what it may see in the files
        /// until the next rewrite (README, "Crypto-shredding"): whether none did.
        fn wait_for_older_snapshots(&self, wait: Duration) -> Result<bool, StoreError> {
            let now = self
                .one("SELECT pg_current_xact_id()::xid::text", &[])?
                .ok_or_else(|| StoreError::Damaged("no transaction id".into()))?
                .text(0)?;
            let until = std::time::Instant::now() + wait;
            loop {
                let older = self.one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()
                       AND ((backend_xmin IS NOT NULL AND age(backend_xmin) > age(?1::text::xid))
                         OR (backend_xid IS NOT NULL AND age(backend_xid) > age(?1::text::xid)))",
                    args![now.as_str()],
                )?;
                if older.map_or(Ok(0), |r| r.i64(0))? == 0 {
                    return Ok(true);
                }
                if std::time::Instant::now() >= until {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn with<T>(
            &self,
            f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
        ) -> Result<T, StoreError> {
            let mut c = self.conn.try_borrow_mut().map_err(|_| {
                StoreError::Damaged("a query was started inside another on one connection".into())
            })?;
            let c = c
                .as_mut()
                .ok_or_else(|| StoreError::Damaged("the connection is closed".into()))?;
            f(c)
        }
    }

    impl Drop for Pg {
        /// The client closes its connection by blocking on a runtime of its own, which panics
        /// on a thread that already runs one (a worker of the async server, where a registry's
        /// last handle may be let go): it is closed on a thread of its own, waited for. Should
        /// no thread start, it is closed here.
        fn drop(&mut self) {
            if let Some(conn) = self.conn.get_mut().take() {
                std::thread::scope(|s| {
                    let _ = std::thread::Builder::new().spawn_scoped(s, move || drop(conn));
                });
            }
        }
    }

    /// Rows from which [`Sql::insert_many`] sends them by COPY rather than in INSERT statements.
    const COPIED_FROM: usize = 16;

    impl Pg {
        /// `rows` into `target` (`table (column, …)`, or a table alone for all its columns) by
        /// one COPY in PostgreSQL's binary format: no statement to parse and plan for each few
        /// hundred rows, as an INSERT of many rows needs. The columns' types, which the binary
        /// format must be written for, are those PostgreSQL gives a query of them.
        fn copy_rows(&self, target: &str, rows: &[Vec<Val<'_>>]) -> Result<(), StoreError> {
            use postgres::binary_copy::BinaryCopyInWriter;
            let (table, columns) = match target.split_once(" (") {
                Some((table, columns)) => (table, columns.trim_end_matches(')')),
                None => (target, "*"),
            };
            self.with(|c| {
                let types: Vec<Type> = c
                    .statement(&format!("SELECT {columns} FROM {table} LIMIT 0"))?
                    .columns()
                    .iter()
                    .map(|col| col.type_().clone())
                    .collect();
                let sink = c
                    .client
                    .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))?;
                let mut writer = BinaryCopyInWriter::new(sink, &types);
                for row in rows {
                    writer.write_raw(row.iter().map(|v| v as &(dyn ToSql + Sync)))?;
                }
                writer.finish()?;
                Ok(())
            })
        }
    }

    impl Conn {
        fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
            if let Some(s) = self.statements.get(sql) {
                return Ok(s.clone());
            }
            let s = self.client.prepare(&placeholders(sql))?;
            self.statements.insert(sql.to_string(), s.clone());
            Ok(s)
        }
    }

    impl Sql for Pg {
        fn backend(&self) -> Backend {
            Backend::Postgres
        }

        fn another(&self) -> Result<Option<Box<dyn Sql>>, StoreError> {
            Ok(Some(Box::new(reconnect(self)?)))
        }

        fn exec(&self, sql: &str, args: &[Val<'_>]) -> Result<usize, StoreError> {
            self.with(|c| {
                let st = c.statement(sql)?;
                let params: Vec<&(dyn ToSql + Sync)> =
                    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
                // RETURNING statements are run through `each`; here only the count matters.
                Ok(c.client.execute(&st, &params)? as usize)
            })
        }

        fn each(
            &self,
            sql: &str,
            args: &[Val<'_>],
            f: &mut dyn FnMut(Row) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            use postgres::fallible_iterator::FallibleIterator;
            self.with(|c| {
                let st = c.statement(sql)?;
                let mut rows = c.client.query_raw(&st, args.iter().copied())?;
                while let Some(row) = rows.next()? {
                    let cells = (0..row.len())
                        .map(|i| cell(&row, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    f(Row(cells))?;
                }
                Ok(())
            })
        }

        fn batch(&self, sql: &str) -> Result<(), StoreError> {
            self.with(|c| Ok(c.client.batch_execute(sql)?))
        }

        fn refresh_statistics(&self, tables: &[&str]) -> Result<(), StoreError> {
            // autovacuum's own rule, with its default settings: more than 50 rows and a tenth
            // of the table changed since the last ANALYZE. `n_mod_since_analyze` counts
            // every row of a table never analyzed; it holds what connections have reported,
            // each when idle and at most once a second, so the writes of the last second may
            // be counted only by the next call. ANALYZE takes a lock that lets writers on;
            // run by a role that does not own the table, PostgreSQL skips it with a warning
            // (no error): statistics only speed queries up.
            let names: Vec<String> = tables.iter().map(|t| (*t).to_string()).collect();
            let stale: Vec<String> = self.with(|c| {
                let rows = c.client.query(
                    "SELECT s.relname::text FROM pg_stat_user_tables s
                     WHERE s.schemaname = current_schema() AND s.relname = ANY($1)
                       AND s.n_mod_since_analyze > 50 + 0.1 * s.n_live_tup
                     ORDER BY 1",
                    &[&names],
                )?;
                rows.iter()
                    .map(|r| Ok(r.try_get(0)?))
                    .collect::<Result<_, StoreError>>()
            })?;
            let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
            self.analyze(&stale)
        }

        fn analyze(&self, tables: &[&str]) -> Result<(), StoreError> {
            for t in tables {
                self.batch(&format!("ANALYZE {}", ident(t)))?;
            }
            Ok(())
        }

        fn purge_plan(&self, tables: &[&str], deleted: Deleted) -> Result<Vec<String>, StoreError> {
            // The relations holding rows deleted in this transaction: the partitions of the
            // tables (or the tables themselves, unsplit) whose count of deleted rows this
            // transaction has raised. The count is this backend's, not yet reported, so it may
            // also name a relation an earlier transaction of this connection deleted from:
            // rewritten for nothing, never left out. Where counting is switched off
            // (`track_counts`), or for rows deleted by anyone ([`Deleted::Ever`]), every one.
            //
            // VACUUM skips, with a warning and no error, a table whose owner it is not run by
            // (nor a superuser, nor the database's owner): the erasure would seem done while
            // the keys stayed in the files. Only owners and superusers pass here; a role that
            // PostgreSQL 17's MAINTAIN privilege alone would let through is refused too.
            let names: Vec<String> = tables.iter().map(|t| (*t).to_string()).collect();
            let found = self.with(|c| {
                let rows = c.client.query(
                    "WITH RECURSIVE tree AS (
                         SELECT c.oid FROM pg_class c
                         WHERE c.relnamespace = current_schema()::regnamespace
                           AND c.relname = ANY($1)
                         UNION ALL
                         SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
                     )
                     SELECT c.relname::text, pg_get_userbyid(c.relowner)::text, current_user::text,
                            pg_has_role(current_user, c.relowner, 'MEMBER')
                                OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                     FROM tree JOIN pg_class c ON c.oid = tree.oid
                     WHERE c.relkind = 'r'
                       AND ($2 OR NOT current_setting('track_counts')::boolean
                            OR pg_stat_get_xact_tuples_deleted(c.oid) > 0)
                     ORDER BY 1",
                    &[&names, &(deleted == Deleted::Ever)],
                )?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                    .collect::<Result<Vec<(String, String, String, bool)>, StoreError>>()
            })?;
            let refused: Vec<&(String, String, String, bool)> =
                found.iter().filter(|(_, _, _, may)| !may).collect();
            if let Some((_, owner, user, _)) = refused.first() {
                let tables: Vec<&str> = refused.iter().map(|(t, _, _, _)| t.as_str()).collect();
                return Err(StoreError::Deployment(format!(
                    "refused, nothing changed: an erasure on PostgreSQL rewrites the key store's \
                     tables (VACUUM FULL) so that no copy of the destroyed keys stays in their \
                     files, which only their owner may do; {} belong to {owner}, not to {user}: \
                     erase as {owner}",
                    tables.join(", ")
                )));
            }
            Ok(found.into_iter().map(|(t, _, _, _)| t).collect())
        }

        fn purge_deleted(&self, plan: &[String], wait: Duration) -> Result<Purge, StoreError> {
            // PostgreSQL keeps a deleted row in its page, bytes and all, until the page is
            // written again: a plain VACUUM frees the space but leaves the last row of a page
            // where it lay (seen: a wrapped key found in the table's file after DELETE, VACUUM
            // and CHECKPOINT). Only a rewrite of the table leaves no copy in its files. Its cost
            // grows with what is rewritten: the key store's tables are split (its fourth
            // migration) so that it is the partitions that held his rows, not the whole store.
            // What PostgreSQL wrote to its WAL before stays there until it recycles the
            // segments (README, "Crypto-shredding").
            if plan.is_empty() {
                return Ok(Purge::Complete);
            }
            // A rewrite keeps the rows a transaction begun before the deletion may still see:
            // so first wait for every such transaction to end (seen: a test's erasure left the
            // key in the files while another test's transaction was open). One that outlasts
            // the wait keeps them in the rewritten files, which are rewritten all the same:
            // what no one can see any more goes.
            let alone = self.wait_for_older_snapshots(wait)?;
            let quoted: Vec<String> = plan
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect();
            // One statement, outside any transaction: VACUUM runs in no transaction block.
            self.batch(&format!("VACUUM FULL {}", quoted.join(", ")))?;
            Ok(if alone {
                Purge::Complete
            } else {
                Purge::HeldBack
            })
        }

        fn insert_many(
            &self,
            target: &str,
            width: usize,
            rows: &[Vec<Val<'_>>],
        ) -> Result<(), StoreError> {
            if rows.len() >= COPIED_FROM {
                return self.copy_rows(target, rows);
            }
            // At most 500 rows and well under PostgreSQL's 65,535 parameters per statement.
            let per = (60_000 / width.max(1)).clamp(1, 500);
            for chunk in rows.chunks(per) {
                let sql = insert_sql("INSERT INTO", target, width, chunk.len(), '$');
                let params: Vec<&(dyn ToSql + Sync)> = chunk
                    .iter()
                    .flatten()
                    .map(|a| a as &(dyn ToSql + Sync))
                    .collect();
                // Not cached: the statement's shape changes with the chunk's size.
                self.with(|c| Ok(c.client.execute(sql.as_str(), &params)?))?;
            }
            Ok(())
        }

        fn erasing(&self) -> Result<Erasing, StoreError> {
            // The two-key form: its keys are apart from the one-key form's, so this is never
            // the writers' lock (`begin_write`), and as much the registry's own.
            let (high, low) = ((self.lock >> 32) as i32, self.lock as i32);
            // Tried, not waited for in one statement: a statement waiting for a lock holds a
            // snapshot, and the erasure holding the lock waits for every older snapshot to end
            // before it rewrites the key store (`wait_for_older_snapshots`): each would wait
            // for the other until the purge gave up.
            let try_lock = format!("SELECT 1 WHERE pg_try_advisory_lock({high}, {low})");
            while self.one(&try_lock, &[])?.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(Erasing::Advisory(format!(
                "SELECT pg_advisory_unlock({high}, {low})"
            )))
        }

        fn begin_write(&self) -> Result<(), StoreError> {
            // One writer at a time per registry, whichever process it is in: the log is
            // appended in one strict order with no gaps and no forks.
            self.batch(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({})",
                self.lock
            ))
        }

        fn begin_read(&self) -> Result<(), StoreError> {
            self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        }
    }

    /// `name` as a quoted identifier: a schema may be named by a word SQL keeps for itself
    /// (`order`, `user`), which unquoted is a syntax error.
    pub(crate) fn ident(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// A schema name: 1 to 48 lower-case letters, digits and `_`, starting with a letter (its
    /// key store's, `SCHEMA_keys`, must fit in the 63 bytes PostgreSQL keeps of a name).
    pub(crate) fn check_schema(schema: &str) -> Result<(), StoreError> {
        let ok = (1..=48).contains(&schema.len())
            && schema.starts_with(|c: char| c.is_ascii_lowercase())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(StoreError::Io(format!(
                "{schema:?} is not a usable schema name: 1 to 48 lower-case letters, digits and _, the first a letter"
            )))
        }
    }

    /// Connects to `url`, with `schema` (created if `create`) first on the search path, and
    /// brings the schema up to date with `migrations`.
    pub(crate) fn open(
        url: &str,
        schema: &str,
        create: bool,
        migrations: &[&str],
    ) -> Result<Pg, StoreError> {
        check_schema(schema)?;
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
                &[&schema],
            )?
            .is_some();
        if !exists && !create {
            // The URL is not repeated: it may carry a password.
            return Err(StoreError::NoRegistry {
                place: format!("the PostgreSQL schema {schema}"),
                init: format!("asylon init --database URL --db-schema {schema}"),
            });
        }
        // The lock id: a hash of the schema name, so registries in one database do not wait
        // for each other.
        let lock = schema.bytes().fold(0x4153_594cu64, |h, b| {
            h.wrapping_mul(31).wrapping_add(b.into())
        }) as i64;
        let pg = Pg {
            conn: RefCell::new(Some(Conn {
                client,
                statements: HashMap::new(),
            })),
            lock,
            place: (zeroize::Zeroizing::new(url.to_string()), schema.to_string()),
        };
        let quoted = ident(schema);
        pg.batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; SET search_path TO {quoted}"
        ))?;
        migrate(&pg, migrations)?;
        Ok(pg)
    }

    /// A second connection to `pg`'s schema, which `pg` has made and brought up to date.
    fn reconnect(pg: &Pg) -> Result<Pg, StoreError> {
        let (url, schema) = &pg.place;
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        let again = Pg {
            conn: RefCell::new(Some(Conn {
                client,
                statements: HashMap::new(),
            })),
            lock: pg.lock,
            place: pg.place.clone(),
        };
        again.batch(&format!("SET search_path TO {}", ident(schema)))?;
        Ok(again)
    }

    fn migrate(pg: &Pg, migrations: &[&str]) -> Result<(), StoreError> {
        let tx = Tx::write(pg)?;
        pg.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let version = match pg.one("SELECT version FROM schema_version", &[])? {
            Some(r) => r.i64(0)?,
            None => {
                pg.exec("INSERT INTO schema_version (version) VALUES (0)", &[])?;
                0
            }
        };
        let known = migrations.len() as i64;
        if version > known {
            return Err(StoreError::Damaged(format!(
                "schema version {version} was written by a newer Asylon (this one knows {known})"
            )));
        }
        for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
            pg.batch(sql)?;
            pg.exec(
                "UPDATE schema_version SET version = ?1",
                args![i as i64 + 1],
            )?;
        }
        tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked_and_the_refusal_says_what_a_name_may_be() {
        let longest = "a".repeat(48);
        for ok in ["a", "order", "user", "reg_2", longest.as_str()] {
            assert!(pg::check_schema(ok).is_ok(), "{ok}");
        }
        let too_long = "a".repeat(49);
        for bad in ["", "Upper", "1abc", "a-b", "a b", "é", too_long.as_str()] {
            let e = pg::check_schema(bad).unwrap_err().to_string();
            assert!(
                e.contains("1 to 48") && e.contains("the first a letter"),
                "{bad}: {e}"
            );
        }
        assert_eq!(pg::ident("order"), "\"order\"");
        assert_eq!(pg::ident("a\"b"), "\"a\"\"b\"");
    }

    const BULK_TABLES: &str = "CREATE TABLE a (x INTEGER, y TEXT);
        CREATE TABLE b (x INTEGER, y TEXT);
        CREATE TABLE c (x INTEGER);
        CREATE TABLE d (x BIGINT, b BYTEA, n TEXT);
        CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT UNIQUE)";

    #[test]
    fn bulk_inserts_of_any_size_land_whole_in_their_own_table() {
        let db = sqlite::Lite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch(BULK_TABLES).unwrap();
        bulk_inserts_land_whole(&db);
    }

    #[test]
    fn a_bulk_insert_that_meets_a_duplicate_fails_and_its_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite::open(&dir.path().join("t.db"), true, &[BULK_TABLES]).unwrap();
        bulk_insert_meets_a_duplicate(&db);
    }

    /// Both on PostgreSQL, where an insert of many rows goes by COPY and one of a few by INSERT.
    #[test]
    fn on_postgres_bulk_inserts_land_whole_and_a_duplicate_fails_them_by_copy_or_insert() {
        let Some(mut admin) = crate::test_support::postgres_client() else {
            return;
        };
        let schema = format!("bulk_{}", std::process::id());
        let gone = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        admin.batch_execute(&gone).unwrap();
        let url = crate::test_support::postgres_url();
        let db = pg::open(&url, &schema, true, &[BULK_TABLES]).unwrap();
        bulk_inserts_land_whole(&db);
        bulk_insert_meets_a_duplicate(&db);
        drop(db);
        admin.batch_execute(&gone).unwrap();
    }

    /// Inserts of every size around a full statement and around the size from which
    /// PostgreSQL is sent rows by COPY, into tables of the same width and of another width in
    /// turn on one connection: each row lands once, in its own table, each value as it was
    /// (integers of 4 and 8 bytes, text, bytes, nulls).
    fn bulk_inserts_land_whole(db: &dyn Sql) {
        let sizes = [0i64, 1, 15, 16, 17, 49, 50, 51, 100, 123, 501];
        let (mut count, mut want) = (0i64, 0i64);
        for n in sizes {
            let rows = |table: &'static str| -> Vec<Vec<Val<'static>>> {
                (0..n).map(|i| args![i, table].to_vec()).collect()
            };
            db.insert_many("a (x, y)", 2, &rows("a")).unwrap();
            db.insert_many("b (x, y)", 2, &rows("b")).unwrap();
            let c: Vec<Vec<Val<'_>>> = (0..n).map(|i| args![i].to_vec()).collect();
            db.insert_many("c (x)", 1, &c).unwrap();
            let bytes: Vec<[u8; 2]> = (0..n).map(|i| [(i % 256) as u8, 0xff]).collect();
            let d: Vec<Vec<Val<'_>>> = bytes
                .iter()
                .zip(0..)
                .map(|(b, i)| vec![Val::I64(i << 40), Val::Blob(b), Val::Null])
                .collect();
            db.insert_many("d", 3, &d).unwrap();
            count += n;
            want += (0..n).sum::<i64>();
        }
        for (table, sql) in [
            ("a", "SELECT count(*), sum(x) FROM a WHERE y = 'a'"),
            ("b", "SELECT count(*), sum(x) FROM b WHERE y = 'b'"),
            ("c", "SELECT count(*), sum(x) FROM c"),
        ] {
            let row = db.one(sql, &[]).unwrap().unwrap();
            assert_eq!(
                (row.i64(0).unwrap(), row.i64(1).unwrap()),
                (count, want),
                "{table}"
            );
        }
        let all = db.one(
            "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b), 0",
            &[],
        );
        assert_eq!(all.unwrap().unwrap().i64(0).unwrap(), 2 * count);
        let mut seen = 0;
        db.each("SELECT x, b, n FROM d", &[], &mut |r| {
            let x = r.i64(0)?;
            let i = x >> 40;
            assert_eq!(x, i << 40);
            assert_eq!(r.blob(1)?, [(i % 256) as u8, 0xff]);
            assert_eq!(r.opt_text(2)?, None);
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, count);
    }

    /// A bulk insert that meets a duplicate key part way fails as a unique violation (which
    /// registration reports as an external id already taken), and its transaction, rolled back,
    /// leaves none of its rows, nor of the statements before it; so for a few rows and for many.
    fn bulk_insert_meets_a_duplicate(db: &dyn Sql) {
        db.insert_many("t (k, v)", 2, &[args![0, "taken"].to_vec()])
            .unwrap();
        for n in [10, 120] {
            let values: Vec<String> = (1..=n)
                .map(|k| {
                    if k == n - 3 {
                        "taken".into()
                    } else {
                        format!("v{k}")
                    }
                })
                .collect();
            let rows: Vec<Vec<Val<'_>>> = (1i64..)
                .zip(&values)
                .map(|(k, v)| args![k, v].to_vec())
                .collect();
            {
                let tx = Tx::write(db).unwrap();
                db.insert_many("t (k, v)", 2, &[args![500, "before"].to_vec()])
                    .unwrap();
                let err = db.insert_many("t (k, v)", 2, &rows).unwrap_err();
                assert!(is_unique_violation(&err), "{n}: {err:?}");
                drop(tx);
            }
            let row = db
                .one("SELECT count(*), max(k) FROM t", &[])
                .unwrap()
                .unwrap();
            assert_eq!((row.i64(0).unwrap(), row.i64(1).unwrap()), (1, 0), "{n}");
        }
    }

    #[test]
    fn a_new_database_has_large_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |db: &sqlite::Lite| {
            db.one("PRAGMA page_size", &[])
                .unwrap()
                .unwrap()
                .i64(0)
                .unwrap()
        };
        let new = sqlite::open(&dir.path().join("new.db"), true, &["CREATE TABLE t (x)"]).unwrap();
        assert_eq!(page_size(&new), 8192);

        // A database written with SQLite's default pages before this setting existed.
        let old_path = dir.path().join("old.db");
        let old = rusqlite::Connection::open(&old_path).unwrap();
        old.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 1")
            .unwrap();
        drop(old);
        let old = sqlite::open(&old_path, false, &["CREATE TABLE t (x)"]).unwrap();
        assert_eq!(page_size(&old), 4096);
        let row = old.one("SELECT x FROM t", &[]).unwrap().unwrap();
        assert_eq!(row.i64(0).unwrap(), 1);
    }
}
