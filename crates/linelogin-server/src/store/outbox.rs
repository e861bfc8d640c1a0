//! The outbox path, once for both backends and both outboxes: claiming a row under a fresh
//! lease, renewing the lease, the writes fenced by it (with the webhook event a job's outcome
//! writes in the same transaction), sending a failed row again, and the counters.
//!
//! Deauthorization jobs and webhook deliveries differ only in their statements ([`Outbox`],
//! from the `sql` module); SQLite and PostgreSQL only in how a statement runs, which each
//! says by implementing [`Exec`]. So the lease and fencing rules — a write that matches no
//! row lost its lease, and writes nothing — are written here and nowhere else.

use async_trait::async_trait;

use super::rows::{self, Columns};
use super::sql::{self, Outbox};
use super::{EventKind, JobStats, StoreError, StoredTokens};

/// A value bound to a statement's parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// Text.
    Text(&'a str),
    /// A 64-bit integer.
    Int(i64),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// A statement and the values of its `$1 … $n`.
pub(crate) type Statement<'a> = (&'a str, &'a [Value<'a>]);

/// Reads a row into a record.
pub(crate) type Read<T> = fn(&dyn Columns) -> Result<T, StoreError>;

/// How a backend runs the outbox's statements.
#[async_trait]
pub(crate) trait Exec: Sync {
    /// Whether claims skip rows locked by another claim (`FOR UPDATE SKIP LOCKED`, the
    /// statements' PostgreSQL form); SQLite has one writer, so its claims never race.
    const SKIP_LOCKED: bool;

    /// Runs `first`, and, when it changed exactly one row, `then` in the same transaction.
    /// How many rows `first` changed (when not one, nothing was written).
    async fn write(
        &self,
        first: Statement<'_>,
        then: Option<Statement<'_>>,
    ) -> Result<u64, StoreError>;

    /// Runs a statement that returns rows and reads every row: a claim's
    /// `UPDATE … RETURNING` (`writes`), or a read (on SQLite, on a reader connection).
    async fn query<T: Send + 'static>(
        &self,
        statement: Statement<'_>,
        read: Read<T>,
        writes: bool,
    ) -> Result<Vec<T>, StoreError>;
}

/// [`StoreError::LeaseLost`] unless a fenced write changed its one row.
fn fenced(changed: u64) -> Result<(), StoreError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

/// Claims the oldest due row of `outbox` for `lease_ms` under a fresh lease id.
pub(crate) async fn claim<B: Exec, T: Send + 'static>(
    db: &B,
    outbox: &Outbox,
    now: i64,
    lease_ms: i64,
    read: Read<T>,
) -> Result<Option<T>, StoreError> {
    let statement = if B::SKIP_LOCKED {
        outbox.claim_pg
    } else {
        outbox.claim
    };
    let lease = sql::new_lease();
    let values = [
        Value::Int(now.saturating_add(lease_ms)),
        Value::Int(now),
        Value::Text(&lease),
    ];
    let claimed = db.query((statement, &values), read, true).await?;
    Ok(claimed.into_iter().next())
}

/// Extends a held lease to `until` ([`StoreError::LeaseLost`] when it is no longer held).
pub(crate) async fn renew(
    db: &impl Exec,
    outbox: &Outbox,
    id: &str,
    lease: &str,
    until: i64,
) -> Result<(), StoreError> {
    let values = [Value::Text(id), Value::Text(lease), Value::Int(until)];
    fenced(db.write((outbox.renew, &values), None).await?)
}

/// One of the fenced writes that take `(id, a time, a text, lease id)`: an outbox's
/// `finish`, `retry` or `give_up`, or a job's `FAIL_JOB` or `RELEASE_JOB`. With `event`, the
/// webhook event of that id and kind about job `id` is written in the same transaction.
/// [`StoreError::LeaseLost`] (nothing written) when the lease is no longer held.
pub(crate) async fn update(
    db: &impl Exec,
    statement: &str,
    (id, lease): (&str, &str),
    at: i64,
    text: &str,
    event: Option<(&str, EventKind)>,
) -> Result<(), StoreError> {
    let values = [
        Value::Text(id),
        Value::Int(at),
        Value::Text(text),
        Value::Text(lease),
    ];
    let event = event.map(|(event_id, kind)| {
        [
            Value::Text(event_id),
            Value::Text(kind.as_str()),
            Value::Int(at),
            Value::Text(id),
        ]
    });
    let then = event.as_ref().map(|v| (sql::INSERT_EVENT_FOR_JOB, &v[..]));
    fenced(db.write((statement, &values), then).await?)
}

/// Stores refreshed tokens on a job (fenced by `lease`).
pub(crate) async fn put_job_tokens(
    db: &impl Exec,
    job_id: &str,
    lease: &str,
    tokens: &StoredTokens,
) -> Result<(), StoreError> {
    let values = [
        Value::Text(job_id),
        Value::Bytes(&tokens.access_ct),
        Value::Bytes(&tokens.refresh_ct),
        Value::Int(tokens.access_expires_at),
        Value::Int(tokens.refresh_issued_at),
        Value::Text(lease),
    ];
    fenced(db.write((sql::PUT_JOB_TOKENS, &values), None).await?)
}

/// Puts a failed row back to pending, due at `now`, attempts reset
/// ([`StoreError::NotFound`] when the outbox's `retry_failed` matched none).
pub(crate) async fn retry_failed(
    db: &impl Exec,
    outbox: &Outbox,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let values = [Value::Text(id), Value::Int(now)];
    match db.write((outbox.retry_failed, &values), None).await? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// The counters of `outbox` at `now`.
pub(crate) async fn stats(
    db: &impl Exec,
    outbox: &Outbox,
    now: i64,
) -> Result<JobStats, StoreError> {
    let stats = db
        .query((outbox.stats, &[]), rows::outbox_counts, false)
        .await?;
    Ok(stats
        .into_iter()
        .next()
        .map_or_else(JobStats::default, |(pending, failed, oldest)| JobStats {
            pending,
            failed,
            oldest_pending_age_secs: oldest.map_or(0, |t| (now - t).max(0) / 1000),
        }))
}

/// The first row of a read, if any.
pub(crate) async fn read_one<T: Send + 'static>(
    db: &impl Exec,
    statement: Statement<'_>,
    read: Read<T>,
) -> Result<Option<T>, StoreError> {
    Ok(db.query(statement, read, false).await?.into_iter().next())
}
