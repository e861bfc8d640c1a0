//! Hardening against a hostile or failing LINE (findings of an independent fault run), with
//! the real `line-emulator` and its fault rules:
//!
//! - five 429s with `Retry-After: 86400` refused logins for a whole day, and the server told
//!   browsers `Retry-After: 86385`;
//! - while only the deauthorize endpoint failed, no login succeeded (one breaker for all);
//! - deauthorization jobs refused locally (breaker open, rate limit, cool-down) used up their
//!   attempts and were failed for good without a deauthorize call ever sent.

use std::time::{Duration, Instant};

use line_emulator::UserConfig;
use serde_json::json;

use crate::emulator::Emu;
use crate::harness::{Opts, clock_now, get_json};

const DEAUTHORIZE: &str = "/user/v1/deauthorize";
const TOKEN: &str = "/oauth2/v2.1/token";
/// The default `[outbound] retry_after_ceiling_seconds`.
const CEILING_SECS: u64 = 300;

fn user_id(i: usize) -> String {
    format!("U{i:032x}")
}

/// The emulator with auto-consent and `users` users (each new browser gets the next one,
/// round robin), and the server.
async fn start(opts: Opts, users: usize) -> Emu {
    crate::emulator::start_custom(opts, true, |cfg, _| {
        cfg.users = (0..users)
            .map(|i| UserConfig::new(user_id(i), format!("User {i}")))
            .collect();
    })
    .await
}

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn healthz(e: &Emu) -> serde_json::Value {
    get_json(e.h.url("/healthz")).await
}

/// Finding: five 429s with `Retry-After: 86400` locked logins out for a day and the server
/// advertised `Retry-After: 86385`. Now each 429 cools down for at most the ceiling (5 min by
/// default; the server's clock is a mock clock, advanced by the test), the server never tells
/// browsers to wait longer, no call reaches LINE during a cool-down, and logins work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_429s_with_retry_after_86400_lock_logins_out_no_longer_than_the_ceiling() {
    let clock = clock_now();
    let opts = Opts {
        worker: false,
        clock: Some(clock.clone()),
        ..Opts::default()
    };
    let e = start(opts, 1).await;
    e.faults(json!([{ "endpoint": "token", "status": 429, "count": 5, "retry_after": 86400 }]))
        .await;
    let mut locked_out = Duration::ZERO;
    for round in 1..=5 {
        let r = e.h.login_with(&e.h.client(), "").await;
        assert_eq!(r.status(), 503, "round {round}: LINE answered 429");
        let wait = retry_after(&r).expect("503 carries Retry-After");
        assert!(
            (1..=CEILING_SECS).contains(&wait),
            "round {round}: the server told browsers Retry-After: {wait}"
        );
        assert_eq!(e.calls(TOKEN).await, vec![429; round]);
        // Cooling down: refused at once, with a bounded Retry-After, without calling LINE.
        let r = e.h.login_with(&e.h.client(), "").await;
        assert_eq!(r.status(), 503, "round {round}: still cooling down");
        let wait = retry_after(&r).unwrap();
        assert!(wait <= CEILING_SECS, "round {round}: Retry-After: {wait}");
        assert_eq!(
            e.calls(TOKEN).await.len(),
            round,
            "round {round}: no token call during the cool-down"
        );
        clock.advance(Duration::from_secs(wait));
        locked_out += Duration::from_secs(wait);
    }
    let r = e.h.login_with(&e.h.client(), "").await;
    assert_eq!(r.status(), 303, "logins work again after the ceiling");
    assert!(locked_out <= Duration::from_secs(5 * CEILING_SECS));
    let mut expected = vec![429; 5];
    expected.push(200);
    assert_eq!(e.calls(TOKEN).await, expected);
    eprintln!("five 429s with Retry-After: 86400 locked logins out for {locked_out:?} in total");
    e.stop().await;
}

/// The same with the real clock and `[outbound] retry_after_ceiling_seconds = 1`: the key is
/// honoured end to end, and the wall-clock lockout is about five ceilings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_ceiling_seconds_from_config_bounds_the_lockout() {
    let opts = Opts {
        worker: false,
        ..Opts::default()
    }
    .config(|c| c.outbound.retry_after_ceiling_seconds = 1);
    let e = start(opts, 1).await;
    e.faults(json!([{ "endpoint": "token", "status": 429, "count": 5, "retry_after": 86400 }]))
        .await;
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let r = e.h.login_with(&e.h.client(), "").await;
        if r.status() == 303 {
            break;
        }
        assert_eq!(r.status(), 503);
        let wait = retry_after(&r).unwrap();
        assert_eq!(wait, 1, "Retry-After is clamped to the configured ceiling");
        refused += 1;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still locked out after {refused} refusals"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let locked_out = started.elapsed();
    let mut expected = vec![429; 5];
    expected.push(200);
    assert_eq!(e.calls(TOKEN).await, expected);
    eprintln!(
        "ceiling 1 s: logins back after {locked_out:?} ({refused} refused logins, 5 reached LINE)"
    );
    e.stop().await;
}

/// Finding: while only LINE's deauthorize endpoint failed, 0 of 5 logins succeeded, because
/// one circuit breaker covered every endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deauthorize_endpoint_leaves_logins_working_5_of_5() {
    let e = start(Opts::default(), 6).await;
    let c = e.h.client();
    e.h.login(&c).await;
    e.faults(json!([{ "endpoint": "deauthorize", "status": 500 }]))
        .await;
    assert_eq!(e.h.submit(&c, "/account/unregister").await.status(), 200);
    // Enough failures to open a breaker (threshold 5).
    let started = Instant::now();
    while e.calls(DEAUTHORIZE).await.len() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker never called deauthorize 5 times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ok = 0;
    for _ in 0..5 {
        let r = e.h.login_with(&e.h.client(), "").await;
        if r.status() == 303 {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "{ok} of 5 logins succeeded while deauthorize failed");
    let h = healthz(&e).await;
    assert_eq!(h["deauthorization"]["pending"], 1, "{h}");
    assert_eq!(h["deauthorization"]["failed"], 0, "{h}");
    e.stop().await;
}

/// Finding: two deauthorization jobs were failed for good with no deauthorize call sent,
/// because local refusals counted as attempts. Here the deauthorize endpoint fails five
/// times (the breaker of its class opens for 30 s of the server's mock clock) with
/// `max_attempts = 3`: both jobs stay pending while the breaker refuses them, and once LINE
/// is back each is deauthorized (counted in the emulator's journal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locally_refused_deauthorizations_stay_pending_and_are_sent_once_line_is_back() {
    let clock = clock_now();
    let opts = Opts::default()
        .clock(&clock)
        .config(|c| c.deauth.max_attempts = 3);
    let e = start(opts, 2).await;
    let (c0, c1) = (e.h.client(), e.h.client());
    e.h.login(&c0).await;
    e.h.login(&c1).await;
    assert!(e.authorized(&user_id(0)).await && e.authorized(&user_id(1)).await);
    e.faults(json!([{ "endpoint": "deauthorize", "status": 500, "count": 5 }]))
        .await;
    assert_eq!(e.h.submit(&c0, "/account/unregister").await.status(), 200);
    assert_eq!(e.h.submit(&c1, "/account/unregister").await.status(), 200);
    let mut done = false;
    for step in 0..150 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let h = healthz(&e).await;
        assert_eq!(
            h["deauthorization"]["failed"],
            0,
            "step {step}: a job failed; deauthorize calls: {:?}",
            e.calls(DEAUTHORIZE).await
        );
        if h["deauthorization"]["pending"] == 0 {
            done = true;
            break;
        }
        clock.advance(Duration::from_millis(500));
    }
    assert!(done, "jobs still pending: {:?}", e.calls(DEAUTHORIZE).await);
    assert_eq!(
        e.calls(DEAUTHORIZE).await,
        vec![500, 500, 500, 500, 500, 204, 204],
        "five failures, then one deauthorization per job"
    );
    assert!(!e.authorized(&user_id(0)).await);
    assert!(!e.authorized(&user_id(1)).await);
    e.stop().await;
}

/// A job that runs out of real attempts is failed (loudly, in `/healthz`), keeps its
/// encrypted tokens, and an operator can send it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_runs_out_of_attempts_is_failed_and_can_be_retried() {
    let opts = Opts::default().config(|c| c.deauth.max_attempts = 1);
    let e = start(opts, 1).await;
    let c = e.h.client();
    e.h.login(&c).await;
    e.faults(json!([{ "endpoint": "deauthorize", "status": 500, "count": 3 }]))
        .await;
    assert_eq!(e.h.submit(&c, "/account/unregister").await.status(), 200);
    let started = Instant::now();
    loop {
        let h = healthz(&e).await;
        if h["deauthorization"]["failed"] == 1 {
            assert_eq!(h["status"], "degraded");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.calls(DEAUTHORIZE).await, vec![500, 500, 500]);
    assert!(e.authorized(&user_id(0)).await, "still authorized at LINE");
    let store = e.h.state.store().clone();
    let failed = store.failed_jobs(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].retryable, "{failed:?}");
    store
        .retry_failed_job(&failed[0].id, e.h.state.now_ms())
        .await
        .unwrap();
    e.h.state.wake_worker();
    let h = e.h.wait_outbox_empty().await;
    assert_eq!(h["deauthorization"]["failed"], 0, "{h}");
    assert_eq!(e.calls(DEAUTHORIZE).await, vec![500, 500, 500, 204]);
    assert!(!e.authorized(&user_id(0)).await);
    e.stop().await;
}
