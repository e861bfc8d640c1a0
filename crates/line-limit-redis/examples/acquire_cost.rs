//! The cost of one shared acquire (one EVALSHA round trip) on loopback.
//!
//! `cargo run -p line-limit-redis --example acquire_cost [redis_url]` (default
//! `redis://127.0.0.1:6379`; keys under a random `line-limit-bench:` prefix, expiring by
//! themselves). Prints µs per acquire (p50/p99) of 5 000 sequential acquires, and acquires/s
//! of 32 concurrent tasks from one process for 2 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// A cost measurement times real work.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use line_limit_redis::{RedisLimiter, RedisLimiterConfig};
use line_login::policy::{LimitMode, OutboundLimiter};

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let mut config = RedisLimiterConfig::new(url, "bench", 1_000_000, 1_000_000);
    config.key_prefix = format!("line-limit-bench:{:016x}:", rand::random::<u64>());
    let limiter = Arc::new(RedisLimiter::new(config).unwrap());
    assert!(limiter.probe().await, "Redis must be reachable");

    let mut samples = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        let t0 = Instant::now();
        limiter.acquire(Duration::ZERO).await.unwrap();
        samples.push(t0.elapsed());
    }
    assert_eq!(limiter.status().mode, LimitMode::Shared);
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "sequential: 5000 acquires, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6
    );

    let count = Arc::new(AtomicU64::new(0));
    let run = Duration::from_secs(2);
    let start = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (l, c) = (limiter.clone(), count.clone());
            tokio::spawn(async move {
                while start.elapsed() < run {
                    if l.acquire(Duration::ZERO).await.is_ok() {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = count.load(Ordering::Relaxed);
    println!(
        "concurrent: 32 tasks, {n} acquires in {:.2} s = {:.0} acquires/s",
        start.elapsed().as_secs_f64(),
        n as f64 / start.elapsed().as_secs_f64()
    );
}
