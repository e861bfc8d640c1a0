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

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, Statement};

pub(crate) mod admin;
mod batch;
mod checkpoint;

use self::batch::WriteQueue;
#[cfg(test)]
use self::checkpoint::CHECKPOINT_INTERVAL;
use self::checkpoint::Checkpointer;
use super::sql;
use super::{
    Account, AccountStatus, DeauthJob, DeauthReason, EventKind, FailedJob, JobFinal, JobStats,
    JobSummary, LoginWrite, SessionRecord, Store, StoreError, StoredTokens, WebhookEvent,
};

/// Reader connections of a file database. Statements run on the callers' threads, so more
/// readers than threads that may read at once (runtime workers, a blocking-pool task) would
/// sit idle.
const READERS: usize = 4;
/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A WAL that grew past this (a burst the checkpointer could not keep up with) is cut back to
/// it when it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

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

/// The migration scripts, in order (`PRAGMA user_version` holds how many are applied).
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_clustered_keys.sql"),
    include_str!("../../../migrations/sqlite/0003_outbox_leases_webhooks.sql"),
    include_str!("../../../migrations/sqlite/0004_expiry_indexes.sql"),
];

/// The schema versions, in order.
fn migrations() -> rusqlite_migration::Migrations<'static> {
    rusqlite_migration::Migrations::new(
        MIGRATIONS
            .iter()
            .map(|sql| rusqlite_migration::M::up(sql))
            .collect(),
    )
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// The frequent writes, committed in groups on the writer.
    queue: WriteQueue,
    /// Read-only connections; empty for an in-memory database, which lives in one connection
    /// (the writer).
    readers: Box<[Mutex<Connection>]>,
    next_reader: AtomicUsize,
    /// Stops and joins the checkpoint thread when the store is dropped.
    _checkpointer: Option<Checkpointer>,
    /// Bounded waits (the busy timeout is set on the connections).
    timeouts: super::Timeouts,
}

/// Where a `sqlite:` URL points.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Memory,
    File(PathBuf),
}

/// Parses `sqlite::memory:`, `sqlite://relative.db`, `sqlite:///absolute.db`,
/// `sqlite:relative.db`, with an optional `?mode=rwc` (the default) or `?mode=memory`.
fn parse_url(url: &str) -> Result<Location, StoreError> {
    let bad = |why: &str| StoreError::Unavailable(format!("bad sqlite URL: {why}").into());
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| bad("it must start with sqlite:"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut memory = path == ":memory:";
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=memory" => memory = true,
            "mode=rwc" => {}
            other => {
                let key = other.split('=').next().unwrap_or(other);
                return Err(bad(&format!(
                    "unsupported parameter {key:?} (only mode=rwc or mode=memory)"
                )));
            }
        }
    }
    if memory {
        return Ok(Location::Memory);
    }
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| bad("the path is not UTF-8"))?;
    if path.is_empty() {
        return Err(bad("no file name"));
    }
    Ok(Location::File(PathBuf::from(path.as_ref())))
}

/// The file a `sqlite:` URL names (`None` for an in-memory database), so that a read-only
/// caller (`linelogin check`) can look for it without creating it.
pub fn file_path(url: &str) -> Result<Option<PathBuf>, StoreError> {
    Ok(match parse_url(url)? {
        Location::Memory => None,
        Location::File(path) => Some(path),
    })
}

fn open(location: &Location, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = match location {
        Location::Memory => Connection::open_in_memory(),
        Location::File(path) => Connection::open_with_flags(path, flags),
    }
    .map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        .map_err(map_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite:` URL, in WAL mode, and starts its
    /// checkpointer. Call [`Store::migrate`] before use (or use [`super::connect`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, super::Timeouts::default()).await
    }

    /// [`SqliteStore::connect`] with these bounded waits: `statement` is every connection's
    /// busy timeout (a lock held by another process: the file locked by another connection's
    /// `BEGIN EXCLUSIVE`); `acquire` bounds the wait for the writer. A write that is not done
    /// within their sum fails with [`StoreError::Unavailable`] (once queued, it may still
    /// commit later, like the write of a request that was dropped: see the `batch` module).
    pub async fn connect_with(url: &str, timeouts: super::Timeouts) -> Result<Self, StoreError> {
        let location = parse_url(url)?;
        tokio::task::spawn_blocking(move || Self::open_blocking(&location, timeouts))
            .await
            .map_err(|e| {
                StoreError::Unavailable(crate::store::Cause::context("opening the database", e))
            })?
    }

    fn open_blocking(location: &Location, timeouts: super::Timeouts) -> Result<Self, StoreError> {
        let writer = open(location, false)?;
        writer.busy_timeout(timeouts.statement).map_err(map_err)?;
        let mut readers = Vec::new();
        if let Location::File(_) = location {
            let mode: String = writer
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(map_err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Unavailable(
                    format!("the database refused WAL mode (journal_mode = {mode})").into(),
                ));
            }
            writer
                .execute_batch(&format!(
                    "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
                ))
                .map_err(map_err)?;
            for _ in 0..READERS {
                let reader = open(location, true)?;
                reader.busy_timeout(timeouts.statement).map_err(map_err)?;
                readers.push(Mutex::new(reader));
            }
        }
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let checkpointer = match location {
            Location::File(path) => Some(Checkpointer::start(path, Arc::clone(&writer))?),
            Location::Memory => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                queue: WriteQueue::default(),
                readers: readers.into(),
                next_reader: AtomicUsize::new(0),
                _checkpointer: checkpointer,
                timeouts,
            }),
        })
    }

    /// An in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::connect("sqlite::memory:").await
    }

    /// Runs `f` on tokio's blocking pool (for work that may take long).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| {
                StoreError::Unavailable(crate::store::Cause::context("database task failed", e))
            })?
    }
}

/// A poisoned lock only means a panic happened while it was held; a rusqlite transaction
/// dropped by that panic rolled back, so the connection is fine to use.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection lent for a read: the writer or a reader.
enum ReadConn<'a> {
    Writer(tokio::sync::MutexGuard<'a, Connection>),
    Reader(MutexGuard<'a, Connection>),
}

impl Deref for ReadConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Writer(c) => c,
            ReadConn::Reader(c) => c,
        }
    }
}

impl Inner {
    async fn writer(&self) -> tokio::sync::MutexGuard<'_, Connection> {
        self.writer.lock().await
    }

    /// The writer, waiting at most the acquire timeout for it.
    async fn writer_within(&self) -> Result<tokio::sync::MutexGuard<'_, Connection>, StoreError> {
        tokio::time::timeout(self.timeouts.acquire, self.writer.lock())
            .await
            .map_err(|_| {
                StoreError::Unavailable(
                    format!(
                        "timed out after {} ms waiting for the database writer",
                        self.timeouts.acquire.as_millis()
                    )
                    .into(),
                )
            })
    }

    /// Runs `op` in a transaction on the writer, committed together with the other writes
    /// queued meanwhile (see [`batch`]).
    async fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let bound = self.timeouts.call_bound();
        tokio::time::timeout(bound, self.queue.write(&self.writer, op))
            .await
            .map_err(|_| {
                StoreError::Unavailable(
                    format!(
                        "a write timed out after {} ms (database locked or stalled)",
                        bound.as_millis()
                    )
                    .into(),
                )
            })?
    }

    /// The writer, from a thread outside the async runtime (the blocking pool).
    fn writer_blocking(&self) -> tokio::sync::MutexGuard<'_, Connection> {
        self.writer.blocking_lock()
    }

    /// A connection for a read, if one is free: the writer when it is idle (its page cache is
    /// always current, being the only connection that writes; a reader's cache is dropped
    /// whenever another connection has committed), else a free reader.
    fn free_reader(&self) -> Option<ReadConn<'_>> {
        if let Ok(conn) = self.writer.try_lock() {
            return Some(ReadConn::Writer(conn));
        }
        let n = self.readers.len();
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            self.readers[(first + i) % n]
                .try_lock()
                .ok()
                .map(ReadConn::Reader)
        })
    }

    /// The reader whose turn it is; `None` for an in-memory database, which has no readers.
    fn reader_in_turn(&self) -> Option<&Mutex<Connection>> {
        let n = self.readers.len();
        (n > 0).then(|| &self.readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % n])
    }

    /// A connection for a read: a free one, else the reader in turn once free (or the writer,
    /// for an in-memory database).
    async fn reader(&self) -> ReadConn<'_> {
        if let Some(conn) = self.free_reader() {
            return conn;
        }
        match self.reader_in_turn() {
            Some(reader) => ReadConn::Reader(lock(reader)),
            None => ReadConn::Writer(self.writer().await),
        }
    }

    /// [`Inner::reader`], from a thread outside the async runtime.
    fn reader_blocking(&self) -> ReadConn<'_> {
        if let Some(conn) = self.free_reader() {
            return conn;
        }
        match self.reader_in_turn() {
            Some(reader) => ReadConn::Reader(lock(reader)),
            None => ReadConn::Writer(self.writer_blocking()),
        }
    }
}

/// Binds `values` to `$1 … $n` of a cached statement (exactly as many as it has).
fn bind(stmt: &mut Statement<'_>, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
    const NAMES: [&str; 8] = ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8"];
    if values.len() != stmt.parameter_count() || values.len() > NAMES.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            values.len(),
            stmt.parameter_count(),
        ));
    }
    for (name, value) in NAMES.iter().zip(values) {
        let index = stmt
            .parameter_index(name)?
            .ok_or_else(|| rusqlite::Error::InvalidParameterName((*name).to_owned()))?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

/// Starts a write transaction on the writer: `BEGIN IMMEDIATE`, which takes SQLite's write
/// lock at once, waiting in the busy handler if another connection holds it for a moment (a
/// reader re-reading a changing WAL index does). A deferred `BEGIN` followed by a read would
/// take it only at the first write, and SQLite answers "database is locked" at once, without
/// the busy handler, to a read transaction that cannot become a write one: one login in
/// ~150,000 failed that way under load.
fn write_transaction(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(map_err)
}

/// Runs a statement that returns no rows; the number of rows changed.
fn execute(conn: &Connection, sql: &str, values: &[&dyn ToSql]) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, values).map_err(map_err)?;
    stmt.raw_execute().map_err(map_err)
}

/// Runs a statement and maps its first row, if any (a `RETURNING` statement runs to the end).
fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, values).map_err(map_err)?;
    let mut rows = stmt.raw_query();
    let first = match rows.next().map_err(map_err)? {
        Some(row) => Some(map(row)?),
        None => None,
    };
    // Step to the end, so that a DELETE … RETURNING has finished its work before the
    // statement is reset.
    while rows.next().map_err(map_err)?.is_some() {}
    Ok(first)
}

/// Maps a driver error to the backend-neutral error (unique violations with SQLite's text,
/// which names the columns, never the values).
fn map_err(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, msg)
            if e.code == ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            StoreError::Conflict(msg.clone().unwrap_or_else(|| "unique".into()))
        }
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Unavailable(crate::store::Cause::of(err)),
    }
}

fn account_from_row(row: &Row<'_>) -> Result<Account, StoreError> {
    let status: String = row.get("status").map_err(map_err)?;
    Ok(Account {
        id: row.get("id").map_err(map_err)?,
        issuer: row.get("issuer").map_err(map_err)?,
        sub: row.get("sub").map_err(map_err)?,
        display_name: row.get("display_name").map_err(map_err)?,
        picture_url: row.get("picture_url").map_err(map_err)?,
        status: AccountStatus::parse(&status),
        created_at: row.get("created_at").map_err(map_err)?,
    })
}

fn tokens_from_row(row: &Row<'_>) -> Result<Option<StoredTokens>, StoreError> {
    let access: Option<Vec<u8>> = row.get("access_ct").map_err(map_err)?;
    let refresh: Option<Vec<u8>> = row.get("refresh_ct").map_err(map_err)?;
    match (access, refresh) {
        (Some(access_ct), Some(refresh_ct)) => Ok(Some(StoredTokens {
            access_ct,
            refresh_ct,
            access_expires_at: row.get("access_expires_at").map_err(map_err)?,
            refresh_issued_at: row.get("refresh_issued_at").map_err(map_err)?,
        })),
        _ => Ok(None),
    }
}

/// Marks a database that sqlx's migrator created (before this backend used rusqlite) as
/// being at the schema version it reached, so that its migrations are not applied twice.
fn adopt_sqlx_schema(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_err)?;
    let sqlx_table: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if version == 0 && sqlx_table {
        let applied: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                [],
                |r| r.get(0),
            )
            .map_err(map_err)?;
        conn.pragma_update(None, "user_version", applied)
            .map_err(map_err)?;
    }
    Ok(())
}

/// A completed login's writes (see [`Store::complete_login`]), inside the batch's
/// transaction: an error rolls back all of them and none of the batch's other writes.
fn complete_login(tx: &Connection, login: &LoginWrite) -> Result<Account, StoreError> {
    let user: [&dyn ToSql; 2] = [&login.issuer, &login.sub];
    let count = |tx: &Connection| {
        query_opt(tx, sql::COUNT_PENDING_JOBS, &user, |r| {
            r.get::<_, i64>("n").map_err(map_err)
        })
        .map(Option::unwrap_or_default)
    };
    // A stale deauthorization of this LINE user must never revoke the new link:
    // supersede it unless a worker is sending it right now.
    if count(tx)? > 0 {
        execute(
            tx,
            sql::SUPERSEDE_JOBS,
            &[&login.issuer, &login.sub, &login.now],
        )?;
        if count(tx)? > 0 {
            return Err(StoreError::Busy(
                "a deauthorization of this user is in progress",
            ));
        }
    }
    // With webhooks on: was the account unlinked before this login? (`account.linked` is
    // written only when the login creates the account or links it again.)
    let was_unlinked = login.linked_event.is_some()
        && query_opt(tx, sql::ACCOUNT_BY_SUB, &user, account_from_row)?
            .is_some_and(|a| a.status == AccountStatus::Unlinked);
    let account = query_opt(
        tx,
        sql::UPSERT_ACCOUNT,
        &[
            &login.new_account_id,
            &login.issuer,
            &login.sub,
            &login.display_name,
            &login.picture_url,
            &login.now,
        ],
        account_from_row,
    )?
    .ok_or(StoreError::NotFound)?;
    execute(
        tx,
        sql::UPSERT_TOKENS,
        &[
            &account.id,
            &login.tokens.access_ct,
            &login.tokens.refresh_ct,
            &login.tokens.access_expires_at,
            &login.tokens.refresh_issued_at,
            &login.now,
        ],
    )?;
    if let Some(old) = &login.replaces_session {
        execute(tx, sql::DELETE_SESSION, &[old])?;
    }
    execute(
        tx,
        sql::INSERT_SESSION,
        &[
            &login.session.id_hash,
            &account.id,
            &login.session.csrf_token,
            &login.now,
            &login.session.expires_at,
        ],
    )?;
    // Created by this login: the upsert kept our fresh id (of two first logins at once, only
    // the one that inserted writes the event).
    let created = account.id == login.new_account_id;
    if let Some(event) = login
        .linked_event
        .as_ref()
        .filter(|_| created || was_unlinked)
    {
        execute(
            tx,
            sql::INSERT_EVENT_FOR_ACCOUNT,
            &[
                event,
                &EventKind::Linked.as_str(),
                &login.now,
                &account.id,
                &None::<String>,
            ],
        )?;
    }
    Ok(account)
}

/// Runs a fenced outbox update (its last parameter is the lease id) and, when it changed the
/// row, writes the webhook event `event` about job `job_id` in the same transaction.
/// [`StoreError::LeaseLost`] (and nothing written) when the update matched no row.
fn fenced_job_update(
    conn: &mut Connection,
    statement: &str,
    values: &[&dyn ToSql],
    event: Option<(&str, EventKind, i64, &str)>,
) -> Result<(), StoreError> {
    let tx = write_transaction(conn)?;
    if execute(&tx, statement, values)? != 1 {
        return Err(StoreError::LeaseLost);
    }
    if let Some((id, kind, now, job_id)) = event {
        execute(
            &tx,
            sql::INSERT_EVENT_FOR_JOB,
            &[&id, &kind.as_str(), &now, &job_id],
        )?;
    }
    tx.commit().map_err(map_err)
}

/// Maps a claimed deauthorization job.
fn job_from_row(row: &Row<'_>) -> Result<DeauthJob, StoreError> {
    let reason: String = row.get("reason").map_err(map_err)?;
    Ok(DeauthJob {
        id: row.get("id").map_err(map_err)?,
        account_id: row.get("account_id").map_err(map_err)?,
        issuer: row.get("issuer").map_err(map_err)?,
        sub: row.get("sub").map_err(map_err)?,
        reason: DeauthReason::parse(&reason),
        tokens: tokens_from_row(row)?,
        attempts: row.get("attempts").map_err(map_err)?,
        created_at: row.get("created_at").map_err(map_err)?,
        lease: row.get("lease_id").map_err(map_err)?,
    })
}

/// Maps a claimed webhook event.
fn event_from_row(row: &Row<'_>) -> Result<WebhookEvent, StoreError> {
    Ok(WebhookEvent {
        id: row.get("id").map_err(map_err)?,
        kind: row.get("event_type").map_err(map_err)?,
        account_id: row.get("account_id").map_err(map_err)?,
        user_id: row.get("user_id").map_err(map_err)?,
        job_id: row.get("job_id").map_err(map_err)?,
        occurred_at: row.get("occurred_at").map_err(map_err)?,
        attempts: row.get("attempts").map_err(map_err)?,
        lease: row.get("lease_id").map_err(map_err)?,
    })
}

/// Runs a fenced update on the writer: [`StoreError::LeaseLost`] when it matched no row.
fn fenced(conn: &Connection, statement: &str, values: &[&dyn ToSql]) -> Result<(), StoreError> {
    if execute(conn, statement, values)? == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
            let mut conn = inner.writer_blocking();
            adopt_sqlx_schema(&conn)?;
            migrations()
                .to_latest(&mut conn)
                .map_err(|e| StoreError::Migration(crate::store::Cause::of(e)))
        })
        .await
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
        self.inner.write(move |tx| complete_login(tx, &login)).await
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
            account_from_row,
        )
    }

    async fn account_by_sub(&self, issuer: &str, sub: &str) -> Result<Option<Account>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            sql::ACCOUNT_BY_SUB,
            &[&issuer, &sub],
            account_from_row,
        )
    }

    async fn tokens(&self, account_id: &str) -> Result<Option<StoredTokens>, StoreError> {
        Ok(query_opt(
            &*self.inner.reader().await,
            sql::TOKENS,
            &[&account_id],
            tokens_from_row,
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
        let lease_until = now.saturating_add(lease_ms);
        let lease = sql::new_lease();
        query_opt(
            &*self.inner.writer_within().await?,
            sql::CLAIM_JOB,
            &[&lease_until, &now, &lease],
            job_from_row,
        )
    }

    async fn renew_job_lease(
        &self,
        job_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::RENEW_JOB,
            &[&job_id, &lease, &until],
        )
    }

    async fn put_job_tokens(
        &self,
        job_id: &str,
        lease: &str,
        tokens: &StoredTokens,
    ) -> Result<(), StoreError> {
        fenced(
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
        let note = sql::final_note(outcome);
        fenced_job_update(
            &mut *self.inner.writer_within().await?,
            sql::FINISH_JOB,
            &[&job_id, &now, &note, &lease],
            event.map(|id| (id, EventKind::Deauthorized, now, job_id)),
        )
    }

    async fn retry_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::RETRY_JOB,
            &[&job_id, &next_attempt_at, &error, &lease],
        )
    }

    async fn fail_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        fenced_job_update(
            &mut *self.inner.writer_within().await?,
            sql::FAIL_JOB,
            &[&job_id, &now, &error, &lease],
            event.map(|id| (id, EventKind::DeauthorizationFailed, now, job_id)),
        )
    }

    async fn release_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::RELEASE_JOB,
            &[&job_id, &next_attempt_at, &note, &lease],
        )
    }

    async fn give_up_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError> {
        fenced_job_update(
            &mut *self.inner.writer_within().await?,
            sql::GIVE_UP_JOB,
            &[&job_id, &now, &error, &lease],
            event.map(|id| (id, EventKind::DeauthorizationFailed, now, job_id)),
        )
    }

    async fn retry_failed_job(&self, job_id: &str, now: i64) -> Result<(), StoreError> {
        let changed = execute(
            &*self.inner.writer_within().await?,
            sql::RETRY_FAILED_JOB,
            &[&job_id, &now],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError> {
        let conn = self.inner.reader().await;
        let mut stmt = conn.prepare_cached(sql::FAILED_JOBS).map_err(map_err)?;
        bind(&mut stmt, &[&limit]).map_err(map_err)?;
        let mut rows = stmt.raw_query();
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let has_tokens: i64 = row.get("has_tokens").map_err(map_err)?;
            jobs.push(FailedJob {
                id: row.get("id").map_err(map_err)?,
                account_id: row.get("account_id").map_err(map_err)?,
                reason: row.get("reason").map_err(map_err)?,
                attempts: row.get("attempts").map_err(map_err)?,
                last_error: row.get("last_error").map_err(map_err)?,
                finished_at: row.get("finished_at").map_err(map_err)?,
                retryable: has_tokens != 0,
            });
        }
        Ok(jobs)
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
        let stats = query_opt(&*self.inner.reader().await, sql::JOB_STATS, &[], |row| {
            let oldest: Option<i64> = row.get("oldest").map_err(map_err)?;
            Ok(JobStats {
                pending: row.get("pending").map_err(map_err)?,
                failed: row.get("failed").map_err(map_err)?,
                oldest_pending_age_secs: oldest.map_or(0, |t| (now - t).max(0) / 1000),
            })
        })?;
        Ok(stats.unwrap_or_default())
    }

    async fn latest_job(&self, account_id: &str) -> Result<Option<JobSummary>, StoreError> {
        query_opt(
            &*self.inner.reader().await,
            sql::LATEST_JOB,
            &[&account_id],
            |row| {
                Ok(JobSummary {
                    id: row.get("id").map_err(map_err)?,
                    user_id: row.get("sub").map_err(map_err)?,
                    reason: row.get("reason").map_err(map_err)?,
                    status: row.get("status").map_err(map_err)?,
                    attempts: row.get("attempts").map_err(map_err)?,
                    last_error: row.get("last_error").map_err(map_err)?,
                    created_at: row.get("created_at").map_err(map_err)?,
                    finished_at: row.get("finished_at").map_err(map_err)?,
                })
            },
        )
    }

    async fn claim_webhook(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        let lease_until = now.saturating_add(lease_ms);
        let lease = sql::new_lease();
        query_opt(
            &*self.inner.writer_within().await?,
            sql::CLAIM_WEBHOOK,
            &[&lease_until, &now, &lease],
            event_from_row,
        )
    }

    async fn renew_webhook_lease(
        &self,
        event_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::RENEW_WEBHOOK,
            &[&event_id, &lease, &until],
        )
    }

    async fn finish_webhook(
        &self,
        event_id: &str,
        lease: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::FINISH_WEBHOOK,
            &[&event_id, &now, &"delivered", &lease],
        )
    }

    async fn retry_webhook(
        &self,
        event_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::RETRY_WEBHOOK,
            &[&event_id, &next_attempt_at, &error, &lease],
        )
    }

    async fn give_up_webhook(
        &self,
        event_id: &str,
        lease: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        fenced(
            &*self.inner.writer_within().await?,
            sql::GIVE_UP_WEBHOOK,
            &[&event_id, &now, &error, &lease],
        )
    }

    async fn retry_failed_webhook(&self, event_id: &str, now: i64) -> Result<(), StoreError> {
        if execute(
            &*self.inner.writer_within().await?,
            sql::RETRY_FAILED_WEBHOOK,
            &[&event_id, &now],
        )? == 0
        {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn webhook_stats(&self, now: i64) -> Result<JobStats, StoreError> {
        let stats = query_opt(
            &*self.inner.reader().await,
            sql::WEBHOOK_STATS,
            &[],
            |row| {
                let oldest: Option<i64> = row.get("oldest").map_err(map_err)?;
                Ok(JobStats {
                    pending: row.get("pending").map_err(map_err)?,
                    failed: row.get("failed").map_err(map_err)?,
                    oldest_pending_age_secs: oldest.map_or(0, |t| (now - t).max(0) / 1000),
                })
            },
        )?;
        Ok(stats.unwrap_or_default())
    }

    /// On the blocking pool: finds expired rows on a reader connection (a scan: neither table
    /// has an expiry index, which every login would have to write), then deletes them by key
    /// on the writer, one short transaction per batch, so logins interleave with a large purge.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            let mut total = 0u64;
            for (find, delete) in [
                (FIND_EXPIRED_SESSIONS, DELETE_EXPIRED_SESSION),
                (FIND_EXPIRED_PENDING_LOGINS, DELETE_EXPIRED_PENDING_LOGIN),
            ] {
                loop {
                    let expired: Vec<String> = {
                        let conn = inner.reader_blocking();
                        let mut stmt = conn.prepare_cached(find).map_err(map_err)?;
                        bind(&mut stmt, &[&now, &sql::PURGE_BATCH]).map_err(map_err)?;
                        let mut rows = stmt.raw_query();
                        let mut ids = Vec::new();
                        while let Some(row) = rows.next().map_err(map_err)? {
                            ids.push(row.get(0).map_err(map_err)?);
                        }
                        ids
                    };
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

    async fn purge_finished_jobs(&self, before: i64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for statement in [
            sql::PURGE_FINISHED_JOBS_BATCH,
            sql::PURGE_DELIVERED_WEBHOOKS_BATCH,
        ] {
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

    async fn claim_maintenance(
        &self,
        task: &str,
        now: i64,
        period_ms: i64,
    ) -> Result<bool, StoreError> {
        let task = task.to_owned();
        let latest = super::latest_run_allowing(now, period_ms);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(
            parse_url("sqlite://x?mode=memory").unwrap(),
            Location::Memory
        );
        assert_eq!(
            parse_url("sqlite://linelogin.db").unwrap(),
            Location::File("linelogin.db".into())
        );
        assert_eq!(
            parse_url("sqlite:///tmp/a%20b.db?mode=rwc").unwrap(),
            Location::File("/tmp/a b.db".into())
        );
        assert_eq!(
            parse_url("sqlite:rel.db").unwrap(),
            Location::File("rel.db".into())
        );
        for bad in ["postgres://x", "sqlite://", "sqlite://x.db?cache=shared"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    /// The purge is O(expired): its queries search an expiry index instead of scanning.
    #[tokio::test]
    async fn the_purge_finds_expired_rows_by_index() {
        let s = SqliteStore::in_memory().await.unwrap();
        s.migrate().await.unwrap();
        let conn = s.inner.writer().await;
        for (query, index) in [
            (FIND_EXPIRED_SESSIONS, "sessions_expires_at"),
            (FIND_EXPIRED_PENDING_LOGINS, "pending_logins_expires_at"),
            (sql::PURGE_FINISHED_JOBS_BATCH, "deauth_jobs_finished"),
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

    #[tokio::test]
    async fn a_database_made_by_sqlx_is_adopted_not_migrated_twice() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        {
            // What sqlx's migrator left: the schema and its bookkeeping table.
            let s = SqliteStore::connect(&url).await.unwrap();
            let conn = s.inner.writer().await;
            conn.execute_batch(include_str!("../../../migrations/sqlite/0001_init.sql"))
                .unwrap();
            conn.execute_batch(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, \
                 installed_on TIMESTAMP, success BOOLEAN, checksum BLOB, execution_time BIGINT); \
                 INSERT INTO _sqlx_migrations VALUES (1, 'init', 0, TRUE, x'00', 0);",
            )
            .unwrap();
        }
        let s = SqliteStore::connect(&url).await.unwrap();
        s.migrate().await.unwrap();
        let version: i64 = s
            .inner
            .writer()
            .await
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            version,
            MIGRATIONS.len() as i64,
            "adopted at 1, then the later ones applied"
        );
    }

    /// A migrated store in a file `name` of a new temporary directory (kept while the
    /// returned guard lives), and the file's path.
    async fn migrated_file_store(name: &str) -> (tempfile::TempDir, PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let s = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        (dir, path, s)
    }

    /// Writes without a pause (as under load): the WAL must keep starting over, not grow by
    /// every frame written. The WAL header's checkpoint sequence number (bytes 12..16,
    /// big-endian) counts the restarts; a checkpointer that never catches up leaves it at 0
    /// while the WAL holds every frame ever written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_continuous_writes() {
        let (_dir, path, s) = migrated_file_store("busy.db").await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..2 {
            let (s, stop) = (s.clone(), Arc::clone(&stop));
            writers.push(tokio::spawn(async move {
                let blob = vec![7u8; 3000];
                let mut commits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{commits}");
                    s.put_pending_login(&key, &blob, 1).await.unwrap();
                    assert!(s.take_pending_login(&key, 0).await.unwrap().is_some());
                    commits += 2;
                }
                commits
            }));
        }
        let wal_path = path.with_extension("db-wal");
        let restarts = || {
            let wal = std::fs::read(&wal_path).unwrap_or_default();
            wal.get(12..16)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let checkpoints = || {
            s.inner
                ._checkpointer
                .as_ref()
                .map_or(0, Checkpointer::finished)
        };
        // Counted in checkpoints, not seconds, so that a slow machine changes nothing; the
        // deadline only bounds a failing run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while checkpoints() < 10 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_INTERVAL / 2).await;
        }
        let (done, restarted) = (checkpoints(), restarts());
        stop.store(true, Ordering::Relaxed);
        let mut commits = 0;
        for w in writers {
            commits += w.await.unwrap();
        }
        let wal = std::fs::metadata(&wal_path).unwrap().len();
        // Each finished checkpoint lets the next write start the WAL over.
        assert!(
            done >= 10 && u64::from(restarted) * 2 >= done,
            "the WAL started over {restarted} times in {done} checkpoints ({commits} commits, \
             WAL {wal} bytes)"
        );
    }

    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database() {
        let (_dir, path, s) = migrated_file_store("wal.db").await;
        let before = std::fs::metadata(&path).unwrap().len();
        let blob = vec![7u8; 2000];
        for i in 0..200 {
            s.put_pending_login(&format!("h{i}"), &blob, 1)
                .await
                .unwrap();
        }
        // The serving connections never checkpoint (wal_autocheckpoint = 0), so the rows
        // reach the database file only through the checkpoint thread.
        let mut after = before;
        for _ in 0..100 {
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            after = std::fs::metadata(&path).unwrap().len();
            if after >= before + 200 * 2000 {
                break;
            }
        }
        assert!(
            after >= before + 200 * 2000,
            "database file {before} → {after} bytes"
        );
    }
}
