-- linelogin-server schema (SQLite). Times are Unix milliseconds.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    display_name TEXT NOT NULL,
    picture_url TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT accounts_issuer_sub_key UNIQUE (issuer, sub)
);

CREATE TABLE tokens (
    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    access_ct BLOB NOT NULL,
    refresh_ct BLOB NOT NULL,
    access_expires_at INTEGER NOT NULL,
    refresh_issued_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_account_id ON sessions (account_id);

CREATE TABLE pending_logins (
    id_hash TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX pending_logins_expires_at ON pending_logins (expires_at);

CREATE TABLE deauth_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    access_ct BLOB,
    refresh_ct BLOB,
    access_expires_at INTEGER NOT NULL,
    refresh_issued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX deauth_jobs_due ON deauth_jobs (status, next_attempt_at);
CREATE INDEX deauth_jobs_user ON deauth_jobs (issuer, sub);
