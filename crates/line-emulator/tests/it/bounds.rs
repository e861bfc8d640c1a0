//! Memory bounds against an attack run's findings: parameter length caps on authorize (and so
//! on its consent flow), byte budgets for outstanding codes and waiting consent pages, and a
//! huge unknown path journaled short.

use line_emulator::Config;
use serde_json::Value;

use crate::common::*;

fn auto_consent() -> Config {
    let mut c = test_config();
    c.auto_consent = true;
    c
}

async fn stat(env: &Env, key: &str) -> u64 {
    let stats = env.admin_get("/_emulator/stats").await;
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {stats}"))
}

/// Finding: an authorize request with a 60 KB `nonce` cost 60.8 KiB per outstanding code.
#[tokio::test]
async fn huge_nonce_is_refused() {
    let env = start_with(auto_consent()).await;
    let nonce = "n".repeat(60_000);
    let resp = env.get_authorize(&env.api, &[("nonce", &nonce)]).await;
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q.get("error").map(String::as_str), Some("INVALID_REQUEST"));
    assert!(q["error_description"].contains("nonce"), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("st4te"));
    assert!(!q.contains_key("code"), "{q:?}");
    assert_eq!(stat(&env, "codes_outstanding").await, 0);

    // At the cap a nonce is still accepted, and the code works.
    let nonce = "n".repeat(1024);
    let resp = env.get_authorize(&env.api, &[("nonce", &nonce)]).await;
    let q = query_of(&location(&resp).unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    let (status, body) = env.exchange(&q["code"], None).await;
    assert_eq!(status, 200, "{body}");
}

/// Finding: a huge `state` was kept with every waiting consent page (1.2 GB at the cap).
#[tokio::test]
async fn huge_state_on_consent_is_refused() {
    let env = start().await;
    let browser = client(true);
    let state = "s".repeat(60_000);
    let resp = env.get_authorize(&browser, &[("state", &state)]).await;
    assert_eq!(resp.status(), 302, "no consent page for an over-long state");
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q.get("error").map(String::as_str), Some("INVALID_REQUEST"));
    assert!(q["error_description"].contains("state"), "{q:?}");
    assert!(!q.contains_key("state"), "an over-long state is not echoed");
    assert_eq!(stat(&env, "pending_consents").await, 0);

    // A long but allowed state still gets the consent page and comes back intact.
    let state = "s".repeat(2048);
    let users = env.user_ids();
    let q = env.login(&browser, &users[0], &[("state", &state)]).await;
    assert_eq!(q.get("state"), Some(&state));
    assert!(q.contains_key("code"));
}

/// An over-long `redirect_uri` (a registered one plus a long query) gets the HTML page of an
/// unregistered callback URL, not a redirect.
#[tokio::test]
async fn over_long_redirect_uri_gets_the_error_page() {
    let env = start_with(auto_consent()).await;
    let redirect = format!("{CALLBACK}?x={}", "a".repeat(3000));
    let resp = env
        .get_authorize(&env.api, &[("redirect_uri", &redirect)])
        .await;
    assert_eq!(resp.status(), 400);
    assert!(location(&resp).is_none());
    assert_eq!(stat(&env, "codes_outstanding").await, 0);
}

/// Finding: outstanding codes were bounded by count only, so their memory grew with the size
/// of each request's parameters. With a byte budget, fat codes are forgotten oldest first.
#[tokio::test]
async fn outstanding_codes_are_bounded_by_bytes() {
    let config =
        Config::from_toml_str("auto_consent = true\ncodes_budget_bytes = 65536\n").unwrap();
    let env = start_with(config).await;
    let nonce = "n".repeat(1024);
    let state = "s".repeat(2048);
    let mut codes = Vec::new();
    for _ in 0..100 {
        let resp = env
            .get_authorize(&env.api, &[("nonce", &nonce), ("state", &state)])
            .await;
        let q = query_of(&location(&resp).unwrap());
        codes.push(q["code"].clone());
    }
    // Each code holds at least its nonce and redirect_uri: the budget allows at most this many.
    let outstanding = stat(&env, "codes_outstanding").await;
    assert!(outstanding >= 1);
    assert!(
        outstanding * (1024 + CALLBACK.len() as u64) <= 65_536,
        "{outstanding} codes outstanding"
    );
    // The oldest went first; the newest works.
    let (status, body) = env.exchange(&codes[0], None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = env.exchange(codes.last().unwrap(), None).await;
    assert_eq!(status, 200, "{body}");
}

/// The same for waiting consent pages: a byte budget, the oldest forgotten first.
#[tokio::test]
async fn consent_pages_are_bounded_by_bytes() {
    let config = Config::from_toml_str("pending_budget_bytes = 65536\n").unwrap();
    let env = start_with(config).await;
    let browser = client(true);
    let state = "s".repeat(2048);
    let mut pages = Vec::new();
    for _ in 0..60 {
        let resp = env.get_authorize(&browser, &[("state", &state)]).await;
        assert_eq!(resp.status(), 200);
        pages.push(resp.text().await.unwrap());
    }
    let pending = stat(&env, "pending_consents").await;
    assert!(pending >= 1);
    assert!(pending * 2048 <= 65_536, "{pending} consent pages waiting");
    let users = env.user_ids();
    let resp = env
        .answer(&browser, &pages[0], Some(&users[0]), "allow", &[])
        .await;
    assert_eq!(resp.status(), 400, "the oldest page was forgotten");
    let resp = env
        .answer(
            &browser,
            pages.last().unwrap(),
            Some(&users[0]),
            "allow",
            &[],
        )
        .await;
    assert_eq!(resp.status(), 302);
    assert!(query_of(&location(&resp).unwrap()).contains_key("code"));
}

#[tokio::test]
async fn a_huge_unknown_path_is_answered_and_journaled_short() {
    let env = start().await;
    let path = format!("/{}", "a".repeat(60_000));
    let resp = env.get(&path).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-line-request-id"));
    let b: Value = resp.json().await.unwrap();
    assert!(b["message"].is_string());
    let j = env.admin_get("/_emulator/journal?endpoint=not_found").await;
    let p = j["entries"][0]["path"].as_str().unwrap();
    assert!(p.len() < 300, "{}", p.len());
}
