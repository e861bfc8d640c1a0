//! The emulator as a developer meets it: single sign-on like LINE's (and the ways to turn it
//! off), the consent page's language and "Not you?", the admin endpoint that clears the
//! single-sign-on sessions, errors written for developers, and errors in HTML or JSON by the
//! client's `Accept`.

use serde_json::json;

use crate::common::*;

const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

fn preselected(page: &str, user: &str) -> bool {
    page.contains(&format!("value=\"{user}\" id=\"user-{user}\" checked"))
}

fn sub_of(env_code: &serde_json::Value) -> String {
    jwt_payload(env_code["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn single_sign_on_logs_in_silently_unless_disable_auto_login_or_prompt_login() {
    let env = start().await;
    let browser = client(true);
    let user = env.user_ids()[1].clone();
    env.login(&browser, &user, &[]).await;

    // LINE's auto login: the same browser comes straight back with a code.
    let resp = env.get_authorize(&browser, &[]).await;
    assert_eq!(resp.status(), 302);

    // disable_auto_login=true: the page again, the browser's user preselected, with "Not you?".
    let resp = env
        .get_authorize(&browser, &[("disable_auto_login", "true")])
        .await;
    assert_eq!(
        resp.status(),
        200,
        "disable_auto_login=true must show the page"
    );
    let page = resp.text().await.unwrap();
    assert!(preselected(&page, &user), "{page}");
    assert!(page.contains("id=\"note\""), "{page}");
    assert!(page.contains("disable_auto_login=true"), "{page}");
    assert!(page.contains("id=\"switch-user\""), "{page}");
    let resp = env.answer(&browser, &page, Some(&user), "allow", &[]).await;
    let q = query_of(&location(&resp).unwrap());
    let (_, t) = env.exchange(&q["code"], None).await;
    assert_eq!(
        jwt_payload(t["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );

    // disable_auto_login=false is the default: silent again.
    let resp = env
        .get_authorize(&browser, &[("disable_auto_login", "false")])
        .await;
    assert_eq!(resp.status(), 302);

    // prompt=login: the page, nobody preselected.
    let resp = env.get_authorize(&browser, &[("prompt", "login")]).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(!preselected(&page, &user), "{page}");
    assert!(!page.contains("id=\"switch-user\""), "{page}");

    // prompt=none with disable_auto_login cannot show the page.
    let resp = env
        .get_authorize(
            &browser,
            &[("prompt", "none"), ("disable_auto_login", "true")],
        )
        .await;
    assert_eq!(
        query_of(&location(&resp).unwrap())["error"],
        "LOGIN_REQUIRED"
    );
}

#[tokio::test]
async fn not_you_forgets_the_browser_user_and_keeps_the_request() {
    let env = start().await;
    let browser = client(true);
    let ids = env.user_ids();
    env.login(&browser, &ids[0], &[]).await;
    let page = env
        .authorize_page(&browser, &[("disable_auto_login", "true")])
        .await;
    let resp = env.answer(&browser, &page, None, "switch", &[]).await;
    assert_eq!(resp.status(), 200);
    let again = resp.text().await.unwrap();
    assert!(!preselected(&again, &ids[0]), "{again}");
    assert!(!again.contains("id=\"switch-user\""), "{again}");
    assert_eq!(
        input_value(&again, "request"),
        input_value(&page, "request"),
        "the same request"
    );
    // The browser has no user now: the next request shows the page too.
    assert_eq!(env.get_authorize(&browser, &[]).await.status(), 200);
    // Picking another user answers the app with that user.
    let resp = env
        .answer(&browser, &again, Some(&ids[2]), "allow", &[])
        .await;
    let q = query_of(&location(&resp).unwrap());
    let (_, t) = env.exchange(&q["code"], None).await;
    assert_eq!(sub_of(&t), ids[2]);
}

#[tokio::test]
async fn the_admin_api_clears_single_sign_on() {
    let env = start().await;
    let browser = client(true);
    let user = env.user_ids()[1].clone();
    env.login(&browser, &user, &[]).await;
    assert_eq!(env.get_authorize(&browser, &[]).await.status(), 302);

    let resp = env.admin_post("/_emulator/sso/clear", json!({})).await;
    assert_eq!(resp.status(), 204);
    let resp = env.get_authorize(&browser, &[]).await;
    assert_eq!(resp.status(), 200, "after the clear, the login page");
    let page = resp.text().await.unwrap();
    assert!(!preselected(&page, &user), "{page}");
    // The grant stays: logging in again needs no new consent from LINE's side, and the
    // same browser is remembered again afterwards.
    let resp = env.answer(&browser, &page, Some(&user), "allow", &[]).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(env.get_authorize(&browser, &[]).await.status(), 302);
}

#[tokio::test]
async fn the_consent_page_speaks_japanese_to_a_japanese_browser() {
    let env = start().await;
    let page = |lang: Option<&'static str>, ui: &'static str| {
        let env = &env;
        async move {
            let mut req = client(true).get(env.authorize_url(&[("ui_locales", ui)]));
            if let Some(l) = lang {
                req = req.header("accept-language", l);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let ja = page(Some("ja-JP,ja;q=0.9,en;q=0.8"), "").await;
    assert!(ja.contains("<html lang=\"ja\">"), "{ja}");
    assert!(ja.contains(">許可する<"), "{ja}");
    assert!(ja.contains(">キャンセル<"), "{ja}");
    let en = page(Some("en-US,en;q=0.9"), "").await;
    assert!(
        en.contains("<html lang=\"en\">") && en.contains(">Allow<"),
        "{en}"
    );
    let by_param = page(Some("en-US"), "ja").await;
    assert!(by_param.contains("<html lang=\"ja\">"), "ui_locales wins");
    assert!(page(None, "").await.contains("<html lang=\"en\">"));
}

#[tokio::test]
async fn an_unregistered_redirect_uri_says_what_was_received_and_how_to_register_it() {
    let env = start().await;
    let wrong = "http://localhost:3000/auth/line/callback?from=app";
    let resp = env
        .api
        .get(env.authorize_url(&[("redirect_uri", wrong)]))
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.unwrap();
    for needle in [
        "http://localhost:3000/auth/line/callback?from=app",
        "--channel 1234567890,SECRET,http://localhost:3000/auth/line/callback",
        "callback_urls = [\"http://localhost:3000/auth/line/callback\"]",
        CALLBACK,
    ] {
        assert!(page.contains(needle), "missing {needle}: {page}");
    }
    // The same for an API client, as JSON.
    let resp = env
        .api
        .get(env.authorize_url(&[("redirect_uri", wrong)]))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains(wrong) && d.contains("--channel 1234567890,SECRET,"),
        "{d}"
    );
}

#[tokio::test]
async fn errors_are_html_for_browsers_and_json_for_api_clients() {
    let env = start().await;
    enum Want {
        Html,
        Json,
    }
    use Want::*;
    /// (what, method, URL, form body, the format wanted for [browser, application/json,
    /// */*, no Accept]).
    type Row = (
        &'static str,
        &'static str,
        String,
        Option<&'static str>,
        [Want; 4],
    );
    let table: Vec<Row> = vec![
        (
            "authorize, unknown client",
            "GET",
            env.authorize_url(&[("client_id", "999")]),
            None,
            [Html, Json, Html, Html],
        ),
        (
            "consent, expired request",
            "POST",
            env.url("/oauth2/v2.1/authorize/consent"),
            Some("request=nope&decision=allow"),
            [Html, Json, Html, Html],
        ),
        (
            "unknown path",
            "GET",
            env.url("/no/such/path"),
            None,
            [Html, Json, Json, Json],
        ),
        (
            "token, bad grant",
            "POST",
            env.url("/oauth2/v2.1/token"),
            Some("grant_type=nope"),
            [Json, Json, Json, Json],
        ),
        (
            "profile, no token",
            "GET",
            env.url("/v2/profile"),
            None,
            [Json, Json, Json, Json],
        ),
        (
            "admin, unknown user",
            "GET",
            env.url("/_emulator/users/Unope/authorized-apps"),
            None,
            [Json, Json, Json, Json],
        ),
    ];
    let accepts = [
        Some(BROWSER_ACCEPT),
        Some("application/json"),
        Some("*/*"),
        None,
    ];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (what, method, url, body, wants) in &table {
        for (accept, want) in accepts.iter().zip(wants) {
            let mut req = match *method {
                "GET" => http.get(url),
                _ => http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.unwrap_or("").to_owned()),
            };
            // None: whatever the HTTP library sends by default.
            if let Some(a) = accept {
                req = req.header("accept", *a);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            assert!((400..500).contains(&status), "{what} {accept:?}: {status}");
            assert!(resp.headers().contains_key("x-line-request-id"), "{what}");
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            let text = resp.text().await.unwrap();
            match want {
                Html => {
                    assert!(ct.starts_with("text/html"), "{what} {accept:?}: {ct}");
                    assert!(text.contains(&format!("<h1>{status} ")), "{what}: {text}");
                }
                Json => {
                    assert_eq!(ct, "application/json", "{what} {accept:?}: {text}");
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{what} {accept:?}: {e}: {text}"));
                    assert!(
                        v.get("error").is_some() || v.get("message").is_some(),
                        "{what}: {text}"
                    );
                }
            }
        }
    }
}
