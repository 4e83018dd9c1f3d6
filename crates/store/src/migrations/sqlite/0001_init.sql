-- The registry on SQLite. Events are the truth; persons is a projection of them.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor_user TEXT NOT NULL,
    actor_org  TEXT NOT NULL,
    person     TEXT,
    kind       TEXT NOT NULL,
    public     TEXT NOT NULL,
    -- sealed payloads: per class, a class byte, a 4-byte length and the ciphertext
    sealed     BLOB NOT NULL,
    -- HMAC over (seq, leaf hash) under a key derived from the KEK
    mac        BLOB NOT NULL
);
CREATE INDEX events_person ON events(person) WHERE person IS NOT NULL;

CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: record a correction instead'); END;
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: record a correction instead'); END;

-- The data keys are not here: they live in the key store (keys.db), so that no copy or backup
-- of this file can be opened for a person whose keys were destroyed.

CREATE TABLE persons (
    case_no        TEXT PRIMARY KEY,
    external_id    TEXT UNIQUE,
    power          TEXT NOT NULL,
    captured_on    TEXT NOT NULL,
    captured_at    TEXT,
    status         TEXT NOT NULL,
    registered_seq INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL
) WITHOUT ROWID;
