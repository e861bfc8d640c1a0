//! HS256 ID token verification: `IdTokenVerifier::verify_now` against a bare
//! `jsonwebtoken::decode` of the same token, in the same run.
//!
//! Run: `cargo bench -p line-login --bench id_token`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use line_login::clock::MockClock;
use line_login::id_token::{Expectations, IdTokenVerifier};
use line_login::secret::{ChannelSecret, IdToken};
use line_login::types::{ChannelId, Nonce};
use serde::{Deserialize, Serialize};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000;

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    nonce: String,
    amr: Vec<String>,
    name: String,
    picture: String,
}

fn token() -> String {
    let claims = Claims {
        iss: "https://access.line.me".into(),
        sub: "U0123456789abcdef0123456789abcdef".into(),
        aud: "1234567890".into(),
        // far future, so the bare decode (which reads the system clock) accepts it too
        exp: 4_000_000_000,
        iat: NOW,
        nonce: "n0nce".into(),
        amr: vec!["linesso".into()],
        name: "Taro Line".into(),
        picture: "https://profile.line-scdn.net/0hq3abcdefghijklmnopqrstuvwxyz".into(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let raw = token();
    let id_token = IdToken::new(raw.clone());
    let verifier =
        IdTokenVerifier::hs256(ChannelId::new("1234567890"), &ChannelSecret::new(SECRET))
            .with_clock(Arc::new(MockClock::at_unix(NOW)));
    let nonce = Nonce::new("n0nce");
    let expected = Expectations::nonce(&nonce);
    assert!(verifier.verify_now(&id_token, &expected).is_ok());

    let key = DecodingKey::from_secret(SECRET.as_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["1234567890"]);
    validation.set_issuer(&["https://access.line.me"]);
    assert!(jsonwebtoken::decode::<Claims>(&raw, &key, &validation).is_ok());

    let mut group = c.benchmark_group("hs256_id_token");
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&raw), &key, &validation).unwrap())
    });
    group.bench_function("line_login_verify", |b| {
        b.iter(|| {
            verifier
                .verify_now(black_box(&id_token), &expected)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
