//! Full flows: login, /me, /api/me, logout, unregister, unlink, refresh, faults, restarts.

use std::time::Duration;

use crate::fake_line::FakeLine;
use crate::harness::{
    Harness, Opts, clock_now, cookie_value, get_json, location, sixty_day_sessions,
};

const USER: &str = "U00000000000000000000000000000001";

#[tokio::test]
async fn login_then_me_api_me_and_logout() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let (status, me) = h.api_me(&c).await;
    assert_eq!(status, 200);
    assert_eq!(me["userId"], USER);
    assert_eq!(me["displayName"], "Name of U0000");
    assert_eq!(me["linked"], true);
    let html = h.page(&c, "/me").await;
    assert!(html.contains("Name of U0000") && html.contains(USER));
    assert!(h.line.is_authorized(USER));

    let csrf = h.csrf(&c, "/me").await;
    let r = h.post_form(&c, "/logout", Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    assert_eq!(h.api_me(&c).await.0, 401);
    assert_eq!(
        h.line.calls("/oauth2/v2.1/revoke"),
        vec![200],
        "access token revoked at logout"
    );
    h.stop().await;
}

#[tokio::test]
async fn session_ids_are_time_ordered_and_ids_from_before_still_sign_in() {
    use linelogin_server::crypto::{hash_id, random_id};
    use linelogin_server::session::session_key;

    let h = Harness::start().await;
    let c = h.client();
    let before = h.state.now_ms();
    let r = h.login(&c).await;
    let cookie = cookie_value(&r, "ll_session").unwrap();
    let created = i64::from_str_radix(&cookie[..12], 16).unwrap();
    assert!(
        before <= created && created <= h.state.now_ms(),
        "{created}"
    );
    let stored = h
        .state
        .store()
        .session(&session_key(&cookie), h.state.now_ms())
        .await;
    assert!(stored.unwrap().is_some(), "kept under its time-ordered key");

    // A session whose id was issued before ids had a time prefix: kept under the id's hash.
    let old_id = random_id(32);
    let now = h.state.now_ms();
    h.state
        .store()
        .complete_login(&crate::store::login(USER, &hash_id(&old_id), now))
        .await
        .unwrap();
    let (status, me) = h.api_me_as(&old_id).await;
    assert_eq!(status, 200);
    assert_eq!(me["userId"], USER);
    h.stop().await;
}

#[tokio::test]
async fn japanese_pages_by_accept_language() {
    let h = Harness::start().await;
    let c = h.client();
    let html = h.page_in(&c, "/", "ja,en;q=0.5").await;
    assert!(html.contains("lang=\"ja\"") && html.contains("LINEでログイン"));
    let html = h.page_in(&c, "/terms", "ja").await;
    assert!(html.contains("LINEヤフー株式会社"));
    let html = h.page(&c, "/terms").await;
    assert!(html.contains("LY Corporation will be notified"));
    h.stop().await;
}

#[tokio::test]
async fn unregister_deletes_account_and_deauthorizes_at_line() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let page = h.page(&c, "/account/unregister").await;
    assert!(
        page.contains("LY Corporation will be notified"),
        "notice next to the button"
    );
    let csrf = crate::harness::extract_csrf(&page).unwrap();
    let r = h.post_form(&c, "/account/unregister", Some(&csrf)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Your account is deleted"));
    let health = h.wait_outbox_empty().await;
    assert_eq!(health["deauthorization"]["failed"], 0);
    assert!(
        !h.line.is_authorized(USER),
        "LINE no longer lists the app for the user"
    );
    assert_eq!(h.line.calls("/user/v1/deauthorize"), vec![204]);
    assert_eq!(h.api_me(&c).await.0, 401);
    let account = h.account(USER).await;
    assert!(account.is_none(), "account deleted");
    h.stop().await;
}

#[tokio::test]
async fn unlink_keeps_account_and_login_links_again() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let id_before = h.account(USER).await.unwrap().id;
    let r = h.submit(&c, "/account/unlink").await;
    assert_eq!(r.status(), 200);
    h.assert_deauthorized(USER, &[204]).await;
    assert_eq!(h.api_me(&c).await.0, 401, "sessions ended");
    let account = h.account_by_id(&id_before).await.unwrap();
    assert_eq!(
        account.status,
        linelogin_server::store::AccountStatus::Unlinked
    );

    h.login(&c).await;
    let (_, me) = h.api_me(&c).await;
    assert_eq!(me["linked"], true);
    let id_after = h.account(USER).await.unwrap().id;
    assert_eq!(id_before, id_after, "same account linked again");
    assert!(h.line.is_authorized(USER));
    h.stop().await;
}

#[tokio::test]
async fn unregister_refreshes_an_expired_token_first() {
    let clock = clock_now();
    let opts = Opts::default().clock(&clock).config(sixty_day_sessions);
    let h = Harness::start_with(FakeLine::start().await, opts).await;
    let c = h.client();
    h.login(&c).await;
    // 31 days later on both clocks: the 30-day access token has expired.
    h.line.shift_clock(31 * 86400);
    clock.advance(Duration::from_secs(31 * 86400));
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    h.wait_outbox_empty().await;
    assert_eq!(
        h.line.calls("/oauth2/v2.1/token"),
        vec![200, 200],
        "code exchange, then refresh"
    );
    assert_eq!(h.line.calls("/user/v1/deauthorize"), vec![204]);
    assert!(!h.line.is_authorized(USER));
    h.stop().await;
}

#[tokio::test]
async fn deauthorize_survives_500_then_429_then_succeeds() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    h.line.fault("/user/v1/deauthorize", &[500, 429]);
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    h.assert_deauthorized(USER, &[500, 429, 204]).await;
    h.stop().await;
}

#[tokio::test]
async fn crash02_job_committed_before_a_crash_completes_after_restart() {
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let h = Harness::start_with(
        line,
        Opts {
            worker: false,
            db: Some(db.clone()),
            ..Opts::default()
        },
    )
    .await;
    let c = h.client();
    h.login(&c).await;
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    let health: serde_json::Value = get_json(h.url("/healthz")).await;
    assert_eq!(
        health["deauthorization"]["pending"], 1,
        "job is durable before anything is sent"
    );
    assert!(h.line.calls("/user/v1/deauthorize").is_empty());
    // "Crash": the process goes away without the worker ever running.
    let (line, db, _) = h.stop().await;
    let h = Harness::start_with(line, Opts::default().db(db)).await;
    h.assert_deauthorized(USER, &[204]).await;
    h.stop().await;
}

#[tokio::test]
async fn out07_without_a_usable_token_unregister_goes_through_a_fresh_login() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    let account = h.account(USER).await.unwrap();
    h.state.store().delete_tokens(&account.id).await.unwrap();
    let r = h.submit(&c, "/account/unregister").await;
    assert_eq!(r.status(), 303, "sent to LINE first");
    let authorize = location(&r);
    assert!(authorize.starts_with(&h.line.url));
    assert!(
        h.account_by_id(&account.id).await.is_some(),
        "nothing deleted yet"
    );
    let r = c.get(&authorize).send().await.unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Your account is deleted"));
    h.assert_deauthorized(USER, &[204]).await;
    assert!(h.account_by_id(&account.id).await.is_none());
    h.stop().await;
}

#[tokio::test]
async fn crash04_relogin_while_deauthorization_pending_keeps_the_new_link() {
    let h = Harness::start_with(
        FakeLine::start().await,
        Opts {
            worker: false,
            ..Opts::default()
        },
    )
    .await;
    let c = h.client();
    h.login(&c).await;
    assert_eq!(h.submit(&c, "/account/unregister").await.status(), 200);
    // The user comes back before the job is sent.
    h.login(&c).await;
    assert_eq!(h.api_me(&c).await.0, 200);
    // The stale job must not revoke the new link.
    let step = linelogin_server::deauth::worker::run_once(&h.state).await;
    assert_eq!(step, linelogin_server::deauth::worker::Step::Idle);
    assert!(h.line.calls("/user/v1/deauthorize").is_empty());
    assert!(h.line.is_authorized(USER));
    h.stop().await;
}

#[tokio::test]
async fn out06_already_invalid_token_finishes_the_job() {
    let h = Harness::start().await;
    let c = h.client();
    h.login(&c).await;
    h.line.unlink_in_app(USER);
    assert_eq!(h.submit(&c, "/account/unlink").await.status(), 200);
    let health = h.wait_outbox_empty().await;
    assert_eq!(health["deauthorization"]["failed"], 0);
    assert_eq!(h.line.calls("/user/v1/deauthorize"), vec![400]);
    h.stop().await;
}

#[tokio::test]
async fn out01_line_failure_at_callback_is_a_503_with_retry_after() {
    let h = Harness::start().await;
    let c = h.client();
    h.line.fault("/oauth2/v2.1/token", &[503]);
    let r = h.login_with(&c, "").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.text().await.unwrap().contains("LINE is busy"));
    assert_eq!(
        h.line.calls("/oauth2/v2.1/token"),
        vec![503],
        "the code exchange is never retried"
    );
    assert_eq!(h.api_me(&c).await.0, 401);
    h.stop().await;
}
