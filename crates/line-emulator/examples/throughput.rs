//! A quick throughput check (a benchmark, not a test): full auto-consent login flows against an
//! in-process emulator — authorize → token (with an HS256 ID token) → profile — from
//! concurrent HTTP clients in the same process.
//!
//! `cargo run --release -p line-emulator --example throughput -- [SECONDS] [CONCURRENCY]`
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A throughput example times real work.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use line_emulator::{Config, Emulator};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(secs, concurrency));
}

async fn run(secs: u64, concurrency: usize) {
    let mut config = Config::default_demo();
    config.auto_consent = true;
    let emulator = Emulator::new(config).unwrap();
    let running = emulator
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let base = running.base_url().to_owned();
    let flows = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (base, flows, errors) = (base.clone(), flows.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let authorize = format!(
                "{base}/oauth2/v2.1/authorize?response_type=code&client_id=1234567890\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&state=abc&scope=profile%20openid&nonce=n"
            );
            while Instant::now() < deadline {
                let ok = async {
                    let r = client.get(&authorize).send().await.ok()?;
                    let loc = r.headers().get("location")?.to_str().ok()?.to_owned();
                    let code = url::Url::parse(&loc)
                        .ok()?
                        .query_pairs()
                        .find(|(k, _)| k == "code")?
                        .1
                        .into_owned();
                    let t: serde_json::Value = client
                        .post(format!("{base}/oauth2/v2.1/token"))
                        .form(&[
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", "http://127.0.0.1:8080/callback"),
                            ("client_id", "1234567890"),
                            ("client_secret", "0123456789abcdef0123456789abcdef"),
                        ])
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    let access = t["access_token"].as_str()?;
                    let p = client
                        .get(format!("{base}/v2/profile"))
                        .bearer_auth(access)
                        .send()
                        .await
                        .ok()?;
                    p.status().is_success().then_some(())
                }
                .await;
                match ok {
                    Some(()) => flows.fetch_add(1, Ordering::Relaxed),
                    None => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = flows.load(Ordering::Relaxed);
    println!(
        "{n} flows in {elapsed:.1}s = {:.0} flows/s ({:.0} emulator requests/s), {} errors, concurrency {concurrency}",
        n as f64 / elapsed,
        3.0 * n as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
    running.shutdown().await.unwrap();
}
