//! `linelogin demo`: the LINE Platform emulator and the login server in one process, with zero
//! configuration. The SQLite database, the token encryption key (generated once) and the
//! guideline logs live under `--data-dir` (default `./linelogin-demo/`).

use line_emulator::Emulator;
use linelogin_server::config::{Config, EncryptionKey};
use linelogin_server::serve::StartOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::CliError;

/// Arguments of `linelogin demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its SQLite database, token key and guideline logs.
    #[arg(long, value_name = "DIR", default_value = "linelogin-demo")]
    pub data_dir: PathBuf,
    /// Address of the login server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the LINE Platform emulator.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub emulator_listen: SocketAddr,
    /// Skip the emulator's consent page (test users taken in turn), e.g. for `linelogin loadtest`.
    #[arg(long)]
    pub auto_consent: bool,
    /// Outbound calls per second from the server to its (local) emulator.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub rate_limit: u32,
    /// Give the emulator N generated test users instead of the default few (a load test that
    /// unregisters needs at least one a virtual user).
    #[arg(long = "test-users", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub test_users: Option<u32>,
}

/// Reads the demo's token key, or creates it (mode 0600) on first use.
fn token_key(dir: &Path) -> Result<EncryptionKey, CliError> {
    let path = dir.join("token-key");
    match std::fs::read_to_string(&path) {
        Ok(text) => EncryptionKey::from_base64(&text)
            .map_err(|e| CliError::failure(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = EncryptionKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&path)
                .map_err(|e| CliError::failure(format!("cannot create {}: {e}", path.display())))?;
            writeln!(f, "{}", key.to_base64())?;
            Ok(key)
        }
        Err(e) => Err(CliError::failure(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Runs the demo until Ctrl-C.
pub fn run(args: DemoArgs, out: &mut impl Write) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        CliError::failure(format!("cannot create {}: {e}", args.data_dir.display()))
    })?;
    let key = token_key(&args.data_dir)?;
    super::serve::init_tracing();
    let rt = super::serve::runtime()?;
    rt.block_on(async {
        let server_listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                CliError::failure(format!(
                    "cannot listen on {}: {e} (choose another with --listen)",
                    args.listen
                ))
            })?;
        let emulator_listener = tokio::net::TcpListener::bind(args.emulator_listen)
            .await
            .map_err(|e| {
                CliError::failure(format!(
                    "cannot listen on {}: {e} (choose another with --emulator-listen)",
                    args.emulator_listen
                ))
            })?;
        if let Ok(addr) = emulator_listener.local_addr() {
            super::emulator::warn_if_exposed(addr);
        }
        let server_addr = server_listener.local_addr()?;
        let public_url = format!("http://{server_addr}");

        let mut emu_config = line_emulator::Config::default_demo();
        emu_config.listen = args.emulator_listen.to_string();
        if let Some(n) = args.test_users {
            emu_config.users = line_emulator::config::generated_users(n as usize);
        }
        emu_config.auto_consent = args.auto_consent;
        let channel = emu_config
            .channels
            .first_mut()
            .ok_or_else(|| CliError::failure("the emulator has no demo channel"))?;
        channel.callback_urls = vec![format!("{public_url}/callback")];
        let (channel_id, channel_secret) = (channel.id.clone(), channel.secret.clone());
        let emulator = Emulator::new(emu_config).map_err(|e| CliError::failure(e.to_string()))?;
        let running_emulator = emulator
            .serve(emulator_listener)
            .await
            .map_err(|e| CliError::failure(format!("cannot start the emulator: {e}")))?;
        let emulator_url = running_emulator.base_url().trim_end_matches('/').to_owned();

        let data = args.data_dir.display().to_string();
        let env = [
            ("LINELOGIN_LISTEN", server_addr.to_string()),
            ("LINELOGIN_PUBLIC_URL", public_url.clone()),
            (
                "LINELOGIN_DATABASE_URL",
                format!("sqlite://{data}/linelogin.db"),
            ),
            ("LINELOGIN_TOKEN_ENCRYPTION_KEY", key.to_base64()),
            ("LINELOGIN_LINE__CHANNEL_ID", channel_id),
            ("LINELOGIN_LINE__CHANNEL_SECRET", channel_secret),
            ("LINELOGIN_LINE__AUTH_URL", emulator_url.clone()),
            ("LINELOGIN_LINE__API_URL", emulator_url.clone()),
            ("LINELOGIN_LOGS__DIR", format!("{data}/logs")),
            (
                "LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND",
                args.rate_limit.to_string(),
            ),
            ("LINELOGIN_OUTBOUND__BURST", args.rate_limit.to_string()),
            // The demo is a sandbox that load tests aim at, from this host or another one
            // (`loadtest --allow-remote-target`): no per-client limit on /login and /callback.
            ("LINELOGIN_INBOUND__PER_CLIENT_PER_SECOND", "0".to_owned()),
        ];
        let config = Config::load(None, env.into_iter().map(|(k, v)| (k.to_owned(), v)))
            .map_err(|e| CliError::failure(e.to_string()))?;
        let server = linelogin_server::serve::start(
            &config,
            StartOptions {
                listener: Some(server_listener),
                ..StartOptions::default()
            },
        )
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;

        writeln!(out, "linelogin demo")?;
        writeln!(
            out,
            "  Login server:  {public_url}/   <- open this in your browser"
        )?;
        writeln!(
            out,
            "  LINE emulator: {emulator_url}/   (consent page, admin API under /_emulator/)"
        )?;
        writeln!(out, "  Test users:")?;
        for (id, name) in emulator.users() {
            writeln!(out, "    {name}  {id}")?;
        }
        writeln!(
            out,
            "  Data:          {data}/ (SQLite database, token key, guideline logs)"
        )?;
        writeln!(out, "Press Ctrl-C to stop.")?;
        out.flush()?;
        linelogin_server::serve::shutdown_signal().await;
        server.stop().await;
        let _ = running_emulator.shutdown().await;
        Ok(())
    })
}
