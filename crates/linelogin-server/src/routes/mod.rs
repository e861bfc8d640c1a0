//! The router: every route, the error-page renderer and the security headers.

pub mod account;
pub mod limits;
pub mod login;
pub mod pages;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use http::{HeaderValue, header};
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::render_errors;
use crate::state::AppState;

/// Largest accepted request body (forms here are tiny).
const BODY_LIMIT: usize = 16 * 1024;

/// The whole app as a router (mount it, or serve it).
///
/// With `[gateway]`, every route is under the prefix, with the gateway's own routes
/// ([`crate::gateway`]).
pub fn app(state: AppState) -> Router {
    let mut routes = Router::new()
        .merge(pages::router())
        .merge(login::router())
        .merge(account::router());
    let gateway = state.gateway().is_some();
    if gateway {
        routes = routes
            .merge(crate::gateway::router())
            .fallback(|| async { crate::error::AppError::NotFound });
    }
    let routes = routes
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), render_errors))
        .layer(middleware::from_fn(security_headers));
    // Outermost: metrics and the request log see every request, the gateway's proxied ones
    // included (counted as `route="upstream"`).
    let observe = middleware::from_fn_with_state(state.clone(), crate::metrics::observe_requests);
    if gateway {
        crate::gateway::mount(routes, state).layer(observe)
    } else {
        routes.layer(observe).with_state(state)
    }
}

/// CSP without inline script or style, no framing, no referrer, no sniffing, no caching of
/// dynamic pages.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' https: http:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let cache = if is_static {
        "public, max-age=3600"
    } else {
        "no-store"
    };
    // A route that chose its own caching (the JWKS) keeps it.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    resp
}

/// Parses the `csrf_token` field of a urlencoded form body (missing or malformed → `None`).
pub(crate) fn csrf_field(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Form {
        csrf_token: Option<String>,
    }
    serde_urlencoded::from_bytes::<Form>(body)
        .ok()
        .and_then(|f| f.csrf_token)
}
