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
use crate::session::{self, CurrentUser};
use crate::state::AppState;
use crate::store::StoreError;

/// How long the [`LANG_COOKIE`] remembers the language switch (one year).
const LANG_COOKIE_TTL_SECS: i64 = 31_536_000;

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
    IdentityRejected(#[source] Cause),
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
    BadUpstream(#[source] Cause),
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
    /// The store's error is kept whole (its `Display` already says "database unavailable").
    #[error(transparent)]
    DatabaseUnavailable(StoreError),
    /// No such page.
    #[error("not found")]
    NotFound,
    /// Anything else; the detail is logged, the page says "unexpected error".
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
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
            e @ StoreError::Unavailable(_) => AppError::DatabaseUnavailable(e),
            other => AppError::Internal(Box::new(other)),
        }
    }
}

impl From<pages::PagesError> for AppError {
    fn from(e: pages::PagesError) -> Self {
        AppError::Internal(Box::new(e))
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
            line_login::Error::IdToken(err) => AppError::IdentityRejected(Box::new(err)),
            other => AppError::BadUpstream(Box::new(other)),
        }
    }
}

/// The cause of a failure, kept as the error's `source` so a log can walk the chain: an
/// underlying error, or a fixed secret-free message where there is none (`"…".into()`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An underlying error and what was being done when it happened (`"{doing}: {source}"`).
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct Context {
    doing: &'static str,
    #[source]
    source: Cause,
}

impl Context {
    /// `source`, and what was being done when it happened.
    pub fn new(doing: &'static str, source: impl Into<Cause>) -> Self {
        Context {
            doing,
            source: source.into(),
        }
    }
}

/// `source` as a [`Cause`] that says what was being done.
pub fn context(doing: &'static str, source: impl Into<Cause>) -> Cause {
    Box::new(Context::new(doing, source))
}

/// How a failure is logged by [`AppError`]'s `IntoResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAs {
    /// A fault on our side or LINE's (`error`).
    Fault,
    /// A refusal that sheds load or waits for something (`info`): LINE unavailable, busy,
    /// too many pending logins.
    Shed,
    /// A client error anyone can cause at any rate (LOG-05): one line each only at `debug`;
    /// the routes count them per reason (`routes::limits::Rejections`) and log rate-limited
    /// summaries.
    Routine,
}

/// How the server answers one [`AppError`] (see [`AppError::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short fixed reason code (for logs, the rejection counters and the error-page marker).
    pub reason: &'static str,
    /// What the error page says.
    pub kind: ErrorKind,
    /// The log level.
    pub log: LogAs,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    fn retry(self, secs: u64) -> Self {
        Answer {
            retry_after: Some(secs),
            ..self
        }
    }
}

impl AppError {
    /// The answer to this error: status, reason code, page, log level and `Retry-After`, one
    /// row per variant (a new variant is one new row).
    #[rustfmt::skip]
    pub fn answer(&self) -> Answer {
        use AppError as E;
        use ErrorKind as K;
        use LogAs::{Fault, Routine, Shed};
        use StatusCode as S;
        let row = |status, reason, kind, log| Answer { status, reason, kind, log, retry_after: None };
        match self {
            E::StateMismatch => row(S::BAD_REQUEST, "state_mismatch", K::StateMismatch, Routine),
            E::BadCallback(_) => row(S::BAD_REQUEST, "bad_callback", K::BadCallback, Routine),
            E::LoginCancelled => row(S::OK, "login_cancelled", K::Cancelled, Routine),
            E::LoginFailed(_) => row(S::BAD_REQUEST, "login_failed", K::LineError, Routine),
            E::IdentityRejected(_) => row(S::UNAUTHORIZED, "identity_rejected", K::IdToken, Routine),
            E::CodeRejected => row(S::BAD_REQUEST, "code_rejected", K::CodeExpired, Routine),
            E::LineUnavailable { retry_after, .. } => row(S::SERVICE_UNAVAILABLE, "line_unavailable", K::Unavailable, Shed)
                .retry(retry_after.as_secs().max(1)),
            E::BadUpstream(_) => row(S::BAD_GATEWAY, "bad_upstream", K::BadUpstream, Fault),
            E::LoginRequired => row(S::UNAUTHORIZED, "login_required", K::LoginRequired, Routine),
            E::Csrf(_) => row(S::FORBIDDEN, "csrf", K::Csrf, Routine),
            E::AccountMismatch => row(S::FORBIDDEN, "account_mismatch", K::AccountMismatch, Routine),
            E::Busy => row(S::SERVICE_UNAVAILABLE, "busy", K::Busy, Shed).retry(2),
            E::DatabaseUnavailable(_) => row(S::SERVICE_UNAVAILABLE, "database_unavailable", K::DatabaseUnavailable, Fault)
                .retry(DATABASE_RETRY_AFTER_SECS),
            E::NotFound => row(S::NOT_FOUND, "not_found", K::NotFound, Routine),
            E::Internal(_) => row(S::INTERNAL_SERVER_ERROR, "internal", K::Internal, Fault),
            E::TooManyRequests { retry_after } => row(S::TOO_MANY_REQUESTS, "too_many_requests", K::TooMany, Routine)
                .retry(retry_after.as_secs().max(1)),
            E::PendingLoginsFull => row(S::SERVICE_UNAVAILABLE, "pending_logins_full", K::TooMany, Shed).retry(5),
        }
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        self.answer().status
    }

    /// A short fixed reason code (for logs and the error-page marker).
    pub fn reason(&self) -> &'static str {
        self.answer().reason
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
        let answer = self.answer();
        let reason = answer.reason;
        match answer.log {
            LogAs::Fault => tracing::error!(reason, error = %self, "request failed"),
            LogAs::Shed => tracing::info!(reason, error = %self, "request rejected"),
            LogAs::Routine => tracing::debug!(reason, error = %self, "request rejected"),
        }
        let mut resp = (answer.status, ErrorPage(answer.kind).into_extension()).into_response();
        if let Some(secs) = answer.retry_after {
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
    if let Some(l) = lang_switch {
        let cookie = session::cookie_builder(LANG_COOKIE, l.code(), LANG_COOKIE_TTL_SECS);
        resp.headers_mut()
            .append(header::SET_COOKIE, session::set_cookie_header(cookie));
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn every_variant() -> Vec<AppError> {
        let io = || std::io::Error::other("disk on fire");
        vec![
            AppError::StateMismatch,
            AppError::BadCallback("dup".into()),
            AppError::LoginCancelled,
            AppError::LoginFailed("server_error"),
            AppError::IdentityRejected("bad nonce".into()),
            AppError::CodeRejected,
            AppError::LineUnavailable {
                retry_after: Duration::from_millis(10),
                detail: "breaker open".into(),
            },
            AppError::BadUpstream("no ID token".into()),
            AppError::LoginRequired,
            AppError::Csrf("token missing"),
            AppError::AccountMismatch,
            AppError::Busy,
            AppError::DatabaseUnavailable(StoreError::Unavailable("locked".into())),
            AppError::NotFound,
            AppError::Internal(context("encode pending login", io())),
            AppError::TooManyRequests {
                retry_after: Duration::from_secs(7),
            },
            AppError::PendingLoginsFull,
        ]
    }

    #[test]
    fn the_table_logs_server_errors_and_keeps_reasons_apart() {
        let all = every_variant();
        let mut reasons: Vec<_> = all.iter().map(AppError::reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len(), "one reason code per variant");
        for e in &all {
            let a = e.answer();
            // Client errors are routine; every 5xx is logged above debug.
            assert_eq!(a.log == LogAs::Routine, !a.status.is_server_error(), "{e}");
            // Every 503 and 429 says when to come back.
            let must_retry = matches!(a.status.as_u16(), 429 | 503);
            assert_eq!(a.retry_after.is_some(), must_retry, "{e}");
        }
    }

    #[test]
    fn answers_carry_status_page_and_retry_after() {
        let resp = AppError::LineUnavailable {
            retry_after: Duration::from_millis(10),
            detail: String::new(),
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            resp.headers()[header::RETRY_AFTER],
            "1",
            "at least a second"
        );
        assert!(matches!(
            resp.extensions().get::<ErrorPage>(),
            Some(ErrorPage(ErrorKind::Unavailable))
        ));
        let resp = AppError::PendingLoginsFull.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
        assert!(matches!(
            resp.extensions().get::<ErrorPage>(),
            Some(ErrorPage(ErrorKind::TooMany))
        ));
    }

    #[test]
    fn causes_stay_error_sources_and_display_is_unchanged() {
        let e = AppError::Internal(context(
            "encode pending login",
            std::io::Error::other("disk on fire"),
        ));
        assert_eq!(
            e.to_string(),
            "internal error: encode pending login: disk on fire"
        );
        let ctx = e.source().expect("the context");
        let io = ctx.source().expect("the io error");
        assert_eq!(io.to_string(), "disk on fire");
        assert!(io.downcast_ref::<std::io::Error>().is_some());

        let e = AppError::from(StoreError::Conflict("accounts_sub".into()));
        assert_eq!(e.to_string(), "internal error: conflict on accounts_sub");
        assert!(
            e.source()
                .and_then(|s| s.downcast_ref::<StoreError>())
                .is_some()
        );
        let e = AppError::from(StoreError::Unavailable("locked".into()));
        assert_eq!(e.to_string(), "database unavailable: locked");
        assert_eq!(e.reason(), "database_unavailable");

        // A driver's error under the store's: the chain reaches it, Display reads as before.
        let store = StoreError::Unavailable(crate::store::Cause::context(
            "opening the database",
            std::io::Error::other("permission denied"),
        ));
        assert_eq!(
            store.to_string(),
            "database unavailable: opening the database: permission denied"
        );
        let e = AppError::from(store.clone());
        assert_eq!(e.to_string(), store.to_string());
        let mut chain = std::iter::successors(e.source(), |s| (*s).source());
        assert!(chain.any(|s| s.downcast_ref::<std::io::Error>().is_some()));
        let StoreError::Unavailable(cause) = store else {
            unreachable!()
        };
        assert!(cause.get_ref().downcast_ref::<Context>().is_some());
    }
}
