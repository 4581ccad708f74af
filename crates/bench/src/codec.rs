//! `bosun-bench codec`: bytes on the wire and CPU cost of one vibration feature record
//! as JSON (the named-field body), CBOR and Protobuf (the device SDK's codecs).
//!
//! The record comes from the real feature extractor (`device::Pipeline`) run on a
//! synthetic three-axis signal: shaft imbalance, an inner-race defect exciting a
//! resonance, and noise. The single-axis record is the same with axes y and z removed.
//! Each timing is the median over `--repeat` runs of many iterations; "hub decode" is
//! the whole `telemetry::decode::Decoder` (content type → normalized message), what the
//! pipeline pays per message.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result};
use device::encode::{cbor, protobuf};
use device::{BearingGeometry, Config, Features, Fill, Pipeline};
use telemetry::decode::{features_body, Decoder, Input, FEATURES_CBOR, FEATURES_PROTOBUF};

/// Options of `bosun-bench codec`.
#[derive(Debug, clap::Args)]
pub(crate) struct CodecArgs {
    /// Timing runs per measurement; the report shows medians.
    #[arg(long, default_value_t = 11)]
    repeat: usize,
    /// Approximate duration of one timing run, in milliseconds.
    #[arg(long, default_value_t = 30)]
    run_ms: u64,
}

/// Sampling rate of the synthetic signal, Hz (CWRU's drive-end rate).
const RATE_HZ: f32 = 12_000.0;
/// Shaft speed, Hz (1797 rpm).
const SHAFT_HZ: f32 = 1797.0 / 60.0;

/// One format's figures for one record.
struct Row {
    axes: usize,
    format: &'static str,
    bytes: usize,
    encode_ns: f64,
    decode_ns: f64,
    hub_ns: f64,
}

/// `bosun-bench codec`.
pub(crate) fn run(args: CodecArgs) -> Result<()> {
    let three = synthetic_features()?;
    let mut one = three;
    one.axes[1] = None;
    one.axes[2] = None;
    let timer = Timer {
        repeat: args.repeat.max(1),
        run_ns: args.run_ms.max(1) * 1_000_000,
    };
    let mut rows = Vec::new();
    for (axes, f) in [(1, &one), (3, &three)] {
        rows.extend(measure(axes, f, &timer)?);
    }
    print!("{}", render(&rows, &timer));
    Ok(())
}

/// Runs the device pipeline on a synthetic bearing signal and returns one record.
fn synthetic_features() -> Result<Features> {
    let config = Config::new(RATE_HZ, BearingGeometry::SKF_6205);
    let mut pipeline =
        Box::new(Pipeline::<4096, 3>::new(config).map_err(|e| anyhow::anyhow!("pipeline: {e}"))?);
    let bpfi = BearingGeometry::SKF_6205.frequencies(SHAFT_HZ).bpfi;
    let mut noise = 0x2545_f491_u32;
    let mut i = 0u32;
    loop {
        let t = i as f32 / RATE_HZ;
        // Impacts at BPFI ring a 3 kHz resonance for a few milliseconds.
        let since = (t * bpfi).fract() / bpfi;
        let ring = (-since * 800.0).exp() * (std::f32::consts::TAU * 3000.0 * t).sin();
        let shaft = (std::f32::consts::TAU * SHAFT_HZ * t).sin();
        let mut frame = [0.0f32; 3];
        for (axis, value) in frame.iter_mut().enumerate() {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let n = (noise as f32 / u32::MAX as f32 - 0.5) * 0.05;
            let k = 1.0 - 0.25 * axis as f32;
            *value = 0.2 * k * shaft + 0.5 * k * ring + n + if axis == 2 { 1.0 } else { 0.0 };
        }
        i += 1;
        match pipeline.push(frame) {
            Ok(Fill::Partial { .. }) => continue,
            Ok(Fill::Ready) | Err(_) => break,
        }
    }
    pipeline
        .compute(SHAFT_HZ)
        .map_err(|e| anyhow::anyhow!("features: {e}"))
}

/// Bytes and timings of the three formats for one record.
fn measure(axes: usize, f: &Features, timer: &Timer) -> Result<Vec<Row>> {
    let decoder = Decoder::default();
    let hub = |ct: &'static str, payload: &[u8]| {
        let input = Input {
            device_id: "bench",
            group: None,
            properties: &[],
            content_type: Some(ct),
            payload,
            received_ms: 1_717_243_200_000,
        };
        decoder.decode(&input).map(|m| m.body.len())
    };
    let json = serde_json::to_vec(&features_body(f).context("features to JSON")?)?;
    let cbor_bytes = cbor::to_vec(f);
    let proto_bytes = protobuf::to_vec(f);
    // Every payload must decode before it is timed.
    hub("application/json", &json).context("JSON payload")?;
    hub(FEATURES_CBOR, &cbor_bytes).context("CBOR payload")?;
    hub(FEATURES_PROTOBUF, &proto_bytes).context("Protobuf payload")?;

    let mut buf = [0u8; cbor::MAX_LEN];
    let rows = vec![
        Row {
            axes,
            format: "JSON",
            bytes: json.len(),
            encode_ns: timer.median(|| {
                let body = features_body(black_box(f)).map(|b| serde_json::to_vec(&b));
                black_box(body).is_ok()
            }),
            decode_ns: timer
                .median(|| serde_json::from_slice::<serde_json::Value>(black_box(&json)).is_ok()),
            hub_ns: timer.median(|| hub("application/json", black_box(&json)).is_ok()),
        },
        Row {
            axes,
            format: "CBOR",
            bytes: cbor_bytes.len(),
            encode_ns: timer.median(|| cbor::encode(black_box(f), &mut buf).is_ok()),
            decode_ns: timer.median(|| cbor::decode(black_box(&cbor_bytes)).is_ok()),
            hub_ns: timer.median(|| hub(FEATURES_CBOR, black_box(&cbor_bytes)).is_ok()),
        },
        Row {
            axes,
            format: "Protobuf",
            bytes: proto_bytes.len(),
            encode_ns: timer.median(|| protobuf::encode(black_box(f), &mut buf).is_ok()),
            decode_ns: timer.median(|| protobuf::decode(black_box(&proto_bytes)).is_ok()),
            hub_ns: timer.median(|| hub(FEATURES_PROTOBUF, black_box(&proto_bytes)).is_ok()),
        },
    ];
    Ok(rows)
}

/// Median-of-runs timer.
struct Timer {
    repeat: usize,
    run_ns: u64,
}

impl Timer {
    /// Median ns per call of `op` over `repeat` runs of about `run_ns` each.
    fn median(&self, mut op: impl FnMut() -> bool) -> f64 {
        // Calibrate: double the iteration count until one run takes a tenth of a run.
        let mut iters = 1u64;
        loop {
            let start = Instant::now();
            (0..iters).for_each(|_| {
                black_box(op());
            });
            if start.elapsed().as_nanos() as u64 * 10 >= self.run_ns || iters >= 1 << 30 {
                break;
            }
            iters *= 2;
        }
        iters *= 10;
        let mut per_call: Vec<f64> = (0..self.repeat)
            .map(|_| {
                let start = Instant::now();
                (0..iters).for_each(|_| {
                    black_box(op());
                });
                start.elapsed().as_nanos() as f64 / iters as f64
            })
            .collect();
        per_call.sort_by(f64::total_cmp);
        per_call
            .get(per_call.len() / 2)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// The Markdown report: one table and the JSON → Protobuf savings.
fn render(rows: &[Row], timer: &Timer) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Medians of {} runs; ns per message.\n\n",
        timer.repeat
    ));
    out.push_str(
        "| axes | format | bytes | encode ns | decode ns (codec) | decode ns (hub → message) |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} |\n",
            r.axes, r.format, r.bytes, r.encode_ns, r.decode_ns, r.hub_ns
        ));
    }
    out.push('\n');
    for axes in [1, 3] {
        let size = |name: &str| {
            rows.iter()
                .find(|r| r.axes == axes && r.format == name)
                .map(|r| r.bytes as f64)
        };
        if let (Some(json), Some(cbor), Some(proto)) =
            (size("JSON"), size("CBOR"), size("Protobuf"))
        {
            let label = if axes == 1 { "1 axis" } else { "3 axes" };
            out.push_str(&format!(
                "- {label}: Protobuf saves {:.1}% of the JSON bytes, CBOR {:.1}%.\n",
                100.0 * (json - proto) / json,
                100.0 * (json - cbor) / json
            ));
        }
    }
    out
}
