//! A small in-process stand-in for the LINE Platform (auto-consent), with a journal, fault
//! queues, a clock offset and the list of authorized users: enough to drive every server flow
//! and to assert what LINE saw. (The full emulator lives in `line-emulator`.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const CHANNEL_ID: &str = "1234567890";
pub const CHANNEL_SECRET: &str = "CANARY_SECRET_0123456789abcdef01";
pub const ISSUER: &str = "https://access.line.me";

#[derive(Clone)]
pub struct FakeLine {
    pub inner: Arc<Mutex<Inner>>,
    pub url: String,
}

#[derive(Default)]
pub struct Inner {
    /// The user the next consent picks.
    pub next_user: String,
    pub codes: HashMap<String, Code>,
    /// access token → (user, expires at secs)
    pub access: HashMap<String, (String, i64)>,
    /// refresh token → user
    pub refresh: HashMap<String, String>,
    pub channel_tokens: HashSet<String>,
    /// users who have authorized the channel
    pub authorized: HashSet<String>,
    pub journal: Vec<(String, String, u16)>,
    /// path → statuses to answer before the normal answer
    pub faults: HashMap<String, VecDeque<u16>>,
    pub clock_offset: i64,
    pub counter: u64,
    pub access_ttl: i64,
    /// Put this nonce into ID tokens instead of the requested one (replay / mismatch tests).
    pub nonce_override: Option<String>,
    /// Answer /v2/profile with this user id instead of the token's (IDT-11).
    pub profile_user_override: Option<String>,
    /// Leave `name` out of ID tokens (as LINE does without the `profile` scope).
    pub id_token_without_name: bool,
}

pub struct Code {
    user: String,
    nonce: Option<String>,
    challenge: Option<String>,
    redirect_uri: String,
}

fn now_secs(i: &Inner) -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + i.clock_offset
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl FakeLine {
    pub async fn start() -> FakeLine {
        let inner = Arc::new(Mutex::new(Inner {
            next_user: "U00000000000000000000000000000001".into(),
            access_ttl: 30 * 24 * 3600,
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let fake = FakeLine {
            inner: inner.clone(),
            url: format!("http://{addr}"),
        };
        let router = Router::new()
            .route("/oauth2/v2.1/authorize", get(authorize))
            .route("/oauth2/v2.1/token", post(token))
            .route("/v2/profile", get(profile))
            .route("/oauth2/v2.1/revoke", post(revoke))
            .route("/oauth2/v3/token", post(channel_token))
            .route("/user/v1/deauthorize", post(deauthorize))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        fake
    }

    pub fn set_user(&self, user: &str) {
        self.inner.lock().unwrap().next_user = user.into();
    }

    pub fn is_authorized(&self, user: &str) -> bool {
        self.inner.lock().unwrap().authorized.contains(user)
    }

    pub fn journal(&self) -> Vec<(String, String, u16)> {
        self.inner.lock().unwrap().journal.clone()
    }

    pub fn calls(&self, path: &str) -> Vec<u16> {
        self.journal()
            .into_iter()
            .filter(|(_, p, _)| p == path)
            .map(|(_, _, s)| s)
            .collect()
    }

    pub fn fault(&self, path: &str, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .faults
            .entry(path.into())
            .or_default()
            .extend(statuses);
    }

    pub fn shift_clock(&self, secs: i64) {
        self.inner.lock().unwrap().clock_offset += secs;
    }

    /// Forgets every token of the user (as if the user unlinked in the LINE app).
    pub fn unlink_in_app(&self, user: &str) {
        let mut i = self.inner.lock().unwrap();
        i.authorized.remove(user);
        i.access.retain(|_, (u, _)| u != user);
        i.refresh.retain(|_, u| u != user);
    }
}

fn record(i: &mut Inner, method: &str, path: &str, status: u16) {
    i.journal.push((method.into(), path.into(), status));
}

/// Pops a fault for the path, if one is queued.
fn fault(i: &mut Inner, method: &str, path: &str) -> Option<Response> {
    let status = i.faults.get_mut(path).and_then(|q| q.pop_front())?;
    record(i, method, path, status);
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        "{\"message\":\"fault\"}",
    )
        .into_response();
    if status == 429 {
        r.headers_mut().insert("retry-after", "0".parse().unwrap());
    }
    Some(r)
}

async fn authorize(
    State(f): State<FakeLine>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut i = f.inner.lock().unwrap();
    i.counter += 1;
    let code = format!("code{}", i.counter);
    let user = i.next_user.clone();
    i.codes.insert(
        code.clone(),
        Code {
            user,
            nonce: q.get("nonce").cloned(),
            challenge: q.get("code_challenge").cloned(),
            redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
        },
    );
    record(&mut i, "GET", "/oauth2/v2.1/authorize", 302);
    let redirect = format!(
        "{}?code={}&state={}",
        q.get("redirect_uri").cloned().unwrap_or_default(),
        code,
        q.get("state").cloned().unwrap_or_default()
    );
    Redirect::to(&redirect).into_response()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-line-request-id", "fakereq"),
        ],
        v.to_string(),
    )
        .into_response()
}

fn issue(i: &mut Inner, user: &str) -> (String, String) {
    i.counter += 1;
    let access = format!("CANARY_ACCESS_{}", i.counter);
    let refresh = format!("CANARY_REFRESH_{}", i.counter);
    let exp = now_secs(i) + i.access_ttl;
    i.access.insert(access.clone(), (user.to_string(), exp));
    i.refresh.insert(refresh.clone(), user.to_string());
    (access, refresh)
}

async fn token(State(f): State<FakeLine>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let mut i = f.inner.lock().unwrap();
    if let Some(r) = fault(&mut i, "POST", "/oauth2/v2.1/token") {
        return r;
    }
    let bad = |i: &mut Inner, desc: &str| {
        record(i, "POST", "/oauth2/v2.1/token", 400);
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_grant", "error_description": desc}),
        )
    };
    if form.get("client_secret").map(String::as_str) != Some(CHANNEL_SECRET) {
        return bad(&mut i, "bad client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = form.get("code").and_then(|c| i.codes.remove(c)) else {
                return bad(&mut i, "invalid authorization code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if code.challenge.as_deref() != Some(&b64(&Sha256::digest(verifier.as_bytes()))) {
                return bad(&mut i, "invalid code_verifier");
            }
            if form.get("redirect_uri") != Some(&code.redirect_uri) {
                return bad(&mut i, "redirect_uri does not match");
            }
            let (access, refresh) = issue(&mut i, &code.user);
            i.authorized.insert(code.user.clone());
            let now = now_secs(&i);
            let mut claims = serde_json::json!({
                "iss": ISSUER, "sub": code.user, "aud": CHANNEL_ID, "exp": now + 3600, "iat": now,
            });
            if !i.id_token_without_name {
                claims["name"] = serde_json::Value::String(format!("Name of {}", &code.user[..5]));
            }
            if let Some(n) = i.nonce_override.clone().or(code.nonce) {
                claims["nonce"] = serde_json::Value::String(n);
            }
            let header = b64(br#"{"typ":"JWT","alg":"HS256"}"#);
            let payload = b64(claims.to_string().as_bytes());
            let mut mac = Hmac::<Sha256>::new_from_slice(CHANNEL_SECRET.as_bytes()).unwrap();
            mac.update(format!("{header}.{payload}").as_bytes());
            let sig = b64(&mac.finalize().into_bytes());
            let ttl = i.access_ttl;
            record(&mut i, "POST", "/oauth2/v2.1/token", 200);
            json(
                StatusCode::OK,
                serde_json::json!({
                    "access_token": access, "expires_in": ttl, "id_token": format!("{header}.{payload}.{sig}"),
                    "refresh_token": refresh, "scope": "profile openid", "token_type": "Bearer"
                }),
            )
        }
        Some("refresh_token") => {
            let Some(user) = form.get("refresh_token").and_then(|r| i.refresh.remove(r)) else {
                return bad(&mut i, "invalid refresh token");
            };
            let (access, refresh) = issue(&mut i, &user);
            let ttl = i.access_ttl;
            record(&mut i, "POST", "/oauth2/v2.1/token", 200);
            json(
                StatusCode::OK,
                serde_json::json!({
                    "access_token": access, "expires_in": ttl, "refresh_token": refresh,
                    "scope": "profile openid", "token_type": "Bearer"
                }),
            )
        }
        _ => bad(&mut i, "unsupported grant"),
    }
}

fn bearer(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string()
}

fn valid_access(i: &Inner, token: &str) -> Option<String> {
    let (user, exp) = i.access.get(token)?;
    (*exp > now_secs(i)).then(|| user.clone())
}

async fn profile(State(f): State<FakeLine>, headers: HeaderMap) -> Response {
    let mut i = f.inner.lock().unwrap();
    if let Some(r) = fault(&mut i, "GET", "/v2/profile") {
        return r;
    }
    match valid_access(&i, &bearer(&headers)) {
        Some(user) => {
            let user = i.profile_user_override.clone().unwrap_or(user);
            record(&mut i, "GET", "/v2/profile", 200);
            let name = format!("Name of {}", &user[..5]);
            json(
                StatusCode::OK,
                serde_json::json!({"userId": user, "displayName": name}),
            )
        }
        None => {
            record(&mut i, "GET", "/v2/profile", 401);
            json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "invalid token"}),
            )
        }
    }
}

async fn revoke(State(f): State<FakeLine>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let mut i = f.inner.lock().unwrap();
    if let Some(r) = fault(&mut i, "POST", "/oauth2/v2.1/revoke") {
        return r;
    }
    if let Some(t) = form.get("access_token") {
        i.access.remove(t);
    }
    record(&mut i, "POST", "/oauth2/v2.1/revoke", 200);
    StatusCode::OK.into_response()
}

async fn channel_token(State(f): State<FakeLine>) -> Response {
    let mut i = f.inner.lock().unwrap();
    if let Some(r) = fault(&mut i, "POST", "/oauth2/v3/token") {
        return r;
    }
    i.counter += 1;
    let t = format!("CANARY_CHANNEL_{}", i.counter);
    i.channel_tokens.insert(t.clone());
    record(&mut i, "POST", "/oauth2/v3/token", 200);
    json(
        StatusCode::OK,
        serde_json::json!({"access_token": t, "expires_in": 900, "token_type": "Bearer"}),
    )
}

async fn deauthorize(State(f): State<FakeLine>, headers: HeaderMap, body: String) -> Response {
    let mut i = f.inner.lock().unwrap();
    if let Some(r) = fault(&mut i, "POST", "/user/v1/deauthorize") {
        return r;
    }
    if !i.channel_tokens.contains(&bearer(&headers)) {
        record(&mut i, "POST", "/user/v1/deauthorize", 401);
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"message": "invalid channel token"}),
        );
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let token = v["userAccessToken"].as_str().unwrap_or("").to_string();
    match valid_access(&i, &token) {
        Some(user) => {
            i.authorized.remove(&user);
            i.access.retain(|_, (u, _)| *u != user);
            i.refresh.retain(|_, u| *u != user);
            record(&mut i, "POST", "/user/v1/deauthorize", 204);
            StatusCode::NO_CONTENT.into_response()
        }
        None => {
            record(&mut i, "POST", "/user/v1/deauthorize", 400);
            json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"message": "invalid token"}),
            )
        }
    }
}
