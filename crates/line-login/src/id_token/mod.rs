//! Local ID token verification.
//!
//! The caller pins the algorithm: [`IdTokenVerifier::hs256`] for web login (signed with the
//! channel secret's UTF-8 bytes, no `kid`), [`IdTokenVerifier::es256`] for tokens from LINE's
//! SDKs and LIFF (signed with a key from the JWKS). The algorithm is never taken from the
//! token's header or from the discovery document (which lists only ES256 although web login
//! signs HS256).
//!
//! Checks, in order: size and shape (3 base64url segments, no padding); header (`alg` equal
//! to the pinned one, no `crit`; `jku`, `x5u`, `jwk` are ignored, never fetched); signature
//! (constant-time for HMAC); then the claims, strictly typed (a mistyped `exp` is an error,
//! never "absent"; duplicate members are an error): `iss` exactly `https://access.line.me`,
//! `aud` exactly the channel ID as a string, `exp` not passed and `iat` not in the future
//! (5 minutes of skew by default), `nbf` if present, `nonce` present exactly when one was
//! sent and equal to it, `auth_time` present and recent enough when `max_age` was sent, and
//! optionally an expected `sub`. Time comes from an injectable [`Clock`](crate::clock::Clock).

mod jwks;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

pub use self::jwks::{JwksCache, JwksFetcher};
use crate::clock::{SharedClock, SystemClock};
use crate::secret::{ChannelSecret, IdToken};
use crate::types::{ChannelId, Nonce, UserId};
use crate::wire::IdTokenClaims;

/// LINE's issuer.
pub const LINE_ISSUER: &str = "https://access.line.me";
/// Largest accepted ID token, in bytes.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// Default clock skew allowance (the LINE Android SDK uses 5 minutes).
pub const DEFAULT_SKEW: Duration = Duration::from_secs(300);

/// The algorithm the caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenAlgorithm {
    /// HMAC-SHA256 with the channel secret (web login).
    Hs256,
    /// ECDSA P-256 with a JWKS key (LINE SDKs, LIFF).
    Es256,
}

impl IdTokenAlgorithm {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlgorithm::Hs256 => "HS256",
            IdTokenAlgorithm::Es256 => "ES256",
        }
    }
}

/// Why an ID token was rejected. No variant carries the token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Longer than [`MAX_ID_TOKEN_LEN`].
    #[error("the ID token is too large")]
    TooLarge,
    /// Not three base64url segments, or a segment does not decode.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm than the pinned one.
    #[error("the ID token algorithm {found:?} is not the accepted {expected}")]
    AlgorithmMismatch {
        /// The pinned algorithm.
        expected: &'static str,
        /// The header's `alg` (truncated, printable characters only).
        found: String,
    },
    /// The header has a `crit` member (no extension is understood).
    #[error("the ID token header has critical extensions")]
    CriticalHeader,
    /// An ES256 token without `kid`.
    #[error("the ID token has no key ID")]
    MissingKeyId,
    /// No JWKS key has the token's `kid`, even after a refetch.
    #[error("no signing key matches the ID token's key ID")]
    UnknownKey,
    /// The JWKS could not be fetched.
    #[error("the signing keys could not be fetched")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("the ID token signature is invalid")]
    BadSignature,
    /// The claims are not a JSON object of the documented types.
    #[error("the ID token claims are malformed")]
    MalformedClaims,
    /// `iss` is not LINE's.
    #[error("the ID token issuer is wrong")]
    InvalidIssuer,
    /// `aud` is not this channel.
    #[error("the ID token audience is wrong")]
    InvalidAudience,
    /// `sub` is empty, too long or not printable ASCII.
    #[error("the ID token subject is invalid")]
    InvalidSubject,
    /// `sub` is not the expected user.
    #[error("the ID token subject is not the expected user")]
    SubjectMismatch,
    /// `exp` has passed.
    #[error("the ID token has expired")]
    Expired,
    /// `iat` is in the future.
    #[error("the ID token was issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future.
    #[error("the ID token is not valid yet")]
    NotYetValid,
    /// A nonce was sent but the token has none.
    #[error("the ID token has no nonce")]
    NonceMissing,
    /// The token has a nonce although none was sent.
    #[error("the ID token has an unexpected nonce")]
    UnexpectedNonce,
    /// The nonce differs.
    #[error("the ID token nonce does not match")]
    NonceMismatch,
    /// `max_age` was sent but `auth_time` is missing.
    #[error("the ID token has no auth_time")]
    AuthTimeMissing,
    /// `auth_time + max_age` has passed.
    #[error("the authentication is older than max_age")]
    AuthTooOld,
}

/// What the verifier expects of this particular token.
#[derive(Debug, Clone, Default)]
pub struct Expectations<'a> {
    /// The nonce sent in the authorization request (`None`: the token must carry none).
    pub nonce: Option<&'a Nonce>,
    /// The `max_age` sent, if any.
    pub max_age: Option<u64>,
    /// An expected user, if known.
    pub subject: Option<&'a UserId>,
}

impl<'a> Expectations<'a> {
    /// Expect this nonce.
    pub fn nonce(nonce: &'a Nonce) -> Self {
        Self {
            nonce: Some(nonce),
            ..Self::default()
        }
    }
}

enum KeySource {
    Hs256(DecodingKey),
    Es256(JwksCache),
}

struct Inner {
    channel_id: ChannelId,
    issuer: String,
    skew: Duration,
    clock: SharedClock,
    keys: KeySource,
}

/// Verifies ID tokens for one channel, with one pinned algorithm. Cheap to clone.
#[derive(Clone)]
pub struct IdTokenVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("channel_id", &self.inner.channel_id)
            .field("algorithm", &self.algorithm())
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Claims as they must be typed on the wire. Derived `Deserialize` rejects duplicate members
/// and mistyped values.
#[derive(Deserialize)]
struct StrictClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    amr: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    picture: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl IdTokenVerifier {
    /// A verifier for web-login tokens: HS256 with the channel secret's UTF-8 bytes.
    pub fn hs256(channel_id: ChannelId, secret: &ChannelSecret) -> Self {
        Self::build(
            channel_id,
            KeySource::Hs256(DecodingKey::from_secret(secret.secret().as_bytes())),
        )
    }

    /// A verifier for SDK/LIFF tokens: ES256 with keys from a JWKS cache.
    pub fn es256(channel_id: ChannelId, jwks: JwksCache) -> Self {
        Self::build(channel_id, KeySource::Es256(jwks))
    }

    fn build(channel_id: ChannelId, keys: KeySource) -> Self {
        Self {
            inner: Arc::new(Inner {
                channel_id,
                issuer: LINE_ISSUER.to_owned(),
                skew: DEFAULT_SKEW,
                clock: Arc::new(SystemClock::new()),
                keys,
            }),
        }
    }

    fn modify(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                channel_id: shared.channel_id.clone(),
                issuer: shared.issuer.clone(),
                skew: shared.skew,
                clock: shared.clock.clone(),
                keys: match &shared.keys {
                    KeySource::Hs256(k) => KeySource::Hs256(k.clone()),
                    KeySource::Es256(c) => KeySource::Es256(c.clone()),
                },
            },
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Uses another clock (tests).
    pub fn with_clock(self, clock: SharedClock) -> Self {
        self.modify(|i| i.clock = clock)
    }

    /// Accepts another issuer (only for emulators configured with a different one).
    pub fn with_issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.modify(|i| i.issuer = issuer)
    }

    /// Changes the allowed clock skew (default 5 minutes).
    pub fn with_skew(self, skew: Duration) -> Self {
        self.modify(|i| i.skew = skew)
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> IdTokenAlgorithm {
        match self.inner.keys {
            KeySource::Hs256(_) => IdTokenAlgorithm::Hs256,
            KeySource::Es256(_) => IdTokenAlgorithm::Es256,
        }
    }

    /// Verifies a token. For ES256, an unknown `kid` triggers one (rate-bounded) JWKS refetch.
    pub async fn verify(
        &self,
        token: &IdToken,
        expected: &Expectations<'_>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        match &self.inner.keys {
            KeySource::Hs256(_) => self.verify_now(token, expected),
            KeySource::Es256(cache) => {
                let (parts, kid) = self.es256_parts(token)?;
                let key = cache.key(&kid).await?;
                self.finish(&parts, &key, Algorithm::ES256, expected)
            }
        }
    }

    /// Verifies a token without waiting: HS256 always; ES256 only if the key is cached
    /// (otherwise [`IdTokenError::UnknownKey`]).
    pub fn verify_now(
        &self,
        token: &IdToken,
        expected: &Expectations<'_>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        match &self.inner.keys {
            KeySource::Hs256(key) => {
                let parts = split(token.secret())?;
                parse_header(parts.header, IdTokenAlgorithm::Hs256)?;
                self.finish(&parts, key, Algorithm::HS256, expected)
            }
            KeySource::Es256(cache) => {
                let (parts, kid) = self.es256_parts(token)?;
                let key = cache.cached_key(&kid).ok_or(IdTokenError::UnknownKey)?;
                self.finish(&parts, &key, Algorithm::ES256, expected)
            }
        }
    }

    fn es256_parts<'t>(&self, token: &'t IdToken) -> Result<(Parts<'t>, String), IdTokenError> {
        let parts = split(token.secret())?;
        let header = parse_header(parts.header, IdTokenAlgorithm::Es256)?;
        let kid = header.kid.ok_or(IdTokenError::MissingKeyId)?;
        Ok((parts, kid))
    }

    fn finish(
        &self,
        parts: &Parts<'_>,
        key: &DecodingKey,
        alg: Algorithm,
        expected: &Expectations<'_>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        match jsonwebtoken::crypto::verify(parts.signature, parts.message.as_bytes(), key, alg) {
            Ok(true) => {}
            _ => return Err(IdTokenError::BadSignature),
        }
        let payload = URL_SAFE_NO_PAD
            .decode(parts.payload)
            .map_err(|_| IdTokenError::Malformed("payload is not base64url"))?;
        let claims: StrictClaims =
            serde_json::from_slice(&payload).map_err(|_| IdTokenError::MalformedClaims)?;
        self.check_claims(claims, expected)
    }

    fn check_claims(
        &self,
        c: StrictClaims,
        expected: &Expectations<'_>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let inner = &*self.inner;
        if c.iss != inner.issuer {
            return Err(IdTokenError::InvalidIssuer);
        }
        if c.aud != inner.channel_id.as_str() {
            return Err(IdTokenError::InvalidAudience);
        }
        if c.sub.is_empty() || c.sub.len() > 255 || !c.sub.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdTokenError::InvalidSubject);
        }
        let now = inner.clock.unix_seconds();
        let skew = inner.skew.as_secs();
        if now > c.exp.saturating_add(skew) {
            return Err(IdTokenError::Expired);
        }
        if c.iat > now.saturating_add(skew) {
            return Err(IdTokenError::IssuedInFuture);
        }
        if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(IdTokenError::NotYetValid);
        }
        match (expected.nonce, &c.nonce) {
            (Some(_), None) => return Err(IdTokenError::NonceMissing),
            (None, Some(_)) => return Err(IdTokenError::UnexpectedNonce),
            (Some(want), Some(got)) if !want.ct_eq(&Nonce::new(got.as_str())) => {
                return Err(IdTokenError::NonceMismatch);
            }
            _ => {}
        }
        if let Some(max_age) = expected.max_age {
            let auth_time = c.auth_time.ok_or(IdTokenError::AuthTimeMissing)?;
            if now > auth_time.saturating_add(max_age).saturating_add(skew) {
                return Err(IdTokenError::AuthTooOld);
            }
        }
        if expected.subject.is_some_and(|s| s.as_str() != c.sub) {
            return Err(IdTokenError::SubjectMismatch);
        }
        Ok(IdTokenClaims {
            iss: c.iss,
            sub: UserId::new(c.sub),
            aud: ChannelId::new(c.aud),
            exp: c.exp,
            iat: c.iat,
            auth_time: c.auth_time,
            nonce: c.nonce,
            amr: c.amr,
            name: c.name,
            picture: c.picture,
            email: c.email,
        })
    }
}

struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the signed bytes.
    message: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(IdTokenError::TooLarge);
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(IdTokenError::Malformed("characters outside base64url"));
    }
    let mut it = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(IdTokenError::Malformed("not three segments"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(IdTokenError::Malformed("empty segment"));
    }
    let message = &token[..header.len() + 1 + payload.len()];
    Ok(Parts {
        header,
        payload,
        signature,
        message,
    })
}

fn parse_header(segment: &str, pinned: IdTokenAlgorithm) -> Result<Header, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| IdTokenError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&bytes)
        .map_err(|_| IdTokenError::Malformed("header is not a JOSE header"))?;
    if header.alg != pinned.as_str() {
        return Err(IdTokenError::AlgorithmMismatch {
            expected: pinned.as_str(),
            found: header
                .alg
                .chars()
                .filter(char::is_ascii_graphic)
                .take(16)
                .collect(),
        });
    }
    if header.crit.is_some() {
        return Err(IdTokenError::CriticalHeader);
    }
    Ok(header)
}
