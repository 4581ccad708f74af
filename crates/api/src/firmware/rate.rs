//! The download rate limit: one token bucket shared by every image download of the
//! hub (`firmware.max_download_rate`, bytes per second), so a phase of many devices
//! cannot fill the hub's uplink. Each body chunk takes its size in tokens before it
//! is sent; a chunk that finds the bucket short waits for the deficit at the rate.
//! The bucket holds at most one second of tokens (the burst), and starts full.
//!
//! Debt is allowed (a chunk larger than the tokens left is sent after the wait its
//! deficit costs), so any chunk size works with any rate; fairness between downloads
//! is tokio's (each waits its turn in the order it asked).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A shared token bucket of bytes.
#[derive(Debug)]
pub struct DownloadLimit {
    /// Bytes per second.
    rate: u64,
    /// Tokens now (negative: debt already promised to earlier chunks), and when.
    state: Mutex<(f64, Instant)>,
}

impl DownloadLimit {
    /// A limit of `bytes_per_second` (at least 1) across all downloads.
    pub fn new(bytes_per_second: u64) -> DownloadLimit {
        let rate = bytes_per_second.max(1);
        DownloadLimit {
            rate,
            state: Mutex::new((rate as f64, Instant::now())),
        }
    }

    /// The limit, bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// How long a chunk of `bytes` must wait, taking its tokens now.
    fn reserve(&self, bytes: u64) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let rate = self.rate as f64;
        let refilled = state.0 + now.saturating_duration_since(state.1).as_secs_f64() * rate;
        let tokens = refilled.min(rate) - bytes as f64;
        *state = (tokens, now);
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens / rate)
        }
    }

    /// Waits until `bytes` may be sent.
    pub async fn take(&self, bytes: u64) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_after_the_burst() {
        let limit = DownloadLimit::new(100_000);
        let t0 = Instant::now();
        limit.take(100_000).await;
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "the first second is the burst"
        );
        for _ in 0..10 {
            limit.take(25_000).await;
        }
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(2_490) && waited <= Duration::from_millis(2_510),
            "250 kB beyond the burst at 100 kB/s: {waited:?}"
        );
        // Idle time refills at most one second's worth.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let t1 = Instant::now();
        limit.take(150_000).await;
        let waited = t1.elapsed();
        assert!(
            waited >= Duration::from_millis(490) && waited <= Duration::from_millis(510),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn downloads_share_one_bucket() {
        let limit = std::sync::Arc::new(DownloadLimit::new(10_000));
        limit.take(10_000).await; // the burst
        let t0 = Instant::now();
        let a = tokio::spawn({
            let l = limit.clone();
            async move { l.take(10_000).await }
        });
        let b = tokio::spawn({
            let l = limit.clone();
            async move { l.take(10_000).await }
        });
        let _ = (a.await, b.await);
        assert!(
            t0.elapsed() >= Duration::from_millis(1_990),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(DownloadLimit::new(0).rate(), 1);
    }
}
