//! The load-test guard: the runner refuses any target whose LINE platform is not a linelogin
//! emulator on a loopback address, before sending any load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use line_loadtest::guard::Refusal;
use line_loadtest::{self as loadtest, Bound, Finish, LoadTest, LoadTestError, Mode};

/// A relying party whose /login redirects to `authorize`; counts the requests it gets.
async fn relying_party(authorize: String) -> (url::Url, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/login",
        get(move || {
            let authorize = authorize.clone();
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::Relaxed);
                (StatusCode::FOUND, [(header::LOCATION, authorize)]).into_response()
            }
        }),
    );
    (serve(app).await, hits)
}

async fn serve(app: Router) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/").parse().unwrap()
}

fn test_for(target: url::Url) -> LoadTest {
    LoadTest {
        target,
        start_path: "/login".into(),
        bound: Bound::Flows(100),
        concurrency: 4,
        mode: Mode::Closed,
        finish: Finish::None,
        request_timeout: Duration::from_secs(5),
        progress: false,
        allow_remote_target: false,
    }
}

#[tokio::test]
async fn refuses_a_relying_party_that_logs_in_with_the_real_line() {
    let (rp, hits) = relying_party(
        "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state=x"
            .into(),
    )
    .await;
    // Refused whether or not remote targets are allowed: LINE is known by name.
    for allow_remote_target in [false, true] {
        let test = LoadTest {
            allow_remote_target,
            ..test_for(rp.clone())
        };
        let err = loadtest::run(&test).await.unwrap_err();
        match &err {
            LoadTestError::Refused(Refusal::AuthorizeIsLine(shown)) => {
                assert_eq!(shown, "https://access.line.me/oauth2/v2.1/authorize");
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("development guidelines"), "{text}");
        assert!(!text.contains("state=x"), "the query is not echoed: {text}");
    }
    assert_eq!(hits.load(Ordering::Relaxed), 2, "one probe a run, no load");
}

#[tokio::test]
async fn a_remote_target_still_needs_an_emulator() {
    // Allowing remote targets lifts only the loopback condition: an authorization endpoint
    // that does not answer the emulator's admin API is still refused, before any load.
    let not_emulator =
        serve(Router::new().route("/oauth2/v2.1/authorize", get(|| async { "hi" }))).await;
    let (rp, hits) = relying_party(format!("{not_emulator}oauth2/v2.1/authorize?x=1")).await;
    let test = LoadTest {
        allow_remote_target: true,
        ..test_for(rp)
    };
    let err = loadtest::run(&test).await.unwrap_err();
    assert!(
        matches!(err, LoadTestError::Refused(Refusal::NotAnEmulator(..))),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn an_unreachable_target_is_said_in_plain_words() {
    // A port nothing listens on: bind one, then close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = loadtest::run(&test_for(
        format!("http://127.0.0.1:{port}/").parse().unwrap(),
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("connection refused: nothing is listening there"),
        "{text}"
    );
    assert!(!text.contains("error sending request"), "{text}");
}

#[tokio::test]
async fn refuses_a_loopback_authorize_endpoint_that_is_not_an_emulator() {
    let not_emulator =
        serve(Router::new().route("/oauth2/v2.1/authorize", get(|| async { "hi" }))).await;
    let (rp, hits) = relying_party(format!("{not_emulator}oauth2/v2.1/authorize?x=1")).await;
    let err = loadtest::run(&test_for(rp)).await.unwrap_err();
    assert!(
        matches!(err, LoadTestError::Refused(Refusal::NotAnEmulator(..))),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn refuses_non_loopback_targets_without_sending_anything() {
    for target in [
        "http://10.1.2.3:8080/",
        "https://example.com/",
        "http://localhost.evil.example/",
    ] {
        let err = loadtest::run(&test_for(target.parse().unwrap()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoadTestError::Refused(Refusal::TargetNotLoopback(_))),
            "{target}: {err:?}"
        );
    }
}

#[tokio::test]
async fn refuses_a_target_that_does_not_redirect() {
    let rp = serve(Router::new().route("/login", get(|| async { "no redirect here" }))).await;
    let err = loadtest::run(&test_for(rp)).await.unwrap_err();
    assert!(
        matches!(err, LoadTestError::Refused(Refusal::NoRedirect(_, 200))),
        "{err:?}"
    );
}
