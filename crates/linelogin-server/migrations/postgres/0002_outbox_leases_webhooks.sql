-- Fencing: every claim of a deauthorization job stores a fresh lease id; finishing, retrying,
-- releasing or giving up a job takes it, so a worker whose lease was lost (and the job
-- claimed again elsewhere) changes nothing.
ALTER TABLE deauth_jobs ADD COLUMN lease_id TEXT;
-- The server-to-server API shows an account's latest job.
CREATE INDEX deauth_jobs_account ON deauth_jobs (account_id, created_at);

-- Webhook deliveries (Standard Webhooks), written in the transaction of the state change they
-- report. `seq` orders the events of one account; `id` is the stable `webhook-id`.
CREATE TABLE webhook_events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    account_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    job_id TEXT,
    occurred_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_id TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);
CREATE INDEX webhook_events_account ON webhook_events (account_id, status, seq);
