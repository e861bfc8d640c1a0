//! Configuration: defaults, then a TOML file, then `LINELOGIN_*` environment variables
//! (`__` separates nesting: `LINELOGIN_LINE__CHANNEL_SECRET`). Unknown keys are an error.
//! Secrets never appear in `Debug` output; the database URL's `Debug` masks its password.

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
];

/// A configuration problem; the message names the key, never a secret value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public origin of the server; the callback is `public_url + "/callback"`.
    pub public_url: Url,
    /// `sqlite://file.db` (default `sqlite://linelogin.db`) or `postgres://…`.
    #[serde(default = "default_db")]
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
    #[serde(default)]
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
#[serde(deny_unknown_fields)]
pub struct PagesConfig {
    /// A directory whose `*.html` files replace the built-in templates of the same name
    /// (see [`crate::pages`]); unset: the built-in templates only.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    /// The name shown in the header and page titles (default `linelogin`).
    #[serde(default)]
    pub app_name: Option<String>,
    /// A logo shown before the name in the header (`https://…` or a path on this server).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// The colour of ordinary buttons (`#rgb` or `#rrggbb`); the LINE button stays LINE green.
    #[serde(default)]
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

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned(), "profile".to_owned()]
}

/// `[outbound]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Sustained calls per second to LINE.
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: u32,
    /// Burst above the sustained rate.
    #[serde(default = "default_rate")]
    pub burst: u32,
    /// The longest `Retry-After` from LINE that is honoured, in seconds (default 300, at
    /// least 1). A longer one is clamped to this, with a warning, for the cool-down of every
    /// call to LINE, the breakers and the `Retry-After` shown to browsers.
    #[serde(default = "default_retry_after_ceiling")]
    pub retry_after_ceiling_seconds: u64,
    /// Redis shared by every instance of the fleet: when set, the rate limit and the `429`
    /// cool-down are one budget for every instance on this Redis and channel. Its password
    /// never prints (`Debug` masks it).
    #[serde(default)]
    pub redis_url: Option<RedisUrl>,
    /// Expected instances (default 1, at least 1): with Redis unreachable each instance
    /// falls back to `rate_limit_per_second / instances` (and `burst / instances`).
    #[serde(default = "default_instances")]
    pub instances: u32,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_second: default_rate(),
            burst: default_rate(),
            retry_after_ceiling_seconds: default_retry_after_ceiling(),
            redis_url: None,
            instances: default_instances(),
        }
    }
}

/// `[logs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Directory of the guideline log files.
    #[serde(default = "default_log_dir")]
    pub dir: PathBuf,
    /// Days to keep rotated files.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Also log (redacted) API request and response bodies.
    #[serde(default)]
    pub bodies: bool,
    /// The longest a logged value may be, in bytes (default 2048, at least 64); a longer one
    /// is cut and ends with `…[truncated N bytes]`.
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    /// Names this instance of a fleet in its log files and metrics (letters, digits, `-`,
    /// `_`; at most 32). Absent: one instance.
    #[serde(default)]
    pub instance: Option<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            dir: default_log_dir(),
            retention_days: default_retention(),
            bodies: false,
            max_value_bytes: default_max_value_bytes(),
            instance: None,
        }
    }
}

/// `[inbound]`: what one client may ask of the server before it is refused, and how many
/// logins may be pending at once. See `routes::limits`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// Sustained `/login` + `/callback` requests per second from one client (an IPv4
    /// address, or an IPv6 /64); 0 turns the per-client limit off. Default 10.
    #[serde(default = "default_per_client_per_second")]
    pub per_client_per_second: u32,
    /// Requests one client may make at once above the sustained rate. Default 40.
    #[serde(default = "default_per_client_burst")]
    pub per_client_burst: u32,
    /// Also limit loopback clients (127.0.0.0/8, ::1). Default false: load tests run from
    /// the same host, and a reverse proxy on the same host that is not listed in
    /// `trusted_proxies` would otherwise make every user one client.
    #[serde(default)]
    pub limit_loopback: bool,
    /// Peers whose `client_ip_header` is believed (your reverse proxies). Default none.
    #[serde(default, deserialize_with = "ip_list")]
    pub trusted_proxies: Vec<IpAddr>,
    /// The header a trusted proxy puts the client address in (`x-forwarded-for`: the
    /// right-most address that is not a trusted proxy is the client; `x-real-ip`,
    /// `forwarded`-less single-address headers: the address). Default none.
    #[serde(default)]
    pub client_ip_header: Option<String>,
    /// Most clients the limiter remembers; idle ones are forgotten first (memory bound).
    /// Default 100000.
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// Most logins that may be pending (started, not called back, not expired) at once,
    /// store-wide; beyond it `/login` answers 503. 0 turns the cap off. Default 100000.
    #[serde(default = "default_max_pending_logins")]
    pub max_pending_logins: u64,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            per_client_per_second: default_per_client_per_second(),
            per_client_burst: default_per_client_burst(),
            limit_loopback: false,
            trusted_proxies: Vec::new(),
            client_ip_header: None,
            max_clients: default_max_clients(),
            max_pending_logins: default_max_pending_logins(),
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
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute session lifetime in seconds (default 7 days).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Idle timeout in seconds (default 1 day).
    #[serde(default = "default_idle")]
    pub idle_seconds: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: default_ttl(),
            idle_seconds: default_idle(),
        }
    }
}

/// `[deauth]`: the deauthorization worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeauthConfig {
    /// Run the worker in this process (default true).
    #[serde(default = "default_true")]
    pub worker: bool,
    /// First retry delay in milliseconds; doubles per attempt, with jitter.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_ms: u64,
    /// Largest retry delay in milliseconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Attempts before a job is marked failed.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// How often the worker looks for due jobs, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
}

impl Default for DeauthConfig {
    fn default() -> Self {
        Self {
            worker: true,
            backoff_base_ms: default_backoff_base(),
            backoff_max_ms: default_backoff_max(),
            max_attempts: default_attempts(),
            poll_ms: default_poll(),
        }
    }
}

/// `[http]`: the listener's limits (see the `line-listener` crate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a request head may take to arrive, in milliseconds (default 5,000).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, in milliseconds
    /// (default 60,000).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// How long a request body may take to arrive in full, in milliseconds (default 20,000);
    /// then 408 and the connection is closed.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_ms: u64,
    /// Connections open at once (default 1,024); more are answered 503 and closed. Keep it
    /// below the process's open-file limit (`ulimit -n`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The largest request head in bytes (default 16,384); larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: default_header_read_timeout(),
            idle_timeout_ms: default_idle_timeout(),
            body_read_timeout_ms: default_body_read_timeout(),
            max_connections: default_max_connections(),
            max_header_bytes: default_max_header_bytes(),
        }
    }
}

/// `[database]`: bounded waits, so that a down or stalled database answers 503 in time
/// instead of hanging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// How long a request waits for a database connection (PostgreSQL's pool; SQLite's
    /// writer), in milliseconds (default 3,000).
    #[serde(default = "default_db_timeout")]
    pub acquire_timeout_ms: u64,
    /// How long one statement may take, in milliseconds (default 3,000): PostgreSQL's
    /// `statement_timeout` (and `lock_timeout`); SQLite's busy timeout (a lock held by
    /// another process).
    #[serde(default = "default_db_timeout")]
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            acquire_timeout_ms: default_db_timeout(),
            statement_timeout_ms: default_db_timeout(),
        }
    }
}

fn default_header_read_timeout() -> u64 {
    5_000
}
fn default_idle_timeout() -> u64 {
    60_000
}
fn default_body_read_timeout() -> u64 {
    20_000
}
fn default_max_connections() -> usize {
    1_024
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_db_timeout() -> u64 {
    3_000
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_db() -> DatabaseUrl {
    DatabaseUrl("sqlite://linelogin.db".into())
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
fn default_rate() -> u32 {
    20
}
fn default_retry_after_ceiling() -> u64 {
    300
}
fn default_instances() -> u32 {
    1
}
fn default_log_dir() -> PathBuf {
    PathBuf::from("logs")
}
fn default_retention() -> u32 {
    90
}
fn default_max_value_bytes() -> usize {
    2048
}
fn default_per_client_per_second() -> u32 {
    10
}
fn default_per_client_burst() -> u32 {
    40
}
fn default_max_clients() -> usize {
    100_000
}
fn default_max_pending_logins() -> u64 {
    100_000
}
fn default_ttl() -> u64 {
    7 * 24 * 3600
}
fn default_idle() -> u64 {
    24 * 3600
}
fn default_true() -> bool {
    true
}
fn default_backoff_base() -> u64 {
    1_000
}
fn default_backoff_max() -> u64 {
    15 * 60 * 1_000
}
fn default_attempts() -> u32 {
    30
}
fn default_poll() -> u64 {
    1_000
}

/// The database URL. `Debug` masks the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

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

/// Keys whose environment values are numbers or booleans rather than strings.
const TYPED_KEYS: &[(&str, Kind)] = &[
    ("outbound.rate_limit_per_second", Kind::Int),
    ("outbound.burst", Kind::Int),
    ("outbound.retry_after_ceiling_seconds", Kind::Int),
    ("outbound.instances", Kind::Int),
    ("logs.retention_days", Kind::Int),
    ("logs.bodies", Kind::Bool),
    ("session.ttl_seconds", Kind::Int),
    ("session.idle_seconds", Kind::Int),
    ("deauth.worker", Kind::Bool),
    ("deauth.backoff_base_ms", Kind::Int),
    ("deauth.backoff_max_ms", Kind::Int),
    ("deauth.max_attempts", Kind::Int),
    ("deauth.poll_ms", Kind::Int),
    ("logs.max_value_bytes", Kind::Int),
    ("inbound.per_client_per_second", Kind::Int),
    ("inbound.per_client_burst", Kind::Int),
    ("inbound.limit_loopback", Kind::Bool),
    ("inbound.max_clients", Kind::Int),
    ("inbound.max_pending_logins", Kind::Int),
    ("http.header_read_timeout_ms", Kind::Int),
    ("http.idle_timeout_ms", Kind::Int),
    ("http.body_read_timeout_ms", Kind::Int),
    ("http.max_connections", Kind::Int),
    ("http.max_header_bytes", Kind::Int),
    ("database.acquire_timeout_ms", Kind::Int),
    ("database.statement_timeout_ms", Kind::Int),
    ("gateway.connect_timeout_ms", Kind::Int),
    ("gateway.response_header_timeout_ms", Kind::Int),
    ("gateway.pool_idle_timeout_ms", Kind::Int),
    ("gateway.max_request_body_bytes", Kind::Int),
    ("webhook.max_attempts", Kind::Int),
    ("webhook.connect_timeout_ms", Kind::Int),
    ("webhook.timeout_ms", Kind::Int),
    ("webhook.backoff_base_ms", Kind::Int),
    ("webhook.backoff_max_ms", Kind::Int),
];

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
}

impl Config {
    /// Loads the file (if any), then applies `LINELOGIN_*` variables from `env`, then checks
    /// the result. `env` is usually `std::env::vars()`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.message())))?
            }
            None => toml::Table::new(),
        };
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (name, value) in &env {
            let Some(rest) = name.strip_prefix("LINELOGIN_") else {
                continue;
            };
            if RESERVED_ENV.contains(&name.as_str()) || rest.is_empty() {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let dotted = path.join(".");
            let v = match TYPED_KEYS
                .iter()
                .find(|(k, _)| *k == dotted)
                .map(|(_, kind)| *kind)
            {
                Some(Kind::Int) => toml::Value::Integer(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| ConfigError(format!("{name} must be a whole number")))?,
                ),
                Some(Kind::Bool) => toml::Value::Boolean(match value.trim() {
                    "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    _ => return Err(ConfigError(format!("{name} must be true or false"))),
                }),
                None => toml::Value::String(value.clone()),
            };
            insert_path(&mut table, &path, v)
                .map_err(|()| ConfigError(format!("{name} does not name a key")))?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(format!("configuration: {}", e.message())))?;
        config.validate(env.get("LINELOGIN_LOAD_TEST").map(String::as_str))?;
        Ok(config)
    }

    /// Checks values that serde cannot: URL schemes, the channel, and the load-test guard.
    pub fn validate(&self, load_test: Option<&str>) -> Result<(), ConfigError> {
        for (key, url) in [
            ("public_url", &self.public_url),
            ("line.auth_url", &self.line.auth_url),
            ("line.api_url", &self.line.api_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(ConfigError(format!("{key} must be an http(s) URL")));
            }
        }
        if self.public_url.query().is_some() || self.public_url.fragment().is_some() {
            return Err(ConfigError(
                "public_url must not carry a query or fragment".into(),
            ));
        }
        if self.line.channel_id.is_empty()
            || !self.line.channel_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConfigError(
                "line.channel_id must be the numeric channel id".into(),
            ));
        }
        if self.line.channel_secret.secret().is_empty() {
            return Err(ConfigError("line.channel_secret is empty".into()));
        }
        if load_test.is_some_and(|v| !v.is_empty() && v != "0") {
            for (key, url) in [
                ("line.auth_url", &self.line.auth_url),
                ("line.api_url", &self.line.api_url),
            ] {
                if is_real_line_host(url) {
                    return Err(ConfigError(format!(
                        "LINELOGIN_LOAD_TEST is set but {key} points at the real LINE Platform; \
                         load tests must use the emulator"
                    )));
                }
            }
        }
        if self.logs.max_value_bytes < 64 {
            return Err(ConfigError(
                "logs.max_value_bytes must be at least 64".into(),
            ));
        }
        if self.inbound.max_clients == 0 {
            return Err(ConfigError("inbound.max_clients must be at least 1".into()));
        }
        self.validate_limits()?;
        if let Some(name) = &self.logs.instance
            && (name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(ConfigError(
                "logs.instance must be 1 to 32 letters, digits, - or _".into(),
            ));
        }
        if let Some(g) = &self.gateway {
            g.validate()?;
        }
        if let Some(w) = &self.webhook {
            w.validate()?;
        }
        Ok(())
    }

    /// The `[http]` and `[database]` values must be positive (a zero would disable a bound
    /// or refuse every connection).
    fn validate_limits(&self) -> Result<(), ConfigError> {
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
                return Err(ConfigError(format!("{key} must be at least 1")));
            }
        }
        if self.http.max_header_bytes < 1024 {
            return Err(ConfigError(
                "http.max_header_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }

    /// The listener's limits from `[http]`.
    pub fn listener_limits(&self) -> line_listener::Limits {
        let ms = std::time::Duration::from_millis;
        line_listener::Limits {
            header_read_timeout: ms(self.http.header_read_timeout_ms),
            idle_timeout: ms(self.http.idle_timeout_ms),
            body_read_timeout: ms(self.http.body_read_timeout_ms),
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

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] if !last.is_empty() => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] if !first.is_empty() => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => insert_path(t, rest, value),
                _ => Err(()),
            }
        }
        _ => Err(()),
    }
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
        assert!(
            Config::load(None, e)
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
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
}
