//! Ingest throughput: every device publishes its feature messages as fast as QoS 1
//! with a window allows, all devices at once; the clock runs from the first publish
//! until the pipeline has taken in (or, falling behind, skipped) every message and
//! `bosun_pipeline_points_total` has stopped moving (every point written to the store). For JSON, whose messages carry
//! distinct timestamps, the stored count is then checked over the query API.
//!
//! Payloads are built before the clock starts, so the load generator spends its CPU
//! on the sockets only.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use super::device::{now_ms, Device};
use super::{counter, create_devices, scrape};
use crate::hub::server::Server;
use crate::scenario::{metric, Better, Metric};

/// How the feature messages are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    /// A flat JSON object of 30 numbers and a `ts`.
    Json,
    /// `device::Features` of three axes, CBOR, with its content type in the property bag.
    Cbor,
}

impl Encoding {
    /// Short name, for labels and metric names.
    pub(super) fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
        }
    }

    /// The property bag of the telemetry topic.
    fn bag(self) -> &'static str {
        match self {
            Encoding::Json => "",
            Encoding::Cbor => "$.ct=application%2Fvnd.bosun.features%2Bcbor",
        }
    }
}

/// What one ingest measurement does.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    /// Publishing devices.
    pub(super) devices: usize,
    /// Messages per device.
    pub(super) messages: u64,
    /// Unacknowledged messages per device.
    pub(super) in_flight: u64,
    /// Payload encoding.
    pub(super) encoding: Encoding,
}

/// The JSON field whose stored count is checked.
const CHECK_FIELD: &str = "z_bpfi";
/// Polling interval of `/metrics` once every message is acknowledged.
const POLL: Duration = Duration::from_millis(25);
/// Polls `points_total` must stay unchanged to count as settled.
const SETTLED_POLLS: u32 = 8;

/// Runs one ingest measurement.
pub(super) async fn measure(server: &mut Server, settings: &Settings) -> Result<Vec<Metric>> {
    let kind = settings.encoding;
    let ids: Vec<String> = (0..settings.devices)
        .map(|i| format!("{}-{i:05}", kind.name()))
        .collect();
    create_devices(server, &ids).await?;
    let mut devices = Vec::with_capacity(ids.len());
    for id in &ids {
        devices.push(Device::connect(server.mqtt, id, kind.bag(), false).await?);
    }
    let base = now_ms() - settings.messages as i64;
    let payloads: Vec<Vec<Bytes>> = (0..settings.devices)
        .map(|d| {
            (0..settings.messages)
                .map(|k| payload(kind, d as u64, k, base + k as i64))
                .collect()
        })
        .collect();
    let bytes: usize = payloads.iter().flatten().map(Bytes::len).sum();
    let text = scrape(server).await?;
    let (messages0, points0, lagged0) = (
        counter(&text, "bosun_pipeline_messages_total")?,
        counter(&text, "bosun_pipeline_points_total")?,
        counter(&text, "bosun_pipeline_lagged_total")?,
    );
    let cpu0 = server.cpu_seconds()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (mut device, mine) in devices.into_iter().zip(payloads) {
        let (count, window) = (settings.messages, settings.in_flight);
        tasks.spawn(async move {
            device
                .publish_all(count, window, |k| mine[k as usize].clone())
                .await?;
            Ok::<_, anyhow::Error>(device)
        });
    }
    let mut devices = Vec::with_capacity(ids.len());
    while let Some(joined) = tasks.join_next().await {
        devices.push(joined.context("device task panicked")??);
    }
    let acked = start.elapsed();
    let total = (settings.devices as u64 * settings.messages) as f64;
    wait_taken(server, messages0 + lagged0 + total).await?;
    let (points, done) = settle(server, start).await?;
    let cpu = server.cpu_seconds()? - cpu0;
    let text = scrape(server).await?;
    let lagged = counter(&text, "bosun_pipeline_lagged_total")? - lagged0;
    let taken = counter(&text, "bosun_pipeline_messages_total")? - messages0;
    let failures = counter(&text, "bosun_pipeline_store_failures_total")?;
    if kind == Encoding::Json {
        check_stored(server, taken).await?;
    }
    drop(devices);
    let secs = done.as_secs_f64().max(1e-9);
    let stored = points - points0;
    let name = |json: &'static str, cbor: &'static str| match kind {
        Encoding::Json => json,
        Encoding::Cbor => cbor,
    };
    Ok(vec![
        metric(
            name("JSON ingest", "CBOR ingest"),
            "msg/s",
            Better::Higher,
            taken / secs,
        ),
        metric(
            name("JSON points stored", "CBOR points stored"),
            "points/s",
            Better::Higher,
            stored / secs,
        ),
        metric(
            name("JSON points per message", "CBOR points per message"),
            "points/msg",
            Better::Higher,
            stored / taken.max(1.0),
        ),
        metric(
            name("JSON all acknowledged", "CBOR all acknowledged"),
            "s",
            Better::Lower,
            acked.as_secs_f64(),
        ),
        metric(
            name("JSON all stored", "CBOR all stored"),
            "s",
            Better::Lower,
            secs,
        ),
        metric(
            name("JSON payload size", "CBOR payload size"),
            "B",
            Better::Lower,
            bytes as f64 / total,
        ),
        metric(
            name("JSON hub CPU per message", "CBOR hub CPU per message"),
            "µs",
            Better::Lower,
            cpu * 1e6 / taken.max(1.0),
        ),
        metric(
            name("JSON lagged", "CBOR lagged"),
            "count",
            Better::Lower,
            lagged,
        ),
        metric(
            name("JSON store failures", "CBOR store failures"),
            "count",
            Better::Lower,
            failures,
        ),
    ])
}

/// Polls `/metrics` until the pipeline has taken in or skipped (lagged) `target`
/// messages in all.
async fn wait_taken(server: &mut Server, target: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = scrape(server).await?;
        let seen = counter(&text, "bosun_pipeline_messages_total")?
            + counter(&text, "bosun_pipeline_lagged_total")?;
        if seen >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pipeline has seen {seen} of {target} messages after 120 s");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `bosun_pipeline_points_total` until it has not moved for [`SETTLED_POLLS`]
/// polls; its final value and when it first reached it.
async fn settle(server: &mut Server, start: Instant) -> Result<(f64, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (f64::NAN, start.elapsed());
    let mut same = 0;
    loop {
        let points = counter(&scrape(server).await?, "bosun_pipeline_points_total")?;
        if points == last.0 {
            same += 1;
            if same >= SETTLED_POLLS {
                return Ok(last);
            }
        } else {
            last = (points, start.elapsed());
            same = 0;
        }
        if Instant::now() > deadline {
            bail!("bosun_pipeline_points_total still moving after 120 s");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks that the store answers with every JSON message's point of [`CHECK_FIELD`].
async fn check_stored(server: &mut Server, expected: f64) -> Result<()> {
    let path = format!("/api/series?field={CHECK_FIELD}&agg=count&from=-1h");
    let answer = server.api.client().send("GET", &path, None).await?;
    if answer.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            answer.status,
            answer.excerpt()
        );
    }
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body).context("series answer is not JSON")?;
    let stored: f64 = body
        .get("series")
        .and_then(serde_json::Value::as_array)
        .map(|series| {
            series
                .iter()
                .filter_map(|s| s.pointer("/points/0/1").and_then(serde_json::Value::as_f64))
                .sum()
        })
        .unwrap_or(0.0);
    if stored != expected {
        bail!("{CHECK_FIELD}: {stored} points queryable, expected {expected}");
    }
    Ok(())
}

/// Message `k` of device `d`, with timestamp `ts` where the encoding carries one.
fn payload(kind: Encoding, d: u64, k: u64, ts: i64) -> Bytes {
    let wobble = |field: u64| 1.0 + 0.02 * noise(d, k, field);
    match kind {
        Encoding::Json => {
            let mut out = String::with_capacity(800);
            out.push('{');
            for (a, axis) in ["x", "y", "z"].iter().enumerate() {
                for (f, (name, typical)) in JSON_FIELDS.iter().enumerate() {
                    let value = typical * wobble((a * JSON_FIELDS.len() + f) as u64);
                    out.push_str(&format!("\"{axis}_{name}\":{value:.5},"));
                }
            }
            out.push_str(&format!("\"ts\":{ts}}}"));
            Bytes::from(out)
        }
        Encoding::Cbor => {
            let axis = |a: u64| {
                let w = |f: u64| wobble(a * 16 + f) as f32;
                let mut axis = device::AxisFeatures {
                    mean: 0.001 * w(0),
                    rms: 0.5 * w(1),
                    peak: 1.7 * w(2),
                    crest: 3.4 * w(3),
                    kurtosis: 3.0 * w(4),
                    shaft_1x: 0.05 * w(5),
                    shaft_2x: 0.02 * w(6),
                    resonance: 0.01 * w(7),
                    ..Default::default()
                };
                axis.envelope.bpfi = [0.01 * w(8), 0.005 * w(9), 0.002 * w(10)];
                axis.envelope.bpfo = [0.012 * w(11), 0.006 * w(12), 0.003 * w(13)];
                axis.spectrum.bpfi = [0.02 * w(14), 0.01 * w(15), 0.005];
                Some(axis)
            };
            let features = device::Features {
                seq: k as u32,
                sample_rate_hz: 12_000.0,
                window_len: 4096,
                shaft_hz: 29.95,
                axes: [axis(0), axis(1), axis(2)],
            };
            Bytes::from(device::encode::cbor::to_vec(&features))
        }
    }
}

/// Per-axis JSON features and their typical values (10 per axis, 30 in all).
const JSON_FIELDS: [(&str, f64); 10] = [
    ("mean", 0.001),
    ("rms", 0.5),
    ("peak", 1.7),
    ("crest", 3.4),
    ("kurtosis", 3.0),
    ("shaft_1x", 0.05),
    ("shaft_2x", 0.02),
    ("resonance", 0.01),
    ("bpfo", 0.012),
    ("bpfi", 0.01),
];

/// Reproducible noise in [-1, 1) from device, message and field (splitmix64).
fn noise(d: u64, k: u64, field: u64) -> f64 {
    let mut z = d
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(k.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(field);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_has_thirty_numbers_and_a_timestamp() -> Result<()> {
        let body: serde_json::Value = serde_json::from_slice(&payload(Encoding::Json, 3, 9, 42))?;
        let object = body.as_object().context("an object")?;
        assert_eq!(object.len(), 31);
        assert_eq!(object.get("ts"), Some(&serde_json::json!(42)));
        assert!(object.values().all(serde_json::Value::is_number));
        Ok(())
    }

    #[test]
    fn noise_stays_in_range() {
        for i in 0..1000 {
            let n = noise(i, i * 3, i % 7);
            assert!((-1.0..1.0).contains(&n), "{n}");
        }
    }
}
