//! What the operator commands (`outbox`, `accounts`, `keys rotate`) share: the `--config`
//! flag, opening the existing store, the clock, and printing times and tables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linelogin_server::config::Config;
use linelogin_server::store::{AdminStore, Timeouts, connect_admin};

use super::CliError;

/// The `--config FILE` flag of an operator command.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The server's configuration file (TOML); `LINELOGIN_*` variables apply as for `serve`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// Loads the configuration: exit status 2 when the flag is missing or the configuration
    /// is unusable.
    pub fn load(&self) -> Result<Config, CliError> {
        let Some(path) = self.config.as_deref() else {
            return Err(CliError::usage(
                "no --config given: pass the server's configuration file (--config FILE)",
            ));
        };
        Config::load(Some(path), std::env::vars()).map_err(|e| CliError::usage(e.to_string()))
    }
}

/// Opens the configured store (never creating one) and runs `f` on it, on a runtime.
pub fn with_store<T>(
    config: &Config,
    f: impl AsyncFnOnce(Arc<dyn AdminStore>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let rt = super::serve::runtime()?;
    rt.block_on(async {
        let store = connect_admin(
            &config.database_url,
            Timeouts::from_config(&config.database),
        )
        .await
        .map_err(|e| CliError::failure(format!("database: {e}")))?;
        f(store).await
    })
}

/// A store error as a failure line.
pub fn store_failure(e: linelogin_server::store::StoreError) -> CliError {
    CliError::failure(format!("database: {e}"))
}

/// Now, on the system clock: the commands are the binary's edge, where the workspace's one
/// clock ([`line_login::clock`]) is the real one.
pub fn now() -> SystemTime {
    line_login::clock::Clock::now(&line_login::clock::SystemClock::new())
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A Unix-millisecond time as RFC 3339 UTC, to the second.
pub fn time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// An optional time, `-` when absent.
pub fn opt_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), time)
}

/// Writes rows as left-aligned columns under a header (two spaces between columns).
pub fn table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), CliError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(cell);
            if i < last {
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Writes a value as pretty JSON.
pub fn json(out: &mut impl std::io::Write, value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("cannot write JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}
