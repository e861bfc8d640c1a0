//! A consecutive-failure circuit breaker with a single half-open probe.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::SharedClock;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; counts consecutive failures.
    Closed {
        /// Failures in a row so far.
        failures: u32,
    },
    /// Calls fail fast until the monotonic time `until`.
    Open {
        /// Monotonic time at which a probe may go through.
        until: Duration,
    },
    /// One probe is in flight; other calls fail fast.
    HalfOpen,
}

/// What [`CircuitBreaker::admit`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call.
    Normal,
    /// The single probe after an open period.
    Probe,
}

/// Opens after `threshold` consecutive failures; after `open_for`, lets one probe through;
/// the probe's success closes it, its failure opens it again.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    clock: SharedClock,
    state: Mutex<BreakerState>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, open_for: Duration, clock: SharedClock) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            clock,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BreakerState) -> R) -> R {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.with(|s| *s)
    }

    /// Asks to send a call. `Err(wait)` means the breaker is open (or a probe is in flight)
    /// and the call must fail fast; `wait` is a hint for `Retry-After`.
    pub fn admit(&self) -> Result<Admission, Duration> {
        let now = self.clock.monotonic();
        let open_for = self.open_for;
        self.with(|s| match *s {
            BreakerState::Closed { .. } => Ok(Admission::Normal),
            BreakerState::Open { until } if now >= until => {
                *s = BreakerState::HalfOpen;
                Ok(Admission::Probe)
            }
            BreakerState::Open { until } => Err(until - now),
            BreakerState::HalfOpen => Err(open_for.min(Duration::from_secs(1))),
        })
    }

    /// Records a call that reached a healthy LINE (2xx, or a 4xx other than 429).
    pub fn record_success(&self) {
        self.with(|s| *s = BreakerState::Closed { failures: 0 });
    }

    /// Records a failure (429, 5xx, timeout, connection failure). `retry_after` from LINE,
    /// if longer than the configured open period, keeps the breaker open that long.
    pub fn record_failure(&self, retry_after: Option<Duration>) {
        let now = self.clock.monotonic();
        let open = self.open_for.max(retry_after.unwrap_or_default());
        let threshold = self.threshold;
        self.with(|s| match *s {
            BreakerState::Closed { failures } if failures + 1 >= threshold => {
                *s = BreakerState::Open { until: now + open };
            }
            BreakerState::Closed { failures } => {
                *s = BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            BreakerState::HalfOpen | BreakerState::Open { .. } => {
                *s = BreakerState::Open { until: now + open };
            }
        })
    }

    /// Releases a probe that ended without telling anything about LINE's health (e.g. it was
    /// stopped by the local rate limiter): the breaker goes back to open-and-due.
    pub fn release_probe(&self) {
        let now = self.clock.monotonic();
        self.with(|s| {
            if *s == BreakerState::HalfOpen {
                *s = BreakerState::Open { until: now };
            }
        })
    }
}
