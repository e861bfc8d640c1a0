//! `linelogin loadtest`: full login flows against a relying party on the emulator.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use line_loadtest::{self as loadtest, Bound, Finish, LoadTest, LoadTestError, Mode, chart};
use url::Url;

use super::CliError;

/// Arguments of `linelogin loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {
    /// The relying party's base URL (a loopback address, unless --allow-remote-target).
    #[arg(long)]
    pub target: Url,
    /// Allow a target that is not on a loopback address: a staging relying party whose LINE is
    /// an emulator. The login must still redirect to an emulator (it must answer the emulator's
    /// admin API), never to a LINE host, and every request stays on the target's, the
    /// emulator's and the callback's origins.
    #[arg(long)]
    pub allow_remote_target: bool,
    /// The path that starts a login.
    #[arg(long, default_value = "/login")]
    pub start_path: String,
    /// Number of flows to run (default 1000 when no --duration is given).
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub flows: Option<u64>,
    /// Run for this long instead of a flow count: seconds (`90`), or with a unit (`90s`, `2m`,
    /// `1m30s`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
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
    /// Exit 1 when the share of failed flows is above this (0 to 1; default 0: any failure).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub max_failure_rate: f64,
}

/// `--duration`: plain seconds (`90`, `1.5`) or a duration with units (`90s`, `2m`, `1m30s`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => return Err("must be a positive number of seconds".into()),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{e} (examples: 90, 90s, 2m, 1m30s)"))?,
    };
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A share from 0 to 1.
fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("must be a number from 0 to 1 (0.01 is 1%)".into()),
    }
}

/// An output file, created before the run so that a bad path fails at once rather than after
/// the whole load. Removed again if the run does not produce a report.
struct Output {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Output {
    fn create(path: &Path, flag: &str) -> Result<Self, CliError> {
        let file = std::fs::File::create(path)
            .map_err(|e| CliError::usage(format!("cannot write {flag} {}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    fn write(mut self, bytes: &[u8]) -> Result<(), CliError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| CliError::failure("output written twice"))?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", self.path.display())))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Still open: the run ended without a report; leave no empty file behind.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Runs the load test and prints the report.
pub fn run(args: LoadtestArgs, out: &mut impl Write) -> Result<(), CliError> {
    let bound = match (args.flows, args.duration) {
        (Some(n), _) => Bound::Flows(n),
        (None, Some(d)) => Bound::Duration(d),
        (None, None) => Bound::Flows(1000),
    };
    let json = args
        .json
        .as_deref()
        .map(|p| Output::create(p, "--json"))
        .transpose()?;
    let chart_file = args
        .chart
        .as_deref()
        .map(|p| Output::create(p, "--chart"))
        .transpose()?;
    let test = LoadTest {
        target: args.target,
        start_path: args.start_path,
        bound,
        concurrency: args.concurrency,
        mode: args.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
        finish: args.finish,
        request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
        progress: !args.quiet,
        allow_remote_target: args.allow_remote_target,
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
    if let Some(out) = json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::failure(format!("cannot encode the report: {e}")))?;
        out.write((json + "\n").as_bytes())?;
    }
    if let Some(out) = chart_file {
        let svg = chart::svg(&report).map_err(|e| CliError::failure(e.to_string()))?;
        out.write(svg.as_bytes())?;
    }
    let flows = report.ok + report.failed;
    let share = if flows == 0 {
        0.0
    } else {
        report.failed as f64 / flows as f64
    };
    if report.ok == 0 {
        return Err(CliError::failure(format!(
            "no flow succeeded ({} failed)",
            report.failed
        )));
    }
    if share > args.max_failure_rate {
        return Err(CliError::failure(format!(
            "{} of {flows} flows failed ({:.2}%), above --max-failure-rate {}",
            report.failed,
            share * 100.0,
            args.max_failure_rate
        )));
    }
    Ok(())
}
