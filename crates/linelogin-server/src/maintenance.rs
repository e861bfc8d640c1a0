//! Housekeeping that runs whatever `[deauth] worker` says: the purge of expired sessions and
//! pending logins, once a minute.
//!
//! It used to live inside the deauthorization worker's loop, so an instance with the worker
//! off never purged, and its sessions table only grew. Now [`crate::serve`] starts it with
//! every server, and stopping the server stops it.

use std::time::Duration;

use crate::state::AppState;

/// How often expired rows are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// A running purge task; [`PurgeHandle::stop`] ends it after its current pass.
#[derive(Debug)]
pub struct PurgeHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl PurgeHandle {
    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts purging expired sessions and pending logins every `every` (the first pass at once).
pub fn spawn_purge(state: AppState, every: Duration) -> PurgeHandle {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
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
            if let Err(e) = state.store().purge_expired(state.now_ms()).await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
        }
    });
    PurgeHandle { stop, task }
}
