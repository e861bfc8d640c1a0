//! Jobs whose tokens decrypt under no configured key.
//!
//! That is an operator error (`token_encryption_key` changed without the old key in
//! `previous_token_encryption_keys`), not a reason to give up: LINE's guideline still requires
//! the deauthorization, and the job can run once the key is back. So the worker keeps such a
//! job pending without counting the attempt, logs it at `error` level at most once per job per
//! [`LOG_PERIOD_MS`], and `/healthz` reports `degraded` while any job was seen so recently.

use std::collections::HashMap;
use std::sync::Mutex;

/// A job's undecryptable tokens are logged at most once per this period.
pub const LOG_PERIOD_MS: i64 = 15 * 60 * 1_000;

/// The note a job that waits for its key carries (`last_error`, shown by `linelogin outbox`).
pub const WAITING_FOR_KEY: &str = "waiting for the key: the job's tokens decrypt under no \
     configured key (restore the old key in previous_token_encryption_keys)";

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged_at: i64,
    seen_at: i64,
}

/// The jobs seen with undecryptable tokens, by this process.
#[derive(Debug, Default)]
pub struct KeyTrouble {
    jobs: Mutex<HashMap<String, Seen>>,
}

impl KeyTrouble {
    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `job` did not decrypt at `now`; whether to log it (the first time, or
    /// [`LOG_PERIOD_MS`] after it was last logged).
    pub fn note(&self, job: &str, now: i64) -> bool {
        let mut jobs = self.jobs();
        match jobs.get_mut(job) {
            Some(seen) if now - seen.logged_at < LOG_PERIOD_MS => {
                seen.seen_at = now;
                false
            }
            _ => {
                jobs.insert(
                    job.to_owned(),
                    Seen {
                        logged_at: now,
                        seen_at: now,
                    },
                );
                true
            }
        }
    }

    /// The job decrypted (or is gone): it no longer counts.
    pub fn clear(&self, job: &str) {
        self.jobs().remove(job);
    }

    /// Jobs seen undecryptable within `window` before `now` (older entries are dropped: such
    /// a job was superseded or cancelled meanwhile).
    pub fn count(&self, now: i64, window: i64) -> usize {
        let mut jobs = self.jobs();
        jobs.retain(|_, seen| now - seen.seen_at <= window);
        jobs.len()
    }
}

/// Deauthorization jobs whose tokens no configured key opens, as `/healthz` and the metrics
/// report them: jobs seen so within two of their waits (plus a poll) still count.
pub(crate) fn undecryptable_jobs(state: &crate::state::AppState) -> usize {
    let deauth = &state.settings().deauth;
    let window = i64::try_from(deauth.backoff_max_ms.saturating_mul(2))
        .unwrap_or(i64::MAX)
        .saturating_add(60_000);
    state.inner.key_trouble.count(state.now_ms(), window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_period_and_forgets_stale_jobs() {
        let t = KeyTrouble::default();
        assert!(t.note("j1", 0));
        assert!(!t.note("j1", 1_000));
        assert!(!t.note("j1", LOG_PERIOD_MS - 1));
        assert!(t.note("j1", LOG_PERIOD_MS));
        assert!(t.note("j2", 10));
        assert_eq!(t.count(LOG_PERIOD_MS, LOG_PERIOD_MS), 2);
        t.clear("j1");
        assert_eq!(t.count(LOG_PERIOD_MS, LOG_PERIOD_MS), 1);
        assert_eq!(
            t.count(LOG_PERIOD_MS + 11, LOG_PERIOD_MS),
            0,
            "j2 went stale"
        );
    }
}
