//! [`Admin`] on PostgreSQL (a child of the `postgres` module, for its row helpers).

use async_trait::async_trait;
use sqlx::Row as _;

use super::{PostgresStore, account_from_row, map_err, tokens_from_row};
use crate::store::admin::{self, Admin, JobInfo, TokenRow, TokenTable};
use crate::store::rows::job_info as job_from_row;
use crate::store::{Account, StoreError, StoredTokens};

#[async_trait]
impl Admin for PostgresStore {
    async fn jobs(&self, status: Option<&str>, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let rows = match status {
            Some(s) => sqlx::query(admin::JOBS_BY_STATUS).bind(s).bind(limit),
            None => sqlx::query(admin::JOBS_ALL).bind(limit),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|row| job_from_row(row)).collect()
    }

    async fn jobs_of_user(&self, sub: &str, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        sqlx::query(admin::JOBS_OF_USER)
            .bind(sub)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| job_from_row(row))
            .collect()
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobInfo>, StoreError> {
        sqlx::query(admin::JOB)
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(|row| job_from_row(row))
            .transpose()
    }

    async fn cancel_job(&self, job_id: &str, note: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(admin::CANCEL_JOB)
            .bind(job_id)
            .bind(now)
            .bind(note)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn last_account_update(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query(admin::LAST_ACCOUNT_UPDATE)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?
            .try_get::<Option<i64>, _>("at")
            .map_err(map_err)
    }

    async fn accounts_by_user(&self, sub: &str) -> Result<Vec<Account>, StoreError> {
        sqlx::query(admin::ACCOUNTS_BY_USER)
            .bind(sub)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn token_page(
        &self,
        table: TokenTable,
        after: &str,
        limit: i64,
    ) -> Result<Vec<TokenRow>, StoreError> {
        let (page, _) = admin::token_statements(table);
        let rows = sqlx::query(page)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(tokens) = tokens_from_row(row)? {
                out.push(TokenRow {
                    owner: row.try_get("owner").map_err(map_err)?,
                    issuer: row.try_get("issuer").map_err(map_err)?,
                    sub: row.try_get("sub").map_err(map_err)?,
                    tokens,
                });
            }
        }
        Ok(out)
    }

    async fn replace_tokens(
        &self,
        table: TokenTable,
        owner: &str,
        old: &StoredTokens,
        new: &StoredTokens,
    ) -> Result<bool, StoreError> {
        let (_, replace) = admin::token_statements(table);
        let done = sqlx::query(replace)
            .bind(owner)
            .bind(&old.access_ct)
            .bind(&old.refresh_ct)
            .bind(&new.access_ct)
            .bind(&new.refresh_ct)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
