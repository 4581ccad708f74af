//! The diagnosis on synthetic signals whose answer is known, and its refusals.

use analytics::diagnosis::{diagnose, BearingOrders, Defect, DiagnosisConfig, MIN_SAMPLES};
use analytics::Error;

const RATE: f64 = 12_000.0;
const SHAFT: f64 = 29.95;

/// Deterministic uniform noise in [-0.5, 0.5).
fn uniform(state: &mut u32) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    f64::from(*state) / f64::from(u32::MAX) - 0.5
}

/// Noise plus impacts at `every_hz` (1 % jitter, as rolling elements slip) ringing a
/// 3.2 kHz resonance, their amplitude modulated by `1 + depth·cos(2π·mod_hz·t)`.
fn bearing(n: usize, every_hz: f64, mod_hz: f64, depth: f64, seed: u32) -> Vec<f32> {
    let mut state = seed | 1;
    let mut x: Vec<f64> = (0..n).map(|_| 0.3 * uniform(&mut state)).collect();
    let mut at = 0.0;
    while at < n as f64 / RATE {
        let gain = 1.0 + depth * (2.0 * std::f64::consts::PI * mod_hz * at).cos();
        let start = (at * RATE).ceil() as usize;
        for (i, v) in x.iter_mut().enumerate().skip(start).take(150) {
            let since = i as f64 / RATE - at;
            *v +=
                gain * (-since * 900.0).exp() * (2.0 * std::f64::consts::PI * 3200.0 * since).sin();
        }
        at += (1.0 + 0.02 * uniform(&mut state)) / every_hz;
    }
    x.into_iter().map(|v| v as f32).collect()
}

#[test]
fn names_the_defect_whose_rate_the_impacts_have() {
    let o = BearingOrders::CWRU_6205;
    let cfg = DiagnosisConfig::default();
    for (rate, modulation, want) in [
        (o.bpfo * SHAFT, 0.0, Defect::OuterRace),
        (o.bpfi * SHAFT, SHAFT, Defect::InnerRace),
        (o.bsf * SHAFT, o.ftf * SHAFT, Defect::Ball),
    ] {
        let x = bearing(65_536, rate, modulation, 0.5, 42);
        let d = diagnose(&x, RATE, SHAFT, &cfg).expect("valid record");
        assert_eq!(d.defect, want, "{d:?}");
        let best = d.best().expect("evidence");
        assert!((best.found_hz - rate).abs() < 0.02 * rate, "{best:?}");
        assert!(best.harmonics >= 2 && best.strength > 3.0, "{best:?}");
        assert!(d.band_hz.0 < 3200.0 && d.band_hz.1 > 3200.0, "{d:?}");
    }
}

#[test]
fn noise_alone_is_none() {
    for seed in [1, 2, 3] {
        let mut state = seed;
        let x: Vec<f32> = (0..65_536).map(|_| uniform(&mut state) as f32).collect();
        let d = diagnose(&x, RATE, SHAFT, &DiagnosisConfig::default()).expect("valid");
        assert_eq!(d.defect, Defect::None, "{d:?}");
    }
}

#[test]
fn refuses_what_it_cannot_analyse() {
    let cfg = DiagnosisConfig::default();
    let x = vec![0.1f32; MIN_SAMPLES];
    assert!(matches!(
        diagnose(&x[..MIN_SAMPLES - 1], RATE, SHAFT, &cfg),
        Err(Error::TooShort { .. })
    ));
    let mut bad = x.clone();
    bad[10] = f32::INFINITY;
    assert_eq!(
        diagnose(&bad, RATE, SHAFT, &cfg).err(),
        Some(Error::NonFinite { index: 10 })
    );
    assert!(diagnose(&x, 0.0, SHAFT, &cfg).is_err());
    assert!(diagnose(&x, RATE, f64::NAN, &cfg).is_err());
    // Defect harmonics beyond Nyquist.
    assert!(diagnose(&x, RATE, 500.0, &cfg).is_err());
    let bad_cfg = DiagnosisConfig {
        tolerance: f64::NAN,
        ..DiagnosisConfig::default()
    };
    assert!(diagnose(&x, RATE, SHAFT, &bad_cfg).is_err());
    // A verdict cannot need more harmonics than are examined.
    let bad_cfg = DiagnosisConfig {
        min_harmonics: 4,
        ..DiagnosisConfig::default()
    };
    assert!(diagnose(&x, RATE, SHAFT, &bad_cfg).is_err());
    // A constant record is valid and has no defect.
    let d = diagnose(&x, RATE, SHAFT, &cfg).expect("constant is valid");
    assert_eq!(d.defect, Defect::None);
}
