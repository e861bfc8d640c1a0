//! The gateway: LINE Login in front of any web app (`[gateway]`).
//!
//! With `[gateway]`, every linelogin route moves under `prefix` (`/linelogin` by default):
//! the pages, `/callback` (register `public_url + prefix + "/callback"` at LINE), `/healthz`,
//! the stylesheet, and the gateway's own routes:
//!
//! - `prefix/.well-known/jwks.json`: the public keys of the identity assertion
//!   (`Cache-Control: max-age=300`).
//! - `prefix/auth` (nginx `auth_request`): 200 with the identity headers, or 401.
//! - `prefix/auth/redirect` (Caddy `forward_auth`, Traefik ForwardAuth): 200 with the
//!   identity headers, or 302 to `public_url + prefix + "/login?next=…"`, `next` taken from
//!   `X-Forwarded-Uri` (else `X-Original-URI`, else `/`) and kept only when it is a safe
//!   relative path ([`crate::accounts::safe_next`]); anything else becomes `/`, so an
//!   absolute or `//host` value can never become the redirect.
//! - `prefix/api/accounts/…`: the server-to-server API ([`api`]).
//!
//! Nothing of linelogin's remains at the root: an unknown path under the prefix is
//! linelogin's 404 page; any other path is a plain 404 (forward-auth mode).
//!
//! # Identity headers
//!
//! `X-LineLogin-User` (LINE user id), `X-LineLogin-Account` (account id),
//! `X-LineLogin-Name` (display name, UTF-8 percent-encoded: every byte but ASCII letters,
//! digits and `-._~`), `X-LineLogin-Email` (only when the login's verified ID token carried
//! one, scope `email`; kept sealed in a cookie, never in the database), and
//! `X-LineLogin-Assertion`: a compact JWS, ES256, header `kid`, claims `iss` (`public_url`
//! without a trailing `/`), `aud` (`assertion_audience`, else the upstream's origin, else
//! `public_url`), `sub`, `account`, `name`, `email` (when granted), `iat`, `exp` (`iat` +
//! 300 s), `jti` (128 random bits). Times come from the state's clock.
//!
//! # Keys
//!
//! `signing_key_file` (PEM, one or more P-256 private keys, PKCS#8 or SEC1): the first signs,
//! all are published, so a rotation is "put the new key first; remove the old one after 5
//! minutes". Without it, one key per token encryption key is derived with HKDF-SHA256
//! ([`keys::derive`], a domain-separated `info`): the current one signs, those of
//! `previous_token_encryption_keys` stay published, so rotating the token key does not
//! invalidate an assertion in flight. `kid` is the RFC 7638 JWK thumbprint. Signing and the
//! JWK encoding are `jsonwebtoken` and `p256`; no cryptography is written here.
//!
//! # Per-session identity cache, and its revocation trade-off
//!
//! A session lookup (a database query) and an ES256 signature on every proxied request
//! would halve the gateway's throughput, so the identity and its signed assertion are kept
//! per session key while the assertion's `exp` is more than 4 minutes away: a request whose
//! session cookie has a fresh entry goes upstream without a database query or a signature,
//! for at most 60 s after the entry was made; then the session is loaded again (which also
//! keeps its idle timer running) and a new assertion is signed. The cache is bounded
//! ([`ASSERTION_CACHE_MAX`] entries; stale ones are swept when full, then it is cleared).
//! A logout on this instance drops the session's entry, and an unregister or unlink on it
//! drops every entry of the account, so they take effect at the next request. **The
//! trade-off**: a session ended elsewhere (another instance of a fleet, an expiry, a row
//! deleted by hand) is still let through by this instance for up to 60 s, and the same
//! assertion (same `jti`) is sent on several requests, so an upstream must not treat `jti`
//! as single-use. The assertion's own lifetime (5 minutes) bounds what an upstream that
//! caches it can see anyway.
//!
//! # Measured (`bench/gateway-core.sh`, 2 shared cores, wrk -t2 -c32 -d5s, medians of 3)
//!
//! Three runs of the script on 2026-12-05 (a shared machine, load average 6 to 18, so the
//! figures move between runs): nginx proxying the upstream without auth 43 393 / 32 959 /
//! 39 614 req/s; linelogin proxying it with a session (identity headers, assertion) 15 533
//! (before the identity cache) / 21 077 / 16 715 req/s, i.e. 36 % / 64 % / 42 % of nginx;
//! `prefix/auth` alone 28 865 / 47 152 / 41 954 req/s. At moderate load (wrk -t1 -c4) the
//! median latency through the gateway was 162-206 µs against 61-65 µs for the upstream
//! alone (about 0.1 ms added); the p99s (3.5-15.8 ms either way) were the machine's
//! scheduling noise and cannot show the < 1 ms target either way. The bench's upstream runs
//! in the gateway's process (it shares its CPU); gw-int's bench uses a separate upstream.

pub mod api;
pub mod keys;
mod proxy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::accounts::safe_next;
use crate::config::{Config, GatewayConfig};
use crate::crypto::random_id;
use crate::error::AppError;
use crate::session::{CurrentUser, SESSION_COOKIE, cookie_name, read_cookie, session_key};
use crate::state::AppState;

pub use keys::{KeyError, KeySet};

/// `X-LineLogin-User`: the LINE user id.
pub const USER_HEADER: HeaderName = HeaderName::from_static("x-linelogin-user");
/// `X-LineLogin-Account`: linelogin's account id.
pub const ACCOUNT_HEADER: HeaderName = HeaderName::from_static("x-linelogin-account");
/// `X-LineLogin-Name`: the display name, percent-encoded UTF-8.
pub const NAME_HEADER: HeaderName = HeaderName::from_static("x-linelogin-name");
/// `X-LineLogin-Email`: the verified email, only when granted.
pub const EMAIL_HEADER: HeaderName = HeaderName::from_static("x-linelogin-email");
/// `X-LineLogin-Assertion`: the signed identity assertion (compact JWS, ES256).
pub const ASSERTION_HEADER: HeaderName = HeaderName::from_static("x-linelogin-assertion");
/// Every inbound header with this prefix is removed before a request goes upstream.
pub const HEADER_PREFIX: &str = "x-linelogin-";

/// Lifetime of an assertion, in seconds.
pub const ASSERTION_TTL_SECS: i64 = 300;
/// A cached assertion is reused only while it has more than this many seconds left.
const ASSERTION_REUSE_MIN_LEFT_SECS: i64 = 240;
/// Most sessions whose assertion is cached.
pub const ASSERTION_CACHE_MAX: usize = 10_000;

/// Bytes of a display name sent as is in `X-LineLogin-Name`: the RFC 3986 unreserved set.
const NAME_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The gateway could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The signing keys.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The upstream cannot be proxied to (the message names the key).
    #[error("{0}")]
    Upstream(String),
}

/// What the gateway knows at run time: its configuration, keys and assertion cache.
pub struct Gateway {
    config: GatewayConfig,
    keys: KeySet,
    issuer: String,
    audience: String,
    login_url: String,
    cache: Mutex<HashMap<String, Cached>>,
    proxy: Option<line_proxy::Proxy>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("prefix", &self.config.prefix)
            .field("upstream", &self.config.upstream)
            .field("keys", &self.keys)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A signed assertion kept for a session, with what it says.
struct Cached {
    account: String,
    sub: String,
    name: String,
    email: Option<String>,
    assertion: Arc<str>,
    exp: i64,
}

/// The identity of a logged-in user, as the upstream receives it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The LINE user id.
    pub user: String,
    /// linelogin's account id.
    pub account: String,
    /// The display name.
    pub name: String,
    /// The verified email, when granted.
    pub email: Option<String>,
    /// The signed assertion.
    pub assertion: Arc<str>,
}

impl Identity {
    /// Writes the identity headers into `headers` (replacing any already there). A value
    /// that cannot be a header value is left out (and logged).
    pub fn write(&self, headers: &mut HeaderMap) {
        let name = utf8_percent_encode(&self.name, NAME_ENCODE).to_string();
        let mut put = |h: HeaderName, v: &str| match HeaderValue::from_str(v) {
            Ok(v) => {
                headers.insert(h, v);
            }
            Err(_) => tracing::warn!(header = %h, "identity value is not a valid header value"),
        };
        put(USER_HEADER, &self.user);
        put(ACCOUNT_HEADER, &self.account);
        put(NAME_HEADER, &name);
        if let Some(email) = &self.email {
            put(EMAIL_HEADER, email);
        }
        put(ASSERTION_HEADER, &self.assertion);
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    account: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    iat: i64,
    exp: i64,
    jti: String,
}

impl Gateway {
    /// The gateway of a configuration (`None` without `[gateway]`): loads or derives the
    /// signing keys.
    pub fn from_config(config: &Config) -> Result<Option<Self>, GatewayError> {
        let Some(gw) = &config.gateway else {
            return Ok(None);
        };
        let keys = match &gw.signing_key_file {
            Some(path) => KeySet::from_pem_file(path)?,
            None => KeySet::derived(
                &config.token_encryption_key,
                &config.previous_token_encryption_keys,
            )?,
        };
        let public = config.public_url.as_str().trim_end_matches('/').to_owned();
        let audience = gw
            .assertion_audience
            .clone()
            .or_else(|| {
                gw.upstream
                    .as_ref()
                    .map(|u| u.origin().ascii_serialization())
            })
            .unwrap_or_else(|| public.clone());
        Ok(Some(Self {
            login_url: format!("{public}{}/login", gw.prefix),
            issuer: public,
            audience,
            keys,
            proxy: proxy::build(gw)?,
            config: gw.clone(),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// The `[gateway]` configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// `iss` of the assertions.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud` of the assertions.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The absolute login URL (`public_url + prefix + "/login"`).
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// The absolute login URL that comes back to `next` (a safe relative path, else `/`).
    pub fn login_url_to(&self, next: &str) -> String {
        let next = safe_next(next).unwrap_or_else(|| "/".to_owned());
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("{}?next={enc}", self.login_url)
    }

    /// The identity of a logged-in request, with a signed assertion (reused from the cache
    /// while it has more than 4 minutes left, see the module docs).
    pub fn identity(
        &self,
        state: &AppState,
        user: &CurrentUser,
        headers: &HeaderMap,
    ) -> Result<Identity, AppError> {
        let account = &user.account;
        let email = user.email(state, headers);
        let now = state.now_ms().div_euclid(1000);
        let fresh = |c: &Cached| {
            c.exp - now > ASSERTION_REUSE_MIN_LEFT_SECS
                && c.account == account.id
                && c.sub == account.sub
                && c.name == account.display_name
                && c.email == email
        };
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&user.session_hash)
                .filter(|c| fresh(c))
                .map(|c| c.assertion.clone())
        });
        let assertion = match cached {
            Some(a) => a,
            None => {
                let exp = now + ASSERTION_TTL_SECS;
                let claims = Claims {
                    iss: &self.issuer,
                    aud: &self.audience,
                    sub: &account.sub,
                    account: &account.id,
                    name: &account.display_name,
                    email: email.as_deref(),
                    iat: now,
                    exp,
                    jti: random_id(16),
                };
                let signed: Arc<str> = self
                    .keys
                    .sign(&claims)
                    .map_err(|e| AppError::Internal(Box::new(e)))?
                    .into();
                self.remember(
                    &user.session_hash,
                    Cached {
                        account: account.id.clone(),
                        sub: account.sub.clone(),
                        name: account.display_name.clone(),
                        email: email.clone(),
                        assertion: signed.clone(),
                        exp,
                    },
                    now,
                );
                signed
            }
        };
        Ok(Identity {
            user: account.sub.clone(),
            account: account.id.clone(),
            name: account.display_name.clone(),
            email,
            assertion,
        })
    }

    fn remember(&self, session_hash: &str, entry: Cached, now: i64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= ASSERTION_CACHE_MAX && !cache.contains_key(session_hash) {
            cache.retain(|_, c| c.exp - now > ASSERTION_REUSE_MIN_LEFT_SECS);
            if cache.len() >= ASSERTION_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(session_hash.to_owned(), entry);
    }

    /// Drops the cached identity of a session (at logout).
    pub fn forget(&self, session_hash: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(session_hash);
        }
    }

    /// Drops every cached identity of an account (at unregister and unlink: all its
    /// sessions end).
    pub fn forget_account(&self, account_id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, c| c.account != account_id);
        }
    }

    /// The identity of a request's session: from the cache while fresh (no database query,
    /// no signature; see the module docs), else from the store, signed anew. `None`
    /// without a valid session.
    pub async fn request_identity(
        &self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, AppError> {
        let now = state.now_ms().div_euclid(1000);
        let cookie = read_cookie(headers, &cookie_name(state, SESSION_COOKIE));
        if let Some(id) = cookie {
            let key = session_key(&id);
            let hit = self.cache.lock().ok().and_then(|cache| {
                cache
                    .get(&key)
                    .filter(|c| c.exp - now > ASSERTION_REUSE_MIN_LEFT_SECS)
                    .map(|c| Identity {
                        user: c.sub.clone(),
                        account: c.account.clone(),
                        name: c.name.clone(),
                        email: c.email.clone(),
                        assertion: c.assertion.clone(),
                    })
            });
            if hit.is_some() {
                return Ok(hit);
            }
        }
        match CurrentUser::load(state, headers).await? {
            Some(user) => Ok(Some(self.identity(state, &user, headers)?)),
            None => Ok(None),
        }
    }

    /// The 401 of a request without a session: JSON `{"error":"unauthenticated",
    /// "login_url":…}` with `WWW-Authenticate`.
    pub fn unauthenticated(&self, next: &str) -> Response {
        let login_url = self.login_url_to(next);
        let body = serde_json::json!({ "error": "unauthenticated", "login_url": login_url });
        let challenge = format!("LineLogin login_url=\"{login_url}\"");
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// The gateway's own routes (relative to the prefix).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/auth", get(auth))
        .route("/auth/redirect", get(auth_redirect))
        .merge(api::router())
}

/// `GET prefix/.well-known/jwks.json`.
async fn jwks(State(state): State<AppState>) -> Result<Response, AppError> {
    let gw = state.gateway().ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        gw.keys().jwks().to_owned(),
    )
        .into_response())
}

/// 200 with the identity headers for a logged-in request.
fn with_identity(identity: &Identity) -> Response {
    let mut resp = StatusCode::OK.into_response();
    identity.write(resp.headers_mut());
    resp
}

/// `GET prefix/auth` (nginx `auth_request`): 200 with the identity headers, or 401.
async fn auth(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let gw = state.gateway().ok_or(AppError::NotFound)?;
    match gw.request_identity(&state, &headers).await? {
        Some(identity) => Ok(with_identity(&identity)),
        None => Ok(gw.unauthenticated(original_uri(&headers))),
    }
}

/// `GET prefix/auth/redirect` (Caddy `forward_auth`, Traefik ForwardAuth): 200 with the
/// identity headers, or 302 to the login page coming back to the original URI.
async fn auth_redirect(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let gw = state.gateway().ok_or(AppError::NotFound)?;
    match gw.request_identity(&state, &headers).await? {
        Some(identity) => Ok(with_identity(&identity)),
        None => Ok((
            StatusCode::FOUND,
            [(header::LOCATION, gw.login_url_to(original_uri(&headers)))],
        )
            .into_response()),
    }
}

/// The URI the user asked for, as the front proxy reports it: `X-Forwarded-Uri`, else
/// `X-Original-URI`, else `/` (sanitized later by [`Gateway::login_url_to`]).
fn original_uri(headers: &HeaderMap) -> &str {
    ["x-forwarded-uri", "x-original-uri"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or("/")
}

/// The app with the gateway: linelogin's router (its layers included) under the prefix;
/// everywhere else the proxy to the upstream ([`proxy`]), or without one a plain 404.
pub(crate) fn mount(inner: Router<AppState>, state: AppState) -> Router {
    let prefix = state.settings().base_path.clone();
    let router = Router::new().nest(&prefix, inner);
    let proxied = state.gateway().is_some_and(|gw| gw.proxy.is_some());
    let router = if proxied {
        router.fallback(proxy::handle)
    } else {
        router.fallback(|| async { StatusCode::NOT_FOUND })
    };
    router.with_state(state)
}
