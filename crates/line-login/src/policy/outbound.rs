//! The outbound limiter interface ([`OutboundLimiter`]) and its state.

use std::fmt;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

/// How an [`OutboundLimiter`] is limiting right now (for a health endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitMode {
    /// This process's own limit.
    Local,
    /// A limit shared by every instance (e.g. through Redis).
    Shared,
    /// A shared limiter that cannot reach its store: it falls back to its local share.
    Degraded,
}

impl LimitMode {
    /// `local`, `shared` or `degraded`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitMode::Local => "local",
            LimitMode::Shared => "shared",
            LimitMode::Degraded => "degraded",
        }
    }
}

/// The state of an [`OutboundLimiter`]: its mode, and since when (wall clock) it is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterStatus {
    /// The mode.
    pub mode: LimitMode,
    /// When the limiter entered this mode; `None` when unknown or always so.
    pub since: Option<SystemTime>,
}

impl LimiterStatus {
    /// A local limiter (always local).
    pub const LOCAL: LimiterStatus = LimiterStatus {
        mode: LimitMode::Local,
        since: None,
    };
}

/// Decides whether a call may go to LINE now.
///
/// The outbound limiter as an interface: where the policy asks "may I call LINE now?".
///
/// [`OutboundPolicy`](super::OutboundPolicy) holds one [`OutboundLimiter`]. The default is
/// the in-process GCRA [`RateLimiter`](super::RateLimiter) (governor); a fleet of instances
/// plugs in a shared one (the `line-limit-redis` crate keeps the GCRA and the cool-down in
/// Redis) through [`OutboundPolicy::with_limiter`](super::OutboundPolicy::with_limiter), so
/// every instance on that Redis and channel shares one budget toward LINE.
///
/// A limiter answers two questions:
///
/// - [`acquire`](OutboundLimiter::acquire): take one permit, waiting up to `max_wait`, or say
///   how long the caller would have had to wait (`Err(wait)`, nothing taken). A shared
///   cool-down that is running counts as a wait.
/// - the **cool-down**: the policy [reports](OutboundLimiter::report_cool_down) every `429`
///   with `Retry-After` (already clamped to the ceiling) and [reads](OutboundLimiter::cool_down_remaining)
///   the cool-down before each call, on top of its own local one. A local limiter has nothing
///   to share and keeps the defaults.
///
/// # Bringing your own limiter
///
/// ```
/// use std::time::Duration;
/// use futures::future::BoxFuture;
/// use line_login::policy::{OutboundLimiter, OutboundPolicy, PolicyConfig};
///
/// /// Lets every call through (a test double; never do this against LINE).
/// #[derive(Debug)]
/// struct Unlimited;
///
/// impl OutboundLimiter for Unlimited {
///     fn acquire(&self, _max_wait: Duration) -> BoxFuture<'_, Result<(), Duration>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// let policy = OutboundPolicy::with_limiter(PolicyConfig::default(), std::sync::Arc::new(Unlimited));
/// assert_eq!(policy.limiter_status().mode, line_login::policy::LimitMode::Local);
/// ```
pub trait OutboundLimiter: Send + Sync + fmt::Debug {
    /// Takes one permit, waiting up to `max_wait`. `Err(wait)`: the wait that would have been
    /// needed (longer than `max_wait`); nothing is taken then. Must return within about
    /// `max_wait` (plus the limiter's own bounded I/O), whatever its store does.
    fn acquire(&self, max_wait: Duration) -> BoxFuture<'_, Result<(), Duration>>;

    /// LINE answered `429` with `Retry-After` (clamped): hold every instance back for
    /// `period`. The default does nothing (the policy's local cool-down covers this process).
    fn report_cool_down(&self, period: Duration) {
        let _ = period;
    }

    /// The shared cool-down still running as far as this limiter knows (it may learn of it
    /// only on its next [`acquire`](Self::acquire)); `None` when none. Default: `None`.
    fn cool_down_remaining(&self) -> Option<Duration> {
        None
    }

    /// The limiter's state. Default: [`LimiterStatus::LOCAL`].
    fn status(&self) -> LimiterStatus {
        LimiterStatus::LOCAL
    }

    /// Checks the limiter's store now (bounded I/O, no permit taken) and returns the state,
    /// for a health check. Default: [`status`](Self::status).
    fn check(&self) -> BoxFuture<'_, LimiterStatus> {
        Box::pin(async move { self.status() })
    }
}

impl OutboundLimiter for super::RateLimiter {
    fn acquire(&self, max_wait: Duration) -> BoxFuture<'_, Result<(), Duration>> {
        Box::pin(super::RateLimiter::acquire(self, max_wait))
    }
}
