//! Running statements: binding `$1 … $n`, the prepared-statement cache, write transactions,
//! reading rows, and the driver's errors in the backend-neutral [`StoreError`].

use rusqlite::types::ToSql;
use rusqlite::{Connection, ErrorCode, Row};

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::SqliteStore;
use super::connection::ReadConn;
use crate::store::StoreError;
use crate::store::outbox::{Exec, Read, Statement, Value};
use crate::store::rows;

/// Binds `values` to `$1 … $n` of a cached statement (exactly as many as it has).
fn bind(stmt: &mut rusqlite::Statement<'_>, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
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
pub(super) fn write_transaction(
    conn: &mut Connection,
) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(map_err)
}

/// Runs a statement that returns no rows; the number of rows changed.
pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, values).map_err(map_err)?;
    stmt.raw_execute().map_err(map_err)
}

/// Runs a statement and hands each of its rows to `each`, to the end (so that a
/// `DELETE … RETURNING` has finished its work before the statement is reset).
fn for_each_row(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    mut each: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, values).map_err(map_err)?;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(map_err)? {
        each(row)?;
    }
    Ok(())
}

/// Runs a statement and maps its first row, if any (a `RETURNING` statement runs to the end).
pub(super) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let (mut map, mut first) = (Some(map), None);
    for_each_row(conn, sql, values, |row| {
        if let Some(map) = map.take() {
            first = Some(map(row)?);
        }
        Ok(())
    })?;
    Ok(first)
}

/// Runs a read and maps every row.
pub(super) fn read_all<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for_each_row(conn, sql, values, |row| {
        out.push(map(row)?);
        Ok(())
    })?;
    Ok(out)
}

/// Maps a driver error to the backend-neutral error (unique violations with SQLite's text,
/// which names the columns, never the values).
pub(super) fn map_err(err: rusqlite::Error) -> StoreError {
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

rows::impl_columns!(Row<'_>, i64, |row, column| row.get(column).map_err(map_err));

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Int(int) => ValueRef::Integer(int),
            Value::Bytes(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

/// The values of a statement, as rusqlite takes them.
fn params<'a>(values: &'a [Value<'a>]) -> Vec<&'a dyn ToSql> {
    values.iter().map(|value| value as &dyn ToSql).collect()
}

/// The outbox's statements run on the writer (claims and fenced writes: one statement, or a
/// fenced write and its webhook event in one transaction), outside the group commit: the
/// workers' writes are few, and a lost lease must be known to the caller at once. Reads run
/// on a reader.
#[async_trait]
impl Exec for SqliteStore {
    const SKIP_LOCKED: bool = false;

    async fn write(
        &self,
        (sql, values): Statement<'_>,
        then: Option<Statement<'_>>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.inner.writer_within().await?;
        let Some((then, then_values)) = then else {
            return Ok(execute(&conn, sql, &params(values))? as u64);
        };
        let tx = write_transaction(&mut conn)?;
        let changed = execute(&tx, sql, &params(values))?;
        if changed == 1 {
            execute(&tx, then, &params(then_values))?;
            tx.commit().map_err(map_err)?;
        }
        Ok(changed as u64)
    }

    async fn query<T: Send + 'static>(
        &self,
        (sql, values): Statement<'_>,
        read: Read<T>,
        writes: bool,
    ) -> Result<Vec<T>, StoreError> {
        let conn = if writes {
            ReadConn::Writer(self.inner.writer_within().await?)
        } else {
            self.inner.reader().await
        };
        read_all(&conn, sql, &params(values), |row| read(row))
    }
}
