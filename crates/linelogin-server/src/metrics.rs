//! Prometheus metrics (`[metrics] listen`) and the request log.
//!
//! ## Metrics
//!
//! With `[metrics] listen` set, [`crate::serve::start_on`] serves `GET /metrics` on that
//! address, a listener of its own (never the public port), in the OpenMetrics text format
//! that Prometheus scrapes. Each [`AppState`] has its own [`Metrics`] registry
//! (`prometheus-client`): several servers in one process never share a recorder.
//!
//! Series (every label value comes from a fixed set or a route template, never from a raw
//! path, a user id or a token):
//!
//! | series | labels | source |
//! |---|---|---|
//! | `linelogin_login_events_total` | `event` (`login`, `logout`, `unlink`, `unregister`), `outcome` | the routes |
//! | `linelogin_line_requests_total` | `endpoint`, `status_class` (`2xx`, `3xx`, `4xx`, `429`, `5xx`, `transport`, `timeout`) | the LINE client's observer, one per attempt |
//! | `linelogin_line_request_duration_seconds` | `endpoint` | the same (histogram) |
//! | `linelogin_outbound_limited_total` | `reason` (`rate_limit`, `cooldown`, `breaker`) | the outbound policy, at scrape time |
//! | `linelogin_line_breaker_open` | `class` (`login`, `deauthorize`, `channel_token`) | 1 while that breaker refuses calls |
//! | `linelogin_outbox_jobs` | `kind` (`deauthorization`, `webhook` with `[webhook]`), `state` (`pending`, `failed`) | the store, at scrape time |
//! | `linelogin_outbox_oldest_pending_seconds` | `kind` | the same |
//! | `linelogin_store_up` | | 1 when the outbox query answered within `[database]`'s bound |
//! | `linelogin_undecryptable_jobs` | | deauthorization jobs whose tokens no configured key opens |
//! | `linelogin_http_requests_total` | `route`, `status_class` | the request middleware |
//! | `linelogin_http_request_duration_seconds` | `route` | the same (histogram) |
//! | `linelogin_callback_rejected_total` | `reason` | `routes::limits::Rejections` |
//! | `linelogin_inbound_limited_total`, `linelogin_csrf_rejected_total`, `linelogin_pending_logins_refused_total`, `linelogin_inbound_limiter_resets_total` | | `routes::limits` |
//! | `linelogin_instance_info` | `instance` | `[logs] instance`, when set |
//!
//! `route` is the axum route template (`/callback`, `/account/unlink`); a request no route
//! matched is `unmatched`, and a response marked [`ProxiedUpstream`] (the gateway's proxy
//! fallback) is `upstream`. The outbox series are read from the store when Prometheus
//! scrapes, bounded by [`crate::store::Timeouts::call_bound`]: a slow database makes
//! `linelogin_store_up` 0 and leaves the outbox series out, it never hangs the scrape.
//!
//! ## Request log
//!
//! [`observe_requests`] writes one line per request, target `linelogin_server::request`:
//! method, route template (never the path or the query, so never a callback's code or
//! state), status, duration in ms and the request id (the client's `x-request-id` when it is
//! short and plain, else a random one; echoed in the response). 4xx answers are routine
//! (a refused callback, a 404) and go to `debug`; every other answer to `info`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use line_login::endpoint::EndpointClass;
use line_login::observer::{ApiCall, ApiObserver, CallOutcome};
use line_login::policy::{BreakerState, LimitReason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// The `Content-Type` of `/metrics` (OpenMetrics text, which Prometheus prefers).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The tracing target of the request log lines.
pub const REQUEST_LOG_TARGET: &str = "linelogin_server::request";

/// Histogram buckets, in seconds: 2.5 ms to 10 s.
const BUCKETS: [f64; 12] = [
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A user-facing event counted in `linelogin_login_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A LINE login finished (or was refused at the callback).
    Login,
    /// A logout.
    Logout,
    /// An unlink request.
    Unlink,
    /// An unregister request.
    Unregister,
}

impl Event {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Login => "login",
            Event::Logout => "logout",
            Event::Unlink => "unlink",
            Event::Unregister => "unregister",
        }
    }
}

/// Marks a response as proxied to the upstream app (the gateway's fallback): insert it in the
/// response's extensions and the request is counted as `route="upstream"`, not `unmatched`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxiedUpstream;

/// The request id of a request (a request extension set by [`observe_requests`]).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LineLabels {
    endpoint: &'static str,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindStateLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabel {
    instance: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics of one server (one [`AppState`]): its own registry, never a global one.
#[derive(Debug)]
pub struct Metrics {
    listen: SocketAddr,
    registry: Registry,
    login_events: Family<EventLabels, Counter>,
    line_requests: Family<LineLabels, Counter>,
    line_duration: HistogramFamily<EndpointLabel>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabel>,
}

impl Metrics {
    /// Empty metrics served on `listen`, with `linelogin_instance_info{instance}` when
    /// `instance` is given (`[logs] instance`).
    pub fn new(listen: SocketAddr, instance: Option<&str>) -> Self {
        let mut registry = Registry::default();
        let login_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "linelogin_login_events",
            "Logins, logouts, unlinks and unregisters, by outcome",
            login_events.clone(),
        );
        let line_requests = Family::<LineLabels, Counter>::default();
        registry.register(
            "linelogin_line_requests",
            "LINE API attempts, by endpoint and status class",
            line_requests.clone(),
        );
        let line_duration: HistogramFamily<EndpointLabel> =
            Family::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "linelogin_line_request_duration_seconds",
            "Duration of LINE API attempts, by endpoint",
            line_duration.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "linelogin_http_requests",
            "HTTP requests served, by route template and status class",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "linelogin_http_request_duration_seconds",
            "Duration of HTTP requests served, by route template",
            http_duration.clone(),
        );
        if let Some(instance) = instance {
            registry.register(
                "linelogin_instance",
                "This instance of the fleet ([logs] instance)",
                Info::new(InstanceLabel {
                    instance: instance.to_owned(),
                }),
            );
        }
        Self {
            listen,
            registry,
            login_events,
            line_requests,
            line_duration,
            http_requests,
            http_duration,
        }
    }

    /// Where `/metrics` is served (`[metrics] listen`).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Counts one event with its outcome (a fixed word such as `success` or a refusal
    /// reason, never user data).
    pub fn login_event(&self, event: Event, outcome: &'static str) {
        self.login_events
            .get_or_create(&EventLabels {
                event: event.as_str(),
                outcome,
            })
            .inc();
    }

    /// Counts one LINE API attempt.
    pub fn line_call(&self, call: &ApiCall) {
        let endpoint = endpoint_label(&call.endpoint);
        let status_class = match (call.status, call.outcome) {
            (Some(s), _) => line_status_class(s),
            (None, CallOutcome::Timeout) => "timeout",
            (None, _) => "transport",
        };
        self.line_requests
            .get_or_create(&LineLabels {
                endpoint,
                status_class,
            })
            .inc();
        self.line_duration
            .get_or_create(&EndpointLabel { endpoint })
            .observe(call.duration.as_secs_f64());
    }

    /// Counts one served HTTP request.
    pub fn http_request(&self, route: &str, status: StatusCode, duration: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status_class: http_status_class(status),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// An observer for the LINE client that feeds [`Metrics::line_call`].
    pub fn line_observer(self: &Arc<Self>) -> Arc<dyn ApiObserver> {
        Arc::new(LineObserver(Arc::clone(self)))
    }
}

#[derive(Debug)]
struct LineObserver(Arc<Metrics>);

impl ApiObserver for LineObserver {
    fn on_api_call(&self, call: &ApiCall) {
        self.0.line_call(call);
    }
}

/// Counts `event` with `outcome` when the state has metrics (nothing otherwise).
pub fn record_event(state: &AppState, event: Event, outcome: &'static str) {
    if let Some(m) = state.metrics() {
        m.login_event(event, outcome);
    }
}

/// The LINE paths the client calls, with their label (the token, verify and revoke paths
/// serve several operations: one label each, so the set stays fixed).
const LINE_PATHS: [(&str, &str); 14] = [
    ("/oauth2/v2.1/token", "token"),
    ("/oauth2/v2.1/verify", "verify"),
    ("/oauth2/v2.1/revoke", "revoke"),
    ("/oauth2/v2.1/userinfo", "userinfo"),
    ("/oauth2/v2.1/certs", "jwks"),
    ("/oauth2/v2.1/tokens/kid", "channel_token_key_ids"),
    ("/oauth2/v3/token", "stateless_channel_token"),
    ("/v2/profile", "profile"),
    ("/friendship/v1/status", "friendship_status"),
    ("/user/v1/deauthorize", "deauthorize"),
    ("/v2/oauth/accessToken", "short_lived_channel_token"),
    ("/v2/oauth/verify", "verify_short_lived_channel_token"),
    ("/v2/oauth/revoke", "revoke_short_lived_channel_token"),
    ("/.well-known/openid-configuration", "discovery"),
];

/// The `endpoint` label of a LINE endpoint URL (`other` for a path not in the fixed set).
pub fn endpoint_label(url: &str) -> &'static str {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split(['?', '#']).next().unwrap_or(path);
    LINE_PATHS
        .iter()
        .find(|(p, _)| path.ends_with(p))
        .map_or("other", |(_, label)| label)
}

fn line_status_class(status: StatusCode) -> &'static str {
    if status == StatusCode::TOO_MANY_REQUESTS {
        "429"
    } else {
        http_status_class(status)
    }
}

fn http_status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The text of `/metrics` now: the counters kept as requests go, plus what is read at scrape
/// time (the outbound policy's and the inbound limits' counters, the breakers, and the outbox
/// from the store, within [`crate::store::Timeouts::call_bound`]).
pub async fn render(state: &AppState, metrics: &Metrics) -> Result<String, std::fmt::Error> {
    let mut scraped = Registry::default();

    let policy = state.client().policy();
    let limited = Family::<ReasonLabel, Counter>::default();
    for reason in LimitReason::ALL {
        limited
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc_by(policy.limited_total(reason));
    }
    scraped.register(
        "linelogin_outbound_limited",
        "LINE calls held back locally, by reason (rate limit, 429 cool-down, breaker)",
        limited,
    );
    let breaker = Family::<ClassLabel, Gauge>::default();
    for (class, s) in policy.breaker_states() {
        let open = i64::from(!matches!(s, BreakerState::Closed { .. }));
        breaker
            .get_or_create(&ClassLabel {
                class: EndpointClass::name(class),
            })
            .set(open);
    }
    scraped.register(
        "linelogin_line_breaker_open",
        "1 while the circuit breaker of this class of LINE endpoints refuses calls",
        breaker,
    );

    let limits = state.limits();
    let rejected = Family::<ReasonLabel, Counter>::default();
    for (reason, n) in limits.rejections.callback() {
        rejected.get_or_create(&ReasonLabel { reason }).inc_by(n);
    }
    scraped.register(
        "linelogin_callback_rejected",
        "Callbacks refused, by reason",
        rejected,
    );
    for (name, help, value) in [
        (
            "linelogin_inbound_limited",
            "Requests to /login and /callback refused by the per-client limit",
            limits.inbound.limited(),
        ),
        (
            "linelogin_csrf_rejected",
            "State-changing requests refused by the CSRF checks",
            limits.rejections.csrf(),
        ),
        (
            "linelogin_pending_logins_refused",
            "Logins refused because too many were pending",
            limits.pending.refused(),
        ),
        (
            "linelogin_inbound_limiter_resets",
            "Times the per-client limiter overflowed and was emptied",
            limits.inbound.resets(),
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        scraped.register(name, help, c);
    }

    // Both outboxes in one bounded wait (the same read as `/healthz`).
    let stats = crate::deauth::outbox::all_stats(state).await;
    let up = Gauge::<i64>::default();
    match stats {
        Ok((deauth, webhooks)) => {
            up.set(1);
            let jobs = Family::<KindStateLabels, Gauge>::default();
            let oldest = Family::<KindLabel, Gauge>::default();
            let kinds = [("deauthorization", Some(deauth)), ("webhook", webhooks)];
            for (kind, stats) in kinds {
                let Some(stats) = stats else { continue };
                for (s, n) in [("pending", stats.pending), ("failed", stats.failed)] {
                    jobs.get_or_create(&KindStateLabels { kind, state: s })
                        .set(n);
                }
                oldest
                    .get_or_create(&KindLabel { kind })
                    .set(stats.oldest_pending_age_secs);
            }
            scraped.register(
                "linelogin_outbox_jobs",
                "Outbox jobs, by kind and state",
                jobs,
            );
            scraped.register(
                "linelogin_outbox_oldest_pending_seconds",
                "Age of the oldest pending outbox job, by kind (0 when none)",
                oldest,
            );
        }
        // A failure or a timeout (`Unavailable`, naming the bound).
        Err(e) => tracing::warn!(error = %e, "metrics: outbox query failed"),
    }
    let undecryptable = Gauge::<i64>::default();
    undecryptable
        .set(i64::try_from(crate::deauth::keys::undecryptable_jobs(state)).unwrap_or(i64::MAX));
    scraped.register(
        "linelogin_undecryptable_jobs",
        "Deauthorization jobs whose tokens no configured key opens (they wait for the key)",
        undecryptable,
    );
    scraped.register(
        "linelogin_store_up",
        "1 when the store answered the outbox query of this scrape in time",
        up,
    );

    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode_registry(&mut out, &metrics.registry)?;
    prometheus_client::encoding::text::encode_registry(&mut out, &scraped)?;
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let Some(metrics) = state.metrics() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match render(&state, metrics).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The router of the metrics listener: `GET /metrics`.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_handler))
        .with_state(state)
}

/// The request id to use: the client's `x-request-id` when it is 1 to 64 characters of
/// letters, digits, `-`, `_`, `.` (so it cannot forge log lines), else a random one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(
            || {
                let n: u64 = rand::random();
                let mut s = String::with_capacity(16);
                let _ = write!(s, "{n:016x}");
                s
            },
            str::to_owned,
        )
}

/// The middleware of every request: the request id, the request log line, and (with
/// metrics) `linelogin_http_requests_total` and `linelogin_http_request_duration_seconds`.
pub async fn observe_requests(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = state.inner.clock.monotonic();
    let method = req.method().clone();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    let elapsed = state.inner.clock.monotonic().saturating_sub(started);
    let route = match matched {
        Some(r) => r,
        None if resp.extensions().get::<ProxiedUpstream>().is_some() => "upstream".to_owned(),
        None => "unmatched".to_owned(),
    };
    let status = resp.status();
    if let Some(m) = state.metrics() {
        m.http_request(&route, status, elapsed);
    }
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_client_error() {
        tracing::debug!(target: REQUEST_LOG_TARGET, method = %method, route = %route, status = status.as_u16(), duration_ms, request_id = %id, "request");
    } else {
        tracing::info!(target: REQUEST_LOG_TARGET, method = %method, route = %route, status = status.as_u16(), duration_ms, request_id = %id, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_are_a_fixed_set() {
        assert_eq!(
            endpoint_label("https://api.line.me/oauth2/v2.1/token"),
            "token"
        );
        assert_eq!(
            endpoint_label("http://127.0.0.1:9/oauth2/v2.1/verify"),
            "verify"
        );
        assert_eq!(
            endpoint_label("http://127.0.0.1:9/user/v1/deauthorize"),
            "deauthorize"
        );
        assert_eq!(endpoint_label("http://x/some/user/U1234"), "other");
        assert_eq!(endpoint_label("nonsense"), "other");
    }

    #[test]
    fn status_classes_single_out_429() {
        assert_eq!(line_status_class(StatusCode::TOO_MANY_REQUESTS), "429");
        assert_eq!(line_status_class(StatusCode::BAD_REQUEST), "4xx");
        assert_eq!(http_status_class(StatusCode::TOO_MANY_REQUESTS), "4xx");
        assert_eq!(http_status_class(StatusCode::BAD_GATEWAY), "5xx");
        assert_eq!(http_status_class(StatusCode::FOUND), "3xx");
    }

    #[test]
    fn counters_and_info_encode_with_their_labels() {
        let m = Metrics::new(([127, 0, 0, 1], 0).into(), Some("web-1"));
        m.login_event(Event::Login, "success");
        m.http_request("/callback", StatusCode::SEE_OTHER, Duration::from_millis(3));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.contains("linelogin_login_events_total{event=\"login\",outcome=\"success\"} 1"),
            "{out}"
        );
        assert!(
            out.contains(
                "linelogin_http_requests_total{route=\"/callback\",status_class=\"3xx\"} 1"
            ),
            "{out}"
        );
        assert!(
            out.contains("linelogin_instance_info{instance=\"web-1\"} 1"),
            "{out}"
        );
    }
}
