//! # linelogin-server
//!
//! The web app that LINE's LINE Login development guidelines are written for, as a ready
//! server and as a router other Rust apps mount.
//!
//! A person opens it, logs in with LINE, sees their profile, and can log out, unlink LINE or
//! unregister. Unlinking and unregistering deauthorize the app at LINE for that user, every
//! time, through a durable outbox; the pages say beforehand what will happen.
//!
//! ## Contents
//! - [`config`]: layered configuration (TOML + `LINELOGIN_*` environment), secrets redacted.
//! - [`app`]: the router (module `routes`). [`serve`] binds and runs it with the worker.
//! - [`accounts`]: account operations — login, logout, unregister, unlink, the user's token —
//!   for apps that call them from their own handlers.
//! - [`session`]: database-backed sessions, the [`session::CurrentUser`] extractor, CSRF.
//! - [`store`]: the storage trait with SQLite (default, WAL) and PostgreSQL backends.
//! - [`crypto`]: AEAD token encryption bound to user and token kind.
//! - [`deauth`]: the deauthorization outbox and worker.
//! - [`pages`] and [`i18n`]: server-rendered HTML in English and Japanese.
//! - [`audit`]: the hook for the guideline logs.
//! - [`metrics`]: Prometheus metrics (`[metrics] listen`) and the request log.
//! - [`gateway`]: `[gateway]`, linelogin in front of another web app (identity headers,
//!   signed assertion, forward auth).
//!
//! ## Example
//! ```no_run
//! # async fn run(config: linelogin_server::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let state = linelogin_server::AppState::builder(&config).build().await?;
//! let worker = linelogin_server::deauth::worker::spawn(state.clone());
//! let router = axum::Router::new().merge(linelogin_server::app(state));
//! # let _ = (router, worker); Ok(()) }
//! ```
//!
//! ## Security
//! - State, nonce and PKCE per login, kept server-side and bound to the browser by a
//!   `SameSite=Lax` cookie; single use; 10 minutes.
//! - ID tokens verified locally with HS256 pinned; the profile's user id must match.
//! - Sessions: 256-bit random ids, stored hashed, rotated at login, ended at logout and on
//!   unregister/unlink everywhere. CSRF token, plus urlencoded body, Fetch Metadata and Origin/Referer checks (`session::CsrfChecked`) on every state change.
//! - Tokens encrypted with XChaCha20-Poly1305 bound to (issuer, user id, kind).
//! - CSP `default-src 'self'`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`.
#![warn(missing_docs)]
// Unit tests may bound real waits (the root clippy.toml's clock rule is for library code; the
// normal, non-test build of this crate still checks every line).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

// The public surface is what an embedding app and the operator tools use (configuration,
// state, the store, the composition root in `serve`, accounts and admin); the routes and the
// webhook outbox are reached through `app` and `serve` only.
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod deauth;
pub mod error;
pub mod gateway;
pub mod i18n;
pub mod maintenance;
pub mod metrics;
pub mod pages;
pub(crate) mod routes;
pub mod serve;
pub mod session;
pub mod state;
pub mod store;
pub(crate) mod webhook;

pub use error::AppError;
pub use routes::app;
pub use state::{AppState, StartError};
