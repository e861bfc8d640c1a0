//! [`AppState`]: everything the routes, the account operations and the worker share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use line_login::LineClient;
use line_login::clock::{SharedClock, SystemClock};
use line_login::policy::{OutboundPolicy, PolicyConfig};
use line_login::secret::ChannelAccessToken;
use line_login::types::ChannelId;
use tokio::sync::Notify;
use url::Url;

use crate::audit::{AuditSink, NoAudit};
use crate::config::{Config, DeauthConfig};
use crate::crypto::TokenCipher;
use crate::store::{self, Store};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The LINE client could not be built.
    #[error("LINE client: {0}")]
    Client(String),
    /// The guideline logs could not be opened, or their maintenance not started.
    #[error("cannot open the guideline logs in {dir}: {message}")]
    Logs {
        /// The log directory.
        dir: String,
        /// What failed.
        message: String,
    },
    /// A failpoint was asked for in a build without the `failpoints` feature.
    #[error(
        "failpoint {0:?} asked for, but this build has no failpoints (the `failpoints` feature)"
    )]
    NoFailpoints(String),
    /// A page template could not be loaded (the message names the file and line).
    #[error(transparent)]
    Pages(#[from] crate::pages::PagesError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        message: String,
    },
    /// The shared outbound limiter could not be set up (bad `[outbound] redis_url`).
    #[error(transparent)]
    OutboundLimiter(#[from] line_limit_redis::Error),
    /// The gateway could not be set up (its signing keys, its upstream client).
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
}

/// Settings derived from the configuration, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public origin (`scheme://host[:port]`), for the Origin check.
    pub public_origin: String,
    /// The callback URL sent to LINE.
    pub callback_url: Url,
    /// Cookies carry `Secure` (and the `__Host-` prefix).
    pub secure_cookies: bool,
    /// Absolute session lifetime.
    pub session_ttl: Duration,
    /// Session idle timeout.
    pub session_idle: Duration,
    /// The deauthorization worker's settings.
    pub deauth: DeauthConfig,
    /// The HTTP listener's limits (`[http]`).
    pub listener: line_listener::Limits,
    /// Bounded waits on the database (`[database]`).
    pub database: store::Timeouts,
    /// `[line] scopes`, `bot_prompt`, `prompt`, `ui_locales`, parsed.
    pub login_options: LoginOptions,
    /// Where linelogin's routes live: `[gateway] prefix`, or `""` (the root).
    pub base_path: String,
    /// `[webhook]`: account events to the app (off when absent).
    pub webhook: Option<crate::config::WebhookConfig>,
    /// The server-to-server API (`[gateway] api_key`; off when absent).
    pub api: Option<crate::gateway::api::ApiSettings>,
}

/// What every authorization request carries besides state, nonce and PKCE.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// The scopes (always with `openid`).
    pub scopes: line_login::types::Scopes,
    /// `bot_prompt`.
    pub bot_prompt: Option<line_login::authorize::BotPrompt>,
    /// `prompt`.
    pub prompt: Option<line_login::authorize::Prompt>,
    /// `ui_locales`.
    pub ui_locales: Vec<String>,
}

impl LoginOptions {
    /// Parses the `[line]` keys; an unknown `bot_prompt` / `prompt` or scopes without
    /// `openid` is a configuration error.
    pub fn from_config(
        line: &crate::config::LineConfig,
    ) -> Result<Self, crate::config::ConfigError> {
        use line_login::authorize::{BotPrompt, Prompt};
        use line_login::types::{Scope, Scopes};
        let scopes: Scopes = line
            .scopes
            .iter()
            .map(|s| Scope::from(s.as_str()))
            .collect();
        if !scopes.contains(&Scope::OpenId) {
            return Err(crate::config::ConfigError(
                "[line] scopes must include \"openid\"".to_owned(),
            ));
        }
        let bot_prompt = match line.bot_prompt.as_deref() {
            None => None,
            Some("normal") => Some(BotPrompt::Normal),
            Some("aggressive") => Some(BotPrompt::Aggressive),
            Some(other) => {
                return Err(crate::config::ConfigError(format!(
                    "[line] bot_prompt {other:?}: expected \"normal\" or \"aggressive\""
                )));
            }
        };
        let prompt = match line.prompt.as_deref() {
            None => None,
            Some("consent") => Some(Prompt::Consent),
            Some("login") => Some(Prompt::Login),
            Some("none") => Some(Prompt::None),
            Some(other) => {
                return Err(crate::config::ConfigError(format!(
                    "[line] prompt {other:?}: expected \"consent\", \"login\" or \"none\""
                )));
            }
        };
        Ok(Self {
            scopes,
            bot_prompt,
            prompt,
            ui_locales: line.ui_locales.clone(),
        })
    }
}

impl Settings {
    /// Derives the settings from a configuration.
    pub fn from_config(config: &Config) -> Result<Self, StartError> {
        Ok(Self {
            public_origin: config.public_url.origin().ascii_serialization(),
            callback_url: config.callback_url()?,
            secure_cookies: config.secure_cookies(),
            session_ttl: Duration::from_secs(config.session.ttl_seconds),
            session_idle: Duration::from_secs(config.session.idle_seconds),
            deauth: config.deauth.clone(),
            listener: config.listener_limits(),
            database: store::Timeouts::from_config(&config.database),
            login_options: LoginOptions::from_config(&config.line)?,
            base_path: config.base_path().to_owned(),
            webhook: config.webhook.clone(),
            api: crate::gateway::api::ApiSettings::from_config(config),
        })
    }

    /// The scheme of the public URL (`http` or `https`): what the browser used.
    pub fn public_scheme(&self) -> &'static str {
        if self.public_origin.starts_with("https:") {
            "https"
        } else {
            "http"
        }
    }

    /// A path of linelogin's (`/me`) under the base path (`/linelogin/me`); `/` is the base
    /// path itself.
    pub fn path(&self, path: &str) -> String {
        if path == "/" && !self.base_path.is_empty() {
            self.base_path.clone()
        } else {
            format!("{}{path}", self.base_path)
        }
    }
}

/// The shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: LineClient,
    pub(crate) cipher: TokenCipher,
    pub(crate) clock: SharedClock,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) worker_wake: Notify,
    pub(crate) webhook_wake: Notify,
    pub(crate) channel_token: tokio::sync::Mutex<Option<(ChannelAccessToken, i64)>>,
    pub(crate) failpoint: Option<String>,
    pub(crate) limits: crate::routes::limits::Limits,
    pub(crate) pages: crate::pages::Pages,
    /// Deauthorization jobs whose tokens no configured key decrypts.
    pub(crate) key_trouble: crate::deauth::keys::KeyTrouble,
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The gateway (`[gateway]`), when configured.
    pub(crate) gateway: Option<crate::gateway::Gateway>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AppState`] from a configuration, with injectable parts.
pub struct AppStateBuilder<'a> {
    config: &'a Config,
    store: Option<Arc<dyn Store>>,
    clock: SharedClock,
    audit: Arc<dyn AuditSink>,
    failpoint: Option<String>,
}

impl fmt::Debug for AppStateBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStateBuilder").finish_non_exhaustive()
    }
}

impl<'a> AppStateBuilder<'a> {
    /// Uses this store instead of opening `database_url`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this clock (tests inject a mock clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Writes the guideline logs to this sink.
    pub fn audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = audit;
        self
    }

    /// Arms a failpoint (crash tests): `unregister-after-commit` aborts the process right
    /// after the deauthorization job is committed, `deauth-after-call` right after LINE
    /// answered a deauthorization. A test hook: only a build with the `failpoints` feature has
    /// them; elsewhere arming one is an error (`None` is always fine). The library never reads
    /// the environment for it: a binary may (`LINELOGIN_FAILPOINT`).
    pub fn failpoint(mut self, name: Option<String>) -> Result<Self, StartError> {
        match name {
            None => {
                self.failpoint = None;
                Ok(self)
            }
            #[cfg(feature = "failpoints")]
            Some(name) => {
                self.failpoint = Some(name);
                Ok(self)
            }
            #[cfg(not(feature = "failpoints"))]
            Some(name) => Err(StartError::NoFailpoints(name)),
        }
    }

    /// Opens the store (running migrations) if none was given, and builds the LINE client.
    pub async fn build(self) -> Result<AppState, StartError> {
        let config = self.config;
        let settings = Settings::from_config(config)?;
        let store = match self.store {
            Some(s) => s,
            None => store::connect_with(&config.database_url, settings.database).await?,
        };
        let pc = PolicyConfig {
            rate_per_second: config.outbound.rate_limit_per_second.max(1),
            burst: config.outbound.burst.max(1),
            retry_after_ceiling: Duration::from_secs(
                config.outbound.retry_after_ceiling_seconds.max(1),
            ),
            ..PolicyConfig::default()
        };
        // `[outbound] redis_url`: one limit and cool-down for every instance on that Redis.
        let policy = match &config.outbound.redis_url {
            Some(url) => {
                let mut rc = line_limit_redis::RedisLimiterConfig::new(
                    url.expose(),
                    config.line.channel_id.clone(),
                    pc.rate_per_second,
                    pc.burst,
                );
                rc.instances = config.outbound.instances.max(1);
                let limiter = line_limit_redis::RedisLimiter::new(rc)?;
                if !limiter.probe().await {
                    tracing::warn!(
                        redis_url = %url.masked(),
                        "outbound Redis unreachable at start: each instance uses its local share"
                    );
                }
                OutboundPolicy::with_limiter_and_clock(pc, Arc::new(limiter), self.clock.clone())
            }
            None => OutboundPolicy::with_clock(pc, self.clock.clone()),
        };
        let mut builder = LineClient::builder(
            ChannelId::new(config.line.channel_id.clone()),
            config.line.channel_secret.clone(),
        )
        .auth_base_url(config.line.auth_url.clone())
        .api_base_url(config.line.api_url.clone())
        .policy(policy);
        if let Some(observer) = self.audit.api_observer() {
            builder = builder.observer(observer);
        }
        // `[metrics]`: this state's own registry, fed by the client's observer seam.
        let metrics = config.metrics.as_ref().map(|m| {
            Arc::new(crate::metrics::Metrics::new(
                m.listen,
                config.logs.instance.as_deref(),
            ))
        });
        if let Some(m) = &metrics {
            builder = builder.observer(m.line_observer());
        }
        let client = builder
            .build()
            .map_err(|e| StartError::Client(e.to_string()))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                settings,
                store,
                client,
                cipher: TokenCipher::from_config(config),
                clock: self.clock,
                audit: self.audit,
                worker_wake: Notify::new(),
                webhook_wake: Notify::new(),
                channel_token: tokio::sync::Mutex::new(None),
                failpoint: self.failpoint,
                limits: crate::routes::limits::Limits::new(&config.inbound),
                pages: crate::pages::Pages::load(&config.pages)?.with_base(config.base_path()),
                gateway: crate::gateway::Gateway::from_config(config)?,
                key_trouble: crate::deauth::keys::KeyTrouble::default(),
                metrics,
            }),
        })
    }
}

impl AppState {
    /// Starts building a state from a configuration.
    pub fn builder(config: &Config) -> AppStateBuilder<'_> {
        AppStateBuilder {
            config,
            store: None,
            clock: Arc::new(SystemClock::new()),
            audit: Arc::new(NoAudit),
            failpoint: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The LINE client.
    pub fn client(&self) -> &LineClient {
        &self.inner.client
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Now, Unix milliseconds, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.inner
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// The inbound limits and the counters of refused requests
    /// (`routes::limits`).
    pub fn limits(&self) -> &crate::routes::limits::Limits {
        &self.inner.limits
    }

    /// The page renderer (built-in templates, or the operator's `[pages] templates_dir`).
    pub fn pages(&self) -> &crate::pages::Pages {
        &self.inner.pages
    }

    /// The Prometheus metrics, when `[metrics]` is configured.
    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.inner.metrics.as_deref()
    }

    /// The gateway (`[gateway]`), when configured.
    pub fn gateway(&self) -> Option<&crate::gateway::Gateway> {
        self.inner.gateway.as_ref()
    }

    /// Wakes the deauthorization worker (a job was enqueued).
    pub fn wake_worker(&self) {
        self.inner.worker_wake.notify_one();
    }

    /// Wakes the webhook worker (an event was written).
    pub fn wake_webhooks(&self) {
        self.inner.webhook_wake.notify_one();
    }

    /// A fresh webhook event id (`msg_…`) when `[webhook]` is configured, else `None`: the
    /// id of the event that a state change writes in its own transaction.
    pub fn new_event_id(&self) -> Option<String> {
        self.settings()
            .webhook
            .as_ref()
            .map(|_| crate::webhook::new_event_id())
    }

    /// Aborts the process if the failpoint `name` is armed (only with the `failpoints`
    /// feature; without it, nothing).
    pub(crate) fn failpoint(&self, name: &str) {
        #[cfg(feature = "failpoints")]
        if self.inner.failpoint.as_deref() == Some(name) {
            tracing::error!(failpoint = name, "failpoint reached: aborting the process");
            std::process::abort();
        }
        #[cfg(not(feature = "failpoints"))]
        let _ = (name, &self.inner.failpoint);
    }
}
