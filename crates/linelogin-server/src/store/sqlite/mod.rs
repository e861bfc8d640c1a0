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
//! subjects — [`login`], [`outbox`], [`purge`], [`admin`].

use async_trait::async_trait;

pub(crate) mod admin;
mod batch;
mod checkpoint;
mod connection;
mod exec;
mod login;
mod migrate;
mod outbox;
mod purge;

use self::connection::{Location, open, parse_url};
pub use self::connection::{SqliteStore, file_path};
use self::exec::{execute, map_err, query_opt, read_all, write_transaction};
use super::rows::{self, account as account_from_row, tokens as tokens_from_row};
use super::sql;
use super::{
    Account, DeauthJob, DeauthReason, EventKind, FailedJob, JobFinal, JobStats, JobSummary,
    LoginWrite, SessionRecord, Store, StoreError, StoredTokens, WebhookEvent,
};

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
        self.claim(&sql::JOBS, now, lease_ms, |r| rows::deauth_job(r))
            .await
    }

    async fn renew_job_lease(
        &self,
        job_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.renew(&sql::JOBS, job_id, lease, until).await
    }

    async fn put_job_tokens(
        &self,
        job_id: &str,
        lease: &str,
        tokens: &StoredTokens,
    ) -> Result<(), StoreError> {
        outbox::fenced(
            &*self.inner.writer_within().await?,
            sql::PUT_JOB_TOKENS,
            &[
                &job_id,
                &tokens.access_ct,
                &tokens.refresh_ct,
                &tokens.access_expires_at,
                &tokens.refresh_issued_at,
                &lease,
            ],
        )
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
        self.fenced_update(sql::JOBS.finish, job_id, now, note, lease, event)
            .await
    }

    async fn retry_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.fenced_update(sql::JOBS.retry, job_id, next_attempt_at, error, lease, None)
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
        let event = event.map(|e| (e, EventKind::DeauthorizationFailed));
        self.fenced_update(sql::FAIL_JOB, job_id, now, error, lease, event)
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
        let event = event.map(|e| (e, EventKind::DeauthorizationFailed));
        self.fenced_update(sql::JOBS.give_up, job_id, now, error, lease, event)
            .await
    }

    async fn retry_failed_job(&self, job_id: &str, now: i64) -> Result<(), StoreError> {
        self.retry_failed(&sql::JOBS, job_id, now).await
    }

    async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError> {
        let conn = self.inner.reader().await;
        read_all(&conn, sql::FAILED_JOBS, &[&limit], |r| rows::failed_job(r))
    }

    async fn job_status(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            sql::JOB_STATUS,
            &[&job_id],
            |r| r.get("status").map_err(map_err),
        )
    }

    async fn job_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        self.stats(&sql::JOBS, now).await
    }

    async fn latest_job(&self, account_id: &str) -> Result<Option<JobSummary>, StoreError> {
        let conn = self.inner.reader().await;
        query_opt(&conn, sql::LATEST_JOB, &[&account_id], |r| {
            rows::job_summary(r)
        })
    }

    async fn claim_webhook(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        self.claim(&sql::WEBHOOKS, now, lease_ms, |r| rows::webhook_event(r))
            .await
    }

    async fn renew_webhook_lease(
        &self,
        event_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.renew(&sql::WEBHOOKS, event_id, lease, until).await
    }

    async fn finish_webhook(
        &self,
        event_id: &str,
        lease: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let finish = sql::WEBHOOKS.finish;
        self.fenced_update(finish, event_id, now, "delivered", lease, None)
            .await
    }

    async fn retry_webhook(
        &self,
        event_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let retry = sql::WEBHOOKS.retry;
        self.fenced_update(retry, event_id, next_attempt_at, error, lease, None)
            .await
    }

    async fn give_up_webhook(
        &self,
        event_id: &str,
        lease: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let give_up = sql::WEBHOOKS.give_up;
        self.fenced_update(give_up, event_id, now, error, lease, None)
            .await
    }

    async fn retry_failed_webhook(&self, event_id: &str, now: i64) -> Result<(), StoreError> {
        self.retry_failed(&sql::WEBHOOKS, event_id, now).await
    }

    async fn webhook_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        self.stats(&sql::WEBHOOKS, now).await
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
