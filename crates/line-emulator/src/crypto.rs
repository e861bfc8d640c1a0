//! Small, fast primitives: randomness, base64url, HMAC, and the token formats.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// base64url without padding.
pub(crate) fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()
}

/// HMAC-SHA256.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // A key of any length is accepted by HMAC, so this never fails.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time HMAC-SHA256 check.
pub(crate) fn hmac_verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(tag).is_ok()
}

/// `n` random ASCII letters and digits.
pub(crate) fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `2 * n` random lowercase hex digits.
pub(crate) fn random_hex(n: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(n * 2);
    for _ in 0..n {
        let b: u8 = rng.random();
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Random bytes.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill(&mut out[..]);
    out
}

/// `{"alg":"HS256"}`: the header of LINE's v2.1 user access tokens.
pub(crate) const ACCESS_TOKEN_HEADER: &str = "eyJhbGciOiJIUzI1NiJ9";
/// `{"alg":"HS256","typ":"JWT"}`: web-login ID tokens and the emulator's channel tokens.
pub(crate) const JWT_HS256_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// What a user access token carries inside its (opaque to clients) middle part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub channel: u32,
    pub user: u32,
    pub scopes: u8,
    pub exp: i64,
    pub generation: u64,
    pub family: u64,
    pub id: [u8; 16],
}

const ACCESS_PAYLOAD_LEN: usize = 1 + 4 + 4 + 1 + 8 + 8 + 8 + 16 + 14;

impl AccessClaims {
    /// Mints the JWS-shaped token `eyJhbGciOiJIUzI1NiJ9.<payload>.<hmac>`.
    pub(crate) fn mint(&self, key: &[u8]) -> String {
        let mut p = Vec::with_capacity(ACCESS_PAYLOAD_LEN);
        p.push(1u8);
        p.extend_from_slice(&self.channel.to_be_bytes());
        p.extend_from_slice(&self.user.to_be_bytes());
        p.push(self.scopes);
        p.extend_from_slice(&self.exp.to_be_bytes());
        p.extend_from_slice(&self.generation.to_be_bytes());
        p.extend_from_slice(&self.family.to_be_bytes());
        p.extend_from_slice(&self.id);
        p.extend_from_slice(&random_bytes::<14>());
        let payload = b64(&p);
        let tag = hmac(
            key,
            &[ACCESS_TOKEN_HEADER.as_bytes(), b".", payload.as_bytes()],
        );
        let mut token = String::with_capacity(ACCESS_TOKEN_HEADER.len() + payload.len() + 45);
        token.push_str(ACCESS_TOKEN_HEADER);
        token.push('.');
        token.push_str(&payload);
        token.push('.');
        token.push_str(&b64(&tag));
        token
    }
}

/// Why a string is not a usable user access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenShape {
    /// Not three dot-separated parts with LINE's header.
    NotJws,
    /// JWS-shaped, but not issued by this emulator.
    Malformed,
}

/// Splits a JWS-shaped string into its three parts.
pub(crate) fn split_jws(token: &str) -> Option<(&str, &str, &str)> {
    let mut it = token.split('.');
    let (h, p, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.is_empty() || p.is_empty() || s.is_empty() {
        return None;
    }
    Some((h, p, s))
}

/// Parses and authenticates a user access token.
pub(crate) fn parse_access_token(key: &[u8], token: &str) -> Result<AccessClaims, TokenShape> {
    let (h, p, s) = split_jws(token).ok_or(TokenShape::NotJws)?;
    if !h.starts_with("eyJ") {
        return Err(TokenShape::NotJws);
    }
    if h != ACCESS_TOKEN_HEADER {
        return Err(TokenShape::Malformed);
    }
    let tag = b64_decode(s).ok_or(TokenShape::Malformed)?;
    if !hmac_verify(key, &[h.as_bytes(), b".", p.as_bytes()], &tag) {
        return Err(TokenShape::Malformed);
    }
    let raw = b64_decode(p).ok_or(TokenShape::Malformed)?;
    if raw.len() != ACCESS_PAYLOAD_LEN || raw[0] != 1 {
        return Err(TokenShape::Malformed);
    }
    let u32_at = |i: usize| u32::from_be_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&raw[34..50]);
    Ok(AccessClaims {
        channel: u32_at(1),
        user: u32_at(5),
        scopes: raw[9],
        exp: u64_at(10) as i64,
        generation: u64_at(18),
        family: u64_at(26),
        id,
    })
}

/// Signs `header.payload` with HS256 and returns the compact JWT.
pub(crate) fn sign_hs256(header_b64: &str, payload_json: &[u8], key: &[u8]) -> String {
    let payload = b64(payload_json);
    let tag = hmac(key, &[header_b64.as_bytes(), b".", payload.as_bytes()]);
    format!("{header_b64}.{payload}.{}", b64(&tag))
}

/// Checks an HS256 JWT and returns its decoded payload bytes.
pub(crate) fn verify_hs256(token: &str, key: &[u8]) -> Option<Vec<u8>> {
    let (h, p, s) = split_jws(token)?;
    let tag = b64_decode(s)?;
    if !hmac_verify(key, &[h.as_bytes(), b".", p.as_bytes()], &tag) {
        return None;
    }
    b64_decode(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn access_token_round_trip() {
        let key = b"k";
        let c = AccessClaims {
            channel: 3,
            user: 7,
            scopes: 5,
            exp: 1_900_000_000,
            generation: 42,
            family: 9,
            id: [1; 16],
        };
        let t = c.mint(key);
        assert!(t.starts_with("eyJhbGciOiJIUzI1NiJ9."));
        assert_eq!(parse_access_token(key, &t).unwrap(), c);
        assert_eq!(parse_access_token(b"other", &t), Err(TokenShape::Malformed));
        assert_eq!(parse_access_token(key, "abc"), Err(TokenShape::NotJws));
        let mut bad = t.clone();
        bad.push('x');
        assert!(parse_access_token(key, &bad).is_err());
    }

    #[test]
    fn header_constants_decode() {
        assert_eq!(
            b64_decode(ACCESS_TOKEN_HEADER).unwrap(),
            br#"{"alg":"HS256"}"#
        );
        assert_eq!(
            b64_decode(JWT_HS256_HEADER).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn random_shapes() {
        assert_eq!(random_hex(8).len(), 16);
        assert!(random_alnum(20).chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
