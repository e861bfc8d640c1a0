//! The ID token parser and verifier (`line_login::id_token`, HS256).
//!
//! The first byte picks the mode: even, the rest is the token as is (splitting, base64,
//! header checks); odd, the rest is `header JSON \0 payload JSON`, signed here with the
//! channel secret, so the claim parsing and checks behind a valid signature are reached too.
//! Property: no panic; an accepted token carries the channel as `aud`.
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use line_login::clock::MockClock;
use line_login::id_token::{Expectations, IdTokenVerifier};
use line_login::secret::{ChannelSecret, IdToken};
use line_login::types::{ChannelId, Nonce};

const CHANNEL: &str = "1234567890";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn verifier() -> &'static IdTokenVerifier {
    static V: OnceLock<IdTokenVerifier> = OnceLock::new();
    V.get_or_init(|| {
        IdTokenVerifier::hs256(ChannelId::new(CHANNEL), &ChannelSecret::new(SECRET))
            .with_clock(Arc::new(MockClock::at_unix(1_700_000_000)))
    })
}

fn signed(header: &[u8], payload: &[u8]) -> Option<String> {
    let body = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).ok()?;
    mac.update(body.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Some(format!("{body}.{sig}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let (header, payload) = rest.split_at(split);
        match signed(header, payload.get(1..).unwrap_or_default()) {
            Some(t) => t,
            None => return,
        }
    };
    let token = IdToken::new(token);
    let nonce = Nonce::new("fuzz-nonce");
    for expected in [
        Expectations::default(),
        Expectations::nonce(&nonce),
        Expectations {
            max_age: Some(mode as u64),
            ..Expectations::nonce(&nonce)
        },
    ] {
        if let Ok(claims) = verifier().verify_now(&token, &expected) {
            assert_eq!(claims.aud.as_str(), CHANNEL);
        }
    }
});
