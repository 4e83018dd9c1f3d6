-- The key store: per-person, per-class data keys, each wrapped by the KEK under a label binding
-- person and class, and the blind index of names (keyed hashes of phoneme keys). Kept apart from
-- the registry database so that its copies and backups hold no key and no name token: erasing a
-- person here makes every copy of the registry unreadable for him.
CREATE TABLE data_keys (
    person      TEXT PRIMARY KEY,
    identity    BYTEA,
    family      BYTEA,
    medical     BYTEA,
    statements  BYTEA,
    name_tokens BYTEA
);

CREATE TABLE name_index (
    token  BYTEA NOT NULL,
    person TEXT NOT NULL,
    PRIMARY KEY (token, person)
);
