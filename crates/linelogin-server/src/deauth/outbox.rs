//! The outbox side: job states, retry timing and visibility.
//!
//! A job is `pending` (due at `next_attempt_at`, or leased to a worker until `lease_until`),
//! then `done` (tokens wiped), `failed` (gave up; tokens wiped; needs an operator) or
//! `superseded` (the same LINE user linked again before it was sent: a stale job never revokes
//! a newer link). [`crate::store::Store::job_stats`] feeds `/healthz` and `linelogin check`.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;

use crate::state::AppState;
use crate::store::{JobStats, StoreError};

/// The default lease of a claim (deauthorization job or webhook delivery), `[deauth]
/// lease_ms`. Short, because a worker renews its lease every third of it while its call is in
/// flight: the jobs of an instance that dies are taken over by another within this time.
pub const DEFAULT_LEASE_MS: u64 = 15_000;

/// The lease of a claim, in milliseconds (`[deauth] lease_ms`), and how often a worker
/// renews it while the work is in flight (a third of it).
pub fn lease(state: &AppState) -> (i64, Duration) {
    let ms = state.settings().deauth.lease_ms.max(300);
    (
        i64::try_from(ms).unwrap_or(i64::MAX),
        Duration::from_millis(ms / 3),
    )
}

/// A running outbox worker (deauthorization or webhook delivery); dropping the handle does
/// not stop it, [`WorkerHandle::stop`] does.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops the worker after its current step and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops the worker at once (simulates a crash in tests).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Starts a worker loop on the runtime: `pass` claims and processes at most one row and says
/// whether none was due; after such an idle pass the loop waits for `wake` (a row was just
/// written), the poll interval (`[deauth] poll_ms`) or a stop, whichever comes first.
pub(crate) fn spawn_loop<P, F>(
    state: AppState,
    wake: fn(&AppState) -> &Notify,
    mut pass: P,
) -> WorkerHandle
where
    P: FnMut(AppState) -> F + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let poll = Duration::from_millis(state.settings().deauth.poll_ms.max(10));
        loop {
            if *stopped.borrow() {
                break;
            }
            if pass(state.clone()).await {
                tokio::select! {
                    _ = wake(&state).notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
    });
    WorkerHandle { stop, task }
}

/// The row a worker's claim returned, if any: a failed claim (logged, naming `what` was
/// claimed) counts as nothing due, and the worker polls again.
pub(crate) fn claimed<T>(what: &str, claim: Result<Option<T>, StoreError>) -> Option<T> {
    claim.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "claiming {what} failed");
        None
    })
}

/// Runs `work`, calling `renew` every `renew_every` until it completes. A lost lease (the
/// row was claimed by another worker) is logged and stops the renewals; the work runs to its
/// end, and its final write, fenced by the lease id, then changes nothing.
pub async fn while_renewing<T, R>(
    what: &str,
    id: &str,
    renew_every: Duration,
    work: impl Future<Output = T>,
    mut renew: impl FnMut() -> R,
) -> T
where
    R: Future<Output = Result<(), StoreError>>,
{
    let mut work = std::pin::pin!(work);
    #[allow(clippy::disallowed_methods)] // a tokio timer's deadline, not a time anyone reads
    let start = tokio::time::Instant::now() + renew_every;
    let mut tick = tokio::time::interval_at(start, renew_every);
    let mut lost = false;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick(), if !lost => match renew().await {
                Ok(()) => {}
                Err(StoreError::LeaseLost) => {
                    tracing::warn!(kind = what, id, "lease lost while in flight: another worker holds the row now");
                    lost = true;
                }
                Err(e) => tracing::warn!(kind = what, id, error = %e, "could not renew a lease"),
            },
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts−1)`, capped at `max`, with
/// jitter drawn from `[½, 1]` of that (`jitter` is a uniform sample in `[0, 1)`).
pub fn backoff_ms(base_ms: u64, max_ms: u64, attempts: i64, jitter: f64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let ceiling = base_ms
        .saturating_mul(1u64 << exp.min(40))
        .min(max_ms.max(1));
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    // Truncating to whole milliseconds is intended.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        clippy::cast_sign_loss
    )]
    let ms = (ceiling as f64 * factor) as u64;
    i64::try_from(ms.max(1)).unwrap_or(i64::MAX)
}

/// The outbox counters now.
pub async fn stats(state: &AppState) -> Result<JobStats, StoreError> {
    state.store().job_stats(state.now_ms()).await
}

/// Both outboxes' counters, bounded by [`crate::store::Timeouts::call_bound`] (a store that
/// does not answer in time is [`StoreError::Unavailable`]): the deauthorization jobs, and the
/// webhook events when `[webhook]` is configured. `/healthz` and the metrics read this.
pub async fn all_stats(state: &AppState) -> Result<(JobStats, Option<JobStats>), StoreError> {
    let bound = state.settings().database.call_bound();
    let read = async {
        let deauth = stats(state).await?;
        let webhooks = match state.settings().webhook {
            Some(_) => Some(state.store().webhook_stats(state.now_ms()).await?),
            None => None,
        };
        Ok((deauth, webhooks))
    };
    match tokio::time::timeout(bound, read).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(
            format!("no answer within {} ms", bound.as_millis()).into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff_ms(1000, 60_000, 1, 1.0), 1000);
        assert_eq!(backoff_ms(1000, 60_000, 2, 1.0), 2000);
        assert_eq!(backoff_ms(1000, 60_000, 3, 0.0), 2000);
        assert_eq!(backoff_ms(1000, 60_000, 30, 1.0), 60_000);
        assert_eq!(backoff_ms(1000, 60_000, 1000, 1.0), 60_000);
        assert!(backoff_ms(0, 0, 1, 0.0) >= 1);
    }
}
