//! Opening the SQLite store: parsing the `sqlite:` URL, opening the connections with their
//! pragmas (WAL, `synchronous = NORMAL`, no auto-checkpoint on the serving connections), and
//! lending them out — the one writer behind an async mutex, the read-only readers, and tokio's
//! blocking pool for work that may take long (see the parent module's docs for why).

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::batch::WriteQueue;
use super::checkpoint::Checkpointer;
use super::map_err;
use crate::store::{StoreError, Timeouts};

/// Reader connections of a file database. Statements run on the callers' threads, so more
/// readers than threads that may read at once (runtime workers, a blocking-pool task) would
/// sit idle.
const READERS: usize = 4;
/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A WAL that grew past this (a burst the checkpointer could not keep up with) is cut back to
/// it when it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) writer: Arc<tokio::sync::Mutex<Connection>>,
    /// The frequent writes, committed in groups on the writer.
    queue: WriteQueue,
    /// Read-only connections; empty for an in-memory database, which lives in one connection
    /// (the writer).
    readers: Box<[Mutex<Connection>]>,
    next_reader: AtomicUsize,
    /// Stops and joins the checkpoint thread when the store is dropped.
    pub(super) _checkpointer: Option<Checkpointer>,
    /// Bounded waits (the busy timeout is set on the connections).
    timeouts: Timeouts,
}

/// Where a `sqlite:` URL points.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Location {
    Memory,
    File(PathBuf),
}

/// Parses `sqlite::memory:`, `sqlite://relative.db`, `sqlite:///absolute.db`,
/// `sqlite:relative.db`, with an optional `?mode=rwc` (the default) or `?mode=memory`.
pub(super) fn parse_url(url: &str) -> Result<Location, StoreError> {
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

pub(super) fn open(location: &Location, read_only: bool) -> Result<Connection, StoreError> {
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
    /// checkpointer. Call [`Store::migrate`](crate::store::Store::migrate) before use (or use [`crate::store::connect`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Timeouts::default()).await
    }

    /// [`SqliteStore::connect`] with these bounded waits: `statement` is every connection's
    /// busy timeout (a lock held by another process: the file locked by another connection's
    /// `BEGIN EXCLUSIVE`); `acquire` bounds the wait for the writer. A write that is not done
    /// within their sum fails with [`StoreError::Unavailable`] (once queued, it may still
    /// commit later, like the write of a request that was dropped: see the `batch` module).
    pub async fn connect_with(url: &str, timeouts: Timeouts) -> Result<Self, StoreError> {
        let location = parse_url(url)?;
        tokio::task::spawn_blocking(move || Self::open_blocking(&location, timeouts))
            .await
            .map_err(|e| {
                StoreError::Unavailable(crate::store::Cause::context("opening the database", e))
            })?
    }

    fn open_blocking(location: &Location, timeouts: Timeouts) -> Result<Self, StoreError> {
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
    pub(super) async fn blocking<T: Send + 'static>(
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

/// A connection lent out: the writer (for a read when it is idle, or a claim), or a reader.
pub(super) enum ReadConn<'a> {
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
    pub(super) async fn writer(&self) -> tokio::sync::MutexGuard<'_, Connection> {
        self.writer.lock().await
    }

    /// The writer, waiting at most the acquire timeout for it.
    pub(super) async fn writer_within(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Connection>, StoreError> {
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
    pub(super) async fn write<T: Send + 'static>(
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
    pub(super) fn writer_blocking(&self) -> tokio::sync::MutexGuard<'_, Connection> {
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
    pub(super) async fn reader(&self) -> ReadConn<'_> {
        if let Some(conn) = self.free_reader() {
            return conn;
        }
        match self.reader_in_turn() {
            Some(reader) => ReadConn::Reader(lock(reader)),
            None => ReadConn::Writer(self.writer().await),
        }
    }

    /// [`Inner::reader`], from a thread outside the async runtime.
    pub(super) fn reader_blocking(&self) -> ReadConn<'_> {
        if let Some(conn) = self.free_reader() {
            return conn;
        }
        match self.reader_in_turn() {
            Some(reader) => ReadConn::Reader(lock(reader)),
            None => ReadConn::Writer(self.writer_blocking()),
        }
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
}
