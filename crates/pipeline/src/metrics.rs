//! The pipeline's counters in the Prometheus text format, next to the broker's on
//! `/metrics`, built from the broker's metric types (one implementation of counters,
//! labelled counts with a bounded label set, and latency histograms).

use std::fmt::Write;

use broker::metrics::{Counter, Histogram, ReasonCounts};

/// Counters the pipeline keeps.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) messages: Counter,
    pub(crate) points: Counter,
    pub(crate) lagged: Counter,
    pub(crate) anomalies: Counter,
    pub(crate) captures: Counter,
    pub(crate) store_failures: Counter,
    /// Dead letters by reason.
    pub(crate) dead: ReasonCounts,
    /// Messages whose device timestamp was replaced, by issue.
    pub(crate) timestamps: ReasonCounts,
    /// Anomalous message arrival → its C2D command handed to the broker.
    pub(crate) loop_latency: Histogram,
}

impl Metrics {
    /// The Prometheus text of these counters.
    pub(crate) fn render(&self, out: &mut String) {
        let simple = [
            (
                "bosun_pipeline_messages_total",
                "Telemetry messages the pipeline took in.",
                &self.messages,
            ),
            (
                "bosun_pipeline_points_total",
                "Points written to the time-series store.",
                &self.points,
            ),
            (
                "bosun_pipeline_lagged_total",
                "Messages skipped because the pipeline fell behind the hub; always 0 since the hand-off waits instead (see bosun_pipeline_backpressure_total).",
                &self.lagged,
            ),
            (
                "bosun_pipeline_anomalies_total",
                "Anomaly state changes recorded.",
                &self.anomalies,
            ),
            (
                "bosun_pipeline_captures_total",
                "Raw captures stored.",
                &self.captures,
            ),
            (
                "bosun_pipeline_store_failures_total",
                "Batches the time-series store refused.",
                &self.store_failures,
            ),
        ];
        for (name, help, counter) in simple {
            let value = counter.get();
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        self.dead.render(
            "bosun_pipeline_dead_letters_total",
            "Messages dead-lettered, by reason.",
            "reason",
            out,
        );
        self.timestamps.render(
            "bosun_pipeline_timestamps_replaced_total",
            "Device timestamps replaced by the hub's receive time, by issue.",
            "issue",
            out,
        );
        self.loop_latency.render(
            "bosun_pipeline_anomaly_to_command_seconds",
            "From an anomalous message's arrival to its command leaving for the broker.",
            out,
        );
    }
}
