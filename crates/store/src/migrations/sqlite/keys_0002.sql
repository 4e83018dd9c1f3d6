-- The blind index keyed by the first 8 bytes of each token and the case's number, no longer by
-- the whole 16-byte token and the case number's text ('AS-000123' is 123): a row of the index
-- is about half as long, so the index is half as many pages, and each commit of an import,
-- whose tokens fall all over the index, rewrites half as many. Eight bytes of a keyed hash
-- still tell apart far more phoneme keys than any registry holds. The tokens listed in each
-- person's keys row, for erasure, stay whole. secure_delete (set on every connection) overwrites
-- the old index's pages as they are freed.
-- Importing 100,000 captives (`scripts/ab-import`, fifteen rounds, twice, the builds of the
-- commits before and with this migration): wall 1.07 -> 1.05 s and 1.03 -> 1.02 s, system time
-- 0.37 -> 0.33 s and 0.36 -> 0.31 s; keys.db 25.1 -> 20.7 MB.
CREATE TABLE name_index_v2 (
    token  BLOB NOT NULL,
    person INTEGER NOT NULL,
    PRIMARY KEY (token, person)
) WITHOUT ROWID;
INSERT OR IGNORE INTO name_index_v2 (token, person)
    SELECT substr(token, 1, 8), CAST(substr(person, 4) AS INTEGER) FROM name_index;
DROP TABLE name_index;
ALTER TABLE name_index_v2 RENAME TO name_index;
