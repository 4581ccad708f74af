//! Counters of what an agent did, readable while it runs: for the simulator's report
//! and for tests, without parsing logs. Lock-free (relaxed atomics: each counter is
//! exact, a snapshot of several is not a single instant).

use std::sync::atomic::{AtomicU64, Ordering};

/// Shared counters; the agent increments them, anyone holding the `Arc` reads them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Feature messages written to the offline buffer.
    pub produced: AtomicU64,
    /// Feature messages the hub acknowledged (PUBACK) and that left the buffer.
    pub acknowledged: AtomicU64,
    /// Feature windows skipped because the agent fell a whole interval behind.
    pub skipped: AtomicU64,
    /// Capture chunks published.
    pub chunks: AtomicU64,
    /// Captures streamed to the end.
    pub captures: AtomicU64,
    /// Connections accepted by the hub.
    pub connects: AtomicU64,
    /// Connections lost (not counting a clean shutdown).
    pub disconnects: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::produced`].
    pub produced: u64,
    /// See [`Stats::acknowledged`].
    pub acknowledged: u64,
    /// See [`Stats::skipped`].
    pub skipped: u64,
    /// See [`Stats::chunks`].
    pub chunks: u64,
    /// See [`Stats::captures`].
    pub captures: u64,
    /// See [`Stats::connects`].
    pub connects: u64,
    /// See [`Stats::disconnects`].
    pub disconnects: u64,
}

impl Stats {
    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            produced: read(&self.produced),
            acknowledged: read(&self.acknowledged),
            skipped: read(&self.skipped),
            chunks: read(&self.chunks),
            captures: read(&self.captures),
            connects: read(&self.connects),
            disconnects: read(&self.disconnects),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
