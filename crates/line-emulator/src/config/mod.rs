//! The emulator's configuration: channels, test users and behaviour switches, read from TOML.
//!
//! Unknown keys are an error, so a typo never silently changes behaviour. Addresses and URLs
//! are typed ([`SocketAddr`], [`ConfiguredUrl`]) and checked while the file is read, so a bad
//! one is answered with one line that names its place and key
//! (`line 3, column 10: listen: expected "IP:PORT" or "localhost:PORT", got "nope"`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

mod configured_url;
pub use configured_url::ConfiguredUrl;

/// The LINE issuer used in ID tokens unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "https://access.line.me";
/// The default listen address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9000);
/// The default provider name of channels that do not name one.
pub const DEFAULT_PROVIDER: &str = "default";

/// A configuration error: one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// The values are inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration (`--config FILE`). A key left out takes its value from
/// [`Config::default`] (the demo configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on: `IP:PORT`, or `localhost:PORT` for 127.0.0.1 (default
    /// `127.0.0.1:9000`).
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// The externally visible base URL (e.g. behind a proxy). Default: derived from the bound
    /// address.
    pub public_url: Option<ConfiguredUrl>,
    /// The ID token issuer (`https://access.line.me`), used in `iss` exactly as written.
    pub issuer: ConfiguredUrl,
    /// Skip the consent page: authorize answers at once with a code, test users taken in turn.
    pub auto_consent: bool,
    /// Emit callback error codes in lowercase (`access_denied`) instead of LINE's documented
    /// UPPER_CASE. A channel may override it.
    pub lowercase_errors: bool,
    /// Derive the emulator's keys (the ES256 ID token key and its JWKS `kid`, the token HMAC
    /// key) from this value instead of randomly, so they stay the same across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_seed: Option<String>,
    /// How long a request body may stall before the request fails (seconds, default 30); also
    /// how long a shutdown waits for connections that are still open.
    pub body_timeout_secs: u64,
    /// How many requests the journal keeps (a ring buffer; default 1,000).
    pub journal_capacity: usize,
    /// How long a request head may take to arrive, in milliseconds (default 5,000); then the
    /// connection is closed.
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, in milliseconds
    /// (default 60,000).
    pub idle_timeout_ms: u64,
    /// Connections open at once (default 1,024); more are answered 503 and closed.
    pub max_connections: usize,
    /// Return a new refresh token on refresh (LINE's docs say the same one comes back).
    pub rotate_refresh_tokens: bool,
    /// Invalidate the previous access token when a refresh issues a new one.
    pub refresh_revokes_old_access_token: bool,
    /// Revoking an access token also kills the refresh token of its grant (default true).
    pub revoke_access_token_revokes_refresh_token: bool,
    /// The most bytes outstanding authorization codes may hold (64 MiB); beyond it expired,
    /// then the oldest codes are forgotten. At least 65 536.
    pub codes_budget_bytes: usize,
    /// The most bytes unanswered consent pages may hold (16 MiB); beyond it expired, then the
    /// oldest pages are forgotten. At least 65 536.
    pub pending_budget_bytes: usize,
    /// The LINE Login channels; when empty, the demo channel.
    pub channels: Vec<ChannelConfig>,
    /// The test users; when empty, three users are generated.
    pub users: Vec<UserConfig>,
}

/// One LINE Login channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The channel ID (`client_id`), a numeric string.
    pub id: String,
    /// The channel secret.
    pub secret: String,
    /// Registered callback URLs. A `redirect_uri` matches when it equals one as written, or
    /// equals one with extra query parameters.
    #[serde(default)]
    pub callback_urls: Vec<ConfiguredUrl>,
    /// Name shown on the consent page.
    #[serde(default)]
    pub name: Option<String>,
    /// The provider; user IDs differ between providers.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// App types: `web`, `mobile`. The refresh and revoke endpoints require the secret only
    /// when the channel is web-only.
    #[serde(default = "default_app_types")]
    pub app_types: Vec<String>,
    /// Whether the channel holds the email address permission.
    #[serde(default = "yes")]
    pub email_permission: bool,
    /// Whether a LINE Official Account is linked (for `bot_prompt` and friendship status).
    #[serde(default = "yes")]
    pub bot_linked: bool,
    /// Requests per second per channel before 429 (none: unlimited).
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Overrides the global `lowercase_errors` for this channel.
    #[serde(default)]
    pub lowercase_errors: Option<bool>,
    /// Registered public keys for channel access token v2.1 JWT assertions.
    #[serde(default)]
    pub assertion_keys: Vec<AssertionKeyConfig>,
}

/// A registered RS256 assertion key: the `kid` LINE's console would issue, and the public JWK.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionKeyConfig {
    /// The key ID.
    pub kid: String,
    /// The public key as a JWK (`kty = "RSA"`, `n`, `e`; other members ignored).
    pub jwk: RsaJwk,
}

/// The public RSA JWK of an assertion key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RsaJwk {
    /// `RSA`.
    pub kty: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
    /// `RS256` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig` (optional).
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// `["verify"]` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
}

/// One test user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user ID under the `default` provider (`U` + 32 lowercase hex). Other providers see
    /// an ID derived from it.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Profile picture URL.
    #[serde(default)]
    pub picture_url: Option<String>,
    /// Status message.
    #[serde(default)]
    pub status_message: Option<String>,
    /// Email address (in the ID token with the `email` scope).
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is already a friend of every linked Official Account.
    #[serde(default)]
    pub friend: bool,
}

/// The smallest `codes_budget_bytes` / `pending_budget_bytes` accepted: ten of the largest
/// records the parameter length caps allow.
pub const MIN_BUDGET_BYTES: usize = 65_536;
fn default_provider() -> String {
    DEFAULT_PROVIDER.to_owned()
}
fn default_app_types() -> Vec<String> {
    vec!["web".to_owned()]
}
fn yes() -> bool {
    true
}

/// `IP:PORT`, or `localhost:PORT` (127.0.0.1, without asking a resolver).
fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    line_listener::parse_listen(&s).map_err(serde::de::Error::custom)
}

impl Default for Config {
    /// The configuration used when none is given: one channel (`1234567890`, secret
    /// `0123456789abcdef0123456789abcdef`, callbacks `http://127.0.0.1:8080/callback` and
    /// `http://localhost:8080/callback`) and three generated test users.
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            public_url: None,
            issuer: ConfiguredUrl::line_issuer(),
            auto_consent: false,
            lowercase_errors: false,
            journal_capacity: 1_000,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            max_connections: 1_024,
            key_seed: None,
            body_timeout_secs: 30,
            rotate_refresh_tokens: false,
            refresh_revokes_old_access_token: false,
            revoke_access_token_revokes_refresh_token: true,
            codes_budget_bytes: 64 * 1024 * 1024,
            pending_budget_bytes: 16 * 1024 * 1024,
            channels: vec![ChannelConfig {
                name: Some("Demo web app".to_owned()),
                ..ChannelConfig::new(
                    "1234567890",
                    "0123456789abcdef0123456789abcdef",
                    ConfiguredUrl::demo_callbacks(),
                )
            }],
            users: generated_users(3),
        }
    }
}

impl Config {
    /// The configuration used when none is given (the same as [`Config::default`]).
    pub fn default_demo() -> Self {
        Self::default()
    }

    /// Parses TOML text. An error names the line, column and key of the bad value.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = parse_toml(text)?;
        if config.channels.is_empty() {
            config.channels = Self::default_demo().channels;
        }
        if config.users.is_empty() {
            config.users = generated_users(3);
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks the values: IDs well formed and unique, limits positive, keys usable (addresses
    /// and URLs were checked when they were read).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.body_timeout_secs == 0 {
            return bad("body_timeout_secs must be at least 1".into());
        }
        if self.header_read_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return bad("header_read_timeout_ms and idle_timeout_ms must be at least 1".into());
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1".into());
        }
        if self.journal_capacity == 0 {
            return bad("journal_capacity must be at least 1".into());
        }
        if self.codes_budget_bytes < MIN_BUDGET_BYTES {
            return bad(format!(
                "codes_budget_bytes must be at least {MIN_BUDGET_BYTES}"
            ));
        }
        if self.pending_budget_bytes < MIN_BUDGET_BYTES {
            return bad(format!(
                "pending_budget_bytes must be at least {MIN_BUDGET_BYTES}"
            ));
        }
        if self.channels.is_empty() {
            return bad("at least one channel is needed".into());
        }
        let mut seen = HashSet::new();
        for c in &self.channels {
            if c.id.is_empty() || !c.id.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!("channel id {:?} must be a numeric string", c.id));
            }
            if !seen.insert(c.id.clone()) {
                return bad(format!("channel id {} appears twice", c.id));
            }
            if c.secret.is_empty() {
                return bad(format!("channel {} has an empty secret", c.id));
            }
            for t in &c.app_types {
                if t != "web" && t != "mobile" {
                    return bad(format!(
                        "channel {}: app type {t:?} is not \"web\" or \"mobile\"",
                        c.id
                    ));
                }
            }
            if c.rate_limit_per_second == Some(0) {
                return bad(format!(
                    "channel {}: rate_limit_per_second must be at least 1",
                    c.id
                ));
            }
            for k in &c.assertion_keys {
                if k.jwk.kty != "RSA" {
                    return bad(format!(
                        "channel {}: assertion key {} must be an RSA JWK",
                        c.id, k.kid
                    ));
                }
                if jsonwebtoken::DecodingKey::from_rsa_components(&k.jwk.n, &k.jwk.e).is_err() {
                    return bad(format!(
                        "channel {}: assertion key {} has an unreadable n or e",
                        c.id, k.kid
                    ));
                }
            }
        }
        let mut kids = HashSet::new();
        for k in self.channels.iter().flat_map(|c| &c.assertion_keys) {
            if !kids.insert(k.kid.clone()) {
                return bad(format!("assertion key id {} appears twice", k.kid));
            }
        }
        if self.users.is_empty() {
            return bad("at least one user is needed".into());
        }
        let mut seen = HashSet::new();
        for u in &self.users {
            if !line_login::types::UserId::new(u.id.clone()).is_well_formed() {
                return bad(format!(
                    "user id {:?} must be U followed by 32 lowercase hex digits",
                    u.id
                ));
            }
            if !seen.insert(u.id.clone()) {
                return bad(format!("user id {} appears twice", u.id));
            }
        }
        Ok(())
    }

    /// The configuration as TOML (for printing the effective configuration).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

impl ChannelConfig {
    /// A web channel with defaults for everything else.
    pub fn new(
        id: impl Into<String>,
        secret: impl Into<String>,
        callback_urls: Vec<ConfiguredUrl>,
    ) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
            callback_urls,
            name: None,
            provider: default_provider(),
            app_types: default_app_types(),
            email_permission: true,
            bot_linked: true,
            rate_limit_per_second: None,
            lowercase_errors: None,
            assertion_keys: Vec::new(),
        }
    }
}

impl UserConfig {
    /// A user with only an ID and a display name.
    pub fn new(id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            picture_url: None,
            status_message: None,
            email: None,
            friend: false,
        }
    }
}

/// `n` generated test users with stable IDs (`Test User 1`…).
pub fn generated_users(n: usize) -> Vec<UserConfig> {
    (1..=n)
        .map(|i| {
            let mut u = UserConfig::new(
                derive_user_id(&format!("line-emulator test user {i}")),
                format!("Test User {i}"),
            );
            u.email = Some(format!("test.user{i}@example.com"));
            u.status_message = Some(format!("Hello from test user {i}"));
            u
        })
        .collect()
}

/// `U` + 32 lowercase hex digits derived from a seed.
pub(crate) fn derive_user_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut s = String::with_capacity(33);
    s.push('U');
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Deserializes TOML, naming the place and key of a bad value:
/// `line 3, column 10: listen: expected …`.
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let parse_error = |e: &toml::de::Error, key: &str| {
        let place = e.span().map(|span| {
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: ")
        });
        let key = if key.is_empty() || key == "." {
            String::new()
        } else {
            format!("{key}: ")
        };
        ConfigError::Parse(format!(
            "{}{key}{}",
            place.unwrap_or_default(),
            one_line(e.message())
        ))
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| parse_error(&e, ""))?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| parse_error(e.inner(), &e.path().to_string()))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn demo_is_valid() {
        Config::default_demo().validate().unwrap();
    }

    #[test]
    fn design_example_parses() {
        let c = Config::from_toml_str(
            r#"
listen = "127.0.0.1:9000"
auto_consent = false
[[channels]]
id = "1234567890"
secret = "0123456789abcdef0123456789abcdef"
callback_urls = ["http://127.0.0.1:8080/callback"]
[[users]]
id = "U0123456789abcdef0123456789abcdef"
display_name = "Test User 1"
"#,
        )
        .unwrap();
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.channels[0].app_types, vec!["web"]);
    }

    #[test]
    fn example_file_parses() {
        let c = Config::from_toml_str(include_str!("../../emulator.example.toml")).unwrap();
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.channels[0].name.as_deref(), Some("My web app"));
        assert_eq!(c.users[0].email.as_deref(), Some("user1@example.com"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::from_toml_str("listen = \"127.0.0.1:1\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e =
            Config::from_toml_str("[[channels]]\nid = \"1\"\nsecret = \"s\"\ncolor = \"red\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("color"), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(Config::from_toml_str("[[channels]]\nid = \"abc\"\nsecret = \"s\"\n").is_err());
        assert!(Config::from_toml_str("[[users]]\nid = \"U1\"\ndisplay_name = \"x\"\n").is_err());
        assert!(Config::from_toml_str("listen = \"nope\"\n").is_err());
    }

    #[test]
    fn bad_addresses_and_urls_name_their_place_and_key() {
        let e = Config::from_toml_str("auto_consent = true\nlisten = \"nope\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: line 2, column 10: listen: \
             expected \"IP:PORT\" or \"localhost:PORT\", got \"nope\""
        );
        let e = Config::from_toml_str(
            "[[channels]]\nid = \"1\"\nsecret = \"s\"\ncallback_urls = [\"http://a/cb\", \"/cb\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("invalid configuration: line 4, column 17: channels[0].callback_urls[1]: \"/cb\" is not a URL"),
            "{e}"
        );
        let e = Config::from_toml_str("public_url = \"example.com\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("public_url: \"example.com\" is not a URL"),
            "{e}"
        );
    }

    #[test]
    fn listen_takes_localhost_and_urls_stay_as_written() {
        let c = Config::from_toml_str(
            "listen = \"localhost:9001\"\nissuer = \"https://issuer.example\"\n\
             [[channels]]\nid = \"1\"\nsecret = \"s\"\ncallback_urls = [\"HTTP://App.example/cb\"]\n",
        )
        .unwrap();
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 9001)));
        assert_eq!(c.issuer, "https://issuer.example");
        assert_eq!(c.channels[0].callback_urls[0], "HTTP://App.example/cb");
        let again = Config::from_toml_str(&c.to_toml()).unwrap();
        assert_eq!(again.issuer, c.issuer);
        assert_eq!(again.channels[0].callback_urls, c.channels[0].callback_urls);
    }

    #[test]
    fn left_out_keys_take_the_defaults() {
        let c = Config::from_toml_str("").unwrap();
        let d = Config::default();
        assert_eq!(
            c.to_toml(),
            d.to_toml().replace(&d.users[0].id, &c.users[0].id)
        );
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.issuer, DEFAULT_ISSUER);
        assert!(c.revoke_access_token_revokes_refresh_token);
        assert_eq!(c.journal_capacity, 1_000);
    }

    #[test]
    fn generated_ids_are_stable_and_well_formed() {
        let a = generated_users(3);
        let b = generated_users(3);
        assert_eq!(a[0].id, b[0].id);
        assert!(line_login::types::UserId::new(a[2].id.clone()).is_well_formed());
    }
}
