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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::Store as _;
    use crate::store::sqlite::SqliteStore;

    /// A migrated store in a file `name` of a new temporary directory (kept while the
    /// returned guard lives), and the file's path.
    async fn migrated_file_store(name: &str) -> (tempfile::TempDir, PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let s = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        (dir, path, s)
    }

    /// Writes without a pause (as under load): the WAL must keep starting over, not grow by
    /// every frame written. The WAL header's checkpoint sequence number (bytes 12..16,
    /// big-endian) counts the restarts; a checkpointer that never catches up leaves it at 0
    /// while the WAL holds every frame ever written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_continuous_writes() {
        let (_dir, path, s) = migrated_file_store("busy.db").await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..2 {
            let (s, stop) = (s.clone(), Arc::clone(&stop));
            writers.push(tokio::spawn(async move {
                let blob = vec![7u8; 3000];
                let mut commits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{commits}");
                    s.put_pending_login(&key, &blob, 1).await.unwrap();
                    assert!(s.take_pending_login(&key, 0).await.unwrap().is_some());
                    commits += 2;
                }
                commits
            }));
        }
        let wal_path = path.with_extension("db-wal");
        let restarts = || {
            let wal = std::fs::read(&wal_path).unwrap_or_default();
            wal.get(12..16)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let checkpoints = || {
            s.inner
                ._checkpointer
                .as_ref()
                .map_or(0, Checkpointer::finished)
        };
        // Counted in checkpoints, not seconds, so that a slow machine changes nothing; the
        // deadline only bounds a failing run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while checkpoints() < 10 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_INTERVAL / 2).await;
        }
        let (done, restarted) = (checkpoints(), restarts());
        stop.store(true, Ordering::Relaxed);
        let mut commits = 0;
        for w in writers {
            commits += w.await.unwrap();
        }
        let wal = std::fs::metadata(&wal_path).unwrap().len();
        // Each finished checkpoint lets the next write start the WAL over.
        assert!(
            done >= 10 && u64::from(restarted) * 2 >= done,
            "the WAL started over {restarted} times in {done} checkpoints ({commits} commits, \
             WAL {wal} bytes)"
        );
    }

    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database() {
        let (_dir, path, s) = migrated_file_store("wal.db").await;
        let before = std::fs::metadata(&path).unwrap().len();
        let blob = vec![7u8; 2000];
        for i in 0..200 {
            s.put_pending_login(&format!("h{i}"), &blob, 1)
                .await
                .unwrap();
        }
        // The serving connections never checkpoint (wal_autocheckpoint = 0), so the rows
        // reach the database file only through the checkpoint thread.
        let mut after = before;
        for _ in 0..100 {
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            after = std::fs::metadata(&path).unwrap().len();
            if after >= before + 200 * 2000 {
                break;
            }
        }
        assert!(
            after >= before + 200 * 2000,
            "database file {before} → {after} bytes"
        );
    }
}
