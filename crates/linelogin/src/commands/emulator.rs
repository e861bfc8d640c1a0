//! `linelogin emulator`: the local LINE Platform emulator (the test environment LINE's
//! development guidelines ask for, instead of sending test or load traffic to LINE).

use std::io::Write;
use std::path::PathBuf;

use line_emulator::{ChannelConfig, Config, ConfiguredUrl, Emulator, UserConfig};

use super::CliError;

/// Arguments of `linelogin emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on [default: 127.0.0.1:9000, or `listen` from the configuration].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A TOML configuration file (channels, test users, switches).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Skip the consent page: authorize answers at once, test users taken in turn (for load tests).
    #[arg(long)]
    pub auto_consent: bool,
    /// Emit callback error codes in lowercase instead of LINE's documented UPPER_CASE.
    #[arg(long)]
    pub lowercase_errors: bool,
    /// The externally visible base URL (default: derived from the bound address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// A channel, instead of the configured ones (repeatable):
    /// `ID,SECRET,CALLBACK_URL[,CALLBACK_URL…]`.
    #[arg(long = "channel", value_name = "ID,SECRET,CALLBACK")]
    pub channels: Vec<String>,
    /// A test user, instead of the configured ones (repeatable): `USER_ID[,DISPLAY NAME]`.
    #[arg(long = "user", value_name = "ID[,NAME]", conflicts_with = "test_users")]
    pub users: Vec<String>,
    /// This many generated test users instead of the configured ones (stable IDs; e.g. at
    /// least as many as a load test's virtual users, so that unregistering users do not end
    /// each other's sessions).
    #[arg(long = "test-users", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub test_users: Option<u32>,
    /// Worker threads (default: half the CPUs, at least one). The emulator usually shares the
    /// machine with the app under test and the load generator; on 2 cores one thread used
    /// about 15% less CPU per login flow than two (fewer cross-thread wake-ups).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// Half the CPUs, at least one.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn channel_flag(value: &str) -> Result<ChannelConfig, CliError> {
    let mut parts = value.split(',').map(str::trim);
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err(CliError::usage(format!(
            "--channel {value:?} must be ID,SECRET,CALLBACK_URL[,CALLBACK_URL...]"
        )));
    };
    let callbacks: Vec<ConfiguredUrl> = parts
        .filter(|p| !p.is_empty())
        .map(|p| {
            ConfiguredUrl::parse(p).map_err(|e| {
                CliError::usage(format!("--channel {value:?}: {p:?} is not a URL: {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    if callbacks.is_empty() {
        return Err(CliError::usage(format!(
            "--channel {value:?} needs at least one callback URL"
        )));
    }
    Ok(ChannelConfig::new(id, secret, callbacks))
}

fn user_flag(value: &str, n: usize) -> UserConfig {
    match value.split_once(',') {
        Some((id, name)) if !name.trim().is_empty() => UserConfig::new(id.trim(), name.trim()),
        Some((id, _)) => UserConfig::new(id.trim(), format!("Test User {n}")),
        None => UserConfig::new(value.trim(), format!("Test User {n}")),
    }
}

/// Builds the effective configuration from the file and the flags.
pub fn effective_config(args: &EmulatorArgs) -> Result<Config, CliError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| CliError::failure(e.to_string()))?,
        None => Config::default_demo(),
    };
    if let Some(listen) = &args.listen {
        config.listen = linelogin_server::config::parse_listen(listen)
            .map_err(|e| CliError::usage(format!("--listen: {e}")))?;
    }
    if let Some(url) = &args.public_url {
        config.public_url = Some(
            ConfiguredUrl::parse(url.as_str())
                .map_err(|e| CliError::usage(format!("--public-url {url:?} is not a URL: {e}")))?,
        );
    }
    if args.auto_consent {
        config.auto_consent = true;
    }
    if args.lowercase_errors {
        config.lowercase_errors = true;
    }
    if !args.channels.is_empty() {
        config.channels = args
            .channels
            .iter()
            .map(|c| channel_flag(c))
            .collect::<Result<_, _>>()?;
    }
    if !args.users.is_empty() {
        config.users = args
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| user_flag(u, i + 1))
            .collect();
    }
    if let Some(n) = args.test_users {
        config.users = line_emulator::config::generated_users(n as usize);
    }
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(config)
}

/// Warns on stderr when the emulator listens beyond loopback: its admin API has no
/// authentication, so anyone who reaches it can read its users and secrets, reset it, shift its
/// clock and inject faults.
pub(crate) fn warn_if_exposed(addr: std::net::SocketAddr) {
    if let Some(warning) = exposure_warning(addr) {
        eprintln!("linelogin: warning: {warning}");
    }
}

fn exposure_warning(addr: std::net::SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "the emulator listens on {addr}, which is not a loopback address. Its admin API \
             (/_emulator/) has no authentication: anyone who can reach it can read its channel \
             secrets, reset it, shift its clock and inject faults. Listen on 127.0.0.1 unless \
             this is an isolated test network."
        )
    })
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub fn run(args: EmulatorArgs, out: &mut impl Write) -> Result<(), CliError> {
    let config = effective_config(&args)?;
    let emulator = Emulator::new(config).map_err(|e| CliError::failure(e.to_string()))?;
    let threads = args.threads.map_or_else(default_threads, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let listen = emulator.config().listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::failure(format!("cannot listen on {listen}: {e}")))?;
        if let Ok(addr) = listener.local_addr() {
            warn_if_exposed(addr);
        }
        let running = emulator
            .serve(listener)
            .await
            .map_err(|e| CliError::failure(format!("cannot serve on {listen}: {e}")))?;
        // Listen for the signals before saying how to send one.
        let stop = linelogin_server::serve::shutdown_signal();
        out.write_all(emulator.summary(running.base_url()).as_bytes())?;
        writeln!(out, "Press Ctrl-C to stop.")?;
        out.flush()?;
        running
            .run_until(stop)
            .await
            .map_err(|e| CliError::failure(format!("the emulator stopped: {e}")))?;
        writeln!(out, "Emulator stopped.")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn args() -> EmulatorArgs {
        EmulatorArgs {
            listen: None,
            config: None,
            auto_consent: false,
            lowercase_errors: false,
            public_url: None,
            channels: Vec::new(),
            users: Vec::new(),
            test_users: None,
            threads: None,
        }
    }

    #[test]
    fn binding_beyond_loopback_warns() {
        for quiet in ["127.0.0.1:9000", "[::1]:9000", "127.0.0.2:1"] {
            assert_eq!(exposure_warning(quiet.parse().unwrap()), None, "{quiet}");
        }
        for loud in ["0.0.0.0:9000", "10.0.0.5:9000", "[::]:9000"] {
            let w = exposure_warning(loud.parse().unwrap()).unwrap();
            assert!(w.contains("no authentication") && w.contains(loud), "{w}");
        }
    }

    #[test]
    fn generated_test_users_replace_the_configured_ones() {
        let mut a = args();
        a.test_users = Some(64);
        let c = effective_config(&a).unwrap();
        assert_eq!(c.users.len(), 64);
        let ids: std::collections::HashSet<_> = c.users.iter().map(|u| u.id.clone()).collect();
        assert_eq!(ids.len(), 64, "distinct user IDs");
    }

    #[test]
    fn channels_and_users_from_flags() {
        let mut a = args();
        a.channels = vec![
            "1111111111,abcdefabcdefabcdefabcdefabcdefab,http://127.0.0.1:3000/cb,http://localhost:3000/cb".into(),
        ];
        a.users = vec![
            "U00000000000000000000000000000001,Alice".into(),
            "U00000000000000000000000000000002".into(),
        ];
        let c = effective_config(&a).unwrap();
        assert_eq!(c.channels.len(), 1);
        assert_eq!(c.channels[0].id, "1111111111");
        assert_eq!(c.channels[0].callback_urls.len(), 2);
        assert_eq!(c.users[0].display_name, "Alice");
        assert_eq!(c.users[1].display_name, "Test User 2");

        let mut bad = args();
        bad.channels = vec!["1111111111,secret".into()];
        assert_eq!(effective_config(&bad).unwrap_err().exit_code(), 2);
        let mut bad = args();
        bad.users = vec!["nope,Bob".into()];
        let e = effective_config(&bad).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("user id"), "{e}");
    }

    #[test]
    fn flags_override_the_default() {
        let mut a = args();
        a.listen = Some("127.0.0.1:0".into());
        a.auto_consent = true;
        let c = effective_config(&a).unwrap();
        assert_eq!(c.listen, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        assert!(c.auto_consent);
        assert_eq!(c.channels[0].id, "1234567890");
    }

    #[test]
    fn bad_listen_is_usage_error() {
        let mut a = args();
        a.listen = Some("nowhere".into());
        assert_eq!(effective_config(&a).unwrap_err().exit_code(), 2);
        a.listen = Some("localhost:9001".into());
        assert_eq!(effective_config(&a).unwrap().listen.port(), 9001);
        let mut a = args();
        a.public_url = Some("emulator.test".into());
        assert_eq!(effective_config(&a).unwrap_err().exit_code(), 2);
        let mut a = args();
        a.channels = vec!["1111111111,secret,/callback".into()];
        let e = effective_config(&a).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("\"/callback\" is not a URL"), "{e}");
    }

    #[test]
    fn missing_config_file_is_failure() {
        let mut a = args();
        a.config = Some("/nonexistent/emulator.toml".into());
        let e = effective_config(&a).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
