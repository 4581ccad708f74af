//! The pipeline's counters in the Prometheus text format, next to the broker's on
//! `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Counters the pipeline keeps.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) messages: AtomicU64,
    pub(crate) points: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) anomalies: AtomicU64,
    pub(crate) captures: AtomicU64,
    pub(crate) store_failures: AtomicU64,
    /// Dead letters by reason.
    dead: Mutex<BTreeMap<&'static str, u64>>,
    /// Messages whose device timestamp was replaced, by issue.
    timestamps: Mutex<BTreeMap<&'static str, u64>>,
    /// Anomalous message arrival → its C2D command handed to the broker.
    loop_latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn dead_letter(&self, reason: &'static str) {
        *self
            .dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub(crate) fn timestamp_replaced(&self, issue: &'static str) {
        *self
            .timestamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(issue)
            .or_default() += 1;
    }

    pub(crate) fn loop_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut h = self.loop_latency.lock().unwrap_or_else(|e| e.into_inner());
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The Prometheus text of these counters.
    pub(crate) fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let simple = [
            (
                "bosun_pipeline_messages_total",
                "Telemetry messages the pipeline took in.",
                get(&self.messages),
            ),
            (
                "bosun_pipeline_points_total",
                "Points written to the time-series store.",
                get(&self.points),
            ),
            (
                "bosun_pipeline_lagged_total",
                "Messages skipped because the pipeline fell behind the hub.",
                get(&self.lagged),
            ),
            (
                "bosun_pipeline_anomalies_total",
                "Anomaly state changes recorded.",
                get(&self.anomalies),
            ),
            (
                "bosun_pipeline_captures_total",
                "Raw captures stored.",
                get(&self.captures),
            ),
            (
                "bosun_pipeline_store_failures_total",
                "Batches the time-series store refused.",
                get(&self.store_failures),
            ),
        ];
        for (name, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        labelled(
            out,
            "bosun_pipeline_dead_letters_total",
            "Messages dead-lettered, by reason.",
            "reason",
            &self.dead,
        );
        labelled(
            out,
            "bosun_pipeline_timestamps_replaced_total",
            "Device timestamps replaced by the hub's receive time, by issue.",
            "issue",
            &self.timestamps,
        );
        let h = self.loop_latency.lock().unwrap_or_else(|e| e.into_inner());
        let name = "bosun_pipeline_anomaly_to_command_seconds";
        let _ = writeln!(out, "# HELP {name} From an anomalous message's arrival to its command leaving for the broker.\n# TYPE {name} histogram");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            h.count, h.sum, h.count
        );
    }
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    counts: &Mutex<BTreeMap<&'static str, u64>>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, count) in counts.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
    }
}
