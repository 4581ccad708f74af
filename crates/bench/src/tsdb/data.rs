//! The generated workload shared by both stores: devices × feature fields, one message
//! per device per second with a few milliseconds of jitter, slowly varying values with
//! noise — rounded to a few significant digits as sensors report them, or kept at full
//! `f64` precision for the worst case.
//!
//! Everything is derived from a fixed seed, so every run and both stores see exactly the
//! same points in the same order (time-major: each second, every device's message).

use tsdb::Point;

/// First timestamp of the data set (ms); any fixed instant does.
pub(crate) const START_MS: i64 = 1_700_000_000_000;
/// The InfluxDB measurement name.
pub(crate) const MEASUREMENT: &str = "vib";

/// How values are quantised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    /// Rounded to this many significant digits.
    Digits(u32),
    /// Full-precision `f64` noise.
    Full,
}

impl Precision {
    /// Label for the report.
    pub(crate) fn label(self) -> String {
        match self {
            Precision::Digits(d) => format!("{d} significant digits"),
            Precision::Full => "full-precision f64".to_owned(),
        }
    }
}

/// One point with names as indexes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) device: u16,
    pub(crate) field: u16,
    pub(crate) ts_ms: i64,
    pub(crate) value: f64,
}

/// The data set.
pub(crate) struct Dataset {
    /// Device names.
    pub(crate) devices: Vec<String>,
    /// Field names.
    pub(crate) fields: Vec<String>,
    /// Batches of points, in ingest order.
    pub(crate) batches: Vec<Vec<Sample>>,
    /// The same batches as InfluxDB line protocol (ms timestamps).
    pub(crate) lines: Vec<String>,
    /// Seconds of data.
    pub(crate) seconds: i64,
}

impl Dataset {
    /// Total points.
    pub(crate) fn points(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// A batch as store points.
    pub(crate) fn points_of<'a>(&'a self, batch: &[Sample]) -> Vec<Point<'a>> {
        batch
            .iter()
            .map(|s| Point {
                device: self
                    .devices
                    .get(usize::from(s.device))
                    .map_or("", String::as_str),
                field: self
                    .fields
                    .get(usize::from(s.field))
                    .map_or("", String::as_str),
                ts_ms: s.ts_ms,
                value: s.value,
            })
            .collect()
    }
}

/// splitmix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of four uniforms), mean 0, standard deviation 1.
    fn normal(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum();
        (s - 2.0) * 3f64.sqrt()
    }
}

/// Rounds to `digits` significant digits the way a sensor driver would print them.
fn round_significant(v: f64, digits: u32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let exp = v.abs().log10().floor() as i32;
    let power = digits as i32 - 1 - exp;
    if power >= 0 {
        let scale = 10f64.powi(power);
        (v * scale).round() / scale
    } else {
        let scale = 10f64.powi(-power);
        (v / scale).round() * scale
    }
}

/// Generates `devices × fields × seconds` points in batches of `batch` points.
pub(crate) fn generate(
    devices: usize,
    fields: usize,
    seconds: i64,
    batch: usize,
    precision: Precision,
) -> Dataset {
    let device_names: Vec<String> = (0..devices).map(|d| format!("dev{d:04}")).collect();
    let field_names: Vec<String> = (0..fields).map(|f| format!("f{f:02}")).collect();
    let mut rng = Rng(0x5eed);
    // Per series: level, relative amplitude and period of the slow drift.
    let shapes: Vec<(f64, f64, f64)> = (0..devices * fields)
        .map(|_| {
            let level = 0.01 * 10f64.powf(rng.unit() * 4.0);
            (level, 0.05 + 0.1 * rng.unit(), 300.0 + 3000.0 * rng.unit())
        })
        .collect();
    let mut samples = Vec::with_capacity(devices * fields * seconds as usize);
    for s in 0..seconds {
        for d in 0..devices {
            let ts_ms = START_MS + s * 1000 + (rng.next() % 20) as i64;
            for f in 0..fields {
                let (level, amp, period) = shapes
                    .get(d * fields + f)
                    .copied()
                    .unwrap_or((1.0, 0.1, 600.0));
                let phase = std::f64::consts::TAU * s as f64 / period;
                let raw = level * (1.0 + amp * phase.sin() + 0.005 * rng.normal());
                let value = match precision {
                    Precision::Digits(digits) => round_significant(raw, digits),
                    Precision::Full => raw,
                };
                samples.push(Sample {
                    device: d as u16,
                    field: f as u16,
                    ts_ms,
                    value,
                });
            }
        }
    }
    let batches: Vec<Vec<Sample>> = samples
        .chunks(batch.max(1))
        .map(<[Sample]>::to_vec)
        .collect();
    let lines = batches
        .iter()
        .map(|b| line_protocol(b, &device_names, &field_names))
        .collect();
    Dataset {
        devices: device_names,
        fields: field_names,
        batches,
        lines,
        seconds,
    }
}

/// One line per (device, timestamp) run of samples: `vib,device=D f00=..,f01=.. TS`.
fn line_protocol(batch: &[Sample], devices: &[String], fields: &[String]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(batch.len() * 16);
    let name = |names: &[String], i: u16| names.get(usize::from(i)).cloned().unwrap_or_default();
    for run in batch.chunk_by(|a, b| a.device == b.device && a.ts_ms == b.ts_ms) {
        let Some(first) = run.first() else { continue };
        let _ = write!(out, "{MEASUREMENT},device={} ", name(devices, first.device));
        for (i, s) in run.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}{}={}", name(fields, s.field), s.value);
        }
        let _ = writeln!(out, " {}", first.ts_ms);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_digits_asked_for() {
        assert_eq!(round_significant(2.51349, 4), 2.513);
        assert_eq!(round_significant(0.0481349, 4), 0.04813);
        assert_eq!(round_significant(12345.6, 4), 12350.0);
    }

    #[test]
    fn line_protocol_groups_fields_per_message() {
        let data = generate(2, 3, 2, 5, Precision::Digits(4));
        assert_eq!(data.points(), 12);
        let first = data.lines.first().cloned().unwrap_or_default();
        assert!(first.starts_with("vib,device=dev0000 f00="), "{first}");
        assert_eq!(first.lines().count(), 2, "{first}");
    }
}
