//! The checkpointer of the SQLite store: a background thread with a connection of its own that
//! copies the WAL into the database every [`CHECKPOINT_INTERVAL`] — first beside the writer,
//! then, for the last few frames, while holding the writer's lock, so that the next write
//! starts the WAL over (see the parent module's docs for why both steps are needed).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{Location, open};
use crate::store::StoreError;

/// How often the checkpointer copies the WAL into the database.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The background thread that checkpoints the WAL (see the module docs).
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// Checkpoints finished under the writer's lock (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    finished: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(
        path: &Path,
        writer: Arc<tokio::sync::Mutex<Connection>>,
    ) -> Result<Self, StoreError> {
        let conn = open(&Location::File(path.to_owned()), false)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let finished = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&finished);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &writer, &signal, &counter))
            .map_err(|e| {
                StoreError::Unavailable(crate::store::Cause::context(
                    "cannot start the checkpointer",
                    e,
                ))
            })?;
        Ok(Self {
            stop,
            finished,
            thread: Some(thread),
        })
    }

    /// How many checkpoints were finished under the writer's lock so far.
    #[cfg(test)]
    pub(super) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }
}

/// A PASSIVE checkpoint (copies what it can, never waits for or blocks other connections):
/// frames in the WAL, frames copied.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

fn checkpoint_loop(
    conn: &Connection,
    writer: &tokio::sync::Mutex<Connection>,
    stop: &(Mutex<bool>, Condvar),
    finished: &AtomicU64,
) {
    let (flag, wake) = stop;
    let mut warned = false;
    loop {
        {
            let stopped = flag
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (stopped, _) = wake
                .wait_timeout_while(stopped, CHECKPOINT_INTERVAL, |stopped| !*stopped)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *stopped {
                return;
            }
        }
        // The bulk of the copy, beside the writer.
        let result = passive_checkpoint(conn).and_then(|(frames, _)| {
            if frames > 0 {
                // The rest, while no write can start: then every frame is in the database and
                // the next write starts the WAL over instead of appending to it.
                let _writer = writer.blocking_lock();
                passive_checkpoint(conn)?;
                finished.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        match result {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retrying");
                warned = true;
            }
            Err(_) => {}
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
