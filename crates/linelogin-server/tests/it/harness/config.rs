//! The test server's configuration, in code: [`config`] builds it with the typed
//! constructors (the server on 127.0.0.1, LINE at the fake or the emulator, a generous
//! outbound rate, a fast worker), and a test changes fields with [`Opts::config`] or
//! [`config_with`]. A new setting is one new field of `Config`, usable here at once; no test
//! spells a `LINELOGIN_*` variable (only the child-process tests, whose interface it is:
//! see [`super::remote`]).

use std::path::PathBuf;
use std::time::Duration;

use line_login::clock::MockClock;
use line_login::secret::ChannelSecret;
use linelogin_server::config::{Config, DatabaseUrl, EncryptionKey, GatewayConfig, LineConfig};
use linelogin_server::store::Timeouts;
use url::Url;

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET};

pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A change to the test server's configuration, applied after the harness's own settings.
pub type Tweak = Box<dyn FnOnce(&mut Config) + Send>;

pub struct Opts {
    pub worker: bool,
    pub db: Option<PathBuf>,
    pub clock: Option<MockClock>,
    /// Changes to the configuration, in order (see [`Opts::config`]).
    pub tweaks: Vec<Tweak>,
    /// Use this LINE base URL (e.g. an emulator) instead of the fake's.
    pub line_url: Option<String>,
    /// Serve on this already bound listener.
    pub listener: Option<tokio::net::TcpListener>,
    /// Write the guideline logs (into the test's directory).
    pub guideline_logs: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            worker: true,
            db: None,
            clock: None,
            tweaks: Vec::new(),
            line_url: None,
            listener: None,
            guideline_logs: false,
        }
    }
}

impl Opts {
    /// Changes the configuration in code: `Opts::default().config(|c| c.outbound.burst = 5)`.
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// The server keeps its SQLite database at `db` (e.g. one kept from an earlier start).
    pub fn db(mut self, db: PathBuf) -> Self {
        self.db = Some(db);
        self
    }

    /// The server runs on `clock`.
    pub fn clock(mut self, clock: &MockClock) -> Self {
        self.clock = Some(clock.clone());
        self
    }

    /// The server runs as the gateway with this `[gateway]` section.
    pub fn gateway(self, gateway: GatewayConfig) -> Self {
        self.config(move |c| c.gateway = Some(gateway))
    }
}

/// Sessions that outlive LINE's 30-day access token: 60 days, idle or not.
pub fn sixty_day_sessions(c: &mut Config) {
    c.session.ttl_seconds = 60 * 86400;
    c.session.idle_seconds = 60 * 86400;
}

/// 1-s bounds on every wait for the database (`[database]`), and no worker: a down or
/// locked database must answer within them.
pub fn one_second_database(c: &mut Config) {
    c.database.acquire_timeout_ms = 1000;
    c.database.statement_timeout_ms = 1000;
    c.deauth.worker = false;
}

/// The store's side of [`one_second_database`], for a store the test builds itself.
pub fn one_second_timeouts() -> Timeouts {
    Timeouts {
        acquire: Duration::from_secs(1),
        statement: Duration::from_secs(1),
    }
}

/// `{process id}_{random hex}`: for names (schemas, roles, databases) no other test run uses.
pub fn unique_suffix() -> String {
    format!("{}_{:08x}", std::process::id(), rand::random::<u32>())
}

/// A mock clock at the current time (whole seconds).
pub fn clock_now() -> MockClock {
    MockClock::at_unix(unix_now())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The test server's configuration: the server at `public_url`, LINE (fake or emulator) at
/// `line_url`, SQLite at `db`, with a generous outbound rate and a fast deauthorization worker.
pub fn config(public_url: &str, line_url: &str, db: &std::path::Path) -> Config {
    let line_url = Url::parse(line_url).unwrap();
    let mut line = LineConfig::new(CHANNEL_ID, ChannelSecret::new(CHANNEL_SECRET));
    line.auth_url = line_url.clone();
    line.api_url = line_url;
    let mut c = Config::new(
        Url::parse(public_url).unwrap(),
        EncryptionKey::from_base64(KEY).unwrap(),
        line,
    );
    c.database_url = DatabaseUrl::new(format!("sqlite://{}", db.display()));
    c.outbound.rate_limit_per_second = 1000;
    c.outbound.burst = 1000;
    c.deauth.backoff_base_ms = 20;
    c.deauth.backoff_max_ms = 200;
    c.deauth.poll_ms = 20;
    c
}

/// [`config`] with changes, checked the way `Config::load` checks a file.
pub fn config_with(
    public_url: &str,
    line_url: &str,
    db: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> Config {
    let mut c = config(public_url, line_url, db);
    tweak(&mut c);
    c.validate(None).unwrap();
    c
}
