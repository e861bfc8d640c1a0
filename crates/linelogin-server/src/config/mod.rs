//! Configuration: defaults, then a TOML file, then `LINELOGIN_*` environment variables
//! (`__` separates nesting: `LINELOGIN_LINE__CHANNEL_SECRET`). Unknown keys are an error.
//! Secrets never appear in `Debug` output; the database URL's `Debug` masks its password.
//!
//! Adding a setting means adding one field: each section's `Default` holds its defaults,
//! serde reads the field, and figment layers the file and the environment (see
//! [`Config::load`]). [`Config::new`] builds one in code from the required parts only.
//! Errors name the key and its place: `server.toml:3:10: listen: …`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use line_login::secret::ChannelSecret;
use serde::{Deserialize, Deserializer};
use url::Url;

mod gateway;
pub use gateway::{ApiKey, GatewayConfig, MetricsConfig, WebhookConfig, WebhookSecret};

/// Environment variables with the `LINELOGIN_` prefix that are not configuration keys.
pub const RESERVED_ENV: &[&str] = &[
    "LINELOGIN_LOAD_TEST",
    "LINELOGIN_FAILPOINT",
    "LINELOGIN_LOG",
    "LINELOGIN_LOG_FORMAT",
];

/// A configuration problem; the message names the key, never a secret value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on: `IP:PORT`, or `localhost:PORT` for 127.0.0.1 (default
    /// `127.0.0.1:8080`).
    #[serde(default = "default_listen", deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// The public origin of the server; the callback is `public_url + "/callback"`.
    pub public_url: Url,
    /// `sqlite://file.db` (default `sqlite://linelogin.db`) or `postgres://…`.
    #[serde(default)]
    pub database_url: DatabaseUrl,
    /// The 32-byte token encryption key, base64 (standard or URL-safe). Required.
    pub token_encryption_key: EncryptionKey,
    /// The LINE Login channel and platform URLs.
    pub line: LineConfig,
    /// Outbound policy towards LINE.
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// Guideline logs.
    #[serde(default)]
    pub logs: LogsConfig,
    /// Sessions.
    #[serde(default)]
    pub session: SessionConfig,
    /// The deauthorization worker.
    #[serde(default)]
    pub deauth: DeauthConfig,
    /// Limits on inbound requests (per-client rate on `/login` and `/callback`, pending
    /// logins).
    #[serde(default)]
    pub inbound: InboundConfig,
    /// The HTTP listener's limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Bounded waits on the database.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// `[pages]`: the page templates and the operator's branding.
    #[serde(default)]
    pub pages: PagesConfig,
    /// Keys that tokens were encrypted with before `token_encryption_key` (base64 each):
    /// still decrypted, never used to encrypt (`linelogin keys rotate` re-encrypts).
    #[serde(default, deserialize_with = "key_list")]
    pub previous_token_encryption_keys: Vec<EncryptionKey>,
    /// `[gateway]`: linelogin in front of another web app (see [`GatewayConfig`]). Absent:
    /// linelogin is the app, at the root.
    #[serde(default)]
    pub gateway: Option<GatewayConfig>,
    /// `[webhook]`: account events to the app, per Standard Webhooks.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// `[metrics]`: the Prometheus listener; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// `[pages]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagesConfig {
    /// A directory whose `*.html` files replace the built-in templates of the same name
    /// (see [`crate::pages`]); unset: the built-in templates only.
    pub templates_dir: Option<PathBuf>,
    /// The name shown in the header and page titles (default `linelogin`).
    pub app_name: Option<String>,
    /// A logo shown before the name in the header (`https://…` or a path on this server).
    pub logo_url: Option<String>,
    /// The colour of ordinary buttons (`#rgb` or `#rrggbb`); the LINE button stays LINE green.
    pub brand_color: Option<String>,
}

/// `[line]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// The LINE Login channel id.
    pub channel_id: String,
    /// The channel secret.
    pub channel_secret: ChannelSecret,
    /// Where the authorization page is (`https://access.line.me`).
    #[serde(default = "default_auth_url")]
    pub auth_url: Url,
    /// Where the API is (`https://api.line.me`).
    #[serde(default = "default_api_url")]
    pub api_url: Url,
    /// The scopes asked for (default `["openid", "profile"]`; `openid` is required; add
    /// `email` to show the verified email on `/me` and in `/api/me`).
    #[serde(default = "default_scopes", deserialize_with = "word_list")]
    pub scopes: Vec<String>,
    /// `bot_prompt` of the authorization request: `normal` or `aggressive` (default: unset).
    #[serde(default)]
    pub bot_prompt: Option<String>,
    /// `prompt` of the authorization request: `consent`, `login` or `none` (default: unset).
    #[serde(default)]
    pub prompt: Option<String>,
    /// `ui_locales` of the authorization request, BCP 47 tags (default: none).
    #[serde(default, deserialize_with = "word_list")]
    pub ui_locales: Vec<String>,
}

/// A list, or one string of words separated by spaces or commas (environment variables).
fn word_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Many(Vec<String>),
        One(String),
    }
    let items = match List::deserialize(d)? {
        List::Many(v) => v,
        List::One(s) => s.split([',', ' ']).map(str::to_owned).collect(),
    };
    Ok(items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `IP:PORT`, or `localhost:PORT` (127.0.0.1, without asking a resolver).
fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen(&s).map_err(serde::de::Error::custom)
}

pub use line_listener::parse_listen;

/// Keys: a TOML array, or one string of keys separated by commas (environment).
fn key_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EncryptionKey>, D::Error> {
    word_list(d)?
        .iter()
        .map(|k| EncryptionKey::from_base64(k).map_err(serde::de::Error::custom))
        .collect()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned(), "profile".to_owned()]
}

/// `[outbound]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Sustained calls per second to LINE.
    pub rate_limit_per_second: u32,
    /// Burst above the sustained rate.
    pub burst: u32,
    /// The longest `Retry-After` from LINE that is honoured, in seconds (default 300, at
    /// least 1). A longer one is clamped to this, with a warning, for the cool-down of every
    /// call to LINE, the breakers and the `Retry-After` shown to browsers.
    pub retry_after_ceiling_seconds: u64,
    /// Redis shared by every instance of the fleet: when set, the rate limit and the `429`
    /// cool-down are one budget for every instance on this Redis and channel. Its password
    /// never prints (`Debug` masks it).
    pub redis_url: Option<RedisUrl>,
    /// Expected instances (default 1, at least 1): with Redis unreachable each instance
    /// falls back to `rate_limit_per_second / instances` (and `burst / instances`).
    pub instances: u32,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 20,
            burst: 20,
            retry_after_ceiling_seconds: 300,
            redis_url: None,
            instances: 1,
        }
    }
}

/// `[logs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Directory of the guideline log files.
    pub dir: PathBuf,
    /// Days to keep rotated files.
    pub retention_days: u32,
    /// Also log (redacted) API request and response bodies.
    pub bodies: bool,
    /// The longest a logged value may be, in bytes (default 2048, at least 64); a longer one
    /// is cut and ends with `…[truncated N bytes]`.
    pub max_value_bytes: usize,
    /// Names this instance of a fleet in its log files and metrics (letters, digits, `-`,
    /// `_`; at most 32). Absent: one instance.
    pub instance: Option<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("logs"),
            retention_days: 90,
            bodies: false,
            max_value_bytes: 2048,
            instance: None,
        }
    }
}

/// `[inbound]`: what one client may ask of the server before it is refused, and how many
/// logins may be pending at once. See `routes::limits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// Sustained `/login` + `/callback` requests per second from one client (an IPv4
    /// address, or an IPv6 /64); 0 turns the per-client limit off. Default 10.
    pub per_client_per_second: u32,
    /// Requests one client may make at once above the sustained rate. Default 40.
    pub per_client_burst: u32,
    /// Also limit loopback clients (127.0.0.0/8, ::1). Default false: load tests run from
    /// the same host, and a reverse proxy on the same host that is not listed in
    /// `trusted_proxies` would otherwise make every user one client.
    pub limit_loopback: bool,
    /// Peers whose `client_ip_header` is believed (your reverse proxies). Default none.
    #[serde(deserialize_with = "ip_list")]
    pub trusted_proxies: Vec<IpAddr>,
    /// The header a trusted proxy puts the client address in (`x-forwarded-for`: the
    /// right-most address that is not a trusted proxy is the client; `x-real-ip`,
    /// `forwarded`-less single-address headers: the address). Default none.
    pub client_ip_header: Option<String>,
    /// Most clients the limiter remembers; idle ones are forgotten first (memory bound).
    /// Default 100000.
    pub max_clients: usize,
    /// Most logins that may be pending (started, not called back, not expired) at once,
    /// store-wide; beyond it `/login` answers 503. 0 turns the cap off. Default 100000.
    pub max_pending_logins: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            per_client_per_second: 10,
            per_client_burst: 40,
            limit_loopback: false,
            trusted_proxies: Vec::new(),
            client_ip_header: None,
            max_clients: 100_000,
            max_pending_logins: 100_000,
        }
    }
}

/// A list of IP addresses: a TOML array, or one comma-separated string (environment).
fn ip_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Many(Vec<String>),
        One(String),
    }
    let items = match List::deserialize(d)? {
        List::Many(v) => v,
        List::One(s) => s.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                serde::de::Error::custom(format!("trusted_proxies: {s:?} is not an IP address"))
            })
        })
        .collect()
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute session lifetime in seconds (default 7 days).
    pub ttl_seconds: u64,
    /// Idle timeout in seconds (default 1 day).
    pub idle_seconds: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 7 * 24 * 3600,
            idle_seconds: 24 * 3600,
        }
    }
}

/// `[deauth]`: the deauthorization worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeauthConfig {
    /// Run the worker in this process (default true).
    pub worker: bool,
    /// First retry delay in milliseconds; doubles per attempt, with jitter.
    pub backoff_base_ms: u64,
    /// Largest retry delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Attempts before a job is marked failed.
    pub max_attempts: u32,
    /// How often the worker looks for due jobs, in milliseconds.
    pub poll_ms: u64,
    /// How long a claimed job (or webhook delivery) is leased to one worker, in milliseconds
    /// (default 15000, at least 300). The worker renews it every third of this while its call
    /// is in flight; a dead instance's jobs are taken over after it.
    pub lease_ms: u64,
}

impl Default for DeauthConfig {
    fn default() -> Self {
        Self {
            worker: true,
            backoff_base_ms: 1_000,
            backoff_max_ms: 15 * 60 * 1_000,
            max_attempts: 30,
            poll_ms: 1_000,
            lease_ms: crate::deauth::outbox::DEFAULT_LEASE_MS,
        }
    }
}

/// `[http]`: the listener's limits (see the `line-listener` crate).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a request head may take to arrive, in milliseconds (default 5,000).
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, in milliseconds
    /// (default 60,000).
    pub idle_timeout_ms: u64,
    /// How long a request body may take to arrive in full, in milliseconds (default 20,000);
    /// then 408 and the connection is closed.
    pub body_read_timeout_ms: u64,
    /// Connections open at once (default 1,024); more are answered 503 and closed. Keep it
    /// below the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// The largest request head in bytes (default 16,384); larger gets 431.
    pub max_header_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            body_read_timeout_ms: 20_000,
            max_connections: 1_024,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// `[database]`: bounded waits, so that a down or stalled database answers 503 in time
/// instead of hanging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// How long a request waits for a database connection (PostgreSQL's pool; SQLite's
    /// writer), in milliseconds (default 3,000).
    pub acquire_timeout_ms: u64,
    /// How long one statement may take, in milliseconds (default 3,000): PostgreSQL's
    /// `statement_timeout` (and `lock_timeout`); SQLite's busy timeout (a lock held by
    /// another process).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            acquire_timeout_ms: 3_000,
            statement_timeout_ms: 3_000,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_auth_url() -> Url {
    const_url("https://access.line.me")
}
fn default_api_url() -> Url {
    const_url("https://api.line.me")
}
#[allow(clippy::expect_used)] // only ever called with constant, valid URLs
fn const_url(s: &str) -> Url {
    Url::parse(s).expect("constant URL")
}

/// The database URL. `Debug` masks the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl Default for DatabaseUrl {
    /// `sqlite://linelogin.db`, next to where the server runs.
    fn default() -> Self {
        Self("sqlite://linelogin.db".into())
    }
}

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The raw URL (with any password): pass it to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password replaced by `***`.
    pub fn masked(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(_) => self.0.clone(),
            Err(_) => "[unparsable database URL]".into(),
        }
    }
}

impl DatabaseUrl {
    /// The backend the URL's scheme names (`sqlite:`, `postgres://` or `postgresql://`),
    /// whether or not this build has it; `None` for any other scheme.
    pub fn backend(&self) -> Option<Backend> {
        if self.0.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// A store backend. Each is a cargo feature of this crate (`sqlite`, `postgres`, both on by
/// default), so an application that needs one does not build the other's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store (feature `sqlite`).
    Sqlite,
    /// The PostgreSQL store (feature `postgres`).
    Postgres,
}

impl Backend {
    /// Whether this build has the backend.
    pub const fn compiled(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// The error for a `database_url` naming this backend in a build without it.
    pub fn not_compiled(self) -> ConfigError {
        let (name, feature) = match self {
            Self::Sqlite => ("SQLite", "sqlite"),
            Self::Postgres => ("PostgreSQL", "postgres"),
        };
        ConfigError(format!(
            "database_url names a {name} database, but this build of linelogin-server has no \
             {name} backend (build it with the `{feature}` feature)"
        ))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

/// The outbound Redis URL (`[outbound] redis_url`). `Debug` masks the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The raw URL (with any password): pass it to the Redis client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password replaced by `***`.
    pub fn masked(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(_) => self.0.clone(),
            Err(_) => "[unparsable Redis URL]".into(),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.masked())
    }
}

/// The 32-byte token encryption key. Prints `[redacted]`.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))
            })
            .map_err(|_| ConfigError("token_encryption_key is not valid base64".into()))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            ConfigError("token_encryption_key must be 32 bytes (base64 of 32 random bytes)".into())
        })?;
        Ok(Self(arr))
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// The key as base64 (for the demo's key file).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl<'de> Deserialize<'de> for EncryptionKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EncryptionKey::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

impl LineConfig {
    /// A channel with LINE's platform URLs and the default scopes and options.
    pub fn new(channel_id: impl Into<String>, channel_secret: ChannelSecret) -> Self {
        Self {
            channel_id: channel_id.into(),
            channel_secret,
            auth_url: default_auth_url(),
            api_url: default_api_url(),
            scopes: default_scopes(),
            bot_prompt: None,
            prompt: None,
            ui_locales: Vec::new(),
        }
    }
}

/// Where a configuration value came from, for error messages.
struct Sources<'a> {
    /// The file's path and text, when there is a file.
    file: Option<(&'a Path, &'a str)>,
    /// Dotted key → the environment variable that set it.
    env: BTreeMap<String, String>,
}

impl Sources<'_> {
    /// `server.toml:12:5: line.channel_id` or `LINELOGIN_LINE__CHANNEL_ID (line.channel_id)`.
    fn place(&self, key: &[String], want_key_span: bool) -> String {
        let dotted = key.join(".");
        if let Some(var) = self.env.get(&dotted) {
            return format!("{var} ({dotted})");
        }
        if let Some((path, text)) = self.file {
            let name = path.display();
            return match toml_span(text, key, want_key_span) {
                Some(offset) => {
                    let (line, col) = line_col(text, offset);
                    format!("{name}:{line}:{col}: {dotted}")
                }
                None => format!("{name}: {dotted}"),
            };
        }
        dotted
    }
}

/// The byte offset of `key` (its name, or its value) in a TOML text.
fn toml_span(text: &str, key: &[String], want_key_span: bool) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let (last, parents) = key.split_last()?;
    for part in parents {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref() == part)?;
        match value.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == last)?;
    Some(if want_key_span { k.span() } else { v.span() }.start)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The keys without a default.
const REQUIRED: &[&str] = &[
    "public_url",
    "token_encryption_key",
    "line.channel_id",
    "line.channel_secret",
];

/// `line.channel_id: missing (set it in the file or with LINELOGIN_LINE__CHANNEL_ID)`.
fn missing(dotted: &str) -> String {
    let var = format!(
        "LINELOGIN_{}",
        dotted.replace('.', "__").to_ascii_uppercase()
    );
    format!("{dotted}: missing (set it in the file or with {var})")
}

/// Extracts the configuration from `file` (the file's layer, possibly empty) with the
/// environment's values (`dotted key → string`) over it; problems are described with
/// their places in `sources`.
///
/// Why not figment's `extract_lossy`: it reads *every* string as a number or flag where
/// the field wants one, the file's `burst = "5"` included, and a file is typed (TOML), so
/// its mistakes must be errors. Only the environment's values, strings by nature, are read
/// by the field's type. Figment's interpreters are not public, so this learns the type
/// from serde: the extraction is strict, and a variable whose string a field refused
/// (`InvalidType`, found a string) is converted the way `extract_lossy` would (figment's
/// `to_bool_lossy` where serde expected a boolean, else `to_num_lossy`) and the
/// extraction runs again. A string field keeps the variable's text, so a numeric channel
/// id stays a string (figment issue #42). Each pass converts at least one variable, each
/// variable once, so this ends after at most one pass per variable.
fn extract_typing_env(
    file: &figment::Figment,
    mut env: BTreeMap<String, figment::value::Value>,
    sources: &Sources<'_>,
) -> Result<Config, ConfigError> {
    use figment::error::{Actual, Kind};
    use figment::providers::Serialized;
    use figment::value::{Tag, Value};
    loop {
        let figment = env.iter().fold(file.clone(), |f, (key, value)| {
            f.merge(Serialized::default(key, value))
        });
        let errors = match figment.extract::<Config>() {
            Ok(config) => return Ok(config),
            Err(errors) => errors,
        };
        let mut converted = false;
        for e in errors.clone() {
            let Kind::InvalidType(Actual::Str(_), expected) = &e.kind else {
                continue;
            };
            let Some(value) = env.get_mut(&e.path.join(".")) else {
                continue;
            };
            let typed = if expected.contains("bool") {
                value.to_bool_lossy().map(Value::from)
            } else {
                value.to_num_lossy().map(|n| Value::Num(Tag::Default, n))
            };
            if let (Value::String(..), Some(typed)) = (&*value, typed) {
                *value = typed;
                converted = true;
            }
        }
        if !converted {
            return Err(describe(errors, sources));
        }
    }
}

/// One line per problem figment reports, each naming the key and where it was set.
fn describe(errors: figment::Error, sources: &Sources<'_>) -> ConfigError {
    use figment::error::Kind;
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| match &e.kind {
            Kind::UnknownField(field, _) => {
                let mut key = e.path.clone();
                if key.last() != Some(field) {
                    key.push(field.clone());
                }
                format!("{}: unknown key", sources.place(&key, true))
            }
            Kind::MissingField(field) => {
                let mut key = e.path.clone();
                if key.last().map(String::as_str) != Some(field) {
                    key.push(field.to_string());
                }
                missing(&key.join("."))
            }
            kind => format!("{}: {kind}", sources.place(&e.path, false)),
        })
        .collect();
    ConfigError(lines.join("\n"))
}

impl Config {
    /// A configuration with every optional key at its default: the server at `public_url`
    /// with this token key and LINE channel. Set other fields on the result.
    pub fn new(public_url: Url, token_encryption_key: EncryptionKey, line: LineConfig) -> Self {
        Self {
            listen: default_listen(),
            public_url,
            database_url: DatabaseUrl::default(),
            token_encryption_key,
            line,
            outbound: OutboundConfig::default(),
            logs: LogsConfig::default(),
            session: SessionConfig::default(),
            deauth: DeauthConfig::default(),
            inbound: InboundConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            pages: PagesConfig::default(),
            previous_token_encryption_keys: Vec::new(),
            gateway: None,
            webhook: None,
            metrics: None,
        }
    }

    /// Loads the file (if any), then applies `LINELOGIN_*` variables from `env`, then checks
    /// the result. `env` is usually `std::env::vars()`.
    ///
    /// Layering is figment's: the file, then one provider per variable
    /// (`LINELOGIN_LINE__CHANNEL_ID` → `line.channel_id`; the names in [`RESERVED_ENV`]
    /// are not keys). A variable's value is a string that the target field's type reads
    /// (figment's lossy rules: `"7"` for a number, `"true"`/`"1"`/`"yes"` for a flag), so a
    /// numeric channel id stays a string; the file's values are typed by TOML and taken as
    /// they are (`burst = "5"` is an error). Every problem is reported, each with its key
    /// and its place (`server.toml:3:10: listen: …`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        use figment::Figment;
        use figment::providers::Serialized;

        let text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let mut figment = Figment::new();
        if let (Some(path), Some(text)) = (file, &text) {
            let table = text.parse::<toml::Table>().map_err(|e| {
                let place = match e.span() {
                    Some(span) => {
                        let (line, col) = line_col(text, span.start);
                        format!("{}:{line}:{col}", path.display())
                    }
                    None => path.display().to_string(),
                };
                ConfigError(format!("{place}: {}", e.message().trim_end()))
            })?;
            figment = figment.merge(Serialized::defaults(table));
        }
        let mut sources = Sources {
            file: file.zip(text.as_deref()),
            env: BTreeMap::new(),
        };
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let mut env_values = BTreeMap::new();
        let mut load_test = None;
        for (name, value) in env {
            if name == "LINELOGIN_LOAD_TEST" {
                load_test = Some(value);
                continue;
            }
            let Some(rest) = name.strip_prefix("LINELOGIN_") else {
                continue;
            };
            if RESERVED_ENV.contains(&name.as_str()) {
                continue;
            }
            let key: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if key.iter().any(String::is_empty) {
                return Err(ConfigError(format!("{name} does not name a key")));
            }
            let dotted = key.join(".");
            env_values.insert(dotted.clone(), figment::value::Value::from(value));
            sources.env.insert(dotted, name);
        }
        // serde stops at the first missing field: name every missing one at once.
        let absent: Vec<String> = REQUIRED
            .iter()
            .filter(|k| !figment.contains(k) && !env_values.contains_key(**k))
            .map(|k| missing(k))
            .collect();
        if !absent.is_empty() {
            return Err(ConfigError(absent.join("\n")));
        }
        let config = extract_typing_env(&figment, env_values, &sources)?;
        config.validate(load_test.as_deref())?;
        Ok(config)
    }

    /// Checks values that serde cannot: URL schemes, the channel, and the load-test guard.
    /// Every problem is reported, one line each.
    pub fn validate(&self, load_test: Option<&str>) -> Result<(), ConfigError> {
        let mut errors: Vec<ConfigError> = Vec::new();
        for (key, url) in [
            ("public_url", &self.public_url),
            ("line.auth_url", &self.line.auth_url),
            ("line.api_url", &self.line.api_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                errors.push(ConfigError(format!("{key} must be an http(s) URL")));
            }
        }
        if self.public_url.query().is_some() || self.public_url.fragment().is_some() {
            errors.push(ConfigError(
                "public_url must not carry a query or fragment".into(),
            ));
        }
        if self.line.channel_id.is_empty()
            || !self.line.channel_id.bytes().all(|b| b.is_ascii_digit())
        {
            errors.push(ConfigError(
                "line.channel_id must be the numeric channel id".into(),
            ));
        }
        if self.line.channel_secret.secret().is_empty() {
            errors.push(ConfigError("line.channel_secret is empty".into()));
        }
        if load_test.is_some_and(|v| !v.is_empty() && v != "0") {
            for (key, url) in [
                ("line.auth_url", &self.line.auth_url),
                ("line.api_url", &self.line.api_url),
            ] {
                if is_real_line_host(url) {
                    errors.push(ConfigError(format!(
                        "LINELOGIN_LOAD_TEST is set but {key} points at the real LINE Platform; \
                         load tests must use the emulator"
                    )));
                }
            }
        }
        if self.logs.max_value_bytes < 64 {
            errors.push(ConfigError(
                "logs.max_value_bytes must be at least 64".into(),
            ));
        }
        if let Some(backend) = self.database_url.backend()
            && !backend.compiled()
        {
            errors.push(backend.not_compiled());
        }
        if self.inbound.max_clients == 0 {
            errors.push(ConfigError("inbound.max_clients must be at least 1".into()));
        }
        self.validate_limits(&mut errors);
        if let Some(name) = &self.logs.instance
            && (name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            errors.push(ConfigError(
                "logs.instance must be 1 to 32 letters, digits, - or _".into(),
            ));
        }
        if let Some(g) = &self.gateway
            && let Err(e) = g.validate()
        {
            errors.push(e);
        }
        if let Some(w) = &self.webhook
            && let Err(e) = w.validate()
        {
            errors.push(e);
        }
        if errors.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = errors.into_iter().map(|e| e.0).collect();
        Err(ConfigError(lines.join("\n")))
    }

    /// The `[http]` and `[database]` values must be positive (a zero would disable a bound
    /// or refuse every connection).
    fn validate_limits(&self, errors: &mut Vec<ConfigError>) {
        for (key, value) in [
            (
                "http.header_read_timeout_ms",
                self.http.header_read_timeout_ms,
            ),
            ("http.idle_timeout_ms", self.http.idle_timeout_ms),
            ("http.body_read_timeout_ms", self.http.body_read_timeout_ms),
            ("http.max_connections", self.http.max_connections as u64),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            (
                "database.statement_timeout_ms",
                self.database.statement_timeout_ms,
            ),
        ] {
            if value == 0 {
                errors.push(ConfigError(format!("{key} must be at least 1")));
            }
        }
        if self.http.max_header_bytes < 1024 {
            errors.push(ConfigError(
                "http.max_header_bytes must be at least 1024".into(),
            ));
        }
    }

    /// The listener's limits from `[http]`.
    pub fn listener_limits(&self) -> line_listener::Limits {
        let ms = std::time::Duration::from_millis;
        line_listener::Limits {
            header_read_timeout: ms(self.http.header_read_timeout_ms),
            idle_timeout: ms(self.http.idle_timeout_ms),
            body_read_timeout: ms(self.http.body_read_timeout_ms),
            // In proxy mode, uploads to the app stream through: a body may take as long as it
            // keeps moving, and `body_read_timeout_ms` bounds a stall instead of the total.
            body_timeout_on_progress: self.gateway.as_ref().is_some_and(|g| g.upstream.is_some()),
            max_connections: self.http.max_connections,
            max_header_bytes: self.http.max_header_bytes,
            ..line_listener::Limits::default()
        }
    }

    /// The callback URL: `public_url` + `[gateway] prefix` (when set) + `/callback`.
    pub fn callback_url(&self) -> Result<Url, ConfigError> {
        Url::parse(&format!(
            "{}{}/callback",
            self.public_url.as_str().trim_end_matches('/'),
            self.base_path()
        ))
        .map_err(|_| ConfigError("public_url cannot take a /callback path".into()))
    }

    /// Where linelogin's own routes live: `[gateway] prefix`, or `""` (the root).
    pub fn base_path(&self) -> &str {
        self.gateway.as_ref().map_or("", |g| g.prefix.as_str())
    }

    /// Whether cookies must carry `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// Whether the URL points at LINE's own hosts (`line.me` and its subdomains).
pub fn is_real_line_host(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        h == "line.me" || h.ends_with(".line.me")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn minimal() -> Vec<(String, String)> {
        env(&[
            ("LINELOGIN_PUBLIC_URL", "http://127.0.0.1:8080"),
            ("LINELOGIN_TOKEN_ENCRYPTION_KEY", KEY),
            ("LINELOGIN_LINE__CHANNEL_ID", "1234567890"),
            (
                "LINELOGIN_LINE__CHANNEL_SECRET",
                "CANARY_SECRET_0123456789abcdef",
            ),
        ])
    }

    #[test]
    fn env_layers_over_file_and_types_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "public_url = \"http://127.0.0.1:1\"\n[outbound]\nrate_limit_per_second = 5\n[logs]\ndir = \"x\"\n",
        )
        .unwrap();
        let mut e = minimal();
        e.push((
            "LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND".into(),
            "7".into(),
        ));
        e.push(("LINELOGIN_LOAD_TEST".into(), "0".into()));
        e.push(("OTHER".into(), "ignored".into()));
        let c = Config::load(Some(&file), e).unwrap();
        assert_eq!(c.outbound.rate_limit_per_second, 7);
        assert_eq!(c.logs.dir, PathBuf::from("x"));
        assert_eq!(c.line.channel_id, "1234567890");
        assert_eq!(
            c.callback_url().unwrap().as_str(),
            "http://127.0.0.1:8080/callback"
        );
        assert_eq!(c.listen, default_listen());
    }

    #[test]
    fn the_callback_url_carries_the_gateway_prefix() {
        let mut e = minimal();
        e.push(("LINELOGIN_GATEWAY__PREFIX".into(), "/auth/line".into()));
        let c = Config::load(None, e).unwrap();
        assert_eq!(c.base_path(), "/auth/line");
        assert_eq!(
            c.callback_url().unwrap().as_str(),
            "http://127.0.0.1:8080/auth/line/callback"
        );
    }

    /// A URL naming a backend this build lacks is a config error naming the feature; one it
    /// has passes. Holds for any feature set (`--no-default-features --features sqlite`...).
    #[test]
    fn a_database_url_must_name_a_compiled_backend() {
        for (url, backend, feature) in [
            ("sqlite://linelogin.db", Backend::Sqlite, "`sqlite`"),
            ("postgres://db.example/app", Backend::Postgres, "`postgres`"),
            (
                "postgresql://db.example/app",
                Backend::Postgres,
                "`postgres`",
            ),
        ] {
            let mut e = minimal();
            e.push(("LINELOGIN_DATABASE_URL".into(), url.into()));
            let loaded = Config::load(None, e);
            assert_eq!(DatabaseUrl::new(url).backend(), Some(backend), "{url}");
            if backend.compiled() {
                assert!(loaded.is_ok(), "{url}: {loaded:?}");
            } else {
                let err = loaded.unwrap_err().to_string();
                assert!(
                    err.contains("database_url") && err.contains(feature),
                    "{err}"
                );
            }
        }
        assert_eq!(DatabaseUrl::new("mysql://db/app").backend(), None);
        let err = Backend::Postgres.not_compiled().to_string();
        assert!(
            err.contains("PostgreSQL") && err.contains("`postgres` feature"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let mut e = minimal();
        e.push(("LINELOGIN_LINE__CHANEL_ID".into(), "1".into()));
        let err = Config::load(None, e).unwrap_err().to_string();
        assert!(err.contains("chanel_id"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lissen = \"127.0.0.1:1\"\n").unwrap();
        assert!(Config::load(Some(&file), minimal()).is_err());
    }

    #[test]
    fn secrets_never_in_debug() {
        let mut e = minimal();
        e.push((
            "LINELOGIN_DATABASE_URL".into(),
            "postgres://app:CANARY_PW@db.example/app".into(),
        ));
        let c = Config::load(None, e).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("CANARY"), "{dbg}");
        assert!(!dbg.contains("AAECAw"), "{dbg}");
        assert!(dbg.contains("postgres://app:***@db.example/app"), "{dbg}");
    }

    #[test]
    fn load_test_refuses_real_line_hosts() {
        let mut e = minimal();
        e.push(("LINELOGIN_LOAD_TEST".into(), "1".into()));
        let err = Config::load(None, e.clone()).unwrap_err().to_string();
        assert!(err.contains("LOAD_TEST"), "{err}");
        e.push((
            "LINELOGIN_LINE__AUTH_URL".into(),
            "http://127.0.0.1:9000".into(),
        ));
        e.push((
            "LINELOGIN_LINE__API_URL".into(),
            "http://127.0.0.1:9000".into(),
        ));
        assert!(Config::load(None, e).is_ok());
    }

    #[test]
    fn inbound_keys_from_file_and_env() {
        let c = Config::load(None, minimal()).unwrap();
        assert_eq!(c.inbound.per_client_per_second, 10);
        assert!(!c.inbound.limit_loopback);
        assert_eq!(c.logs.max_value_bytes, 2048);
        let mut e = minimal();
        e.push((
            "LINELOGIN_INBOUND__TRUSTED_PROXIES".into(),
            "10.0.0.1, ::1".into(),
        ));
        e.push(("LINELOGIN_INBOUND__LIMIT_LOOPBACK".into(), "true".into()));
        e.push(("LINELOGIN_INBOUND__PER_CLIENT_BURST".into(), "3".into()));
        e.push(("LINELOGIN_LOGS__MAX_VALUE_BYTES".into(), "100".into()));
        let c = Config::load(None, e).unwrap();
        assert_eq!(c.inbound.trusted_proxies.len(), 2);
        assert!(c.inbound.limit_loopback);
        assert_eq!(c.inbound.per_client_burst, 3);
        assert_eq!(c.logs.max_value_bytes, 100);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[inbound]\ntrusted_proxies = [\"192.0.2.1\"]\nclient_ip_header = \"x-forwarded-for\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), minimal()).unwrap();
        assert_eq!(
            c.inbound.trusted_proxies,
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        let mut e = minimal();
        e.push(("LINELOGIN_INBOUND__TRUSTED_PROXIES".into(), "nope".into()));
        assert!(Config::load(None, e).is_err());
    }

    #[test]
    fn http_and_database_limits_have_defaults_load_from_env_and_refuse_zero() {
        let c = Config::load(None, minimal()).unwrap();
        let limits = c.listener_limits();
        assert_eq!(
            limits.header_read_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(60));
        assert_eq!(limits.body_read_timeout, std::time::Duration::from_secs(20));
        assert_eq!(
            (limits.max_connections, limits.max_header_bytes),
            (1024, 16384)
        );
        assert_eq!(
            (
                c.database.acquire_timeout_ms,
                c.database.statement_timeout_ms
            ),
            (3000, 3000)
        );
        let mut e = minimal();
        e.push(("LINELOGIN_HTTP__IDLE_TIMEOUT_MS".into(), "1500".into()));
        e.push(("LINELOGIN_HTTP__MAX_CONNECTIONS".into(), "7".into()));
        e.push((
            "LINELOGIN_DATABASE__STATEMENT_TIMEOUT_MS".into(),
            "250".into(),
        ));
        let c = Config::load(None, e).unwrap();
        assert_eq!(
            c.listener_limits().idle_timeout,
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(c.listener_limits().max_connections, 7);
        assert_eq!(c.database.statement_timeout_ms, 250);
        for key in [
            "LINELOGIN_HTTP__HEADER_READ_TIMEOUT_MS",
            "LINELOGIN_HTTP__MAX_CONNECTIONS",
            "LINELOGIN_DATABASE__ACQUIRE_TIMEOUT_MS",
        ] {
            let mut e = minimal();
            e.push((key.into(), "0".into()));
            let err = Config::load(None, e).unwrap_err().to_string();
            assert!(err.contains("at least 1"), "{key}: {err}");
        }
    }

    #[test]
    fn bad_key_and_bad_numbers_are_clear() {
        let mut e = minimal();
        e.retain(|(k, _)| k != "LINELOGIN_TOKEN_ENCRYPTION_KEY");
        e.push(("LINELOGIN_TOKEN_ENCRYPTION_KEY".into(), "c2hvcnQ=".into()));
        assert!(
            Config::load(None, e)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        let mut e = minimal();
        e.push(("LINELOGIN_SESSION__TTL_SECONDS".into(), "soon".into()));
        let err = Config::load(None, e).unwrap_err().to_string();
        assert!(
            err.starts_with("LINELOGIN_SESSION__TTL_SECONDS (session.ttl_seconds): "),
            "{err}"
        );
        assert!(err.contains("\"soon\""), "{err}");
    }

    #[test]
    fn outbound_redis_url_and_instances_load_and_the_password_never_prints() {
        let c = Config::load(None, minimal()).unwrap();
        assert_eq!(c.outbound.redis_url, None);
        assert_eq!(c.outbound.instances, 1);
        let mut e = minimal();
        e.push((
            "LINELOGIN_OUTBOUND__REDIS_URL".into(),
            "redis://:CANARY_REDIS_PW@127.0.0.1:6379/0".into(),
        ));
        e.push(("LINELOGIN_OUTBOUND__INSTANCES".into(), "3".into()));
        let c = Config::load(None, e).unwrap();
        assert_eq!(c.outbound.instances, 3);
        let url = c.outbound.redis_url.as_ref().unwrap();
        assert!(url.expose().contains("CANARY_REDIS_PW"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("CANARY_REDIS_PW"), "{dbg}");
        assert!(dbg.contains("redis://:***@127.0.0.1:6379/0"), "{dbg}");
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let file = dir.path().join("server.toml");
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Loading `text` as the file (with the minimal environment) fails with an error that
    /// starts with `want`, the file's path shortened to `server.toml`.
    fn assert_file_error(dir: &tempfile::TempDir, text: &str, want: &str) {
        let file = write(dir, text);
        let err = Config::load(Some(&file), minimal()).unwrap_err();
        let err = err
            .to_string()
            .replace(&file.display().to_string(), "server.toml");
        assert!(err.starts_with(want), "{text:?}: {err}");
    }

    #[test]
    fn file_errors_name_the_file_line_column_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# comment\nlisten = 8085\n[line]\nchannel_id = \"1\"\n";
        assert_file_error(&dir, text, "server.toml:2:10: listen: ");
        // An unknown key points at the key, in its section.
        let text = "[outbound]\nburst = 3\n  rate_per_second = 5\n";
        assert_file_error(
            &dir,
            text,
            "server.toml:3:3: outbound.rate_per_second: unknown key",
        );
        // A TOML syntax error has its place too.
        assert_file_error(&dir, "listen = \n", "server.toml:1:");
    }

    #[test]
    fn every_problem_is_listed_and_missing_keys_say_how_to_set_them() {
        let err = Config::load(None, env(&[])).unwrap_err().to_string();
        for key in [
            "public_url",
            "token_encryption_key",
            "line.channel_id",
            "line.channel_secret",
        ] {
            assert!(err.contains(&format!("{key}: missing")), "{key}: {err}");
        }
        assert!(err.contains("LINELOGIN_PUBLIC_URL"), "{err}");
    }

    #[test]
    fn file_values_are_taken_as_typed_and_env_values_by_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let both = "[outbound]\nburst = \"5\"\n[deauth]\nworker = \"no\"\n";
        assert_file_error(
            &dir,
            both,
            "server.toml:4:10: deauth.worker: invalid type: found string \"no\", expected a boolean",
        );
        assert_file_error(
            &dir,
            "[outbound]\nburst = \"5\"\n",
            "server.toml:2:9: outbound.burst: invalid type: found string \"5\", expected u32",
        );
        let file = write(&dir, both);
        // The same strings from the environment are read as their field wants (and override
        // the file's).
        let mut e = minimal();
        e.push(("LINELOGIN_OUTBOUND__BURST".into(), "5".into()));
        e.push(("LINELOGIN_DEAUTH__WORKER".into(), "no".into()));
        let c = Config::load(Some(&file), e).unwrap();
        assert_eq!(c.outbound.burst, 5);
        assert!(!c.deauth.worker);
        // A variable no reading fits is still an error, naming the variable.
        let mut e = minimal();
        e.push(("LINELOGIN_OUTBOUND__BURST".into(), "five".into()));
        let err = Config::load(None, e).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "LINELOGIN_OUTBOUND__BURST (outbound.burst): invalid type: found string \"five\""
            ),
            "{err}"
        );
    }

    #[test]
    fn env_values_take_the_type_of_their_field() {
        // A numeric channel id stays a string; numbers and flags are read as such.
        let mut e = minimal();
        e.push(("LINELOGIN_DEAUTH__WORKER".into(), "no".into()));
        e.push(("LINELOGIN_LOGS__BODIES".into(), "1".into()));
        e.push(("LINELOGIN_LOGS__INSTANCE".into(), "7".into()));
        e.push(("LINELOGIN_GATEWAY__CONNECT_TIMEOUT_MS".into(), "250".into()));
        let c = Config::load(None, e).unwrap();
        assert_eq!(c.line.channel_id, "1234567890");
        assert!(!c.deauth.worker);
        assert!(c.logs.bodies);
        assert_eq!(c.logs.instance.as_deref(), Some("7"));
        assert_eq!(c.gateway.map(|g| g.connect_timeout_ms), Some(250));
        let mut e = minimal();
        e.push((
            "LINELOGIN_PREVIOUS_TOKEN_ENCRYPTION_KEYS".into(),
            format!("{KEY},{KEY}"),
        ));
        assert_eq!(
            Config::load(None, e)
                .unwrap()
                .previous_token_encryption_keys
                .len(),
            2
        );
    }

    #[test]
    fn listen_takes_localhost_and_refuses_other_names() {
        let mut e = minimal();
        e.push(("LINELOGIN_LISTEN".into(), "localhost:8085".into()));
        assert_eq!(
            Config::load(None, e).unwrap().listen,
            SocketAddr::from(([127, 0, 0, 1], 8085))
        );
        let mut e = minimal();
        e.push(("LINELOGIN_LISTEN".into(), "example.com:80".into()));
        let err = Config::load(None, e).unwrap_err().to_string();
        assert!(err.contains("localhost:PORT"), "{err}");
    }

    #[test]
    fn new_has_the_defaults_a_file_would_get() {
        let loaded = Config::load(None, minimal()).unwrap();
        let built = Config::new(
            loaded.public_url.clone(),
            EncryptionKey::from_base64(KEY).unwrap(),
            LineConfig::new(
                "1234567890",
                ChannelSecret::new("CANARY_SECRET_0123456789abcdef"),
            ),
        );
        assert_eq!(format!("{built:?}"), format!("{loaded:?}"));
    }

    /// `server.example.toml` at the repository root, with its `# key = value` lines
    /// uncommented and its placeholders filled.
    fn example_uncommented() -> String {
        const WHSEC: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        include_str!("../../../../server.example.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("<openssl rand -base64 32>", KEY)
            .replace("<old key, base64>", KEY)
            .replace("whsec_<base64 of 24 to 64 random bytes>", WHSEC)
    }

    /// The field names of the struct at `section` ("" for the root), as serde lists them
    /// when it meets an unknown key there.
    fn fields_of(base: &toml::Table, section: &str) -> Vec<String> {
        use figment::Figment;
        use figment::providers::Serialized;
        let bogus = if section.is_empty() {
            "zz_not_a_key".to_owned()
        } else {
            format!("{section}.zz_not_a_key")
        };
        let err = Figment::from(Serialized::defaults(base.clone()))
            .merge(Serialized::default(&bogus, 1))
            .extract::<Config>()
            .unwrap_err();
        for e in err {
            if let figment::error::Kind::UnknownField(_, expected) = e.kind {
                return expected.iter().map(|s| s.to_string()).collect();
            }
        }
        panic!("no unknown-field error for {bogus}");
    }

    #[test]
    fn server_example_toml_shows_the_real_defaults_and_every_key() {
        // As shipped: with the required keys given, it is exactly the defaults.
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../server.example.toml");
        let shipped = Config::load(Some(&file), minimal())
            .unwrap_or_else(|e| panic!("server.example.toml: {e}"));
        let defaults = Config::load(None, minimal()).unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));

        // Uncommented: every optional key and section parses and is valid.
        let text = example_uncommented();
        let dir = tempfile::tempdir().unwrap();
        let full = write(&dir, &text);
        let c = Config::load(Some(&full), env(&[]))
            .unwrap_or_else(|e| panic!("server.example.toml uncommented: {e}"));
        assert!(c.gateway.is_some() && c.webhook.is_some() && c.metrics.is_some());
        assert_eq!(c.previous_token_encryption_keys.len(), 1);

        // And it names every key of every section.
        let table: toml::Table = text.parse().unwrap();
        let mut missing = Vec::new();
        for field in fields_of(&table, "") {
            match table.get(&field) {
                None => missing.push(field),
                Some(toml::Value::Table(section)) => {
                    for key in fields_of(&table, &field) {
                        if !section.contains_key(&key) {
                            missing.push(format!("{field}.{key}"));
                        }
                    }
                }
                Some(_) => {}
            }
        }
        assert!(missing.is_empty(), "server.example.toml lacks {missing:?}");
    }

    #[test]
    fn every_value_problem_is_listed() {
        let mut e = minimal();
        e.push(("LINELOGIN_HTTP__MAX_CONNECTIONS".into(), "0".into()));
        e.push(("LINELOGIN_LOGS__MAX_VALUE_BYTES".into(), "10".into()));
        e.push(("LINELOGIN_LINE__CHANNEL_ID".into(), "abc".into()));
        let err = Config::load(None, e).unwrap_err().to_string();
        assert_eq!(err.lines().count(), 3, "{err}");
        for key in [
            "http.max_connections",
            "logs.max_value_bytes",
            "line.channel_id",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
