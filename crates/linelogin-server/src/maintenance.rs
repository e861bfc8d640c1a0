//! Housekeeping that runs whatever `[deauth] worker` says, and once per period across a
//! fleet: the purge of expired sessions and pending logins, and the clean-up of finished
//! outbox jobs.
//!
//! It used to live inside the deauthorization worker's loop, so an instance with the worker
//! off never purged, and its sessions table only grew. Now [`crate::serve`] starts it with
//! every server, and stopping the server stops it.
//!
//! **Once across the fleet.** Every instance ticks every [`PURGE_EVERY`], but a pass runs
//! only when [`Store::claim_maintenance`](crate::store::Store::claim_maintenance) gives it
//! this period: one statement on the shared database records the run and refuses every other
//! instance until the period is over (a row per task in `maintenance_runs`, not an advisory
//! lock: a lock held during a pass would let the next instance run again right after it, and
//! would need a connection of its own). With SQLite (one process per file) the claim always
//! succeeds. Periods are measured on the instances' clocks, so clock skew between instances
//! shifts when the next run happens, never lets two run at once.
//!
//! **O(expired).** Expired rows are found through expiry indexes and deleted in batches
//! (`0004_expiry_indexes.sql` for SQLite, `0003_expiry_indexes.sql` for PostgreSQL).
//!
//! **Log retention** is not here: each instance prunes the guideline logs of its own
//! directory (`line_audit`, started by [`crate::serve::start`]); its files carry its
//! `[logs] instance` name, and instances sharing a directory may prune it concurrently
//! (removing an already removed file is not an error). Running it once per fleet would leave
//! the files of every other machine unpruned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::state::AppState;
use crate::store::StoreError;

/// How often expired rows are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// How long done and superseded outbox jobs are kept before the purge deletes them (30
/// days: long enough to answer "was this user's deauthorization sent?"). Failed jobs are
/// kept until an operator retries or removes them.
pub const KEEP_FINISHED_JOBS: Duration = Duration::from_secs(30 * 24 * 3600);

/// The task name of the purge in `maintenance_runs`.
pub const PURGE_TASK: &str = "purge";

/// What one pass of the purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired sessions and pending logins.
    pub expired: u64,
    /// Done or superseded outbox jobs past [`KEEP_FINISHED_JOBS`].
    pub finished_jobs: u64,
}

/// Runs the purge if this instance can claim the current period (see the module docs):
/// `Some` with what it removed, `None` when another instance ran it within the period.
pub async fn purge_once(
    state: &AppState,
    every: Duration,
) -> Result<Option<PurgeReport>, StoreError> {
    let now = state.now_ms();
    let period_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let store = state.store();
    if !store.claim_maintenance(PURGE_TASK, now, period_ms).await? {
        return Ok(None);
    }
    let expired = store.purge_expired(now).await?;
    let keep_ms = i64::try_from(KEEP_FINISHED_JOBS.as_millis()).unwrap_or(i64::MAX);
    let finished_jobs = store
        .purge_finished_jobs(now.saturating_sub(keep_ms))
        .await?;
    Ok(Some(PurgeReport {
        expired,
        finished_jobs,
    }))
}

/// Counters of a purge task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Ticks (passes attempted, whether or not this instance got the period).
    pub ticks: u64,
    /// Passes this instance ran (it claimed the period).
    pub runs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    ticks: AtomicU64,
    runs: AtomicU64,
}

/// A running purge task; [`PurgeHandle::stop`] ends it after its current pass.
#[derive(Debug)]
pub struct PurgeHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl PurgeHandle {
    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Its counters so far.
    pub fn stats(&self) -> PurgeStats {
        PurgeStats {
            ticks: self.counters.ticks.load(Ordering::Relaxed),
            runs: self.counters.runs.load(Ordering::Relaxed),
        }
    }
}

/// Starts the purge every `every` (the first tick at once): each tick runs [`purge_once`].
pub fn spawn_purge(state: AppState, every: Duration) -> PurgeHandle {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let counters = Arc::new(Counters::default());
    let seen = Arc::clone(&counters);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            if *stopped.borrow() {
                break;
            }
            match purge_once(&state, every).await {
                Ok(Some(report)) => {
                    seen.runs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        expired = report.expired,
                        finished_jobs = report.finished_jobs,
                        "purged"
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
            seen.ticks.fetch_add(1, Ordering::Relaxed);
        }
    });
    PurgeHandle {
        stop,
        task,
        counters,
    }
}
