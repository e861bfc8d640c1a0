//! The load-test runner against a relying party that is not linelogin's server (a small RP
//! built on `line-login` alone) and the linelogin emulator: the report's counts match what
//! the emulator's stats saw, through auto-consent and through the consent page, in closed and
//! open loop; and the CLI writes the JSON report and the SVG chart.

use std::time::Duration;

use line_emulator::{Config, Emulator};
use line_loadtest::{self as loadtest, Bound, Finish, LoadTest, Mode};

use super::rp;

struct World {
    rp: url::Url,
    emulator: url::Url,
    _running: line_emulator::RunningEmulator,
}

async fn world(auto_consent: bool) -> World {
    let rp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_addr = rp_listener.local_addr().unwrap();
    let mut config = Config::default_demo();
    config.auto_consent = auto_consent;
    config.channels[0].callback_urls = vec![format!("http://{rp_addr}/callback").parse().unwrap()];
    let (channel_id, secret) = (
        config.channels[0].id.clone(),
        config.channels[0].secret.clone(),
    );
    let emulator = Emulator::new(config).unwrap();
    let running = emulator
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let emulator_url: url::Url = running.base_url().parse().unwrap();
    let rp = rp::start(rp_listener, emulator_url.clone(), &channel_id, &secret).await;
    World {
        rp,
        emulator: emulator_url,
        _running: running,
    }
}

async fn endpoint_total(emulator: &url::Url, endpoint: &str) -> u64 {
    let stats: serde_json::Value = serde_json::from_slice(
        &reqwest::get(emulator.join("/_emulator/stats").unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    stats["endpoints"][endpoint]["total"].as_u64().unwrap_or(0)
}

fn test_for(target: url::Url, bound: Bound, mode: Mode) -> LoadTest {
    LoadTest {
        target,
        start_path: "/login".into(),
        bound,
        concurrency: 8,
        mode,
        finish: Finish::None,
        request_timeout: Duration::from_secs(10),
        progress: false,
        allow_remote_target: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_counts_match_the_emulator() {
    let w = world(true).await;
    let (report, guard) = loadtest::run(&test_for(w.rp.clone(), Bound::Flows(200), Mode::Closed))
        .await
        .unwrap();
    assert_eq!(guard.emulator, w.emulator);
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_eq!(report.ok, 200);
    assert_eq!(report.flows, 200);
    assert_eq!(
        report.requests, 800,
        "login, authorize, callback, api_me per flow"
    );
    assert_eq!(report.latency_ms.count, 200);
    for step in ["login", "authorize", "callback", "api_me"] {
        assert_eq!(report.steps[step].count, 200, "{step}");
    }
    assert!(
        report.latency_ms.p50 <= report.latency_ms.p99
            && report.latency_ms.p99 <= report.latency_ms.max
    );
    assert_eq!(endpoint_total(&w.emulator, "authorize").await, 200);
    assert_eq!(endpoint_total(&w.emulator, "token").await, 200);
    assert_eq!(endpoint_total(&w.emulator, "profile").await, 200);
    let per_second: u64 = report.timeline.iter().map(|s| s.ok).sum();
    assert_eq!(per_second, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_click_through_the_consent_page() {
    let w = world(false).await;
    let (report, _) = loadtest::run(&test_for(w.rp.clone(), Bound::Flows(20), Mode::Closed))
        .await
        .unwrap();
    assert_eq!(report.ok, 20, "{:?}", report.errors);
    assert_eq!(endpoint_total(&w.emulator, "consent").await, 20);
    assert_eq!(endpoint_total(&w.emulator, "token").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_offers_the_target_rate() {
    let w = world(true).await;
    let t = test_for(
        w.rp.clone(),
        Bound::Duration(Duration::from_millis(1500)),
        Mode::Open { rate: 100.0 },
    );
    let (report, _) = loadtest::run(&t).await.unwrap();
    assert_eq!(report.mode, "open");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    // 1.5 s at 100/s: 150 scheduled (the loop is bounded by time, so allow the edges).
    assert!(
        (140..=151).contains(&(report.ok + report.dropped)),
        "{} ok, {} dropped",
        report.ok,
        report.dropped
    );
    assert_eq!(endpoint_total(&w.emulator, "token").await, report.ok);
}
