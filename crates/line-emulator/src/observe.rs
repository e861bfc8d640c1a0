//! Cross-cutting request handling: `x-line-request-id`, the 2 MB limit, fault injection, the
//! request journal (a bounded ring buffer) and per-endpoint statistics.
//!
//! The journal tags an entry with the channel its request concerned. Only the handler learns
//! the channel (often deep inside validation), so it travels back on the response: the place
//! that resolves the channel puts a [`ChannelTag`] on the response it answers with
//! (`ChannelTag::on`) or on its error ([`ApiError::in_channel`], which `IntoResponse` turns
//! into the tag), and the journal middleware reads it from the response's extensions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::crypto;
use crate::error::{ApiError, RATE_LIMIT_MESSAGE};

/// The header LINE adds to every API response.
pub const REQUEST_ID_HEADER: &str = "x-line-request-id";
/// The largest request body accepted (2 MB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The channel (its index) a request concerns, carried in the response's extensions for the
/// journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelTag(pub u32);

impl ChannelTag {
    /// `result` with this tag on its response, or on its error. A response already tagged
    /// keeps its tag, as [`ApiError::in_channel`] does.
    pub(crate) fn on(self, result: Result<Response, ApiError>) -> Result<Response, ApiError> {
        match result {
            Ok(mut resp) => {
                if resp.extensions().get::<ChannelTag>().is_none() {
                    resp.extensions_mut().insert(self);
                }
                Ok(resp)
            }
            Err(e) => Err(e.in_channel(self)),
        }
    }
}

/// The endpoint name of a route (or of a path: the emulator's routes have no parameters
/// outside the admin API), used by the journal, the stats and fault matching.
pub fn endpoint_name(method: &Method, path: &str) -> &'static str {
    match path {
        "/oauth2/v2.1/authorize" => "authorize",
        "/oauth2/v2.1/authorize/consent" => "consent",
        "/oauth2/v2.1/token" => "token",
        "/oauth2/v2.1/verify" if method == Method::GET => "verify_access_token",
        "/oauth2/v2.1/verify" => "verify_id_token",
        "/oauth2/v2.1/revoke" => "revoke",
        "/oauth2/v2.1/userinfo" => "userinfo",
        "/oauth2/v2.1/certs" => "certs",
        "/oauth2/v2.1/tokens/kid" => "tokens_kid",
        "/oauth2/v3/token" => "stateless_token",
        "/v2/profile" => "profile",
        "/friendship/v1/status" => "friendship",
        "/user/v1/deauthorize" => "deauthorize",
        "/v2/oauth/accessToken" => "short_lived_token",
        "/v2/oauth/verify" => "short_lived_verify",
        "/v2/oauth/revoke" => "short_lived_revoke",
        "/.well-known/openid-configuration" => "discovery",
        "/" => "index",
        p if p.starts_with("/_emulator") => "admin",
        _ => "not_found",
    }
}

/// One journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Sequence number (1-based, increasing).
    pub seq: u64,
    /// Emulator time (Unix milliseconds inside; serialized as RFC 3339).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub time: i64,
    /// Method.
    pub method: String,
    /// Path, without the query (tokens travel in queries).
    pub path: String,
    /// Endpoint name.
    pub endpoint: &'static str,
    /// Status code.
    pub status: u16,
    /// The `x-line-request-id` sent.
    pub request_id: String,
    /// Handling time in microseconds.
    pub duration_us: u64,
    /// The channel ID, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Whether an injected fault answered or delayed the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fault: bool,
}

/// One fault injection rule (`PUT /_emulator/faults`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// An endpoint name (`token`, `profile`…), a path (`/oauth2/v2.1/token`), or `*`.
    pub endpoint: String,
    /// Only this method (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Answer with this status instead of the real handler (none: only add latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The body: a JSON value, or a string sent as text. Default: a `{"message"}` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Chance that a matching request is affected, 0.0–1.0 (default 1.0).
    #[serde(default = "one")]
    pub probability: f64,
    /// Affect at most this many requests (default: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// A `Retry-After` header value in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// On `authorize` only: instead of a status, redirect to the callback with this error
    /// code (e.g. `SERVER_ERROR`, `INTERACTION_REQUIRED`), after `client_id` and
    /// `redirect_uri` are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_error: Option<String>,
}

/// A callback error injected by a fault rule, handed to the authorize handler.
#[derive(Debug, Clone)]
pub(crate) struct CallbackFault(pub String);

fn one() -> f64 {
    1.0
}

struct ActiveFault {
    spec: FaultSpec,
    remaining: Option<AtomicU64>,
    hits: AtomicU64,
}

/// A fault as listed by `GET /_emulator/faults`.
#[derive(Debug, Clone, Serialize)]
pub struct FaultStatus {
    /// The rule.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// How many requests it affected.
    pub hits: u64,
    /// How many more it may affect (when `count` was set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// Journal, stats and faults.
pub(crate) struct Observer {
    journal: Mutex<VecDeque<JournalEntry>>,
    capacity: usize,
    seq: AtomicU64,
    stats: DashMap<(&'static str, u16), AtomicU64>,
    total: AtomicU64,
    faults: RwLock<Vec<Arc<ActiveFault>>>,
    any_fault: AtomicBool,
    /// The emulator's clock underneath its offset: uptime is real elapsed time.
    clock: line_login::clock::SharedClock,
    /// `clock.monotonic()` when the observer was made.
    started: Duration,
}

impl Observer {
    pub fn new(capacity: usize, clock: line_login::clock::SharedClock) -> Self {
        Self {
            journal: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            seq: AtomicU64::new(0),
            stats: DashMap::new(),
            total: AtomicU64::new(0),
            faults: RwLock::new(Vec::new()),
            any_fault: AtomicBool::new(false),
            started: clock.monotonic(),
            clock,
        }
    }

    pub fn reset(&self) {
        self.journal.lock().clear();
        self.stats.clear();
        self.total.store(0, Ordering::Relaxed);
        self.clear_faults();
    }

    fn record(&self, mut entry: JournalEntry) {
        let key = (entry.endpoint, entry.status);
        match self.stats.get(&key) {
            Some(c) => {
                c.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.stats
                    .entry(key)
                    .or_insert_with(|| AtomicU64::new(0))
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut j = self.journal.lock();
        if j.len() >= self.capacity {
            j.pop_front();
        }
        j.push_back(entry);
    }

    /// The newest `limit` entries that match, oldest first.
    pub fn journal(&self, limit: usize, keep: impl Fn(&JournalEntry) -> bool) -> Vec<JournalEntry> {
        let j = self.journal.lock();
        let mut out: Vec<JournalEntry> = j
            .iter()
            .rev()
            .filter(|e| keep(e))
            .take(limit)
            .cloned()
            .collect();
        drop(j);
        out.reverse();
        out
    }

    pub fn journal_len(&self) -> usize {
        self.journal.lock().len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests per (endpoint, status) so far.
    pub fn counts(&self) -> Vec<(&'static str, u16, u64)> {
        self.stats
            .iter()
            .map(|e| {
                let (endpoint, status) = *e.key();
                (endpoint, status, e.value().load(Ordering::Relaxed))
            })
            .collect()
    }

    /// Counts per endpoint and status.
    pub fn stats(&self) -> serde_json::Value {
        let mut by: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        for e in self.stats.iter() {
            let (endpoint, status) = *e.key();
            let n = e.value().load(Ordering::Relaxed);
            by.entry(endpoint)
                .or_default()
                .insert(status.to_string(), n);
            *by_status.entry(status.to_string()).or_default() += n;
        }
        let endpoints: BTreeMap<&'static str, serde_json::Value> = by
            .into_iter()
            .map(|(k, v)| {
                let total: u64 = v.values().sum();
                (k, serde_json::json!({"total": total, "by_status": v}))
            })
            .collect();
        serde_json::json!({
            "total": self.total.load(Ordering::Relaxed),
            "by_status": by_status,
            "endpoints": endpoints,
            "uptime_secs": self.clock.monotonic().saturating_sub(self.started).as_secs(),
            "journal_len": self.journal_len(),
            "journal_capacity": self.capacity,
        })
    }

    pub fn set_faults(&self, specs: Vec<FaultSpec>) {
        let active: Vec<Arc<ActiveFault>> = specs
            .into_iter()
            .map(|spec| {
                Arc::new(ActiveFault {
                    remaining: spec.count.map(AtomicU64::new),
                    hits: AtomicU64::new(0),
                    spec,
                })
            })
            .collect();
        self.any_fault.store(!active.is_empty(), Ordering::Relaxed);
        *self.faults.write() = active;
    }

    pub fn clear_faults(&self) {
        self.any_fault.store(false, Ordering::Relaxed);
        self.faults.write().clear();
    }

    pub fn faults(&self) -> Vec<FaultStatus> {
        self.faults
            .read()
            .iter()
            .map(|f| FaultStatus {
                spec: f.spec.clone(),
                hits: f.hits.load(Ordering::Relaxed),
                remaining: f.remaining.as_ref().map(|r| r.load(Ordering::Relaxed)),
            })
            .collect()
    }

    /// The fault that applies to this request, if any (consumes one of its `count`).
    fn pick(&self, endpoint: &str, path: &str, method: &Method) -> Option<FaultSpec> {
        if !self.any_fault.load(Ordering::Relaxed) {
            return None;
        }
        let faults = self.faults.read();
        for f in faults.iter() {
            let s = &f.spec;
            let matches = s.endpoint == endpoint || s.endpoint == path || s.endpoint == "*";
            if !matches
                || s.method
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method.as_str()))
            {
                continue;
            }
            if s.probability < 1.0 && rand::random::<f64>() >= s.probability {
                continue;
            }
            if let Some(rem) = &f.remaining
                && rem
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                    .is_err()
            {
                continue;
            }
            f.hits.fetch_add(1, Ordering::Relaxed);
            return Some(s.clone());
        }
        None
    }
}

fn fault_response(spec: &FaultSpec) -> Option<Response> {
    if spec.callback_error.is_some() {
        return None;
    }
    let status = StatusCode::from_u16(spec.status?).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match &spec.body {
        Some(serde_json::Value::String(text)) => {
            let mut r = (status, text.clone()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Some(v) => crate::error::json_response(status, v),
        None if status == StatusCode::TOO_MANY_REQUESTS => crate::error::json_response(
            status,
            &serde_json::json!({ "message": RATE_LIMIT_MESSAGE }),
        ),
        None => crate::error::json_response(
            status,
            &serde_json::json!({
                "message": status.canonical_reason().unwrap_or("Injected fault")
            }),
        ),
    };
    if let Some(secs) = spec.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Some(resp)
}

/// The middleware around every request.
pub(crate) async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let start = st.clock.base().monotonic();
    let method = req.method().clone();
    let path = journal_path(req.uri().path());
    // Named from the route that matched (axum's `MatchedPath`); a path no route serves is
    // `not_found`, except under `/_emulator` (the admin API's, never journaled).
    let endpoint = match req.extensions().get::<MatchedPath>() {
        Some(route) => endpoint_name(&method, route.as_str()),
        None if path.starts_with("/_emulator") => "admin",
        None => "not_found",
    };
    let request_id = crypto::random_hex(8);
    let is_admin = endpoint == "admin";

    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64);

    // A body that stalls cannot hold a handler forever.
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let req = if has_body {
        let (parts, body) = req.into_parts();
        Request::from_parts(
            parts,
            Body::new(tower_http::timeout::TimeoutBody::new(
                Duration::from_secs(st.config.body_timeout_secs),
                body,
            )),
        )
    } else {
        req
    };

    let mut fault_hit = false;
    let mut resp = if too_large {
        ApiError::PayloadTooLarge.into_response()
    } else {
        let fault = if is_admin {
            None
        } else {
            st.observer.pick(endpoint, &path, &method)
        };
        match fault {
            Some(spec) => {
                fault_hit = true;
                if spec.latency_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(spec.latency_ms)).await;
                }
                let mut req = req;
                if let Some(code) = &spec.callback_error {
                    req.extensions_mut().insert(CallbackFault(code.clone()));
                }
                match fault_response(&spec) {
                    Some(r) => r,
                    None => next.run(req).await,
                }
            }
            None => next.run(req).await,
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if !is_admin {
        let channel = resp
            .extensions()
            .get::<ChannelTag>()
            .and_then(|tag| st.channel_at(tag.0))
            .map(|c| c.cfg.id.clone());
        let now_ms = st.clock.now_millis();
        st.observer.record(JournalEntry {
            seq: 0,
            time: now_ms,
            method: method.as_str().to_owned(),
            path,
            endpoint,
            status: resp.status().as_u16(),
            request_id,
            duration_us: u64::try_from(
                st.clock
                    .base()
                    .monotonic()
                    .saturating_sub(start)
                    .as_micros(),
            )
            .unwrap_or(u64::MAX),
            channel,
            fault: fault_hit,
        });
    }
    resp
}

/// The longest path the journal stores; longer ones are cut (at a character boundary) and
/// marked with `…`, so a flood of huge unknown paths cannot inflate the journal.
const MAX_JOURNAL_PATH: usize = 256;

fn journal_path(path: &str) -> String {
    if path.len() <= MAX_JOURNAL_PATH {
        return path.to_owned();
    }
    let mut end = MAX_JOURNAL_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn serialize_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_journal_paths_are_cut_at_a_char_boundary() {
        assert_eq!(journal_path("/v2/profile"), "/v2/profile");
        let long = format!("/{}", "é".repeat(1000));
        let cut = journal_path(&long);
        assert!(cut.len() <= MAX_JOURNAL_PATH + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }
}
