//! `linelogin serve --config FILE`: the login server.

use std::io::Write;
use std::path::PathBuf;

use linelogin_server::config::Config;
use linelogin_server::serve::StartOptions;

use super::CliError;

/// Arguments of `linelogin serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML). Every key can also come from `LINELOGIN_*` variables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs the server until Ctrl-C / SIGTERM.
pub fn run(args: ServeArgs, out: &mut impl Write) -> Result<(), CliError> {
    // Every problem of an unusable configuration, on one line; it is bad usage (exit 2), the
    // load-test guard's refusal included (it exited 1 before issue 15).
    let config = Config::load(args.config.as_deref(), std::env::vars())
        .map_err(|e| CliError::usage(e.to_string().replace('\n', "; ")))?;
    init_tracing();
    let rt = runtime()?;
    rt.block_on(async {
        let server = start(&config).await?;
        let stop = linelogin_server::serve::shutdown_signal();
        writeln!(
            out,
            "linelogin server listening on http://{} (public URL {})",
            server.addr, config.public_url
        )?;
        writeln!(out, "guideline logs in {}", config.logs.dir.display())?;
        if let Some(addr) = server.metrics_addr() {
            writeln!(out, "metrics on http://{addr}/metrics")?;
        }
        out.flush()?;
        stop.await;
        server.stop().await;
        Ok(())
    })
}

/// Starts the server through the one composition root ([`linelogin_server::serve::start`]):
/// guideline logs and their retention, the store, the listener, the worker, the purge. The
/// environment's `LINELOGIN_FAILPOINT` arms a crash-test failpoint, which only a build with the
/// server's `failpoints` feature has (this binary's tests); elsewhere it is refused.
pub(crate) async fn start(
    config: &Config,
) -> Result<linelogin_server::serve::RunningServer, CliError> {
    let failpoint = std::env::var("LINELOGIN_FAILPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    linelogin_server::serve::start(
        config,
        StartOptions {
            failpoint,
            ..StartOptions::default()
        },
    )
    .await
    .map_err(|e| CliError::failure(e.to_string()))
}

/// A multi-threaded Tokio runtime.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

/// Logs to stderr, filtered by `LINELOGIN_LOG` (env-filter syntax, default `info`); one JSON
/// object per line when `LINELOGIN_LOG_FORMAT=json`, else plain text (see
/// docs/operations.md, "Logs").
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LINELOGIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("LINELOGIN_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        // Colours only on a terminal: redirected logs stay plain text.
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
