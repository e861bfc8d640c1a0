//! Time, as an input.
//!
//! Everything in this crate that reads the time or sleeps goes through a [`Clock`]: ID token
//! `exp`/`iat`/`auth_time` checks, the rate limiter, retry backoff, the circuit breaker and the
//! JWKS cache. Production uses [`SystemClock`]; tests use [`MockClock`], whose `sleep`
//! advances time instantly, so backoff and breaker behaviour can be tested without waiting.
//!
//! This is the workspace's one clock: the guideline logs (`line-audit`) and the emulator
//! (`line-emulator`) take a [`SharedClock`] too, and the root `clippy.toml` disallows
//! `SystemTime::now`/`Instant::now` elsewhere, so time stays an input everywhere and a test
//! can move it.

// The one place that reads the system's clocks (see the root `clippy.toml`).
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A boxed sleep future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of wall-clock time, monotonic time and sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The wall-clock time (used for JWT claims and log timestamps).
    fn now(&self) -> SystemTime;
    /// Monotonic time since an arbitrary fixed origin (used for rate limits and timeouts).
    fn monotonic(&self) -> Duration;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// The wall-clock time as Unix seconds (0 before 1970).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// The real clock: `SystemTime::now`, `Instant::now` and `tokio::time::sleep`.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests. Time stands still until [`advance`](MockClock::advance) is called or
/// someone sleeps; `sleep` advances the clock by the slept duration and returns at once.
/// Every sleep is recorded, so tests can assert on backoff delays.
#[derive(Debug, Clone)]
pub struct MockClock {
    inner: Arc<Mutex<MockState>>,
}

#[derive(Debug)]
struct MockState {
    wall: SystemTime,
    mono: Duration,
    sleeps: Vec<Duration>,
}

impl MockClock {
    /// A mock clock starting at the given Unix time.
    pub fn at_unix(seconds: u64) -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(seconds))
    }

    /// A mock clock showing `wall`.
    pub fn at(wall: SystemTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(MockState {
                wall,
                mono: Duration::ZERO,
                sleeps: Vec::new(),
            })),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut MockState) -> R) -> R {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        self.with(|s| {
            s.wall += by;
            s.mono += by;
        });
    }

    /// Sets the wall-clock time, forward or back (a clock step, as NTP may make). The
    /// monotonic clock is left alone: it never goes back.
    pub fn set(&self, wall: SystemTime) {
        self.with(|s| s.wall = wall);
    }

    /// The durations passed to `sleep` so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.with(|s| s.sleeps.clone())
    }
}

impl Clock for MockClock {
    fn now(&self) -> SystemTime {
        self.with(|s| s.wall)
    }

    fn monotonic(&self) -> Duration {
        self.with(|s| s.mono)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.with(|s| {
            s.sleeps.push(duration);
            s.wall += duration;
            s.mono += duration;
        });
        Box::pin(std::future::ready(()))
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mock_sleep_advances_and_records() {
        let c = MockClock::at_unix(1_000);
        c.sleep(Duration::from_secs(5)).await;
        assert_eq!(c.unix_seconds(), 1_005);
        assert_eq!(c.monotonic(), Duration::from_secs(5));
        assert_eq!(c.sleeps(), vec![Duration::from_secs(5)]);
    }

    #[test]
    fn mock_set_steps_the_wall_clock_only() {
        let c = MockClock::at_unix(1_000);
        c.advance(Duration::from_secs(3));
        c.set(UNIX_EPOCH + Duration::from_secs(500));
        assert_eq!(c.unix_seconds(), 500);
        assert_eq!(c.monotonic(), Duration::from_secs(3));
        c.set(UNIX_EPOCH + Duration::from_secs(2_000));
        assert_eq!(c.unix_seconds(), 2_000);
        assert_eq!(c.monotonic(), Duration::from_secs(3));
    }
}
