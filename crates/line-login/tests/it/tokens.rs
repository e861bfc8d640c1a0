//! Building ID tokens by hand, including malformed ones.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const NOW: u64 = 1_700_000_000;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hs256_sign(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    b64(&mac.finalize().into_bytes())
}

/// A token from raw header and payload JSON text, HMAC-signed with `key`.
pub fn raw_hs256(header: &str, payload: &str, key: &[u8]) -> String {
    let msg = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = hs256_sign(key, &msg);
    format!("{msg}.{sig}")
}

pub fn claims() -> Value {
    json!({
        "iss": "https://access.line.me",
        "sub": "U0123456789abcdef0123456789abcdef",
        "aud": super::stub::CHANNEL_ID,
        "exp": NOW + 3600,
        "iat": NOW,
        "nonce": "n0nce",
        "amr": ["linesso"],
        "name": "Taro",
        "picture": "https://profile.example/p"
    })
}

pub fn hs256(claims: &Value) -> String {
    raw_hs256(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
        super::stub::CHANNEL_SECRET.as_bytes(),
    )
}
