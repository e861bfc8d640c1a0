//! Signing the JWT assertion for channel access tokens v2.1.
//!
//! LINE's console registers the public half of an RSA key pair and hands back a `kid`. The
//! assertion is an RS256 JWT with `iss` = `sub` = the channel ID, `aud` =
//! `https://api.line.me/`, `exp` at most 30 minutes ahead, and `token_exp` the lifetime
//! wanted for the channel token (at most 30 days).

use std::time::SystemTime;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::secret::ClientAssertion;
use crate::types::ChannelId;

/// The assertion audience LINE expects.
pub const ASSERTION_AUDIENCE: &str = "https://api.line.me/";
/// Longest assertion lifetime LINE accepts (30 minutes).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 30 * 60;
/// Longest channel token lifetime (30 days).
pub const MAX_TOKEN_EXP_SECS: u64 = 30 * 24 * 3600;

/// Errors in signing an assertion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The private key is not an RSA PEM key.
    #[error("the assertion signing key is not a usable RSA private key in PEM form")]
    BadKey,
    /// Signing failed.
    #[error("the assertion could not be signed")]
    Signing,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    token_exp: u64,
}

/// Signs an assertion valid for `lifetime_secs` (capped at 30 minutes) asking for a token
/// valid `token_exp_secs` (capped at 30 days).
pub fn sign_assertion(
    channel_id: &ChannelId,
    kid: &str,
    private_key_pem: &[u8],
    now: SystemTime,
    lifetime_secs: u64,
    token_exp_secs: u64,
) -> Result<ClientAssertion, AssertionError> {
    let key = EncodingKey::from_rsa_pem(private_key_pem).map_err(|_| AssertionError::BadKey)?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = AssertionClaims {
        iss: channel_id.as_str(),
        sub: channel_id.as_str(),
        aud: ASSERTION_AUDIENCE,
        exp: now + lifetime_secs.min(MAX_ASSERTION_LIFETIME_SECS),
        token_exp: token_exp_secs.min(MAX_TOKEN_EXP_SECS),
    };
    jsonwebtoken::encode(&header, &claims, &key)
        .map(ClientAssertion::new)
        .map_err(|_| AssertionError::Signing)
}
