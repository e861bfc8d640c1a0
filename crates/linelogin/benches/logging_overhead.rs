//! Login throughput with the guideline logs on and off, side by side in one run.
//!
//! One emulator (auto-consent) and two linelogin servers (each with its own SQLite file),
//! identical except that one writes the three guideline logs and the other has none; the
//! load-test runner alternates between them, round after round, and the medians are compared.
//! Everything runs in this process on 127.0.0.1.
//!
//! Run: `cargo bench -p linelogin --bench logging_overhead`
//! (environment: `ROUNDS` (default 5), `SECS` per run (default 5), `VUS` (default 64)).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use line_emulator::{ChannelConfig, Config as EmulatorConfig, Emulator};
use line_loadtest::{self as loadtest, Bound, Finish, LoadTest, Mode};
use linelogin_server::audit::GuidelineLogs;
use linelogin_server::config::Config;
use linelogin_server::state::AppState;

const CHANNEL_ID: &str = "1234567890";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn server(
    listener: tokio::net::TcpListener,
    emulator: &str,
    dir: &std::path::Path,
    logs: bool,
) -> linelogin_server::serve::RunningServer {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let env: Vec<(String, String)> = [
        ("LINELOGIN_PUBLIC_URL", base),
        (
            "LINELOGIN_DATABASE_URL",
            format!("sqlite://{}", dir.join("db.sqlite").display()),
        ),
        (
            "LINELOGIN_TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("LINELOGIN_LINE__CHANNEL_ID", CHANNEL_ID.into()),
        ("LINELOGIN_LINE__CHANNEL_SECRET", SECRET.into()),
        ("LINELOGIN_LINE__AUTH_URL", emulator.into()),
        ("LINELOGIN_LINE__API_URL", emulator.into()),
        ("LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND", "100000".into()),
        ("LINELOGIN_OUTBOUND__BURST", "10000".into()),
        (
            "LINELOGIN_LOGS__DIR",
            dir.join("logs").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, env).unwrap();
    let mut builder = AppState::builder(&config);
    if logs {
        builder = builder.audit(Arc::new(GuidelineLogs::open(&config.logs).unwrap()));
    }
    let state = builder.build().await.unwrap();
    linelogin_server::serve::start_on(state, listener).unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rounds = env_or("ROUNDS", 5);
    let secs = env_or("SECS", 5);
    let vus = env_or("VUS", 64) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let on_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let off_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callbacks = [&on_listener, &off_listener]
            .map(|l| format!("http://{}/callback", l.local_addr().unwrap()).parse().unwrap())
            .to_vec();
        let mut config = EmulatorConfig::default_demo();
        config.auto_consent = true;
        config.channels = vec![ChannelConfig::new(CHANNEL_ID, SECRET, callbacks)];
        let emulator = Emulator::new(config).unwrap();
        let running = emulator.serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
        let emu = running.base_url().trim_end_matches('/').to_owned();

        let root = std::env::temp_dir().join(format!("linelogin-bench-logs-{}", std::process::id()));
        let (on_dir, off_dir) = (root.join("on"), root.join("off"));
        std::fs::create_dir_all(&on_dir).unwrap();
        std::fs::create_dir_all(&off_dir).unwrap();
        let on_url: url::Url = format!("http://{}/", on_listener.local_addr().unwrap()).parse().unwrap();
        let off_url: url::Url = format!("http://{}/", off_listener.local_addr().unwrap()).parse().unwrap();
        let _on = server(on_listener, &emu, &on_dir, true).await;
        let _off = server(off_listener, &emu, &off_dir, false).await;

        let run = |target: url::Url| async move {
            let test = LoadTest {
                target,
                start_path: "/login".into(),
                bound: Bound::Duration(Duration::from_secs(secs)),
                concurrency: vus,
                mode: Mode::Closed,
                finish: Finish::None,
                request_timeout: Duration::from_secs(10),
                progress: false,
                allow_remote_target: false,
            };
            loadtest::run(&test).await.unwrap().0
        };
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so drift on a noisy machine hits both equally.
            let order = if round % 2 == 0 { [true, false] } else { [false, true] };
            for logs in order {
                let r = run(if logs { on_url.clone() } else { off_url.clone() }).await;
                assert_eq!(r.failed, 0, "{:?}", r.errors);
                println!(
                    "round {round} logs {:<3}: {:8.1} flows/s  p99 {:6.2} ms",
                    if logs { "on" } else { "off" },
                    r.flows_per_s,
                    r.latency_ms.p99
                );
                if logs { on.push(r.flows_per_s) } else { off.push(r.flows_per_s) }
            }
        }
        let lines = std::fs::read_to_string(on_dir.join("logs/api-request.log")).map(|s| s.lines().count()).unwrap_or(0);
        let (m_on, m_off) = (median(on), median(off));
        println!("median flows/s: logs on {m_on:.1}, logs off {m_off:.1}, ratio {:.3} ({lines} API log lines written)", m_on / m_off);
        let _ = std::fs::remove_dir_all(&root);
    });
}
