//! Names for the numbers in a device feature record.
//!
//! The anomaly model works on `(name, value)` pairs; this is the one place that decides
//! what a `device::Features` record is called field by field. The telemetry decoder uses
//! the same names, so a model trained on decoded messages and one fed by this function
//! agree: `{axis}.{field}` for the time and shaft features, `{axis}.{spectrum|envelope}.
//! {bpfo|bpfi|bsf|ftf}.{harmonic}` (harmonic 0-based) for the defect bands, and
//! `shaft_hz`. Record metadata (`seq`, `sample_rate_hz`, `window_len`) is not a feature.

use device::{AxisFeatures, Features};

/// Axis names by index in [`Features::axes`].
pub const AXES: [&str; 3] = ["x", "y", "z"];

/// Every numeric feature of `f`, named; absent axes contribute nothing.
pub fn feature_vector(f: &Features) -> Vec<(String, f64)> {
    let mut out = Vec::with_capacity(1 + 57 * f.axes.len());
    out.push(("shaft_hz".to_owned(), f64::from(f.shaft_hz)));
    for (axis, features) in AXES.iter().zip(&f.axes) {
        if let Some(a) = features {
            push_axis(&mut out, axis, a);
        }
    }
    out
}

/// The fields of one axis.
fn push_axis(out: &mut Vec<(String, f64)>, axis: &str, a: &AxisFeatures) {
    for (name, v) in a.scalars() {
        out.push((format!("{axis}.{name}"), f64::from(v)));
    }
    for (kind, bands) in a.bands() {
        for (defect, values) in bands.named() {
            for (h, v) in values.iter().enumerate() {
                out.push((format!("{axis}.{kind}.{defect}.{h}"), f64::from(*v)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_field_of_present_axes() {
        let mut f = Features {
            shaft_hz: 29.95,
            ..Features::default()
        };
        f.axes[0] = Some(AxisFeatures {
            rms: 0.5,
            ..AxisFeatures::default()
        });
        f.axes[2] = Some(AxisFeatures::default());
        let v = feature_vector(&f);
        assert_eq!(v.len(), 1 + 2 * (8 + 24));
        assert!(v.contains(&("x.rms".to_owned(), 0.5)));
        assert!(v.iter().any(|(n, _)| n == "z.envelope.ftf.2"));
        assert!(v.iter().any(|(n, _)| n == "x.spectrum.bpfi.0"));
        assert!(!v.iter().any(|(n, _)| n.starts_with("y.")));
        assert!((v[0].1 - 29.95).abs() < 1e-5);
    }
}
