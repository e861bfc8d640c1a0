//! One append-only log file with daily rotation.
//!
//! Every record is one complete line handed to the kernel by a single `write(2)` on a file
//! opened with `O_APPEND`, while a mutex is held. That gives:
//!
//! * **durability against process death**: once `append` returns, the line is in the page
//!   cache and survives a `SIGKILL` of the process (it needs the periodic `fsync` only to
//!   survive a power loss or kernel crash);
//! * **no interleaving**: writers of the same file are serialised by the mutex, so no line is
//!   ever split by another;
//! * **bounded memory, backpressure**: there is no queue at all. A caller under a burst
//!   waits for the mutex (microseconds) instead of its line being buffered or dropped;
//! * **rotation without loss or duplication**: the day check, the rename and the reopen
//!   happen under the same mutex as the writes, so each line lands in exactly one file.
//!
//! A process killed in the middle of a `write(2)` can at worst leave an unterminated tail
//! (never an acknowledged record, since `append` had not returned). [`RotatingFile::open`]
//! removes such a tail before writing, so no torn line ever precedes a new one; the same
//! repair runs before the next write after a failed one (e.g. a full disk).
//!
//! Group commit (callers queue lines, one leader writes a batch per `write(2)`) was built and
//! measured: on this workload it was slower (condition-variable wake-ups cost more than a
//! small `write(2)` of a few hundred bytes to the page cache), so each caller writes its own
//! line.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use line_login::clock::SharedClock;

use crate::timefmt::{DayNumber, day_of, format_day};
use crate::{AuditError, io_err};

struct Current {
    file: Arc<File>,
    /// The UTC day the current file holds.
    day: DayNumber,
    /// A write failed part-way (e.g. disk full): the file may end with a partial line.
    torn: bool,
}

/// An append-only file `dir/name`, rotated to `dir/name.YYYY-MM-DD` at UTC midnight.
pub struct RotatingFile {
    dir: PathBuf,
    name: String,
    path: PathBuf,
    clock: SharedClock,
    current: Mutex<Current>,
    /// Written since the last fsync.
    dirty: AtomicBool,
    /// Files rotated out whose data is not yet fsynced.
    retired: Mutex<Vec<Arc<File>>>,
}

impl std::fmt::Debug for RotatingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens (creating) a log file for appending. On Unix a new file is created `0600`: the
/// records hold user ids and authorization URLs, for the operator's eyes only.
fn open_append(path: &Path) -> Result<File, AuditError> {
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| io_err(path, e))
}

/// Cuts an unterminated last line (left by a process killed mid-write).
fn repair_tail(mut file: &File, path: &Path) -> Result<(), AuditError> {
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(|e| io_err(path, e))?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Scan backwards in blocks for the last newline.
    let mut end = len;
    let mut keep = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut buf[..n]))
            .map_err(|e| io_err(path, e))?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    tracing::warn!(
        path = %path.display(),
        bytes = len - keep,
        "removing an unterminated last line left by an interrupted write"
    );
    file.set_len(keep).map_err(|e| io_err(path, e))?;
    file.sync_data().map_err(|e| io_err(path, e))
}

impl RotatingFile {
    /// Opens (creating if needed) `dir/name`, cutting any unterminated last line. A non-empty
    /// existing file is taken to hold the UTC day of its last modification (at most today),
    /// so a file left from an earlier day is rotated on the first write.
    pub fn open(dir: &Path, name: &str, clock: SharedClock) -> Result<Self, AuditError> {
        let path = dir.join(name);
        let file = open_append(&path)?;
        repair_tail(&file, &path)?;
        let today = day_of(clock.now());
        let meta = file.metadata().map_err(|e| io_err(&path, e))?;
        let day = if meta.len() == 0 {
            today
        } else {
            meta.modified().map(day_of).unwrap_or(today).min(today)
        };
        Ok(Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            path,
            clock,
            current: Mutex::new(Current {
                file: Arc::new(file),
                day,
                torn: false,
            }),
            dirty: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one complete line (which must end with `\n` and contain no other newline).
    /// When this returns `Ok`, the kernel has the whole line.
    pub fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        let mut cur = self.lock();
        let today = day_of(self.clock.now());
        if today > cur.day {
            self.rotate(&mut cur, today);
        }
        if cur.torn {
            // Cut the partial line a failed write left, so this line starts on its own.
            repair_tail(&cur.file, &self.path)?;
            cur.torn = false;
        }
        // `write_all` on a regular file is a single write(2) unless the disk is full or the
        // call is interrupted; O_APPEND makes each write land at the current end.
        if let Err(e) = (&*cur.file).write_all(line) {
            cur.torn = true;
            return Err(io_err(&self.path, e));
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Rotates now if the day has changed (also used by the maintenance task so that a quiet
    /// file is still renamed and can expire).
    pub fn rotate_if_due(&self) {
        let mut cur = self.lock();
        let today = day_of(self.clock.now());
        if today > cur.day {
            self.rotate(&mut cur, today);
        }
    }

    /// Renames the live file to `name.DAY` and opens a fresh one. Runs under the write lock.
    /// On failure the current file is kept (records are never dropped because of rotation).
    fn rotate(&self, cur: &mut Current, today: DayNumber) {
        let target = self
            .dir
            .join(format!("{}.{}", self.name, format_day(cur.day)));
        let empty = cur.file.metadata().map(|m| m.len() == 0).unwrap_or(false);
        let result = if empty {
            Ok(())
        } else if target.exists() {
            // A rotated file for that day already exists (e.g. the clock went back and
            // forth): append to it rather than overwrite it.
            merge_into(&self.path, &target)
        } else {
            fs::rename(&self.path, &target).map_err(|e| io_err(&target, e))
        };
        match result.and_then(|()| open_append(&self.path)) {
            Ok(file) => {
                let old = std::mem::replace(&mut cur.file, Arc::new(file));
                cur.torn = false;
                self.retired
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(old);
                self.dirty.store(true, Ordering::Release);
            }
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err, "log rotation failed; writing on in the current file");
            }
        }
        cur.day = today;
    }

    /// Flushes written data to stable storage (`fdatasync`), outside the write lock.
    pub fn sync(&self) -> Result<(), AuditError> {
        let retired: Vec<Arc<File>> =
            std::mem::take(&mut *self.retired.lock().unwrap_or_else(|e| e.into_inner()));
        let rotated = !retired.is_empty();
        for f in retired {
            f.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        if self.dirty.swap(false, Ordering::AcqRel) {
            let file = Arc::clone(&self.lock().file);
            if let Err(e) = file.sync_data() {
                self.dirty.store(true, Ordering::Release);
                return Err(io_err(&self.path, e));
            }
        }
        if rotated {
            // Make the rename and the new file's directory entry durable too.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(&self.dir, e))?;
        }
        Ok(())
    }
}

fn merge_into(from: &Path, to: &Path) -> Result<(), AuditError> {
    let mut src = File::open(from).map_err(|e| io_err(from, e))?;
    let mut dst = OpenOptions::new()
        .append(true)
        .open(to)
        .map_err(|e| io_err(to, e))?;
    std::io::copy(&mut src, &mut dst).map_err(|e| io_err(to, e))?;
    dst.sync_data().map_err(|e| io_err(to, e))?;
    fs::remove_file(from).map_err(|e| io_err(from, e))
}
