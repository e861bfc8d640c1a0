//! Signing the JWT assertion for channel access tokens v2.1.

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use line_login::assertion::{AssertionError, sign_assertion};
use line_login::types::ChannelId;

// A test-only key pair generated for this repository with `openssl genrsa 2048`.
const PRIVATE: &[u8] = include_bytes!("../fixtures/assertion_test_key.pem");
const PUBLIC: &[u8] = include_bytes!("../fixtures/assertion_test_key.pub.pem");

#[test]
fn assertion_has_the_documented_claims_and_caps() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let a = sign_assertion(
        &ChannelId::new("1234567890"),
        "kid-1",
        PRIVATE,
        now,
        3600,
        90 * 24 * 3600,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(a.secret()).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some("kid-1"));
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.set_audience(&["https://api.line.me/"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        a.secret(),
        &DecodingKey::from_rsa_pem(PUBLIC).unwrap(),
        &v,
    )
    .unwrap();
    let c = data.claims;
    assert_eq!(c["iss"], "1234567890");
    assert_eq!(c["sub"], "1234567890");
    assert_eq!(
        c["exp"],
        1_700_000_000u64 + 30 * 60,
        "assertion lifetime capped at 30 minutes"
    );
    assert_eq!(
        c["token_exp"],
        30 * 24 * 3600u64,
        "token lifetime capped at 30 days"
    );
    assert_eq!(format!("{a:?}"), "ClientAssertion([redacted])");
}

#[test]
fn bad_key_is_a_typed_error() {
    let e =
        sign_assertion(&ChannelId::new("1"), "k", b"not a key", UNIX_EPOCH, 60, 60).unwrap_err();
    assert!(matches!(e, AssertionError::BadKey));
}
