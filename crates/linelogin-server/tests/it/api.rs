//! The server-to-server API (`gateway::api::router`, mounted on its own here; the gateway
//! nests it under its prefix): bearer key, account state, unregister and unlink through the
//! same durable job as the browser pages, `409 login_required` without a usable token.

use linelogin_server::config::{ApiKey, GatewayConfig};
use linelogin_server::gateway::api;

use crate::fake_line::FakeLine;
use crate::harness::{Harness, Opts, bind};

const KEY: &str = "test-api-key-0123456789";
const USER: &str = "U00000000000000000000000000000001";
const OTHER: &str = "U00000000000000000000000000000002";

/// A harness (with `api_key` when `key`), and the API router served on its own port.
async fn start(key: bool) -> (Harness, String) {
    let mut opts = Opts::default();
    if key {
        opts = opts.gateway(GatewayConfig {
            api_key: Some(ApiKey::new(KEY).unwrap()),
            ..GatewayConfig::default()
        });
    }
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    let (listener, base) = bind().await;
    let router = api::router().with_state(h.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (h, base)
}

async fn call(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or_default())
}

async fn account_id(h: &Harness, user: &str) -> String {
    h.account(user).await.unwrap().id
}

#[tokio::test]
async fn the_api_is_off_without_a_key() {
    let (h, base) = start(false).await;
    let (status, _, body) = call(
        reqwest::Method::GET,
        &format!("{base}/api/accounts/a_x"),
        Some(&format!("Bearer {KEY}")),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    h.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused() {
    let (h, base) = start(true).await;
    let url = format!("{base}/api/accounts/a_x");
    let wrong = format!("Bearer {KEY}x");
    let basic = format!("Basic {KEY}");
    for auth in [
        None,
        Some(wrong.as_str()),
        Some(basic.as_str()),
        Some("Bearer "),
    ] {
        for (method, url) in [
            (reqwest::Method::GET, url.clone()),
            (reqwest::Method::POST, format!("{url}/unregister")),
            (reqwest::Method::POST, format!("{url}/unlink")),
        ] {
            let (status, headers, body) = call(method, &url, auth).await;
            assert_eq!(status, 401, "{auth:?} {url}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert_eq!(body["error"], "unauthorized");
        }
    }
    // The right key, any case of the scheme.
    let (status, _, body) = call(reqwest::Method::GET, &url, Some(&format!("bearer {KEY}"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_account"))
    );
    h.stop().await;
}

#[tokio::test]
async fn the_app_reads_and_ends_an_account_through_the_api() {
    let (h, base) = start(true).await;
    let auth = format!("Bearer {KEY}");
    let get = |account: String| {
        let url = format!("{base}/api/accounts/{account}");
        let auth = auth.clone();
        async move { call(reqwest::Method::GET, &url, Some(&auth)).await }
    };
    let post = |account: String, what: &'static str| {
        let url = format!("{base}/api/accounts/{account}/{what}");
        let auth = auth.clone();
        async move { call(reqwest::Method::POST, &url, Some(&auth)).await }
    };
    // Bad input is a clear JSON error.
    let (status, _, body) = get("a%20b".into()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_account")));
    let (status, _, _) = get("x".repeat(300)).await;
    assert_eq!(status, 400);

    h.login(&h.client()).await;
    let a = account_id(&h, USER).await;
    let (status, _, body) = get(a.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"], a.as_str());
    assert_eq!(body["userId"], USER);
    assert_eq!(body["linked"], true);
    assert!(body["deauthorization"].is_null());

    // Unlink: 202 with the job, which the worker sends to LINE.
    let (status, _, body) = post(a.clone(), "unlink").await;
    assert_eq!(status, 202, "{body}");
    let job = body["job"].as_str().unwrap().to_owned();
    h.wait_outbox_empty().await;
    assert!(!h.line.is_authorized(USER));
    let (status, _, body) = get(a.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["linked"], false);
    assert_eq!(body["deauthorization"]["id"], job.as_str());
    assert_eq!(body["deauthorization"]["reason"], "unlink");
    assert_eq!(body["deauthorization"]["status"], "done");
    let (status, _, body) = post(a.clone(), "unregister").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_linked")));

    // No usable token: the user must log in again on the gateway's page.
    h.line.set_user(OTHER);
    h.login(&h.client()).await;
    let b = account_id(&h, OTHER).await;
    h.state.store().delete_tokens(&b).await.unwrap();
    for what in ["unregister", "unlink"] {
        let (status, _, body) = post(b.clone(), what).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"], "login_required");
        assert_eq!(
            body["url"],
            format!("{}/linelogin/account/{what}", h.base).as_str()
        );
    }
    assert!(h.account_by_id(&b).await.is_some());

    // Unregister: the account goes, its job remains visible.
    h.login(&h.client()).await;
    let (status, _, body) = post(b.clone(), "unregister").await;
    assert_eq!(status, 202, "{body}");
    h.wait_outbox_empty().await;
    assert!(!h.line.is_authorized(OTHER));
    assert!(h.account_by_id(&b).await.is_none());
    let (status, _, body) = get(b.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["registered"].as_bool(), body["linked"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(body["userId"], OTHER);
    assert_eq!(body["deauthorization"]["status"], "done");
    let (status, _, _) = post(b.clone(), "unregister").await;
    assert_eq!(
        status, 404,
        "an unregistered account cannot be unregistered again"
    );
    let (status, _, _) = get("a_unknown".into()).await;
    assert_eq!(status, 404);
    h.stop().await;
}
