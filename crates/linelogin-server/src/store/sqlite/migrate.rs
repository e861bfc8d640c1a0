//! The schema: the migration scripts, applied in order (`PRAGMA user_version` counts them),
//! and the adoption of a database that sqlx's migrator made before this backend used rusqlite.

use rusqlite::Connection;

use super::{SqliteStore, map_err};
use crate::store::StoreError;

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

impl SqliteStore {
    /// Brings the schema to the latest version, on the blocking pool.
    pub(super) async fn run_migrations(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
            let mut conn = inner.writer_blocking();
            adopt_sqlx_schema(&conn)?;
            migrations()
                .to_latest(&mut conn)
                .map_err(|e| StoreError::Migration(crate::store::Cause::of(e)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;

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
}
