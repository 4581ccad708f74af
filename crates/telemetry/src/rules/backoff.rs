//! Webhook retry delays: exponential from the rule's `backoff_ms`, capped, and
//! deterministic. Jitter is optional and comes from the caller (a random number in
//! `0..=1`), so tests and replays get the same delays.

use std::time::Duration;

use super::action::Action;

/// Longest delay between two webhook attempts, however many failures came before.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// Retry schedule of one webhook action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base_ms: u64,
    /// Longest delay.
    pub cap_ms: u64,
    /// Deliveries tried in all (the first plus retries).
    pub max_attempts: u32,
}

impl Backoff {
    /// The schedule of a webhook action, `None` for other actions.
    pub fn for_action(action: &Action) -> Option<Backoff> {
        match action {
            Action::Webhook {
                max_attempts,
                backoff_ms,
                ..
            } => Some(Backoff {
                base_ms: *backoff_ms,
                cap_ms: MAX_BACKOFF_MS.max(*backoff_ms),
                max_attempts: *max_attempts,
            }),
            _ => None,
        }
    }

    /// How long to wait after failed attempt `attempt` (1-based) before the next one:
    /// `base · 2^(attempt-1)`, capped. `None` once `attempt` has used up the attempts
    /// (or for attempt 0, which never failed).
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt >= self.max_attempts {
            return None;
        }
        let factor = 1u64.checked_shl(attempt - 1).unwrap_or(u64::MAX);
        let ms = self.base_ms.saturating_mul(factor).min(self.cap_ms);
        Some(Duration::from_millis(ms))
    }

    /// [`Backoff::delay`] with "equal jitter": half the delay is fixed, the other half
    /// scaled by `jitter` (clamped to `0..=1`; NaN counts as 1), so concurrent retries
    /// spread out without ever waiting less than half the schedule.
    pub fn delay_with_jitter(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        let delay = self.delay(attempt)?;
        let jitter = if jitter.is_nan() {
            1.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Some(delay.mul_f64(0.5 + jitter / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn webhook(max_attempts: u32, backoff_ms: u64) -> Option<Backoff> {
        Backoff::for_action(&Action::Webhook {
            url: "http://h".into(),
            max_attempts,
            backoff_ms,
        })
    }

    #[test]
    fn doubles_until_the_cap_and_stops_after_the_last_attempt() {
        let backoff = webhook(10, 500);
        let delays: Vec<_> = (0..=10)
            .map(|n| backoff.and_then(|b| b.delay(n)).map(|d| d.as_millis()))
            .collect();
        let expected = [
            None,
            Some(500),
            Some(1000),
            Some(2000),
            Some(4000),
            Some(8000),
            Some(16000),
            Some(30000),
            Some(30000),
            Some(30000),
            None,
        ];
        assert_eq!(delays, expected);
        assert_eq!(Backoff::for_action(&Action::Store {}), None);
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        let backoff = webhook(5, 1000);
        let at = |j| backoff.and_then(|b| b.delay_with_jitter(1, j));
        assert_eq!(at(0.0), Some(Duration::from_millis(500)));
        assert_eq!(at(1.0), Some(Duration::from_millis(1000)));
        assert_eq!(at(7.0), Some(Duration::from_millis(1000)));
        assert_eq!(at(f64::NAN), Some(Duration::from_millis(1000)));
        assert_eq!(at(-1.0), Some(Duration::from_millis(500)));
    }

    proptest! {
        #[test]
        fn never_panics_and_is_bounded(base in any::<u64>(), attempts in any::<u32>(), n in any::<u32>(), j in any::<f64>()) {
            let backoff = Backoff { base_ms: base, cap_ms: MAX_BACKOFF_MS, max_attempts: attempts };
            if let Some(d) = backoff.delay_with_jitter(n, j) {
                prop_assert!(d <= Duration::from_millis(MAX_BACKOFF_MS));
            }
        }
    }
}
