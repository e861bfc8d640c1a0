//! How PostgreSQL runs the shared outbox path ([`Exec`], see `store::outbox`), its batched
//! purges, and reading its rows ([`rows::Columns`]) — a child of the `postgres` module.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, query::Query};

use super::{PostgresStore, map_err};
use crate::store::outbox::{Exec, Read, Statement, Value};
use crate::store::{StoreError, rows, sql};

/// `statement` with its values bound.
fn bound<'q>((sql, values): Statement<'q>) -> Query<'q, Postgres, PgArguments> {
    values
        .iter()
        .fold(sqlx::query(sql), |query, value| match *value {
            Value::Text(text) => query.bind(text),
            Value::Int(int) => query.bind(int),
            Value::Bytes(bytes) => query.bind(bytes),
        })
}

#[async_trait]
impl Exec for PostgresStore {
    const SKIP_LOCKED: bool = true;

    async fn write(
        &self,
        first: Statement<'_>,
        then: Option<Statement<'_>>,
    ) -> Result<u64, StoreError> {
        let Some(then) = then else {
            let done = bound(first).execute(&self.pool).await.map_err(map_err)?;
            return Ok(done.rows_affected());
        };
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let changed = bound(first)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed == 1 {
            bound(then).execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
        }
        Ok(changed)
    }

    async fn query<T: Send + 'static>(
        &self,
        statement: Statement<'_>,
        read: Read<T>,
        _writes: bool,
    ) -> Result<Vec<T>, StoreError> {
        let rows = bound(statement)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|row| read(row)).collect()
    }
}

impl PostgresStore {
    /// Runs each of the batch deletes `statements` (`$1` a time, `$2` the batch size) until it
    /// deletes less than a batch; how many rows went.
    pub(super) async fn purge_batches(
        &self,
        statements: &[&str],
        at: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for statement in statements {
            let values = [Value::Int(at), Value::Int(sql::PURGE_BATCH)];
            loop {
                let n = self.write((statement, &values), None).await?;
                total += n;
                if n < sql::PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(total)
    }
}

rows::impl_columns!(PgRow, i32, |row, column| {
    sqlx::Row::try_get(row, column).map_err(map_err)
});
