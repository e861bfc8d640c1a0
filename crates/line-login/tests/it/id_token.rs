//! ID token verification: the cases IDT-01 to IDT-10 of the security catalogue, plus ES256
//! with a JWKS (IDT-13 (b)–(e)).

use std::sync::Arc;
use std::time::Duration;

use line_login::clock::MockClock;
use line_login::id_token::{Expectations, IdTokenError, IdTokenVerifier};
use line_login::secret::{ChannelSecret, IdToken};
use line_login::types::{ChannelId, Nonce, UserId};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

use crate::stub::{CHANNEL_ID, CHANNEL_SECRET, Reply, Stub};
use crate::tokens::{NOW, b64, claims, hs256, hs256_sign, raw_hs256};

fn verifier() -> IdTokenVerifier {
    IdTokenVerifier::hs256(
        ChannelId::new(CHANNEL_ID),
        &ChannelSecret::new(CHANNEL_SECRET),
    )
    .with_clock(Arc::new(MockClock::at_unix(NOW)))
}

fn nonce() -> Nonce {
    Nonce::new("n0nce")
}

fn check(token: &str) -> Result<line_login::wire::IdTokenClaims, IdTokenError> {
    let n = nonce();
    verifier().verify_now(&IdToken::new(token), &Expectations::nonce(&n))
}

fn check_with(claims: serde_json::Value) -> Result<line_login::wire::IdTokenClaims, IdTokenError> {
    check(&hs256(&claims))
}

#[test]
fn control_valid_token_is_accepted() {
    let c = check_with(claims()).unwrap();
    assert_eq!(c.sub.as_str(), "U0123456789abcdef0123456789abcdef");
    assert_eq!(c.amr.as_deref(), Some(&["linesso".to_owned()][..]));
    assert_eq!(c.name.as_deref(), Some("Taro"));
}

#[test]
fn idt01_bad_hs256_signatures() {
    let good = hs256(&claims());
    let (msg, sig) = good.rsplit_once('.').unwrap();
    // (a) one bit flipped in the signature
    let mut raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    raw[0] ^= 1;
    assert_eq!(
        check(&format!("{msg}.{}", b64(&raw))),
        Err(IdTokenError::BadSignature)
    );
    // (b) signature computed over a different payload
    let mut other = claims();
    other["sub"] = json!("U99999999999999999999999999999999");
    let other_sig = hs256(&other).rsplit_once('.').unwrap().1.to_owned();
    assert_eq!(
        check(&format!("{msg}.{other_sig}")),
        Err(IdTokenError::BadSignature)
    );
    // (c) empty signature
    assert!(matches!(
        check(&format!("{msg}.")),
        Err(IdTokenError::Malformed(_))
    ));
    // (d) the secret hex-decoded instead of its UTF-8 bytes
    let hex_key: Vec<u8> = (0..16).map(|i| i as u8).collect();
    let wrong = raw_hs256(r#"{"alg":"HS256"}"#, &claims().to_string(), &hex_key);
    assert_eq!(check(&wrong), Err(IdTokenError::BadSignature));
}

#[test]
fn idt02_algorithm_is_pinned() {
    let payload = claims().to_string();
    let p = b64(payload.as_bytes());
    // alg none with an empty signature, and with a junk one
    assert!(check(&format!("{}.{p}.", b64(br#"{"alg":"none"}"#))).is_err());
    assert!(matches!(
        check(&format!("{}.{p}.AAAA", b64(br#"{"alg":"none"}"#))),
        Err(IdTokenError::AlgorithmMismatch { .. })
    ));
    for alg in ["HS384", "HS512", "RS256", "ES256", "hs256", "None", "NONE"] {
        let t = raw_hs256(
            &format!(r#"{{"alg":"{alg}"}}"#),
            &payload,
            CHANNEL_SECRET.as_bytes(),
        );
        assert!(
            matches!(check(&t), Err(IdTokenError::AlgorithmMismatch { .. })),
            "{alg} accepted"
        );
    }
    // A correctly signed ES256 token is still refused by the HS256 verifier.
    let key = test_ec_key();
    let t = es256_token(&key, "k1", &claims());
    assert!(matches!(
        check(&t),
        Err(IdTokenError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn idt03_untrusted_header_parameters() {
    let payload = claims().to_string();
    // jku / x5u / jwk / odd kid values are ignored (never fetched, never used as a key)
    for header in [
        r#"{"alg":"HS256","jku":"http://127.0.0.1:1/evil"}"#,
        r#"{"alg":"HS256","x5u":"http://127.0.0.1:1/evil"}"#,
        r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#,
        r#"{"alg":"HS256","kid":"../../etc/passwd"}"#,
        r#"{"alg":"HS256","kid":"' OR 1=1 --"}"#,
    ] {
        assert!(
            check(&raw_hs256(header, &payload, CHANNEL_SECRET.as_bytes())).is_ok(),
            "{header}"
        );
    }
    // crit must be rejected
    let t = raw_hs256(
        r#"{"alg":"HS256","crit":["exp-ext"],"exp-ext":1}"#,
        &payload,
        CHANNEL_SECRET.as_bytes(),
    );
    assert_eq!(check(&t), Err(IdTokenError::CriticalHeader));
}

#[tokio::test]
async fn idt03_hmac_with_public_key_is_refused_on_the_es256_path() {
    let (stub, key) = jwks_stub().await;
    let (client, _) = stub.client();
    let v = client
        .es256_id_token_verifier()
        .with_clock(Arc::new(MockClock::at_unix(NOW)));
    let public = key.verifying_key().to_encoded_point(false);
    let t = raw_hs256(
        r#"{"alg":"HS256","kid":"k1"}"#,
        &claims().to_string(),
        public.as_bytes(),
    );
    let n = nonce();
    let err = v
        .verify(&IdToken::new(t), &Expectations::nonce(&n))
        .await
        .unwrap_err();
    assert!(matches!(err, IdTokenError::AlgorithmMismatch { .. }));
    assert_eq!(
        stub.seen().len(),
        0,
        "no JWKS fetch for a token with the wrong algorithm"
    );
}

#[test]
fn idt04_issuer_must_match_exactly() {
    for iss in [
        json!("https://access.line.me/"),
        json!("http://access.line.me"),
        json!("https://access.line.me.evil.example"),
        json!(["https://access.line.me"]),
        json!(""),
    ] {
        let mut c = claims();
        c["iss"] = iss.clone();
        assert!(check_with(c).is_err(), "iss {iss} accepted");
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(check_with(c), Err(IdTokenError::MalformedClaims));
    let mut c = claims();
    c["iss"] = json!("https://access.line.me/");
    assert_eq!(check_with(c), Err(IdTokenError::InvalidIssuer));
}

#[test]
fn idt05_audience_is_the_channel_id_string() {
    for aud in [
        json!("9999999999"),
        json!([CHANNEL_ID, "evil"]),
        json!([]),
        json!(1234567890u64),
        json!(format!(" {CHANNEL_ID}")),
        json!(format!("{CHANNEL_ID} ")),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        assert!(check_with(c).is_err(), "aud {aud} accepted");
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    assert!(check_with(c).is_err());
    let mut c = claims();
    c["aud"] = json!("9999999999");
    assert_eq!(check_with(c), Err(IdTokenError::InvalidAudience));
}

#[test]
fn idt06_subject() {
    for sub in [
        json!(""),
        json!(123),
        json!(null),
        json!({"a":1}),
        json!("U".repeat(256)),
        json!("Uäöü"),
    ] {
        let mut c = claims();
        c["sub"] = sub.clone();
        assert!(check_with(c).is_err(), "sub {sub} accepted");
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    assert!(check_with(c).is_err());
    // expected subject
    let n = nonce();
    let other = UserId::new("U99999999999999999999999999999999");
    let e = Expectations {
        nonce: Some(&n),
        max_age: None,
        subject: Some(&other),
    };
    assert_eq!(
        verifier().verify_now(&IdToken::new(hs256(&claims())), &e),
        Err(IdTokenError::SubjectMismatch)
    );
}

#[test]
fn idt07_issued_at_and_auth_time() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(check_with(c), Err(IdTokenError::MalformedClaims));
    let mut c = claims();
    c["iat"] = json!(NOW + 600);
    assert_eq!(check_with(c), Err(IdTokenError::IssuedInFuture));
    let mut c = claims();
    c["iat"] = json!(NOW.to_string());
    assert_eq!(check_with(c), Err(IdTokenError::MalformedClaims));
    // skew boundary: 300 s allowed, 301 s not
    let mut c = claims();
    c["iat"] = json!(NOW + 300);
    assert!(check_with(c).is_ok());
    let mut c = claims();
    c["iat"] = json!(NOW + 301);
    assert_eq!(check_with(c), Err(IdTokenError::IssuedInFuture));

    // max_age / auth_time
    let n = nonce();
    let e = Expectations {
        nonce: Some(&n),
        max_age: Some(600),
        subject: None,
    };
    let v = verifier();
    assert_eq!(
        v.verify_now(&IdToken::new(hs256(&claims())), &e),
        Err(IdTokenError::AuthTimeMissing)
    );
    let mut c = claims();
    c["auth_time"] = json!(NOW - 600 - 300 - 1);
    assert_eq!(
        v.verify_now(&IdToken::new(hs256(&c)), &e),
        Err(IdTokenError::AuthTooOld)
    );
    let mut c = claims();
    c["auth_time"] = json!(NOW - 60);
    assert!(v.verify_now(&IdToken::new(hs256(&c)), &e).is_ok());
}

#[test]
fn idt08_expiry_and_claim_types() {
    let mut c = claims();
    c["exp"] = json!(NOW - 300 - 1);
    assert_eq!(check_with(c), Err(IdTokenError::Expired));
    let mut c = claims();
    c["exp"] = json!(NOW - 300);
    assert!(check_with(c).is_ok(), "inside the skew");
    for exp in [json!("9999999999"), json!(1e30), json!(null), json!(-1)] {
        let mut c = claims();
        c["exp"] = exp.clone();
        assert_eq!(
            check_with(c),
            Err(IdTokenError::MalformedClaims),
            "exp {exp}"
        );
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(check_with(c), Err(IdTokenError::MalformedClaims));
    let mut c = claims();
    c["nbf"] = json!("0");
    assert_eq!(check_with(c), Err(IdTokenError::MalformedClaims));
    let mut c = claims();
    c["nbf"] = json!(NOW + 3000);
    assert_eq!(check_with(c), Err(IdTokenError::NotYetValid));
}

#[test]
fn idt09_nonce() {
    let v = verifier();
    let token = IdToken::new(hs256(&claims()));
    // (a) different nonce, (c) another login's nonce
    for other in ["other", "n0nc", "n0nce2"] {
        let n = Nonce::new(other);
        assert_eq!(
            v.verify_now(&token, &Expectations::nonce(&n)),
            Err(IdTokenError::NonceMismatch)
        );
    }
    // (b) nonce sent, none in the token
    let mut c = claims();
    c.as_object_mut().unwrap().remove("nonce");
    let n = nonce();
    assert_eq!(
        v.verify_now(&IdToken::new(hs256(&c)), &Expectations::nonce(&n)),
        Err(IdTokenError::NonceMissing)
    );
    // no nonce sent, but the token has one
    assert_eq!(
        v.verify_now(&token, &Expectations::default()),
        Err(IdTokenError::UnexpectedNonce)
    );
    // no nonce either side
    assert!(
        v.verify_now(&IdToken::new(hs256(&c)), &Expectations::default())
            .is_ok()
    );
}

#[test]
fn idt10_structural_malformation() {
    let good = hs256(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = vec![
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], "a", "b"),
        good.replacen('-', "+", 1).replacen('_', "/", 1) + "=",
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], b64(b"not json"), parts[2]),
        raw_hs256(r#"{"alg":"HS256"}"#, "[1,2,3]", CHANNEL_SECRET.as_bytes()),
        raw_hs256(r#"{"alg":"HS256"}"#, "not json", CHANNEL_SECRET.as_bytes()),
        format!("{}.{}.{}", parts[0], "A".repeat(64 * 1024), parts[2]),
        format!("{}\0.{}.{}", parts[0], parts[1], parts[2]),
        String::new(),
        "..".to_owned(),
    ];
    for t in cases {
        assert!(check(&t).is_err(), "accepted: {}", &t[..t.len().min(60)]);
    }
    // duplicate claim names: rejected, never "first wins" or "last wins"
    let dup = r#"{"iss":"https://access.line.me","sub":"Uattacker","aud":"1234567890","exp":1700003600,"iat":1700000000,"nonce":"n0nce","sub":"Uvictim"}"#;
    assert_eq!(
        check(&raw_hs256(
            r#"{"alg":"HS256"}"#,
            dup,
            CHANNEL_SECRET.as_bytes()
        )),
        Err(IdTokenError::MalformedClaims)
    );
    // two alg members in the header
    let t = raw_hs256(
        r#"{"alg":"HS256","alg":"none"}"#,
        &claims().to_string(),
        CHANNEL_SECRET.as_bytes(),
    );
    assert!(matches!(check(&t), Err(IdTokenError::Malformed(_))));
    assert_eq!(check(&"a".repeat(17 * 1024)), Err(IdTokenError::TooLarge));
}

#[test]
fn errors_do_not_contain_the_token() {
    let mut c = claims();
    c["exp"] = json!(1);
    let t = hs256(&c);
    let e = check(&t).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(&t[..20]));
    let _ = hs256_sign(b"k", "m");
}

// ---- ES256 with a JWKS ----

fn test_ec_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
}

fn es256_token(key: &SigningKey, kid: &str, claims: &serde_json::Value) -> String {
    let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#);
    let msg = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig: Signature = key.sign(msg.as_bytes());
    format!("{msg}.{}", b64(&sig.to_bytes()))
}

fn jwk_json(key: &SigningKey, kid: &str) -> serde_json::Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC", "alg": "ES256", "use": "sig", "kid": kid, "crv": "P-256",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())
    })
}

async fn jwks_stub() -> (Stub, SigningKey) {
    let stub = Stub::start().await;
    let key = test_ec_key();
    let set = json!({"keys": [
        {"kty":"RSA","alg":"RS256","kid":"rsa1","n":"AQAB","e":"AQAB"},
        {"kty":"EC","crv":"P-256","kid":"broken","x":"!!","y":"??"},
        jwk_json(&key, "k1"),
    ]});
    stub.always(Reply::json(200, &set.to_string()));
    (stub, key)
}

#[tokio::test]
async fn idt13_es256_with_jwks() {
    let (stub, key) = jwks_stub().await;
    let (client, _) = stub.client();
    let clock = MockClock::at_unix(NOW);
    let v = IdTokenVerifier::es256(
        ChannelId::new(CHANNEL_ID),
        line_login::id_token::JwksCache::new(
            Arc::new(JwksFetcherOf(client.clone())),
            Arc::new(clock.clone()),
        ),
    )
    .with_clock(Arc::new(clock.clone()));
    let n = nonce();
    let e = Expectations::nonce(&n);
    // valid, unknown key types and unparseable keys ignored (d)
    let c = v
        .verify(&IdToken::new(es256_token(&key, "k1", &claims())), &e)
        .await
        .unwrap();
    assert_eq!(c.aud.as_str(), CHANNEL_ID);
    assert_eq!(stub.seen().len(), 1);
    // cached: no second fetch
    v.verify(&IdToken::new(es256_token(&key, "k1", &claims())), &e)
        .await
        .unwrap();
    assert_eq!(stub.seen().len(), 1);
    // missing kid
    let no_kid = {
        let msg = format!(
            "{}.{}",
            b64(br#"{"alg":"ES256"}"#),
            b64(claims().to_string().as_bytes())
        );
        let sig: Signature = key.sign(msg.as_bytes());
        format!("{msg}.{}", b64(&sig.to_bytes()))
    };
    assert_eq!(
        v.verify(&IdToken::new(no_kid), &e).await.unwrap_err(),
        IdTokenError::MissingKeyId
    );
    // (e) a flood of random kids: at most one refetch per interval
    clock.advance(Duration::from_secs(61));
    for i in 0..1000 {
        let err = v
            .verify(
                &IdToken::new(es256_token(&key, &format!("r{i}"), &claims())),
                &e,
            )
            .await
            .unwrap_err();
        assert_eq!(err, IdTokenError::UnknownKey);
    }
    assert_eq!(stub.seen().len(), 2, "one refetch for 1000 unknown kids");
    // (b) a rotated key appears: one refetch after the interval, then accepted
    clock.advance(Duration::from_secs(61));
    let key2 = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    stub.always(Reply::json(
        200,
        &json!({"keys":[jwk_json(&key, "k1"), jwk_json(&key2, "k2")]}).to_string(),
    ));
    v.verify(&IdToken::new(es256_token(&key2, "k2", &claims())), &e)
        .await
        .unwrap();
    assert_eq!(stub.seen().len(), 3);
    // a token signed by the wrong key under a known kid
    let err = v
        .verify(&IdToken::new(es256_token(&key2, "k1", &claims())), &e)
        .await
        .unwrap_err();
    assert_eq!(err, IdTokenError::BadSignature);
}

#[tokio::test]
async fn client_es256_verifier_uses_the_certs_endpoint() {
    let (stub, key) = jwks_stub().await;
    let (client, _) = stub.client();
    let v = client
        .es256_id_token_verifier()
        .with_clock(Arc::new(MockClock::at_unix(NOW)));
    let n = nonce();
    v.verify(
        &IdToken::new(es256_token(&key, "k1", &claims())),
        &Expectations::nonce(&n),
    )
    .await
    .unwrap();
    assert_eq!(stub.seen()[0].path, "/oauth2/v2.1/certs");
}

struct JwksFetcherOf(line_login::LineClient);

impl line_login::id_token::JwksFetcher for JwksFetcherOf {
    fn fetch_jwks(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<line_login::wire::JwkSet, line_login::Error>> {
        Box::pin(self.0.jwks())
    }
}
