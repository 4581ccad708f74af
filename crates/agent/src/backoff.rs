//! Reconnect delays: exponential backoff with jitter.
//!
//! After the n-th consecutive failure the agent waits a random time in
//! `[d/2, d]` with `d = min(max, base · 2ⁿ)` ("equal jitter"): never less than half the
//! nominal delay, so a broken hub is not hammered, and spread enough that a fleet that
//! lost the hub at once does not come back in one wave. A connection that held for a
//! while resets the count. Pure: the random number is an argument.

use std::time::Duration;

/// First delay.
pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
/// Longest delay.
pub const DEFAULT_MAX: Duration = Duration::from_secs(60);

/// Consecutive failures and the delay schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(DEFAULT_BASE, DEFAULT_MAX)
    }
}

impl Backoff {
    /// A schedule from `base` doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Records a failure and returns how long to wait; `random` is any uniformly
    /// distributed `u64`.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let exponent = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let nominal = self
            .base
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let half = nominal / 2;
        let span = (nominal - half).as_nanos().max(1);
        let offset = u64::try_from(u128::from(random) % span).unwrap_or(0);
        half + Duration::from_nanos(offset)
    }

    /// The connection succeeded and held: start again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A small non-cryptographic generator (xorshift64*) for jitter, seeded per process.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock, the process id and `salt` (the device id's hash).
    pub fn seeded(salt: u64) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter((nanos ^ u64::from(std::process::id()).rotate_left(32) ^ salt) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        for random in [0, 1, 12_345_678_901, u64::MAX] {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
            for nominal in [1u64, 2, 4, 8, 8, 8] {
                let d = b.next_delay(random);
                let nominal = Duration::from_secs(nominal);
                assert!(d >= nominal / 2 && d <= nominal, "{d:?} for {nominal:?}");
            }
            b.reset();
            assert_eq!(b.failures(), 0);
            assert!(b.next_delay(random) <= Duration::from_secs(1));
        }
    }

    proptest! {
        #[test]
        fn delays_stay_in_their_band(random in any::<u64>(), failures in 0u32..100) {
            let mut b = Backoff::default();
            for _ in 0..failures {
                b.next_delay(random);
            }
            let d = b.next_delay(random);
            prop_assert!(d >= DEFAULT_BASE / 2 && d <= DEFAULT_MAX);
        }
    }
}
