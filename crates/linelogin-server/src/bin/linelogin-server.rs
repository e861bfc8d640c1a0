//! A test vehicle, not a product binary: the crash tests run the server as a child process
//! that a failpoint (`LINELOGIN_FAILPOINT`) aborts at a chosen point. It is built only with the
//! `failpoints` feature (`required-features`), which this crate's tests turn on; the product's
//! one server command is `linelogin serve`. Both go through the same composition root,
//! [`linelogin_server::serve::start`].
//!
//! Usage: `linelogin-server [CONFIG.toml]`; configuration also from `LINELOGIN_*`. Stops on
//! Ctrl-C or SIGTERM.

use std::process::ExitCode;

use linelogin_server::config::Config;
use linelogin_server::serve::StartOptions;

#[tokio::main]
async fn main() -> ExitCode {
    let file = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    match run(file).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linelogin-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(file: Option<std::path::PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(file.as_deref(), std::env::vars())?;
    let failpoint = std::env::var("LINELOGIN_FAILPOINT")
        .ok()
        .filter(|v| !v.is_empty());
    let server = linelogin_server::serve::start(
        &config,
        StartOptions {
            failpoint,
            ..StartOptions::default()
        },
    )
    .await?;
    let stop = linelogin_server::serve::shutdown_signal();
    println!("listening on http://{}", server.addr);
    stop.await;
    server.stop().await;
    Ok(())
}
