//! The deauthorization worker: claims due jobs from the outbox and calls LINE.
//!
//! For each job: obtain a stateless channel access token (cached until shortly before it
//! expires), refresh the user's access token if it has expired, then call deauthorize.
//! `204` and `400 invalid token` finish the job. 429, 5xx, timeouts and network errors put it
//! back with exponential backoff and jitter, never sooner than LINE's (clamped) `Retry-After`
//! (every call also passes the client's outbound policy: rate limit, budgeted retries, a
//! breaker per endpoint class, the cool-down after a 429). A crash at any point leaves the job
//! in the table, and its lease expires, so it runs again after a restart or on another
//! instance. The lease is short (`[deauth] lease_ms`, 15 s) and renewed while the calls are in
//! flight ([`while_renewing`]); every write about the job carries the claim's lease id, so a
//! worker that lost its lease (stalled past it, the job re-claimed elsewhere) records nothing
//! ([`Step::LeaseLost`]).
//!
//! **Only real attempts count towards `[deauth] max_attempts`**: an attempt whose last call
//! reached, or may have reached, LINE (LINE's answers, timeouts, connection failures). When the
//! outbound policy refuses a call locally ([`line_login::Error::is_local_refusal`]: the shared
//! rate limit, an open breaker, the cool-down) nothing was sent, so the job is put back
//! ([`Store::release_job`](crate::store::Store::release_job)) for the refusal's wait hint,
//! bounded below by [`MIN_REFUSAL_DELAY_MS`] and above by `backoff_max_ms`, and the attempt
//! [`claim_job`](crate::store::Store::claim_job) counted is given back. (A fault run found
//! two jobs marked failed for good with no deauthorize call ever sent, because refusals during
//! a day-long `Retry-After` had used up their attempts.)
//!
//! Measured (`hardening_line` tests, deauthorize answering `500` five times, which opens its
//! class's breaker for 30 s, with `max_attempts = 3`): before, one of the two jobs was failed
//! within the first poll after the fifth `500` (its refusals had used up its attempts); now
//! both stay pending through the open period and each is deauthorized by one `204` once the
//! breaker lets a probe through (journal: five `500`s, then two `204`s).
//!
//! A job that does run out of attempts is logged at `error` level (job id, our opaque account
//! id, the reason and the last error; never the LINE user id or a token), shows as `failed`
//! in `/healthz`, and keeps its encrypted tokens so that an operator can send it again with
//! [`Store::retry_failed_job`](crate::store::Store::retry_failed_job) (listed by
//! [`Store::failed_jobs`](crate::store::Store::failed_jobs)). Jobs that cannot succeed
//! whatever happens (no tokens, refresh token rejected) fail for good at once, with their
//! tokens wiped.
//!
//! A job whose tokens decrypt under no configured key is **not** failed: that is an operator
//! error (the key changed without the old one in `previous_token_encryption_keys`), and the
//! job can run once the key is back. It stays pending, put back for `backoff_max_ms` without
//! counting the attempt, is logged at `error` level once per job per
//! [`LOG_PERIOD_MS`](super::keys::LOG_PERIOD_MS), and `/healthz` says `degraded` (see
//! [`super::keys`]).

use std::time::Duration;

use line_login::DeauthorizeOutcome;
use line_login::secret::ChannelAccessToken;

use super::outbox::{backoff_ms, claimed, lease, spawn_loop, while_renewing};
use crate::accounts::{OpenTokens, open_tokens, refresh_tokens};
use crate::state::AppState;
use crate::store::{DeauthJob, JobFinal, StoreError};

/// The target of the per-user deauthorization record (one line per job that ended).
pub const RECORD_TARGET: &str = "linelogin_server::deauthorization";

/// One searchable line per deauthorization that ended, at target [`RECORD_TARGET`]: the LINE
/// user id hashed ([`user_hash`]), the job, why, the outcome and when (Unix ms). An operator
/// answers "was user X deauthorized, and when?" by hashing X the same way (or with
/// `linelogin outbox list --user X`), without the logs holding user ids.
fn record(job: &DeauthJob, outcome: &str, at_ms: i64) {
    tracing::info!(
        target: RECORD_TARGET,
        user = %user_hash(&job.sub),
        job = %job.id,
        reason = job.reason.as_str(),
        outcome,
        at_ms,
        "deauthorization record"
    );
}

/// The first 16 hex digits of SHA-256(`"linelogin-user:"` + LINE user id).
pub fn user_hash(sub: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("linelogin-user:{sub}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
/// Channel tokens are dropped from the cache this long before they expire.
const CHANNEL_TOKEN_MARGIN_MS: i64 = 60_000;
/// The shortest delay before a job the outbound policy refused is tried again (so a refusal
/// whose wait hint is zero, e.g. a breaker probe in flight, does not spin).
pub const MIN_REFUSAL_DELAY_MS: i64 = 100;

/// What one pass of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No job was due.
    Idle,
    /// A job finished (deauthorized or already invalid).
    Finished(String),
    /// A job was put back for a retry.
    Retrying(String),
    /// The outbound policy refused the job's call locally (nothing was sent to LINE): the job
    /// was put back without counting the attempt.
    Deferred(String),
    /// A job was given up (visible as failed).
    Failed(String),
    /// The job's lease was lost while it was in flight (another worker claimed it): nothing
    /// was recorded (fencing).
    LeaseLost(String),
}

pub use super::outbox::WorkerHandle;

/// Starts the worker loop on the runtime.
pub fn spawn(state: AppState) -> WorkerHandle {
    spawn_loop(
        state,
        |state| &state.inner.worker_wake,
        |state| async move { matches!(run_once(&state).await, Step::Idle) },
    )
}

/// Claims and processes at most one due job.
pub async fn run_once(state: &AppState) -> Step {
    let now = state.now_ms();
    let (lease_ms, renew_every) = lease(state);
    let claim = state.store().claim_job(now, lease_ms).await;
    let Some(job) = claimed("a deauthorization job", claim) else {
        return Step::Idle;
    };
    let id = job.id.clone();
    let lease = job.lease.clone();
    let result = while_renewing(
        "deauthorization",
        &id,
        renew_every,
        process(state, &job),
        || {
            state
                .store()
                .renew_job_lease(&id, &lease, state.now_ms().saturating_add(lease_ms))
        },
    )
    .await;
    let now = state.now_ms();
    let cfg = &state.settings().deauth;
    if !matches!(result, Err(Failure::Undecryptable)) {
        state.inner.key_trouble.clear(&id);
    }
    let event = state.new_event_id();
    let step = match result {
        Err(Failure::Undecryptable) => {
            let delay = i64::try_from(cfg.backoff_max_ms)
                .unwrap_or(i64::MAX)
                .max(MIN_REFUSAL_DELAY_MS);
            if state.inner.key_trouble.note(&id, now) {
                tracing::error!(
                    job = %id,
                    account = %job.account_id,
                    reason = job.reason.as_str(),
                    retry_in_ms = delay,
                    "deauthorization job's tokens decrypt under no configured key \
                     (token_encryption_key changed without the old key in \
                     previous_token_encryption_keys?); the job stays pending and is not \
                     counted as an attempt"
                );
            }
            match state
                .store()
                .release_job(
                    &id,
                    &lease,
                    now.saturating_add(delay),
                    super::keys::WAITING_FOR_KEY,
                )
                .await
            {
                Err(StoreError::LeaseLost) => return lease_lost(id),
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "could not put a job back; its lease will expire");
                }
                Ok(()) => {}
            }
            Step::Deferred(id)
        }
        Ok(outcome) => {
            tracing::info!(job = %id, outcome = ?outcome, "deauthorization done");
            state.failpoint("deauth-after-call");
            match state
                .store()
                .finish_job(&id, &lease, outcome, now, event.as_deref())
                .await
            {
                Err(StoreError::LeaseLost) => return lease_lost(id),
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "could not record a finished job; it will be retried");
                }
                Ok(()) => record(&job, &format!("{outcome:?}"), now),
            }
            Step::Finished(id)
        }
        Err(Failure::Permanent(reason)) => {
            tracing::error!(
                job = %id,
                account = %job.account_id,
                reason = job.reason.as_str(),
                error = reason,
                attempts = job.attempts,
                "deauthorization job failed for good; the user may still be authorized at LINE"
            );
            if let Err(StoreError::LeaseLost) = state
                .store()
                .fail_job(&id, &lease, reason, now, event.as_deref())
                .await
            {
                return lease_lost(id);
            }
            record(&job, "failed", now);
            Step::Failed(id)
        }
        Err(Failure::Refused { reason, wait }) => {
            let max = i64::try_from(cfg.backoff_max_ms)
                .unwrap_or(i64::MAX)
                .max(MIN_REFUSAL_DELAY_MS);
            let delay = i64::try_from(wait.as_millis())
                .unwrap_or(i64::MAX)
                .clamp(MIN_REFUSAL_DELAY_MS, max);
            tracing::info!(job = %id, reason = %reason, retry_in_ms = delay, "deauthorization held back by the outbound policy; not counted as an attempt");
            match state
                .store()
                .release_job(&id, &lease, now + delay, &reason)
                .await
            {
                Err(StoreError::LeaseLost) => return lease_lost(id),
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "could not put a held-back job back; its lease will expire");
                }
                Ok(()) => {}
            }
            Step::Deferred(id)
        }
        Err(Failure::Retry { reason, .. }) if job.attempts >= i64::from(cfg.max_attempts) => {
            tracing::error!(
                job = %id,
                account = %job.account_id,
                reason = job.reason.as_str(),
                error = %reason,
                attempts = job.attempts,
                "deauthorization gave up after the last attempt; the user is still authorized at LINE until an operator retries the job"
            );
            if let Err(StoreError::LeaseLost) = state
                .store()
                .give_up_job(
                    &id,
                    &lease,
                    &format!("gave up: {reason}"),
                    now,
                    event.as_deref(),
                )
                .await
            {
                return lease_lost(id);
            }
            record(&job, "gave_up", now);
            Step::Failed(id)
        }
        Err(Failure::Retry {
            reason,
            retry_after,
        }) => {
            let backoff = backoff_ms(
                cfg.backoff_base_ms,
                cfg.backoff_max_ms,
                job.attempts,
                rand::random::<f64>(),
            );
            // LINE's own wait (already clamped by the policy), within backoff_max_ms.
            let asked = retry_after
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0)
                .min(i64::try_from(cfg.backoff_max_ms).unwrap_or(i64::MAX));
            let delay = backoff.max(asked);
            tracing::warn!(job = %id, reason = %reason, retry_in_ms = delay, "deauthorization will be retried");
            if let Err(StoreError::LeaseLost) = state
                .store()
                .retry_job(&id, &lease, now + delay, &reason)
                .await
            {
                return lease_lost(id);
            }
            Step::Retrying(id)
        }
    };
    if event.is_some() && matches!(step, Step::Finished(_) | Step::Failed(_)) {
        state.wake_webhooks();
    }
    step
}

/// The job's lease was lost while it was in flight: another worker has it now, and this
/// worker's outcome was not recorded (fencing).
fn lease_lost(id: String) -> Step {
    tracing::warn!(job = %id, "deauthorization job's lease was lost; its outcome was not recorded (another worker holds it)");
    Step::LeaseLost(id)
}

enum Failure {
    /// A real attempt failed (LINE answered, or the request may have reached it).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The outbound policy refused the call locally; nothing was sent.
    Refused { reason: String, wait: Duration },
    /// Cannot succeed whatever happens.
    Permanent(&'static str),
    /// The job's tokens decrypt under no configured key (an operator error): wait for it.
    Undecryptable,
}

fn classify(e: &line_login::Error) -> Failure {
    if e.is_local_refusal() {
        Failure::Refused {
            reason: format!("held back: {e}"),
            wait: e.retry_after().unwrap_or(Duration::ZERO),
        }
    } else if e.is_unavailable() {
        Failure::Retry {
            reason: format!("LINE unavailable: {e}"),
            // Only a wait LINE asked for (already clamped by the policy), not the defaults
            // `retry_after()` offers web pages for timeouts and the like.
            retry_after: match e {
                line_login::Error::Api(api) => api.retry_after,
                _ => None,
            },
        }
    } else {
        Failure::Retry {
            reason: format!("LINE error: {e}"),
            retry_after: None,
        }
    }
}

async fn channel_token(state: &AppState, fresh: bool) -> Result<ChannelAccessToken, Failure> {
    let mut cache = state.inner.channel_token.lock().await;
    let now = state.now_ms();
    if !fresh
        && let Some((token, expires_at)) = cache.as_ref()
        && *expires_at - CHANNEL_TOKEN_MARGIN_MS > now
    {
        return Ok(token.clone());
    }
    let issued = state
        .client()
        .issue_stateless_channel_token()
        .await
        .map_err(|e| classify(&e))?;
    let expires_in = i64::try_from(issued.expires_in).unwrap_or(900);
    *cache = Some((issued.access_token.clone(), now + expires_in * 1000));
    Ok(issued.access_token)
}

async fn process(state: &AppState, job: &DeauthJob) -> Result<JobFinal, Failure> {
    let stored = job
        .tokens
        .as_ref()
        .ok_or(Failure::Permanent("no user token stored with the job"))?;
    let mut tokens: OpenTokens =
        open_tokens(state, &job.issuer, &job.sub, stored).ok_or(Failure::Undecryptable)?;
    let mut refreshed = false;
    if !tokens.access_valid(state.now_ms()) {
        tokens = refresh(state, job, &tokens).await?;
        refreshed = true;
    }
    let mut channel = channel_token(state, false).await?;
    let mut retried_channel = false;
    loop {
        match state.client().deauthorize(&channel, &tokens.access).await {
            Ok(DeauthorizeOutcome::Deauthorized) => return Ok(JobFinal::Deauthorized),
            Ok(DeauthorizeOutcome::AlreadyInvalid)
                if !refreshed && tokens.refresh_alive(state.now_ms()) =>
            {
                // Our clock may think the access token is still valid when LINE does not:
                // refresh once and try again before concluding nothing is left to revoke.
                match refresh(state, job, &tokens).await {
                    Ok(t) => {
                        tokens = t;
                        refreshed = true;
                    }
                    Err(Failure::Permanent(_)) => return Ok(JobFinal::AlreadyInvalid),
                    Err(e) => return Err(e),
                }
            }
            Ok(DeauthorizeOutcome::AlreadyInvalid) => return Ok(JobFinal::AlreadyInvalid),
            Err(e) if e.status() == Some(http::StatusCode::UNAUTHORIZED) && !retried_channel => {
                // The cached channel token was rejected: get a fresh one, once.
                channel = channel_token(state, true).await?;
                retried_channel = true;
            }
            Err(e) => return Err(classify(&e)),
        }
    }
}

async fn refresh(
    state: &AppState,
    job: &DeauthJob,
    tokens: &OpenTokens,
) -> Result<OpenTokens, Failure> {
    match refresh_tokens(state, &job.issuer, &job.sub, tokens).await {
        Ok((open, sealed)) => {
            if let Err(e) = state
                .store()
                .put_job_tokens(&job.id, &job.lease, &sealed)
                .await
            {
                tracing::warn!(job = %job.id, error = %e, "could not store refreshed job tokens");
            }
            Ok(open)
        }
        // LINE no longer knows the grant (the user unlinked in LINE, or it expired).
        Err(e) if e.is_invalid_grant() => {
            Err(Failure::Permanent("refresh token rejected (invalid_grant)"))
        }
        Err(e) => Err(classify(&e)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use line_login::endpoint::Endpoint;

    use super::*;

    #[test]
    fn local_refusals_are_not_attempts() {
        let endpoint = Endpoint::Deauthorize;
        for e in [
            line_login::Error::RateLimited {
                endpoint,
                wait: Duration::from_secs(3),
            },
            line_login::Error::CircuitOpen {
                endpoint,
                retry_after: Duration::from_secs(3),
            },
            line_login::Error::CoolingDown {
                endpoint,
                retry_after: Duration::from_secs(3),
            },
        ] {
            match classify(&e) {
                Failure::Refused { wait, .. } => assert_eq!(wait, Duration::from_secs(3)),
                _ => panic!("{e:?} must be a local refusal"),
            }
        }
        assert!(matches!(
            classify(&line_login::Error::Timeout { endpoint }),
            Failure::Retry {
                retry_after: None,
                ..
            }
        ));
    }
}

#[cfg(test)]
mod record_tests {
    use super::user_hash;

    #[test]
    fn user_hash_is_stable_short_and_per_user() {
        let a = user_hash("U0123456789abcdef0123456789abcdef");
        assert_eq!(a, user_hash("U0123456789abcdef0123456789abcdef"));
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, user_hash("U0123456789abcdef0123456789abcdee"));
        assert!(!a.contains("0123456789abcdef"));
    }
}
