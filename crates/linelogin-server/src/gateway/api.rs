//! The server-to-server API: the app starts an unregister or unlink itself, and reads an
//! account's state.
//!
//! Every request carries `Authorization: Bearer <[gateway] api_key>`, compared in constant
//! time; a missing or wrong key answers `401` JSON with `WWW-Authenticate: Bearer`. Without
//! an `api_key` the API is off: `404`. Routes (the gateway nests them under its prefix):
//!
//! - `GET /api/accounts/{account}` → `200 {account, userId, linked, deauthorization}`, where
//!   `deauthorization` is the latest job (`{id, reason, status, attempts, lastError,
//!   createdAt, finishedAt}`) or `null`. An unregistered account (deleted, with a job) still
//!   answers, `linked: false` and `registered: false`, so the app can follow its job; an
//!   account never seen answers `404`.
//! - `POST /api/accounts/{account}/unregister` and `…/unlink` → `202 {"job": id}`: the same
//!   transaction and durable deauthorization job as the browser pages
//!   ([`accounts::request_deauthorization`]). When linelogin holds no usable LINE token for
//!   the user (it needs the user's fresh login), `409 {"error": "login_required", "url": …}`
//!   with the gateway's own unregister (or unlink) page, where the user logs in again and
//!   confirms: the app sends the user there. An unlinked account answers `409
//!   {"error": "not_linked"}` to both.
//!
//! Errors are JSON `{"error": code, "message": text}`; a database down or slow answers `503`
//! with `Retry-After`, never a 500.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::accounts::{self, DeauthStart};
use crate::config::{ApiKey, Config};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AccountStatus, DeauthReason, StoreError};

/// The API's settings, from `[gateway]`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The bearer key.
    pub key: ApiKey,
    /// `public_url` + `prefix`: where the gateway's own pages are (the `409` answer's URL).
    pub pages_base: String,
}

impl ApiSettings {
    /// `Some` when `[gateway] api_key` is set.
    pub fn from_config(config: &Config) -> Option<Self> {
        let gateway = config.gateway.as_ref()?;
        let key = gateway.api_key.clone()?;
        let public = config.public_url.as_str().trim_end_matches('/');
        Some(Self {
            key,
            pages_base: format!("{public}{}", gateway.prefix),
        })
    }
}

/// Why an API request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API is off (no `api_key`).
    #[error("not found")]
    Off,
    /// No or a wrong bearer key.
    #[error("a valid API key is required (Authorization: Bearer …)")]
    Unauthorized,
    /// The account id is malformed.
    #[error("malformed account id")]
    BadAccount,
    /// No such account.
    #[error("unknown account")]
    UnknownAccount,
    /// The account is not linked to LINE (already unlinked).
    #[error("the account is not linked to LINE")]
    NotLinked,
    /// No usable token is held: the user must log in again on the gateway's page.
    #[error("the user must log in again to confirm")]
    LoginRequired {
        /// The gateway's page for it.
        url: String,
    },
    /// The database is down or slow, or busy with this user.
    #[error("temporarily unavailable")]
    Unavailable,
    /// LINE could not be reached (while preparing the re-login).
    #[error("LINE is unavailable")]
    LineUnavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Off => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadAccount => (StatusCode::BAD_REQUEST, "bad_account"),
            ApiError::UnknownAccount => (StatusCode::NOT_FOUND, "unknown_account"),
            ApiError::NotLinked => (StatusCode::CONFLICT, "not_linked"),
            ApiError::LoginRequired { .. } => (StatusCode::CONFLICT, "login_required"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::LineUnavailable => (StatusCode::BAD_GATEWAY, "line_unavailable"),
        };
        let mut body = serde_json::json!({"error": code, "message": self.to_string()});
        if let (ApiError::LoginRequired { url }, Some(map)) = (&self, body.as_object_mut()) {
            map.insert("url".into(), serde_json::Value::String(url.clone()));
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Unavailable => {
                headers.insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(crate::error::DATABASE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::UnknownAccount,
            other => {
                tracing::warn!(error = %other, "API: store error");
                ApiError::Unavailable
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound => ApiError::UnknownAccount,
            AppError::LineUnavailable { .. } | AppError::BadUpstream(_) => {
                ApiError::LineUnavailable
            }
            other => {
                tracing::warn!(error = %other, "API: request failed");
                ApiError::Unavailable
            }
        }
    }
}

/// The API's routes (`/api/accounts/{account}`, `…/unregister`, `…/unlink`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/accounts/{account}", get(show))
        .route("/api/accounts/{account}/unregister", post(unregister))
        .route("/api/accounts/{account}/unlink", post(unlink))
}

/// Checks the bearer key (constant time); the API's settings when it is on.
fn authorize<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a ApiSettings, ApiError> {
    let api = state.settings().api.as_ref().ok_or(ApiError::Off)?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ApiError::Unauthorized)?;
    if api.key.verify(presented) {
        Ok(api)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Our account ids are short URL-safe strings; anything else is refused before the store.
fn check_account(account: &str) -> Result<(), ApiError> {
    let ok = !account.is_empty()
        && account.len() <= 128
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadAccount)
    }
}

/// Bounds a store call by the database's timeouts (a stalled database answers 503).
async fn bounded<T>(
    state: &AppState,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(state.settings().database.call_bound(), call)
        .await
        .map_err(|_| ApiError::Unavailable)?
}

async fn show(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    check_account(&account)?;
    let (found, job) = bounded(&state, async {
        let found = state.store().account(&account).await?;
        let job = state.store().latest_job(&account).await?;
        Ok((found, job))
    })
    .await?;
    let body = match (found, job) {
        (Some(a), job) => serde_json::json!({
            "account": a.id,
            "userId": a.sub,
            "linked": a.status == AccountStatus::Linked,
            "registered": true,
            "deauthorization": job,
        }),
        // Unregistered: the account is gone, its job remains.
        (None, Some(job)) => serde_json::json!({
            "account": account,
            "userId": job.user_id,
            "linked": false,
            "registered": false,
            "deauthorization": job,
        }),
        (None, None) => return Err(ApiError::UnknownAccount),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

async fn unregister(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    deauthorize(&state, &account, &headers, DeauthReason::Unregister).await
}

async fn unlink(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    deauthorize(&state, &account, &headers, DeauthReason::Unlink).await
}

async fn deauthorize(
    state: &AppState,
    account: &str,
    headers: &HeaderMap,
    reason: DeauthReason,
) -> Result<Response, ApiError> {
    let api = authorize(state, headers)?;
    check_account(account)?;
    let page = match reason {
        DeauthReason::Unregister => "unregister",
        DeauthReason::Unlink => "unlink",
    };
    let login_required = || ApiError::LoginRequired {
        url: format!("{}/account/{page}", api.pages_base),
    };
    let found = bounded(state, async { Ok(state.store().account(account).await?) })
        .await?
        .ok_or(ApiError::UnknownAccount)?;
    if found.status != AccountStatus::Linked {
        return Err(ApiError::NotLinked);
    }
    // No usable token: a fresh login of the user is needed, which only the user can do (on
    // the gateway's page). Checked here so that the API never starts a login itself.
    let now = state.now_ms();
    let usable = bounded(state, async { Ok(state.store().tokens(&found.id).await?) })
        .await?
        .and_then(|stored| accounts::open_tokens(state, &found.issuer, &found.sub, &stored))
        .is_some_and(|t| t.access_valid(now) || t.refresh_alive(now));
    if !usable {
        return Err(login_required());
    }
    let started = bounded(state, async {
        Ok(accounts::request_deauthorization(state, &found, reason).await?)
    })
    .await?;
    match started {
        DeauthStart::Enqueued { job_id } => {
            tracing::info!(job = %job_id, reason = reason.as_str(), "API: deauthorization job committed");
            Ok((
                StatusCode::ACCEPTED,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(serde_json::json!({"job": job_id})),
            )
                .into_response())
        }
        // The tokens went away in between (a logout elsewhere).
        DeauthStart::NeedsReauth(_) => Err(login_required()),
    }
}
