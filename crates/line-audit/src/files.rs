//! The files of a log directory: which are logs, of which kind, format and day; retention.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::record::{LogFormat, LogKind};
use crate::timefmt::{DayNumber, day_of, parse_day};
use crate::{AuditError, io_err};

/// One log file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileInfo {
    /// Its path.
    pub path: PathBuf,
    /// Which log it is.
    pub kind: LogKind,
    /// Its line format.
    pub format: LogFormat,
    /// The UTC day of a rotated file (`NAME.YYYY-MM-DD`); `None` for the live file.
    pub day: Option<DayNumber>,
    /// The instance of a fleet that wrote it (`api-request.a.log` → `a`); `None` for the
    /// files of a single instance (`api-request.log`).
    pub instance: Option<String>,
}

/// Whether `name` can name an instance in file names: 1 to 32 ASCII letters, digits, `-` or
/// `_` (no dot, so a file name splits one way only).
pub fn is_valid_instance(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A file of a log directory, by its name: kind, format, instance, day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileName {
    /// Which log.
    pub kind: LogKind,
    /// Its line format.
    pub format: LogFormat,
    /// The instance that writes it, if named.
    pub instance: Option<String>,
    /// The day of a rotated file; `None` for a live one.
    pub day: Option<DayNumber>,
}

/// Recognises `NAME[.YYYY-MM-DD]` and `STEM.INSTANCE.EXT[.YYYY-MM-DD]` (see
/// [`classify`]), with the instance.
pub fn classify_name(file_name: &str) -> Option<LogFileName> {
    if let Some((kind, format, day)) = classify(file_name) {
        return Some(LogFileName {
            kind,
            format,
            instance: None,
            day,
        });
    }
    for kind in LogKind::ALL {
        let Some(rest) = file_name
            .strip_prefix(kind.stem())
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let Some((instance, rest)) = rest.split_once('.') else {
            continue;
        };
        if !is_valid_instance(instance) {
            continue;
        }
        for format in [LogFormat::Tsv, LogFormat::JsonLines] {
            let Some(after) = rest.strip_prefix(format.extension()) else {
                continue;
            };
            let day = match after {
                "" => None,
                _ => match after.strip_prefix('.').and_then(parse_day) {
                    Some(day) => Some(day),
                    None => continue,
                },
            };
            return Some(LogFileName {
                kind,
                format,
                instance: Some(instance.to_owned()),
                day,
            });
        }
    }
    None
}

/// Recognises `NAME`, `NAME.YYYY-MM-DD` for the six names (three kinds × two formats) of a
/// single instance; [`classify_name`] also recognises the files of named instances.
pub fn classify(file_name: &str) -> Option<(LogKind, LogFormat, Option<DayNumber>)> {
    for kind in LogKind::ALL {
        for format in [LogFormat::Tsv, LogFormat::JsonLines] {
            let live = kind.file_name(format);
            if file_name == live {
                return Some((kind, format, None));
            }
            if let Some(rest) = file_name
                .strip_prefix(live.as_str())
                .and_then(|r| r.strip_prefix('.'))
                && let Some(day) = parse_day(rest)
            {
                return Some((kind, format, Some(day)));
            }
        }
    }
    None
}

/// The log files in `dir`, of every instance, oldest first (rotated by day, then the live
/// files).
pub fn list_log_files(dir: &Path) -> Result<Vec<LogFileInfo>, AuditError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(LogFileName {
            kind,
            format,
            instance,
            day,
        }) = classify_name(name)
        else {
            continue;
        };
        if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        out.push(LogFileInfo {
            path: entry.path(),
            kind,
            format,
            day,
            instance,
        });
    }
    out.sort_by(|a, b| {
        (a.day.is_none(), a.day, a.kind, a.path.as_path()).cmp(&(
            b.day.is_none(),
            b.day,
            b.kind,
            b.path.as_path(),
        ))
    });
    Ok(out)
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rotated files past retention, removed (or to be removed in a dry run).
    pub removed: Vec<PathBuf>,
    /// Log files kept.
    pub kept: usize,
}

/// Whether a rotated file of `day` is past retention at `now`: its day ended more than
/// `retention_days` whole days ago (`today - day > retention_days`).
pub fn is_expired(day: DayNumber, now: SystemTime, retention_days: u32) -> bool {
    day_of(now) - day > i64::from(retention_days)
}

/// Removes the rotated log files of `dir` older than `retention_days` (see [`is_expired`]).
/// Live files are never removed. With `dry_run`, only reports.
pub fn prune_dir(
    dir: &Path,
    retention_days: u32,
    now: SystemTime,
    dry_run: bool,
) -> Result<PruneReport, AuditError> {
    let mut report = PruneReport::default();
    for f in list_log_files(dir)? {
        match f.day {
            Some(day) if is_expired(day, now, retention_days) => {
                if !dry_run {
                    match fs::remove_file(&f.path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err(&f.path, e)),
                    }
                }
                report.removed.push(f.path);
            }
            _ => report.kept += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            classify("api-request.log"),
            Some((LogKind::ApiRequest, LogFormat::Tsv, None))
        );
        assert_eq!(
            classify("authorization-response.jsonl.2021-07-16"),
            Some((
                LogKind::AuthorizationResponse,
                LogFormat::JsonLines,
                parse_day("2021-07-16")
            ))
        );
        assert_eq!(classify("api-request.log.2021-13-01"), None);
        assert_eq!(classify("api-request.log.bak"), None);
        assert_eq!(classify("other.log"), None);
    }

    #[test]
    fn instance_names() {
        let name = |kind, format, instance: &str, day| {
            Some(LogFileName {
                kind,
                format,
                instance: Some(instance.to_owned()),
                day,
            })
        };
        assert_eq!(
            classify_name("api-request.a.log"),
            name(LogKind::ApiRequest, LogFormat::Tsv, "a", None)
        );
        assert_eq!(
            classify_name("authorization-request.web-2.jsonl.2026-12-05"),
            name(
                LogKind::AuthorizationRequest,
                LogFormat::JsonLines,
                "web-2",
                parse_day("2026-12-05")
            )
        );
        // Without an instance, as before.
        assert_eq!(
            classify_name("api-request.log.2026-12-05").map(|n| (n.instance, n.day)),
            Some((None, parse_day("2026-12-05")))
        );
        assert_eq!(classify_name("api-request.a.log.bak"), None);
        assert_eq!(classify_name("api-request.a.b.log"), None);
        assert_eq!(classify_name("api-request.a.txt"), None);
        assert_eq!(classify_name("api-request..log"), None);
        assert!(is_valid_instance("a_1-B"));
        assert!(!is_valid_instance("a.b"));
        assert!(!is_valid_instance(&"x".repeat(33)));
    }
}
