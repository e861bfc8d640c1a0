//! The checkpointer of the SQLite store: a background thread with a connection of its own that
//! copies the WAL into the database every [`CHECKPOINT_INTERVAL`] — first beside the writer,
//! then, for the last few frames, while holding the writer's lock, so that the next write
//! starts the WAL over (see the parent module's docs for why both steps are needed).
//!
//! The second step is a `RESTART` checkpoint: once every frame is copied it waits, at most
//! [`READER_WAIT`], for readers still reading from the WAL to finish, so that the WAL really
//! does start over. A `PASSIVE` one does not wait, and under a steady stream of reads the WAL
//! then often could not start over: its high-water mark crept up all through a load test
//! (65 MB after 15 minutes), and the server's memory crept with it, about 0.5 MiB a minute,
//! all of it memory glibc kept after SQLite had freed it. With the wait, the same run kept the
//! WAL index at its first size and the server's memory flat. A long read (the purge's scan, a
//! backup) makes the wait give up after [`READER_WAIT`], and that checkpoint then ends like a
//! `PASSIVE` one, so writes are held up by at most that much per checkpoint.

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

/// How long the checkpoint under the writer's lock waits for readers of the WAL to finish (the
/// checkpointer connection's busy timeout). Reads on the login path take microseconds.
pub(super) const READER_WAIT: Duration = Duration::from_millis(10);

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
        conn.busy_timeout(READER_WAIT).map_err(super::map_err)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let finished = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&finished);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &writer, &signal, &counter))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpointer: {e}")))?;
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

/// A RESTART checkpoint: copies every frame, then waits (the busy timeout, [`READER_WAIT`]) for
/// readers of the WAL to finish so that the next write starts it over. Readers that outlast
/// the wait are no error: the checkpoint then ends as a PASSIVE one would.
fn restart_checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
        .map(|_busy| ())
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
                restart_checkpoint(conn)?;
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
