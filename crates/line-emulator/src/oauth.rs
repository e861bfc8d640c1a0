//! The OAuth endpoints: token (three grants), verify (both forms), revoke.
//!
//! ## Client authentication
//! The token endpoint (`authorization_code`, `refresh_token`) and revoke take the client's
//! credentials either as `client_id`/`client_secret` in the form body (`client_secret_post`,
//! what LINE documents and what `line-login` sends) or as `Authorization: Basic` with the
//! id and the secret each form-urlencoded before joining with `:` (`client_secret_basic`,
//! RFC 6749 §2.3.1, which says an authorization server MUST support it; it is the default of
//! openid-client, Auth.js and Authlib, and real LINE accepts it). Both at once is a 400
//! `invalid_request` (RFC 6749 §2.3); a wrong secret is the same 400 `invalid_client`
//! `invalid client_secret` in either place; a malformed Basic header is a 400
//! `invalid_request`. [`client_credentials`] is the one parser.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use line_login::secret::{AccessToken, ChannelAccessToken, IdToken, RefreshToken};
use line_login::types::{ChannelId, Scopes};
use line_login::wire::{AccessTokenInfo, ChannelAccessTokenResponse, TokenResponse};

use crate::Shared;
use crate::channel_token;
use crate::crypto::{self, TokenShape};
use crate::error::{ApiError, json_response};
use crate::extract::{OAuthForm, Query};
use crate::observe::ChannelTag;
use crate::params::{ClientCredentials, Params, client_credentials};
use crate::state::{
    ACCESS_TTL, AccessCheck, Channel, ChannelTokenError, Inner, REFRESH_TTL, RefreshRecord,
    SCOPE_OPENID, scope_wire,
};

/// The `client_assertion_type` of JWT assertions.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    p.get(name)
        .ok_or_else(|| ApiError::invalid_request(format!("'{name}' is not specified.")))
}

/// How an endpoint treats `client_secret`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    /// Must be present and right.
    Required,
    /// Checked when present.
    IfGiven,
    /// Not looked at (LINE: "ignored" for channels that include the mobile app type).
    Ignored,
}

/// The channel named by the client credentials (Basic header or body, see
/// [`client_credentials`]), checking the secret as `secret` says. A wrong secret is the same
/// 400 `invalid_client` wherever it was sent (tagged with the channel, as the caller's answer
/// must be).
fn client<'a>(
    st: &'a Inner,
    creds: &ClientCredentials,
    secret: Secret,
) -> Result<&'a Channel, ApiError> {
    let ch = st
        .channel(&creds.id)
        .ok_or_else(|| ApiError::invalid_client("invalid client_id"))?;
    let tag = st.admit(ch.idx)?;
    if secret == Secret::Ignored {
        return Ok(ch);
    }
    match creds.secret.as_deref() {
        Some(s) if !ch.secret_ok(s) => Err(ApiError::invalid_client("invalid client_secret")),
        None if secret == Secret::Required => Err(ApiError::invalid_client(
            "'client_secret' is not specified.",
        )),
        _ => Ok(ch),
    }
    .map_err(|e| e.in_channel(tag))
}

/// `POST /oauth2/v2.1/token`.
pub(crate) async fn token(
    State(st): State<Shared>,
    headers: HeaderMap,
    OAuthForm(p): OAuthForm,
) -> Result<Response, ApiError> {
    match p.get("grant_type") {
        None => Err(ApiError::invalid_request("'grant_type' is not specified.")),
        Some("authorization_code") => code_grant(&st, &headers, &p),
        Some("refresh_token") => refresh_grant(&st, &headers, &p),
        Some("client_credentials") => channel_token::issue_v21(&st, &p),
        Some(_) => Err(ApiError::oauth(
            "unsupported_grant_type",
            "unsupported grant_type",
        )),
    }
}

fn code_grant(st: &Inner, headers: &HeaderMap, p: &Params) -> Result<Response, ApiError> {
    let code = required(p, "code")?;
    let redirect_uri = required(p, "redirect_uri")?;
    let creds = client_credentials(headers, p)?;
    let ch = client(st, &creds, Secret::IfGiven)?;
    ChannelTag(ch.idx).on(redeem_code(st, p, &creds, ch, code, redirect_uri))
}

/// The code grant once its client is known.
fn redeem_code(
    st: &Inner,
    p: &Params,
    creds: &ClientCredentials,
    ch: &Channel,
    code: &str,
    redirect_uri: &str,
) -> Result<Response, ApiError> {
    let Some((_, rec)) = st.codes.remove(code) else {
        return Err(ApiError::invalid_grant("invalid authorization code"));
    };
    let now = st.clock.now();
    if rec.channel != ch.idx {
        return Err(ApiError::invalid_grant("invalid authorization code"));
    }
    if rec.exp <= now {
        return Err(ApiError::invalid_grant("authorization code expired"));
    }
    if rec.redirect_uri != redirect_uri {
        return Err(ApiError::invalid_grant("redirect_uri does not match"));
    }
    if creds.secret.is_none() && rec.code_challenge.is_none() && ch.web_only {
        return Err(ApiError::invalid_client(
            "'client_secret' is not specified.",
        ));
    }
    if let Some(challenge) = &rec.code_challenge {
        let Some(verifier) = p.get("code_verifier") else {
            return Err(ApiError::invalid_grant("'code_verifier' is not specified."));
        };
        if !line_login::pkce::is_valid_verifier(verifier) {
            return Err(ApiError::invalid_grant("invalid code_verifier"));
        }
        if line_login::pkce::s256_challenge(verifier) != *challenge {
            return Err(ApiError::invalid_grant("code_verifier does not match"));
        }
    }
    let grant_ok = st
        .grants
        .get(&(rec.user, rec.channel))
        .is_some_and(|g| g.active && g.generation == rec.generation);
    if !grant_ok {
        return Err(ApiError::invalid_grant("invalid authorization code"));
    }
    let Some(user) = st.user_at(rec.user) else {
        return Err(ApiError::invalid_grant("invalid authorization code"));
    };
    let family = st.next_family();
    let (access, claims) = st.mint_access(ch.idx, rec.user, rec.scopes, rec.generation, family);
    let refresh = crypto::random_alnum(20);
    st.add_refresh(
        refresh.clone(),
        RefreshRecord {
            channel: ch.idx,
            user: rec.user,
            scopes: rec.scopes,
            exp: now + REFRESH_TTL,
            generation: rec.generation,
            family,
            last_access: claims.id,
        },
    );
    let id_token = (rec.scopes & SCOPE_OPENID != 0).then(|| {
        let es256 = p.get("id_token_key_type") == Some("JWK");
        IdToken::new(st.id_token(
            ch,
            user,
            rec.scopes,
            rec.nonce.clone(),
            rec.auth_time,
            rec.amr,
            es256,
        ))
    });
    Ok(json_response(
        StatusCode::OK,
        &TokenResponse {
            access_token: AccessToken::new(access),
            expires_in: ACCESS_TTL as u64,
            id_token,
            refresh_token: RefreshToken::new(refresh),
            scope: Scopes::parse(scope_wire(rec.scopes)),
            token_type: "Bearer".into(),
        },
    ))
}

fn refresh_grant(st: &Inner, headers: &HeaderMap, p: &Params) -> Result<Response, ApiError> {
    let token = required(p, "refresh_token")?;
    let creds = client_credentials(headers, p)?;
    // The secret is required for web-only channels and ignored for the others.
    let rule = match st.channel(&creds.id) {
        Some(c) if !c.web_only => Secret::Ignored,
        _ => Secret::Required,
    };
    let ch = client(st, &creds, rule)?;
    ChannelTag(ch.idx).on(refresh_for(st, ch, token))
}

/// The refresh grant once its client is known.
fn refresh_for(st: &Inner, ch: &Channel, token: &str) -> Result<Response, ApiError> {
    let invalid = || ApiError::invalid_grant("invalid refresh token");
    let rotate = st.config.rotate_refresh_tokens;
    // With rotation the old token is claimed (removed) atomically, so two concurrent
    // refreshes with it cannot both succeed.
    // (Another channel's client can neither use nor burn it.)
    let rec = if rotate {
        st.refresh
            .remove_if(token, |_, r| r.channel == ch.idx)
            .map(|(_, r)| r)
    } else {
        st.refresh
            .get(token)
            .filter(|r| r.channel == ch.idx)
            .map(|r| r.clone())
    }
    .ok_or_else(invalid)?;
    if !st.refresh_usable(&rec) {
        return Err(invalid());
    }
    let (access, claims) = st.mint_access(ch.idx, rec.user, rec.scopes, rec.generation, rec.family);
    if st.config.refresh_revokes_old_access_token {
        st.revoked_access
            .insert(rec.last_access, st.clock.now() + ACCESS_TTL);
    }
    let returned = if rotate {
        let new = crypto::random_alnum(20);
        st.add_refresh(
            new.clone(),
            RefreshRecord {
                last_access: claims.id,
                ..rec.clone()
            },
        );
        new
    } else {
        if let Some(mut r) = st.refresh.get_mut(token) {
            r.last_access = claims.id;
        }
        token.to_owned()
    };
    Ok(json_response(
        StatusCode::OK,
        &TokenResponse {
            access_token: AccessToken::new(access),
            expires_in: ACCESS_TTL as u64,
            id_token: None,
            refresh_token: RefreshToken::new(returned),
            scope: Scopes::parse(scope_wire(rec.scopes)),
            token_type: "Bearer".into(),
        },
    ))
}

/// `GET /oauth2/v2.1/verify?access_token=…`.
pub(crate) async fn verify_access_token(
    State(st): State<Shared>,
    Query(q): Query,
) -> Result<Response, ApiError> {
    let (st, q) = (&*st, &q);
    let token = required(q, "access_token")?;
    let now = st.clock.now();
    if crypto::split_jws(token).is_some_and(|(h, _, _)| h == crypto::JWT_HS256_HEADER) {
        // A channel access token (stateless or v2.1).
        return match st.check_channel_token(token) {
            Ok((ch, exp, _)) => {
                let tag = st.admit(ch)?;
                let id = st
                    .channel_at(ch)
                    .map(|c| c.cfg.id.clone())
                    .unwrap_or_default();
                tag.on(Ok(json_response(
                    StatusCode::OK,
                    &AccessTokenInfo {
                        scope: None,
                        client_id: ChannelId::new(id),
                        expires_in: exp - now,
                    },
                )))
            }
            Err(ChannelTokenError::Expired) => {
                Err(ApiError::invalid_request("The access token expired"))
            }
            Err(ChannelTokenError::Revoked) => {
                Err(ApiError::invalid_request("The access token revoked"))
            }
            Err(ChannelTokenError::Invalid) => {
                Err(ApiError::invalid_request("The access token malformed"))
            }
        };
    }
    match st.check_access(token) {
        AccessCheck::Valid(c) => {
            let tag = st.admit(c.channel)?;
            let id = st
                .channel_at(c.channel)
                .map(|ch| ch.cfg.id.clone())
                .unwrap_or_default();
            tag.on(Ok(json_response(
                StatusCode::OK,
                &AccessTokenInfo {
                    scope: Some(Scopes::parse(scope_wire(c.scopes))),
                    client_id: ChannelId::new(id),
                    expires_in: c.exp - now,
                },
            )))
        }
        AccessCheck::Expired => Err(ApiError::invalid_request("The access token expired")),
        AccessCheck::Revoked => Err(ApiError::invalid_request("The access token revoked")),
        AccessCheck::Shape(TokenShape::NotJws) => {
            Err(ApiError::invalid_request("The access token not JWS"))
        }
        AccessCheck::Shape(TokenShape::Malformed) => {
            Err(ApiError::invalid_request("The access token malformed"))
        }
    }
}

/// `POST /oauth2/v2.1/verify` (ID token).
pub(crate) async fn verify_id_token(
    State(st): State<Shared>,
    OAuthForm(p): OAuthForm,
) -> Result<Response, ApiError> {
    let st = &*st;
    let token = required(&p, "id_token")?;
    let client_id = required(&p, "client_id")?;
    let tag = match st.channel(client_id) {
        Some(ch) => Some(st.admit(ch.idx)?),
        None => None,
    };
    let verified = check_id_token(st, &p, token, client_id);
    match tag {
        Some(tag) => tag.on(verified),
        None => verified,
    }
}

/// The ID token's checks, once the channel named is admitted.
fn check_id_token(
    st: &Inner,
    p: &Params,
    token: &str,
    client_id: &str,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::invalid_request("Invalid IdToken.");
    let (h, payload, _) = crypto::split_jws(token).ok_or_else(invalid)?;
    let header: serde_json::Value = crypto::b64_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    let claims: serde_json::Value = crypto::b64_decode(payload)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    let verified = match header.get("alg").and_then(|a| a.as_str()) {
        Some("HS256") => {
            // The key is the secret of the channel the token claims to be for.
            let aud_channel = claims
                .get("aud")
                .and_then(|a| a.as_str())
                .and_then(|a| st.channel(a));
            aud_channel.and_then(|c| crypto::verify_hs256(token, c.cfg.secret.as_bytes()))
        }
        Some("ES256") => st.verify_es256(token),
        _ => None,
    };
    if verified.is_none() {
        return Err(invalid());
    }
    let str_claim = |k: &str| claims.get(k).and_then(|v| v.as_str());
    if str_claim("iss") != Some(st.config.issuer.as_str()) {
        return Err(ApiError::invalid_request("Invalid IdToken Issuer."));
    }
    let exp = claims
        .get("exp")
        .and_then(|v| v.as_i64())
        .ok_or_else(invalid)?;
    if exp <= st.clock.now() {
        return Err(ApiError::invalid_request("IdToken expired."));
    }
    if str_claim("aud") != Some(client_id) {
        return Err(ApiError::invalid_request("Invalid IdToken Audience."));
    }
    if let Some(nonce) = p.get("nonce")
        && str_claim("nonce") != Some(nonce)
    {
        return Err(ApiError::invalid_request("Invalid IdToken Nonce."));
    }
    if let Some(user_id) = p.get("user_id")
        && str_claim("sub") != Some(user_id)
    {
        return Err(ApiError::invalid_request(
            "Invalid IdToken Subject Identifier.",
        ));
    }
    Ok(json_response(StatusCode::OK, &claims))
}

/// `POST /oauth2/v2.1/revoke`.
pub(crate) async fn revoke(
    State(st): State<Shared>,
    headers: HeaderMap,
    OAuthForm(p): OAuthForm,
) -> Result<Response, ApiError> {
    let st = &*st;
    let creds = client_credentials(&headers, &p)?;
    // The secret is required for web-only channels (except in the refresh-token form, which
    // LINE's SDKs send without one) and ignored for the others.
    let rule = match st.channel(&creds.id) {
        Some(c) if !c.web_only => Secret::Ignored,
        _ if p.get("refresh_token").is_some() => Secret::IfGiven,
        _ => Secret::Required,
    };
    let ch = client(st, &creds, rule)?;
    ChannelTag(ch.idx).on(revoke_for(st, &p, ch))
}

/// The revocation once its client is known.
fn revoke_for(st: &Inner, p: &Params, ch: &Channel) -> Result<Response, ApiError> {
    if let Some(token) = p.get("access_token") {
        if crypto::split_jws(token).is_some_and(|(h, _, _)| h == crypto::JWT_HS256_HEADER) {
            // A channel access token v2.1: an invalid one is no error.
            st.channel_tokens
                .remove_if(token, |_, rec| rec.channel == ch.idx);
            return Ok(StatusCode::OK.into_response());
        }
        return match crypto::parse_access_token(&st.key, token) {
            Err(TokenShape::NotJws) => Err(ApiError::invalid_request("The access token not JWS")),
            Err(TokenShape::Malformed) => {
                Err(ApiError::invalid_request("The access token malformed"))
            }
            Ok(c) if c.channel != ch.idx => Err(ApiError::invalid_request(
                "The access token was not issued to this channel",
            )),
            Ok(c) => {
                st.revoked_access.insert(c.id, c.exp);
                if st.config.revoke_access_token_revokes_refresh_token {
                    st.refresh_dead_families
                        .insert(c.family, st.clock.now() + REFRESH_TTL);
                }
                Ok(StatusCode::OK.into_response())
            }
        };
    }
    if let Some(token) = p.get("refresh_token") {
        if let Some((_, rec)) = st.refresh.remove_if(token, |_, r| r.channel == ch.idx) {
            // No access token of the family is minted after this, so none outlives
            // now + 30 days.
            st.revoked_families
                .insert(rec.family, st.clock.now() + ACCESS_TTL);
        }
        return Ok(StatusCode::OK.into_response());
    }
    Err(ApiError::invalid_request(
        "'access_token' is not specified.",
    ))
}

/// A channel token response.
pub(crate) fn channel_token_response(
    token: String,
    expires_in: i64,
    key_id: Option<String>,
) -> Response {
    json_response(
        StatusCode::OK,
        &ChannelAccessTokenResponse {
            access_token: ChannelAccessToken::new(token),
            expires_in: expires_in.max(0) as u64,
            token_type: "Bearer".into(),
            key_id,
        },
    )
}
