//! The closed loop: anomalous message in, `capture` command out, per device.
//!
//! Every device connects as itself, subscribes to its devicebound topic and publishes
//! [`WARMUP`] normal feature messages (more than the model's 30-message warm-up). Once
//! the pipeline has taken all of them in, one device at a time publishes anomalous
//! messages: the first, its PUBACK, a short pause, then the second — the one that
//! completes the two-in-a-row the model needs — and the clock runs from just before
//! that publish to the command's arrival. Should the command not come, more anomalous
//! messages follow (each then becomes the trigger), and the count is reported.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;

use super::device::{now_ms, Device};
use super::{counter, histogram, percentile, scrape, wait_counter};
use crate::hub::server::Server;
use crate::scenario::{metric, Better, Metric};

/// Normal messages per device before the anomaly.
const WARMUP: u64 = 40;
/// Unacknowledged messages per device during warm-up.
const WARMUP_WINDOW: u64 = 8;
/// How long a device waits for the command after an anomalous message.
const COMMAND_WAIT: Duration = Duration::from_secs(2);
/// Anomalous messages a device sends at most.
const MAX_ANOMALOUS: u32 = 5;
/// Pause after the first anomalous message is acknowledged, and between devices, so
/// no measurement queues behind another message.
const SETTLE: Duration = Duration::from_millis(20);
/// The hub's own histogram of the loop.
const HISTOGRAM: &str = "bosun_pipeline_anomaly_to_command_seconds";

/// Runs the loop over `count` devices; the metrics and the hub's histogram buckets.
pub(super) async fn measure(
    server: &mut Server,
    count: usize,
) -> Result<(Vec<Metric>, Vec<(String, f64)>)> {
    let ids: Vec<String> = (0..count).map(|i| format!("loop-{i:05}")).collect();
    super::create_devices(server, &ids).await?;
    let mut devices = Vec::with_capacity(count);
    for id in &ids {
        devices.push(Device::connect(server.mqtt, id, "", true).await?);
    }
    crate::progress(&format!("{count} devices connected; warming up"));
    let mut devices = warm_up(devices).await?;
    let expected = (count as u64 * WARMUP) as f64;
    wait_counter(
        server,
        "bosun_pipeline_messages_total",
        expected,
        Duration::from_secs(60),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    crate::progress("warm-up taken in; triggering one device at a time");
    let mut latencies = Vec::with_capacity(count);
    let mut extra = 0u32;
    let mut missing = 0u32;
    for device in &mut devices {
        match trigger(device).await? {
            Some((latency, sent)) => {
                latencies.push(latency);
                extra += sent.saturating_sub(2);
            }
            None => missing += 1,
        }
        tokio::time::sleep(SETTLE).await;
    }
    // Late or repeated commands: give them time, then count what every device has.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for device in &mut devices {
        device.wait_for(Duration::from_millis(5), |_| false).await?;
    }
    let wrong: usize = devices
        .iter()
        .filter(|d| d.captures != 1 || d.other_c2d != 0)
        .count();
    if wrong > 0 {
        bail!("{wrong} of {count} devices did not get exactly one capture command ({missing} got none)");
    }
    latencies.sort_unstable();
    let text = scrape(server).await?;
    let buckets = histogram(&text, HISTOGRAM);
    let hub_count = counter(&text, &format!("{HISTOGRAM}_count"))?;
    let hub_sum = counter(&text, &format!("{HISTOGRAM}_sum"))?;
    let mean = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / count as f64;
    let ms = |p: f64| percentile(&latencies, p).as_secs_f64() * 1e3;
    Ok((
        vec![
            metric("loop mean", "ms", Better::Lower, mean * 1e3),
            metric("loop p50", "ms", Better::Lower, ms(0.5)),
            metric("loop p90", "ms", Better::Lower, ms(0.9)),
            metric("loop p99", "ms", Better::Lower, ms(0.99)),
            metric("loop max", "ms", Better::Lower, ms(1.0)),
            metric(
                "hub histogram mean",
                "ms",
                Better::Lower,
                hub_sum * 1e3 / hub_count.max(1.0),
            ),
            metric("hub histogram count", "count", Better::Higher, hub_count),
            metric(
                "anomalous messages beyond 2",
                "count",
                Better::Lower,
                f64::from(extra),
            ),
        ],
        buckets,
    ))
}

/// Every device publishes the warm-up messages at once; they come back when all are
/// acknowledged.
async fn warm_up(devices: Vec<Device>) -> Result<Vec<Device>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut device) in devices.into_iter().enumerate() {
        tasks.spawn(async move {
            let base = now_ms() - WARMUP as i64;
            device
                .publish_all(WARMUP, WARMUP_WINDOW, |k| {
                    normal(i as u64 * 7 + k, base + k as i64)
                })
                .await?;
            Ok::<_, anyhow::Error>((i, device))
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        done.push(joined??);
    }
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, d)| d).collect())
}

/// Turns one device anomalous: its latency and the number of anomalous messages sent,
/// or `None` if no command came.
async fn trigger(device: &mut Device) -> Result<Option<(Duration, u32)>> {
    let mut ts = now_ms();
    device.push(anomalous(ts))?;
    device.flush().await?;
    let acked = device.sent;
    if !device.wait_for(COMMAND_WAIT, |d| d.acked >= acked).await? {
        bail!("device {}: no PUBACK for its anomalous message", device.id);
    }
    tokio::time::sleep(SETTLE).await;
    for sent in 2..=MAX_ANOMALOUS {
        ts = (ts + 1).max(now_ms());
        let payload = anomalous(ts);
        let published = Instant::now();
        device.push(payload)?;
        device.flush().await?;
        if device
            .wait_for(COMMAND_WAIT, |d| d.first_capture.is_some())
            .await?
        {
            let arrived = device.first_capture.unwrap_or(published);
            return Ok(Some((arrived.saturating_duration_since(published), sent)));
        }
    }
    Ok(None)
}

/// A normal feature message: small wobble around rms 0.5, kurtosis 3, bpfi 0.01.
fn normal(k: u64, ts: i64) -> Bytes {
    let wobble = (k % 5) as f64 * 0.01;
    Bytes::from(format!(
        r#"{{"rms":{},"kurtosis":{},"bpfi":{},"ts":{ts}}}"#,
        0.5 + wobble,
        3.0 - wobble,
        0.01 + wobble / 10.0
    ))
}

/// The anomalous message.
fn anomalous(ts: i64) -> Bytes {
    Bytes::from(format!(
        r#"{{"rms":2.5,"kurtosis":9,"bpfi":0.4,"ts":{ts}}}"#
    ))
}
