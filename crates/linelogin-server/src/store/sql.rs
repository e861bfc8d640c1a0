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

/// The statements of one outbox table. Deauthorization jobs and webhook deliveries are both
/// outboxes with the same lifecycle columns (`status`, `attempts`, `next_attempt_at`,
/// `lease_until`, `lease_id`, `last_error`, `finished_at`): a row is claimed under a fresh
/// lease id, renewed while its work is in flight, and every later write is fenced by that
/// lease id (it changes nothing once another claim has replaced it). [`outbox!`] writes these
/// statements once; [`JOBS`] and [`WEBHOOKS`] differ only in what the macro is given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outbox {
    /// `$1` lease end, `$2` now, `$3` lease id → the claimed row (SQLite: one writer, so the
    /// sub-select and the update cannot race).
    pub(crate) claim: &'static str,
    /// [`Outbox::claim`] for PostgreSQL: `FOR UPDATE SKIP LOCKED`, so instances claiming at
    /// once each take a different row instead of queueing on the same one.
    pub(crate) claim_pg: &'static str,
    /// `$1` id, `$2` lease id, `$3` new lease end: renews a lease still held.
    pub(crate) renew: &'static str,
    /// `$1` id, `$2` now, `$3` note, `$4` lease id: done.
    pub(crate) finish: &'static str,
    /// `$1` id, `$2` next attempt, `$3` error, `$4` lease id: back for a later attempt.
    pub(crate) retry: &'static str,
    /// `$1` id, `$2` now, `$3` error, `$4` lease id: failed after the last attempt, kept
    /// sendable by [`Outbox::retry_failed`] (a job keeps its encrypted tokens).
    pub(crate) give_up: &'static str,
    /// `$1` id, `$2` now: a failed row that can be sent back to pending, attempts reset.
    pub(crate) retry_failed: &'static str,
    /// → `pending`, `failed`, `oldest`.
    pub(crate) stats: &'static str,
    /// `$1` finished before, `$2` batch size: deletes up to a batch of finished rows (failed
    /// ones stay, for an operator).
    pub(crate) purge: &'static str,
}

/// The `WHERE` of a fenced write: `$1` id, `$4` lease id, still pending.
macro_rules! fenced {
    ($table:literal, $set:expr) => {
        concat!(
            "UPDATE ",
            $table,
            " SET ",
            $set,
            " WHERE id = $1 AND lease_id = $4 AND status = 'pending'"
        )
    };
}

/// An [`Outbox`] of `table`, whose rows are picked by `key` (`id`, or `seq` where the
/// insertion order is kept), due ones `in_order` (a further condition on the candidate `e`)
/// by `order_by`; a claim `returning` those columns, a finish that also sets `finish_sets`,
/// a failed row sendable again when `retryable`, and the finished statuses that are `purged`.
macro_rules! outbox {
    (
        table: $table:literal,
        key: $key:literal,
        in_order: $in_order:literal,
        order_by: $order_by:literal,
        returning: $returning:literal,
        finish_sets: $finish_sets:literal,
        retryable: $retryable:literal,
        purged: $purged:literal $(,)?
    ) => {
        Outbox {
            claim: outbox!(@claim $table, $key, $in_order, $order_by, "", $returning),
            claim_pg: outbox!(@claim $table, $key, $in_order, $order_by,
                " FOR UPDATE OF e SKIP LOCKED", $returning),
            renew: concat!(
                "UPDATE ", $table, " SET lease_until = $3 \
                 WHERE id = $1 AND lease_id = $2 AND status = 'pending'"
            ),
            finish: fenced!($table, concat!(
                "status = 'done', finished_at = $2, lease_until = NULL, ", $finish_sets,
                "last_error = $3"
            )),
            retry: fenced!($table, "next_attempt_at = $2, lease_until = NULL, lease_id = NULL, \
                last_error = $3"),
            give_up: fenced!($table, "status = 'failed', finished_at = $2, lease_until = NULL, \
                last_error = $3"),
            retry_failed: concat!(
                "UPDATE ", $table, " SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                 lease_until = NULL, lease_id = NULL, finished_at = NULL \
                 WHERE id = $1 AND status = 'failed'", $retryable
            ),
            stats: concat!(
                "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) \
                 AS pending, \
                 COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
                 MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest \
                 FROM ", $table, " WHERE status IN ('pending', 'failed')"
            ),
            purge: concat!(
                "DELETE FROM ", $table, " WHERE ", $key, " IN (SELECT ", $key, " FROM ", $table,
                " WHERE status IN (", $purged, ") AND finished_at <= $1 LIMIT $2)"
            ),
        }
    };
    (@claim $table:literal, $key:literal, $in_order:literal, $order_by:literal,
        $lock:literal, $returning:literal) => {
        concat!(
            "UPDATE ", $table, " SET lease_until = $1, lease_id = $3, attempts = attempts + 1 \
             WHERE ", $key, " = (SELECT e.", $key, " FROM ", $table, " e \
             WHERE e.status = 'pending' AND e.next_attempt_at <= $2 \
             AND (e.lease_until IS NULL OR e.lease_until <= $2)", $in_order,
            " ORDER BY ", $order_by, " LIMIT 1", $lock, ") \
             AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) RETURNING ",
            $returning
        )
    };
}

/// The deauthorization jobs. A finished or failed job's tokens are wiped, but a job given up
/// after its last attempt keeps them, so that an operator can send it again — unless its LINE
/// user has linked again since (sending it would revoke the new link). Done and superseded
/// jobs are purged.
pub(crate) const JOBS: Outbox = outbox! {
    table: "deauth_jobs",
    key: "id",
    in_order: "",
    order_by: "e.next_attempt_at, e.created_at",
    returning: "id, account_id, issuer, sub, reason, access_ct, refresh_ct, \
        access_expires_at, refresh_issued_at, attempts, created_at, lease_id",
    finish_sets: "access_ct = NULL, refresh_ct = NULL, ",
    retryable: " AND access_ct IS NOT NULL \
        AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.issuer = deauth_jobs.issuer \
        AND a.sub = deauth_jobs.sub AND a.status = 'linked')",
    purged: "'done', 'superseded'",
};

/// The webhook events: an event waits while an earlier event of the same account is pending
/// (one account's events arrive in order, by `seq`). Delivered events are purged.
pub(crate) const WEBHOOKS: Outbox = outbox! {
    table: "webhook_events",
    key: "seq",
    in_order: " AND NOT EXISTS (SELECT 1 FROM webhook_events p \
        WHERE p.account_id = e.account_id AND p.status = 'pending' AND p.seq < e.seq)",
    order_by: "e.next_attempt_at, e.seq",
    returning: "id, event_type, account_id, user_id, job_id, occurred_at, attempts, lease_id",
    finish_sets: "",
    retryable: "",
    purged: "'done'",
};

/// `$1` job, `$2` access ct, `$3` refresh ct, `$4` access expiry, `$5` refresh issued,
/// `$6` lease id.
pub(crate) const PUT_JOB_TOKENS: &str = "UPDATE deauth_jobs SET access_ct = $2, \
     refresh_ct = $3, access_expires_at = $4, refresh_issued_at = $5 \
     WHERE id = $1 AND lease_id = $6 AND status = 'pending'";
/// `$1` job, `$2` now, `$3` error, `$4` lease id: gives up for good, tokens wiped.
pub(crate) const FAIL_JOB: &str = fenced!(
    "deauth_jobs",
    "status = 'failed', finished_at = $2, lease_until = NULL, access_ct = NULL, \
     refresh_ct = NULL, last_error = $3"
);
/// `$1` job, `$2` next attempt, `$3` note, `$4` lease id: puts a claimed job back without
/// counting the attempt (the outbound policy refused the call locally; nothing reached LINE).
pub(crate) const RELEASE_JOB: &str = fenced!(
    "deauth_jobs",
    "next_attempt_at = $2, lease_until = NULL, lease_id = NULL, last_error = $3, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
);
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
/// `$1` now, `$2` batch size: deletes up to a batch of expired sessions.
pub(crate) const PURGE_SESSIONS_BATCH: &str = "DELETE FROM sessions WHERE id_hash IN \
     (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2)";
/// `$1` now → `n`, the pending logins that have not expired.
pub(crate) const COUNT_PENDING_LOGINS: &str =
    "SELECT COUNT(*) AS n FROM pending_logins WHERE expires_at > $1";
/// `$1` now, `$2` batch size: deletes up to a batch of expired pending logins.
pub(crate) const PURGE_PENDING_LOGINS_BATCH: &str = "DELETE FROM pending_logins WHERE id_hash IN \
     (SELECT id_hash FROM pending_logins WHERE expires_at <= $1 LIMIT $2)";
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
        PUT_JOB_TOKENS,
        FAIL_JOB,
        RELEASE_JOB,
        FAILED_JOBS,
        JOB_STATUS,
        LATEST_JOB,
        INSERT_EVENT_FOR_ACCOUNT,
        INSERT_EVENT_FOR_JOB,
        PURGE_SESSIONS_BATCH,
        PURGE_PENDING_LOGINS_BATCH,
        CLAIM_MAINTENANCE,
    ];

    impl Outbox {
        /// Every statement of the outbox.
        fn statements(&self) -> [&'static str; 9] {
            [
                self.claim,
                self.claim_pg,
                self.renew,
                self.finish,
                self.retry,
                self.give_up,
                self.retry_failed,
                self.stats,
                self.purge,
            ]
        }
    }

    #[test]
    fn parameters_run_from_one_without_gaps() {
        let outboxes = [JOBS, WEBHOOKS].map(|o| o.statements());
        for sql in ALL.iter().chain(outboxes.iter().flatten()) {
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
