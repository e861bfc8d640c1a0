//! The channel-wide cool-down after a `429` with `Retry-After`, and the counters of calls the
//! policy held back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::OutboundLimiter;
use crate::clock::SharedClock;

/// A "do not call LINE before" mark on the monotonic clock, shared by every endpoint class,
/// and — when built [`shared`](Self::shared) — with every instance through an
/// [`OutboundLimiter`].
#[derive(Debug)]
pub struct CoolDown {
    clock: SharedClock,
    until: Mutex<Duration>,
    shared: Option<Arc<dyn OutboundLimiter>>,
}

impl CoolDown {
    /// No cool-down.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            until: Mutex::new(Duration::ZERO),
            shared: None,
        }
    }

    /// No cool-down; [`start`](Self::start) also reports to `limiter`, and
    /// [`remaining`](Self::remaining) also honours the limiter's (shared) cool-down.
    pub fn shared(clock: SharedClock, limiter: Arc<dyn OutboundLimiter>) -> Self {
        Self {
            shared: Some(limiter),
            ..Self::new(clock)
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Duration) -> R) -> R {
        let mut g = match self.until.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// Holds calls back for `period` from now (never shortens a cool-down already running).
    pub fn start(&self, period: Duration) {
        if period.is_zero() {
            return;
        }
        let until = self.clock.monotonic() + period;
        self.with(|u| *u = (*u).max(until));
        if let Some(shared) = &self.shared {
            shared.report_cool_down(period);
        }
    }

    /// How long calls are still held back (the longer of this process's and the shared
    /// cool-down); `None` when they are not.
    pub fn remaining(&self) -> Option<Duration> {
        let now = self.clock.monotonic();
        let local = self.with(|u| u.checked_sub(now).filter(|d| !d.is_zero()));
        let shared = self
            .shared
            .as_ref()
            .and_then(|s| s.cool_down_remaining())
            .filter(|d| !d.is_zero());
        local.max(shared)
    }
}

/// Why the policy held a call back without sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitReason {
    /// The shared rate limiter would have made the call wait longer than `max_wait`.
    RateLimit,
    /// LINE asked (`429` with `Retry-After`) to slow down, and the cool-down is still running.
    Cooldown,
    /// The breaker of the call's endpoint class is open (or its single probe is out).
    Breaker,
}

impl LimitReason {
    /// Every reason.
    pub const ALL: [LimitReason; 3] = [
        LimitReason::RateLimit,
        LimitReason::Cooldown,
        LimitReason::Breaker,
    ];

    /// The label value: `rate_limit`, `cooldown`, `breaker` (for
    /// `linelogin_outbound_limited_total{reason}`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitReason::RateLimit => "rate_limit",
            LimitReason::Cooldown => "cooldown",
            LimitReason::Breaker => "breaker",
        }
    }

    fn index(self) -> usize {
        match self {
            LimitReason::RateLimit => 0,
            LimitReason::Cooldown => 1,
            LimitReason::Breaker => 2,
        }
    }
}

/// Monotonic counters of held-back calls, one per [`LimitReason`].
#[derive(Debug, Default)]
pub struct LimitCounters {
    counts: [AtomicU64; 3],
}

impl LimitCounters {
    /// Counts one held-back call.
    pub fn record(&self, reason: LimitReason) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls held back for `reason` since the policy was made.
    pub fn get(&self, reason: LimitReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::MockClock;

    #[test]
    fn cool_down_runs_out_and_never_shrinks() {
        let clock = MockClock::at_unix(0);
        let c = CoolDown::new(Arc::new(clock.clone()));
        assert_eq!(c.remaining(), None);
        c.start(Duration::from_secs(10));
        c.start(Duration::from_secs(2));
        assert_eq!(c.remaining(), Some(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(10));
        assert_eq!(c.remaining(), None);
    }
}
