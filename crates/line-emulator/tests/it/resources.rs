//! Userinfo, profile, friendship, revoke, deauthorize and unlink (the revocation cascade).

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn userinfo_profile_friendship_and_their_errors() {
    let env = start().await;
    let user = env.user_ids()[0].clone();
    let t = env.login_tokens(&user, "profile openid").await;
    let access = t["access_token"].as_str().unwrap();

    let (s, b) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 200);
    assert_eq!(b["userId"], user.as_str());
    assert_eq!(b["displayName"], "Test User 1");
    assert_eq!(b["statusMessage"], "Hello from test user 1");
    assert!(
        b.get("pictureUrl").is_none(),
        "absent when the user has none"
    );

    let (s, b) = env.get_bearer("/oauth2/v2.1/userinfo", access).await;
    assert_eq!(s, 200);
    assert_eq!(b, json!({"sub": user, "name": "Test User 1"}));
    let r = env
        .api
        .post(env.url("/oauth2/v2.1/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "userinfo accepts POST");

    let (s, b) = env.get_bearer("/friendship/v1/status", access).await;
    assert_eq!((s, b), (200, json!({"friendFlag": false})));

    // 401 shapes.
    let r = env.get("/v2/profile").await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("Authorization header required")
    );
    let (s, b) = env.get_bearer("/v2/profile", "garbage").await;
    assert_eq!((s, b), (401, json!({"message": "invalid token"})));

    // 403 for a missing scope: an openid-only token on profile, a profile-only on userinfo.
    let t2 = env.login_tokens(&user, "openid").await;
    let (s, b) = env
        .get_bearer("/v2/profile", t2["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 403);
    assert!(b["message"].is_string());
    let t3 = env.login_tokens(&env.user_ids()[1], "profile").await;
    let (s, _) = env
        .get_bearer(
            "/oauth2/v2.1/userinfo",
            t3["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, 403);

    // Expired: 401 "The access token expired".
    env.admin_post("/_emulator/clock", json!({"advance_secs": 30 * 86400 + 1}))
        .await;
    let (s, b) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(
        (s, b),
        (401, json!({"message": "The access token expired"}))
    );
}

#[tokio::test]
async fn revoke_access_token_kills_it_and_its_refresh_token() {
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let access = t["access_token"].as_str().unwrap();
    let r = env
        .api
        .post(env.url("/oauth2/v2.1/revoke"))
        .form(&[
            ("access_token", access),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-line-request-id"));
    assert_eq!(r.text().await.unwrap(), "", "empty body");
    let (s, b) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(
        (s, b),
        (401, json!({"message": "The access token revoked"}))
    );
    let (s, b) = env.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("invalid refresh token"))
    );

    // Revoking again is fine; a non-JWS token is a 400.
    let (s, _) = env.revoke_access(access, CHANNEL, SECRET).await;
    assert_eq!(s, 200);
    let (s, b) = env.revoke_access("abc", CHANNEL, SECRET).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("The access token not JWS"))
    );
}

#[tokio::test]
async fn revoke_refresh_token_kills_its_access_tokens() {
    let env = start().await;
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let (_, r2) = env.refresh(refresh).await;
    // LINE's SDKs send the refresh token with client_id only.
    let (s, _) = env
        .post_form(
            "/oauth2/v2.1/revoke",
            &[("refresh_token", refresh), ("client_id", CHANNEL)],
        )
        .await;
    assert_eq!(s, 200);
    for access in [&t["access_token"], &r2["access_token"]] {
        let (s, _) = env
            .get_bearer("/v2/profile", access.as_str().unwrap())
            .await;
        assert_eq!(s, 401);
    }
}

#[tokio::test]
async fn deauthorize_with_stateless_token_then_invalid_token() {
    let env = start().await;
    let user = env.user_ids()[0].clone();
    let t = env.login_tokens(&user, "profile openid").await;
    let access = t["access_token"].as_str().unwrap();
    let channel_token = env.stateless_token().await;
    assert!(channel_token.starts_with("ey"));

    let deauth = |bearer: String, body: String| {
        let env = &env;
        async move {
            let r = env
                .api
                .post(env.url("/user/v1/deauthorize"))
                .bearer_auth(bearer)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let text = r.text().await.unwrap();
            (s, text)
        }
    };
    let body = json!({"userAccessToken": access}).to_string();
    // Without a valid channel token: 401 {"message"}.
    let (s, text) = deauth("nope".into(), body.clone()).await;
    assert_eq!(s, 401);
    assert!(serde_json::from_str::<Value>(&text).unwrap()["message"].is_string());
    // A user access token is not a channel token.
    let (s, _) = deauth(access.into(), body.clone()).await;
    assert_eq!(s, 401);

    let (s, text) = deauth(channel_token.clone(), body.clone()).await;
    assert_eq!((s, text.as_str()), (204, ""));
    // Every token of the grant is dead.
    let (s, b) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(
        (s, b),
        (401, json!({"message": "The access token revoked"}))
    );
    let resp = env.verify_access(access).await;
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error_description"], "The access token revoked");
    let (s, _) = env.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);

    let (s, text) = deauth(channel_token.clone(), body).await;
    assert_eq!(s, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"message": "invalid token"})
    );

    // Malformed bodies get {"message"} 400s.
    let (s, text) = deauth(channel_token.clone(), "{not json".into()).await;
    assert_eq!(s, 400);
    assert!(serde_json::from_str::<Value>(&text).unwrap()["message"].is_string());
    let (s, text) = deauth(channel_token.clone(), "{}".into()).await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["details"][0]["property"], "userAccessToken");

    // The stateless token expires after 15 minutes.
    env.admin_post("/_emulator/clock", json!({"advance_secs": 901}))
        .await;
    let (s, _) = deauth(channel_token, json!({"userAccessToken": "x"}).to_string()).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn unlink_via_admin_kills_tokens_and_next_login_asks_consent_again() {
    let env = start().await;
    let browser = client(true);
    let user = env.user_ids()[0].clone();
    let q = env.login(&browser, &user, &[]).await;
    let (_, t) = env.exchange(&q["code"], None).await;
    let access = t["access_token"].as_str().unwrap();
    let sub1 = jwt_payload(t["id_token"].as_str().unwrap())["sub"].clone();

    let apps = env
        .admin_get(&format!("/_emulator/users/{user}/authorized-apps"))
        .await;
    assert_eq!(apps["authorized_apps"][0]["channel_id"], CHANNEL);

    // SSO would skip the page now…
    assert_eq!(env.get_authorize(&browser, &[]).await.status(), 302);

    let r = env
        .admin_post(
            &format!("/_emulator/users/{user}/authorized-apps/{CHANNEL}/unlink"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (s, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(s, 401);
    let apps = env
        .admin_get(&format!("/_emulator/users/{user}/authorized-apps"))
        .await;
    assert_eq!(apps["authorized_apps"], json!([]));
    // Unlinking again: 404.
    let r = env
        .admin_post(
            &format!("/_emulator/users/{user}/authorized-apps/{CHANNEL}/unlink"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 404);

    // …but after the unlink the same browser sees the consent page again.
    let resp = env.get_authorize(&browser, &[("prompt", "none")]).await;
    assert_eq!(
        query_of(&location(&resp).unwrap())["error"],
        "LOGIN_REQUIRED"
    );
    let resp = env.get_authorize(&browser, &[]).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let resp = env.answer(&browser, &page, Some(&user), "allow", &[]).await;
    let q = query_of(&location(&resp).unwrap());
    let (_, t) = env.exchange(&q["code"], None).await;
    let sub2 = jwt_payload(t["id_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(sub1, sub2, "the user ID stays the same");
    let (s, _) = env
        .get_bearer("/v2/profile", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn user_ids_are_stable_per_provider() {
    let env = start().await;
    let base_id = env.user_ids()[0].clone();
    let users = env.admin_get("/_emulator/users").await;
    let other_id = users["users"][0]["ids_by_channel"]["2000000001"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other_id, base_id, "another provider sees another ID");
    assert_eq!(other_id.len(), 33);
    assert!(other_id.starts_with('U'));

    // Log in to the other channel and check the ID token subject.
    let browser = client(true);
    let resp = browser
        .get(env.url(&format!(
            "/oauth2/v2.1/authorize?response_type=code&client_id=2000000001&redirect_uri={}&state=s&scope=openid",
            "http%3A%2F%2F127.0.0.1%3A8081%2Fcb"
        )))
        .send()
        .await
        .unwrap();
    let page = resp.text().await.unwrap();
    assert!(page.contains(&other_id));
    let resp = env
        .answer(&browser, &page, Some(&other_id), "allow", &[])
        .await;
    let q = query_of(&location(&resp).unwrap());
    let (s, t) = env
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:8081/cb"),
            ("client_id", "2000000001"),
            ("client_secret", "fedcba9876543210fedcba9876543210"),
        ])
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        jwt_payload(t["id_token"].as_str().unwrap())["sub"],
        other_id.as_str()
    );

    // A second emulator with the same configuration gives the same IDs.
    let env2 = start().await;
    assert_eq!(env2.user_ids()[0], base_id);
}

#[tokio::test]
async fn admin_sets_friendship() {
    let env = start().await;
    let user = env.user_ids()[2].clone();
    let t = env.login_tokens(&user, "profile").await;
    let access = t["access_token"].as_str().unwrap();
    let (_, b) = env.get_bearer("/friendship/v1/status", access).await;
    assert_eq!(b, json!({"friendFlag": false}));
    let r = env
        .api
        .put(env.url(&format!("/_emulator/users/{user}/friendship/{CHANNEL}")))
        .json(&json!({"friend": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, b) = env.get_bearer("/friendship/v1/status", access).await;
    assert_eq!(b, json!({"friendFlag": true}));
    let r = env
        .api
        .put(env.url(&format!("/_emulator/users/{user}/friendship/{CHANNEL}")))
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn email_needs_the_channel_permission_and_picture_comes_with_profile() {
    let mut c = test_config();
    c.channels[0].email_permission = false;
    c.users[0].picture_url = Some("https://example.com/p.png".into());
    let env = start_with(c).await;
    let user = env.user_ids()[0].clone();
    let page = env
        .authorize_page(&env.browser, &[("scope", "profile openid email")])
        .await;
    assert!(
        !page.contains("data-scope=\"email\""),
        "email is not offered"
    );
    let resp = env
        .answer(&env.browser, &page, Some(&user), "allow", &[])
        .await;
    let q = query_of(&location(&resp).unwrap());
    let (_, t) = env.exchange(&q["code"], None).await;
    let claims = jwt_payload(t["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none());
    assert_eq!(claims["picture"], "https://example.com/p.png");
    let access = t["access_token"].as_str().unwrap();
    let (_, info) = env.get_bearer("/oauth2/v2.1/userinfo", access).await;
    assert_eq!(info["picture"], "https://example.com/p.png");
    let (_, profile) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(profile["pictureUrl"], "https://example.com/p.png");
}

#[tokio::test]
async fn key_seed_keeps_the_jwks_kid_across_restarts() {
    let mut c = test_config();
    c.key_seed = Some("stable".into());
    let a = start_with(c.clone()).await;
    let b = start_with(c).await;
    let c2 = start().await;
    let kid = |v: Value| v["keys"][0]["kid"].as_str().unwrap().to_owned();
    let ka = kid(a.admin_get("/oauth2/v2.1/certs").await);
    assert_eq!(ka, kid(b.admin_get("/oauth2/v2.1/certs").await));
    assert_ne!(ka, kid(c2.admin_get("/oauth2/v2.1/certs").await));
    let index = a.admin_get("/_emulator/").await;
    assert!(index["endpoints"].is_array());
}
