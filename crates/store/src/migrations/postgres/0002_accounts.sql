-- Organisations, their users, sessions, API tokens and the sign-in back-off. These are not
-- events: they change (passwords, last use) and hold secrets. Every change to an organisation or
-- a user's standing is also recorded as an `account.*` event in the log.
CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,      -- detaining | neutral | receiving:XX
    name       TEXT NOT NULL,
    public_key BYTEA NOT NULL,         -- X25519; what the org seals (interview notes) opens only with its private key
    created    TEXT NOT NULL
);

CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    org             TEXT NOT NULL REFERENCES orgs(id),
    roles           TEXT NOT NULL,    -- JSON array
    password        TEXT NOT NULL,    -- Argon2id PHC string
    totp_sealed     BYTEA NOT NULL,    -- TOTP seed sealed under a key derived from the KEK
    totp_last_step  BIGINT NOT NULL DEFAULT 0,
    member_salt     BYTEA NOT NULL,    -- salt of the member key derived from the password
    org_key_wrapped BYTEA NOT NULL,    -- the org's private key wrapped under the member key
    disabled        BIGINT NOT NULL DEFAULT 0,
    created         TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,      -- SHA-256 of the cookie value; the value itself is never stored
    username   TEXT NOT NULL REFERENCES users(name),
    csrf       TEXT NOT NULL,
    created    BIGINT NOT NULL,      -- unix seconds
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(username);

CREATE TABLE api_tokens (
    id      TEXT PRIMARY KEY,
    hash    BYTEA NOT NULL,            -- SHA-256 of the secret part
    username TEXT NOT NULL REFERENCES users(name),
    scope   TEXT NOT NULL,            -- read | write
    label   TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    revoked BIGINT
);

-- Failed sign-ins per address and per account name (whether or not the account exists).
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- The law's view of one person reads his events and the shared ones (places, exchange lists),
-- not the searches and account changes that also have no person.
CREATE INDEX events_shared ON events(seq) WHERE person IS NULL AND kind LIKE 'case.%';
