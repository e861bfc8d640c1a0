-- linelogin-server schema (PostgreSQL). Times are Unix milliseconds.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    display_name TEXT NOT NULL,
    picture_url TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT accounts_issuer_sub_key UNIQUE (issuer, sub)
);

CREATE TABLE tokens (
    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    access_ct BYTEA NOT NULL,
    refresh_ct BYTEA NOT NULL,
    access_expires_at BIGINT NOT NULL,
    refresh_issued_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_account_id ON sessions (account_id);

CREATE TABLE pending_logins (
    id_hash TEXT PRIMARY KEY NOT NULL,
    data BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_logins_expires_at ON pending_logins (expires_at);

CREATE TABLE deauth_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    access_ct BYTEA,
    refresh_ct BYTEA,
    access_expires_at BIGINT NOT NULL,
    refresh_issued_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX deauth_jobs_due ON deauth_jobs (status, next_attempt_at);
CREATE INDEX deauth_jobs_user ON deauth_jobs (issuer, sub);
