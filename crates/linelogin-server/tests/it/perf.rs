//! Login flows per second (ignored by default; run with
//! `cargo test -p linelogin-server --release --test it -- --ignored perf --nocapture`).

use std::time::{Duration, Instant};

use crate::harness::{Harness, Opts, location};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run explicitly in release mode"]
async fn perf_login_flows_per_second() {
    let flows: usize = std::env::var("PERF_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let concurrency: usize = std::env::var("PERF_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let h = Harness::start_with(
        crate::fake_line::FakeLine::start().await,
        Opts {
            extra_env: vec![
                (
                    "LINELOGIN_OUTBOUND__RATE_LIMIT_PER_SECOND".into(),
                    "100000".into(),
                ),
                ("LINELOGIN_OUTBOUND__BURST".into(), "100000".into()),
            ],
            guideline_logs: true,
            ..Opts::default()
        },
    )
    .await;
    let base = h.base.clone();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    // One client per virtual user (connection reuse); each flow carries its own pre-login
    // cookie, like a fresh browser.
    for _ in 0..concurrency {
        let base = base.clone();
        let next = next.clone();
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < flows {
                let t = Instant::now();
                let r = c.get(format!("{base}/login")).send().await.unwrap();
                let cookie = r.headers()["set-cookie"]
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string();
                let r = c.get(location(&r)).send().await.unwrap();
                let r = c
                    .get(location(&r))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let p =
        |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "login flows: {} in {:.2}s = {:.0} flows/s at concurrency {}; latency ms p50 {:.1} p99 {:.1} max {:.1}",
        all.len(),
        secs,
        all.len() as f64 / secs,
        concurrency,
        p(0.5),
        p(0.99),
        p(1.0)
    );
    h.stop().await;
}
