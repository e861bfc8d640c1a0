//! `linelogin loadtest`: full login flows against a relying party on the emulator.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use line_loadtest::{self as loadtest, Bound, Finish, LoadTest, LoadTestError, Mode, chart};
use url::Url;

use super::CliError;

/// Arguments of `linelogin loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {
    /// The relying party's base URL (must be a loopback address).
    #[arg(long)]
    pub target: Url,
    /// The path that starts a login.
    #[arg(long, default_value = "/login")]
    pub start_path: String,
    /// Number of flows to run (default 1000 when no --duration is given).
    #[arg(long, conflicts_with = "duration")]
    pub flows: Option<u64>,
    /// Run for this many seconds instead of a flow count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Virtual users (closed loop), or the in-flight cap with --rate.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Open loop: start this many flows per second, whatever the latency.
    #[arg(long)]
    pub rate: Option<f64>,
    /// What each flow does after /api/me.
    #[arg(long, value_enum, default_value_t = Finish::None)]
    pub finish: Finish,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG latency and throughput chart to this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Don't draw the live progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the load test and prints the report.
pub fn run(args: LoadtestArgs, out: &mut impl Write) -> Result<(), CliError> {
    let bound = match (args.flows, args.duration) {
        (Some(n), _) => Bound::Flows(n),
        (None, Some(d)) if d.is_finite() && d > 0.0 => Bound::Duration(Duration::from_secs_f64(d)),
        (None, Some(_)) => {
            return Err(CliError::usage(
                "--duration must be a positive number of seconds",
            ));
        }
        (None, None) => Bound::Flows(1000),
    };
    let test = LoadTest {
        target: args.target,
        start_path: args.start_path,
        bound,
        concurrency: args.concurrency,
        mode: args.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
        finish: args.finish,
        request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        progress: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the runtime: {e}")))?;
    let (report, guard) = runtime
        .block_on(loadtest::run(&test))
        .map_err(|e| match e {
            LoadTestError::Usage(m) => CliError::usage(m),
            other => CliError::failure(other.to_string()),
        })?;
    writeln!(
        out,
        "emulator    {}",
        guard.emulator.as_str().trim_end_matches('/')
    )?;
    out.write_all(report.to_table().as_bytes())?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::failure(format!("cannot encode the report: {e}")))?;
        std::fs::write(path, json + "\n")
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::svg(&report))
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    if report.ok == 0 {
        return Err(CliError::failure(format!(
            "no flow succeeded ({} failed)",
            report.failed
        )));
    }
    Ok(())
}
