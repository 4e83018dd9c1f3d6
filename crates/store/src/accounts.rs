//! Organisations, users, sessions, API tokens and the sign-in back-off.
//!
//! The rows hold no secret in the clear: passwords as Argon2id hashes, TOTP seeds sealed under a
//! key derived from the KEK, each member's copy of his organisation's private key wrapped under a
//! key derived from his password, session and token secrets as SHA-256 hashes. Changes to an
//! organisation or to a user's standing are `account.*` events in the same transaction.

use crate::StoreError;
use crate::db::{Row, Sql, Tx, args};
use crate::registry::{NewEvent, Registry, new_id};
use asylon_core::Actor;
use asylon_core::law::Role;
use time::OffsetDateTime;

pub mod kind {
    pub const ORG_CREATED: &str = "account.org_created";
    pub const USER_CREATED: &str = "account.user_created";
    pub const ROLES_CHANGED: &str = "account.roles_changed";
    pub const USER_DISABLED: &str = "account.user_disabled";
    pub const USER_ENABLED: &str = "account.user_enabled";
    pub const PASSWORD_CHANGED: &str = "account.password_changed";
}

#[derive(Clone, Debug)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub public_key: [u8; 32],
}

/// A user as stored. `password`, `totp_sealed` and `org_key_wrapped` are hashes or ciphertext.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub org: String,
    pub roles: Vec<Role>,
    pub password: String,
    pub totp_sealed: Vec<u8>,
    pub totp_last_step: u64,
    pub member_salt: [u8; 16],
    pub org_key_wrapped: Vec<u8>,
    pub disabled: bool,
}

/// A changed password: its hash, and the org key re-wrapped under the new member key.
pub struct NewPassword<'a> {
    pub phc: &'a str,
    pub member_salt: &'a [u8; 16],
    pub org_key_wrapped: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub created: i64,
    pub last_seen: i64,
    /// The organisation key wrapped under the session cookie's secret, if it was unlocked.
    pub org_key: Option<Vec<u8>>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Token {
    pub id: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    pub user: String,
    pub scope: String,
    pub label: String,
    pub created: i64,
    pub expires: i64,
    pub revoked: Option<i64>,
}

const USER_COLUMNS: &str = "name, org, roles, password, totp_sealed, totp_last_step, member_salt, org_key_wrapped, disabled";

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    let name = r.text(0)?;
    let damaged = |what: &str| StoreError::Damaged(format!("user {name}: {what}"));
    let roles = serde_json::from_str(&r.text(2)?).map_err(|_| damaged("unreadable roles"))?;
    let member_salt =
        <[u8; 16]>::try_from(r.blob(6)?.as_slice()).map_err(|_| damaged("bad member salt"))?;
    Ok(User {
        org: r.text(1)?,
        roles,
        password: r.text(3)?,
        totp_sealed: r.blob(4)?,
        totp_last_step: r.i64(5)?.max(0) as u64,
        member_salt,
        org_key_wrapped: r.blob(7)?,
        disabled: r.i64(8)? != 0,
        name,
    })
}

fn account_event(kind: &str, public: serde_json::Value) -> NewEvent {
    NewEvent {
        id: new_id(),
        person: None,
        kind: kind.into(),
        public: public.to_string(),
        sealed: vec![],
        registered: None,
    }
}

/// Seconds after a key's last failed sign-in when the back-off forgets its failures (a day).
pub const THROTTLE_FORGETS: i64 = 24 * 3600;

/// The user `name` as `conn` reads him (inside a caller's transaction, or not).
fn user_on(conn: &dyn Sql, name: &str) -> Result<Option<User>, StoreError> {
    conn.one(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
        args![name],
    )?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

/// [`user_on`], an unknown name refused.
fn standing(tx: &dyn Sql, name: &str) -> Result<User, StoreError> {
    user_on(tx, name)?.ok_or_else(|| StoreError::UnknownUser(name.into()))
}

/// Refuses a change that leaves `org` with no enabled administrator, after which nobody could
/// manage its users (add, enable, give roles) short of the deployment's operator. An
/// administrator cannot take his own role away or disable himself (the server refuses that
/// first, with its own words); this is checked in the change's own write transaction, after
/// the change, so that two administrators doing it to each other at once, through two handles
/// or processes, cannot both succeed.
fn keeps_an_administrator(tx: &dyn Sql, org: &str) -> Result<(), StoreError> {
    let enabled = tx.all(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE org = ?1 AND disabled = 0"),
        args![org],
    )?;
    for row in &enabled {
        if user_from_row(row)?.roles.contains(&Role::Admin) {
            return Ok(());
        }
    }
    Err(StoreError::Conflict(format!(
        "that would leave {org} with no enabled administrator to manage its users; nothing was \
         changed"
    )))
}

impl User {
    fn is_admin(&self) -> bool {
        !self.disabled && self.roles.contains(&Role::Admin)
    }
}

fn token_from_row(r: &Row) -> Result<Token, StoreError> {
    Ok(Token {
        id: r.text(0)?,
        hash: r.blob(1)?,
        user: r.text(2)?,
        scope: r.text(3)?,
        label: r.text(4)?,
        created: r.i64(5)?,
        expires: r.i64(6)?,
        revoked: r.opt_i64(7)?,
    })
}

impl Registry {
    pub fn create_org(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        org: &Org,
    ) -> Result<(), StoreError> {
        let at = crate::rfc3339(now);
        self.write(actor, now, |tx, _| {
            let n = tx.exec(
                "INSERT INTO orgs (id, name, public_key, created) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                args![&org.id, &org.name, &org.public_key[..], &at],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "organisation {} already exists",
                    org.id
                )));
            }
            Ok(vec![account_event(
                kind::ORG_CREATED,
                serde_json::json!({"org": org.id, "name": org.name, "public_key": hex::encode(org.public_key)}),
            )])
        })?;
        Ok(())
    }

    pub fn create_user(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        u: &User,
    ) -> Result<(), StoreError> {
        let at = crate::rfc3339(now);
        let roles =
            serde_json::to_string(&u.roles).map_err(|e| StoreError::Damaged(e.to_string()))?;
        self.write(actor, now, |tx, _| {
            let n = tx.exec(
                &format!("INSERT INTO users ({USER_COLUMNS}, created) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, 0, ?8) ON CONFLICT DO NOTHING"),
                args![&u.name, &u.org, &roles, &u.password, &u.totp_sealed, &u.member_salt[..], &u.org_key_wrapped, &at],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("user name {} is taken", u.name)));
            }
            Ok(vec![account_event(
                kind::USER_CREATED,
                serde_json::json!({"user": u.name, "org": u.org, "roles": u.roles}),
            )])
        })?;
        Ok(())
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        user_on(&*self.conn, name)
    }

    pub fn users(&self, org: &str) -> Result<Vec<User>, StoreError> {
        self.conn
            .all(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE org = ?1 ORDER BY name"),
                args![org],
            )?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// Changes a user's roles; his sessions end so the change takes effect at once.
    pub fn set_roles(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        name: &str,
        roles: &[Role],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(roles).map_err(|e| StoreError::Damaged(e.to_string()))?;
        self.write(actor, now, |tx, _| {
            let before = standing(tx, name)?;
            tx.exec(
                "UPDATE users SET roles = ?2 WHERE name = ?1",
                args![name, &json],
            )?;
            if before.is_admin() && !roles.contains(&Role::Admin) {
                keeps_an_administrator(tx, &before.org)?;
            }
            tx.exec("DELETE FROM sessions WHERE username = ?1", args![name])?;
            Ok(vec![account_event(
                kind::ROLES_CHANGED,
                serde_json::json!({"user": name, "roles": roles}),
            )])
        })?;
        Ok(())
    }

    /// Disables (or enables) a user; disabling ends his sessions and revokes his tokens.
    pub fn set_disabled(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        name: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let ts = now.unix_timestamp();
        self.write(actor, now, |tx, _| {
            let before = standing(tx, name)?;
            tx.exec(
                "UPDATE users SET disabled = ?2 WHERE name = ?1",
                args![name, disabled as i64],
            )?;
            if disabled && before.is_admin() {
                keeps_an_administrator(tx, &before.org)?;
            }
            if disabled {
                tx.exec("DELETE FROM sessions WHERE username = ?1", args![name])?;
                tx.exec(
                    "UPDATE api_tokens SET revoked = ?2 WHERE username = ?1 AND revoked IS NULL",
                    args![name, ts],
                )?;
            }
            let k = if disabled {
                kind::USER_DISABLED
            } else {
                kind::USER_ENABLED
            };
            Ok(vec![account_event(k, serde_json::json!({"user": name}))])
        })?;
        Ok(())
    }

    /// Stores a new password hash and the org key re-wrapped under the new member key in place
    /// of the password hash `replaces` (the one the old password was checked against); every
    /// session of the user but `keep` ends. If his password is no longer `replaces` (another
    /// change came first while this one's keys were being derived), nothing changes: the
    /// check and the change are one write, so of two changes at once only one is made.
    pub fn set_password(
        &mut self,
        actor: &Actor,
        now: OffsetDateTime,
        name: &str,
        replaces: &str,
        new: &NewPassword<'_>,
        keep: Option<&[u8; 32]>,
    ) -> Result<(), StoreError> {
        self.write(actor, now, |tx, _| {
            if tx.exec(
                "UPDATE users SET password = ?2, member_salt = ?3, org_key_wrapped = ?4 WHERE name = ?1 AND password = ?5",
                args![name, new.phc, &new.member_salt[..], new.org_key_wrapped, replaces],
            )? == 0
            {
                return Err(
                    match tx.one("SELECT 1 FROM users WHERE name = ?1", args![name])? {
                        Some(_) => StoreError::Conflict(
                            "the password was changed by another request meanwhile; nothing \
                             was changed"
                                .into(),
                        ),
                        None => StoreError::UnknownUser(name.into()),
                    },
                );
            }
            match keep {
                Some(k) => tx.exec(
                    "DELETE FROM sessions WHERE username = ?1 AND token_hash <> ?2",
                    args![name, &k[..]],
                )?,
                None => tx.exec("DELETE FROM sessions WHERE username = ?1", args![name])?,
            };
            Ok(vec![account_event(
                kind::PASSWORD_CHANGED,
                serde_json::json!({"user": name}),
            )])
        })?;
        Ok(())
    }

    /// Records that a TOTP time step was used; false if it (or a later one) already was, so a
    /// code cannot be replayed.
    pub fn use_totp_step(&self, name: &str, step: u64) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "UPDATE users SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2",
            args![name, step as i64],
        )?;
        Ok(n == 1)
    }

    /// Opens a session for `user`, signed in with the password of the hash `password`, unless
    /// that is no longer his password or his account was disabled meanwhile (false, and no
    /// session). In one write transaction, which a change of password or a disabling waits
    /// for or goes before: a session opened with the old password never outlives the change
    /// that ends every other session.
    pub fn create_session(
        &self,
        hash: &[u8; 32],
        user: &str,
        password: &str,
        csrf: &str,
        now: i64,
        org_key: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let tx = Tx::write(&*self.conn)?;
        let current = self.conn.one(
            "SELECT 1 FROM users WHERE name = ?1 AND password = ?2 AND disabled = 0",
            args![user, password],
        )?;
        if current.is_none() {
            return Ok(false);
        }
        self.conn.exec(
            "INSERT INTO sessions (token_hash, username, csrf, created, last_seen, org_key) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            args![&hash[..], user, csrf, now, org_key],
        )?;
        tx.commit()?;
        Ok(true)
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        self.conn
            .one(
                "SELECT username, csrf, created, last_seen, org_key FROM sessions WHERE token_hash = ?1",
                args![&hash[..]],
            )?
            .map(|r| {
                Ok(Session {
                    user: r.text(0)?,
                    csrf: r.text(1)?,
                    created: r.i64(2)?,
                    last_seen: r.i64(3)?,
                    org_key: r.opt_blob(4)?,
                })
            })
            .transpose()
    }

    pub fn touch_session(&self, hash: &[u8; 32], now: i64) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
            args![&hash[..], now],
        )?;
        Ok(())
    }

    pub fn end_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.conn.exec(
            "DELETE FROM sessions WHERE token_hash = ?1",
            args![&hash[..]],
        )?;
        Ok(())
    }

    pub fn create_token(&self, t: &Token) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO api_tokens (id, hash, username, scope, label, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![&t.id, &t.hash, &t.user, &t.scope, &t.label, t.created, t.expires],
        )?;
        Ok(())
    }

    fn token_rows(&self, filter: &str, arg: &str) -> Result<Vec<Token>, StoreError> {
        self.conn
            .all(
                &format!(
                    "SELECT id, hash, username, scope, label, created, expires, revoked FROM api_tokens WHERE {filter} = ?1 ORDER BY created, id"
                ),
                args![arg],
            )?
            .iter()
            .map(token_from_row)
            .collect()
    }

    pub fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        Ok(self.token_rows("id", id)?.into_iter().next())
    }

    pub fn tokens(&self, user: &str) -> Result<Vec<Token>, StoreError> {
        self.token_rows("username", user)
    }

    /// Revokes one of `user`'s tokens; false if he has no such live token.
    pub fn revoke_token(&self, user: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "UPDATE api_tokens SET revoked = ?3 WHERE id = ?1 AND username = ?2 AND revoked IS NULL",
            args![id, user, now],
        )?;
        Ok(n == 1)
    }

    /// Seconds until `key` may try to sign in again (0: now).
    fn throttle_wait(&self, key: &str, now: i64) -> Result<i64, StoreError> {
        let until = self
            .conn
            .one(
                "SELECT locked_until FROM login_throttle WHERE key = ?1",
                args![key],
            )?
            .map(|r| r.i64(0))
            .transpose()?;
        Ok(until.map_or(0, |u| (u - now).max(0)))
    }

    /// Counts a failed sign-in for `key`. Once `free` failures are reached each one locks the
    /// key, for 5 seconds at first and twice as long at each further failure, up to an hour.
    fn throttle_fail(&self, key: &str, now: i64, free: u32) -> Result<(), StoreError> {
        let failures = self
            .conn
            .one(
                "INSERT INTO login_throttle (key, failures, locked_until, last_failed) VALUES (?1, 1, 0, ?2)
                 ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures + 1, last_failed = ?2
                 RETURNING failures",
                args![key, now],
            )?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(1);
        let over = failures - i64::from(free);
        if over >= 0 {
            let wait = (5i64 << over.min(10)).min(3600);
            self.conn.exec(
                "UPDATE login_throttle SET locked_until = ?2 WHERE key = ?1",
                args![key, now + wait],
            )?;
        }
        Ok(())
    }

    /// Lets a sign-in attempt through the back-off of `keys` (each with its free failures), or
    /// tells how long it must wait. In one write transaction, one at a time across connections
    /// and processes: if none of `keys` is locked at `now`, each is counted a failure in
    /// advance (taken back by [`Registry::throttle_refund`] if the attempt succeeds) and 0 is
    /// answered; otherwise the longest wait, and nothing is counted.
    ///
    /// Failures are forgotten [`THROTTLE_FORGETS`] seconds after a key's last one (once any
    /// lock has run out): their rows are deleted here, every key's at once, so that the table
    /// holds a day of failures at most, however many addresses and names they came from.
    pub fn throttle_admit(&self, keys: &[(&str, u32)], now: i64) -> Result<i64, StoreError> {
        let tx = Tx::write(&*self.conn)?;
        self.conn.exec(
            "DELETE FROM login_throttle WHERE last_failed < ?1 AND locked_until <= ?2",
            args![now - THROTTLE_FORGETS, now],
        )?;
        let mut wait = 0;
        for (key, _) in keys {
            wait = wait.max(self.throttle_wait(key, now)?);
        }
        if wait == 0 {
            for (key, free) in keys {
                self.throttle_fail(key, now, *free)?;
            }
        }
        tx.commit()?;
        Ok(wait)
    }

    /// Takes back one failure counted for `key` in advance, by an attempt that then succeeded.
    /// If what is left is under `free`, the failures that are left set no lock, so any lock is
    /// the one the advance set, and it goes too.
    pub fn throttle_refund(&self, key: &str, free: u32) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE login_throttle SET failures = failures - 1,
                 locked_until = CASE WHEN failures - 1 < ?2 THEN 0 ELSE locked_until END
             WHERE key = ?1 AND failures > 0",
            args![key, i64::from(free)],
        )?;
        Ok(())
    }

    pub fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .exec("DELETE FROM login_throttle WHERE key = ?1", args![key])?;
        Ok(())
    }

    /// The key that seals account secrets the server must read back (TOTP seeds).
    pub fn account_key(&self) -> asylon_vault::AccountKey {
        self.keys.kek.account_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySource;

    /// A registry with one organisation and one user of it, whose password hash is `phc-a`.
    fn with_user(dir: &std::path::Path) -> (Registry, Actor, OffsetDateTime) {
        let actor = Actor {
            user: "setup".into(),
            org: "deployment".into(),
        };
        let now = OffsetDateTime::now_utc();
        let key = KeySource::File(dir.join("k"));
        let mut reg =
            Registry::init_in(&dir.join("r"), &crate::Database::Sqlite, &key, &actor, now).unwrap();
        let org = Org {
            id: "neutral".into(),
            name: "the agency".into(),
            public_key: [7; 32],
        };
        reg.create_org(&actor, now, &org).unwrap();
        let user = User {
            name: "ana".into(),
            org: "neutral".into(),
            roles: vec![],
            password: "phc-a".into(),
            totp_sealed: vec![1],
            totp_last_step: 0,
            member_salt: [2; 16],
            org_key_wrapped: vec![3],
            disabled: false,
        };
        reg.create_user(&actor, now, &user).unwrap();
        (reg, actor, now)
    }

    #[test]
    fn an_organisation_keeps_an_enabled_administrator() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = with_user(dir.path());
        let ana = reg.user("ana").unwrap().unwrap();
        for name in ["bo", "cy"] {
            let u = User {
                name: name.into(),
                roles: vec![Role::Admin],
                ..ana.clone()
            };
            reg.create_user(&actor, now, &u).unwrap();
        }
        let refused = |e: StoreError| {
            assert!(
                matches!(&e, StoreError::Conflict(m) if m.contains("no enabled administrator")),
                "{e}"
            );
        };
        let roles = |reg: &Registry, name: &str| reg.user(name).unwrap().unwrap().roles;
        // One of two may go, as long as the other stays.
        reg.set_roles(&actor, now, "bo", &[Role::Registrar])
            .unwrap();
        let size = reg.checkpoint(now).unwrap().size;
        refused(
            reg.set_roles(&actor, now, "cy", &[Role::Registrar])
                .unwrap_err(),
        );
        refused(reg.set_disabled(&actor, now, "cy", true).unwrap_err());
        assert_eq!(roles(&reg, "cy"), [Role::Admin]);
        assert!(!reg.user("cy").unwrap().unwrap().disabled);
        assert_eq!(reg.checkpoint(now).unwrap().size, size, "nothing recorded");
        // What leaves the administrators as they are is not held up.
        reg.set_roles(&actor, now, "cy", &[Role::Admin, Role::Legal])
            .unwrap();
        reg.set_disabled(&actor, now, "ana", true).unwrap();
        // A disabled administrator is none: with bo an administrator again but disabled, cy
        // is still the last one; enabled, bo lets cy go.
        reg.set_roles(&actor, now, "bo", &[Role::Admin]).unwrap();
        reg.set_disabled(&actor, now, "bo", true).unwrap();
        refused(reg.set_roles(&actor, now, "cy", &[]).unwrap_err());
        reg.set_disabled(&actor, now, "bo", false).unwrap();
        reg.set_roles(&actor, now, "cy", &[]).unwrap();
        let e = reg.set_roles(&actor, now, "dee", &[]).unwrap_err();
        assert!(matches!(e, StoreError::UnknownUser(_)), "{e}");
    }

    #[test]
    fn the_back_off_forgets_failures_a_day_after_the_last_and_keeps_no_row_longer() {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _, _) = with_user(dir.path());
        let rows = |reg: &Registry| -> Vec<(String, i64)> {
            reg.conn
                .all("SELECT key, failures FROM login_throttle ORDER BY key", &[])
                .unwrap()
                .iter()
                .map(|r| (r.text(0).unwrap(), r.i64(1).unwrap()))
                .collect()
        };
        let (t0, day) = (1_800_000_000, THROTTLE_FORGETS);
        let admit = |key: &str, at: i64| reg.throttle_admit(&[(key, 3)], at).unwrap();
        // Three free failures, then the next attempt waits.
        for i in 0..3 {
            assert_eq!(admit("account:ana", t0 + i), 0);
        }
        assert!(admit("account:ana", t0 + 3) > 0);
        assert_eq!(admit("address:a", t0 + 10), 0);
        // Up to a day after his last failure they still count: a fourth locks him again.
        let v = t0 + 2 + day;
        assert_eq!(admit("account:ana", v), 0);
        assert_eq!(
            rows(&reg),
            [("account:ana".into(), 4), ("address:a".into(), 1)]
        );
        assert!(admit("account:ana", v + 1) > 0);
        // The day runs from his last failure, not his first.
        assert_eq!(admit("address:z", v + day - 1), 0);
        assert!(rows(&reg).contains(&("account:ana".into(), 4)));
        // More than a day after a key's last failure its row goes, whichever key is asked
        // about, and it starts again from nothing.
        let t = v + day + 1;
        assert_eq!(admit("address:b", t), 0);
        assert_eq!(
            rows(&reg),
            [("address:b".into(), 1), ("address:z".into(), 1)]
        );
        assert_eq!(admit("account:ana", t + 1), 0);
        assert_eq!(
            rows(&reg)[..2],
            [("account:ana".into(), 1), ("address:b".into(), 1)]
        );
        // A lock still running stays, however long ago the failure (a row from before failures
        // were dated).
        reg.conn
            .exec(
                "UPDATE login_throttle SET last_failed = 0, locked_until = ?1 WHERE key = 'address:b'",
                args![t + 100],
            )
            .unwrap();
        assert!(admit("address:b", t + 50) > 0);
        assert_eq!(admit("address:b", t + 100), 0);
        assert_eq!(
            rows(&reg)[..2],
            [("account:ana".into(), 1), ("address:b".into(), 1)]
        );
    }

    fn sessions(reg: &Registry) -> i64 {
        reg.conn
            .one("SELECT count(*) FROM sessions", &[])
            .unwrap()
            .unwrap()
            .i64(0)
            .unwrap()
    }

    #[test]
    fn a_session_opens_only_with_the_password_he_has_now_and_while_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = with_user(dir.path());
        let open = |reg: &Registry, phc: &str, n: u8| {
            reg.create_session(&[n; 32], "ana", phc, "csrf", 0, None)
                .unwrap()
        };
        assert!(!open(&reg, "phc-b", 1), "checked with another password");
        assert_eq!(sessions(&reg), 0);
        assert!(open(&reg, "phc-a", 2));
        assert_eq!(sessions(&reg), 1);
        reg.set_disabled(&actor, now, "ana", true).unwrap();
        let before = sessions(&reg);
        assert!(!open(&reg, "phc-a", 4), "disabled meanwhile");
        assert_eq!(sessions(&reg), before);
    }

    #[test]
    fn a_password_is_changed_only_from_the_one_he_has_now() {
        let dir = tempfile::tempdir().unwrap();
        let (mut reg, actor, now) = with_user(dir.path());
        let new = |phc| NewPassword {
            phc,
            member_salt: &[9; 16],
            org_key_wrapped: &[9],
        };
        let size = reg.checkpoint(now).unwrap().size;
        let e = reg
            .set_password(&actor, now, "ana", "phc-z", &new("phc-b"), None)
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Conflict(m) if m.contains("changed by another request")),
            "{e}"
        );
        assert_eq!(reg.user("ana").unwrap().unwrap().password, "phc-a");
        assert_eq!(reg.checkpoint(now).unwrap().size, size, "nothing recorded");
        reg.set_password(&actor, now, "ana", "phc-a", &new("phc-b"), None)
            .unwrap();
        let ana = reg.user("ana").unwrap().unwrap();
        assert_eq!((ana.password.as_str(), ana.member_salt), ("phc-b", [9; 16]));
        let e = reg
            .set_password(&actor, now, "bob", "phc-a", &new("phc-c"), None)
            .unwrap_err();
        assert!(matches!(e, StoreError::UnknownUser(_)), "{e}");
    }
}
