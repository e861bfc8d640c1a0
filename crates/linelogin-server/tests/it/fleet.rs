//! A fleet: several server instances (in-process `AppState`s on 127.0.0.1:0) on one
//! PostgreSQL, one Redis (a `redis-server` child of the test, on a free port) and one
//! `line-emulator`, with `[outbound] redis_url` set. The emulator's journal (with times) is
//! the referee: the most outbound calls it sees in any one second, from all instances
//! together, never exceed `rate + burst`.
//!
//! `#[ignore]`d (CI runs `--ignored`): they need `DATABASE_URL_POSTGRES` and the
//! `redis-server` binary, and fail, not pass, without them.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use linelogin_server::AppState;
use linelogin_server::config::{Config, RedisUrl};
use linelogin_server::serve::{RunningServer, start_on};
use linelogin_server::store::PostgresStore;
use serde_json::json;

use crate::emulator::fleet_emulator;
use crate::harness::{self, bind, config_with, get_json};

const RATE: u32 = 20;
const BURST: u32 = 5;

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

struct Instance {
    base: String,
    state: AppState,
    server: Option<RunningServer>,
}

struct Fleet {
    instances: Vec<Instance>,
    emu_url: String,
    emulator: line_emulator::RunningEmulator,
    redis: OwnRedis,
    pg: (String, String),
    _dir: tempfile::TempDir,
}

async fn start_fleet(n: usize, instances_key: u32) -> Fleet {
    let pg_url = std::env::var("DATABASE_URL_POSTGRES")
        .expect("DATABASE_URL_POSTGRES must be set (postgres://postgres@127.0.0.1:5432/test)");
    let schema = format!("ll_fleet_{}", harness::unique_suffix());
    let redis = OwnRedis::start(None);
    let mut listeners = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..n {
        let (listener, base) = bind().await;
        listeners.push(listener);
        bases.push(base);
    }
    let (emulator, emu_url) = fleet_emulator(&bases, 0..64).await;
    let dir = tempfile::tempdir().unwrap();
    let redis_url = RedisUrl::new(format!("redis://127.0.0.1:{}", redis.port));
    let mut instances = Vec::new();
    for (listener, base) in listeners.into_iter().zip(bases) {
        let config = config_with(&base, &emu_url, &dir.path().join("unused.db"), |c| {
            c.outbound.rate_limit_per_second = RATE;
            c.outbound.burst = BURST;
            c.outbound.redis_url = Some(redis_url.clone());
            c.outbound.instances = instances_key;
            c.outbound.retry_after_ceiling_seconds = 10;
            c.deauth.worker = true;
        });
        let state = pg_state(&config, &pg_url, &schema, instances.is_empty()).await;
        let server = start_on(state.clone(), listener).unwrap();
        instances.push(Instance {
            base,
            state,
            server: Some(server),
        });
    }
    Fleet {
        instances,
        emu_url,
        emulator,
        redis,
        pg: (pg_url, schema),
        _dir: dir,
    }
}

/// An instance's state on the schema `schema` of the PostgreSQL at `pg_url`; `migrate`: the
/// first instance migrates the schema.
async fn pg_state(config: &Config, pg_url: &str, schema: &str, migrate: bool) -> AppState {
    let store = PostgresStore::connect(pg_url, Some(schema)).await.unwrap();
    if migrate {
        linelogin_server::store::Store::migrate(&store)
            .await
            .unwrap();
    }
    AppState::builder(config)
        .store(Arc::new(store))
        .build()
        .await
        .unwrap()
}

impl Fleet {
    async fn stop(mut self) {
        for i in &mut self.instances {
            if let Some(s) = i.server.take() {
                s.stop().await;
            }
        }
        let _ = self.emulator.shutdown().await;
        self.redis.stop();
        drop_schema(&self.pg.0, &self.pg.1).await;
    }

    /// Emulator times (ms of the day) of the outbound calls (everything but the browser's
    /// authorize/consent pages and the admin API) with seq > `after`; and the newest seq.
    async fn outbound_times(&self, after: u64) -> (Vec<i64>, u64) {
        let v: serde_json::Value =
            get_json(format!("{}/_emulator/journal?limit=100000", self.emu_url)).await;
        let mut last = after;
        let mut times = Vec::new();
        for e in v["entries"].as_array().unwrap() {
            let seq = e["seq"].as_u64().unwrap();
            last = last.max(seq);
            let endpoint = e["endpoint"].as_str().unwrap();
            if seq <= after || matches!(endpoint, "authorize" | "consent" | "admin" | "index") {
                continue;
            }
            times.push(ms_of_day(e["time"].as_str().unwrap()));
        }
        (times, last)
    }

    async fn admin(&self, path: &str, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/_emulator/{path}", self.emu_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
    }

    async fn token_calls(&self) -> usize {
        let v: serde_json::Value = get_json(format!(
            "{}/_emulator/journal?limit=100000&endpoint=token",
            self.emu_url
        ))
        .await;
        v["entries"].as_array().unwrap().len()
    }
}

/// `…THH:MM:SS[.fff]Z` → milliseconds of the day.
fn ms_of_day(rfc3339: &str) -> i64 {
    let t = rfc3339.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let m: i64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    (h * 3600 + m * 60) * 1000 + (s * 1000.0).round() as i64
}

/// The most calls in any window of one second.
fn peak_per_second(mut ms: Vec<i64>) -> usize {
    ms.sort();
    let (mut best, mut lo) = (0, 0);
    for hi in 0..ms.len() {
        while ms[hi] - ms[lo] >= 1000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn browser() -> reqwest::Client {
    harness::browser(Some(Duration::from_secs(10)))
}

/// One login, then (when it worked) unregister; returns the callback status.
async fn login_and_unregister(base: &str) -> u16 {
    let c = browser();
    let r = harness::follow_login(&c, &format!("{base}/login"))
        .await
        .response;
    let status = r.status().as_u16();
    if status == 303 {
        let r = harness::unregister_at_base(&c, base).await.unwrap();
        assert!(r.status().as_u16() < 500, "unregister: {}", r.status());
    }
    status
}

/// Drives logins + unregisters at every instance at once for `run`, `per_instance`
/// browsers each; returns per instance the callback outcomes: [logged in, refused (503 or
/// 4xx), 5xx other than 503].
async fn drive(f: &Fleet, run: Duration, per_instance: usize) -> Vec<[u64; 3]> {
    let counters: Vec<Arc<[AtomicU64; 3]>> = f
        .instances
        .iter()
        .map(|_| Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]))
        .collect();
    let mut tasks = Vec::new();
    for (inst, counts) in f.instances.iter().zip(&counters) {
        for _ in 0..per_instance {
            let (base, counts) = (inst.base.clone(), counts.clone());
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                while start.elapsed() < run {
                    let s = login_and_unregister(&base).await;
                    let k = match s {
                        303 => 0,
                        500.. if s != 503 => 2,
                        _ => 1,
                    };
                    counts[k].fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    counters
        .iter()
        .map(|c| std::array::from_fn(|k| c[k].load(Ordering::Relaxed)))
        .collect()
}

async fn healthz(base: &str) -> serde_json::Value {
    get_json(format!("{base}/healthz")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis (CI runs --ignored)"]
async fn fleet_of_three_shares_one_outbound_budget_and_one_cool_down() {
    let f = start_fleet(3, 3).await;
    for i in &f.instances {
        let h = healthz(&i.base).await;
        assert_eq!(h["outbound"]["limit"], "shared", "{h}");
        assert_eq!(
            h["status"],
            "ok",
            "{h} {:?}",
            i.state.store().job_stats(0).await
        );
    }
    let outcomes = drive(&f, Duration::from_secs(4), 3).await;
    let (times, _) = f.outbound_times(0).await;
    let peak = peak_per_second(times.clone());
    eprintln!(
        "fleet of 3, rate {RATE} + burst {BURST}: {} outbound calls in ~4 s, peak {peak} in any 1 s; \
         per instance [logged in, refused, 5xx]: {outcomes:?}",
        times.len()
    );
    assert!(outcomes.iter().all(|o| o[2] == 0), "no 5xx: {outcomes:?}");
    assert!(peak <= (RATE + BURST) as usize, "peak {peak}");
    assert!(times.len() >= 40, "the budget was used: {}", times.len());

    // A 429 storm seen by one instance cools every instance down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.admin(
        "faults",
        json!([{ "endpoint": "token", "status": 429, "count": 100, "retry_after": 60 }]),
    )
    .await;
    let before = f.token_calls().await;
    let s = login_and_unregister(&f.instances[0].base).await;
    assert_eq!(s, 503, "LINE answered 429");
    assert_eq!(f.token_calls().await, before + 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in &f.instances[1..] {
        let s = login_and_unregister(&i.base).await;
        assert_eq!(s, 503, "cooling down");
    }
    assert_eq!(
        f.token_calls().await,
        before + 1,
        "no instance called LINE during the shared cool-down"
    );
    for i in &f.instances[1..] {
        let limited = i
            .state
            .client()
            .policy()
            .limited_total(line_login::policy::LimitReason::RateLimit)
            + i.state
                .client()
                .policy()
                .limited_total(line_login::policy::LimitReason::Cooldown);
        assert!(limited >= 1);
    }
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis (CI runs --ignored)"]
async fn fleet_with_redis_stopped_keeps_each_instance_within_its_share_and_resumes() {
    let mut f = start_fleet(2, 2).await;
    for i in &f.instances {
        assert_eq!(healthz(&i.base).await["outbound"]["limit"], "shared");
    }
    let port = f.redis.port;
    f.redis.stop();
    let (_, seen) = f.outbound_times(0).await;
    let started = Instant::now();
    let outcomes = drive(&f, Duration::from_secs(3), 3).await;
    let (times, _) = f.outbound_times(seen).await;
    let peak = peak_per_second(times.clone());
    eprintln!(
        "Redis stopped, 2 instances × local share 10/s + 2: {} outbound calls in {:.1} s, \
         peak {peak} in any 1 s; per instance [logged in, refused, 5xx]: {outcomes:?}",
        times.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(outcomes.iter().all(|o| o[2] == 0), "no 5xx: {outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o[0] > 0),
        "logins go on: {outcomes:?}"
    );
    // Two local shares of 10/s + 2 together.
    assert!(peak <= 2 * (RATE / 2 + BURST / 2) as usize, "peak {peak}");
    for i in &f.instances {
        let h = healthz(&i.base).await;
        assert_eq!(h["status"], "degraded", "{h}");
        assert_eq!(h["outbound"]["limit"], "degraded", "{h}");
        assert_eq!(
            i.state.client().policy().limiter_status().mode,
            line_login::policy::LimitMode::Degraded
        );
    }

    f.redis = OwnRedis::start(Some(port));
    let back = Instant::now();
    for i in &f.instances {
        loop {
            let h = healthz(&i.base).await;
            if h["outbound"]["limit"] == "shared" {
                assert_eq!(h["status"], "ok", "{h}");
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(5),
                "the shared limit did not come back: {h}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!("shared again {:?} after Redis restarted", back.elapsed());
    let outcomes = drive(&f, Duration::from_secs(1), 2).await;
    assert!(
        outcomes.iter().all(|o| o[2] == 0 && o[0] > 0),
        "{outcomes:?}"
    );
    f.stop().await;
}

/// The `name=value` pairs a response sets, as one `Cookie` header.
fn cookies_set_by(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis (CI runs --ignored)"]
async fn a_session_made_on_one_instance_works_on_another() {
    let f = start_fleet(2, 2).await;
    let (a, b) = (&f.instances[0].base, &f.instances[1].base);
    let c = browser();
    let r = harness::follow_login(&c, &format!("{a}/login"))
        .await
        .response;
    assert_eq!(r.status(), 303, "logged in on A");
    let cookie = cookies_set_by(&r);
    assert!(!cookie.is_empty(), "A set a session cookie");

    // The cookie alone (no cookie store), sent to B.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let me = plain
        .get(format!("{b}/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "B knows A's session");
    let v: serde_json::Value = me.json().await.unwrap();
    assert!(v.to_string().contains("User "), "{v}");
    let page = plain
        .get(format!("{b}/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Without the cookie B sends the browser to log in: the 200 above is the session's.
    let anon = plain.get(format!("{b}/me")).send().await.unwrap();
    assert!(anon.status().is_redirection(), "{}", anon.status());
    f.stop().await;
}

/// `n` instances on one new PostgreSQL schema, `[deauth] worker = false`, no Redis and no
/// LINE (the maintenance tests need neither); returns them and the schema.
async fn pg_instances_without_worker(n: usize) -> (Vec<RunningServer>, String, String) {
    let pg_url = std::env::var("DATABASE_URL_POSTGRES")
        .expect("DATABASE_URL_POSTGRES must be set (postgres://postgres@127.0.0.1:5432/test)");
    let schema = format!("ll_maint_{}", harness::unique_suffix());
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    for i in 0..n {
        let (listener, base) = bind().await;
        let config = config_with(
            &base,
            "http://127.0.0.1:9",
            &dir.path().join("unused.db"),
            |c| c.deauth.worker = false,
        );
        let state = pg_state(&config, &pg_url, &schema, i == 0).await;
        if i == 0 {
            // An expired pending login for the purge to find.
            state
                .store()
                .put_pending_login("expired", b"x", 1)
                .await
                .unwrap();
        }
        servers.push(start_on(state, listener).unwrap());
    }
    (servers, pg_url, schema)
}

async fn drop_schema(pg_url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(pg_url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (CI runs --ignored)"]
async fn maintenance_runs_once_across_the_fleet_even_with_the_worker_off() {
    let (servers, pg_url, schema) = pg_instances_without_worker(3).await;
    assert!(servers.iter().all(|s| !s.runs_worker()));
    // Every instance ticks at once on start; wait until all three have.
    let started = Instant::now();
    while servers.iter().any(|s| s.purge_stats().ticks == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the purge did not tick"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs: Vec<u64> = servers.iter().map(|s| s.purge_stats().runs).collect();
    eprintln!("purge runs per instance after the first tick of each: {runs:?}");
    assert_eq!(runs.iter().sum::<u64>(), 1, "{runs:?}");
    let store = servers[1].state().store();
    assert_eq!(
        store.take_pending_login("expired", 0).await.unwrap(),
        None,
        "the one run purged"
    );
    // More passes within the period, from every instance at once: none runs.
    let mut tasks = Vec::new();
    for s in &servers {
        for _ in 0..4 {
            let state = s.state().clone();
            tasks.push(tokio::spawn(async move {
                linelogin_server::maintenance::purge_once(
                    &state,
                    linelogin_server::maintenance::PURGE_EVERY,
                )
                .await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), None);
    }
    for s in servers {
        s.stop().await;
    }
    drop_schema(&pg_url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (CI runs --ignored)"]
async fn the_purge_finds_expired_rows_by_index() {
    let (servers, pg_url, schema) = pg_instances_without_worker(1).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg_url)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(&format!("SET search_path = {schema}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    // A few rows make a sequential scan the cheapest plan; forbid it where there is an
    // alternative, so that the plan shows whether an index can serve the query.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (statement, index) in [
        (
            "SELECT id_hash FROM sessions WHERE expires_at <= 5 LIMIT 1000",
            "sessions_expires_at",
        ),
        (
            "SELECT id_hash FROM pending_logins WHERE expires_at <= 5 LIMIT 1000",
            "pending_logins_expires_at",
        ),
        (
            "SELECT id FROM deauth_jobs WHERE status IN ('done', 'superseded') \
             AND finished_at <= 5 LIMIT 1000",
            "deauth_jobs_finished",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {statement}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{statement}:\n{plan}");
    }
    drop(conn);
    pool.close().await;
    for s in servers {
        s.stop().await;
    }
    drop_schema(&pg_url, &schema).await;
}
