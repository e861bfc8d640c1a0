//! `linelogin-server [CONFIG.toml]`: the login server alone (the `linelogin serve` command
//! does the same with the rest of the CLI). Configuration also comes from `LINELOGIN_*`.

use std::process::ExitCode;
use std::sync::Arc;

use linelogin_server::AppState;
use linelogin_server::audit::GuidelineLogs;
use linelogin_server::config::Config;

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
    let logs = GuidelineLogs::open(&config.logs)?;
    let state = AppState::builder(&config)
        .audit(Arc::new(logs))
        .build()
        .await?;
    let server = linelogin_server::serve::start(state, config.listen).await?;
    println!("listening on http://{}", server.addr);
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
    Ok(())
}
