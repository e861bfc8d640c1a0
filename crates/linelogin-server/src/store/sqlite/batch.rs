//! Group commit: the store's frequent writes wait in a queue, and whichever caller gets the
//! writer next runs every write queued by then in one transaction, each in a savepoint of its
//! own (a write that fails is rolled back alone; the others commit).
//!
//! A commit costs more than the statements of a login: it appends every page the transaction
//! changed to the WAL (two `pwrite`s per page) and updates the WAL index. Writes that commit
//! together share those costs, and a page several of them change (the small pending-logins
//! table, an index's inner pages) is appended once. Under load, writes arrive while the
//! writer is busy, so batches form on their own; alone, a write commits at once as before.
//!
//! A caller learns the outcome only after the commit, so a write reported done is in the WAL.
//! A caller that stops waiting (its request was dropped) does not withdraw its write: once
//! queued it runs in the next batch, like a write whose commit was already under way.

use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{execute, write_transaction};
use crate::store::StoreError;

/// A queued write.
trait Job: Send {
    /// Runs the write inside the batch's transaction; whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Reports the outcome: the write's own error, or, if it succeeded, the batch's commit.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Write<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = match self.op.take() {
            Some(op) => op(conn),
            None => Err(StoreError::Unavailable("a queued write ran twice".into())),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let outcome = match (self.result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(e.clone()),
            (None, Ok(())) => Err(StoreError::Unavailable("a queued write did not run".into())),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// The writes waiting for the writer connection.
#[derive(Default)]
pub(super) struct WriteQueue {
    jobs: Mutex<Vec<Box<dyn Job>>>,
    /// Batches run so far (read by the tests).
    #[cfg(test)]
    batches: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue").finish_non_exhaustive()
    }
}

impl WriteQueue {
    /// Queues `op` and waits until a batch containing it has committed (or failed). The caller
    /// that gets `writer` runs the whole queue.
    pub(super) async fn write<T, F>(
        &self,
        writer: &tokio::sync::Mutex<Connection>,
        op: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, mut done) = oneshot::channel();
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(Write {
                op: Some(op),
                result: None,
                reply,
            }));
        loop {
            tokio::select! {
                biased;
                outcome = &mut done => {
                    return outcome.unwrap_or_else(|_| {
                        Err(StoreError::Unavailable("a queued write was dropped".into()))
                    });
                }
                mut conn = writer.lock() => {
                    // Our write is in this batch, or was in one that has finished: either way
                    // `done` is ready on the next turn.
                    let jobs = std::mem::take(
                        &mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    if !jobs.is_empty() {
                        #[cfg(test)]
                        self.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        run_batch(&mut conn, jobs);
                    }
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and reports to each.
fn run_batch(conn: &mut Connection, mut jobs: Vec<Box<dyn Job>>) {
    let committed = run_all(conn, &mut jobs);
    for job in jobs {
        job.finish(committed.as_ref().map(|_| ()));
    }
}

fn run_all(conn: &mut Connection, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let tx = write_transaction(conn)?;
    if let [job] = jobs {
        // Alone: a failed write rolls the transaction back (dropped without commit).
        return if job.run(&tx) {
            tx.commit().map_err(super::map_err)
        } else {
            Ok(())
        };
    }
    for job in jobs.iter_mut() {
        execute(&tx, "SAVEPOINT batched_write", &[])?;
        let ok = job.run(&tx);
        if tx.is_autocommit() {
            // SQLite ended the transaction itself (an I/O error, a full disk): the writes
            // before this one are gone too.
            return Err(StoreError::Unavailable(
                "the database rolled back a batch of writes".into(),
            ));
        }
        if !ok {
            execute(&tx, "ROLLBACK TO batched_write", &[])?;
        }
        execute(&tx, "RELEASE batched_write", &[])?;
    }
    tx.commit().map_err(super::map_err)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn table() -> Arc<tokio::sync::Mutex<Connection>> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        Arc::new(tokio::sync::Mutex::new(conn))
    }

    fn keys(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Inserts each key in turn; fails at the first duplicate.
    fn insert(
        keys: &'static [&'static str],
    ) -> impl FnOnce(&Connection) -> Result<usize, StoreError> {
        move |conn| {
            for k in keys {
                execute(conn, "INSERT INTO t (k) VALUES ($1)", &[k])?;
            }
            Ok(keys.len())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_busy_writer_commit_together_and_a_failed_one_alone_rolls_back()
    {
        let writer = table();
        let queue = Arc::new(WriteQueue::default());
        let busy = writer.lock().await;
        let mut tasks = Vec::new();
        for keys in [&["a"][..], &["c", "a"], &["b"]] {
            let (q, w) = (Arc::clone(&queue), Arc::clone(&writer));
            tasks.push(tokio::spawn(async move { q.write(&w, insert(keys)).await }));
            // Queued in this order.
            while queue.jobs.lock().unwrap().len() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(busy);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(matches!(results[0], Ok(1)), "{results:?}");
        assert!(
            matches!(results[1], Err(StoreError::Conflict(_))),
            "{results:?}"
        );
        assert!(matches!(results[2], Ok(1)), "{results:?}");
        // "c" went with the failed write; the writes around it committed.
        assert_eq!(keys(&*writer.lock().await), ["a", "b"]);
        assert_eq!(queue.batches.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_write_alone_commits_or_rolls_back_whole() {
        let writer = table();
        let queue = WriteQueue::default();
        assert_eq!(queue.write(&writer, insert(&["a"])).await.unwrap(), 1);
        let failed = queue.write(&writer, insert(&["b", "a"])).await;
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
        assert_eq!(keys(&*writer.lock().await), ["a"]);
    }

    #[tokio::test]
    async fn a_write_whose_caller_stopped_waiting_commits_with_the_next_batch() {
        let writer = table();
        let queue = Arc::new(WriteQueue::default());
        let busy = writer.lock().await;
        let (q, w) = (Arc::clone(&queue), Arc::clone(&writer));
        let dropped = tokio::spawn(async move { q.write(&w, insert(&["a"])).await });
        while queue.jobs.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        drop(busy);
        assert_eq!(
            keys(&*writer.lock().await),
            Vec::<String>::new(),
            "not run yet"
        );
        queue.write(&writer, insert(&["b"])).await.unwrap();
        assert_eq!(keys(&*writer.lock().await), ["a", "b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_of_many_concurrent_callers_is_committed_once() {
        let writer = table();
        let queue = Arc::new(WriteQueue::default());
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (queue, writer) = (Arc::clone(&queue), Arc::clone(&writer));
            tasks.push(tokio::spawn(async move {
                for j in 0..50 {
                    let key = format!("{i}-{j}");
                    let inserted = queue
                        .write(&writer, move |conn| {
                            execute(conn, "INSERT INTO t (k) VALUES ($1)", &[&key])
                        })
                        .await
                        .unwrap();
                    assert_eq!(inserted, 1);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(keys(&*writer.lock().await).len(), 64 * 50);
        let batches = queue.batches.load(std::sync::atomic::Ordering::Relaxed);
        assert!((1..=64 * 50).contains(&batches), "{batches} batches");
    }
}
