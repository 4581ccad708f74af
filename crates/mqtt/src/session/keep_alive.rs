//! Keep-alive deadlines: when a silent connection is considered dead, and when a client
//! must show it is alive.
//!
//! Time is passed in as a [`Duration`] since an epoch of the caller's choosing (a
//! monotonic clock's start, a simulation's tick zero), so the rules run unchanged under
//! tokio, on a device, or in a simulation with virtual time.

use core::time::Duration;

/// The Keep Alive interval of one connection, as agreed in CONNECT (or overridden by
/// the Server Keep Alive of CONNACK in MQTT 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KeepAlive {
    interval: Duration,
}

impl KeepAlive {
    /// The keep-alive for an interval in seconds; 0 turns the mechanism off.
    pub fn new(keep_alive_secs: u16) -> Self {
        KeepAlive {
            interval: Duration::from_secs(u64::from(keep_alive_secs)),
        }
    }

    /// Whether keep-alive is off (interval 0).
    pub fn is_disabled(&self) -> bool {
        self.interval.is_zero()
    }

    /// When the server must give up on a client last heard from at `last_activity`:
    /// one and a half intervals later [MQTT-3.1.2-22]. `None` when keep-alive is off.
    pub fn deadline(&self, last_activity: Duration) -> Option<Duration> {
        if self.is_disabled() {
            return None;
        }
        Some(saturating_add(
            last_activity,
            self.interval + self.interval / 2,
        ))
    }

    /// Whether the deadline for a peer last heard from at `last_activity` has passed.
    pub fn is_expired(&self, last_activity: Duration, now: Duration) -> bool {
        self.deadline(last_activity)
            .is_some_and(|deadline| now >= deadline)
    }

    /// When a client that last sent a packet at `last_sent` must send PINGREQ: one
    /// interval later at the latest [MQTT-3.1.2-20]. `None` when keep-alive is off.
    pub fn ping_due(&self, last_sent: Duration) -> Option<Duration> {
        if self.is_disabled() {
            return None;
        }
        Some(saturating_add(last_sent, self.interval))
    }
}

/// `a + b`, pinned at the far future instead of panicking on overflow.
fn saturating_add(a: Duration, b: Duration) -> Duration {
    a.checked_add(b).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_one_and_a_half_intervals() {
        let k = KeepAlive::new(60);
        assert_eq!(
            k.deadline(Duration::from_secs(100)),
            Some(Duration::from_secs(190))
        );
        assert_eq!(
            KeepAlive::new(1).deadline(Duration::ZERO),
            Some(Duration::from_millis(1500))
        );
        assert!(!k.is_expired(Duration::from_secs(100), Duration::from_millis(189_999)));
        assert!(k.is_expired(Duration::from_secs(100), Duration::from_secs(190)));
    }

    #[test]
    fn zero_disables() {
        let k = KeepAlive::new(0);
        assert!(k.is_disabled());
        assert_eq!(k.deadline(Duration::from_secs(5)), None);
        assert_eq!(k.ping_due(Duration::from_secs(5)), None);
        assert!(!k.is_expired(Duration::ZERO, Duration::MAX));
    }

    #[test]
    fn ping_is_due_after_one_interval() {
        let k = KeepAlive::new(u16::MAX);
        assert_eq!(
            k.ping_due(Duration::from_secs(1)),
            Some(Duration::from_secs(65_536))
        );
    }

    #[test]
    fn no_overflow_near_the_end_of_time() {
        let k = KeepAlive::new(u16::MAX);
        assert_eq!(k.deadline(Duration::MAX), Some(Duration::MAX));
        assert_eq!(k.ping_due(Duration::MAX), Some(Duration::MAX));
    }
}
