//! The JSON bodies of the LINE Login v2.1 API, shared by the client and the emulator.
//!
//! Decoding is forward compatible: unknown fields are ignored, and fields LINE documents as
//! optional (or that are missing in practice) are `Option`s. Secret fields use the types of
//! [`crate::secret`], so a decoded response never prints a token.

use serde::{Deserialize, Serialize};

use crate::secret::{AccessToken, ChannelAccessToken, IdToken, RefreshToken};
use crate::types::{ChannelId, Scopes, UserId};

/// `POST /oauth2/v2.1/token` answer for the `authorization_code` and `refresh_token` grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The user access token (30 days).
    pub access_token: AccessToken,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The ID token; present only for the code grant when `openid` was in the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// The refresh token. Always store whatever comes back.
    pub refresh_token: RefreshToken,
    /// Granted scopes (never includes `email`, even when granted).
    #[serde(default)]
    pub scope: Scopes,
    /// `Bearer` (compared case-insensitively by the client).
    pub token_type: String,
}

/// `GET /oauth2/v2.1/verify?access_token=…` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenInfo {
    /// Granted scopes; may be missing for channel access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scopes>,
    /// The channel the token was issued to. Check it equals your own channel.
    pub client_id: ChannelId,
    /// Seconds left. Check it is positive.
    pub expires_in: i64,
}

/// The claims of a LINE ID token, as returned by `POST /oauth2/v2.1/verify` or decoded locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer: `https://access.line.me`.
    pub iss: String,
    /// The user ID.
    pub sub: UserId,
    /// The channel ID (always a JSON string).
    pub aud: ChannelId,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Authentication time; only when `max_age` was in the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// Echo of the authorization request's `nonce`; only when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication methods (`pwd`, `lineautologin`, `lineqr`, `linesso`, `mfa`); sometimes missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Display name (with the `profile` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Profile picture URL (with the `profile` scope, if the user has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Email address (with the `email` scope, channel permission and user consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `GET|POST /oauth2/v2.1/userinfo` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user ID.
    pub sub: UserId,
    /// Display name (with `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Picture URL (with `profile`, if set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

/// `GET /v2/profile` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The user ID.
    pub user_id: UserId,
    /// Display name (may change at any time; never use it as a key).
    pub display_name: String,
    /// Picture URL; absent when the user has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// Status message; absent when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// `GET /friendship/v1/status` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FriendshipStatus {
    /// Whether the user has added the channel's linked LINE Official Account and not blocked it.
    pub friend_flag: bool,
}

/// A channel access token answer (`POST /oauth2/v3/token`, or `POST /oauth2/v2.1/token` with
/// `client_credentials` + assertion).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelAccessTokenResponse {
    /// The channel access token.
    pub access_token: ChannelAccessToken,
    /// Seconds until expiry (900 for stateless tokens).
    pub expires_in: u64,
    /// `Bearer`.
    pub token_type: String,
    /// The key ID of a v2.1 token (needed to list or revoke it later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// `GET /oauth2/v2.1/tokens/kid` answer: the key IDs of valid channel access tokens v2.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTokenKeyIds {
    /// Key IDs.
    pub kids: Vec<String>,
}

/// `POST /user/v1/deauthorize` request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeauthorizeRequest {
    /// The user's access token for this channel.
    pub user_access_token: AccessToken,
}

/// The OAuth-style error body: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// The error code, e.g. `invalid_grant`, `invalid_request`.
    pub error: String,
    /// Human-readable text; may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// One entry of a `{"message", "details"}` error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Detail message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The property the detail is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// The platform-style error body: `{"message": "...", "details": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageErrorBody {
    /// The message, e.g. `invalid token`.
    pub message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
}

/// The OpenID Connect discovery document (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// Issuer.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// UserInfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// JWKS URL.
    pub jwks_uri: String,
    /// Supported response types.
    pub response_types_supported: Vec<String>,
    /// Supported subject types.
    pub subject_types_supported: Vec<String>,
    /// Listed ID token algorithms. LINE lists only ES256 although web login signs HS256:
    /// never choose a verification algorithm from this list.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Supported PKCE methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// A JSON Web Key Set (`/oauth2/v2.1/certs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys. Keys of types the client does not use (e.g. RSA) are kept but ignored.
    pub keys: Vec<Jwk>,
}

/// One JSON Web Key. Only the members LINE's ES256 keys use are typed; others are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type (`EC` for LINE's ID token keys).
    pub kty: String,
    /// Algorithm (`ES256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Use (`sig`).
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Key ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Curve (`P-256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_ignores_unknown_fields_and_optional_id_token() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","expires_in":2592000,"refresh_token":"r","scope":"profile openid","token_type":"Bearer","new_field":[1,2]}"#,
        )
        .unwrap();
        assert!(t.id_token.is_none());
        assert_eq!(t.scope.to_wire(), "profile openid");
    }

    #[test]
    fn claims_optional_fields() {
        let c: IdTokenClaims = serde_json::from_str(
            r#"{"iss":"https://access.line.me","sub":"U1","aud":"123","exp":2,"iat":1}"#,
        )
        .unwrap();
        assert!(c.amr.is_none() && c.nonce.is_none() && c.email.is_none());
    }

    #[test]
    fn profile_camel_case() {
        let p: Profile = serde_json::from_str(r#"{"userId":"U1","displayName":"Brown"}"#).unwrap();
        assert_eq!(p.display_name, "Brown");
        assert!(p.picture_url.is_none());
    }
}
