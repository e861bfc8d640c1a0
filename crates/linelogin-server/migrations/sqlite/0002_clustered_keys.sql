-- Pending logins and sessions are keyed by random hashes: store each clustered by its key
-- (WITHOUT ROWID: one B-tree instead of a rowid table plus a key index), and drop the expiry
-- index of pending logins (few rows; the purge scans them). A login then writes fewer pages.
CREATE TABLE pending_logins_v2 (
    id_hash TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO pending_logins_v2 (id_hash, data, expires_at)
    SELECT id_hash, data, expires_at FROM pending_logins;
DROP TABLE pending_logins;
ALTER TABLE pending_logins_v2 RENAME TO pending_logins;

CREATE TABLE sessions_v2 (
    id_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sessions_v2 (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at)
    SELECT id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;
CREATE INDEX sessions_account_id ON sessions (account_id);
