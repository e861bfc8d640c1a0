//! Reading a log directory back, and filtering records.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use crate::files::list_log_files;
use crate::record::{LogKind, Record};
use crate::timefmt::day_of;
use crate::{AuditError, io_err};

/// A filter on the status column of `api-request.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    /// One status code (`200`).
    Code(u16),
    /// A class (`4xx` is `Class(4)`).
    Class(u16),
    /// Attempts that got no status at all (`-` or `none`).
    NoStatus,
    /// Attempts that did not succeed: a non-2xx status or no status (`failed`).
    Failed,
    /// An outcome name (`success`, `http_error`, `transport`, `timeout`, `body_too_large`).
    Outcome(String),
}

impl FromStr for StatusFilter {
    type Err = AuditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let b = lower.as_bytes();
        if b.len() == 3 && b[0].is_ascii_digit() && &lower[1..] == "xx" {
            let class = u16::from(b[0] - b'0');
            if (1..=5).contains(&class) {
                return Ok(StatusFilter::Class(class));
            }
        }
        if let Ok(code) = lower.parse::<u16>()
            && (100..=599).contains(&code)
        {
            return Ok(StatusFilter::Code(code));
        }
        match lower.as_str() {
            "-" | "none" => Ok(StatusFilter::NoStatus),
            "failed" | "fail" | "error" | "errors" => Ok(StatusFilter::Failed),
            "success" | "http_error" | "transport" | "timeout" | "body_too_large" => {
                Ok(StatusFilter::Outcome(lower))
            }
            _ => Err(AuditError::Query(format!(
                "invalid status filter {s:?}: use a code (200), a class (4xx), \
                 none, failed, or an outcome (success, http_error, transport, timeout, body_too_large)"
            ))),
        }
    }
}

/// A search query. Empty fields do not filter; all given fields must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only these kinds (all when empty).
    pub kinds: Vec<LogKind>,
    /// Records at or after this time.
    pub since: Option<SystemTime>,
    /// Records before this time.
    pub until: Option<SystemTime>,
    /// API calls with this exact `x-line-request-id`.
    pub request_id: Option<String>,
    /// API calls whose status matches.
    pub status: Option<StatusFilter>,
    /// Records whose endpoint (API calls) or URL/path without query (authorization
    /// requests, callbacks) contains this.
    pub endpoint: Option<String>,
    /// Records with a value (unescaped) containing this text.
    pub text: Option<String>,
    /// Keep only the most recent `limit` matches.
    pub limit: Option<usize>,
}

fn without_query(s: &str) -> &str {
    s.split(['?', '#']).next().unwrap_or(s)
}

impl Query {
    /// Whether a record matches.
    pub fn matches(&self, record: &Record) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&record.kind()) {
            return false;
        }
        let t = record.time();
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
            return false;
        }
        let api = match record {
            Record::ApiRequest(a) => Some(a),
            _ => None,
        };
        if let Some(rid) = &self.request_id
            && api.and_then(|a| a.request_id.as_deref()) != Some(rid.as_str())
        {
            return false;
        }
        if let Some(filter) = &self.status {
            let Some(a) = api else { return false };
            let ok = match filter {
                StatusFilter::Code(c) => a.status == Some(*c),
                StatusFilter::Class(k) => a.status.is_some_and(|s| s / 100 == *k),
                StatusFilter::NoStatus => a.status.is_none(),
                StatusFilter::Failed => a.outcome_name() != "success",
                StatusFilter::Outcome(o) => a.outcome_name() == o,
            };
            if !ok {
                return false;
            }
        }
        if let Some(ep) = &self.endpoint {
            let target = match record {
                Record::AuthorizationRequest(r) => without_query(&r.url),
                Record::AuthorizationResponse(r) => without_query(&r.path),
                Record::ApiRequest(r) => r.endpoint.as_str(),
            };
            if !target.contains(ep.as_str()) {
                return false;
            }
        }
        if let Some(text) = &self.text
            && !record.values().iter().any(|v| v.contains(text.as_str()))
        {
            return false;
        }
        true
    }
}

/// A record with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record.
    pub record: Record,
    /// The file it was read from.
    pub file: PathBuf,
    /// Its line number (1-based).
    pub line: usize,
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// The file.
    pub file: PathBuf,
    /// The line number (1-based).
    pub line: usize,
    /// Why.
    pub error: String,
}

/// Matching records in time order, and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchResult {
    /// The matches, oldest first.
    pub entries: Vec<Entry>,
    /// Lines skipped because they did not parse.
    pub malformed: Vec<MalformedLine>,
}

/// Reads every record of one file that `keep` accepts. An unterminated last line (a write in
/// progress) is ignored.
pub fn read_file(
    info: &crate::files::LogFileInfo,
    keep: &mut dyn FnMut(&Record) -> bool,
    out: &mut SearchResult,
) -> Result<(), AuditError> {
    let file = File::open(&info.path).map_err(|e| io_err(&info.path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut buf = Vec::with_capacity(512);
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(&info.path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            break;
        }
        buf.pop();
        if buf.is_empty() {
            continue;
        }
        let parsed = std::str::from_utf8(&buf)
            .map_err(|_| AuditError::Parse {
                kind: info.kind.stem(),
                reason: "not UTF-8".to_owned(),
            })
            .and_then(|line| Record::parse(info.kind, info.format, line));
        match parsed {
            Ok(record) if keep(&record) => out.entries.push(Entry {
                record,
                file: info.path.clone(),
                line: line_no,
            }),
            Ok(_) => {}
            Err(e) => out.malformed.push(MalformedLine {
                file: info.path.clone(),
                line: line_no,
                error: e.to_string(),
            }),
        }
    }
    Ok(())
}

/// Searches every log file of `dir` (live and rotated, TSV and JSON Lines, of every
/// instance).
pub fn search(dir: &Path, query: &Query) -> Result<SearchResult, AuditError> {
    search_dirs(&[dir], query)
}

/// Searches every log file of several directories (the instances of a fleet, each with its
/// own directory or sharing one), and merges the records by time. The sort is stable: records
/// of the same time keep the order of `dirs`, then of the files in each.
pub fn search_dirs(dirs: &[&Path], query: &Query) -> Result<SearchResult, AuditError> {
    let mut result = SearchResult::default();
    let since_day = query.since.map(day_of);
    let until_day = query.until.map(day_of);
    let mut files = Vec::new();
    for dir in dirs {
        files.extend(list_log_files(dir)?);
    }
    for info in files {
        if !query.kinds.is_empty() && !query.kinds.contains(&info.kind) {
            continue;
        }
        // A rotated file holds its day's records (allowing one day of slack for records
        // stamped with the start of a call that ended after midnight).
        if let Some(day) = info.day
            && (since_day.is_some_and(|s| day < s - 1) || until_day.is_some_and(|u| day > u + 1))
        {
            continue;
        }
        read_file(&info, &mut |r| query.matches(r), &mut result)?;
    }
    sort_entries(&mut result.entries);
    if let Some(limit) = query.limit {
        let excess = result.entries.len().saturating_sub(limit);
        result.entries.drain(..excess);
    }
    Ok(result)
}

/// Sorts by time, then kind (authorization request, callback, API call), then file order.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        (a.record.time(), a.record.kind()).cmp(&(b.record.time(), b.record.kind()))
    });
}
