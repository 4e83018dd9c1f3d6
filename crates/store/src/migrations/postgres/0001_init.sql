-- The registry on PostgreSQL: the same tables as on SQLite, in the registry's own schema.
-- Events are the truth; persons is a projection of them.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE events (
    seq        BIGINT PRIMARY KEY,
    id         TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor_user TEXT NOT NULL,
    actor_org  TEXT NOT NULL,
    person     TEXT,
    kind       TEXT NOT NULL,
    public     TEXT NOT NULL,
    -- sealed payloads: per class, a class byte, a 4-byte length and the ciphertext
    sealed     BYTEA NOT NULL,
    -- HMAC over (seq, leaf hash) under a key derived from the KEK
    mac        BYTEA NOT NULL
);
CREATE INDEX events_person ON events(person) WHERE person IS NOT NULL;

-- Append-only for every role, the owner included: an UPDATE or DELETE of an event raises.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: record a correction instead';
END $$;
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

CREATE TABLE persons (
    case_no        TEXT PRIMARY KEY,
    external_id    TEXT UNIQUE,
    power          TEXT NOT NULL,
    captured_on    TEXT NOT NULL,
    captured_at    TEXT,
    status         TEXT NOT NULL,
    registered_seq BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL
);
