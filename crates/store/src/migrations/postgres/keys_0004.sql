-- The data keys and the blind index, each split into 16 partitions by a hash of its key, so
-- that an erasure rewrites only the partitions that held the destroyed rows. PostgreSQL keeps a
-- deleted row's bytes in its page until the page is written again, so an erasure rewrites what
-- held the rows (VACUUM FULL, `Sql::purge_deleted`); unsplit, that is the whole key store, whose
-- size grows with the registry. Split, one partition of the data keys (by person) and those of
-- the index that held his tokens (by token, about three); a search by token still reads one
-- partition, a key lookup by person one. `scripts/bench-backends`, an erasure in a registry of
-- a million captives: 8.4 s unsplit (at e7848b1), 0.72 s split (100,000: 1 s, 0.09 s). This
-- migration copies the store once. SQLite overwrites deleted rows in place and needs none of
-- this.
-- Each split table takes the columns, types and primary key of the one it replaces (LIKE), so
-- that the copies below are column for column.
ALTER TABLE data_keys RENAME TO data_keys_unsplit;
ALTER TABLE data_keys_unsplit RENAME CONSTRAINT data_keys_pkey TO data_keys_unsplit_pkey;
CREATE TABLE data_keys (LIKE data_keys_unsplit INCLUDING ALL) PARTITION BY HASH (person);

ALTER TABLE name_index RENAME TO name_index_unsplit;
CREATE TABLE name_index (LIKE name_index_unsplit INCLUDING ALL) PARTITION BY HASH (token);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE data_keys_%s PARTITION OF data_keys FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
        EXECUTE format(
            'CREATE TABLE name_index_%s PARTITION OF name_index FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            lpad(i::text, 2, '0'), i);
    END LOOP;
END
$$;

INSERT INTO data_keys SELECT * FROM data_keys_unsplit;
INSERT INTO name_index SELECT * FROM name_index_unsplit ORDER BY token, person;
DROP TABLE data_keys_unsplit;
DROP TABLE name_index_unsplit;
