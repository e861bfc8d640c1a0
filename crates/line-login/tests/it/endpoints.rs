//! Every endpoint against the local stub: the request on the wire, the decoded answer, both
//! error shapes, non-JSON bodies, empty bodies, timeouts, redirects and oversized bodies.

use std::time::Duration;

use line_login::callback::{CallbackOutcome, verify_callback};
use line_login::error::TransportErrorKind;
use line_login::observer::CallOutcome;
use line_login::policy::PolicyConfig;
use line_login::secret::{
    AccessToken, AuthorizationCode, ChannelAccessToken, ClientAssertion, CodeVerifier, IdToken,
    RefreshToken,
};
use line_login::types::{Nonce, UserId};
use line_login::{DeauthorizeOutcome, Error, LineErrorBody};
use serde_json::json;

use crate::stub::{CHANNEL_ID, CHANNEL_SECRET, Reply, Stub};

const TOKEN_OK: &str = r#"{"access_token":"AT_CANARY","expires_in":2592000,"id_token":"eyJ.x.y","refresh_token":"RT_CANARY","scope":"profile openid","token_type":"Bearer","unknown":{"x":1}}"#;

#[tokio::test]
async fn exchange_code_sends_the_documented_form() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(200, TOKEN_OK));
    let (client, rec) = stub.client();
    let redirect: url::Url = "https://app.example/callback".parse().unwrap();
    let t = client
        .exchange_code(
            &AuthorizationCode::new("CODE_CANARY"),
            &redirect,
            Some(&CodeVerifier::new("V".repeat(43))),
        )
        .await
        .unwrap();
    assert_eq!(t.access_token.secret(), "AT_CANARY");
    assert_eq!(t.expires_in, 2_592_000);
    let seen = &stub.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/oauth2/v2.1/token");
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        seen.form_value("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(seen.form_value("code").as_deref(), Some("CODE_CANARY"));
    assert_eq!(
        seen.form_value("redirect_uri").as_deref(),
        Some("https://app.example/callback")
    );
    assert_eq!(seen.form_value("client_id").as_deref(), Some(CHANNEL_ID));
    assert_eq!(
        seen.form_value("client_secret").as_deref(),
        Some(CHANNEL_SECRET)
    );
    assert_eq!(
        seen.form_value("code_verifier").as_deref(),
        Some("V".repeat(43).as_str())
    );
    // the observer saw one attempt with the request id, and redacted bodies
    let calls = rec.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.request_id.as_deref(), Some("8d48c8577e739b9c"));
    assert_eq!(c.endpoint, format!("{}oauth2/v2.1/token", stub.base));
    assert_eq!(c.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(c.outcome, CallOutcome::Success);
    let logged = format!("{:?}", calls);
    for secret in [
        "CODE_CANARY",
        CHANNEL_SECRET,
        "AT_CANARY",
        "RT_CANARY",
        &"V".repeat(43),
    ] {
        assert!(!logged.contains(secret), "{secret} reached the observer");
    }
    assert!(
        c.request_body
            .as_ref()
            .unwrap()
            .contains("grant_type=authorization_code")
    );
}

#[tokio::test]
async fn exchange_code_is_never_retried() {
    let stub = Stub::start().await;
    stub.always(Reply::json(503, r#"{"message":"busy"}"#));
    let (client, rec) = stub.client();
    let err = client
        .exchange_code(
            &AuthorizationCode::new("c"),
            &"https://a.example/cb".parse().unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.is_unavailable());
    assert_eq!(stub.seen().len(), 1, "a single-use code is sent once");
    assert_eq!(rec.calls().len(), 1);
    stub.always(
        Reply::json(
            429,
            r#"{"message":"The API rate limit has been exceeded. Try again later."}"#,
        )
        .header("retry-after", "1"),
    );
    let err = client
        .exchange_code(
            &AuthorizationCode::new("c"),
            &"https://a.example/cb".parse().unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn token_errors_keep_line_s_shape() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(
        400,
        r#"{"error":"invalid_grant","error_description":"redirect_uri does not match"}"#,
    ));
    let (client, _) = stub.client();
    let err = client
        .exchange_code(
            &AuthorizationCode::new("c"),
            &"https://a.example/cb".parse().unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.is_invalid_grant());
    assert_eq!(err.request_id(), Some("8d48c8577e739b9c"));
    assert_eq!(
        err.to_string(),
        "LINE answered 400 to POST /oauth2/v2.1/token: invalid_grant: redirect_uri does not match (x-line-request-id 8d48c8577e739b9c)"
    );
    // token_type other than Bearer is refused, case-insensitively accepted
    stub.reply(Reply::json(200, &TOKEN_OK.replace("Bearer", "bearer")));
    assert!(client.refresh(&RefreshToken::new("r")).await.is_ok());
    stub.reply(Reply::json(200, &TOKEN_OK.replace("Bearer", "MAC")));
    assert!(matches!(
        client.refresh(&RefreshToken::new("r")).await,
        Err(Error::Decode { .. })
    ));
}

#[tokio::test]
async fn refresh_sends_the_refresh_grant_and_decodes_without_id_token() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(200, r#"{"access_token":"a2","expires_in":100,"refresh_token":"r2","scope":"profile","token_type":"Bearer"}"#));
    let (client, _) = stub.client();
    let t = client.refresh(&RefreshToken::new("RT")).await.unwrap();
    assert!(t.id_token.is_none());
    assert_eq!(t.refresh_token.secret(), "r2");
    let s = &stub.seen()[0];
    assert_eq!(s.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(s.form_value("refresh_token").as_deref(), Some("RT"));
    assert_eq!(
        s.form_value("client_secret").as_deref(),
        Some(CHANNEL_SECRET)
    );
    stub.reply(Reply::json(
        400,
        r#"{"error":"invalid_grant","error_description":"invalid refresh token"}"#,
    ));
    assert!(
        client
            .refresh(&RefreshToken::new("RT"))
            .await
            .unwrap_err()
            .is_invalid_grant()
    );
}

#[tokio::test]
async fn verify_access_token_uses_the_query_and_never_logs_it() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(
        200,
        r#"{"scope":"profile","client_id":"1234567890","expires_in":2591659}"#,
    ));
    stub.reply(Reply::json(200, r#"{"client_id":"999","expires_in":10}"#));
    stub.reply(Reply::json(
        400,
        r#"{"error":"invalid_request","error_description":"The access token revoked"}"#,
    ));
    let (client, rec) = stub.client();
    let info = client
        .verify_access_token(&AccessToken::new("AT_Q"))
        .await
        .unwrap();
    assert_eq!(info.expires_in, 2_591_659);
    let s = &stub.seen()[0];
    assert_eq!(s.method, "GET");
    assert_eq!(s.query.as_deref(), Some("access_token=AT_Q"));
    assert!(
        client
            .verify_access_token_for_channel(&AccessToken::new("AT_Q"))
            .await
            .unwrap()
            .is_none()
    );
    let err = client
        .verify_access_token(&AccessToken::new("AT_Q"))
        .await
        .unwrap_err();
    assert!(err.is_invalid_token());
    assert!(!format!("{:?} {err} {err:?}", rec.calls()).contains("AT_Q"));
}

#[tokio::test]
async fn verify_id_token_remote_posts_the_form() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(200, r#"{"iss":"https://access.line.me","sub":"U1","aud":"1234567890","exp":2,"iat":1,"nonce":"n","amr":["pwd"],"name":"Taro"}"#));
    stub.reply(Reply::json(
        400,
        r#"{"error":"invalid_request","error_description":"Invalid IdToken Nonce."}"#,
    ));
    let (client, _) = stub.client();
    let c = client
        .verify_id_token_remote(
            &IdToken::new("ey.J.x"),
            Some(&Nonce::new("n")),
            Some(&UserId::new("U1")),
        )
        .await
        .unwrap();
    assert_eq!(c.name.as_deref(), Some("Taro"));
    let s = &stub.seen()[0];
    assert_eq!(s.path, "/oauth2/v2.1/verify");
    assert_eq!(s.form_value("id_token").as_deref(), Some("ey.J.x"));
    assert_eq!(s.form_value("client_id").as_deref(), Some(CHANNEL_ID));
    assert_eq!(s.form_value("nonce").as_deref(), Some("n"));
    assert_eq!(s.form_value("user_id").as_deref(), Some("U1"));
    let err = client
        .verify_id_token_remote(&IdToken::new("x"), None, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.line_body().unwrap().description(),
        Some("Invalid IdToken Nonce.")
    );
}

#[tokio::test]
async fn revoke_accepts_empty_and_empty_object_bodies() {
    let stub = Stub::start().await;
    stub.reply(Reply::raw(200, "text/plain", ""));
    stub.reply(Reply::json(200, "{}"));
    stub.reply(Reply::json(200, "{}"));
    let (client, _) = stub.client();
    client.revoke(&AccessToken::new("AT")).await.unwrap();
    client
        .revoke_refresh_token(&RefreshToken::new("RT"))
        .await
        .unwrap();
    client
        .revoke_channel_token_v21(&ChannelAccessToken::new("CT"))
        .await
        .unwrap();
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/oauth2/v2.1/revoke");
    assert_eq!(seen[0].form_value("access_token").as_deref(), Some("AT"));
    assert_eq!(seen[0].form_value("client_id").as_deref(), Some(CHANNEL_ID));
    assert_eq!(
        seen[0].form_value("client_secret").as_deref(),
        Some(CHANNEL_SECRET)
    );
    assert_eq!(seen[1].form_value("refresh_token").as_deref(), Some("RT"));
    assert_eq!(seen[2].form_value("access_token").as_deref(), Some("CT"));
}

#[tokio::test]
async fn userinfo_profile_friendship_use_bearer_and_message_errors() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(200, r#"{"sub":"U1","name":"Brown"}"#));
    stub.reply(Reply::json(200, r#"{"userId":"U1","displayName":"Brown","pictureUrl":"https://p","statusMessage":"Hi","new":1}"#));
    stub.reply(Reply::json(200, r#"{"friendFlag":true}"#));
    stub.reply(Reply::json(
        401,
        r#"{"message":"The access token revoked"}"#,
    ));
    stub.reply(Reply::json(
        403,
        r#"{"message":"Not allowed to use the API"}"#,
    ));
    let (client, _) = stub.client();
    let at = AccessToken::new("AT_B");
    assert_eq!(
        client.userinfo(&at).await.unwrap().name.as_deref(),
        Some("Brown")
    );
    assert_eq!(
        client.profile(&at).await.unwrap().status_message.as_deref(),
        Some("Hi")
    );
    assert!(client.friendship_status(&at).await.unwrap().friend_flag);
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/oauth2/v2.1/userinfo");
    assert_eq!(seen[1].path, "/v2/profile");
    assert_eq!(seen[2].path, "/friendship/v1/status");
    for s in &seen {
        assert_eq!(s.method, "GET");
        assert_eq!(s.headers["authorization"], "Bearer AT_B");
    }
    let e = client.profile(&at).await.unwrap_err();
    assert!(e.is_invalid_token());
    assert!(
        matches!(e.line_body(), Some(LineErrorBody::Message(m)) if m.message == "The access token revoked")
    );
    let e = client.friendship_status(&at).await.unwrap_err();
    assert_eq!(e.status().unwrap().as_u16(), 403);
    assert!(!e.is_invalid_token());
}

#[tokio::test]
async fn channel_tokens_stateless_v21_short_lived_and_kids() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(
        200,
        r#"{"token_type":"Bearer","access_token":"eyCT","expires_in":900}"#,
    ));
    stub.reply(Reply::json(
        200,
        r#"{"token_type":"Bearer","access_token":"eyCT2","expires_in":900}"#,
    ));
    stub.reply(Reply::json(200, r#"{"access_token":"eyV21","token_type":"Bearer","expires_in":2592000,"key_id":"sDTOzw5wIf"}"#));
    stub.reply(Reply::json(200, r#"{"kids":["a","b"]}"#));
    stub.reply(Reply::json(
        200,
        r#"{"access_token":"W1Te","expires_in":2592000,"token_type":"Bearer"}"#,
    ));
    stub.reply(Reply::json(
        200,
        r#"{"client_id":"1234567890","expires_in":10,"scope":"x"}"#,
    ));
    stub.reply(Reply::raw(200, "text/plain", ""));
    stub.reply(Reply::json(
        400,
        r#"{"error":"invalid_request","error_description":"Invalid 'client_credentials'."}"#,
    ));
    let (client, _) = stub.client();
    let t = client.issue_stateless_channel_token().await.unwrap();
    assert_eq!(t.expires_in, 900);
    let a = ClientAssertion::new("ey.assert.ion");
    client
        .issue_stateless_channel_token_with_assertion(&a)
        .await
        .unwrap();
    let v21 = client.issue_channel_token_v21(&a).await.unwrap();
    assert_eq!(v21.key_id.as_deref(), Some("sDTOzw5wIf"));
    assert_eq!(
        client.channel_token_key_ids(&a).await.unwrap().kids,
        vec!["a", "b"]
    );
    let sl = client.issue_short_lived_channel_token().await.unwrap();
    client
        .verify_short_lived_channel_token(&sl.access_token)
        .await
        .unwrap();
    client
        .revoke_short_lived_channel_token(&sl.access_token)
        .await
        .unwrap();
    let e = client.issue_stateless_channel_token().await.unwrap_err();
    assert_eq!(e.line_body().unwrap().error_code(), Some("invalid_request"));
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/oauth2/v3/token");
    assert_eq!(
        seen[0].form_value("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        seen[0].form_value("client_secret").as_deref(),
        Some(CHANNEL_SECRET)
    );
    assert_eq!(
        seen[1].form_value("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(seen[2].path, "/oauth2/v2.1/token");
    assert_eq!(
        seen[2].form_value("client_assertion").as_deref(),
        Some("ey.assert.ion")
    );
    assert_eq!(seen[3].path, "/oauth2/v2.1/tokens/kid");
    assert!(
        seen[3]
            .query
            .as_deref()
            .unwrap()
            .contains("client_assertion=ey.assert.ion")
    );
    assert_eq!(seen[4].path, "/v2/oauth/accessToken");
    assert_eq!(seen[5].path, "/v2/oauth/verify");
    assert_eq!(seen[6].path, "/v2/oauth/revoke");
}

#[tokio::test]
async fn deauthorize_204_and_already_invalid() {
    let stub = Stub::start().await;
    stub.reply(Reply::raw(204, "text/plain", ""));
    stub.reply(Reply::json(400, r#"{"message":"invalid token"}"#));
    stub.reply(Reply::json(401, r#"{"message":"Authentication failed"}"#));
    let (client, rec) = stub.client();
    let ct = ChannelAccessToken::new("CT_CANARY");
    let at = AccessToken::new("AT_CANARY");
    assert_eq!(
        client.deauthorize(&ct, &at).await.unwrap(),
        DeauthorizeOutcome::Deauthorized
    );
    assert_eq!(
        client.deauthorize(&ct, &at).await.unwrap(),
        DeauthorizeOutcome::AlreadyInvalid
    );
    let e = client.deauthorize(&ct, &at).await.unwrap_err();
    assert_eq!(e.status().unwrap().as_u16(), 401);
    assert_eq!(
        e.to_string(),
        "LINE answered 401 to POST /user/v1/deauthorize: (text withheld) (x-line-request-id 8d48c8577e739b9c)"
    );
    let s = &stub.seen()[0];
    assert_eq!(s.path, "/user/v1/deauthorize");
    assert_eq!(s.headers["authorization"], "Bearer CT_CANARY");
    assert_eq!(s.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&s.body).unwrap(),
        json!({"userAccessToken":"AT_CANARY"})
    );
    let logged = format!("{:?}", rec.calls());
    assert!(!logged.contains("CANARY"), "{logged}");
    assert!(
        rec.calls()[0]
            .request_body
            .as_ref()
            .unwrap()
            .contains("userAccessToken")
    );
}

#[tokio::test]
async fn jwks_and_discovery() {
    let stub = Stub::start().await;
    stub.reply(Reply::json(200, r#"{"keys":[]}"#));
    stub.reply(Reply::json(200, r#"{"issuer":"https://access.line.me","authorization_endpoint":"a","token_endpoint":"t","jwks_uri":"j","response_types_supported":["code"],"subject_types_supported":["pairwise"],"id_token_signing_alg_values_supported":["ES256"]}"#));
    let (client, _) = stub.client();
    assert!(client.jwks().await.unwrap().keys.is_empty());
    assert_eq!(
        client.discovery().await.unwrap().issuer,
        "https://access.line.me"
    );
    assert_eq!(stub.seen()[1].path, "/.well-known/openid-configuration");
}

#[tokio::test]
async fn non_json_and_malformed_bodies() {
    let stub = Stub::start().await;
    stub.reply(Reply::raw(502, "text/html", "<html>Bad Gateway</html>"));
    stub.reply(Reply::raw(200, "text/html", "<html>oops</html>"));
    stub.reply(Reply::json(200, r#"{"access_token":123}"#));
    let (client, _) = stub.client_with(PolicyConfig {
        max_attempts: 1,
        ..PolicyConfig::default()
    });
    let e = client.profile(&AccessToken::new("a")).await.unwrap_err();
    assert_eq!(e.line_body(), Some(&LineErrorBody::NotJson { len: 24 }));
    assert!(e.is_unavailable());
    let e = client.profile(&AccessToken::new("a")).await.unwrap_err();
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e:?}");
    let e = client.refresh(&RefreshToken::new("r")).await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }));
    assert!(
        !e.to_string().contains("123"),
        "decode errors never quote the body"
    );
}

#[tokio::test]
async fn timeouts_are_typed_and_bounded() {
    let stub = Stub::start().await;
    stub.always(Reply::json(200, "{}").delay(Duration::from_secs(5)));
    let (client, rec) = stub.client_with(PolicyConfig {
        attempt_timeout: Duration::from_millis(150),
        max_attempts: 2,
        backoff_base: Duration::from_millis(1),
        ..PolicyConfig::default()
    });
    let t0 = std::time::Instant::now();
    let e = client.userinfo(&AccessToken::new("a")).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    let calls = rec.calls();
    assert_eq!(calls.len(), 2, "an idempotent call is retried once more");
    assert!(
        calls
            .iter()
            .all(|c| c.outcome == CallOutcome::Timeout && c.status.is_none())
    );
    assert_eq!(calls[1].attempt, 2);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_without_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = line_login::LineClient::builder(
        line_login::types::ChannelId::new(CHANNEL_ID),
        line_login::secret::ChannelSecret::new(CHANNEL_SECRET),
    )
    .base_url(format!("http://127.0.0.1:{port}").parse().unwrap())
    .policy(line_login::policy::OutboundPolicy::new(PolicyConfig {
        max_attempts: 1,
        ..PolicyConfig::default()
    }))
    .build()
    .unwrap();
    let e = client
        .verify_access_token(&AccessToken::new("AT_SECRET_Q"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transport {
                kind: TransportErrorKind::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    let text = format!("{e} {e:?}");
    assert!(!text.contains("AT_SECRET_Q"), "{text}");
    assert!(!text.contains("access_token="), "{text}");
}

#[tokio::test]
async fn redirects_are_not_followed_and_bodies_are_bounded() {
    let stub = Stub::start().await;
    stub.reply(Reply::raw(307, "text/plain", "").header("location", "http://127.0.0.1:1/evil"));
    stub.reply(Reply::json(
        200,
        &format!(r#"{{"sub":"{}"}}"#, "x".repeat(4096)),
    ));
    let (client, _) = stub.client_with(PolicyConfig {
        max_response_body: 1024,
        ..PolicyConfig::default()
    });
    let e = client.refresh(&RefreshToken::new("r")).await.unwrap_err();
    assert_eq!(e.status().unwrap().as_u16(), 307);
    assert_eq!(stub.seen().len(), 1, "the redirect was not followed");
    let e = client.userinfo(&AccessToken::new("a")).await.unwrap_err();
    assert!(
        matches!(e, Error::BodyTooLarge { limit: 1024, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn complete_login_end_to_end_against_the_stub() {
    use crate::tokens::{claims, hs256};
    let stub = Stub::start().await;
    let (client, _) = stub.client();
    let pending = client
        .authorization_request("https://app.example/cb".parse().unwrap())
        .build()
        .unwrap();
    assert!(
        pending
            .url
            .as_str()
            .starts_with(&format!("{}oauth2/v2.1/authorize?", stub.base))
    );
    let mut c = claims();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c["iat"] = json!(now);
    c["exp"] = json!(now + 3600);
    c["nonce"] = json!(pending.nonce.as_ref().unwrap().as_str());
    let body = json!({"access_token":"a","expires_in":1,"id_token":hs256(&c),"refresh_token":"r","scope":"profile openid","token_type":"Bearer"});
    stub.reply(Reply::json(200, &body.to_string()));
    let query = format!("code=abc&state={}", pending.state.as_str());
    let CallbackOutcome::Authorized(resp) = verify_callback(&query, &pending.state).unwrap() else {
        panic!("state should match");
    };
    let login = client.complete_login(&pending, &resp).await.unwrap();
    assert_eq!(
        login.claims.unwrap().sub.as_str(),
        "U0123456789abcdef0123456789abcdef"
    );
    let s = &stub.seen()[0];
    assert_eq!(
        s.form_value("code_verifier").as_deref(),
        Some(pending.code_verifier.as_ref().unwrap().secret())
    );
    // a token whose nonce belongs to another login is rejected
    c["nonce"] = json!("someone-else");
    let body = json!({"access_token":"a","expires_in":1,"id_token":hs256(&c),"refresh_token":"r","scope":"profile openid","token_type":"Bearer"});
    stub.reply(Reply::json(200, &body.to_string()));
    let e = client.complete_login(&pending, &resp).await.unwrap_err();
    assert!(matches!(
        e,
        Error::IdToken(line_login::id_token::IdTokenError::NonceMismatch)
    ));
    // openid requested but no ID token
    stub.reply(Reply::json(200, r#"{"access_token":"a","expires_in":1,"refresh_token":"r","scope":"profile","token_type":"Bearer"}"#));
    assert!(matches!(
        client.complete_login(&pending, &resp).await,
        Err(Error::Decode { .. })
    ));
}
