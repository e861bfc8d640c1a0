//! CRASH-02 with a real abort: the server binary runs as a child with a failpoint that aborts
//! the process right after the unregister transaction commits; after a restart the job
//! completes.

use std::process::Stdio;
use std::time::Duration;

use crate::fake_line::{CHANNEL_ID, CHANNEL_SECRET, FakeLine};
use crate::harness::{Harness, KEY, Opts, extract_csrf, location};

const USER: &str = "U00000000000000000000000000000001";

#[tokio::test]
async fn crash02_abort_after_commit_then_restart_completes_the_job() {
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_linelogin-server"))
        .env("LINELOGIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("LINELOGIN_PUBLIC_URL", &base)
        .env(
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("LINELOGIN_TOKEN_ENCRYPTION_KEY", KEY)
        .env("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID)
        .env("LINELOGIN_LINE__CHANNEL_SECRET", CHANNEL_SECRET)
        .env("LINELOGIN_LINE__AUTH_URL", &line.url)
        .env("LINELOGIN_LINE__API_URL", &line.url)
        .env("LINELOGIN_LOGS__DIR", dir.path().join("logs"))
        .env("LINELOGIN_FAILPOINT", "unregister-after-commit")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..600 {
        if c.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "child server started");
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    let r = c.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let page = c
        .get(format!("{base}/account/unregister"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = extract_csrf(&page).unwrap();
    let r = c
        .post(format!("{base}/account/unregister"))
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}"))
        .send()
        .await;
    assert!(r.is_err(), "the process died before answering");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "aborted");
    assert!(
        line.calls("/user/v1/deauthorize").is_empty(),
        "nothing was sent before the crash"
    );
    assert!(line.is_authorized(USER));

    // Restart over the same database: the worker finds the committed job and completes it.
    let h = Harness::start_with(
        line,
        Opts {
            db: Some(db),
            ..Opts::default()
        },
    )
    .await;
    h.wait_outbox_empty().await;
    assert_eq!(h.line.calls("/user/v1/deauthorize"), vec![204]);
    assert!(!h.line.is_authorized(USER));
    assert!(
        h.state
            .store()
            .account_by_sub("https://access.line.me", USER)
            .await
            .unwrap()
            .is_none()
    );
    h.stop().await;
}
