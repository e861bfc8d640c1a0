//! # line-emulator
//!
//! A local **LINE Platform emulator** for LINE Login v2.1: the test environment LINE's
//! development guidelines ask for.
//!
//! LINE's LINE Login development guidelines forbid load tests and other mass requests against
//! the real LINE Platform, and tell developers to prepare their own test environment. This
//! crate is that environment: it serves LINE's own paths (`/oauth2/v2.1/authorize`,
//! `/oauth2/v2.1/token`, `/v2/profile`, `/user/v1/deauthorize`, …) on **one origin**, so one
//! base URL stands in for both `access.line.me` and `api.line.me`, and LINE Login clients,
//! servers and third-party libraries work against it unchanged. It keeps everything in memory
//! and is fast enough to be the target of load tests.
//!
//! ## Running it
//! From the command line: `linelogin emulator [--listen ADDR] [--config FILE] [--auto-consent]`
//! (default `127.0.0.1:9000`). With no configuration there is one channel (`1234567890`,
//! secret `0123456789abcdef0123456789abcdef`, callback `http://127.0.0.1:8080/callback`) and
//! three test users; all of them are printed at start.
//!
//! In-process (tests, `linelogin demo`, the load-test runner):
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use line_emulator::{Config, Emulator};
//!
//! let emulator = Emulator::new(Config::default_demo())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let running = emulator.serve(listener).await?;
//! println!("LINE emulator at {}", running.base_url());
//! // ... point the client's authorize/API base URLs at running.base_url() ...
//! running.shutdown().await?;
//! # Ok(()) }
//! ```
//! [`Emulator::router`] gives the bare `axum::Router` to mount in another server.
//!
//! ## Behaviour
//! - **Authorize**: an HTML consent page (pick a test user, see the permissions, Allow or
//!   Cancel; stable `name="user"`, `id="allow"`, `id="cancel"` for browser tests), SSO through
//!   an emulator session cookie, `prompt=consent|none|login`, `max_age`, `bot_prompt`
//!   (`normal`: a checkbox; `aggressive`: a separate screen) with
//!   `friendship_status_changed`, PKCE `S256`, and the `query`, `form_post`, `query.jwt`
//!   and `form_post.jwt` response modes. Unknown `client_id`/`redirect_uri` get an HTML 400
//!   page with no redirect (an unregistered `redirect_uri`'s page shows the URI received and
//!   how to register it); other errors redirect with UPPER_CASE codes (`lowercase_errors`
//!   switches). With `auto_consent`, authorize answers at once, test users taken in turn.
//! - **Single sign-on like LINE's**: a browser that logged in and already granted the scopes
//!   is answered at once; `disable_auto_login=true` shows the page again with its user
//!   preselected (and "Not you? Choose another test user"), `prompt=login` with nobody
//!   preselected. The pages are in Japanese for `ui_locales=ja…` or a browser preferring `ja`.
//! - **Errors by `Accept`**: the browser pages answer HTML, or JSON to a client accepting
//!   `application/json` and not `text/html`; unknown paths JSON, or HTML to a browser; LINE's
//!   APIs and the admin API always JSON (see [`error`]).
//! - **Tokens**: codes are single use, 10 minutes, bound to the client, `redirect_uri`, PKCE
//!   challenge and nonce. Access tokens are JWS-shaped (`eyJhbGciOiJIUzI1NiJ9.…`, 30 days),
//!   refresh tokens 20 alphanumerics (90 days from the grant; the same one comes back on
//!   refresh). ID tokens are HS256 with the channel secret, or ES256 (JWKS at
//!   `/oauth2/v2.1/certs`) with `id_token_key_type=JWK`; `iss` is `https://access.line.me`.
//! - **Revocation cascade**: unlinking (admin API) or deauthorizing kills every access and
//!   refresh token of the user and channel at once; the next login asks for consent again;
//!   user IDs stay stable per provider.
//! - **Bounded memory**: expired codes, tokens, revocations and consent pages are swept every
//!   30 seconds; at most 20 000 unanswered consent pages, 200 000 unused codes and 10 000
//!   refresh tokens per user and channel are kept (beyond that the oldest are forgotten).
//!   Codes and consent pages are also bounded by bytes (`codes_budget_bytes`,
//!   `pending_budget_bytes`), and every authorize parameter has a length cap (an over-long
//!   one gets `INVALID_REQUEST`).
//! - **Cross-cutting**: `x-line-request-id` (16 lowercase hex) on every response, 413 above
//!   2 MB, documented error shapes, optional per-channel rate limit (429 + `Retry-After`).
//!
//! ## Configuration
//! TOML (`--config FILE`, [`Config::from_file`]); unknown keys are an error, and a bad value
//! is one line naming its place and key. Top level: `listen` (`IP:PORT` or `localhost:PORT`),
//! `public_url`, `issuer`, `auto_consent`, `lowercase_errors`, `journal_capacity`,
//! `body_timeout_secs`, `key_seed`, `rotate_refresh_tokens`, `refresh_revokes_old_access_token`,
//! `revoke_access_token_revokes_refresh_token`, `codes_budget_bytes`, `pending_budget_bytes`.
//! `[[channels]]`: `id`, `secret`,
//! `callback_urls`, `name`, `provider`, `app_types` (`web`, `mobile`), `email_permission`,
//! `bot_linked`, `rate_limit_per_second`, `lowercase_errors`, and
//! `assertion_keys = [{ kid = "…", jwk = { kty = "RSA", n = "…", e = "AQAB" } }]` for channel
//! access tokens v2.1. `[[users]]`: `id`, `display_name`, `picture_url`, `status_message`,
//! `email`, `friend`. The crate ships `emulator.example.toml` with every key.
//!
//! ## Admin API
//! JSON under `/_emulator/` on the same origin (it is a local test tool: bind it to a
//! loopback address). Admin requests are not journaled or counted.
//!
//! | Method and path | What |
//! |---|---|
//! | `GET /_emulator/users` | test users and their IDs per channel |
//! | `GET /_emulator/channels` | channels (with secrets) |
//! | `GET /_emulator/users/{userId}/authorized-apps` | the user's active grants |
//! | `POST /_emulator/users/{userId}/authorized-apps/{channelId}/unlink` | unlink, as in LINE's settings |
//! | `PUT /_emulator/users/{userId}/friendship/{channelId}` | `{"friend": true}`: befriend (or block) the linked Official Account |
//! | `GET /_emulator/journal?limit=N&endpoint=E&status=S` | recent requests: method, path (no query), status, request id, time, duration, channel, endpoint |
//! | `GET /_emulator/stats` | counts per endpoint and status; outstanding codes, refresh tokens, pending consent pages, revocation records |
//! | `GET /_emulator/metrics` | the same counts in the Prometheus text format (`line_emulator_requests_total{endpoint,status}`, gauges) |
//! | `GET`, `PUT`, `DELETE /_emulator/faults` | fault rules `{endpoint, method?, status?, body?, latency_ms, probability, count?, retry_after?}` |
//! | `POST /_emulator/reset` | forget grants, tokens, journal, stats, faults, clock offset |
//! | `POST /_emulator/sso/clear` | every browser forgets its single-sign-on user: the next authorize shows the login page (grants stay) |
//! | `GET`, `POST /_emulator/clock` | `{"advance_secs": N}` or `{"offset_secs": N}` shifts the clock used for every expiry (at most ±200 years; the offset saturates there) |
#![warn(missing_docs)]

mod admin;
mod authorize;
mod channel_token;
pub mod clock;
pub mod config;
mod crypto;
pub mod error;
mod extract;
mod oauth;
pub mod observe;
mod pages;
mod params;
mod resource;
mod state;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use line_login::wire::DiscoveryDocument;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use authorize::SESSION_COOKIE;
pub use clock::Clock;
pub use config::{
    AssertionKeyConfig, ChannelConfig, Config, ConfigError, ConfiguredUrl, RsaJwk, UserConfig,
};
pub use error::ApiError;
pub use observe::{FaultSpec, JournalEntry, MAX_BODY_BYTES, REQUEST_ID_HEADER, endpoint_name};
pub use pages::RegisterHelp;

use crate::error::json_response;
use crate::state::Inner;

pub(crate) type Shared = Arc<Inner>;

/// The emulator: configuration plus shared in-memory state. Cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    inner: Shared,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("channels", &self.inner.channels.len())
            .field("users", &self.inner.users.len())
            .finish()
    }
}

impl Emulator {
    /// Builds an emulator from a (validated) configuration.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner::new(config)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The emulator's clock (the admin API's `POST /_emulator/clock` moves it too).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Forgets every grant, token, journal entry, stat, fault and the clock offset.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Drops expired codes, tokens, revocation records and abandoned consent pages now (a
    /// running emulator also does this every 30 seconds).
    pub fn sweep(&self) {
        self.inner.sweep();
    }

    /// Test users as `(user ID under the default provider, display name)`.
    pub fn users(&self) -> Vec<(String, String)> {
        self.inner
            .users
            .iter()
            .map(|u| (u.cfg.id.clone(), u.cfg.display_name.clone()))
            .collect()
    }

    /// The router serving LINE's paths and the admin API, to mount in-process.
    pub fn router(&self) -> Router {
        let st = self.inner.clone();
        Router::new()
            .route("/", get(index))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/oauth2/v2.1/authorize", get(authorize::authorize))
            .route("/oauth2/v2.1/authorize/consent", post(authorize::consent))
            .route("/oauth2/v2.1/token", post(oauth::token))
            .route(
                "/oauth2/v2.1/verify",
                get(oauth::verify_access_token).post(oauth::verify_id_token),
            )
            .route("/oauth2/v2.1/revoke", post(oauth::revoke))
            .route(
                "/oauth2/v2.1/userinfo",
                get(resource::userinfo).post(resource::userinfo),
            )
            .route("/oauth2/v2.1/certs", get(certs))
            .route("/oauth2/v2.1/tokens/kid", get(channel_token::tokens_kid))
            .route("/oauth2/v3/token", post(channel_token::stateless))
            .route("/v2/profile", get(resource::profile))
            .route("/friendship/v1/status", get(resource::friendship))
            .route("/user/v1/deauthorize", post(resource::deauthorize))
            .route("/v2/oauth/accessToken", post(channel_token::short_lived))
            .route("/v2/oauth/verify", post(channel_token::short_lived_verify))
            .route("/v2/oauth/revoke", post(channel_token::short_lived_revoke))
            .route("/_emulator", get(admin::index))
            .route("/_emulator/", get(admin::index))
            .route("/_emulator/users", get(admin::users))
            .route("/_emulator/channels", get(admin::channels))
            .route(
                "/_emulator/users/{user_id}/authorized-apps",
                get(admin::authorized_apps),
            )
            .route(
                "/_emulator/users/{user_id}/authorized-apps/{channel_id}/unlink",
                post(admin::unlink),
            )
            .route(
                "/_emulator/users/{user_id}/friendship/{channel_id}",
                axum::routing::put(admin::put_friendship),
            )
            .route("/_emulator/journal", get(admin::journal))
            .route("/_emulator/stats", get(admin::stats))
            .route("/_emulator/metrics", get(admin::metrics))
            .route(
                "/_emulator/faults",
                get(admin::get_faults)
                    .put(admin::put_faults)
                    .delete(admin::delete_faults),
            )
            .route("/_emulator/reset", post(admin::reset))
            .route("/_emulator/sso/clear", post(admin::clear_sso))
            .route(
                "/_emulator/clock",
                get(admin::get_clock).post(admin::post_clock),
            )
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn(error::negotiate))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(
                st.clone(),
                observe::observe,
            ))
            .with_state(st)
    }

    /// Serves on a bound listener until [`RunningEmulator::shutdown`] (or until the handle is
    /// dropped). The base URL is `public_url` when configured, else `http://` + the bound
    /// address.
    pub async fn serve(&self, listener: TcpListener) -> io::Result<RunningEmulator> {
        let local_addr = listener.local_addr()?;
        let base_url = self
            .inner
            .config
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local_addr}"));
        *self.inner.base_url.write() = Some(base_url.clone());
        tracing::info!(%base_url, "LINE Platform emulator listening");
        let (tx, rx) = oneshot::channel::<()>();
        let app = self.router();
        // The shared hardened listener (header-read, keep-alive idle and body-read timeouts,
        // a connection cap, TCP_NODELAY). A stalled body is first answered by the emulator's
        // own stall timeout (`body_timeout_secs`, a LINE-shaped 400); the listener's bound on
        // the whole body, a second later, catches a body that trickles.
        let config = &self.inner.config;
        let body_timeout = Duration::from_secs(config.body_timeout_secs.max(1));
        let server = line_listener::Server::new(line_listener::Limits {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            body_read_timeout: body_timeout + Duration::from_secs(1),
            body_timeout_on_progress: false,
            max_connections: config.max_connections.max(1),
            shutdown_grace: body_timeout,
            // Long request lines (a 60,000-byte unknown path) are answered 404 and journaled
            // short, as before; heads beyond 64 KiB get 431.
            max_header_bytes: 64 * 1024,
        });
        let task = tokio::spawn(async move {
            server
                .serve(listener, app, async move {
                    let _ = rx.await;
                })
                .await;
            Ok(())
        });
        let sweeper_state = self.inner.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                sweeper_state.sweep();
            }
        });
        Ok(RunningEmulator {
            base_url,
            local_addr,
            shutdown: Some(tx),
            task: Some(task),
            sweeper,
            grace: Duration::from_secs(self.inner.config.body_timeout_secs.max(1)),
        })
    }

    /// Binds the configured `listen` address and serves.
    pub async fn bind_and_serve(&self) -> io::Result<RunningEmulator> {
        let listener = TcpListener::bind(&self.inner.config.listen).await?;
        self.serve(listener).await
    }

    /// A human-readable summary: base URL, channels (with secrets: this is a test emulator)
    /// and test users.
    pub fn summary(&self, base_url: &str) -> String {
        let st = &self.inner;
        let mut s = String::new();
        s.push_str(&format!(
            "LINE Platform emulator (LINE Login v2.1) at {base_url}\n"
        ));
        s.push_str(&format!(
            "  authorize: {base_url}/oauth2/v2.1/authorize   API base: {base_url}   issuer: {}\n",
            st.config.issuer
        ));
        s.push_str(&format!(
            "  consent: {}\n",
            if st.config.auto_consent {
                "automatic (users taken in turn)"
            } else {
                "consent page"
            }
        ));
        s.push_str("Channels:\n");
        for c in &st.channels {
            s.push_str(&format!(
                "  {}  secret {}  callbacks {}\n",
                c.cfg.id,
                c.cfg.secret,
                c.cfg.callback_urls.join(", ")
            ));
        }
        s.push_str(&format!("Test users ({}):\n", st.users.len()));
        const LISTED: usize = 10;
        for u in st.users.iter().take(LISTED) {
            s.push_str(&format!("  {}  {}\n", u.cfg.id, u.cfg.display_name));
        }
        if st.users.len() > LISTED {
            s.push_str(&format!(
                "  … and {} more (GET /_emulator/users)\n",
                st.users.len() - LISTED
            ));
        }
        s.push_str(&format!(
            "Admin API: {base_url}/_emulator/ (stats, journal, users, faults, clock, reset)\n"
        ));
        s
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningEmulator {
    base_url: String,
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    sweeper: JoinHandle<()>,
    /// How long a shutdown waits for open connections (`body_timeout_secs`).
    grace: Duration,
}

/// Waits for the server task, but at most `grace` once shutdown was asked for: a client that
/// never finishes sending its request head would otherwise hold the shutdown forever.
async fn finish_within(mut task: JoinHandle<io::Result<()>>, grace: Duration) -> io::Result<()> {
    match tokio::time::timeout(grace, &mut task).await {
        Ok(r) => r.map_err(io::Error::other)?,
        Err(_) => {
            task.abort();
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "emulator: connections still open after the shutdown grace period; stopped anyway"
            );
            Ok(())
        }
    }
}

impl RunningEmulator {
    /// The base URL (stands for both `https://access.line.me` and `https://api.line.me`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits: at most
    /// `body_timeout_secs` for connections that are still open.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.sweeper.abort();
        match self.task.take() {
            Some(t) => finish_within(t, self.grace).await,
            None => Ok(()),
        }
    }

    /// Waits until the server stops (after [`RunningEmulator::shutdown`] from elsewhere, or an
    /// error).
    pub async fn join(&mut self) -> io::Result<()> {
        // The sweeper keeps running while the server does: `join` may be how a caller
        // serves forever.
        let r = match self.task.take() {
            Some(t) => t.await.map_err(io::Error::other).and_then(|r| r),
            None => Ok(()),
        };
        self.sweeper.abort();
        r
    }

    /// Serves until `signal` completes, then shuts down gracefully (waiting at most
    /// `body_timeout_secs` for open connections).
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let task = self.task.take();
        match task {
            Some(mut t) => {
                tokio::select! {
                    r = &mut t => {
                        self.sweeper.abort();
                        r.map_err(io::Error::other)?
                    }
                    _ = signal => {
                        if let Some(tx) = self.shutdown.take() {
                            let _ = tx.send(());
                        }
                        self.sweeper.abort();
                        finish_within(t, self.grace).await
                    }
                }
            }
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.sweeper.abort();
    }
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

async fn discovery(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let base = st.base_url(host(&headers));
    json_response(
        StatusCode::OK,
        &DiscoveryDocument {
            issuer: st.config.issuer.to_string(),
            authorization_endpoint: format!("{base}/oauth2/v2.1/authorize"),
            token_endpoint: format!("{base}/oauth2/v2.1/token"),
            revocation_endpoint: Some(format!("{base}/oauth2/v2.1/revoke")),
            userinfo_endpoint: Some(format!("{base}/oauth2/v2.1/userinfo")),
            scopes_supported: Some(vec!["openid".into(), "profile".into(), "email".into()]),
            jwks_uri: format!("{base}/oauth2/v2.1/certs"),
            response_types_supported: vec!["code".into()],
            subject_types_supported: vec!["pairwise".into()],
            id_token_signing_alg_values_supported: vec!["ES256".into()],
            code_challenge_methods_supported: Some(vec!["S256".into()]),
        },
    )
}

async fn certs(State(st): State<Shared>) -> Response {
    json_response(StatusCode::OK, &st.jwks)
}

async fn not_found() -> Response {
    ApiError::message(StatusCode::NOT_FOUND, "Not found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").into_response()
}

async fn index(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let base = st.base_url(host(&headers));
    let channels: Vec<pages::ChannelRow<'_>> = st
        .channels
        .iter()
        .map(|c| pages::ChannelRow {
            id: &c.cfg.id,
            secret: &c.cfg.secret,
            callbacks: &c.cfg.callback_urls,
        })
        .collect();
    let users: Vec<pages::UserRow<'_>> = st
        .users
        .iter()
        .map(|u| pages::UserRow {
            id: &u.cfg.id,
            name: &u.cfg.display_name,
        })
        .collect();
    pages::index_page(
        pages::Lang::pick(None, &headers),
        &base,
        &st.config.issuer,
        &channels,
        &users,
    )
}
