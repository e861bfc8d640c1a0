//! The composition root (`serve::start`): one function gives every binary its guideline logs
//! and their retention, its store, its worker when configured, and its purge always; stopping
//! the server stops all of them.

use std::time::Duration;

use linelogin_server::serve::{self, StartOptions};
use linelogin_server::state::{AppState, StartError};

use crate::fake_line::FakeLine;
use crate::harness::{bind, config_with};

#[tokio::test]
async fn an_instance_without_the_worker_still_purges_expired_rows() {
    // Finding: the purge lived in the deauthorization worker's loop, so an instance with
    // `[deauth] worker = false` never purged.
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, base) = bind().await;
    let config = config_with(&base, &line.url, &dir.path().join("ll.db"), |c| {
        c.deauth.worker = false;
    });
    let state = AppState::builder(&config).build().await.unwrap();
    // A pending login that expired long ago (Unix ms 1).
    state
        .store()
        .put_pending_login("expired", b"x", 1)
        .await
        .unwrap();
    let server = serve::start_on(state.clone(), listener).unwrap();
    assert!(!server.runs_worker());
    let mut gone = false;
    for _ in 0..100 {
        // Asked as of time 0, an unpurged row would still be there.
        if state
            .store()
            .take_pending_login("expired", 0)
            .await
            .unwrap()
            .is_none()
        {
            gone = true;
            break;
        }
        // Still there (and taken now): put it back and look again after a while.
        state
            .store()
            .put_pending_login("expired", b"x", 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    assert!(gone, "the purge ran without the worker");
}

#[tokio::test]
async fn start_writes_the_guideline_logs_and_stop_stops_everything() {
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let (listener, base) = bind().await;
    let config = config_with(&base, &line.url, &dir.path().join("ll.db"), |c| {
        c.logs.dir = logs.clone();
    });
    let server = serve::start(
        &config,
        StartOptions {
            listener: Some(listener),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(server.runs_worker());
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    server.stop().await;
    let written = std::fs::read_to_string(logs.join("authorization-request.log")).unwrap();
    assert!(written.contains("/oauth2/v2.1/authorize"), "{written}");
    // Stopped: nothing listens any more.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

#[tokio::test]
async fn start_says_when_the_log_directory_cannot_be_opened() {
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let config = config_with(
        "http://127.0.0.1:1",
        &line.url,
        &dir.path().join("ll.db"),
        |c| c.logs.dir = not_a_dir,
    );
    let err = serve::start(&config, StartOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Logs { .. }), "{err}");
    assert!(err.to_string().contains("guideline logs"), "{err}");
}
