//! The shared limiter against a real Redis. The tests on the shared Redis at
//! 127.0.0.1:6379 use their own random key prefix; the tests that stop Redis start their own
//! `redis-server` child on a free port. All are `#[ignore]`d (CI runs `--ignored`) and fail,
//! not pass, when Redis (or `redis-server`) is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests bound real waits and measure real spacing (the root clippy.toml's clock rule is for
// library code).
#![allow(clippy::disallowed_methods)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use line_limit_redis::{RedisLimiter, RedisLimiterConfig};
use line_login::policy::{LimitMode, OutboundLimiter};

const SHARED: &str = "redis://127.0.0.1:6379";

fn prefix() -> String {
    format!("line-limit-test:{:016x}:", rand::random::<u64>())
}

fn limiter(url: &str, prefix: &str, rate: u32, burst: u32, instances: u32) -> Arc<RedisLimiter> {
    let mut c = RedisLimiterConfig::new(url, "1234567890", rate, burst);
    c.key_prefix = prefix.to_owned();
    c.instances = instances;
    Arc::new(RedisLimiter::new(c).unwrap())
}

/// The most admissions in any window of one second.
fn max_per_second(mut times: Vec<Instant>) -> usize {
    times.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= Duration::from_secs(1) {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Tries to acquire (no waiting) every 2 ms for `run`; returns the admission times and the
/// longest single acquire.
async fn hammer(l: Arc<RedisLimiter>, run: Duration) -> (Vec<Instant>, Duration) {
    let start = Instant::now();
    let mut admitted = Vec::new();
    let mut longest = Duration::ZERO;
    while start.elapsed() < run {
        let t0 = Instant::now();
        let r = l.acquire(Duration::ZERO).await;
        longest = longest.max(t0.elapsed());
        if r.is_ok() {
            admitted.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (admitted, longest)
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (CI runs --ignored)"]
async fn two_instances_share_one_limit_of_rate_plus_burst() {
    let p = prefix();
    let (a, b) = (limiter(SHARED, &p, 20, 5, 2), limiter(SHARED, &p, 20, 5, 2));
    assert!(a.probe().await, "Redis at 127.0.0.1:6379 must be running");
    assert!(b.probe().await);
    let run = Duration::from_secs(3);
    let (ra, rb) = tokio::join!(hammer(a.clone(), run), hammer(b.clone(), run));
    let all: Vec<Instant> = ra.0.iter().chain(rb.0.iter()).copied().collect();
    let total = all.len();
    let peak = max_per_second(all);
    eprintln!(
        "two instances, rate 20 + burst 5, 3 s: admitted {} + {} = {total}, peak {peak} in any 1 s",
        ra.0.len(),
        rb.0.len()
    );
    assert!(peak <= 25, "peak {peak} > rate + burst");
    // The budget is used (5 + 3 s × 20 = 65 at most), not just a local share.
    assert!(total >= 55, "{total}");
    assert_eq!(a.status().mode, LimitMode::Shared);
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (CI runs --ignored)"]
async fn a_cool_down_set_by_one_instance_is_honoured_by_the_other() {
    let p = prefix();
    let (a, b) = (limiter(SHARED, &p, 20, 5, 2), limiter(SHARED, &p, 20, 5, 2));
    assert!(a.probe().await, "Redis at 127.0.0.1:6379 must be running");
    assert!(b.acquire(Duration::ZERO).await.is_ok());
    a.report_cool_down(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let wait = b.acquire(Duration::ZERO).await.unwrap_err();
    assert!(
        wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
    let rest = b.cool_down_remaining().expect("learnt from the script");
    assert!(rest > Duration::from_millis(1500), "{rest:?}");
    // A shorter cool-down never shortens it; waiting within max_wait works.
    a.report_cool_down(Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(b.acquire(Duration::from_millis(100)).await.is_err());
    assert!(b.acquire(Duration::from_secs(3)).await.is_ok());
}

struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: Option<u16>) -> Self {
        let port = port.unwrap_or_else(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the redis-server binary must be installed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
#[ignore = "needs the redis-server binary (CI runs --ignored)"]
async fn redis_killed_mid_run_falls_back_to_the_local_share_and_comes_back() {
    let mut redis = OwnRedis::start(None);
    let p = prefix();
    let url = redis.url();
    let (a, b) = (limiter(&url, &p, 20, 4, 2), limiter(&url, &p, 20, 4, 2));
    assert!(a.probe().await && b.probe().await);

    redis.stop();
    let run = Duration::from_secs(2);
    let (ra, rb) = tokio::join!(hammer(a.clone(), run), hammer(b.clone(), run));
    eprintln!(
        "Redis down, 2 s, local share 10/s + 2 each: admitted {} and {}, longest acquire {:?} / {:?}",
        ra.0.len(),
        rb.0.len(),
        ra.1,
        rb.1
    );
    for (admitted, longest) in [&ra, &rb] {
        // Local share: burst 2 + 2 s × 10/s.
        assert!(admitted.len() <= 22, "{}", admitted.len());
        assert!(admitted.len() >= 15, "{}", admitted.len());
        assert!(*longest < Duration::from_millis(500), "{longest:?}");
    }
    assert_eq!(a.status().mode, LimitMode::Degraded);
    assert_eq!(b.status().mode, LimitMode::Degraded);

    let _redis = OwnRedis::start(Some(redis.port));
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.status().mode != LimitMode::Shared || b.status().mode != LimitMode::Shared {
        assert!(
            Instant::now() < deadline,
            "the shared limit did not come back"
        );
        let _ = a.acquire(Duration::ZERO).await;
        let _ = b.acquire(Duration::ZERO).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "shared again {:?} after the restart",
        Instant::now() + Duration::from_secs(5) - deadline
    );
}
