-- The purge of expired rows is O(expired): it finds them by an expiry index instead of
-- scanning every session. (pending_logins_expires_at exists since 0001.) Finished outbox
-- jobs past their keep time are found the same way. (Numbered 0003: 0002 is the outbox's.)
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS deauth_jobs_finished ON deauth_jobs (status, finished_at);

-- When each maintenance task last ran, so that the instances of a fleet run it once per
-- period (the first to claim the period runs it). Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS maintenance_runs (
    task TEXT PRIMARY KEY NOT NULL,
    ran_at BIGINT NOT NULL
);

-- Pending logins live ten minutes and are consumed once: keep them out of the WAL (UNLOGGED),
-- so that starting and finishing a login cost no WAL flush. After a PostgreSQL crash (or on a
-- promoted replica) the table is empty: logins in progress at that moment fail and the user
-- starts again, as when a pending login expires. Accounts, tokens, sessions and the outbox
-- stay fully durable (synchronous_commit is untouched).
ALTER TABLE pending_logins SET UNLOGGED;
