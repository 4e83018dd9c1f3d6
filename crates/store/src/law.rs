//! The law commands on the registry: the world is loaded from the events inside the write
//! transaction, the core decides, and the facts are sealed and appended, or the refusal rolls
//! the transaction back with nothing written.
//!
//! Loading the world opens `statements` and `medical` payloads for the guards (a wish and a fear
//! decide G1 and G2). These are reads by the registry itself to apply the law, not disclosures to
//! a person, so they are not recorded as access events; what a person is shown is the derived
//! wish status, never the statements.

use crate::StoreError;
use crate::db::{Sql, args};
use crate::keystore::KeyStore;
use crate::registry::{NewEvent, Registry, each_law_event, new_id};
use asylon_core::law::{
    Case, Command, Deadline, Fact, FactBody, Principal, Settings, WishStatus, World, deadlines,
    decide,
};
use asylon_core::{Class, CoreParticulars, Event, SealedPart, kind};
use asylon_vault::{DataKey, key_label, seal_aad};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;

const SETTINGS_FILE: &str = "settings.toml";

/// The settings file `init` writes: every setting with its default and what it means.
pub fn default_settings_text() -> String {
    let d = Settings::default();
    format!(
        "# Asylon deployment settings. Every line may be removed to use the default shown.\n\
         # G2: interviews stating the same third state for a verified wish\n\
         interviews_needed = {}\n\
         # G2: days between the first and the last of those interviews\n\
         interview_span_days = {}\n\
         # G4: days within which the neutral agency reconfirms before the hand-over\n\
         reconfirm_within_days = {}\n\
         # G8: days for the Art 122 notification after registration and each reportable change\n\
         notification_days = {}\n\
         # G8: days for the Art 70 capture card after arrival at a camp or hospital\n\
         capture_card_days = {}\n\
         # G8: days between health updates of the seriously wounded\n\
         health_update_days = {}\n\
         # G8: months to carry out a commission's decision to repatriate (Art 110)\n\
         commission_months = {}\n\
         # statistics suppress cells smaller than this\n\
         k_anonymity = {}\n",
        d.interviews_needed,
        d.interview_span_days,
        d.reconfirm_within_days,
        d.notification_days,
        d.capture_card_days,
        d.health_update_days,
        d.commission_months,
        d.k_anonymity
    )
}

/// Reads `DIR/settings.toml`; a missing file means the defaults, a bad one is an error.
pub fn load_settings(dir: &Path) -> Result<Settings, StoreError> {
    let path = dir.join(SETTINGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => {
            return Err(StoreError::io(
                &format!("cannot read {}", path.display()),
                e,
            ));
        }
    };
    let s: Settings = toml::from_str(&text)
        .map_err(|e| StoreError::Settings(format!("{}: {e}", path.display())))?;
    s.validate()
        .map_err(|e| StoreError::Settings(format!("{}: {e}", path.display())))?;
    Ok(s)
}

pub(crate) fn write_default_settings(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(SETTINGS_FILE);
    if path.exists() {
        return Ok(());
    }
    std::fs::write(&path, default_settings_text())
        .map_err(|e| StoreError::io(&format!("cannot write {}", path.display()), e))
}

/// What `person status` shows: the derived state, never what he said.
#[derive(Debug, Serialize)]
pub struct CaseStatus {
    #[serde(flatten)]
    pub case: Case,
    pub wish_status: WishStatus,
    /// Why G1 keeps him from the power of origin, if it does.
    pub protected_from_return: Option<String>,
    pub deadlines: Vec<Deadline>,
}

impl CaseStatus {
    /// What the law says of `c` on `now`.
    pub(crate) fn of(c: Case, s: &Settings, now: OffsetDateTime) -> Self {
        CaseStatus {
            wish_status: c.wish_status(s),
            protected_from_return: c.protected_from_return(s),
            deadlines: deadlines(&c, s, now),
            case: c,
        }
    }
}

fn parse_time(seq: u64, at: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).map_err(|_| {
        StoreError::Tampered {
            seq,
            reason: format!("unreadable time {at:?}"),
        }
    })
}

/// Opens the sealed parts of law facts, caching each person's data keys while loading.
struct Opener<'a> {
    store: &'a KeyStore,
    keys: HashMap<(String, Class), Option<DataKey>>,
}

impl Opener<'_> {
    fn open<T: serde::de::DeserializeOwned>(
        &mut self,
        case: &str,
        ev: &Event,
        class: Class,
    ) -> Result<Option<T>, StoreError> {
        let Some(part) = ev.sealed.iter().find(|p| p.class == class) else {
            return Ok(None);
        };
        let entry = (case.to_string(), class);
        if !self.keys.contains_key(&entry) {
            let key = data_key(self.store, case, class)?;
            self.keys.insert(entry.clone(), key);
        }
        let Some(Some(dk)) = self.keys.get(&entry) else {
            return Ok(None); // erased: the statement can no longer be read
        };
        let plain = dk.open(&seal_aad(case, class.as_str(), &ev.id), &part.ciphertext)?;
        serde_json::from_slice(&plain).map(Some).map_err(|e| {
            StoreError::Damaged(format!("event {}: sealed {}: {e}", ev.seq, class.as_str()))
        })
    }
}

pub(crate) fn data_key(
    store: &KeyStore,
    case: &str,
    class: Class,
) -> Result<Option<DataKey>, StoreError> {
    let (conn, kek) = (&store.conn, &store.kek);
    // The column name comes from the fixed set of class names, never from input.
    let wrapped = match conn.one(
        &format!("SELECT {} FROM data_keys WHERE person = ?1", class.as_str()),
        args![case],
    )? {
        Some(r) => r.opt_blob(0)?,
        None => None,
    };
    wrapped
        .map(|w| kek.unwrap_key(&key_label(case, class.as_str()), &w))
        .transpose()
        .map_err(StoreError::from)
}

/// The person's data key for `class`, made and stored on first use.
pub(crate) fn data_key_for_write(
    store: &KeyStore,
    case: &str,
    class: Class,
) -> Result<DataKey, StoreError> {
    let (conn, kek) = (&store.conn, &store.kek);
    let exists = conn
        .one("SELECT 1 FROM data_keys WHERE person = ?1", args![case])?
        .is_some();
    if !exists {
        return Err(StoreError::Erased {
            case: case.to_string(),
        });
    }
    if let Some(k) = data_key(store, case, class)? {
        return Ok(k);
    }
    let dk = DataKey::generate();
    let wrapped = kek.wrap(&key_label(case, class.as_str()), &dk);
    conn.exec(
        &format!(
            "UPDATE data_keys SET {} = ?2 WHERE person = ?1",
            class.as_str()
        ),
        args![case, &wrapped],
    )?;
    Ok(dk)
}

/// Builds the world from the events: about one person (and the shared reference data and
/// exchange lists), or about everyone.
pub(crate) fn load_world(
    conn: &dyn Sql,
    store: &KeyStore,
    person: Option<&str>,
) -> Result<World, StoreError> {
    load_world_of(conn, store, person.as_ref().map(std::slice::from_ref))
}

/// [`load_world`] about several persons at once, in one reading of the log: what it holds of
/// each is what `load_world` of him alone holds, since a law record is about one captive or
/// about no one (places, exchange lists), and those about no one are read either way.
pub(crate) fn load_world_of(
    conn: &dyn Sql,
    store: &KeyStore,
    persons: Option<&[&str]>,
) -> Result<World, StoreError> {
    world_from(store, |each| each_law_event(conn, persons, each))
}

/// The world built from every event of the log, the records of reads and searches included
/// (which [`load_world`] leaves unread), for a test to compare with it.
#[cfg(test)]
pub(crate) fn load_world_from_every_event(
    conn: &dyn Sql,
    store: &KeyStore,
) -> Result<World, StoreError> {
    world_from(store, |each| crate::registry::each_event(conn, each))
}

/// Each registered captive's law state in turn, `persons`' or everyone's: `f` is handed his
/// case number and state. Each is folded from his own records alone, as in a world of them all
/// (a record about no one, a place or an exchange list, changes no captive's state:
/// [`World::apply`]), and no more than one captive's records and keys are held at a time.
pub(crate) fn each_case(
    conn: &dyn Sql,
    store: &KeyStore,
    persons: Option<&[&str]>,
    mut f: impl FnMut(&str, &Case),
) -> Result<(), StoreError> {
    // No one asked about: nothing to read (PostgreSQL refuses an empty `IN ()`).
    if persons.is_some_and(<[&str]>::is_empty) {
        return Ok(());
    }
    let n = persons.map_or(0, <[&str]>::len);
    let whose = match persons {
        None => "person IS NOT NULL".to_string(),
        Some(p) => format!("person IN ({})", crate::db::placeholders(p.len())),
    };
    let sql = format!(
        "SELECT {} FROM events WHERE {whose} AND (kind IN (?{}, ?{}, ?{}) OR kind LIKE 'case.%') \
         ORDER BY person, seq",
        crate::registry::EVENT_COLUMNS,
        n + 1,
        n + 2,
        n + 3
    );
    let mut args: Vec<crate::db::Val<'_>> = persons
        .unwrap_or_default()
        .iter()
        .map(|&p| p.into())
        .collect();
    args.extend(
        [
            kind::PERSON_REGISTERED,
            kind::PERSON_AMENDED,
            kind::PERSON_ERASED,
        ]
        .map(crate::db::Val::from),
    );
    let mut world = World::default();
    let mut opener = Opener {
        store,
        keys: HashMap::new(),
    };
    let mut done = |world: &mut World, opener: &mut Opener<'_>| {
        for (case, state) in std::mem::take(&mut world.cases) {
            f(&case, &state);
        }
        opener.keys.clear();
    };
    let mut current: Option<String> = None;
    crate::registry::each_event_where(conn, &sql, &args, |ev| {
        if ev.person != current {
            done(&mut world, &mut opener);
            current.clone_from(&ev.person);
        }
        fold(&mut world, &mut opener, &ev)
    })?;
    done(&mut world, &mut opener);
    Ok(())
}

/// The world folded from the events `read` hands on.
fn world_from(
    store: &KeyStore,
    read: impl FnOnce(&mut dyn FnMut(Event) -> Result<(), StoreError>) -> Result<(), StoreError>,
) -> Result<World, StoreError> {
    let mut world = World::default();
    let mut opener = Opener {
        store,
        keys: HashMap::new(),
    };
    read(&mut |ev| fold(&mut world, &mut opener, &ev))?;
    Ok(world)
}

/// Folds one event into the world: registrations, corrections, erasures and law records;
/// anything else leaves it as it was.
fn fold(world: &mut World, opener: &mut Opener<'_>, ev: &Event) -> Result<(), StoreError> {
    let damaged = |e: serde_json::Error| StoreError::Tampered {
        seq: ev.seq,
        reason: format!("public payload unreadable: {e}"),
    };
    if ev.kind == kind::PERSON_REGISTERED {
        let core: CoreParticulars = serde_json::from_str(&ev.public).map_err(damaged)?;
        let case = ev.person.clone().unwrap_or_default();
        let captured = core.captured_on.earliest();
        world.register(
            &case,
            &core.power,
            captured,
            parse_time(ev.seq, &ev.at)?,
            ev.seq,
        );
    } else if ev.kind == kind::PERSON_AMENDED {
        let amended: asylon_core::Amended = serde_json::from_str(&ev.public).map_err(damaged)?;
        let case = ev.person.clone().unwrap_or_default();
        world.amend(
            &case,
            &amended.core.power,
            amended.core.captured_on.earliest(),
            parse_time(ev.seq, &ev.at)?,
            ev.seq,
        );
    } else if ev.kind == kind::PERSON_ERASED {
        world.erase(ev.person.as_deref().unwrap_or_default(), ev.seq);
    } else if ev.kind.starts_with("case.") {
        let body: FactBody = serde_json::from_str(&ev.public).map_err(damaged)?;
        let case = body.case().map(str::to_string);
        let (statements, medical) = match &case {
            Some(c) => (
                opener.open(c, ev, Class::Statements)?,
                opener.open(c, ev, Class::Medical)?,
            ),
            None => (None, None),
        };
        let fact = Fact {
            body,
            statements,
            medical,
        };
        world.apply(&fact, &ev.actor, parse_time(ev.seq, &ev.at)?, ev.seq);
    }
    Ok(())
}

/// Associated data of interview notes sealed to an organisation: binds person and event.
pub(crate) fn notes_aad(case: &str, event_id: &str) -> Vec<u8> {
    format!("asylon/org-notes/v1|{case}|{event_id}").into_bytes()
}

/// Replaces the notes by their sealing to the interviewing organisation's key: the registry
/// itself (and so anyone holding the database and the key file) can no longer read them.
fn seal_notes_to_org(
    st: &mut asylon_core::law::Statements,
    org: &str,
    public_key: &[u8],
    case: &str,
    event_id: &str,
) -> Result<(), StoreError> {
    let Some(notes) = st.notes.take().map(zeroize::Zeroizing::new) else {
        return Ok(());
    };
    let pk: [u8; 32] = public_key
        .try_into()
        .map_err(|_| StoreError::Damaged(format!("organisation {org}: bad public key")))?;
    let sealed = asylon_vault::seal_to_org(&pk, &notes_aad(case, event_id), notes.as_bytes());
    st.org_notes = Some(asylon_core::law::OrgNotes {
        org: org.to_string(),
        sealed: hex::encode(sealed),
    });
    Ok(())
}

/// A sealed part's plaintext: its JSON, zeroized when dropped.
fn sealed_json<T: Serialize>(
    part: &Option<T>,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
    part.as_ref()
        .map(|p| serde_json::to_vec(p).map(zeroize::Zeroizing::new))
        .transpose()
        .map_err(|e| StoreError::Damaged(e.to_string()))
}

/// The events recording law command `cmd` of `p`, inside a write on `tx`: the world is read in
/// it, the policy and the guards decide, and the facts are sealed; a refusal is an error and
/// nothing is written. Also the world they decided on, for a caller writing more beside them.
pub(crate) fn decided(
    tx: &dyn Sql,
    store: &KeyStore,
    p: &Principal,
    now: OffsetDateTime,
    s: &Settings,
    cmd: &Command,
) -> Result<(Vec<NewEvent>, World), StoreError> {
    // A case number in a command is read as a person types it (`as-17`), as everywhere else.
    let cmd = &cmd.clone().with_case(crate::register::case_as_typed);
    let scope = (!cmd.needs_everyone()).then(|| cmd.case().unwrap_or("-").to_string());
    if let Command::Correct { case, corrects, .. } = cmd {
        // A correction names an event of the same person's record.
        let about = match tx.one(
            "SELECT person FROM events WHERE seq = ?1",
            args![*corrects as i64],
        )? {
            Some(r) => r.opt_text(0)?,
            None => None,
        };
        if about.as_deref() != Some(case.as_str()) {
            return Err(StoreError::Refused(asylon_core::law::Refusal::new(
                asylon_core::law::Guard::Record,
                format!(
                    "event {corrects} is not an event of {case}'s record: a correction names the event it corrects"
                ),
            )));
        }
    }
    let world = load_world(tx, store, scope.as_deref())?;
    let case = cmd.case().and_then(|c| world.cases.get(c)).map(|c| &**c);
    asylon_core::policy::may(p, case, asylon_core::policy::Action::Record(cmd))
        .map_err(StoreError::Denied)?;
    let facts = decide(&world, p, cmd, s, now).map_err(StoreError::Refused)?;
    let org_key = tx
        .one("SELECT public_key FROM orgs WHERE id = ?1", args![&p.org])?
        .map(|r| r.blob(0))
        .transpose()?;
    let mut out = Vec::with_capacity(facts.len());
    for mut fact in facts {
        let id = new_id();
        let case = fact.body.case().map(str::to_string);
        if let (Some(pk), Some(st), Some(c)) = (&org_key, fact.statements.as_mut(), &case) {
            seal_notes_to_org(st, &p.org, pk, c, &id)?;
        }
        let mut sealed = Vec::new();
        let parts = [
            (Class::Medical, sealed_json(&fact.medical)?),
            (Class::Statements, sealed_json(&fact.statements)?),
        ];
        for (class, plain) in parts {
            let (Some(plain), Some(c)) = (plain, case.as_deref()) else {
                continue;
            };
            let dk = data_key_for_write(store, c, class)?;
            sealed.push(SealedPart {
                class,
                ciphertext: dk.seal(&seal_aad(c, class.as_str(), &id), &plain),
            });
        }
        sealed.sort_by_key(|p| p.class);
        out.push(NewEvent {
            id,
            person: case,
            kind: fact.body.kind(),
            public: serde_json::to_string(&fact.body)
                .map_err(|e| StoreError::Damaged(e.to_string()))?,
            sealed,
            registered: None,
        });
    }
    Ok((out, world))
}

impl Registry {
    /// Decides and records a law command. A refusal (`StoreError::Refused`) writes nothing.
    pub fn act(
        &mut self,
        p: &Principal,
        now: OffsetDateTime,
        s: &Settings,
        cmd: &Command,
    ) -> Result<Vec<Event>, StoreError> {
        self.write(&p.actor(), now, |tx, store| {
            decided(tx, store, p, now, s, cmd).map(|(events, _)| events)
        })
    }

    pub fn case_status(
        &self,
        who: &Principal,
        case: &str,
        s: &Settings,
        now: OffsetDateTime,
    ) -> Result<CaseStatus, StoreError> {
        let c = self.authorized(who, case, asylon_core::policy::Action::ReadCore)?;
        Ok(CaseStatus::of(c, s, now))
    }

    /// The counts of captives of a report, none smaller than `k` given (the `k_anonymity`
    /// setting), each captive's state folded from his own records one after another.
    pub fn statistics(
        &self,
        who: &Principal,
        k: u32,
    ) -> Result<asylon_core::statistics::Statistics, StoreError> {
        use asylon_core::policy::{Action, may};
        may(who, None, Action::ReadStatistics).map_err(StoreError::Denied)?;
        let mut tally = asylon_core::statistics::Tally::default();
        each_case(&*self.conn, &self.keys, None, |_, c| tally.add(c))?;
        Ok(tally.report(u64::from(k)))
    }

    /// Every open deadline of the captives `who` may see, in the order of
    /// [`asylon_core::law::deadline_order`]: earliest due first. (A server keeps its
    /// [`crate::Duties`] between requests instead.)
    pub fn deadlines(
        &self,
        who: &Principal,
        s: &Settings,
        now: OffsetDateTime,
    ) -> Result<Vec<Deadline>, StoreError> {
        asylon_core::policy::core_scope(who).map_err(StoreError::Denied)?;
        let mut duties = crate::Duties::new(s.clone());
        duties.catch_up(self)?;
        Ok(duties.page(who, now, false, None, usize::MAX)?.0)
    }
}

/// Rows one listing request reads at most (see [`Registry::persons_visible`]).
pub const SCANNED_PER_PAGE: usize = 10_000;

/// Rows a listing reads, and captives whose law state it builds, at most per query.
const LISTING_BATCH: usize = 1000;

impl Registry {
    /// The law's view of one captive, for the policy to decide on.
    fn case_state(&self, case: &str) -> Result<Option<Case>, StoreError> {
        Ok(load_world(&*self.conn, &self.keys, Some(case))?
            .cases
            .remove(case)
            .map(|c| *c))
    }

    /// The law's view of one captive, once the policy has let `who` do `action` about him:
    /// every read or write about one person starts here.
    pub fn authorized(
        &self,
        who: &Principal,
        case: &str,
        action: asylon_core::policy::Action<'_>,
    ) -> Result<Case, StoreError> {
        let c = self
            .case_state(case)?
            .ok_or_else(|| StoreError::UnknownPerson(case.to_string()))?;
        asylon_core::policy::may(who, Some(&c), action).map_err(StoreError::Denied)?;
        Ok(c)
    }

    /// Up to `limit` persons after case number `after` whose public record `who` may see, in
    /// number order, and the case number to continue after (None once nothing follows). A page
    /// is filled from as many rows as it takes, so that a caller who sees few of many captives
    /// (a receiving state) is not handed page after empty page; but one request reads at most
    /// [`SCANNED_PER_PAGE`] rows, and then gives what it found and where to go on.
    pub fn persons_visible(
        &self,
        who: &Principal,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<asylon_core::PersonRow>, Option<String>), StoreError> {
        self.persons_visible_within(who, after, limit, SCANNED_PER_PAGE)
    }

    /// [`Registry::persons_visible`], for a receiving state from the referrals `kept` holds
    /// (brought up to date from the log first): only the captives referred to it are read, and
    /// a page is full however few they are among many. Anyone else's is
    /// [`Registry::persons_visible`]'s.
    pub fn persons_visible_kept(
        &self,
        kept: &mut crate::Duties,
        who: &Principal,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<asylon_core::PersonRow>, Option<String>), StoreError> {
        use asylon_core::policy::{CoreScope, core_scope};
        let scope = core_scope(who).map_err(StoreError::Denied)?;
        let CoreScope::ReferredTo(state) = scope else {
            return self.persons_visible(who, after, limit);
        };
        let after = match after {
            "" => None,
            typed => Some(crate::registry::page_after(typed)?),
        };
        kept.catch_up(self)?;
        let mut cases = kept.referred_after(state, after.as_deref(), limit.saturating_add(1));
        let more = cases.len() > limit;
        cases.truncate(limit);
        let rows = self.persons_numbered(&cases)?;
        let next = cases.last().filter(|_| more).cloned();
        Ok((rows, next))
    }

    /// [`Registry::persons_visible`], reading at most `scan` rows.
    ///
    /// The rows are read in batches, and the law's view of each batch's captives built in one
    /// reading of the log ([`load_world_of`]) rather than one per row: the first batch as many
    /// rows as the page holds (enough for a caller who sees everyone), each next one twice as
    /// many as the last, up to [`LISTING_BATCH`] (a caller who sees few is not asked about row
    /// after row one query each).
    pub(crate) fn persons_visible_within(
        &self,
        who: &Principal,
        after: &str,
        limit: usize,
        scan: usize,
    ) -> Result<(Vec<asylon_core::PersonRow>, Option<String>), StoreError> {
        use asylon_core::policy::{Action, may};
        may(who, None, Action::ReadCore).map_err(StoreError::Denied)?;
        let (mut visible, mut cursor, mut scanned) = (Vec::new(), after.to_string(), 0);
        let mut batch = limit.clamp(1, LISTING_BATCH);
        loop {
            // One row more than is looked at, to tell whether any follow.
            let asked = batch.min(scan.saturating_sub(scanned)).max(1);
            let mut rows = self.persons_page(&cursor, asked + 1)?;
            let follow = rows.len() > asked;
            rows.truncate(asked);
            let read = rows.len();
            let mut world = {
                let cases: Vec<&str> = rows.iter().map(|r| r.case_no.as_str()).collect();
                load_world_of(&*self.conn, &self.keys, Some(&cases))?
            };
            for (i, row) in rows.into_iter().enumerate() {
                scanned += 1;
                cursor.clone_from(&row.case_no);
                let case = world
                    .cases
                    .remove(&row.case_no)
                    .ok_or_else(|| StoreError::UnknownPerson(row.case_no.clone()))?;
                if may(who, Some(&case), Action::ReadCore).is_ok() {
                    visible.push(row);
                }
                if visible.len() == limit || scanned >= scan {
                    let more = follow || i + 1 < read;
                    return Ok((visible, more.then_some(cursor)));
                }
            }
            if !follow {
                return Ok((visible, None));
            }
            batch = (batch * 2).min(LISTING_BATCH);
        }
    }

    /// The events of one captive's record, for whoever may see his public record.
    pub fn person_events(&self, who: &Principal, case: &str) -> Result<Vec<Event>, StoreError> {
        self.authorized(who, case, asylon_core::policy::Action::ReadCore)?;
        self.events(Some(case))
    }

    /// Crypto-shreds a captive, if the policy lets `who` erase him.
    pub fn erase_as(
        &mut self,
        who: &Principal,
        now: OffsetDateTime,
        case: &str,
        reason: &str,
    ) -> Result<crate::Erased, StoreError> {
        self.authorized(who, case, asylon_core::policy::Action::Erase)?;
        self.erase(&who.actor(), now, case, reason)
    }
}
