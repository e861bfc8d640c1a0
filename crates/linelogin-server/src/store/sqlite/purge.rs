//! Purging: expired sessions and pending logins, and finished outbox rows. Expired rows are
//! found on a reader and deleted by key on the writer, one short transaction per batch, so
//! that logins interleave with a large purge.

use super::{SqliteStore, execute, map_err, read_all, write_transaction};
use crate::store::{StoreError, sql};

/// `$1` now, `$2` batch size.
const FIND_EXPIRED_SESSIONS: &str = "SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2";
/// `$1` id hash, `$2` now (the row may have been renewed since it was found).
const DELETE_EXPIRED_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1 AND expires_at <= $2";
/// `$1` now, `$2` batch size.
const FIND_EXPIRED_PENDING_LOGINS: &str =
    "SELECT id_hash FROM pending_logins WHERE expires_at <= $1 LIMIT $2";
/// `$1` id hash, `$2` now.
const DELETE_EXPIRED_PENDING_LOGIN: &str =
    "DELETE FROM pending_logins WHERE id_hash = $1 AND expires_at <= $2";

impl SqliteStore {
    /// On the blocking pool: finds expired rows on a reader connection (by their expiry
    /// indexes), then deletes them by key on the writer, one short transaction per batch.
    pub(super) async fn purge_expired_rows(&self, now: i64) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            let mut total = 0u64;
            for (find, delete) in [
                (FIND_EXPIRED_SESSIONS, DELETE_EXPIRED_SESSION),
                (FIND_EXPIRED_PENDING_LOGINS, DELETE_EXPIRED_PENDING_LOGIN),
            ] {
                loop {
                    let expired: Vec<String> = read_all(
                        &inner.reader_blocking(),
                        find,
                        &[&now, &sql::PURGE_BATCH],
                        |row| row.get(0).map_err(map_err),
                    )?;
                    let mut conn = inner.writer_blocking();
                    let tx = write_transaction(&mut conn)?;
                    for id in &expired {
                        total += execute(&tx, delete, &[id, &now])? as u64;
                    }
                    tx.commit().map_err(map_err)?;
                    drop(conn);
                    if (expired.len() as i64) < sql::PURGE_BATCH {
                        break;
                    }
                }
            }
            Ok(total)
        })
        .await
    }

    /// Deletes finished rows of both outboxes finished at or before `before`, a batch per
    /// group-committed write.
    pub(super) async fn purge_finished(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for statement in [sql::JOBS.purge, sql::WEBHOOKS.purge] {
            loop {
                let n = self
                    .inner
                    .write(move |conn| execute(conn, statement, &[&before, &sql::PURGE_BATCH]))
                    .await?;
                total += n as u64;
                if (n as i64) < sql::PURGE_BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;

    /// The purge is O(expired): its queries search an expiry index instead of scanning.
    #[tokio::test]
    async fn the_purge_finds_expired_rows_by_index() {
        let s = SqliteStore::in_memory().await.unwrap();
        s.migrate().await.unwrap();
        let conn = s.inner.writer().await;
        for (query, index) in [
            (FIND_EXPIRED_SESSIONS, "sessions_expires_at"),
            (FIND_EXPIRED_PENDING_LOGINS, "pending_logins_expires_at"),
            (sql::JOBS.purge, "deauth_jobs_finished"),
        ] {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map([5_i64, 1000_i64], |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("\n");
            // `SEARCH … USING [COVERING] INDEX name (expires_at<?)`, not `SCAN`.
            assert!(
                plan.lines()
                    .any(|l| l.starts_with("SEARCH") && l.contains(index)),
                "{query}:\n{plan}"
            );
        }
    }
}
