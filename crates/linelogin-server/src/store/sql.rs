//! The SQL shared by both backends.
//!
//! SQLite and PostgreSQL both accept `$n` parameters, `ON CONFLICT`, `RETURNING` and the
//! types used here (TEXT, 64-bit integers, byte strings), so every query is written once.
//! [`impl_sql_store!`] expands the [`Store`](super::Store) implementation for a backend
//! struct with two async methods, `writer()` and `reader()`, each returning something that
//! dereferences mutably to the backend's connection (a pooled connection, a locked one).

use super::StoreError;

/// Maps a driver error to the backend-neutral error (unique violations by constraint name).
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Unavailable(err.to_string()),
    }
}

macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        use sqlx::Row as _;

        use $crate::store::sql::map_err;
        use $crate::store::{
            Account, AccountStatus, DeauthJob, DeauthReason, JobFinal, JobStats, LoginWrite,
            SessionRecord, Store, StoreError, StoredTokens,
        };

        const ACCOUNT_COLUMNS: &str =
            "a.id, a.issuer, a.sub, a.display_name, a.picture_url, a.status, a.created_at";

        fn account_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Account, StoreError> {
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

        fn tokens_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Option<StoredTokens>, StoreError> {
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

        #[async_trait::async_trait]
        impl Store for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                let mut conn = self.writer().await?;
                Self::MIGRATOR
                    .run_direct(&mut *conn)
                    .await
                    .map_err(|e| StoreError::Migration(e.to_string()))
            }

            async fn put_pending_login(
                &self,
                id_hash: &str,
                data: &[u8],
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO pending_logins (id_hash, data, expires_at) VALUES ($1, $2, $3)")
                    .bind(id_hash)
                    .bind(data)
                    .bind(expires_at)
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn take_pending_login(&self, id_hash: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
                let row = sqlx::query("DELETE FROM pending_logins WHERE id_hash = $1 RETURNING data, expires_at")
                    .bind(id_hash)
                    .fetch_optional(&mut *self.writer().await?)
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
                self.complete_login_impl(login).await
            }

            async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, StoreError> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS}, s.csrf_token, s.created_at AS s_created_at, s.last_seen_at, s.expires_at \
                     FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id_hash = $1 AND s.expires_at > $2"
                );
                let row = sqlx::query(&sql)
                    .bind(id_hash)
                    .bind(now)
                    .fetch_optional(&mut *self.reader().await?)
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
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(now)
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1");
                let row = sqlx::query(&sql)
                    .bind(account_id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn account_by_sub(&self, issuer: &str, sub: &str) -> Result<Option<Account>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.issuer = $1 AND a.sub = $2");
                let row = sqlx::query(&sql)
                    .bind(issuer)
                    .bind(sub)
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn tokens(&self, account_id: &str) -> Result<Option<StoredTokens>, StoreError> {
                let row = sqlx::query(
                    "SELECT access_ct, refresh_ct, access_expires_at, refresh_issued_at FROM tokens WHERE account_id = $1",
                )
                .bind(account_id)
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(map_err)?;
                match row {
                    Some(row) => tokens_from_row(&row),
                    None => Ok(None),
                }
            }

            async fn put_tokens(&self, account_id: &str, tokens: &StoredTokens, now: i64) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE tokens SET access_ct = $2, refresh_ct = $3, access_expires_at = $4, refresh_issued_at = $5, \
                     updated_at = $6 WHERE account_id = $1",
                )
                .bind(account_id)
                .bind(&tokens.access_ct)
                .bind(&tokens.refresh_ct)
                .bind(tokens.access_expires_at)
                .bind(tokens.refresh_issued_at)
                .bind(now)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn delete_tokens(&self, account_id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM tokens WHERE account_id = $1")
                    .bind(account_id)
                    .execute(&mut *self.writer().await?)
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
            ) -> Result<(), StoreError> {
                let mut conn = self.writer().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
                let inserted = sqlx::query(
                    "INSERT INTO deauth_jobs (id, account_id, issuer, sub, reason, status, access_ct, refresh_ct, \
                     access_expires_at, refresh_issued_at, attempts, next_attempt_at, created_at) \
                     SELECT $1, a.id, a.issuer, a.sub, $2, 'pending', t.access_ct, t.refresh_ct, t.access_expires_at, \
                     t.refresh_issued_at, 0, $3, $3 FROM accounts a JOIN tokens t ON t.account_id = a.id WHERE a.id = $4",
                )
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
                for sql in [
                    "DELETE FROM sessions WHERE account_id = $1",
                    "DELETE FROM tokens WHERE account_id = $1",
                ] {
                    sqlx::query(sql).bind(account_id).execute(&mut *tx).await.map_err(map_err)?;
                }
                match reason {
                    DeauthReason::Unregister => {
                        sqlx::query("DELETE FROM accounts WHERE id = $1")
                            .bind(account_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                    DeauthReason::Unlink => {
                        sqlx::query("UPDATE accounts SET status = 'unlinked', updated_at = $2 WHERE id = $1")
                            .bind(account_id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                }
                tx.commit().await.map_err(map_err)?;
                Ok(())
            }

            async fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<DeauthJob>, StoreError> {
                let row = sqlx::query(
                    "UPDATE deauth_jobs SET lease_until = $1, attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM deauth_jobs WHERE status = 'pending' AND next_attempt_at <= $2 \
                       AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, created_at LIMIT 1) \
                     AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $2) \
                     RETURNING id, account_id, issuer, sub, reason, access_ct, refresh_ct, access_expires_at, \
                     refresh_issued_at, attempts, created_at",
                )
                .bind(now.saturating_add(lease_ms))
                .bind(now)
                .fetch_optional(&mut *self.writer().await?)
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
                }))
            }

            async fn put_job_tokens(&self, job_id: &str, tokens: &StoredTokens) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE deauth_jobs SET access_ct = $2, refresh_ct = $3, access_expires_at = $4, \
                     refresh_issued_at = $5 WHERE id = $1",
                )
                .bind(job_id)
                .bind(&tokens.access_ct)
                .bind(&tokens.refresh_ct)
                .bind(tokens.access_expires_at)
                .bind(tokens.refresh_issued_at)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn finish_job(&self, job_id: &str, outcome: JobFinal, now: i64) -> Result<(), StoreError> {
                let note = match outcome {
                    JobFinal::Deauthorized => "deauthorized",
                    JobFinal::AlreadyInvalid => "already invalid",
                };
                sqlx::query(
                    "UPDATE deauth_jobs SET status = 'done', finished_at = $2, lease_until = NULL, \
                     access_ct = NULL, refresh_ct = NULL, last_error = $3 WHERE id = $1",
                )
                .bind(job_id)
                .bind(now)
                .bind(note)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn retry_job(&self, job_id: &str, next_attempt_at: i64, error: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE deauth_jobs SET next_attempt_at = $2, lease_until = NULL, last_error = $3 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(job_id)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn fail_job(&self, job_id: &str, error: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE deauth_jobs SET status = 'failed', finished_at = $2, lease_until = NULL, \
                     access_ct = NULL, refresh_ct = NULL, last_error = $3 WHERE id = $1",
                )
                .bind(job_id)
                .bind(now)
                .bind(error)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn job_status(&self, job_id: &str) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT status FROM deauth_jobs WHERE id = $1")
                    .bind(job_id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err(map_err)?;
                row.map(|r| r.try_get("status").map_err(map_err)).transpose()
            }

            async fn job_stats(&self, now: i64) -> Result<JobStats, StoreError> {
                let row = sqlx::query(
                    "SELECT \
                     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
                     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
                     MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest \
                     FROM deauth_jobs WHERE status IN ('pending', 'failed')",
                )
                .fetch_one(&mut *self.reader().await?)
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
                let mut n = 0;
                for sql in [
                    "DELETE FROM sessions WHERE expires_at <= $1",
                    "DELETE FROM pending_logins WHERE expires_at <= $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&mut *self.writer().await?).await.map_err(map_err)?.rows_affected();
                }
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_sql_store;
