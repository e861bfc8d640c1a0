//! `linelogin serve` with `[metrics] listen` and `LINELOGIN_LOG_FORMAT=json`: it prints the
//! metrics address, serves `/metrics` there, and writes one JSON request line per request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::KillOnDrop;

/// The JSON log line of the request `id` (its `request_id`), among `log`'s lines.
fn request_line(log: &str, id: &str) -> serde_json::Value {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == id)
        .unwrap_or_else(|| panic!("no JSON line for request {id} in:\n{log}"))
}

#[test]
fn serve_prints_the_metrics_address_and_logs_requests_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_linelogin"))
            .arg("serve")
            .env_clear()
            .env("LINELOGIN_LISTEN", "127.0.0.1:0")
            .env("LINELOGIN_PUBLIC_URL", "http://127.0.0.1:1")
            .env(
                "LINELOGIN_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            )
            .env(
                "LINELOGIN_TOKEN_ENCRYPTION_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("LINELOGIN_LINE__CHANNEL_ID", "1234567890")
            .env(
                "LINELOGIN_LINE__CHANNEL_SECRET",
                "0123456789abcdef0123456789abcdef",
            )
            .env("LINELOGIN_LOGS__DIR", dir.path().join("logs"))
            .env("LINELOGIN_METRICS__LISTEN", "127.0.0.1:0")
            .env("LINELOGIN_LOG", "info,linelogin_server::request=debug")
            .env("LINELOGIN_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (mut base, mut metrics) = (None, None);
    let mut line = String::new();
    while metrics.is_none() && stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.strip_prefix("linelogin server listening on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("metrics on ") {
            metrics = Some(rest.trim().to_owned());
        }
        line.clear();
    }
    let base = base.unwrap_or_else(|| panic!("no listening line"));
    let metrics = metrics.unwrap_or_else(|| panic!("no metrics line"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (health, bogus, fresh_id, text) = rt.block_on(async {
        let c = reqwest::Client::new();
        let health = c
            .get(format!("{base}/healthz"))
            .header("x-request-id", "json-test-1")
            .send()
            .await
            .unwrap()
            .status();
        let bogus = c
            .get(format!("{base}/callback?code=SECRETCODE&state=SECRETSTATE"))
            .header("x-request-id", "req-42")
            .send()
            .await
            .unwrap();
        assert_eq!(
            bogus.headers().get("x-request-id").unwrap(),
            "req-42",
            "the request id is echoed"
        );
        // An id that could forge a log line is replaced by a fresh one.
        let forged = c
            .get(format!("{base}/"))
            .header("x-request-id", "a b\"c")
            .send()
            .await
            .unwrap();
        let fresh_id = forged.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        (health, bogus.status(), fresh_id, text)
    });
    assert_eq!(health, 200);
    assert_eq!(bogus, 400);
    assert_eq!(fresh_id.len(), 16, "{fresh_id}");
    assert!(
        text.contains("linelogin_http_requests_total{route=\"/healthz\",status_class=\"2xx\"} 1"),
        "{text}"
    );
    let stderr = child.stop_and_read_stderr();
    let request = request_line(&stderr, "json-test-1");
    assert_eq!(request["route"], "/healthz", "{request}");
    assert_eq!(request["method"], "GET", "{request}");
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["level"], "INFO", "{request}");
    assert!(request["duration_ms"].is_number(), "{request}");
    // A refused callback is routine: debug, with its route template and never its query.
    let refused = request_line(&stderr, "req-42");
    assert_eq!(refused["level"], "DEBUG", "{refused}");
    assert_eq!(refused["route"], "/callback", "{refused}");
    assert_eq!(refused["status"], 400, "{refused}");
    assert!(
        stderr.contains(&format!("\"request_id\":\"{fresh_id}\"")),
        "{stderr}"
    );
    for leak in ["SECRETCODE", "SECRETSTATE", "a b"] {
        assert!(!stderr.contains(leak), "{leak} in the log:\n{stderr}");
    }
}
