//! Storage: one small async trait, [`Store`], with a backend-neutral [`StoreError`].
//!
//! Two backends implement it from the same SQL (the private `sql` module): [`SqliteStore`] (the embedded
//! default, WAL mode) and [`PostgresStore`]. Each has its own migrations, run by
//! [`connect`] at start. Times are Unix milliseconds; token values are stored only as AEAD
//! ciphertexts (see [`crate::crypto`]); session ids and pending-login ids only as SHA-256
//! hashes (a session's prefixed by its creation time, see [`crate::session::session_key`]).

pub mod admin;
#[cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod rows;
// The statements both backends share, and a few only one runs: a build with one backend
// leaves the other's unused.
#[cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use async_trait::async_trait;

pub use admin::{Admin, AdminStore, connect_admin};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(feature = "sqlite")]
pub use sqlite::file_path as sqlite_file_path;

use crate::config::{Backend, DatabaseUrl};

/// A storage failure, the same for every backend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row that the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint was violated (e.g. two first logins of the same user at once).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The operation must wait for something in progress (an earlier deauthorization of the
    /// same LINE user is being sent right now).
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The database could not be reached or answered with an error.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[source] Cause),
    /// A worker's lease on an outbox row was lost (it expired and another worker claimed the
    /// row, or the row is no longer pending): the write was not made (fencing).
    #[error("lease lost: the outbox row is held by another worker or no longer pending")]
    LeaseLost,
}

/// Implements the stored form of a fieldless enum: `as_str`, and `parse`, which reads a value
/// it does not know as `$fallback` (`$why` says why that is safe).
macro_rules! stored_form {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? } else $fallback:ident, $why:literal) => {
        impl $ty {
            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }

            #[doc = concat!("Parses the stored form (", $why, ").")]
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $ty::$variant,)+
                    _ => $ty::$fallback,
                }
            }
        }
    };
}

/// Why the database failed: the driver's error, kept so a log can walk its sources, or a fixed
/// message where there is none (`"…".into()`). Shared, so [`StoreError`] stays `Clone`. It
/// stands for the error it holds: the same `Display` and the same `source()`.
#[derive(Debug, Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// The cause `e`.
    pub fn of(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(std::sync::Arc::new(e))
    }

    /// `e`, and what was being done when it happened (`"{doing}: {e}"`).
    pub fn context(doing: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause::of(crate::error::Context::new(doing, e))
    }

    /// The error it holds (to downcast to the driver's type).
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause(std::sync::Arc::from(Box::<
            dyn std::error::Error + Send + Sync,
        >::from(message)))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::from(message.to_owned())
    }
}

/// Whether an account is linked to LINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Linked: the user logged in with LINE and has not unlinked since.
    Linked,
    /// Unlinked: the account stays, the link with LINE ended (deauthorized).
    Unlinked,
}

stored_form!(AccountStatus {
    Linked => "linked",
    Unlinked => "unlinked",
} else Unlinked, "unknown values count as unlinked: fail closed");

/// An account, keyed by (issuer, LINE user id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Our own opaque id.
    pub id: String,
    /// The ID token issuer (`https://access.line.me`).
    pub issuer: String,
    /// The LINE user id (`sub`).
    pub sub: String,
    /// The display name at the last login.
    pub display_name: String,
    /// The profile picture URL at the last login.
    pub picture_url: Option<String>,
    /// Linked or unlinked.
    pub status: AccountStatus,
    /// Created, Unix ms.
    pub created_at: i64,
}

/// Encrypted tokens as stored (see [`crate::crypto::TokenCipher`]).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTokens {
    /// Ciphertext of the access token.
    pub access_ct: Vec<u8>,
    /// Ciphertext of the refresh token.
    pub refresh_ct: Vec<u8>,
    /// When the access token expires, Unix ms.
    pub access_expires_at: i64,
    /// When the refresh token was first issued (it dies 90 days later), Unix ms.
    pub refresh_issued_at: i64,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_issued_at", &self.refresh_issued_at)
            .finish_non_exhaustive()
    }
}

/// A new session, as written at login.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session's key: [`crate::session::session_key`] of the id in the cookie (its creation
    /// time, then the SHA-256 hex of the id).
    pub id_hash: String,
    /// The CSRF token of the session.
    pub csrf_token: String,
    /// Absolute expiry, Unix ms.
    pub expires_at: i64,
}

/// Everything a completed login writes, in one transaction.
#[derive(Debug, Clone)]
pub struct LoginWrite {
    /// A fresh id, used only if the account is new.
    pub new_account_id: String,
    /// Issuer.
    pub issuer: String,
    /// LINE user id.
    pub sub: String,
    /// Display name.
    pub display_name: String,
    /// Picture URL.
    pub picture_url: Option<String>,
    /// The encrypted tokens.
    pub tokens: StoredTokens,
    /// The session to start.
    pub session: NewSession,
    /// An id hash of the session to end in the same transaction (the one presented with the
    /// callback, if any): fixation defence.
    pub replaces_session: Option<String>,
    /// With webhooks on, the id of the `account.linked` event that this login writes in its
    /// transaction when it creates the account or links it again (`None`: webhooks off).
    pub linked_event: Option<String>,
    /// Now, Unix ms.
    pub now: i64,
}

/// A session joined with its account.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The account.
    pub account: Account,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Last seen, Unix ms.
    pub last_seen_at: i64,
    /// Absolute expiry, Unix ms.
    pub expires_at: i64,
}

/// Why a deauthorization job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeauthReason {
    /// The user unregistered: the account is deleted.
    Unregister,
    /// The user unlinked LINE: the account stays, marked unlinked.
    Unlink,
}

stored_form!(DeauthReason {
    Unregister => "unregister",
    Unlink => "unlink",
} else Unregister, "unknown values count as unregister");

/// A deauthorization job claimed by a worker.
#[derive(Debug, Clone)]
pub struct DeauthJob {
    /// Job id.
    pub id: String,
    /// The account it came from (may be deleted).
    pub account_id: String,
    /// Issuer.
    pub issuer: String,
    /// LINE user id.
    pub sub: String,
    /// Unregister or unlink.
    pub reason: DeauthReason,
    /// The user's tokens (moved here from the account in the enqueuing transaction).
    pub tokens: Option<StoredTokens>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// Created, Unix ms.
    pub created_at: i64,
    /// The fencing token of this claim: every later write about the job takes it and does
    /// nothing ([`StoreError::LeaseLost`]) once another claim has replaced it.
    pub lease: String,
}

/// The kinds of webhook event (Standard Webhooks `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A login created the account or linked it again.
    Linked,
    /// The user unlinked LINE (the account stays).
    Unlinked,
    /// The user unregistered (the account is deleted).
    Unregistered,
    /// The deauthorization job succeeded at LINE (or LINE said the grant was already gone).
    Deauthorized,
    /// The deauthorization job gave up.
    DeauthorizationFailed,
}

impl EventKind {
    /// The `type` of the payload.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Linked => "account.linked",
            EventKind::Unlinked => "account.unlinked",
            EventKind::Unregistered => "account.unregistered",
            EventKind::Deauthorized => "account.deauthorized",
            EventKind::DeauthorizationFailed => "account.deauthorization_failed",
        }
    }
}

/// A webhook event claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The event id: the `webhook-id` of every attempt.
    pub id: String,
    /// The stored `type` (see [`EventKind::as_str`]).
    pub kind: String,
    /// Our opaque account id.
    pub account_id: String,
    /// The LINE user id.
    pub user_id: String,
    /// The deauthorization job the event is about, if any.
    pub job_id: Option<String>,
    /// When the state change happened, Unix ms.
    pub occurred_at: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// The fencing token of this claim.
    pub lease: String,
}

/// What happened to a job for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFinal {
    /// LINE answered 204: deauthorized.
    Deauthorized,
    /// LINE answered 400 invalid token: nothing was left to revoke.
    AlreadyInvalid,
}

/// A deauthorization job that gave up, as an operator sees it (no user id, no tokens).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedJob {
    /// Job id (pass it to [`Store::retry_failed_job`]).
    pub id: String,
    /// The account it came from (our opaque id; the account may be deleted).
    pub account_id: String,
    /// Unregister or unlink (`unregister`, `unlink`).
    pub reason: String,
    /// Attempts made (attempts that reached, or may have reached, LINE).
    pub attempts: i64,
    /// Why it gave up.
    pub last_error: Option<String>,
    /// When it gave up, Unix ms.
    pub finished_at: Option<i64>,
    /// Whether it still holds the user's (encrypted) tokens, i.e. can be retried.
    pub retryable: bool,
}

/// The latest deauthorization job of an account, as the server-to-server API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// The LINE user id of the job.
    #[serde(skip)]
    pub user_id: String,
    /// `unregister` or `unlink`.
    pub reason: String,
    /// `pending`, `done`, `failed` or `superseded`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The last error or outcome note.
    pub last_error: Option<String>,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Finished, Unix ms.
    pub finished_at: Option<i64>,
}

/// Counters of the deauthorization outbox, for `/healthz` and `linelogin check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobStats {
    /// Jobs waiting or in progress.
    pub pending: i64,
    /// Jobs that gave up and need an operator.
    pub failed: i64,
    /// Age of the oldest pending job in seconds (0 when none).
    pub oldest_pending_age_secs: i64,
}

/// The storage interface of the server.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Runs the backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Stores a pending login (encrypted), keyed by the hash of the pre-login cookie value.
    async fn put_pending_login(
        &self,
        id_hash: &str,
        data: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// How many pending logins exist that have not expired at `now` (the cap on pending
    /// logins recounts with this; a scan, so not for every request).
    async fn count_pending_logins(&self, now: i64) -> Result<u64, StoreError>;

    /// Takes (reads and deletes) a pending login. `None` when unknown or expired.
    async fn take_pending_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Creates or updates the account keyed by (issuer, sub), stores its tokens, ends the
    /// replaced session and starts the new one — one transaction. A pending deauthorization
    /// job of the same LINE user that is not in flight is superseded (the user linked again);
    /// one in flight makes this fail with [`StoreError::Busy`].
    async fn complete_login(&self, login: &LoginWrite) -> Result<Account, StoreError>;

    /// The session with this id hash, if it exists and has not expired.
    async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity on a session.
    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError>;

    /// Ends one session.
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// An account by id.
    async fn account(&self, account_id: &str) -> Result<Option<Account>, StoreError>;

    /// An account by (issuer, sub).
    async fn account_by_sub(&self, issuer: &str, sub: &str) -> Result<Option<Account>, StoreError>;

    /// The stored tokens of an account.
    async fn tokens(&self, account_id: &str) -> Result<Option<StoredTokens>, StoreError>;

    /// Replaces the stored tokens of an account (after a refresh).
    async fn put_tokens(
        &self,
        account_id: &str,
        tokens: &StoredTokens,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Removes the stored tokens of an account (LINE said the grant is gone).
    async fn delete_tokens(&self, account_id: &str) -> Result<(), StoreError>;

    /// In one transaction: moves the account's tokens into a new deauthorization job, ends
    /// all of the user's sessions, and deletes the account (unregister) or marks it unlinked
    /// (unlink). [`StoreError::NotFound`] when the account or its tokens are missing.
    /// With `event` (webhooks on), the `account.unregistered` or `account.unlinked` event of
    /// that id is written in the same transaction.
    async fn deauthorize_account(
        &self,
        account_id: &str,
        job_id: &str,
        reason: DeauthReason,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Claims the oldest due job for `lease_ms`, counting an attempt, under a fresh lease id
    /// ([`DeauthJob::lease`]). PostgreSQL skips rows another instance is claiming
    /// (`FOR UPDATE SKIP LOCKED`).
    async fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<DeauthJob>, StoreError>;

    /// Extends a held lease to `until` (a worker renews while its LINE call is in flight).
    /// [`StoreError::LeaseLost`] when the lease is no longer this one.
    async fn renew_job_lease(
        &self,
        job_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError>;

    /// Stores refreshed tokens on a job (fenced by `lease`).
    async fn put_job_tokens(
        &self,
        job_id: &str,
        lease: &str,
        tokens: &StoredTokens,
    ) -> Result<(), StoreError>;

    /// Marks a job done and wipes its tokens; with `event`, writes `account.deauthorized` in
    /// the same transaction. Fenced: [`StoreError::LeaseLost`] and no change when `lease` is
    /// no longer the job's.
    async fn finish_job(
        &self,
        job_id: &str,
        lease: &str,
        outcome: JobFinal,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Puts a job back for a later attempt (fenced by `lease`).
    async fn retry_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Gives up on a job (it stays visible as failed) and wipes its tokens; with `event`,
    /// writes `account.deauthorization_failed` in the same transaction (fenced by `lease`).
    async fn fail_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Puts a claimed job back for `next_attempt_at` **without counting the attempt**
    /// [`claim_job`](Self::claim_job) counted: the outbound policy refused the call locally
    /// (rate limit, open breaker, cool-down), so nothing reached LINE. Does nothing to a job
    /// that is no longer pending, or whose lease is no longer `lease`
    /// ([`StoreError::LeaseLost`]).
    async fn release_job(
        &self,
        job_id: &str,
        lease: &str,
        next_attempt_at: i64,
        note: &str,
    ) -> Result<(), StoreError>;

    /// Gives up on a pending job after its last attempt: it becomes `failed` (counted by
    /// [`job_stats`](Self::job_stats)) but, unlike [`fail_job`](Self::fail_job), keeps its
    /// encrypted tokens so that [`retry_failed_job`](Self::retry_failed_job) can send it again
    /// (LINE's guideline still requires the deauthorization). With `event`, writes
    /// `account.deauthorization_failed` in the same transaction (fenced by `lease`).
    async fn give_up_job(
        &self,
        job_id: &str,
        lease: &str,
        error: &str,
        now: i64,
        event: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Puts a failed job back to pending, due at `now`, with its attempts reset — the
    /// operator's "try again" once LINE or the configuration is fixed.
    /// [`StoreError::NotFound`] when there is no failed job with this id that can be sent:
    /// unknown, not failed, failed for good without tokens ([`fail_job`](Self::fail_job)), or
    /// its LINE user has linked again since (sending it would revoke the new link).
    async fn retry_failed_job(&self, job_id: &str, now: i64) -> Result<(), StoreError>;

    /// Up to `limit` failed jobs, the most recent first.
    async fn failed_jobs(&self, limit: i64) -> Result<Vec<FailedJob>, StoreError>;

    /// Status of a job: `pending`, `done`, `failed`, `superseded`; `None` if unknown.
    async fn job_status(&self, job_id: &str) -> Result<Option<String>, StoreError>;

    /// Outbox counters.
    async fn job_stats(&self, now: i64) -> Result<JobStats, StoreError>;

    /// The latest deauthorization job of an account (it may be deleted), if any.
    async fn latest_job(&self, account_id: &str) -> Result<Option<JobSummary>, StoreError>;

    /// Claims the oldest due webhook event for `lease_ms`, counting an attempt; an event waits
    /// while an earlier event of the same account is pending (each account's events arrive
    /// in order). A claim of its own, apart from deauthorization jobs: a down app never holds
    /// up a deauthorization.
    async fn claim_webhook(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<WebhookEvent>, StoreError>;

    /// Extends a held delivery lease (fenced like [`renew_job_lease`](Self::renew_job_lease)).
    async fn renew_webhook_lease(
        &self,
        event_id: &str,
        lease: &str,
        until: i64,
    ) -> Result<(), StoreError>;

    /// Marks an event delivered (fenced by `lease`).
    async fn finish_webhook(&self, event_id: &str, lease: &str, now: i64)
    -> Result<(), StoreError>;

    /// Puts an event back for a later attempt (fenced by `lease`).
    async fn retry_webhook(
        &self,
        event_id: &str,
        lease: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Gives up on an event after its last attempt: `failed`, retryable with
    /// [`retry_failed_webhook`](Self::retry_failed_webhook) (fenced by `lease`).
    async fn give_up_webhook(
        &self,
        event_id: &str,
        lease: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Puts a failed event back to pending, due at `now`, attempts reset.
    /// [`StoreError::NotFound`] when no failed event has this id.
    async fn retry_failed_webhook(&self, event_id: &str, now: i64) -> Result<(), StoreError>;

    /// Webhook outbox counters (same shape as [`job_stats`](Self::job_stats)).
    async fn webhook_stats(&self, now: i64) -> Result<JobStats, StoreError>;

    /// Deletes expired sessions and pending logins; returns how many rows went.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Deletes outbox jobs done or superseded, and webhook events delivered, at or before
    /// `before` (in batches; failed ones stay); returns how many went.
    async fn purge_finished_jobs(&self, before: i64) -> Result<u64, StoreError>;

    /// Claims this period's run of the maintenance `task` for the caller: true when no
    /// instance on this database ran it in the last nine tenths of `period_ms` before `now`
    /// (and records `now` as its last run); false when one did. Two callers never both get
    /// true for one period.
    async fn claim_maintenance(
        &self,
        task: &str,
        now: i64,
        period_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// The latest last run of a maintenance task that lets a run at `now` go, for a task run every
/// `period_ms`: a tenth of the period earlier than `now - period_ms`, so that the instance
/// that ran it last, ticking again one period later, is not refused by a few milliseconds of
/// timer jitter.
pub(crate) fn latest_run_allowing(now: i64, period_ms: i64) -> i64 {
    let period = period_ms.max(0);
    now.saturating_sub(period - period / 10)
}

/// Bounded waits on the database (`[database]` in the configuration), so that a database
/// that is down, locked or stalled answers [`StoreError::Unavailable`] in time instead of
/// holding the request.
///
/// - PostgreSQL: `acquire` is the pool's acquire timeout (a connection, new or pooled);
///   `statement` is the server-side `statement_timeout` and `lock_timeout` of every
///   connection (a statement waiting for a lock, such as a table locked `ACCESS EXCLUSIVE`,
///   is cancelled with it).
/// - SQLite: `statement` is the busy timeout of every connection (how long a statement waits
///   for a lock held by another process; the wait blocks the calling thread, so keep it
///   short); `acquire` bounds the wait for the writer connection, which in turn bounds a
///   write to about `acquire + statement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for a connection.
    pub acquire: std::time::Duration,
    /// How long one statement may take (or wait for a lock).
    pub statement: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            acquire: std::time::Duration::from_secs(3),
            statement: std::time::Duration::from_secs(3),
        }
    }
}

impl Timeouts {
    /// From the `[database]` configuration.
    pub fn from_config(config: &crate::config::DatabaseConfig) -> Self {
        Self {
            acquire: std::time::Duration::from_millis(config.acquire_timeout_ms.max(1)),
            statement: std::time::Duration::from_millis(config.statement_timeout_ms.max(1)),
        }
    }

    /// The longest one store call should take: a connection, then a statement.
    pub fn call_bound(&self) -> std::time::Duration {
        self.acquire.saturating_add(self.statement)
    }
}

/// The backend `url` names, or the error of a URL naming none.
fn backend_of(url: &DatabaseUrl) -> Result<Backend, StoreError> {
    url.backend().ok_or_else(|| {
        StoreError::Unavailable("database_url must start with sqlite: or postgres://".into())
    })
}

/// Opens the store named by the URL (`sqlite://…` or `postgres://…`) and runs its migrations.
pub async fn connect(url: &DatabaseUrl) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    connect_with(url, Timeouts::default()).await
}

/// [`connect`], with these bounded waits.
pub async fn connect_with(
    url: &DatabaseUrl,
    timeouts: Timeouts,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let raw = url.expose();
    let store: std::sync::Arc<dyn Store> = match backend_of(url)? {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => std::sync::Arc::new(SqliteStore::connect_with(raw, timeouts).await?),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            std::sync::Arc::new(PostgresStore::connect_with(raw, None, timeouts).await?)
        }
        #[allow(unreachable_patterns)] // with both features, every backend has an arm above
        missing => return Err(StoreError::Unavailable(missing.not_compiled().0.into())),
    };
    store.migrate().await?;
    Ok(store)
}
