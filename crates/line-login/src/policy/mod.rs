//! The outbound policy: one per process, shared by every call made to LINE.
//!
//! LINE's development guidelines forbid sending mass requests to the LINE Platform and answer
//! excess traffic with `429`. An [`OutboundPolicy`] makes sure a process cannot do that by
//! accident:
//!
//! - a **rate limiter** (GCRA, via `governor`) with a configurable rate and burst; a call that
//!   would have to wait longer than [`PolicyConfig::max_wait`] fails fast with
//!   [`Error::RateLimited`](crate::Error::RateLimited) instead of queueing;
//! - **retries** for idempotent calls on 429, 5xx, timeouts and connection failures, with
//!   exponential backoff and full jitter, honouring `Retry-After`, and limited by a
//!   process-wide **retry budget** so a LINE outage never becomes a retry storm. The
//!   authorization-code exchange is never retried (a code is single use);
//! - a **circuit breaker per endpoint class** ([`EndpointClass`]: login, deauthorize, channel
//!   token) that opens after consecutive failures of that class, fails its calls fast while
//!   open, and closes again once a probe succeeds. A failing deauthorize endpoint therefore
//!   never refuses a login;
//! - a channel-wide **cool-down** after a `429` that carries `Retry-After`.
//!
//! The rate limiter is an [`OutboundLimiter`]: the local GCRA [`RateLimiter`] by default, or
//! one shared by a fleet of instances (e.g. the `line-limit-redis` crate's) given to
//! [`OutboundPolicy::with_limiter`]; a shared limiter also shares the `429` cool-down.
//!
//! Every attempt, retries included, passes the rate limiter. Clone the policy (it is an `Arc`
//! inside) and hand the same one to every client in the process.
//!
//! # `429` and `Retry-After`
//!
//! LINE's rate limits are per channel, and every endpoint class here calls with the same
//! channel, so a `429` is a channel-wide "slow down": when it carries `Retry-After`, **every
//! class** cools down for that long (calls fail fast with
//! [`Error::CoolingDown`](crate::Error::CoolingDown), or wait if the rest of the cool-down is
//! within [`PolicyConfig::max_wait`]). A `429` is not evidence that an endpoint is broken, so
//! with `Retry-After` it does not count towards a breaker; without one (nothing to go on) it
//! counts as a failure of its class's breaker, like a `5xx`. A `5xx`, timeout or connection
//! failure is about one endpoint and counts towards its class's breaker only.
//!
//! `Retry-After` is honoured up to [`PolicyConfig::retry_after_ceiling`] (default 5 min): a
//! longer value (an independent fault run saw `Retry-After: 86400` refuse logins for a whole
//! day) is clamped, with a warning, everywhere it is used — the cool-down, a breaker's open
//! period, and the `retry_after` of the error (and so the `Retry-After` a web app shows its
//! users). Five minutes is 10× the default breaker open period and longer than any rate-limit
//! window a platform plausibly needs, yet short enough that a hostile or broken header costs
//! minutes, not a day; while LINE keeps answering `429`, at most one call per ceiling reaches
//! it.
//!
//! Measured (server tests `hardening_line`, against `line-emulator` answering the token
//! endpoint `429` with `Retry-After: 86400` five times): before, the first failed login told
//! the browser `Retry-After: 86400` and the breaker stayed open for the day; now each `429`
//! cools down for 300 s (1500 s in all for five, one token call per cool-down reaching LINE,
//! none in between), and with a 1 s ceiling logins were back after 5.1 s of wall-clock time.
//! With LINE's deauthorize endpoint answering `500`, 0 of 5 logins succeeded before (the one
//! breaker was open) and 5 of 5 now.
//!
//! A cool-down whose rest fits in [`PolicyConfig::max_wait`] is waited out, like the rate
//! limiter's wait, rather than refused.
//!
//! Calls held back without being sent are counted per [`LimitReason`]
//! ([`OutboundPolicy::limited_total`]), for `linelogin_outbound_limited_total{reason}`.

mod breaker;
mod cooldown;
mod limiter;
mod outbound;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::{Admission, BreakerState, CircuitBreaker};
pub use cooldown::{CoolDown, LimitCounters, LimitReason};
pub use limiter::RateLimiter;
pub use outbound::{LimitMode, LimiterStatus, OutboundLimiter};
pub use retry::{RetryBudget, backoff_delay};

use crate::clock::{SharedClock, SystemClock};
use crate::endpoint::{Endpoint, EndpointClass};

/// Settings of an [`OutboundPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Sustained calls per second to LINE (all endpoints together). Default 20.
    pub rate_per_second: u32,
    /// Calls allowed in a burst above the sustained rate. Default 20.
    pub burst: u32,
    /// Longest a call may wait for the rate limiter before failing fast. Default 2 s.
    pub max_wait: Duration,
    /// Attempts per call, including the first (1 = no retries). Default 3.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per retry. Default 200 ms.
    pub backoff_base: Duration,
    /// Largest backoff ceiling. Default 5 s.
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this ends the retries (the error carries it). Default 10 s.
    pub max_retry_after: Duration,
    /// Retry budget: tokens deposited per first attempt (10% extra load at most). Default 0.1.
    pub retry_budget_ratio: f64,
    /// Retry budget: tokens available when idle, and the cap. Default 10.
    pub retry_budget_reserve: f64,
    /// The longest `Retry-After` honoured; a longer one is clamped to this (with a warning)
    /// for the cool-down, the breaker and the error's `retry_after`. Default 5 min.
    pub retry_after_ceiling: Duration,
    /// Consecutive failures that open a class's breaker. Default 5.
    pub breaker_threshold: u32,
    /// How long a breaker stays open before letting a probe through. Default 30 s.
    pub breaker_open_for: Duration,
    /// Deadline of one attempt (connect, headers, body). Default 10 s.
    pub attempt_timeout: Duration,
    /// Deadline of one call, retries and waits included. Default 30 s.
    pub call_deadline: Duration,
    /// Largest response body read. Default 1 MiB.
    pub max_response_body: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            rate_per_second: 20,
            burst: 20,
            max_wait: Duration::from_secs(2),
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
            retry_budget_ratio: 0.1,
            retry_budget_reserve: 10.0,
            retry_after_ceiling: Duration::from_secs(300),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            call_deadline: Duration::from_secs(30),
            max_response_body: 1024 * 1024,
        }
    }
}

/// The shared outbound policy. Cheap to clone; clones share all state.
#[derive(Clone)]
pub struct OutboundPolicy {
    inner: Arc<PolicyInner>,
}

struct PolicyInner {
    config: PolicyConfig,
    clock: SharedClock,
    limiter: Arc<dyn OutboundLimiter>,
    budget: RetryBudget,
    breakers: [CircuitBreaker; 3],
    cool_down: CoolDown,
    limited: LimitCounters,
}

impl fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("config", &self.inner.config)
            .field("breakers", &self.breaker_states())
            .finish_non_exhaustive()
    }
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self::new(PolicyConfig::default())
    }
}

impl OutboundPolicy {
    /// A policy on the system clock.
    pub fn new(config: PolicyConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A policy on the given clock (tests use [`MockClock`](crate::clock::MockClock)).
    pub fn with_clock(config: PolicyConfig, clock: SharedClock) -> Self {
        let limiter = RateLimiter::new(config.rate_per_second, config.burst, clock.clone());
        Self::with_limiter_and_clock(config, Arc::new(limiter), clock)
    }

    /// A policy on the system clock whose rate limit and cool-down are decided by `limiter`
    /// (e.g. one shared by a fleet of instances) instead of the local GCRA limiter; see
    /// [`OutboundLimiter`]. `rate_per_second` and `burst` of `config` are then the limiter's
    /// business.
    pub fn with_limiter(config: PolicyConfig, limiter: Arc<dyn OutboundLimiter>) -> Self {
        Self::with_limiter_and_clock(config, limiter, Arc::new(SystemClock::new()))
    }

    /// [`with_limiter`](Self::with_limiter) on the given clock.
    pub fn with_limiter_and_clock(
        config: PolicyConfig,
        limiter: Arc<dyn OutboundLimiter>,
        clock: SharedClock,
    ) -> Self {
        let budget = RetryBudget::new(config.retry_budget_ratio, config.retry_budget_reserve);
        let breakers = EndpointClass::ALL.map(|_| {
            CircuitBreaker::new(
                config.breaker_threshold,
                config.breaker_open_for,
                clock.clone(),
            )
        });
        let cool_down = CoolDown::shared(clock.clone(), limiter.clone());
        Self {
            inner: Arc::new(PolicyInner {
                config,
                clock,
                limiter,
                budget,
                breakers,
                cool_down,
                limited: LimitCounters::default(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The rate limiter (the local GCRA one unless the policy was built
    /// [`with_limiter`](Self::with_limiter)).
    pub fn limiter(&self) -> &dyn OutboundLimiter {
        self.inner.limiter.as_ref()
    }

    /// The rate limiter's state (`local`, `shared` or `degraded`, and since when).
    pub fn limiter_status(&self) -> LimiterStatus {
        self.inner.limiter.status()
    }

    /// The retry budget.
    pub fn budget(&self) -> &RetryBudget {
        &self.inner.budget
    }

    /// The circuit breaker of the [`Login`](EndpointClass::Login) class (the one logins go
    /// through); see [`breaker_for`](Self::breaker_for) for the others.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.breaker_for(EndpointClass::Login)
    }

    /// The circuit breaker of an endpoint class.
    pub fn breaker_for(&self, class: EndpointClass) -> &CircuitBreaker {
        &self.inner.breakers[class.index()]
    }

    /// The state of every class's breaker, in [`EndpointClass::ALL`] order.
    pub fn breaker_states(&self) -> [(EndpointClass, BreakerState); 3] {
        EndpointClass::ALL.map(|c| (c, self.breaker_for(c).state()))
    }

    /// The channel-wide cool-down.
    pub fn cool_down(&self) -> &CoolDown {
        &self.inner.cool_down
    }

    /// Calls held back (not sent) for `reason` since the policy was made: a monotonic
    /// counter, to be exported as `linelogin_outbound_limited_total{reason}`.
    pub fn limited_total(&self, reason: LimitReason) -> u64 {
        self.inner.limited.get(reason)
    }

    /// Counts a call held back for `reason`.
    pub(crate) fn record_limited(&self, reason: LimitReason) {
        self.inner.limited.record(reason);
    }

    /// `Retry-After` as the policy honours it: at most
    /// [`PolicyConfig::retry_after_ceiling`]. Logs a warning when it clamps.
    pub fn clamp_retry_after(&self, endpoint: Endpoint, retry_after: Duration) -> Duration {
        let ceiling = self.inner.config.retry_after_ceiling;
        if retry_after > ceiling {
            tracing::warn!(
                endpoint = endpoint.name(),
                retry_after_secs = retry_after.as_secs(),
                ceiling_secs = ceiling.as_secs(),
                "LINE's Retry-After exceeds the ceiling; clamped"
            );
            ceiling
        } else {
            retry_after
        }
    }
}
