//! The outbox path on PostgreSQL (a child of the `postgres` module): claiming a row under a
//! lease, renewing it, the fenced writes, sending a failed row again, the counters and the
//! purge, written once for both outboxes ([`sql::JOBS`], [`sql::WEBHOOKS`]); the `Store`
//! methods of deauthorization jobs and webhook deliveries call these with their table's
//! statements.

use sqlx::postgres::PgRow;

use super::{PostgresStore, map_err};
use crate::store::rows;
use crate::store::sql::{self, Outbox};
use crate::store::{EventKind, JobStats, StoreError};

/// [`StoreError::LeaseLost`] unless the fenced write changed its one row.
pub(super) fn fenced(changed: u64) -> Result<(), StoreError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

impl PostgresStore {
    /// Claims the oldest due row of `outbox` for `lease_ms` under a fresh lease id, skipping
    /// rows another instance is claiming (`FOR UPDATE SKIP LOCKED`).
    pub(super) async fn claim<T>(
        &self,
        outbox: &Outbox,
        now: i64,
        lease_ms: i64,
        read: impl FnOnce(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        sqlx::query(outbox.claim_pg)
            .bind(now.saturating_add(lease_ms))
            .bind(now)
            .bind(sql::new_lease())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(read)
            .transpose()
    }

    /// Extends a held lease to `until`.
    pub(super) async fn renew(
        &self,
        outbox: &Outbox,
        id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(outbox.renew).bind(id).bind(lease).bind(until);
        fenced(
            query
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected(),
        )
    }

    /// Runs one of the fenced outbox writes that take `(id, a time, a text, lease id)` and,
    /// when it changed the row, writes the webhook event `event` about job `id` in the same
    /// transaction. [`StoreError::LeaseLost`] (nothing written) when it matched no row.
    pub(super) async fn fenced_update(
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
            return fenced(
                query
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?
                    .rows_affected(),
            );
        };
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        fenced(
            query
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected(),
        )?;
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

    /// Puts a failed row back to pending, due at `now` ([`StoreError::NotFound`] when the
    /// outbox's `retry_failed` matched none).
    pub(super) async fn retry_failed(
        &self,
        outbox: &Outbox,
        id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(outbox.retry_failed).bind(id).bind(now);
        match query
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected()
        {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// The counters of `outbox` at `now`.
    pub(super) async fn stats(&self, outbox: &Outbox, now: i64) -> Result<JobStats, StoreError> {
        let row = sqlx::query(outbox.stats)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        rows::outbox_stats(&row, now)
    }

    /// Runs each of the batch deletes `statements` (`$1` a time, `$2` the batch size) until it
    /// deletes less than a batch; how many rows went.
    pub(super) async fn purge_batches(
        &self,
        statements: &[&str],
        at: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for statement in statements {
            loop {
                let n = sqlx::query(statement)
                    .bind(at)
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
}

rows::impl_columns!(PgRow, i32, |row, column| {
    sqlx::Row::try_get(row, column).map_err(map_err)
});
