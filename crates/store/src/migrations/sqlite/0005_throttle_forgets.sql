-- When each key of the sign-in back-off last failed. Failures are forgotten, and their row
-- deleted, a day after the last one: attempts from ever new addresses or account names, which
-- anyone may send, would otherwise grow the table without end, and a user's failures of long
-- ago would count against him for good. Rows from before (0) go once their lock has run out.
ALTER TABLE login_throttle ADD COLUMN last_failed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX login_throttle_last_failed ON login_throttle(last_failed);
