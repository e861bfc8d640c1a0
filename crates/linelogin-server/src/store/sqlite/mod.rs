//! The SQLite backend (embedded default), on rusqlite.
//!
//! **Statements run on the calling task's thread**, under a mutex per connection, from
//! prepared statements cached per connection: the server's statements are indexed point
//! reads and writes of a few microseconds. An async driver must hand each statement to a
//! thread of its own and wake the task when it is done; on the login path that hand-off cost
//! more than the statements themselves (a third of the server's CPU went to thread switches
//! with sqlx), so this backend does not make it.
//!
//! **Nothing on that path waits for the disk.** The database is in WAL mode with
//! `synchronous = NORMAL`: a commit is written to the WAL in the OS page cache and survives a
//! crash of the process (a power loss may roll back the last commits, never corrupt). The
//! checkpoints, which copy the WAL into the database and `fsync`, run on a background thread
//! with a connection of its own (`wal_autocheckpoint` is off on the serving connections): every
//! 100 ms it copies what it can beside the writer, then finishes while holding
//! the writer's lock for the moment it takes to copy the last few frames. Without that second
//! step a checkpoint running beside a busy writer never catches up, the WAL is never started
//! over, and it grows without bound (a 10-minute load test found it at 15 GB after three
//! minutes). Work that can take long — migrations, purging expired rows — runs on tokio's
//! blocking pool.
//!
//! One writer connection behind an async mutex (SQLite allows one writer at a time; queueing
//! in-process is cheaper than spinning in SQLite's busy handler, and a task waiting for the
//! writer leaves its thread to other requests), and a few read-only reader connections, which
//! WAL lets read while the writer writes. One server process per database file.
//!
//! **The login path's writes are committed in groups** ([`batch`]): each waits in a queue, and
//! whoever gets the writer runs everything queued by then in one transaction, a savepoint per
//! write. A commit costs as much as a login's statements, so under load (about six writes per
//! commit) this saves a fifth of the server's CPU per login; a write that arrives alone
//! commits at once.
//!
//! The parts: [`connection`] (opening, pragmas, lending connections), [`exec`] (running
//! statements), [`migrate`] (the schema), [`batch`] (group commit), [`checkpoint`], and the
//! subjects — [`login`], [`purge`]; the outbox path and the operator's side are shared with
//! PostgreSQL (`store::outbox`, `store::admin`), run by [`exec`].

use async_trait::async_trait;

mod batch;
mod checkpoint;
mod connection;
mod exec;
mod login;
mod migrate;
mod purge;

use self::connection::{Location, open};
pub use self::connection::{SqliteStore, file_path};
use self::exec::{execute, map_err, query_opt, read_all, write_transaction};
use super::rows::{self, account as account_from_row, tokens as tokens_from_row};
use super::{
    Account, DeauthJob, DeauthReason, EventKind, FailedJob, JobFinal, JobStats, JobSummary,
    LoginWrite, SessionRecord, Store, StoreError, StoredTokens, WebhookEvent,
};
use super::{outbox, sql};

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn put_pending_login(
        &self,
        id_hash: &str,
        data: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let (id_hash, data) = (id_hash.to_owned(), data.to_owned());
        self.inner
            .write(move |conn| {
                execute(
                    conn,
                    sql::PUT_PENDING_LOGIN,
                    &[&id_hash, &data, &expires_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn count_pending_logins(&self, now: i64) -> Result<u64, StoreError> {
        let n = query_opt(
            &*self.inner.reader().await,
            sql::COUNT_PENDING_LOGINS,
            &[&now],
            |r| r.get::<_, i64>("n").map_err(map_err),
        )?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }

    async fn take_pending_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let id_hash = id_hash.to_owned();
        let row = self
            .inner
            .write(move |conn| {
                query_opt(conn, sql::TAKE_PENDING_LOGIN, &[&id_hash], |row| {
                    let data: Vec<u8> = row.get("data").map_err(map_err)?;
                    let expires_at: i64 = row.get("expires_at").map_err(map_err)?;
                    Ok((data, expires_at))
                })
            })
            .await?;
        Ok(row.and_then(|(data, expires_at)| (expires_at > now).then_some(data)))
    }

    async fn complete_login(&self, login: &LoginWrite) -> Result<Account, StoreError> {
        let login = login.clone();
        self.inner
            .write(move |tx| login::complete_login(tx, &login))
            .await
    }

    async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.inner.reader().await;
        query_opt(&conn, sql::SESSION, &[&id_hash, &now], |row| {
            Ok(SessionRecord {
                account: account_from_row(row)?,
                csrf_token: row.get("csrf_token").map_err(map_err)?,
                created_at: row.get("s_created_at").map_err(map_err)?,
                last_seen_at: row.get("last_seen_at").map_err(map_err)?,
                expires_at: row.get("expires_at").map_err(map_err)?,
            })
        })
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        let id_hash = id_hash.to_owned();
        self.inner
            .write(move |conn| {
                execute(conn, sql::TOUCH_SESSION, &[&id_hash, &now])?;
                Ok(())
            })
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let id_hash = id_hash.to_owned();
        self.inner
            .write(move |conn| {
                execute(conn, sql::DELETE_SESSION, &[&id_hash])?;
                Ok(())
            })
            .await
    }

    async fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            sql::ACCOUNT,
            &[&account_id],
            |r| account_from_row(r),
        )
    }

    async fn account_by_sub(&self, issuer: &str, sub: &str) -> Result<Option<Account>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            sql::ACCOUNT_BY_SUB,
            &[&issuer, &sub],
            |r| account_from_row(r),
        )
    }

    async fn tokens(&self, account_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        Ok(query_opt(
            &*self.inner.reader().await,
            sql::TOKENS,
            &[&account_id],
            |r| tokens_from_row(r),
        )?
        .flatten())
    }

    async fn put_tokens(
        &self,
        account_id: &str,
        tokens: &StoredTokens,
        now: i64,
    ) -> Result<(), StoreError> {
        let changed = execute(
            &*self.inner.writer_within().await?,
            sql::PUT_TOKENS,
            &[
                &account_id,
                &tokens.access_ct,
                &tokens.refresh_ct,
                &tokens.access_expires_at,
                &tokens.refresh_issued_at,
                &now,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_tokens(&self, account_id: &str) -> Result<(), StoreError> {
        execute(
            &*self.inner.writer_within().await?,
            sql::DELETE_TOKENS,
            &[&account_id],
        )?;
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
        let mut conn = self.inner.writer_within().await?;
        let tx = write_transaction(&mut conn)?;
        let inserted = execute(
            &tx,
            sql::INSERT_DEAUTH_JOB,
            &[&job_id, &reason.as_str(), &now, &account_id],
        )?;
        if inserted != 1 {
            return Err(StoreError::NotFound);
        }
        if let Some(event) = event {
            let kind = match reason {
                DeauthReason::Unregister => EventKind::Unregistered,
                DeauthReason::Unlink => EventKind::Unlinked,
            };
            execute(
                &tx,
                sql::INSERT_EVENT_FOR_ACCOUNT,
                &[&event, &kind.as_str(), &now, &account_id, &Some(job_id)],
            )?;
        }
        execute(&tx, sql::DELETE_SESSIONS_OF_ACCOUNT, &[&account_id])?;
        execute(&tx, sql::DELETE_TOKENS, &[&account_id])?;
        match reason {
            DeauthReason::Unregister => execute(&tx, sql::DELETE_ACCOUNT, &[&account_id])?,
            DeauthReason::Unlink => execute(&tx, sql::UNLINK_ACCOUNT, &[&account_id, &now])?,
        };
        tx.commit().map_err(map_err)?;
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
        self.purge_expired_rows(now).await
    }

    async fn purge_finished_jobs(&self, before: i64) -> Result<u64, StoreError> {
        self.purge_finished(before).await
    }

    async fn claim_maintenance(
        &self,
        task: &str,
        now: i64,
        period_ms: i64,
    ) -> Result<bool, StoreError> {
        let task = task.to_owned();
        let latest = crate::store::latest_run_allowing(now, period_ms);
        self.inner
            .write(move |conn| {
                query_opt(
                    conn,
                    sql::CLAIM_MAINTENANCE,
                    &[&task, &now, &latest],
                    |_| Ok(()),
                )
                .map(|claimed| claimed.is_some())
            })
            .await
    }
}
