//! The outbound policy on a mock clock: rate limiter, retries with backoff and budget,
//! circuit breaker. The transport is a scripted closure, so no time passes for real.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use line_login::clock::{Clock, MockClock};
use line_login::endpoint::{Endpoint, EndpointClass};
use line_login::http::{FnTransport, HttpResponse, TransportError};
use line_login::policy::{BreakerState, LimitReason, OutboundPolicy, PolicyConfig};
use line_login::secret::{
    AccessToken, AuthorizationCode, ChannelAccessToken, ChannelSecret, RefreshToken,
};
use line_login::types::ChannelId;
use line_login::{Error, LineClient};

type Script = Arc<Mutex<VecDeque<Result<HttpResponse, TransportError>>>>;

fn resp(status: u16, retry_after: Option<&str>) -> Result<HttpResponse, TransportError> {
    let mut headers = HeaderMap::new();
    if let Some(ra) = retry_after {
        headers.insert("retry-after", HeaderValue::from_str(ra).unwrap());
    }
    let body = if status == 200 {
        r#"{"friendFlag":true}"#
    } else {
        r#"{"message":"x"}"#
    };
    Ok(HttpResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: Bytes::from(body),
    })
}

struct Harness {
    client: LineClient,
    clock: MockClock,
    script: Script,
    sent: Arc<Mutex<u32>>,
}

impl Harness {
    fn new(config: PolicyConfig) -> Self {
        let clock = MockClock::at_unix(1_700_000_000);
        let script: Script = Arc::new(Mutex::new(VecDeque::new()));
        let sent = Arc::new(Mutex::new(0u32));
        let (s2, n2) = (script.clone(), sent.clone());
        let transport = FnTransport(move |_req| {
            *n2.lock().unwrap() += 1;
            let next = s2
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| resp(200, None));
            Box::pin(async move { next }) as futures::future::BoxFuture<'static, _>
        });
        let policy = OutboundPolicy::with_clock(config, Arc::new(clock.clone()));
        let client = LineClient::builder(ChannelId::new("1"), ChannelSecret::new("s"))
            .base_url("http://127.0.0.1:9".parse().unwrap())
            .transport(Arc::new(transport))
            .policy(policy)
            .build()
            .unwrap();
        Self {
            client,
            clock,
            script,
            sent,
        }
    }

    fn push(&self, r: Result<HttpResponse, TransportError>) {
        self.script.lock().unwrap().push_back(r);
    }

    fn sent(&self) -> u32 {
        *self.sent.lock().unwrap()
    }

    async fn call(&self) -> Result<bool, Error> {
        self.client
            .friendship_status(&AccessToken::new("t"))
            .await
            .map(|f| f.friend_flag)
    }
}

fn quiet() -> PolicyConfig {
    PolicyConfig {
        rate_per_second: 1000,
        burst: 1000,
        ..PolicyConfig::default()
    }
}

#[tokio::test]
async fn limiter_spaces_calls_and_fails_fast_past_max_wait() {
    let h = Harness::new(PolicyConfig {
        rate_per_second: 10,
        burst: 2,
        max_wait: Duration::from_millis(250),
        ..PolicyConfig::default()
    });
    h.call().await.unwrap();
    h.call().await.unwrap();
    assert!(h.clock.sleeps().is_empty(), "the burst passes at once");
    h.call().await.unwrap();
    let slept: Duration = h.clock.sleeps().iter().sum();
    assert!(
        slept >= Duration::from_millis(99) && slept <= Duration::from_millis(101),
        "{slept:?}"
    );

    // A limiter with a long interval and a short max wait fails fast, without sending.
    let h = Harness::new(PolicyConfig {
        rate_per_second: 1,
        burst: 1,
        max_wait: Duration::from_millis(100),
        ..PolicyConfig::default()
    });
    h.call().await.unwrap();
    let e = h.call().await.unwrap_err();
    match e {
        Error::RateLimited { wait, .. } => assert!(wait > Duration::from_millis(100)),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sent(), 1);
    assert!(e_is_unavailable(&h.call().await.unwrap_err()));
}

fn e_is_unavailable(e: &Error) -> bool {
    e.is_unavailable() && e.retry_after().is_some()
}

#[tokio::test]
async fn limiter_sustained_rate_over_simulated_time() {
    let h = Harness::new(PolicyConfig {
        rate_per_second: 20,
        burst: 5,
        max_wait: Duration::from_secs(10),
        ..PolicyConfig::default()
    });
    let start = h.clock.monotonic();
    for _ in 0..105 {
        h.call().await.unwrap();
    }
    let elapsed = h.clock.monotonic() - start;
    // 5 in the burst, then 100 at 20/s = 5 s.
    assert!(
        elapsed >= Duration::from_millis(4990) && elapsed <= Duration::from_millis(5100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn retries_5xx_with_growing_jittered_backoff() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 4,
        ..quiet()
    });
    h.push(resp(500, None));
    h.push(resp(502, None));
    h.push(resp(503, None));
    assert!(h.call().await.unwrap());
    assert_eq!(h.sent(), 4);
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 3);
    for (i, s) in sleeps.iter().enumerate() {
        let ceiling = Duration::from_millis(200 << i);
        assert!(*s <= ceiling, "retry {} slept {s:?} > {ceiling:?}", i + 1);
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_too_long_ends_retries() {
    let h = Harness::new(quiet());
    h.push(resp(429, Some("3")));
    assert!(h.call().await.unwrap());
    assert!(h.clock.sleeps()[0] >= Duration::from_secs(3));

    let h = Harness::new(quiet());
    h.push(resp(429, Some("120")));
    let e = h.call().await.unwrap_err();
    assert_eq!(e.status().unwrap().as_u16(), 429);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        h.sent(),
        1,
        "no retry when LINE asks to wait longer than max_retry_after"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let h = Harness::new(quiet());
    h.push(resp(401, None));
    assert_eq!(h.call().await.unwrap_err().status().unwrap().as_u16(), 401);
    assert_eq!(h.sent(), 1);
}

#[tokio::test]
async fn transport_errors_retry_for_idempotent_calls_only() {
    let h = Harness::new(quiet());
    h.push(Err(TransportError::Io("reset".into())));
    assert!(h.call().await.unwrap());
    assert_eq!(h.sent(), 2);

    // The code exchange: an I/O error after sending is not retried …
    let h = Harness::new(quiet());
    h.push(Err(TransportError::Io("reset".into())));
    let redirect = "https://a.example/cb".parse().unwrap();
    let e = h
        .client
        .exchange_code(&AuthorizationCode::new("c"), &redirect, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }));
    assert_eq!(h.sent(), 1);
    // … but a connection that never reached LINE is.
    h.push(Err(TransportError::Connect("refused".into())));
    h.push(Ok(HttpResponse {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::from_static(br#"{"access_token":"a","expires_in":1,"refresh_token":"r","scope":"profile","token_type":"Bearer"}"#),
    }));
    h.client
        .exchange_code(&AuthorizationCode::new("c"), &redirect, None)
        .await
        .unwrap();
    assert_eq!(h.sent(), 3);
}

#[tokio::test]
async fn retry_budget_caps_retries_during_an_outage() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 3,
        retry_budget_reserve: 5.0,
        retry_budget_ratio: 0.1,
        breaker_threshold: 1000,
        ..quiet()
    });
    for _ in 0..400 {
        h.push(resp(503, None));
    }
    for _ in 0..100 {
        assert!(h.call().await.is_err());
    }
    // 100 first attempts; retries ≤ reserve (5) + 10% of 100 (10).
    let retries = h.sent() - 100;
    assert!(retries <= 15, "{retries} retries");
    assert!(retries >= 5, "{retries} retries");
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_closes_after_a_good_probe() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 1,
        breaker_threshold: 3,
        breaker_open_for: Duration::from_secs(30),
        ..quiet()
    });
    for _ in 0..3 {
        h.push(resp(500, None));
        assert!(h.call().await.is_err());
    }
    assert!(matches!(
        h.client.policy().breaker().state(),
        BreakerState::Open { .. }
    ));
    let e = h.call().await.unwrap_err();
    match &e {
        Error::CircuitOpen { retry_after, .. } => assert_eq!(*retry_after, Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    assert!(e.is_unavailable());
    assert_eq!(h.sent(), 3, "no call while open");

    // After the open period one probe goes through; it fails, so the breaker opens again.
    h.clock.advance(Duration::from_secs(30));
    h.push(resp(503, None));
    assert!(h.call().await.is_err());
    assert_eq!(h.sent(), 4);
    assert!(matches!(
        h.call().await.unwrap_err(),
        Error::CircuitOpen { .. }
    ));
    assert_eq!(h.sent(), 4);

    // Next probe succeeds: closed again, calls flow.
    h.clock.advance(Duration::from_secs(31));
    assert!(h.call().await.unwrap());
    assert_eq!(
        h.client.policy().breaker().state(),
        BreakerState::Closed { failures: 0 }
    );
    assert!(h.call().await.unwrap());
    assert_eq!(h.sent(), 6);
}

#[tokio::test]
async fn half_open_admits_a_single_probe() {
    let clock = MockClock::at_unix(0);
    let b = line_login::policy::CircuitBreaker::new(
        1,
        Duration::from_secs(10),
        Arc::new(clock.clone()),
    );
    b.record_failure(None);
    assert!(b.admit().is_err());
    clock.advance(Duration::from_secs(10));
    assert_eq!(b.admit(), Ok(line_login::policy::Admission::Probe));
    assert!(
        b.admit().is_err(),
        "a second caller waits while the probe is out"
    );
    b.record_success();
    assert_eq!(b.admit(), Ok(line_login::policy::Admission::Normal));
}

#[tokio::test]
async fn four_hundreds_do_not_open_the_breaker_and_retry_after_extends_it() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 1,
        breaker_threshold: 2,
        ..quiet()
    });
    for _ in 0..5 {
        h.push(resp(400, None));
        let _ = h.call().await;
    }
    assert_eq!(
        h.client.policy().breaker().state(),
        BreakerState::Closed { failures: 0 }
    );
    // A 5xx's Retry-After keeps the breaker open that long …
    h.push(resp(503, Some("60")));
    h.push(resp(503, Some("60")));
    let _ = h.call().await;
    let _ = h.call().await;
    match h.call().await.unwrap_err() {
        Error::CircuitOpen { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
    // … but never longer than the ceiling.
    h.clock.advance(Duration::from_secs(60));
    h.push(resp(503, Some("86400")));
    let _ = h.call().await;
    match h.call().await.unwrap_err() {
        Error::CircuitOpen { retry_after, .. } => assert_eq!(retry_after, CEILING),
        other => panic!("{other:?}"),
    }
}

/// The default `retry_after_ceiling`.
const CEILING: Duration = Duration::from_secs(300);

/// Finding (fault run): five 429s carrying `Retry-After: 86400` refused calls for a whole
/// day, and the errors told users to come back in 86400 s.
#[tokio::test]
async fn hostile_retry_after_86400_keeps_calls_refused_no_longer_than_the_ceiling() {
    let h = Harness::new(quiet());
    for round in 0..5 {
        h.push(resp(429, Some("86400")));
        let e = h.call().await.unwrap_err();
        assert_eq!(e.status().map(|s| s.as_u16()), Some(429), "round {round}");
        let hint = e.retry_after().unwrap();
        assert!(hint <= CEILING, "round {round}: the error says {hint:?}");
        // Meanwhile calls are refused without being sent, with a hint within the ceiling.
        let sent = h.sent();
        let e = h.call().await.unwrap_err();
        assert!(e.is_unavailable(), "round {round}: {e:?}");
        let hint = e.retry_after().unwrap();
        assert!(hint <= CEILING, "round {round}: the refusal says {hint:?}");
        assert_eq!(
            h.sent(),
            sent,
            "round {round}: nothing sent while cooling down"
        );
        h.clock.advance(CEILING);
    }
    assert!(
        h.call().await.unwrap(),
        "calls flow again after the ceiling"
    );
}

/// Finding (fault run): while only the deauthorize endpoint failed, one breaker for every
/// endpoint refused every login.
#[tokio::test]
async fn failing_deauthorize_endpoint_leaves_the_token_endpoints_breaker_closed() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 1,
        breaker_threshold: 3,
        ..quiet()
    });
    for _ in 0..5 {
        h.push(resp(500, None));
        let e = h
            .client
            .deauthorize(&ChannelAccessToken::new("c"), &AccessToken::new("u"))
            .await
            .unwrap_err();
        assert!(e.is_unavailable());
    }
    assert_eq!(h.sent(), 3, "deauthorize's breaker opened after 3 failures");
    h.script.lock().unwrap().clear();
    assert_eq!(
        h.client.policy().breaker().state(),
        BreakerState::Closed { failures: 0 },
        "the login class's breaker stays closed"
    );
    h.push(token_response());
    h.client
        .refresh(&RefreshToken::new("r"))
        .await
        .expect("the token endpoint is still called");
    assert!(
        h.call().await.unwrap(),
        "and so are the other login endpoints"
    );
    assert_eq!(h.sent(), 5);
}

fn token_response() -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::from_static(
            br#"{"access_token":"a","expires_in":1,"refresh_token":"r","scope":"profile","token_type":"Bearer"}"#,
        ),
    })
}

#[tokio::test]
async fn breakers_are_per_class_and_count_their_own_failures() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 1,
        breaker_threshold: 2,
        ..quiet()
    });
    let policy = h.client.policy().clone();
    for _ in 0..2 {
        h.push(resp(503, None));
        let _ = h
            .client
            .deauthorize(&ChannelAccessToken::new("c"), &AccessToken::new("u"))
            .await;
    }
    assert!(matches!(
        policy.breaker_for(EndpointClass::Deauthorize).state(),
        BreakerState::Open { .. }
    ));
    for class in [EndpointClass::Login, EndpointClass::ChannelToken] {
        assert_eq!(
            policy.breaker_for(class).state(),
            BreakerState::Closed { failures: 0 },
            "{class:?}"
        );
    }
    let e = h
        .client
        .deauthorize(&ChannelAccessToken::new("c"), &AccessToken::new("u"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CircuitOpen { .. }) && e.is_local_refusal());
    assert_eq!(policy.limited_total(LimitReason::Breaker), 1);
    // A 429 without Retry-After counts towards its own class only.
    h.push(resp(429, None));
    h.push(resp(429, None));
    let _ = h.call().await;
    let _ = h.call().await;
    assert!(matches!(
        policy.breaker_for(EndpointClass::Login).state(),
        BreakerState::Open { .. }
    ));
    assert_eq!(
        policy.breaker_for(EndpointClass::ChannelToken).state(),
        BreakerState::Closed { failures: 0 }
    );
    assert_eq!(Endpoint::Deauthorize.class(), EndpointClass::Deauthorize);
    assert_eq!(Endpoint::RefreshToken.class(), EndpointClass::Login);
    assert_eq!(Endpoint::Jwks.class(), EndpointClass::Login);
    assert_eq!(
        Endpoint::StatelessChannelToken.class(),
        EndpointClass::ChannelToken
    );
}

/// LINE's limits are per channel: a 429 with Retry-After on one endpoint cools down every
/// class, without opening any breaker, and is counted as `cooldown`.
#[tokio::test]
async fn a_429_with_retry_after_cools_down_every_class() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 1,
        breaker_threshold: 1,
        ..quiet()
    });
    let policy = h.client.policy().clone();
    h.push(resp(429, Some("60")));
    let e = h
        .client
        .deauthorize(&ChannelAccessToken::new("c"), &AccessToken::new("u"))
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    assert!(!e.is_local_refusal(), "LINE answered this one");
    for (class, state) in policy.breaker_states() {
        assert_eq!(state, BreakerState::Closed { failures: 0 }, "{class:?}");
    }
    let e = h.call().await.unwrap_err();
    match &e {
        Error::CoolingDown { retry_after, .. } => {
            assert_eq!(*retry_after, Duration::from_secs(60))
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_unavailable() && e.is_local_refusal());
    assert!(h.client.issue_stateless_channel_token().await.is_err());
    assert_eq!(h.sent(), 1);
    assert_eq!(policy.limited_total(LimitReason::Cooldown), 2);
    assert_eq!(policy.limited_total(LimitReason::RateLimit), 0);
    // A rest within max_wait is waited out rather than refused.
    h.clock.advance(Duration::from_secs(59));
    assert!(h.call().await.unwrap());
    assert_eq!(policy.limited_total(LimitReason::Cooldown), 2);
    assert_eq!(
        LimitReason::ALL.map(LimitReason::as_str),
        ["rate_limit", "cooldown", "breaker"]
    );
}

#[tokio::test]
async fn a_refused_retry_returns_the_error_of_the_attempt_that_was_sent() {
    let h = Harness::new(PolicyConfig {
        max_attempts: 3,
        breaker_threshold: 1,
        ..quiet()
    });
    h.push(resp(503, None));
    let e = h.call().await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503), "{e:?}");
    assert!(!e.is_local_refusal());
    assert_eq!(h.sent(), 1);
    let e = h.call().await.unwrap_err();
    assert!(e.is_local_refusal(), "{e:?}");
}

#[tokio::test]
async fn one_policy_is_shared_by_clients() {
    let clock = MockClock::at_unix(0);
    let policy = OutboundPolicy::with_clock(
        PolicyConfig {
            rate_per_second: 1,
            burst: 2,
            max_wait: Duration::ZERO,
            ..PolicyConfig::default()
        },
        Arc::new(clock.clone()),
    );
    let make = || {
        let transport = FnTransport(|_req| {
            Box::pin(async { resp(200, None) }) as futures::future::BoxFuture<'static, _>
        });
        LineClient::builder(ChannelId::new("1"), ChannelSecret::new("s"))
            .base_url("http://127.0.0.1:9".parse().unwrap())
            .transport(Arc::new(transport))
            .policy(policy.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    a.friendship_status(&AccessToken::new("t")).await.unwrap();
    b.friendship_status(&AccessToken::new("t")).await.unwrap();
    assert!(matches!(
        a.friendship_status(&AccessToken::new("t")).await,
        Err(Error::RateLimited { .. })
    ));
    assert!(matches!(
        b.friendship_status(&AccessToken::new("t")).await,
        Err(Error::RateLimited { .. })
    ));
}

/// A fake "shared" limiter: admits everything, records reported cool-downs and answers a
/// cool-down another instance set.
#[derive(Debug, Default)]
struct FakeSharedLimiter {
    acquired: Mutex<u32>,
    reported: Mutex<Vec<Duration>>,
    shared_cool_down: Mutex<Option<Duration>>,
}

impl line_login::policy::OutboundLimiter for FakeSharedLimiter {
    fn acquire(&self, _max_wait: Duration) -> futures::future::BoxFuture<'_, Result<(), Duration>> {
        *self.acquired.lock().unwrap() += 1;
        Box::pin(async { Ok(()) })
    }
    fn report_cool_down(&self, period: Duration) {
        self.reported.lock().unwrap().push(period);
    }
    fn cool_down_remaining(&self) -> Option<Duration> {
        *self.shared_cool_down.lock().unwrap()
    }
    fn status(&self) -> line_login::policy::LimiterStatus {
        line_login::policy::LimiterStatus {
            mode: line_login::policy::LimitMode::Shared,
            since: None,
        }
    }
}

#[tokio::test]
async fn a_pluggable_limiter_decides_admission_and_shares_the_cool_down() {
    let clock = MockClock::at_unix(1_700_000_000);
    let limiter = Arc::new(FakeSharedLimiter::default());
    let policy = OutboundPolicy::with_limiter_and_clock(
        PolicyConfig {
            max_attempts: 1,
            retry_after_ceiling: Duration::from_secs(30),
            ..quiet()
        },
        limiter.clone(),
        Arc::new(clock.clone()),
    );
    assert_eq!(
        policy.limiter_status().mode,
        line_login::policy::LimitMode::Shared
    );
    let script: Script = Arc::new(Mutex::new(VecDeque::new()));
    let s2 = script.clone();
    let transport = FnTransport(move |_req| {
        let next = s2
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| resp(200, None));
        Box::pin(async move { next }) as futures::future::BoxFuture<'static, _>
    });
    let client = LineClient::builder(ChannelId::new("1"), ChannelSecret::new("s"))
        .base_url("http://127.0.0.1:9".parse().unwrap())
        .transport(Arc::new(transport))
        .policy(policy.clone())
        .build()
        .unwrap();
    let call = || async {
        client
            .friendship_status(&AccessToken::new("t"))
            .await
            .map(|f| f.friend_flag)
    };
    assert!(call().await.unwrap());
    assert_eq!(
        *limiter.acquired.lock().unwrap(),
        1,
        "the plugged limiter is asked"
    );

    // A 429 here is reported (clamped) to the shared limiter.
    script.lock().unwrap().push_back(resp(429, Some("86400")));
    assert!(call().await.is_err());
    assert_eq!(
        *limiter.reported.lock().unwrap(),
        vec![Duration::from_secs(30)]
    );
    clock.advance(Duration::from_secs(31));
    assert!(call().await.unwrap());

    // A cool-down another instance started is honoured before the next call.
    *limiter.shared_cool_down.lock().unwrap() = Some(Duration::from_secs(40));
    let before = *limiter.acquired.lock().unwrap();
    match call().await.unwrap_err() {
        Error::CoolingDown { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(40))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*limiter.acquired.lock().unwrap(), before, "nothing sent");
    assert_eq!(policy.limited_total(LimitReason::Cooldown), 1);
}
