//! The load-test guard: the runner refuses any target whose LINE platform is not a linelogin
//! emulator on a loopback address, before sending any load.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use linelogin::loadtest::guard::Refusal;
use linelogin::loadtest::{self, Bound, Finish, LoadTest, LoadTestError, Mode};

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
    }
}

#[tokio::test]
async fn refuses_a_relying_party_that_logs_in_with_the_real_line() {
    let (rp, hits) = relying_party(
        "https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1&state=x"
            .into(),
    )
    .await;
    let err = loadtest::run(&test_for(rp)).await.unwrap_err();
    match &err {
        LoadTestError::Refused(Refusal::AuthorizeNotLoopback(shown)) => {
            assert_eq!(shown, "https://access.line.me/oauth2/v2.1/authorize");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("development guidelines"), "{text}");
    assert!(!text.contains("state=x"), "the query is not echoed: {text}");
    assert_eq!(hits.load(Ordering::Relaxed), 1, "one probe, no load");
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

#[test]
fn the_cli_exits_1_with_one_line_citing_the_guideline() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, _hits) = rt.block_on(relying_party(
        "https://access.line.me/oauth2/v2.1/authorize?client_id=1".into(),
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args([
            "loadtest",
            "--target",
            rp.as_str(),
            "--flows",
            "10",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("linelogin: refusing to load-test"),
        "{stderr}"
    );
    assert!(
        stderr.contains("LINE Login development guidelines"),
        "{stderr}"
    );
    drop(rt);
}

#[test]
fn the_cli_rejects_bad_usage_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args([
            "loadtest",
            "--target",
            "http://127.0.0.1:1/",
            "--flows",
            "1",
            "--duration",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args([
            "loadtest",
            "--target",
            "http://127.0.0.1:1/",
            "--concurrency",
            "0",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_server_refuses_to_start_against_the_real_line_during_a_load_test() {
    let dir = std::env::temp_dir().join(format!("linelogin-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
database_url = "sqlite://{}"
token_encryption_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
[line]
channel_id = "1234567890"
channel_secret = "0123456789abcdef0123456789abcdef"
auth_url = "https://access.line.me"
api_url = "https://api.line.me"
[logs]
dir = "{}"
"#,
            dir.join("db.sqlite").display(),
            dir.join("logs").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("LINELOGIN_LOAD_TEST", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("LINELOGIN_LOAD_TEST"), "{stderr}");
    assert!(
        !stderr.contains("0123456789abcdef0123456789abcdef"),
        "no secret in the error"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
