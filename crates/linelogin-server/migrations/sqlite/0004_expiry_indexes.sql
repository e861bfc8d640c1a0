-- The purge of expired rows is O(expired): it finds them by an expiry index instead of
-- scanning every session and pending login. Finished outbox jobs past their keep time are
-- found the same way. (Numbered 0004: 0003 is the outbox's.)
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS pending_logins_expires_at ON pending_logins (expires_at);
CREATE INDEX IF NOT EXISTS deauth_jobs_finished ON deauth_jobs (status, finished_at);

-- When each maintenance task last ran, so that instances sharing a database run it once per
-- period (the first to claim the period runs it). Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS maintenance_runs (
    task TEXT PRIMARY KEY NOT NULL,
    ran_at INTEGER NOT NULL
);
