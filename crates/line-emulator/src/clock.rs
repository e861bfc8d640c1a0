//! The emulator's clock: system time plus an offset the admin API can move forward
//! (`POST /_emulator/clock`), so tests can expire codes and tokens without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// System time shifted by an adjustable offset. Every expiry check, `iat` and `exp` uses it.
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
        system_now_secs().saturating_add(self.offset_secs.load(Ordering::Relaxed))
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
    }

    /// The current offset in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Moves the clock forward (or back, with a negative value); returns the new offset.
    pub fn advance(&self, secs: i64) -> i64 {
        let mut current = self.offset_secs.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(secs);
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

    /// Sets the offset; returns it.
    pub fn set_offset(&self, secs: i64) -> i64 {
        self.offset_secs.store(secs, Ordering::Relaxed);
        secs
    }
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
}
