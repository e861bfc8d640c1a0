//! The authorization endpoint and the consent page (and the session cookie's attributes).

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn invalid_client_or_redirect_uri_is_an_html_400_without_redirect() {
    let env = start().await;
    for extra in [
        vec![("client_id", "999")],
        vec![("redirect_uri", "https://evil.example/cb")],
        vec![("redirect_uri", "http://127.0.0.1:8080/callback/../x")],
    ] {
        let resp = env.get_authorize(&env.browser, &extra).await;
        assert_eq!(resp.status(), 400);
        assert!(location(&resp).is_none());
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(resp.headers().contains_key("x-line-request-id"));
        let body = resp.text().await.unwrap();
        assert!(body.contains("400"), "{body}");
    }
    // A registered URL with extra query parameters is accepted.
    let resp = env
        .get_authorize(
            &env.browser,
            &[(
                "redirect_uri",
                "http://127.0.0.1:8080/callback?next=%2Fhome",
            )],
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn parameter_errors_redirect_with_upper_case_codes() {
    let env = start().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, bool);
    let cases: Vec<Case> = vec![
        (vec![("state", "")], "INVALID_REQUEST", false),
        (
            vec![("response_type", "token")],
            "UNSUPPORTED_RESPONSE_TYPE",
            true,
        ),
        (vec![("scope", "email")], "INVALID_SCOPE", true),
        (vec![("scope", "profile email")], "INVALID_SCOPE", true),
        (
            vec![("scope", "profile real_name_x")],
            "INVALID_SCOPE",
            true,
        ),
        (
            vec![
                ("code_challenge", "abc"),
                ("code_challenge_method", "plain"),
            ],
            "INVALID_REQUEST",
            true,
        ),
        (vec![("prompt", "bogus")], "INVALID_REQUEST", true),
        (vec![("bot_prompt", "loud")], "INVALID_REQUEST", true),
        (vec![("max_age", "-1")], "INVALID_REQUEST", true),
    ];
    for (extra, code, has_state) in cases {
        let resp = env.get_authorize(&env.browser, &extra).await;
        assert_eq!(resp.status(), 302, "{extra:?}");
        let loc = location(&resp).unwrap();
        assert!(loc.starts_with(CALLBACK), "{loc}");
        let q = query_of(&loc);
        assert_eq!(q["error"], code, "{extra:?}");
        assert!(q.contains_key("error_description"));
        assert_eq!(q.contains_key("state"), has_state, "{extra:?}");
        assert!(!q.contains_key("code"));
    }
    let resp = env.get_authorize(&env.browser, &[("state", "")]).await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["error_description"], "'state' is not specified.");
}

#[tokio::test]
async fn lowercase_switch() {
    let mut c = test_config();
    c.lowercase_errors = true;
    let env = start_with(c).await;
    let resp = env.get_authorize(&env.browser, &[("state", "")]).await;
    assert_eq!(
        query_of(&location(&resp).unwrap())["error"],
        "invalid_request"
    );
    let resp = env.get_authorize(&env.browser, &[]).await;
    let page = resp.text().await.unwrap();
    let resp = env.answer(&env.browser, &page, None, "cancel", &[]).await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["error"], "access_denied");
}

#[tokio::test]
async fn consent_page_cancel_gives_access_denied() {
    let env = start().await;
    let resp = env
        .get_authorize(
            &env.browser,
            &[("scope", "profile openid email"), ("state", "<b>&x")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    for needle in [
        "id=\"allow\"",
        "id=\"cancel\"",
        "name=\"user\"",
        "data-scope=\"profile\"",
        "data-scope=\"openid\"",
        "data-scope=\"email\"",
        "Test User 1",
        CHANNEL,
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    assert!(!page.contains("<b>&x"), "state must not be echoed raw");
    let loc = location(&env.answer(&env.browser, &page, None, "cancel", &[]).await).unwrap();
    let q = query_of(&loc);
    assert_eq!(q["error"], "ACCESS_DENIED");
    assert_eq!(
        q["error_description"],
        "The resource owner denied the request."
    );
    assert_eq!(q["state"], "<b>&x");
    assert!(loc.contains("The+resource+owner+denied+the+request."));
}

#[tokio::test]
async fn consent_requires_a_user_and_the_session_csrf() {
    let env = start().await;
    let page = env.authorize_page(&env.browser, &[]).await;
    // Allow without a user: the page comes back with an error, and still works after.
    let resp = env.answer(&env.browser, &page, None, "allow", &[]).await;
    assert_eq!(resp.status(), 200);
    let again = resp.text().await.unwrap();
    assert!(again.contains("id=\"error\""));
    // Another browser (no session cookie) cannot answer this page.
    let other = client(true);
    let resp = env
        .answer(&other, &again, Some(&env.user_ids()[0]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 403);
    assert!(location(&resp).is_none());
    // The owner still can.
    let resp = env
        .answer(&env.browser, &again, Some(&env.user_ids()[0]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 302);
    // A used request cannot be replayed.
    let resp = env
        .answer(&env.browser, &again, Some(&env.user_ids()[0]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn sso_and_prompt_none_login_consent() {
    let env = start().await;
    let browser = client(true);
    let user = env.user_ids()[1].clone();

    // No session: prompt=none → LOGIN_REQUIRED.
    let resp = env.get_authorize(&browser, &[("prompt", "none")]).await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["error"], "LOGIN_REQUIRED");
    assert_eq!(q["state"], "st4te");

    // First login shows the consent page.
    env.login(&browser, &user, &[]).await;

    // SSO: same browser, already consented → straight back with a code.
    let resp = env.get_authorize(&browser, &[]).await;
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp).unwrap());
    assert!(q.contains_key("code"));
    let (_, t) = env.exchange(&q["code"], None).await;
    let claims = jwt_payload(t["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["amr"], json!(["linesso"]));

    // prompt=none with a session and consent works too.
    let resp = env.get_authorize(&browser, &[("prompt", "none")]).await;
    assert!(query_of(&location(&resp).unwrap()).contains_key("code"));

    // A wider scope needs consent again: prompt=none fails.
    let resp = env
        .get_authorize(
            &browser,
            &[("prompt", "none"), ("scope", "profile openid email")],
        )
        .await;
    assert_eq!(
        query_of(&location(&resp).unwrap())["error"],
        "LOGIN_REQUIRED"
    );

    // prompt=consent and prompt=login force the page.
    for prompt in ["consent", "login"] {
        let resp = env.get_authorize(&browser, &[("prompt", prompt)]).await;
        assert_eq!(resp.status(), 200, "prompt={prompt}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("id=\"note\""));
        let preselected = page.contains(&format!("value=\"{user}\" id=\"user-{user}\" checked"));
        assert_eq!(preselected, prompt == "consent", "prompt={prompt}");
    }

    // max_age=0 after a login some seconds ago forces the page.
    env.admin_post("/_emulator/clock", json!({"advance_secs": 5}))
        .await;
    let resp = env.get_authorize(&browser, &[("max_age", "0")]).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn bot_prompt_normal_and_aggressive() {
    let env = start().await;
    let users = env.user_ids();

    // normal: the checkbox is on the consent page.
    let browser = client(true);
    let page = env
        .authorize_page(&browser, &[("bot_prompt", "normal")])
        .await;
    assert!(page.contains("name=\"add_friend\""));
    let resp = env
        .answer(
            &browser,
            &page,
            Some(&users[0]),
            "allow",
            &[("add_friend", "1")],
        )
        .await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["friendship_status_changed"], "true");
    let (_, t) = env.exchange(&q["code"], None).await;
    let (s, b) = env
        .get_bearer("/friendship/v1/status", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!((s, b), (200, json!({"friendFlag": true})));

    // normal, declined.
    let browser = client(true);
    let page = env
        .authorize_page(&browser, &[("bot_prompt", "normal")])
        .await;
    let resp = env
        .answer(&browser, &page, Some(&users[1]), "allow", &[])
        .await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["friendship_status_changed"], "false");
    let (_, t) = env.exchange(&q["code"], None).await;
    let (_, b) = env
        .get_bearer("/friendship/v1/status", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(b, json!({"friendFlag": false}));

    // aggressive: a separate screen after consent.
    let browser = client(true);
    let page = env
        .authorize_page(&browser, &[("bot_prompt", "aggressive")])
        .await;
    assert!(!page.contains("name=\"add_friend\""));
    let resp = env
        .answer(&browser, &page, Some(&users[2]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 200);
    let friend_page = resp.text().await.unwrap();
    assert!(friend_page.contains("Add friend"));
    let resp = env
        .answer(&browser, &friend_page, None, "add_friend", &[])
        .await;
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["friendship_status_changed"], "true");
    assert!(q.contains_key("code"));

    // Without bot_prompt, no parameter.
    let browser = client(true);
    let q = env.login(&browser, &users[0], &[]).await;
    assert!(!q.contains_key("friendship_status_changed"));
}

#[tokio::test]
async fn auto_consent_takes_users_in_turn() {
    let mut c = test_config();
    c.auto_consent = true;
    let env = start_with(c).await;
    let mut subs = Vec::new();
    for _ in 0..4 {
        let resp = env
            .get_authorize(&env.api, &[("bot_prompt", "normal")])
            .await;
        assert_eq!(resp.status(), 302);
        let q = query_of(&location(&resp).unwrap());
        assert_eq!(q["friendship_status_changed"], "false");
        let (s, t) = env.exchange(&q["code"], None).await;
        assert_eq!(s, 200);
        subs.push(
            jwt_payload(t["id_token"].as_str().unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ids = env.user_ids();
    assert_eq!(
        subs,
        vec![
            ids[0].clone(),
            ids[1].clone(),
            ids[2].clone(),
            ids[0].clone()
        ]
    );
}

#[tokio::test]
async fn response_modes_form_post_and_jwt() {
    let env = start().await;
    let user = env.user_ids()[0].clone();
    let page = env
        .authorize_page(&env.browser, &[("response_mode", "form_post")])
        .await;
    let resp = env
        .answer(&env.browser, &page, Some(&user), "allow", &[])
        .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")));
    let code = input_value(&html, "code").unwrap();
    assert_eq!(input_value(&html, "state").unwrap(), "st4te");
    let (s, _) = env.exchange(&code, None).await;
    assert_eq!(s, 200);

    let resp = env
        .get_authorize(&env.browser, &[("response_mode", "query.jwt")])
        .await;
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp).unwrap());
    let claims = jwt_payload(&q["response"]);
    assert_eq!(claims["state"], "st4te");
    assert_eq!(claims["aud"], CHANNEL);
    assert!(claims["code"].is_string());
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
