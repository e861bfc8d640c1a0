//! The PostgreSQL backend, behind the same [`Store`](super::Store) trait as SQLite. How it runs
//! the shared outbox path and the operator's side (`store::outbox`, `store::admin`) is in its
//! child `exec` (`postgres_exec.rs`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};

#[path = "postgres_exec.rs"]
mod exec;

use super::{Account, AccountStatus, DeauthJob, DeauthReason, EventKind, FailedJob, JobFinal};
use super::{JobStats, JobSummary, LoginWrite, SessionRecord, Store, StoreError, StoredTokens};
use super::{WebhookEvent, outbox, rows, sql};

/// A login of a LINE user with no pending deauthorization job, as one statement (so one
/// round trip and one transaction instead of six round trips: BEGIN, the job count, the three
/// upserts, COMMIT). PostgreSQL only: data-modifying `WITH` clauses, which SQLite lacks
/// (SQLite runs in-process, where round trips cost nothing).
///
/// `$1` new id, `$2` issuer, `$3` sub, `$4` display name, `$5` picture, `$6` now, `$7` access
/// ct, `$8` refresh ct, `$9` access expiry, `$10` refresh issued, `$11` the session it
/// replaces (or NULL), `$12` new session id hash, `$13` CSRF token, `$14` session expiry →
/// the account, or no row when the user has a pending job (then nothing was written: every
/// part reads the account from `acct`, which inserts nothing then).
///
/// Why this is as safe as the transaction: all parts share one snapshot, and a job can only
/// be claimed or superseded if it exists; a job inserted concurrently is invisible to the
/// transaction too (both run at READ COMMITTED).
const COMPLETE_LOGIN_WITHOUT_JOBS: &str = "WITH acct AS ( \
     INSERT INTO accounts (id, issuer, sub, display_name, picture_url, status, created_at, \
     updated_at) \
     SELECT $1, $2, $3, $4, $5, 'linked', $6, $6 WHERE NOT EXISTS (SELECT 1 FROM deauth_jobs \
       WHERE issuer = $2 AND sub = $3 AND status = 'pending') \
     ON CONFLICT (issuer, sub) DO UPDATE SET display_name = excluded.display_name, \
     picture_url = excluded.picture_url, status = 'linked', updated_at = excluded.updated_at \
     RETURNING id, issuer, sub, display_name, picture_url, status, created_at), \
   tok AS ( \
     INSERT INTO tokens (account_id, access_ct, refresh_ct, access_expires_at, \
     refresh_issued_at, updated_at) SELECT id, $7, $8, $9, $10, $6 FROM acct \
     ON CONFLICT (account_id) DO UPDATE SET access_ct = excluded.access_ct, \
     refresh_ct = excluded.refresh_ct, access_expires_at = excluded.access_expires_at, \
     refresh_issued_at = excluded.refresh_issued_at, updated_at = excluded.updated_at), \
   old AS (DELETE FROM sessions WHERE id_hash = $11 AND EXISTS (SELECT 1 FROM acct)), \
   sess AS ( \
     INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, \
     expires_at) SELECT $12, id, $13, $6, $6, $14 FROM acct) \
   SELECT id, issuer, sub, display_name, picture_url, status, created_at FROM acct";

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    /// Connects to a `postgres://` URL. With `schema`, the schema is created if missing and
    /// every connection works inside it (tests use one schema per run). Call
    /// [`Store::migrate`](super::Store::migrate) before use (or use [`super::connect`]).
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        Self::connect_with(url, schema, super::Timeouts::default()).await
    }

    /// [`PostgresStore::connect`] with these bounded waits: the pool's acquire timeout, and
    /// `statement_timeout` and `lock_timeout` on every connection (so a locked table or a
    /// stalled statement fails in time instead of holding the request).
    pub async fn connect_with(
        url: &str,
        schema: Option<&str>,
        timeouts: super::Timeouts,
    ) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("bad postgres URL: {}", redact_err(&e)).into())
        })?;
        if let Some(schema) = schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Unavailable("bad schema name".into()));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeouts.acquire)
                .connect_with(options.clone())
                .await
                .map_err(map_err)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await
                .map_err(map_err)?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let statement_ms = timeouts.statement.max(Duration::from_millis(1)).as_millis();
        options = options.options([
            ("statement_timeout", statement_ms),
            ("lock_timeout", statement_ms),
        ]);
        // No ping before each acquire (sqlx's default): it was one more round trip for every
        // statement. sqlx still pings a connection when it is released, and closes it if
        // that fails, so a broken connection leaves the pool after its first failed
        // statement (a 503 for that request, as for any database failure).
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .test_before_acquire(false)
            .acquire_timeout(timeouts.acquire)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self { pool })
    }

    /// A login in one round trip: upsert the account and its tokens and replace the
    /// session in one statement (its own transaction), when the LINE user has no pending
    /// deauthorization job (the common case). `None` when there is one: then
    /// [`PostgresStore::complete_login_with_jobs`] deals with it.
    async fn complete_login_fast(&self, login: &LoginWrite) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(COMPLETE_LOGIN_WITHOUT_JOBS)
            .bind(&login.new_account_id)
            .bind(&login.issuer)
            .bind(&login.sub)
            .bind(&login.display_name)
            .bind(&login.picture_url)
            .bind(login.now)
            .bind(&login.tokens.access_ct)
            .bind(&login.tokens.refresh_ct)
            .bind(login.tokens.access_expires_at)
            .bind(login.tokens.refresh_issued_at)
            .bind(&login.replaces_session)
            .bind(&login.session.id_hash)
            .bind(&login.session.csrf_token)
            .bind(login.session.expires_at)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// One transaction: supersede stale jobs (or refuse while one is in flight), upsert the
    /// account and its tokens, replace the session.
    async fn complete_login_with_jobs(&self, login: &LoginWrite) -> Result<Account, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // A stale deauthorization of this LINE user must never revoke the new link:
        // supersede it unless a worker is sending it right now. (The common case, no
        // job at all, costs one indexed lookup.)
        let pending: i64 = sqlx::query(sql::COUNT_PENDING_JOBS)
            .bind(&login.issuer)
            .bind(&login.sub)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?
            .try_get("n")
            .map_err(map_err)?;
        if pending > 0 {
            sqlx::query(sql::SUPERSEDE_JOBS)
                .bind(&login.issuer)
                .bind(&login.sub)
                .bind(login.now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let in_flight: i64 = sqlx::query(sql::COUNT_PENDING_JOBS)
                .bind(&login.issuer)
                .bind(&login.sub)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?
                .try_get("n")
                .map_err(map_err)?;
            if in_flight > 0 {
                return Err(StoreError::Busy(
                    "a deauthorization of this user is in progress",
                ));
            }
        }
        // With webhooks on: was the account unlinked before this login? (`account.linked`
        // is written only when the login creates the account or links it again.)
        let was_unlinked = match &login.linked_event {
            Some(_) => sqlx::query(sql::ACCOUNT_BY_SUB)
                .bind(&login.issuer)
                .bind(&login.sub)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .map(|row| account_from_row(&row))
                .transpose()?
                .is_some_and(|a| a.status == AccountStatus::Unlinked),
            None => false,
        };
        let row = sqlx::query(sql::UPSERT_ACCOUNT)
            .bind(&login.new_account_id)
            .bind(&login.issuer)
            .bind(&login.sub)
            .bind(&login.display_name)
            .bind(&login.picture_url)
            .bind(login.now)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let account = account_from_row(&row)?;
        sqlx::query(sql::UPSERT_TOKENS)
            .bind(&account.id)
            .bind(&login.tokens.access_ct)
            .bind(&login.tokens.refresh_ct)
            .bind(login.tokens.access_expires_at)
            .bind(login.tokens.refresh_issued_at)
            .bind(login.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some(old) = &login.replaces_session {
            sqlx::query(sql::DELETE_SESSION)
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(sql::INSERT_SESSION)
            .bind(&login.session.id_hash)
            .bind(&account.id)
            .bind(&login.session.csrf_token)
            .bind(login.now)
            .bind(login.session.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Created by this login: the upsert kept our fresh id (of two first logins at once,
        // only the one that inserted writes the event).
        let created = account.id == login.new_account_id;
        if let Some(event) = login
            .linked_event
            .as_ref()
            .filter(|_| created || was_unlinked)
        {
            sqlx::query(sql::INSERT_EVENT_FOR_ACCOUNT)
                .bind(event)
                .bind(EventKind::Linked.as_str())
                .bind(login.now)
                .bind(&account.id)
                .bind(None::<String>)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(account)
    }
}

/// Maps a driver error to the backend-neutral error (unique violations by constraint name).
fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Unavailable(crate::store::Cause::of(err)),
    }
}

/// An account out of a row (see [`rows::account`]).
fn account_from_row(row: &PgRow) -> Result<Account, StoreError> {
    rows::account(row)
}

/// Stored tokens out of a row (see [`rows::tokens`]).
fn tokens_from_row(row: &PgRow) -> Result<Option<StoredTokens>, StoreError> {
    rows::tokens(row)
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        Self::MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(crate::store::Cause::of(e)))
    }

    async fn put_pending_login(
        &self,
        id_hash: &str,
        data: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::PUT_PENDING_LOGIN)
            .bind(id_hash)
            .bind(data)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn count_pending_logins(&self, now: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(sql::COUNT_PENDING_LOGINS)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let n: i64 = row.try_get("n").map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn take_pending_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(sql::TAKE_PENDING_LOGIN)
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at").map_err(map_err)?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(row.try_get("data").map_err(map_err)?))
    }

    async fn complete_login(&self, login: &LoginWrite) -> Result<Account, StoreError> {
        // With webhooks on, `account.linked` must be written in the same transaction when the
        // login creates or re-links the account: the one-statement path does not know it.
        if login.linked_event.is_some() {
            return self.complete_login_with_jobs(login).await;
        }
        match self.complete_login_fast(login).await? {
            Some(account) => Ok(account),
            None => self.complete_login_with_jobs(login).await,
        }
    }

    async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(sql::SESSION)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            account: account_from_row(&row)?,
            csrf_token: row.try_get("csrf_token").map_err(map_err)?,
            created_at: row.try_get("s_created_at").map_err(map_err)?,
            last_seen_at: row.try_get("last_seen_at").map_err(map_err)?,
            expires_at: row.try_get("expires_at").map_err(map_err)?,
        }))
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(sql::TOUCH_SESSION)
            .bind(id_hash)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query(sql::DELETE_SESSION)
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(sql::ACCOUNT)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_sub(&self, issuer: &str, sub: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(sql::ACCOUNT_BY_SUB)
            .bind(issuer)
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn tokens(&self, account_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        let row = sqlx::query(sql::TOKENS)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => tokens_from_row(&row),
            None => Ok(None),
        }
    }

    async fn put_tokens(
        &self,
        account_id: &str,
        tokens: &StoredTokens,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(sql::PUT_TOKENS)
            .bind(account_id)
            .bind(&tokens.access_ct)
            .bind(&tokens.refresh_ct)
            .bind(tokens.access_expires_at)
            .bind(tokens.refresh_issued_at)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_tokens(&self, account_id: &str) -> Result<(), StoreError> {
        sqlx::query(sql::DELETE_TOKENS)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn deauthorize_account(
        &self,
        account_id: &str,
        job_id: &str,
        reason: DeauthReason,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(sql::INSERT_DEAUTH_JOB)
            .bind(job_id)
            .bind(reason.as_str())
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if inserted.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        if let Some(event) = event {
            let kind = match reason {
                DeauthReason::Unregister => EventKind::Unregistered,
                DeauthReason::Unlink => EventKind::Unlinked,
            };
            sqlx::query(sql::INSERT_EVENT_FOR_ACCOUNT)
                .bind(event)
                .bind(kind.as_str())
                .bind(now)
                .bind(account_id)
                .bind(Some(job_id))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for statement in [sql::DELETE_SESSIONS_OF_ACCOUNT, sql::DELETE_TOKENS] {
            sqlx::query(statement)
                .bind(account_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        match reason {
            DeauthReason::Unregister => sqlx::query(sql::DELETE_ACCOUNT).bind(account_id),
            DeauthReason::Unlink => sqlx::query(sql::UNLINK_ACCOUNT).bind(account_id).bind(now),
        }
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<DeauthJob>, StoreError> {
        outbox::claim(self, &sql::JOBS, now, lease_ms, rows::deauth_job).await
    }

    async fn renew_job_lease(
        &self,
        job_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        outbox::renew(self, &sql::JOBS, job_id, lease, until).await
    }

    async fn put_job_tokens(
        &self,
        job_id: &str,
        lease: &str,
        tokens: &StoredTokens,
    ) -> Result<(), StoreError> {
        outbox::put_job_tokens(self, job_id, lease, tokens).await
    }

    async fn finish_job(
        &self,
        job_id: &str,
        lease: &str,
        outcome: JobFinal,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        let event = event.map(|e| (e, EventKind::Deauthorized));
        let note = sql::final_note(outcome);
        outbox::update(self, sql::JOBS.finish, (job_id, lease), now, note, event).await
    }

    async fn retry_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let (retry, held) = (sql::JOBS.retry, (job_id, lease));
        outbox::update(self, retry, held, next_attempt_at, error, None).await
    }

    async fn fail_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        let event = event.map(|e| (e, EventKind::DeauthorizationFailed));
        outbox::update(self, sql::FAIL_JOB, (job_id, lease), now, error, event).await
    }

    async fn release_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        let (release, held) = (sql::RELEASE_JOB, (job_id, lease));
        outbox::update(self, release, held, next_attempt_at, note, None).await
    }

    async fn give_up_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        let event = event.map(|e| (e, EventKind::DeauthorizationFailed));
        outbox::update(self, sql::JOBS.give_up, (job_id, lease), now, error, event).await
    }

    async fn retry_failed_job(&self, job_id: &str, now: i64) -> Result<(), StoreError> {
        outbox::retry_failed(self, &sql::JOBS, job_id, now).await
    }

    async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError> {
        let values = [outbox::Value::Int(limit)];
        let statement = (sql::FAILED_JOBS, &values[..]);
        outbox::Exec::query(self, statement, rows::failed_job, false).await
    }

    async fn job_status(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        let values = [outbox::Value::Text(job_id)];
        outbox::read_one(self, (sql::JOB_STATUS, &values), rows::status).await
    }

    async fn job_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        outbox::stats(self, &sql::JOBS, now).await
    }

    async fn latest_job(&self, account_id: &str) -> Result<Option<JobSummary>, StoreError> {
        let values = [outbox::Value::Text(account_id)];
        outbox::read_one(self, (sql::LATEST_JOB, &values), rows::job_summary).await
    }

    async fn claim_webhook(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        outbox::claim(self, &sql::WEBHOOKS, now, lease_ms, rows::webhook_event).await
    }

    async fn renew_webhook_lease(
        &self,
        event_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        outbox::renew(self, &sql::WEBHOOKS, event_id, lease, until).await
    }

    async fn finish_webhook(
        &self,
        event_id: &str,
        lease: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (finish, held) = (sql::WEBHOOKS.finish, (event_id, lease));
        outbox::update(self, finish, held, now, "delivered", None).await
    }

    async fn retry_webhook(
        &self,
        event_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let (retry, held) = (sql::WEBHOOKS.retry, (event_id, lease));
        outbox::update(self, retry, held, next_attempt_at, error, None).await
    }

    async fn give_up_webhook(
        &self,
        event_id: &str,
        lease: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (give_up, held) = (sql::WEBHOOKS.give_up, (event_id, lease));
        outbox::update(self, give_up, held, now, error, None).await
    }

    async fn retry_failed_webhook(&self, event_id: &str, now: i64) -> Result<(), StoreError> {
        outbox::retry_failed(self, &sql::WEBHOOKS, event_id, now).await
    }

    async fn webhook_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        outbox::stats(self, &sql::WEBHOOKS, now).await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let statements = [sql::PURGE_SESSIONS_BATCH, sql::PURGE_PENDING_LOGINS_BATCH];
        self.purge_batches(&statements, now).await
    }

    async fn purge_finished_jobs(&self, before: i64) -> Result<u64, StoreError> {
        let statements = [sql::JOBS.purge, sql::WEBHOOKS.purge];
        self.purge_batches(&statements, before).await
    }

    async fn claim_maintenance(
        &self,
        task: &str,
        now: i64,
        period_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(sql::CLAIM_MAINTENANCE)
            .bind(task)
            .bind(now)
            .bind(super::latest_run_allowing(now, period_ms))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }
}

fn redact_err(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "invalid URL",
        _ => "error",
    }
}
