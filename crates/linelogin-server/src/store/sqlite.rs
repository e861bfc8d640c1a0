//! The SQLite backend (embedded default): WAL mode, prepared statements (cached per
//! connection), eight reader connections and one writer connection. SQLite allows one
//! writer at a time; funnelling writes through one connection queues them in-process instead
//! of making connections spin in SQLite's busy handler.
//!
//! Each connection sits behind an async mutex rather than in a sqlx pool: the pool pings a
//! connection (a round trip to the connection's thread) on every acquire and every release,
//! the latter from a spawned task that must be scheduled before the next user gets it, which
//! doubled the writer's time per statement under load. Cancellation stays safe: sqlx's SQLite
//! connection runs commands in order on its own thread, and a transaction dropped before
//! commit queues its ROLLBACK before the lock is released.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::{Mutex, MutexGuard};

use super::sql::impl_sql_store;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<SqliteConnection>>,
    /// Read-only work; empty for an in-memory database, which lives in one connection (the
    /// writer).
    readers: Arc<[Mutex<SqliteConnection>]>,
    next_reader: Arc<AtomicUsize>,
}

/// How long a statement waits for a connection before failing (as a pool's acquire timeout).
const CONNECTION_WAIT: Duration = Duration::from_secs(30);
/// Reader connections of a file database.
const READERS: usize = 8;

impl SqliteStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Opens (creating if needed) the database at a `sqlite:` URL, in WAL mode. Call
    /// [`Store::migrate`](super::Store::migrate) before use (or use [`super::connect`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad sqlite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .statement_cache_capacity(128);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = options.connect().await.map_err(map_err)?;
        let mut readers = Vec::new();
        if !in_memory {
            for _ in 0..READERS {
                readers.push(Mutex::new(options.connect().await.map_err(map_err)?));
            }
        }
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: readers.into(),
            next_reader: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// An in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::connect("sqlite::memory:").await
    }

    /// One transaction in three round trips to the connection's thread (BEGIN, one batch of
    /// statements, COMMIT): supersede stale jobs, upsert the account and its tokens, replace
    /// the session, and read back the account with the count of jobs still in flight (then
    /// roll back with [`StoreError::Busy`]). SQLite binds `$n` across the whole batch.
    async fn complete_login_impl(&self, login: &LoginWrite) -> Result<Account, StoreError> {
        const SQL: &str = "\
            UPDATE deauth_jobs SET status = 'superseded', finished_at = $6, access_ct = NULL, refresh_ct = NULL \
              WHERE issuer = $2 AND sub = $3 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $6); \
            INSERT INTO accounts (id, issuer, sub, display_name, picture_url, status, created_at, updated_at) \
              VALUES ($1, $2, $3, $4, $5, 'linked', $6, $6) \
              ON CONFLICT (issuer, sub) DO UPDATE SET display_name = excluded.display_name, \
              picture_url = excluded.picture_url, status = 'linked', updated_at = excluded.updated_at; \
            INSERT INTO tokens (account_id, access_ct, refresh_ct, access_expires_at, refresh_issued_at, updated_at) \
              SELECT id, $7, $8, $9, $10, $6 FROM accounts WHERE issuer = $2 AND sub = $3 \
              ON CONFLICT (account_id) DO UPDATE SET access_ct = excluded.access_ct, refresh_ct = excluded.refresh_ct, \
              access_expires_at = excluded.access_expires_at, refresh_issued_at = excluded.refresh_issued_at, \
              updated_at = excluded.updated_at; \
            DELETE FROM sessions WHERE id_hash = $14; \
            INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at) \
              SELECT $11, id, $12, $6, $6, $13 FROM accounts WHERE issuer = $2 AND sub = $3; \
            SELECT id, issuer, sub, display_name, picture_url, status, created_at, \
              (SELECT COUNT(*) FROM deauth_jobs WHERE issuer = $2 AND sub = $3 AND status = 'pending') AS in_flight \
              FROM accounts WHERE issuer = $2 AND sub = $3";
        let mut conn = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
        let row = sqlx::query(SQL)
            .bind(&login.new_account_id)
            .bind(&login.issuer)
            .bind(&login.sub)
            .bind(&login.display_name)
            .bind(&login.picture_url)
            .bind(login.now)
            .bind(&login.tokens.access_ct)
            .bind(&login.tokens.refresh_ct)
            .bind(login.tokens.access_expires_at)
            .bind(login.tokens.refresh_issued_at)
            .bind(&login.session.id_hash)
            .bind(&login.session.csrf_token)
            .bind(login.session.expires_at)
            .bind(&login.replaces_session)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let in_flight: i64 = row.try_get("in_flight").map_err(map_err)?;
        if in_flight > 0 {
            tx.rollback().await.map_err(map_err)?;
            return Err(StoreError::Busy(
                "a deauthorization of this user is in progress",
            ));
        }
        let account = account_from_row(&row)?;
        tx.commit().await.map_err(map_err)?;
        Ok(account)
    }

    async fn writer(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        tokio::time::timeout(CONNECTION_WAIT, self.writer.lock())
            .await
            .map_err(|_| StoreError::Unavailable("timed out waiting for the writer".into()))
    }

    /// A free reader connection if there is one, else the next in turn once free.
    async fn reader(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        let n = self.readers.len();
        if n == 0 {
            return self.writer().await;
        }
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(conn) = self.readers[(first + i) % n].try_lock() {
                return Ok(conn);
            }
        }
        tokio::time::timeout(CONNECTION_WAIT, self.readers[first].lock())
            .await
            .map_err(|_| StoreError::Unavailable("timed out waiting for a reader".into()))
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite);
