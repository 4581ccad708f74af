//! Accuracy of the feature pipeline on signals whose right answers are known.

mod common;

use common::{impact_train, tone, Rng, FS, N};
use device::fft::real_in_place;
use device::window::hann;
use device::{BearingGeometry, Config, Error, FeatureExtractor, Fill, Full, Pipeline};

fn extractor() -> FeatureExtractor<N> {
    FeatureExtractor::new(Config::new(FS, BearingGeometry::SKF_6205)).expect("valid config")
}

/// Index of the largest-magnitude bin of a Hann-windowed FFT.
fn peak_bin(x: &[f32]) -> usize {
    let mut buf: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v * hann(i, x.len()))
        .collect();
    real_in_place(&mut buf).expect("power of two");
    (1..x.len() / 2)
        .max_by(|&a, &b| {
            let m = |k: usize| buf[2 * k] * buf[2 * k] + buf[2 * k + 1] * buf[2 * k + 1];
            m(a).total_cmp(&m(b))
        })
        .unwrap_or(0)
}

#[test]
fn pure_tone_peaks_at_its_bin_and_has_rms_a_over_root_two() {
    let bin_hz = FS / N as f32;
    for (freq, amp) in [(100.0 * bin_hz, 1.5f32), (1000.0, 0.2), (4321.0, 3.0)] {
        let x = tone(freq, amp, N);
        assert_eq!(peak_bin(&x), (freq / bin_hz).round() as usize, "f = {freq}");
        let f = extractor().extract(&x, 0.0).expect("finite samples");
        let want = amp / 2f32.sqrt();
        assert!(
            (f.rms - want).abs() < 2e-3 * want,
            "f = {freq}: rms {} vs {want}",
            f.rms
        );
        assert!((f.crest - 2f32.sqrt()).abs() < 0.01, "crest {}", f.crest);
        assert!((f.kurtosis - 1.5).abs() < 0.01, "kurtosis {}", f.kurtosis);
    }
}

#[test]
fn shaft_tone_lands_in_the_1x_band_with_its_mean_square() {
    let shaft_hz = 1797.0 / 60.0;
    let x = tone(shaft_hz, 0.8, N);
    let f = extractor().extract(&x, shaft_hz).expect("finite samples");
    let want = 0.8 * 0.8 / 2.0;
    assert!(
        (f.shaft_1x - want).abs() < 0.01 * want,
        "1x {} vs {want}",
        f.shaft_1x
    );
    assert!(f.shaft_2x < 1e-3 * want, "2x {}", f.shaft_2x);
}

#[test]
fn white_noise_is_gaussian_by_kurtosis_and_crest() {
    for seed in [1u32, 2, 3, 4, 5] {
        let mut rng = Rng(seed.wrapping_mul(2_654_435_761));
        let x: Vec<f32> = (0..N).map(|_| 0.5 * rng.gaussian()).collect();
        let f = extractor().extract(&x, 0.0).expect("finite samples");
        println!(
            "seed {seed}: rms {:.4} kurtosis {:.3} crest {:.2}",
            f.rms, f.kurtosis, f.crest
        );
        // Standard error of the kurtosis of N Gaussian samples is sqrt(24/N) ≈ 0.077.
        assert!((f.kurtosis - 3.0).abs() < 0.3, "kurtosis {}", f.kurtosis);
        assert!((f.rms - 0.5).abs() < 0.03, "rms {}", f.rms);
        // The largest of 4096 Gaussian samples is ~3.5σ; 2.5–5.5 allows any sane draw.
        assert!((2.5..5.5).contains(&f.crest), "crest {}", f.crest);
    }
}

/// The classic test of an envelope detector: impacts at BPFO ringing a 3 kHz resonance,
/// under a shaft tone ten times stronger than the impacts' share of the spectrum.
#[test]
fn envelope_finds_impacts_at_bpfo() {
    let shaft_hz = 1797.0 / 60.0;
    let d = BearingGeometry::SKF_6205.frequencies(shaft_hz);
    let x = impact_train(d.bpfo, 3000.0, shaft_hz, N, 11);
    let f = extractor().extract(&x, shaft_hz).expect("finite samples");
    let e = f.envelope;
    println!("envelope bands: {e:?}");
    let others = [e.bpfi[0], e.bsf[0], e.bsf[1], e.ftf[0]];
    for other in others {
        assert!(e.bpfo[0] > 10.0 * other, "BPFO {} vs {other}", e.bpfo[0]);
    }
    // A harmonic series, not a single line.
    assert!(
        e.bpfo[1] > 10.0 * e.bpfi[0] && e.bpfo[2] > 3.0 * e.bpfi[0],
        "{e:?}"
    );
    // In the plain spectrum BPFO is buried: the envelope is what reveals it.
    assert!(f.spectrum.bpfo[0] < 0.1 * f.shaft_1x, "{f:?}");
}

#[test]
fn envelope_finds_impacts_at_bpfi() {
    let shaft_hz = 1750.0 / 60.0;
    let d = BearingGeometry::SKF_6205.frequencies(shaft_hz);
    let x = impact_train(d.bpfi, 3500.0, shaft_hz, N, 12);
    let e = extractor()
        .extract(&x, shaft_hz)
        .expect("finite samples")
        .envelope;
    for other in [e.bpfo[0], e.bsf[0], e.bsf[1], e.ftf[0]] {
        assert!(e.bpfi[0] > 10.0 * other, "BPFI {} vs {other}", e.bpfi[0]);
    }
}

#[test]
fn noise_alone_has_no_envelope_line() {
    let shaft_hz = 1797.0 / 60.0;
    let mut rng = Rng(77);
    let x: Vec<f32> = (0..N).map(|_| 0.05 * rng.gaussian()).collect();
    let faulty = impact_train(
        BearingGeometry::SKF_6205.frequencies(shaft_hz).bpfo,
        3000.0,
        shaft_hz,
        N,
        11,
    );
    let healthy = extractor()
        .extract(&x, shaft_hz)
        .expect("finite")
        .envelope
        .bpfo[0];
    let fault = extractor()
        .extract(&faulty, shaft_hz)
        .expect("finite")
        .envelope
        .bpfo[0];
    println!("envelope BPFO: noise {healthy:.3e}, impacts {fault:.3e}");
    assert!(fault > 100.0 * healthy);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut ex = extractor();
    let mut x = tone(100.0, 1.0, N);
    assert_eq!(
        ex.extract(&x[..N - 1], 30.0),
        Err(Error::WindowLength { got: N - 1 })
    );
    assert_eq!(ex.extract(&x, -1.0), Err(Error::InvalidShaftSpeed));
    assert_eq!(ex.extract(&x, f32::NAN), Err(Error::InvalidShaftSpeed));
    x[123] = f32::INFINITY;
    assert_eq!(
        ex.extract(&x, 30.0),
        Err(Error::NonFiniteSample { index: 123 })
    );
    x[123] = 0.0;
    assert!(ex.extract(&x, 30.0).is_ok(), "the extractor recovers");
    // Extreme but finite values: features may overflow to inf, but nothing panics.
    let huge = vec![f32::MAX; N];
    let _ = ex.extract(&huge, 1e30);
    let alternating: Vec<f32> = (0..N)
        .map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX })
        .collect();
    let _ = ex.extract(&alternating, f32::MAX);
}

#[test]
fn bad_configuration_is_refused() {
    let good = Config::new(FS, BearingGeometry::SKF_6205);
    // At 5 kHz the 2–4 kHz resonance band is above Nyquist.
    assert!(FeatureExtractor::<N>::new(Config {
        sample_rate_hz: 5000.0,
        ..good
    })
    .is_err());
    assert!(FeatureExtractor::<N>::new(Config {
        sample_rate_hz: f32::NAN,
        ..good
    })
    .is_err());
    let no_balls = BearingGeometry {
        balls: 0,
        ..BearingGeometry::SKF_6205
    };
    assert!(Pipeline::<N, 3>::new(Config {
        bearing: no_balls,
        ..good
    })
    .is_err());
    let mut tol = good;
    tol.tolerance.relative = -1.0;
    assert!(FeatureExtractor::<256>::new(tol).is_err());
}

#[test]
fn pipeline_windows_three_axes() {
    let shaft_hz = 30.0;
    let mut p =
        Box::new(Pipeline::<N, 3>::new(Config::new(FS, BearingGeometry::SKF_6205)).expect("valid"));
    assert_eq!(p.compute(shaft_hz), Err(Error::NotReady { missing: N }));
    let x = tone(100.0, 1.0, N);
    for (i, &v) in x.iter().enumerate().take(N - 1) {
        assert_eq!(
            p.push([v, 2.0 * v, 0.0]),
            Ok(Fill::Partial { missing: N - 1 - i })
        );
    }
    assert_eq!(p.push([x[N - 1], 0.0, 0.0]), Ok(Fill::Ready));
    assert_eq!(p.push([9.0, 9.0, 9.0]), Err(Full([9.0, 9.0, 9.0])));
    assert!(p.is_ready());
    let f = p.compute(shaft_hz).expect("full window");
    assert_eq!(
        (f.seq, f.window_len, f.sample_rate_hz, f.shaft_hz),
        (0, N as u32, FS, shaft_hz)
    );
    let (a, b, c) = (
        f.axes[0].expect("x"),
        f.axes[1].expect("y"),
        f.axes[2].expect("z"),
    );
    assert!((b.rms / a.rms - 2.0).abs() < 1e-3, "y is twice x");
    assert_eq!(c.rms, 0.0, "z is silent");

    // Interleaved input, a trailing partial frame left over, and the next sequence number.
    let interleaved: Vec<f32> = x.iter().flat_map(|&v| [v, v, v]).chain([1.0]).collect();
    assert_eq!(p.push_interleaved(&interleaved), 3 * N);
    let f = p.compute(shaft_hz).expect("full window");
    assert_eq!(f.seq, 1);
    assert_eq!(f.axes[0], f.axes[2]);
}

#[test]
fn single_axis_pipeline_leaves_other_axes_empty() {
    let mut p =
        Box::new(Pipeline::<N, 1>::new(Config::new(FS, BearingGeometry::SKF_6205)).expect("valid"));
    assert_eq!(p.push_interleaved(&tone(50.0, 1.0, N + 10)), N);
    let f = p.compute(0.0).expect("full");
    assert!(f.axes[0].is_some() && f.axes[1].is_none() && f.axes[2].is_none());
}
