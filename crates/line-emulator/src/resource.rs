//! The resource endpoints (userinfo, profile, friendship status) and deauthorize. Errors use
//! the `{"message"}` shape: 401 for missing, invalid, expired or revoked tokens, 403 for a
//! missing scope.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use line_login::types::UserId;
use line_login::wire::{ErrorDetail, FriendshipStatus, Profile, UserInfo};

use crate::Shared;
use crate::crypto::AccessClaims;
use crate::error::{ApiError, json_response};
use crate::observe::ChannelTag;
use crate::params::{AUTH_HEADER_REQUIRED, bearer, json_body};
use crate::state::{AccessCheck, Inner, SCOPE_OPENID, SCOPE_PROFILE, User};

/// The 403 message for a token without the needed scope.
pub(crate) const SCOPE_MISSING: &str =
    "Not allowed to use the API. The access token does not have the required scope.";

fn user_token<'a>(
    st: &'a Inner,
    headers: &HeaderMap,
    scope: u8,
) -> Result<(AccessClaims, &'a User, String), ApiError> {
    let token = bearer(headers).ok_or_else(|| ApiError::unauthorized(AUTH_HEADER_REQUIRED))?;
    let claims = match st.check_access(token) {
        AccessCheck::Valid(c) => c,
        AccessCheck::Expired => return Err(ApiError::unauthorized("The access token expired")),
        AccessCheck::Revoked => return Err(ApiError::unauthorized("The access token revoked")),
        AccessCheck::Shape(_) => return Err(ApiError::unauthorized("invalid token")),
    };
    let tag = st.admit(claims.channel)?;
    if claims.scopes & scope == 0 {
        return Err(ApiError::message(StatusCode::FORBIDDEN, SCOPE_MISSING).in_channel(tag));
    }
    let user = st
        .user_at(claims.user)
        .ok_or_else(|| ApiError::unauthorized("invalid token").in_channel(tag))?;
    let id = user
        .ids
        .get(claims.channel as usize)
        .cloned()
        .unwrap_or_default();
    Ok((claims, user, id))
}

/// `GET|POST /oauth2/v2.1/userinfo` (needs `openid`).
pub(crate) async fn userinfo(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (claims, user, id) = user_token(&st, &headers, SCOPE_OPENID)?;
    let profile = claims.scopes & SCOPE_PROFILE != 0;
    ChannelTag(claims.channel).on(Ok(json_response(
        StatusCode::OK,
        &UserInfo {
            sub: UserId::new(id),
            name: profile.then(|| user.cfg.display_name.clone()),
            picture: if profile {
                user.cfg.picture_url.clone()
            } else {
                None
            },
        },
    )))
}

/// `GET /v2/profile` (needs `profile`).
pub(crate) async fn profile(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (claims, user, id) = user_token(&st, &headers, SCOPE_PROFILE)?;
    ChannelTag(claims.channel).on(Ok(json_response(
        StatusCode::OK,
        &Profile {
            user_id: UserId::new(id),
            display_name: user.cfg.display_name.clone(),
            picture_url: user.cfg.picture_url.clone(),
            status_message: user.cfg.status_message.clone(),
        },
    )))
}

/// `GET /friendship/v1/status` (needs `profile`).
pub(crate) async fn friendship(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (claims, _, _) = user_token(&st, &headers, SCOPE_PROFILE)?;
    ChannelTag(claims.channel).on(Ok(json_response(
        StatusCode::OK,
        &FriendshipStatus {
            friend_flag: st.is_friend(claims.user, claims.channel),
        },
    )))
}

/// The 401 message for a bad channel access token.
pub(crate) const CHANNEL_AUTH_FAILED: &str =
    "Authentication failed. Confirm that the access token in the authorization header is valid.";

/// `POST /user/v1/deauthorize`: Bearer channel access token (stateless or v2.1) of the
/// user token's channel; JSON `{"userAccessToken"}`; 204 on success.
pub(crate) async fn deauthorize(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let token = bearer(&headers).ok_or_else(|| ApiError::unauthorized(AUTH_HEADER_REQUIRED))?;
    let (channel, _, _) = st
        .check_channel_token(token)
        .map_err(|_| ApiError::unauthorized(CHANNEL_AUTH_FAILED))?;
    let tag = st.admit(channel)?;
    tag.on(deauthorize_for(&st, channel, body))
}

/// The deauthorization once the channel token is admitted.
fn deauthorize_for(
    st: &Inner,
    channel: u32,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value: serde_json::Value = json_body(body, |_| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            "The request body could not be parsed as JSON",
        )
    })?;
    let Some(user_token) = value.get("userAccessToken").and_then(|v| v.as_str()) else {
        return Err(ApiError::Message {
            status: StatusCode::BAD_REQUEST,
            message: "The request body has 1 error(s)".into(),
            details: Some(vec![ErrorDetail {
                message: Some("must be specified".into()),
                property: Some("userAccessToken".into()),
            }]),
        });
    };
    let invalid = || ApiError::message(StatusCode::BAD_REQUEST, "invalid token");
    match st.check_access(user_token) {
        AccessCheck::Valid(c) if c.channel == channel => {
            st.unlink(c.user, c.channel);
            tracing::debug!(channel, user = c.user, "emulator: deauthorized");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(invalid()),
    }
}
