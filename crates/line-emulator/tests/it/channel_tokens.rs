//! Channel access tokens: stateless, v2.1 (RS256 assertion), short-lived.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn v21_channel_token_issue_verify_list_revoke_and_deauthorize() {
    let env = start().await;
    let a = assertion(KID, CHANNEL, 1800, Some(86400));
    let (s, b) = env
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", BEARER),
            ("client_assertion", &a),
        ])
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 86400);
    let token = b["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ey"));
    let key_id = b["key_id"].as_str().unwrap().to_owned();

    // Verify.
    let resp = env.verify_access(&token).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["client_id"], CHANNEL);
    assert!(v["expires_in"].as_i64().unwrap() > 86000);

    // List key IDs.
    let resp = env
        .api
        .get(env.url("/oauth2/v2.1/tokens/kid"))
        .query(&[("client_assertion_type", BEARER), ("client_assertion", &a)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let kids: Value = resp.json().await.unwrap();
    assert_eq!(kids, json!({"kids": [key_id]}));

    // Deauthorize accepts it.
    let t = env.login_tokens(&env.user_ids()[0], "profile").await;
    let r = env
        .deauthorize(&token, &json!({"userAccessToken": t["access_token"]}))
        .await;
    assert_eq!(r.status(), 204);

    // Revoke it; then it no longer verifies or deauthorizes.
    let (s, _) = env.revoke_access(&token, CHANNEL, SECRET).await;
    assert_eq!(s, 200);
    let resp = env.verify_access(&token).await;
    assert_eq!(resp.status(), 400);
    let r = env
        .deauthorize(&token, &json!({"userAccessToken": "x"}))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn v21_assertion_errors() {
    let env = start().await;
    let issue = |a: String| {
        let env = &env;
        async move {
            env.token(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", BEARER),
                ("client_assertion", &a),
            ])
            .await
        }
    };
    let (s, b) = issue(assertion("unknown-kid", CHANNEL, 600, None)).await;
    assert_eq!(
        (s, b),
        (
            404,
            json!({"message": "Cannot find channel key that satisfies the conditions"})
        )
    );
    let (s, b) = issue(assertion(KID, "2000000001", 600, None)).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_client")));
    assert_eq!(
        b["error_description"],
        "iss and clientId of key do not match"
    );
    let (s, b) = issue(assertion(KID, CHANNEL, -10, None)).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("Invalid exp"))
    );
    let (s, b) = issue(assertion(KID, CHANNEL, 7200, None)).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("Invalid exp"))
    );
    let (s, b) = issue(assertion(KID, CHANNEL, 600, Some(40 * 86400))).await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("Invalid token_exp"))
    );
    let (s, b) = issue("a.b.c".into()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    // A tampered signature.
    let mut a = assertion(KID, CHANNEL, 600, None);
    a.truncate(a.len() - 4);
    a.push_str("AAAA");
    let (s, b) = issue(a).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));

    // The quota: 30 valid tokens per channel.
    for _ in 0..30 {
        let (s, _) = issue(assertion(KID, CHANNEL, 600, Some(3600))).await;
        assert_eq!(s, 200);
    }
    let (s, b) = issue(assertion(KID, CHANNEL, 600, Some(3600))).await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"message": "The maximum number of access tokens has already been issued"})
        )
    );
}

#[tokio::test]
async fn stateless_token_errors() {
    let env = start().await;
    let (s, b) = env
        .post_form(
            "/oauth2/v3/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", "bad"),
            ],
        )
        .await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"error": "invalid_request", "error_description": "Invalid 'client_credentials'."})
        )
    );
    // The assertion form works for stateless tokens too.
    let a = assertion(KID, CHANNEL, 600, None);
    let (s, b) = env
        .post_form(
            "/oauth2/v3/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", BEARER),
                ("client_assertion", &a),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["expires_in"], 900);
}

#[tokio::test]
async fn short_lived_channel_tokens() {
    let env = start().await;
    let (s, b) = env
        .client_credentials("/v2/oauth/accessToken", CHANNEL, SECRET)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["expires_in"], 2_592_000);
    let token = b["access_token"].as_str().unwrap().to_owned();
    let (s, b) = env
        .post_form("/v2/oauth/verify", &[("access_token", &token)])
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["client_id"], CHANNEL);
    let (s, b) = env
        .post_form("/v2/oauth/verify", &[("access_token", "nope")])
        .await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("access_token invalid"))
    );
    let (s, b) = env
        .post_form("/v2/oauth/verify", &[("access_token", "bad token!")])
        .await;
    assert_eq!(
        (s, b["error_description"].as_str()),
        (400, Some("access_token in invalid format"))
    );
    let (s, _) = env
        .post_form("/v2/oauth/revoke", &[("access_token", &token)])
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .post_form("/v2/oauth/verify", &[("access_token", &token)])
        .await;
    assert_eq!(s, 400);
    let (s, b) = env.post_form("/v2/oauth/revoke", &[]).await;
    assert_eq!((s, b), (400, json!({"error": "invalid_request"})));
    let (s, b) = env
        .post_form(
            "/v2/oauth/accessToken",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"error": "invalid_client", "error_description": "invalid client_secret"})
        )
    );

    // 31 issued: the oldest is revoked.
    let mut tokens = Vec::new();
    for _ in 0..31 {
        let (_, b) = env
            .client_credentials("/v2/oauth/accessToken", CHANNEL, SECRET)
            .await;
        tokens.push(b["access_token"].as_str().unwrap().to_owned());
    }
    let (s, _) = env
        .post_form("/v2/oauth/verify", &[("access_token", &tokens[0])])
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .post_form("/v2/oauth/verify", &[("access_token", &tokens[30])])
        .await;
    assert_eq!(s, 200);
}
