//! Reading the store's records out of result rows, once for both backends.
//!
//! Both backends return the same columns for the same statements (the SQL is shared, see the
//! `sql` module), so what a row means is written here once, against [`Columns`]: each
//! backend implements it for its driver's row type (sqlx's `PgRow`, rusqlite's `Row`), and
//! its own error mapping stays in the backend.

use super::admin::{JobInfo, TokenRow};
use super::{
    Account, AccountStatus, DeauthJob, DeauthReason, FailedJob, JobSummary, StoreError,
    StoredTokens, WebhookEvent,
};

/// A result row, read by column name in the few types the schema uses.
pub(crate) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// A 64-bit integer column (`BIGINT NOT NULL`, or an aggregate that is never NULL).
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A nullable 64-bit integer column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A nullable byte-string column.
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A `CASE … THEN 0 ELSE 1 END` column (a 32-bit integer on PostgreSQL): whether it is
    /// not 0.
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

/// Implements [`Columns`] for a driver's row type `$row`, given how it reads one column
/// (`|row, column| …`, generic in the column's Rust type) and the integer type its driver
/// decodes a `flag` as.
macro_rules! impl_columns {
    ($row:ty, $flag:ty, |$r:ident, $c:ident| $get:expr) => {
        impl $crate::store::rows::Columns for $row {
            fn text(&self, $c: &str) -> Result<String, $crate::store::StoreError> {
                let $r = self;
                $get
            }

            fn opt_text(&self, $c: &str) -> Result<Option<String>, $crate::store::StoreError> {
                let $r = self;
                $get
            }

            fn int(&self, $c: &str) -> Result<i64, $crate::store::StoreError> {
                let $r = self;
                $get
            }

            fn opt_int(&self, $c: &str) -> Result<Option<i64>, $crate::store::StoreError> {
                let $r = self;
                $get
            }

            fn opt_bytes(&self, $c: &str) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                let $r = self;
                $get
            }

            fn flag(&self, $c: &str) -> Result<bool, $crate::store::StoreError> {
                let $r = self;
                let value: $flag = $get?;
                Ok(value != 0)
            }
        }
    };
}
pub(crate) use impl_columns;

/// An account (`id, issuer, sub, display_name, picture_url, status, created_at`).
pub(crate) fn account(row: &dyn Columns) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.text("id")?,
        issuer: row.text("issuer")?,
        sub: row.text("sub")?,
        display_name: row.text("display_name")?,
        picture_url: row.opt_text("picture_url")?,
        status: AccountStatus::parse(&row.text("status")?),
        created_at: row.int("created_at")?,
    })
}

/// Stored tokens, `None` when the row holds none (wiped, or never stored).
pub(crate) fn tokens(row: &dyn Columns) -> Result<Option<StoredTokens>, StoreError> {
    match (row.opt_bytes("access_ct")?, row.opt_bytes("refresh_ct")?) {
        (Some(access_ct), Some(refresh_ct)) => Ok(Some(StoredTokens {
            access_ct,
            refresh_ct,
            access_expires_at: row.int("access_expires_at")?,
            refresh_issued_at: row.int("refresh_issued_at")?,
        })),
        _ => Ok(None),
    }
}

/// A claimed deauthorization job (what `sql::JOBS.claim` returns).
pub(crate) fn deauth_job(row: &dyn Columns) -> Result<DeauthJob, StoreError> {
    Ok(DeauthJob {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        issuer: row.text("issuer")?,
        sub: row.text("sub")?,
        reason: DeauthReason::parse(&row.text("reason")?),
        tokens: tokens(row)?,
        attempts: row.int("attempts")?,
        created_at: row.int("created_at")?,
        lease: row.text("lease_id")?,
    })
}

/// A claimed webhook event (what `sql::WEBHOOKS.claim` returns).
pub(crate) fn webhook_event(row: &dyn Columns) -> Result<WebhookEvent, StoreError> {
    Ok(WebhookEvent {
        id: row.text("id")?,
        kind: row.text("event_type")?,
        account_id: row.text("account_id")?,
        user_id: row.text("user_id")?,
        job_id: row.opt_text("job_id")?,
        occurred_at: row.int("occurred_at")?,
        attempts: row.int("attempts")?,
        lease: row.text("lease_id")?,
    })
}

/// A failed job as `sql::FAILED_JOBS` lists it.
pub(crate) fn failed_job(row: &dyn Columns) -> Result<FailedJob, StoreError> {
    Ok(FailedJob {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        reason: row.text("reason")?,
        attempts: row.int("attempts")?,
        last_error: row.opt_text("last_error")?,
        finished_at: row.opt_int("finished_at")?,
        retryable: row.flag("has_tokens")?,
    })
}

/// An account's latest job (`sql::LATEST_JOB`).
pub(crate) fn job_summary(row: &dyn Columns) -> Result<JobSummary, StoreError> {
    Ok(JobSummary {
        id: row.text("id")?,
        user_id: row.text("sub")?,
        reason: row.text("reason")?,
        status: row.text("status")?,
        attempts: row.int("attempts")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.int("created_at")?,
        finished_at: row.opt_int("finished_at")?,
    })
}

/// An outbox's counters as `stats` of a `sql::Outbox` returns them: pending, failed, and
/// when the oldest pending row was created.
pub(crate) fn outbox_counts(row: &dyn Columns) -> Result<(i64, i64, Option<i64>), StoreError> {
    Ok((
        row.int("pending")?,
        row.int("failed")?,
        row.opt_int("oldest")?,
    ))
}

/// A job as an operator sees it (the `admin` module's job queries).
pub(crate) fn job_info(row: &dyn Columns) -> Result<JobInfo, StoreError> {
    Ok(JobInfo {
        id: row.text("id")?,
        account_id: row.text("account_id")?,
        reason: row.text("reason")?,
        status: row.text("status")?,
        attempts: row.int("attempts")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.int("created_at")?,
        next_attempt_at: row.int("next_attempt_at")?,
        lease_until: row.opt_int("lease_until")?,
        finished_at: row.opt_int("finished_at")?,
        has_tokens: row.flag("has_tokens")?,
    })
}

/// A job's `status` (`sql::JOB_STATUS`).
pub(crate) fn status(row: &dyn Columns) -> Result<String, StoreError> {
    row.text("status")
}

/// A token row of the `admin` module's token pages, `None` when it holds no tokens.
pub(crate) fn token_row(row: &dyn Columns) -> Result<Option<TokenRow>, StoreError> {
    let Some(tokens) = tokens(row)? else {
        return Ok(None);
    };
    Ok(Some(TokenRow {
        owner: row.text("owner")?,
        issuer: row.text("issuer")?,
        sub: row.text("sub")?,
        tokens,
    }))
}

/// A nullable time named `at`.
pub(crate) fn at(row: &dyn Columns) -> Result<Option<i64>, StoreError> {
    row.opt_int("at")
}
