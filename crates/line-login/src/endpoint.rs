//! The LINE Login v2.1 endpoints the client calls, with their method, host, path, retry
//! class and breaker class.
//!
//! # Breaker classes
//!
//! Each [`EndpointClass`] has its own circuit breaker in the
//! [`OutboundPolicy`](crate::policy::OutboundPolicy), so one failing LINE endpoint refuses
//! only the calls that depend on it (the fault run that motivated this: while only
//! `/user/v1/deauthorize` answered 5xx, one shared breaker refused every login). The classes
//! follow what a caller needs to keep working, and the LINE endpoint each call reaches:
//!
//! | class | endpoints | who needs it |
//! |---|---|---|
//! | [`Login`](EndpointClass::Login) | code exchange, token refresh, verify (access and ID token), revoke (user token), userinfo, profile, friendship status, JWKS, discovery | logins, sessions, logout |
//! | [`Deauthorize`](EndpointClass::Deauthorize) | `POST /user/v1/deauthorize` | the deauthorization worker |
//! | [`ChannelToken`](EndpointClass::ChannelToken) | issue / verify / revoke channel access tokens (stateless, v2.1, short-lived), key ids | the deauthorization worker (its channel token), back-office tools |
//!
//! The refresh of a user's token that a deauthorization job may need is a call to the same
//! `/oauth2/v2.1/token` endpoint that logins use, so it is in the `Login` class: its failures
//! are evidence about the endpoint logins depend on. The classes share one rate limiter
//! (LINE's limits are per channel), and a `429` with `Retry-After` cools down every class
//! (see [`crate::policy`]).

use std::fmt;

use http::Method;

/// Which base URL an endpoint lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `https://access.line.me` (authorization, discovery).
    Auth,
    /// `https://api.line.me` (everything else).
    Api,
}

/// Whether a failed attempt may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Safe to repeat: retried on 429, 5xx, timeouts and transport errors.
    Idempotent,
    /// Never retried: repeating could consume or exceed something (the single-use
    /// authorization code; the 30-token quota of channel access tokens v2.1).
    Never,
}

/// Which circuit breaker an endpoint's calls go through (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointClass {
    /// Everything a login, a session or a logout calls.
    Login,
    /// `POST /user/v1/deauthorize`.
    Deauthorize,
    /// Issuing, verifying and revoking channel access tokens.
    ChannelToken,
}

impl EndpointClass {
    /// Every class, in a fixed order (the index of each is [`EndpointClass::index`]).
    pub const ALL: [EndpointClass; 3] = [
        EndpointClass::Login,
        EndpointClass::Deauthorize,
        EndpointClass::ChannelToken,
    ];

    /// The position of the class in [`EndpointClass::ALL`].
    pub fn index(self) -> usize {
        match self {
            EndpointClass::Login => 0,
            EndpointClass::Deauthorize => 1,
            EndpointClass::ChannelToken => 2,
        }
    }

    /// A short stable name (`login`, `deauthorize`, `channel_token`), e.g. for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            EndpointClass::Login => "login",
            EndpointClass::Deauthorize => "deauthorize",
            EndpointClass::ChannelToken => "channel_token",
        }
    }
}

/// One LINE Login API endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /oauth2/v2.1/token`, `grant_type=authorization_code`.
    ExchangeCode,
    /// `POST /oauth2/v2.1/token`, `grant_type=refresh_token`.
    RefreshToken,
    /// `GET /oauth2/v2.1/verify?access_token=…`.
    VerifyAccessToken,
    /// `POST /oauth2/v2.1/verify` with `id_token`.
    VerifyIdToken,
    /// `POST /oauth2/v2.1/revoke`.
    Revoke,
    /// `GET /oauth2/v2.1/userinfo`.
    UserInfo,
    /// `GET /v2/profile`.
    Profile,
    /// `GET /friendship/v1/status`.
    FriendshipStatus,
    /// `POST /user/v1/deauthorize`.
    Deauthorize,
    /// `POST /oauth2/v3/token` (stateless channel access token).
    StatelessChannelToken,
    /// `POST /oauth2/v2.1/token`, `grant_type=client_credentials` with a JWT assertion.
    IssueChannelTokenV21,
    /// `GET /oauth2/v2.1/tokens/kid`.
    ChannelTokenKeyIds,
    /// `POST /oauth2/v2.1/revoke` for a channel access token v2.1.
    RevokeChannelTokenV21,
    /// `POST /v2/oauth/accessToken` (short-lived channel access token).
    IssueShortLivedChannelToken,
    /// `POST /v2/oauth/verify` (short-lived channel access token).
    VerifyShortLivedChannelToken,
    /// `POST /v2/oauth/revoke` (short-lived channel access token).
    RevokeShortLivedChannelToken,
    /// `GET /oauth2/v2.1/certs` (JWKS).
    Jwks,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
}

impl Endpoint {
    /// HTTP method.
    pub fn method(self) -> Method {
        match self {
            Endpoint::VerifyAccessToken
            | Endpoint::UserInfo
            | Endpoint::Profile
            | Endpoint::FriendshipStatus
            | Endpoint::ChannelTokenKeyIds
            | Endpoint::Jwks
            | Endpoint::Discovery => Method::GET,
            _ => Method::POST,
        }
    }

    /// Path on its host.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ExchangeCode | Endpoint::RefreshToken | Endpoint::IssueChannelTokenV21 => {
                "/oauth2/v2.1/token"
            }
            Endpoint::VerifyAccessToken | Endpoint::VerifyIdToken => "/oauth2/v2.1/verify",
            Endpoint::Revoke | Endpoint::RevokeChannelTokenV21 => "/oauth2/v2.1/revoke",
            Endpoint::UserInfo => "/oauth2/v2.1/userinfo",
            Endpoint::Profile => "/v2/profile",
            Endpoint::FriendshipStatus => "/friendship/v1/status",
            Endpoint::Deauthorize => "/user/v1/deauthorize",
            Endpoint::StatelessChannelToken => "/oauth2/v3/token",
            Endpoint::ChannelTokenKeyIds => "/oauth2/v2.1/tokens/kid",
            Endpoint::IssueShortLivedChannelToken => "/v2/oauth/accessToken",
            Endpoint::VerifyShortLivedChannelToken => "/v2/oauth/verify",
            Endpoint::RevokeShortLivedChannelToken => "/v2/oauth/revoke",
            Endpoint::Jwks => "/oauth2/v2.1/certs",
            Endpoint::Discovery => "/.well-known/openid-configuration",
        }
    }

    /// Which host serves it.
    pub fn host(self) -> Host {
        match self {
            Endpoint::Discovery => Host::Auth,
            _ => Host::Api,
        }
    }

    /// Whether it may be retried.
    pub fn retry_class(self) -> RetryClass {
        match self {
            Endpoint::ExchangeCode
            | Endpoint::IssueChannelTokenV21
            | Endpoint::IssueShortLivedChannelToken => RetryClass::Never,
            _ => RetryClass::Idempotent,
        }
    }

    /// Which breaker its calls go through.
    pub fn class(self) -> EndpointClass {
        match self {
            Endpoint::ExchangeCode
            | Endpoint::RefreshToken
            | Endpoint::VerifyAccessToken
            | Endpoint::VerifyIdToken
            | Endpoint::Revoke
            | Endpoint::UserInfo
            | Endpoint::Profile
            | Endpoint::FriendshipStatus
            | Endpoint::Jwks
            | Endpoint::Discovery => EndpointClass::Login,
            Endpoint::Deauthorize => EndpointClass::Deauthorize,
            Endpoint::StatelessChannelToken
            | Endpoint::IssueChannelTokenV21
            | Endpoint::ChannelTokenKeyIds
            | Endpoint::RevokeChannelTokenV21
            | Endpoint::IssueShortLivedChannelToken
            | Endpoint::VerifyShortLivedChannelToken
            | Endpoint::RevokeShortLivedChannelToken => EndpointClass::ChannelToken,
        }
    }

    /// A short stable name, e.g. `exchange_code`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ExchangeCode => "exchange_code",
            Endpoint::RefreshToken => "refresh_token",
            Endpoint::VerifyAccessToken => "verify_access_token",
            Endpoint::VerifyIdToken => "verify_id_token",
            Endpoint::Revoke => "revoke",
            Endpoint::UserInfo => "userinfo",
            Endpoint::Profile => "profile",
            Endpoint::FriendshipStatus => "friendship_status",
            Endpoint::Deauthorize => "deauthorize",
            Endpoint::StatelessChannelToken => "stateless_channel_token",
            Endpoint::IssueChannelTokenV21 => "issue_channel_token_v21",
            Endpoint::ChannelTokenKeyIds => "channel_token_key_ids",
            Endpoint::RevokeChannelTokenV21 => "revoke_channel_token_v21",
            Endpoint::IssueShortLivedChannelToken => "issue_short_lived_channel_token",
            Endpoint::VerifyShortLivedChannelToken => "verify_short_lived_channel_token",
            Endpoint::RevokeShortLivedChannelToken => "revoke_short_lived_channel_token",
            Endpoint::Jwks => "jwks",
            Endpoint::Discovery => "discovery",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method(), self.path())
    }
}
