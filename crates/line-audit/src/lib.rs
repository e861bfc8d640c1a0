//! # line-audit
//!
//! The LINE Login guideline logs. LINE recommends that a LINE Login integration keeps, for a
//! certain period, logs of its authorization requests, of the callbacks it receives and of
//! its LINE Login API calls, so that its developers can investigate the cause and the scope
//! of a problem themselves (LINE does not hand out logs). This crate writes those logs
//! ([`AuditLog`]), reads them back ([`search()`], [`trace()`]) and expires them ([`prune_dir`]).
//!
//! ## Files
//!
//! One directory, three files, one record per line, no header:
//!
//! | file | columns (tab-separated, in this order) |
//! |------|----------------------------------------|
//! | `authorization-request.log`  | time, full authorization request URL |
//! | `authorization-response.log` | time, request method, path with query as received |
//! | `api-request.log` | `x-line-request-id` (`-` if absent), time, method, endpoint URL, status [, request body, response body] |
//!
//! Times are RFC 7231 IMF-fixdate in GMT (`Fri, 16 Jul 2021 10:20:10 GMT`). The status
//! column holds the HTTP status code; when no response arrived it holds the outcome instead
//! (`transport`, `timeout`), so failed attempts stay findable. The two body columns exist
//! only when body logging is on ([`AuditConfig::bodies`]); absent bodies are `-`, and every
//! secret in them (client secret, code verifier, authorization code, access, refresh and ID
//! tokens, client assertions, `userAccessToken`, channel access tokens) is replaced by a
//! short hash, `#` + 8 hex digits of its SHA-256 ([`redact`]).
//!
//! Values are escaped ([`escape`]): backslash, tab, CR, LF and every other control character
//! become backslash sequences, so a value can never split or forge a record, and
//! [`escape::unescape`] restores it exactly. Values are also capped
//! ([`AuditConfig::max_value_bytes`], default 2 KiB): a longer one is cut on a character
//! boundary and ends with `…[truncated N bytes]`, so one request with a 50 KB query writes a
//! record of about 2.1 KB (measured: 2,109 bytes for the 50 KB query of `tests/capping.rs`), still one line
//! that search and trace read.
//!
//! With [`LogFormat::JsonLines`] the same records are written as one JSON object per line
//! to `*.jsonl` files, with RFC 3339 UTC times to the millisecond (`2021-07-16T10:20:10.000Z`),
//! plus `kind`, `outcome`, `attempt` and `duration_ms`, for shipping to a log platform.
//!
//! At UTC midnight each file is renamed to `NAME.YYYY-MM-DD` (the day it holds) and a new one
//! is started; rotated files whose day ended more than `retention_days` days ago are removed
//! by [`AuditLog::prune`] (run periodically by [`AuditLog::spawn_maintenance`]) or by
//! `linelogin logs prune`.
//!
//! ## Durability
//!
//! * A record is handed to the operating system before the call that writes it returns: each
//!   record is one complete line, written with a single `write(2)` to a file opened with
//!   `O_APPEND`. A process killed at any moment (even `SIGKILL`) loses no record whose write
//!   returned. An interrupted write can at most leave an unterminated tail, which is cut off
//!   when the log is next opened, so no torn line survives.
//! * Data reaches stable storage by `fdatasync` on a configurable interval
//!   ([`AuditConfig::fsync_interval`], default 1 s), from a background thread, never on the
//!   writing path; and once more when the last [`AuditLog`] clone is dropped.
//! * Writers to the same file take a mutex for the duration of one `write(2)`, so lines never
//!   interleave. There is no queue: under a burst, callers wait their turn (backpressure);
//!   nothing is dropped and memory does not grow.
//! * Rotation happens under the same mutex as the writes, so no line is lost or duplicated
//!   across midnight. Time is injectable (a [`line_login::clock::SharedClock`], see
//!   [`AuditLog::open_with_clock`]) to test this.
//!
//! One process should own a log file at a time.
//!
//! ## A fleet of instances
//!
//! With [`AuditConfig::instance`] set (the server's `[logs] instance = "a"`), the instance's name
//! goes between the stem and the extension: `api-request.a.log`, rotated at midnight to
//! `api-request.a.log.2026-12-05` (`.jsonl` alike). Records keep exactly the format above; only
//! the file names change. So instances may share one directory (a network volume) or each keep
//! their own, and their lines never interleave in one file. [`search_dirs`] and [`trace_dirs`]
//! read every instance's files of one or more directories and merge the records by time (a
//! stable sort: equal times keep directory, then file order). Retention ([`prune_dir`]) removes
//! past-retention files of every instance in the directory; removing a file another instance
//! already removed is not an error, so instances sharing a directory may all prune it.
//!
//! ## Use
//!
//! ```no_run
//! use line_audit::{AuditConfig, AuditLog};
//!
//! # fn main() -> Result<(), line_audit::AuditError> {
//! let log = AuditLog::open(AuditConfig::new("logs"))?;
//! log.authorization_request(log.now(), "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state=s")?;
//! log.authorization_response(log.now(), "GET", "/callback?code=c&state=s")?;
//! let observer = log.observer(); // give this to the LINE Login client's builder
//! # let _ = observer;
//! # Ok(()) }
//! ```

pub mod escape;
pub mod files;
mod log;
pub mod record;
pub mod redact;
pub mod search;
pub mod timefmt;
pub mod trace;
mod writer;

use std::path::{Path, PathBuf};

pub use files::{
    LogFileInfo, LogFileName, PruneReport, classify_name, is_valid_instance, list_log_files,
    prune_dir,
};
pub use log::{AuditConfig, AuditLog, AuditStats};
pub use record::{
    ApiRequest, AuthorizationRequest, AuthorizationResponse, LogFormat, LogKind, Record,
};
pub use search::{Entry, Query, SearchResult, StatusFilter, search, search_dirs};
pub use trace::{Link, Trace, TraceEvent, trace, trace_dirs};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A log line could not be parsed.
    #[error("malformed {kind} record: {reason}")]
    Parse {
        /// The log (file stem).
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An escaped value contains an invalid escape sequence.
    #[error("invalid escape in {value:?}: {reason}")]
    Escape {
        /// The start of the value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A time could not be parsed.
    #[error("invalid time {value:?}: expected {expected}")]
    Time {
        /// The text given.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A search filter is invalid.
    #[error("{0}")]
    Query(String),
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_owned(),
        source,
    }
}
