//! The emulator's clock: system time plus an offset the admin API can move forward
//! (`POST /_emulator/clock`), so tests can expire codes and tokens without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The latest time the clock ever shows: 9999-12-31T23:59:59Z (Unix seconds). Keeping `now`
/// in `0..=MAX_TIME` keeps every `now + lifetime` and `exp - now` far from `i64` overflow.
pub const MAX_TIME: i64 = 253_402_300_799;
/// The largest offset, either way, the clock accepts (200 years); larger ones are clamped.
pub const MAX_OFFSET_SECS: i64 = 200 * 365 * 86_400;

/// System time shifted by an adjustable offset. Every expiry check, `iat` and `exp` uses it.
/// The offset is clamped to `±MAX_OFFSET_SECS` and the time to `0..=MAX_TIME`.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// A clock with no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The emulator's current time, Unix seconds.
    pub fn now(&self) -> i64 {
        system_now_secs()
            .saturating_add(self.offset_secs.load(Ordering::Relaxed))
            .clamp(0, MAX_TIME)
    }

    /// The emulator's current time, Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        let real = SystemTime::now()
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

fn system_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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
