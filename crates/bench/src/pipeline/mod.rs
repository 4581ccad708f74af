//! `bosun-bench pipeline`: the data pipeline of a real `bosun serve --dev`, driven by
//! devices over MQTT. Two measurements, each against a fresh server:
//!
//! - `closed_loop`: devices warm their anomaly model up with normal feature messages,
//!   then one device at a time turns anomalous; the time from the publish that trips
//!   the alarm to the `capture` C2D command arriving at the device.
//! - `ingest`: many devices publish feature messages (JSON, then CBOR) as fast as
//!   QoS 1 with a window allows; messages and points per second until every point is
//!   queryable, and the server's CPU time per message.
//!
//! No other product runs this loop, so there is no peer to compare with. The server,
//! the REST calls and the report table are those of `bosun-bench hub`; `device` is
//! the MQTT side; `report` the Markdown. This file owns the command line, the
//! repetitions and the `/metrics` readings.

mod closed_loop;
mod device;
mod ingest;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::hub::api;
use crate::hub::server::{prometheus_value, Server};
use crate::peer::Paths;
use crate::report::Machine;
use crate::scenario::Metric;

/// Options of `bosun-bench pipeline`.
#[derive(Debug, clap::Args)]
pub(crate) struct PipelineArgs {
    /// The bosun binary.
    #[arg(long, default_value = "target/release/bosun")]
    bosun: PathBuf,
    /// Devices of the closed loop.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Devices publishing in the ingest measurement.
    #[arg(long, default_value_t = 100)]
    ingest_devices: usize,
    /// Messages each ingest device publishes.
    #[arg(long, default_value_t = 200)]
    messages: u64,
    /// Unacknowledged QoS 1 messages per ingest device.
    #[arg(long, default_value_t = 16)]
    in_flight: u64,
    /// Runs, each against fresh servers; the report shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Skips the CBOR ingest variant.
    #[arg(long)]
    no_cbor: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks-pipeline.md")]
    out: PathBuf,
}

/// What one repetition produced: its metrics and the hub's own loop histogram.
pub(super) struct Run {
    /// Wall-clock seconds of the repetition.
    pub(super) seconds: f64,
    /// Metrics, or why the repetition failed.
    pub(super) result: Result<Measured, String>,
}

/// The numbers of one successful repetition.
pub(super) struct Measured {
    /// Every metric, in report order.
    pub(super) metrics: Vec<Metric>,
    /// `bosun_pipeline_anomaly_to_command_seconds` buckets: (`le`, cumulative count).
    pub(super) histogram: Vec<(String, f64)>,
}

/// `bosun-bench pipeline`.
pub(crate) async fn run(args: PipelineArgs) -> Result<()> {
    crate::progress("bosun-bench pipeline starting");
    anyhow::ensure!(
        args.bosun.exists(),
        "{} does not exist",
        args.bosun.display()
    );
    let machine = Machine::probe(&Paths {
        bosun: args.bosun.clone(),
        mosquitto: PathBuf::new(),
    });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let load_before = load_average();
    let repeat = args.repeat.max(1);
    let mut runs = Vec::with_capacity(repeat);
    for rep in 0..repeat {
        let start = Instant::now();
        let result = run_one(&args, rep).await.map_err(|e| format!("{e:#}"));
        match &result {
            Ok(_) => crate::progress(&format!("run {}/{repeat}: done", rep + 1)),
            Err(e) => crate::progress(&format!("run {}/{repeat}: FAILED: {e}", rep + 1)),
        }
        runs.push(Run {
            seconds: start.elapsed().as_secs_f64(),
            result,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let loads = (load_before.as_str(), load_average());
    let markdown = report::render(&machine, &command, &args, &runs, (loads.0, &loads.1));
    print!("{markdown}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    crate::progress(&format!("report written to {}", args.out.display()));
    if runs.iter().all(|r| r.result.is_err()) {
        bail!("every run failed");
    }
    Ok(())
}

/// One repetition: the closed loop, then JSON ingest, then CBOR ingest, each against a
/// fresh server.
async fn run_one(args: &PipelineArgs, rep: usize) -> Result<Measured> {
    let label = format!("run {}/{}", rep + 1, args.repeat.max(1));
    crate::progress(&format!("{label}: closed loop, {} devices", args.devices));
    let (mut metrics, histogram) = with_server(args, &format!("loop{rep}"), |server| {
        Box::pin(closed_loop::measure(server, args.devices.max(1)))
    })
    .await?;
    let mut kinds = vec![ingest::Encoding::Json];
    if !args.no_cbor {
        kinds.push(ingest::Encoding::Cbor);
    }
    for kind in kinds {
        crate::progress(&format!(
            "{label}: {} ingest, {} devices × {} messages",
            kind.name(),
            args.ingest_devices,
            args.messages
        ));
        let settings = ingest::Settings {
            devices: args.ingest_devices.max(1),
            messages: args.messages.max(1),
            in_flight: args.in_flight.max(1),
            encoding: kind,
        };
        let tag = format!("{}{rep}", kind.name());
        let (more, _) = with_server(args, &tag, |server| {
            Box::pin(async move { Ok((ingest::measure(server, &settings).await?, Vec::new())) })
        })
        .await?;
        metrics.extend(more);
    }
    Ok(Measured { metrics, histogram })
}

/// The future a measurement returns.
type Measurement<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(Vec<Metric>, Vec<(String, f64)>)>> + 'a>,
>;

/// Runs `measure` against a fresh server, which is always stopped afterwards and its
/// directory kept when the measurement failed.
async fn with_server<F>(
    args: &PipelineArgs,
    tag: &str,
    measure: F,
) -> Result<(Vec<Metric>, Vec<(String, f64)>)>
where
    F: for<'a> FnOnce(&'a mut Server) -> Measurement<'a>,
{
    let mut server = Server::start(&args.bosun, &format!("pipeline-{tag}")).await?;
    let limit = Duration::from_secs(300);
    let measured = tokio::time::timeout(limit, measure(&mut server))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {limit:?}")));
    if measured.is_err() {
        crate::progress(&format!(
            "keeping {} for inspection",
            server.dir().display()
        ));
    }
    let stopped = server.stop(measured.is_err()).await;
    let out = measured?;
    stopped?;
    Ok(out)
}

/// The first three fields of `/proc/loadavg` (other work on the machine skews every
/// number here), or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Creates the devices over the REST API.
async fn create_devices(server: &Server, ids: &[String]) -> Result<()> {
    let list: Arc<Vec<String>> = Arc::new(ids.to_vec());
    api::batch(
        &server.api,
        8,
        ids.len(),
        Duration::from_secs(60),
        "creating devices",
        move |i| api::create_device(&list[i]),
        api::any_body,
    )
    .await?;
    Ok(())
}

/// The server's `/metrics` text.
async fn scrape(server: &mut Server) -> Result<String> {
    server.check_alive()?;
    let answer = server
        .api
        .client()
        .send("GET", "/metrics", None)
        .await
        .context("cannot read the server's metrics")?;
    if answer.status != 200 {
        bail!("GET /metrics answered {}", answer.status);
    }
    Ok(String::from_utf8_lossy(&answer.body).into_owned())
}

/// A counter of a `/metrics` text, which must be there.
fn counter(text: &str, name: &str) -> Result<f64> {
    prometheus_value(text, name).with_context(|| format!("no {name} in /metrics"))
}

/// Polls `/metrics` until counter `name` is at least `target`; returns its value.
async fn wait_counter(
    server: &mut Server,
    name: &str,
    target: f64,
    limit: Duration,
) -> Result<f64> {
    let deadline = Instant::now() + limit;
    loop {
        let value = counter(&scrape(server).await?, name)?;
        if value >= target {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{name} is {value} after {limit:?}, expected {target}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The buckets of histogram `name` in a `/metrics` text: (`le`, cumulative count).
fn histogram(text: &str, name: &str) -> Vec<(String, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, value) = rest.split_once("\"} ")?;
            Some((le.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The `p` quantile (nearest rank) of sorted values; zero when there are none.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let text = "# TYPE h histogram\nh_bucket{le=\"0.001\"} 2\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n";
        assert_eq!(
            histogram(text, "h"),
            vec![("0.001".to_owned(), 2.0), ("+Inf".to_owned(), 5.0)]
        );
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
