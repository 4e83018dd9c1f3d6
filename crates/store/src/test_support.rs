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
