//! Proxy mode (`[gateway] upstream`): every request outside the prefix goes to the app, through
//! [`line_proxy`], outside linelogin's own layers (no CSP, body limit or `no-store` on the
//! app's responses).
//!
//! - With a session: forwarded with the identity headers.
//! - Without one, on a public path (`public_paths`): forwarded without them.
//! - Otherwise a browser navigation (`GET`/`HEAD` whose `Accept` has `text/html`) gets 302 to
//!   `public_url + prefix + "/login?next=<path+query>"`; anything else gets 401 JSON
//!   `{"error":"unauthenticated","login_url":…}` with `WWW-Authenticate`.
//!
//! Every inbound `X-LineLogin-*` header, and linelogin's cookies (session, pending login,
//! email, logged-out; with and without `__Host-`), are removed before the request goes
//! upstream; other cookies pass. A path with dot segments, `//`, a backslash or an encoded
//! `.`, `/` or `\` is never public (the app might normalize `/public/../admin` to `/admin`).
//! Upstream failures answer linelogin's error page (HTML for a browser, JSON otherwise): 502
//! (down or broken), 504 (no answer within `response_header_timeout_ms`), 413 (body over
//! `max_request_body_bytes`), 400 (a request target that cannot be forwarded); never a 500.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use line_proxy::{ForwardContext, Proxy, ProxyConfig, ProxyError};

use super::{GatewayError, HEADER_PREFIX};
use crate::error::ErrorKind;
use crate::i18n::Lang;
use crate::session::{EMAIL_COOKIE, LOGGED_OUT_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};
use crate::state::AppState;

/// linelogin's cookies, never passed upstream (both spellings: plain and `__Host-`).
const STRIPPED_COOKIES: [&str; 8] = [
    SESSION_COOKIE,
    LOGIN_COOKIE,
    EMAIL_COOKIE,
    LOGGED_OUT_COOKIE,
    "__Host-ll_session",
    "__Host-ll_login",
    "__Host-ll_email",
    "__Host-ll_logged_out",
];

/// The proxy to `[gateway] upstream`.
pub(super) fn build(config: &crate::config::GatewayConfig) -> Result<Option<Proxy>, GatewayError> {
    let Some(upstream) = &config.upstream else {
        return Ok(None);
    };
    let uri: http::Uri = upstream
        .as_str()
        .parse()
        .map_err(|_| GatewayError::Upstream("gateway.upstream is not a valid URI".into()))?;
    let mut pc = ProxyConfig::new(uri);
    pc.connect_timeout = std::time::Duration::from_millis(config.connect_timeout_ms);
    pc.response_header_timeout =
        std::time::Duration::from_millis(config.response_header_timeout_ms);
    pc.pool_idle_timeout = std::time::Duration::from_millis(config.pool_idle_timeout_ms);
    pc.max_request_body_bytes = config.max_request_body_bytes;
    pc.trusted_proxies = config.trusted_proxies.clone();
    Proxy::new(pc)
        .map(Some)
        .map_err(|e| GatewayError::Upstream(format!("gateway.upstream: {e}")))
}

/// Whether `path` may be matched against `public_paths`: no dot segment, no empty segment,
/// no backslash, nothing percent-encoded that could become `.`, `/` or `\`.
fn plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !(path.contains("//")
        || path.contains('\\')
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%25")
        || path.split('/').any(|seg| seg == "." || seg == ".."))
}

/// Whether the request is a browser navigation (gets a redirect rather than a 401).
fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && accepts_html(headers)
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The proxy-mode fallback: every request outside the prefix.
pub(super) async fn handle(state: State<AppState>, req: Request) -> Response {
    let mut resp = handle_inner(state, req).await;
    // The metrics count it as `route="upstream"`, not `unmatched`.
    resp.extensions_mut()
        .insert(crate::metrics::ProxiedUpstream);
    resp
}

async fn handle_inner(State(state): State<AppState>, req: Request) -> Response {
    let Some((gw, proxy)) = state
        .gateway()
        .and_then(|gw| gw.proxy.as_ref().map(|p| (gw, p)))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let path = req.uri().path().to_owned();
    let public = plain_path(&path) && gw.config.is_public(&path);
    let identity = match gw.request_identity(&state, req.headers()).await {
        Ok(identity) => identity,
        // The store is down: a public path still goes through (without identity).
        Err(_) if public => None,
        Err(e) => return app_error(&state, req.uri().query(), req.headers(), e).await,
    };
    let mut ctx = ForwardContext::new(peer, state.settings().public_scheme());
    ctx.strip_header_prefix = HEADER_PREFIX;
    ctx.strip_cookies = &STRIPPED_COOKIES;
    match &identity {
        Some(identity) => identity.write(&mut ctx.add),
        None if public => {}
        None => {
            let next = req
                .uri()
                .path_and_query()
                .map_or(path.as_str(), |p| p.as_str())
                .to_owned();
            if is_navigation(req.method(), req.headers()) {
                return (
                    StatusCode::FOUND,
                    [(header::LOCATION, gw.login_url_to(&next))],
                )
                    .into_response();
            }
            return gw.unauthenticated(&next);
        }
    }
    let lang = Lang::of_request(req.uri().query(), req.headers());
    // An error page needs only the session cookie (its header user) and Accept (HTML or
    // JSON): keep those two, not a copy of the whole request head on every forward.
    let mut page_headers = HeaderMap::with_capacity(2);
    for name in [header::COOKIE, header::ACCEPT] {
        for value in req.headers().get_all(&name) {
            page_headers.append(name.clone(), value.clone());
        }
    }
    match proxy.forward(req, ctx).await {
        Ok(resp) => resp.map(axum::body::Body::new),
        Err(e) => error_page(&state, lang, &page_headers, &e).await,
    }
}

/// linelogin's page (or JSON) for one of its own errors (the store down).
async fn app_error(
    state: &AppState,
    query: Option<&str>,
    req_headers: &HeaderMap,
    e: crate::error::AppError,
) -> Response {
    let lang = Lang::of_request(query, req_headers);
    let resp = e.into_response();
    match resp.extensions().get::<crate::error::ErrorPage>().copied() {
        Some(crate::error::ErrorPage(kind)) => {
            let (parts, _) = resp.into_parts();
            let json = !accepts_html(req_headers);
            crate::error::render_kind(state, lang, req_headers, kind, parts, json).await
        }
        None => resp,
    }
}

/// linelogin's page (or JSON) for a forwarding failure.
async fn error_page(
    state: &AppState,
    lang: Lang,
    req_headers: &HeaderMap,
    e: &ProxyError,
) -> Response {
    let status = e.status();
    let kind = match status {
        StatusCode::GATEWAY_TIMEOUT => ErrorKind::UpstreamTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
        StatusCode::BAD_REQUEST => ErrorKind::BadRequest,
        _ => ErrorKind::UpstreamDown,
    };
    // A server-side failure is the operator's to see; a bad request is the client's.
    if status.is_server_error() {
        tracing::warn!(error = %e, status = status.as_u16(), "gateway: upstream failed");
    } else {
        tracing::debug!(error = %e, status = status.as_u16(), "gateway: request refused");
    }
    // Never a 500 from here: an unexpected configuration error is still a bad gateway.
    let status = if status == StatusCode::INTERNAL_SERVER_ERROR {
        StatusCode::BAD_GATEWAY
    } else {
        status
    };
    let (mut parts, _) = status.into_response().into_parts();
    let h = &mut parts.headers;
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let json = !accepts_html(req_headers);
    crate::error::render_kind(state, lang, req_headers, kind, parts, json).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_an_app_could_normalize_are_never_public() {
        for bad in [
            "/static/../admin",
            "/static/./x",
            "/static//x",
            "/static/%2e%2e/admin",
            "/static/%2E%2E/admin",
            "/static/..%2fadmin",
            "/static/..%5cadmin",
            "/static/%252e%252e/admin",
            "/static\\..\\admin",
        ] {
            assert!(!plain_path(bad), "{bad}");
        }
        for good in ["/static/a.css", "/health", "/static/x..y", "/a/b%20c"] {
            assert!(plain_path(good), "{good}");
        }
    }

    #[test]
    fn a_navigation_is_a_get_or_head_that_accepts_html() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        assert!(is_navigation(&Method::GET, &h));
        assert!(is_navigation(&Method::HEAD, &h));
        assert!(!is_navigation(&Method::POST, &h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!is_navigation(&Method::GET, &h));
        assert!(!is_navigation(&Method::GET, &HeaderMap::new()));
    }
}
