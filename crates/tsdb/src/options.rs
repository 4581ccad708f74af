//! Tuning and retention settings, with defaults meant for a hub receiving one message
//! per device every few seconds.

use std::time::Duration;

/// How long each kind of data of a series class is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw points.
    pub raw: Duration,
    /// 1-minute rollups.
    pub rollup_1m: Duration,
    /// 1-hour rollups.
    pub rollup_1h: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        const DAY: u64 = 24 * 3600;
        Retention {
            raw: Duration::from_secs(7 * DAY),
            rollup_1m: Duration::from_secs(90 * DAY),
            rollup_1h: Duration::from_secs(2 * 365 * DAY),
        }
    }
}

/// A retention class: fields whose name starts with `field_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// Prefix of the field names the rule covers.
    pub field_prefix: String,
    /// What they keep.
    pub retention: Retention,
}

/// Settings of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Width of a time partition: a sealed chunk never spans two, so whole chunks expire.
    pub partition: Duration,
    /// `tick` seals the heads when the last seal is this old (bounds replay time).
    pub seal_interval: Duration,
    /// `tick` seals when the WAL reaches this size; `append` seals by itself at twice
    /// this so memory stays bounded even without `tick`.
    pub seal_wal_bytes: u64,
    /// More segment files than this and `tick` merges all but the `max_segments / 2`
    /// largest into one.
    pub max_segments: usize,
    /// Rules checked in order; the first matching prefix wins.
    pub rules: Vec<RetentionRule>,
    /// Retention of fields no rule matches.
    pub default_retention: Retention,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            partition: Duration::from_secs(2 * 3600),
            seal_interval: Duration::from_secs(600),
            seal_wal_bytes: 64 << 20,
            max_segments: 8,
            rules: Vec::new(),
            default_retention: Retention::default(),
        }
    }
}

impl Options {
    /// The retention of `field`.
    pub fn retention_for(&self, field: &str) -> Retention {
        self.rules
            .iter()
            .find(|r| field.starts_with(&r.field_prefix))
            .map_or(self.default_retention, |r| r.retention)
    }
}

/// A duration in whole milliseconds as an `i64`, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
