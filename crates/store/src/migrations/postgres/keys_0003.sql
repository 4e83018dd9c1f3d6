-- Index rows written by an import, folded into name_index when it ends (see the SQLite
-- migration of the same number).
CREATE TABLE name_index_recent (
    token  BYTEA NOT NULL,
    person BIGINT NOT NULL,
    PRIMARY KEY (token, person)
);
