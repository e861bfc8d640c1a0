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

    /// One transaction: supersede stale jobs (or refuse while one is in flight), upsert the
    /// account and its tokens, replace the session.
    async fn complete_login_impl(&self, login: &LoginWrite) -> Result<Account, StoreError> {
        let mut conn = self.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
        // A stale deauthorization of this LINE user must never revoke the new link:
        // supersede it unless a worker is sending it right now. (The common case, no
        // job at all, costs one indexed lookup.)
        let count_pending = "SELECT COUNT(*) AS n FROM deauth_jobs WHERE issuer = $1 AND sub = $2 AND status = 'pending'";
        let pending: i64 = sqlx::query(count_pending)
            .bind(&login.issuer)
            .bind(&login.sub)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?
            .try_get("n")
            .map_err(map_err)?;
        if pending > 0 {
            sqlx::query(
                "UPDATE deauth_jobs SET status = 'superseded', finished_at = $3, access_ct = NULL, refresh_ct = NULL \
                 WHERE issuer = $1 AND sub = $2 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $3)",
            )
            .bind(&login.issuer)
            .bind(&login.sub)
            .bind(login.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let in_flight: i64 = sqlx::query(count_pending)
                .bind(&login.issuer)
                .bind(&login.sub)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?
                .try_get("n")
                .map_err(map_err)?;
            if in_flight > 0 {
                return Err(StoreError::Busy(
                    "a deauthorization of this user is in progress",
                ));
            }
        }
        let row = sqlx::query(
            "INSERT INTO accounts (id, issuer, sub, display_name, picture_url, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'linked', $6, $6) \
             ON CONFLICT (issuer, sub) DO UPDATE SET display_name = excluded.display_name, \
             picture_url = excluded.picture_url, status = 'linked', updated_at = excluded.updated_at \
             RETURNING id, issuer, sub, display_name, picture_url, status, created_at",
        )
        .bind(&login.new_account_id)
        .bind(&login.issuer)
        .bind(&login.sub)
        .bind(&login.display_name)
        .bind(&login.picture_url)
        .bind(login.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let account = account_from_row(&row)?;
        sqlx::query(
            "INSERT INTO tokens (account_id, access_ct, refresh_ct, access_expires_at, refresh_issued_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id) DO UPDATE SET access_ct = excluded.access_ct, refresh_ct = excluded.refresh_ct, \
             access_expires_at = excluded.access_expires_at, refresh_issued_at = excluded.refresh_issued_at, \
             updated_at = excluded.updated_at",
        )
        .bind(&account.id)
        .bind(&login.tokens.access_ct)
        .bind(&login.tokens.refresh_ct)
        .bind(login.tokens.access_expires_at)
        .bind(login.tokens.refresh_issued_at)
        .bind(login.now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(old) = &login.replaces_session {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(&login.session.id_hash)
        .bind(&account.id)
        .bind(&login.session.csrf_token)
        .bind(login.now)
        .bind(login.session.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(account)
    }

    async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(map_err)
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(map_err)
    }
}

fn redact_err(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "invalid URL",
        _ => "error",
    }
}

impl_sql_store!(PostgresStore, sqlx::Postgres);
