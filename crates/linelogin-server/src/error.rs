//! [`AppError`]: every failure a handler can answer with, mapped to a status and a user-safe
//! page once, here. The detail goes to the tracing log (never a secret: the variants carry only
//! fixed reason codes and library errors whose `Display` is secret-free); the page shows a
//! fixed, localized message and never echoes input.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use axum::extract::State;

use crate::i18n::{LANG_COOKIE, Lang};
use crate::pages;
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::store::StoreError;

/// `Retry-After` of a 503 for an unavailable database, in seconds.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

/// A request failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The callback's state is missing, unknown, expired or not this browser's (SP-01..04).
    #[error("state mismatch")]
    StateMismatch,
    /// The callback query is malformed (duplicates, oversized, conflicting).
    #[error("bad callback: {0}")]
    BadCallback(String),
    /// The user cancelled at LINE (`ACCESS_DENIED`).
    #[error("login cancelled")]
    LoginCancelled,
    /// LINE sent another error callback (code only, allow-listed).
    #[error("login error callback: {0}")]
    LoginFailed(&'static str),
    /// The ID token (or the profile's user id) failed verification.
    #[error("identity rejected: {0}")]
    IdentityRejected(String),
    /// The authorization code was expired or used (`invalid_grant`).
    #[error("authorization code rejected")]
    CodeRejected,
    /// LINE is unavailable: 429, 5xx, timeout, breaker open, local rate limit.
    #[error("LINE unavailable: {detail}")]
    LineUnavailable {
        /// Seconds for `Retry-After`.
        retry_after: Duration,
        /// What happened (secret-free).
        detail: String,
    },
    /// LINE answered something unusable.
    #[error("bad answer from LINE: {0}")]
    BadUpstream(String),
    /// A page that needs a session was opened without one.
    #[error("login required")]
    LoginRequired,
    /// A state-changing request failed the CSRF checks.
    #[error("CSRF check failed: {0}")]
    Csrf(&'static str),
    /// The re-authentication was done with another LINE account.
    #[error("re-authentication with another LINE account")]
    AccountMismatch,
    /// An earlier deauthorization of this user is being sent right now.
    #[error("deauthorization in flight")]
    Busy,
    /// The database is down, locked or too slow: a bounded wait ran out, or it answered with
    /// an error (access revoked, schema gone). 503 with `Retry-After`, never a hang or a 500.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// No such page.
    #[error("not found")]
    NotFound,
    /// Anything else; the detail is logged, the page says "unexpected error".
    #[error("internal error: {0}")]
    Internal(String),
    /// This client sent more requests than the per-client inbound limit allows (429).
    #[error("too many requests from this client")]
    TooManyRequests {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// Too many logins are pending store-wide; no new one is started (503).
    #[error("too many pending logins")]
    PendingLoginsFull,
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(_) => AppError::Busy,
            StoreError::Unavailable(detail) => AppError::DatabaseUnavailable(detail),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<pages::PagesError> for AppError {
    fn from(e: pages::PagesError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<line_login::Error> for AppError {
    fn from(e: line_login::Error) -> Self {
        if e.is_unavailable() {
            return AppError::LineUnavailable {
                retry_after: e.retry_after().unwrap_or(Duration::from_secs(5)),
                detail: e.to_string(),
            };
        }
        if e.is_invalid_grant() {
            return AppError::CodeRejected;
        }
        match e {
            line_login::Error::IdToken(err) => AppError::IdentityRejected(err.to_string()),
            other => AppError::BadUpstream(other.to_string()),
        }
    }
}

impl AppError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::StateMismatch
            | AppError::BadCallback(_)
            | AppError::LoginFailed(_)
            | AppError::CodeRejected => StatusCode::BAD_REQUEST,
            AppError::LoginCancelled => StatusCode::OK,
            AppError::IdentityRejected(_) | AppError::LoginRequired => StatusCode::UNAUTHORIZED,
            AppError::Csrf(_) | AppError::AccountMismatch => StatusCode::FORBIDDEN,
            AppError::LineUnavailable { .. } | AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadUpstream(_) => StatusCode::BAD_GATEWAY,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PendingLoginsFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short fixed reason code (for logs and the error-page marker).
    pub fn reason(&self) -> &'static str {
        match self {
            AppError::StateMismatch => "state_mismatch",
            AppError::BadCallback(_) => "bad_callback",
            AppError::LoginCancelled => "login_cancelled",
            AppError::LoginFailed(_) => "login_failed",
            AppError::IdentityRejected(_) => "identity_rejected",
            AppError::CodeRejected => "code_rejected",
            AppError::LineUnavailable { .. } => "line_unavailable",
            AppError::BadUpstream(_) => "bad_upstream",
            AppError::LoginRequired => "login_required",
            AppError::Csrf(_) => "csrf",
            AppError::AccountMismatch => "account_mismatch",
            AppError::Busy => "busy",
            AppError::DatabaseUnavailable(_) => "database_unavailable",
            AppError::NotFound => "not_found",
            AppError::Internal(_) => "internal",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::PendingLoginsFull => "pending_logins_full",
        }
    }
}

/// Marker put on error responses; [`render_errors`] turns it into a localized page.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage(pub ErrorKind);

/// What an error page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorKind {
    StateMismatch,
    BadCallback,
    Cancelled,
    LineError,
    IdToken,
    CodeExpired,
    Unavailable,
    BadUpstream,
    LoginRequired,
    Csrf,
    AccountMismatch,
    Busy,
    NotFound,
    Internal,
    Method,
    TooLarge,
    TooMany,
    DatabaseUnavailable,
    /// The gateway's upstream could not be reached or broke the exchange (502).
    UpstreamDown,
    /// The gateway's upstream did not answer in time (504).
    UpstreamTimeout,
    /// A request the gateway cannot forward as it is (400).
    BadRequest,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error()
            && !matches!(
                self,
                AppError::LineUnavailable { .. } | AppError::Busy | AppError::PendingLoginsFull
            )
        {
            tracing::error!(reason = self.reason(), error = %self, "request failed");
        } else if status.is_server_error() {
            tracing::info!(reason = self.reason(), error = %self, "request rejected");
        } else {
            // Client errors are routine and anyone can cause them at any rate (LOG-05): one
            // line each only at debug; the routes count them per reason
            // (`routes::limits::Rejections`) and log rate-limited summaries.
            tracing::debug!(reason = self.reason(), error = %self, "request rejected");
        }
        let kind = match &self {
            AppError::StateMismatch => ErrorKind::StateMismatch,
            AppError::BadCallback(_) => ErrorKind::BadCallback,
            AppError::LoginCancelled => ErrorKind::Cancelled,
            AppError::LoginFailed(_) => ErrorKind::LineError,
            AppError::IdentityRejected(_) => ErrorKind::IdToken,
            AppError::CodeRejected => ErrorKind::CodeExpired,
            AppError::LineUnavailable { .. } => ErrorKind::Unavailable,
            AppError::BadUpstream(_) => ErrorKind::BadUpstream,
            AppError::LoginRequired => ErrorKind::LoginRequired,
            AppError::Csrf(_) => ErrorKind::Csrf,
            AppError::AccountMismatch => ErrorKind::AccountMismatch,
            AppError::Busy => ErrorKind::Busy,
            AppError::DatabaseUnavailable(_) => ErrorKind::DatabaseUnavailable,
            AppError::NotFound => ErrorKind::NotFound,
            AppError::Internal(_) => ErrorKind::Internal,
            AppError::TooManyRequests { .. } | AppError::PendingLoginsFull => ErrorKind::TooMany,
        };
        let mut resp = (status, ErrorPage(kind).into_extension()).into_response();
        let retry_after = match &self {
            AppError::LineUnavailable { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            AppError::Busy => Some(2),
            AppError::TooManyRequests { retry_after } => Some(retry_after.as_secs().max(1)),
            AppError::PendingLoginsFull => Some(5),
            AppError::DatabaseUnavailable(_) => Some(DATABASE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl ErrorPage {
    fn into_extension(self) -> axum::Extension<ErrorPage> {
        axum::Extension(self)
    }
}

/// Renders error markers (and bare 404/405/413 answers from the router) as localized pages.
/// Error pages go through the configured templates ([`AppState::pages`]) and show the
/// logged-in header when the request has a valid session. A `?lang=en|ja` (the header's
/// language switch) is remembered in the [`LANG_COOKIE`] on any response.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lang = Lang::of_request(req.uri().query(), req.headers());
    let lang_switch = Lang::from_query(req.uri().query());
    let req_headers = req.headers().clone();
    let is_api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    if let Some(l) = lang_switch
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
            l.code()
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    let kind = match resp.extensions().get::<ErrorPage>() {
        Some(ErrorPage(kind)) => *kind,
        None => match resp.status() {
            StatusCode::NOT_FOUND if resp.headers().get(header::CONTENT_TYPE).is_none() => {
                ErrorKind::NotFound
            }
            StatusCode::METHOD_NOT_ALLOWED => ErrorKind::Method,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
            _ => return resp,
        },
    };
    let (parts, _) = resp.into_parts();
    render_kind(&state, lang, &req_headers, kind, parts, is_api).await
}

/// The error page (or, with `json`, `{"error": code}`) of `kind`, on the response head
/// `parts` (status and headers kept). `req_headers` are the request's (for the header user).
pub(crate) async fn render_kind(
    state: &AppState,
    lang: Lang,
    req_headers: &http::HeaderMap,
    kind: ErrorKind,
    mut parts: http::response::Parts,
    json: bool,
) -> Response {
    if json {
        let body = serde_json::json!({ "error": error_code(kind) }).to_string();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    let t = lang.t();
    let (title, message, retry): (&str, &str, Option<&'static str>) = match kind {
        ErrorKind::StateMismatch => (t.error_title, t.err_state_mismatch, Some("/login?retry=1")),
        ErrorKind::BadCallback => (t.error_title, t.err_bad_callback, Some("/login?retry=1")),
        ErrorKind::Cancelled => (t.err_cancelled_title, t.err_cancelled, Some("/login")),
        ErrorKind::LineError => (t.error_title, t.err_line_error, Some("/login")),
        ErrorKind::IdToken => (t.error_title, t.err_id_token, Some("/login")),
        ErrorKind::CodeExpired => (t.error_title, t.err_code_expired, Some("/login")),
        ErrorKind::Unavailable => (t.error_title, t.err_unavailable, Some("/login")),
        ErrorKind::BadUpstream => (t.error_title, t.err_bad_upstream, Some("/login")),
        ErrorKind::LoginRequired => (t.error_title, t.err_login_required, Some("/login")),
        ErrorKind::Csrf => (t.error_title, t.err_csrf, None),
        ErrorKind::AccountMismatch => (t.error_title, t.err_account_mismatch, None),
        ErrorKind::Busy => (t.error_title, t.err_busy, Some("/login")),
        ErrorKind::NotFound => (t.error_title, t.err_not_found, None),
        ErrorKind::Internal => (t.error_title, t.err_internal, None),
        ErrorKind::Method => (t.error_title, t.err_method, None),
        ErrorKind::TooLarge => (t.error_title, t.err_too_large, None),
        ErrorKind::TooMany => (t.error_title, too_many_message(lang), Some("/")),
        // A passing outage on our side: the fixed "try again later" message.
        ErrorKind::DatabaseUnavailable => (t.error_title, t.err_internal, Some("/")),
        ErrorKind::UpstreamDown | ErrorKind::UpstreamTimeout | ErrorKind::BadRequest => {
            (t.error_title, gateway_message(kind, lang), None)
        }
    };
    // A failed session lookup (e.g. the database is down) just shows the logged-out header.
    // A refused flood (429/503 "too many") gets no lookup: it must stay cheap.
    let user = if kind == ErrorKind::TooMany {
        None
    } else {
        CurrentUser::load(state, req_headers).await.ok().flatten()
    };
    let header_user = user.as_ref().map(|u| pages::HeaderUser::of(&u.account));
    let html = state
        .pages()
        .error(lang, title, message, retry, header_user.as_ref())
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "error page template failed");
            pages::fallback_page_at(lang, &state.settings().base_path)
        });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(html))
}

fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::LoginRequired => "login_required",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Method => "method_not_allowed",
        ErrorKind::Csrf => "csrf",
        ErrorKind::Unavailable => "line_unavailable",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::TooMany => "too_many_requests",
        ErrorKind::DatabaseUnavailable => "database_unavailable",
        ErrorKind::UpstreamDown => "bad_gateway",
        ErrorKind::UpstreamTimeout => "gateway_timeout",
        ErrorKind::BadRequest => "bad_request",
        _ => "error",
    }
}

/// The text of the gateway's own error pages (the app behind it down or slow, or a request
/// that cannot be forwarded).
fn gateway_message(kind: ErrorKind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (ErrorKind::UpstreamTimeout, Lang::En) => {
            "The application did not answer in time. Please try again in a moment."
        }
        (ErrorKind::UpstreamTimeout, Lang::Ja) => {
            "アプリケーションが時間内に応答しませんでした。しばらくしてからもう一度お試しください。"
        }
        (ErrorKind::BadRequest, Lang::En) => "This request cannot be handled.",
        (ErrorKind::BadRequest, Lang::Ja) => "このリクエストは処理できません。",
        (_, Lang::En) => "The application is unreachable right now. Please try again in a moment.",
        (_, Lang::Ja) => {
            "現在アプリケーションに接続できません。しばらくしてからもう一度お試しください。"
        }
    }
}

/// The text of the 429/503 "too many" page (kept here rather than in `i18n` so the limits
/// stay one change).
fn too_many_message(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Too many requests right now. Please wait a moment and try again.",
        Lang::Ja => "現在リクエストが集中しています。しばらく待ってからもう一度お試しください。",
    }
}
