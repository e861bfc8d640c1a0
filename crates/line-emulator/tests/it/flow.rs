//! The code flow: PKCE, nonce, ID tokens, single use, expiry, refresh, verify, and codes and
//! tokens bound to the channel they were issued to.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn full_code_flow_with_pkce_nonce_and_hs256_id_token() {
    let env = start().await;
    let user = &env.user_ids()[0];
    let p = pkce();
    let q = env
        .login(
            &env.browser,
            user,
            &[
                ("scope", "profile openid email"),
                ("nonce", "n-0S6_WzA2Mj"),
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "S256"),
                ("max_age", "3600"),
            ],
        )
        .await;
    assert_eq!(q["state"], "st4te");
    let code = &q["code"];
    assert_eq!(code.len(), 20);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(!q.contains_key("friendship_status_changed"));

    let (status, body) = env.exchange(code, Some(&p.verifier)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 2_592_000);
    let scope = body["scope"].as_str().unwrap();
    assert!(scope.contains("profile") && scope.contains("openid") && !scope.contains("email"));
    let access = body["access_token"].as_str().unwrap();
    assert!(access.starts_with("eyJhbGciOiJIUzI1NiJ9."));
    assert_eq!(access.split('.').count(), 3);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 20);

    // The ID token verifies with the channel secret (HS256).
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(jwt_header(id_token), json!({"alg": "HS256", "typ": "JWT"}));
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[CHANNEL]);
    v.set_issuer(&["https://access.line.me"]);
    let data =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_secret(SECRET.as_bytes()), &v)
            .unwrap();
    let c = data.claims;
    assert_eq!(c["sub"], user.as_str());
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert!(c["auth_time"].is_i64(), "auth_time with max_age");
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["name"], "Test User 1");
    assert_eq!(c["email"], "test.user1@example.com");

    // The code is single use.
    let (status, body) = env.exchange(code, Some(&p.verifier)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn es256_id_token_with_jwk_key_type_verifies_against_jwks() {
    let env = start().await;
    let user = &env.user_ids()[1];
    let q = env.login(&env.browser, user, &[("scope", "openid")]).await;
    let (status, body) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
            ("id_token_key_type", "JWK"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let header = jwt_header(id_token);
    assert_eq!(header["alg"], "ES256");
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 64);

    // Discovery points at the emulator; the issuer stays LINE's.
    let disco = env.admin_get("/.well-known/openid-configuration").await;
    assert_eq!(disco["issuer"], "https://access.line.me");
    assert_eq!(disco["jwks_uri"], env.url("/oauth2/v2.1/certs"));
    assert_eq!(disco["token_endpoint"], env.url("/oauth2/v2.1/token"));
    assert_eq!(
        disco["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = env.admin_get("/oauth2/v2.1/certs").await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap();
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    let dk =
        DecodingKey::from_ec_components(key["x"].as_str().unwrap(), key["y"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[CHANNEL]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &dk, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], user.as_str());
    assert!(claims.get("nonce").is_none(), "no nonce when none was sent");
    assert!(
        claims.get("auth_time").is_none(),
        "no auth_time without max_age"
    );
    assert!(claims.get("name").is_none(), "no name without profile");

    // The verify endpoint accepts the ES256 token too.
    let (s, b) = env
        .post_form(
            "/oauth2/v2.1/verify",
            &[("id_token", id_token), ("client_id", CHANNEL)],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["sub"], user.as_str());
}

#[tokio::test]
async fn code_expires_after_ten_minutes_on_the_emulator_clock() {
    let env = start().await;
    let q = env.login(&env.browser, &env.user_ids()[0], &[]).await;
    let r = env
        .admin_post("/_emulator/clock", json!({"advance_secs": 601}))
        .await;
    assert_eq!(r.status(), 200);
    let (status, body) = env.exchange(&q["code"], None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "authorization code expired");
}

#[tokio::test]
async fn redirect_uri_mismatch_and_client_errors() {
    let env = start().await;
    let q = env.login(&env.browser, &env.user_ids()[0], &[]).await;
    let (status, body) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:8080/other"),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "redirect_uri does not match"})
    );

    let q = env.login(&env.browser, &env.user_ids()[0], &[]).await;
    let (status, body) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("client_id", CHANNEL),
            ("client_secret", "wrong"),
        ])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_client");
    // A wrong secret does not burn the code.
    let (status, _) = env.exchange(&q["code"], None).await;
    assert_eq!(status, 200);

    let (status, body) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", CALLBACK),
            ("client_id", "999"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );

    let (status, body) = env.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = env.token(&[("client_id", CHANNEL)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = env
        .token(&[("grant_type", "authorization_code"), ("client_id", CHANNEL)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn pkce_mismatch_and_missing_verifier_are_invalid_grant() {
    let env = start().await;
    let p = pkce();
    let pk = [
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let q = env.login(&env.browser, &env.user_ids()[0], &pk).await;
    let other = "x".repeat(43);
    let (status, body) = env.exchange(&q["code"], Some(&other)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "code_verifier does not match");

    let q = env.login(&env.browser, &env.user_ids()[0], &pk).await;
    let (status, body) = env.exchange(&q["code"], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // With PKCE, the secret may be left out (native SDKs do).
    let q = env.login(&env.browser, &env.user_ids()[0], &pk).await;
    let (status, body) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("client_id", CHANNEL),
            ("code_verifier", &p.verifier),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn refresh_returns_same_refresh_token_and_keeps_old_access_token() {
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile openid").await;
    let old_access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let (status, body) = env.refresh(refresh).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refresh_token"], refresh);
    assert!(body.get("id_token").is_none());
    assert_ne!(body["access_token"], old_access);
    assert_eq!(body["expires_in"], 2_592_000);
    let (s, _) = env.get_bearer("/v2/profile", old_access).await;
    assert_eq!(s, 200, "old access token stays valid by default");

    // A web-only channel requires the secret on refresh.
    let (status, body) = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CHANNEL),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );

    let (status, body) = env.refresh("AAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "invalid refresh token"})
    );

    // 90 days after the grant, the refresh token is dead.
    env.admin_post("/_emulator/clock", json!({"advance_secs": 90 * 86400 + 1}))
        .await;
    let (status, body) = env.refresh(refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_switches_rotate_and_revoke_old() {
    let mut c = test_config();
    c.rotate_refresh_tokens = true;
    c.refresh_revokes_old_access_token = true;
    let env = start_with(c).await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let (status, body) = env.refresh(refresh).await;
    assert_eq!(status, 200);
    assert_ne!(body["refresh_token"], refresh);
    let (s, b) = env
        .get_bearer("/v2/profile", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (401, Some("The access token revoked"))
    );
    let (s, _) = env
        .get_bearer("/v2/profile", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn verify_access_token_and_id_token_forms() {
    let env = start().await;
    let browser = client(true);
    let user = env.user_ids()[0].clone();
    let q = env
        .login(
            &browser,
            &user,
            &[("scope", "profile openid"), ("nonce", "abc")],
        )
        .await;
    let (_, t) = env.exchange(&q["code"], None).await;
    let access = t["access_token"].as_str().unwrap();
    let resp = env.verify_access(access).await;
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["client_id"], CHANNEL);
    assert!(b["expires_in"].as_i64().unwrap() > 2_591_000);
    assert!(b["scope"].as_str().unwrap().contains("profile"));

    let verify = |tok: String| {
        let env = &env;
        async move {
            let resp = env.verify_access(&tok).await;
            let s = resp.status().as_u16();
            (s, resp.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = verify("not-a-jws".into()).await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"error": "invalid_request", "error_description": "The access token not JWS"})
        )
    );

    let id_token = t["id_token"].as_str().unwrap();
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("id_token", id_token.to_owned()),
            ("client_id", CHANNEL.to_owned()),
        ];
        for (k, v) in extra {
            f.push((k, (*v).to_owned()));
        }
        f
    };
    let post = |f: Vec<(&'static str, String)>| {
        let env = &env;
        async move {
            let r = env
                .api
                .post(env.url("/oauth2/v2.1/verify"))
                .form(&f)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = post(form(&[("nonce", "abc")])).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["sub"], user.as_str());
    assert_eq!(b["iss"], "https://access.line.me");
    let desc = |b: &Value| b["error_description"].as_str().unwrap().to_owned();
    let (s, b) = post(form(&[("nonce", "other")])).await;
    assert_eq!((s, desc(&b)), (400, "Invalid IdToken Nonce.".into()));
    let (s, b) = post(form(&[("user_id", "U00000000000000000000000000000000")])).await;
    assert_eq!(
        (s, desc(&b)),
        (400, "Invalid IdToken Subject Identifier.".into())
    );
    let (s, b) = post(vec![
        ("id_token", id_token.to_owned()),
        ("client_id", "2000000001".to_owned()),
    ])
    .await;
    assert_eq!((s, desc(&b)), (400, "Invalid IdToken Audience.".into()));
    let mut tampered = id_token.to_owned();
    tampered.pop();
    tampered.push(if id_token.ends_with('A') { 'B' } else { 'A' });
    let (s, b) = post(vec![
        ("id_token", tampered),
        ("client_id", CHANNEL.to_owned()),
    ])
    .await;
    assert_eq!((s, desc(&b)), (400, "Invalid IdToken.".into()));
    let (s, b) = post(vec![
        ("id_token", "garbage".into()),
        ("client_id", CHANNEL.into()),
    ])
    .await;
    assert_eq!((s, desc(&b)), (400, "Invalid IdToken.".into()));

    env.admin_post("/_emulator/clock", json!({"advance_secs": 3601}))
        .await;
    let (s, b) = post(form(&[])).await;
    assert_eq!((s, desc(&b)), (400, "IdToken expired.".into()));
    // 30 days later the access token has expired.
    env.admin_post("/_emulator/clock", json!({"advance_secs": 30 * 86400}))
        .await;
    let (s, b) = verify(access.to_owned()).await;
    assert_eq!((s, desc(&b)), (400, "The access token expired".into()));
}

#[tokio::test]
async fn issuer_mismatch_is_reported() {
    let mut c = test_config();
    c.issuer = "https://issuer.example".parse().unwrap();
    let env = start_with(c).await;
    let t = env.login_tokens(&env.user_ids()[0], "openid").await;
    let id_token = t["id_token"].as_str().unwrap();
    assert_eq!(jwt_payload(id_token)["iss"], "https://issuer.example");
    // A token from a different issuer is refused by an emulator with the default issuer.
    let env2 = start().await;
    let (s, b) = env2
        .post_form(
            "/oauth2/v2.1/verify",
            &[("id_token", id_token), ("client_id", CHANNEL)],
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error_description"], "Invalid IdToken Issuer.");
}

// Multi-threaded, or the handlers could never actually run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_of_one_code_yield_exactly_one_token() {
    let env = start().await;
    let q = env.login(&env.browser, &env.user_ids()[0], &[]).await;
    let statuses = env
        .token_race(
            &[
                ("grant_type", "authorization_code"),
                ("code", q["code"].as_str()),
                ("redirect_uri", CALLBACK),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ],
            8,
        )
        .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn codes_and_tokens_are_bound_to_their_channel() {
    const OTHER: &str = "2000000001";
    const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";
    let env = start().await;
    // A code of channel 1 exchanged by channel 2: refused (and burnt); its refresh token,
    // presented by channel 2: refused.
    let q = env.login(&client(true), &env.user_ids()[0], &[]).await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    for mut form in [
        vec![
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", CALLBACK),
        ],
        vec![("grant_type", "refresh_token"), ("refresh_token", refresh)],
    ] {
        form.extend([("client_id", OTHER), ("client_secret", OTHER_SECRET)]);
        let (s, b) = env.token(&form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_grant")),
            "{b}"
        );
    }
    // Revoked by channel 2: refused.
    let (s, _) = env.revoke_access(access, OTHER, OTHER_SECRET).await;
    assert_eq!(s, 400);
    // Deauthorized with channel 2's channel token: "invalid token"; with a short-lived channel
    // token (not accepted by LINE): 401.
    for (path, id, secret, status) in [
        ("/oauth2/v3/token", OTHER, OTHER_SECRET, 400),
        ("/v2/oauth/accessToken", CHANNEL, SECRET, 401),
    ] {
        let (s, b) = env.client_credentials(path, id, secret).await;
        assert_eq!(s, 200);
        let resp = env
            .deauthorize(
                b["access_token"].as_str().unwrap(),
                &json!({ "userAccessToken": access }),
            )
            .await;
        assert_eq!(resp.status(), status, "{path}");
        if status == 400 {
            assert_eq!(
                resp.json::<Value>().await.unwrap(),
                json!({"message": "invalid token"})
            );
        }
    }
    // None of that touched the token, its refresh token or the grant.
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200);
    let (s, b) = env.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");
}
