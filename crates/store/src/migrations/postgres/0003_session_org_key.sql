-- A session's copy of its user's organisation key, wrapped under a key derived from the session
-- cookie's secret (which the database never holds): any server process can open it for a
-- request carrying the cookie, so server processes keep no state of their own.
ALTER TABLE sessions ADD COLUMN org_key BYTEA;
