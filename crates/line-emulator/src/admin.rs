//! The admin API under `/_emulator/` (JSON, same origin as the emulator).

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use crate::Shared;
use crate::error::{ApiError, json_response};
use crate::extract::Query;
use crate::observe::FaultSpec;
use crate::params::json_body;
use crate::state::{Inner, User, scope_names};

fn not_found(what: &str) -> ApiError {
    ApiError::message(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn user_json(st: &Inner, u: &User) -> serde_json::Value {
    let ids: serde_json::Map<String, serde_json::Value> = st
        .channels
        .iter()
        .map(|c| (c.cfg.id.clone(), u.ids[c.idx as usize].clone().into()))
        .collect();
    serde_json::json!({
        "id": u.cfg.id,
        "display_name": u.cfg.display_name,
        "picture_url": u.cfg.picture_url,
        "status_message": u.cfg.status_message,
        "email": u.cfg.email,
        "ids_by_channel": ids,
    })
}

/// `GET /_emulator/`: what the admin API offers.
pub(crate) async fn index() -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "emulator": "linelogin LINE Platform emulator (LINE Login v2.1)",
            "endpoints": [
                "GET /_emulator/users",
                "GET /_emulator/channels",
                "GET /_emulator/users/{userId}/authorized-apps",
                "POST /_emulator/users/{userId}/authorized-apps/{channelId}/unlink",
                "PUT /_emulator/users/{userId}/friendship/{channelId}",
                "GET /_emulator/journal?limit=N&endpoint=E&status=S",
                "GET /_emulator/stats",
                "GET /_emulator/metrics",
                "GET|PUT|DELETE /_emulator/faults",
                "POST /_emulator/reset",
                "GET|POST /_emulator/clock",
            ],
        }),
    )
}

/// `GET /_emulator/users`.
pub(crate) async fn users(State(st): State<Shared>) -> Response {
    let list: Vec<_> = st.users.iter().map(|u| user_json(&st, u)).collect();
    json_response(StatusCode::OK, &serde_json::json!({ "users": list }))
}

/// `GET /_emulator/channels`.
pub(crate) async fn channels(State(st): State<Shared>) -> Response {
    let list: Vec<_> = st
        .channels
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.cfg.id,
                "secret": c.cfg.secret,
                "name": c.display_name,
                "provider": c.cfg.provider,
                "callback_urls": c.cfg.callback_urls,
                "app_types": c.cfg.app_types,
                "email_permission": c.cfg.email_permission,
                "bot_linked": c.cfg.bot_linked,
                "rate_limit_per_second": c.cfg.rate_limit_per_second,
                "lowercase_errors": c.lowercase,
                "assertion_key_ids": c.assertion_keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_response(StatusCode::OK, &serde_json::json!({ "channels": list }))
}

/// `GET /_emulator/users/{userId}/authorized-apps`.
pub(crate) async fn authorized_apps(
    State(st): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(user_id)) = path else {
        return Err(not_found("user"));
    };
    let Some(user) = st.user_by_id(&user_id) else {
        return Err(not_found("user"));
    };
    let apps: Vec<_> = st
        .channels
        .iter()
        .filter_map(|c| {
            st.active_grant(user.idx, c.idx).map(|g| {
                serde_json::json!({
                    "channel_id": c.cfg.id,
                    "channel_name": c.display_name,
                    "user_id": user.ids[c.idx as usize],
                    "scopes": scope_names(g.scopes),
                    "consented_at": g.consented_at,
                    "friend": st.is_friend(user.idx, c.idx),
                })
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "user_id": user.cfg.id, "authorized_apps": apps }),
    ))
}

/// `POST /_emulator/users/{userId}/authorized-apps/{channelId}/unlink`.
pub(crate) async fn unlink(
    State(st): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((user_id, channel_id))) = path else {
        return Err(not_found("user"));
    };
    let Some(user) = st.user_by_id(&user_id) else {
        return Err(not_found("user"));
    };
    let Some(ch) = st.channel(&channel_id) else {
        return Err(not_found("channel"));
    };
    if st.unlink(user.idx, ch.idx) {
        tracing::info!(user = %user.cfg.id, channel = %ch.cfg.id, "emulator: unlinked");
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "unlinked": true, "user_id": user.cfg.id, "channel_id": ch.cfg.id }),
        ))
    } else {
        Err(not_found("authorized app"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FriendshipBody {
    friend: bool,
}

/// `PUT /_emulator/users/{userId}/friendship/{channelId}` with `{"friend": true|false}`: the
/// user adds (or blocks) the channel's linked LINE Official Account.
pub(crate) async fn put_friendship(
    State(st): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((user_id, channel_id))) = path else {
        return Err(not_found("user"));
    };
    let Some(user) = st.user_by_id(&user_id) else {
        return Err(not_found("user"));
    };
    let Some(ch) = st.channel(&channel_id) else {
        return Err(not_found("channel"));
    };
    let parsed = json_body::<FriendshipBody>(body, |_| {
        ApiError::message(StatusCode::BAD_REQUEST, "expected {\"friend\": true|false}")
    });
    let b = parsed?;
    st.friendships.insert((user.idx, ch.idx), b.friend);
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "user_id": user.cfg.id,
            "channel_id": ch.cfg.id,
            "friend": st.is_friend(user.idx, ch.idx),
            "bot_linked": ch.cfg.bot_linked,
        }),
    ))
}

/// `GET /_emulator/journal?limit=N&endpoint=NAME&status=CODE` (default limit 100; the
/// newest matching entries, oldest first).
pub(crate) async fn journal(
    State(st): State<Shared>,
    Query(p): Query,
) -> Result<Response, ApiError> {
    let limit = match p.get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "limit must be a number",
            ));
        }
    };
    let status = match p.get("status").map(str::parse::<u16>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "status must be a number",
            ));
        }
    };
    let endpoint = p.get("endpoint");
    let entries = st.observer.journal(limit, |e| {
        endpoint.is_none_or(|want| e.endpoint == want || e.path == want)
            && status.is_none_or(|s| e.status == s)
    });
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "capacity": st.observer.capacity(),
            "entries": entries,
        }),
    ))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

/// `GET /_emulator/metrics`: the emulator's own request counts and state sizes in the
/// Prometheus text format (the same numbers as `stats`), so a load test's LINE side can be
/// scraped beside the server: `line_emulator_requests_total{endpoint,status}`, and the gauges
/// `line_emulator_codes_outstanding`, `line_emulator_refresh_tokens`,
/// `line_emulator_pending_consents` and `line_emulator_active_grants`.
pub(crate) async fn metrics(State(st): State<Shared>) -> Response {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    let mut registry = prometheus_client::registry::Registry::with_prefix("line_emulator");
    let requests = Family::<RequestLabels, Counter>::default();
    for (endpoint, status, n) in st.observer.counts() {
        requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc_by(n);
    }
    registry.register(
        "requests",
        "Requests answered, by endpoint and status",
        requests,
    );
    for (name, help, value) in [
        (
            "codes_outstanding",
            "Authorization codes issued and not yet used",
            st.codes.len(),
        ),
        ("refresh_tokens", "Refresh tokens held", st.refresh.len()),
        (
            "pending_consents",
            "Consent pages shown and not yet answered",
            st.pending.len(),
        ),
        (
            "active_grants",
            "Channels authorized by users",
            st.grants.iter().filter(|g| g.active).count(),
        ),
    ] {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, g);
    }
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"message": "metrics could not be encoded"}),
        ),
    }
}

/// `GET /_emulator/stats`.
pub(crate) async fn stats(State(st): State<Shared>) -> Response {
    let mut v = st.observer.stats();
    if let Some(o) = v.as_object_mut() {
        o.insert("clock_offset_secs".into(), st.clock.offset().into());
        o.insert("auto_consent".into(), st.config.auto_consent.into());
        o.insert("codes_outstanding".into(), st.codes.len().into());
        o.insert("refresh_tokens".into(), st.refresh.len().into());
        o.insert("pending_consents".into(), st.pending.len().into());
        o.insert(
            "revocation_records".into(),
            (st.revoked_access.len() + st.revoked_families.len() + st.refresh_dead_families.len())
                .into(),
        );
        o.insert(
            "active_grants".into(),
            st.grants.iter().filter(|g| g.active).count().into(),
        );
    }
    json_response(StatusCode::OK, &v)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultsBody {
    List(Vec<FaultSpec>),
    Wrapped { faults: Vec<FaultSpec> },
    One(FaultSpec),
}

/// `PUT /_emulator/faults`: replaces the fault rules.
pub(crate) async fn put_faults(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let parsed: FaultsBody = json_body(body, |e| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("faults must be a JSON list of fault rules: {e}"),
        )
    })?;
    let specs = match parsed {
        FaultsBody::List(v) | FaultsBody::Wrapped { faults: v } => v,
        FaultsBody::One(f) => vec![f],
    };
    for f in &specs {
        if !(0.0..=1.0).contains(&f.probability) {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "probability must be between 0 and 1",
            ));
        }
        // 1xx is no final response (hyper answers 500 for it, and 101 would hijack the
        // connection).
        if f.status.is_some_and(|s| !(200..=599).contains(&s)) {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "status must be between 200 and 599",
            ));
        }
        if let Some(code) = &f.callback_error {
            let known = [
                "INVALID_REQUEST",
                "ACCESS_DENIED",
                "UNSUPPORTED_RESPONSE_TYPE",
                "INVALID_SCOPE",
                "SERVER_ERROR",
                "LOGIN_REQUIRED",
                "INTERACTION_REQUIRED",
            ];
            if !known.contains(&code.to_ascii_uppercase().as_str()) {
                return Err(ApiError::message(
                    StatusCode::BAD_REQUEST,
                    format!("callback_error must be one of {}", known.join(", ")),
                ));
            }
        }
        if f.latency_ms > 600_000 {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "latency_ms must be at most 600000",
            ));
        }
    }
    tracing::info!(rules = specs.len(), "emulator: fault rules set");
    st.observer.set_faults(specs);
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "faults": st.observer.faults() }),
    ))
}

/// `GET /_emulator/faults`.
pub(crate) async fn get_faults(State(st): State<Shared>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "faults": st.observer.faults() }),
    )
}

/// `DELETE /_emulator/faults`.
pub(crate) async fn delete_faults(State(st): State<Shared>) -> Response {
    st.observer.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_emulator/reset`.
pub(crate) async fn reset(State(st): State<Shared>) -> Response {
    tracing::info!("emulator: reset");
    st.reset();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_emulator/sso/clear`: every browser forgets its single-sign-on user, so the next
/// authorize request shows the login (consent) page as for a browser LINE has never seen.
/// Grants stay (see `unlink` for those).
pub(crate) async fn clear_sso(State(st): State<Shared>) -> Response {
    let epoch = st.clear_sso();
    tracing::info!(epoch, "emulator: single-sign-on sessions cleared");
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    #[serde(default)]
    advance_secs: Option<i64>,
    #[serde(default)]
    offset_secs: Option<i64>,
}

fn clock_json(st: &Inner) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "offset_secs": st.clock.offset(), "now": st.clock.now() }),
    )
}

/// `GET /_emulator/clock`.
pub(crate) async fn get_clock(State(st): State<Shared>) -> Response {
    clock_json(&st)
}

/// `POST /_emulator/clock` with `{"advance_secs": N}` or `{"offset_secs": N}`.
pub(crate) async fn post_clock(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let b: ClockBody = json_body(body, |e| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"advance_secs\": N}} or {{\"offset_secs\": N}}: {e}"),
        )
    })?;
    let limit = crate::clock::MAX_OFFSET_SECS;
    if [b.advance_secs, b.offset_secs]
        .into_iter()
        .flatten()
        .any(|v| !(-limit..=limit).contains(&v))
    {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("advance_secs and offset_secs must be between -{limit} and {limit}"),
        ));
    }
    match (b.advance_secs, b.offset_secs) {
        (Some(a), None) => {
            st.clock.advance(a);
        }
        (None, Some(o)) => {
            st.clock.set_offset(o);
        }
        _ => {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                "give exactly one of advance_secs or offset_secs",
            ));
        }
    }
    tracing::info!(offset_secs = st.clock.offset(), "emulator: clock moved");
    Ok(clock_json(&st))
}
