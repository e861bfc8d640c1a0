//! [`AuditLog`]: the writer the server and the client's observer hook plug into.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use line_login::clock::{SharedClock, SystemClock};
use line_login::observer::{ApiCall, ApiObserver};

use crate::files::{PruneReport, prune_dir};
use crate::record::{
    AuthorizationRequest, AuthorizationResponse, LogFormat, LogKind, Record, write_api_call,
    write_authorization_request_tsv, write_authorization_response_tsv,
};
use crate::writer::RotatingFile;
use crate::{AuditError, io_err};

/// Configuration of the guideline logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The directory holding the log files (created if missing).
    pub dir: PathBuf,
    /// Rotated files whose day ended more than this many days ago are removed by
    /// [`AuditLog::prune`]. At least 1.
    pub retention_days: u32,
    /// How often written data is flushed to stable storage (`fdatasync`) by a background
    /// thread; `None` leaves it to the operating system. Records are handed to the kernel
    /// on every write regardless, so a process crash never loses them.
    pub fsync_interval: Option<Duration>,
    /// Whether `api-request.log` also holds the (redacted) request and response bodies.
    pub bodies: bool,
    /// Line format of the files.
    pub format: LogFormat,
    /// The longest a value may be in a record, in bytes (escaped, for TSV): a longer one is
    /// cut on a character boundary and followed by `…[truncated N bytes]`
    /// ([`crate::escape::escape_capped_into`]). At least [`AuditConfig::MIN_VALUE_BYTES`].
    /// Default [`AuditConfig::DEFAULT_MAX_VALUE_BYTES`] (2 KiB): LINE's authorization URLs
    /// and callbacks are a few hundred bytes, and a 50 KB junk query then writes a 2.1 KB
    /// record. `usize::MAX` turns capping off.
    pub max_value_bytes: usize,
    /// The instance of a fleet writing here (`[logs] instance`): it goes into the file names
    /// (`api-request.a.log`, rotated to `api-request.a.log.2026-12-05`), so instances sharing
    /// a directory never write to the same file. 1 to 32 ASCII letters, digits, `-` or `_`.
    /// `None`: a single instance, `api-request.log`.
    pub instance: Option<String>,
}

impl AuditConfig {
    /// The default cap on a value: 2 KiB.
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 2048;
    /// The smallest accepted cap.
    pub const MIN_VALUE_BYTES: usize = 64;

    /// Defaults: 90 days of retention, fsync every second, no bodies, TSV, values capped at
    /// 2 KiB.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retention_days: 90,
            fsync_interval: Some(Duration::from_secs(1)),
            bodies: false,
            format: LogFormat::Tsv,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            instance: None,
        }
    }
}

/// Counters of an [`AuditLog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written.
    pub records: u64,
    /// Records that could not be written (each is also reported through `tracing`).
    pub write_errors: u64,
    /// Failed background fsyncs.
    pub sync_errors: u64,
}

struct Inner {
    config: AuditConfig,
    files: [RotatingFile; 3],
    records: AtomicU64,
    write_errors: AtomicU64,
    sync_errors: AtomicU64,
    /// Decides the UTC day (rotation) and the time retention is measured from.
    clock: SharedClock,
    /// Dropping this stops the fsync thread.
    _stop: Option<mpsc::Sender<()>>,
}

impl Inner {
    fn file(&self, kind: LogKind) -> &RotatingFile {
        match kind {
            LogKind::AuthorizationRequest => &self.files[0],
            LogKind::AuthorizationResponse => &self.files[1],
            LogKind::ApiRequest => &self.files[2],
        }
    }

    fn sync_all(&self) -> Result<(), AuditError> {
        let mut first_err = None;
        for f in &self.files {
            if let Err(e) = f.sync() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.sync_all() {
            tracing::warn!(error = %e, "final fsync of the guideline logs failed");
        }
    }
}

/// The guideline logs of one directory. Cheap to clone; all clones share the same files.
///
/// Every method that writes returns only once the record's complete line has been handed
/// to the kernel (see the [crate docs](crate)).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the logs of `config.dir` with the system clock, and starts the fsync thread.
    pub fn open(config: AuditConfig) -> Result<Self, AuditError> {
        Self::open_with_clock(config, Arc::new(SystemClock::new()))
    }

    /// Opens the logs with an injected clock (the clock decides the UTC day, hence
    /// rotation; record times are passed in by the caller).
    pub fn open_with_clock(config: AuditConfig, clock: SharedClock) -> Result<Self, AuditError> {
        if config.retention_days == 0 {
            return Err(AuditError::Config(
                "retention_days must be at least 1".to_owned(),
            ));
        }
        if config.max_value_bytes < AuditConfig::MIN_VALUE_BYTES {
            return Err(AuditError::Config(format!(
                "max_value_bytes must be at least {}",
                AuditConfig::MIN_VALUE_BYTES
            )));
        }
        if config.fsync_interval == Some(Duration::ZERO) {
            return Err(AuditError::Config(
                "fsync_interval must be positive (or None)".to_owned(),
            ));
        }
        if let Some(instance) = &config.instance
            && !crate::files::is_valid_instance(instance)
        {
            return Err(AuditError::Config(
                "instance must be 1 to 32 ASCII letters, digits, - or _".to_owned(),
            ));
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| io_err(&config.dir, e))?;
        let open = |kind: LogKind| {
            RotatingFile::open(
                &config.dir,
                &kind.instance_file_name(config.format, config.instance.as_deref()),
                Arc::clone(&clock),
            )
        };
        let files = [
            open(LogKind::AuthorizationRequest)?,
            open(LogKind::AuthorizationResponse)?,
            open(LogKind::ApiRequest)?,
        ];
        let (stop_tx, stop_rx) = match config.fsync_interval {
            Some(_) => {
                let (tx, rx) = mpsc::channel::<()>();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            config,
            files,
            records: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            sync_errors: AtomicU64::new(0),
            clock,
            _stop: stop_tx,
        });
        if let (Some(rx), Some(every)) = (stop_rx, inner.config.fsync_interval) {
            let weak = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("line-audit-fsync".to_owned())
                .spawn(move || fsync_loop(weak, rx, every))
                .map_err(|e| io_err(&inner.config.dir, e))?;
        }
        Ok(Self { inner })
    }

    /// The time on the log's clock: what callers without a clock of their own pass as a
    /// record's time, and what periodic pruning measures retention from.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// The configuration.
    pub fn config(&self) -> &AuditConfig {
        &self.inner.config
    }

    /// Formats a line into a per-thread buffer and appends it to the file of `kind`.
    fn append_with(
        &self,
        kind: LogKind,
        format: impl FnOnce(&mut String),
    ) -> Result<(), AuditError> {
        thread_local! {
            static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
        }
        let result = LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                format(&mut line);
                let r = self.inner.file(kind).append(line.as_bytes());
                if line.capacity() > 64 * 1024 {
                    // Do not keep a huge buffer alive after one large body.
                    *line = String::with_capacity(512);
                }
                r
            }
            // Re-entered (a tracing layer writing to the log, say): use a fresh buffer.
            Err(_) => {
                let mut line = String::with_capacity(512);
                format(&mut line);
                self.inner.file(kind).append(line.as_bytes())
            }
        });
        match &result {
            Ok(()) => self.inner.records.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.inner.write_errors.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Writes one record to its file (each value capped at
    /// [`AuditConfig::max_value_bytes`]).
    pub fn write(&self, record: &Record) -> Result<(), AuditError> {
        let (format, max) = (self.inner.config.format, self.inner.config.max_value_bytes);
        self.append_with(record.kind(), |line| match format {
            LogFormat::Tsv => record.write_tsv_capped(max, line),
            LogFormat::JsonLines => record.write_json_line_capped(max, line),
        })
    }

    /// `authorization-request.log`: the server built the authorization URL `url` at `time`.
    pub fn authorization_request(&self, time: SystemTime, url: &str) -> Result<(), AuditError> {
        match self.inner.config.format {
            LogFormat::Tsv => self.append_with(LogKind::AuthorizationRequest, |line| {
                write_authorization_request_tsv(time, url, self.inner.config.max_value_bytes, line)
            }),
            LogFormat::JsonLines => {
                self.write(&Record::AuthorizationRequest(AuthorizationRequest {
                    time,
                    url: url.to_owned(),
                }))
            }
        }
    }

    /// `authorization-response.log`: a callback arrived at `time` with `method` and
    /// `path_and_query` exactly as received (whatever it carries: a code, an error, junk),
    /// each capped at [`AuditConfig::max_value_bytes`].
    pub fn authorization_response(
        &self,
        time: SystemTime,
        method: &str,
        path_and_query: &str,
    ) -> Result<(), AuditError> {
        match self.inner.config.format {
            LogFormat::Tsv => self.append_with(LogKind::AuthorizationResponse, |line| {
                write_authorization_response_tsv(
                    time,
                    method,
                    path_and_query,
                    self.inner.config.max_value_bytes,
                    line,
                )
            }),
            LogFormat::JsonLines => {
                self.write(&Record::AuthorizationResponse(AuthorizationResponse {
                    time,
                    method: method.to_owned(),
                    path: path_and_query.to_owned(),
                }))
            }
        }
    }

    /// `api-request.log`: one API call attempt, as the client's observer reports it. Bodies
    /// are written only when [`AuditConfig::bodies`] is on, after a second redaction pass.
    pub fn api_call(&self, call: &ApiCall) -> Result<(), AuditError> {
        let (bodies, format) = (self.inner.config.bodies, self.inner.config.format);
        let max = self.inner.config.max_value_bytes;
        self.append_with(LogKind::ApiRequest, |line| {
            write_api_call(call, bodies, format, max, line)
        })
    }

    /// An observer handle for `LineClientBuilder` (the client calls it after every attempt).
    pub fn observer(&self) -> Arc<dyn ApiObserver> {
        Arc::new(self.clone())
    }

    /// Flushes everything written so far to stable storage now.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.inner.sync_all()
    }

    /// Rotates files whose day has ended even if nothing was written since.
    pub fn rotate_if_due(&self) {
        for f in &self.inner.files {
            f.rotate_if_due();
        }
    }

    /// Rotates what is due, then removes rotated files past retention as of `now`.
    pub fn prune(&self, now: SystemTime) -> Result<PruneReport, AuditError> {
        self.rotate_if_due();
        prune_dir(
            &self.inner.config.dir,
            self.inner.config.retention_days,
            now,
            false,
        )
    }

    /// Counters.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.inner.records.load(Ordering::Relaxed),
            write_errors: self.inner.write_errors.load(Ordering::Relaxed),
            sync_errors: self.inner.sync_errors.load(Ordering::Relaxed),
        }
    }

    /// Spawns the periodic maintenance task on the current tokio runtime: every `every`, it
    /// rotates what is due and prunes past retention, on the blocking pool (never on an
    /// async worker). Returns its handle; abort it to stop. fsync has its own thread.
    ///
    /// Fails (rather than panicking) when called outside a tokio runtime.
    pub fn spawn_maintenance(
        &self,
        every: Duration,
    ) -> Result<tokio::task::JoinHandle<()>, AuditError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            AuditError::Config("spawn_maintenance needs a tokio runtime".to_owned())
        })?;
        let log = self.clone();
        Ok(handle.spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let log = log.clone();
                let joined = tokio::task::spawn_blocking(move || log.prune(log.now())).await;
                match joined {
                    Ok(Ok(report)) if !report.removed.is_empty() => {
                        tracing::info!(removed = report.removed.len(), "pruned guideline logs");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "pruning guideline logs failed"),
                    Err(e) => tracing::warn!(error = %e, "guideline log maintenance panicked"),
                }
            }
        }))
    }
}

impl ApiObserver for AuditLog {
    fn on_api_call(&self, call: &ApiCall) {
        if let Err(e) = self.api_call(call) {
            tracing::error!(error = %e, endpoint = %call.endpoint, "could not write api-request log record");
        }
    }

    fn wants_bodies(&self) -> bool {
        self.inner.config.bodies
    }
}

fn fsync_loop(weak: Weak<Inner>, stop: mpsc::Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The log was dropped (its final sync runs in `Drop`).
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.sync_all() {
            inner.sync_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "fsync of the guideline logs failed");
        }
    }
}
