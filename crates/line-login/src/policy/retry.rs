//! Backoff with full jitter, and the retry budget.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// The delay before retry number `retry` (1 for the first retry): a uniformly random value
/// in `[0, min(max, base * 2^(retry-1))]` ("full jitter"), but never less than `retry_after`
/// when LINE sent one.
pub fn backoff_delay(
    retry: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let exp = retry.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exp).min(max);
    let jittered = if ceiling.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64))
    };
    match retry_after {
        Some(ra) => jittered.max(ra),
        None => jittered,
    }
}

/// A process-wide retry budget: every first attempt deposits `ratio` tokens (up to
/// `reserve`), every retry withdraws one. With the defaults, retries add at most about 10%
/// to the traffic once the reserve of 10 is spent, however many calls fail.
///
/// Kept in thousandths of a token, so deposits add up exactly.
#[derive(Debug)]
pub struct RetryBudget {
    deposit_milli: u64,
    cap_milli: u64,
    balance_milli: Mutex<u64>,
}

const MILLI: u64 = 1000;

impl RetryBudget {
    /// A full budget.
    pub fn new(ratio: f64, reserve: f64) -> Self {
        let to_milli = |x: f64| (x.max(0.0) * MILLI as f64).round() as u64;
        let cap_milli = to_milli(reserve);
        Self {
            deposit_milli: to_milli(ratio),
            cap_milli,
            balance_milli: Mutex::new(cap_milli),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> R {
        let mut g = match self.balance_milli.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// Records a first attempt.
    pub fn deposit(&self) {
        let (d, cap) = (self.deposit_milli, self.cap_milli);
        self.with(|b| *b = (*b + d).min(cap));
    }

    /// Takes one retry token, if there is one.
    pub fn try_withdraw(&self) -> bool {
        self.with(|b| {
            if *b >= MILLI {
                *b -= MILLI;
                true
            } else {
                false
            }
        })
    }

    /// Tokens left.
    pub fn balance(&self) -> f64 {
        self.with(|b| *b as f64 / MILLI as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = rand::rng();
        for retry in 1..10 {
            let ceiling =
                Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_secs(1));
            for _ in 0..200 {
                let d = backoff_delay(
                    retry,
                    Duration::from_millis(100),
                    Duration::from_secs(1),
                    None,
                    &mut rng,
                );
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn backoff_honours_retry_after() {
        let mut rng = rand::rng();
        let d = backoff_delay(
            1,
            Duration::from_millis(100),
            Duration::from_secs(1),
            Some(Duration::from_secs(3)),
            &mut rng,
        );
        assert!(d >= Duration::from_secs(3));
    }

    #[test]
    fn budget_limits_retries() {
        let b = RetryBudget::new(0.1, 2.0);
        assert!(b.try_withdraw());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        for _ in 0..10 {
            b.deposit();
        }
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
    }
}
