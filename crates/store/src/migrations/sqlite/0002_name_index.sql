-- Blind index of names: keyed hashes (HMAC under a key derived from the KEK) of phoneme keys,
-- never plaintext. Each person's tokens are also listed in his data_keys row, so erasing him
-- finds and deletes them with his keys.
CREATE TABLE name_index (
    token  BLOB NOT NULL,
    person TEXT NOT NULL,
    PRIMARY KEY (token, person)
) WITHOUT ROWID;
ALTER TABLE data_keys ADD COLUMN name_tokens BLOB;
