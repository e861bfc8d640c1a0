//! The emulator's clock (shifted through the admin API): extreme offsets never panic, tokens
//! minted before a jump backwards still verify, and an expired token stays expired after the
//! sweep.

use serde_json::{Value, json};

use crate::common::*;

/// Every step of a login and the token endpoints, answered (not a dropped connection).
async fn full_round(env: &Env) {
    let browser = client(true);
    // Consent page, then the answer.
    let resp = env
        .get_authorize(&browser, &[("scope", "profile openid"), ("max_age", "60")])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let resp = env
        .answer(&browser, &page, Some(&env.user_ids()[0]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp).unwrap());
    let (s, t) = env.exchange(&q["code"], None).await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let resp = env.verify_access(access).await;
    assert_eq!(resp.status(), 200);
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200);
    let (s, b) = env.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");
    // JARM response mode (its own exp arithmetic), via SSO.
    let resp = env
        .get_authorize(&browser, &[("response_mode", "query.jwt")])
        .await;
    assert_eq!(resp.status(), 302);
    // Channel tokens.
    let st = env.stateless_token().await;
    let (s, _) = env
        .post_form(
            "/oauth2/v2.1/verify",
            &[("id_token", "x"), ("client_id", CHANNEL)],
        )
        .await;
    assert_eq!(s, 400);
    let resp = env.verify_access(st.as_str()).await;
    assert_eq!(resp.status(), 200);
    let (s, b) = env
        .client_credentials("/v2/oauth/accessToken", CHANNEL, SECRET)
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = env
        .post_form(
            "/v2/oauth/verify",
            &[("access_token", b["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn extreme_clock_offsets_never_panic() {
    let env = start().await;
    // The admin API refuses absurd values instead of overflowing later.
    for body in [
        json!({"offset_secs": i64::MAX}),
        json!({"offset_secs": i64::MIN}),
        json!({"advance_secs": i64::MAX}),
        json!({"advance_secs": i64::MIN}),
    ] {
        let r = env.admin_post("/_emulator/clock", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.unwrap();
        assert!(b["message"].is_string());
    }
    assert_eq!(env.emulator.clock().offset(), 0);

    // Repeated large advances saturate at the clock's bound; every endpoint still answers.
    for _ in 0..200 {
        let r = env
            .admin_post(
                "/_emulator/clock",
                json!({"advance_secs": 100_i64 * 365 * 86400}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    full_round(&env).await;
    env.emulator.sweep();

    // The library API cannot push the clock past its bounds either.
    env.emulator.clock().advance(i64::MAX);
    full_round(&env).await;
    env.emulator.sweep();
    env.emulator.clock().set_offset(i64::MIN);
    assert!(env.emulator.clock().now() >= 0);
    full_round(&env).await;
    env.emulator.sweep();
}

#[tokio::test]
async fn tokens_minted_before_a_huge_backwards_jump_still_verify() {
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let (s, sl) = env
        .client_credentials("/v2/oauth/accessToken", CHANNEL, SECRET)
        .await;
    assert_eq!(s, 200);
    let stateless = env.stateless_token().await;
    env.emulator.clock().set_offset(i64::MIN);
    for token in [access.as_str(), stateless.as_str()] {
        let resp = env.verify_access(token).await;
        assert_eq!(resp.status(), 200);
        let b: Value = resp.json().await.unwrap();
        assert!(b["expires_in"].as_i64().unwrap() > 0, "{b}");
    }
    let (s, b) = env
        .post_form(
            "/v2/oauth/verify",
            &[("access_token", sl["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["expires_in"].as_i64().unwrap() > 0, "{b}");
}

#[tokio::test]
async fn an_expired_v21_token_reads_expired_even_after_the_sweep() {
    let env = start().await;
    let (s, b) = env
        .token(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion(KID, CHANNEL, 600, Some(60))),
        ])
        .await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_owned();
    env.emulator.clock().advance(61);
    env.emulator.sweep();
    let resp = env.verify_access(token.as_str()).await;
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error_description"], "The access token expired");
}
