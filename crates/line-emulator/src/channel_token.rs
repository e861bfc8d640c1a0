//! Channel access tokens: stateless (`/oauth2/v3/token`), v2.1 (client_credentials with an
//! RS256 JWT assertion, `/oauth2/v2.1/tokens/kid`), and short-lived (`/v2/oauth/*`).
//!
//! ## Client authentication (decision)
//! LINE documents `client_id`/`client_secret` in the form body for the stateless
//! (`/oauth2/v3/token`) and short-lived (`/v2/oauth/accessToken`) tokens, and nothing about
//! HTTP Basic. Both are `client_credentials` grants, where RFC 6749 §4.4.2 and §2.3.1 make the
//! server support Basic for clients with a password, and LINE's OAuth server does accept Basic
//! on `/oauth2/v2.1/token`. So these endpoints read the credentials through the same
//! [`crate::params::client_credentials_opt`] as the token and revoke endpoints: Basic or
//! body, never both. That LINE accepts Basic on these two endpoints is not verified (the
//! emulator README lists it among the deviations to watch). The v2.1 channel access token
//! (`client_credentials` with `client_assertion`) authenticates with the JWT assertion only,
//! as LINE documents; a Basic header there is not looked at.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jsonwebtoken::{Algorithm, Validation};
use line_login::wire::ChannelTokenKeyIds;

use crate::Shared;
use crate::crypto;
use crate::error::{ApiError, json_response};
use crate::extract::Query;
use crate::oauth::{JWT_BEARER, channel_token_response};
use crate::observe::ChannelTag;
use crate::params::{Params, client_credentials_opt, form};
use crate::state::{
    CHANNEL_TOKEN_QUOTA, Channel, ChannelTokenRecord, Inner, SHORT_LIVED_TTL, STATELESS_TTL,
    ShortLivedRecord,
};

/// The audience LINE requires in assertions.
const ASSERTION_AUDIENCE: &str = "https://api.line.me/";
/// The longest an assertion may live (30 minutes).
const ASSERTION_MAX_LIFETIME: i64 = 1800;
/// The longest a v2.1 token may live (30 days).
const V21_MAX_TTL: i64 = 30 * 24 * 3600;

fn key_not_found() -> ApiError {
    ApiError::message(
        StatusCode::NOT_FOUND,
        "Cannot find channel key that satisfies the conditions",
    )
}

/// A verified assertion: the channel and the requested token lifetime.
struct Assertion {
    channel: u32,
    token_exp: Option<i64>,
}

fn verify_assertion(st: &Inner, p: &Params) -> Result<Assertion, ApiError> {
    match p.get("client_assertion_type") {
        Some(JWT_BEARER) => {}
        Some(_) => {
            return Err(ApiError::invalid_request("Invalid client_assertion_type"));
        }
        None => {
            return Err(ApiError::invalid_request(
                "'client_assertion_type' is not specified.",
            ));
        }
    }
    let Some(jwt) = p.get("client_assertion") else {
        return Err(ApiError::invalid_request(
            "'client_assertion' is not specified.",
        ));
    };
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|_| ApiError::invalid_request("Invalid client_assertion"))?;
    if header.alg != Algorithm::RS256 {
        return Err(ApiError::invalid_request(
            "Invalid alg. Only RS256 is supported.",
        ));
    }
    let kid = header.kid.ok_or_else(key_not_found)?;
    let (channel, key) = st
        .channels
        .iter()
        .find_map(|c| {
            c.assertion_keys
                .iter()
                .find(|(k, _)| *k == kid)
                .map(|(_, d)| (c, d))
        })
        .ok_or_else(key_not_found)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, key, &validation)
        .map_err(|_| ApiError::invalid_request("Invalid signature"))?
        .claims;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if s("iss") != Some(channel.cfg.id.as_str()) || s("sub") != Some(channel.cfg.id.as_str()) {
        return Err(ApiError::invalid_client(
            "iss and clientId of key do not match",
        ));
    }
    let tag = st.admit(channel.idx)?;
    let token_exp = check_claims(st, &claims).map_err(|e| e.in_channel(tag))?;
    Ok(Assertion {
        channel: channel.idx,
        token_exp,
    })
}

/// An assertion's `aud`, `exp` and `token_exp`, once its channel is known: the requested token
/// lifetime.
fn check_claims(st: &Inner, claims: &serde_json::Value) -> Result<Option<i64>, ApiError> {
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == ASSERTION_AUDIENCE,
        Some(serde_json::Value::Array(a)) => {
            a.iter().any(|v| v.as_str() == Some(ASSERTION_AUDIENCE))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(ApiError::invalid_request("Invalid aud"));
    }
    let now = st.clock.now();
    match claims.get("exp").and_then(|v| v.as_i64()) {
        Some(exp) if exp > now && exp <= now + ASSERTION_MAX_LIFETIME + 60 => {}
        _ => return Err(ApiError::invalid_request("Invalid exp")),
    }
    let token_exp = match claims.get("token_exp") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(t) if t > 0 && t <= V21_MAX_TTL => Some(t),
            _ => return Err(ApiError::invalid_request("Invalid token_exp")),
        },
    };
    Ok(token_exp)
}

/// `POST /oauth2/v2.1/token` with `grant_type=client_credentials`: a channel access token v2.1.
pub(crate) fn issue_v21(st: &Inner, p: &Params) -> Result<Response, ApiError> {
    let a = verify_assertion(st, p)?;
    ChannelTag(a.channel).on(issue_v21_for(st, &a))
}

/// Issues a v2.1 token for a verified assertion, within the channel's quota.
fn issue_v21_for(st: &Inner, a: &Assertion) -> Result<Response, ApiError> {
    let ttl = a.token_exp.unwrap_or(V21_MAX_TTL);
    let now = st.clock.now();
    let Some(ch) = st.channel_at(a.channel) else {
        return Err(key_not_found());
    };
    let _issuing = ch.v21_issue.lock();
    let valid = st
        .channel_tokens
        .iter()
        .filter(|t| t.channel == a.channel && t.exp > now)
        .count();
    if valid >= CHANNEL_TOKEN_QUOTA {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            "The maximum number of access tokens has already been issued",
        ));
    }
    let key_id = crypto::b64(&crypto::random_bytes::<16>());
    let exp = now + ttl;
    let token = st.mint_channel_token(a.channel, "v2.1", exp, &key_id);
    st.channel_tokens.insert(
        token.clone(),
        ChannelTokenRecord {
            channel: a.channel,
            key_id: key_id.clone(),
            exp,
        },
    );
    Ok(channel_token_response(token, ttl, Some(key_id)))
}

/// `GET /oauth2/v2.1/tokens/kid`: the key IDs of the channel's valid v2.1 tokens.
pub(crate) async fn tokens_kid(
    State(st): State<Shared>,
    Query(p): Query,
) -> Result<Response, ApiError> {
    let a = verify_assertion(&st, &p)?;
    let now = st.clock.now();
    let kids = st
        .channel_tokens
        .iter()
        .filter(|t| t.channel == a.channel && t.exp > now)
        .map(|t| t.key_id.clone())
        .collect();
    ChannelTag(a.channel).on(Ok(json_response(
        StatusCode::OK,
        &ChannelTokenKeyIds { kids },
    )))
}

/// Checks `grant_type=client_credentials`, the only grant of the channel token endpoints.
fn require_client_credentials(p: &Params) -> Result<(), ApiError> {
    match p.get("grant_type") {
        Some("client_credentials") => Ok(()),
        None => Err(ApiError::invalid_request("'grant_type' is not specified.")),
        Some(_) => Err(ApiError::oauth(
            "unsupported_grant_type",
            "unsupported grant_type",
        )),
    }
}

/// The channel of the client credentials (Basic header or body), admitted, when the secret is
/// right: `unknown` answers no or an unknown client, `wrong_secret` a missing or wrong secret
/// (tagged with the channel).
fn secret_client<'a>(
    st: &'a Inner,
    headers: &HeaderMap,
    p: &Params,
    unknown: impl Fn() -> ApiError,
    wrong_secret: impl FnOnce() -> ApiError,
) -> Result<(&'a Channel, ChannelTag), ApiError> {
    let creds = client_credentials_opt(headers, p)?.ok_or_else(&unknown)?;
    let ch = st.channel(&creds.id).ok_or_else(unknown)?;
    let tag = st.admit(ch.idx)?;
    if !creds.secret.as_deref().is_some_and(|s| ch.secret_ok(s)) {
        return Err(wrong_secret().in_channel(tag));
    }
    Ok((ch, tag))
}

/// `POST /oauth2/v3/token`: a stateless channel access token (15 minutes).
pub(crate) async fn stateless(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = form(&headers, body)?;
    require_client_credentials(&p)?;
    let channel = if p.get("client_assertion").is_some() {
        verify_assertion(&st, &p)?.channel
    } else {
        let bad = || ApiError::invalid_request("Invalid 'client_credentials'.");
        secret_client(&st, &headers, &p, bad, bad)?.0.idx
    };
    let exp = st.clock.now() + STATELESS_TTL;
    let token = st.mint_channel_token(channel, "stateless", exp, "");
    ChannelTag(channel).on(Ok(channel_token_response(token, STATELESS_TTL, None)))
}

/// `POST /v2/oauth/accessToken`: a short-lived channel access token (30 days, 30 per channel,
/// the oldest revoked beyond that).
pub(crate) async fn short_lived(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = form(&headers, body)?;
    require_client_credentials(&p)?;
    let (ch, tag) = secret_client(
        &st,
        &headers,
        &p,
        || ApiError::invalid_client("invalid client_id"),
        || ApiError::invalid_client("invalid client_secret"),
    )?;
    let token = crypto::random_alnum(64);
    let exp = st.clock.now() + SHORT_LIVED_TTL;
    st.short_lived.insert(
        token.clone(),
        ShortLivedRecord {
            channel: ch.idx,
            exp,
        },
    );
    let mut issued = ch.short_lived.lock();
    issued.push_back(token.clone());
    issued.retain(|t| st.short_lived.contains_key(t));
    while issued.len() > CHANNEL_TOKEN_QUOTA {
        if let Some(old) = issued.pop_front() {
            st.short_lived.remove(&old);
        }
    }
    drop(issued);
    tag.on(Ok(channel_token_response(token, SHORT_LIVED_TTL, None)))
}

fn short_lived_shape_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 512
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_.".contains(&b))
}

/// `POST /v2/oauth/verify`: checks a short-lived channel access token.
pub(crate) async fn short_lived_verify(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = form(&headers, body)?;
    let token = p
        .get("access_token")
        .ok_or_else(|| ApiError::invalid_request("'access_token' is not specified."))?;
    if !short_lived_shape_ok(token) {
        return Err(ApiError::invalid_request("access_token in invalid format"));
    }
    let now = st.clock.now();
    let rec = st
        .short_lived
        .get(token)
        .map(|r| r.clone())
        .filter(|r| r.exp > now)
        .ok_or_else(|| ApiError::invalid_request("access_token invalid"))?;
    let tag = st.admit(rec.channel)?;
    let id = st
        .channel_at(rec.channel)
        .map(|c| c.cfg.id.clone())
        .unwrap_or_default();
    tag.on(Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"client_id": id, "expires_in": rec.exp - now}),
    )))
}

/// `POST /v2/oauth/revoke`: revokes a short-lived channel access token.
pub(crate) async fn short_lived_revoke(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = form(&headers, body)?;
    let token = match p.get("access_token") {
        Some(t) if short_lived_shape_ok(t) => t,
        _ => {
            return Err(ApiError::OAuth {
                status: StatusCode::BAD_REQUEST,
                error: "invalid_request",
                description: None,
            });
        }
    };
    let revoked = Ok(StatusCode::OK.into_response());
    match st.short_lived.remove(token) {
        Some((_, rec)) => ChannelTag(rec.channel).on(revoked),
        None => revoked,
    }
}
