//! The operator's side of the store: [`Admin`], for `linelogin outbox`, `linelogin accounts`
//! and `linelogin keys rotate`. Kept apart from [`Store`] (the serving path's trait): every
//! backend implements both, and [`connect_admin`] opens a store as an [`AdminStore`], which is
//! both (it coerces to `Arc<dyn Store>` where the serving code wants one).
//!
//! The SQL is shared by both backends, like `store::sql`: `$n` parameters, each of
//! `$1 … $n` used, in order; and so is [`Admin`] itself, written once over the backends'
//! way of running statements (`store::outbox::Exec`).

use std::sync::Arc;

use async_trait::async_trait;

use super::outbox::{Exec, Value};
use super::{Account, Store, StoreError, StoredTokens, Timeouts, rows};
use crate::config::DatabaseUrl;

/// A deauthorization job as an operator sees it (no LINE user id, no tokens).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// The account it came from (our opaque id; the account may be deleted).
    pub account_id: String,
    /// `unregister` or `unlink`.
    pub reason: String,
    /// `pending`, `done`, `failed`, `superseded` or `cancelled`.
    pub status: String,
    /// Attempts counted so far.
    pub attempts: i64,
    /// The last error, or the final note of a finished job.
    pub last_error: Option<String>,
    /// Created, Unix ms.
    pub created_at: i64,
    /// When a pending job is due next, Unix ms.
    pub next_attempt_at: i64,
    /// Until when a worker holds it, Unix ms.
    pub lease_until: Option<i64>,
    /// When it finished (done, failed, superseded, cancelled), Unix ms.
    pub finished_at: Option<i64>,
    /// Whether it still holds the user's (encrypted) tokens.
    pub has_tokens: bool,
}

/// One stored pair of tokens, with the owner it is bound to (for re-encryption).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// The account id (account tokens) or the job id (job tokens).
    pub owner: String,
    /// Issuer (part of the ciphertexts' binding).
    pub issuer: String,
    /// LINE user id (part of the ciphertexts' binding).
    pub sub: String,
    /// The ciphertexts.
    pub tokens: StoredTokens,
}

/// Where stored tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTable {
    /// Accounts' tokens.
    Accounts,
    /// Deauthorization jobs' tokens.
    Jobs,
}

/// Operator queries and changes.
#[async_trait]
pub trait Admin: Send + Sync {
    /// Up to `limit` jobs, the newest first, of one status or of all.
    async fn jobs(&self, status: Option<&str>, limit: i64) -> Result<Vec<JobInfo>, StoreError>;

    /// Up to `limit` jobs of one LINE user id (any issuer), the newest first: "was this user
    /// deauthorized, and when?".
    async fn jobs_of_user(&self, sub: &str, limit: i64) -> Result<Vec<JobInfo>, StoreError>;

    /// One job.
    async fn job(&self, job_id: &str) -> Result<Option<JobInfo>, StoreError>;

    /// Cancels a job that is failed, or pending and not held by a worker at `now`: it becomes
    /// `cancelled` and its tokens are wiped. [`StoreError::NotFound`] when no such job
    /// exists (unknown, finished, or in flight right now).
    async fn cancel_job(&self, job_id: &str, note: &str, now: i64) -> Result<(), StoreError>;

    /// The accounts of a LINE user id (one per issuer).
    async fn accounts_by_user(&self, sub: &str) -> Result<Vec<Account>, StoreError>;

    /// Up to `limit` token rows of `table` whose owner id sorts after `after`, in owner order
    /// (a resumable scan).
    async fn token_page(
        &self,
        table: TokenTable,
        after: &str,
        limit: i64,
    ) -> Result<Vec<TokenRow>, StoreError>;

    /// Replaces a row's ciphertexts with `new` if they are still `old` (a refresh in between
    /// wins); whether it did.
    async fn replace_tokens(
        &self,
        table: TokenTable,
        owner: &str,
        old: &StoredTokens,
        new: &StoredTokens,
    ) -> Result<bool, StoreError>;

    /// When an account last changed (a login updates it), Unix ms; `None` with no account:
    /// `linelogin check` asks whether logins were served lately.
    async fn last_account_update(&self) -> Result<Option<i64>, StoreError>;
}

#[async_trait]
impl<B: Exec + Send + Sync> Admin for B {
    async fn jobs(&self, status: Option<&str>, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let (by_status, all) = (
            [Value::Text(status.unwrap_or_default()), Value::Int(limit)],
            [Value::Int(limit)],
        );
        let statement = match status {
            Some(_) => (JOBS_BY_STATUS, &by_status[..]),
            None => (JOBS_ALL, &all[..]),
        };
        self.query(statement, rows::job_info, false).await
    }

    async fn jobs_of_user(&self, sub: &str, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let values = [Value::Text(sub), Value::Int(limit)];
        self.query((JOBS_OF_USER, &values), rows::job_info, false)
            .await
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobInfo>, StoreError> {
        let values = [Value::Text(job_id)];
        let jobs = self.query((JOB, &values), rows::job_info, false).await?;
        Ok(jobs.into_iter().next())
    }

    async fn cancel_job(&self, job_id: &str, note: &str, now: i64) -> Result<(), StoreError> {
        let values = [Value::Text(job_id), Value::Int(now), Value::Text(note)];
        match self.write((CANCEL_JOB, &values), None).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn accounts_by_user(&self, sub: &str) -> Result<Vec<Account>, StoreError> {
        let values = [Value::Text(sub)];
        self.query((ACCOUNTS_BY_USER, &values), rows::account, false)
            .await
    }

    async fn token_page(
        &self,
        table: TokenTable,
        after: &str,
        limit: i64,
    ) -> Result<Vec<TokenRow>, StoreError> {
        let (page, _) = token_statements(table);
        let values = [Value::Text(after), Value::Int(limit)];
        let rows = self.query((page, &values), rows::token_row, false).await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn replace_tokens(
        &self,
        table: TokenTable,
        owner: &str,
        old: &StoredTokens,
        new: &StoredTokens,
    ) -> Result<bool, StoreError> {
        let (_, replace) = token_statements(table);
        let values = [
            Value::Text(owner),
            Value::Bytes(&old.access_ct),
            Value::Bytes(&old.refresh_ct),
            Value::Bytes(&new.access_ct),
            Value::Bytes(&new.refresh_ct),
        ];
        Ok(self.write((replace, &values), None).await? == 1)
    }

    async fn last_account_update(&self) -> Result<Option<i64>, StoreError> {
        let at = self
            .query((LAST_ACCOUNT_UPDATE, &[]), rows::at, false)
            .await?;
        Ok(at.into_iter().flatten().next())
    }
}

/// A store with its operator side.
pub trait AdminStore: Store + Admin {}

impl<T: Store + Admin> AdminStore for T {}

/// Opens the existing store named by the URL with its operator side, and runs its
/// migrations. Never creates a database: a SQLite file that does not exist (or an in-memory
/// URL, which would be a new, empty database) is [`StoreError::Unavailable`].
pub async fn connect_admin(
    url: &DatabaseUrl,
    timeouts: Timeouts,
) -> Result<Arc<dyn AdminStore>, StoreError> {
    let raw = url.expose();
    let store: Arc<dyn AdminStore> = match super::backend_of(url)? {
        #[cfg(feature = "sqlite")]
        crate::config::Backend::Sqlite => {
            match super::sqlite_file_path(raw)? {
                Some(path) if path.is_file() => {}
                Some(path) => {
                    return Err(StoreError::Unavailable(
                        format!(
                            "no database at {} (nothing was created; is database_url right?)",
                            path.display()
                        )
                        .into(),
                    ));
                }
                None => {
                    return Err(StoreError::Unavailable(
                        "database_url is an in-memory SQLite database, which only the server's \
                         process can see"
                            .into(),
                    ));
                }
            }
            Arc::new(super::SqliteStore::connect_with(raw, timeouts).await?)
        }
        #[cfg(feature = "postgres")]
        crate::config::Backend::Postgres => {
            Arc::new(super::PostgresStore::connect_with(raw, None, timeouts).await?)
        }
        #[allow(unreachable_patterns)] // with both features, every backend has an arm above
        missing => return Err(StoreError::Unavailable(missing.not_compiled().0.into())),
    };
    store.migrate().await?;
    Ok(store)
}

/// The columns of a [`JobInfo`].
macro_rules! job_columns {
    () => {
        "SELECT id, account_id, reason, status, attempts, last_error, created_at, \
         next_attempt_at, lease_until, finished_at, \
         CASE WHEN access_ct IS NULL THEN 0 ELSE 1 END AS has_tokens FROM deauth_jobs "
    };
}

/// `$1` limit → every job, the newest first.
pub(crate) const JOBS_ALL: &str = concat!(job_columns!(), "ORDER BY created_at DESC, id LIMIT $1");
/// `$1` status, `$2` limit → the jobs of that status, the newest first.
pub(crate) const JOBS_BY_STATUS: &str = concat!(
    job_columns!(),
    "WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
);
/// `$1` LINE user id, `$2` limit → that user's jobs, the newest first.
pub(crate) const JOBS_OF_USER: &str = concat!(
    job_columns!(),
    "WHERE sub = $1 ORDER BY created_at DESC, id LIMIT $2"
);
/// `$1` job id.
pub(crate) const JOB: &str = concat!(job_columns!(), "WHERE id = $1");
/// `$1` job, `$2` now, `$3` note.
pub(crate) const CANCEL_JOB: &str = "UPDATE deauth_jobs SET status = 'cancelled', \
     finished_at = $2, lease_until = NULL, access_ct = NULL, refresh_ct = NULL, last_error = $3 \
     WHERE id = $1 AND (status = 'failed' OR (status = 'pending' \
     AND (lease_until IS NULL OR lease_until <= $2)))";
/// `$1` LINE user id.
pub(crate) const ACCOUNTS_BY_USER: &str = "SELECT a.id, a.issuer, a.sub, a.display_name, \
     a.picture_url, a.status, a.created_at FROM accounts a WHERE a.sub = $1 \
     ORDER BY a.created_at, a.id";
/// The latest `updated_at` of the accounts (NULL when there is none).
pub(crate) const LAST_ACCOUNT_UPDATE: &str = "SELECT MAX(updated_at) AS at FROM accounts";
/// `$1` after, `$2` limit.
pub(crate) const ACCOUNT_TOKEN_PAGE: &str = "SELECT a.id AS owner, a.issuer, a.sub, \
     t.access_ct, t.refresh_ct, t.access_expires_at, t.refresh_issued_at \
     FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.account_id > $1 \
     ORDER BY t.account_id LIMIT $2";
/// `$1` after, `$2` limit.
pub(crate) const JOB_TOKEN_PAGE: &str = "SELECT id AS owner, issuer, sub, access_ct, \
     refresh_ct, access_expires_at, refresh_issued_at FROM deauth_jobs \
     WHERE id > $1 AND access_ct IS NOT NULL AND refresh_ct IS NOT NULL ORDER BY id LIMIT $2";
/// `$1` account, `$2` old access ct, `$3` old refresh ct, `$4` new access ct, `$5` new
/// refresh ct.
pub(crate) const REPLACE_ACCOUNT_TOKENS: &str = "UPDATE tokens SET access_ct = $4, \
     refresh_ct = $5 WHERE account_id = $1 AND access_ct = $2 AND refresh_ct = $3";
/// `$1` job, `$2` old access ct, `$3` old refresh ct, `$4` new access ct, `$5` new refresh ct.
pub(crate) const REPLACE_JOB_TOKENS: &str = "UPDATE deauth_jobs SET access_ct = $4, \
     refresh_ct = $5 WHERE id = $1 AND access_ct = $2 AND refresh_ct = $3";

/// The statements of a table: its page query and its compare-and-replace.
pub(crate) fn token_statements(table: TokenTable) -> (&'static str, &'static str) {
    match table {
        TokenTable::Accounts => (ACCOUNT_TOKEN_PAGE, REPLACE_ACCOUNT_TOKENS),
        TokenTable::Jobs => (JOB_TOKEN_PAGE, REPLACE_JOB_TOKENS),
    }
}

/// The statuses a job can have (what `--state` accepts).
pub const JOB_STATUSES: &[&str] = &["pending", "failed", "done", "superseded", "cancelled"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_run_from_one_without_gaps() {
        for sql in [
            JOBS_ALL,
            JOBS_BY_STATUS,
            JOBS_OF_USER,
            JOB,
            CANCEL_JOB,
            ACCOUNTS_BY_USER,
            LAST_ACCOUNT_UPDATE,
            ACCOUNT_TOKEN_PAGE,
            JOB_TOKEN_PAGE,
            REPLACE_ACCOUNT_TOKENS,
            REPLACE_JOB_TOKENS,
        ] {
            let mut seen: Vec<usize> = sql
                .split('$')
                .skip(1)
                .filter_map(|s| {
                    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                })
                .collect();
            seen.sort_unstable();
            seen.dedup();
            let expected: Vec<usize> = (1..=seen.len()).collect();
            assert_eq!(seen, expected, "{sql}");
        }
    }
}
