//! `[gateway]`, `[webhook]` and `[metrics]`: linelogin in front of another web app, the
//! events it sends that app, and the Prometheus listener.
//!
//! These are the December contracts (the README's "Configuration" lists every key). The
//! secrets here ([`ApiKey`], [`WebhookSecret`]) print redacted and compare in constant time.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq as _;
use url::Url;

use super::ConfigError;

/// `[gateway]`: with it, every linelogin route moves under `prefix`, forward auth is served at
/// `prefix/auth`, and with `upstream` every other request is proxied to the app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The app behind the gateway (`http://host:port`, origin only). Absent: forward-auth
    /// only (nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth).
    #[serde(default)]
    pub upstream: Option<Url>,
    /// Where linelogin's own routes live (default `/linelogin`): starts with `/`, does not
    /// end with one, is not `/` itself, and holds only letters, digits and `/-._~` (it goes
    /// into links and headers as is).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Paths that go upstream without a login: an exact path, or a prefix ending in `/`.
    #[serde(default)]
    pub public_paths: Vec<String>,
    /// `aud` of the identity assertion (default: the upstream's origin, else `public_url`).
    #[serde(default)]
    pub assertion_audience: Option<String>,
    /// Peers (CIDR, or a bare address) whose `X-Forwarded-*` and `Forwarded` are believed.
    /// Default none: they are overwritten for everyone.
    #[serde(default, deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bearer key of the server-to-server API under `prefix/api/`; absent: the API is off.
    #[serde(default)]
    pub api_key: Option<ApiKey>,
    /// PEM file with one or more EC P-256 private keys for the identity assertion: the first
    /// signs, all are published in the JWKS (rotation: put the new key first, later remove
    /// the old one). Absent: one key derived from `token_encryption_key`.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Longest wait for a TCP connection to the upstream, in ms (default 5000).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the upstream's response headers, in ms (default 60000); then 504.
    #[serde(default = "default_response_header_timeout")]
    pub response_header_timeout_ms: u64,
    /// How long an idle pooled connection to the upstream is kept, in ms (default 90000).
    #[serde(default = "default_pool_idle_timeout")]
    pub pool_idle_timeout_ms: u64,
    /// Largest request body passed upstream, in bytes; absent: no limit (bodies stream, so
    /// memory stays bounded either way). Beyond it: 413.
    #[serde(default)]
    pub max_request_body_bytes: Option<u64>,
}

impl Default for GatewayConfig {
    /// What an empty `[gateway]` section gives: forward-auth only, under `/linelogin`.
    fn default() -> Self {
        Self {
            upstream: None,
            prefix: default_prefix(),
            public_paths: Vec::new(),
            assertion_audience: None,
            trusted_proxies: Vec::new(),
            api_key: None,
            signing_key_file: None,
            connect_timeout_ms: default_connect_timeout(),
            response_header_timeout_ms: default_response_header_timeout(),
            pool_idle_timeout_ms: default_pool_idle_timeout(),
            max_request_body_bytes: None,
        }
    }
}

impl GatewayConfig {
    /// Checks what serde cannot: the prefix, the upstream and the public paths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.prefix;
        if !p.starts_with('/')
            || p.len() < 2
            || p.ends_with('/')
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c))
            || p.contains("//")
            || p.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(ConfigError(format!(
                "gateway.prefix must look like \"/linelogin\" (got {p:?})"
            )));
        }
        if let Some(up) = &self.upstream {
            if up.scheme() != "http" && up.scheme() != "https" || up.host_str().is_none() {
                return Err(ConfigError(
                    "gateway.upstream must be an http(s) URL".into(),
                ));
            }
            if up.path() != "/" || up.query().is_some() || up.fragment().is_some() {
                return Err(ConfigError(
                    "gateway.upstream must be an origin (scheme://host:port), without a path"
                        .into(),
                ));
            }
        }
        for path in &self.public_paths {
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(ConfigError(format!(
                    "gateway.public_paths: {path:?} must be a path starting with /"
                )));
            }
            if path == p || path.starts_with(&format!("{p}/")) {
                return Err(ConfigError(format!(
                    "gateway.public_paths: {path:?} is under gateway.prefix"
                )));
            }
        }
        for (key, v) in [
            ("gateway.connect_timeout_ms", self.connect_timeout_ms),
            (
                "gateway.response_header_timeout_ms",
                self.response_header_timeout_ms,
            ),
            ("gateway.pool_idle_timeout_ms", self.pool_idle_timeout_ms),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }

    /// Whether `path` is one of `public_paths` (exact, or under a prefix ending in `/`).
    pub fn is_public(&self, path: &str) -> bool {
        self.public_paths.iter().any(|p| {
            if p.ends_with('/') {
                path.starts_with(p.as_str())
            } else {
                path == p
            }
        })
    }
}

fn default_prefix() -> String {
    "/linelogin".to_owned()
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_response_header_timeout() -> u64 {
    60_000
}
fn default_pool_idle_timeout() -> u64 {
    90_000
}
fn default_webhook_attempts() -> u32 {
    10
}
fn default_webhook_connect_timeout() -> u64 {
    3_000
}
fn default_webhook_timeout() -> u64 {
    10_000
}
fn default_webhook_backoff_base() -> u64 {
    1_000
}
fn default_webhook_backoff_max() -> u64 {
    600_000
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "trusted_proxies: {s:?} is not an address or a CIDR block"
                    ))
                })
        })
        .collect()
}

/// The server-to-server API key (`[gateway] api_key`): at least 16 bytes, never printed,
/// compared in constant time.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (at least 16 bytes).
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.len() < 16 {
            return Err(ConfigError(
                "gateway.api_key must be at least 16 characters".into(),
            ));
        }
        Ok(Self(key))
    }

    /// Whether `presented` is this key, in time that does not depend on where they differ.
    pub fn verify(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ApiKey::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `[webhook]`: where the app hears about account events (Standard Webhooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The app's endpoint (http or https).
    pub url: Url,
    /// The signing secret: `whsec_` followed by the base64 of the key (Standard Webhooks).
    pub secret: WebhookSecret,
    /// Delivery attempts before an event is marked failed (default 10; an operator can
    /// send a failed event again).
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
    /// Connect timeout of one delivery, in milliseconds (default 3000).
    #[serde(default = "default_webhook_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Total timeout of one delivery (connect, send, answer), in milliseconds (default 10000).
    #[serde(default = "default_webhook_timeout")]
    pub timeout_ms: u64,
    /// First retry delay in milliseconds; doubles per attempt, with jitter (default 1000).
    #[serde(default = "default_webhook_backoff_base")]
    pub backoff_base_ms: u64,
    /// Largest retry delay in milliseconds (default 600000: ten minutes).
    #[serde(default = "default_webhook_backoff_max")]
    pub backoff_max_ms: u64,
}

impl WebhookConfig {
    /// Events to `url`, signed with `secret`, with the default delivery bounds.
    pub fn new(url: Url, secret: WebhookSecret) -> Self {
        Self {
            url,
            secret,
            max_attempts: default_webhook_attempts(),
            connect_timeout_ms: default_webhook_connect_timeout(),
            timeout_ms: default_webhook_timeout(),
            backoff_base_ms: default_webhook_backoff_base(),
            backoff_max_ms: default_webhook_backoff_max(),
        }
    }

    /// Checks the URL scheme.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.url.scheme(), "http" | "https") || self.url.host_str().is_none() {
            return Err(ConfigError("webhook.url must be an http(s) URL".into()));
        }
        for (key, v) in [
            ("webhook.max_attempts", u64::from(self.max_attempts)),
            ("webhook.connect_timeout_ms", self.connect_timeout_ms),
            ("webhook.timeout_ms", self.timeout_ms),
            ("webhook.backoff_base_ms", self.backoff_base_ms),
            ("webhook.backoff_max_ms", self.backoff_max_ms),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A Standard Webhooks signing key (`whsec_` + base64). `Debug` is redacted.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix is optional); the key must be 24 to 64 bytes.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| ConfigError("webhook.secret must be whsec_ followed by base64".into()))?;
        if !(24..=64).contains(&key.len()) {
            return Err(ConfigError(
                "webhook.secret must hold 24 to 64 bytes of key".into(),
            ));
        }
        Ok(Self(key))
    }

    /// The raw key bytes (for the HMAC).
    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WebhookSecret::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `[metrics]`: a Prometheus listener, off when the section is absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics listener (`/metrics`, Prometheus text format).
    pub listen: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(toml_text: &str) -> Result<GatewayConfig, String> {
        let c: GatewayConfig = toml::from_str(toml_text).map_err(|e| e.message().to_owned())?;
        c.validate().map_err(|e| e.0)?;
        Ok(c)
    }

    #[test]
    fn constructors_match_an_empty_section() {
        let empty = gw("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format!("{:?}", GatewayConfig::default()),
            format!("{empty:?}")
        );
        let text = "url = \"http://127.0.0.1:3000/hooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n";
        let parsed: WebhookConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let built = WebhookConfig::new(parsed.url.clone(), parsed.secret.clone());
        assert_eq!(format!("{built:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn prefix_must_be_a_clean_path() {
        assert!(gw("").is_ok());
        for bad in [
            "\"\"",
            "\"/\"",
            "\"x\"",
            "\"/a/\"",
            "\"/a/../b\"",
            "\"/a?b\"",
            "\"/a<b\"",
            "\"/a\\\"b\"",
            "\"//a\"",
        ] {
            assert!(gw(&format!("prefix = {bad}")).is_err(), "{bad}");
        }
        assert!(gw("prefix = \"/auth/line\"").is_ok());
    }

    #[test]
    fn upstream_is_an_origin() {
        assert!(gw("upstream = \"http://127.0.0.1:3000\"").is_ok());
        assert!(gw("upstream = \"http://127.0.0.1:3000/app\"").is_err());
        assert!(gw("upstream = \"ftp://127.0.0.1\"").is_err());
    }

    #[test]
    fn public_paths_match_exactly_or_by_slash_prefix() {
        let c = gw("public_paths = [\"/health\", \"/static/\"]").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.is_public("/health"));
        assert!(!c.is_public("/healthz"));
        assert!(c.is_public("/static/a.css"));
        assert!(!c.is_public("/static"));
        assert!(gw("public_paths = [\"/linelogin/x\"]").is_err());
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_addresses() {
        let c = gw("trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(gw("trusted_proxies = [\"nope\"]").is_err());
    }

    #[test]
    fn secrets_are_redacted_and_checked() {
        let c = gw("api_key = \"CANARY-api-key-0123456789\"").unwrap_or_else(|e| panic!("{e}"));
        let key = c.api_key.unwrap_or_else(|| panic!("key"));
        assert!(key.verify("CANARY-api-key-0123456789"));
        assert!(!key.verify("CANARY-api-key-012345678"));
        assert!(!format!("{key:?}").contains("CANARY"));
        assert!(gw("api_key = \"short\"").is_err());

        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.key().len(), 24);
        assert!(!format!("{s:?}").contains("MfKQ"));
        assert!(WebhookSecret::parse("whsec_!!").is_err());
    }

    #[test]
    fn webhook_delivery_bounds_have_defaults_and_must_be_positive() {
        let wh = |extra: &str| -> Result<WebhookConfig, String> {
            let text = format!(
                "url = \"http://127.0.0.1:3000/hooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n{extra}"
            );
            let c: WebhookConfig = toml::from_str(&text).map_err(|e| e.message().to_owned())?;
            c.validate().map_err(|e| e.0)?;
            Ok(c)
        };
        let c = wh("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                c.max_attempts,
                c.connect_timeout_ms,
                c.timeout_ms,
                c.backoff_base_ms,
                c.backoff_max_ms
            ),
            (10, 3_000, 10_000, 1_000, 600_000)
        );
        for zero in [
            "max_attempts = 0",
            "connect_timeout_ms = 0",
            "timeout_ms = 0",
            "backoff_base_ms = 0",
            "backoff_max_ms = 0",
        ] {
            assert!(wh(zero).is_err(), "{zero}");
        }
        assert!(wh("retries = 3").is_err(), "unknown keys are refused");
    }
}
