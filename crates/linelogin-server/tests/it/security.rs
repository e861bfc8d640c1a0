//! The security catalogue's attacks against the running server (IDs in the test names).

use crate::harness::{Harness, cookie_value, extract_csrf, location, query_param, set_cookies};

const USER: &str = "U00000000000000000000000000000001";

/// Starts a login and returns (authorize URL, callback URL from LINE).
async fn begin(h: &Harness, c: &reqwest::Client, query: &str) -> (String, String) {
    let r = h.get(c, &format!("/login{query}")).await;
    let authorize = location(&r);
    let r = c.get(&authorize).send().await.unwrap();
    (authorize, location(&r))
}

fn replace_state(callback: &str, state: &str) -> String {
    let i = callback.find("&state=").unwrap();
    format!("{}&state={state}", &callback[..i])
}

#[tokio::test]
async fn sp01_state_mismatch_offers_retry_with_disable_auto_login() {
    let h = Harness::start().await;
    let c = h.client();
    let (_, callback) = begin(&h, &c, "").await;
    for bad in [
        replace_state(&callback, "Wrong0123456789"),
        replace_state(&callback, ""),
        callback[..callback.find("&state=").unwrap()].to_string(),
    ] {
        let _ = begin(&h, &c, "").await;
        let r = c.get(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let html = r.text().await.unwrap();
        assert!(html.contains("href=\"/login?retry=1\""), "retry offered");
    }
    assert!(
        h.line.calls("/oauth2/v2.1/token").is_empty(),
        "no token request for an unverified state"
    );
    let r = h.get(&c, "/login?retry=1").await;
    assert!(location(&r).contains("disable_auto_login=true"));
    h.stop().await;
}

#[tokio::test]
async fn sp02_no_state_and_no_cookie_is_rejected() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.get(&c, "/callback?code=abc").await;
    assert_eq!(r.status(), 400);
    let r = h.get(&c, "/callback").await;
    assert_eq!(r.status(), 400);
    assert!(h.line.calls("/oauth2/v2.1/token").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn sp03_callback_replay_is_rejected_without_a_second_exchange() {
    let h = Harness::start().await;
    let c = h.client();
    let (_, callback) = begin(&h, &c, "").await;
    assert_eq!(c.get(&callback).send().await.unwrap().status(), 303);
    // Replayed by another client (no session): refused.
    let r = h.client().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Replayed by the same, logged-in browser (Back): sent to /me, still no second exchange.
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/me");
    assert_eq!(
        h.line.calls("/oauth2/v2.1/token"),
        vec![200],
        "exactly one exchange"
    );
    h.stop().await;
}

#[tokio::test]
async fn sp04_callback_in_another_browser_is_rejected() {
    let h = Harness::start().await;
    let attacker = h.client();
    let victim = h.client();
    let (_, callback) = begin(&h, &attacker, "").await;
    let r = victim.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        h.api_me(&victim).await.0,
        401,
        "victim not logged in as the attacker"
    );
    assert!(h.line.calls("/oauth2/v2.1/token").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn cb01_duplicate_parameters_are_rejected() {
    let h = Harness::start().await;
    let c = h.client();
    let (_, callback) = begin(&h, &c, "").await;
    let r = c
        .get(format!("{callback}&code=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(h.line.calls("/oauth2/v2.1/token").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn cb03_error_callbacks_get_a_friendly_page_never_500() {
    let h = Harness::start().await;
    let c = h.client();
    for (code, status) in [
        ("ACCESS_DENIED", 200),
        ("access_denied", 200),
        ("SERVER_ERROR", 400),
        ("WHATEVER", 400),
    ] {
        let r = h.get(&c, "/login").await;
        let authorize = location(&r);
        let state = query_param(&authorize, "state");
        let r = h.get(&c, &format!(
                "/callback?error={code}&error_description=The+resource+owner+denied&state={state}"
            )).await;
        assert_eq!(r.status().as_u16(), status, "{code}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("resource owner"),
            "description never rendered"
        );
    }
    // Without a state: the generic rejection.
    let r = h.get(&c, "/callback?error=ACCESS_DENIED").await;
    assert_eq!(r.status(), 400);
    assert!(h.line.calls("/oauth2/v2.1/token").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn cb04_error_fields_are_never_reflected() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.get(&c, "/login").await;
    let state = query_param(&location(&r), "state");
    let r = h.get(&c, &format!(
            "/callback?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error_description=%22%3E%3Csvg+onload%3Dalert(1)%3E&state={state}"
        )).await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("<svg"));
    h.stop().await;
}

#[tokio::test]
async fn rd01_next_accepts_only_relative_paths() {
    let h = Harness::start().await;
    for (next, expected) in [
        ("%2F%2Fevil.com", "/me"),
        ("%2F%5Cevil.com", "/me"),
        ("https%3A%2F%2Fevil.com", "/me"),
        ("javascript%3Aalert(1)", "/me"),
        ("%2F%252F%252Fevil.com", "/me"),
        ("%2Fterms", "/terms"),
    ] {
        let c = h.client();
        let r = h.login_with(&c, &format!("?next={next}")).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), expected, "next={next}");
    }
    h.stop().await;
}

#[tokio::test]
async fn rd02_the_callback_ignores_redirect_parameters() {
    let h = Harness::start().await;
    let c = h.client();
    let (_, callback) = begin(&h, &c, "").await;
    let r = c
        .get(format!(
            "{callback}&next=https%3A%2F%2Fevil.example&liffRedirectUri=https%3A%2F%2Fevil"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/me");
    h.stop().await;
}

#[tokio::test]
async fn rd03_authorization_url_is_built_from_config_only() {
    let h = Harness::start().await;
    let c = h.client();
    let r = c
        .get(h.url("/login?next=/x%26redirect_uri%3Dhttps://evil%26prompt%3Dnone%26state%3Dabc"))
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    let url = url::Url::parse(&location(&r)).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for key in [
        "redirect_uri",
        "state",
        "response_type",
        "client_id",
        "code_challenge",
        "nonce",
    ] {
        assert_eq!(
            pairs.iter().filter(|(k, _)| k == key).count(),
            1,
            "{key} exactly once"
        );
    }
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("redirect_uri"), h.url("/callback"));
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(get("scope").contains("openid"));
    assert!(pairs.iter().all(|(k, _)| k != "prompt"));
    h.stop().await;
}

#[tokio::test]
async fn ses01_session_fixation_planted_id_is_useless_and_rotated() {
    let h = Harness::start().await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let planted = "attackerchosen0123456789";
    let r = c
        .get(h.url("/login"))
        .header("cookie", format!("ll_session={planted}"))
        .send()
        .await
        .unwrap();
    let pre = cookie_value(&r, "ll_login").unwrap();
    let authorize = location(&r);
    let r = c.get(&authorize).send().await.unwrap();
    let callback = location(&r);
    let r = c
        .get(&callback)
        .header("cookie", format!("ll_login={pre}; ll_session={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let first = cookie_value(&r, "ll_session").unwrap();
    assert!(!first.contains(planted), "a new id is issued");
    assert_eq!(h.api_me_as(planted).await.0, 401);
    assert_eq!(h.api_me_as(&first).await.0, 200, "the new id works");
    let c = h.client();
    // A second login in the same browser rotates the id again and ends the old one.
    let r = h.get(&c, "/login").await;
    let pre = cookie_value(&r, "ll_login").unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    let r = c
        .get(location(&r))
        .header("cookie", format!("ll_login={pre}; ll_session={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        h.api_me_as(&first).await.0,
        401,
        "old session ended at re-login"
    );
    h.stop().await;
}

#[tokio::test]
async fn ses02_cookie_attributes() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.get(&c, "/login").await;
    let pre = set_cookies(&r);
    let pre = pre.iter().find(|c| c.starts_with("ll_login=")).unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(pre.contains(attr), "{pre} has {attr}");
    }
    assert!(!pre.contains("Domain"));
    let r = c.get(location(&r)).send().await.unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("ll_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{session} has {attr}");
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("ll_login=;") && c.contains("Max-Age=0")),
        "pre-login cookie deleted"
    );
    let id = cookie_value(&r, "ll_session").unwrap();
    assert!(id.len() >= 43, "≥ 256-bit id");
    assert!(!id.contains(USER));
    h.stop().await;
}

#[tokio::test]
async fn ses03_session_only_from_the_cookie_and_tampering_is_anonymous() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.login(&c).await;
    let id = cookie_value(&r, "ll_session").unwrap();
    let fresh = h.client();
    assert_eq!(
        h.get(&fresh, &format!("/api/me?session={id}"))
            .await
            .status(),
        401
    );
    let mut tampered = id.clone();
    tampered.pop();
    tampered.push('A');
    assert!(h.api_me_as(&tampered).await.0 == 401 || tampered == id);
    h.stop().await;
}

#[tokio::test]
async fn csrf01_cross_site_unregister_is_refused() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let r = h
        .post_with(
            &c,
            "/account/unregister",
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            String::new(),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(h.api_me(&c).await.0, 200, "nothing changed");
    assert!(
        h.line.calls("/oauth2/v3/token").is_empty()
            && h.line.calls("/user/v1/deauthorize").is_empty()
    );
    h.stop().await;
}

#[tokio::test]
async fn csrf02_token_matrix_on_logout_unlink_and_unregister() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let token = h.csrf(&c, "/me").await;
    let other = h.client();
    h.line.set_user("U00000000000000000000000000000002");
    h.login(&other).await;
    let other_token = h.csrf(&other, "/me").await;
    assert_ne!(token, other_token);
    for path in ["/logout", "/account/unlink", "/account/unregister"] {
        // Missing, from another session, only in the query string.
        assert_eq!(
            h.post_form(&c, path, None).await.status(),
            403,
            "{path} missing"
        );
        assert_eq!(
            h.post_form(&c, path, Some(&other_token)).await.status(),
            403,
            "{path} foreign token"
        );
        let r = h
            .post_with(
                &c,
                &format!("{path}?csrf_token={token}"),
                &[("origin", h.base.as_str())],
                String::new(),
            )
            .await;
        assert_eq!(r.status(), 403, "{path} query-only token");
        // Right token, foreign origin.
        let r = h
            .post_with(
                &c,
                path,
                &[("origin", "https://evil.example")],
                format!("csrf_token={token}"),
            )
            .await;
        assert_eq!(r.status(), 403, "{path} foreign origin");
        // Right token, opaque origin from another site.
        let r = h
            .post_with(
                &c,
                path,
                &[("origin", "null"), ("sec-fetch-site", "cross-site")],
                format!("csrf_token={token}"),
            )
            .await;
        assert_eq!(r.status(), 403, "{path} opaque cross-site origin");
    }
    assert_eq!(
        h.api_me(&c).await.0,
        200,
        "still logged in, nothing changed"
    );
    assert!(h.line.calls("/user/v1/deauthorize").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn csrf03_safe_methods_change_nothing() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    assert_eq!(h.get(&c, "/logout").await.status(), 405);
    let r = h.get(&c, "/account/unregister").await;
    assert_eq!(r.status(), 200, "GET only shows the confirmation");
    assert_eq!(
        c.post(h.url("/callback")).send().await.unwrap().status(),
        405
    );
    assert_eq!(h.api_me(&c).await.0, 200);
    let r = c
        .request(reqwest::Method::OPTIONS, h.url("/account/unregister"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    h.stop().await;
}

#[tokio::test]
async fn csrf04_and_rd04_security_headers_on_every_page() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    for path in [
        "/",
        "/me",
        "/account/unregister",
        "/account/unlink",
        "/terms",
        "/callback?code=x&state=y",
        "/nope",
    ] {
        let r = h.get(&c, path).await;
        let hd = r.headers();
        let csp = hd.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(hd.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(hd.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(hd.get("cache-control").unwrap(), "no-store");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script"), "no inline script on {path}");
    }
    h.stop().await;
}

#[tokio::test]
async fn login_required_pages_redirect_and_api_says_401() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.get(&c, "/me").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=/me");
    let r = h.get(&c, "/api/me").await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "login_required");
    let r = h.post_form(&c, "/account/unregister", Some("x")).await;
    assert_eq!(r.status(), 401);
    let r = h.get(&c, "/does-not-exist").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("There is no such page"));
    h.stop().await;
}

#[tokio::test]
async fn log01_no_secret_in_pages_or_database() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let mut seen = String::new();
    for path in [
        "/",
        "/me",
        "/api/me",
        "/account/unregister",
        "/terms",
        "/healthz",
    ] {
        seen.push_str(&h.page(&c, path).await);
    }
    let csrf = extract_csrf(&seen).unwrap();
    let r = h.post_form(&c, "/account/unlink", Some(&csrf)).await;
    seen.push_str(&r.text().await.unwrap());
    h.wait_outbox_empty().await;
    assert!(!seen.contains("CANARY"), "no token or secret in any page");
    let (_, db, _dir) = h.stop().await;
    let mut dump = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(db.with_extension("db-wal")) {
        dump.extend(wal);
    }
    assert!(
        !dump.windows(6).any(|w| w == b"CANARY"),
        "tokens are encrypted at rest"
    );
}

#[tokio::test]
async fn csrf05_same_origin_post_with_opaque_origin_is_accepted() {
    // Under Referrer-Policy: no-referrer a browser sends `Origin: null` on its own forms;
    // Fetch Metadata then proves the post is same-origin.
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let token = h.csrf(&c, "/me").await;
    let r = h
        .post_with(
            &c,
            "/logout",
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
            format!("csrf_token={token}"),
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(h.api_me(&c).await.0, 401);
    h.stop().await;
}

#[tokio::test]
async fn ses05_idle_and_absolute_timeouts_are_enforced_server_side() {
    use std::time::Duration;
    let clock = crate::harness::clock_now();
    let opts = crate::harness::Opts::default().clock(&clock).config(|c| {
        c.session.ttl_seconds = 600;
        c.session.idle_seconds = 300;
    });
    let h = Harness::start_with(crate::fake_line::FakeLine::start().await, opts).await;
    // Idle: nothing for longer than the idle timeout.
    let c = h.client();
    h.login(&c).await;
    clock.advance(Duration::from_secs(301));
    assert_eq!(h.api_me(&c).await.0, 401, "idle timeout");
    // Absolute: active every 4 minutes, still ends after the lifetime.
    let c = h.client();
    h.login(&c).await;
    for _ in 0..2 {
        clock.advance(Duration::from_secs(240));
        assert_eq!(h.api_me(&c).await.0, 200);
    }
    clock.advance(Duration::from_secs(150));
    assert_eq!(h.api_me(&c).await.0, 401, "absolute timeout");
    h.stop().await;
}

#[tokio::test]
async fn ses06_unregister_ends_every_session_of_the_user() {
    let h = Harness::start().await;
    let phone = h.client();
    let laptop = h.client();
    h.login(&phone).await;
    h.login(&laptop).await;
    assert_eq!(h.submit(&laptop, "/account/unregister").await.status(), 200);
    assert_eq!(h.api_me(&laptop).await.0, 401);
    assert_eq!(
        h.api_me(&phone).await.0,
        401,
        "the other browser is logged out too"
    );
    h.wait_outbox_empty().await;
    h.stop().await;
}

#[tokio::test]
async fn idt09_nonce_replay_is_rejected_before_any_further_call() {
    let h = Harness::start().await;
    let c = h.client();
    // A first login; remember its nonce.
    let r = h.get(&c, "/login").await;
    let old_nonce = query_param(&location(&r), "nonce");
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(c.get(location(&r)).send().await.unwrap().status(), 303);
    // LINE (or an attacker in the middle) now answers a new login with the old nonce.
    h.line.inner.lock().unwrap().nonce_override = Some(old_nonce);
    let other = h.client();
    let r = h.login_with(&other, "").await;
    assert_eq!(r.status(), 401);
    assert!(
        set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("ll_session=")),
        "no session"
    );
    let journal = h.line.journal();
    assert_eq!(
        journal.last().map(|(_, path, _)| path.as_str()),
        Some("/oauth2/v2.1/token"),
        "no call after the bad ID token: {journal:?}"
    );
    assert_eq!(h.api_me(&other).await.0, 401);
    h.stop().await;
}

#[tokio::test]
async fn idt11_profile_of_another_user_is_rejected() {
    let h = Harness::start().await;
    {
        let mut line = h.line.inner.lock().unwrap();
        // Without a name in the ID token the server asks the profile endpoint, which answers
        // for someone else.
        line.id_token_without_name = true;
        line.profile_user_override = Some("U0000000000000000000000000000beef".into());
    }
    let c = h.client();
    let r = h.login_with(&c, "").await;
    assert_eq!(r.status(), 401);
    assert_eq!(h.api_me(&c).await.0, 401);
    assert!(h.account(USER).await.is_none(), "nothing persisted");
    assert_eq!(h.line.calls("/v2/profile"), vec![200]);
    h.stop().await;
}

#[tokio::test]
async fn the_id_token_name_spares_the_profile_call() {
    let h = Harness::start().await;
    let c = h.client();
    let r = h.login_with(&c, "").await;
    assert_eq!(r.status(), 303);
    let (status, me) = h.api_me(&c).await;
    assert_eq!(status, 200);
    assert_eq!(me["displayName"], format!("Name of {}", &USER[..5]));
    assert!(
        h.line.calls("/v2/profile").is_empty(),
        "the verified ID token had the name"
    );
    h.stop().await;
}

/// Posts the right CSRF token to `path` with exactly `headers` (plus the session cookie).
async fn post_with(
    h: &Harness,
    c: &reqwest::Client,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = c.post(h.url(path)).body(format!("csrf_token={token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Every state-changing POST, with a valid token, refuses the request `headers` describe,
/// and nothing changes.
async fn refused_on_every_post(headers: &[(&str, &str)], what: &str) {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let token = h.csrf(&c, "/me").await;
    for path in ["/logout", "/account/unlink", "/account/unregister"] {
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (*k, v.replace("{base}", &h.base)))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_with(&h, &c, path, &token, &headers).await;
        assert_eq!(r.status(), 403, "{path}: {what}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("did not come from our own page"),
            "{path}: a clear 403 page"
        );
        assert_eq!(h.api_me(&c).await.0, 200, "{path}: still logged in");
    }
    assert!(h.line.calls("/user/v1/deauthorize").is_empty());
    assert!(h.state.limits().rejections.csrf() >= 3);
    h.stop().await;
}

#[tokio::test]
async fn post_without_origin_referer_or_fetch_site_is_refused() {
    // Finding: a POST with a valid csrf_token and none of Origin, Referer, Sec-Fetch-Site acted.
    refused_on_every_post(
        &[("content-type", "application/x-www-form-urlencoded")],
        "no Origin, Referer or Sec-Fetch-Site",
    )
    .await;
}

#[tokio::test]
async fn post_with_text_plain_body_is_refused() {
    // Finding: a text/plain body (a CORS "simple request" any site can send) acted.
    refused_on_every_post(
        &[
            ("content-type", "text/plain"),
            ("origin", "{base}"),
            ("sec-fetch-site", "same-origin"),
        ],
        "text/plain body",
    )
    .await;
    refused_on_every_post(
        &[("origin", "{base}"), ("sec-fetch-site", "same-origin")],
        "no content type",
    )
    .await;
}

#[tokio::test]
async fn cross_site_fetch_site_is_refused() {
    for (headers, what) in [
        (
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("sec-fetch-site", "cross-site"),
            ][..],
            "cross-site, no Origin",
        ),
        (
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("referer", "{base}/me"),
                ("sec-fetch-site", "cross-site"),
            ][..],
            "cross-site with our Referer",
        ),
    ] {
        refused_on_every_post(headers, what).await;
    }
}

#[tokio::test]
async fn foreign_referer_without_origin_is_refused() {
    refused_on_every_post(
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("referer", "https://evil.example/page"),
        ],
        "foreign Referer, no Origin",
    )
    .await;
}

#[tokio::test]
async fn browser_like_posts_are_accepted() {
    // Origin + Sec-Fetch-Site (current browsers), and Referer alone (older ones).
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let token = h.csrf(&c, "/me").await;
    let referer = format!("{}/me", h.base);
    let r = post_with(
        &h,
        &c,
        "/logout",
        &token,
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
            ("referer", &referer),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "same-origin Referer");
    assert_eq!(h.api_me(&c).await.0, 401);
    // Without a session, logout is a no-op redirect, after the same header checks.
    let r = h.post_form(&c, "/logout", None).await;
    assert_eq!(r.status(), 303);
    let r = post_with(&h, &c, "/logout", "x", &[("content-type", "text/plain")]).await;
    assert_eq!(r.status(), 403);
    h.stop().await;
}
