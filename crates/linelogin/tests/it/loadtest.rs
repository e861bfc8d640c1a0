//! `linelogin loadtest` as a process: the guard's one-line refusal, usage errors, the JSON
//! report and the SVG chart, against the emulator and a linelogin server in this process. The
//! runner itself is tested in the `line-loadtest` crate.

use std::process::Command;

use line_emulator::{ChannelConfig, Config as EmulatorConfig, Emulator, RunningEmulator};
use linelogin_server::config::Config;
use linelogin_server::serve::RunningServer;
use linelogin_server::state::AppState;

const CHANNEL_ID: &str = "1234567890";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A linelogin server on 127.0.0.1:0 whose LINE is at `auth_url` / `api_url`; its SQLite file
/// and logs go to a temporary directory that lives as long as the server.
async fn server_on(
    listener: tokio::net::TcpListener,
    auth_url: &str,
    api_url: &str,
) -> (url::Url, (RunningServer, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let env: Vec<(String, String)> = [
        ("LINELOGIN_PUBLIC_URL", base.clone()),
        (
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        ),
        (
            "LINELOGIN_TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID.into()),
        ("LINELOGIN_LINE__CHANNEL_SECRET", SECRET.into()),
        ("LINELOGIN_LINE__AUTH_URL", auth_url.into()),
        ("LINELOGIN_LINE__API_URL", api_url.into()),
        ("LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND", "10000".into()),
        (
            "LINELOGIN_LOGS__DIR",
            dir.path().join("logs").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, env).unwrap();
    let state = AppState::builder(&config).build().await.unwrap();
    let running = linelogin_server::serve::start_on(state, listener).unwrap();
    (format!("{base}/").parse().unwrap(), (running, dir))
}

async fn server_for_line(
    auth_url: &str,
    api_url: &str,
) -> (url::Url, (RunningServer, tempfile::TempDir)) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server_on(listener, auth_url, api_url).await
}

/// The emulator (auto-consent) and a linelogin server whose LINE it is.
async fn server_on_emulator() -> (url::Url, RunningEmulator, (RunningServer, tempfile::TempDir)) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let mut config = EmulatorConfig::default_demo();
    config.auto_consent = true;
    config.channels = vec![ChannelConfig::new(CHANNEL_ID, SECRET, vec![callback])];
    let emulator = Emulator::new(config).unwrap();
    let running = emulator
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let base = running.base_url().trim_end_matches('/').to_owned();
    let (rp, server) = server_on(listener, &base, &base).await;
    (rp, running, server)
}

#[test]
fn the_cli_exits_1_with_one_line_citing_the_guideline() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A real linelogin server whose LINE is the real platform: its /login redirects to
    // access.line.me, which the runner must refuse before sending any load (or anything).
    let (rp, _server) = rt.block_on(server_for_line("https://access.line.me", "https://api.line.me"));
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

#[test]
fn cli_writes_json_and_svg() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rp, _emulator, _server) = rt.block_on(server_on_emulator());
    let dir = std::env::temp_dir().join(format!("linelogin-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("report.json"), dir.join("chart.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_linelogin"))
        .args([
            "loadtest",
            "--target",
            rp.as_str(),
            "--flows",
            "50",
            "--concurrency",
            "4",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--chart")
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("throughput"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["flows"], 50);
    assert_eq!(r["ok"], 50);
    assert_eq!(r["failed"], 0);
    assert!(r["duration_s"].as_f64().unwrap() > 0.0);
    assert!(r["flows_per_s"].as_f64().unwrap() > 0.0);
    for k in ["p50", "p90", "p99", "max"] {
        assert!(r["latency_ms"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
    drop(rt);
}
