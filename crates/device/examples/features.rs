//! Computes features from a CWRU record (or any little-endian f32 file) and prints them.
//!
//! ```text
//! cargo run -p bosun-device --release --example features -- [FILE] [RPM] [RATE_HZ]
//! ```
//! Defaults: the 0.007 in inner-race record at 0 HP, 1797 rpm, 12 kHz. Uses the same
//! `Pipeline<4096, 1>` a single-axis device would, one window after another, and prints
//! the envelope BPFO/BPFI energies of every window, the first window's features in full,
//! and both payload sizes. Also the binary measured for code size in docs/device.md.

use std::io::Write;
use std::process::ExitCode;

use device::encode::{cbor, protobuf};
use device::{BearingGeometry, Config, Pipeline};

const DEFAULT_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cwru/ir007_0hp.f32"
);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        // Most likely a closed pipe (`| head`): nothing left to tell.
        Err(_) => ExitCode::FAILURE,
    }
}

fn run() -> std::io::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| DEFAULT_FILE.to_owned());
    let rpm: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1797.0);
    let rate: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(12_000.0);
    let samples = match device::raw::read_f32_le(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // 16 KiB of state per axis: on the heap here, in a `static` on a device.
    let config = Config::new(rate, BearingGeometry::SKF_6205);
    let mut pipeline = match Pipeline::<4096, 1>::new(config) {
        Ok(p) => Box::new(p),
        Err(e) => {
            eprintln!("bad configuration: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let shaft_hz = rpm / 60.0;
    let f = BearingGeometry::SKF_6205.frequencies(shaft_hz);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{path}: {} samples, shaft {shaft_hz:.2} Hz",
        samples.len()
    )?;
    writeln!(out, "defect frequencies: {f:.1?}")?;
    writeln!(out, "window  rms_g   kurtosis  env_bpfo_g2  env_bpfi_g2")?;
    let mut first = None;
    for chunk in samples.chunks_exact(4096) {
        pipeline.push_interleaved(chunk);
        let features = match pipeline.compute(shaft_hz) {
            Ok(features) => features,
            Err(e) => {
                eprintln!("window skipped: {e}");
                continue;
            }
        };
        let Some(a) = features.axes[0] else { continue };
        let (bpfo, bpfi) = (a.envelope.bpfo[0], a.envelope.bpfi[0]);
        writeln!(
            out,
            "{:>6}  {:.4}  {:>8.2}  {bpfo:>11.3e}  {bpfi:>11.3e}",
            features.seq, a.rms, a.kurtosis
        )?;
        first.get_or_insert(features);
    }
    if let Some(features) = first {
        writeln!(out, "{features:#?}")?;
        // Encoded as a device would, into fixed buffers.
        let mut buf = [0u8; cbor::MAX_LEN];
        let c = cbor::encode(&features, &mut buf).unwrap_or(0);
        let p = protobuf::encode(&features, &mut buf).unwrap_or(0);
        writeln!(out, "payload: CBOR {c} bytes, Protobuf {p} bytes")?;
    }
    Ok(ExitCode::SUCCESS)
}
