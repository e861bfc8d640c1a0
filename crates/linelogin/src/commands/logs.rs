//! `linelogin logs`: search, trace and prune the guideline logs of a directory.
//!
//! A fleet: `--dir` may be given more than once (one directory per instance, or a shared one);
//! `search` and `trace` read every instance's files (`api-request.a.log`, …) of every
//! directory and merge the records by time. `prune` works on each directory in turn.
//!
//! * `search` filters records of the three logs (live and rotated files, TSV and JSON Lines)
//!   and prints an aligned table, or JSON Lines with `--json`.
//! * `trace KEY` shows one login (authorization request, callback, API calls) in time order,
//!   from a `state`, an authorization code (or its `#hash`) or an `x-line-request-id`.
//! * `prune` removes rotated files past retention.
//!
//! Nothing read from a log reaches the terminal raw: tables and timelines escape every value
//! (`line_audit::escape`), JSON escapes C0 and C1 controls, DEL and `U+2028`/`U+2029`
//! (`render::json_line`), and the malformed-line warning escapes what it quotes.

mod render;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use line_audit::timefmt::{parse_day, parse_imf_fixdate, parse_rfc3339, start_of_day};
use line_audit::{LogKind, Query, StatusFilter};

use super::CliError;

/// Arguments of `linelogin logs`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  linelogin logs --dir /var/log/linelogin search --kind api --status 4xx --since 2h
  linelogin logs --dir /mnt/a/logs --dir /mnt/b/logs trace STATE
  linelogin logs search --request-id 8d48c8577e739b9c --json
  linelogin logs trace n5B9b9FR2BWjloDzEskZMmGysITRTYpjLkM6oD5qfmA
  linelogin logs prune --retention-days 90 --dry-run")]
pub struct LogsArgs {
    /// The log directory (`logs.dir` of the server configuration). Repeat it to read the
    /// logs of several instances together, merged by time.
    #[arg(long, value_name = "DIR", default_value = "logs", global = true)]
    pub dir: Vec<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: LogsCommand,
}

/// The `logs` subcommands.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Find records by kind, time, request id, status, endpoint or text.
    Search(SearchArgs),
    /// Show one login (authorization request, callback, API calls) in time order.
    Trace(TraceArgs),
    /// Delete rotated log files older than the retention period.
    Prune(PruneArgs),
}

/// Arguments of `linelogin logs search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Only this log: authorize (authorization-request), callback (authorization-response) or
    /// api (api-request). Repeat for several.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Vec<LogKind>,

    /// Records at or after this time: RFC 3339 (`2021-07-16T10:20:00Z`), IMF-fixdate, a UTC
    /// day (`2021-07-16`), or an age (`90s`, `30m`, `2h`, `7d` ago).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub since: Option<SystemTime>,

    /// Records before this time (same forms as `--since`).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub until: Option<SystemTime>,

    /// API calls with this x-line-request-id.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,

    /// API calls by status: a code (`400`), a class (`4xx`), `none`, `failed`, or an outcome
    /// (`success`, `http_error`, `transport`, `timeout`, `body_too_large`).
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<StatusFilter>,

    /// Records whose endpoint (or URL/path without query) contains this, e.g. `/token`.
    #[arg(long, value_name = "TEXT")]
    pub endpoint: Option<String>,

    /// Records with any value containing this text (case-sensitive).
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,

    /// Show only the most recent N matches.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Also print the (redacted) request and response bodies under each API call.
    #[arg(long)]
    pub bodies: bool,

    /// Print JSON Lines (one record per line, RFC 3339 times) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `linelogin logs trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A state, an authorization code (or its `#xxxxxxxx` hash) or an x-line-request-id.
    #[arg(value_name = "KEY")]
    pub key: String,

    /// How long after a callback API calls count as "nearby" when nothing else links them
    /// (`10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg)]
    pub window: Duration,

    /// Print JSON instead of a timeline.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `linelogin logs prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep rotated files whose day ended at most this many days ago.
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days: u32,

    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_kind(s: &str) -> Result<LogKind, String> {
    LogKind::parse(s)
        .ok_or_else(|| format!("unknown log kind {s:?}: use authorize, callback or api"))
}

fn parse_status(s: &str) -> Result<StatusFilter, String> {
    s.parse::<StatusFilter>().map_err(|e| e.to_string())
}

/// Parses `90s`, `30m`, `2h`, `7d` (or a bare number of seconds).
fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 90s, 30m, 2h, 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("invalid duration {s:?}: use e.g. 90s, 30m, 2h, 7d")),
    };
    Ok(Duration::from_secs(secs))
}

fn parse_time_arg(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Some(day) = parse_day(s) {
        return Ok(start_of_day(day));
    }
    if let Ok(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(t) = parse_imf_fixdate(s) {
        return Ok(t);
    }
    if let Ok(age) = parse_duration_arg(s) {
        return crate::commands::admin::now()
            .checked_sub(age)
            .ok_or_else(|| format!("age {s:?} is too large"));
    }
    Err(format!(
        "invalid time {s:?}: use RFC 3339 (2021-07-16T10:20:00Z), a day (2021-07-16), \
         an IMF-fixdate, or an age (30m, 2h, 7d)"
    ))
}

fn check_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CliError::usage(format!(
            "--dir {}: not a directory",
            dir.display()
        ))),
        Err(e) => Err(CliError::failure(format!(
            "log directory {}: {e}",
            dir.display()
        ))),
    }
}

fn audit_err(err: line_audit::AuditError) -> CliError {
    CliError::failure(err.to_string())
}

/// Runs a logs subcommand.
pub fn run(args: LogsArgs, out: &mut impl Write) -> Result<(), CliError> {
    for dir in &args.dir {
        check_dir(dir)?;
    }
    let dirs: Vec<&Path> = args.dir.iter().map(PathBuf::as_path).collect();
    match args.command {
        LogsCommand::Search(a) => search(&dirs, a, out),
        LogsCommand::Trace(a) => trace(&dirs, a, out),
        LogsCommand::Prune(a) => {
            for dir in dirs {
                prune(dir, &a, out)?;
            }
            Ok(())
        }
    }
}

fn warn_malformed(malformed: &[line_audit::search::MalformedLine]) {
    if let Some(first) = malformed.first() {
        eprintln!(
            "linelogin: warning: skipped {} malformed line(s), first at {}:{}: {}",
            malformed.len(),
            line_audit::escape::escape(&first.file.display().to_string()),
            first.line,
            line_audit::escape::escape(&first.error)
        );
    }
}

/// The directories, for messages (`a, b`).
fn shown(dirs: &[&Path]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(", ")
}

fn search(dirs: &[&Path], a: SearchArgs, out: &mut impl Write) -> Result<(), CliError> {
    if let (Some(since), Some(until)) = (a.since, a.until)
        && since >= until
    {
        return Err(CliError::usage("--since must be before --until"));
    }
    let query = Query {
        kinds: a.kind,
        since: a.since,
        until: a.until,
        request_id: a.request_id,
        status: a.status,
        endpoint: a.endpoint,
        text: a.text,
        limit: a.limit,
    };
    let result = line_audit::search_dirs(dirs, &query).map_err(audit_err)?;
    warn_malformed(&result.malformed);
    if a.json {
        for e in &result.entries {
            writeln!(out, "{}", render::json_line(&render::entry_json(e)))?;
        }
    } else {
        render::table(&result.entries, a.bodies, out)?;
    }
    out.flush()?;
    Ok(())
}

fn trace(dirs: &[&Path], a: TraceArgs, out: &mut impl Write) -> Result<(), CliError> {
    let key = a.key.trim();
    if key.is_empty() {
        return Err(CliError::usage("the trace key is empty"));
    }
    let t = line_audit::trace_dirs(dirs, key, a.window).map_err(audit_err)?;
    if t.events.is_empty() {
        return Err(CliError::failure(format!(
            "nothing in {} matches {key:?} (a state, an authorization code or its #hash, or an x-line-request-id)",
            shown(dirs)
        )));
    }
    if t.malformed_lines > 0 {
        eprintln!(
            "linelogin: warning: skipped {} malformed line(s) in {}",
            t.malformed_lines,
            shown(dirs)
        );
    }
    if a.json {
        writeln!(out, "{}", render::json_line(&render::trace_json(&t)))?;
    } else {
        render::timeline(&t, out)?;
    }
    out.flush()?;
    Ok(())
}

fn prune(dir: &Path, a: &PruneArgs, out: &mut impl Write) -> Result<(), CliError> {
    let report = line_audit::prune_dir(
        dir,
        a.retention_days,
        crate::commands::admin::now(),
        a.dry_run,
    )
    .map_err(audit_err)?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for path in &report.removed {
        writeln!(out, "{verb} {}", path.display())?;
    }
    writeln!(
        out,
        "{verb} {} file(s) older than {} day(s); kept {}",
        report.removed.len(),
        a.retention_days,
        report.kept
    )?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration_arg("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration_arg("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration_arg("7d"),
            Ok(Duration::from_secs(7 * 86_400))
        );
        assert!(parse_duration_arg("7w").is_err());
        assert!(parse_duration_arg("").is_err());
        let day = parse_time_arg("2021-07-16").unwrap();
        assert_eq!(parse_time_arg("2021-07-16T00:00:00Z").unwrap(), day);
        assert_eq!(
            parse_time_arg("Fri, 16 Jul 2021 00:00:00 GMT").unwrap(),
            day
        );
        assert!(parse_time_arg("30m").unwrap() < crate::commands::admin::now());
        assert!(parse_time_arg("yesterday").is_err());
    }
}
