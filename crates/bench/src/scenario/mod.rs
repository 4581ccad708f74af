//! The load patterns of the benchmark, one module each, and what they have in common:
//! the settings they read, the metrics they return, and the measuring window (wall
//! clock plus broker CPU time read from `/proc` before and after).
//!
//! A scenario function gets a freshly started broker and returns a list of named
//! metrics; it never compares brokers itself (that is [`crate::report`]'s job), so the
//! same code path produces the numbers for both.

pub(crate) mod fanin;
pub(crate) mod fanout;
pub(crate) mod idle;
pub(crate) mod latency;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::ValueEnum;

use crate::peer::Broker;

/// One benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// 100 publishers, QoS 0, into one `bench/#` subscriber.
    Fanin0,
    /// 100 publishers, QoS 1 with 100 in flight each, into one persistent QoS 1 subscriber.
    Fanin1,
    /// One publisher to 1,000 subscribers of the same topic, QoS 0.
    Fanout,
    /// Thousands of idle subscribed connections: memory per connection and connect rate.
    Idle,
    /// Fixed-rate QoS 1 stream: publish-to-deliver latency percentiles.
    Latency,
}

impl Scenario {
    /// Every scenario, in report order.
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Fanin0,
        Scenario::Fanin1,
        Scenario::Fanout,
        Scenario::Idle,
        Scenario::Latency,
    ];

    /// The name used on the command line and in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Fanin0 => "fanin0",
            Scenario::Fanin1 => "fanin1",
            Scenario::Fanout => "fanout",
            Scenario::Idle => "idle",
            Scenario::Latency => "latency",
        }
    }
}

/// Sizes of the workloads, from the command line.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Messages published in total by the fan-in publishers.
    pub(crate) fanin_messages: u64,
    /// Deliveries targeted in fan-out (messages published × subscribers).
    pub(crate) fanout_deliveries: u64,
    /// Subscribers in fan-out.
    pub(crate) fanout_subscribers: usize,
    /// Idle connections opened.
    pub(crate) idle_clients: usize,
    /// Length of the latency run.
    pub(crate) latency_secs: u64,
    /// Publish rate of the latency run, messages per second.
    pub(crate) latency_rate: u64,
    /// This executable, re-run as `worker` for the idle connections.
    pub(crate) exe: PathBuf,
}

/// Whether a larger value of a metric is better, for the report's reading aid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    /// Throughput, efficiency.
    Higher,
    /// Latency, memory, loss.
    Lower,
}

/// One number measured in one run.
#[derive(Clone, Debug)]
pub(crate) struct Metric {
    /// Stable identifier, also the row label.
    pub(crate) name: &'static str,
    /// Unit, for the report.
    pub(crate) unit: &'static str,
    /// Direction of goodness.
    pub(crate) better: Better,
    /// The measured value.
    pub(crate) value: f64,
}

/// Shorthand for building a [`Metric`].
pub(crate) fn metric(name: &'static str, unit: &'static str, better: Better, value: f64) -> Metric {
    Metric {
        name,
        unit,
        better,
        value,
    }
}

/// The four rows every throughput scenario reports: rate, rate per broker CPU-second,
/// broker CPU and share delivered. `names` are the rate rows' labels, which the report's
/// target checks look up.
pub(crate) fn throughput(
    names: (&'static str, &'static str),
    received: u64,
    expected: u64,
    secs: f64,
    cpu: f64,
) -> [Metric; 4] {
    [
        metric(names.0, "msg/s", Better::Higher, received as f64 / secs),
        metric(
            names.1,
            "msg/CPU-s",
            Better::Higher,
            received as f64 / cpu.max(0.01),
        ),
        metric("broker CPU", "s", Better::Lower, cpu),
        metric(
            "delivered",
            "%",
            Better::Higher,
            percent(received as f64, expected as f64),
        ),
    ]
}

/// Runs one scenario against one broker.
pub(crate) async fn run(
    scenario: Scenario,
    broker: &mut Broker,
    settings: &Settings,
) -> Result<Vec<Metric>> {
    match scenario {
        Scenario::Fanin0 => fanin::run(broker, settings, mqtt::QoS::AtMostOnce).await,
        Scenario::Fanin1 => fanin::run(broker, settings, mqtt::QoS::AtLeastOnce).await,
        Scenario::Fanout => fanout::run(broker, settings).await,
        Scenario::Idle => idle::run(broker, settings).await,
        Scenario::Latency => latency::run(broker, settings).await,
    }
}

/// A measuring window: wall clock and broker CPU time at its start.
pub(crate) struct Window {
    cpu: f64,
}

impl Window {
    /// Reads the broker's CPU time now.
    pub(crate) fn open(broker: &Broker) -> Result<Window> {
        Ok(Window {
            cpu: broker.cpu_seconds()?,
        })
    }

    /// Broker CPU seconds spent since [`Window::open`].
    pub(crate) fn cpu_spent(&self, broker: &Broker) -> Result<f64> {
        Ok(broker.cpu_seconds()? - self.cpu)
    }
}

/// Receive-side accounting shared by subscriber tasks: count plus first and last arrival.
#[derive(Default)]
pub(crate) struct Arrivals {
    count: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

impl Arrivals {
    /// Records `n` messages that arrived now.
    pub(crate) fn record(&self, n: u64, origin: Instant) {
        if n == 0 {
            return;
        }
        let now = origin.elapsed().as_nanos() as u64 + 1;
        let _ = self
            .first_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Messages received so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Time from the first to the last arrival.
    pub(crate) fn span(&self) -> Duration {
        let first = self.first_ns.load(Ordering::Relaxed);
        let last = self.last_ns.load(Ordering::Relaxed);
        Duration::from_nanos(last.saturating_sub(first))
    }

    /// Waits until `expected` messages arrived, or until nothing arrived for `quiet`
    /// once `senders_done` says no more are coming, or until `limit` passes. Prints
    /// progress every few seconds. Returns whether everything arrived.
    pub(crate) async fn wait(
        &self,
        expected: u64,
        quiet: Duration,
        limit: Duration,
        senders_done: impl Fn() -> bool,
        label: &str,
    ) -> bool {
        let start = Instant::now();
        let mut last_count = 0;
        let mut last_change = Instant::now();
        let mut last_print = Instant::now();
        loop {
            let count = self.count();
            if count >= expected {
                return true;
            }
            if count != last_count {
                last_count = count;
                last_change = Instant::now();
            }
            if (senders_done() && last_change.elapsed() > quiet) || start.elapsed() > limit {
                return false;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                last_print = Instant::now();
                crate::progress(&format!("{label}: {count}/{expected} received"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `part / whole` as a percentage, 0 when `whole` is 0.
pub(crate) fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

/// The 64-byte payload of the throughput scenarios.
pub(crate) fn payload64() -> bytes::Bytes {
    bytes::Bytes::from_static(&[b'x'; 64])
}
