//! # line-login
//!
//! A typed client for the LINE Login v2.1 platform, built to follow LINE's LINE Login
//! development guidelines by construction.
//!
//! ## Contents
//! - [`authorize`]: the authorization request with every documented parameter; random
//!   `state`, `nonce` and PKCE (`S256`) verifier.
//! - [`callback`]: strict callback parsing and the constant-time state check, with a typed
//!   state-mismatch outcome (offer a retry with `disable_auto_login=true`).
//! - [`LineClient`]: every v2.1 API call (token, refresh, verify ×2, revoke, userinfo,
//!   profile, friendship, channel tokens, deauthorize, JWKS, discovery).
//! - [`id_token`]: local ID token verification with a pinned algorithm (HS256 with the channel
//!   secret for web login; ES256 with a cached JWKS for SDK/LIFF tokens).
//! - [`policy`]: the process-wide outbound policy — rate limiter, retries with backoff and a
//!   retry budget, a circuit breaker per endpoint class, a channel-wide cool-down that honours
//!   `Retry-After` up to a ceiling — so a process cannot send mass requests to LINE.
//! - [`observer`]: one record per API attempt (`x-line-request-id`, time, method, endpoint,
//!   status, duration), for the guideline logs and metrics.
//! - [`secret`] and [`types`]: newtypes; secrets print `[redacted]` and compare in constant time.
//! - [`wire`]: the JSON bodies, shared with the linelogin emulator.
//!
//! ## Example
//! ```no_run
//! # async fn login(query: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use line_login::{LineClient, callback::{verify_callback, CallbackOutcome}};
//! use line_login::{secret::ChannelSecret, types::ChannelId};
//!
//! let client = LineClient::builder(ChannelId::new("1234567890"), ChannelSecret::new("…")).build()?;
//! // 1. /login: build the request, keep `pending` server-side, redirect to `pending.url`.
//! let pending = client.authorization_request("https://app.example/callback".parse()?).build()?;
//! // 2. /callback: check the state, then exchange the code and verify the ID token.
//! match verify_callback(query, &pending.state)? {
//!     CallbackOutcome::Authorized(response) => {
//!         let login = client.complete_login(&pending, &response).await?;
//!         let user = login.claims.map(|c| c.sub);
//!         # let _ = user;
//!     }
//!     CallbackOutcome::Failed(error) => { /* a friendly page keyed by error.error */ }
//!     CallbackOutcome::StateMismatch { .. } => { /* offer a retry with disable_auto_login */ }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Security
//! - No `Display` or `Debug` output of this crate contains a secret, a token or a URL query.
//! - Redirects are never followed; response bodies are read up to a bound.
//! - The ID token algorithm is chosen by the caller, never by the token.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod assertion;
pub mod authorize;
pub mod callback;
pub mod client;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod id_token;
pub mod observer;
pub mod pkce;
pub mod policy;
pub mod redact;
pub mod secret;
pub mod types;
pub mod wire;

pub use client::{DeauthorizeOutcome, LineClient, LineClientBuilder, LoginResult};
pub use error::{ApiError, Error, LineErrorBody};
