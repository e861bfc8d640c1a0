//! The process-wide outbound rate limiter (GCRA via `governor`) on an injectable clock.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, middleware::NoOpMiddleware};

use crate::clock::SharedClock;

/// Adapts our [`Clock`](crate::clock::Clock) to governor's, using monotonic time.
#[derive(Clone)]
struct MonotonicClock(SharedClock);

impl GovernorClock for MonotonicClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

type Gcra =
    governor::RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<Duration>>;

/// A GCRA rate limiter with bounded waiting.
pub struct RateLimiter {
    gcra: Gcra,
    clock: SharedClock,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimiter")
    }
}

impl RateLimiter {
    /// `rate_per_second` sustained, `burst` at once (both at least 1).
    pub fn new(rate_per_second: u32, burst: u32, clock: SharedClock) -> Self {
        let rate = NonZeroU32::new(rate_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let gcra = governor::RateLimiter::direct_with_clock(quota, MonotonicClock(clock.clone()));
        Self { gcra, clock }
    }

    /// Takes one permit now, or says how long until one is available.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        match self.gcra.check() {
            Ok(()) => Ok(()),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.monotonic())),
        }
    }

    /// Takes one permit, waiting up to `max_wait`. Returns the wait that would have been
    /// needed if it is longer than `max_wait`; nothing is taken in that case.
    pub async fn acquire(&self, max_wait: Duration) -> Result<(), Duration> {
        let mut waited = Duration::ZERO;
        loop {
            match self.try_acquire() {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    if waited + wait > max_wait {
                        return Err(waited + wait);
                    }
                    // Never spin on a zero wait.
                    let wait = wait.max(Duration::from_micros(100));
                    self.clock.sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }
}
