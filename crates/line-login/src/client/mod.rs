//! The LINE Login API client.
//!
//! [`LineClient`] holds the channel credentials, the base URLs, the HTTP transport, the shared
//! [`OutboundPolicy`] and the observers. Its methods (in `api.rs`) cover every v2.1 call; each
//! goes through one private `execute` step, which applies the policy, emits one
//! [`ApiCall`](crate::observer::ApiCall) per attempt and classifies the answer.

mod api;
mod execute;

use std::fmt;
use std::sync::Arc;

use url::Url;

pub use self::api::{DeauthorizeOutcome, JWT_BEARER, LoginResult};
pub use self::execute::REQUEST_ID_HEADER;
use crate::authorize::{AuthorizationRequest, DEFAULT_AUTH_BASE_URL, endpoint_url};
use crate::clock::SharedClock;
use crate::endpoint::{Endpoint, Host};
use crate::error::Error;
use crate::http::HttpTransport;
use crate::id_token::{IdTokenVerifier, JwksCache, LINE_ISSUER};
use crate::observer::{ApiObserver, Observers};
use crate::policy::OutboundPolicy;
use crate::secret::ChannelSecret;
use crate::types::ChannelId;

/// LINE's API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.line.me";

struct Inner {
    channel_id: ChannelId,
    channel_secret: ChannelSecret,
    auth_base: Url,
    api_base: Url,
    issuer: String,
    transport: Arc<dyn HttpTransport>,
    policy: OutboundPolicy,
    observers: Observers,
    wants_bodies: bool,
    jwks: std::sync::OnceLock<JwksCache>,
}

/// A client for one LINE Login channel. Cheap to clone; clones share everything.
///
/// ```no_run
/// # async fn demo() -> Result<(), line_login::Error> {
/// use line_login::{LineClient, secret::ChannelSecret, types::ChannelId};
///
/// let client = LineClient::builder(ChannelId::new("1234567890"), ChannelSecret::new("…"))
///     .api_base_url("http://127.0.0.1:9000".parse().unwrap()) // e.g. the emulator
///     .auth_base_url("http://127.0.0.1:9000".parse().unwrap())
///     .build()?;
/// let token = client.issue_stateless_channel_token().await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct LineClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for LineClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClient")
            .field("channel_id", &self.inner.channel_id)
            .field("channel_secret", &self.inner.channel_secret)
            .field("auth_base", &self.inner.auth_base.as_str())
            .field("api_base", &self.inner.api_base.as_str())
            .field("observers", &self.inner.observers)
            .finish_non_exhaustive()
    }
}

/// Builds a [`LineClient`].
pub struct LineClientBuilder {
    channel_id: ChannelId,
    channel_secret: ChannelSecret,
    auth_base: Option<Url>,
    api_base: Option<Url>,
    issuer: String,
    transport: Option<Arc<dyn HttpTransport>>,
    policy: Option<OutboundPolicy>,
    observers: Observers,
}

impl fmt::Debug for LineClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineClientBuilder")
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

impl LineClientBuilder {
    /// The authorization base URL (default `https://access.line.me`).
    pub fn auth_base_url(mut self, url: Url) -> Self {
        self.auth_base = Some(url);
        self
    }

    /// The API base URL (default `https://api.line.me`).
    pub fn api_base_url(mut self, url: Url) -> Self {
        self.api_base = Some(url);
        self
    }

    /// Points both base URLs at one origin (e.g. the linelogin emulator).
    pub fn base_url(self, url: Url) -> Self {
        self.auth_base_url(url.clone()).api_base_url(url)
    }

    /// The expected ID token issuer (default `https://access.line.me`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The HTTP transport (default: one [`ReqwestTransport`](crate::http::ReqwestTransport)
    /// shared by every client in the process).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The outbound policy. Pass the same one to every client in the process.
    pub fn policy(mut self, policy: OutboundPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Adds an observer that receives every API call attempt.
    pub fn observer(mut self, observer: Arc<dyn ApiObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<LineClient, Error> {
        let auth_base = match self.auth_base {
            Some(u) => u,
            None => parse_const(DEFAULT_AUTH_BASE_URL)?,
        };
        let api_base = match self.api_base {
            Some(u) => u,
            None => parse_const(DEFAULT_API_BASE_URL)?,
        };
        for (name, url) in [("auth", &auth_base), ("api", &api_base)] {
            if endpoint_url(url, "/").is_none() {
                return Err(Error::Config(
                    format!("the {name} base URL must be an http(s) URL").into(),
                ));
            }
        }
        let transport = match self.transport {
            Some(t) => t,
            None => default_transport()?,
        };
        let wants_bodies = self.observers.wants_bodies();
        Ok(LineClient {
            inner: Arc::new(Inner {
                channel_id: self.channel_id,
                channel_secret: self.channel_secret,
                auth_base,
                api_base,
                issuer: self.issuer,
                transport,
                policy: self.policy.unwrap_or_default(),
                observers: self.observers,
                wants_bodies,
                jwks: std::sync::OnceLock::new(),
            }),
        })
    }
}

fn parse_const(s: &str) -> Result<Url, Error> {
    Url::parse(s).map_err(|e| Error::Config(Box::new(e)))
}

/// The process-wide default transport: every client built without an explicit transport
/// shares one `reqwest` connection pool.
#[cfg(feature = "reqwest")]
fn default_transport() -> Result<Arc<dyn HttpTransport>, Error> {
    static SHARED: std::sync::OnceLock<Arc<crate::http::ReqwestTransport>> =
        std::sync::OnceLock::new();
    if let Some(t) = SHARED.get() {
        return Ok(t.clone());
    }
    let t = Arc::new(crate::http::ReqwestTransport::new().map_err(|e| Error::Config(Box::new(e)))?);
    Ok(SHARED.get_or_init(|| t).clone())
}

#[cfg(not(feature = "reqwest"))]
fn default_transport() -> Result<Arc<dyn HttpTransport>, Error> {
    Err(Error::Config(
        "no HTTP transport: enable the `reqwest` feature or call `transport`".into(),
    ))
}

impl LineClient {
    /// Starts building a client for a channel.
    pub fn builder(channel_id: ChannelId, channel_secret: ChannelSecret) -> LineClientBuilder {
        LineClientBuilder {
            channel_id,
            channel_secret,
            auth_base: None,
            api_base: None,
            issuer: LINE_ISSUER.to_owned(),
            transport: None,
            policy: None,
            observers: Observers::default(),
        }
    }

    /// The channel ID.
    pub fn channel_id(&self) -> &ChannelId {
        &self.inner.channel_id
    }

    /// The authorization base URL.
    pub fn auth_base_url(&self) -> &Url {
        &self.inner.auth_base
    }

    /// The API base URL.
    pub fn api_base_url(&self) -> &Url {
        &self.inner.api_base
    }

    /// The outbound policy.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.inner.policy
    }

    fn clock(&self) -> &SharedClock {
        self.inner.policy.clock()
    }

    /// An authorization request for this channel and base URL (see [`AuthorizationRequest`]).
    pub fn authorization_request(&self, redirect_uri: Url) -> AuthorizationRequest {
        AuthorizationRequest::new(self.inner.channel_id.clone(), redirect_uri)
            .base_url(self.inner.auth_base.clone())
    }

    /// A verifier for web-login ID tokens (HS256 with the channel secret), on the policy's clock.
    pub fn id_token_verifier(&self) -> IdTokenVerifier {
        IdTokenVerifier::hs256(self.inner.channel_id.clone(), &self.inner.channel_secret)
            .with_issuer(self.inner.issuer.clone())
            .with_clock(self.clock().clone())
    }

    /// A verifier for SDK/LIFF ID tokens (ES256 with this client's cached JWKS).
    pub fn es256_id_token_verifier(&self) -> IdTokenVerifier {
        IdTokenVerifier::es256(self.inner.channel_id.clone(), self.jwks_cache())
            .with_issuer(self.inner.issuer.clone())
            .with_clock(self.clock().clone())
    }

    /// The JWKS cache this client uses for ES256 tokens (created on first use).
    pub fn jwks_cache(&self) -> JwksCache {
        self.inner
            .jwks
            .get_or_init(|| {
                let fetcher = Arc::new(JwksViaClient(Arc::downgrade(&self.inner)));
                JwksCache::new(fetcher, self.clock().clone())
            })
            .clone()
    }

    fn endpoint_url(&self, endpoint: Endpoint) -> Result<Url, Error> {
        let base = match endpoint.host() {
            Host::Auth => &self.inner.auth_base,
            Host::Api => &self.inner.api_base,
        };
        endpoint_url(base, endpoint.path()).ok_or_else(|| Error::Config("bad base URL".into()))
    }
}

/// Fetches the JWKS through the client without keeping it alive (no reference cycle).
struct JwksViaClient(std::sync::Weak<Inner>);

impl crate::id_token::JwksFetcher for JwksViaClient {
    fn fetch_jwks(&self) -> futures::future::BoxFuture<'_, Result<crate::wire::JwkSet, Error>> {
        Box::pin(async move {
            let inner = self
                .0
                .upgrade()
                .ok_or_else(|| Error::Config("client dropped".into()))?;
            LineClient { inner }.jwks().await
        })
    }
}
