//! [`Admin`] on SQLite: reads on a reader connection, changes on the writer (one statement
//! each, so no group commit is needed).

use async_trait::async_trait;
use rusqlite::Row;

use super::{SqliteStore, account_from_row, bind, execute, map_err, query_opt, tokens_from_row};
use crate::store::admin::{self, Admin, JobInfo, TokenRow, TokenTable};
use crate::store::{Account, StoreError, StoredTokens};

/// The file of a `sqlite:` URL; `None` for an in-memory database.
pub(crate) fn file_of(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    Ok(match super::parse_url(url)? {
        super::Location::File(path) => Some(path),
        super::Location::Memory => None,
    })
}

fn job_from_row(row: &Row<'_>) -> Result<JobInfo, StoreError> {
    let has_tokens: i64 = row.get("has_tokens").map_err(map_err)?;
    Ok(JobInfo {
        id: row.get("id").map_err(map_err)?,
        account_id: row.get("account_id").map_err(map_err)?,
        reason: row.get("reason").map_err(map_err)?,
        status: row.get("status").map_err(map_err)?,
        attempts: row.get("attempts").map_err(map_err)?,
        last_error: row.get("last_error").map_err(map_err)?,
        created_at: row.get("created_at").map_err(map_err)?,
        next_attempt_at: row.get("next_attempt_at").map_err(map_err)?,
        lease_until: row.get("lease_until").map_err(map_err)?,
        finished_at: row.get("finished_at").map_err(map_err)?,
        has_tokens: has_tokens != 0,
    })
}

/// Runs a read and maps every row.
fn read_all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    values: &[&dyn rusqlite::types::ToSql],
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, values).map_err(map_err)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        out.push(map(row)?);
    }
    Ok(out)
}

#[async_trait]
impl Admin for SqliteStore {
    async fn jobs(&self, status: Option<&str>, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let conn = self.inner.reader().await;
        match status {
            Some(s) => read_all(&conn, admin::JOBS_BY_STATUS, &[&s, &limit], job_from_row),
            None => read_all(&conn, admin::JOBS_ALL, &[&limit], job_from_row),
        }
    }

    async fn jobs_of_user(&self, sub: &str, limit: i64) -> Result<Vec<JobInfo>, StoreError> {
        let conn = self.inner.reader().await;
        read_all(&conn, admin::JOBS_OF_USER, &[&sub, &limit], job_from_row)
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobInfo>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            admin::JOB,
            &[&job_id],
            job_from_row,
        )
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
        read_all(&conn, admin::ACCOUNTS_BY_USER, &[&sub], account_from_row)
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
