//! What the test suites of several crates share: the PostgreSQL server they run against, and a
//! small disk to fill. Built for this crate's tests, and for the other crates' tests through the
//! `test-support` feature, which only their dev-dependencies turn on; never part of a build of
//! Asylon itself.

/// The PostgreSQL server the tests use: `ASYLON_TEST_DATABASE_URL`, or the machine's on
/// 127.0.0.1:5432, database `test`, as CI runs it.
pub fn postgres_url() -> String {
    std::env::var("ASYLON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// [`postgres_url`] with another database of the same server.
pub fn postgres_url_of(database: &str) -> String {
    let base = postgres_url();
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    format!("{server}/{database}")
}

/// A connection to [`postgres_url`], or `None` with a notice on standard error when it cannot
/// be reached, so that a test needing PostgreSQL is skipped on a machine without it. Under CI
/// (`CI=true`) such a test must fail rather than skip: there an unreachable server panics.
#[allow(clippy::panic)] // only tests call this; a panic is their failure
pub fn postgres_client() -> Option<postgres::Client> {
    let url = postgres_url();
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {url} is needed under CI and cannot be reached: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at {url} cannot be reached ({e})");
            None
        }
    }
}

/// A small file system (tmpfs) mounted on a directory for as long as it lives, to fill. `None`
/// where this process may not mount one (not root, a container without the capability):
/// outside CI the test needing it is skipped with a notice, under CI=true it fails.
pub struct SmallDisk(std::path::PathBuf);

// Only tests use it; a failed remount is their failure.
#[allow(clippy::panic)]
impl SmallDisk {
    pub fn mount(dir: &std::path::Path, size: &str) -> Option<Self> {
        Self::mount_with(dir, &format!("size={size}"))
    }

    /// With mount options besides the size (`size=4M,uid=…`).
    pub fn mount_with(dir: &std::path::Path, options: &str) -> Option<Self> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            panic!("cannot make {}: {e}", dir.display());
        }
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot mount a tmpfs (CI=true): run the tests as root"
            );
            eprintln!("skipped: cannot mount a tmpfs here (run as root to fill a disk)");
        }
        mounted.then(|| Self(dir.to_path_buf()))
    }

    /// Makes the file system read-only: as for root, nothing can be written on it.
    pub fn read_only(&self) {
        self.remount("remount,ro");
    }

    pub fn grow(&self, size: &str) {
        self.remount(&format!("remount,size={size}"));
    }

    fn remount(&self, options: &str) {
        let done = std::process::Command::new("mount")
            .args(["-o", options])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(done, "mount -o {options} {}", self.0.display());
    }

    /// Writes a file on it until the disk is full: every byte left is taken.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        };
        let block = vec![0u8; 64 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    /// Unmounted; or, where a file on it is still open (a test's server thread, which runs
    /// until the process ends), detached at once and freed when that file is closed.
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            std::process::Command::new("umount")
                .args(lazy.then_some("--lazy"))
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(false) {
            umount(true);
        }
    }
}

/// A PostgreSQL database whose tables are kept in a tablespace of their own, on a small disk,
/// dropped with it. The order matters to the server, which every other test shares: once a
/// tablespace's files are gone, its dirty buffers can never be written and every checkpoint
/// fails. So the disk is unmounted only after the database and tablespace are dropped, and
/// left mounted (a few megabytes of memory) if they cannot be.
pub struct PgOnDisk {
    name: String,
    admin: postgres::Client,
    disk: Option<SmallDisk>,
}

impl PgOnDisk {
    /// `None` outside CI where a disk cannot be mounted or the server cannot use it.
    pub fn create(size: &str) -> Option<Self> {
        let mut admin = postgres_client()?;
        Self::drop_stale(&mut admin);
        // The server's user must reach the mount point: not under a private temporary directory.
        let name = format!("asylon_full_{}", std::process::id());
        let path = std::path::PathBuf::from(format!("/tmp/{name}"));
        let disk = SmallDisk::mount_with(
            &path,
            &format!("size={size},uid=postgres,gid=postgres,mode=0700"),
        )?;
        let mut db = Self {
            name: name.clone(),
            admin,
            disk: Some(disk),
        };
        let made = db
            .admin
            .batch_execute(&format!(
                "CREATE TABLESPACE {name} LOCATION '{}'",
                path.display()
            ))
            .and_then(|()| db.admin.batch_execute(&format!("CREATE DATABASE {name}")))
            .and_then(|()| {
                db.admin.batch_execute(&format!(
                    "ALTER DATABASE {name} SET default_tablespace = {name}"
                ))
            });
        if let Err(e) = made {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot keep a database on a disk of this machine (CI=true): {e}"
            );
            eprintln!(
                "skipped: the PostgreSQL server cannot use {} ({e})",
                path.display()
            );
            return None;
        }
        Some(db)
    }

    /// Drops what a run killed before its end left, then unmounts its disk.
    fn drop_stale(admin: &mut postgres::Client) {
        let Ok(rows) = admin.query(
            "SELECT spcname::text, pg_tablespace_location(oid) FROM pg_tablespace \
             WHERE spcname LIKE 'asylon_full_%'",
            &[],
        ) else {
            return;
        };
        for row in rows {
            let (name, location): (String, String) = (row.get(0), row.get(1));
            // Named after the process that made it: one still running is using it.
            let pid = name.trim_start_matches("asylon_full_");
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if Self::drop_named(admin, &name) {
                let _ = std::process::Command::new("umount").arg(&location).status();
                let _ = std::fs::remove_dir(&location);
            }
        }
    }

    /// Whether the database and tablespace `name` are gone. One statement at a time: a
    /// database is not dropped inside a transaction, and several statements make one.
    fn drop_named(admin: &mut postgres::Client, name: &str) -> bool {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .and_then(|()| admin.batch_execute(&format!("DROP TABLESPACE IF EXISTS {name}")))
            .is_ok()
    }

    pub fn url(&self) -> String {
        postgres_url_of(&self.name)
    }

    /// Fills its disk ([`SmallDisk::fill`]): the filler's path.
    pub fn fill(&self) -> Option<std::path::PathBuf> {
        self.disk.as_ref().map(SmallDisk::fill)
    }

    pub fn grow(&self, size: &str) {
        if let Some(disk) = &self.disk {
            disk.grow(size);
        }
    }
}

impl Drop for PgOnDisk {
    fn drop(&mut self) {
        if Self::drop_named(&mut self.admin, &self.name) {
            if let Some(disk) = self.disk.take() {
                drop(disk);
                let _ = std::fs::remove_dir(format!("/tmp/{}", self.name));
            }
        } else {
            eprintln!(
                "{} could not be dropped: its disk stays mounted, for the next run to drop",
                self.name
            );
            std::mem::forget(self.disk.take());
        }
    }
}
