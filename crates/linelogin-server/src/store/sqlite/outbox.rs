//! The outbox path on SQLite: claiming a row under a lease, renewing it, the fenced writes,
//! sending a failed row again and the counters, written once for both outboxes
//! ([`sql::JOBS`], [`sql::WEBHOOKS`]); the `Store` methods of deauthorization jobs and webhook
//! deliveries call these with their table's statements. Each is one statement on the writer
//! (a fenced write with its webhook event, one transaction), outside the group commit: the
//! workers' writes are few, and a lost lease must be known to the caller at once.

use rusqlite::types::ToSql;
use rusqlite::{Connection, Row};

use super::{SqliteStore, execute, map_err, query_opt, write_transaction};
use crate::store::sql::{self, Outbox};
use crate::store::{EventKind, JobStats, StoreError, rows};

/// Runs a fenced write: [`StoreError::LeaseLost`] when it matched no row.
pub(super) fn fenced(
    conn: &Connection,
    statement: &str,
    values: &[&dyn ToSql],
) -> Result<(), StoreError> {
    if execute(conn, statement, values)? == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

impl SqliteStore {
    /// Claims the oldest due row of `outbox` for `lease_ms` under a fresh lease id.
    pub(super) async fn claim<T>(
        &self,
        outbox: &Outbox,
        now: i64,
        lease_ms: i64,
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let lease_until = now.saturating_add(lease_ms);
        let lease = sql::new_lease();
        let conn = self.inner.writer_within().await?;
        query_opt(&conn, outbox.claim, &[&lease_until, &now, &lease], read)
    }

    /// Extends a held lease to `until`.
    pub(super) async fn renew(
        &self,
        outbox: &Outbox,
        id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let conn = self.inner.writer_within().await?;
        fenced(&conn, outbox.renew, &[&id, &lease, &until])
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
        let mut conn = self.inner.writer_within().await?;
        let Some((event_id, kind)) = event else {
            return fenced(&conn, statement, &[&id, &at, &text, &lease]);
        };
        let tx = write_transaction(&mut conn)?;
        fenced(&tx, statement, &[&id, &at, &text, &lease])?;
        let values: [&dyn ToSql; 4] = [&event_id, &kind.as_str(), &at, &id];
        execute(&tx, sql::INSERT_EVENT_FOR_JOB, &values)?;
        tx.commit().map_err(map_err)
    }

    /// Puts a failed row back to pending, due at `now` ([`StoreError::NotFound`] when the
    /// outbox's `retry_failed` matched none).
    pub(super) async fn retry_failed(
        &self,
        outbox: &Outbox,
        id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let conn = self.inner.writer_within().await?;
        match execute(&conn, outbox.retry_failed, &[&id, &now])? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// The counters of `outbox` at `now`.
    pub(super) async fn stats(&self, outbox: &Outbox, now: i64) -> Result<JobStats, StoreError> {
        let conn = self.inner.reader().await;
        let stats = query_opt(&conn, outbox.stats, &[], |row| rows::outbox_stats(row, now))?;
        Ok(stats.unwrap_or_default())
    }
}
