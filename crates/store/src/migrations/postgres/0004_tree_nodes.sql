-- The hashes of the log's whole subtrees of 256 leaves or more, as each is completed (height h
-- holds 2^h leaves; index i holds events i * 2^h + 1 to (i + 1) * 2^h), so that an inclusion or
-- consistency proof reads a few of them and at most a few hundred events instead of the whole
-- log. Derived from the events, like the projection: `asylon rebuild` makes them again, and a
-- proof checks what it used against the signed tree head.
CREATE TABLE tree_nodes (
    height BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    PRIMARY KEY (height, idx)
);
