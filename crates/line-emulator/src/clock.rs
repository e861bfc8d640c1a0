//! The emulator's clock: the workspace's one clock ([`line_login::clock`]) plus an offset the
//! admin API can move forward (`POST /_emulator/clock`), so tests can expire codes and tokens
//! without waiting. The time underneath is a [`SharedClock`] (the system clock unless an
//! embedder injects one), so the emulator reads the time in one place only.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::UNIX_EPOCH;

use line_login::clock::{SharedClock, SystemClock};

/// The latest time the clock ever shows: 9999-12-31T23:59:59Z (Unix seconds). Keeping `now`
/// in `0..=MAX_TIME` keeps every `now + lifetime` and `exp - now` far from `i64` overflow.
pub const MAX_TIME: i64 = 253_402_300_799;
/// The largest offset, either way, the clock accepts (200 years); larger ones are clamped.
pub const MAX_OFFSET_SECS: i64 = 200 * 365 * 86_400;

/// A [`SharedClock`]'s time shifted by an adjustable offset. Every expiry check, `iat` and
/// `exp` uses it. The offset is clamped to `±MAX_OFFSET_SECS` and the time to `0..=MAX_TIME`.
#[derive(Debug)]
pub struct Clock {
    base: SharedClock,
    offset_secs: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// The system clock, with no offset.
    pub fn new() -> Self {
        Self::over(Arc::new(SystemClock::new()))
    }

    /// `base`'s time, with no offset (tests inject a `MockClock`).
    pub fn over(base: SharedClock) -> Self {
        Self {
            base,
            offset_secs: AtomicI64::new(0),
        }
    }

    /// The clock underneath the offset.
    pub fn base(&self) -> &SharedClock {
        &self.base
    }

    /// The emulator's current time, Unix seconds.
    pub fn now(&self) -> i64 {
        i64::try_from(self.base.unix_seconds())
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_secs.load(Ordering::Relaxed))
            .clamp(0, MAX_TIME)
    }

    /// The emulator's current time, Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        let real = self
            .base
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        real.saturating_add(
            self.offset_secs
                .load(Ordering::Relaxed)
                .saturating_mul(1000),
        )
        .clamp(0, MAX_TIME.saturating_mul(1000))
    }

    /// The current offset in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves the clock forward (or back, with a negative value); returns the new offset
    /// (clamped to `±MAX_OFFSET_SECS`).
    pub fn advance(&self, secs: i64) -> i64 {
        let mut current = self.offset_secs.load(Ordering::Relaxed);
        loop {
            let next = clamp_offset(current.saturating_add(secs));
            match self.offset_secs.compare_exchange(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// Sets the offset (clamped to `±MAX_OFFSET_SECS`); returns it.
    pub fn set_offset(&self, secs: i64) -> i64 {
        let secs = clamp_offset(secs);
        self.offset_secs.store(secs, Ordering::Relaxed);
        secs
    }
}

fn clamp_offset(secs: i64) -> i64 {
    secs.clamp(-MAX_OFFSET_SECS, MAX_OFFSET_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now() {
        let c = Clock::new();
        let a = c.now();
        assert_eq!(c.advance(600), 600);
        assert!(c.now() >= a + 600);
        c.set_offset(0);
        assert_eq!(c.offset(), 0);
    }

    #[test]
    fn the_offset_shifts_the_injected_clock() {
        let base = line_login::clock::MockClock::at_unix(1_000);
        let c = Clock::over(Arc::new(base.clone()));
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.now_millis(), 1_000_000);
        c.advance(60);
        base.advance(std::time::Duration::from_millis(1_500));
        assert_eq!(c.now(), 1_061);
        assert_eq!(c.now_millis(), 1_061_500);
    }

    #[test]
    fn extreme_offsets_are_clamped() {
        let c = Clock::new();
        assert_eq!(c.advance(i64::MAX), MAX_OFFSET_SECS);
        assert_eq!(c.advance(i64::MAX), MAX_OFFSET_SECS);
        assert!(c.now() <= MAX_TIME);
        assert!(c.now_millis() <= MAX_TIME * 1000);
        assert_eq!(c.set_offset(i64::MIN), -MAX_OFFSET_SECS);
        assert_eq!(c.now(), 0);
        assert_eq!(c.now_millis(), 0);
        assert_eq!(c.advance(i64::MIN), -MAX_OFFSET_SECS);
    }
}
