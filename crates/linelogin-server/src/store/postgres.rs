//! The PostgreSQL backend, behind the same [`Store`](super::Store) trait as SQLite.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};

#[path = "postgres_admin.rs"]
mod admin;

use super::sql;
use super::{
    Account, AccountStatus, DeauthJob, DeauthReason, EventKind, FailedJob, JobFinal, JobStats,
    JobSummary, LoginWrite, SessionRecord, Store, StoreError, StoredTokens, WebhookEvent,
};

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
    /// Runs one of the fenced outbox updates that take `(id, a time, a text, lease id)` and,
    /// when it changed the row, writes the webhook event `event` about job `id` in the same
    /// transaction. [`StoreError::LeaseLost`] (nothing written) when it matched no row.
    async fn fenced_update(
        &self,
        statement: &str,
        id: &str,
        at: i64,
        text: &str,
        lease: &str,
        event: Option<(&str, EventKind)>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(statement)
            .bind(id)
            .bind(at)
            .bind(text)
            .bind(lease);
        let Some((event_id, kind)) = event else {
            let changed = query
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected();
            return if changed == 1 {
                Ok(())
            } else {
                Err(StoreError::LeaseLost)
            };
        };
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if query
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            != 1
        {
            return Err(StoreError::LeaseLost);
        }
        sqlx::query(sql::INSERT_EVENT_FOR_JOB)
            .bind(event_id)
            .bind(kind.as_str())
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    /// Renews a lease (`RENEW_JOB` or `RENEW_WEBHOOK`).
    async fn renew(
        &self,
        statement: &str,
        id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let changed = sqlx::query(statement)
            .bind(id)
            .bind(lease)
            .bind(until)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost)
        }
    }

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

fn account_from_row(row: &PgRow) -> Result<Account, StoreError> {
    let status: String = row.try_get("status").map_err(map_err)?;
    Ok(Account {
        id: row.try_get("id").map_err(map_err)?,
        issuer: row.try_get("issuer").map_err(map_err)?,
        sub: row.try_get("sub").map_err(map_err)?,
        display_name: row.try_get("display_name").map_err(map_err)?,
        picture_url: row.try_get("picture_url").map_err(map_err)?,
        status: AccountStatus::parse(&status),
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

fn tokens_from_row(row: &PgRow) -> Result<Option<StoredTokens>, StoreError> {
    let access: Option<Vec<u8>> = row.try_get("access_ct").map_err(map_err)?;
    let refresh: Option<Vec<u8>> = row.try_get("refresh_ct").map_err(map_err)?;
    match (access, refresh) {
        (Some(access_ct), Some(refresh_ct)) => Ok(Some(StoredTokens {
            access_ct,
            refresh_ct,
            access_expires_at: row.try_get("access_expires_at").map_err(map_err)?,
            refresh_issued_at: row.try_get("refresh_issued_at").map_err(map_err)?,
        })),
        _ => Ok(None),
    }
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
        let row = sqlx::query(sql::CLAIM_JOB_PG)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(sql::new_lease())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let reason: String = row.try_get("reason").map_err(map_err)?;
        Ok(Some(DeauthJob {
            id: row.try_get("id").map_err(map_err)?,
            account_id: row.try_get("account_id").map_err(map_err)?,
            issuer: row.try_get("issuer").map_err(map_err)?,
            sub: row.try_get("sub").map_err(map_err)?,
            reason: DeauthReason::parse(&reason),
            tokens: tokens_from_row(&row)?,
            attempts: row.try_get("attempts").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
            lease: row.try_get("lease_id").map_err(map_err)?,
        }))
    }

    async fn renew_job_lease(
        &self,
        job_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.renew(sql::RENEW_JOB, job_id, lease, until).await
    }

    async fn put_job_tokens(
        &self,
        job_id: &str,
        lease: &str,
        tokens: &StoredTokens,
    ) -> Result<(), StoreError> {
        let changed = sqlx::query(sql::PUT_JOB_TOKENS)
            .bind(job_id)
            .bind(&tokens.access_ct)
            .bind(&tokens.refresh_ct)
            .bind(tokens.access_expires_at)
            .bind(tokens.refresh_issued_at)
            .bind(lease)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost)
        }
    }

    async fn finish_job(
        &self,
        job_id: &str,
        lease: &str,
        outcome: JobFinal,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        self.fenced_update(
            sql::FINISH_JOB,
            job_id,
            now,
            sql::final_note(outcome),
            lease,
            event.map(|e| (e, EventKind::Deauthorized)),
        )
        .await
    }

    async fn retry_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.fenced_update(sql::RETRY_JOB, job_id, next_attempt_at, error, lease, None)
            .await
    }

    async fn fail_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        self.fenced_update(
            sql::FAIL_JOB,
            job_id,
            now,
            error,
            lease,
            event.map(|e| (e, EventKind::DeauthorizationFailed)),
        )
        .await
    }

    async fn release_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        self.fenced_update(sql::RELEASE_JOB, job_id, next_attempt_at, note, lease, None)
            .await
    }

    async fn give_up_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        self.fenced_update(
            sql::GIVE_UP_JOB,
            job_id,
            now,
            error,
            lease,
            event.map(|e| (e, EventKind::DeauthorizationFailed)),
        )
        .await
    }

    async fn retry_failed_job(&self, job_id: &str, now: i64) -> Result<(), StoreError> {
        let changed = sqlx::query(sql::RETRY_FAILED_JOB)
            .bind(job_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError> {
        let rows = sqlx::query(sql::FAILED_JOBS)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let has_tokens: i32 = row.try_get("has_tokens").map_err(map_err)?;
                Ok(FailedJob {
                    id: row.try_get("id").map_err(map_err)?,
                    account_id: row.try_get("account_id").map_err(map_err)?,
                    reason: row.try_get("reason").map_err(map_err)?,
                    attempts: row.try_get("attempts").map_err(map_err)?,
                    last_error: row.try_get("last_error").map_err(map_err)?,
                    finished_at: row.try_get("finished_at").map_err(map_err)?,
                    retryable: has_tokens != 0,
                })
            })
            .collect()
    }

    async fn job_status(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql::JOB_STATUS)
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| r.try_get("status").map_err(map_err))
            .transpose()
    }

    async fn job_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        let row = sqlx::query(sql::JOB_STATS)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let oldest: Option<i64> = row.try_get("oldest").map_err(map_err)?;
        Ok(JobStats {
            pending: row.try_get("pending").map_err(map_err)?,
            failed: row.try_get("failed").map_err(map_err)?,
            oldest_pending_age_secs: oldest.map_or(0, |t| (now - t).max(0) / 1000),
        })
    }

    async fn latest_job(&self, account_id: &str) -> Result<Option<JobSummary>, StoreError> {
        let row = sqlx::query(sql::LATEST_JOB)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(JobSummary {
            id: row.try_get("id").map_err(map_err)?,
            user_id: row.try_get("sub").map_err(map_err)?,
            reason: row.try_get("reason").map_err(map_err)?,
            status: row.try_get("status").map_err(map_err)?,
            attempts: row.try_get("attempts").map_err(map_err)?,
            last_error: row.try_get("last_error").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
            finished_at: row.try_get("finished_at").map_err(map_err)?,
        }))
    }

    async fn claim_webhook(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        let row = sqlx::query(sql::CLAIM_WEBHOOK_PG)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(sql::new_lease())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(WebhookEvent {
            id: row.try_get("id").map_err(map_err)?,
            kind: row.try_get("event_type").map_err(map_err)?,
            account_id: row.try_get("account_id").map_err(map_err)?,
            user_id: row.try_get("user_id").map_err(map_err)?,
            job_id: row.try_get("job_id").map_err(map_err)?,
            occurred_at: row.try_get("occurred_at").map_err(map_err)?,
            attempts: row.try_get("attempts").map_err(map_err)?,
            lease: row.try_get("lease_id").map_err(map_err)?,
        }))
    }

    async fn renew_webhook_lease(
        &self,
        event_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.renew(sql::RENEW_WEBHOOK, event_id, lease, until).await
    }

    async fn finish_webhook(
        &self,
        event_id: &str,
        lease: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.fenced_update(sql::FINISH_WEBHOOK, event_id, now, "delivered", lease, None)
            .await
    }

    async fn retry_webhook(
        &self,
        event_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.fenced_update(
            sql::RETRY_WEBHOOK,
            event_id,
            next_attempt_at,
            error,
            lease,
            None,
        )
        .await
    }

    async fn give_up_webhook(
        &self,
        event_id: &str,
        lease: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.fenced_update(sql::GIVE_UP_WEBHOOK, event_id, now, error, lease, None)
            .await
    }

    async fn retry_failed_webhook(&self, event_id: &str, now: i64) -> Result<(), StoreError> {
        let changed = sqlx::query(sql::RETRY_FAILED_WEBHOOK)
            .bind(event_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn webhook_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        let row = sqlx::query(sql::WEBHOOK_STATS)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let oldest: Option<i64> = row.try_get("oldest").map_err(map_err)?;
        Ok(JobStats {
            pending: row.try_get("pending").map_err(map_err)?,
            failed: row.try_get("failed").map_err(map_err)?,
            oldest_pending_age_secs: oldest.map_or(0, |t| (now - t).max(0) / 1000),
        })
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        for statement in [sql::PURGE_SESSIONS_BATCH, sql::PURGE_PENDING_LOGINS_BATCH] {
            loop {
                let n = sqlx::query(statement)
                    .bind(now)
                    .bind(sql::PURGE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                total += n;
                if n < sql::PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(total)
    }

    async fn purge_finished_jobs(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        for statement in [
            sql::PURGE_FINISHED_JOBS_BATCH,
            sql::PURGE_DELIVERED_WEBHOOKS_BATCH,
        ] {
            loop {
                let n = sqlx::query(statement)
                    .bind(before)
                    .bind(sql::PURGE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                total += n;
                if n < sql::PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(total)
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
