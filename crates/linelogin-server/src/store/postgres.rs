//! The PostgreSQL backend, behind the same [`Store`](super::Store) trait as SQLite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::impl_sql_store;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    /// Connects to a `postgres://` URL. With `schema`, the schema is created if missing and
    /// every connection works inside it (tests use one schema per run). Call
    /// [`Store::migrate`](super::Store::migrate) before use (or use [`super::connect`]).
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("bad postgres URL: {}", redact_err(&e)))
        })?;
        if let Some(schema) = schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Unavailable("bad schema name".into()));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(map_err)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&admin)
                .await
                .map_err(map_err)?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(Self { pool })
    }

    fn writer(&self) -> &sqlx::PgPool {
        &self.pool
    }

    fn reader(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

fn redact_err(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "invalid URL",
        _ => "error",
    }
}

impl_sql_store!(PostgresStore, sqlx::Postgres);
