//! Broker metrics, exported in the Prometheus text format.
//!
//! Counters are plain atomics bumped on the hot path with `Relaxed` ordering; nothing
//! here allocates or locks while counting. [`Metrics::render`] is the only reader.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (connections, queue depths).
#[derive(Default, Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (may be negative).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds, in seconds, of the latency histogram buckets: 50 µs to 1 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];

/// A fixed-bucket latency histogram (fsync, publish to delivery).
#[derive(Default, Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Appends the histogram in the Prometheus text format (buckets cumulative).
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Counts by a reason label fixed in code (`&'static str`), for refusals whose reasons
/// come from a pluggable authenticator. A short vector behind a mutex: refusals are
/// rare next to messages, and the label set is small and bounded by the code (past
/// [`MAX_REASONS`] distinct labels, the rest are counted as `other`).
#[derive(Default, Debug)]
pub struct ReasonCounts(std::sync::Mutex<Vec<(&'static str, u64)>>);

/// Distinct reason labels kept before new ones are folded into `other`.
const MAX_REASONS: usize = 32;

impl ReasonCounts {
    /// Adds one to `reason`.
    pub fn inc(&self, reason: &'static str) {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let label = if counts.len() >= MAX_REASONS && !counts.iter().any(|(r, _)| *r == reason) {
            "other"
        } else {
            reason
        };
        match counts.iter_mut().find(|(r, _)| *r == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }

    /// The count for `reason` (0 if never seen).
    pub fn get(&self, reason: &str) -> u64 {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Appends the counts as the counter family `name` with the label `label`, in the
    /// Prometheus text format; label values are escaped so the output stays valid.
    pub fn render(&self, name: &str, help: &str, label: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (value, n) in self.snapshot() {
            let value = value.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }

    /// Every label with its count, sorted by label (stable output for scrapers).
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        counts.sort_unstable();
        counts
    }
}

/// Per-QoS counters, indexed by QoS level.
pub type PerQos = [Counter; 3];

/// Everything the broker counts.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Connections currently open (after CONNACK).
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Connections refused at CONNECT (bad credentials, bad packet…).
    pub connects_refused: Counter,
    /// CONNECTs refused by authentication, by reason (`bad signature`, `unknown
    /// device`, `device disabled`, …).
    pub auth_refusals: ReasonCounts,
    /// PUBLISH topics an identity was not allowed to publish to.
    pub acl_denied_publish: Counter,
    /// SUBSCRIBE filters an identity was not allowed to subscribe to.
    pub acl_denied_subscribe: Counter,
    /// Connections closed for a protocol violation.
    pub protocol_errors: Counter,
    /// TLS handshakes that failed or timed out (bad client, untrusted certificate, scan).
    pub tls_handshake_failures: Counter,
    /// TLS handshakes refused because of the client's certificate, by reason
    /// (expired, unknown CA, revoked…); also counted in `tls_handshake_failures`.
    pub tls_client_cert_refusals: ReasonCounts,
    /// Sessions held in memory, connected or not.
    pub sessions: Gauge,
    /// PUBLISH packets received from clients, per QoS.
    pub messages_in: PerQos,
    /// PUBLISH packets delivered to clients, per QoS.
    pub messages_out: PerQos,
    /// Payload bytes received.
    pub bytes_in: Counter,
    /// Payload bytes delivered.
    pub bytes_out: Counter,
    /// Messages waiting in session queues (offline or over the in-flight window).
    pub queued_messages: Gauge,
    /// Messages dropped because a session queue was full.
    pub dropped_queue_full: Counter,
    /// QoS 0 messages shed because a connection's outbound buffer was full.
    pub dropped_qos0_slow_consumer: Counter,
    /// Messages dropped because their expiry interval passed.
    pub dropped_expired: Counter,
    /// Messages dropped because they exceed a client's maximum packet size.
    pub dropped_too_large: Counter,
    /// Events the in-process service (control plane) was too far behind to take.
    pub service_events_dropped: Counter,
    /// Retained messages held.
    pub retained_messages: Gauge,
    /// Records appended to the durable log.
    pub log_appends: Counter,
    /// Bytes appended to the durable log.
    pub log_bytes: Counter,
    /// fsync calls on the durable log.
    pub log_fsyncs: Counter,
    /// Duration of each log fsync.
    pub fsync_seconds: Histogram,
}

impl Metrics {
    /// Renders all metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let per_qos = |out: &mut String, name: &str, help: &str, v: &PerQos| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (qos, c) in v.iter().enumerate() {
                let _ = writeln!(out, "{name}{{qos=\"{qos}\"}} {}", c.get());
            }
        };
        gauge(
            &mut out,
            "bosun_mqtt_connections",
            "Open MQTT connections.",
            self.connections.get(),
        );
        counter(
            &mut out,
            "bosun_mqtt_connections_total",
            "MQTT connections accepted.",
            self.connections_total.get(),
        );
        counter(
            &mut out,
            "bosun_mqtt_connects_refused_total",
            "CONNECTs refused.",
            self.connects_refused.get(),
        );
        self.auth_refusals.render(
            "bosun_auth_refusals_total",
            "CONNECTs refused by authentication, by reason.",
            "reason",
            &mut out,
        );
        let _ = writeln!(out, "# HELP bosun_acl_denied_total Requests denied by authorization, by action.\n# TYPE bosun_acl_denied_total counter");
        for (action, c) in [
            ("publish", &self.acl_denied_publish),
            ("subscribe", &self.acl_denied_subscribe),
        ] {
            let _ = writeln!(
                out,
                "bosun_acl_denied_total{{action=\"{action}\"}} {}",
                c.get()
            );
        }
        counter(
            &mut out,
            "bosun_mqtt_protocol_errors_total",
            "Connections closed for a protocol violation.",
            self.protocol_errors.get(),
        );
        counter(
            &mut out,
            "bosun_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failures.get(),
        );
        self.tls_client_cert_refusals.render(
            "bosun_tls_client_cert_refusals_total",
            "TLS handshakes refused for the client certificate, by reason.",
            "reason",
            &mut out,
        );
        counter(
            &mut out,
            "bosun_service_events_dropped_total",
            "Broker events dropped because the control plane fell behind.",
            self.service_events_dropped.get(),
        );
        gauge(
            &mut out,
            "bosun_mqtt_sessions",
            "Sessions held, connected or not.",
            self.sessions.get(),
        );
        per_qos(
            &mut out,
            "bosun_mqtt_messages_in_total",
            "PUBLISH packets received.",
            &self.messages_in,
        );
        per_qos(
            &mut out,
            "bosun_mqtt_messages_out_total",
            "PUBLISH packets delivered.",
            &self.messages_out,
        );
        counter(
            &mut out,
            "bosun_mqtt_bytes_in_total",
            "Payload bytes received.",
            self.bytes_in.get(),
        );
        counter(
            &mut out,
            "bosun_mqtt_bytes_out_total",
            "Payload bytes delivered.",
            self.bytes_out.get(),
        );
        gauge(
            &mut out,
            "bosun_mqtt_queued_messages",
            "Messages waiting in session queues.",
            self.queued_messages.get(),
        );
        let _ = writeln!(out, "# HELP bosun_mqtt_dropped_total Messages dropped, by reason.\n# TYPE bosun_mqtt_dropped_total counter");
        for (reason, c) in [
            ("queue_full", &self.dropped_queue_full),
            ("slow_consumer_qos0", &self.dropped_qos0_slow_consumer),
            ("expired", &self.dropped_expired),
            ("too_large", &self.dropped_too_large),
        ] {
            let _ = writeln!(
                out,
                "bosun_mqtt_dropped_total{{reason=\"{reason}\"}} {}",
                c.get()
            );
        }
        gauge(
            &mut out,
            "bosun_mqtt_retained_messages",
            "Retained messages held.",
            self.retained_messages.get(),
        );
        counter(
            &mut out,
            "bosun_log_appends_total",
            "Records appended to the durable log.",
            self.log_appends.get(),
        );
        counter(
            &mut out,
            "bosun_log_bytes_total",
            "Bytes appended to the durable log.",
            self.log_bytes.get(),
        );
        counter(
            &mut out,
            "bosun_log_fsyncs_total",
            "fsync calls on the durable log.",
            self.log_fsyncs.get(),
        );
        self.fsync_seconds.render(
            "bosun_log_fsync_seconds",
            "Duration of durable log fsyncs.",
            &mut out,
        );
        out
    }
}
