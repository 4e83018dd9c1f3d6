-- Index rows written by an import into a registry that already has some go here first, and are
-- folded into name_index in one transaction when the import ends. The tokens are keyed hashes,
-- random in the index's order, so every commit of an import rewrites pages all over the B-tree
-- it inserts into: into name_index itself, that is nearly every page of the whole registry's
-- index, ten times per 100,000 captives; importing 100,000 into a registry of 600,000 took
-- twice as long as into an empty one, the key store's CPU time 0.36 -> 0.98 s. Into this table,
-- only the pages of what the import has written so far; the fold then rewrites name_index's
-- pages once. `ASYLON_BENCH_BASE=1000000 ROUNDS=7 scripts/ab-import`, 100,000 captives into a
-- registry of a million, the builds without and with this table: wall 2.91 -> 2.14 s, system
-- time 1.05 -> 0.63 s; into an empty registry, unchanged (the import then writes name_index
-- directly: there is nothing to fold into).
-- A search reads both tables and an erasure deletes from both, so nothing depends on the fold
-- having happened: rows an interrupted import left here are folded by the next one.
CREATE TABLE name_index_recent (
    token  BLOB NOT NULL,
    person INTEGER NOT NULL,
    PRIMARY KEY (token, person)
) WITHOUT ROWID;
