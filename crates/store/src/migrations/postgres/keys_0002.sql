-- The blind index keyed by the first 8 bytes of each token and the case's number (see the
-- SQLite migration of the same number).
CREATE TABLE name_index_v2 (
    token  BYTEA NOT NULL,
    person BIGINT NOT NULL,
    PRIMARY KEY (token, person)
);
INSERT INTO name_index_v2 (token, person)
    SELECT substring(token from 1 for 8), CAST(substring(person from 4) AS BIGINT) FROM name_index
    ON CONFLICT DO NOTHING;
DROP TABLE name_index;
ALTER TABLE name_index_v2 RENAME TO name_index;
