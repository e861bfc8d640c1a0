//! [`Admin`] on SQLite: reads on a reader connection, changes on the writer (one statement
//! each, so no group commit is needed).

use async_trait::async_trait;

use super::{
    SqliteStore, account_from_row, execute, map_err, query_opt, read_all, tokens_from_row,
};
use crate::store::admin::{self, Admin, JobInfo, TokenRow, TokenTable};
use crate::store::rows::job_info as job_from_row;
use crate::store::{Account, StoreError, StoredTokens};

/// The file of a `sqlite:` URL; `None` for an in-memory database.
pub(crate) fn file_of(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    Ok(match super::parse_url(url)? {
        super::Location::File(path) => Some(path),
        super::Location::Memory => None,
    })
}

#[async_trait]
impl Admin for SqliteStore {
    async fn jobs(&self, status: Option<&str>, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let conn = self.inner.reader().await;
        match status {
            Some(s) => read_all(&conn, admin::JOBS_BY_STATUS, &[&s, &limit], |r| {
                job_from_row(r)
            }),
            None => read_all(&conn, admin::JOBS_ALL, &[&limit], |r| job_from_row(r)),
        }
    }

    async fn jobs_of_user(&self, sub: &str, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let conn = self.inner.reader().await;
        read_all(&conn, admin::JOBS_OF_USER, &[&sub, &limit], |r| {
            job_from_row(r)
        })
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobInfo>, StoreError> {
        query_opt(&*self.inner.reader().await, admin::JOB, &[&job_id], |r| {
            job_from_row(r)
        })
    }

    async fn cancel_job(&self, job_id: &str, note: &str, now: i64) -> Result<(), StoreError> {
        let changed = execute(
            &*self.inner.writer_within().await?,
            admin::CANCEL_JOB,
            &[&job_id, &now, &note],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn last_account_update(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.inner.reader().await;
        let at = read_all(&conn, admin::LAST_ACCOUNT_UPDATE, &[], |row| {
            row.get::<_, Option<i64>>("at").map_err(map_err)
        })?;
        Ok(at.into_iter().flatten().next())
    }

    async fn accounts_by_user(&self, sub: &str) -> Result<Vec<Account>, StoreError> {
        let conn = self.inner.reader().await;
        read_all(&conn, admin::ACCOUNTS_BY_USER, &[&sub], |r| {
            account_from_row(r)
        })
    }

    async fn token_page(
        &self,
        table: TokenTable,
        after: &str,
        limit: i64,
    ) -> Result<Vec<TokenRow>, StoreError> {
        let (page, _) = admin::token_statements(table);
        let conn = self.inner.reader().await;
        let rows = read_all(&conn, page, &[&after, &limit], |row| {
            Ok((
                row.get::<_, String>("owner").map_err(map_err)?,
                row.get::<_, String>("issuer").map_err(map_err)?,
                row.get::<_, String>("sub").map_err(map_err)?,
                tokens_from_row(row)?,
            ))
        })?;
        drop(conn);
        Ok(rows
            .into_iter()
            .filter_map(|(owner, issuer, sub, tokens)| {
                tokens.map(|tokens| TokenRow {
                    owner,
                    issuer,
                    sub,
                    tokens,
                })
            })
            .collect())
    }

    async fn replace_tokens(
        &self,
        table: TokenTable,
        owner: &str,
        old: &StoredTokens,
        new: &StoredTokens,
    ) -> Result<bool, StoreError> {
        let (_, replace) = admin::token_statements(table);
        let changed = execute(
            &*self.inner.writer_within().await?,
            replace,
            &[
                &owner,
                &old.access_ct,
                &old.refresh_ct,
                &new.access_ct,
                &new.refresh_ct,
            ],
        )?;
        Ok(changed == 1)
    }
}
