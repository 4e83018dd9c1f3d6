//! What the test suites of several crates share: the PostgreSQL server they run against. Built
//! for this crate's tests, and for the other crates' tests through the `test-support` feature,
//! which only their dev-dependencies turn on; never part of a build of Asylon itself.

/// The PostgreSQL server the tests use: `ASYLON_TEST_DATABASE_URL`, or the machine's on
/// 127.0.0.1:5432, database `test`, as CI runs it.
pub fn postgres_url() -> String {
    std::env::var("ASYLON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
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
