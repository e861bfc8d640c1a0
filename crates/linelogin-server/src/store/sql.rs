//! The SQL shared by both backends.
//!
//! SQLite and PostgreSQL both accept `$n` parameters, `ON CONFLICT`, `RETURNING` and the
//! types used here (TEXT, 64-bit integers, byte strings), so every statement is written once
//! and each backend binds the values with its own driver, `$1` first. Every statement uses
//! each of `$1 … $n` (no gaps; a unit test below checks it), so a backend can check that it
//! binds exactly as many values as the statement has parameters.

/// `$1` id hash, `$2` sealed data, `$3` expiry.
pub(crate) const PUT_PENDING_LOGIN: &str =
    "INSERT INTO pending_logins (id_hash, data, expires_at) VALUES ($1, $2, $3)";
/// `$1` id hash → `data`, `expires_at`.
pub(crate) const TAKE_PENDING_LOGIN: &str =
    "DELETE FROM pending_logins WHERE id_hash = $1 RETURNING data, expires_at";

/// `$1` issuer, `$2` sub → `n`, the user's pending deauthorization jobs.
pub(crate) const COUNT_PENDING_JOBS: &str = "SELECT COUNT(*) AS n FROM deauth_jobs \
     WHERE issuer = $1 AND sub = $2 AND status = 'pending'";
/// `$1` issuer, `$2` sub, `$3` now: supersedes the user's pending jobs no worker holds.
pub(crate) const SUPERSEDE_JOBS: &str = "UPDATE deauth_jobs SET status = 'superseded', \
     finished_at = $3, access_ct = NULL, refresh_ct = NULL \
     WHERE issuer = $1 AND sub = $2 AND status = 'pending' \
     AND (lease_until IS NULL OR lease_until <= $3)";
/// `$1` new id, `$2` issuer, `$3` sub, `$4` display name, `$5` picture, `$6` now → the account.
pub(crate) const UPSERT_ACCOUNT: &str = "INSERT INTO accounts \
     (id, issuer, sub, display_name, picture_url, status, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 'linked', $6, $6) \
     ON CONFLICT (issuer, sub) DO UPDATE SET display_name = excluded.display_name, \
     picture_url = excluded.picture_url, status = 'linked', updated_at = excluded.updated_at \
     RETURNING id, issuer, sub, display_name, picture_url, status, created_at";
/// `$1` account, `$2` access ct, `$3` refresh ct, `$4` access expiry, `$5` refresh issued,
/// `$6` now.
pub(crate) const UPSERT_TOKENS: &str = "INSERT INTO tokens \
     (account_id, access_ct, refresh_ct, access_expires_at, refresh_issued_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (account_id) DO UPDATE SET access_ct = excluded.access_ct, \
     refresh_ct = excluded.refresh_ct, access_expires_at = excluded.access_expires_at, \
     refresh_issued_at = excluded.refresh_issued_at, updated_at = excluded.updated_at";
/// `$1` id hash, `$2` account, `$3` CSRF token, `$4` now, `$5` expiry.
pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions \
     (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at) \
     VALUES ($1, $2, $3, $4, $4, $5)";

/// `$1` id hash, `$2` now → account columns, `csrf_token`, `s_created_at`, `last_seen_at`,
/// `expires_at`.
pub(crate) const SESSION: &str = "SELECT a.id, a.issuer, a.sub, a.display_name, a.picture_url, \
     a.status, a.created_at, s.csrf_token, s.created_at AS s_created_at, s.last_seen_at, \
     s.expires_at FROM sessions s JOIN accounts a ON a.id = s.account_id \
     WHERE s.id_hash = $1 AND s.expires_at > $2";
/// `$1` id hash, `$2` now.
pub(crate) const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1";
/// `$1` id hash.
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";

/// `$1` account id.
pub(crate) const ACCOUNT: &str = "SELECT a.id, a.issuer, a.sub, a.display_name, a.picture_url, \
     a.status, a.created_at FROM accounts a WHERE a.id = $1";
/// `$1` issuer, `$2` sub.
pub(crate) const ACCOUNT_BY_SUB: &str = "SELECT a.id, a.issuer, a.sub, a.display_name, \
     a.picture_url, a.status, a.created_at FROM accounts a WHERE a.issuer = $1 AND a.sub = $2";
/// `$1` account id.
pub(crate) const TOKENS: &str = "SELECT access_ct, refresh_ct, access_expires_at, \
     refresh_issued_at FROM tokens WHERE account_id = $1";
/// `$1` account, `$2` access ct, `$3` refresh ct, `$4` access expiry, `$5` refresh issued,
/// `$6` now.
pub(crate) const PUT_TOKENS: &str = "UPDATE tokens SET access_ct = $2, refresh_ct = $3, \
     access_expires_at = $4, refresh_issued_at = $5, updated_at = $6 WHERE account_id = $1";
/// `$1` account id.
pub(crate) const DELETE_TOKENS: &str = "DELETE FROM tokens WHERE account_id = $1";

/// `$1` job id, `$2` reason, `$3` now, `$4` account id: moves the tokens into a new job.
pub(crate) const INSERT_DEAUTH_JOB: &str = "INSERT INTO deauth_jobs (id, account_id, issuer, \
     sub, reason, status, access_ct, refresh_ct, access_expires_at, refresh_issued_at, \
     attempts, next_attempt_at, created_at) \
     SELECT $1, a.id, a.issuer, a.sub, $2, 'pending', t.access_ct, t.refresh_ct, \
     t.access_expires_at, t.refresh_issued_at, 0, $3, $3 \
     FROM accounts a JOIN tokens t ON t.account_id = a.id WHERE a.id = $4";
/// `$1` account id.
pub(crate) const DELETE_SESSIONS_OF_ACCOUNT: &str = "DELETE FROM sessions WHERE account_id = $1";
/// `$1` account id.
pub(crate) const DELETE_ACCOUNT: &str = "DELETE FROM accounts WHERE id = $1";
/// `$1` account id, `$2` now.
pub(crate) const UNLINK_ACCOUNT: &str =
    "UPDATE accounts SET status = 'unlinked', updated_at = $2 WHERE id = $1";

/// The columns a claim returns.
macro_rules! claimed_job_columns {
    () => {
        "RETURNING id, account_id, issuer, sub, reason, access_ct, refresh_ct, \
         access_expires_at, refresh_issued_at, attempts, created_at, lease_id"
    };
}

/// `$1` lease end, `$2` now, `$3` lease id → the claimed job (SQLite: one writer, so the
/// sub-select and the update cannot race).
pub(crate) const CLAIM_JOB: &str = concat!(
    "UPDATE deauth_jobs SET lease_until = $1, lease_id = $3, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM deauth_jobs WHERE status = 'pending' AND next_attempt_at <= $2 \
       AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, created_at LIMIT 1) \
     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) ",
    claimed_job_columns!()
);
/// [`CLAIM_JOB`] for PostgreSQL: `FOR UPDATE SKIP LOCKED`, so instances claiming at once each
/// take a different job instead of queueing on the same row.
pub(crate) const CLAIM_JOB_PG: &str = concat!(
    "UPDATE deauth_jobs SET lease_until = $1, lease_id = $3, attempts = attempts + 1 \
     WHERE id = (SELECT id FROM deauth_jobs WHERE status = 'pending' AND next_attempt_at <= $2 \
       AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, created_at LIMIT 1 \
       FOR UPDATE SKIP LOCKED) \
     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) ",
    claimed_job_columns!()
);
/// `$1` job, `$2` lease id, `$3` new lease end: renews a lease still held.
pub(crate) const RENEW_JOB: &str = "UPDATE deauth_jobs SET lease_until = $3 \
     WHERE id = $1 AND lease_id = $2 AND status = 'pending'";
/// `$1` job, `$2` access ct, `$3` refresh ct, `$4` access expiry, `$5` refresh issued,
/// `$6` lease id.
pub(crate) const PUT_JOB_TOKENS: &str = "UPDATE deauth_jobs SET access_ct = $2, \
     refresh_ct = $3, access_expires_at = $4, refresh_issued_at = $5 \
     WHERE id = $1 AND lease_id = $6 AND status = 'pending'";
/// `$1` job, `$2` now, `$3` note, `$4` lease id.
pub(crate) const FINISH_JOB: &str = "UPDATE deauth_jobs SET status = 'done', finished_at = $2, \
     lease_until = NULL, access_ct = NULL, refresh_ct = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` job, `$2` next attempt, `$3` error, `$4` lease id.
pub(crate) const RETRY_JOB: &str = "UPDATE deauth_jobs SET next_attempt_at = $2, \
     lease_until = NULL, lease_id = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` job, `$2` now, `$3` error, `$4` lease id.
pub(crate) const FAIL_JOB: &str = "UPDATE deauth_jobs SET status = 'failed', finished_at = $2, \
     lease_until = NULL, access_ct = NULL, refresh_ct = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` job, `$2` next attempt, `$3` note, `$4` lease id: puts a claimed job back without
/// counting the attempt (the outbound policy refused the call locally; nothing reached LINE).
pub(crate) const RELEASE_JOB: &str = "UPDATE deauth_jobs SET next_attempt_at = $2, \
     lease_until = NULL, lease_id = NULL, last_error = $3, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` job, `$2` now, `$3` error, `$4` lease id: gives up but keeps the (encrypted) tokens,
/// so that [`RETRY_FAILED_JOB`] can send the job again.
pub(crate) const GIVE_UP_JOB: &str = "UPDATE deauth_jobs SET status = 'failed', \
     finished_at = $2, lease_until = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` job, `$2` now: a failed job that still has its tokens, whose LINE user has not linked
/// again, back to pending with its attempts reset.
pub(crate) const RETRY_FAILED_JOB: &str = "UPDATE deauth_jobs SET status = 'pending', \
     attempts = 0, next_attempt_at = $2, lease_until = NULL, lease_id = NULL, finished_at = NULL \
     WHERE id = $1 AND status = 'failed' AND access_ct IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.issuer = deauth_jobs.issuer \
       AND a.sub = deauth_jobs.sub AND a.status = 'linked')";
/// `$1` limit → failed jobs, the most recent first.
pub(crate) const FAILED_JOBS: &str = "SELECT id, account_id, reason, attempts, last_error, \
     finished_at, CASE WHEN access_ct IS NULL THEN 0 ELSE 1 END AS has_tokens \
     FROM deauth_jobs WHERE status = 'failed' ORDER BY finished_at DESC, id LIMIT $1";
/// `$1` job → `status`.
pub(crate) const JOB_STATUS: &str = "SELECT status FROM deauth_jobs WHERE id = $1";
/// `$1` account id → its latest deauthorization job.
pub(crate) const LATEST_JOB: &str = "SELECT id, sub, reason, status, attempts, last_error, \
     created_at, finished_at FROM deauth_jobs WHERE account_id = $1 \
     ORDER BY created_at DESC, id DESC LIMIT 1";
/// → `pending`, `failed`, `oldest`.
pub(crate) const JOB_STATS: &str = "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest \
     FROM deauth_jobs WHERE status IN ('pending', 'failed')";
/// `$1` event id, `$2` type, `$3` now, `$4` account id, `$5` job id (or NULL): a webhook
/// event about an account, written before the account changes.
pub(crate) const INSERT_EVENT_FOR_ACCOUNT: &str = "INSERT INTO webhook_events (id, event_type, \
     account_id, user_id, job_id, occurred_at, status, attempts, next_attempt_at, created_at) \
     SELECT $1, $2, a.id, a.sub, $5, $3, 'pending', 0, $3, $3 FROM accounts a WHERE a.id = $4";
/// `$1` event id, `$2` type, `$3` now, `$4` job id: a webhook event about a deauthorization job.
pub(crate) const INSERT_EVENT_FOR_JOB: &str = "INSERT INTO webhook_events (id, event_type, \
     account_id, user_id, job_id, occurred_at, status, attempts, next_attempt_at, created_at) \
     SELECT $1, $2, j.account_id, j.sub, j.id, $3, 'pending', 0, $3, $3 \
     FROM deauth_jobs j WHERE j.id = $4";
/// The columns a webhook claim returns.
macro_rules! claimed_event_columns {
    () => {
        "RETURNING id, event_type, account_id, user_id, job_id, occurred_at, attempts, lease_id"
    };
}
/// `$1` lease end, `$2` now, `$3` lease id → the claimed event: the oldest due one whose
/// account has no earlier event still pending (one account's events arrive in order).
pub(crate) const CLAIM_WEBHOOK: &str = concat!(
    "UPDATE webhook_events SET lease_until = $1, lease_id = $3, attempts = attempts + 1 \
     WHERE seq = (SELECT e.seq FROM webhook_events e WHERE e.status = 'pending' \
       AND e.next_attempt_at <= $2 AND (e.lease_until IS NULL OR e.lease_until <= $2) \
       AND NOT EXISTS (SELECT 1 FROM webhook_events p WHERE p.account_id = e.account_id \
         AND p.status = 'pending' AND p.seq < e.seq) \
       ORDER BY e.next_attempt_at, e.seq LIMIT 1) \
     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) ",
    claimed_event_columns!()
);
/// [`CLAIM_WEBHOOK`] for PostgreSQL (`FOR UPDATE SKIP LOCKED`).
pub(crate) const CLAIM_WEBHOOK_PG: &str = concat!(
    "UPDATE webhook_events SET lease_until = $1, lease_id = $3, attempts = attempts + 1 \
     WHERE seq = (SELECT e.seq FROM webhook_events e WHERE e.status = 'pending' \
       AND e.next_attempt_at <= $2 AND (e.lease_until IS NULL OR e.lease_until <= $2) \
       AND NOT EXISTS (SELECT 1 FROM webhook_events p WHERE p.account_id = e.account_id \
         AND p.status = 'pending' AND p.seq < e.seq) \
       ORDER BY e.next_attempt_at, e.seq LIMIT 1 FOR UPDATE OF e SKIP LOCKED) \
     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) ",
    claimed_event_columns!()
);
/// `$1` event, `$2` lease id, `$3` new lease end.
pub(crate) const RENEW_WEBHOOK: &str = "UPDATE webhook_events SET lease_until = $3 \
     WHERE id = $1 AND lease_id = $2 AND status = 'pending'";
/// `$1` event, `$2` now, `$3` note, `$4` lease id.
pub(crate) const FINISH_WEBHOOK: &str = "UPDATE webhook_events SET status = 'done', \
     finished_at = $2, lease_until = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` event, `$2` next attempt, `$3` error, `$4` lease id.
pub(crate) const RETRY_WEBHOOK: &str = "UPDATE webhook_events SET next_attempt_at = $2, \
     lease_until = NULL, lease_id = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` event, `$2` now, `$3` error, `$4` lease id.
pub(crate) const GIVE_UP_WEBHOOK: &str = "UPDATE webhook_events SET status = 'failed', \
     finished_at = $2, lease_until = NULL, last_error = $3 \
     WHERE id = $1 AND lease_id = $4 AND status = 'pending'";
/// `$1` event, `$2` now: a failed delivery back to pending, attempts reset.
pub(crate) const RETRY_FAILED_WEBHOOK: &str = "UPDATE webhook_events SET status = 'pending', \
     attempts = 0, next_attempt_at = $2, lease_until = NULL, lease_id = NULL, \
     finished_at = NULL WHERE id = $1 AND status = 'failed'";
/// → `pending`, `failed`, `oldest`.
pub(crate) const WEBHOOK_STATS: &str = "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest \
     FROM webhook_events WHERE status IN ('pending', 'failed')";
/// `$1` now, `$2` batch size: deletes up to a batch of expired sessions.
pub(crate) const PURGE_SESSIONS_BATCH: &str = "DELETE FROM sessions WHERE id_hash IN \
     (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2)";
/// `$1` now → `n`, the pending logins that have not expired.
pub(crate) const COUNT_PENDING_LOGINS: &str =
    "SELECT COUNT(*) AS n FROM pending_logins WHERE expires_at > $1";
/// `$1` now, `$2` batch size: deletes up to a batch of expired pending logins.
pub(crate) const PURGE_PENDING_LOGINS_BATCH: &str = "DELETE FROM pending_logins WHERE id_hash IN \
     (SELECT id_hash FROM pending_logins WHERE expires_at <= $1 LIMIT $2)";
/// `$1` finished before, `$2` batch size: deletes up to a batch of jobs done or superseded
/// before `$1` (failed jobs stay: an operator may retry them).
pub(crate) const PURGE_FINISHED_JOBS_BATCH: &str = "DELETE FROM deauth_jobs WHERE id IN \
     (SELECT id FROM deauth_jobs WHERE status IN ('done', 'superseded') AND finished_at <= $1 \
     LIMIT $2)";
/// `$1` before, `$2` batch → delivered webhook events finished at or before `$1` (failed ones
/// stay, for an operator).
pub(crate) const PURGE_DELIVERED_WEBHOOKS_BATCH: &str = "DELETE FROM webhook_events WHERE seq IN \
     (SELECT seq FROM webhook_events WHERE status = 'done' AND finished_at <= $1 LIMIT $2)";
/// `$1` task, `$2` now, `$3` the latest last run that lets this one go → `task` when this
/// caller claimed the run (inserted or moved `ran_at` forward), no row when another
/// instance ran the task within the period. One statement, so two instances cannot both
/// claim it: on PostgreSQL the second waits for the first's row lock, then re-checks the
/// condition against the new row.
pub(crate) const CLAIM_MAINTENANCE: &str = "INSERT INTO maintenance_runs (task, ran_at) \
     VALUES ($1, $2) ON CONFLICT (task) DO UPDATE SET ran_at = excluded.ran_at \
     WHERE maintenance_runs.ran_at <= $3 RETURNING task";
/// Expired rows deleted per statement by `purge_expired` (keeps each write short).
pub(crate) const PURGE_BATCH: i64 = 1000;

/// A fresh lease id (fencing token) for a claim: 128 random bits, hex.
pub(crate) fn new_lease() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The note a finished job keeps.
pub(crate) fn final_note(outcome: super::JobFinal) -> &'static str {
    match outcome {
        super::JobFinal::Deauthorized => "deauthorized",
        super::JobFinal::AlreadyInvalid => "already invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement, for the parameter-order check.
    const ALL: &[&str] = &[
        PUT_PENDING_LOGIN,
        TAKE_PENDING_LOGIN,
        COUNT_PENDING_JOBS,
        SUPERSEDE_JOBS,
        UPSERT_ACCOUNT,
        UPSERT_TOKENS,
        INSERT_SESSION,
        SESSION,
        TOUCH_SESSION,
        DELETE_SESSION,
        ACCOUNT,
        ACCOUNT_BY_SUB,
        TOKENS,
        PUT_TOKENS,
        DELETE_TOKENS,
        INSERT_DEAUTH_JOB,
        DELETE_SESSIONS_OF_ACCOUNT,
        DELETE_ACCOUNT,
        UNLINK_ACCOUNT,
        CLAIM_JOB,
        CLAIM_JOB_PG,
        RENEW_JOB,
        PUT_JOB_TOKENS,
        FINISH_JOB,
        RETRY_JOB,
        FAIL_JOB,
        RELEASE_JOB,
        GIVE_UP_JOB,
        RETRY_FAILED_JOB,
        FAILED_JOBS,
        JOB_STATUS,
        JOB_STATS,
        LATEST_JOB,
        INSERT_EVENT_FOR_ACCOUNT,
        INSERT_EVENT_FOR_JOB,
        CLAIM_WEBHOOK,
        CLAIM_WEBHOOK_PG,
        RENEW_WEBHOOK,
        FINISH_WEBHOOK,
        RETRY_WEBHOOK,
        GIVE_UP_WEBHOOK,
        RETRY_FAILED_WEBHOOK,
        WEBHOOK_STATS,
        PURGE_SESSIONS_BATCH,
        PURGE_PENDING_LOGINS_BATCH,
        PURGE_FINISHED_JOBS_BATCH,
        PURGE_DELIVERED_WEBHOOKS_BATCH,
        CLAIM_MAINTENANCE,
    ];

    #[test]
    fn parameters_run_from_one_without_gaps() {
        for sql in ALL {
            let mut seen = Vec::new();
            let bytes = sql.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'$' {
                    let digits: String = sql[i + 1..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let n: usize = digits.parse().unwrap();
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                    i += digits.len();
                }
                i += 1;
            }
            seen.sort_unstable();
            let expected: Vec<usize> = (1..=seen.len()).collect();
            assert_eq!(seen, expected, "{sql}");
        }
    }
}
