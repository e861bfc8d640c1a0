//! LINE's rate limit, seen from the server (the load-testing issue's 429 case): the
//! emulator rate-limits the channel; the emulator's 429s become 503 pages with Retry-After;
//! the rate the emulator observes never exceeds the server's outbound limit plus burst; and
//! there is no retry storm (counted in the emulator's journal).

use std::time::{Duration, Instant};

use crate::emulator::start_with_channel;
use crate::harness::{Opts, location};

const SERVER_RATE: u32 = 10;
const SERVER_BURST: u32 = 5;
const LOGINS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_429s_become_503_pages_without_a_retry_storm() {
    let opts = Opts {
        worker: false,
        ..Opts::default()
    }
    .config(|c| {
        c.outbound.rate_limit_per_second = SERVER_RATE;
        c.outbound.burst = SERVER_BURST;
    });
    let emu = start_with_channel(opts, true, |c| c.rate_limit_per_second = Some(3)).await;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..LOGINS {
        let c = emu.h.client();
        let login = emu.h.url("/login");
        tasks.push(tokio::spawn(async move {
            let r = c.get(&login).send().await.unwrap();
            assert_eq!(r.status(), 302);
            let r = c.get(location(&r)).send().await.unwrap();
            assert!(r.status().is_redirection());
            let r = c.get(location(&r)).send().await.unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (r.status().as_u16(), retry_after)
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();

    let unavailable: Vec<_> = outcomes.iter().filter(|(s, _)| *s == 503).collect();
    let ok = outcomes.iter().filter(|(s, _)| *s == 303).count();
    assert!(
        !unavailable.is_empty(),
        "LINE's 429s must show: {outcomes:?}"
    );
    assert_eq!(
        ok + unavailable.len(),
        LOGINS,
        "only 303 or 503: {outcomes:?}"
    );
    for (_, retry_after) in &unavailable {
        assert!(
            retry_after.is_some_and(|s| s >= 1),
            "503 without Retry-After: {outcomes:?}"
        );
    }

    let journal = emu.journal().await;
    let api: Vec<&(String, String, u16)> = journal
        .iter()
        .filter(|(_, p, _)| !p.starts_with("/oauth2/v2.1/authorize"))
        .collect();
    let token_calls = api
        .iter()
        .filter(|(_, p, _)| p == "/oauth2/v2.1/token")
        .count();
    let limited = api.iter().filter(|(_, _, s)| *s == 429).count();
    assert!(limited > 0, "the emulator rate-limited: {api:?}");
    eprintln!(
        "{ok} logins ok, {} got 503; emulator saw {} API calls ({limited} answered 429, {token_calls} token calls) in {elapsed:?}",
        unavailable.len(),
        api.len()
    );
    // Authorization codes are single use: at most one exchange per callback, never retried.
    assert!(
        token_calls <= LOGINS,
        "{token_calls} token calls for {LOGINS} callbacks"
    );
    // The emulator never sees more than the server's limit plus burst (plus one for rounding).
    let allowed = SERVER_RATE as f64 * elapsed.as_secs_f64() + SERVER_BURST as f64 + 1.0;
    assert!(
        api.len() as f64 <= allowed,
        "{} API calls in {elapsed:?}, limit allows {allowed:.0}",
        api.len()
    );
    // No retry storm: beyond one call per step that was reached, retries stay within the
    // client's retry budget (reserve 10 + 10% of first attempts).
    // The emulator's ID tokens carry the display name, so the token call is the only API
    // call of a login.
    assert!(
        api.iter().all(|(_, p, _)| p == "/oauth2/v2.1/token"),
        "only token calls: {api:?}"
    );
    let first_attempts = token_calls;
    assert!(
        api.len() <= first_attempts + 10 + first_attempts / 10 + 1,
        "{} calls for {first_attempts} first attempts: a retry storm",
        api.len()
    );
    // And the server's other pages stay up meanwhile.
    let c = emu.h.client();
    let t = Instant::now();
    let home = emu.h.get(&c, "/").await;
    assert_eq!(home.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(2));
    emu.stop().await;
}
