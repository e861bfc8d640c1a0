//! A small relying party built on `line-login` alone (not linelogin's server), for testing the
//! load-test runner against "any relying party": `/login`, `/callback`, `/api/me`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use line_login::LineClient;
use line_login::authorize::PendingAuthorization;
use line_login::callback::{CallbackOutcome, verify_callback};
use line_login::secret::ChannelSecret;
use line_login::types::ChannelId;

#[derive(Clone)]
struct Rp {
    client: LineClient,
    callback: url::Url,
    pending: Arc<Mutex<HashMap<String, PendingAuthorization>>>,
    sessions: Arc<Mutex<HashMap<String, (String, String)>>>,
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn random_id() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn login(State(rp): State<Rp>) -> Response {
    let Ok(pending) = rp.client.authorization_request(rp.callback.clone()).build() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let key = random_id();
    let location = pending.url.to_string();
    rp.pending.lock().unwrap().insert(key.clone(), pending);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                format!("rp_login={key}; Path=/; HttpOnly; SameSite=Lax"),
            ),
        ],
    )
        .into_response()
}

async fn callback(State(rp): State<Rp>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let Some(pending) =
        cookie(&headers, "rp_login").and_then(|k| rp.pending.lock().unwrap().remove(&k))
    else {
        return (StatusCode::BAD_REQUEST, "no login in progress").into_response();
    };
    let outcome = match verify_callback(query.as_deref().unwrap_or(""), &pending.state) {
        Ok(o) => o,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad callback").into_response(),
    };
    let CallbackOutcome::Authorized(response) = outcome else {
        return (StatusCode::BAD_REQUEST, "login failed").into_response();
    };
    let login = match rp.client.complete_login(&pending, &response).await {
        Ok(l) => l,
        Err(e) if e.is_unavailable() => {
            return (StatusCode::SERVICE_UNAVAILABLE, "LINE unavailable").into_response();
        }
        Err(_) => return (StatusCode::UNAUTHORIZED, "login rejected").into_response(),
    };
    let profile = match rp.client.profile(&login.tokens.access_token).await {
        Ok(p) => p,
        Err(_) => return (StatusCode::BAD_GATEWAY, "profile failed").into_response(),
    };
    let sid = random_id();
    rp.sessions.lock().unwrap().insert(
        sid.clone(),
        (profile.user_id.as_str().to_owned(), profile.display_name),
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/me".to_owned()),
            (
                header::SET_COOKIE,
                format!("rp_session={sid}; Path=/; HttpOnly; SameSite=Lax"),
            ),
        ],
    )
        .into_response()
}

async fn api_me(State(rp): State<Rp>, headers: HeaderMap) -> Response {
    let user =
        cookie(&headers, "rp_session").and_then(|s| rp.sessions.lock().unwrap().get(&s).cloned());
    match user {
        Some((id, name)) => {
            axum::Json(serde_json::json!({"userId": id, "displayName": name})).into_response()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Starts the relying party on 127.0.0.1:0 with a pre-bound listener (its callback URL must be
/// registered at the emulator before the emulator starts). Returns its base URL.
pub async fn start(
    listener: tokio::net::TcpListener,
    line_base: url::Url,
    channel_id: &str,
    secret: &str,
) -> url::Url {
    let addr = listener.local_addr().unwrap();
    let base: url::Url = format!("http://{addr}/").parse().unwrap();
    let client = LineClient::builder(ChannelId::new(channel_id), ChannelSecret::new(secret))
        .base_url(line_base)
        .policy(line_login::policy::OutboundPolicy::new(
            line_login::policy::PolicyConfig {
                rate_per_second: 100_000,
                burst: 10_000,
                ..Default::default()
            },
        ))
        .build()
        .unwrap();
    let rp = Rp {
        client,
        callback: base.join("/callback").unwrap(),
        pending: Arc::default(),
        sessions: Arc::default(),
    };
    let app = Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/api/me", get(api_me))
        .with_state(rp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}
