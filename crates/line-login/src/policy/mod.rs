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
//! - a **circuit breaker** that opens after consecutive failures, fails calls fast while open,
//!   and closes again once a probe succeeds.
//!
//! Every attempt, retries included, passes the rate limiter. Clone the policy (it is an `Arc`
//! inside) and hand the same one to every client in the process.

mod breaker;
mod limiter;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::{Admission, BreakerState, CircuitBreaker};
pub use limiter::RateLimiter;
pub use retry::{RetryBudget, backoff_delay};

use crate::clock::{SharedClock, SystemClock};

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
    /// Consecutive failures that open the breaker. Default 5.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before letting a probe through. Default 30 s.
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
    limiter: RateLimiter,
    budget: RetryBudget,
    breaker: CircuitBreaker,
}

impl fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("config", &self.inner.config)
            .field("breaker", &self.inner.breaker.state())
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
        let budget = RetryBudget::new(config.retry_budget_ratio, config.retry_budget_reserve);
        let breaker = CircuitBreaker::new(
            config.breaker_threshold,
            config.breaker_open_for,
            clock.clone(),
        );
        Self {
            inner: Arc::new(PolicyInner {
                config,
                clock,
                limiter,
                budget,
                breaker,
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

    /// The rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The retry budget.
    pub fn budget(&self) -> &RetryBudget {
        &self.inner.budget
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }
}
