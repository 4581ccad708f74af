//! Property tests: no input makes the model or the diagnosis panic or return NaN.

use analytics::anomaly::{Model, ModelConfig};
use analytics::diagnosis::{diagnose, DiagnosisConfig, MIN_SAMPLES};
use proptest::prelude::*;

/// Any f64 at all, weighted towards the awkward ones.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        -1e3..1e3f64,
    ]
}

fn message() -> impl Strategy<Value = Vec<(String, f64)>> {
    prop::collection::vec(("[a-d]{0,2}", any_value()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn model_never_panics_nor_returns_nan(
        messages in prop::collection::vec(message(), 0..60),
        warmup in 0u64..6,
        adapt in any_value(),
    ) {
        let mut model = Model::new(ModelConfig { warmup, adapt, ..ModelConfig::default() });
        for m in &messages {
            let a = model.observe(m);
            prop_assert!(a.score.is_finite() && a.score >= 0.0, "{a:?}");
            for c in &a.top {
                prop_assert!(c.z.is_finite() && c.ratio.is_finite() && c.baseline.is_finite(), "{c:?}");
            }
        }
        // The state always survives a JSON round trip.
        let json = serde_json::to_string(&model).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Model = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn diagnosis_never_panics(
        seed in any::<u32>(),
        len in prop_oneof![0usize..64, MIN_SAMPLES..(MIN_SAMPLES + 2000)],
        scale in prop_oneof![Just(0.0f32), Just(1e-30f32), Just(1.0f32), Just(1e30f32), Just(f32::MAX)],
        poison in prop::option::weighted(0.3, (0usize..(MIN_SAMPLES + 2000), prop_oneof![Just(f32::NAN), Just(f32::INFINITY)])),
        rate in prop_oneof![4 => Just(12_000.0f64), 1 => Just(0.0), 1 => Just(f64::NAN), 1 => Just(100.0), 2 => 1.0..1e6f64],
        shaft in prop_oneof![4 => Just(29.95f64), 1 => Just(0.0), 1 => Just(f64::INFINITY), 2 => 0.01..1e4f64],
    ) {
        let mut state = seed | 1;
        let mut x: Vec<f32> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * scale
            })
            .collect();
        if let Some((at, v)) = poison {
            if let Some(s) = x.get_mut(at) {
                *s = v;
            }
        }
        if let Ok(d) = diagnose(&x, rate, shaft, &DiagnosisConfig::default()) {
            prop_assert!(d.band_kurtosis.is_finite());
            for e in &d.candidates {
                prop_assert!(e.score.is_finite() && e.strength.is_finite(), "{e:?}");
            }
        }
    }
}
