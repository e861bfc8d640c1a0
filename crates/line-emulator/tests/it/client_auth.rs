//! Client authentication: `client_secret_basic` (RFC 6749 §2.3.1, the default of Auth.js,
//! openid-client and Authlib) and `client_secret_post` (LINE's documented form) on every
//! endpoint that authenticates a client, and the secret rules per app type (a mobile channel's
//! refresh and revoke ignore the secret).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::Value;

use crate::common::*;

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 §2.3.1 builds it.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// POSTs a form with an `Authorization` header.
async fn post_with_auth(env: &Env, path: &str, auth: &str, form: &[(&str, &str)]) -> (u16, Value) {
    env.post_form_as(path, Some(auth), form).await
}

/// A fresh authorization code for the default channel.
async fn code(env: &Env) -> String {
    let browser = client(true);
    let user = env.user_ids()[0].clone();
    let q = env
        .login(&browser, &user, &[("scope", "profile openid")])
        .await;
    q["code"].clone()
}

fn code_form(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ]
}

#[tokio::test]
async fn token_accepts_client_secret_basic() {
    let env = start().await;
    let code = code(&env).await;
    let (status, body) = post_with_auth(
        &env,
        "/oauth2/v2.1/token",
        &basic(CHANNEL, SECRET),
        &code_form(&code),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string(), "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn refresh_accepts_client_secret_basic() {
    let env = start().await;
    let tokens = env.login_tokens(&env.user_ids()[0], "profile openid").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = post_with_auth(
        &env,
        "/oauth2/v2.1/token",
        &basic(CHANNEL, SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn revoke_accepts_client_secret_basic() {
    let env = start().await;
    let tokens = env.login_tokens(&env.user_ids()[0], "profile openid").await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = post_with_auth(
        &env,
        "/oauth2/v2.1/revoke",
        &basic(CHANNEL, SECRET),
        &[("access_token", access)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(status, 401, "the revoked access token no longer works");
}

/// Posts `form` authenticated as the default channel: Basic, or the body form.
async fn authed(env: &Env, path: &str, use_basic: bool, form: &[(&str, &str)]) -> (u16, Value) {
    if use_basic {
        post_with_auth(env, path, &basic(CHANNEL, SECRET), form).await
    } else {
        let mut form = form.to_vec();
        form.extend([("client_id", CHANNEL), ("client_secret", SECRET)]);
        env.post_form(path, &form).await
    }
}

/// Both methods work for the code grant, the refresh grant and revoke (the `line-login`
/// client keeps sending the body form, LINE's documented way).
#[tokio::test]
async fn token_and_revoke_accept_both_client_authentication_methods() {
    let env = start().await;
    for use_basic in [false, true] {
        let c = code(&env).await;
        let (status, body) = authed(&env, "/oauth2/v2.1/token", use_basic, &code_form(&c)).await;
        assert_eq!(status, 200, "code grant, basic={use_basic}: {body}");
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        let access = body["access_token"].as_str().unwrap().to_owned();

        let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
        let (status, body) = authed(&env, "/oauth2/v2.1/token", use_basic, &form).await;
        assert_eq!(status, 200, "refresh grant, basic={use_basic}: {body}");

        for (kind, token) in [("access_token", &access), ("refresh_token", &refresh)] {
            let (status, body) =
                authed(&env, "/oauth2/v2.1/revoke", use_basic, &[(kind, token)]).await;
            assert_eq!(status, 200, "revoke {kind}, basic={use_basic}: {body}");
        }
        let (status, _) = env.get_bearer("/v2/profile", &access).await;
        assert_eq!(status, 401, "revoked, basic={use_basic}");
    }
}

#[tokio::test]
async fn client_credentials_in_header_and_body_is_invalid_request() {
    let env = start().await;
    let auth = basic(CHANNEL, SECRET);
    let c = code(&env).await;
    let mut form = code_form(&c);
    form.extend([("client_id", CHANNEL), ("client_secret", SECRET)]);
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/token", &auth, &form).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");

    let tokens = env.login_tokens(&env.user_ids()[1], "profile openid").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let both = [("client_id", CHANNEL), ("client_secret", SECRET)];
    let mut refresh_form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
    refresh_form.extend(both);
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/token", &auth, &refresh_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "refresh: {body}"
    );
    let mut revoke_form = vec![("refresh_token", refresh)];
    revoke_form.extend(both);
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/revoke", &auth, &revoke_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "revoke: {body}"
    );
    // Basic with the same client_id in the body (no secret there) is one method: fine.
    let c = code(&env).await;
    let mut form = code_form(&c);
    form.push(("client_id", CHANNEL));
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/token", &auth, &form).await;
    assert_eq!(status, 200, "{body}");
    // ... a different one is not.
    let c = code(&env).await;
    let mut form = code_form(&c);
    form.push(("client_id", "2000000001"));
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/token", &auth, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_secret_via_basic_is_the_same_error_as_in_the_body() {
    let env = start().await;
    let wrong = "ffffffffffffffffffffffffffffffff";
    let c = code(&env).await;
    let mut form = code_form(&c);
    form.extend([("client_id", CHANNEL), ("client_secret", wrong)]);
    let (body_status, body_err) = env.token(&form).await;
    assert_eq!(body_status, 400, "{body_err}");
    assert_eq!(body_err["error"], "invalid_client", "{body_err}");

    let c = code(&env).await;
    let (status, basic_err) = post_with_auth(
        &env,
        "/oauth2/v2.1/token",
        &basic(CHANNEL, wrong),
        &code_form(&c),
    )
    .await;
    assert_eq!(
        (status, &basic_err),
        (body_status, &body_err),
        "same status and body"
    );

    let tokens = env.login_tokens(&env.user_ids()[0], "profile openid").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, err) = post_with_auth(
        &env,
        "/oauth2/v2.1/token",
        &basic(CHANNEL, wrong),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!((status, &err), (body_status, &body_err), "refresh");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, err) = post_with_auth(
        &env,
        "/oauth2/v2.1/revoke",
        &basic(CHANNEL, wrong),
        &[("access_token", access)],
    )
    .await;
    assert_eq!((status, &err), (body_status, &body_err), "revoke");
    let (status, _) = env.get_bearer("/v2/profile", access).await;
    assert_eq!(status, 200, "a wrong secret revoked nothing");
}

#[tokio::test]
async fn malformed_basic_is_a_line_shaped_400() {
    let env = start().await;
    let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0xff]));
    let pct_not_utf8 = format!("Basic {}", STANDARD.encode(format!("{CHANNEL}:%FF%FE")));
    let no_colon = format!("Basic {}", STANDARD.encode(format!("{CHANNEL}{SECRET}")));
    let empty_id = format!("Basic {}", STANDARD.encode(format!(":{SECRET}")));
    let cases = [
        ("not base64", "Basic !!!not*base64!!!".to_owned()),
        ("no credentials", "Basic".to_owned()),
        ("no colon", no_colon),
        ("not UTF-8", not_utf8),
        ("percent-encoded non-UTF-8", pct_not_utf8),
        ("empty id", empty_id),
    ];
    for path in ["/oauth2/v2.1/token", "/oauth2/v2.1/revoke"] {
        for (what, header) in &cases {
            let form: &[(&str, &str)] = if path.ends_with("token") {
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "abc"),
                    ("redirect_uri", CALLBACK),
                ]
            } else {
                &[("access_token", "abc")]
            };
            let (status, body) = post_with_auth(&env, path, header, form).await;
            assert_eq!(status, 400, "{path} {what}: {body}");
            assert_eq!(body["error"], "invalid_request", "{path} {what}: {body}");
            let desc = body["error_description"].as_str().unwrap_or("");
            assert!(
                desc.contains("Authorization header"),
                "{path} {what}: {body}"
            );
            assert!(!desc.contains(SECRET), "{path} {what}: secret echoed");
        }
        // A header value that is not even visible ASCII (obs-text bytes).
        let resp = env
            .api
            .post(env.url(path))
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap(),
            )
            .form(&[("access_token", "abc"), ("code", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path} obs-text");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path} obs-text: {body}");
    }
}

/// RFC 6749 §2.3.1: the id and the secret are form-urlencoded before the `:` join, so a secret
/// with `%`, `+`, `:` or a space survives; unpadded base64 is read too.
#[tokio::test]
async fn basic_credentials_are_form_urlencoded() {
    let secret = "p%ss+w:rd é&x=1";
    let mut config = test_config();
    config.channels[0].secret = secret.into();
    let env = start_with(config).await;
    let c = code(&env).await;
    let (status, body) = post_with_auth(
        &env,
        "/oauth2/v2.1/token",
        &basic(CHANNEL, secret),
        &code_form(&c),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // `+` is a space; `%2B` is a plus; no padding.
    let mut config = test_config();
    config.channels[0].secret = "a b+c".into();
    let env = start_with(config).await;
    let c = code(&env).await;
    let unpadded = format!(
        "Basic {}",
        STANDARD_NO_PAD.encode(format!("{CHANNEL}:a+b%2Bc"))
    );
    let (status, body) =
        post_with_auth(&env, "/oauth2/v2.1/token", &unpadded, &code_form(&c)).await;
    assert_eq!(status, 200, "{body}");
    // A client that leaves a space unencoded still gets through.
    let c = code(&env).await;
    let raw = format!("Basic {}", STANDARD.encode(format!("{CHANNEL}:a b%2Bc")));
    let (status, body) = post_with_auth(&env, "/oauth2/v2.1/token", &raw, &code_form(&c)).await;
    assert_eq!(status, 200, "a literal space decodes to itself: {body}");
}

/// The stateless and short-lived channel access token endpoints read client credentials
/// through the same parser (decision recorded in `channel_token.rs`).
#[tokio::test]
async fn channel_token_endpoints_accept_client_secret_basic() {
    let env = start().await;
    let auth = basic(CHANNEL, SECRET);
    let grant = [("grant_type", "client_credentials")];
    for path in ["/oauth2/v3/token", "/v2/oauth/accessToken"] {
        let (status, body) = post_with_auth(&env, path, &auth, &grant).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body["access_token"].is_string(), "{path}: {body}");
        let (status, body) = post_with_auth(
            &env,
            path,
            &auth,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CHANNEL),
                ("client_secret", SECRET),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{path} both: {body}"
        );
        let (status, _) = post_with_auth(
            &env,
            path,
            &basic(CHANNEL, "ffffffffffffffffffffffffffffffff"),
            &grant,
        )
        .await;
        assert_eq!(status, 400, "{path} wrong secret");
    }
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
