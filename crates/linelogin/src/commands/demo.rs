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

/// What the demo's configuration file holds beyond the defaults.
struct DemoConfig<'a> {
    listen: SocketAddr,
    public_url: &'a str,
    data: &'a str,
    key: &'a EncryptionKey,
    channel_id: &'a str,
    channel_secret: &'a str,
    emulator_url: &'a str,
    rate_limit: u32,
}

/// The demo's `server.toml`: built as a [`Config`] from its required parts, then written out
/// as TOML (the toml crate quotes every value) with a header saying it holds secrets.
fn demo_config_toml(d: &DemoConfig<'_>) -> Result<String, CliError> {
    use linelogin_server::config::LineConfig;
    let url =
        |s: &str| url::Url::parse(s).map_err(|e| CliError::failure(format!("demo URL {s}: {e}")));
    let mut line = LineConfig::new(
        d.channel_id,
        line_login::secret::ChannelSecret::new(d.channel_secret),
    );
    line.auth_url = url(d.emulator_url)?;
    line.api_url = url(d.emulator_url)?;
    let mut c = Config::new(url(d.public_url)?, d.key.clone(), line);
    c.listen = d.listen;
    c.database_url =
        linelogin_server::config::DatabaseUrl::new(format!("sqlite://{}/linelogin.db", d.data));
    c.logs.dir = PathBuf::from(format!("{}/logs", d.data));
    c.outbound.rate_limit_per_second = d.rate_limit;
    c.outbound.burst = d.rate_limit;
    // The demo is a sandbox that load tests aim at, from this host or another one
    // (`loadtest --allow-remote-target`): no per-client limit on /login and /callback.
    c.inbound.per_client_per_second = 0;

    let mut line_table = toml::Table::new();
    line_table.insert("channel_id".into(), c.line.channel_id.clone().into());
    line_table.insert(
        "channel_secret".into(),
        c.line.channel_secret.secret().to_owned().into(),
    );
    line_table.insert("auth_url".into(), c.line.auth_url.as_str().into());
    line_table.insert("api_url".into(), c.line.api_url.as_str().into());
    let mut outbound = toml::Table::new();
    outbound.insert(
        "rate_limit_per_second".into(),
        i64::from(c.outbound.rate_limit_per_second).into(),
    );
    outbound.insert("burst".into(), i64::from(c.outbound.burst).into());
    let mut inbound = toml::Table::new();
    inbound.insert(
        "per_client_per_second".into(),
        i64::from(c.inbound.per_client_per_second).into(),
    );
    let mut logs = toml::Table::new();
    logs.insert("dir".into(), c.logs.dir.display().to_string().into());
    let mut root = toml::Table::new();
    root.insert("listen".into(), c.listen.to_string().into());
    root.insert("public_url".into(), c.public_url.as_str().into());
    root.insert("database_url".into(), c.database_url.expose().into());
    root.insert(
        "token_encryption_key".into(),
        c.token_encryption_key.to_base64().into(),
    );
    root.insert("line".into(), line_table.into());
    root.insert("outbound".into(), outbound.into());
    root.insert("inbound".into(), inbound.into());
    root.insert("logs".into(), logs.into());
    let body = toml::to_string(&root)
        .map_err(|e| CliError::failure(format!("cannot write the demo's config: {e}")))?;
    Ok(format!(
        "# Written by `linelogin demo`: the configuration the demo runs with, rewritten at\n\
         # each start. It holds SECRETS (the token encryption key and the emulator channel's\n\
         # secret) because this is a local demo against the emulator; never do this with a\n\
         # real channel. Try: linelogin check --config {}/server.toml\n\n{body}",
        d.data
    ))
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
        emu_config.listen = args.emulator_listen;
        if let Some(n) = args.test_users {
            emu_config.users = line_emulator::config::generated_users(n as usize);
        }
        emu_config.auto_consent = args.auto_consent;
        let channel = emu_config
            .channels
            .first_mut()
            .ok_or_else(|| CliError::failure("the emulator has no demo channel"))?;
        let callback = format!("{public_url}/callback");
        channel.callback_urls = vec![
            line_emulator::ConfiguredUrl::parse(callback.as_str())
                .map_err(|e| CliError::failure(format!("demo URL {callback}: {e}")))?,
        ];
        let (channel_id, channel_secret) = (channel.id.clone(), channel.secret.clone());
        let emulator = Emulator::new(emu_config).map_err(|e| CliError::failure(e.to_string()))?;
        let running_emulator = emulator
            .serve(emulator_listener)
            .await
            .map_err(|e| CliError::failure(format!("cannot start the emulator: {e}")))?;
        let emulator_url = running_emulator.base_url().trim_end_matches('/').to_owned();

        let data = args.data_dir.display().to_string();
        let file = args.data_dir.join("server.toml");
        let text = demo_config_toml(&DemoConfig {
            listen: server_addr,
            public_url: &public_url,
            data: &data,
            key: &key,
            channel_id: &channel_id,
            channel_secret: &channel_secret,
            emulator_url: &emulator_url,
            rate_limit: args.rate_limit,
        })?;
        std::fs::write(&file, text)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", file.display())))?;
        // The demo runs with exactly the file it wrote, so `check` and `serve` on it agree.
        let config = Config::load(Some(&file), std::iter::empty())
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
        // Listen for the signals before saying how to send one.
        let stop = linelogin_server::serve::shutdown_signal();
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
        writeln!(
            out,
            "  Config:        {data}/server.toml   (linelogin check --config {data}/server.toml)"
        )?;
        writeln!(
            out,
            "  Logs:          {data}/logs/          (linelogin logs search --dir {data}/logs)"
        )?;
        writeln!(out, "Press Ctrl-C to stop.")?;
        out.flush()?;
        stop.await;
        server.stop().await;
        let _ = running_emulator.shutdown().await;
        Ok(())
    })
}
