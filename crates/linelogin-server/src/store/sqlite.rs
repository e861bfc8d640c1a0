//! The SQLite backend (embedded default): WAL mode, prepared statements (cached per
//! connection), a pool of reader connections and one writer connection. SQLite allows one
//! writer at a time; funnelling writes through one connection queues them in-process instead
//! of making connections spin in SQLite's busy handler.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::impl_sql_store;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: sqlx::SqlitePool,
    reader: sqlx::SqlitePool,
}

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
        let pool = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options.clone())
        };
        let writer = pool(1).await.map_err(map_err)?;
        // An in-memory database lives in one connection.
        let reader = if in_memory {
            writer.clone()
        } else {
            pool(8).await.map_err(map_err)?
        };
        Ok(Self { writer, reader })
    }

    /// An in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::connect("sqlite::memory:").await
    }

    fn writer(&self) -> &sqlx::SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &sqlx::SqlitePool {
        &self.reader
    }
}

impl_sql_store!(SqliteStore, sqlx::Sqlite);
