//! CRASH-02 with a real abort: the server binary runs as a child with a failpoint that aborts
//! the process right after the unregister transaction commits; after a restart the job
//! completes.

use std::time::Duration;

use crate::fake_line::FakeLine;
use crate::harness::{
    Harness, Opts, browser, free_port, login_at_base, server_command, unregister_at_base,
};

const USER: &str = "U00000000000000000000000000000001";

#[tokio::test]
async fn crash02_abort_after_commit_then_restart_completes_the_job() {
    let line = FakeLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db_url = format!("sqlite://{}", db.display());
    let mut child = server_command(port, &db_url, &line.url, &dir.path().join("logs"))
        .env("LINELOGIN_FAILPOINT", "unregister-after-commit")
        .spawn()
        .unwrap();
    let c = browser(None);
    let mut up = false;
    for _ in 0..600 {
        if c.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "child server started");
    login_at_base(&c, &base).await;
    let r = unregister_at_base(&c, &base).await;
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
    let h = Harness::start_with(line, Opts::default().db(db)).await;
    h.assert_deauthorized(USER, &[204]).await;
    assert!(h.account(USER).await.is_none());
    h.stop().await;
}
