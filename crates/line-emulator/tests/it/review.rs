//! Regression tests from the adversarial review: extreme clock offsets, shutdown with a
//! stalled client, escaping of configured names, cookie attributes, secret rules per app type,
//! channel binding of codes and tokens, fault-rule limits, and races under a multi-threaded
//! runtime.

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
    let resp = env
        .api
        .get(env.url("/oauth2/v2.1/verify"))
        .query(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200);
    let (s, b) = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .await;
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
    let resp = env
        .api
        .get(env.url("/oauth2/v2.1/verify"))
        .query(&[("access_token", st.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (s, b) = env
        .post_form(
            "/v2/oauth/accessToken",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ],
        )
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
        .post_form(
            "/v2/oauth/accessToken",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let stateless = env.stateless_token().await;
    env.emulator.clock().set_offset(i64::MIN);
    for token in [access.as_str(), stateless.as_str()] {
        let resp = env
            .api
            .get(env.url("/oauth2/v2.1/verify"))
            .query(&[("access_token", token)])
            .send()
            .await
            .unwrap();
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

fn v21_assertion(token_exp: i64) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let claims = json!({
        "iss": CHANNEL, "sub": CHANNEL, "aud": "https://api.line.me/",
        "exp": now + 600, "token_exp": token_exp,
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
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
            ("client_assertion", &v21_assertion(60)),
        ])
        .await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_owned();
    env.emulator.clock().advance(61);
    env.emulator.sweep();
    let resp = env
        .api
        .get(env.url("/oauth2/v2.1/verify"))
        .query(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error_description"], "The access token expired");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_half_sent_request_head() {
    use tokio::io::AsyncWriteExt;
    let mut c = test_config();
    c.body_timeout_secs = 1;
    let env = start_with(c).await;
    let mut conn = tokio::net::TcpStream::connect(env.running.local_addr())
        .await
        .unwrap();
    conn.write_all(b"GET /oauth2/v2.1/certs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let Env { running, .. } = env;
    tokio::time::timeout(std::time::Duration::from_secs(10), running.shutdown())
        .await
        .expect("shutdown finished")
        .unwrap();
    drop(conn);
}

#[tokio::test]
async fn hostile_names_from_the_config_are_escaped_on_every_page() {
    let mut c = test_config();
    c.channels[0].name = Some("<script>alert('ch')</script>".into());
    c.users[0].display_name = "\"><img src=x onerror=alert(1)>".into();
    let env = start_with(c).await;
    let raw = ["<script>alert(", "<img src=x"];
    // Consent page (with the add-friend checkbox).
    let resp = env
        .get_authorize(&env.browser, &[("bot_prompt", "normal")])
        .await;
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;alert(&#39;ch&#39;)&lt;/script&gt;"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the consent page");
    }
    // The aggressive add-friend screen.
    let browser = client(true);
    let resp2 = env
        .get_authorize(&browser, &[("bot_prompt", "aggressive")])
        .await;
    let page = resp2.text().await.unwrap();
    let resp = env
        .answer(&browser, &page, Some(&env.user_ids()[1]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"friend\""), "{page}");
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the add-friend page");
    }
    // The index page.
    let page = env
        .api
        .get(env.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for r in raw {
        assert!(!page.contains(r), "raw {r} on the index page");
    }
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_an_https_public_url() {
    let mut c = test_config();
    c.public_url = Some("https://line-emulator.test".parse().unwrap());
    let env = start_with(c).await;
    let local = format!("http://{}", env.running.local_addr());
    let url = env
        .authorize_url(&[])
        .replace("https://line-emulator.test", &local);
    let resp = env.api.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    // Plain http (the default): no Secure, or browsers would drop the cookie.
    let env = start().await;
    let resp = env.get_authorize(&env.api, &[]).await;
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_huge_unknown_path_is_answered_and_journaled_short() {
    let env = start().await;
    let path = format!("/{}", "a".repeat(60_000));
    let resp = env.api.get(env.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-line-request-id"));
    let b: Value = resp.json().await.unwrap();
    assert!(b["message"].is_string());
    let j = env.admin_get("/_emulator/journal?endpoint=not_found").await;
    let p = j["entries"][0]["path"].as_str().unwrap();
    assert!(p.len() < 300, "{}", p.len());
}

#[tokio::test]
async fn mobile_channels_ignore_the_secret_on_refresh_and_revoke() {
    let mut c = test_config();
    c.channels[0].app_types = vec!["mobile".into(), "web".into()];
    let env = start_with(c).await;
    // A native SDK: no secret, no PKCE on the code exchange.
    let q = env.login(&client(true), &env.user_ids()[0], &[]).await;
    let (s, t) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("client_id", CHANNEL),
        ])
        .await;
    assert_eq!(s, 200, "{t}");
    let refresh = t["refresh_token"].as_str().unwrap();
    for secret in [None, Some("wrong-secret")] {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CHANNEL),
        ];
        if let Some(sec) = secret {
            form.push(("client_secret", sec));
        }
        let (s, b) = env.token(&form).await;
        assert_eq!(s, 200, "{secret:?}: {b}");
    }
    let (s, b) = env
        .post_form(
            "/oauth2/v2.1/revoke",
            &[
                ("access_token", t["access_token"].as_str().unwrap()),
                ("client_id", CHANNEL),
                ("client_secret", "wrong-secret"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // A web-only channel still insists.
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let (s, b) = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", CHANNEL),
            ("client_secret", "wrong-secret"),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_client")),
        "{b}"
    );
}

#[tokio::test]
async fn codes_and_tokens_are_bound_to_their_channel() {
    const OTHER: &str = "2000000001";
    const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";
    let env = start().await;
    // A code of channel 1 exchanged by channel 2: refused (and burnt).
    let q = env.login(&client(true), &env.user_ids()[0], &[]).await;
    let (s, b) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", CALLBACK),
            ("client_id", OTHER),
            ("client_secret", OTHER_SECRET),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );

    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let access = t["access_token"].as_str().unwrap();
    // Its refresh token, presented by channel 2.
    let (s, b) = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", OTHER),
            ("client_secret", OTHER_SECRET),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    // Revoked by channel 2: refused.
    let (s, _) = env
        .post_form(
            "/oauth2/v2.1/revoke",
            &[
                ("access_token", access),
                ("client_id", OTHER),
                ("client_secret", OTHER_SECRET),
            ],
        )
        .await;
    assert_eq!(s, 400);
    // Deauthorized with channel 2's channel token: "invalid token".
    let (s, b) = env
        .post_form(
            "/oauth2/v3/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", OTHER),
                ("client_secret", OTHER_SECRET),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let resp = env
        .api
        .post(env.url("/user/v1/deauthorize"))
        .bearer_auth(b["access_token"].as_str().unwrap())
        .json(&json!({ "userAccessToken": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "invalid token"})
    );
    // Deauthorize with a short-lived channel token (not accepted by LINE): 401.
    let (s, b) = env
        .post_form(
            "/v2/oauth/accessToken",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(s, 200);
    let resp = env
        .api
        .post(env.url("/user/v1/deauthorize"))
        .bearer_auth(b["access_token"].as_str().unwrap())
        .json(&json!({ "userAccessToken": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // None of that touched the token, its refresh token or the grant.
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200);
    let (s, b) = env
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn fault_rules_with_unbounded_latency_or_nonsense_are_refused() {
    let env = start().await;
    for bad in [
        json!([{"endpoint": "token", "latency_ms": u64::MAX}]),
        json!([{"endpoint": "token", "latency_ms": 600_001}]),
        json!([{"endpoint": "token", "probability": -0.1}]),
        json!([{"endpoint": "token", "status": 600}]),
        // 1xx is no final answer: hyper turns 100/103 into 500, and 101 hijacks the
        // connection.
        json!([{"endpoint": "token", "status": 101}]),
        json!([{"endpoint": "token", "status": 199}]),
        json!([{"endpoint": "token", "count": -1}]),
        json!([{"endpoint": "token", "unknown": 1}]),
    ] {
        let r = env
            .api
            .put(env.url("/_emulator/faults"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.json::<Value>().await.unwrap()["message"].is_string());
    }
    assert_eq!(
        env.admin_get("/_emulator/faults").await,
        json!({"faults": []})
    );
    // The largest accepted latency is accepted (and not applied to admin requests).
    let r = env
        .api
        .put(env.url("/_emulator/faults"))
        .json(&json!([{"endpoint": "*", "latency_ms": 600_000}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stats = env.admin_get("/_emulator/stats").await;
    assert!(stats["total"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_a_rotating_token_yield_exactly_one() {
    let mut c = test_config();
    c.rotate_refresh_tokens = true;
    let env = start_with(c).await;
    for _ in 0..5 {
        let t = env.login_tokens(&env.user_ids()[0], "profile").await;
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let api = env.api.clone();
            let url = env.url("/oauth2/v2.1/token");
            let refresh = refresh.clone();
            tasks.push(tokio::spawn(async move {
                api.post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", CHANNEL),
                        ("client_secret", SECRET),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap() == 200 {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_v21_issues_respect_the_quota_of_30() {
    let env = start().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let api = env.api.clone();
        let url = env.url("/oauth2/v2.1/token");
        let a = v21_assertion(3600);
        tasks.push(tokio::spawn(async move {
            api.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 30);
}
